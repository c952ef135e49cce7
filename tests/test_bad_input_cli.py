"""Bad input over the command line, table-driven: one line ``semsearch: error: ...``, exit
status 2, nothing written and no work done; a bug (an exception that is no SemsearchError)
still shows its traceback.

Every case runs ``semsearch.cli.commands.main`` in this process. Output paths are checked before any
data is read, so the cases need no real data: the inputs are placeholder files that a
command would fail to read if it ever got that far.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch.cli import commands as cli
from semsearch.errors import UnknownIdError


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A folder with placeholder inputs: captions.json, d.pkl, images/, model/ (empty), a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "captions.json").write_text(json.dumps({"images": [], "annotations": []}))
    (tmp_path / "d.pkl").write_bytes(b"placeholder descriptors")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "000000000139.jpg").write_bytes(b"placeholder image")
    (tmp_path / "model").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"precious")
    return tmp_path


def _snapshot(root: Path):
    return {p.relative_to(root): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


TRAIN = ["train", "--captions", "captions.json", "--descriptors", "d.pkl"]

#: argv -> fragment of the one-line error. Each must fail before reading any input.
CASES = {
    # empty output paths (Path("") would be the current folder)
    "train --out ''": (TRAIN + ["--out", ""], "argument --out: the output path is empty"),
    "train --out ' '": (TRAIN + ["--out", "  "], "argument --out: the output path is empty"),
    "demo --out ''": (["demo", "--out", ""], "argument --out: the output path is empty"),
    "search --out ''": (["search", "a dog", "--out", ""], "argument --out: the output path is empty"),
    "index --db ''": (["index", "photos", "--db", ""], "argument --db: the output path is empty"),
    "features --out ''": (["features", "images", "--out", ""], "argument --out: the output path is empty"),
    # outputs that would destroy an input, or cannot be written: refused before training
    "train --out onto its descriptor file": (TRAIN + ["--out", "d.pkl"], "d.pkl exists and is not a folder"),
    "train --out a folder of photos": (TRAIN + ["--out", "photos"], "photos holds files that are not part of a semsearch model (holiday.jpg)"),
    "train --out the folder holding its inputs": (TRAIN + ["--out", "."], "holds files that are not part of a semsearch model"),
    "train --out inside a file": (TRAIN + ["--out", "a-file/model"], "a-file is a file, not a folder"),
    "train --out on a read-only file system": (TRAIN + ["--out", "/proc/semsearch-model"], "is not writable"),
    "demo --out a file": (["demo", "--out", "a-file"], "a-file is a file, not a folder"),
    "demo --out inside a file": (["demo", "--out", "a-file/demo"], "a-file is a file, not a folder"),
    "demo --out its data folder": (["demo", "--data", "photos", "--out", "."], "holds an input of this command"),
    "search --out inside its model": (["search", "a dog", "--model", "model", "--out", "model/database.npz"],
                                      "--out model/database.npz lies inside an input of this command (model)"),
    "search --out onto its query image": (["search", "--image", "images/000000000139.jpg", "--out", "images/000000000139.jpg"],
                                          "is also an input of this command"),
    "search --out with no format": (["search", "a dog", "--out", "grid"], "cannot tell which format to write"),
    "search --out .gif": (["search", "a dog", "--out", "grid.gif"], "cannot tell which format to write"),
    "search --out a folder": (["search", "a dog", "--out", "images"], "it is a folder"),
    "search --out inside a file": (["search", "a dog", "--out", "a-file/grid.png"], "a-file is a file, not a folder"),
    "index --db inside its model": (["index", "photos", "--model", "model", "--db", "model/photos.npz"], "lies inside an input"),
    "index --db inside a file": (["index", "photos", "--db", "a-file/photos.npz"], "a-file is a file, not a folder"),
    "features --out an image name": (["features", "images", "--out", "images/000000000139.jpg"], "has an image's suffix: name it .npz"),
    "features --out a folder": (["features", "images", "--out", "images"], "it is a folder"),
    "features --out inside a file": (["features", "images", "--out", "a-file/d.npz"], "a-file is a file, not a folder"),
    # numbers are parsed, not coerced
    "train --epochs 2.5": (TRAIN + ["--epochs", "2.5"], "argument --epochs: expected an integer (digits 0-9), got '2.5'"),
    "train --epochs arabic-indic 3": (TRAIN + ["--epochs", "\u0663"], "expected an integer (digits 0-9), got '\u0663'"),
    "train --epochs +3": (TRAIN + ["--epochs", "+3"], "expected an integer (digits 0-9), got '+3'"),
    "train --epochs 0": (TRAIN + ["--epochs", "0"], "epochs must be >= 1, got 0"),
    "train --learning-rate nan": (TRAIN + ["--learning-rate", "nan"], "argument --learning-rate: expected a finite number, got 'nan'"),
    "train --learning-rate inf": (TRAIN + ["--learning-rate", "inf"], "expected a finite number, got 'inf'"),
    "train --margin 1e999": (TRAIN + ["--margin", "1e999"], "expected a finite number, got '1e999'"),
    "train --margin 0x10": (TRAIN + ["--margin", "0x10"], "expected a finite number, got '0x10'"),
    "train --learning-rate -0.1": (TRAIN + ["--learning-rate", "-0.1"], "learning_rate must be > 0, got -0.1"),
    "demo --seed 1.5": (["demo", "--seed", "1.5"], "argument --seed: expected an integer (digits 0-9), got '1.5'"),
    "demo -k 0": (["demo", "-k", "0"], "argument -k: expected a positive integer (digits 0-9), got '0'"),
    "search -k 2.5": (["search", "a dog", "-k", "2.5"], "argument -k: expected a positive integer (digits 0-9), got '2.5'"),
    "features --batch-size 0": (["features", "images", "--out", "d.npz", "--batch-size", "0"], "expected a positive integer (digits 0-9), got '0'"),
    "features --workers -1": (["features", "images", "--out", "d.npz", "--workers", "-1"], "expected an integer >= 0 (digits 0-9), got '-1'"),
    "serve --port +80": (["serve", "--port", "+80"], "expected a port number 1-65535, got '+80'"),
    "serve --port arabic-indic 80": (["serve", "--port", "\u0668\u0660"], "expected a port number 1-65535"),
    "serve --port 70000": (["serve", "--port", "70000"], "expected a port number 1-65535, got '70000'"),
    # missing inputs
    "features of a missing folder": (["features", "nowhere", "--out", "d.npz"], "image folder not found: nowhere"),
    "index of a missing folder": (["index", "nowhere"], "image folder not found: nowhere"),
    "search with neither text nor image": (["search"], "give a text QUERY or --image FILE (one of them)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_command_lines_are_one_line_and_change_nothing(place, capsys, case):
    argv, fragment = CASES[case]
    before = _snapshot(place)
    status = _run(argv)
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    assert err.startswith("semsearch: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert "joined:" not in out and "training" not in out  # refused before reading or training
    assert _snapshot(place) == before  # nothing written, nothing destroyed


def _run(argv) -> int:
    """``cli.main(argv)``'s exit status, whether it returns it or argparse exits with it."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


def test_features_with_cuda_on_a_machine_without_a_gpu(place, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert cli.main(["features", "images", "--out", "d.npz", "--device", "cuda", "--no-pretrained"]) == 2
    err = capsys.readouterr().err
    assert err == "semsearch: error: device 'cuda': this machine has no CUDA GPU that torch can use; " \
                  "use the device cpu (or leave the device out to pick one)\n"
    assert not (place / "d.npz").exists()


def test_features_with_an_unknown_device(place, capsys):
    pytest.importorskip("torch")
    assert cli.main(["features", "images", "--out", "d.npz", "--device", "gpu0", "--no-pretrained"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("semsearch: error: unknown device 'gpu0'") and err.count("\n") == 1


# ----------------------------------------------------------------------------- user error or bug


def test_a_library_error_is_one_line_but_a_bug_shows_its_traceback(monkeypatch, capsys):
    import semsearch.fetch

    def user_error(*args, **kwargs):
        raise UnknownIdError("unknown COCO image id 7")

    monkeypatch.setattr(semsearch.fetch, "fetch", user_error)
    assert cli.main(["fetch", "--data", "somewhere", "--quiet"]) == 2
    assert capsys.readouterr().err == "semsearch: error: unknown COCO image id 7\n"

    def bug(*args, **kwargs):
        return {}["a key the library forgot"]  # a plain KeyError from inside the library

    monkeypatch.setattr(semsearch.fetch, "fetch", bug)
    with pytest.raises(KeyError, match="a key the library forgot"):  # not swallowed into one line
        cli.main(["fetch", "--data", "somewhere", "--quiet"])


@pytest.mark.parametrize("error", [FileNotFoundError("model folder not found: m"), PermissionError("cannot write m"),
                                   IsADirectoryError("m is a folder")])
def test_file_errors_are_one_line(monkeypatch, capsys, error):
    import semsearch.fetch

    def raise_it(*args, **kwargs):
        raise error

    monkeypatch.setattr(semsearch.fetch, "fetch", raise_it)
    assert cli.main(["fetch", "--data", "somewhere", "--quiet"]) == 2
    assert capsys.readouterr().err == f"semsearch: error: {error}\n"


@pytest.mark.parametrize("error", [ValueError("shapes (3,4) and (5,) not aligned"), TypeError("unsupported operand"),
                                   RuntimeError("CUDA error: device-side assert")])
def test_other_exceptions_are_bugs_and_keep_their_traceback(monkeypatch, error):
    import semsearch.fetch

    def raise_it(*args, **kwargs):
        raise error

    monkeypatch.setattr(semsearch.fetch, "fetch", raise_it)
    with pytest.raises(type(error)):
        cli.main(["fetch", "--data", "somewhere", "--quiet"])
