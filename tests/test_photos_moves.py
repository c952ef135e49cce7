"""Re-indexing recognises photos by content: moved, renamed, copied, touched; and keeps their metadata."""
from __future__ import annotations

import datetime as dt
import os
import shutil

import numpy as np
import pytest

from semsearch.common.files import save_npz
from semsearch.photos.folder import FORMAT_1, PhotoDatabase, index_folder
from semsearch.photos.hashing import content_hash
from semsearch.photos.metadata import format_time, wall_clock_seconds

from photo_helpers import FakeBackbone, fake_model, holiday_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return fake_model(tmp_path_factory.mktemp("model"))


@pytest.fixture
def holiday(real_data, tmp_path):
    root = tmp_path / "Pictures"
    return root, holiday_folder(real_data, root)


def run(root, db, model_dir, backbone):
    return index_folder(root, db, model=model_dir, backbone=backbone, progress=False, batch_size=4)


def test_metadata_columns_from_exif_or_mtime(holiday, model_dir, tmp_path):
    root, planted = holiday
    report = run(root, tmp_path / "db.npz", model_dir, FakeBackbone())
    assert report.n_new == len(planted) == 16
    db = PhotoDatabase.load(tmp_path / "db.npz")
    rows = db.rows()
    from PIL import Image

    for name, (taken, camera, orientation) in planted.items():
        info = db.metadata.info(rows[name])
        assert info.content_hash == content_hash(root / name)
        w, h = Image.open(root / name).size
        if orientation == 6:  # stored sideways: shown taller than wide
            w, h = h, w
        assert (info.width, info.height, info.orientation) == (w, h, orientation)
        if taken is None:
            assert info.taken_source == "mtime" and info.taken_text() == "2018-03-01 12:00:00" and info.camera == ""
        else:
            assert info.taken_source == "exif" and info.taken == wall_clock_seconds(taken)
            assert info.camera == {"Google": "Google Pixel 3", "Canon": "Canon EOS 80D"}[camera[0]]
    assert format_time(wall_clock_seconds(dt.datetime(2019, 7, 10, 10, 30))) == "2019-07-10 10:30:00"


def test_moving_a_folder_and_renaming_ten_files_describes_nothing(holiday, model_dir, tmp_path):
    root, planted = holiday
    db_path = tmp_path / "db.npz"
    run(root, db_path, model_dir, FakeBackbone())
    before = PhotoDatabase.load(db_path)
    (root / "Trips").mkdir()
    shutil.move(root / "Holiday 2019", root / "Trips" / "Holiday 2019")
    renamed = [*sorted((root / "2020").iterdir()), *sorted((root / "scans").iterdir()),
               *sorted((root / "Trips" / "Holiday 2019").glob("IMG 000[01].jpg"))]
    assert len(renamed) == 10
    for n, path in enumerate(renamed):
        path.rename(path.with_name(f"renamed {n}.jpg"))
    backbone = FakeBackbone()
    report = run(root, db_path, model_dir, backbone)
    assert backbone.n_described == 0
    assert (report.n_new, report.n_changed, report.n_deleted, report.n_moved, report.n_unchanged) == (0, 0, 0, 16, 0)
    assert report.summary() == "16 images: 0 new, 0 changed, 0 deleted, 16 moved, 0 unchanged; 0 skipped"
    after = PhotoDatabase.load(db_path)
    assert not set(after.keys.tolist()) & set(before.keys.tolist())  # every path changed
    old_by_hash = {before.metadata.content_hash[r]: r for r in range(len(before))}
    for r, key in enumerate(after.keys.tolist()):
        old = old_by_hash[after.metadata.content_hash[r]]
        np.testing.assert_array_equal(after.descriptors[r], before.descriptors[old])
        assert after.metadata.taken[r] == before.metadata.taken[old]
        assert after.metadata.content_hash[r] == content_hash(root / key)
    again = run(root, db_path, model_dir, FakeBackbone())
    assert again.summary() == "16 images: 0 new, 0 changed, 0 deleted, 16 unchanged; 0 skipped"


def test_copies_touches_and_twins_are_not_described_again(holiday, model_dir, tmp_path):
    root, _ = holiday
    db_path = tmp_path / "db.npz"
    run(root, db_path, model_dir, FakeBackbone())
    shutil.copy(root / "2020" / "IMG_0.JPG", root / "copy of IMG_0.JPG")  # a copy of an indexed photo
    os.utime(root / "2020" / "IMG_1.JPG", (1e9, 1e9))  # touched: same content, new mtime
    source = root / "scans" / "scan 0.jpg"
    from PIL import Image

    Image.open(source).rotate(90, expand=True).save(root / "new.jpg")  # a new photo, copied in twice
    shutil.copy(root / "new.jpg", root / "new (1).jpg")
    backbone = FakeBackbone()
    report = run(root, db_path, model_dir, backbone)
    assert backbone.n_described == 1
    assert (report.n_new, report.n_copies, report.n_moved, report.n_unchanged, report.n_deleted) == (2, 1, 0, 16, 0)
    db = PhotoDatabase.load(db_path)
    rows = db.rows()
    np.testing.assert_array_equal(db.descriptors[rows["copy of IMG_0.JPG"]], db.descriptors[rows["2020/IMG_0.JPG"]])
    np.testing.assert_array_equal(db.descriptors[rows["new.jpg"]], db.descriptors[rows["new (1).jpg"]])
    assert db.mtimes[rows["2020/IMG_1.JPG"]] == (root / "2020" / "IMG_1.JPG").stat().st_mtime_ns


def test_a_database_from_before_metadata_is_filled_in_without_describing(holiday, model_dir, tmp_path):
    root, planted = holiday
    db_path = tmp_path / "db.npz"
    run(root, db_path, model_dir, FakeBackbone())
    new = PhotoDatabase.load(db_path)
    arrays = {name: getattr(new, name) for name in ("keys", "sizes", "mtimes", "descriptors", "vectors")}
    arrays.update(root=np.array(new.root), backbone=np.array(new.backbone_name), model=np.array(new.model_dir),
                  model_sha=np.array(new.model_sha))  # the file's names for them
    save_npz(db_path, FORMAT_1, **arrays)  # what semsearch wrote before content hashes
    old = PhotoDatabase.load(db_path)
    assert not old.metadata.is_known(0) and len(old) == 16
    backbone = FakeBackbone()
    report = run(root, db_path, model_dir, backbone)
    assert backbone.n_described == 0 and report.n_unchanged == 16
    filled = PhotoDatabase.load(db_path)
    for name, column in new.metadata.arrays().items():
        np.testing.assert_array_equal(getattr(filled.metadata, name), column)


def test_a_damaged_metadata_column_is_refused(holiday, model_dir, tmp_path):
    root, _ = holiday
    db_path = tmp_path / "db.npz"
    run(root, db_path, model_dir, FakeBackbone())
    db = PhotoDatabase.load(db_path)
    db.metadata.taken = db.metadata.taken[:-1]
    db.save(tmp_path / "bad.npz")
    from semsearch.errors import InputError

    with pytest.raises(InputError, match="different lengths"):
        PhotoDatabase.load(tmp_path / "bad.npz")
