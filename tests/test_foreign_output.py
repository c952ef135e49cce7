"""Never rewrite what the user did not ask to (issue 22, item 4): ``features --out`` onto the
course's plain ``{id: array}`` pickle is refused, and the pickle is left as it was."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from semsearch.errors import InputError


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for n, image_id in enumerate((139, 285)):
        Image.new("RGB", (64, 48), (60 * n, 100, 30)).save(folder / f"{image_id:012d}.jpg")
    return folder


@pytest.fixture
def course_pickle(tmp_path):
    """The course's descriptor file: a plain pickle of {coco id: (1, 512) float32}, read with pickle.load."""
    path = tmp_path / "resnet18_features.pkl"
    with open(path, "wb") as f:
        pickle.dump({139: np.ones((1, 512), np.float32)}, f)
    return path


def test_extract_features_refuses_to_extend_a_course_pickle(image_dir, course_pickle):
    pytest.importorskip("torchvision")
    from semsearch.features import extract_features

    before = course_pickle.read_bytes()
    with pytest.raises(InputError, match=r"resnet18_features\.pkl is not a semsearch descriptor file \(\.npz\)"):
        extract_features(image_dir, course_pickle, backbone="resnet18", pretrained=False, progress=False)
    assert course_pickle.read_bytes() == before
    with open(course_pickle, "rb") as f:
        assert set(pickle.load(f)) == {139}  # the course's pickle.load still reads it
    assert sorted(p.name for p in course_pickle.parent.iterdir()) == ["images", "resnet18_features.pkl"]


def test_the_cli_says_so_in_one_line_and_names_a_new_file(image_dir, course_pickle, capsys):
    pytest.importorskip("torchvision")
    from semsearch.cli.commands import main

    before = course_pickle.read_bytes()
    assert main(["features", str(image_dir), "--out", str(course_pickle), "--backbone", "resnet18", "--no-pretrained"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pickle.load cannot read" in err
    assert f"--out {course_pickle.with_suffix('.npz')}" in err
    assert course_pickle.read_bytes() == before


def test_a_semsearch_file_under_a_pkl_name_is_still_extended(image_dir, tmp_path):
    pytest.importorskip("torchvision")
    from semsearch.descriptors import Descriptors
    from semsearch.features import extract_features

    out = tmp_path / "d.pkl"  # semsearch's own format under the name older versions used
    first = extract_features(image_dir, out, backbone="resnet18", pretrained=False, progress=False, ids=[139])
    again = extract_features(image_dir, out, backbone="resnet18", pretrained=False, progress=False)
    assert (first.n_new, again.n_new, again.n_skipped_existing) == (1, 1, 1)
    assert sorted(Descriptors.load(out).ids.tolist()) == [139, 285]
