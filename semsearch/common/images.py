"""Image files: open them safely.

:func:`image_suffixes` are the endings that count as images (HEIC/HEIF too when
``pillow-heif`` is installed; :func:`semsearch.photos.paths.find_photo_files` lists a folder's
images by them). :func:`open_image` is the one place semsearch opens an image. A file that is not an image,
an empty file, a truncated or corrupt JPEG, a format PIL does not know, or a
"decompression bomb" (a small file that decodes to billions of pixels) each give one
:class:`~semsearch.errors.InputError` line naming the file, never a PIL traceback.

Example
-------
>>> image = open_image("data/coco/images/000000000139.jpg")   # doctest: +SKIP
>>> image.mode, image.size                                    # doctest: +SKIP
('RGB', (640, 426))
"""
from __future__ import annotations

import io
import math
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple, Union

from semsearch.errors import InputError, InputTypeError
from semsearch.paths import require_file

PathLike = Union[str, "os.PathLike[str]"]

#: File name endings (lower case) that count as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: HEIC/HEIF endings, counted only when ``pillow-heif`` is installed.
HEIF_SUFFIXES = (".heic", ".heif")
#: Files larger than this are refused without being decoded.
MAX_BYTES = 200 * 1024 * 1024

#: The most pixels an image may have (width x height) by default: PIL's own warning limit,
#: about 89 megapixels (9,459 x 9,459). COCO images have about 0.3 megapixels, a phone photo
#: about 12. (PIL itself refuses more than twice its ``Image.MAX_IMAGE_PIXELS`` whatever
#: ``max_pixels`` says.)
DEFAULT_MAX_PIXELS = 89_478_485


def open_image(
    source: Union[PathLike, bytes],
    *,
    max_pixels: Optional[int] = None,
    max_bytes: int = MAX_BYTES,
    name: Optional[str] = None,
    reduce_to: Optional[int] = None,
):
    """Read an image file (or its bytes) as an upright RGB ``PIL.Image.Image``.

    The EXIF orientation of a photo (a phone held sideways) is applied, so the picture is
    upright. With ``reduce_to``, a JPEG at least twice that size on its shorter side is decoded
    at a reduced scale (Pillow's ``draft``: the smallest of 1/2, 1/4 or 1/8, done in the DCT,
    several times faster) whose shorter side stays at least ``reduce_to`` pixels; other
    images are decoded fully.

    Parameters
    ----------
    source : str, PathLike or bytes
        The image file, or its content.
    max_pixels : int, optional
        Refuse images with more pixels than this (checked from the header, before decoding);
        default :data:`DEFAULT_MAX_PIXELS`.
    max_bytes : int
        Refuse larger files without reading them (default 200 MiB).
    name : str, optional
        How to name the image in messages (default: the path, or "the image data").
    reduce_to : int, optional
        Decode JPEGs no smaller than this on their shorter side, but possibly smaller than
        full size (the photo tool uses :data:`semsearch.cnn.preprocessing.REDUCED_DECODE_SIDE`).

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``; ``np.asarray(image)`` has shape ``(height, width, 3)``, uint8.

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        Empty, not an image, a format PIL cannot read, truncated or corrupt, or larger
        than ``max_pixels``.
    InputTypeError
        ``source`` is neither a path nor bytes.

    Examples
    --------
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("L", (4, 3)).save(buffer, format="PNG")
    >>> open_image(buffer.getvalue()).size
    (4, 3)
    >>> open_image(b"GIF89a not really")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: the image data is not an image file PIL can read (unknown or damaged format)
    """
    from PIL import Image

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        shown = name or "the image data"
        opener = lambda: io.BytesIO(data)  # noqa: E731
        size = len(data)
    elif isinstance(source, (str, os.PathLike)):
        path = require_file(source, "image file")
        shown = name or str(path)
        opener = lambda: open(path, "rb")  # noqa: E731
        size = path.stat().st_size
    else:
        raise InputTypeError(f"an image must be a file path or bytes, got {type(source).__name__}")
    if size == 0:
        raise InputError(f"{shown} is empty (0 bytes), not an image")
    if size > max_bytes:
        raise InputError(f"{shown} is too large a file ({size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB)")
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    heif_available()  # registers the HEIC opener with PIL when pillow-heif is there

    with opener() as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with max_pixels
        try:
            with Image.open(f) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise _too_large(shown, width, height, max_pixels)
                if reduce_to is not None and image.format == "JPEG" and min(width, height) >= 2 * reduce_to:
                    scale = reduce_to / min(width, height)
                    image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
                image.load()
                return _upright(image).convert("RGB")
        except InputError:
            raise
        except Image.DecompressionBombError as e:
            detail = " ".join(str(e).split()).split(", could be")[0]
            raise InputError(f"{shown} decodes to too many pixels (a decompression bomb?): {detail}") from None
        except Image.UnidentifiedImageError:
            raise InputError(f"{shown} is not an image file PIL can read (unknown or damaged format)") from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError) as e:
            detail = " ".join(str(e).split()) or type(e).__name__
            raise InputError(f"{shown} is a truncated or corrupt image: {detail}") from None


def _upright(image):
    """``image`` turned as its EXIF orientation says (itself when it has none)."""
    from PIL import ImageOps

    try:
        if image.getexif().get(0x0112, 1) in (None, 1):
            return image
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _too_large(shown: str, width: int, height: int, max_pixels: int) -> InputError:
    return InputError(
        f"{shown} is {width} x {height} = {width * height:,} pixels, more than the limit of "
        f"{max_pixels:,} (a decompression bomb?); pass max_pixels= to allow it"
    )


#: Formats :func:`image_format_of` accepts for writing, by file suffix.
WRITE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg"}


def image_format_of(path: PathLike) -> str:
    """The format a figure file must be written in, from its suffix (``.png``, ``.jpg``, ...).

    Raises
    ------
    InputError
        A suffix that is none of :data:`WRITE_FORMATS`, or no suffix: writing PNG bytes under
        a ``.jpg`` name (or any other mismatch) would give a file that lies about its format.

    Examples
    --------
    >>> image_format_of("grid.JPG")
    'jpeg'
    >>> image_format_of("grid")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: cannot tell which format to write grid in: its name should end in .png, .jpg, .jpeg, .pdf or .svg
    """
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise InputError(
            f"cannot tell which format to write {path} in: its name should end in "
            + ", ".join(list(WRITE_FORMATS)[:-1]) + f" or {list(WRITE_FORMATS)[-1]}"
        )
    return WRITE_FORMATS[suffix]


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
    """The file endings that count as images: HEIC ones too when they can be read."""
    return IMAGE_SUFFIXES + (HEIF_SUFFIXES if heif_available() else ())


def failure_reason(error: BaseException, path: PathLike) -> str:
    """Why ``path`` could not be read, without the path itself (for lists of skipped files).

    >>> failure_reason(InputError("a/b.jpg is empty (0 bytes), not an image"), "a/b.jpg")
    'is empty (0 bytes), not an image'
    """
    return " ".join(str(error).replace(str(path), "", 1).split()).strip(" :") or type(error).__name__


# --------------------------------------------------------------------------- bounded resizing


#: The widest an image may be for its height (or the tallest for its width) to be resized:
#: the output of a resize to a fixed short side grows with this ratio (a 40000 x 1 PNG of
#: 196 bytes, resized to a 256-pixel short side, would be 10 million x 256 pixels, ~11 GB in
#: the resize). Panoramas reach about 1:12; the limit leaves room for far more.
MAX_ASPECT_RATIO = 64


class ImageTooLargeError(InputError):
    """An image whose bytes, pixels, or resized size are over the caps (the web app answers 413)."""


def check_aspect_ratio(width: int, height: int, *, name: str = "the image", max_ratio: float = MAX_ASPECT_RATIO) -> None:
    """Refuse an image too long and thin to resize safely, before any resize allocates it.

    Raises
    ------
    ImageTooLargeError
        ``max(width, height) / min(width, height)`` is over ``max_ratio`` (or a side is 0).

    >>> check_aspect_ratio(640, 480)
    >>> check_aspect_ratio(40000, 1)
    Traceback (most recent call last):
    ...
    semsearch.common.images.ImageTooLargeError: the image is 40000 x 1 pixels, an aspect ratio over 64:1: resizing it would take too much memory
    """
    if min(width, height) < 1 or max(width, height) > max_ratio * min(width, height):
        raise ImageTooLargeError(
            f"{name} is {width} x {height} pixels, an aspect ratio over {max_ratio:g}:1: resizing it would take too much memory"
        )
