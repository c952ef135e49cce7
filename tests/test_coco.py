"""Tests of semsearch.coco: loading and merging COCO caption files, lookups, errors.

Expected values come from the raw JSON read with ``json``, never from ``CocoCaptions``.
Tests without real data write tiny caption files in ``tmp_path``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from semsearch.coco import CocoCaptions, UnknownIdError

VAL = Path("coco/annotations/captions_val2017.json")
MINI = Path("coco/annotations/captions_train2017_mini.json")


# --------------------------------------------------------------------------- helpers
def read_raw(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def raw_index(*raws: dict):
    """From raw JSON dicts: {image: sorted caption ids}, {caption: (image, text)}, {image: entry}."""
    images, captions, of_image = {}, {}, defaultdict(list)
    for raw in raws:
        for image in raw["images"]:
            images[image["id"]] = image
        for ann in raw["annotations"]:
            captions[ann["id"]] = (ann["image_id"], ann["caption"])
    for caption_id in sorted(captions):
        of_image[captions[caption_id][0]].append(caption_id)
    return images, captions, of_image


def image(i: int, split: str = "val2017") -> dict:
    name = f"{i:012d}.jpg"
    return {"id": i, "file_name": name, "coco_url": f"http://images.cocodataset.org/{split}/{name}"}


def write_coco(path: Path, images: list, annotations: list) -> Path:
    """A tiny COCO captions file; annotations are (caption id, image id, text)."""
    data = {
        "info": {},
        "licenses": [],
        "images": images,
        "annotations": [{"id": c, "image_id": i, "caption": t} for c, i, t in annotations],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """3 images (10, 20, 30); image 30 has no caption; captions listed out of id order."""
    return write_coco(
        tmp_path / "tiny.json",
        [image(10), image(20), image(30)],
        [(7, 20, "Two dogs."), (3, 10, "A cat on a mat."), (1, 10, "A sleeping cat."), (5, 20, "Dogs play.")],
    )


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def raw_val(real_data: Path) -> dict:
    return read_raw(real_data / VAL)


@pytest.fixture(scope="module")
def raw_mini(real_data: Path) -> dict:
    return read_raw(real_data / MINI)


@pytest.fixture(scope="module")
def merged(real_data: Path) -> CocoCaptions:
    return CocoCaptions.load(real_data / VAL, real_data / MINI)


def test_load_val2017_counts(real_data: Path, raw_val: dict):
    coco = CocoCaptions.load(real_data / VAL)
    assert (len(coco), len(coco.caption_ids)) == (5000, 25014)
    assert coco.image_ids.dtype == np.int64 and coco.caption_ids.dtype == np.int64
    np.testing.assert_array_equal(coco.image_ids, sorted(im["id"] for im in raw_val["images"]))
    np.testing.assert_array_equal(coco.caption_ids, sorted(a["id"] for a in raw_val["annotations"]))


def test_load_train_mini_counts(real_data: Path, raw_mini: dict):
    coco = CocoCaptions.load(real_data / MINI)
    assert (len(coco), len(coco.caption_ids)) == (80, 400)
    np.testing.assert_array_equal(coco.image_ids, sorted(im["id"] for im in raw_mini["images"]))


def test_load_both_merges_images_and_captions(merged: CocoCaptions, raw_val: dict, raw_mini: dict):
    assert (len(merged), len(merged.caption_ids)) == (5080, 25414)
    expected_images = sorted(im["id"] for im in raw_val["images"] + raw_mini["images"])
    expected_captions = sorted(a["id"] for a in raw_val["annotations"] + raw_mini["annotations"])
    np.testing.assert_array_equal(merged.image_ids, expected_images)
    np.testing.assert_array_equal(merged.caption_ids, expected_captions)
    assert "5080 images" in repr(merged) and "25414 captions" in repr(merged)


def test_first_caption_of_image_139(merged: CocoCaptions, raw_val: dict):
    first = min((a for a in raw_val["annotations"] if a["image_id"] == 139), key=lambda a: a["id"])
    assert merged.caption_ids_of(139)[0] == first["id"]
    assert merged.captions_of(139)[0] == first["caption"] == "A woman stands in the dining area at the table."
    assert merged.image_of(first["id"]) == 139
    assert merged.file_name(139) == "000000000139.jpg"
    assert merged.coco_url(139) == "http://images.cocodataset.org/val2017/000000000139.jpg"


def test_every_lookup_matches_raw_json(merged: CocoCaptions, raw_val: dict, raw_mini: dict):
    images, captions, of_image = raw_index(raw_val, raw_mini)
    for image_id, entry in images.items():
        assert merged.caption_ids_of(image_id) == of_image[image_id]
        assert merged.captions_of(image_id) == [captions[c][1] for c in of_image[image_id]]
        assert merged.file_name(image_id) == entry["file_name"]
        assert merged.coco_url(image_id) == entry["coco_url"]
    for caption_id, (image_id, text) in captions.items():
        assert merged.caption(caption_id) == text
        assert merged.image_of(caption_id) == image_id
    some = list(captions)[:50]
    assert merged.captions(some) == [captions[c][1] for c in some]
    np.testing.assert_array_equal(merged.images_of(some), [captions[c][0] for c in some])


def test_caption_ids_of_images_real(merged: CocoCaptions, raw_val: dict, raw_mini: dict):
    _, _, of_image = raw_index(raw_val, raw_mini)
    chosen = [raw_mini["images"][0]["id"], 139, raw_val["images"][-1]["id"]]
    expected = sorted(c for i in chosen for c in of_image[i])
    result = merged.caption_ids_of_images(chosen)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, expected)


def test_subset_real(merged: CocoCaptions, raw_val: dict, raw_mini: dict):
    _, captions, of_image = raw_index(raw_val, raw_mini)
    keep = [int(i) for i in merged.image_ids[::500]]
    sub = merged.subset(keep)
    np.testing.assert_array_equal(sub.image_ids, sorted(keep))
    np.testing.assert_array_equal(sub.caption_ids, sorted(c for i in keep for c in of_image[i]))
    for i in keep:
        assert sub.captions_of(i) == [captions[c][1] for c in of_image[i]]


# --------------------------------------------------------------------------- tiny files
def test_tiny_lookups(tiny: Path):
    coco = CocoCaptions.load(tiny)
    np.testing.assert_array_equal(coco.image_ids, [10, 20, 30])
    np.testing.assert_array_equal(coco.caption_ids, [1, 3, 5, 7])
    assert coco.caption_ids_of(10) == [1, 3]  # ascending caption id, not file order
    assert coco.captions_of(10) == ["A sleeping cat.", "A cat on a mat."]
    assert coco.caption_ids_of(30) == [] and coco.captions_of(30) == []
    assert coco.image_of(7) == 20 and coco.caption(7) == "Two dogs."
    assert coco.file_name(20) == "000000000020.jpg"
    assert coco.coco_url(20) == "http://images.cocodataset.org/val2017/000000000020.jpg"
    # NumPy integers work as ids too
    assert coco.captions_of(np.int64(20)) == ["Dogs play.", "Two dogs."]


def test_caption_ids_of_returns_a_copy(tiny: Path):
    coco = CocoCaptions.load(tiny)
    coco.caption_ids_of(10).append(99)
    assert coco.caption_ids_of(10) == [1, 3]


def test_caption_ids_of_images_sorted_and_order_independent(tiny: Path):
    coco = CocoCaptions.load(tiny)
    np.testing.assert_array_equal(coco.caption_ids_of_images([20, 10]), [1, 3, 5, 7])
    np.testing.assert_array_equal(coco.caption_ids_of_images([30]), np.zeros(0, dtype=np.int64))
    assert coco.caption_ids_of_images([]).shape == (0,)


@pytest.mark.parametrize("method", ["caption_ids_of", "captions_of", "coco_url", "file_name"])
def test_unknown_image_id(tiny: Path, method: str):
    coco = CocoCaptions.load(tiny)
    with pytest.raises(UnknownIdError, match=r"\b123456\b") as info:
        getattr(coco, method)(123456)
    assert isinstance(info.value, KeyError)  # callers may catch KeyError
    assert "image" in str(info.value) and not str(info.value).startswith("'")


@pytest.mark.parametrize("method", ["caption", "image_of"])
def test_unknown_caption_id(tiny: Path, method: str):
    coco = CocoCaptions.load(tiny)
    with pytest.raises(UnknownIdError, match=r"caption id 424242\b"):
        getattr(coco, method)(424242)


def test_unknown_ids_in_bulk_lookups(tiny: Path):
    coco = CocoCaptions.load(tiny)
    with pytest.raises(UnknownIdError, match=r"\b99\b"):
        coco.caption_ids_of_images([10, 99])
    with pytest.raises(UnknownIdError, match=r"\b98\b"):
        coco.captions([1, 98])
    with pytest.raises(UnknownIdError, match=r"\b97\b"):
        coco.subset([10, 97])


def test_missing_file(tmp_path: Path):
    missing = tmp_path / "nowhere" / "captions.json"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        CocoCaptions.load(missing)


def test_no_file_given():
    with pytest.raises(ValueError):
        CocoCaptions.load()


def test_not_json(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [', encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json"):
        CocoCaptions.load(path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match="binary.json"):
        CocoCaptions.load(binary)


@pytest.mark.parametrize(
    "content",
    [{"images": []}, {"annotations": []}, {"info": {}}, [1, 2, 3], "captions"],
    ids=["no-annotations", "no-images", "neither", "a-list", "a-string"],
)
def test_json_that_is_not_a_captions_file(tmp_path: Path, content):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ValueError, match="other.json"):
        CocoCaptions.load(path)


def test_instances_file_is_rejected(tmp_path: Path):
    path = tmp_path / "instances_val2017.json"
    data = {
        "images": [image(10)],
        "annotations": [{"id": 1, "image_id": 10, "category_id": 18, "bbox": [0, 0, 5, 5], "area": 25.0}],
        "categories": [{"id": 18, "name": "dog"}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="instances_val2017.json"):
        CocoCaptions.load(path)


def test_annotation_without_caption_after_good_ones_is_rejected(tmp_path: Path):
    path = tmp_path / "mixed.json"
    data = {
        "images": [image(10)],
        "annotations": [{"id": 1, "image_id": 10, "caption": "A cat."}, {"id": 2, "image_id": 10, "bbox": [0, 0, 1, 1]}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="mixed.json"):
        CocoCaptions.load(path)


def test_caption_of_unlisted_image_is_rejected(tmp_path: Path):
    path = write_coco(tmp_path / "c.json", [image(10)], [(1, 10, "A cat."), (2, 11, "A dog.")])
    with pytest.raises(ValueError, match=r"\b11\b"):
        CocoCaptions.load(path)


def test_files_disagreeing_about_an_image(tmp_path: Path):
    a = write_coco(tmp_path / "a.json", [image(10)], [(1, 10, "A cat.")])
    wrong = {"id": 10, "file_name": "000000000011.jpg", "coco_url": ""}  # names another image
    b = write_coco(tmp_path / "b.json", [wrong], [(2, 10, "A cat again.")])
    with pytest.raises(ValueError, match=r"image 10 is described differently in .*b.json: file '000000000011.jpg'"):
        CocoCaptions.load(a, b)
    c = write_coco(tmp_path / "c.json", [{"id": 10, "file_name": "holiday.jpg", "coco_url": ""}], [])
    with pytest.raises(ValueError, match=r"image 10\b"):
        CocoCaptions.load(a, c)


def test_one_image_in_two_releases_is_merged(tmp_path: Path):
    """COCO 2017 re-splits the 2014 images: same id, other file name and URL, same captions."""
    old = {"id": 397133, "file_name": "COCO_train2014_000000397133.jpg",
           "coco_url": "http://images.cocodataset.org/train2014/COCO_train2014_000000397133.jpg"}
    new = {"id": 397133, "file_name": "000000397133.jpg",
           "coco_url": "http://images.cocodataset.org/val2017/000000397133.jpg"}
    a = write_coco(tmp_path / "captions_train2014.json", [old, image(9)], [(1, 397133, "A man in a kitchen."), (2, 9, "Food.")])
    b = write_coco(tmp_path / "captions_val2017.json", [new], [(1, 397133, "A man in a kitchen."), (3, 397133, "Cooking.")])
    coco = CocoCaptions.load(a, b)
    assert coco.image_ids.tolist() == [9, 397133]
    assert coco.captions_of(397133) == ["A man in a kitchen.", "Cooking."]
    assert coco.file_name(397133) == old["file_name"]  # the first file read describes it


def test_files_disagreeing_about_a_caption(tmp_path: Path):
    a = write_coco(tmp_path / "a.json", [image(10)], [(1, 10, "A cat.")])
    b = write_coco(tmp_path / "b.json", [image(10)], [(1, 10, "A dog.")])
    with pytest.raises(ValueError, match=r"caption 1\b"):
        CocoCaptions.load(a, b)
    c = write_coco(tmp_path / "c.json", [image(10), image(20)], [(1, 20, "A cat.")])
    with pytest.raises(ValueError, match=r"caption 1\b"):
        CocoCaptions.load(a, c)  # same text, other image


def test_same_file_twice_merges_cleanly(tiny: Path):
    once = CocoCaptions.load(tiny)
    twice = CocoCaptions.load(tiny, tiny)
    np.testing.assert_array_equal(twice.image_ids, once.image_ids)
    np.testing.assert_array_equal(twice.caption_ids, once.caption_ids)
    for i in once.image_ids:
        assert twice.captions_of(i) == once.captions_of(i)


def test_disjoint_files_merge(tiny: Path, tmp_path: Path):
    other = write_coco(tmp_path / "other.json", [image(40, "train2017")], [(9, 40, "A bird."), (8, 40, "Birds.")])
    coco = CocoCaptions.load(tiny, other)
    np.testing.assert_array_equal(coco.image_ids, [10, 20, 30, 40])
    np.testing.assert_array_equal(coco.caption_ids, [1, 3, 5, 7, 8, 9])
    assert coco.captions_of(40) == ["Birds.", "A bird."]
    assert coco.coco_url(40).endswith("/train2017/000000000040.jpg")


def test_subset_keeps_only_those_images_and_captions(tiny: Path):
    coco = CocoCaptions.load(tiny)
    sub = coco.subset([20, 30])
    np.testing.assert_array_equal(sub.image_ids, [20, 30])
    np.testing.assert_array_equal(sub.caption_ids, [5, 7])
    assert sub.captions_of(20) == ["Dogs play.", "Two dogs."]
    with pytest.raises(UnknownIdError):
        sub.captions_of(10)
    with pytest.raises(UnknownIdError):
        sub.caption(1)
    assert len(coco) == 3  # the original is untouched
    empty = coco.subset([])
    assert len(empty) == 0 and len(empty.caption_ids) == 0
