"""Tests of semsearch.descriptors: descriptor pickles as one (N, D) float32 matrix."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.coco import UnknownIdError
from semsearch.backbones import backbone_info
from semsearch.descriptors import Descriptors

PICKLE = Path("descriptors/effnet_lite0_coco_mini.pkl")


def write_pickle(path: Path, obj) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def small_mapping() -> dict:
    """Three images, D = 4, given out of id order, as (1, D) float32 like the course pickle."""
    return {
        30: np.array([[3.0, 0.5, 0.0, 1.0]], dtype=np.float32),
        10: np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32),
        20: np.array([[0.0, -1.0, 0.25, 8.0]], dtype=np.float32),
    }


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def raw_pickle(real_data: Path) -> dict:
    with open(real_data / PICKLE, "rb") as f:
        return pickle.load(f)


def test_real_pickle(real_data: Path, raw_pickle: dict):
    d = Descriptors.load(real_data / PICKLE)
    assert len(d) == 239 and d.dim == 1280
    assert d.vectors.shape == (239, 1280) and d.vectors.dtype == np.float32
    assert d.ids.dtype == np.int64
    np.testing.assert_array_equal(d.ids, sorted(raw_pickle))
    assert np.all(np.diff(d.ids) > 0)
    # one descriptor per image file in coco/images
    image_ids = sorted(int(p.stem) for p in (real_data / "coco" / "images").glob("*.jpg"))
    np.testing.assert_array_equal(d.ids, image_ids)
    some = [int(i) for i in d.ids[::-7]]  # not in sorted order
    np.testing.assert_array_equal(d.vectors_of(some), np.concatenate([raw_pickle[i] for i in some]))
    np.testing.assert_array_equal(d.vectors, np.concatenate([raw_pickle[i] for i in sorted(raw_pickle)]))
    assert 139 in d and 1 not in d
    assert repr(d) == "Descriptors(239 images, D=1280, efficientnet-lite0)"
    assert d.backbone_info == backbone_info("efficientnet-lite0")  # a 1280-d pickle: named by its size


# --------------------------------------------------------------------------- construction
def test_ids_sorted_and_rows_follow():
    d = Descriptors(small_mapping())
    np.testing.assert_array_equal(d.ids, [10, 20, 30])
    np.testing.assert_array_equal(d.vectors, np.concatenate([small_mapping()[i] for i in (10, 20, 30)]))
    np.testing.assert_array_equal(d.rows_of([30, 10, 10]), [2, 0, 0])
    np.testing.assert_array_equal(d.vectors_of([20]), small_mapping()[20])
    assert d.vectors_of([]).shape == (0, 4)


def test_flat_and_row_shapes_both_accepted():
    flat = {i: v[0] for i, v in small_mapping().items()}  # (D,)
    mixed = {10: small_mapping()[10], 20: small_mapping()[20][0], 30: small_mapping()[30]}
    expected = Descriptors(small_mapping()).vectors
    for mapping in (flat, mixed):
        d = Descriptors(mapping)
        assert d.vectors.shape == (3, 4)
        np.testing.assert_array_equal(d.vectors, expected)


def test_other_numeric_dtypes_become_float32():
    d = Descriptors({1: np.array([1, 2, 3], dtype=np.int32), 2: np.array([0.1, 0.2, 0.3], dtype=np.float64), 3: [7, 8, 9]})
    assert d.vectors.dtype == np.float32
    np.testing.assert_array_equal(d.vectors, np.array([[1, 2, 3], [0.1, 0.2, 0.3], [7, 8, 9]], dtype=np.float32))


def test_numpy_integer_keys():
    d = Descriptors({np.int64(5): np.ones(2), np.int32(3): np.zeros(2)})
    np.testing.assert_array_equal(d.ids, [3, 5])
    np.testing.assert_array_equal(d.vectors_of([np.int64(5)]), [[1, 1]])


def test_torch_tensors_accepted():
    torch = pytest.importorskip("torch")
    mapping = {
        1: torch.tensor([[1.0, 2.0, 3.0]]),
        2: torch.tensor([4.0, 5.0, 6.0], requires_grad=True),
        3: torch.tensor([7.0, 8.0, 9.0], dtype=torch.float64),
    }
    d = Descriptors(mapping)
    assert d.vectors.dtype == np.float32
    np.testing.assert_array_equal(d.vectors, np.arange(1, 10, dtype=np.float32).reshape(3, 3))


@given(
    st.dictionaries(
        st.integers(0, 10**9),
        st.lists(st.floats(-1e6, 1e6, width=32), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    st.booleans(),
)
@settings(max_examples=50, deadline=None)
def test_vectors_of_returns_what_was_given(mapping: dict, as_rows: bool):
    arrays = {i: np.array([v] if as_rows else v, dtype=np.float32) for i, v in mapping.items()}
    d = Descriptors(arrays)
    ids = list(mapping)
    np.testing.assert_array_equal(d.ids, sorted(ids))
    np.testing.assert_array_equal(d.vectors_of(ids), np.array([mapping[i] for i in ids], dtype=np.float32))


# --------------------------------------------------------------------------- bad input
def test_different_sizes():
    with pytest.raises(ValueError, match=r"different sizes: \[3, 4\]"):
        Descriptors({1: np.zeros(4), 2: np.zeros((1, 3))})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf(bad: float):
    with pytest.raises(ValueError, match=r"\[7\].*NaN or inf"):
        Descriptors({1: np.zeros(3), 7: np.array([0.0, bad, 1.0])})


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_float64_overflowing_float32_is_rejected():
    with pytest.raises(ValueError, match="NaN or inf"):
        Descriptors({1: np.array([1e300, 0.0])})


@pytest.mark.parametrize(
    "array",
    [np.zeros((2, 4)), np.zeros((1, 1, 4)), np.zeros((4, 1)), np.float32(1.0)],
    ids=["(2, D)", "(1, 1, D)", "(D, 1)", "scalar"],
)
def test_wrong_rank(array):
    with pytest.raises(ValueError, match=r"image 42 has shape .*expected \(1, D\) or \(D,\)"):
        Descriptors({1: np.zeros(4), 42: array})


def test_not_numeric():
    with pytest.raises(ValueError, match="image 5 is not numeric"):
        Descriptors({5: np.array(["a", "b"])})


def test_empty_mapping():
    with pytest.raises(ValueError, match="no descriptors"):
        Descriptors({})


def test_load_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="absent.pkl"):
        Descriptors.load(tmp_path / "absent.pkl")


def test_load_non_dict_pickle(tmp_path: Path):
    path = write_pickle(tmp_path / "list.pkl", [np.zeros((1, 4))])
    with pytest.raises(ValueError, match=r"list.pkl holds a list"):
        Descriptors.load(path)


def test_load_truncated_pickle(tmp_path: Path):
    whole = pickle.dumps(small_mapping(), protocol=4)
    path = tmp_path / "truncated.pkl"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="truncated.pkl is not a readable descriptor pickle"):
        Descriptors.load(path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", bytes(range(256))], ids=["empty", "text", "bytes"])
def test_load_corrupt_pickle(tmp_path: Path, content: bytes):
    path = tmp_path / "corrupt.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="corrupt.pkl"):
        Descriptors.load(path)


def test_load_pickle_with_bad_contents(tmp_path: Path):
    path = write_pickle(tmp_path / "nan.pkl", {1: np.array([[np.nan, 0.0]])})
    with pytest.raises(ValueError, match="NaN"):
        Descriptors.load(path)
    path = write_pickle(tmp_path / "empty.pkl", {})
    with pytest.raises(ValueError, match="no descriptors"):
        Descriptors.load(path)


def test_rows_of_unknown_id():
    d = Descriptors(small_mapping())
    with pytest.raises(UnknownIdError, match=r"\b31\b"):
        d.rows_of([10, 31])
    with pytest.raises(UnknownIdError, match=r"\b31\b"):
        d.vectors_of([31])
    with pytest.raises(KeyError):  # UnknownIdError is a KeyError
        d.subset([99])


def test_subset():
    d = Descriptors(small_mapping()).subset([30, 10])
    np.testing.assert_array_equal(d.ids, [10, 30])
    np.testing.assert_array_equal(d.vectors, np.concatenate([small_mapping()[10], small_mapping()[30]]))
    assert 20 not in d


# --------------------------------------------------------------------------- saving
def test_save_load_round_trip(tmp_path: Path):
    d = Descriptors(small_mapping(), backbone={"backbone": "tiny", "dim": 4, "weights": "hand-made"})
    path = tmp_path / "sub" / "desc.npz"
    d.save(path)
    again = Descriptors.load(path)
    np.testing.assert_array_equal(again.ids, d.ids)
    np.testing.assert_array_equal(again.vectors, d.vectors)
    assert again.vectors.dtype == np.float32
    assert again.backbone_info == {"backbone": "tiny", "dim": 4, "weights": "hand-made"}
    # the file is a plain .npz, readable without unpickling
    with np.load(path, allow_pickle=False) as f:
        assert str(f["format"]) == "semsearch-descriptors-1"
        np.testing.assert_array_equal(f["ids"], [10, 20, 30])
    unknown = Descriptors(small_mapping())
    unknown.save(path)
    assert Descriptors.load(path).backbone_info is None


def test_pickles_are_named_by_their_size_or_by_the_caller(tmp_path: Path):
    resnet = write_pickle(tmp_path / "resnet18_features.pkl", {1: np.ones((1, 512)), 2: np.zeros((1, 512))})
    assert Descriptors.load(resnet).backbone_info == backbone_info("resnet18")  # the course pickle
    assert Descriptors.load(write_pickle(tmp_path / "other.pkl", small_mapping())).backbone_info is None
    mobilenet = {"backbone": "mobilenet_v2", "dim": 4}
    assert Descriptors.load(tmp_path / "other.pkl", backbone=mobilenet).backbone_info == mobilenet
    with pytest.raises(ValueError, match=r"resnet18_features.pkl: the descriptors are 512-d, but backbone efficientnet-lite0 makes 1280-d"):
        Descriptors.load(resnet, backbone="efficientnet-lite0")


def test_npz_backbone_contradicted_by_the_caller(tmp_path: Path):
    path = tmp_path / "r.npz"
    Descriptors({1: np.ones(512)}, backbone="resnet18").save(path)
    with pytest.raises(ValueError, match=r"r.npz: .*come from resnet18 \(512-d\).*expects efficientnet-lite0 \(1280-d\)"):
        Descriptors.load(path, backbone={"backbone": "efficientnet-lite0", "dim": 1280})
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        Descriptors({1: np.ones(4)}, backbone="vgg")


def test_subset_keeps_the_backbone():
    d = Descriptors({1: np.ones(512), 2: np.zeros(512)}, backbone="resnet18")
    assert d.subset([2]).backbone_info == backbone_info("resnet18")


def test_to_dict_is_a_copy():
    d = Descriptors(small_mapping())
    out = d.to_dict()
    out[10][0, 0] = 123.0
    assert d.vectors[0, 0] == 1.0


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "desc.pkl"
    Descriptors(small_mapping()).save(path)
    before = path.read_bytes()

    def failing_savez(f, *args, **kwargs):
        f.write(b"PK\x03\x04half a zip")
        raise RuntimeError("disk full")

    import semsearch.common.files as io_module

    monkeypatch.setattr(io_module.np, "savez", failing_savez)
    with pytest.raises(RuntimeError, match="disk full"):
        Descriptors({1: np.ones(4)}).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["desc.pkl"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(Descriptors.load(path).ids, [10, 20, 30])
