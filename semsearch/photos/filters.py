"""Search combined with filters: date taken, folder, camera, size and orientation.

A :class:`PhotoFilter` says what passes; :class:`PhotoColumns` holds what it is tested on
(read from a photo database without its vectors); :func:`filtered_query` ranks only the
photos that pass. The filter's tests run on integer codes (each distinct folder and camera
is matched once, not once per photo), so a filtered search costs about what an unfiltered
one does (``benchmarks/filters.py``: 100,000 photos).

Dates
-----
``after`` and ``before`` take ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM``
and mean the start of that period: ``after="2019-06", before="2019-09"`` keeps June, July
and August 2019. A photo's date is its EXIF ``DateTimeOriginal``, else its file's mtime
(:mod:`semsearch.photos.metadata`).

Example
-------
>>> only = PhotoFilter(after="2019-06", before="2019-09", folder="Holiday 2019", camera="pixel")
>>> only.describe()
'taken from 2019-06-01 00:00 to before 2019-09-01 00:00, in folder "Holiday 2019", camera contains "pixel"'
>>> columns = PhotoColumns.load("photos.npz")                         # doctest: +SKIP
>>> keys, scores = filtered_query(database, columns, "beach", only, k=9)  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import os
import posixpath
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from semsearch.errors import InputError
from semsearch.photos.metadata import ORIENTATION_NAMES, Metadata, wall_clock_seconds

PathLike = Union[str, "os.PathLike[str]"]
ORIENTATIONS = ("landscape", "portrait", "square")
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m", "%Y")


class NothingPassesError(InputError):
    """No photo passes the filter (the search would be empty)."""


def parse_when(text: str) -> dt.datetime:
    """The start of a period written ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM``.

    >>> parse_when("2019-06")
    datetime.datetime(2019, 6, 1, 0, 0)
    """
    for layout in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(str(text).strip(), layout)
        except ValueError:
            continue
    raise InputError(f"date {text!r} is not YYYY, YYYY-MM, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'")


def parse_size(text: str) -> Tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080): a minimum size, either way round.

    >>> parse_size("1920x1080")
    (1920, 1080)
    """
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1920x1080") from None
    if width < 0 or height < 0:
        raise InputError(f"size {text!r} has a negative side")
    return width, height


def normalise_folder(folder: str) -> str:
    """A folder as the database's keys write it: ``/`` separators, no ``./`` or trailing ``/``, casefolded."""
    text = str(folder).replace(os.sep, "/").strip()
    text = posixpath.normpath(text) if text else ""
    return "" if text in (".", "/") else text.strip("/").casefold()


@dataclass(frozen=True)
class PhotoFilter:
    """Which photos a search ranks; every field given must hold (None: any).

    Attributes
    ----------
    after, before : str, optional
        Taken at or after / before the start of this date (see the module's docstring).
    folder : str, optional
        Under this folder: a path relative to the indexed folder (``"2019/Holiday"``) or a
        run of folder names anywhere in the path (``"Holiday 2019"`` matches
        ``Trips/Holiday 2019/day 2/x.jpg``); case does not matter.
    camera : str, optional
        Part of the camera's make and model (``"pixel"`` matches ``"Google Pixel 3"``), any case.
    orientation : {"landscape", "portrait", "square"}, optional
        As shown (after the EXIF rotation).
    min_size : (int, int), optional
        At least this many pixels along each side, either way round (1920x1080 passes a
        1080x1920 portrait).
    """

    after: Optional[str] = None
    before: Optional[str] = None
    folder: Optional[str] = None
    camera: Optional[str] = None
    orientation: Optional[str] = None
    min_size: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        for when in (self.after, self.before):
            if when is not None:
                parse_when(when)
        if self.after is not None and self.before is not None and parse_when(self.after) >= parse_when(self.before):
            raise InputError(f"after {self.after} is not before {self.before}: no photo can pass")
        if self.orientation is not None and self.orientation not in ORIENTATIONS:
            raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}")

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)

    def describe(self) -> str:
        """The filter in words, for messages."""
        parts = []
        if self.after is not None or self.before is not None:
            start = f"from {parse_when(self.after):%Y-%m-%d %H:%M}" if self.after is not None else ""
            end = f"before {parse_when(self.before):%Y-%m-%d %H:%M}" if self.before is not None else ""
            parts.append("taken " + " to ".join(p for p in (start, end) if p))
        if self.folder is not None:
            parts.append(f'in folder "{self.folder}"')
        if self.camera is not None:
            parts.append(f'camera contains "{self.camera}"')
        if self.orientation is not None:
            parts.append(self.orientation)
        if self.min_size is not None:
            parts.append(f"at least {self.min_size[0]}x{self.min_size[1]}")
        return ", ".join(parts) or "no filter"

    def mask(self, columns: "PhotoColumns") -> np.ndarray:
        """(N,) bool: which photos of ``columns`` pass.

        Raises
        ------
        InputError
            The database does not know its photos' metadata yet (indexed by an older
            semsearch): run ``semsearch index`` again.
        """
        meta = columns.metadata
        keep = np.ones(len(meta), dtype=bool)
        if self.is_empty():
            return keep
        if not columns.complete:
            raise InputError("this database was indexed before semsearch kept dates and cameras: "
                             "run `semsearch index` on its folder again (nothing is described again)")
        if self.after is not None:
            keep &= meta.taken >= wall_clock_seconds(parse_when(self.after))
        if self.before is not None:
            keep &= meta.taken < wall_clock_seconds(parse_when(self.before))
        if self.folder is not None:
            keep &= columns.folder_matches(self.folder)
        if self.camera is not None:
            keep &= columns.camera_matches(self.camera)
        if self.orientation is not None:
            keep &= columns.shapes[0] == ORIENTATION_NAMES.index(self.orientation)
        if self.min_size is not None:
            big, small = max(self.min_size), min(self.min_size)
            keep &= (columns.shapes[1] >= big) & (columns.shapes[2] >= small)
        return keep


@dataclass
class PhotoColumns:
    """The keys and :class:`Metadata` of a photo database, with each distinct folder and camera coded.

    Attributes
    ----------
    keys : (N,) str
    metadata : Metadata
    folders : (F,) str
        The distinct folders (``""`` for the top), casefolded; ``folder_codes`` (N,) indexes them.
    cameras : (C,) str
        The distinct cameras, casefolded; ``camera_codes`` (N,) indexes them.
    complete : bool
        Whether every photo's metadata was read (False for a database from before metadata).
    shapes : (3, N) int32
        Orientation code (:meth:`Metadata.orientation_codes`), long side, short side.
    """

    keys: np.ndarray
    metadata: Metadata
    folders: np.ndarray
    folder_codes: np.ndarray
    cameras: np.ndarray
    camera_codes: np.ndarray
    complete: bool = True
    shapes: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.shapes is None:  # (3, N): orientation code, long side, short side; computed once
            meta = self.metadata
            self.shapes = np.stack([meta.orientation_codes().astype(np.int32), np.maximum(meta.width, meta.height),
                                    np.minimum(meta.width, meta.height)]).astype(np.int32)

    @classmethod
    def of(cls, keys, metadata: Metadata) -> "PhotoColumns":
        """Columns of keys and their metadata."""
        keys = np.asarray(keys, dtype=str)
        folders = [posixpath.dirname(k).casefold() for k in keys.tolist()]
        folder_names, folder_codes = np.unique(np.array(folders, dtype=str), return_inverse=True) if len(keys) else (np.zeros(0, str), np.zeros(0, int))
        camera_names, camera_codes = np.unique(np.char.lower(metadata.camera.astype(str)), return_inverse=True) if len(keys) else (np.zeros(0, str), np.zeros(0, int))
        complete = not (metadata.taken_source == "").any()
        return cls(keys, metadata, folder_names, folder_codes.reshape(-1), camera_names, camera_codes.reshape(-1), complete)

    @classmethod
    def load(cls, db_path: PathLike) -> "PhotoColumns":
        """Read them from a photo database (:class:`~semsearch.photos.folder.PhotoDatabase`)."""
        from semsearch.photos.folder import PhotoDatabase

        photos = PhotoDatabase.load(db_path)
        return cls.of(photos.keys, photos.metadata)

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, keys) -> "PhotoColumns":
        """The columns of some of the photos, in the order of ``keys`` (e.g. a database cut down to a tag)."""
        keys = np.asarray(keys, dtype=str)
        if len(keys) == len(self) and np.array_equal(keys, self.keys):
            return self
        rows = {k: r for r, k in enumerate(self.keys.tolist())}
        try:
            take = np.array([rows[k] for k in keys.tolist()], dtype=np.int64)
        except KeyError as e:
            raise InputError(f"{e.args[0]!r} is not among these photos") from None
        meta = Metadata(**{name: column[take] for name, column in self.metadata.arrays().items()})
        return PhotoColumns(keys, meta, self.folders, self.folder_codes[take], self.cameras, self.camera_codes[take],
                            self.complete, self.shapes[:, take])

    def folder_matches(self, folder: str) -> np.ndarray:
        """(N,) bool: the photos under ``folder`` (see :attr:`PhotoFilter.folder`)."""
        wanted = normalise_folder(folder)
        if not wanted:
            return np.ones(len(self), dtype=bool)
        hits = [f == wanted or f.startswith(wanted + "/") or f"/{wanted}/" in f"/{f}/" for f in self.folders.tolist()]
        return np.asarray(hits, dtype=bool)[self.folder_codes] if len(self) else np.zeros(0, bool)

    def camera_matches(self, camera: str) -> np.ndarray:
        """(N,) bool: the photos whose camera contains ``camera`` (any case); unknown cameras never match."""
        wanted = str(camera).strip().casefold()
        hits = [bool(c) and wanted in c for c in self.cameras.tolist()]
        return np.asarray(hits, dtype=bool)[self.camera_codes] if len(self) else np.zeros(0, bool)


def filtered_query(database, columns: PhotoColumns, query, only: PhotoFilter, k: int = 9):
    """The k best photos of ``database`` for ``query`` among those ``only`` lets through.

    Parameters
    ----------
    database : ImageDatabase
        Keyed by the same paths as ``columns`` (from :func:`~semsearch.photos.folder.load_search`).
    columns : PhotoColumns
    query : str or (dim,) array
    only : PhotoFilter
    k : int

    Returns
    -------
    keys : (k',) str, scores : (k',) float32
        Best first; k' = min(k, photos that pass).

    Raises
    ------
    NothingPassesError
        No photo passes (the message says the filter and how many photos there are).
    """
    if len(database) != len(columns) or (len(columns) and str(database.keys[-1]) != columns.keys[-1]):
        raise InputError("the database and its columns hold different photos (load both from the same file)")
    return database.query(query, k=k, where=passing(columns, only))


def passing(columns: PhotoColumns, only: PhotoFilter) -> Optional[np.ndarray]:
    """The (N,) bool mask of the photos ``only`` lets through; None when it has no condition.

    Raises
    ------
    NothingPassesError
        No photo passes (the message says the filter and how many photos there are).
    """
    if only.is_empty():
        return None
    keep = only.mask(columns)
    if not keep.any():
        raise NothingPassesError(f"no photo passes the filter ({only.describe()}) among the {len(columns)} indexed")
    return keep
