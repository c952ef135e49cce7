"""Tests for semsearch.routes.explain: word shares that add up to the database's cosine score."""
from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.database import ImageDatabase
from semsearch.errors import InputError, InputTypeError, UnknownQueryError
from semsearch.routes.explain import explain, is_decomposable
from semsearch.text import TextEmbedder

WORDS = ["dog", "cat", "beach", "a", "on", "red", "bus", "the", "frisbee", "grass"]
CORPUS = [
    "a dog on the beach", "a cat on a red bus", "the dog catching a frisbee", "a red bus",
    "a cat on the grass", "dog and cat", "the beach", "a frisbee on the grass",
]


def _glove(dim: int = 8) -> KeyedVectors:
    kv = KeyedVectors(vector_size=dim)
    kv.add_vectors(WORDS, np.random.default_rng(1).normal(size=(len(WORDS), dim)).astype(np.float32))
    return kv


GLOVE = _glove()
ENCODERS = {w: TextEmbedder.fit(CORPUS, GLOVE, weighting=w) for w in ("idf", "sif", "mean")}


def test_by_hand_mean_weighting():
    """Two orthogonal words, mean weights: shares are (g_t . x) / |g_1 + g_2| each."""
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["dog", "beach"], np.array([[3.0, 0.0], [0.0, 4.0]], dtype=np.float32))
    encoder = TextEmbedder({"dog": 1.0, "beach": 1.0}, kv, weighting="mean")
    x = np.array([0.6, 0.8])
    shares = explain(encoder, "dog beach", x)
    # v = (3, 4) / 2, |v| = 2.5; dog: (1.5, 0) . x / 2.5 = 0.36; beach: (0, 2) . x / 2.5 = 0.64
    assert [w for w, _ in shares] == ["dog", "beach"]
    np.testing.assert_allclose([s for _, s in shares], [0.36, 0.64], atol=1e-7)


@pytest.mark.parametrize("weighting", ["idf", "sif", "mean"])
def test_shares_sum_to_the_database_score(weighting):
    encoder = ENCODERS[weighting]
    vectors = np.random.default_rng(0).normal(size=(30, GLOVE.vector_size))
    database = ImageDatabase(np.arange(30) + 100, vectors, encoder)
    for query in ["a dog on the beach", "red bus red bus cat", "the frisbee", "dog zebra unknownword"]:
        ids, scores = database.query(query, k=30)
        for image_id, score in zip(ids, scores):
            shares = explain(encoder, query, database.vector_of(image_id))
            assert sum(s for _, s in shares) == pytest.approx(float(score), abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(WORDS + ["zebra", "xyz"]), min_size=1, max_size=12),
    weighting=st.sampled_from(["idf", "sif", "mean"]),
    seed=st.integers(0, 10**6),
)
def test_shares_sum_to_cosine_for_any_query(tokens, weighting, seed):
    encoder = ENCODERS[weighting]
    query = " ".join(tokens)
    x = np.random.default_rng(seed).normal(size=GLOVE.vector_size)
    q = encoder(query)
    if not np.any(q):
        with pytest.raises(UnknownQueryError):
            explain(encoder, query, x)
        return
    shares = explain(encoder, query, x)
    assert [w for w, _ in shares] == list(dict.fromkeys(tokens))
    cosine = float(q.astype(np.float64) @ (x / np.linalg.norm(x)))
    assert sum(s for _, s in shares) == pytest.approx(cosine, abs=1e-6)
    for word, share in shares:  # unknown words add exactly nothing
        if word not in encoder.vocabulary:
            assert share == 0.0


def test_repeated_word_counts_twice():
    encoder = ENCODERS["mean"]
    x = np.random.default_rng(3).normal(size=GLOVE.vector_size)
    once = dict(explain(encoder, "dog cat", x))
    twice = dict(explain(encoder, "dog dog cat", x))
    # v_twice = (2 g_dog + g_cat) / 3: the dog share is twice the cat share's ratio of dot products
    ratio_once = once["dog"] / once["cat"]
    assert twice["dog"] / twice["cat"] == pytest.approx(2 * ratio_once)


def test_errors():
    encoder = ENCODERS["idf"]
    with pytest.raises(UnknownQueryError, match="zebra"):
        explain(encoder, "zebra", np.ones(GLOVE.vector_size))
    with pytest.raises(InputError, match="shape"):
        explain(encoder, "dog", np.ones(3))
    with pytest.raises(InputError, match="all zeros"):
        explain(encoder, "dog", np.zeros(GLOVE.vector_size))
    with pytest.raises(InputError, match="finite"):
        explain(encoder, "dog", np.full(GLOVE.vector_size, np.nan))
    with pytest.raises(InputTypeError, match="str"):
        explain(encoder, ["dog"], np.ones(GLOVE.vector_size))


def test_sentence_encoder_is_refused():
    class SentenceEncoder:  # stands in for MiniLMEncoder: any encoder that is not a word sum
        dim = 8

    assert is_decomposable(ENCODERS["idf"]) and not is_decomposable(SentenceEncoder())
    with pytest.raises(InputError, match="cannot be split into word shares"):
        explain(SentenceEncoder(), "dog", np.ones(8))


@pytest.mark.parametrize("query", ["dog + beach - grass", "2:dog on a beach + 0.5:sky", "- cat + dog"])
def test_compound_query_shares_sum_to_the_search_score(query):
    """Each part's words carry their part's sign and weight; all shares still sum to the score."""
    from semsearch.query import embed_query

    text_encoder = _compound_encoder()
    x = np.random.default_rng(1).normal(size=text_encoder.dim)
    x /= np.linalg.norm(x)
    shares = explain(text_encoder, query, x)
    assert sum(s for _, s in shares) == pytest.approx(float(embed_query(query, text_encoder) @ x), abs=1e-6)
    if query.startswith("dog +"):
        assert [w for w, _ in shares] == ["dog", "beach", "-grass"]
    if query.startswith("2:"):
        assert [w for w, _ in shares][:4] == ["2:dog", "2:on", "2:a", "2:beach"] and shares[-1][0] == "0.5:sky"


def _compound_encoder():
    from semsearch.text import TextEmbedder

    words = ["dog", "beach", "grass", "cat", "sky", "on", "a"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 6)).astype(np.float32)

    class Glove:  # the two attributes TextEmbedder reads
        key_to_index = {w: i for i, w in enumerate(words)}
        vector_size = 6

    Glove.vectors = vectors
    return TextEmbedder({w: 1.0 + i / 10 for i, w in enumerate(words)}, Glove())
