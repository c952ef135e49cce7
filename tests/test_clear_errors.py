"""Clear one-line errors instead of tracebacks (issue 22, item 6): each case asserts the error type,
a fragment of the message, and that nothing on disk changed."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from semsearch.bundle import load_bundle, read_info, save_bundle
from semsearch.errors import InputError
from semsearch.training import TrainConfig
from test_cli import assert_one_line_error, run as run_cli
from test_one_bad_file import _small_parts
from test_photo_paths import _snapshot

HERE = Path(__file__).parent


# --------------------------------------------------------------------------- training settings


@pytest.mark.parametrize("setting, value, fragment", [
    ("momentum", 5.0, "momentum must be < 1 (0.9 is usual), got 5.0"),
    ("momentum", 1.0, "momentum must be < 1"),
    ("seed", -5, "seed must be >= 0"),
    ("epochs", 99999999999999999999, "epochs must be at most 1,000,000, got 99999999999999999999"),
])
def test_train_config_refuses_in_one_line(setting, value, fragment):
    with pytest.raises(InputError) as info:
        TrainConfig(**{setting: value})
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("argv, fragment", [
    (["--momentum", "5"], "momentum must be < 1"),
    (["--seed", "-5"], "seed must be >= 0"),
    (["--epochs", "99999999999999999999"], "epochs must be at most 1,000,000"),
])
def test_train_cli_says_so_before_any_work(tmp_path, argv, fragment):
    (tmp_path / "data").mkdir()
    before = _snapshot(tmp_path)
    status, out, err = run_cli(["train", "--data", tmp_path / "data", "--out", tmp_path / "model", *argv])
    assert_one_line_error(status, err, fragment)
    assert _snapshot(tmp_path) == before and not (tmp_path / "model").exists()


# --------------------------------------------------------------------------- model folders


def _with_info(folder: Path, info) -> None:
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["info"] = info
    (folder / "bundle.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("info", [[1, 2], "trained by me", 7, None])
def test_a_manifest_whose_info_is_not_an_object_is_one_line(tmp_path, info):
    folder = save_bundle(tmp_path / "model", *_small_parts())
    _with_info(folder, info)
    before = _snapshot(tmp_path)
    for read in (read_info, load_bundle):
        with pytest.raises(InputError, match=r'bundle.json: its "info" must be a JSON object, got '):
            read(folder)
    status, _, err = run_cli(["search", "a dog", "--model", folder])
    assert_one_line_error(status, err, 'its "info" must be a JSON object')
    assert _snapshot(tmp_path) == before


def test_serve_a_coco_model_whose_database_is_keyed_by_names(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.database import ImageDatabase
    from semsearch.web.serve import app_from_args

    model, encoder, coco = _small_parts()
    named = ImageDatabase(np.array(["a.jpg", "b/c.jpg"]), coco.vectors, encoder)
    folder = save_bundle(tmp_path / "model", model, encoder, named)
    said = []
    app = app_from_args(SimpleNamespace(model=folder, db=None, images=None, captions=None, data=tmp_path),
                        say=said.append)
    client = TestClient(app)
    body = client.get("/api/search", params={"q": "a dog", "k": 2}).json()
    assert sorted(r["key"] for r in body["results"]) == ["a.jpg", "b/c.jpg"]
    tile = client.get("/images/b/c.jpg")
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/jpeg"
    assert any("keyed by names, not COCO ids" in line for line in said)


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("query", ["1e309:dog", "dog + 1e309:cat", "1e308:dog + 1e308:cat", "2e6:dog"])
def test_a_huge_weight_is_422_in_explain_and_search_alike(query):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.web.app import create_app

    model, encoder, database = _small_parts()
    client = TestClient(create_app(database, encoder))
    for path, params in (("/api/explain", {"q": query, "key": "139"}), ("/api/search", {"q": query})):
        response = client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert "a part's weight must be > 0 and at most 1e+06" in response.json()["error"]


def test_the_largest_weight_still_ranks():
    from semsearch.query import parse_query

    assert parse_query("1e6:dog + cat") == [(1e6, "dog"), (1.0, "cat")]


# --------------------------------------------------------------------------- GloVe text files


@pytest.mark.parametrize("text, fragment", [
    ("dog 1 2 3\ncat 4 5 6\ndog 7 8 9\n", "the word 'dog' is on two lines (1 and 3); keep one"),
    ("dog 1 nan 3\ncat 4 5 6\n", "NaN or inf in the vectors of 1 word(s), e.g. 'dog'"),
    ("dog 1 2 3\ncat 4 5 inf\n", "NaN or inf in the vectors of 1 word(s), e.g. 'cat'"),
])
def test_a_damaged_glove_text_file_is_one_line(tmp_path, text, fragment):
    from semsearch.glove import load_glove

    path = tmp_path / "glove.txt"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_glove(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glove.txt"]  # no cache of the damaged file


# --------------------------------------------------------------------------- serve's port


def test_serve_on_a_port_in_use_says_so_before_serving(capsys):
    pytest.importorskip("uvicorn")
    from semsearch.web.serve import run

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        args = SimpleNamespace(model=None, db=None, images=None, captions=None, data=None, host="127.0.0.1", port=port)
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is in use .*--port"):
            run(args)
    finally:
        taken.close()
    assert "serving at" not in capsys.readouterr().out


def test_serve_really_serves_on_a_free_port(tmp_path):
    pytest.importorskip("uvicorn")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = subprocess.Popen([sys.executable, "-m", "semsearch", "serve", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(HERE.parent)})
    try:
        deadline, health = time.time() + 120, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
                    health = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.3)
        assert health is not None and health["status"] == "ok", server.stderr.read() if server.poll() is not None else ""
    finally:
        server.terminate()
        server.wait(timeout=30)
