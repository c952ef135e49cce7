"""Pictures for the web page: bounded decoding, thumbnails, and where a database's images live.

Everything here is PIL and the standard library (no FastAPI), so it is tested on its own.

- :func:`open_image_bytes` decodes bytes *only* as an image of a few known formats, after
  checking the byte count and, before any pixel is decoded, the pixel count (a 50 kB PNG
  can claim 100,000 x 100,000 pixels: a decompression bomb).
- :func:`thumbnail_jpeg` shrinks a picture to fit a square and encodes it as JPEG.
- :func:`placeholder_jpeg` is the grey tile shown for an image that cannot be found.
- :class:`CocoImageFiles` finds a COCO image by id: the image folder, then the download
  cache, then its ``coco_url`` (downloaded once into the cache, as :mod:`semsearch.display`
  does). A path is only ever built from an integer id, never from text a browser sent.

Example
-------
>>> files = CocoImageFiles("data/coco/images")                 # doctest: +SKIP
>>> jpeg = thumbnail_jpeg(files.open(139), size=256)           # doctest: +SKIP
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Optional, Union

from PIL import Image, ImageDraw

from semsearch.common.images import ImageTooLargeError, check_aspect_ratio
from semsearch.errors import InputError

__all__ = ["ImageTooLargeError", "NotAnImageError", "open_image_bytes", "open_image_file", "thumbnail_jpeg",
           "placeholder_jpeg", "CocoImageFiles"]

PathLike = Union[str, "os.PathLike[str]"]

#: Formats an upload may be decoded as; anything else is refused before decoding.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

#: Default caps: 10 MB per upload, 40 megapixels per decoded image.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000


class NotAnImageError(InputError):
    """Bytes that none of :data:`IMAGE_FORMATS` can read (the web app answers 415)."""


def open_image_bytes(
    data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_IMAGE_PIXELS, draft: Optional[int] = None
) -> Image.Image:
    """Decode ``data`` as an RGB picture, refusing what is too big or not an image.

    Parameters
    ----------
    data : bytes
    max_bytes, max_pixels : int
        Caps on the encoded size and on width x height (checked from the header, before
        the pixels are decoded).
    draft : int, optional
        For JPEG: decode at a reduced scale, at least this many pixels a side (fast
        thumbnails).

    Raises
    ------
    ImageTooLargeError, NotAnImageError
    """
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    if not data:
        raise NotAnImageError("the upload is empty: send the image's bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"the image decodes to too many pixels (a decompression bomb?): {_first_line(e)}") from None
    except (OSError, ValueError) as e:
        raise NotAnImageError(
            f"the upload is not an image semsearch reads ({', '.join(IMAGE_FORMATS)}): {type(e).__name__}"
        ) from None
    if image.width * image.height <= max_pixels:  # (else _decode says how many pixels)
        check_aspect_ratio(*image.size, name="the image")  # its resize for a descriptor would be huge
    return _decode(image, max_pixels, draft, "the image")


def open_image_file(path: PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS, draft: Optional[int] = None) -> Image.Image:
    """Like :func:`open_image_bytes` for a file of the database (any format PIL reads)."""
    try:
        with open(path, "rb") as f:
            image = Image.open(io.BytesIO(f.read()))
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"{Path(path).name} decodes to too many pixels (a decompression bomb?): {_first_line(e)}") from None
    except (OSError, ValueError) as e:
        raise NotAnImageError(f"{Path(path).name} is not a readable image: {type(e).__name__}") from None
    return _decode(image, max_pixels, draft, Path(path).name)


def _decode(image: Image.Image, max_pixels: int, draft: Optional[int], what: str) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{what} is {width} x {height} pixels; the limit is {max_pixels:,} pixels")
    try:
        if draft is not None and image.format == "JPEG":
            image.draft("RGB", (draft, draft))
        return image.convert("RGB")  # decodes every pixel
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"{what} decodes to too many pixels (a decompression bomb?): {_first_line(e)}") from None
    except (OSError, ValueError, MemoryError) as e:
        raise NotAnImageError(f"{what} could not be decoded: {type(e).__name__}: {e}") from None


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split()).split(", could be")[0]


def thumbnail_jpeg(image: Image.Image, size: int = 256, quality: int = 85) -> bytes:
    """``image`` shrunk (never enlarged) to fit ``size`` x ``size``, as JPEG bytes."""
    image = image.copy()
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def placeholder_jpeg(size: int = 256, text: str = "no image") -> bytes:
    """A grey ``size`` x ``size`` tile with a short text: shown for an image that is missing."""
    tile = Image.new("RGB", (size, size), (225, 225, 225))
    ImageDraw.Draw(tile).text((size // 2, size // 2), text, fill=(110, 110, 110), anchor="mm")
    buffer = io.BytesIO()
    tile.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


class CocoImageFiles:
    """Where the images of a COCO database are: a folder, a download cache, ``coco_url`` s.

    Parameters
    ----------
    image_dir : path, optional
        Folder of ``<12-digit id>.jpg`` (or ``COCO_*_<12 digits>.jpg``) files.
    cache_dir : path, optional
        Where downloaded images are kept (default ``~/.cache/semsearch/images``).
    urls : mapping int -> str, optional
        Each image's ``coco_url``; an image found nowhere else is downloaded once.
    """

    def __init__(self, image_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
                 urls: Optional[Mapping[int, str]] = None):
        from semsearch.common.coco_images import DEFAULT_CACHE_DIR

        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.cache_dir = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
        self.urls = dict(urls or {})
        self._failed: set = set()  # ids whose download failed: not tried again on every request

    def path_of(self, coco_id: int) -> Optional[Path]:
        """The local file of image ``coco_id`` (downloading it into the cache if need be), or None."""
        from semsearch.common.coco_images import ImageNotFoundError, locate_image

        coco_id = int(coco_id)  # the path is built from this integer only
        url = None if coco_id in self._failed else self.urls.get(coco_id)
        try:
            return locate_image(coco_id, image_dir=self.image_dir, cache_dir=self.cache_dir, url=url)
        except ImageNotFoundError:
            if url is not None:
                self._failed.add(coco_id)
            return None
