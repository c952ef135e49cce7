"""Reading a PyTorch ``.pth`` state dict with NumPy alone, without running the code a pickle can name.

A ``torch.save`` file is a pickle whose tensors point at raw storages. Two layouts exist:

- the **zip** layout (torch >= 1.6): ``<root>/data.pkl`` plus one file ``<root>/data/<key>``
  of raw bytes per storage;
- the **legacy** layout: five pickles in a row (magic number, protocol version, system info,
  the object, the list of storage keys), then each storage as an int64 element count followed
  by its bytes.

:func:`read_state_dict` reads either with an unpickler that admits only what a state dict of
plain tensors needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
``_rebuild_parameter``, the ``torch.<Type>Storage`` names) and rebuilds each tensor as a NumPy
array here, from its storage, offset, shape and strides. Any other global (``os.system``, a
class, ...) is refused with :class:`~semsearch.errors.UnsafeFileError` before anything is
called, so no torch is needed and nothing runs. EfficientNet-Lite0's ImageNet head
(:meth:`semsearch.routes.classifier.ImageNetClassifier.from_efficientnet_lite0`) is read so.

Example
-------
>>> weights = read_state_dict("efficientnet-lite0-57934424.pth", keys=["_fc.weight", "_fc.bias"])  # doctest: +SKIP
>>> weights["_fc.weight"].shape                                                                      # doctest: +SKIP
(1000, 1280)
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union

import numpy as np

from semsearch.errors import InputError, UnsafeFileError
from semsearch.paths import require_file

PathLike = Union[str, "os.PathLike[str]"]

#: The first object of a legacy ``torch.save`` file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C

#: ``torch.<name>`` storage types -> the NumPy dtype of their elements (little-endian).
STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "UntypedStorage": "u1",
}


@dataclass(frozen=True)
class StorageType:
    """A ``torch.<name>`` storage class named in the pickle: only its element type matters here."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class Storage:
    """One storage a tensor points at; ``data`` (1-d, its elements) is filled once its bytes are read."""

    key: str
    dtype: np.dtype
    numel: int
    data: Optional[np.ndarray] = None


@dataclass(frozen=True)
class TensorRecord:
    """A tensor as the pickle describes it, rebuilt into an array by :meth:`to_numpy`."""

    storage: Storage
    offset: int
    shape: Tuple[int, ...]
    stride: Tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        """A copy of the tensor's elements, shape :attr:`shape`; InputError if they lie outside the storage."""
        data = self.storage.data
        if data is None:
            raise InputError(f"storage {self.storage.key} has no data in the file")
        if any(n == 0 for n in self.shape):
            return np.zeros(self.shape, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= len(data):
            raise InputError(f"a tensor of shape {self.shape} reaches past its storage of {len(data)} elements")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.shape, strides=[s * data.itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor(storage, offset, shape, stride, *unused) -> TensorRecord:
    if not isinstance(storage, Storage):
        raise InputError("a tensor in the file does not point at a storage")
    return TensorRecord(storage, int(offset), tuple(int(n) for n in shape), tuple(int(s) for s in stride))


def _rebuild_parameter(tensor, *unused) -> TensorRecord:
    return tensor


class _WeightsUnpickler(pickle.Unpickler):
    """Admits a state dict of plain tensors and nothing else; storages are collected by key."""

    def __init__(self, file, path: Path, legacy: bool):
        super().__init__(file)
        self.path, self.legacy = path, legacy
        self.storages: Dict[str, Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return StorageType(name)
        raise UnsafeFileError(
            f"{self.path} is not a plain weights file: it names {module}.{name}, which could run code; refusing it"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise UnsafeFileError(f"{self.path}: unexpected persistent id {str(pid)[:60]!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise InputError(f"{self.path}: a storage of unknown type {storage_type!r}")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = Storage(key, storage_type.dtype, int(numel))
        return self.storages[key]


def _records(obj, path: Path) -> Dict[str, TensorRecord]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{path} holds a {type(obj).__name__}, expected a state dict")
    return {str(k): v for k, v in obj.items() if isinstance(v, TensorRecord)}


def _read_zip(path: Path) -> Dict[str, TensorRecord]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise InputError(f"{path} is a zip file but not a torch.save file (no single data.pkl)")
        root = pickles[0][: -len("data.pkl")]
        byteorder = root + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise InputError(f"{path} was saved big-endian, which is not supported")
        unpickler = _WeightsUnpickler(io.BytesIO(archive.read(pickles[0])), path, legacy=False)
        records = _records(unpickler.load(), path)
        for storage in unpickler.storages.values():
            name = f"{root}data/{storage.key}"
            if name not in names:
                raise InputError(f"{path} lacks the storage {name}")
            raw = archive.read(name)
            storage.data = np.frombuffer(raw, dtype=storage.dtype, count=len(raw) // storage.dtype.itemsize)
    return records


def _read_legacy(path: Path) -> Dict[str, TensorRecord]:
    with open(path, "rb") as f:
        header = _WeightsUnpickler(f, path, legacy=True)
        if header.load() != LEGACY_MAGIC_NUMBER:
            raise InputError(f"{path} is neither a zip nor a legacy torch.save file")
        header.load(), header.load()  # protocol version, system info
        unpickler = _WeightsUnpickler(f, path, legacy=True)
        records = _records(unpickler.load(), path)
        keys = _WeightsUnpickler(f, path, legacy=True).load()
        for key in keys:
            storage = unpickler.storages.get(str(key))
            if storage is None:
                raise InputError(f"{path} lists a storage {key!r} that no tensor uses")
            count = struct.unpack("<q", f.read(8))[0]
            raw = f.read(count * storage.dtype.itemsize)
            if count < 0 or len(raw) != count * storage.dtype.itemsize:
                raise InputError(f"{path} is truncated (storage {key})")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return records


def read_state_dict(path: PathLike, keys: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` state dict as NumPy arrays, read without torch and without running code.

    Parameters
    ----------
    path : path
        A ``.pth`` / ``.pt`` file (zip or legacy layout) holding a dict of names to tensors
        (or ``{"state_dict": ...}``).
    keys : iterable of str, optional
        Only these tensors (each must be there). Default: every tensor.

    Returns
    -------
    dict str -> numpy.ndarray
        Each tensor's values, with its shape and dtype (float32 stays float32).

    Raises
    ------
    FileNotFoundError
        No such file.
    UnsafeFileError
        The pickle names anything but a state dict's plain parts; nothing it names is called.
    InputError
        Not a torch file, truncated, not a dict, or a key missing.
    """
    path = require_file(path, "network weights file")
    try:
        records = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except (UnsafeFileError, InputError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error, zipfile.BadZipFile) as e:
        raise InputError(f"{path} is not a readable torch weights file: {type(e).__name__}: {e}") from None
    wanted = list(records) if keys is None else list(keys)
    missing = [k for k in wanted if k not in records]
    if missing:
        raise InputError(f"{path} has no tensor {missing[0]!r} (not this network's file?)")
    return {k: records[k].to_numpy() for k in wanted}
