"""Which files of a photo folder semsearch reads, serves and prints: only the folder's own.

The rules, checked by resolving paths (following links), never by looking at the text:

- **A key is a relative path inside the root.** A photo database's keys are paths relative
  to its folder, ``/``-separated. A key that is absolute, empty, holds a NUL or a ``..``
  that climbs out of the root is refused when the database is loaded
  (:func:`check_keys`): such a file was damaged or made by hand to reach other files.
- **A symbolic link is followed only when its target resolves inside the root.** A link
  to a file elsewhere (or a chain of links ending elsewhere, or a loop) is skipped and
  listed when indexing, and never served or printed. Links to folders are not followed
  at all (they could loop or count the same photos twice).
- **Checked again when used** (:func:`file_inside`): a file replaced by a link to
  outside after indexing is neither described, served nor printed.
- A folder that cannot be listed (no permission) is skipped and listed, like a broken file.

Example
-------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "a.jpg").write_bytes(b"x")
1
>>> file_inside(root, "a.jpg") == (root / "a.jpg").resolve()
True
>>> file_inside(root, "../etc/passwd") is None
True
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Iterable, List, Optional, Tuple, Union

from semsearch.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


class OutsideFolderError(InputError):
    """A key or a file that is not (or no longer) inside the photo folder."""


def _real(path: PathLike) -> Optional[Path]:
    """``path`` with every link followed, or None for a loop or a path that cannot be resolved."""
    try:
        return Path(os.path.realpath(path, strict=True))
    except (OSError, RuntimeError, ValueError):  # missing, a loop (ELOOP), no permission, a NUL
        return None


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_key(key, root: PathLike) -> str:
    """``key`` if it names a path inside ``root`` without following links, else :class:`OutsideFolderError`.

    Absolute keys (``/etc/passwd``, ``C:\\x``), empty ones, ones holding a NUL or a
    backslash-separated climb, and ones whose ``..`` parts leave ``root`` are refused.
    The check joins and normalises the path (it does not test for ``..`` in the text):
    ``a/../b.jpg`` is fine, ``a/../../b.jpg`` is not.

    >>> check_key("2023/IMG 1.jpg", "/photos")
    '2023/IMG 1.jpg'
    >>> check_key("a/../../secret.jpg", "/photos")
    Traceback (most recent call last):
    ...
    semsearch.photos.paths.OutsideFolderError: the key 'a/../../secret.jpg' is not a path inside the folder /photos
    """
    root = os.path.abspath(root)
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key:
        raise OutsideFolderError(f"the key {key!r} is not a path inside the folder {root}")
    pure = PurePosixPath(key)
    if pure.is_absolute() or (len(key) > 1 and key[1] == ":"):
        raise OutsideFolderError(f"the key {key!r} is not a path inside the folder {root}")
    joined = os.path.normpath(os.path.join(root, *pure.parts))
    if os.path.commonpath([joined, root]) != root or joined == root:
        raise OutsideFolderError(f"the key {key!r} is not a path inside the folder {root}")
    return key


def check_keys(keys: Iterable, root: PathLike, source: PathLike) -> None:
    """:func:`check_key` on every key; the error names the database file ``source``."""
    for key in keys:
        try:
            check_key(key, root)
        except OutsideFolderError as e:
            raise OutsideFolderError(f"{source}: {e} (a damaged or hand-made photo database)") from None


def file_inside(root: PathLike, key: str) -> Optional[Path]:
    """The real path of ``root / key`` if it is a regular file whose links all resolve inside ``root``.

    None for a key that is not a path inside the root, a missing file, a link (or chain
    of links) leading outside the root, a link loop, or anything but a regular file. The
    returned path has no links left in it: open that one, not ``root / key``.
    """
    real_root = _real(root)
    if real_root is None:
        return None
    try:
        check_key(key, root)
    except OutsideFolderError:
        return None
    real = _real(Path(root) / key)
    if real is None or not _is_within(real, real_root) or not real.is_file():
        return None
    return real


def require_inside(root: PathLike, path: PathLike) -> Path:
    """The real path of ``path`` (a file under ``root``), or :class:`OutsideFolderError` saying why not.

    For reading a listed file at the moment it is read: it may have been replaced by a
    link since it was listed.
    """
    real_root = _real(root) or Path(os.path.abspath(root))
    real = _real(path)
    if real is None:
        if os.path.lexists(path) and os.path.islink(path):
            raise OutsideFolderError(f"{path} is a broken link or a loop of links")
        raise FileNotFoundError(f"{path} no longer exists")
    if not _is_within(real, real_root):
        raise OutsideFolderError(f"{path} is a link to {real}, outside the folder {real_root} (not followed)")
    return real


def find_photo_files(root: PathLike, suffixes: Tuple[str, ...]) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """The image files under ``root`` that semsearch may read, and the ones it may not (with why).

    Parameters
    ----------
    root : path
        The photo folder (must exist).
    suffixes : tuple of str
        Lower-case file endings that count as images, e.g. ``(".jpg", ".png")``.

    Returns
    -------
    files : list of Path
        ``root / relative path`` of each image (sorted): regular files, and links whose
        target resolves to a file inside ``root``. Hidden files and folders are left out;
        links to folders are not followed.
    refused : list of (str, str)
        ``(path, reason)`` for each image link leading outside ``root`` (or broken, or
        looping) and each folder that could not be listed.
    """
    root = Path(os.path.abspath(root))
    real_root = _real(root) or root
    files: List[Path] = []
    refused: List[Tuple[str, str]] = []

    def unreadable(error: OSError) -> None:
        refused.append((str(error.filename or root), f"cannot list this folder ({error.strerror or error})"))

    for directory, subdirs, names in os.walk(root, onerror=unreadable):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in suffixes:
                continue
            path = Path(directory) / name
            if not os.path.islink(path):
                if path.is_file():  # not a FIFO or a device named like a photo: opening those could hang
                    files.append(path)
                else:
                    refused.append((str(path), "is not a regular file"))
                continue
            real = _real(path)
            if real is None:
                refused.append((str(path), "is a broken link or a loop of links (not followed)"))
            elif not _is_within(real, real_root):
                refused.append((str(path), f"is a link to {real}, outside the folder (not followed)"))
            elif not real.is_file():
                refused.append((str(path), "is a link to something that is not a file (not followed)"))
            else:
                files.append(path)
    return sorted(files), refused


def shown_name(name: str) -> str:
    r"""``name`` as one line of text any output can carry: odd bytes and control characters escaped.

    On Linux a file name is bytes; Python keeps the bytes of a name that is not UTF-8 (a
    Latin-1 ``café.jpg``) as lone surrogates, which JSON and a UTF-8 terminal refuse: they
    are shown as ``\xNN``. Line breaks, tabs and other control characters are shown as
    Python writes them (``\n``), so that a name is always one line (and one URL path).
    Any other name is returned as it is.

    >>> shown_name("caf\udce9.jpg")
    'caf\\xe9.jpg'
    >>> shown_name("line\nbreak.jpg")
    'line\\nbreak.jpg'
    >>> shown_name("été 1.jpg")
    'été 1.jpg'
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
