"""Generated captions' quality: BLEU-1..4 and CIDEr against the human captions (pycocoevalcap).

No Java needed: both sides are tokenised like ``se_text`` here instead of by pycocoevalcap's
PTB tokenizer.

Example
-------
>>> caption_quality({1: "a dog on grass"}, {1: ["a dog on grass"]})["cider"]   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Dict, Sequence

from semsearch.common.checks import check_texts
from semsearch.errors import InputError, MissingExtraError
from semsearch.text import tokenize


def caption_quality(generated: Dict[int, str], references: Dict[int, Sequence[str]]) -> Dict[str, float]:
    """BLEU-1..4 and CIDEr of generated captions against the human ones, per image id.

    Both sides are tokenised like ``se_text`` (lowercase, no punctuation), the tokenisation
    pycocoevalcap's Java PTB tokenizer would otherwise do. Uses pycocoevalcap's ``Bleu(4)``
    and ``Cider()`` (corpus-level BLEU; CIDEr-D with document frequencies from the references).

    >>> caption_quality({1: "a dog on grass"}, {1: ["a dog on grass", "a dog on the grass"]})["bleu4"]  # doctest: +SKIP
    1.0
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        raise MissingExtraError("BLEU and CIDEr need pycocoevalcap: pip install 'semsearch[captioner]'") from None
    ids = sorted(generated)
    missing = [i for i in ids if i not in references or not references[i]]
    if not ids or missing:
        raise InputError(f"need human captions for every generated one; missing for images {missing[:5]}" if ids else "no captions to score")
    res = {i: [" ".join(tokenize(generated[i])) or "<empty>"] for i in ids}
    gts = {i: [" ".join(tokenize(c)) for c in check_texts(references[i], "references")] for i in ids}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu1": float(bleu[0]), "bleu2": float(bleu[1]), "bleu3": float(bleu[2]), "bleu4": float(bleu[3]), "cider": float(cider)}
