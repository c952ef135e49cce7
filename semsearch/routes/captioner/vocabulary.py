"""The captioner's vocabulary: words of the training captions, with four special tokens.

``<pad>`` 0, ``<start>`` 1, ``<end>`` 2, ``<unk>`` 3, then the words sorted; a caption is
encoded as ``<start> w_1 .. w_n <end> <pad>..``.

Example
-------
>>> CaptionVocabulary.fit(["A dog runs."]).encode(["a dog"])
array([[1, 4, 5, 2]])
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from semsearch.common.checks import check_k, check_texts
from semsearch.errors import InputError
from semsearch.text import tokenize

SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
PAD, START, END, UNK = range(4)


class CaptionVocabulary:
    """Words of the training captions, with ``<pad>`` 0, ``<start>`` 1, ``<end>`` 2, ``<unk>`` 3.

    >>> vocab = CaptionVocabulary.fit(["A dog runs.", "a dog sits"])
    >>> vocab.words
    ['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'runs', 'sits']
    >>> vocab.encode(["a cat runs"], max_length=4)
    array([[1, 4, 3, 6, 2]])
    >>> vocab.decode([4, 5, 2, 6])
    'a dog'
    """

    def __init__(self, words: Sequence[str]):
        words = check_texts(words, "words")
        if list(words[: len(SPECIALS)]) != list(SPECIALS) or len(set(words)) != len(words):
            raise InputError(f"a caption vocabulary starts with {SPECIALS} and has no word twice")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def fit(cls, captions: Sequence[str], min_count: int = 1) -> "CaptionVocabulary":
        """Every token seen at least ``min_count`` times in ``captions``, sorted."""
        counts = Counter(t for c in check_texts(captions, "captions") for t in tokenize(c))
        return cls(list(SPECIALS) + sorted(w for w, n in counts.items() if n >= check_k(min_count, "min_count")))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, captions: Sequence[str], max_length: int = 16) -> np.ndarray:
        """``<start> w_1 .. w_n <end> <pad>..``, n <= max_length, shape (N, longest + 2) int."""
        max_length = check_k(max_length, "max_length")
        rows = [[self.index.get(t, UNK) for t in tokenize(c)][:max_length] for c in check_texts(captions, "captions")]
        out = np.full((len(rows), max((len(r) for r in rows), default=0) + 2), PAD, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row) + 2] = [START, *row, END]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Words up to the first ``<end>``, without ``<start>``, ``<pad>`` or ``<unk>``."""
        words = []
        for i in ids:
            if int(i) == END:
                break
            if int(i) > UNK:
                words.append(self.words[int(i)])
        return " ".join(words)
