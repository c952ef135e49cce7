"""`semsearch duplicates`: exact copies and near duplicates (re-encoded, resized, cropped) of real photos."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from semsearch.photos.duplicates import NEAR_THRESHOLD, _components, find_duplicates, near_pairs
from semsearch.photos.folder import PhotoDatabase, index_folder

from photo_helpers import coco_jpegs, write_photo


@pytest.fixture(scope="module")
def planted(real_data, tmp_path_factory):
    """6 distinct photos, one exact copy, three near duplicates and one photo's two halves; indexed with
    the real EfficientNet-Lite0 and the shipped model."""
    pytest.importorskip("efficientnet_lite_pytorch")
    root = tmp_path_factory.mktemp("dups") / "Phone"
    sources = coco_jpegs(real_data)[20:28]
    (root / "DCIM").mkdir(parents=True)
    for n, source in enumerate(sources[:6]):
        shutil.copy(source, root / f"DCIM/IMG {n}.jpg")
    (root / "backup").mkdir()
    shutil.copy(root / "DCIM/IMG 0.jpg", root / "backup/IMG 0.jpg")
    write_photo(sources[1], root / "sent/IMG 1 small.jpg", quality=60)
    w, h = Image.open(sources[2]).size
    write_photo(sources[2], root / "sent/IMG 2 half.jpg", size=(w // 2, h // 2))
    write_photo(sources[3], root / "edited/IMG 3 crop.jpg", crop=0.08)
    image = Image.open(sources[6]).convert("RGB")
    w, h = image.size
    (root / "scene").mkdir()
    image.crop((0, 0, w * 3 // 5, h)).save(root / "scene/left.jpg", quality=95)
    image.crop((w * 2 // 5, 0, w, h)).save(root / "scene/right.jpg", quality=95)
    db = root.parent / "photos.npz"
    index_folder(root, db, progress=False)
    return root, db


def test_exact_and_near_groups_best_copy_first(planted):
    root, db = planted
    groups = find_duplicates(PhotoDatabase.load(db))
    found = {(g.kind, tuple(g.keys)) for g in groups}
    assert found == {
        ("near", ("DCIM/IMG 1.jpg", "sent/IMG 1 small.jpg")),
        ("near", ("DCIM/IMG 2.jpg", "sent/IMG 2 half.jpg")),
        ("near", ("DCIM/IMG 3.jpg", "edited/IMG 3 crop.jpg")),
        ("exact", ("DCIM/IMG 0.jpg", "backup/IMG 0.jpg")),  # equal pixels: the shorter path first
    }
    for g in groups:
        assert g.sizes == [(root / k).stat().st_size for k in g.keys]
        assert g.similarities[0] == 1.0 and all(s >= NEAR_THRESHOLD for s in g.similarities)
    assert [g.kind for g in groups] == ["near"] * 3 + ["exact"]
    assert find_duplicates(PhotoDatabase.load(db), near=False)[0].keys == ["DCIM/IMG 0.jpg", "backup/IMG 0.jpg"]
    strict = find_duplicates(PhotoDatabase.load(db), threshold=0.999, exact=False)  # only identical pixels are that close
    assert [g.keys for g in strict] == [["DCIM/IMG 0.jpg", "backup/IMG 0.jpg"]]


def test_cli_lists_groups_and_print0_separates_them(planted, capsys):
    from semsearch.cli import commands

    root, db = planted
    assert commands.main(["duplicates", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"4 groups of duplicates among the 12 photos of {root.resolve()} (4 extra copies")
    assert f"{root.resolve() / 'backup/IMG 0.jpg'}   " in out and "same bytes" in out and "best" in out
    assert commands.main(["duplicates", "--db", str(db), "--exact", "--print0"]) == 0
    raw = capsys.readouterr().out
    assert raw == f"{root.resolve() / 'DCIM/IMG 0.jpg'}\0{root.resolve() / 'backup/IMG 0.jpg'}\0\0"
    assert all(p.is_file() for p in root.rglob("*.jpg"))  # nothing deleted
    assert len(list(root.rglob("*.jpg"))) == 12


def reference_groups(vectors, threshold):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    linked = unit @ unit.T >= threshold
    seen, groups = set(), []
    for start in range(len(vectors)):
        if start in seen:
            continue
        stack, group = [start], set()
        while stack:
            a = stack.pop()
            if a not in group:
                group.add(a)
                stack.extend(np.flatnonzero(linked[a]).tolist())
        seen |= group
        if len(group) > 1:
            groups.append(sorted(group))
    return sorted(groups)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 10_000), threshold=st.floats(0.3, 0.99))
def test_near_groups_are_the_connected_components_of_the_similarity_graph(n, seed, threshold):
    vectors = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    pairs = near_pairs(vectors, threshold)
    assert (pairs[:, 0] < pairs[:, 1]).all() if len(pairs) else True
    assert sorted(sorted(g) for g in _components(n, pairs)) == reference_groups(vectors, threshold)
