"""`index --watch`: the database follows files created, modified, moved and deleted while it runs."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from semsearch.photos.folder import PhotoDatabase
from semsearch.photos.hashing import content_hash
from semsearch.photos.watch import watch_folder

from photo_helpers import FakeBackbone, coco_jpegs, fake_model, write_photo

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("use_watchdog", [False, True], ids=["polling", "watchdog"])
def test_watch_follows_create_modify_move_delete(real_data, tmp_path, use_watchdog):
    if use_watchdog:
        pytest.importorskip("watchdog")
    sources = coco_jpegs(real_data)[40:50]
    root, db = tmp_path / "Camera", tmp_path / "photos.npz"
    for n in range(3):
        write_photo(sources[n], root / f"IMG {n}.jpg")
    backbone, reports, stop = FakeBackbone(), [], threading.Event()
    options = dict(model=fake_model(tmp_path / "model"), backbone=backbone, progress=False)
    thread = threading.Thread(target=watch_folder, args=(root, db), daemon=True,
                              kwargs=dict(on_report=reports.append, settle=0.3, interval=0.1, stop=stop,
                                          use_watchdog=use_watchdog, **options))
    thread.start()

    def keys():
        return sorted(PhotoDatabase.load(db).keys.tolist()) if db.exists() else None

    wait_for(lambda: len(reports) == 1, "the first index")
    assert keys() == ["IMG 0.jpg", "IMG 1.jpg", "IMG 2.jpg"] and backbone.n_described == 3
    # 1. created
    write_photo(sources[3], root / "new" / "IMG 3.jpg")
    write_photo(sources[4], root / "IMG 4.jpg")
    wait_for(lambda: keys() == ["IMG 0.jpg", "IMG 1.jpg", "IMG 2.jpg", "IMG 4.jpg", "new/IMG 3.jpg"], "2 new photos")
    assert backbone.n_described == 5
    # 2. modified: other content under the same name
    write_photo(sources[5], root / "IMG 0.jpg")
    new_hash = content_hash(root / "IMG 0.jpg")
    wait_for(lambda: PhotoDatabase.load(db).metadata.content_hash[0] == new_hash, "the modified photo")
    assert backbone.n_described == 6 and reports[-1].n_changed == 1
    # 3. moved (renamed into another folder): not described again
    (root / "moved").mkdir()
    os.rename(root / "IMG 1.jpg", root / "moved" / "IMG 1 renamed.jpg")
    wait_for(lambda: "moved/IMG 1 renamed.jpg" in keys(), "the moved photo")
    assert "IMG 1.jpg" not in keys() and backbone.n_described == 6 and reports[-1].n_moved == 1
    # 4. deleted
    (root / "IMG 2.jpg").unlink()
    wait_for(lambda: "IMG 2.jpg" not in keys(), "the deleted photo")
    assert reports[-1].n_deleted == 1
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    final = PhotoDatabase.load(db)
    assert sorted(final.keys.tolist()) == sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert [content_hash(root / k) for k in final.keys] == final.metadata.content_hash.tolist()


def test_cli_watch_stops_on_ctrl_c_with_a_complete_database(real_data, tmp_path):
    """The real command (EfficientNet-Lite0, the shipped model) in a subprocess, interrupted with SIGINT
    while it describes a batch of new photos."""
    pytest.importorskip("efficientnet_lite_pytorch")
    sources = coco_jpegs(real_data)[60:80]
    root = tmp_path / "Phone"
    for n in range(2):
        write_photo(sources[n], root / f"IMG {n}.jpg")
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", str(root), "--watch", "--interval", "0.3",
                                "--quiet", "--batch-size", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        lines = []
        for _ in range(2):
            lines.append(process.stdout.readline())
        assert lines[0].startswith(f"watching {root}") and "2 images: 2 new" in lines[1]
        for n in range(2, 20):
            shutil.copy(sources[n], root / f"IMG {n}.jpg")
        time.sleep(1.5)  # the batch has started: interrupt it
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    db = root / ".semsearch" / "photos.npz"
    final = PhotoDatabase.load(db)  # whole: loads, every array the same length
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1] == f"stopped: {db} is complete ({len(final)} images)"
    assert 2 <= len(final) <= 20 and set(final.keys.tolist()) <= {f"IMG {n}.jpg" for n in range(20)}
