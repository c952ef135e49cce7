"""More like this, less like this: Rocchio relevance feedback in the library and the CLI."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semsearch.database import ImageDatabase
from semsearch.errors import InputError
from semsearch.routes.feedback import BETA, GAMMA, feedback_query, rocchio

finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(q=arrays(np.float64, 4, elements=finite), good=arrays(np.float64, (2, 4), elements=finite),
       bad=arrays(np.float64, (3, 4), elements=finite), beta=st.floats(0, 2), gamma=st.floats(0, 2))
def test_rocchio_is_the_weighted_sum_of_unit_vectors(q, good, bad, beta, gamma):
    norms = [np.linalg.norm(v) for v in (q, *good, *bad)]
    if min(norms) < 1e-3:
        return
    expected = q / np.linalg.norm(q) + beta * np.mean([g / np.linalg.norm(g) for g in good], axis=0) \
        - gamma * np.mean([b / np.linalg.norm(b) for b in bad], axis=0)
    if np.linalg.norm(expected) < 1e-6:
        with pytest.raises(InputError, match="cancel"):
            rocchio(q, good, bad, beta=beta, gamma=gamma)
        return
    np.testing.assert_allclose(rocchio(q, good, bad, beta=beta, gamma=gamma), expected / np.linalg.norm(expected),
                               rtol=1e-4, atol=1e-5)


def test_rocchio_refuses_bad_input():
    with pytest.raises(InputError, match="non-zero"):
        rocchio(np.zeros(3))
    with pytest.raises(InputError, match="good must be"):
        rocchio(np.ones(3), good=np.ones((2, 4)))
    with pytest.raises(InputError, match="gamma must be"):
        rocchio(np.ones(3), gamma=-1)
    with pytest.raises(InputError, match="NaN"):
        rocchio(np.ones(3), bad=[[np.nan, 0, 0]])
    assert rocchio(np.array([3.0, 4.0])).tolist() == pytest.approx([0.6, 0.8])  # nothing marked: the query


def test_feedback_moves_results_toward_good_and_away_from_bad():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    database = ImageDatabase(np.arange(50), vectors)
    query = vectors[0] + 0.8 * vectors[1]
    keys, _ = database.query(query, k=10)
    good, bad = int(keys[6]), int(keys[0])
    moved, _ = feedback_query(database, query, good=[good], bad=[bad], k=10)
    assert list(moved).index(good) < list(keys).index(good)
    assert bad not in moved[:1] and (bad not in moved or list(moved).index(bad) > 0)
    expected = rocchio(query, vectors[[good]], vectors[[bad]], beta=BETA, gamma=GAMMA)
    np.testing.assert_array_equal(moved, database.query(expected, k=10)[0])
    with pytest.raises(InputError, match="both good and bad"):
        feedback_query(database, query, good=[3], bad=[3])


def test_cli_more_like_and_less_like(capsys):
    from semsearch.cli import commands

    assert commands.main(["search", "a dog", "-k", "5", "--paths"]) == 0
    first = capsys.readouterr().out.split()
    assert commands.main(["search", "a dog", "-k", "5", "--paths", "--more-like", first[3], "--less-like", first[0]]) == 0
    captured = capsys.readouterr()
    second = captured.out.split()
    assert "query moved toward 1 and away from 1 marked images" in captured.err
    assert second.index(first[3]) < 3 and second[0] != first[0]
