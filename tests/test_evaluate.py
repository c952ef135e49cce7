import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.evaluation import chance_levels, retrieval_scores, target_ranks


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


# --------------------------------------------------------------------------- protocols
from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.dataset import CaptionedImages
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError
from semsearch.evaluation import evaluate, first_captions, protocol_folds
from semsearch.common.vectors import l2_normalize_rows


class IdentityModel:
    """Embeds a descriptor as itself, unit length: the score is the descriptors' cosine."""

    backbone = None

    def __call__(self, descriptors):  # the forward pass, returning NumPy: embed_images takes it as it is
        return l2_normalize_rows(np.asarray(descriptors, dtype=np.float32))


class LookupEncoder:
    """``se_text`` of a caption ``"caption <id>"``: a fixed vector per caption id."""

    def __init__(self, vectors):
        self.vectors = vectors

    def __call__(self, texts):
        return np.stack([self.vectors[int(t.split()[1])] for t in texts])


def synthetic_data(n_images, captions_per_image=6, dim=8, seed=0):
    """n_images images, each with captions whose vectors are its descriptor plus noise."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 10 * n_images), n_images, replace=False)
    descriptors = rng.normal(size=(n_images, dim)).astype(np.float32)
    images = {int(i): ImageInfo(int(i), f"{int(i):012d}.jpg", "") for i in ids}
    captions, vectors = {}, {}
    for row, image_id in enumerate(ids):
        for _ in range(captions_per_image):
            cid = len(captions) * 7 + 3
            captions[cid] = (int(image_id), f"caption {cid}")
            vectors[cid] = l2_normalize_rows((descriptors[row] + rng.normal(scale=1.0, size=dim))[None])[0].astype(np.float32)
    data = CaptionedImages(CocoCaptions(images, captions), Descriptors({int(i): d for i, d in zip(ids, descriptors)}))
    return data, LookupEncoder(vectors)


def reference_ranks(data, encoder, fold_ids, n_captions):
    """Rank of each query's image among fold_ids, from the full score matrix, by a plain loop."""
    fold_ids = np.sort(fold_ids)
    images = IdentityModel()(data.descriptors.vectors_of(fold_ids))
    ranks = []
    for col, image_id in enumerate(fold_ids):
        for cid in data.captions.caption_ids_of(int(image_id))[:n_captions]:
            scores = images @ encoder([f"caption {cid}"])[0]
            ranks.append(int(np.sum(scores >= scores[col])))
    return np.array(ranks)


@pytest.fixture(scope="module")
def protocol_data():
    return synthetic_data(5200)


def test_5k_protocol_matches_a_full_score_matrix(protocol_data):
    data, encoder = protocol_data
    drawn = np.random.default_rng(3).permutation(data.image_ids)[:5000]  # the documented draw
    ranks = reference_ranks(data, encoder, drawn, 5)
    result = evaluate(IdentityModel(), data, encoder, data.image_ids, protocol="5k", seed=3)
    assert (result.n_images, result.n_queries, result.protocol) == (5000, 25000, "5k")
    assert result.recall[10] == pytest.approx(np.mean(ranks <= 10))
    assert result.median_rank == np.median(ranks)
    assert result.mean_reciprocal_rank == pytest.approx(np.mean(1 / ranks))
    assert result.chance["recall@1"] == pytest.approx(1 / 5000)
    assert result.recall[10] > 10 * result.chance["recall@10"]  # the scores carry signal


def test_1k_protocol_is_the_mean_over_five_folds_of_1000(protocol_data):
    data, encoder = protocol_data
    drawn = np.random.default_rng(0).permutation(data.image_ids)[:5000]
    folds = [reference_ranks(data, encoder, fold, 5) for fold in np.array_split(drawn, 5)]
    result = evaluate(IdentityModel(), data, encoder, data.image_ids, protocol="1k")
    assert (result.n_images, result.n_folds, result.n_queries) == (1000, 5, 25000)
    assert result.recall[1] == pytest.approx(np.mean([np.mean(r <= 1) for r in folds]))
    assert result.median_rank == pytest.approx(np.mean([np.median(r) for r in folds]))
    assert result.mean_reciprocal_rank == pytest.approx(np.mean([np.mean(1 / r) for r in folds]))
    assert result.chance["recall@5"] == pytest.approx(5 / 1000)
    text = result.format("test")
    assert "1k protocol" in text and "mean over 5 folds of 1000 images" in text and "(chance 0.005)" in text


def test_protocols_are_seeded(protocol_data):
    data, encoder = protocol_data
    a = evaluate(IdentityModel(), data, encoder, data.image_ids, protocol="1k", seed=1)
    b = evaluate(IdentityModel(), data, encoder, data.image_ids, protocol="1k", seed=1)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("protocol", ["1k", "5k"])
def test_protocols_refuse_too_few_images(protocol):
    data, encoder = synthetic_data(300)
    with pytest.raises(InputError, match=f"protocol '{protocol}' needs at least 5000 test images, got 300"):
        evaluate(IdentityModel(), data, encoder, data.image_ids, protocol=protocol)


def test_unknown_protocol_is_refused():
    with pytest.raises(InputError, match="protocol must be one of"):
        protocol_folds(np.arange(10), "10k")


def test_all_protocol_uses_every_caption():
    data, encoder = synthetic_data(50)
    result = evaluate(IdentityModel(), data, encoder, data.image_ids)
    ranks = reference_ranks(data, encoder, data.image_ids, 6)
    assert (result.n_queries, result.n_images) == (300, 50)
    assert result.mean_reciprocal_rank == pytest.approx(np.mean(1 / ranks))


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.integers(0, 5), max_size=40), n=st.integers(1, 4))
def test_first_captions_keeps_the_first_n_of_each_image(rows, n):
    rows = np.array(rows, dtype=np.int64)
    seen: dict = {}
    expected = []
    for r in rows:
        seen[r] = seen.get(r, 0) + 1
        expected.append(seen[r] <= n)
    np.testing.assert_array_equal(first_captions(rows, n), np.array(expected, dtype=bool))
