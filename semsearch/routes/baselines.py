"""Caption baselines: find an image by reading its captions instead of looking at it.

A text query ``Q`` is compared with the captions ``T_k`` of each image ``k``, and the image
scores ``mean`` or ``max`` over its captions of ``sim(Q, T_k)``. Three caption vectors, each
compared by cosine:

- ``"onehot"``: which words a caption has (bag of words, 0/1), rows of unit length;
- ``"tfidf"``:  word counts times ``idf(word) = log10(N / n_word)``, rows of unit length;
- ``"glove"``:  ``se_text``, the IDF-weighted GloVe embedding of :mod:`semsearch.text`.

The protocol is that of :func:`semsearch.evaluation.evaluate`: every caption of the split's
images is a query and its own image is the target among the split's images. A query never
reads itself: its own image is scored over its *other* captions (for ``"mean"`` the mean
over those, so the divisor is one less). An image left with no caption to read scores
``-inf`` and so ranks last. The IDF is fitted on every caption of the ``CocoCaptions`` given.

Similarities are computed in chunks of queries, ``(chunk, N_captions)`` float32 at a time,
reduced at once to ``(chunk, N_images)``: all 25,014 captions of val2017 against their
5,000 images take about 250 MB and under 10 seconds.

Example
-------
>>> _, validation_ids = next(kfold_images(data.image_ids, 5, seed=0))                     # doctest: +SKIP
>>> print(caption_baseline_scores(coco, validation_ids, method="tfidf", reduce="max"))    # doctest: +SKIP
Recall@1 0.817 (chance 0.021)  Recall@5 0.967 (chance 0.104)  Recall@10 0.979 (chance 0.208) ...
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse

from semsearch.coco import CocoCaptions
from semsearch.evaluation import RetrievalScores, retrieval_scores, target_ranks
from semsearch.text import TextEmbedder, inverse_document_frequency, tokenize, word_counts  # word_counts: re-exported
from semsearch.dataset import split_view
from semsearch.errors import InputError

METHODS = ("onehot", "tfidf", "glove")
REDUCES = ("mean", "max")
CaptionVectors = Union[scipy.sparse.csr_matrix, np.ndarray]


# --------------------------------------------------------------------------- caption vectors
def unit_rows(matrix: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    """Each row divided by its L2 norm; all-zero rows stay zero."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return scipy.sparse.csr_matrix(scipy.sparse.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


def caption_vectors(
    texts: Sequence[str],
    method: str = "onehot",
    *,
    idf: Optional[Dict[str, float]] = None,
    text_encoder: Optional[TextEmbedder] = None,
) -> CaptionVectors:
    """One vector per text, unit length (or zero when no word is known), for cosine similarity.

    Parameters
    ----------
    texts : sequence of str, length N
    method : "onehot", "tfidf" or "glove"
    idf : dict, optional
        Word weights for ``"tfidf"`` (default: fitted on ``texts``); words without a weight
        count zero. For ``"glove"`` they build the text encoder when none is given.
    text_encoder : TextEmbedder, optional
        For ``"glove"``; default ``TextEmbedder(idf)`` with the packaged GloVe-50.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (N, V), for ``"onehot"`` and ``"tfidf"`` (V words);
    numpy.ndarray, shape (N, 50), for ``"glove"``.

    >>> caption_vectors(["a cat", "a cat cat"], "onehot").toarray().round(3)
    array([[0.707, 0.707],
           [0.707, 0.707]], dtype=float32)
    """
    texts = list(texts)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "glove":
        if text_encoder is None:
            text_encoder = TextEmbedder(idf if idf is not None else inverse_document_frequency(texts))
        return np.asarray(text_encoder(texts), dtype=np.float32).reshape(len(texts), -1)
    if method == "onehot":
        vocabulary = {w: i for i, w in enumerate(sorted({t for text in texts for t in tokenize(text)}))}
        counts = word_counts(texts, vocabulary)
        counts.data[:] = 1.0  # presence, not count
        return unit_rows(counts)
    if idf is None:
        idf = inverse_document_frequency(texts)
    words = sorted(idf)
    weights = np.array([idf[w] for w in words], dtype=np.float32)
    counts = word_counts(texts, {w: i for i, w in enumerate(words)})
    return unit_rows(counts @ scipy.sparse.diags(weights))


# --------------------------------------------------------------------------- scores
def caption_image_scores(
    vectors: CaptionVectors,
    caption_images: np.ndarray,
    n_images: Optional[int] = None,
    *,
    reduce: str = "mean",
    chunk_size: int = 512,
) -> Iterator[Tuple[slice, np.ndarray]]:
    """Score every image for every caption as a query, by the image's other captions.

    Parameters
    ----------
    vectors : (C, F) csr_matrix or ndarray
        Unit caption vectors (:func:`caption_vectors`); each row is a query and a caption.
    caption_images : (C,) int
        The image (a column 0 .. n_images - 1) each caption belongs to.
    n_images : int, optional
        Number of images N; default ``caption_images.max() + 1``.
    reduce : "mean" or "max"
        ``score[q, k] = reduce over captions c of image k, c != q, of cos(v_q, v_c)``.
    chunk_size : int
        Queries per chunk: memory is about ``chunk_size * (C + F + 2 N) * 4`` bytes
        (F: words, for sparse vectors): about 90 MB for val2017's 25,014 captions.

    Yields
    ------
    queries : slice
        The rows of ``vectors`` this chunk scores.
    scores : ndarray, shape (len(queries), N), float32
        ``-inf`` where an image has no caption left to read.
    """
    caption_images = np.asarray(caption_images, dtype=np.int64)
    n_captions = vectors.shape[0]
    if caption_images.shape != (n_captions,):
        raise InputError(f"need one image per caption: {n_captions} vectors, caption_images {caption_images.shape}")
    if reduce not in REDUCES:
        raise InputError(f"reduce must be one of {REDUCES}, got {reduce!r}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    if n_captions == 0:
        return
    n_images = int(caption_images.max()) + 1 if n_images is None else int(n_images)
    if caption_images.min() < 0 or caption_images.max() >= n_images:
        raise InputError(f"caption_images must lie in [0, {n_images})")

    # The database side holds the captions sorted by image, so that one reduceat over
    # contiguous row blocks turns (captions, queries) into (images, queries).
    order = np.argsort(caption_images, kind="stable")
    position = np.empty(n_captions, dtype=np.int64)
    position[order] = np.arange(n_captions)  # where each caption sits among the sorted ones
    counts = np.bincount(caption_images, minlength=n_images)
    present = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[present]
    database = vectors[order]
    is_mean = reduce == "mean"

    for begin in range(0, n_captions, chunk_size):
        rows = slice(begin, min(begin + chunk_size, n_captions))
        columns = np.arange(rows.stop - rows.start)
        sims = _similarities(database, vectors[rows])  # (C, B): database captions x queries
        sims[position[rows], columns] = 0.0 if is_mean else -np.inf  # a query never reads itself
        if is_mean:
            reduced = np.add.reduceat(sims, starts, axis=0)  # sums, (images with captions, B)
            others = np.broadcast_to(counts[present][:, None], reduced.shape).astype(np.float32)
            own = np.searchsorted(present, caption_images[rows])
            others[own, columns] -= 1  # the own image: its captions but the query
            reduced = np.divide(reduced, others, out=np.full_like(reduced, -np.inf), where=others > 0)
        else:
            reduced = np.maximum.reduceat(sims, starts, axis=0)
        scores = np.full((len(columns), n_images), -np.inf, dtype=np.float32)
        scores[:, present] = reduced.T
        yield rows, scores


def _similarities(database: CaptionVectors, queries: CaptionVectors) -> np.ndarray:
    """Cosines of unit rows, shape (N_database, N_queries), float32, writable."""
    if scipy.sparse.issparse(queries):
        # sparse (C, F) times a dense (F, B) block: fast, and dense is what comes out anyway
        return np.asarray(database @ queries.T.toarray(), dtype=np.float32)
    return np.asarray(database @ queries.T, dtype=np.float32)


# --------------------------------------------------------------------------- retrieval
def caption_to_image_retrieval(
    texts: Sequence[str],
    caption_images: np.ndarray,
    n_images: Optional[int] = None,
    *,
    method: str = "onehot",
    reduce: str = "mean",
    idf: Optional[Dict[str, float]] = None,
    text_encoder: Optional[TextEmbedder] = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 512,
) -> RetrievalScores:
    """Every text a query; its own image the target, scored by the images' other captions.

    Parameters
    ----------
    texts : sequence of str, length C
        All captions of the N images.
    caption_images : (C,) int
        The image (0 .. N - 1) of each caption.
    n_images : int, optional
        N; default ``caption_images.max() + 1``.
    method, idf, text_encoder
        As in :func:`caption_vectors`.
    reduce : "mean" or "max"

    Example
    -------
    All 25,014 captions of val2017 against its 5,000 images:

    >>> ids = coco.caption_ids                                                        # doctest: +SKIP
    >>> images = np.searchsorted(coco.image_ids, coco.images_of(ids))                # doctest: +SKIP
    >>> caption_to_image_retrieval(coco.captions(ids), images, method="tfidf").recall  # doctest: +SKIP
    {1: 0.276, 5: 0.487, 10: 0.591}
    """
    caption_images = np.asarray(caption_images, dtype=np.int64)
    if len(caption_images) == 0:
        raise InputError("no captions to query")
    n_images = int(caption_images.max()) + 1 if n_images is None else int(n_images)
    vectors = caption_vectors(texts, method, idf=idf, text_encoder=text_encoder)
    ranks = np.empty(len(caption_images), dtype=np.int64)
    for rows, scores in caption_image_scores(vectors, caption_images, n_images, reduce=reduce, chunk_size=chunk_size):
        ranks[rows] = target_ranks(scores, caption_images[rows])
    return retrieval_scores(ranks, n_images, ks)


def caption_baseline_scores(
    coco: CocoCaptions,
    image_ids,
    *,
    method: str = "onehot",
    reduce: str = "mean",
    text_encoder: Optional[TextEmbedder] = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 512,
) -> RetrievalScores:
    """Text -> image retrieval over ``image_ids`` by their captions, scored as ``evaluate`` scores a model.

    Parameters
    ----------
    coco : CocoCaptions
        Its captions are the corpus the IDF is fitted on (``"tfidf"`` and ``"glove"``).
    image_ids : array-like of int
        The split's images: both the candidates and the sources of the queries.
    method : "onehot", "tfidf" or "glove"
    reduce : "mean" or "max"
    text_encoder : TextEmbedder, optional
        For ``"glove"``: the text encoder the learned model is evaluated with; default
        ``TextEmbedder(idf over coco's captions)``.

    Example
    -------
    >>> for train_ids, val_ids in kfold_images(data.image_ids, 5, seed=0):       # doctest: +SKIP
    ...     print(caption_baseline_scores(coco, val_ids, method="glove", reduce="max"))
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    split = split_view(coco, image_ids)  # raises UnknownIdError for an unknown image
    idf = None
    if method == "tfidf" or (method == "glove" and text_encoder is None):
        idf = inverse_document_frequency(coco.captions(coco.caption_ids))
    return caption_to_image_retrieval(
        split.caption_texts, split.image_rows, len(split.image_ids), method=method, reduce=reduce, idf=idf,
        text_encoder=text_encoder, ks=ks, chunk_size=chunk_size,
    )
