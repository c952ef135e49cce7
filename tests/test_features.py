"""Tests of semsearch.features (descriptors of image files) on a few real COCO images.

Most run ResNet18 with random weights (nothing is downloaded); one module-scoped pass runs
the pretrained, offline EfficientNet-Lite0 over all 239 images and compares it with the
shared data's ``effnet_lite0_coco_mini.pkl``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

from PIL import Image

from semsearch import backbones, features
from semsearch.cnn import torch_backbones
from semsearch.cli import features as features_cli
from semsearch.descriptors import Descriptors
from semsearch.errors import MissingExtraError
from semsearch.features import (
    ExtractionResult,
    describe,
    describe_files,
    extract_features,
    image_id_from_path,
)

GREY_IMAGE = "000000431848.jpg"  # the one greyscale ("L") image of the 239
N_IMAGES = 8
FAST = dict(backbone="resnet18", pretrained=False, device="cpu", num_workers=0, progress=False)
RANDOM_RESNET = backbones.backbone_info("resnet18", pretrained=False)


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


def load_descriptors(path: Path, seed: int = 0) -> dict:
    """The file as ``{coco_id: (1, D)}``, after checking it records random-weight ResNet18."""
    loaded = Descriptors.load(path)
    assert loaded.backbone_info == backbones.backbone_info("resnet18", pretrained=False, seed=seed)
    return loaded.to_dict()


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
    torch_backbones._cached_backbone.cache_clear()  # rebuild the random model from its seed
    extract_features(image_dir, tmp_path / "b3.pkl", batch_size=3, **FAST)
    assert_same_descriptors(load_descriptors(tmp_path / "b3.pkl"), reference)

    extract_features(image_dir, tmp_path / "b8.pkl", batch_size=N_IMAGES, **FAST)
    b8 = load_descriptors(tmp_path / "b8.pkl")
    for k in reference:
        np.testing.assert_array_equal(b8[k], reference[k])  # same run twice: bit for bit


def test_seed_changes_random_weights(image_dir, reference, tmp_path):
    out = tmp_path / "seed1.pkl"
    extract_features(image_dir, out, batch_size=N_IMAGES, seed=1, ids=[min(reference)], **FAST)
    assert not np.allclose(load_descriptors(out, seed=1)[min(reference)], reference[min(reference)])


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
    with pytest.raises(ValueError, match="IMG_0139.jpg is not named as COCO names its images"):
        image_id_from_path("IMG_0139.jpg")  # a holiday photo is not COCO image 139


def test_describe_equals_batch_extraction(image_dir, reference):
    grey_id = int(GREY_IMAGE[:-4])
    vector = describe(image_dir / GREY_IMAGE, "resnet18", pretrained=False, device="cpu")
    assert vector.shape == (512,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, reference[grey_id][0], rtol=1e-4, atol=1e-5)

    with Image.open(image_dir / GREY_IMAGE) as image:  # a PIL image, mode "L"
        from_pil = describe(image, "resnet18", pretrained=False, device="cpu")
    np.testing.assert_array_equal(from_pil, vector)


def test_describe_caches_the_model():
    torch_backbones._cached_backbone.cache_clear()
    image = Image.new("RGB", (64, 48), (120, 30, 200))
    describe(image, "resnet18", pretrained=False, device="cpu")
    describe(image, "resnet18", pretrained=False, device="cpu")
    info = torch_backbones._cached_backbone.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert backbones.load_backbone("resnet18", pretrained=False, device="cpu") is \
        backbones.load_backbone("resnet18", pretrained=False, device="cpu")


# --------------------------------------------------------------------------- resuming, failures


def test_resume_keeps_old_entries_and_adds_new(image_dir, ids, reference, tmp_path):
    out = tmp_path / "d.pkl"
    first = extract_features(image_dir, out, ids=ids[:3], **FAST)
    assert (first.n_new, first.n_skipped_existing) == (3, 0)
    old = load_descriptors(out)
    old[ids[0]] = np.full((1, 512), 7.0, np.float32)  # mark one entry: it must survive
    Descriptors(old, backbone=RANDOM_RESNET).save(out)

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


def _failing(backbone):
    """A copy of the backbone whose forward pass computes one batch, then raises."""
    import copy

    failing, calls = copy.copy(backbone), []

    def forward(batch):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("out of memory (simulated)")
        return backbone.forward(batch)

    failing.forward = forward
    return failing


def test_failure_midway_leaves_existing_output_unchanged(image_dir, ids, tmp_path, monkeypatch):
    out = tmp_path / "d.pkl"
    extract_features(image_dir, out, ids=ids[:2], **FAST)
    before = out.read_bytes()

    real_load = features.load_backbone
    monkeypatch.setattr(features, "load_backbone", lambda *args, **kw: _failing(real_load(*args, **kw)))
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(image_dir, out, batch_size=2, save_every=None, **FAST)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pkl"]  # no temporary file left


def test_periodic_saves_keep_finished_batches(image_dir, ids, reference, tmp_path, monkeypatch):
    out = tmp_path / "d.pkl"
    real_load = features.load_backbone
    monkeypatch.setattr(features, "load_backbone", lambda *args, **kw: _failing(real_load(*args, **kw)))
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(image_dir, out, batch_size=2, save_every=2, **FAST)
    assert sorted(load_descriptors(out)) == ids[:2]  # the first batch was saved

    monkeypatch.setattr(features, "load_backbone", real_load)
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
    with pytest.raises(ValueError, match=r"effnet.pkl is not a semsearch descriptor file \(\.npz\) but another format"):
        extract_features(image_dir, out, **FAST)  # the course's pickle: never rewritten as a .npz (issue 22)


def test_ids_without_images(image_dir, tmp_path):
    with pytest.raises(ValueError, match="123456789"):
        extract_features(image_dir, tmp_path / "d.pkl", ids=[123456789], **FAST)


def test_unknown_weights(image_dir, tmp_path):
    legacy = dict(device="cpu", num_workers=0, progress=False)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        extract_features(image_dir, tmp_path / "d.pkl", weights="IMAGENET9K", **legacy)
    with pytest.raises(ValueError, match="weights= is ResNet18's option, but backbone='efficientnet-lite0'"):
        extract_features(image_dir, tmp_path / "d.pkl", weights=None, backbone="efficientnet-lite0", **legacy)


def test_legacy_weights_none_is_random_resnet18(image_dir, ids, reference, tmp_path):
    out = tmp_path / "legacy.npz"
    extract_features(image_dir, out, weights=None, batch_size=N_IMAGES, device="cpu", num_workers=0, progress=False)
    assert_same_descriptors(load_descriptors(out), reference)


def test_unknown_backbone(image_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; choose one of resnet18, efficientnet-lite0"):
        extract_features(image_dir, tmp_path / "d.npz", **{**FAST, "backbone": "vgg16"})


def test_resume_from_another_backbone_is_refused(image_dir, ids, tmp_path):
    out = tmp_path / "d.npz"
    extract_features(image_dir, out, ids=ids[:1], **FAST)
    before = out.read_bytes()
    with pytest.raises(ValueError, match=r"cannot resume from .*d.npz.*resnet18 \(512-d\), random \(seed 0\) weights.*"
                                         r"resnet18 \(512-d\), random \(seed 1\) weights"):
        extract_features(image_dir, out, **{**FAST, "seed": 1})
    assert out.read_bytes() == before


def test_missing_torch_gives_install_hint(monkeypatch, image_dir, tmp_path):
    torch_backbones._cached_backbone.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    hint = r"describing images needs torch and torchvision: pip install 'semsearch\[features\]'"
    with pytest.raises(MissingExtraError, match=hint):
        extract_features(image_dir, tmp_path / "d.pkl", **FAST)
    with pytest.raises(MissingExtraError, match=hint):
        describe(Image.new("RGB", (8, 8)), pretrained=False)


def test_missing_efficientnet_package_names_it(monkeypatch):
    torch_backbones._cached_backbone.cache_clear()
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingExtraError, match=r"efficientnet-lite-pytorch.*pip install 'semsearch\[features\]'"):
        backbones.load_backbone("efficientnet-lite0", device="cpu", runtime="torch")


def test_efficientnet_works_without_torch_and_resnet_says_what_to_install(image_dir):
    """Without torch, EfficientNet-Lite0 describes images (ONNX Runtime); ResNet18 names the extra."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "import semsearch, semsearch.features\n"
        f"print(semsearch.features.describe({str(next(image_dir.glob('*.jpg')))!r}).shape)\n"
        "try:\n"
        "    semsearch.features.describe('x.jpg', 'resnet18')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "(1280,)", "describing images needs torch and torchvision: pip install 'semsearch[features]'"
    ]


# --------------------------------------------------------------------------- describe_files


@pytest.fixture(scope="module")
def bad_files(image_dir, tmp_path_factory) -> dict[str, Path]:
    """One file of each kind that cannot be described, beside two good ones."""
    folder = tmp_path_factory.mktemp("bad")
    good = sorted(image_dir.glob("*.jpg"))[0].resolve()
    whole = good.read_bytes()
    files = {"empty": folder / "empty.jpg", "truncated": folder / "truncated.jpg",
             "text": folder / "notes.jpg", "bomb": folder / "bomb.png", "missing": folder / "gone.jpg"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(whole[: len(whole) // 3])
    files["text"].write_text("not an image")
    Image.new("1", (12_000, 8_000)).save(files["bomb"])  # 96 Mpixels, a few kB on disk
    return files


def test_describe_files_sets_unreadable_files_aside(image_dir, reference, bad_files):
    good = sorted(image_dir.glob("*.jpg"))[:2]
    paths = [bad_files["empty"], good[0], bad_files["truncated"], bad_files["text"],
             bad_files["bomb"], good[1], bad_files["missing"]]
    backbone = backbones.load_backbone("resnet18", pretrained=False, device="cpu")
    vectors, ok, failed = describe_files(paths, backbone, batch_size=3, num_workers=0, progress=False)

    assert ok == good and vectors.shape == (2, 512) and vectors.dtype == np.float32
    for row, path in enumerate(good):
        np.testing.assert_allclose(vectors[row], reference[int(path.stem)][0], rtol=1e-4, atol=1e-5)
    reasons = dict(failed)
    assert list(reasons) == [str(bad_files[k]) for k in ("empty", "truncated", "text", "bomb", "missing")]
    assert reasons[str(bad_files["empty"])] == "is empty (0 bytes), not an image"
    assert "truncated" in reasons[str(bad_files["truncated"])]
    assert "is not an image file PIL can read" in reasons[str(bad_files["text"])]
    assert "pixels, more than the limit" in reasons[str(bad_files["bomb"])]
    assert "not found" in reasons[str(bad_files["missing"])]


def test_describe_files_with_nothing_readable(bad_files):
    backbone = backbones.load_backbone("resnet18", pretrained=False, device="cpu")
    vectors, ok, failed = describe_files([bad_files["empty"]], backbone, progress=False)
    assert vectors.shape == (0, 512) and ok == [] and len(failed) == 1


@pytest.mark.parametrize("paths, message", [("a.jpg", "not one path"), (5, "got int")])
def test_describe_files_wants_a_list(paths, message):
    with pytest.raises(TypeError, match=message):
        describe_files(paths, "resnet18")


def test_describe_files_bad_options(image_dir):
    paths = sorted(image_dir.glob("*.jpg"))[:1]
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        describe_files(paths, "resnet18", batch_size=0)
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        describe_files(paths, "resnet18", engine="spark")


def test_describe_one_unreadable_file_is_one_error(bad_files):
    with pytest.raises(ValueError, match=r"empty.jpg is empty \(0 bytes\)"):
        describe(bad_files["empty"], "resnet18", pretrained=False, device="cpu")


# --------------------------------------------------------------------------- pretrained EfficientNet-Lite0


@pytest.fixture(scope="module")
def effnet_all(real_data):
    """One pass of the pretrained EfficientNet-Lite0 over the 239 real images (20-40 s on 2 cores)."""
    paths = sorted((real_data / "coco" / "images").glob("*.jpg"))
    backbone = backbones.load_backbone("efficientnet-lite0", device="cpu")  # ONNX Runtime
    assert backbone.runtime == "onnx"
    return paths, describe_files(paths, backbone, batch_size=32, progress=False)


def test_pretrained_efficientnet_reproduces_the_shared_descriptors(real_data, effnet_all):
    """The ONNX path gives the descriptors the torch path made (the shared file) on all 239 images."""
    paths, (vectors, ok, failed) = effnet_all
    reference = Descriptors.load(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl")
    assert failed == [] and ok == paths and vectors.shape == (239, 1280)
    expected = reference.vectors_of([int(p.stem) for p in paths])
    assert np.abs(vectors - expected).max() <= 1e-4
    assert reference.backbone_info == backbones.backbone_info("efficientnet-lite0")  # named by its size


def test_onnx_and_torch_runtimes_agree_on_real_images(image_dir):
    paths = sorted(image_dir.glob("*.jpg"))
    on_torch = backbones.load_backbone("efficientnet-lite0", device="cpu", runtime="torch")
    on_onnx = backbones.load_backbone("efficientnet-lite0", runtime="onnx")
    a, ok_a, _ = describe_files(paths, on_torch, batch_size=3, progress=False)
    b, ok_b, _ = describe_files(paths, on_onnx, batch_size=5, progress=False)
    assert ok_a == ok_b == paths and on_torch.info == on_onnx.info
    assert np.abs(a - b).max() <= 1e-4


def test_describe_equals_describe_files_for_pretrained_efficientnet(effnet_all):
    paths, (vectors, _, _) = effnet_all
    one = describe(paths[5])  # the default backbone
    assert one.shape == (1280,)
    np.testing.assert_allclose(one, vectors[5], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- command line


def test_cli_run_writes_a_descriptor_file_with_its_backbone(image_dir, ids, reference, tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="semsearch")
    features_cli.add_parser(parser.add_subparsers())
    out = tmp_path / "d.npz"
    args = parser.parse_args(["features", str(image_dir), "--out", str(out), "--backbone", "resnet18",
                              "--no-pretrained", "--workers", "0", "--device", "cpu"])
    assert args.run(args) == 0
    assert f"{out}: {N_IMAGES} new resnet18 descriptors, 0 already there, 0 images could not be read" in capsys.readouterr().out
    assert_same_descriptors(load_descriptors(out), reference)
    with pytest.raises(SystemExit):
        parser.parse_args(["features", str(image_dir), "--out", str(out), "--backbone", "vgg"])
