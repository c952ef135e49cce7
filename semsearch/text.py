"""Text embedding ``se_text``: IDF-weighted sum of GloVe-50 word vectors, unit length.

Team task: *embed caption and query text*.

- ``tokenize``: lowercase, delete punctuation, split on whitespace.
- ``idf(t) = log10(N / n_t)`` over a caption corpus of N captions, n_t of which contain t.
- ``se_text(text) = normalise(sum over tokens t of idf(t) * glove(t))``. A word missing
  from GloVe or from the corpus contributes zero; a text with no known word gives the
  zero vector (and :meth:`TextEmbedder.check_known` says so clearly).

The IDF is computed once, when the embedder is fitted, never per query.

Example
-------
>>> embedder = TextEmbedder.fit(all_caption_texts)          # doctest: +SKIP
>>> embedder("a dog catching a frisbee").shape              # doctest: +SKIP
(50,)
>>> embedder(["a cat", "two dogs"]).shape                   # doctest: +SKIP
(2, 50)
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import scipy.sparse

from ._io import atomic_write
from .paths import require_file

PathLike = Union[str, "os.PathLike[str]"]
_PUNCTUATION = re.compile(r"[^\w\s]|_")  # any Unicode punctuation or symbol, e.g. ' - ’ — $


class UnknownQueryError(ValueError):
    """A text none of whose words the embedder knows: its embedding would be all zeros."""


def tokenize(text: str) -> List[str]:
    """Lowercase, delete punctuation, split on whitespace.

    >>> tokenize("A dog's frisbee-catch, on the BEACH!")
    ['a', 'dogs', 'frisbeecatch', 'on', 'the', 'beach']
    >>> tokenize("the dog’s “ball” — red")
    ['the', 'dogs', 'ball', 'red']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _PUNCTUATION.sub("", text.lower()).split()


def inverse_document_frequency(texts: Iterable[str]) -> Dict[str, float]:
    """``{word: log10(N / n_word)}`` over N texts, n_word of which contain the word.

    >>> idf = inverse_document_frequency(["a cat", "a dog", "a dog and a cat", "birds"])
    >>> round(idf["a"], 4), round(idf["dog"], 4), round(idf["birds"], 4)
    (0.1249, 0.301, 0.6021)
    """
    document_count: Counter = Counter()
    n_texts = 0
    for text in texts:
        document_count.update(set(tokenize(text)))
        n_texts += 1
    if n_texts == 0:
        raise ValueError("cannot compute IDF over an empty corpus")
    return {word: float(np.log10(n_texts / n)) for word, n in document_count.items()}


class TextEmbedder:
    """``se_text``: maps texts to unit vectors in GloVe space, shape (50,) or (N, 50).

    Parameters
    ----------
    idf : dict[str, float]
        Word weights, e.g. from :func:`inverse_document_frequency` over the captions.
    glove : gensim KeyedVectors, optional
        Word vectors; default :func:`semsearch.glove.load_glove`.

    Attributes
    ----------
    vocabulary : dict[str, int]
        Words that have both a weight and a GloVe vector -> row of :attr:`word_vectors`.
    word_vectors : numpy.ndarray, shape (V, 50)
        ``idf(word) * glove(word)`` for each vocabulary word.
    """

    def __init__(self, idf: Dict[str, float], glove=None):
        if glove is None:
            from .glove import load_glove

            glove = load_glove()
        self.idf = dict(idf)
        self.glove = glove
        words = [w for w in self.idf if w in glove.key_to_index]
        self.vocabulary = {w: r for r, w in enumerate(words)}
        weights = np.array([self.idf[w] for w in words], dtype=np.float32)
        vectors = glove.vectors[[glove.key_to_index[w] for w in words]] if words else np.zeros((0, glove.vector_size))
        self.word_vectors = (weights[:, None] * vectors).astype(np.float32)

    @classmethod
    def fit(cls, texts: Iterable[str], glove=None) -> "TextEmbedder":
        """IDF over ``texts`` (the caption corpus), then an embedder with it."""
        return cls(inverse_document_frequency(texts), glove)

    @property
    def dim(self) -> int:
        """Size of an embedding (50 for GloVe-50)."""
        return self.word_vectors.shape[1]

    def __call__(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Embed one text -> (50,), or a list of texts -> (N, 50); rows have unit length or are 0."""
        if isinstance(texts, str):
            return self._embed([texts])[0]
        return self._embed(list(texts))

    se_text = __call__

    def known_words(self, text: str) -> List[str]:
        """The tokens of ``text`` that contribute to its embedding."""
        return [t for t in tokenize(text) if t in self.vocabulary]

    def check_known(self, text: str) -> None:
        """Raise :class:`UnknownQueryError` if ``text`` embeds to the zero vector."""
        if np.any(self(text)):
            return
        tokens = tokenize(text)
        if self.known_words(text):
            raise UnknownQueryError(f"cannot embed {text!r}: its known words {self.known_words(text)} all have weight 0")
        if not tokens:
            raise UnknownQueryError(f"cannot embed {text!r}: it has no words")
        raise UnknownQueryError(
            f"cannot embed {text!r}: none of its words {tokens} is in both GloVe and the caption vocabulary"
        )

    def _embed(self, texts: List[str]) -> np.ndarray:
        # A sparse (N_texts, V) matrix of word counts times (V, 50) weighted vectors: the
        # IDF-weighted sum for every text at once, with no Python loop over dimensions.
        lookup = self.vocabulary.get
        rows = [[r for r in map(lookup, tokenize(t)) if r is not None] for t in texts]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.fromiter((r for row in rows for r in row), dtype=np.int64, count=int(indptr[-1]))
        counts = scipy.sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(texts), len(self.vocabulary))
        )
        sums = np.asarray(counts @ self.word_vectors, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write the word weights as JSON, atomically (GloVe itself is not copied)."""
        with atomic_write(path, "w") as f:
            json.dump({"format": "semsearch-idf-1", "idf": self.idf}, f)

    @classmethod
    def load(cls, path: PathLike, glove=None) -> "TextEmbedder":
        """Read weights written by :meth:`save`."""
        path = require_file(path, "text embedder file")
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            idf = state["idf"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a semsearch text embedder file: {e}") from None
        return cls(idf, glove)
