"""Search with filters (date taken, folder, camera, size, orientation) on a real photo folder with EXIF."""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.database import ImageDatabase
from semsearch.errors import InputError
from semsearch.photos.filters import NothingPassesError, PhotoColumns, PhotoFilter, filtered_query, parse_when
from semsearch.photos.folder import index_folder, load_search

from photo_helpers import FakeBackbone, fake_model, holiday_folder


@pytest.fixture(scope="module")
def indexed(real_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "Pictures"
    planted = holiday_folder(real_data, root)
    model = fake_model(tmp_path_factory.mktemp("model"))
    db = root / ".semsearch" / "photos.npz"
    index_folder(root, db, model=model, backbone=FakeBackbone(), progress=False)
    return root, planted, db


def expected(root, planted, *, after=None, before=None, folder=None, camera=None, orientation=None, min_size=None):
    """Which planted photos pass, worked out from what each was given (not from the database)."""
    from PIL import Image

    kept = set()
    for name, (taken, cam, rotation) in planted.items():
        when = taken or dt.datetime.fromtimestamp(os.stat(root / name).st_mtime)
        w, h = Image.open(root / name).size
        if rotation == 6:
            w, h = h, w
        shape = "landscape" if w > h else "portrait" if h > w else "square"
        ok = (after is None or when >= parse_when(after)) and (before is None or when < parse_when(before))
        ok &= folder is None or f"/{folder.lower()}/" in "/" + name.lower()
        ok &= camera is None or (cam is not None and camera.lower() in " ".join(dict.fromkeys(cam)).lower())
        ok &= orientation is None or shape == orientation
        ok &= min_size is None or (max(w, h) >= max(min_size) and min(w, h) >= min(min_size))
        if ok:
            kept.add(name)
    return kept


CASES = [
    dict(after="2019-06", before="2019-09"),
    dict(after="2019-06", before="2019-09", folder="Holiday 2019", camera="Pixel"),
    dict(folder="day 2"),
    dict(folder="holiday 2019/DAY 2"),
    dict(camera="canon eos"),
    dict(before="2019"),  # the scans: no EXIF, their mtime is 2018-03-01
    dict(after="2020-02-15"),
    dict(orientation="portrait"),
    dict(orientation="landscape", min_size=(600, 400)),
    dict(min_size=(640, 480)),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_the_filter_keeps_exactly_the_photos_that_pass(indexed, kw):
    root, planted, db = indexed
    columns = PhotoColumns.load(db)
    passing = set(columns.keys[PhotoFilter(**kw).mask(columns)].tolist())
    assert passing == expected(root, planted, **kw) and passing


def test_filtered_search_ranks_the_passing_photos_as_a_search_of_them_alone(indexed):
    root, planted, db = indexed
    database, columns = load_search(db).database, PhotoColumns.load(db)
    only = PhotoFilter(after="2019-06", before="2019-09", folder="Holiday 2019", camera="pixel")
    keys, scores = filtered_query(database, columns, "a dog on the beach", only, k=5)
    wanted = sorted(expected(root, planted, after="2019-06", before="2019-09", folder="Holiday 2019", camera="pixel"))
    alone = ImageDatabase(np.array(wanted), database.vectors[[database.keys.tolist().index(k) for k in wanted]],
                          database.text_encoder)
    ref_keys, ref_scores = alone.query("a dog on the beach", k=5)
    assert keys.tolist() == ref_keys.tolist()
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    assert len(filtered_query(database, columns, "a dog", only, k=100)[0]) == len(wanted) == 8


def test_a_filter_that_leaves_nothing_says_so(indexed):
    _, _, db = indexed
    with pytest.raises(NothingPassesError, match=r'no photo passes the filter \(camera contains "nikon"\) among the 16 indexed'):
        filtered_query(load_search(db).database, PhotoColumns.load(db), "a dog", PhotoFilter(camera="nikon"))


@pytest.mark.parametrize("kw, message", [
    (dict(after="June 2019"), "not YYYY"),
    (dict(after="2019-09", before="2019-06"), "is not before"),
    (dict(orientation="sideways"), "orientation must be one of"),
])
def test_bad_filters_are_one_clear_error(kw, message):
    with pytest.raises(InputError, match=message):
        PhotoFilter(**kw)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 12), seed=st.integers(0, 10_000), density=st.floats(0, 1))
def test_query_where_equals_ranking_the_kept_rows_alone(n, k, seed, density):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    where = rng.random(n) < density
    database = ImageDatabase(np.arange(n), vectors)
    query = rng.normal(size=4).astype(np.float32)
    ids, scores = database.query(query, k=k, where=where)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    reference = (unit @ (query / np.linalg.norm(query)))[where]
    order = np.argsort(-reference, kind="stable")[:k]
    np.testing.assert_allclose(scores, reference[order], rtol=1e-5, atol=1e-6)
    assert set(ids.tolist()) <= set(np.flatnonzero(where).tolist()) and len(ids) == min(k, where.sum())


def cli(argv):
    from semsearch.cli.commands import _Parser
    from semsearch.cli.photos import add_search_parser

    parser = _Parser(prog="semsearch")
    add_search_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_filters_print_dates_and_paths_with_spaces(indexed, capsys):
    root, planted, db = indexed
    argv = ["search", "a dog on the beach", "--db", str(db), "-k", "20"]
    assert cli([*argv, "--after", "2019-06", "--before", "2019-09", "--in", "Holiday 2019", "--camera", "Pixel"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('top 8 of the images that pass (taken from 2019-06-01 00:00 to before 2019-09-01 00:00, '
                             'in folder "Holiday 2019", camera contains "Pixel")')
    assert sum("Holiday 2019/" in line for line in out) == 8 and "taken 2019-07-10 10:30" in "\n".join(out)
    assert cli([*argv, "--in", "scans"]) == 0
    assert "(file date)" in capsys.readouterr().out
    assert cli([*argv, "--in", "Holiday 2019", "--print0"]) == 0
    files = capsys.readouterr().out.split("\0")
    assert files[-1] == "" and sorted(files[:-1]) == sorted(str(root.resolve() / n) for n in planted if n.startswith("Holiday"))


def test_cli_filters_need_a_photo_database():
    with pytest.raises(InputError, match="need an indexed folder"):
        cli(["search", "a dog", "--camera", "pixel"])
    with pytest.raises(SystemExit):  # argparse: one of them
        cli(["search", "a dog", "--paths", "--print0"])
