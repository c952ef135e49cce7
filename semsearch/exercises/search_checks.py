"""Check a team's top-k and image database against :func:`semsearch.database.top_k` and
:meth:`semsearch.database.ImageDatabase.build`.

- ``top_k(scores (Q, N), k) -> (Q, min(k, N))`` column indices, best first. Equal scores may
  come in any order: only the scores at the returned columns are compared.
- ``build_database(model, descriptors) -> ImageDatabase`` (or a pair ``(image_ids, vectors)``):
  every image embedded once with the model, as unit rows (so a dot product is a cosine).

Example
-------
>>> from semsearch.database import top_k
>>> check_top_k(top_k, verbose=False).passed
True
"""
from __future__ import annotations

from typing import Callable, Iterator, Tuple

import numpy as np

from semsearch.exercises.checking import Checker, as_float_array, close, rounded, run_check
from semsearch.exercises.report import CheckReport


def top_k_cases() -> Iterator[Tuple[str, np.ndarray, int]]:
    """(name, scores (Q, N), k): fixed cases, then generated ones of growing size."""
    yield "one query", np.array([[0.1, 0.9, 0.5]]), 2
    yield "one query, k = 1", np.array([[0.3, -0.2, 0.8, 0.1]]), 1
    yield "equal scores", np.array([[0.5, 0.9, 0.5, 0.1]]), 3
    yield "k larger than the number of images", np.array([[0.2, 0.7]]), 5
    yield "two queries", np.array([[0.1, 0.9, 0.5, 0.3], [0.8, 0.2, 0.6, 0.4]]), 2
    rng = np.random.default_rng(0)
    for n_queries, n_images in ((1, 5), (2, 8), (3, 20), (4, 50), (2, 300)):
        for k in (1, 3, 10):
            yield f"generated, {n_queries} queries among {n_images} images", rounded(rng, (n_queries, n_images), decimals=1), k


def _diagnose_top_k(scores: np.ndarray, k: int, got: np.ndarray) -> str:
    want = min(k, scores.shape[1])
    if got.ndim == 2 and got.shape[1] == want + 1:
        return f"k = {k} asks for {want} results, you returned {want + 1}: slice [:, :k], not [:, :k + 1]"
    if got.ndim != 2 or got.shape != (len(scores), want):
        return f"return one row of min(k, N) = {want} columns per query, shape ({len(scores)}, {want})"
    rows = np.arange(len(scores))[:, None]
    if close(scores[rows, got], np.sort(scores, axis=1)[:, :want]):
        return "these are the k *worst* images: np.argsort sorts ascending, so reverse it (np.argsort(-scores)) for best first"
    if close(np.sort(scores[rows, got], axis=1), np.sort(np.sort(scores, axis=1)[:, ::-1][:, :want], axis=1)):
        return "the right images in the wrong order: best first, i.e. sorted by score, highest first"
    return "the columns of the k highest scores of each row, highest first"


def _top_k_battery(top_k: Callable, c: Checker) -> None:
    for name, scores, k in top_k_cases():
        c.case(f"{name}: top_k(scores={scores.tolist() if scores.size <= 24 else f'array of shape {scores.shape}'}, k={k})")
        out = c.call(top_k, scores.copy(), k)
        want = min(k, scores.shape[1])
        expected_scores = np.sort(scores, axis=1)[:, ::-1][:, :want]
        got = c.read(lambda o: np.asarray(o), out, "column indices", "return an array of column indices")
        c.expect(got.dtype.kind in "iu" or (got.size == 0), "integer column indices", got,
                 "return the columns (positions) of the best scores, as integers, not the scores themselves")
        ok_shape = got.shape == (len(scores), want) and bool(((got >= 0) & (got < scores.shape[1])).all())
        c.expect(ok_shape, f"shape {(len(scores), want)}", got if got.size <= 24 else f"shape {got.shape}",
                 lambda: _diagnose_top_k(scores, k, got))
        c.expect(all(len(set(row)) == len(row) for row in got.tolist()), "distinct columns", got,
                 "each image can appear only once in a query's results")
        rows = np.arange(len(scores))[:, None]
        c.expect(close(scores[rows, got], expected_scores), f"columns with scores {expected_scores.tolist()}",
                 f"columns {got.tolist()} with scores {scores[rows, got].tolist()}" if got.size <= 24 else "other columns",
                 lambda: _diagnose_top_k(scores, k, got))
    c.passed("5 fixed and 15 generated cases: best first, exactly min(k, N) results, equal scores in any order")


def check_top_k(top_k: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``top_k(scores (Q, N), k) -> (Q, min(k, N))`` column indices, best first."""
    return run_check("top_k", lambda c: _top_k_battery(top_k, c), verbose)


# ----------------------------------------------------------------------------- database


def database_ids_vectors(database) -> Tuple[np.ndarray, np.ndarray]:
    """A team's database as ``(image_ids (N,), vectors (N, E))``: an ImageDatabase-like object or a pair."""
    keys = getattr(database, "keys", None)
    if keys is None or callable(keys):  # a team's own object may call them image_ids (a dict's keys() is no array)
        keys = getattr(database, "image_ids", None)
    if keys is not None and hasattr(database, "vectors"):
        ids, vectors = keys, database.vectors
    else:
        ids, vectors = database
    return np.asarray(ids).astype(np.int64), as_float_array(vectors)


def _database_battery(build_database: Callable, c: Checker) -> None:
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder, embed_images

    rng = np.random.default_rng(1)
    for n, dim, out_dim in ((1, 4, 3), (3, 5, 4), (6, 8, 5), (40, 16, 7)):
        ids = rng.choice(np.arange(100, 1000), size=n, replace=False)
        descriptors = Descriptors({int(i): rounded(rng, dim, 0, 2).astype(np.float32) for i in ids})
        model = Autoembedder(dim, out_dim, seed=int(n))
        expected = embed_images(model, descriptors.vectors)
        c.case(f"{n} images with {dim}-d descriptors, a model to {out_dim}-d (ids {sorted(ids.tolist())[:6]}...)")
        out = c.call(build_database, model, descriptors)
        got_ids, got = c.read(database_ids_vectors, out, "an ImageDatabase, or (image_ids, vectors)",
                              "return the database: an object with keys (the image ids) and vectors, or a pair (image_ids, vectors)")
        c.expect(sorted(got_ids.tolist()) == descriptors.ids.tolist() and got.shape == expected.shape,
                 f"{n} ids {descriptors.ids.tolist()[:6]} and vectors of shape {expected.shape}",
                 f"ids {got_ids.tolist()[:6]} and vectors of shape {got.shape}",
                 "one row per image of the descriptors, E = the model's output size")
        got = got[np.argsort(got_ids)]
        norms = np.linalg.norm(got, axis=1)
        if not np.allclose(norms, 1, atol=1e-4):
            direction = got / np.maximum(norms, 1e-12)[:, None]
            hint = ("the vectors are not unit length: normalise each embedding (row) so that a dot product is a cosine"
                    if close(direction, expected, atol=1e-4) else "embed each image with the model: model(descriptors), unit rows")
            c.fail(f"unit rows {expected[0]}...", f"row norms {norms}", hint)
        c.expect(close(got, expected, atol=1e-4), expected, got,
                 "the row of each image id must be the model's embedding of that image's descriptor")
    c.passed("4 databases (1 to 40 images, any sizes D and E): every image embedded once, as unit rows, keyed by its id")


def check_build_database(build_database: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``build_database(model, descriptors) -> ImageDatabase or (image_ids, vectors)``."""
    return run_check("build_database", lambda c: _database_battery(build_database, c), verbose)
