"""Compound queries: the parser, and the combined vector against hand-computed sums."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from semsearch.database import ImageDatabase
from semsearch.errors import InputError, InputTypeError, UnknownQueryError
from semsearch.query import embed_queries, embed_query, is_compound, parse_query


class FakeEncoder:
    """Each known word is a fixed vector; a text is the unit sum of its known words' vectors."""

    WORDS = {"dog": [1.0, 0, 0], "beach": [0, 2.0, 0], "grass": [0, 0, 3.0], "sky": [1.0, 1.0, 0]}
    dim = 3

    def __call__(self, texts):
        texts = [texts] if isinstance(texts, str) else texts
        out = np.zeros((len(texts), 3))
        for i, text in enumerate(texts):
            for word in text.split():
                out[i] += self.WORDS.get(word, 0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0).astype(np.float32)

    def check_known(self, text):
        if not any(w in self.WORDS for w in text.split()):
            raise UnknownQueryError(f"cannot embed {text!r}: no known word")


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def test_parse_examples():
    assert parse_query("dog + beach - grass") == [(1.0, "dog"), (1.0, "beach"), (-1.0, "grass")]
    assert parse_query("2:dog + sky") == [(2.0, "dog"), (1.0, "sky")]
    assert parse_query("- 0.5:grass + dog") == [(-0.5, "grass"), (1.0, "dog")]
    assert parse_query("a red t-shirt") == [(1.0, "a red t-shirt")]  # no spaces round "-": one part
    assert parse_query("x+y") == [(1.0, "x+y")]
    assert parse_query("  a dog on the beach ") == [(1.0, "a dog on the beach")]
    assert not is_compound("a dog on the beach") and is_compound("dog + sky") and is_compound("2:dog")


@pytest.mark.parametrize("query", ["dog +", "+ dog - ", "dog + + sky"] )
def test_empty_parts_are_refused(query):
    with pytest.raises(InputError, match="empty part"):
        parse_query(query)


def test_zero_weight_and_wrong_type():
    with pytest.raises(InputError, match="weight must be > 0"):
        parse_query("0:dog + sky")
    with pytest.raises(InputTypeError, match="must be a str"):
        parse_query(["dog"])


words = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
weights = st.one_of(st.none(), st.integers(1, 9).map(float), st.sampled_from([0.5, 1.5, 2.25]))


@given(st.lists(st.tuples(st.sampled_from("+-"), weights, st.lists(words, min_size=1, max_size=3)), min_size=1, max_size=5))
def test_parse_inverts_formatting(parts):
    text = ""
    for n, (sign, weight, ws) in enumerate(parts):
        body = " ".join(ws) if weight is None else f"{weight:g}:{' '.join(ws)}"
        text += (f"{sign} " if n == 0 and sign == "-" else "" if n == 0 else f" {sign} ") + body
    expected = [((-1 if s == "-" else 1) * (1.0 if w is None else w), " ".join(ws)) for s, w, ws in parts]
    assert parse_query(text) == expected


def test_combined_vector_is_the_hand_computed_sum():
    enc = FakeEncoder()
    # dog = e1, beach = e2, grass = e3, sky = (e1 + e2) / sqrt 2
    expected = unit(2 * np.array([1, 0, 0]) + unit([1, 1, 0]) - 0.5 * np.array([0, 0, 1]))
    np.testing.assert_allclose(embed_query("2:dog + sky - 0.5:grass", enc), expected, rtol=1e-6)
    # unit vectors are combined, not raw ones: "beach" (norm 2) counts as much as "dog"
    np.testing.assert_allclose(embed_query("dog + beach", enc), unit([1, 1, 0]), rtol=1e-6)
    # a plain query is exactly the encoder's vector
    np.testing.assert_array_equal(embed_queries(["dog beach"], enc)[0], enc(["dog beach"])[0])


def test_unknown_part_is_named_and_cancelling_parts_refused():
    enc = FakeEncoder()
    with pytest.raises(UnknownQueryError, match="'zebra'"):
        embed_query("dog + zebra", enc)
    with pytest.raises(InputError, match="cancel out"):
        embed_query("dog - dog", enc)


def test_database_query_accepts_compound_text():
    enc = FakeEncoder()
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, -1]], dtype=np.float32)
    db = ImageDatabase(["a.jpg", "sub/b.jpg", "c d.png", "e.webp"], vectors, enc)
    keys, scores = db.query("dog + beach - grass", k=2)
    assert keys.tolist() == ["e.webp", "a.jpg"]
    np.testing.assert_allclose(scores, [1.0, 1 / np.sqrt(3)], rtol=1e-6)
    keys2, _ = db.query(["dog", "dog + beach - grass"], k=1)
    assert keys2[:, 0].tolist() == ["a.jpg", "e.webp"]
