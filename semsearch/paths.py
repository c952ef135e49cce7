"""Where semsearch finds its data: the data folder, and the files in it.

The data folder holds ``coco/annotations/*.json``, ``coco/images/<12-digit id>.jpg`` and
descriptor pickles (see ``data/README.md``). It is, in order of precedence:

1. a path given explicitly to a function or on the command line;
2. the environment variable ``SEMSEARCH_DATA``;
3. ``data/`` in the current working directory.

:func:`find_data_files` is the one place that decides which files of it are used; the
command line and the notebooks both call it.

Example
-------
>>> caption_files, descriptor_file = find_data_files()      # doctest: +SKIP
>>> [f.name for f in caption_files], descriptor_file.name   # doctest: +SKIP
(['captions_train2014.json'], 'resnet18_features.pkl')
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

ENV_VAR = "SEMSEARCH_DATA"

#: The descriptor pickle the course ships; its images are COCO train2014.
COURSE_DESCRIPTORS = "resnet18_features.pkl"
_CAPTION_FILE = re.compile(r"captions_(?:train|val)(\d{4})(?:_\w+)?\.json$")


def data_dir(path: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Return the data folder: ``path`` if given, else ``$SEMSEARCH_DATA``, else ``./data``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path("data")


def require_file(path: Union[str, os.PathLike], what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise ``FileNotFoundError`` naming it and what it is."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def find_data_files(data_dir_path: Optional[Union[str, os.PathLike]] = None) -> Tuple[List[Path], Path]:
    """The caption files and the descriptor pickle of a data folder.

    Caption files are ``coco/annotations/captions_{train,val}<year>[_suffix].json``. COCO 2017
    re-splits the 2014 images: the same image id appears in both releases under another file
    name and URL. Only the files whose images the descriptors cover are used: with the course's
    ``resnet18_features.pkl`` (82,612 train2014 images) the ``captions_train2014*.json`` files
    alone (the val2014 images have no descriptor there: its 202,654 captions would only cost
    memory and time before the join drops them), else every file of the newest release there is.
    (:meth:`semsearch.coco.CocoCaptions.load` does merge files of both releases correctly,
    but loading both is slower and adds nothing for these descriptors.)
    The descriptor pickle is ``resnet18_features.pkl``, else the first ``*.pkl`` in
    ``descriptors/``, else the first ``*.pkl`` in the folder itself.

    Raises
    ------
    FileNotFoundError
        No data folder, no caption file or no descriptor pickle; the message says what to do.
    """
    root = data_dir(data_dir_path)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root} (give --data DIR, set {ENV_VAR}, or run `semsearch fetch`)")
    descriptor = root / COURSE_DESCRIPTORS
    if not descriptor.is_file():
        candidates = sorted((root / "descriptors").glob("*.pkl")) + sorted(root.glob("*.pkl"))
        if not candidates:
            raise FileNotFoundError(
                f"no descriptor pickle in {root} ({COURSE_DESCRIPTORS}, descriptors/*.pkl or *.pkl): "
                "run `semsearch fetch` or `semsearch features`"
            )
        descriptor = candidates[0]
    annotations = root / "coco" / "annotations"
    by_year: Dict[str, List[Path]] = {}
    for path in sorted(annotations.glob("captions_*.json")):
        match = _CAPTION_FILE.search(path.name)
        if match:
            by_year.setdefault(match.group(1), []).append(path)
    if not by_year:
        raise FileNotFoundError(f"no captions_*.json in {annotations}: run `semsearch fetch` (see data/README.md)")
    if descriptor.name == COURSE_DESCRIPTORS and "2014" in by_year:
        train2014 = [path for path in by_year["2014"] if path.name.startswith("captions_train2014")]
        return train2014 or by_year["2014"], descriptor
    return by_year[max(by_year)], descriptor


def image_folder(images: Optional[Union[str, os.PathLike]], data: Optional[Union[str, os.PathLike]] = None) -> Optional[Path]:
    """The COCO image folder: ``images`` (which must exist), else ``DATA/coco/images`` if there is one."""
    if images is not None:
        if not Path(images).is_dir():
            raise FileNotFoundError(f"image folder not found: {images}")
        return Path(images)
    default = data_dir(data) / "coco" / "images"
    return default if default.is_dir() else None
