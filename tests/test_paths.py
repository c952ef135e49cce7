"""Which files of a data folder semsearch uses (semsearch.paths.find_data_files)."""
from pathlib import Path

import pytest

from semsearch.paths import COURSE_DESCRIPTORS, find_data_files


def _folder(root: Path, caption_files, descriptor: str) -> Path:
    annotations = root / "coco" / "annotations"
    annotations.mkdir(parents=True)
    for name in caption_files:
        (annotations / name).write_text("{}")
    (root / descriptor).parent.mkdir(parents=True, exist_ok=True)
    (root / descriptor).write_bytes(b"")
    return root


ALL_RELEASES = ["captions_train2014.json", "captions_val2014.json", "captions_train2017.json", "captions_val2017.json"]


def test_course_descriptors_take_train2014_alone(tmp_path):
    # resnet18_features.pkl covers train2014 images only: val2014's captions would be loaded for nothing
    captions, descriptor = find_data_files(_folder(tmp_path, ALL_RELEASES, COURSE_DESCRIPTORS))
    assert [p.name for p in captions] == ["captions_train2014.json"]
    assert descriptor == tmp_path / COURSE_DESCRIPTORS


def test_course_descriptors_keep_suffixed_train2014_files(tmp_path):
    files = ["captions_train2014.json", "captions_train2014_extra.json", "captions_val2014.json"]
    captions, _ = find_data_files(_folder(tmp_path, files, COURSE_DESCRIPTORS))
    assert [p.name for p in captions] == ["captions_train2014.json", "captions_train2014_extra.json"]


def test_course_descriptors_without_train2014_use_the_2014_files_there_are(tmp_path):
    captions, _ = find_data_files(_folder(tmp_path, ["captions_val2014.json", "captions_val2017.json"], COURSE_DESCRIPTORS))
    assert [p.name for p in captions] == ["captions_val2014.json"]


def test_other_descriptors_use_every_file_of_the_newest_release(tmp_path):
    captions, descriptor = find_data_files(_folder(tmp_path, ALL_RELEASES, "descriptors/effnet.pkl"))
    assert [p.name for p in captions] == ["captions_train2017.json", "captions_val2017.json"]
    assert descriptor.name == "effnet.pkl"


def test_no_caption_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no captions_\\*.json in .*semsearch fetch"):
        find_data_files(_folder(tmp_path, [], COURSE_DESCRIPTORS))
