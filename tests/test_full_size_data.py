"""The full-size data-folder generator, at a small size, and the commands run on what it writes.

``benchmarks/make_full_size_data.py`` writes a folder laid out as ``semsearch fetch`` leaves
it (real caption text from the shared val2017 file, random descriptors); here a 2,000-image
variant (seconds to make) goes through ``semsearch train``, ``eval``, ``search`` and ``demo``.
"""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.cli.commands import main
from semsearch.paths import find_data_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import make_full_size_data as maker

sys.path.pop(0)


@pytest.fixture(scope="module")
def small_folder(real_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("full-size-small")
    maker.make_data_folder(out, real_data / "coco" / "annotations" / "captions_val2017.json", maker.Sizes.scaled(2000))
    return out


def _load(path):
    return json.loads(Path(path).read_text())


def test_full_size_counts_are_the_courses():
    sizes = maker.Sizes.scaled(maker.TRAIN2014_IMAGES)
    assert (sizes.train2014_images, sizes.train2014_captions, sizes.described_images) == (82_783, 414_113, 82_612)
    assert (sizes.val2014_images, sizes.val2017_images) == (40_504, 5_000)


def test_layout_and_release_overlap(small_folder, real_data):
    sizes = maker.Sizes.scaled(2000)
    annotations = small_folder / "coco" / "annotations"
    train14, val14 = _load(annotations / "captions_train2014.json"), _load(annotations / "captions_val2014.json")
    train17, val17 = _load(annotations / "captions_train2017.json"), _load(annotations / "captions_val2017.json")
    ids = {name: {im["id"] for im in blob["images"]} for name, blob in
           (("train14", train14), ("val14", val14), ("train17", train17), ("val17", val17))}
    assert len(ids["train14"]) == sizes.train2014_images and len(train14["annotations"]) == sizes.train2014_captions
    assert not ids["train14"] & ids["val14"] and ids["val17"] <= ids["val14"]
    assert ids["train17"] == ids["train14"] | (ids["val14"] - ids["val17"])
    # same id, other file name and url; the same captions under the same caption ids
    some = min(ids["train14"])
    name14 = next(im for im in train14["images"] if im["id"] == some)
    name17 = next(im for im in train17["images"] if im["id"] == some)
    assert name14["file_name"] == f"COCO_train2014_{some:012d}.jpg" and name17["file_name"] == f"{some:012d}.jpg"
    assert "train2014" in name14["coco_url"] and "train2017" in name17["coco_url"]
    captions14 = {a["id"]: a for a in train14["annotations"]}
    assert all(captions14[a["id"]] == a for a in train17["annotations"] if a["id"] in captions14)
    real_texts = {a["caption"] for a in _load(real_data / "coco" / "annotations" / "captions_val2017.json")["annotations"]}
    assert all(a["caption"] in real_texts for a in train14["annotations"][:500])
    per_image = np.bincount([a["image_id"] for a in train14["annotations"]])[sorted(ids["train14"])]
    assert per_image.min() == 5 and per_image.max() == 6


def test_descriptors_are_keyed_by_train2014_ids(small_folder):
    with open(small_folder / "resnet18_features.pkl", "rb") as f:
        features = pickle.load(f)  # written by this test's own fixture
    train_ids = {im["id"] for im in _load(small_folder / "coco" / "annotations" / "captions_train2014.json")["images"]}
    assert len(features) == maker.Sizes.scaled(2000).described_images and set(features) < train_ids
    value = next(iter(features.values()))
    assert value.shape == (1, 512) and value.dtype == np.float32 and (value >= 0).all()
    caption_files, descriptor_file = find_data_files(small_folder)
    assert [p.name for p in caption_files] == ["captions_train2014.json"]  # the descriptors' images only
    assert descriptor_file.name == "resnet18_features.pkl"


def test_same_seed_same_bytes(real_data, tmp_path):
    source = real_data / "coco" / "annotations" / "captions_val2017.json"
    a = maker.make_data_folder(tmp_path / "a", source, maker.Sizes.scaled(50), seed=4)
    b = maker.make_data_folder(tmp_path / "b", source, maker.Sizes.scaled(50), seed=4)
    assert all(a[name].read_bytes() == b[name].read_bytes() for name in a)


def test_train_eval_search_and_demo_on_it(small_folder, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "--data", str(small_folder), "--out", str(model), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "joined:      1996 images" in out and "validation (" in out
    assert main(["eval", "--data", str(small_folder), "--model", str(model)]) == 0
    assert "the model's validation images" in capsys.readouterr().out
    # 399 validation images: the 5,000-image protocols refuse, in one line
    assert main(["eval", "--data", str(small_folder), "--model", str(model), "--protocol", "1k"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "protocol '1k' needs at least 5000 test images, got 399" in err
    assert main(["search", "a dog catching a frisbee", "--model", str(model), "-k", "3"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]) == 3
    assert main(["demo", "--data", str(small_folder), "--out", str(tmp_path / "demo"), "--no-download", "-k", "2",
                 "--query", "a dog on a beach"]) == 0
    assert "validation (" in capsys.readouterr().out


def test_eval_protocol_needs_a_model(small_folder, capsys):
    assert main(["eval", "--data", str(small_folder), "--protocol", "5k"]) == 2
    assert "give --model" in capsys.readouterr().err
