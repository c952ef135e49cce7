"""Reading descriptor pickles without running the code a pickle can name.

``pickle.load`` calls whatever function a pickle names: a file whose ``__reduce__`` returns
``(os.system, ("...",))`` runs that command while it is read. A descriptor file only needs
a ``dict`` of ``int`` keys to arrays, so :func:`load_descriptor_pickle` reads it with an
unpickler that admits only the globals NumPy uses to rebuild an array (``_reconstruct``,
``ndarray``, ``dtype``, ``scalar``, ``_frombuffer``, and ``_codecs.encode`` for protocol
0-2 bytes) and refuses every other one with :class:`~semsearch.errors.UnsafeFileError`,
*before* calling anything.

Torch tensors are admitted only through ``torch.load(..., weights_only=True)``, which
cannot run code: a ``torch.save`` file (zip or legacy format) is handed to it whole, and in
a plain pickle of tensors each tensor's storage bytes are (torch's own ``_load_from_bytes``
would call ``torch.load(weights_only=False)`` on them, so it is replaced).

The course's ``resnet18_features.pkl`` is also checked against its pinned sha256 (from
:data:`semsearch.fetch.SOURCES`) when a file has its name and size.

Example
-------
>>> mapping = load_descriptor_pickle("data/resnet18_features.pkl")   # doctest: +SKIP
>>> mapping[139].shape                                               # doctest: +SKIP
(1, 512)
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Callable, Dict, Union

from semsearch.common.files import sha256_of_file
from semsearch.errors import InputError, MissingExtraError, UnsafeFileError
from semsearch.paths import require_file

PathLike = Union[str, "os.PathLike[str]"]

# (module, name) -> where NumPy really keeps it ("numpy.core" was renamed "numpy._core" in
# NumPy 2; pickles written by either name both load, without importing the old alias).
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): ("", "ndarray"),
    ("numpy", "dtype"): ("", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
}
_TORCH_GLOBALS = {("torch._utils", "_rebuild_tensor_v2"), ("torch.storage", "_load_from_bytes")}

#: The first object of a legacy (pre-zip) ``torch.save`` file.
_TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_ZIP_MAGIC = b"PK\x03\x04"

#: file name -> (size in bytes, sha256) of descriptor files whose content is pinned.
PINNED = {"resnet18_features.pkl": (174_540_061, "d56e267dacd39608b4aae581595f8fa8ec55457ab59b713df1eafa93e1023450")}


def _numpy_global(module: str, name: str):
    import numpy as np

    where, attribute = _NUMPY_GLOBALS[(module, name)]
    if not where:
        return getattr(np, attribute)
    try:
        import importlib

        return getattr(importlib.import_module(f"numpy._core.{where}"), attribute)
    except ImportError:  # NumPy 1
        import importlib

        return getattr(importlib.import_module(f"numpy.core.{where}"), attribute)


def _torch(path: Path):
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            f"{path} holds torch tensors; reading them needs torch: pip install 'semsearch[features]'"
        ) from None
    return torch


def _storage_from_bytes(path: Path) -> Callable[[bytes], object]:
    torch = _torch(path)

    def load(data: bytes):
        try:
            return torch.load(io.BytesIO(data), weights_only=True)
        except pickle.UnpicklingError as e:  # weights_only refused a global
            raise _refused_by_torch(path, e) from None

    return load


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` knows only NumPy's (and torch's safe) rebuilders."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return _numpy_global(module, name)
        if (module, name) == ("_codecs", "encode"):  # protocol 0-2 write bytes as encode(str, "latin1")
            import _codecs

            return _codecs.encode
        if (module, name) == ("collections", "OrderedDict"):  # a tensor's (empty) backward hooks
            import collections

            return collections.OrderedDict
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes(self._path)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _torch(self._path)._utils._rebuild_tensor_v2
        raise UnsafeFileError(
            f"{self._path} is not a plain descriptor pickle: it names {module}.{name}, which could run code; "
            "refusing to load it (a descriptor file holds only a dict of COCO ids to arrays)"
        )

    def persistent_load(self, pid):
        raise UnsafeFileError(f"{self._path} is not a plain descriptor pickle: it uses persistent ids")



def check_pinned(path: PathLike) -> None:
    """Refuse a file named like a pinned download, of its size, whose sha256 differs.

    Raises
    ------
    UnsafeFileError
        ``resnet18_features.pkl`` of the course file's size but with another sha256.
    """
    path = Path(path)
    pinned = PINNED.get(path.name)
    if pinned is None or path.stat().st_size != pinned[0]:
        return
    found = sha256_of_file(path)
    if found != pinned[1]:
        raise UnsafeFileError(
            f"{path} has the size of the course's {path.name} but not its sha256 "
            f"({found[:12]}... instead of {pinned[1][:12]}...): it was altered; download it again (semsearch fetch)"
        )


def _torch_load(path: Path):
    torch = _torch(path)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:  # weights_only refused a global
        raise _refused_by_torch(path, e) from None
    except Exception as e:  # a damaged zip, ...
        raise InputError(f"{path} is not a readable torch file: {type(e).__name__}: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _refused_by_torch(path: Path, error: BaseException) -> UnsafeFileError:
    return UnsafeFileError(
        f"{path} holds torch data that names more than tensors; refusing it ({_first_line(error)})"
    )


def load_descriptor_pickle(path: PathLike) -> Dict:
    """Read a descriptor pickle ``{coco_id: array}`` without running code.

    Parameters
    ----------
    path : path
        A pickle (protocol 0-5) of a dict of ints to NumPy arrays or torch tensors, or a
        ``torch.save`` file of such a dict.

    Returns
    -------
    dict
        As stored; :class:`~semsearch.descriptors.Descriptors` checks keys and shapes.

    Raises
    ------
    FileNotFoundError
        No such file.
    UnsafeFileError
        The pickle names any other global (``os.system``, ``builtins.eval``, a class, ...),
        or it is the course file with a wrong sha256. Nothing it names is called.
    InputError
        Not a pickle, truncated, or not a dict.
    MissingExtraError
        It holds torch tensors and torch is not installed.

    Examples
    --------
    >>> import numpy as np, pickle, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.pkl")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({139: np.ones((1, 4), np.float32)}, f)
    >>> load_descriptor_pickle(path)[139].shape
    (1, 4)
    """
    path = require_file(path, "descriptor file")
    check_pinned(path)
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head == _ZIP_MAGIC:
            mapping = _torch_load(path)
        else:
            try:
                mapping = _RestrictedUnpickler(f, path).load()
            except (UnsafeFileError, MissingExtraError):
                raise
            except Exception as e:  # truncated, not a pickle, ...
                message = " ".join(str(e).split()) or "no detail"
                raise InputError(f"{path} is not a readable descriptor pickle: {type(e).__name__}: {message}") from None
    if type(mapping) is int and mapping == _TORCH_MAGIC_NUMBER:  # a legacy torch.save file
        mapping = _torch_load(path)
    if not isinstance(mapping, dict):
        raise InputError(f"{path} holds a {type(mapping).__name__}, expected a dict {{coco_id: array}}")
    return mapping
