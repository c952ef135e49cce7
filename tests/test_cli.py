"""Tests for the ``semsearch`` command line (semsearch.cli.commands), mostly run in-process via main()."""
from __future__ import annotations

import contextlib
import io
import pickle
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.cli import commands as cli
from semsearch.cli.commands import DEMO_QUERIES, main
from semsearch.coco import UnknownIdError

COMMANDS = ("features", "train", "search", "eval", "demo", "fetch")
RANK_LINE = re.compile(r"^\s+(\d+)\s+(-?\d+\.\d{3})\s+(\d+)\b", re.M)  # rank, score, COCO id


def run(argv):
    """main(argv) in-process: (exit status, stdout, stderr); SystemExit is an exit status too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("semsearch: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def real_files(real_data: Path):
    annotations = real_data / "coco" / "annotations"
    return (
        [annotations / "captions_train2017_mini.json", annotations / "captions_val2017.json"],
        real_data / "descriptors" / "effnet_lite0_coco_mini.pkl",
    )


@pytest.fixture(scope="module")
def trained(real_data, tmp_path_factory):
    """A model trained by `semsearch train` for 3 epochs on the real data: (folder, stdout)."""
    captions, descriptors = real_files(real_data)
    folder = tmp_path_factory.mktemp("cli") / "model"
    status, out, err = run(["train", "--captions", *captions, "--descriptors", descriptors, "--out", folder, "--epochs", 3])
    assert status == 0, err
    return folder, out


# --------------------------------------------------------------------------- help and arguments


@pytest.mark.parametrize("command", (None,) + COMMANDS)
def test_help_exits_0(command):
    status, out, _ = run(([command] if command else []) + ["--help"])
    assert status == 0
    assert out.startswith(f"usage: semsearch{' ' + command if command else ''}")


def test_python_m_semsearch_and_the_console_script():
    result = subprocess.run([sys.executable, "-m", "semsearch", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout
    script = Path(sys.executable).parent / "semsearch"
    if not script.exists():
        pytest.skip("no semsearch console script next to this Python (pip install -e . creates it)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("semsearch ")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--epochs", "0"], "epochs must be >= 1, got 0"),
        (["train", "--epochs", "2.5"], "argument --epochs: expected an integer (digits 0-9), got '2.5'"),
        (["train", "--validation-fraction", "1.5"], "validation_fraction must lie in [0, 1), got 1.5"),
        (["train", "--negatives", "easy"], "argument --negatives: invalid choice: 'easy'"),
        (["eval", "--n-candidates", "0"], "n_candidates must be >= 1, got 0"),
        (["search"], "give a text QUERY or --image FILE"),
        (["search", "a dog", "--show", "--out", "x.png"], "not allowed with argument"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (["fetch", "--only", "glove"], "invalid choice: 'glove'"),
    ],
)
def test_a_wrong_argument_is_one_line(argv, fragment):
    status, _, err = run(argv)
    assert_one_line_error(status, err, fragment)


# --------------------------------------------------------------------------- errors a user can cause


def test_missing_files_are_one_line_without_traceback(tmp_path):
    # In a separate process: nothing may escape as a traceback.
    result = subprocess.run(
        [sys.executable, "-m", "semsearch", "train", "--captions", str(tmp_path / "no.json"),
         "--descriptors", str(tmp_path / "no.pkl"), "--out", str(tmp_path / "m")],
        capture_output=True, text=True, timeout=300,
    )
    assert_one_line_error(result.returncode, result.stderr, "COCO captions file not found", "no.json")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["search", "a dog", "--model", "{tmp}/nowhere"], "model folder not found"),
        (["eval", "--model", "{tmp}/nowhere", "--data", "{tmp}"], "model folder not found"),
        (["eval", "--data", "{tmp}"], "no descriptor pickle"),
        (["demo", "--data", "{tmp}/nowhere"], "data folder not found"),
        (["demo", "--data", "{tmp}"], "no descriptor pickle"),
        (["train", "--data", "{tmp}/with-pickle"], "no captions_*.json"),
        (["features", "{tmp}/no-images", "--out", "{tmp}/f.pkl"], "image folder not found"),
    ],
)
def test_missing_inputs_are_one_line(tmp_path, argv, fragment):
    (tmp_path / "with-pickle").mkdir()
    (tmp_path / "with-pickle" / "resnet18_features.pkl").write_bytes(pickle.dumps({1: np.ones((1, 4))}))
    status, _, err = run([a.format(tmp=tmp_path) for a in argv])
    assert_one_line_error(status, err, fragment)


def test_unknown_id_is_one_line_without_quotes(monkeypatch):
    def raise_unknown(args):
        raise UnknownIdError("unknown COCO image id 5")

    monkeypatch.setattr(cli, "_cmd_eval", raise_unknown)
    status, _, err = run(["eval"])
    assert_one_line_error(status, err)
    assert err == "semsearch: error: unknown COCO image id 5\n"


def test_features_without_torch_is_one_line(monkeypatch, tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "000000000139.jpg")
    for name in ("torch", "torchvision"):
        monkeypatch.setitem(sys.modules, name, None)  # `import torch` now raises ImportError
    # EfficientNet-Lite0 runs on ONNX Runtime without torch; ResNet18 needs it
    status, _, err = run(["features", tmp_path, "--out", tmp_path / "f.npz", "--backbone", "resnet18"])
    assert_one_line_error(status, err, "pip install", "semsearch[features]")


# --------------------------------------------------------------------------- on the real data


def test_train_prints_epochs_and_recall_and_saves_the_bundle(trained):
    folder, out = trained
    assert sorted(p.name for p in folder.iterdir()) == ["bundle.json", "database.npz", "model.npz", "text.json", "text_vectors.npz"]
    assert "joined:      239 images with 1195 captions" in out
    assert re.search(r"^\s+3\s+\d+\.\d{4}\s+\d\.\d{3}\s+\d+\.\d{4}\s+\d\.\d{3}$", out, re.M)  # epoch 3 row
    for label in ("Recall@1", "Recall@5", "Recall@10", "median rank", "MRR", "chance"):
        assert label in out
    assert "the database holds 239 images" in out and "text_vectors.npz" in out


def test_search_prints_ranked_ids(trained, real_data):
    folder, _ = trained
    captions, descriptors = real_files(real_data)
    status, out, err = run(["search", "a man riding a wave on a surfboard", "--model", folder, "-k", 5, "--captions", *captions])
    assert status == 0, err
    rows = RANK_LINE.findall(out)
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    with open(descriptors, "rb") as f:
        known = set(pickle.load(f))
    assert {int(r[2]) for r in rows} <= known


def test_search_writes_a_grid(trained, real_data, tmp_path):
    folder, _ = trained
    png = tmp_path / "grid.png"
    status, out, err = run(["search", "a plate of food", "--model", folder, "-k", 4, "--out", png, "--images", real_data / "coco" / "images"])
    assert status == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in out


def test_search_with_no_known_word_is_one_line(trained):
    folder, _ = trained
    status, _, err = run(["search", "xqzzv blorft", "--model", folder])
    assert_one_line_error(status, err, "cannot embed 'xqzzv blorft'")


def test_eval_of_a_saved_model(trained, real_data):
    folder, _ = trained
    captions, descriptors = real_files(real_data)
    status, out, err = run(["eval", "--model", folder, "--captions", *captions, "--descriptors", descriptors])
    assert status == 0, err
    assert "the model's validation images" in out and "among 48 images" in out
    for label in ("Recall@1", "Recall@5", "Recall@10", "median rank", "MRR"):
        assert re.search(rf"{label}\s+\d+(\.\d+)?\s+\(chance", out), label


def test_eval_with_descriptors_of_another_size_is_one_line(trained, real_data, tmp_path):
    folder, _ = trained
    captions, _ = real_files(real_data)
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({139: np.ones((1, 4), dtype=np.float32), 285: np.ones((1, 4), dtype=np.float32)}))
    status, _, err = run(["eval", "--model", folder, "--captions", *captions, "--descriptors", small])
    assert_one_line_error(status, err, "the model takes 1280-d descriptors")


def test_eval_k_fold(real_data):
    status, out, err = run(["eval", "--data", real_data, "--folds", 2, "--epochs", 2])
    assert status == 0, err
    assert "2-fold cross-validation (239 images" in out
    assert re.search(r"Recall@1\s+\d\.\d{3} ± \d\.\d{3}\s+\(chance", out)
    assert out.count("  fold ") == 2


def test_train_finds_the_data_folder_and_can_skip_validation(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_DATA", str(real_data))
    status, out, err = run(["train", "--out", tmp_path / "m", "--epochs", 1, "--validation-fraction", 0])
    assert status == 0, err
    assert "captions_val2017.json" in out and "effnet_lite0_coco_mini.pkl" in out
    assert "(no validation)" in out and "Recall@1" not in out
    assert (tmp_path / "m" / "bundle.json").is_file()


def test_demo(real_data, tmp_path):
    status, out, err = run(["demo", "--data", real_data, "--out", tmp_path / "demo", "--no-download"])
    assert status == 0, err
    assert "Recall@1" in out and "chance" in out
    assert out.count("top hit") == len(DEMO_QUERIES)
    pngs = sorted((tmp_path / "demo").glob("*.png"))
    assert len(pngs) == len(DEMO_QUERIES)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    # the saved model answers searches
    status, out, err = run(["search", DEMO_QUERIES[0], "--model", tmp_path / "demo" / "model", "-k", 3])
    assert status == 0, err
    assert len(RANK_LINE.findall(out)) == 3


def test_demo_with_an_unknown_query_is_one_line(real_data, tmp_path):
    status, _, err = run(["demo", "--data", real_data, "--out", tmp_path, "--query", "qqqxz"])
    assert_one_line_error(status, err, "cannot embed 'qqqxz'")


# --------------------------------------------------------------------------- features (needs torch)


def test_features_writes_a_descriptor_pickle(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for coco_id in (139, 285):
        Image.new("RGB", (64, 48), (coco_id % 256, 80, 160)).save(images / f"{coco_id:012d}.jpg")
    out = tmp_path / "f.pkl"
    status, stdout, err = run(["features", images, "--out", out, "--backbone", "resnet18", "--no-pretrained",
                               "--workers", 0, "--device", "cpu", "--batch-size", 2])
    assert status == 0, err
    assert "2 new resnet18 descriptors" in stdout
    from semsearch.descriptors import Descriptors

    features = Descriptors.load(out)  # a .npz recording its backbone, whatever the file's name
    assert features.ids.tolist() == [139, 285] and features.dim == 512
    assert features.backbone_info["backbone"] == "resnet18" and features.backbone_info["weights"] == "random (seed 0)"


def test_train_and_search_with_the_sif_encoder(real_data, tmp_path, capsys):
    """--text-encoder is saved with the model, and search embeds the query with the same encoder."""
    import json

    from semsearch.bundle import load_bundle
    from semsearch.cli.commands import main

    model_dir = tmp_path / "model"
    assert main(["train", "--data", str(real_data), "--out", str(model_dir), "--epochs", "2", "--text-encoder", "sif"]) == 0
    assert json.loads((model_dir / "text.json").read_text())["weighting"] == "sif"
    _, embedder, _ = load_bundle(model_dir)
    assert embedder.weighting == "sif" and embedder.common_component is not None
    capsys.readouterr()
    assert main(["search", "a baseball player swinging a bat", "--model", str(model_dir), "-k", "3"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.strip()]) >= 3


@pytest.mark.parametrize("model", [None, "sample folder"])
def test_search_loads_no_training_or_plotting_library(tmp_path, model):
    """A cold `semsearch search` (the sample, or `--model DIR`) imports no MyGrad, SciPy, gensim or
    matplotlib. With numba installed (the captioner extra, installed in CI) `import mygrad`
    compiles its GRU for seconds: this must run where numba is, to see that cost avoided."""
    pytest.importorskip("numba", reason="numba (extra [captioner]) makes importing MyGrad slow: the case this guards")
    from semsearch import sample

    args = ["search", "a dog on the grass", "-k", "2"] + (["--model", str(sample.model_dir())] if model else [])
    code = (
        "import sys\n"
        "from semsearch.cli.commands import main\n"
        f"assert main({args!r}) == 0\n"
        "print('LOADED', sorted(m for m in ('mygrad', 'mynn', 'numba', 'scipy', 'gensim', 'matplotlib', 'torch') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_DATA"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "top 2 of 154 images in " in result.stdout
    assert result.stdout.strip().endswith("LOADED []"), result.stdout


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path):
    """`semsearch search ... --paths | head`: a reader that stops early gets no BrokenPipeError traceback."""
    env = {k: v for k, v in os.environ.items() if k != "SEMSEARCH_DATA"}
    # `true` exits without reading, long before semsearch writes: every write meets a closed pipe
    result = subprocess.run(f'"{sys.executable}" -m semsearch search "a dog" -k 50 --paths | true; echo "status ${{PIPESTATUS[0]}}"',
                            shell=True, executable="/bin/bash", cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "status 141"  # as `yes | true`: killed by the closed pipe, quietly
    assert result.stderr == "", result.stderr
