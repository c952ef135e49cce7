"""What a person filters photos by: when each was taken, its camera, its size and orientation.

:func:`read_info` reads them from a file's EXIF (with Pillow, without decoding the pixels)
and its content hash (:mod:`semsearch.photos.hashing`); :class:`Metadata` holds them as
columns, row i for the photo database's row i.

- **taken**: EXIF ``DateTimeOriginal`` when the photo has one, else the file's modification
  time; ``taken_source`` says which (``"exif"`` or ``"mtime"``). Both are wall-clock times
  without a time zone (EXIF records none; the mtime is read in this machine's local time),
  stored as seconds since 1970-01-01 00:00 of that wall clock.
- **camera**: EXIF ``Make`` and ``Model`` (``"Google Pixel 7"``), ``""`` when unknown.
- **width, height**: as shown, that is after the EXIF ``Orientation`` rotation (a portrait
  photo stored sideways is taller than wide); **orientation**: that EXIF tag (1-8; 1 upright).

Example
-------
>>> info = read_info("Holiday 2019/IMG_0001.jpg")                     # doctest: +SKIP
>>> info.taken_text(), info.taken_source, info.camera, info.width, info.height  # doctest: +SKIP
('2019-07-14 10:31:02', 'exif', 'Google Pixel 3', 3024, 4032)
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, fields
from typing import Dict, Sequence, Union

import numpy as np

from semsearch.photos.hashing import UNKNOWN, content_hash

PathLike = Union[str, "os.PathLike[str]"]
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
MAKE, MODEL, ORIENTATION = 271, 272, 274
EPOCH = dt.datetime(1970, 1, 1)
#: EXIF orientations that turn the stored image by 90 degrees (its width and height swap on screen).
SIDEWAYS = (5, 6, 7, 8)
#: The orientation of each code of :meth:`Metadata.orientation_codes`.
ORIENTATION_NAMES = ("square", "landscape", "portrait")


@dataclass(frozen=True)
class PhotoInfo:
    """One photo's metadata (see the module's docstring) and content hash."""

    content_hash: str
    taken: int
    taken_source: str
    camera: str
    width: int
    height: int
    orientation: int

    def taken_text(self) -> str:
        """``taken`` as ``YYYY-MM-DD HH:MM:SS``."""
        return format_time(self.taken)


def format_time(seconds: int) -> str:
    """Wall-clock seconds since 1970 (as stored) as ``YYYY-MM-DD HH:MM:SS``."""
    return (EPOCH + dt.timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


def wall_clock_seconds(moment: dt.datetime) -> int:
    """A naive datetime as seconds since 1970-01-01 00:00 of the same wall clock."""
    return int((moment.replace(tzinfo=None) - EPOCH).total_seconds())


def parse_exif_time(text) -> "dt.datetime | None":
    """An EXIF date ``"2019:07:14 10:31:02"`` as a datetime; None if absent or not a real date."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00", "    :  :     :  :  ", garbage
        return None


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).replace("\x00", " ").split()) if value is not None else ""


def camera_name(make, model) -> str:
    """``Make Model`` without the make twice (``"Canon" "Canon EOS 5D"`` -> ``"Canon EOS 5D"``)."""
    make, model = _text(make), _text(model)
    if make and model.lower().startswith(make.lower()):
        return model
    return " ".join(part for part in (make, model) if part)


def read_info(path: PathLike) -> PhotoInfo:
    """The metadata and content hash of an image file (its header only is parsed, not its pixels).

    A file Pillow cannot read gets width and height 0 and no camera (the indexer skips such
    files anyway); a broken EXIF block is treated as none.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    from PIL import Image

    status = os.stat(path)
    taken, source, camera, width, height, orientation = None, "mtime", "", 0, 0, 1
    try:
        with Image.open(path) as image:
            width, height = image.size
            try:
                exif = image.getexif()
                taken = parse_exif_time(exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL))
                camera = camera_name(exif.get(MAKE), exif.get(MODEL))
                orientation = int(exif.get(ORIENTATION, 1) or 1)
            except Exception:
                pass
    except Exception:
        pass
    if orientation not in range(1, 9):
        orientation = 1
    if orientation in SIDEWAYS:
        width, height = height, width
    if taken is not None:
        source = "exif"
    else:
        taken = dt.datetime.fromtimestamp(status.st_mtime)
    return PhotoInfo(content_hash(path), wall_clock_seconds(taken), source, camera, int(width), int(height), orientation)


#: The columns :class:`Metadata` keeps, and their dtypes.
COLUMNS = {
    "content_hash": str,
    "taken": np.int64,
    "taken_source": str,
    "camera": str,
    "width": np.int32,
    "height": np.int32,
    "orientation": np.int8,
}


@dataclass
class Metadata:
    """:class:`PhotoInfo` of N photos as columns (each an (N,) array; see :data:`COLUMNS`).

    A photo indexed before semsearch kept metadata has ``content_hash`` :data:`~semsearch.photos.hashing.UNKNOWN`
    (``""``) and ``taken_source`` ``""``; the next ``index`` run fills them in.
    """

    content_hash: np.ndarray
    taken: np.ndarray
    taken_source: np.ndarray
    camera: np.ndarray
    width: np.ndarray
    height: np.ndarray
    orientation: np.ndarray

    def __len__(self) -> int:
        return len(self.taken)

    @classmethod
    def of(cls, infos: Sequence[PhotoInfo]) -> "Metadata":
        """Columns of a list of :class:`PhotoInfo`."""
        columns = {}
        for name, dtype in COLUMNS.items():
            values = [getattr(info, name) for info in infos]
            columns[name] = np.array(values, dtype=dtype) if values or dtype is not str else np.zeros(0, "<U1")
        return cls(**columns)

    @classmethod
    def unknown(cls, n: int) -> "Metadata":
        """N photos of which nothing is known yet."""
        return cls.of([PhotoInfo(UNKNOWN, 0, "", "", 0, 0, 1)] * n)

    def info(self, row: int) -> PhotoInfo:
        """Row ``row`` as a :class:`PhotoInfo`."""
        return PhotoInfo(*(getattr(self, f.name)[row].item() for f in fields(self)))

    def is_known(self, row: int) -> bool:
        """Whether row ``row`` was read (a database from before metadata has rows that were not)."""
        return self.content_hash[row] != UNKNOWN

    def arrays(self) -> Dict[str, np.ndarray]:
        """The columns by name, to save."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def orientation_codes(self) -> np.ndarray:
        """(N,) int8: 0 square, 1 landscape, 2 portrait, from the shown width and height (the
        index into :data:`ORIENTATION_NAMES`)."""
        return (np.sign(self.width.astype(np.int64) - self.height) % 3).astype(np.int8)

