"""Atomic file writing: a file is either the old one or the complete new one, never half-written."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Tuple, Union

import numpy as np
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
    ...     np.savez(f, weight=w)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: PathLike, format: str, **arrays) -> None:
    """Write arrays and a format tag to a ``.npz`` file, atomically."""
    with atomic_write(path, "wb") as f:
        np.savez(f, format=format, **arrays)


def load_npz(path: PathLike, format: str, names: Tuple[str, ...], what: str) -> Tuple[np.ndarray, ...]:
    """Read the named arrays of a ``.npz`` file written by :func:`save_npz` with this format.

    Raises FileNotFoundError naming ``what`` if there is no file, ValueError if it is not a
    readable ``.npz`` of that format or lacks one of the arrays.
    """
    from .paths import require_file

    path = require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as f:
            found, arrays = str(f["format"]), tuple(f[name] for name in names)
    except Exception as e:
        raise InputError(f"{path} is not a semsearch {what}: {type(e).__name__}: {e}") from None
    if found != format:
        raise InputError(f"{path} is not a {format} file (format {found!r})")
    return arrays
