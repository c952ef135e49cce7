"""Where semsearch looks for its data folder.

The data folder holds ``coco/annotations/*.json``, ``coco/images/<12-digit id>.jpg`` and
descriptor pickles (see ``data/README.md``). It is, in order of precedence:

1. a path given explicitly to a function or on the command line;
2. the environment variable ``SEMSEARCH_DATA``;
3. ``data/`` in the current working directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

ENV_VAR = "SEMSEARCH_DATA"


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
