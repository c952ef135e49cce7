import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.evaluate import chance_levels, retrieval_scores, target_ranks


def test_ranks_by_hand():
    scores = np.array(
        [
            [0.9, 0.1, 0.5],  # target 0 is best -> rank 1
            [0.9, 0.1, 0.5],  # target 1 is worst -> rank 3
            [0.2, 0.7, 0.5],  # target 2 is second -> rank 2
        ]
    )
    np.testing.assert_array_equal(target_ranks(scores, np.array([0, 1, 2])), [1, 3, 2])


def test_ties_count_against_the_model():
    scores = np.zeros((2, 5))  # e.g. a zero query vector: no information
    np.testing.assert_array_equal(target_ranks(scores, np.array([0, 3])), [5, 5])


def test_metrics_by_hand():
    result = retrieval_scores(np.array([1, 2, 6, 20]), n_images=40, ks=(1, 5, 10))
    assert result.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert result.median_rank == 4.0
    assert result.mean_reciprocal_rank == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 20) / 4)
    assert (result.n_queries, result.n_images) == (4, 40)


def test_chance_levels_by_hand():
    levels = chance_levels(4, ks=(1, 5))
    assert levels["recall@1"] == 0.25
    assert levels["recall@5"] == 1.0  # capped: 5 of 4 images is all of them
    assert levels["median_rank"] == 2.5
    assert levels["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


@settings(max_examples=20, deadline=None)
@given(n_images=st.integers(2, 60), seed=st.integers(0, 1000))
def test_random_scores_match_chance_on_average(n_images, seed):
    rng = np.random.default_rng(seed)
    n_queries = 4000
    ranks = target_ranks(rng.random((n_queries, n_images)), rng.integers(0, n_images, n_queries))
    result = retrieval_scores(ranks, n_images, ks=(1,))
    assert result.recall[1] == pytest.approx(result.chance["recall@1"], abs=0.03)
    assert result.mean_reciprocal_rank == pytest.approx(result.chance["mrr"], abs=0.03)


def test_no_queries_is_an_error():
    with pytest.raises(ValueError, match="no queries"):
        retrieval_scores(np.array([], dtype=int), 10)
