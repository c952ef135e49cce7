"""Words for images and words for words: nearest neighbours in GloVe space.

The trained model puts an image near the captions that describe it, and a caption's
``se_text`` vector is a weighted sum of GloVe word vectors. So the GloVe words nearest
(by cosine) to an image's 50-d embedding make tags for it:

- :func:`image_tags`: image embedding (50,) -> the k nearest words, with cosines. This
  is *zero-shot*: with ``vocabulary="glove"`` a word that no caption ever used can come
  back ("kitten" for a cat image whose captions only say "cat").
- :func:`similar_words`: text -> the k nearest words. One word uses its GloVe vector;
  several words ("cat sofa") are combined by ``se_text`` when a :class:`TextEmbedder` is
  given (IDF-weighted), or averaged when plain GloVe vectors are.

Which words may come back (``vocabulary``):

- ``"glove"``: every GloVe word (400,000 for GloVe-6B);
- an int N: the N most frequent GloVe words (GloVe's rows are ordered by frequency);
- ``"captions"``: the words of the captions (``caption_vocabulary=``, or the
  vocabulary of the :class:`TextEmbedder` given).

In every case only alphabetic words are kept (no numbers or punctuation, which
GloVe has plenty of) and :data:`STOP_WORDS` are dropped: "a", "of" or "with" sit near
everything and describe nothing. Pass ``stop_words=()`` to keep them. The unit word
vectors of a vocabulary are computed once and cached.

Example
-------
>>> words, scores = image_tags(database.vector_of(174231), text_encoder, k=5)  # a cat on a laptop  # doctest: +SKIP
>>> words                                                               # doctest: +SKIP
['laptop', 'computer', 'calculator', 'gadget', 'password']
>>> similar_words("dog", text_encoder, k=3)[0]                                 # doctest: +SKIP
['cat', 'dogs', 'horse']
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, Iterable, List, Optional, Tuple, Union

import numpy as np

from semsearch.database import top_k
from semsearch.text import TextEmbedder, UnknownQueryError, tokenize
from semsearch.common.vectors import l2_normalize_rows, row_norms
from semsearch.common.checks import check_k
from semsearch.errors import InputError, InputTypeError

#: Common English function words, left out of tags and similar words by default.
STOP_WORDS: FrozenSet[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other
    our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself
    yourselves
    """.split()
)

Vocab = Union[str, int]


@dataclass(frozen=True, eq=False)
class WordTable:
    """The words tags are chosen from, and their unit GloVe vectors.

    Attributes
    ----------
    words : list of str, length V
    vectors : numpy.ndarray, shape (V, dim), float32, unit rows
    """

    words: List[str]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.words)

    def nearest(self, queries: np.ndarray, k: int) -> Tuple[List[List[str]], np.ndarray]:
        """The k words nearest to each unit query (Q, dim): words (Q lists of k), cosines (Q, k)."""
        scores = queries @ self.vectors.T
        best = top_k(scores, k)
        return [[self.words[j] for j in row] for row in best], np.take_along_axis(scores, best, axis=1)


def word_table(
    word_vectors,
    vocabulary: Vocab = "glove",
    caption_vocabulary=None,
    stop_words: Iterable[str] = STOP_WORDS,
) -> WordTable:
    """The words (and unit vectors) that ``vocabulary`` allows, cached per vocabulary.

    Parameters
    ----------
    word_vectors : gensim KeyedVectors or TextEmbedder
        The GloVe word vectors to search, or a GloVe TextEmbedder (which carries them in its
        ``glove`` attribute, and whose caption vocabulary serves ``vocabulary="captions"``).
    vocabulary : "glove", "captions" or int
        See the module docstring.
    caption_vocabulary : TextEmbedder or iterable of str, optional
        For ``vocabulary="captions"``: caption texts (or words), tokenized like
        ``se_text``; or a TextEmbedder, whose vocabulary is its caption words. Default:
        the TextEmbedder passed as ``word_vectors``, if it is one.
    stop_words : iterable of str
        Words never returned (default :data:`STOP_WORDS`).

    Raises
    ------
    ValueError
        An unknown vocabulary option, or no word left to choose from.
    """
    keyed_vectors = _keyed_vectors(word_vectors)
    stop = frozenset(stop_words)
    if isinstance(vocabulary, str):
        if vocabulary == "glove":
            return _table(keyed_vectors, len(keyed_vectors.index_to_key), None, stop)
        if vocabulary == "captions":
            if caption_vocabulary is None and isinstance(word_vectors, TextEmbedder):
                caption_vocabulary = word_vectors
            return _table(keyed_vectors, len(keyed_vectors.index_to_key), _caption_words(caption_vocabulary), stop)
    elif isinstance(vocabulary, (int, np.integer)) and not isinstance(vocabulary, bool):
        if vocabulary < 1:
            raise InputError(f"vocabulary=N needs N >= 1, got {vocabulary}")
        return _table(keyed_vectors, int(vocabulary), None, stop)
    raise InputError(
        f'vocabulary must be "glove", "captions" or an int N (the N most frequent words), got {vocabulary!r}'
    )


def _keyed_vectors(word_vectors):
    if isinstance(word_vectors, TextEmbedder):
        return word_vectors.glove
    if not (hasattr(word_vectors, "key_to_index") and hasattr(word_vectors, "vectors")):
        raise InputTypeError(f"expected GloVe KeyedVectors or a TextEmbedder, got {type(word_vectors).__name__}")
    return word_vectors


def _caption_words(caption_vocabulary) -> Tuple[str, ...]:
    if caption_vocabulary is None:
        raise InputError('vocabulary="captions" needs caption_vocabulary= (caption texts, or a TextEmbedder)')
    if isinstance(caption_vocabulary, TextEmbedder):
        words = set(caption_vocabulary.vocabulary)
    elif isinstance(caption_vocabulary, str):
        words = set(tokenize(caption_vocabulary))
    else:
        words = {token for text in caption_vocabulary for token in tokenize(text)}
    return tuple(sorted(words))


@lru_cache(maxsize=8)
def _table(word_vectors, n_rows: int, only: Optional[Tuple[str, ...]], stop_words: FrozenSet[str]) -> WordTable:
    """Rows 0..n_rows-1 of GloVe (or only the words ``only``), alphabetic and not stop words."""
    if only is None:
        candidates = enumerate(word_vectors.index_to_key[:n_rows])
    else:
        index = word_vectors.key_to_index
        candidates = sorted((index[w], w) for w in only if w in index)
    rows, words = [], []
    for row, word in candidates:
        if word.isalpha() and word not in stop_words:
            rows.append(row)
            words.append(word)
    if not words:
        raise InputError("the vocabulary has no word left (all missing from GloVe, not alphabetic, or stop words)")
    vectors = np.asarray(word_vectors.vectors[rows], dtype=np.float32)
    return WordTable(words, l2_normalize_rows(vectors))


def _unit_queries(vectors, dim: int) -> np.ndarray:
    """Check image vectors (dim,) or (Q, dim) and return them with unit rows, shape (Q, dim)."""
    array = np.asarray(vectors)
    if array.ndim not in (1, 2) or array.shape[-1] != dim or not np.issubdtype(array.dtype, np.number):
        raise InputError(f"image vectors must be numeric with shape ({dim},) or (Q, {dim}), got {array.shape}")
    array = np.atleast_2d(array).astype(np.float32)
    if not np.isfinite(array).all():
        raise InputError("image vector contains NaN or inf")
    if (row_norms(array) == 0).any():
        raise InputError("an image vector is all zeros: it is equally near every word")
    return l2_normalize_rows(array)


def image_tags(
    image_vector,
    word_vectors,
    *,
    k: int = 10,
    vocabulary: Vocab = "glove",
    caption_vocabulary=None,
    stop_words: Iterable[str] = STOP_WORDS,
) -> Tuple[Union[List[str], List[List[str]]], np.ndarray]:
    """The k words nearest to an image's embedding in GloVe space, best first.

    Parameters
    ----------
    image_vector : array (50,) or (Q, 50)
        The image's embedding by the trained model: ``database.vector_of(coco_id)`` or
        ``model.embed(descriptor)[0]``.
    word_vectors : gensim KeyedVectors or TextEmbedder
    k : int
        How many words; capped at the vocabulary size.
    vocabulary, caption_vocabulary, stop_words
        Which words may come back: see :func:`word_table`.

    Returns
    -------
    words : list of k str (a list of Q such lists for a (Q, 50) input)
    scores : numpy.ndarray, shape (k,) or (Q, k), float32
        Cosine similarity of each word to the image, descending.

    Examples
    --------
    >>> words, scores = image_tags(database.vector_of(139), word_vectors, k=3)  # doctest: +SKIP
    """
    k = check_k(k)
    table = word_table(word_vectors, vocabulary, caption_vocabulary, stop_words)
    queries = _unit_queries(image_vector, table.vectors.shape[1])
    words, scores = table.nearest(queries, k)
    return (words[0], scores[0]) if np.ndim(image_vector) == 1 else (words, scores)


def text_vector(text: str, word_vectors, stop_words: Iterable[str] = STOP_WORDS) -> np.ndarray:
    """A unit vector (dim,) for a text: ``se_text`` for a TextEmbedder, else the mean GloVe direction.

    With plain GloVe vectors, each known word that is not a stop word adds its unit
    vector (words unknown to GloVe are ignored).

    Raises
    ------
    UnknownQueryError
        The text has no word to go on.
    """
    if not isinstance(text, str):
        raise InputTypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(word_vectors, TextEmbedder):
        word_vectors.check_known(text)  # raises if the text embeds to the zero vector
        return word_vectors(text)
    keyed_vectors = _keyed_vectors(word_vectors)
    tokens = tokenize(text)
    if not tokens:
        raise UnknownQueryError(f"cannot embed {text!r}: it has no words")
    stop = frozenset(stop_words)
    known = [t for t in tokens if t in keyed_vectors.key_to_index and t not in stop]
    if not known:
        raise UnknownQueryError(
            f"cannot embed {text!r}: none of its words {tokens} is a GloVe word other than a stop word"
        )
    vectors = np.stack([keyed_vectors[t] for t in known]).astype(np.float32)
    return l2_normalize_rows(l2_normalize_rows(vectors).sum(axis=0))


def similar_words(
    text: str,
    word_vectors,
    k: int = 10,
    *,
    vocabulary: Vocab = "glove",
    caption_vocabulary=None,
    stop_words: Iterable[str] = STOP_WORDS,
    exclude_query: bool = True,
) -> Tuple[List[str], np.ndarray]:
    """The k words most similar to a word or text, best first.

    Parameters
    ----------
    text : str
        One word ("dog") or several ("cat sofa").
    word_vectors : TextEmbedder or gensim KeyedVectors
        A TextEmbedder combines several words by ``se_text`` (IDF-weighted); plain GloVe
        vectors average the words' directions (see :func:`text_vector`).
    k : int
    vocabulary, caption_vocabulary, stop_words
        Which words may come back: see :func:`word_table`.
    exclude_query : bool
        Leave the query's own words out of the results.

    Returns
    -------
    words : list of k str
    scores : numpy.ndarray, shape (k,), float32, cosine similarities, descending

    Raises
    ------
    UnknownQueryError
        An empty text, or one with no known word.

    Examples
    --------
    >>> similar_words("dog", word_vectors, k=3)                   # doctest: +SKIP
    (['cat', 'dogs', 'horse'], array([0.922, 0.851, 0.791], dtype=float32))
    """
    k = check_k(k)
    query = text_vector(text, word_vectors, stop_words)[None, :]
    table = word_table(word_vectors, vocabulary, caption_vocabulary, stop_words)
    excluded = set(tokenize(text)) if exclude_query else set()
    words, scores = table.nearest(query, k + len(excluded))  # room for the excluded words
    kept = [j for j, word in enumerate(words[0]) if word not in excluded][: k]
    return [words[0][j] for j in kept], scores[0, kept].astype(np.float32)
