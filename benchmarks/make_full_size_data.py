"""Write a data folder shaped like the course's, at full size or scaled down.

Run by hand (it is not a test)::

    python benchmarks/make_full_size_data.py OUT_DIR --captions SRC.json            # full size
    python benchmarks/make_full_size_data.py OUT_DIR --captions SRC.json --train-images 2000

The folder is laid out as ``semsearch fetch`` leaves it::

    OUT_DIR/coco/annotations/captions_train2014.json   82,783 images, 414,113 captions
    OUT_DIR/coco/annotations/captions_val2014.json     40,504 images
    OUT_DIR/coco/annotations/captions_train2017.json   train2014 + val2014 - val2017 (118,287)
    OUT_DIR/coco/annotations/captions_val2017.json     5,000 images, all of them in val2014
    OUT_DIR/resnet18_features.pkl                      82,612 random (1, 512) float32, train2014 ids

The releases overlap as COCO's do: an image keeps its id (and its captions, with their
caption ids) from 2014 to 2017 under another ``file_name`` and ``coco_url``
(``COCO_train2014_000000397133.jpg`` becomes ``000000397133.jpg``). The caption text is
real: captions of ``SRC.json`` (e.g. the shared ``captions_val2017.json``) drawn at random
with replacement. The descriptors are random (|N(0, 1)|, non-negative like a ReLU network's),
so a model trained on them scores at chance: the folder is for size, memory and speed.

Everything is drawn from one seed: the same arguments write the same bytes. With
``--train-images N`` every count is scaled by ``N / 82,783`` (at least one image of each
kind; at least one train2014 image without a descriptor, as in the course's pickle).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

TRAIN2014_IMAGES = 82_783
TRAIN2014_CAPTIONS = 414_113
VAL2014_IMAGES = 40_504
VAL2017_IMAGES = 5_000
DESCRIBED_IMAGES = 82_612  # resnet18_features.pkl: train2014 images with a descriptor
DESCRIPTOR_DIM = 512
MAX_COCO_ID = 581_929  # COCO's largest image id
_URL = "http://images.cocodataset.org"


@dataclass(frozen=True)
class Sizes:
    """How many images and captions of each kind the folder gets."""

    train2014_images: int = TRAIN2014_IMAGES
    train2014_captions: int = TRAIN2014_CAPTIONS
    val2014_images: int = VAL2014_IMAGES
    val2017_images: int = VAL2017_IMAGES
    described_images: int = DESCRIBED_IMAGES

    @classmethod
    def scaled(cls, train_images: int) -> "Sizes":
        """Every count times ``train_images / 82,783``, rounded, at least 1 (full size: the real counts)."""
        if train_images < 2:
            raise ValueError(f"train_images must be at least 2, got {train_images}")
        if train_images == TRAIN2014_IMAGES:
            return cls()
        f = train_images / TRAIN2014_IMAGES
        val2014 = max(2, round(VAL2014_IMAGES * f))
        return cls(
            train2014_images=train_images,
            train2014_captions=max(train_images, round(TRAIN2014_CAPTIONS * f)),
            val2014_images=val2014,
            val2017_images=max(1, min(val2014 - 1, round(VAL2017_IMAGES * f))),
            described_images=min(train_images - 1, round(DESCRIBED_IMAGES * f)),
        )


def source_captions(path: os.PathLike) -> List[str]:
    """The caption texts of a COCO captions file (the pool the captions are drawn from)."""
    with open(path, encoding="utf-8") as f:
        texts = [str(a["caption"]) for a in json.load(f)["annotations"]]
    if not texts:
        raise ValueError(f"{path} has no captions to draw from")
    return texts


def _image(image_id: int, release: str) -> dict:
    name = f"COCO_{release}_{image_id:012d}.jpg" if release.endswith("2014") else f"{image_id:012d}.jpg"
    return {"id": int(image_id), "file_name": name, "coco_url": f"{_URL}/{release}/{name}",
            "height": 480, "width": 640, "license": 1}


def _captions_file(release: str, image_ids: Sequence[int], annotations: List[dict]) -> dict:
    return {
        "info": {"description": f"synthetic {release} captions (real caption text, resampled)", "year": int(release[-4:])},
        "licenses": [{"id": 1, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"}],
        "images": [_image(i, release) for i in image_ids],
        "annotations": annotations,
    }


def _write_json(path: Path, blob: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(blob, f, separators=(",", ":"))
    os.replace(tmp, path)


def _annotations(image_ids: np.ndarray, n_captions: int, texts: List[str], first_id: int, rng) -> List[dict]:
    """``n_captions`` captions over ``image_ids``: 5 each, one more for a random few (COCO's shape)."""
    per_image = np.full(len(image_ids), n_captions // len(image_ids))
    per_image[rng.choice(len(image_ids), n_captions - per_image.sum(), replace=False)] += 1
    owners = np.repeat(image_ids, per_image)
    picks = rng.integers(0, len(texts), size=n_captions)
    return [{"image_id": int(owner), "id": first_id + k, "caption": texts[pick]}
            for k, (owner, pick) in enumerate(zip(owners, picks))]


def make_data_folder(out: os.PathLike, captions_source: os.PathLike, sizes: Optional[Sizes] = None, *,
                     seed: int = 0, releases: Sequence[str] = ("2014", "2017")) -> Dict[str, Path]:
    """Write the data folder; returns ``{name: path}`` of the files written.

    Parameters
    ----------
    out : path
        The data folder (created; files of the same names are replaced).
    captions_source : path
        A COCO captions file whose caption texts are drawn (with replacement).
    sizes : Sizes, optional
        Default: the course's full size.
    releases : "2014" and/or "2017"
        Which caption releases to write (the descriptors are written always).
    """
    sizes = sizes or Sizes()
    rng = np.random.default_rng(seed)
    texts = source_captions(captions_source)
    n_2014 = sizes.train2014_images + sizes.val2014_images
    ids = rng.choice(np.arange(1, MAX_COCO_ID + 1), size=n_2014, replace=False)
    train2014, val2014 = np.sort(ids[: sizes.train2014_images]), np.sort(ids[sizes.train2014_images:])
    val2017 = np.sort(rng.choice(val2014, size=sizes.val2017_images, replace=False))
    train2017 = np.sort(np.concatenate([train2014, np.setdiff1d(val2014, val2017)]))

    train_captions = _annotations(train2014, sizes.train2014_captions, texts, 1, rng)
    n_val_captions = round(sizes.val2014_images * sizes.train2014_captions / sizes.train2014_images)
    val_captions = _annotations(val2014, max(n_val_captions, sizes.val2014_images), texts, len(train_captions) + 1, rng)
    val2017_set = set(val2017.tolist())

    annotations = Path(out) / "coco" / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    files = {}
    if "2014" in releases:
        files["captions_train2014.json"] = ("train2014", train2014, train_captions)
        files["captions_val2014.json"] = ("val2014", val2014, val_captions)
    if "2017" in releases:
        files["captions_val2017.json"] = ("val2017", val2017, [a for a in val_captions if a["image_id"] in val2017_set])
        files["captions_train2017.json"] = (
            "train2017", train2017, train_captions + [a for a in val_captions if a["image_id"] not in val2017_set])
    for name, (release, image_ids, anns) in files.items():
        _write_json(annotations / name, _captions_file(release, image_ids, anns))
        written[name] = annotations / name

    described = np.sort(rng.choice(train2014, size=sizes.described_images, replace=False))
    vectors = np.abs(rng.standard_normal((len(described), DESCRIPTOR_DIM), dtype=np.float32))
    features = {int(i): vectors[row: row + 1].copy() for row, i in enumerate(described)}
    pkl = Path(out) / "resnet18_features.pkl"
    tmp = pkl.with_name(pkl.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(features, f, protocol=4)
    os.replace(tmp, pkl)
    written[pkl.name] = pkl
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the data folder to write")
    parser.add_argument("--captions", type=Path, required=True, help="COCO captions file whose texts are drawn")
    parser.add_argument("--train-images", type=int, default=TRAIN2014_IMAGES, help="default %(default)s (full size)")
    parser.add_argument("--releases", nargs="+", choices=("2014", "2017"), default=("2014", "2017"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    written = make_data_folder(args.out, args.captions, Sizes.scaled(args.train_images), seed=args.seed, releases=args.releases)
    for path in written.values():
        print(f"  {path}  ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"wrote {len(written)} files in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
