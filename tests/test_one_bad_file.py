"""One bad file never stops a run (issue 22, item 3): unreadable files and folders are skipped and
listed, a full disk is one line naming the file and the space, and a save killed between its two
renames is put back by the next command, which says so."""
from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsearch.bundle import load_bundle, read_info, save_bundle
from semsearch.errors import SemsearchError
from semsearch.photos.folder import PhotoDatabase, index_folder
from test_photo_paths import _snapshot, fake_model_dir
from test_photos import FakeBackbone

HERE = Path(__file__).parent


def _pictures(root: Path) -> Path:
    for name, colour in {"a.png": (200, 0, 0), "locked.png": (0, 200, 0), "private/b.png": (0, 0, 200),
                         "open/c.png": (90, 90, 90)}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(root / name)
    os.chmod(root / "locked.png", 0)
    os.chmod(root / "private", 0)
    return root


def _as_a_plain_user(code: str, tmp_path: Path) -> dict:
    """Run ``code`` where permissions hold: as this user, or, for root, in a user namespace
    (``unshare``) where it is an ordinary user without root's override. The code prints JSON."""
    prefix = ["unshare", "--map-user=1000", "--map-group=1000"] if os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    done = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    if done.returncode != 0 and "unshare" in done.stderr and os.geteuid() == 0:
        pytest.skip(f"no user namespaces here to test permissions as root: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_unreadable_file_and_folder_are_skipped_and_listed(tmp_path):
    root = _pictures(tmp_path / "pics")
    model = fake_model_dir(tmp_path / "model")
    result = _as_a_plain_user(f"""
        import json
        from semsearch.photos.folder import PhotoDatabase, index_folder
        from test_photos import FakeBackbone
        report = index_folder({str(root)!r}, {str(tmp_path / 'db.npz')!r}, model={str(model)!r},
                              backbone=FakeBackbone(), progress=False)
        keys = PhotoDatabase.load({str(tmp_path / 'db.npz')!r}).keys.tolist()
        print(json.dumps({{"keys": keys, "failed": report.failed}}))
    """, tmp_path)
    assert result["keys"] == ["a.png", "open/c.png"]
    reasons = {Path(p).relative_to(root).as_posix(): why for p, why in result["failed"]}
    assert reasons == {"locked.png": "cannot read it (Permission denied)",
                       "private": "cannot list this folder (Permission denied)"}


def test_index_cli_lists_the_unreadable_ones_and_exits_0(tmp_path):
    root = _pictures(tmp_path / "pics")
    model = fake_model_dir(tmp_path / "model")
    result = _as_a_plain_user(f"""
        import contextlib, io, json
        import semsearch.photos.folder as folder
        from test_photos import FakeBackbone
        real = folder.get_backbone
        folder.get_backbone = lambda backbone, expected: FakeBackbone()
        from semsearch.cli.commands import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = main(["index", {str(root)!r}, "--model", {str(model)!r}, "--quiet"])
        print(json.dumps({{"status": status, "err": err.getvalue()}}))
    """, tmp_path)
    assert result["status"] == 0
    assert "skipped " + str(root / "locked.png") + ": cannot read it (Permission denied)" in result["err"]
    assert "skipped " + str(root / "private") + ": cannot list this folder (Permission denied)" in result["err"]
    assert "Traceback" not in result["err"]


# --------------------------------------------------------------------------- disk full


def _disk_full(monkeypatch, after_bytes: int = 0):
    """Make the disk 'fill up' on the next fsync of a file being saved (as a full disk shows itself)."""
    real_fsync = os.fsync

    def fsync(fd):
        if os.fstat(fd).st_size > after_bytes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_index_onto_a_full_disk_is_one_line_and_keeps_the_old_database(tmp_path, monkeypatch):
    from semsearch.common.files import DiskFullError

    root = tmp_path / "pics"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 0, 0)).save(root / "a.png")
    model = fake_model_dir(tmp_path / "model")
    db = tmp_path / "db.npz"
    index_folder(root, db, model=model, backbone=FakeBackbone(), progress=False)
    Image.new("RGB", (40, 30), (0, 200, 0)).save(root / "b.png")
    before = _snapshot(tmp_path)
    _disk_full(monkeypatch)
    with pytest.raises(DiskFullError) as info:
        index_folder(root, db, model=model, backbone=FakeBackbone(), progress=False)
    message = str(info.value)
    assert message.startswith(f"cannot save {db}: no space left on its disk (it needs about ")
    assert re.search(r"it needs about [\d.]+ kB, [\d.,]+ (bytes|kB|MiB|GiB) free\)", message) and "\n" not in message
    assert isinstance(info.value, SemsearchError) and isinstance(info.value, OSError)
    assert _snapshot(tmp_path) == before  # the old database, and no temporary file left
    assert PhotoDatabase.load(db).keys.tolist() == ["a.png"]


def _small_parts():
    from gensim.models import KeyedVectors

    from semsearch.database import ImageDatabase
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder

    glove = KeyedVectors(vector_size=5)
    glove.add_vectors(["dog", "cat", "a"], np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog", "a cat"], glove)
    model = Autoembedder(12, 5, seed=1)
    coco = Descriptors({i: np.random.default_rng(i).random((1, 12)) for i in (139, 285)})
    return model, encoder, ImageDatabase.build(model, coco, encoder)


def test_saving_a_model_onto_a_full_disk_is_one_line_and_keeps_the_old_model(tmp_path, monkeypatch):
    from semsearch.common.files import DiskFullError

    folder = save_bundle(tmp_path / "model", *_small_parts(), info={"marker": 1})
    before = _snapshot(tmp_path)
    _disk_full(monkeypatch)
    with pytest.raises(DiskFullError) as info:
        save_bundle(folder, *_small_parts(), info={"marker": 2})
    assert str(info.value).startswith(f"cannot save {folder.resolve() / 'model.npz'}: no space left on its disk (it needs about ")
    assert "the model folder is untouched" in str(info.value)
    monkeypatch.undo()
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.endswith(".lock")} == {k: v for k, v in before.items() if not k.endswith(".lock")}
    assert read_info(folder)["info"] == {"marker": 1}


def test_features_out_onto_a_full_disk_is_one_line(tmp_path, monkeypatch):
    from semsearch.common.files import DiskFullError
    from semsearch.descriptors import Descriptors

    descriptors = Descriptors({i: np.random.default_rng(i).random((1, 64)) for i in range(50)})
    out = tmp_path / "features.npz"
    out.write_bytes(b"previous")
    descriptors.save(tmp_path / "reference.npz")  # how large the file really is
    real_size = (tmp_path / "reference.npz").stat().st_size
    (tmp_path / "reference.npz").unlink()
    _disk_full(monkeypatch)
    with pytest.raises(DiskFullError, match=r"features\.npz: no space left on its disk \(it needs about ") as info:
        descriptors.save(out)
    needed = float(re.search(r"about ([\d.]+) kB", str(info.value)).group(1)) * 1000
    assert 0.8 * real_size <= needed <= 1.2 * real_size
    assert os.listdir(tmp_path) == ["features.npz"] and out.read_bytes() == b"previous"


def test_the_cli_prints_a_full_disk_as_one_line(tmp_path, monkeypatch, capsys):
    from semsearch.cli.commands import main
    import semsearch.photos.folder as folder

    root = tmp_path / "pics"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 0, 0)).save(root / "a.png")
    model = fake_model_dir(tmp_path / "model")
    monkeypatch.setattr(folder, "get_backbone", lambda backbone, expected: FakeBackbone())
    _disk_full(monkeypatch)
    assert main(["index", str(root), "--db", str(tmp_path / "db.npz"), "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"semsearch: error: cannot save {tmp_path / 'db.npz'}: no space left on its disk")
    assert err.count("\n") == 1 and not (tmp_path / "db.npz").exists()


# --------------------------------------------------------------------------- a save killed mid-swap


def test_the_next_command_puts_back_a_model_left_aside_by_a_killed_save_and_says_so(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *_small_parts(), info={"marker": 1})
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(HERE)!r})
import semsearch.bundle as bundle
from test_one_bad_file import _small_parts
bundle._step = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == "old-moved-aside" else None
bundle.save_bundle({str(folder)!r}, *_small_parts(), info={{"marker": 2}})
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=HERE.parent, capture_output=True)
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    assert not folder.exists() and len(list(tmp_path.glob(".model.old-*"))) == 1  # what `ls` showed: no model
    with pytest.warns(UserWarning, match=r"restored the model folder .*model from \.model\.old-\w+, where a save"):
        model, _, database = load_bundle(folder)
    assert folder.is_dir() and read_info(folder)["info"] == {"marker": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.lock", "model"]  # leftovers removed
    assert len(database) == 2


def test_a_save_still_running_is_not_undone_by_a_reader(tmp_path):
    import fcntl

    folder = save_bundle(tmp_path / "model", *_small_parts(), info={"marker": 1})
    lock = os.open(tmp_path / ".model.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # a save holds the lock ...
    try:
        os.rename(folder, tmp_path / ".model.old-live")  # ... between its two renames
        load_bundle(folder)  # reads the set-aside copy, and leaves the save's state alone
        assert not folder.exists() and (tmp_path / ".model.old-live").is_dir()
    finally:
        os.close(lock)
