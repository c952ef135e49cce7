"""Why an image matched a query: its cosine score split into one term per query word.

``se_text`` is linear before its final normalisation. For a GloVe :class:`TextEmbedder`,

    v = (1 / n) * sum over tokens t of w_t g_t        (n tokens, w_t the word's weight)
    v <- v - (v . u) u                                 (SIF only: u the common component)
    q = v / |v|

so the cosine of the query with a unit image vector ``x`` is exactly

    q . x = sum over words t of  c_t w_t (g_t - (g_t . u) u) . x / (n |v|)

with c_t how often word t occurs. :func:`explain` returns these terms: they add up to the
score :meth:`ImageDatabase.query` gives (to float rounding). A word the encoder does not
know adds exactly 0. A share can be negative: that word pulled the image *down*.

A MiniLM sentence encoder is a transformer, not a sum of word terms, so its scores cannot
be split this way: :func:`explain` refuses it (:func:`is_decomposable` says so in advance).

Example
-------
>>> explain(text_encoder, "a dog on a beach", database.vector_of(139))   # doctest: +SKIP
[('a', 0.004), ('dog', 0.231), ('on', 0.012), ('beach', 0.187)]
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from semsearch.errors import InputError, InputTypeError
from semsearch.query import embed_query, parse_query
from semsearch.text import TextEmbedder, tokenize


def is_decomposable(text_encoder) -> bool:
    """Whether the encoder's scores split into word terms (a GloVe :class:`TextEmbedder`)."""
    return isinstance(text_encoder, TextEmbedder)


def explain(text_encoder, query: str, image_vector) -> List[Tuple[str, float]]:
    """Each query word's share of the cosine between ``se_text(query)`` and an image.

    Parameters
    ----------
    text_encoder : TextEmbedder
        The GloVe encoder the database was queried with (IDF, SIF or mean weighting).
    query : str
        The text query.
    image_vector : array, shape (dim,)
        The image's embedding, e.g. ``database.vector_of(key)``; normalised here.

    Returns
    -------
    list of (word, share)
        One entry per distinct token of the query, in order of first appearance; the
        shares sum to the cosine score. Unknown words have share 0.0. For a compound query
        (``"dog + beach - grass"``, :mod:`semsearch.query`) one entry per word of each part,
        labelled with the part's sign and weight (``"-grass"``, ``"2:dog"``).

    Raises
    ------
    InputError
        The encoder is not decomposable (MiniLM), or the image vector is not a finite,
        non-zero vector of the encoder's size.
    UnknownQueryError
        The query has no known word (its embedding is zero).

    Examples
    --------
    >>> shares = explain(text_encoder, "a red bus", database.vector_of(139))   # doctest: +SKIP
    >>> sum(s for _, s in shares)          # == database's cosine score       # doctest: +SKIP
    0.4127
    """
    if not is_decomposable(text_encoder):
        raise InputError(
            f"{type(text_encoder).__name__} is not a weighted sum of word vectors: its scores "
            "cannot be split into word shares (use a GloVe text encoder: idf, sif or mean)"
        )
    if not isinstance(query, str):
        raise InputTypeError(f"query must be a str, got {type(query).__name__}")
    x = np.asarray(image_vector, dtype=np.float64)
    if x.shape != (text_encoder.dim,) or not np.isfinite(x).all():
        raise InputError(f"image_vector must be a finite vector of shape ({text_encoder.dim},), got shape {x.shape}")
    norm = np.linalg.norm(x)
    if norm == 0:
        raise InputError("image_vector is all zeros: it has no direction to explain")
    x = x / norm
    parts = parse_query(query)
    if len(parts) == 1 and parts[0][0] == 1.0:
        text_encoder.check_known(query)  # raises UnknownQueryError for a zero embedding
        return _word_shares(text_encoder, query, x)
    # compound: q = normalise(sum_p w_p u_p) with u_p = se_text(part p), so
    # cos(q, x) = sum_p (w_p / |sum_p w_p u_p|) (u_p . x), and each u_p . x splits into words
    embed_query(query, text_encoder)  # the same checks as search (unknown part, parts cancelling)
    units = np.stack([text_encoder(text).astype(np.float64) for _, text in parts])
    weights = np.array([w for w, _ in parts])
    scale = weights / np.linalg.norm(weights @ units)
    shares: List[Tuple[str, float]] = []
    for (weight, text), factor in zip(parts, scale):
        label = "" if weight == 1 else f"{weight:g}:" if weight > 0 else f"-{abs(weight):g}:" if weight != -1 else "-"
        shares.extend((label + word, factor * share) for word, share in _word_shares(text_encoder, text, x))
    return shares


def _word_shares(text_encoder, text: str, x: np.ndarray) -> List[Tuple[str, float]]:
    """Each distinct word's share of cos(se_text(text), x), x of unit length; they sum to it."""
    tokens = tokenize(text)
    words = list(dict.fromkeys(tokens))  # distinct, in order of first appearance
    counts = {w: tokens.count(w) for w in words}
    rows = [text_encoder.vocabulary.get(w) for w in words]
    terms = np.zeros((len(words), text_encoder.dim))  # c_t w_t g_t / n, one row per word
    for i, (word, row) in enumerate(zip(words, rows)):
        if row is not None:
            terms[i] = counts[word] * text_encoder.word_vectors[row].astype(np.float64) / len(tokens)
    u = text_encoder.common_component
    if u is not None:  # SIF: the projection is linear, so it applies to each term
        u = u.astype(np.float64)
        terms -= np.outer(terms @ u, u)
    length = np.linalg.norm(terms.sum(axis=0))  # |v|
    shares = terms @ x / length
    return [(word, float(share)) for word, share in zip(words, shares)]
