"""Image files with any names: find them in a folder tree, open them safely.

A folder of someone's photos holds odd names (``IMG 0139 (1).JPG``, ``été/plage.webp``),
and some files that are not images at all, or broken ones. :func:`find_image_files`
lists the images by suffix; :func:`open_image` opens one as RGB or raises
:class:`BadImageError` saying what is wrong (empty, truncated, too large, not an image),
so that a caller can skip it and list it instead of crashing.

HEIC/HEIF photos (iPhones) are found and opened when ``pillow-heif`` is installed.

Example
-------
>>> paths = find_image_files("~/Pictures")                   # doctest: +SKIP
>>> image = open_image(paths[0])                              # doctest: +SKIP
>>> image.mode                                                # doctest: +SKIP
'RGB'
"""
from __future__ import annotations

import os
import struct
import warnings
from functools import lru_cache
from pathlib import Path
from typing import List, Tuple, Union

from PIL import Image

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

#: Suffixes that count as images (compared lower-case); HEIC ones only with pillow-heif.
IMAGE_SUFFIXES: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
HEIF_SUFFIXES: Tuple[str, ...] = (".heic", ".heif")
#: Images with more pixels than this are skipped (a 16,000 x 10,000 panorama is 160 M).
MAX_PIXELS = 200_000_000
#: Files larger than this are skipped without being opened.
MAX_BYTES = 200 * 1024 * 1024

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError, Image.DecompressionBombError)


class BadImageError(InputError):
    """A file that cannot be used as an image; the message names the file and the problem."""


@lru_cache(maxsize=1)
def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read (``pillow-heif`` installed; registered here once)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def image_suffixes() -> Tuple[str, ...]:
    """The suffixes :func:`find_image_files` looks for, HEIC ones when they can be read."""
    return IMAGE_SUFFIXES + (HEIF_SUFFIXES if heif_available() else ())


def find_image_files(folder: PathLike) -> List[Path]:
    """Every image file under ``folder``, recursively, sorted; hidden files and folders are left out.

    Symbolic links to folders are not followed (they could loop).

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    suffixes = image_suffixes()
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                found.append(Path(directory) / name)
    return sorted(found)


def open_image(path: PathLike, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Decode an image file completely, as RGB.

    Raises
    ------
    BadImageError
        The file is empty, larger than ``max_bytes``, has more than ``max_pixels`` pixels,
        is truncated, or is not an image PIL can read. The message names the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BadImageError(f"{path}: cannot read it ({e.strerror or e})") from None
    if size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    if size > max_bytes:
        raise BadImageError(f"{path}: {size / 2**20:.0f} MiB is over the {max_bytes / 2**20:.0f} MiB limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise BadImageError(f"{path}: {width} x {height} pixels is over the {max_pixels:,}-pixel limit")
                image.load()  # a truncated file fails here
                return image.convert("RGB")
    except BadImageError:
        raise
    except Image.UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image file that can be read") from None
    except _DECODE_ERRORS as e:
        raise BadImageError(f"{path}: cannot decode it ({type(e).__name__}: {e})") from None
