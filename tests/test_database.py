import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semsearch.coco import UnknownIdError
from semsearch.database import ImageDatabase, top_k
from semsearch.descriptors import Descriptors
from semsearch.model import Autoembedder
from semsearch.text import TextEmbedder, UnknownQueryError


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def database():
    rng = np.random.default_rng(0)
    return ImageDatabase(np.arange(1000, 1200), unit(rng.normal(size=(200, 50))))


@settings(max_examples=100, deadline=None)
@given(
    scores=arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 60)), elements=st.floats(-1, 1, width=32)),
    k=st.integers(1, 70),
)
def test_top_k_matches_a_full_sort(scores, k):
    best = top_k(scores, k)
    k = min(k, scores.shape[1])
    assert best.shape == (len(scores), k)
    reference = -np.sort(-scores, axis=1)[:, :k]  # the k largest, descending
    np.testing.assert_array_equal(np.take_along_axis(scores, best, axis=1), reference)
    assert all(len(set(row)) == k for row in best)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(1, 3),
    n=st.integers(1, 3000),
    k=st.integers(1, 40),
    levels=st.integers(2, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_k_of_long_rows_with_ties_equals_a_stable_sort(rows, n, k, levels, seed):
    """One row (a single query) and several: the grouped path, ties to the lower column."""
    scores = np.random.default_rng(seed).integers(0, levels, size=(rows, n)).astype(np.float32) / levels
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, n)]
    np.testing.assert_array_equal(top_k(scores, k), expected)


def test_query_returns_best_first_with_cosine_scores(database):
    query = database.vectors[17] + 0.1 * database.vectors[3]
    ids, scores = database.query(query, k=5)
    assert ids.shape == (5,) and scores.shape == (5,)
    assert ids[0] == 1017
    assert np.all(np.diff(scores) <= 0)
    expected = database.vectors[ids - 1000] @ unit(query)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    all_scores = database.vectors @ unit(query)
    assert scores[0] == pytest.approx(all_scores.max())


def test_query_vector_is_normalised(database):
    ids_a, scores_a = database.query(database.vectors[5], k=3)
    ids_b, scores_b = database.query(7.5 * database.vectors[5], k=3)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_allclose(scores_a, scores_b, rtol=1e-6)
    assert scores_a[0] == pytest.approx(1.0, abs=1e-6)


def test_batch_equals_single_queries(database):
    queries = np.random.default_rng(1).normal(size=(7, 50))
    ids, scores = database.query(queries, k=4)
    assert ids.shape == (7, 4)
    for q, row_ids, row_scores in zip(queries, ids, scores):
        single_ids, single_scores = database.query(q, k=4)
        np.testing.assert_array_equal(row_ids, single_ids)
        np.testing.assert_allclose(row_scores, single_scores, rtol=1e-6)


def test_long_database_queries_equal_a_numpy_ranking():
    """5,000 images (the grouped top-k path), one query and a batch of 70 (two blocks of 64),
    filtered and not: the ids of a full stable sort of ``V @ q`` and its scores."""
    rng = np.random.default_rng(3)
    vectors = unit(rng.normal(size=(5000, 50))).astype(np.float32)
    database = ImageDatabase(np.arange(5000) * 7, vectors)
    queries = unit(rng.normal(size=(70, 50))).astype(np.float32)
    where = rng.random(5000) < 0.3
    scores = queries @ vectors.T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :20]
    ids, got_scores = database.query(queries, k=20)
    np.testing.assert_array_equal(ids, expected * 7)
    np.testing.assert_allclose(got_scores, np.take_along_axis(scores, expected, axis=1), rtol=1e-5, atol=1e-6)
    one_ids, _ = database.query(queries[5], k=20)
    np.testing.assert_array_equal(one_ids, expected[5] * 7)
    kept = np.flatnonzero(where)
    expected_kept = kept[np.argsort(-scores[:, kept], axis=1, kind="stable")[:, :20]]
    np.testing.assert_array_equal(database.query(queries, k=20, where=where)[0], expected_kept * 7)


def test_k_larger_than_database(database):
    ids, _ = database.query(database.vectors[0], k=500)
    assert len(ids) == 200 and len(set(ids)) == 200


@pytest.fixture
def tiny_embedder():
    glove = KeyedVectors(vector_size=3)
    glove.add_vectors(["dog", "cat", "beach"], np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    return TextEmbedder({"dog": 1.0, "cat": 1.0, "beach": 0.5, "a": 0.0}, glove)


def test_text_queries(tiny_embedder):
    database = ImageDatabase([7, 8, 9], np.eye(3), text_encoder=tiny_embedder)
    ids, scores = database.query("A dog!", k=2)
    assert ids[0] == 7 and scores[0] == pytest.approx(1.0)
    ids, _ = database.query(["cat", "beach dog"], k=1)
    np.testing.assert_array_equal(ids[:, 0], [8, 7])


@pytest.mark.parametrize("text", ["", "   ", "zebra giraffe", "!!!"])
def test_query_with_no_known_word_is_a_clear_error(tiny_embedder, text):
    database = ImageDatabase([7, 8, 9], np.eye(3), text_encoder=tiny_embedder)
    with pytest.raises(UnknownQueryError, match="cannot embed"):
        database.query(text)


def test_query_errors(database):
    with pytest.raises(ValueError, match="shape"):
        database.query(np.ones(49))
    with pytest.raises(ValueError, match="all zeros"):
        database.query(np.zeros(50))
    with pytest.raises(ValueError, match="NaN"):
        database.query(np.full(50, np.nan))
    with pytest.raises(ValueError, match="k must be"):
        database.query(np.ones(50), k=0)
    with pytest.raises(ValueError, match="no text encoder"):
        database.query("a dog")
    with pytest.raises(UnknownIdError, match="4242"):
        database.vector_of(4242)


def test_construction_errors():
    with pytest.raises(ValueError, match="unique"):
        ImageDatabase([1, 1], np.eye(2))
    with pytest.raises(ValueError, match="N ids"):
        ImageDatabase([1, 2, 3], np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        ImageDatabase([1, 2], np.array([[1.0, 0], [np.nan, 0]]))


def test_build_embeds_every_descriptor_once():
    rng = np.random.default_rng(0)
    descriptors = Descriptors({i: rng.normal(size=(1, 12)) for i in (5, 3, 9)})
    model = Autoembedder(12, seed=0)
    database = ImageDatabase.build(model, descriptors)
    np.testing.assert_array_equal(database.keys, [3, 5, 9])
    np.testing.assert_allclose(database.vectors, model.embed(descriptors.vectors), rtol=1e-5)


def test_save_load_round_trip(tmp_path, database):
    database.save(tmp_path / "db.npz")
    loaded = ImageDatabase.load(tmp_path / "db.npz")
    np.testing.assert_array_equal(loaded.keys, database.keys)
    np.testing.assert_allclose(loaded.vectors, database.vectors, rtol=1e-6, atol=1e-7)  # re-normalised on load
    with pytest.raises(FileNotFoundError, match="database"):
        ImageDatabase.load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a semsearch image database file"):
        ImageDatabase.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------ path keys (photo databases)


def test_path_keys_round_trip_and_query(tmp_path):
    from semsearch.database import as_keys
    from semsearch.errors import InputError
    from semsearch.errors import UnknownIdError

    keys = ["IMG 1.jpg", "2023/beach/ü.png", "z.webp"]
    vectors = np.eye(3, dtype=np.float32)
    db = ImageDatabase(keys, vectors)
    found, scores = db.query(np.array([0.0, 1.0, 0.1]), k=2)
    assert found.tolist() == ["2023/beach/ü.png", "z.webp"]
    db.save(tmp_path / "db.npz")
    back = ImageDatabase.load(tmp_path / "db.npz")
    assert back.keys.tolist() == keys and back.keys.dtype.kind == "U"
    np.testing.assert_array_equal(back.vector_of("z.webp"), [0, 0, 1])
    with pytest.raises(UnknownIdError, match="'nope.jpg'"):
        back.vector_of("nope.jpg")
    with pytest.raises(InputError, match="unique"):
        ImageDatabase(["a", "a"], np.eye(2))
    with pytest.raises(InputError, match="all COCO ids"):
        as_keys([1, "a.jpg", object()])
    assert ImageDatabase([139, 285], np.eye(2)).keys.dtype == np.int64
