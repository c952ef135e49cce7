"""Tests for semsearch.fetch: downloads from a local HTTP server only, never the internet."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import pickle
import re
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import semsearch.fetch as fetch_module
from semsearch.cli.commands import main
from semsearch.fetch import DEFAULT_WHAT, SOURCES, Download, FetchError, fetch


# --------------------------------------------------------------------------- helpers


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for tmp_path/served; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def caption_json(year: str, split: str) -> dict:
    return {
        "images": [{"id": 1, "file_name": f"{1:012d}.jpg", "coco_url": ""}],
        "annotations": [{"id": 10, "image_id": 1, "caption": f"a dog in {split}{year}"}],
    }


def make_annotation_zip(folder: Path, year: str = "2099") -> Path:
    path = folder / f"annotations_trainval{year}.zip"
    with zipfile.ZipFile(path, "w") as z:
        for split in ("train", "val"):
            z.writestr(f"annotations/captions_{split}{year}.json", json.dumps(caption_json(year, split)))
            z.writestr(f"annotations/instances_{split}{year}.json", "{}")
    return path


def zip_download(url: str, known_hash, year: str = "2099") -> Download:
    return Download(
        url=url,
        known_hash=known_hash,
        dest="coco/annotations",
        members=(f"annotations/captions_train{year}.json", f"annotations/captions_val{year}.json"),
        outputs=(f"coco/annotations/captions_train{year}.json", f"coco/annotations/captions_val{year}.json"),
    )


def all_files(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- the pinned table


def test_every_pinned_download_has_a_sha256_and_an_official_url():
    assert set(DEFAULT_WHAT) == set(SOURCES) - {"glove50", "glove200"}  # the GloVe files only when asked for
    for part, downloads in SOURCES.items():
        for d in downloads:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", d.known_hash), (part, d.url)
            assert d.url.startswith(("http://images.cocodataset.org/", "https://github.com/rsokl/cog_data/")), d.url
            assert d.source
    assert SOURCES["captions2014"][0].name == "annotations_trainval2014.zip"
    assert SOURCES["captions2017"][0].name == "annotations_trainval2017.zip"
    # The course's captions go where the official 2014 zip puts them, so they are fetched once.
    course_captions = SOURCES["resnet18"][1]
    assert course_captions.dest in SOURCES["captions2014"][0].outputs


# --------------------------------------------------------------------------- downloads that work


def test_zip_is_verified_and_only_the_caption_files_are_kept(server, tmp_path):
    served, base = server
    archive = make_annotation_zip(served)
    data = tmp_path / "data"
    table = {"caps": (zip_download(base + archive.name, sha256(archive)),)}

    paths = fetch(data, what=["caps"], sources=table, progress=False)

    assert [p.name for p in paths] == ["captions_train2099.json", "captions_val2099.json"]
    assert json.loads(paths[0].read_text()) == caption_json("2099", "train")
    # no instances file, no zip, no staging or temporary folders left behind
    assert all_files(data) == [
        "coco", "coco/annotations", "coco/annotations/captions_train2099.json", "coco/annotations/captions_val2099.json",
    ]


def test_files_already_there_are_not_downloaded_again(server, tmp_path, closed_port):
    served, base = server
    archive = make_annotation_zip(served)
    data = tmp_path / "data"
    fetch(data, what=["caps"], sources={"caps": (zip_download(base + archive.name, sha256(archive)),)}, progress=False)
    # Same files, now from a host that does not answer: nothing to download, so no error.
    offline = {"caps": (zip_download(f"http://127.0.0.1:{closed_port}/{archive.name}", sha256(archive)),)}
    paths = fetch(data, what=["caps"], sources=offline, progress=False)
    assert all(p.is_file() for p in paths)


def test_a_plain_file_goes_to_its_place(server, tmp_path):
    served, base = server
    pkl = served / "resnet18_features.pkl"
    pkl.write_bytes(pickle.dumps({9: np.ones((1, 4), dtype=np.float32)}))
    data = tmp_path / "data"
    table = {"resnet18": (Download(base + pkl.name, sha256(pkl), dest="resnet18_features.pkl"),)}

    (path,) = fetch(data, what="resnet18", sources=table, progress=False)

    assert path == data / "resnet18_features.pkl"
    assert path.read_bytes() == pkl.read_bytes()
    assert all_files(data) == ["resnet18_features.pkl"]


def test_an_unpinned_download_warns(server, tmp_path):
    served, base = server
    (served / "f.bin").write_bytes(b"payload")
    table = {"f": (Download(base + "f.bin", None, dest="f.bin"),)}
    with pytest.warns(UserWarning, match="no pinned checksum"):
        (path,) = fetch(tmp_path / "data", what=["f"], sources=table, progress=False)
    assert path.read_bytes() == b"payload"


# --------------------------------------------------------------------------- downloads that fail


def test_checksum_mismatch_is_a_clear_error_and_keeps_nothing(server, tmp_path):
    served, base = server
    archive = make_annotation_zip(served)
    pkl = served / "resnet18_features.pkl"
    pkl.write_bytes(b"not what was pinned")
    data = tmp_path / "data"
    wrong = "sha256:" + "0" * 64
    for table in (
        {"x": (zip_download(base + archive.name, wrong),)},
        {"x": (Download(base + pkl.name, wrong, dest="resnet18_features.pkl"),)},
    ):
        with pytest.raises(FetchError, match="checksum mismatch") as info:
            fetch(data, what=["x"], sources=table, progress=False)
        assert "\n" not in str(info.value)
        assert [f for f in all_files(data) if not Path(data / f).is_dir()] == []


def test_unreachable_host_fails_fast_with_one_line(tmp_path, closed_port):
    table = {"x": (Download(f"http://127.0.0.1:{closed_port}/annotations.zip", "sha256:" + "0" * 64, dest="a.json"),)}
    start = time.monotonic()
    with pytest.raises(FetchError, match=rf"cannot reach 127\.0\.0\.1:{closed_port} to download annotations\.zip") as info:
        fetch(tmp_path / "data", what=["x"], sources=table, progress=False, timeout=2)
    assert time.monotonic() - start < 5
    assert "\n" not in str(info.value)
    assert not (tmp_path / "data").exists()


def test_missing_file_on_the_server_is_a_clear_error(server, tmp_path):
    _, base = server
    table = {"x": (Download(base + "missing.pkl", "sha256:" + "0" * 64, dest="missing.pkl"),)}
    with pytest.raises(FetchError, match="download of .*missing.pkl failed"):
        fetch(tmp_path / "data", what=["x"], sources=table, progress=False)
    assert [f for f in all_files(tmp_path / "data") if not (tmp_path / "data" / f).is_dir()] == []


def test_zip_without_the_expected_member_keeps_nothing(server, tmp_path):
    served, base = server
    archive = make_annotation_zip(served, year="2099")
    data = tmp_path / "data"
    table = {"x": (zip_download(base + archive.name, sha256(archive), year="2098"),)}
    with pytest.raises(FetchError, match="has no member"):
        fetch(data, what=["x"], sources=table, progress=False)
    assert [f for f in all_files(data) if not (data / f).is_dir()] == []


def test_the_course_glove_files_are_pinned_as_the_course_registry_pins_them():
    """rsokl/cog_data src/cogworks_data/_utils.py, language_files (the release of resnet18_features.pkl)."""
    (glove50,), (glove200,) = SOURCES["glove50"], SOURCES["glove200"]
    assert glove50.url == "https://github.com/rsokl/cog_data/releases/download/language-files/glove.6B.50d.txt.w2v"
    assert glove50.known_hash == "sha256:9a8a78e2c6da3115e97044cbcfb40736d430961410bf732a4e80776412be5cd3"
    assert glove200.url.endswith("/language-files/glove.6B.200d.txt.w2v.zip") and not glove200.is_zip  # kept whole
    assert glove200.known_hash == "sha256:6cbe88628045658c4175c50121b9ad6c61c39777ee42bdb19a255d26b0472b3a"
    assert glove50.url.rsplit("/", 1)[0] == SOURCES["resnet18"][0].url.rsplit("/", 1)[0]


def test_unknown_part_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown download 'glove'"):
        fetch(tmp_path, what=["glove"], progress=False)


# --------------------------------------------------------------------------- the command


def test_fetch_command_offline_is_one_line_and_exit_2(tmp_path, closed_port, monkeypatch, capsys):
    table = {
        name: tuple(
            Download(f"http://127.0.0.1:{closed_port}/{d.name}", d.known_hash, d.dest, d.members, d.outputs)
            for d in downloads
        )
        for name, downloads in SOURCES.items()
    }
    monkeypatch.setattr(fetch_module, "SOURCES", table)
    assert main(["fetch", "--data", str(tmp_path / "data"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("semsearch: error: cannot reach 127.0.0.1:")
    assert "Traceback" not in err


def test_fetch_command_downloads(server, tmp_path, monkeypatch, capsys):
    served, base = server
    archive = make_annotation_zip(served)
    monkeypatch.setattr(fetch_module, "SOURCES", {"captions2017": (zip_download(base + archive.name, sha256(archive)),)})
    assert main(["fetch", "--data", str(tmp_path / "data"), "--only", "captions2017", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "captions_train2099.json" in out and "captions_val2099.json" in out
