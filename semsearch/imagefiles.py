"""Image files: find them in a folder tree (any names), open them safely.

Collections of photos hold odd names (``IMG 0139 (1).JPG``, ``été/plage.webp``), empty
files, truncated downloads, files that only look like images and decompression bombs (a
small file that decodes to billions of pixels). :func:`find_image_files` lists the images
under a folder by suffix; :func:`open_image` decodes the whole file at once, so each of
these fails here, with an :class:`~semsearch.errors.InputError` naming the file, and never
later inside a model.

HEIC/HEIF photos (iPhones) are found and opened when ``pillow-heif`` is installed.

Example
-------
>>> image = open_image("data/coco/images/000000000139.jpg")  # doctest: +SKIP
>>> image.mode, image.size                                    # doctest: +SKIP
('RGB', (640, 426))
>>> find_image_files("~/Pictures")[:2]                        # doctest: +SKIP
[PosixPath('/home/me/Pictures/2023/IMG_0139.jpg'), PosixPath('/home/me/Pictures/beach.png')]
"""
from __future__ import annotations

import os
import struct
import warnings
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple, Union

from PIL import Image

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

#: File name endings (lower case) that count as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: HEIC/HEIF endings, counted only when ``pillow-heif`` is installed.
HEIF_SUFFIXES = (".heic", ".heif")
#: Files larger than this are refused without being decoded.
MAX_BYTES = 200 * 1024 * 1024

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError)


@lru_cache(maxsize=1)
def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read (``pillow-heif`` installed; registered with PIL once)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def image_suffixes() -> Tuple[str, ...]:
    """The endings :func:`find_image_files` looks for: HEIC ones too when they can be read."""
    return IMAGE_SUFFIXES + (HEIF_SUFFIXES if heif_available() else ())


def find_image_files(folder: PathLike) -> List[Path]:
    """Every image file under ``folder``, recursively, sorted; hidden files and folders left out.

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
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found.extend(Path(directory) / name for name in files
                     if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes)
    return sorted(found)


def open_image(path: PathLike, *, max_pixels: Optional[int] = None, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Decode the image file ``path`` completely and return it in RGB.

    Parameters
    ----------
    max_pixels : int, optional
        Refuse larger images; default ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million).
    max_bytes : int
        Refuse larger files without decoding them (default 200 MiB).

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        The file is empty, too large, not an image PIL can decode, truncated, or has too
        many pixels (a decompression bomb). The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    if size > max_bytes:
        raise InputError(f"{path}: too large a file ({size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)")
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not decode
            with Image.open(path) as image:
                if limit is not None and image.size[0] * image.size[1] > limit:
                    raise Image.DecompressionBombError(f"{image.size[0]} x {image.size[1]} pixels, over the limit of {limit:,}")
                image.load()  # decode now: a truncated file fails here
                return image.convert("RGB")  # some COCO images are greyscale, PNGs may be RGBA
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: too many pixels ({error})") from None
    except _DECODE_ERRORS as error:
        raise InputError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
