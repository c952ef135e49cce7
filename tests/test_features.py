"""Tests of semsearch.features (ResNet18 descriptors) on a few real COCO images.

All with random weights (``weights=None``): nothing is downloaded.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

from PIL import Image  # noqa: E402

from semsearch import features  # noqa: E402
from semsearch.features import (  # noqa: E402
    ExtractionResult,
    describe,
    extract_features,
    image_id_from_path,
)

GREY_IMAGE = "000000431848.jpg"  # the one greyscale ("L") image of the 239
N_IMAGES = 8
FAST = dict(weights=None, device="cpu", num_workers=0, progress=False)


@pytest.fixture(scope="module")
def image_dir(real_data: Path, tmp_path_factory) -> Path:
    """A folder of 8 real COCO images (symbolic links), one of them greyscale."""
    source = real_data / "coco" / "images"
    names = sorted(p.name for p in source.glob("*.jpg") if p.name != GREY_IMAGE)[: N_IMAGES - 1]
    folder = tmp_path_factory.mktemp("images")
    for name in names + [GREY_IMAGE]:
        (folder / name).symlink_to(source / name)
    return folder


@pytest.fixture(scope="module")
def ids(image_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in image_dir.glob("*.jpg"))


@pytest.fixture(scope="module")
def reference(image_dir: Path, tmp_path_factory) -> dict[int, np.ndarray]:
    """Descriptors of the 8 images: batch size 8, seed 0."""
    out = tmp_path_factory.mktemp("reference") / "resnet18.pkl"
    extract_features(image_dir, out, batch_size=N_IMAGES, **FAST)
    return load_descriptors(out)


def load_descriptors(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)


def assert_same_descriptors(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=atol, err_msg=f"id {k}")


# --------------------------------------------------------------------------- results


def test_shapes_dtype_and_keys(image_dir, ids, tmp_path):
    out = tmp_path / "d.pkl"
    result = extract_features(image_dir, out, batch_size=3, **FAST)

    assert result == ExtractionResult(out, n_new=N_IMAGES, n_skipped_existing=0, failed=[])
    descriptors = load_descriptors(out)
    assert type(descriptors) is dict
    assert sorted(descriptors) == ids
    assert int(GREY_IMAGE[:-4]) in descriptors  # greyscale images are converted to RGB
    for vector in descriptors.values():
        assert type(vector) is np.ndarray
        assert vector.shape == (1, 512) and vector.dtype == np.float32
        assert np.isfinite(vector).all()
    stacked = np.concatenate(list(descriptors.values()))  # (8, 512)
    assert len(np.unique(stacked.round(4), axis=0)) == N_IMAGES  # one vector per image


def test_deterministic_and_independent_of_batch_size(image_dir, reference, tmp_path):
    features._cached_model.cache_clear()  # rebuild the random model from its seed
    extract_features(image_dir, tmp_path / "b3.pkl", batch_size=3, **FAST)
    assert_same_descriptors(load_descriptors(tmp_path / "b3.pkl"), reference)

    extract_features(image_dir, tmp_path / "b8.pkl", batch_size=N_IMAGES, **FAST)
    b8 = load_descriptors(tmp_path / "b8.pkl")
    for k in reference:
        np.testing.assert_array_equal(b8[k], reference[k])  # same run twice: bit for bit


def test_seed_changes_random_weights(image_dir, reference, tmp_path):
    out = tmp_path / "seed1.pkl"
    extract_features(image_dir, out, batch_size=N_IMAGES, seed=1, ids=[min(reference)], **FAST)
    assert not np.allclose(load_descriptors(out)[min(reference)], reference[min(reference)])


def test_worker_processes_give_the_same_descriptors(image_dir, reference, tmp_path):
    out = tmp_path / "d.pkl"
    extract_features(image_dir, out, batch_size=4, **{**FAST, "num_workers": 2})
    assert_same_descriptors(load_descriptors(out), reference)


def test_coco2014_file_names_and_other_files(real_data, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    original = real_data / "coco" / "images" / "000000000139.jpg"
    (folder / "COCO_train2014_000000000139.jpg").symlink_to(original)
    (folder / "README.txt").write_text("not an image")
    result = extract_features(folder, tmp_path / "d.pkl", **FAST)
    assert result.n_new == 1
    assert list(load_descriptors(tmp_path / "d.pkl")) == [139]


def test_image_id_from_path():
    assert image_id_from_path("x/000000000139.jpg") == 139
    assert image_id_from_path("COCO_val2014_000000581929.jpg") == 581929
    with pytest.raises(ValueError, match="cat.jpg"):
        image_id_from_path("cat.jpg")


def test_describe_equals_batch_extraction(image_dir, reference):
    grey_id = int(GREY_IMAGE[:-4])
    vector = describe(image_dir / GREY_IMAGE, weights=None, device="cpu")
    assert vector.shape == (512,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, reference[grey_id][0], rtol=1e-4, atol=1e-5)

    with Image.open(image_dir / GREY_IMAGE) as image:  # a PIL image, mode "L"
        from_pil = describe(image, weights=None, device="cpu")
    np.testing.assert_array_equal(from_pil, vector)


def test_describe_caches_the_model():
    features._cached_model.cache_clear()
    image = Image.new("RGB", (64, 48), (120, 30, 200))
    describe(image, weights=None, device="cpu")
    describe(image, weights=None, device="cpu")
    info = features._cached_model.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert features.load_model(None, "cpu") is features.load_model(None, "cpu")


# --------------------------------------------------------------------------- resuming, failures


def test_resume_keeps_old_entries_and_adds_new(image_dir, ids, reference, tmp_path):
    out = tmp_path / "d.pkl"
    first = extract_features(image_dir, out, ids=ids[:3], **FAST)
    assert (first.n_new, first.n_skipped_existing) == (3, 0)
    old = load_descriptors(out)
    old[ids[0]] = np.full((1, 512), 7.0, np.float32)  # mark one entry: it must survive
    with open(out, "wb") as f:
        pickle.dump(old, f)

    second = extract_features(image_dir, out, **FAST)
    assert (second.n_new, second.n_skipped_existing) == (N_IMAGES - 3, 3)
    new = load_descriptors(out)
    assert sorted(new) == ids
    assert (new[ids[0]] == 7.0).all()
    assert_same_descriptors({k: new[k] for k in ids[1:]}, {k: reference[k] for k in ids[1:]})

    third = extract_features(image_dir, out, **FAST)  # nothing left to do
    assert (third.n_new, third.n_skipped_existing) == (0, N_IMAGES)


def test_corrupt_image_is_skipped_and_reported(image_dir, ids, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in image_dir.iterdir():
        (folder / path.name).symlink_to(path.resolve())
    bad = folder / "000000999999.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a JPEG" * 10)

    out = tmp_path / "d.pkl"
    with pytest.warns(UserWarning, match="000000999999.jpg"):
        result = extract_features(folder, out, batch_size=3, **{**FAST, "num_workers": 2})
    assert result.n_new == N_IMAGES
    assert [path for path, _ in result.failed] == [str(bad)]
    assert result.failed[0][1]  # a reason is given
    assert sorted(load_descriptors(out)) == ids


class _FailingModel:
    """Stands in for the model: computes one batch, then raises."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("out of memory (simulated)")
        return self.model(batch)


def test_failure_midway_leaves_existing_output_unchanged(image_dir, ids, tmp_path, monkeypatch):
    out = tmp_path / "d.pkl"
    extract_features(image_dir, out, ids=ids[:2], **FAST)
    before = out.read_bytes()

    model = features.load_model(None, "cpu")
    monkeypatch.setattr(features, "load_model", lambda *args: _FailingModel(model))
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(image_dir, out, batch_size=2, save_every=None, **FAST)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pkl"]  # no temporary file left


def test_periodic_saves_keep_finished_batches(image_dir, ids, reference, tmp_path, monkeypatch):
    out = tmp_path / "d.pkl"
    real_load_model = features.load_model
    monkeypatch.setattr(features, "load_model", lambda *args: _FailingModel(real_load_model(*args)))
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(image_dir, out, batch_size=2, save_every=2, **FAST)
    assert sorted(load_descriptors(out)) == ids[:2]  # the first batch was saved

    monkeypatch.setattr(features, "load_model", real_load_model)
    result = extract_features(image_dir, out, **FAST)  # resume
    assert (result.n_new, result.n_skipped_existing) == (N_IMAGES - 2, 2)
    assert_same_descriptors(load_descriptors(out), reference)


# --------------------------------------------------------------------------- errors


def test_missing_image_dir(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        extract_features(missing, tmp_path / "d.pkl", **FAST)


def test_folder_without_images(tmp_path):
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty_folder"):
        extract_features(empty, tmp_path / "d.pkl", **FAST)


def test_corrupt_output_pickle_is_not_overwritten(image_dir, tmp_path):
    out = tmp_path / "corrupt.pkl"
    out.write_bytes(b"definitely not a pickle")
    with pytest.raises(ValueError, match="corrupt.pkl"):
        extract_features(image_dir, out, **FAST)
    assert out.read_bytes() == b"definitely not a pickle"


def test_output_pickle_of_other_descriptors_is_refused(real_data, image_dir, tmp_path):
    out = tmp_path / "effnet.pkl"
    out.write_bytes((real_data / "descriptors" / "effnet_lite0_coco_mini.pkl").read_bytes())
    with pytest.raises(ValueError, match=r"effnet.pkl.*\(1, 512\)"):
        extract_features(image_dir, out, **FAST)


def test_ids_without_images(image_dir, tmp_path):
    with pytest.raises(ValueError, match="123456789"):
        extract_features(image_dir, tmp_path / "d.pkl", ids=[123456789], **FAST)


def test_unknown_weights(image_dir, tmp_path):
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        extract_features(image_dir, tmp_path / "d.pkl", **{**FAST, "weights": "IMAGENET9K"})


def test_missing_torch_gives_install_hint(monkeypatch, image_dir, tmp_path):
    monkeypatch.setattr(features, "torch", None)
    hint = r"semsearch.features needs torch and torchvision: pip install -e \.\[features\]"
    with pytest.raises(ImportError, match=hint):
        extract_features(image_dir, tmp_path / "d.pkl", **FAST)
    with pytest.raises(ImportError, match=hint):
        describe(Image.new("RGB", (8, 8)), weights=None)


def test_semsearch_imports_without_torch():
    """Without torch, ``import semsearch.features`` works; calling it says what to install."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "import semsearch, semsearch.features\n"
        "try:\n"
        "    semsearch.features.describe('x.jpg')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "semsearch.features needs torch and torchvision: pip install -e .[features]"
    )
