"""Tests of semsearch.text: tokenize, IDF, and the se_text embedding.

Most tests use a hand-built 3-d ``KeyedVectors`` so that expected embeddings can be worked
out by hand; a few use the packaged GloVe-50 vectors.
"""
from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.glove import load_glove
from semsearch.text import TextEmbedder, UnknownQueryError, inverse_document_frequency, tokenize

VAL = Path("coco/annotations/captions_val2017.json")


def tiny_glove() -> KeyedVectors:
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(
        ["cat", "dog", "a", "tree"],
        np.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [2.0, 0.0, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32),
    )
    return kv


# "zebra" has a weight but no vector; "tree" has a vector but no weight.
TINY_IDF = {"cat": 0.5, "dog": 2.0, "a": 0.25, "zebra": 1.0}
TINY = TextEmbedder(TINY_IDF, tiny_glove())


def reference_embedding(text: str, idf: dict, glove) -> np.ndarray:
    """se_text one text at a time, in float64, with plain Python loops."""
    total = np.zeros(glove.vector_size, dtype=np.float64)
    for token in tokenize(text):
        if token in idf and token in glove.key_to_index:
            total += idf[token] * np.asarray(glove[token], dtype=np.float64)
    norm = math.sqrt(float(total @ total))
    return total / norm if norm > 0 else total


# --------------------------------------------------------------------------- tokenize
@pytest.mark.parametrize(
    "text, tokens",
    [
        ("A dog's frisbee-catch, on the BEACH!", ["a", "dogs", "frisbeecatch", "on", "the", "beach"]),
        ("  Two\tcats\n\non a  mat. ", ["two", "cats", "on", "a", "mat"]),
        ("", []),
        ("!!! ... ?", []),
        ("3 dogs & 2 cats", ["3", "dogs", "2", "cats"]),
        ("Café AU lait", ["café", "au", "lait"]),
    ],
)
def test_tokenize_examples(text: str, tokens: list):
    assert tokenize(text) == tokens


@pytest.mark.parametrize("bad", [None, b"a dog", ["a", "dog"], 3])
def test_tokenize_needs_a_string(bad):
    with pytest.raises(TypeError, match="str"):
        tokenize(bad)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_tokenize_properties(text: str):
    tokens = tokenize(text)
    for token in tokens:
        assert token
        assert not any(c in string.punctuation for c in token)
        assert not any(c.isspace() for c in token)
        assert token == token.lower()
    assert tokenize(" ".join(tokens)) == tokens


@given(st.text(alphabet=string.printable))
@settings(max_examples=200, deadline=None)
def test_tokenize_ascii_matches_reference(text: str):
    kept = "".join(c for c in text.lower() if c not in string.punctuation)
    assert tokenize(text) == re.findall(r"[^\s]+", kept)


# --------------------------------------------------------------------------- IDF
def test_idf_by_hand():
    idf = inverse_document_frequency(["a cat", "a dog", "a dog and a cat", "birds"])
    assert set(idf) == {"a", "cat", "dog", "and", "birds"}
    assert idf["a"] == pytest.approx(math.log10(4 / 3))
    assert idf["cat"] == pytest.approx(math.log10(2))
    assert idf["dog"] == pytest.approx(math.log10(2))
    assert idf["and"] == pytest.approx(math.log10(4))
    assert idf["birds"] == pytest.approx(0.6021, abs=1e-4)


def test_idf_counts_a_repeated_word_once_per_text():
    idf = inverse_document_frequency(["dog dog dog dog", "a cat", "a dog"])
    assert idf["dog"] == pytest.approx(math.log10(3 / 2))
    assert idf["cat"] == pytest.approx(math.log10(3))


def test_idf_tokenizes():
    idf = inverse_document_frequency(["The DOG!", "the dog.", "A cat"])
    assert set(idf) == {"the", "dog", "a", "cat"}
    assert idf["dog"] == pytest.approx(math.log10(3 / 2))


def test_idf_of_a_word_in_every_text_is_zero():
    assert inverse_document_frequency(["a dog", "a cat"])["a"] == 0.0


def test_idf_takes_a_generator():
    texts = ["a cat", "a dog", "birds"]
    assert inverse_document_frequency(t for t in texts) == inverse_document_frequency(texts)


def test_idf_empty_corpus():
    with pytest.raises(ValueError, match="empty"):
        inverse_document_frequency([])


WORDS = ["a", "cat", "dog", "tree", "zebra", "the", "on", "grass"]
texts_strategy = st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join), min_size=1, max_size=20)


@given(texts_strategy)
@settings(max_examples=100, deadline=None)
def test_idf_property(texts: list):
    idf = inverse_document_frequency(texts)
    n = len(texts)
    assert set(idf) == {w for t in texts for w in t.split()}
    for word, value in idf.items():
        containing = sum(word in t.split() for t in texts)
        assert value == pytest.approx(math.log10(n / containing))
        assert value >= 0


# --------------------------------------------------------------------------- se_text, tiny GloVe
def test_vocabulary_is_words_with_weight_and_vector():
    assert set(TINY.vocabulary) == {"cat", "dog", "a"}
    assert TINY.dim == 3
    assert TINY.word_vectors.shape == (3, 3)
    np.testing.assert_allclose(TINY.word_vectors[TINY.vocabulary["dog"]], [0.0, 2.0, -2.0])


def test_se_text_by_hand():
    # tokens a, cat, a, dog, dog: 2 * 0.25 * (2, 0, 0) + 0.5 * (1, 2, 0) + 2 * 2.0 * (0, 1, -1) = (1.5, 5, -4)
    expected = np.array([1.5, 5.0, -4.0]) / math.sqrt(1.5**2 + 5**2 + 4**2)
    result = TINY("A cat, a DOG dog!")
    assert result.shape == (3,) and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    np.testing.assert_allclose(TINY.se_text("A cat, a DOG dog!"), expected, rtol=1e-6)


def test_unknown_words_contribute_zero():
    # "zebra" has no vector, "tree" has no weight, "unicorn" has neither
    np.testing.assert_allclose(TINY("cat zebra tree unicorn"), np.array([1.0, 2.0, 0.0]) / math.sqrt(5), rtol=1e-6)
    np.testing.assert_array_equal(TINY("cat zebra tree"), TINY("cat"))
    assert TINY.known_words("The cat, a zebra and a tree") == ["cat", "a", "a"]


def test_rows_have_unit_length():
    out = TINY(["cat", "a dog", "dog dog cat a", "zebra"])
    np.testing.assert_allclose(np.linalg.norm(out[:3], axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("text", ["zebra tree", "unicorn", "Zebra! TREE?"])
def test_text_without_known_words(text: str):
    np.testing.assert_array_equal(TINY(text), np.zeros(3, dtype=np.float32))
    with pytest.raises(UnknownQueryError, match=re.escape(repr(text))):
        TINY.check_known(text)


def test_empty_text():
    np.testing.assert_array_equal(TINY(""), np.zeros(3))
    np.testing.assert_array_equal(TINY("  ,.! "), np.zeros(3))
    with pytest.raises(UnknownQueryError, match="no words"):
        TINY.check_known("")
    with pytest.raises(ValueError):  # UnknownQueryError is a ValueError
        TINY.check_known("?!")


def test_check_known_accepts_a_known_word():
    assert TINY.check_known("a zebra and a cat") is None


def test_lists_of_texts():
    texts = ["cat", "", "zebra", "a dog"]
    out = TINY(texts)
    assert out.shape == (4, 3) and out.dtype == np.float32
    for row, text in zip(out, texts):
        np.testing.assert_allclose(row, reference_embedding(text, TINY_IDF, tiny_glove()), atol=1e-6)
    np.testing.assert_array_equal(TINY(tuple(texts)), out)
    np.testing.assert_array_equal(TINY(t for t in texts), out)
    assert TINY([]).shape == (0, 3)


def test_no_word_in_both_idf_and_glove():
    embedder = TextEmbedder({"zebra": 1.0, "unicorn": 2.0}, tiny_glove())
    assert embedder.vocabulary == {} and embedder.dim == 3
    np.testing.assert_array_equal(embedder(["zebra", "cat"]), np.zeros((2, 3)))
    with pytest.raises(UnknownQueryError):
        embedder.check_known("cat")


def test_fit_uses_idf_of_the_corpus():
    corpus = ["a cat", "a dog", "a dog and a cat", "birds"]
    embedder = TextEmbedder.fit(corpus, tiny_glove())
    assert embedder.word_weights == inverse_document_frequency(corpus)
    np.testing.assert_allclose(embedder("a cat"), reference_embedding("a cat", embedder.word_weights, tiny_glove()), atol=1e-6)


phrases = st.lists(st.sampled_from(WORDS + ["The", "CAT!", "dog,", "unicorn", "a.", "Tree?"]), max_size=10).map(" ".join)


@given(st.lists(phrases, max_size=15))
@settings(max_examples=100, deadline=None)
def test_list_rows_equal_single_texts(texts: list):
    out = TINY(texts)
    assert out.shape == (len(texts), 3)
    for i, text in enumerate(texts):
        single = TINY(text)
        assert single.shape == (3,)
        np.testing.assert_allclose(out[i], single, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(single, reference_embedding(text, TINY_IDF, tiny_glove()), atol=1e-6)


# --------------------------------------------------------------------------- packaged GloVe
@pytest.fixture(scope="module")
def glove():
    return load_glove()


def test_shapes_with_packaged_glove(glove):
    embedder = TextEmbedder.fit(["a dog on the grass", "a cat on a mat", "two dogs", "a red bus"], glove)
    assert embedder.dim == 50
    single = embedder("a dog catching a frisbee")
    assert single.shape == (50,) and single.dtype == np.float32
    assert np.linalg.norm(single) == pytest.approx(1.0, rel=1e-6)
    batch = embedder(["a cat", "two dogs", "qwzxqwzx"])
    assert batch.shape == (3, 50)
    np.testing.assert_array_equal(batch[2], np.zeros(50))
    np.testing.assert_allclose(batch[1], embedder("two dogs"), rtol=1e-6)


def test_default_glove_is_the_packaged_one(glove):
    embedder = TextEmbedder({"dog": 1.0})
    assert embedder.glove is glove
    np.testing.assert_allclose(embedder("dog"), glove["dog"] / np.linalg.norm(glove["dog"]), rtol=1e-5)


def test_real_captions_match_loop_reference(real_data: Path, glove):
    with open(real_data / VAL, encoding="utf-8") as f:
        annotations = sorted(json.load(f)["annotations"], key=lambda a: a["id"])
    corpus = [a["caption"] for a in annotations]
    embedder = TextEmbedder.fit(corpus, glove)
    texts = corpus[:: len(corpus) // 200][:200]
    assert len(texts) == 200
    out = embedder(texts)
    assert out.shape == (200, 50) and out.dtype == np.float32
    reference = np.stack([reference_embedding(t, embedder.word_weights, glove) for t in texts])
    np.testing.assert_allclose(out, reference, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- saving
def test_save_load_round_trip(tmp_path: Path):
    path = tmp_path / "sub" / "idf.json"
    TINY.save(path)
    again = TextEmbedder.load(path, tiny_glove())
    assert again.word_weights == TINY_IDF
    texts = ["A cat, a DOG dog!", "zebra", "", "a tree"]
    np.testing.assert_array_equal(again(texts), TINY(texts))
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["format"] == "semsearch-text-2"
    assert [p.name for p in path.parent.iterdir()] == ["idf.json"]


def test_load_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="idf.json"):
        TextEmbedder.load(tmp_path / "idf.json", tiny_glove())


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": "semsearch-text-2", "word_weights": {"cat"',
        b"[1, 2, 3]",
        b'{"format": "semsearch-text-2", "weights": {}}',
        b'{"format": "semsearch-idf-1", "idf": {}}',
        b"\xff\xfe\x00garbage",
    ],
    ids=["truncated", "a-list", "no-weights", "old-format", "binary"],
)
def test_load_corrupt_file(tmp_path: Path, content: bytes):
    path = tmp_path / "idf.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="idf.json"):
        TextEmbedder.load(path, tiny_glove())


# --------------------------------------------------------------------------- SIF and mean
def test_sif_weights_by_hand():
    from semsearch.text import sif_weights

    weights = sif_weights(["a cat", "a a dog"], a=0.1)  # 5 tokens: p(a) = 3/5, p(cat) = 1/5
    assert weights["a"] == pytest.approx(0.1 / (0.1 + 0.6))
    assert weights["cat"] == pytest.approx(0.1 / (0.1 + 0.2))


def test_sif_embedding_against_a_numpy_reference():
    """Weighted average, minus the projection on the first principal component, unit length."""
    from semsearch.text import sif_weights

    corpus = ["a cat", "a dog", "a dog and a cat", "the cat", "a tree by the dog"]
    glove = tiny_glove()
    embedder = TextEmbedder.fit(corpus, glove, weighting="sif", sif_a=0.01)
    weights = sif_weights(corpus, 0.01)

    def average(text):
        tokens = tokenize(text)
        total = sum((weights[t] * glove[t] for t in tokens if t in weights and t in glove.key_to_index), np.zeros(glove.vector_size))
        return total / max(len(tokens), 1)

    averages = np.stack([average(t) for t in corpus])
    component = np.linalg.svd(averages, full_matrices=False)[2][0]  # first right-singular vector
    np.testing.assert_allclose(np.abs(embedder.common_component @ component), 1.0, atol=1e-5)
    for text in ["a cat", "the dog and a tree"]:
        v = average(text)
        v = v - (v @ component) * component
        np.testing.assert_allclose(embedder(text), v / np.linalg.norm(v), atol=1e-5)


def test_sif_state_round_trips(tmp_path: Path):
    corpus = ["a cat", "a dog", "a dog and a cat", "the cat", "a tree by the dog"]
    embedder = TextEmbedder.fit(corpus, tiny_glove(), weighting="sif")
    embedder.save(tmp_path / "text.json")
    again = TextEmbedder.load(tmp_path / "text.json", tiny_glove())
    assert again.weighting == "sif"
    np.testing.assert_array_equal(again.common_component, embedder.common_component)
    np.testing.assert_array_equal(again(corpus), embedder(corpus))


def test_mean_weighting_is_the_plain_average_direction():
    corpus = ["a cat", "a dog", "the tree"]
    glove = tiny_glove()
    embedder = TextEmbedder.fit(corpus, glove, weighting="mean")
    assert embedder.weighting == "mean" and embedder.common_component is None
    v = sum(glove[t] for t in ["a", "cat", "dog"] if t in glove.key_to_index)
    np.testing.assert_allclose(embedder("a cat dog"), v / np.linalg.norm(v), atol=1e-6)


def test_unknown_weighting_is_an_error():
    with pytest.raises(ValueError, match="weighting"):
        TextEmbedder.fit(["a cat"], tiny_glove(), weighting="tfidf")



def test_embedding_in_blocks_matches_one_block(monkeypatch, glove):
    import semsearch.text as text_module

    texts = [f"a dog and {w} on the beach" for w in ("cat", "frisbee", "sky", "grass", "car")] * 3
    text_encoder = text_module.TextEmbedder.fit(texts, glove)
    whole = text_encoder(texts)
    monkeypatch.setattr(text_module, "EMBED_BLOCK", 4)
    np.testing.assert_allclose(text_encoder(texts), whole, rtol=1e-6, atol=1e-7)


def test_vocabulary_vectors_round_trip(tmp_path, glove):
    from semsearch.text import TextEmbedder, VocabularyVectors

    texts = ["a dog catching a frisbee", "two cats on a sofa", "a red car", "qwzx dogs"]
    text_encoder = TextEmbedder.fit(texts, glove)
    text_encoder.save(tmp_path / "text.json")
    text_encoder.save_vectors(tmp_path / "vectors.npz")
    small = VocabularyVectors.load(tmp_path / "vectors.npz")
    assert sorted(small.key_to_index) == sorted(text_encoder.vocabulary) and "qwzx" not in small.key_to_index
    np.testing.assert_array_equal(small.vectors[small.key_to_index["dog"]], glove["dog"])
    loaded = TextEmbedder.load(tmp_path / "text.json", vectors=tmp_path / "vectors.npz")
    np.testing.assert_array_equal(loaded(texts), text_encoder(texts))
    with np.load(tmp_path / "vectors.npz", allow_pickle=False) as f:  # plain arrays, no pickle
        assert f["words"].dtype.kind == "U"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["dog", "cat", "frisbee", "the", "a", "beach", "zzz", "Dog!", ""]),
                         max_size=12).map(" ".join), min_size=1, max_size=20),
       st.sampled_from(["idf", "sif", "mean"]))
def test_a_few_texts_embed_exactly_as_among_many(texts, weighting):
    """Up to FEW_TEXTS texts (a query) are summed word by word, more through a sparse matrix:
    the same float32 sums in the same order, so a query embeds bit for bit as a caption does."""
    from semsearch import text as text_module

    words = ["dog", "cat", "frisbee", "the", "a", "beach", "catching", "and", "on"]
    glove = KeyedVectors(vector_size=50)
    glove.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 50)).astype(np.float32))
    corpus = ["a dog catching a frisbee", "the cat on the beach", "a dog and a cat", "frisbee on the beach"]
    encoder = TextEmbedder.fit(corpus, glove, weighting=weighting)
    repeated = texts * (text_module.FEW_TEXTS + 1)  # more than FEW_TEXTS: the sparse route
    sums_many = encoder._weighted_averages(repeated)[: len(texts)]
    sums_few = np.concatenate([encoder._weighted_averages(texts[i : i + 2]) for i in range(0, len(texts), 2)])
    np.testing.assert_array_equal(sums_few, sums_many)
    many, few = encoder(repeated)[: len(texts)], encoder(texts[0])
    if weighting == "sif":  # its projection (a BLAS product) rounds by batch size, as it always did
        np.testing.assert_allclose(few, many[0], atol=1e-7)
    else:
        np.testing.assert_array_equal(few, many[0])
