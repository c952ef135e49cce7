"""More like this, less like this: relevance feedback on a search (Rocchio, in the search's space).

A person marks some results good and some bad; the next search uses

    q' = unit(alpha * unit(q) + beta * mean(good) - gamma * mean(bad))

where ``q`` is the first query's vector and ``good`` / ``bad`` the marked images' unit
embeddings (the same space the database is searched in). :data:`BETA` and :data:`GAMMA` were
chosen by ``benchmarks/feedback.py``: simulated feedback on the data folder's 239 images, 5
folds x 3 seeds, each held-out caption a query whose one relevant image is marked good when it
is in the first round's top 10, with the top 3 non-relevant images of the top 10 marked bad.
Round 1's MRR 0.475 (48 held-out images a fold) became 0.873 (+0.398, sd 0.029, higher in 15
of 15 runs); on the queries whose relevant image was not in the top 10, where only "less like
this" acts, 0.060 became 0.080 (+0.020, sd 0.022, 13 of 15). gamma is the value best on those
queries; beta the smallest within 1% of the best overall MRR (``benchmarks/feedback.json``).

Example
-------
>>> database = ss.sample.load_database()                                # doctest: +SKIP
>>> keys, _ = database.query("a dog", k=9)                               # doctest: +SKIP
>>> keys2, scores2 = feedback_query(database, "a dog", good=[keys[2]], bad=[keys[0]], k=9)  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from semsearch.errors import InputError

#: Weight of the first query.
ALPHA = 1.0
#: Weight of the mean of the images marked good ("more like this").
BETA = 0.5
#: Weight of the mean of the images marked bad ("less like this").
GAMMA = 0.5


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _rows(vectors, dim: int, what: str) -> np.ndarray:
    if vectors is None:
        return np.zeros((0, dim), np.float64)
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim == 1 and x.size == dim:
        x = x[None]
    if x.ndim != 2 or (len(x) and x.shape[1] != dim):
        raise InputError(f"{what} must be (n, {dim}) vectors, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{what} vectors contain NaN or inf")
    return _unit(x)


def rocchio(query, good=None, bad=None, *, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> np.ndarray:
    """The feedback query ``unit(alpha * unit(q) + beta * mean(good) - gamma * mean(bad))``, shape (dim,).

    Parameters
    ----------
    query : (dim,) array
        The first round's query vector.
    good, bad : (n, dim) arrays, optional
        Embeddings of the images marked good / bad (each made unit; none: that term is 0).
    alpha, beta, gamma : float
        Non-negative weights (defaults :data:`ALPHA`, :data:`BETA`, :data:`GAMMA`).

    >>> [round(float(v), 3) for v in rocchio(np.array([1.0, 0.0]), good=[[0.0, 1.0]], beta=1.0)]
    [0.707, 0.707]
    >>> [round(float(v), 3) for v in rocchio(np.array([1.0, 0.0]), bad=[[0.6, 0.8]], gamma=0.5)]
    [0.868, -0.496]
    """
    q = np.asarray(query, dtype=np.float64)
    if q.ndim != 1 or not np.isfinite(q).all() or not q.any():
        raise InputError(f"the query must be one finite, non-zero vector, got shape {q.shape}")
    for name, weight in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (np.isfinite(weight) and weight >= 0):
            raise InputError(f"{name} must be a non-negative number, got {weight}")
    good, bad = _rows(good, len(q), "good"), _rows(bad, len(q), "bad")
    moved = alpha * _unit(q)
    if len(good):
        moved = moved + beta * good.mean(axis=0)
    if len(bad):
        moved = moved - gamma * bad.mean(axis=0)
    if np.linalg.norm(moved) < 1e-9:
        raise InputError("the marked images cancel the query out: mark fewer bad ones, or lower gamma")
    return _unit(moved).astype(np.float32)


def query_vector(database, query) -> np.ndarray:
    """The unit vector ``database`` searches with for ``query`` (text, compound text, or a vector)."""
    if isinstance(query, str):
        from semsearch.query import embed_queries

        if database.text_encoder is None:
            raise InputError("this database has no text encoder: pass a query vector")
        return embed_queries([query], database.text_encoder)[0]
    return _unit(np.asarray(query, dtype=np.float64)).astype(np.float32)


def feedback_query(database, query, good: Sequence = (), bad: Sequence = (), k: int = 9, *,
                   where: Optional[np.ndarray] = None, **weights):
    """Search ``database`` again with ``query`` moved toward the ``good`` images and away from the ``bad`` ones.

    Parameters
    ----------
    database : ImageDatabase
    query : str or (dim,) array
        The first round's query.
    good, bad : sequences of keys
        Images of the database marked good / bad (a key in both is refused).
    k : int
    where : (N,) bool, optional
        A filter (see :meth:`ImageDatabase.query`).
    **weights
        ``alpha``, ``beta``, ``gamma`` for :func:`rocchio`.

    Returns
    -------
    keys : (k,), scores : (k,)
        As :meth:`ImageDatabase.query`.
    """
    return database.query(feedback_vector(database, query, good, bad, **weights), k=k, where=where)


def feedback_vector(database, query, good: Sequence = (), bad: Sequence = (), **weights) -> np.ndarray:
    """The unit query vector (dim,) of :func:`feedback_query`: ``query`` moved by :func:`rocchio`
    toward the ``good`` images' vectors and away from the ``bad`` ones' (a key in both is refused)."""
    both = set(map(str, good)) & set(map(str, bad))
    if both:
        raise InputError(f"marked both good and bad: {sorted(both)}")
    return rocchio(query_vector(database, query),
                   [database.vector_of(key) for key in good] or None,
                   [database.vector_of(key) for key in bad] or None, **weights)
