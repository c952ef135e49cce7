"""A trained search engine on disk: model, text encoder and image database in one folder.

A bundle folder holds

================  ====================================================================
``model.npz``     the :class:`~semsearch.model.Autoembedder` weights (``Autoembedder.save``)
``text.json``     the text encoder's state (``TextEmbedder`` word weights, or a MiniLM marker)
``database.npz``  the embedded images of the :class:`~semsearch.database.ImageDatabase`
``bundle.json``   format tag, sha256 of the three files, and free-form ``info``
================  ====================================================================

and ``text_vectors.npz``, the GloVe vectors of the text encoder's vocabulary (so loading
needs no 400,000-word GloVe load). Saving never destroys a working model and two saves
never mix (:func:`save_bundle` says how); a folder holds weights, never code.

Example
-------
>>> save_bundle("my-model", model, text_encoder, database, info={"epochs": 30})  # doctest: +SKIP
>>> model, text_encoder, database = load_bundle("my-model")                      # doctest: +SKIP
>>> database.query("a dog catching a frisbee", k=4)                          # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from semsearch.common.files import DiskFullError, atomic_write, check_writable, sha256_of_file
from semsearch.database import ImageDatabase
from semsearch.encoders import load_text_encoder
from semsearch.model import Autoembedder
from semsearch.text import TextEmbedder
from semsearch.errors import InputError, InputTypeError, SaveConflictError

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-bundle-1"
MODEL_FILE = "model.npz"
TEXT_FILE = "text.json"
DATABASE_FILE = "database.npz"
MANIFEST_FILE = "bundle.json"
_FILES = (MODEL_FILE, TEXT_FILE, DATABASE_FILE)
INDEX_FILE = DATABASE_FILE + ".index"  # the database's approximate index, when it has one
VECTORS_FILE = "text_vectors.npz"  # a GloVe text encoder's vocabulary vectors (older folders lack it)
_OPTIONAL = (VECTORS_FILE, INDEX_FILE)
_BUNDLE_NAMES = frozenset(_FILES + _OPTIONAL + (MANIFEST_FILE,))



def _check_consistent(model: Autoembedder, text_encoder: TextEmbedder, database: ImageDatabase) -> None:
    if not (model.output_dim == text_encoder.dim == database.dim):
        raise InputError(
            f"the parts do not fit together: model output {model.output_dim}-d, "
            f"text embeddings {text_encoder.dim}-d, database {database.dim}-d"
        )


def _step(name: str) -> None:
    """Called between the steps of a save; a no-op. Tests replace it to kill or pause a save."""


# ----------------------------------------------------------------------------- locations


def _target(directory: PathLike) -> Path:
    """The folder to save to, absolute, symlinks resolved; refuses an empty name."""
    if not str(directory).strip():
        raise InputError("the model folder name is empty; give a folder such as my-model")
    return Path(os.path.realpath(directory))


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _leftovers(target: Path, kind: str) -> List[Path]:
    """``.<name>.<kind>-*`` folders beside ``target`` (kind ``tmp`` or ``old``), newest first."""
    found = []
    for path in target.parent.glob(f".{target.name}.{kind}-*"):
        try:
            found.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # removed by a save meanwhile
            continue
    return [path for _, path in sorted(found, reverse=True) if path.is_dir()]


def _is_complete(folder: Path) -> bool:
    return (folder / MANIFEST_FILE).is_file()


def _resolve(directory: Path) -> Path:
    """The folder holding the bundle ``directory`` names now.

    ``directory`` itself when it is complete; else, if a save was killed between moving the
    old bundle aside and moving the new one in, the complete old bundle set aside.
    """
    if _is_complete(directory):
        return directory
    if not directory.exists():
        aside = [p for p in _leftovers(Path(os.path.realpath(directory)), "old") if _is_complete(p)]
        if aside:
            return aside[0]
    return directory


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: How long a save waits for the folder's lock before it gives up (a save holds it for far longer).
_LOCK_PATIENCE_S = 0.5


@contextmanager
def _save_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``target``, or raise SaveConflictError."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    lock = _lock_path(target)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + _LOCK_PATIENCE_S  # a reader restoring an interrupted save holds it for ms
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SaveConflictError(
                        f"another process is saving a model to {target} (it holds {lock}); "
                        "wait for it to finish, or save to another folder"
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _recover(target: Path) -> None:
    """Under the lock: put back an old bundle left aside by a killed save, drop the rest."""
    if not target.exists():
        aside = [p for p in _leftovers(target, "old") if _is_complete(p)]
        if aside:
            os.rename(aside[0], target)
    for leftover in _leftovers(target, "tmp") + _leftovers(target, "old"):
        shutil.rmtree(leftover, ignore_errors=True)


def restore_interrupted_save(directory: PathLike) -> Optional[Path]:
    """Put back a bundle that a save killed between its two renames left aside; say so.

    Such a save leaves no ``directory`` and the complete old bundle as ``.<name>.old-*``
    (which :func:`load_bundle` reads meanwhile). When no save holds the folder's lock (the
    saving process is gone), the old bundle is renamed back, the save's leftovers removed,
    and a ``UserWarning`` names what was restored. A save still running, or a folder this
    user cannot write, is left alone (the set-aside copy is read as before).

    Returns
    -------
    Path or None
        The folder the bundle was restored from, or None if there was nothing to do.
    """
    import warnings

    try:
        target = _target(directory)
    except InputError:
        return None
    if target.exists() or not any(_is_complete(p) for p in _leftovers(target, "old")):
        return None
    try:
        with _save_lock(target):
            aside = [p for p in _leftovers(target, "old") if _is_complete(p)]
            if target.exists() or not aside:
                return None
            _recover(target)
    except (SaveConflictError, OSError):  # a save under way (it will finish), or not ours to write
        return None
    warnings.warn(f"restored the model folder {directory} from {aside[0].name}, where a save that was "
                  "interrupted between its two renames had left it", stacklevel=3)
    return aside[0]


def check_bundle_target(directory: PathLike) -> Path:
    """Check, before any work, that :func:`save_bundle` could write to ``directory``.

    Refuses an empty name, a file in the way, a folder holding anything but a bundle's
    files (saving would delete them), and a location that cannot be written.

    Returns
    -------
    Path
        The folder, absolute.

    Examples
    --------
    >>> check_bundle_target("")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: the model folder name is empty; give a folder such as my-model
    """
    target = _target(directory)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if p.name not in _BUNDLE_NAMES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise InputError(
                f"{directory} holds files that are not part of a semsearch model ({shown}); "
                "saving there would delete them: choose a new or empty folder"
            )
    check_writable(target.parent, f"folder of {directory}", folder=True)  # the swap renames there
    return target


# ----------------------------------------------------------------------------- saving


def save_bundle(
    directory: PathLike,
    model: Autoembedder,
    text_encoder: TextEmbedder,
    database: ImageDatabase,
    *,
    info: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write the three parts and the manifest as the bundle ``directory``, replacing it whole.

    Whatever happens, ``directory`` holds the old bundle or the complete new one. The new
    bundle is written completely into a private staging folder beside the target
    (``.<name>.tmp-XXXX``: all files, then the manifest, each fsynced), then swapped in with
    two renames (the old folder to ``.<name>.old-XXXX``, the staging folder to ``<name>``)
    and the old one is removed. Until the second rename the old bundle is the model; a save
    killed between the two renames leaves the old one aside, where the next
    :func:`load_bundle`, :func:`read_info` or save puts it back once no save holds the
    folder's lock (:func:`restore_interrupted_save`, with a warning saying so). A failure
    that Python sees removes the staging folder; a full disk is one line naming the file
    and the space it needs (:class:`~semsearch.common.files.DiskFullError`). The
    manifest's sha256 sums are taken in the staging folder, which no other process writes
    into. Two saves to the same folder never mix: each holds an exclusive ``flock`` on
    ``.<name>.lock`` beside the folder for the whole save, and a second save meanwhile
    fails with :class:`~semsearch.errors.SaveConflictError` (after waiting up to half a
    second: a reader restoring an interrupted save holds the lock for milliseconds). A
    folder is only replaced when it holds nothing but a bundle's files (or nothing).

    Parameters
    ----------
    directory : path
        The model folder (created with its parents if needed).
    model, text_encoder, database
        The parts; their dimensions must fit together.
    info : dict, optional
        JSON-serialisable facts to keep with the model (training options, scores, the
        validation image ids, ...); :func:`read_info` returns them.

    Returns
    -------
    Path
        ``directory``.

    Raises
    ------
    SaveConflictError
        Another process is saving to the same folder right now.
    InputError
        The parts do not fit, the name is empty, the folder holds other files, or it
        cannot be written.
    FileExistsError
        A file (not a folder) is in the way.
    """
    _check_consistent(model, text_encoder, database)
    target = check_bundle_target(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest_info = json.loads(json.dumps(info or {}))  # refuse what JSON cannot hold before writing
    with _save_lock(target):
        _step("locked")
        _recover(target)
        check_bundle_target(directory)  # again, under the lock
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        try:
            _step("staging-created")
            model.save(staging / MODEL_FILE)
            _step("model-written")
            text_encoder.save(staging / TEXT_FILE)
            if isinstance(text_encoder, TextEmbedder):  # searching then needs no 400,000-word GloVe load
                text_encoder.save_vectors(staging / VECTORS_FILE)
            _step("text-written")
            database.save(staging / DATABASE_FILE)
            _step("database-written")
            names = [name for name in _FILES + _OPTIONAL if (staging / name).is_file()]
            manifest = {
                "format": FORMAT,
                "files": {name: sha256_of_file(staging / name) for name in names},
                "input_dim": model.input_dim,
                "dim": model.output_dim,
                "n_images": len(database),
                "info": manifest_info,
            }
            with atomic_write(staging / MANIFEST_FILE, "w") as f:
                json.dump(manifest, f, indent=1)
            _step("manifest-written")
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
            _fsync_dir(staging)
            _swap(staging, target)
        except DiskFullError as e:  # name the model folder, not the staging folder that is removed
            shutil.rmtree(staging, ignore_errors=True)
            raise DiskFullError(str(e).replace(str(staging), str(target))
                                .replace("the previous file, if any,", "the model folder")) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Path(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap(staging: Path, target: Path) -> None:
    """Put the complete ``staging`` folder in place of ``target``; the old one stays until then."""
    if not target.exists():
        os.rename(staging, target)
        _fsync_dir(target.parent)
        _step("new-in-place")
        return
    aside = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
    fd = os.open(target, os.O_RDONLY)
    try:
        _flock(fd, shared=False)  # wait until no load_bundle is reading the old folder
        os.rename(target, aside)
        _step("old-moved-aside")
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(aside, target)
            raise
    finally:
        os.close(fd)
    _fsync_dir(target.parent)
    _step("new-in-place")
    shutil.rmtree(aside, ignore_errors=True)
    _step("old-removed")


# ----------------------------------------------------------------------------- loading


def _read_manifest(folder: Path, shown: Path) -> Dict[str, Any]:
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder not found: {shown}")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{shown} is not a complete semsearch model folder: no {MANIFEST_FILE} (was saving interrupted?)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise InputError(f"{path} is not a {FORMAT} manifest")
    if not isinstance(manifest.setdefault("info", {}), dict):  # callers read manifest["info"].get(...)
        raise InputError(f"{path}: its \"info\" must be a JSON object, got {type(manifest['info']).__name__} "
                         f"{json.dumps(manifest['info'])[:60]} (a damaged or hand-edited manifest)")
    return manifest


def read_info(directory: PathLike) -> Dict[str, Any]:
    """The manifest of a bundle (``format``, ``files``, ``input_dim``, ``dim``, ``n_images``, ``info``)."""
    directory = Path(directory)
    restore_interrupted_save(directory)
    for attempt in range(_READ_ATTEMPTS):
        try:
            return _read_manifest(_resolve(directory), directory)
        except FileNotFoundError:  # a save swapped the folder between finding it and reading it
            if _save_under_way(directory) and attempt + 1 < _READ_ATTEMPTS:
                time.sleep(0.001 * attempt)
                continue
            raise


def _inode(folder: Path) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def load_bundle(
    directory: PathLike, glove=None, *, model_class: type = Autoembedder
) -> Tuple[Autoembedder, TextEmbedder, ImageDatabase]:
    """Read a bundle written by :func:`save_bundle`: ``(model, text_encoder, database)``.

    A folder holds weights, never code: a model whose forward pass is your own (a subclass
    of :class:`~semsearch.model.Autoembedder` with its own ``__call__``) is read by naming
    its class, ``load_bundle(path, model_class=MyModel)``; ``model_class.load(path)`` reads
    the weights.

    The database is ready for text queries (its text encoder is set). ``glove``
    defaults to :func:`semsearch.glove.load_glove`. A save running meanwhile does not
    disturb it: the folder is read under a shared ``flock``, and a save waits for it
    before moving the folder away (if the folder was swapped first, it is read again).

    Raises
    ------
    FileNotFoundError
        No such folder, or a file of the bundle is missing.
    ValueError
        A file does not match the manifest's checksum (a mixed or damaged bundle), or
        the parts do not fit together.
    """
    directory = Path(directory)
    if not callable(getattr(model_class, "load", None)):
        raise InputTypeError(f"model_class must be a model class with a load(path) method, such as Autoembedder, got {model_class!r}")
    restore_interrupted_save(directory)
    for attempt in range(_READ_ATTEMPTS):
        folder = _resolve(directory)
        try:
            _read_manifest(folder, directory)  # a clear error for a missing or unfinished folder
            fd = os.open(folder, os.O_RDONLY)
        except FileNotFoundError:
            if _save_under_way(directory) and attempt + 1 < _READ_ATTEMPTS:
                time.sleep(0.001 * attempt)  # between a save's two renames, or its old folder removed
                continue
            raise
        try:
            _flock(fd, shared=True)
            if _inode(folder) != _fd_inode(fd):  # swapped before we held the lock
                continue
            try:
                return _load_folder(folder, directory, glove, model_class)
            except FileNotFoundError:  # an old folder set aside and removed while we read it
                if folder != directory or _save_under_way(directory):
                    continue
                raise
        finally:
            os.close(fd)
    raise SaveConflictError(f"{directory} kept changing while it was read (saves in progress); try again")


#: How often :func:`load_bundle` tries again while a save swaps the folder (about 2 s in all).
_READ_ATTEMPTS = 64


def _save_under_way(directory: Path) -> bool:
    """Whether a save to ``directory`` is (or was, if killed) between staging and cleaning up.

    A save keeps a ``.<name>.tmp-*`` folder until its rename into place and an
    ``.<name>.old-*`` one from moving the old bundle aside until removing it: the only
    times the folder can be absent or vanish under a reader.
    """
    target = Path(os.path.realpath(directory))
    return bool(_leftovers(target, "tmp") or _leftovers(target, "old"))


def _fd_inode(fd: int) -> Tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _flock(fd: int, shared: bool) -> None:
    """Wait for a shared or exclusive ``flock`` on ``fd`` (no-op where there is no fcntl)."""
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def _load_folder(folder: Path, shown: Path, glove, model_class: type) -> Tuple[Autoembedder, TextEmbedder, ImageDatabase]:
    manifest = _read_manifest(folder, shown)
    listed = manifest["files"]
    for name in _FILES + tuple(n for n in _OPTIONAL if n in listed):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{shown} is missing {name}")
        if listed.get(name) != sha256_of_file(path):
            raise InputError(f"{path} does not match {MANIFEST_FILE}: the folder mixes files of different saves")
    for name in _OPTIONAL:
        if name not in listed and (folder / name).exists():
            raise InputError(f"{folder / name} is not listed in {MANIFEST_FILE}: the folder mixes files of different saves")
    model = model_class.load(folder / MODEL_FILE)
    vectors = folder / VECTORS_FILE if VECTORS_FILE in listed and glove is None else None
    text_encoder = load_text_encoder(folder / TEXT_FILE, glove, vectors=vectors)
    database = ImageDatabase.load(folder / DATABASE_FILE, text_encoder)
    _check_consistent(model, text_encoder, database)
    return model, text_encoder, database
