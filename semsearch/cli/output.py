"""What the command line prints: lines as they come, and a ranking of search results.

Example
-------
>>> print_ranking(["a.jpg", "b.jpg"], [0.61, 0.5])
  rank   score   image
     1   0.610   a.jpg
     2   0.500   b.jpg
"""
from __future__ import annotations

from typing import Optional, Sequence


def say(*lines: str) -> None:
    """Print each line now (flushed), so that progress shows as it happens."""
    print(*lines, sep="\n", flush=True)


def print_ranking(keys: Sequence, scores: Sequence[float], captions: Optional[Sequence[str]] = None) -> None:
    """``rank  score  image [caption]`` lines, best first: what ``search`` and ``demo`` print."""
    say("  rank   score   image" + ("   caption" if captions else ""))
    for rank, (key, score) in enumerate(zip(keys, scores), start=1):
        say(f"  {rank:4d}  {float(score):6.3f}   {key}" + (f"   {captions[rank - 1]}" if captions else ""))
