"""Tests of semsearch.routes.ann.ApproximateIndex against exact search (needs hnswlib)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hnswlib")

from semsearch.database import ImageDatabase
from semsearch.routes.ann import ApproximateIndex

N, DIM, K = 20_000, 50, 10


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    return unit_vectors(N, DIM, seed=0)


@pytest.fixture(scope="module")
def queries():
    return unit_vectors(300, DIM, seed=1)


@pytest.fixture(scope="module")
def index(data):
    # A lighter graph than the defaults (m=48, ef_construction=200), to build in seconds:
    # 20,000 vectors need less than the 1,000,000 of the benchmark.
    return ApproximateIndex.build(data, m=16, ef_construction=100, ef=200, n_threads=2, seed=0)


def test_recall_at_10_against_exact_search(data, queries, index):
    exact_ids, exact_scores = ImageDatabase(np.arange(N), data).query(queries, k=K)
    rows, scores = index.query(queries, k=K)
    assert rows.shape == scores.shape == (len(queries), K)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    recall = np.mean([len(np.intersect1d(r, e)) / K for r, e in zip(rows, exact_ids)])
    assert recall >= 0.95
    # The scores are the true cosines of the rows found, best first, never above the exact k-th best.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, data[rows]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert (scores[:, 0] <= exact_scores[:, 0] + 1e-5).all()


def test_indexed_vectors_find_themselves(data, index):
    rows, scores = index.query(data[:50], k=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(50))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_single_query_and_normalisation(data, queries, index):
    rows, scores = index.query(queries[0], k=5)
    assert rows.shape == scores.shape == (5,)
    rows_scaled, scores_scaled = index.query(3.0 * queries[:1], k=5)
    np.testing.assert_array_equal(rows_scaled[0], rows)
    np.testing.assert_allclose(scores_scaled[0], scores, atol=1e-6)


def test_save_load_gives_identical_results(tmp_path, queries, index):
    path = tmp_path / "images.npz.index"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["images.npz.index"]  # no temporary file left
    loaded = ApproximateIndex.load(path)
    assert (len(loaded), loaded.dim, loaded.ef) == (len(index), index.dim, index.ef)
    for a, b in zip(index.query(queries, k=K), loaded.query(queries, k=K)):
        np.testing.assert_array_equal(a, b)


def test_build_is_deterministic_with_one_thread():
    data, queries = unit_vectors(2000, 8, seed=2), unit_vectors(20, 8, seed=3)
    a = ApproximateIndex.build(data, ef_construction=20, ef=10, seed=5)
    b = ApproximateIndex.build(data, ef_construction=20, ef=10, seed=5)
    np.testing.assert_array_equal(a.query(queries, k=10)[0], b.query(queries, k=10)[0])


def test_small_index_and_k_capped():
    vectors = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    index = ApproximateIndex.build(vectors)
    rows, scores = index.query(np.array([1.0, 0.2]), k=10)
    assert rows.tolist() == [0, 2, 1]
    norm = np.hypot(1, 0.2)
    np.testing.assert_allclose(scores, [1 / norm, 1.2 / norm / np.sqrt(2), 0.2 / norm], rtol=1e-5)


def test_errors(tmp_path, index):
    with pytest.raises(ValueError, match=r"shape \(N, 50\)"):
        index.query(np.ones(49), k=3)
    with pytest.raises(ValueError, match=r"shape \(N, 50\)"):
        index.query(np.ones((2, 51)), k=3)
    with pytest.raises(ValueError, match="k must be"):
        index.query(np.ones(50), k=0)
    with pytest.raises(ValueError, match="NaN"):
        index.query(np.full(50, np.nan), k=3)
    with pytest.raises(ValueError, match="all zeros"):
        index.query(np.zeros(50), k=3)
    with pytest.raises(ValueError, match="NaN"):
        ApproximateIndex.build(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="shape"):
        ApproximateIndex.build(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="m >= 2"):
        ApproximateIndex.build(np.eye(3), m=1)
    with pytest.raises(ValueError, match="ef must be"):
        index.ef = 0
    with pytest.raises(FileNotFoundError):
        ApproximateIndex.load(tmp_path / "missing.index")
    (tmp_path / "bad.index").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a semsearch approximate index"):
        ApproximateIndex.load(tmp_path / "bad.index")
