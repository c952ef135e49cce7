import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.dataset import CaptionedImages
from semsearch.descriptors import Descriptors
from semsearch.triples import hardest_of, image_text_vectors, make_triples, sample_other


def small_coco(n_images=6, captions_per_image=3):
    images = {i: ImageInfo(i, f"{i:012d}.jpg", "") for i in range(100, 100 + n_images)}
    captions = {}
    for i in images:
        for j in range(captions_per_image):
            captions[len(captions) + 1] = (i, f"caption {j} of image {i}")
    return CocoCaptions(images, captions)


@settings(max_examples=100, deadline=None)
@given(n_images=st.integers(2, 50), n=st.integers(1, 200), seed=st.integers(0, 10_000))
def test_bad_is_never_good_and_in_range(n_images, n, seed):
    rng = np.random.default_rng(seed)
    good = rng.integers(0, n_images, n)
    bad = sample_other(good, n_images, rng=rng)
    assert bad.shape == good.shape
    assert np.all(bad != good)
    assert bad.min() >= 0 and bad.max() < n_images


def test_bad_is_uniform_over_the_other_images():
    rng = np.random.default_rng(0)
    bad = sample_other(np.full(60_000, 2), 4, rng=rng)
    counts = np.bincount(bad, minlength=4)
    assert counts[2] == 0
    np.testing.assert_allclose(counts[[0, 1, 3]] / 60_000, 1 / 3, atol=0.01)


def test_one_image_is_an_error():
    with pytest.raises(ValueError, match="at least 2 images"):
        sample_other(np.zeros(3, dtype=int), 1, rng=np.random.default_rng(0))


def test_hardest_of_picks_the_most_similar_candidate():
    # image rows 0..3 have text vectors along the axes; caption is closest to image 2
    image_vectors = np.eye(4, dtype=np.float32)
    caption = np.array([[0.1, 0.2, 0.9, 0.3]], dtype=np.float32)
    rng = np.random.default_rng(0)
    # with all 3 other images as candidates (drawn many times), the hardest is row 2
    bad = hardest_of(caption.repeat(200, 0), np.zeros(200, dtype=int), image_vectors, 30, rng=rng)
    assert np.all(bad == 2)
    # the caption's own image (row 2 here) is never chosen even though it is the most similar
    bad = hardest_of(caption.repeat(200, 0), np.full(200, 2), image_vectors, 30, rng=rng)
    assert np.all(bad == 3)


def test_hardest_of_one_candidate_is_random():
    rng = np.random.default_rng(0)
    bad = hardest_of(np.ones((1000, 2)), np.zeros(1000, dtype=int), np.ones((5, 2)), 1, rng=rng)
    assert set(np.unique(bad)) == {1, 2, 3, 4}


def test_image_text_vectors_are_means():
    vectors = np.array([[1.0, 0], [3, 0], [0, 2]])
    np.testing.assert_allclose(image_text_vectors(vectors, np.array([0, 0, 1]), 3), [[2, 0], [0, 2], [0, 0]])


def small_data(n_images=6, captions_per_image=3):
    coco = small_coco(n_images, captions_per_image)
    vectors = np.random.default_rng(0).normal(size=(n_images, 4))
    return CaptionedImages(coco, Descriptors(dict(zip(coco.image_ids, vectors))))


def test_make_triples_one_per_caption_with_ids():
    data = small_data()
    split_ids = [100, 101, 102, 103]
    triples = make_triples(data.split(split_ids), seed=0)
    ids = triples.ids()
    assert ids.shape == (12, 3) and len(triples) == 12
    np.testing.assert_array_equal(ids[:, 0], data.captions.caption_ids_of_images(split_ids))
    for caption_id, good, bad in ids:
        assert data.captions.image_of(caption_id) == good
        assert bad != good and bad in split_ids


def test_make_triples_is_seeded_and_takes_a_generator():
    split = small_data(20).split(np.arange(100, 120))
    np.testing.assert_array_equal(make_triples(split, seed=3).ids(), make_triples(split, seed=3).ids())
    assert not np.array_equal(make_triples(split, seed=3).ids(), make_triples(split, seed=4).ids())
    # training passes its own generator: the same draws as the seed that made it
    np.testing.assert_array_equal(make_triples(split, seed=np.random.default_rng(3)).bad_rows, make_triples(split, seed=3).bad_rows)


def test_make_triples_errors():
    split = small_data().split(np.arange(100, 106))
    with pytest.raises(ValueError, match="negatives"):
        make_triples(split, negatives="easy")
    with pytest.raises(ValueError, match="caption_vectors"):
        make_triples(split, negatives="hard")
    with pytest.raises(TypeError, match="n_candidates must be an integer"):
        make_triples(split, negatives="hard", caption_vectors=np.ones((18, 2)), n_candidates=2.5)


def test_split_view_lines_up(real_data):
    """A split's caption i belongs to image image_ids[image_rows[i]], whose descriptor is row image_rows[i]."""
    from semsearch.paths import find_data_files
    from semsearch.workflow import load_data

    data, _ = load_data(*find_data_files(real_data))
    ids = data.image_ids[::3]
    split = data.split(ids)
    assert len(split) == len(split.caption_texts) == len(data.captions.caption_ids_of_images(ids))
    for i in range(0, len(split), 37):
        image_id = split.image_ids[split.image_rows[i]]
        assert data.captions.image_of(split.caption_ids[i]) == image_id
        assert split.caption_texts[i] == data.captions.caption(split.caption_ids[i])
        np.testing.assert_array_equal(split.descriptor_vectors[split.image_rows[i]], data.descriptors.vectors_of([image_id])[0])


def test_hard_triples_on_real_captions_are_harder(real_data):
    """Hard bad images have captions closer to the query caption than random ones do."""
    from semsearch.text import TextEmbedder

    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json")
    ids = coco.image_ids[:300]
    data = CaptionedImages(coco.subset(ids), Descriptors({int(i): np.ones(3) for i in ids}))
    text_encoder = TextEmbedder.fit(coco.captions(coco.caption_ids))
    split = data.split(ids)
    caption_vectors = text_encoder(split.caption_texts)

    def mean_similarity(triples):
        bad_vectors = np.stack([text_encoder(coco.captions_of(i)).mean(axis=0) for i in triples.ids()[:, 2]])
        return np.mean(np.sum(caption_vectors * bad_vectors, axis=1))

    random_triples = make_triples(split, seed=0)
    hard_triples = make_triples(split, negatives="hard", caption_vectors=caption_vectors, n_candidates=10, seed=0)
    assert np.all(hard_triples.good_rows != hard_triples.bad_rows)
    assert mean_similarity(hard_triples) > mean_similarity(random_triples) + 0.05
