"""Finding a COCO image's file by its id: a local image folder, a download cache, or its url.

:func:`locate_image` is the one lookup (the display, the web app and the command line use it):
``<12-digit id>.jpg`` or ``*_<12-digit id>.jpg`` in the image folder, else the cache
(``~/.cache/semsearch/images``), else a download from the image's ``coco_url``, kept in the cache
only if it is a readable image.

Example
-------
>>> img = load_image(139, image_dir="data/coco/images")          # doctest: +SKIP
>>> img.size                                                     # doctest: +SKIP
(640, 426)
"""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Optional, Union

from PIL import Image

from semsearch.common.checks import check_image_id
from semsearch.common.files import atomic_write
from semsearch.common.images import open_image
from semsearch.common.keys import coco_file_name
from semsearch.errors import InputError, SemsearchError

PathLike = Union[str, "os.PathLike[str]"]

#: Where downloaded images are kept when no ``cache_dir`` is given.
DEFAULT_CACHE_DIR = Path("~/.cache/semsearch/images")

#: Seconds to wait for an image server before giving up.
DOWNLOAD_TIMEOUT = 10.0


class ImageNotFoundError(SemsearchError, FileNotFoundError):
    """An image could not be found locally, downloaded, or read as an image."""


def find_local_image(coco_id: int, image_dir: PathLike) -> Optional[Path]:
    """Return the path of image ``coco_id`` in ``image_dir``, or ``None`` if it is not there.

    Both naming schemes are recognised: ``000000000139.jpg`` (COCO 2017) and
    ``COCO_train2014_000000000139.jpg`` / ``COCO_val2014_000000000139.jpg`` (COCO 2014).
    """
    image_dir = Path(image_dir)
    plain = image_dir / coco_file_name(coco_id)
    if plain.is_file():
        return plain
    matches = sorted(image_dir.glob(f"*_{coco_file_name(coco_id)}"))
    return matches[0] if matches else None


def load_image(
    coco_id: int,
    *,
    image_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    url: Optional[str] = None,
) -> Image.Image:
    """Load COCO image ``coco_id`` as an RGB picture.

    Looks in this order:

    1. ``image_dir`` (if given): ``<12-digit id>.jpg`` or ``*_<12-digit id>.jpg``;
    2. ``cache_dir`` (default ``~/.cache/semsearch/images``): ``<12-digit id>.jpg``;
    3. ``url`` (if given): downloads it once into ``cache_dir``, then reads it from there.

    Parameters
    ----------
    coco_id : int
        The COCO image id, e.g. ``139``.
    image_dir : path, optional
        Folder with the COCO images.
    cache_dir : path, optional
        Folder for downloaded images (created when needed).
    url : str, optional
        Where to download the image from (its ``coco_url`` in the captions JSON).

    Returns
    -------
    PIL.Image.Image
        The picture in mode ``"RGB"``; ``np.asarray(img)`` has shape ``(height, width, 3)``.

    Raises
    ------
    ImageNotFoundError
        If there is no local file and no ``url``, the download fails, or the file is not a
        readable image. The message names the id and where it looked.

    Examples
    --------
    >>> img = load_image(139, image_dir="data/coco/images")          # doctest: +SKIP
    >>> np.asarray(img).shape                                        # doctest: +SKIP
    (426, 640, 3)
    """
    return _read_image(locate_image(coco_id, image_dir=image_dir, cache_dir=cache_dir, url=url), coco_id)


def locate_image(
    coco_id: int,
    *,
    image_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    url: Optional[str] = None,
) -> Path:
    """The file of COCO image ``coco_id``, looked for as :func:`load_image` says (downloading it if need be).

    Raises
    ------
    ImageNotFoundError
        No local file and no ``url``, or the download failed.
    """
    coco_id = check_image_id(coco_id)
    if image_dir is not None:
        path = find_local_image(coco_id, image_dir)
        if path is not None:
            return path
    cache_dir = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    cached = cache_dir / coco_file_name(coco_id)
    if cached.is_file():
        return cached
    if url is None:
        where = f"{image_dir} or {cache_dir}" if image_dir is not None else str(cache_dir)
        raise ImageNotFoundError(f"image {coco_id} not found in {where} (and no url given)")
    _download(url, cached, coco_id)
    return cached


def _read_image(path: Path, coco_id: int) -> Image.Image:
    """Open ``path`` as an RGB image, or raise ImageNotFoundError if it is not one."""
    try:
        return open_image(path)
    except InputError as err:  # empty, not an image, truncated, a decompression bomb
        raise ImageNotFoundError(f"image {coco_id} is not a readable image: {err}") from None


def _download(url: str, dest: Path, coco_id: int) -> None:
    """Download ``url`` to ``dest``, keeping it only if it is a readable image."""
    request = urllib.request.Request(url, headers={"User-Agent": "semsearch"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            data = response.read()
    except (OSError, ValueError) as err:  # URLError, HTTPError and timeouts are OSErrors
        raise ImageNotFoundError(f"image {coco_id} could not be downloaded from {url} ({err})") from err

    try:  # check before caching, so an error page never ends up in the cache
        open_image(data, name=url)
    except InputError as err:
        raise ImageNotFoundError(f"image {coco_id}: the download did not give a readable image: {err}") from None

    with atomic_write(dest, "wb") as f:
        f.write(data)
