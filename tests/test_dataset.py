"""Tests of semsearch.dataset: joining captions with descriptors, splits by image."""
from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from semsearch.coco import CocoCaptions
from semsearch.dataset import CaptionedImages, join, kfold_images, split_images
from semsearch.descriptors import Descriptors

VAL = Path("coco/annotations/captions_val2017.json")
MINI = Path("coco/annotations/captions_train2017_mini.json")
PICKLE = Path("descriptors/effnet_lite0_coco_mini.pkl")

id_sets = st.sets(st.integers(-(10**6), 10**9), min_size=2, max_size=200)


def tiny_captions(image_ids, captions_per_image: int = 2) -> CocoCaptions:
    """In-memory captions: image i has caption ids 100 i, 100 i + 1, ..."""
    from semsearch.coco import ImageInfo

    images = {i: ImageInfo(i, f"{i:012d}.jpg", f"http://x/{i:012d}.jpg") for i in image_ids}
    captions = {100 * i + k: (i, f"caption {k} of {i}") for i in image_ids for k in range(captions_per_image)}
    return CocoCaptions(images, captions)


def tiny_descriptors(image_ids, dim: int = 3) -> Descriptors:
    return Descriptors({i: np.full(dim, float(i), dtype=np.float32) for i in image_ids})


# --------------------------------------------------------------------------- join, real data
@pytest.fixture(scope="module")
def real_join(real_data: Path):
    captions = CocoCaptions.load(real_data / VAL, real_data / MINI)
    descriptors = Descriptors.load(real_data / PICKLE)
    with pytest.warns(UserWarning) as record:
        data = join(captions, descriptors)
    return data, [str(w.message) for w in record]


def test_join_real_counts(real_join, real_data: Path):
    data, _ = real_join
    # independent expectations from the raw files
    raw = [json.loads((real_data / f).read_text(encoding="utf-8")) for f in (VAL, MINI)]
    with open(real_data / PICKLE, "rb") as f:
        described = set(pickle.load(f))
    all_images = {im["id"] for r in raw for im in r["images"]}
    kept_captions = sorted(a["id"] for r in raw for a in r["annotations"] if a["image_id"] in described)
    n_all_captions = sum(len(r["annotations"]) for r in raw)

    assert isinstance(data, CaptionedImages)
    assert data.n_dropped_images == len(all_images - described) == 4841
    assert data.n_dropped_captions == n_all_captions - len(kept_captions) == 24219
    assert data.n_unused_descriptors == 0
    assert len(data.image_ids) == 239 and len(data.captions.caption_ids) == len(kept_captions) == 1195
    np.testing.assert_array_equal(data.image_ids, sorted(all_images & described))
    np.testing.assert_array_equal(data.descriptors.ids, data.image_ids)
    np.testing.assert_array_equal(data.captions.caption_ids, kept_captions)
    assert data.descriptors.vectors.shape == (239, 1280)


def test_join_real_warns_with_counts(real_join):
    _, messages = real_join
    assert len(messages) == 1
    assert "4841" in messages[0] and "24219" in messages[0] and "5080" in messages[0]


def test_join_real_val_only_reports_unused_descriptors(real_data: Path):
    captions = CocoCaptions.load(real_data / VAL)
    descriptors = Descriptors.load(real_data / PICKLE)
    data = join(captions, descriptors, warn=False)
    assert len(data.image_ids) == 159 and len(data.captions.caption_ids) == 795
    assert data.n_unused_descriptors == 80 and data.n_dropped_images == 4841
    np.testing.assert_array_equal(data.descriptors.ids, data.image_ids)


# --------------------------------------------------------------------------- join, tiny
def test_join_drops_images_without_descriptor():
    captions = tiny_captions([1, 2, 3, 4], captions_per_image=3)
    descriptors = tiny_descriptors([2, 4, 9])
    with pytest.warns(UserWarning, match=r"2 of 4 captioned images.*their 6 captions"):
        data = join(captions, descriptors)
    np.testing.assert_array_equal(data.image_ids, [2, 4])
    np.testing.assert_array_equal(data.captions.caption_ids, [200, 201, 202, 400, 401, 402])
    np.testing.assert_array_equal(data.descriptors.ids, [2, 4])
    np.testing.assert_array_equal(data.descriptors.vectors, [[2, 2, 2], [4, 4, 4]])
    assert (data.n_dropped_images, data.n_dropped_captions, data.n_unused_descriptors) == (2, 6, 1)


def test_join_without_drops_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = join(tiny_captions([1, 2]), tiny_descriptors([1, 2]))
        quiet = join(tiny_captions([1, 2]), tiny_descriptors([2]), warn=False)
    assert (data.n_dropped_images, data.n_dropped_captions, data.n_unused_descriptors) == (0, 0, 0)
    np.testing.assert_array_equal(data.image_ids, [1, 2])
    assert quiet.n_dropped_images == 1 and quiet.n_dropped_captions == 2


def test_join_with_no_overlap():
    with pytest.raises(ValueError, match="no captioned image has a descriptor"):
        join(tiny_captions([1, 2]), tiny_descriptors([3, 4]))


# --------------------------------------------------------------------------- split_images
def test_split_sizes_and_partition():
    ids = np.arange(100, 110)
    train, val = split_images(ids, validation_fraction=0.2, seed=0)
    assert (len(train), len(val)) == (8, 2)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert set(train).isdisjoint(val)
    assert set(train) | set(val) == set(ids)
    assert list(train) == sorted(train) and list(val) == sorted(val)


def test_split_rounds_to_nearest():
    train, val = split_images(np.arange(239), validation_fraction=0.2)
    assert (len(train), len(val)) == (191, 48)  # 0.2 * 239 = 47.8
    train, val = split_images(np.arange(7), validation_fraction=0.5)
    assert len(val) in (3, 4) and len(train) + len(val) == 7


def test_split_is_seeded():
    ids = np.arange(1000, 1100)
    a = split_images(ids, 0.3, seed=7)
    b = split_images(list(ids[::-1]), 0.3, seed=7)  # input order does not matter
    other = split_images(ids, 0.3, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], other[1])


def test_split_ignores_duplicate_ids():
    train, val = split_images([5, 5, 6, 7, 7, 8], validation_fraction=0.5)
    assert sorted(np.concatenate([train, val])) == [5, 6, 7, 8]
    assert len(val) == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_split_bad_fraction(fraction: float):
    with pytest.raises(ValueError, match="validation_fraction"):
        split_images(np.arange(10), validation_fraction=fraction)


@pytest.mark.parametrize("ids, fraction", [(np.arange(3), 0.1), (np.arange(3), 0.9), ([4], 0.5), ([], 0.5)])
def test_split_too_few_images(ids, fraction: float):
    with pytest.raises(ValueError, match="cannot split"):
        split_images(ids, validation_fraction=fraction)


@given(id_sets, st.floats(0.01, 0.99), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_split_property(ids: set, fraction: float, seed: int):
    n_val = round(fraction * len(ids))
    assume(0 < n_val < len(ids))
    train, val = split_images(list(ids), validation_fraction=fraction, seed=seed)
    assert set(train).isdisjoint(val)
    assert set(train) | set(val) == ids
    assert len(train) + len(val) == len(ids)
    assert abs(len(val) - fraction * len(ids)) <= 0.5 + 1e-9
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = split_images(sorted(ids), validation_fraction=fraction, seed=seed)
    np.testing.assert_array_equal(again[1], val)


# --------------------------------------------------------------------------- kfold_images
def check_folds(ids: set, folds: list, n_folds: int) -> None:
    assert len(folds) == n_folds
    seen = []
    for train, val in folds:
        assert set(train).isdisjoint(val)
        assert set(train) | set(val) == ids
        assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
        seen.extend(val.tolist())
    assert sorted(seen) == sorted(ids)  # each image in exactly one validation fold
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_basic():
    ids = set(range(50, 73))  # 23 images
    folds = list(kfold_images(list(ids), n_folds=5, seed=0))
    check_folds(ids, folds, 5)
    assert sorted(len(v) for _, v in folds) == [4, 4, 5, 5, 5]


def test_kfold_is_seeded():
    ids = np.arange(40)
    a = [v for _, v in kfold_images(ids, 4, seed=1)]
    b = [v for _, v in kfold_images(ids, 4, seed=1)]
    c = [v for _, v in kfold_images(ids, 4, seed=2)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_kfold_leave_one_out():
    folds = list(kfold_images([3, 1, 2], n_folds=3))
    check_folds({1, 2, 3}, folds, 3)
    assert all(len(v) == 1 for _, v in folds)


@pytest.mark.parametrize("n_folds", [0, 1, 6])
def test_kfold_bad_number_of_folds(n_folds: int):
    with pytest.raises(ValueError, match="n_folds"):
        list(kfold_images(np.arange(5), n_folds=n_folds))


@given(id_sets, st.data())
@settings(max_examples=100, deadline=None)
def test_kfold_property(ids: set, data):
    n_folds = data.draw(st.integers(2, min(len(ids), 12)))
    seed = data.draw(st.integers(0, 1000))
    check_folds(ids, list(kfold_images(sorted(ids), n_folds=n_folds, seed=seed)), n_folds)
