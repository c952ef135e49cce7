"""COCO captions: which images there are, their captions, and where their pictures live.

Team task: *organise the COCO data*. One or more official caption files
(``captions_train2014.json``, ``captions_val2017.json``, ...) are read with pycocotools
and merged into one :class:`CocoCaptions`.

Example
-------
>>> coco = CocoCaptions.load("data/coco/annotations/captions_val2017.json")  # doctest: +SKIP
>>> coco.captions_of(139)[0]                                                   # doctest: +SKIP
'A woman stands in the dining area at the table.'
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Union

import numpy as np

from semsearch.common.keys import coco_id_from_filename
from semsearch.paths import require_file
from semsearch.common.checks import check_caption_id, check_image_id
from semsearch.errors import InputError, UnknownIdError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ImageInfo:
    """What a caption file says about one image."""

    id: int
    file_name: str
    coco_url: str


class CocoCaptions:
    """Captions of COCO images, merged from one or more caption files.

    Parameters
    ----------
    images : dict[int, ImageInfo]
    captions : dict[int, tuple[int, str]]
        caption id -> (image id, caption text).

    Attributes
    ----------
    image_ids : numpy.ndarray, shape (N_images,), int64, sorted
    caption_ids : numpy.ndarray, shape (N_captions,), int64, sorted
    """

    def __init__(self, images: Dict[int, ImageInfo], captions: Dict[int, tuple]):
        self._images = dict(images)
        self._captions = dict(captions)
        self._caption_ids_of: Dict[int, List[int]] = {i: [] for i in self._images}
        for caption_id in sorted(self._captions):
            image_id = self._captions[caption_id][0]
            if image_id not in self._caption_ids_of:
                raise InputError(f"caption {caption_id} belongs to image {image_id}, which is not listed")
            self._caption_ids_of[image_id].append(caption_id)
        self.image_ids = np.array(sorted(self._images), dtype=np.int64)
        self.caption_ids = np.array(sorted(self._captions), dtype=np.int64)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, *caption_files: PathLike) -> "CocoCaptions":
        """Read and merge COCO caption files (pycocotools ``COCO``).

        An id present in two files must describe the same image or caption there; an image
        that two COCO releases name differently (``COCO_train2014_000000397133.jpg`` and
        ``000000397133.jpg``) is one image, described as the first file says.

        Raises
        ------
        FileNotFoundError
            A file does not exist.
        ValueError
            A file is not a COCO captions file, or two files disagree about an id.
        """
        if not caption_files:
            raise InputError("give at least one COCO captions file")
        images: Dict[int, ImageInfo] = {}
        captions: Dict[int, tuple] = {}
        for path in caption_files:
            coco = _read_coco(path)
            for image in coco.dataset["images"]:
                info = ImageInfo(image["id"], image.get("file_name", ""), image.get("coco_url", ""))
                known = images.setdefault(info.id, info)
                if known != info and not _same_image(known, info):
                    raise InputError(
                        f"image {info.id} is described differently in {path}: file {info.file_name!r}, "
                        f"elsewhere {known.file_name!r}"
                    )
            for ann in coco.dataset["annotations"]:
                entry = (ann["image_id"], ann["caption"])
                if captions.setdefault(ann["id"], entry) != entry:
                    raise InputError(f"caption {ann['id']} differs in {path}")
        return cls(images, captions)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.image_ids)

    def __repr__(self) -> str:
        return f"CocoCaptions({len(self.image_ids)} images, {len(self.caption_ids)} captions)"

    def caption(self, caption_id: int) -> str:
        """The text of one caption."""
        return self._caption_entry(caption_id)[1]

    def image_of(self, caption_id: int) -> int:
        """The COCO id of the image a caption describes."""
        return self._caption_entry(caption_id)[0]

    def caption_ids_of(self, image_id: int) -> List[int]:
        """The caption ids of one image, ascending."""
        return list(self._caption_ids_of[self._image_info(image_id).id])

    def captions_of(self, image_id: int) -> List[str]:
        """The caption texts of one image."""
        return [self._captions[c][1] for c in self.caption_ids_of(image_id)]

    def coco_url(self, image_id: int) -> str:
        """Where cocodataset.org serves the image."""
        return self._image_info(image_id).coco_url

    def file_name(self, image_id: int) -> str:
        """The image's file name in its COCO release (e.g. ``000000000139.jpg``)."""
        return self._image_info(image_id).file_name

    def captions(self, caption_ids: Iterable[int]) -> List[str]:
        """Texts of many captions, in the order given."""
        return [self.caption(c) for c in caption_ids]

    def images_of(self, caption_ids: Iterable[int]) -> np.ndarray:
        """Image ids of many captions, shape (N,)."""
        return np.array([self.image_of(c) for c in caption_ids], dtype=np.int64)

    def caption_ids_of_images(self, image_ids: Iterable[int]) -> np.ndarray:
        """All caption ids of the given images, shape (N_captions,), ascending."""
        ids = [c for i in image_ids for c in self.caption_ids_of(i)]
        return np.array(sorted(ids), dtype=np.int64)

    def subset(self, image_ids: Iterable[int]) -> "CocoCaptions":
        """Only these images and their captions."""
        keep = {self._image_info(i).id for i in image_ids}
        images = {i: info for i, info in self._images.items() if i in keep}
        captions = {c: e for c, e in self._captions.items() if e[0] in keep}
        return CocoCaptions(images, captions)

    # ------------------------------------------------------------------ helpers
    def _image_info(self, image_id: int) -> ImageInfo:
        try:
            return self._images[check_image_id(image_id)]
        except KeyError:
            raise UnknownIdError(f"unknown COCO image id {image_id}") from None

    def _caption_entry(self, caption_id: int) -> tuple:
        try:
            return self._captions[check_caption_id(caption_id)]
        except KeyError:
            raise UnknownIdError(f"unknown COCO caption id {caption_id}") from None


def _same_image(a: ImageInfo, b: ImageInfo) -> bool:
    """Whether two descriptions are of one image in two COCO releases.

    COCO 2017 re-splits the 2014 images: ``COCO_train2014_000000397133.jpg`` in train2014 is
    ``000000397133.jpg`` in val2017, with another URL and the same captions. Both file names
    carry the id in COCO's form; the first description read is kept.
    """
    return a.id == b.id == coco_id_from_filename(a.file_name) == coco_id_from_filename(b.file_name)


def _read_coco(path: PathLike):
    """Load a captions file with pycocotools, quietly, with clear errors."""
    from pycocotools.coco import COCO

    path = require_file(path, "COCO captions file")
    try:
        with open(path, encoding="utf-8") as f:
            dataset = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(dataset, dict) or not {"images", "annotations"} <= dataset.keys():
        raise InputError(f"{path} is not a COCO captions file (needs 'images' and 'annotations')")
    validate_captions_json(dataset, path.name)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _is_json_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_captions_json(dataset: dict, name: str) -> None:
    """Check the parts of a COCO captions file that semsearch reads; one line per problem.

    ``images`` and ``annotations`` must be lists; each image an object with an integer
    ``"id"`` >= 0 (and string ``file_name`` / ``coco_url`` if present); each annotation an
    object with integer ``"id"`` and ``"image_id"`` and a string ``"caption"``; no id twice.

    Raises
    ------
    InputError
        E.g. ``annotation 3 in captions_x.json has no "id"``.

    Examples
    --------
    >>> validate_captions_json({"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a"}]}, "x.json")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: annotation 0 in x.json has no "id"
    """
    for key in ("images", "annotations"):
        if not isinstance(dataset[key], list):
            raise InputError(f'"{key}" in {name} is a {_json_type(dataset[key])}, not a list')
    seen = set()
    for n, image in enumerate(dataset["images"]):
        where = f"image {n} in {name}"
        if not isinstance(image, dict):
            raise InputError(f"{where} is a {_json_type(image)}, not an object")
        _check_id(image, "id", where)
        for key in ("file_name", "coco_url"):
            if key in image and not isinstance(image[key], str):
                raise InputError(f'{where} has a "{key}" that is not a string: {image[key]!r}')
        if image["id"] in seen:
            raise InputError(f"image id {image['id']} is listed twice in {name}")
        seen.add(image["id"])
    seen = set()
    for n, ann in enumerate(dataset["annotations"]):
        where = f"annotation {n} in {name}"
        if not isinstance(ann, dict):
            raise InputError(f"{where} is a {_json_type(ann)}, not an object")
        if "caption" not in ann:
            hint = " (is this an instances or keypoints file?)" if {"bbox", "segmentation", "keypoints"} & ann.keys() else ""
            raise InputError(f'{where} has no "caption"{hint}')
        _check_id(ann, "id", where)
        _check_id(ann, "image_id", where)
        if not isinstance(ann["caption"], str):
            raise InputError(f'{where} has a "caption" that is not a string: {ann["caption"]!r}')
        if ann["id"] in seen:
            raise InputError(f"caption id {ann['id']} is used twice in {name}")
        seen.add(ann["id"])


def _check_id(entry: dict, key: str, where: str) -> None:
    if key not in entry:
        raise InputError(f'{where} has no "{key}"')
    value = entry[key]
    if not _is_json_int(value):
        raise InputError(f'{where} has "{key}": {json.dumps(value)}, which is not an integer')
    if value < 0:
        raise InputError(f'{where} has "{key}": {value}, which is negative')


def _json_type(value) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
