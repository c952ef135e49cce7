"""How well tags name what is in a picture, measured against the image's own COCO captions.

A tag *hits* an image if one of its words is a word of the image's captions, both sides
lowercased, tokenized like ``se_text`` and stripped of a plural "s"
(:func:`semsearch.routes.tagger.singular`). Two measures over a set of images, on the top ``k``
tags (k = 5):

- **hit rate**: the share of images at least one of whose top-k tags hits;
- **precision**: the mean share of the k tags that hit (a missing tag counts as a miss), the
  stricter one: every tag must name something the captions mention.

Example
-------
>>> tag_scores([["dog", "frisbee", "deeley"]], [["A dog catches a frisbee."]], k=3)
TagScores(hit_rate=1.0, precision=0.6667, n_images=1)
"""
from __future__ import annotations

from typing import Iterable, List, NamedTuple, Sequence, Set

from semsearch.common.checks import check_k
from semsearch.errors import InputError
from semsearch.routes.tagger import singular
from semsearch.text import tokenize


class TagScores(NamedTuple):
    """Hit rate and precision of top-k tags over ``n_images`` images (rounded to 4 places)."""

    hit_rate: float
    precision: float
    n_images: int


def caption_words(captions: Iterable[str]) -> Set[str]:
    """The words of some captions, singular (``{"dog", "frisbee", ...}``).

    >>> sorted(caption_words(["Two dogs play.", "A dog"]))
    ['a', 'dog', 'play', 'two']
    """
    return {singular(w) for caption in captions for w in tokenize(caption)}


def tag_hits(tags: Sequence[str], words: Set[str]) -> List[bool]:
    """For each tag, whether one of its words (singular) is in ``words``.

    >>> tag_hits(["golden retriever", "cat"], {"retriever", "dog"})
    [True, False]
    """
    return [any(singular(w) in words for w in tokenize(tag)) for tag in tags]


def tag_scores(tag_lists: Sequence[Sequence[str]], caption_lists: Sequence[Sequence[str]], k: int = 5) -> TagScores:
    """Hit rate and precision of each image's top-k tags against its captions.

    Parameters
    ----------
    tag_lists : N lists of str
        Each image's tags, best first (only the first k count).
    caption_lists : N lists of str
        Each image's human captions.
    k : int
    """
    k = check_k(k)
    if len(tag_lists) != len(caption_lists) or not tag_lists:
        raise InputError(f"need tags and captions for the same images (> 0): {len(tag_lists)} and {len(caption_lists)}")
    hits = [tag_hits(list(tags)[:k], caption_words(captions)) for tags, captions in zip(tag_lists, caption_lists)]
    hit_rate = sum(any(h) for h in hits) / len(hits)
    precision = sum(sum(h) / k for h in hits) / len(hits)
    return TagScores(round(hit_rate, 4), round(precision, 4), len(hits))
