"""Shared by the photo tests: real photo folders built from the data folder's JPEGs, with EXIF."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from semsearch.photos.metadata import DATETIME_ORIGINAL, EXIF_IFD, MAKE, MODEL, ORIENTATION


class FakeBackbone:
    """12 numbers per image: its 2 x 2 thumbnail's RGB values; counts the images it describes."""

    def __init__(self, name="fake", dim=12):
        self.name, self.dim, self.n_described = name, dim, 0

    def describe(self, images):
        self.n_described += len(images)
        return np.stack([np.asarray(im.convert("RGB").resize((2, 2), Image.BILINEAR), np.float32).reshape(-1) / 255
                         for im in images])


def fake_model(folder: Path) -> Path:
    """A model folder for 12-d "fake" descriptors, with a 5-d text encoder on random word vectors."""
    from gensim.models import KeyedVectors

    from semsearch.bundle import save_bundle
    from semsearch.database import ImageDatabase
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder

    words = ["dog", "cat", "beach", "kitchen", "a", "on", "the", "red", "blue"]
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 5)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog on the beach", "a cat in the kitchen", "a red cat", "a blue dog"], kv)
    model = Autoembedder(12, 5, seed=1)
    coco = Descriptors({i: np.random.default_rng(i).random((1, 12)) for i in (139, 285)})
    return save_bundle(folder, model, encoder, ImageDatabase.build(model, coco, encoder), info={"backbone": "fake"})


def coco_jpegs(real_data: Path):
    return sorted((real_data / "coco" / "images").glob("*.jpg"))


def write_photo(source: Path, dest: Path, *, taken: Optional[dt.datetime] = None, camera: Optional[Tuple[str, str]] = None,
                orientation: Optional[int] = None, quality: int = 95, size: Optional[Tuple[int, int]] = None,
                crop: float = 0.0) -> Path:
    """Save a copy of ``source`` at ``dest`` (re-encoded), with the EXIF fields given, resized or cropped."""
    image = Image.open(source).convert("RGB")
    if crop:
        w, h = image.size
        dx, dy = int(w * crop / 2), int(h * crop / 2)
        image = image.crop((dx, dy, w - dx, h - dy))
    if size is not None:
        image = image.resize(size, Image.LANCZOS)
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if camera is not None:
        exif[MAKE], exif[MODEL] = camera
    if orientation is not None:
        exif[ORIENTATION] = orientation
    dest.parent.mkdir(parents=True, exist_ok=True)
    image.save(dest, "JPEG", quality=quality, exif=exif)
    return dest


#: The photo folder of :func:`holiday_folder`: file -> (taken or None, camera or None, orientation).
def holiday_folder(real_data: Path, root: Path) -> dict:
    """A phone-like folder of 16 real photos with EXIF: what each file was given.

    - ``Holiday 2019/``: 6 photos taken July 2019 with a Google Pixel 3 (names with spaces);
    - ``Holiday 2019/day 2/``: 2 more, the second stored sideways (EXIF orientation 6);
    - ``2020/``: 4 taken in 2020 with a Canon EOS 80D;
    - ``scans/``: 4 without EXIF (their date is their mtime, set to 2018-03-01 noon).
    """
    sources = coco_jpegs(real_data)
    planted = {}
    pixel, canon = ("Google", "Pixel 3"), ("Canon", "Canon EOS 80D")
    for n in range(6):
        planted[f"Holiday 2019/IMG {n:04d}.jpg"] = (dt.datetime(2019, 7, 10 + n, 10, 30), pixel, 1)
    planted["Holiday 2019/day 2/PXL 1.jpg"] = (dt.datetime(2019, 8, 2, 9, 0), pixel, 1)
    planted["Holiday 2019/day 2/PXL 2.jpg"] = (dt.datetime(2019, 8, 2, 9, 5), pixel, 6)
    for n in range(4):
        planted[f"2020/IMG_{n}.JPG"] = (dt.datetime(2020, 1 + n, 1, 12), canon, 1)
    for n in range(4):
        planted[f"scans/scan {n}.jpg"] = (None, None, 1)
    for (name, (taken, camera, orientation)), source in zip(planted.items(), sources):
        path = write_photo(source, root / name, taken=taken, camera=camera, orientation=orientation)
        if taken is None:
            stamp = dt.datetime(2018, 3, 1, 12).timestamp()
            import os

            os.utime(path, (stamp, stamp))
    return planted
