"""Descriptor pickles load without running code; real descriptor files still load."""
from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from semsearch.descriptors import Descriptors
from semsearch.errors import InputError, UnsafeFileError
from semsearch.common.safe_pickle import PINNED, load_descriptor_pickle


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Subprocess(_System):
    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


class _Eval(_System):
    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _Exec(_System):
    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


class _Popen(_System):
    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


_ATTACKS = [_System, _Subprocess, _Eval, _Exec, _Popen]


@pytest.mark.parametrize("attack", _ATTACKS, ids=lambda a: a.__name__)
@pytest.mark.parametrize("where", ["top", "value", "key-array"])
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_runs_nothing(tmp_path, attack, where, protocol):
    marker = tmp_path / "MARKER"
    payload = attack(marker)
    obj = {
        "top": payload,
        "value": {139: np.ones((1, 4), np.float32), 285: payload},
        "key-array": {139: [payload]},
    }[where]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(UnsafeFileError, match="evil.pkl.*could run code"):
        Descriptors.load(path)
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_System(tmp_path / "M"), protocol=4))
    with pytest.raises(UnsafeFileError) as info:
        load_descriptor_pickle(path)
    message = str(info.value)
    assert "\n" not in message
    assert ("posix.system" in message) or ("os.system" in message)


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", ">f8", "int64", "uint8"])
def test_numpy_pickles_of_every_protocol_and_dtype_load(tmp_path, protocol, dtype):
    rng = np.random.default_rng(0)
    mapping = {int(i): (rng.normal(size=(1, 6)) * 10).astype(dtype) for i in (9, 139, 285)}
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(mapping, protocol=protocol))
    reference = pickle.loads(path.read_bytes())  # what the unrestricted unpickler gives
    loaded = load_descriptor_pickle(path)
    assert sorted(loaded) == [9, 139, 285]
    for key, value in mapping.items():
        assert loaded[key].dtype == reference[key].dtype
        np.testing.assert_array_equal(loaded[key], value)
    descriptors = Descriptors.load(path)
    np.testing.assert_array_equal(descriptors.vectors_of([139])[0], mapping[139][0].astype(np.float32))


def test_numpy_scalars_and_1d_arrays_load(tmp_path):
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps({1: np.arange(3.0), 2: np.float32(2.5)}, protocol=2))
    loaded = load_descriptor_pickle(path)
    assert loaded[2] == np.float32(2.5) and loaded[2].dtype == np.float32
    np.testing.assert_array_equal(loaded[1], [0.0, 1.0, 2.0])


def test_object_array_with_a_payload_is_refused(tmp_path):
    marker = tmp_path / "M"
    array = np.empty(1, dtype=object)
    array[0] = _System(marker)
    path = tmp_path / "o.pkl"
    path.write_bytes(pickle.dumps({1: array}, protocol=4))
    with pytest.raises(UnsafeFileError):
        load_descriptor_pickle(path)
    assert not marker.exists()


def test_real_shared_descriptor_file_loads(real_data):
    path = real_data / "descriptors" / "effnet_lite0_coco_mini.pkl"
    with open(path, "rb") as f:
        reference = pickle.load(f)  # the trusted shared file, read the ordinary way
    loaded = load_descriptor_pickle(path)
    assert loaded.keys() == reference.keys()
    assert len(loaded) == 239
    first = next(iter(reference))
    np.testing.assert_array_equal(loaded[first], reference[first])
    assert Descriptors.load(path).dim == 1280


@pytest.mark.parametrize("content, fragment", [
    (b"", "not a readable descriptor pickle"),
    (b"not a pickle at all", "not a readable descriptor pickle"),
    (pickle.dumps({1: np.ones((1, 3))}, protocol=4)[:-20], "not a readable descriptor pickle"),
    (pickle.dumps([1, 2, 3]), "holds a list, expected a dict"),
    (pickle.dumps(7), "holds a int, expected a dict"),
])
def test_unreadable_or_wrong_shape_pickles(tmp_path, content, fragment):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=fragment):
        Descriptors.load(path)


def test_pinned_course_file_with_wrong_hash_is_refused(tmp_path):
    size, _ = PINNED["resnet18_features.pkl"]
    path = tmp_path / "resnet18_features.pkl"
    with open(path, "wb") as f:  # a sparse file of the course file's size
        f.truncate(size)
    with pytest.raises(UnsafeFileError, match="resnet18_features.pkl has the size of the course's .* not its sha256"):
        Descriptors.load(path)


def test_other_size_under_the_pinned_name_is_just_read(tmp_path):
    path = tmp_path / "resnet18_features.pkl"
    path.write_bytes(pickle.dumps({5: np.ones((1, 2), np.float32)}, protocol=4))
    assert Descriptors.load(path).dim == 2


# ----------------------------------------------------------------------------- torch

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickle_of_torch_tensors_loads(tmp_path, protocol):
    mapping = {139: torch.arange(4, dtype=torch.float32)[None], 285: torch.ones(1, 4, dtype=torch.float64)}
    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps(mapping, protocol=protocol))
    loaded = load_descriptor_pickle(path)
    assert torch.equal(loaded[139], mapping[139]) and loaded[285].dtype == torch.float64
    np.testing.assert_array_equal(Descriptors.load(path).vectors_of([139])[0], [0, 1, 2, 3])


@pytest.mark.parametrize("zipped", [True, False])
def test_torch_save_file_loads(tmp_path, zipped):
    path = tmp_path / "t.pt"
    torch.save({7: torch.full((1, 3), 2.0)}, path, _use_new_zipfile_serialization=zipped)
    loaded = load_descriptor_pickle(path)
    assert torch.equal(loaded[7], torch.full((1, 3), 2.0))


@pytest.mark.parametrize("zipped", [True, False])
def test_malicious_torch_save_runs_nothing(tmp_path, zipped):
    marker = tmp_path / "MARKER"
    path = tmp_path / "t.pt"
    torch.save({7: _System(marker)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(UnsafeFileError, match="t.pt holds torch data that names more than tensors"):
        load_descriptor_pickle(path)
    assert not marker.exists()


def test_malicious_storage_bytes_run_nothing(tmp_path):
    """A plain pickle whose 'tensor storage' bytes are a torch.save of a payload."""
    import io

    marker = tmp_path / "MARKER"
    buffer = io.BytesIO()
    torch.save(_System(marker), buffer, _use_new_zipfile_serialization=False)

    class _FakeTensor:
        def __reduce__(self):
            import torch.storage

            return (torch.storage._load_from_bytes, (buffer.getvalue(),))

    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps({1: _FakeTensor()}, protocol=4))
    with pytest.raises(UnsafeFileError):
        load_descriptor_pickle(path)
    assert not marker.exists()


def test_core_import_does_not_import_torch():
    code = "import semsearch, semsearch.common.safe_pickle, semsearch.descriptors, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
