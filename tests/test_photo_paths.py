"""Only the folder's own files (issue 22, items 1 and 5): links, planted keys, files swapped
for links after indexing, and names that are not UTF-8 or hold URL characters or line breaks,
through indexing, loading, ``search --paths/--print0`` and the web app."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from semsearch.bundle import save_bundle
from semsearch.database import ImageDatabase
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError
from semsearch.model import Autoembedder
from semsearch.photos import folder as photo_folder
from semsearch.photos.folder import PhotoDatabase, index_folder
from semsearch.text import TextEmbedder
from test_photos import FakeBackbone

GREEN, RED = (30, 200, 30), (220, 20, 20)
LATIN1 = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name: not UTF-8


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return fake_model_dir(tmp_path_factory.mktemp("model"))


def fake_model_dir(folder: Path) -> Path:
    """A small model folder whose backbone is test_photos' FakeBackbone (12-d descriptors)."""
    from gensim.models import KeyedVectors

    words = ["dog", "cat", "beach", "a", "on", "the"]
    glove = KeyedVectors(vector_size=5)
    glove.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 5)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog on the beach", "a cat"], glove)
    model = Autoembedder(12, 5, seed=1)
    coco = Descriptors({i: np.random.default_rng(i).random((1, 12)) for i in (139, 285)})
    return save_bundle(folder, model, encoder, ImageDatabase.build(model, coco, encoder),
                       info={"backbone": "fake"})


def _png(path: Path, colour, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


def _index(root, db, model_dir, **kw):
    return index_folder(root, db, model=model_dir, backbone=FakeBackbone(), progress=False, batch_size=2, **kw)


def _snapshot(*folders) -> dict:
    """Every file under the folders: path -> (size, mtime_ns, bytes), links not followed."""
    found = {}
    for top in folders:
        for directory, _, names in os.walk(top):
            for name in names:
                path = os.path.join(directory, name)
                if os.path.islink(path):
                    found[path] = ("link", os.readlink(path))
                else:
                    found[path] = (os.path.getsize(path), os.stat(path).st_mtime_ns, Path(path).read_bytes())
    return found


@pytest.fixture
def outside(tmp_path):
    """A folder beside the photo folder, holding a red 'secret' image."""
    return _png(tmp_path / "private" / "secret.png", RED)


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "Pictures"
    _png(root / "a.png", GREEN)
    _png(root / "sub" / "b.png", GREEN)
    return root


def _reasons(report, root):
    return {Path(p).relative_to(root).as_posix(): why for p, why in report.failed}


# --------------------------------------------------------------------------- links while indexing


def test_a_file_link_to_outside_is_skipped_and_listed(root, outside, model_dir, tmp_path):
    (root / "secret.png").symlink_to(outside)
    before = _snapshot(root, outside.parent)
    report = _index(root, tmp_path / "db.npz", model_dir)
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["a.png", "sub/b.png"]
    assert "outside the folder (not followed)" in _reasons(report, root)["secret.png"]
    assert _snapshot(root, outside.parent) == before


def test_a_chain_of_links_ending_outside_is_skipped(root, outside, model_dir, tmp_path):
    (root / "sub" / "hop.png").symlink_to(outside)
    (root / "chain.png").symlink_to(root / "sub" / "hop.png")  # inside -> inside -> outside
    report = _index(root, tmp_path / "db.npz", model_dir)
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["a.png", "sub/b.png"]
    reasons = _reasons(report, root)
    assert "outside the folder" in reasons["chain.png"] and "outside the folder" in reasons["sub/hop.png"]


def test_a_link_loop_is_skipped_and_named_as_one(root, model_dir, tmp_path):
    (root / "x.png").symlink_to(root / "y.png")
    (root / "y.png").symlink_to(root / "x.png")
    report = _index(root, tmp_path / "db.npz", model_dir)
    reasons = _reasons(report, root)
    assert "loop of links" in reasons["x.png"] and "loop of links" in reasons["y.png"]
    assert report.n_images == 2


def test_links_inside_the_folder_are_followed_but_folder_links_are_not(root, outside, model_dir, tmp_path):
    (root / "again.png").symlink_to(root / "sub" / "b.png")  # a file link inside: followed
    (root / "album").symlink_to(root / "sub", target_is_directory=True)  # a folder link: not followed (no doubles)
    (root / "elsewhere").symlink_to(outside.parent, target_is_directory=True)
    _index(root, tmp_path / "db.npz", model_dir)
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["a.png", "again.png", "sub/b.png"]


def test_a_file_swapped_for_a_link_between_listing_and_reading_is_not_read(root, outside, model_dir, tmp_path, monkeypatch):
    real_stat = photo_folder._stat

    def stat_then_swap(path):  # the file is listed and stat-ed; then an attacker swaps it
        result = real_stat(path)
        if path.name == "a.png":
            path.unlink()
            path.symlink_to(outside)
        return result

    monkeypatch.setattr(photo_folder, "_stat", stat_then_swap)
    report = _index(root, tmp_path / "db.npz", model_dir)
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["sub/b.png"]
    assert "outside the folder" in _reasons(report, root)["a.png"]


def test_the_ray_engine_is_not_sent_a_file_swapped_for_a_link_to_outside(root, outside, model_dir, tmp_path, monkeypatch):
    import semsearch.cnn.distributed as distributed
    from semsearch.common.images import open_image

    sent = []

    def describe_files_ray(paths, name, **options):  # stands in for the actors: reads what it is sent
        sent.extend(Path(p).relative_to(root).as_posix() for p in paths)
        return FakeBackbone().describe([open_image(p) for p in paths]), list(paths), []

    real_stat = photo_folder._stat

    def stat_then_swap(path):
        result = real_stat(path)
        if path.name == "a.png":
            path.unlink()
            path.symlink_to(outside)
        return result

    monkeypatch.setattr(distributed, "describe_files_ray", describe_files_ray)
    monkeypatch.setattr(photo_folder, "_stat", stat_then_swap)
    report = _index(root, tmp_path / "db.npz", model_dir, engine="ray")
    assert sent == ["sub/b.png"]
    assert PhotoDatabase.load(tmp_path / "db.npz").keys.tolist() == ["sub/b.png"]
    assert "outside the folder" in _reasons(report, root)["a.png"]


# --------------------------------------------------------------------------- planted keys


@pytest.mark.parametrize("key", ["/etc/passwd", "../private/secret.png", "sub/../../private/secret.png",
                                 "..", "", "sub\\..\\..\\x.png"])
def test_a_database_with_a_key_outside_its_folder_is_refused(root, model_dir, tmp_path, key):
    _index(root, tmp_path / "db.npz", model_dir)
    db = PhotoDatabase.load(tmp_path / "db.npz")
    db.keys = np.array([key, "sub/b.png"])
    db.save(tmp_path / "planted.npz")
    before = _snapshot(tmp_path)
    from semsearch.photos.paths import OutsideFolderError

    with pytest.raises(OutsideFolderError, match="is not a path inside the folder"):
        PhotoDatabase.load(tmp_path / "planted.npz")
    assert issubclass(OutsideFolderError, InputError)
    assert _snapshot(tmp_path) == before


def test_keys_are_checked_by_resolving_not_by_their_text():
    from semsearch.photos.paths import OutsideFolderError, check_key

    assert check_key("a/../b.png", "/photos") == "a/../b.png"  # stays inside
    assert check_key("..a.png", "/photos") == "..a.png"  # a name that starts with two dots
    with pytest.raises(OutsideFolderError, match="'a/./../../b.png'"):
        check_key("a/./../../b.png", "/photos")


# --------------------------------------------------------------------------- serving and printing


def _app(db_path):
    from fastapi.testclient import TestClient

    from semsearch.web.serve import app_from_args

    return TestClient(app_from_args(SimpleNamespace(db=db_path), say=lambda *a: None))


def _colour_of(jpeg: bytes):
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)


def test_serve_does_not_show_a_file_replaced_by_a_link_to_outside(root, outside, model_dir, tmp_path):
    pytest.importorskip("fastapi")
    _index(root, tmp_path / "db.npz", model_dir)
    (root / "a.png").unlink()
    (root / "a.png").symlink_to(outside)  # after indexing
    before = _snapshot(root, outside.parent)
    client = _app(tmp_path / "db.npz")
    good = client.get("/images/sub/b.png")
    assert good.status_code == 200 and _colour_of(good.content)[1] > 150  # the green photo
    swapped = client.get("/images/a.png")
    assert swapped.status_code == 200
    red, green, blue = _colour_of(swapped.content)
    assert abs(red - green) < 20 and abs(green - blue) < 20, "served a thumbnail of a file outside the folder (red)"
    assert _snapshot(root, outside.parent) == before


def test_file_inside_follows_links_only_within_the_root(root, outside):
    from semsearch.photos.paths import file_inside

    (root / "out.png").symlink_to(outside)
    (root / "in.png").symlink_to(root / "a.png")
    assert file_inside(root, "in.png") == (root / "a.png").resolve()
    assert file_inside(root, "out.png") is None
    assert file_inside(root, "../private/secret.png") is None
    assert file_inside(root, "sub") is None  # a folder is not an image


def _search_cli(argv, monkeypatch, capsysbinary):
    from semsearch.cli.commands import _Parser
    from semsearch.cli.photos import add_search_parser

    parser = _Parser(prog="semsearch")
    add_search_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["search", *argv])
    status = args.run(args)
    captured = capsysbinary.readouterr()
    return status, captured.out, captured.err.decode("utf-8", "replace")


def test_search_paths_leaves_out_a_file_replaced_by_a_link(root, outside, model_dir, tmp_path, monkeypatch, capsysbinary):
    _index(root, tmp_path / "db.npz", model_dir)
    (root / "a.png").unlink()
    (root / "a.png").symlink_to(outside)
    status, out, err = _search_cli(["a dog", "--db", str(tmp_path / "db.npz"), "-k", "2", "--paths"], monkeypatch, capsysbinary)
    assert status == 0
    assert out.splitlines() == [os.fsencode(root.resolve() / "sub" / "b.png")]
    assert "left out a.png: not a file inside the indexed folder" in err


# --------------------------------------------------------------------------- awkward names (item 5)


@pytest.fixture
def odd_names(tmp_path, model_dir):
    """A folder whose photos are named in Latin-1, with '#', '?' and '%', and with a line break."""
    root = tmp_path / "odd"
    names = [LATIN1, "a#b.png", "what?.png", "100%.png", "line\nbreak.png"]
    for n, name in enumerate(names):
        _png(root / name, (40 * n, 200, 30))
    _index(root, tmp_path / "odd.npz", model_dir)
    return root, tmp_path / "odd.npz", names


def test_odd_names_are_indexed_as_they_are(odd_names):
    root, db, names = odd_names
    assert sorted(PhotoDatabase.load(db).keys.tolist()) == sorted(names)


def test_web_search_with_a_latin1_name_answers_and_its_links_work(odd_names):
    pytest.importorskip("fastapi")
    from semsearch.photos.paths import shown_name

    root, db, names = odd_names
    client = _app(db)
    response = client.get("/api/search", params={"q": "a dog", "k": 5})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert sorted(r["key"] for r in results) == sorted(shown_name(n) for n in names)
    assert "caf\\xe9.png" in [r["key"] for r in results]
    for r in results:  # each thumbnail URL reaches its own photo, and similar/ takes the key back
        image = client.get(r["image"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert _colour_of(image.content)[1] > 150, r  # the photo (green), not the grey placeholder
        assert client.get("/api/similar/" + quote(r["key"], safe="/"), params={"k": 2}).status_code == 200


@pytest.mark.parametrize("name, url", [("a#b.png", "/images/a%23b.png"), ("what?.png", "/images/what%3F.png"),
                                       ("100%.png", "/images/100%25.png"), ("line\nbreak.png", "/images/line%5Cnbreak.png")])
def test_image_urls_are_percent_encoded(odd_names, name, url):
    pytest.importorskip("fastapi")
    from semsearch.photos.paths import shown_name

    root, db, names = odd_names
    results = _app(db).get("/api/search", params={"q": "a dog", "k": 5}).json()["results"]
    assert {r["key"]: r["image"] for r in results}[shown_name(name)] == url


def test_search_print0_gives_every_name_exactly(odd_names, monkeypatch, capsysbinary):
    root, db, names = odd_names
    status, out, err = _search_cli(["a dog", "--db", str(db), "-k", "5", "--print0"], monkeypatch, capsysbinary)
    assert status == 0 and out.endswith(b"\0")
    assert sorted(out[:-1].split(b"\0")) == sorted(os.fsencode(root.resolve() / n) for n in names)


def test_search_paths_leaves_out_a_name_with_a_line_break_and_says_why(odd_names, monkeypatch, capsysbinary):
    root, db, names = odd_names
    status, out, err = _search_cli(["a dog", "--db", str(db), "-k", "5", "--paths"], monkeypatch, capsysbinary)
    assert status == 0
    assert sorted(out.splitlines()) == sorted(os.fsencode(root.resolve() / n) for n in names if "\n" not in n)
    assert "line\\nbreak.png: its name holds a line break (use --print0" in err


def test_search_prints_a_latin1_name_in_a_utf8_terminal(odd_names, tmp_path):
    """A real process with a strict UTF-8 stdout: the ranking and --paths, no UnicodeEncodeError."""
    root, db, names = odd_names
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONPATH": str(Path(__file__).parents[1])}
    ranking = subprocess.run([sys.executable, "-m", "semsearch", "search", "a dog", "--db", str(db), "-k", "5"],
                             capture_output=True, env=env)
    assert ranking.returncode == 0, ranking.stderr.decode()
    assert b"caf\\xe9.png" in ranking.stdout and b"line\\nbreak.png" in ranking.stdout
    paths = subprocess.run([sys.executable, "-m", "semsearch", "search", "a dog", "--db", str(db), "-k", "5", "--paths"],
                           capture_output=True, env=env)
    assert paths.returncode == 0, paths.stderr.decode()
    assert os.fsencode(root.resolve() / LATIN1) in paths.stdout.splitlines()
