"""Opening image files safely: one decoded RGB picture, or one line saying why not.

Collections of photos hold empty files, truncated downloads, files that only look like
images and decompression bombs (a small file that decodes to billions of pixels).
:func:`open_image` decodes the whole file at once, so each of these fails here, with an
:class:`~semsearch.errors.InputError` naming the file, and never later inside a model.

Example
-------
>>> image = open_image("data/coco/images/000000000139.jpg")  # doctest: +SKIP
>>> image.mode, image.size                                    # doctest: +SKIP
('RGB', (640, 426))
"""
from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Union

from PIL import Image

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

#: File name endings (lower case) that count as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError)


def open_image(path: PathLike) -> Image.Image:
    """Decode the image file ``path`` completely and return it in RGB.

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        The file is empty, not an image PIL can decode, truncated, or larger than
        ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 89 million: a decompression bomb).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not decode
            with Image.open(path) as image:
                image.load()  # decode now: a truncated file fails here
                return image.convert("RGB")  # some COCO images are greyscale, PNGs may be RGBA
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: too many pixels ({error})") from None
    except _DECODE_ERRORS as error:
        raise InputError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
