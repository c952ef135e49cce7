"""ImageDatabase with an approximate index (semsearch.routes.ann, needs hnswlib)."""
import numpy as np
import pytest

pytest.importorskip("hnswlib")

from semsearch import database as database_module
from semsearch.database import ImageDatabase, index_path_of


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def database():
    rng = np.random.default_rng(0)
    return ImageDatabase(np.arange(1000, 3000), unit(rng.normal(size=(2000, 50))))


def test_approximate_on_request_agrees_with_exact_search(database):
    queries = unit(np.random.default_rng(1).normal(size=(20, 50)))
    exact_ids, _ = database.query(queries, k=5, approximate=False)
    assert database.ann is None
    with pytest.warns(UserWarning, match="building an approximate index of 2000 images"):
        ids, scores = database.query(queries, k=5, approximate=True)
    assert len(database.ann) == len(database)
    assert np.mean([len(np.intersect1d(a, b)) for a, b in zip(ids, exact_ids)]) / 5 >= 0.95
    single_ids, single_scores = database.query(queries[0], k=5, approximate=True)
    np.testing.assert_array_equal(single_ids, ids[0])
    np.testing.assert_array_equal(single_scores, scores[0])


def test_index_is_used_from_the_size_threshold(database, monkeypatch):
    database.build_ann()
    calls = []
    monkeypatch.setattr(database.ann, "query", lambda *args: calls.append(args) or (np.zeros((1, 3), int), np.zeros((1, 3))))
    monkeypatch.setattr(database_module, "SIZE_THRESHOLD", len(database) + 1)
    database.query(database.vectors[0], k=3)
    assert calls == []  # below the threshold: exact search
    monkeypatch.setattr(database_module, "SIZE_THRESHOLD", len(database))
    database.query(database.vectors[0], k=3)
    assert len(calls) == 1


def test_without_hnswlib_large_databases_search_exactly(database, monkeypatch):
    monkeypatch.setattr(database_module, "SIZE_THRESHOLD", len(database))
    monkeypatch.setattr(database_module.importlib.util, "find_spec", lambda name: None)
    with pytest.warns(UserWarning, match="searching exactly"):
        ids, _ = database.query(database.vectors[7], k=1)
    assert ids[0] == database.keys[7] and database.ann is None


def test_index_saved_beside_the_database(tmp_path, database):
    path = tmp_path / "db.npz"
    database.build_ann()
    database.save(path)
    assert index_path_of(path).is_file()
    loaded = ImageDatabase.load(path)
    query = database.vectors[:4] + 0.1
    for a, b in zip(database.query(query, k=7, approximate=True), loaded.query(query, k=7, approximate=True)):
        np.testing.assert_array_equal(a, b)
    ImageDatabase(database.keys, database.vectors).save(path)  # no index: the stale one goes
    assert not index_path_of(path).exists() and ImageDatabase.load(path).ann is None


def test_index_must_match_the_vectors(database):
    index = database.build_ann()
    with pytest.raises(ValueError, match="the index holds"):
        ImageDatabase(database.keys[:10], database.vectors[:10], ann=index)
