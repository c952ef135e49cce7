"""Atomic file writing: a file is either the old one or the complete new one, never half-written."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Tuple, Union

import numpy as np
from semsearch.common.checks import check_finite
from semsearch.errors import InputError, SemsearchError

PathLike = Union[str, "os.PathLike[str]"]


class DiskFullError(SemsearchError, OSError):
    """The disk (or the user's quota) filled up while a file was saved; the old file is untouched."""


def disk_full_message(path: PathLike, written: int, expected: int = 0) -> str:
    """One line: which file could not be saved, how much it needs, how much is free there.

    ``expected`` is the file's size if known (the arrays of an ``.npz``), ``written`` how
    much was written before the disk filled up (a lower bound otherwise).

    >>> disk_full_message("/nonexistent-folder/model.npz", 5 * 2**20, 8 * 2**20)  # doctest: +ELLIPSIS
    'cannot save /nonexistent-folder/model.npz: no space left on its disk (it needs about 8.0 MiB, ... free)...'
    """
    import shutil

    try:
        free = _size(shutil.disk_usage(_nearest_existing(Path(path).absolute())).free)
    except OSError:
        free = "an unknown amount"
    needed = f"about {_size(max(expected, written))}" if expected else f"more than {_size(written)}"
    return (f"cannot save {path}: no space left on its disk (it needs {needed}, {free} free); "
            "the previous file, if any, is untouched: free some space and run the command again")


def _size(n: int) -> str:
    """``n`` bytes for people: ``'812 bytes'``, ``'12.3 kB'``, ``'4.5 MiB'``, ``'1.2 GiB'``."""
    if n < 1000:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 1000:.1f} kB"
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


@contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, expected_bytes: int = 0) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched. A full
    disk (``ENOSPC``, or ``EDQUOT`` for a quota) is raised as :class:`DiskFullError`, one
    line naming ``path`` and the space needed (``expected_bytes``, if known, or what was
    written before the disk filled) and free.

    Examples
    --------
    >>> with atomic_write("weights.npz") as f:      # doctest: +SKIP
    ...     np.savez(f, weight=w)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        if e.errno in _DISK_FULL:
            raise DiskFullError(disk_full_message(path, 0, expected_bytes)) from None
        raise
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        try:
            written = os.path.getsize(tmp)
            os.unlink(tmp)
        except FileNotFoundError:
            written = 0
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            raise DiskFullError(disk_full_message(path, written, expected_bytes)) from None
        raise


#: errno values of a full disk: no space, and (where the platform has it) over the user's quota.
_DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


def digest_of_file(path: PathLike, digest) -> str:
    """The hex digest of a file's bytes by ``digest`` (a fresh ``hashlib`` object), read 1 MiB at a time.

    >>> import hashlib
    >>> digest_of_file(__file__, hashlib.sha256()) == sha256_of_file(__file__)
    True
    """
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path: PathLike) -> str:
    """The hex sha256 of a file's bytes (model folders' manifests, pinned downloads)."""
    import hashlib

    return digest_of_file(path, hashlib.sha256())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: PathLike, format: str, **arrays) -> None:
    """Write arrays and a format tag to a ``.npz`` file, atomically."""
    expected = sum(np.asarray(a).nbytes for a in arrays.values())  # savez stores them uncompressed
    with atomic_write(path, "wb", expected_bytes=expected) as f:
        np.savez(f, format=format, **arrays)


def load_npz(path: PathLike, format: str, names: Tuple[str, ...], what: str) -> Tuple[np.ndarray, ...]:
    """Read the named arrays of a ``.npz`` file written by :func:`save_npz` with this format.

    Raises FileNotFoundError naming ``what`` if there is no file, ValueError if it is not a
    readable ``.npz`` of that format, lacks one of the arrays, or holds NaN or inf in a
    floating-point array (weights, vectors: every float array semsearch saves is finite,
    so a non-finite one is damaged and would give silently wrong scores).
    """
    from semsearch.paths import require_file

    path = require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as f:
            found, arrays = str(f["format"]), tuple(f[name] for name in names)
    except Exception as e:
        raise InputError(f"{path} is not a semsearch {what}: {type(e).__name__}: {e}") from None
    if found != format:
        raise InputError(f"{path} is not a {format} file (format {found!r})")
    for name, array in zip(names, arrays):
        check_finite(array, f"{path} ({name})")
    return arrays


# ----------------------------------------------------------------------------- output paths


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_writable(path: PathLike, what: str = "output file", *, folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written (created or replaced).

    Writing is tried for real: a temporary file is created and removed in the nearest
    folder that exists (``path``'s parents are created later, when it is written), so a
    read-only folder or file system is found now rather than after an hour of training.

    Parameters
    ----------
    path : path
        The file or folder that will be written.
    what : str
        What it is, for the message ("output file", "model folder", ...).
    folder : bool
        ``path`` is a folder to write files into (it may exist); else a file, which must
        not be an existing folder.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        An empty path, a file where a folder is needed (or the reverse), or a location that
        cannot be written.

    Examples
    --------
    >>> check_writable("")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: the output file path is empty
    """
    if not str(path).strip():
        raise InputError(f"the {what} path is empty")
    path = Path(path)
    if not folder and path.is_dir():
        raise InputError(f"cannot write the {what} {path}: it is a folder")
    existing = _nearest_existing(Path(os.path.abspath(path if folder else path.parent)))
    if not existing.is_dir():
        raise InputError(f"cannot write the {what} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".semsearch-write-check-")
    except OSError as e:
        raise InputError(f"cannot write the {what} {path}: {existing} is not writable ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def ensure_distinct_output(out: PathLike, inputs, what: str = "output") -> Path:
    """Refuse an output path that would overwrite one of the command's inputs.

    ``out`` is refused when it is the same file as an input (after resolving ``..``,
    symlinks and hard links), when it lies inside an input that is a folder (a model
    folder's ``database.npz``), or, when ``out`` is a folder, when an input lies inside
    it (the folder would be replaced).

    Parameters
    ----------
    out : path
        Where the command will write.
    inputs : iterable of path or None
        What the command reads (None entries are skipped).
    what : str
        The option's name or role, for the message (``"--out"``).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        ``out`` is, or would overwrite, an input.

    Examples
    --------
    >>> ensure_distinct_output("queries.csv", ["queries.csv"])
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: output queries.csv is also an input of this command (queries.csv); writing it would destroy that input: choose another path
    """
    if not str(out).strip():
        raise InputError(f"the {what} path is empty")
    out_path = Path(out)
    out_real = Path(os.path.realpath(out_path))
    for given in inputs:
        if given is None:
            continue
        real = Path(os.path.realpath(given))
        same = out_real == real
        if not same and out_path.exists() and Path(given).exists():
            try:
                same = os.path.samefile(out_path, given)
            except OSError:
                same = False
        inside_input = real.is_dir() and real in out_real.parents
        input_inside = out_real.is_dir() and out_real in real.parents
        if same or inside_input or input_inside:
            relation = "is also" if same else ("lies inside" if inside_input else "holds")
            raise InputError(
                f"{what} {out} {relation} an input of this command ({given}); "
                "writing it would destroy that input: choose another path"
            )
    return out_path
