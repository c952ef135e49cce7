"""Build the embedded sample, ``semsearch/sample/``, from a data folder (run by hand).

    python scripts/build_sample.py --data ../shared/data

From the data folder's COCO images it keeps those whose Flickr licence allows
redistribution (Attribution, Attribution-ShareAlike, Attribution-NonCommercial,
Attribution-NonCommercial-ShareAlike; not the NoDerivs ones) and writes

- ``images/<12-digit id>.jpg``: thumbnails, longer side at most 320 px (JPEG quality 85);
- ``captions.json``: their captions, COCO format (``images``, ``annotations``, ``licenses``);
- ``descriptors.npz``: EfficientNet-Lite0 descriptors of the **original** images (not the
  thumbnails: a user's photos are described at full size, so the sample's vectors are the
  ones the full images give), made by :mod:`semsearch.backbones`;
- ``ATTRIBUTION.csv``: per image, file, flickr_url, coco_url, licence name and url;
- ``model/``: a bundle trained on the sample (all of it, seed 0), its IDF fitted on every
  caption of ``captions_val2017.json`` (25,014) so that everyday words are known.

It refuses to write more than 5 MB of images or a model over 3 MB.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semsearch.backbones import load_backbone  # noqa: E402
from semsearch.coco import CocoCaptions  # noqa: E402
from semsearch.dataset import join  # noqa: E402
from semsearch.descriptors import Descriptors  # noqa: E402
from semsearch.common.keys import coco_file_name  # noqa: E402
from semsearch.common.images import open_image  # noqa: E402

REDISTRIBUTABLE = (
    "Attribution License",
    "Attribution-ShareAlike License",
    "Attribution-NonCommercial License",
    "Attribution-NonCommercial-ShareAlike License",
)
THUMBNAIL = 320
MAX_IMAGE_BYTES = 5_000_000
MAX_MODEL_BYTES = 3_000_000


def redistributable_images(caption_files, image_dir: Path):
    """(image entries, caption annotations, licences) of the images in image_dir we may ship."""
    images, annotations, licences = {}, [], {}
    for path in caption_files:
        coco = json.loads(Path(path).read_text(encoding="utf-8"))
        licences.update({lic["id"]: lic for lic in coco["licenses"]})
        for entry in coco["images"]:
            if (image_dir / coco_file_name(entry["id"])).is_file() and licences[entry["license"]]["name"] in REDISTRIBUTABLE:
                images[entry["id"]] = entry
        annotations += [a for a in coco["annotations"] if a["image_id"] in images]
    return images, annotations, licences


def thumbnail_bytes(path: Path) -> bytes:
    image = open_image(path)
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data folder with coco/images and coco/annotations")
    parser.add_argument("--out", type=Path, default=ROOT / "semsearch" / "sample")
    parser.add_argument("--model-only", action="store_true", help="only retrain the shipped model (e.g. after the defaults change)")
    args = parser.parse_args(argv)
    annotations_dir, image_dir = args.data / "coco" / "annotations", args.data / "coco" / "images"
    if args.model_only:
        return 0 if train_sample_model(args.out, annotations_dir / "captions_val2017.json") <= MAX_MODEL_BYTES else 1
    caption_files = sorted(annotations_dir.glob("captions_*2017*.json"))
    images, annotations, licences = redistributable_images(caption_files, image_dir)
    ids = sorted(images)
    print(f"{len(ids)} of {len(list(image_dir.glob('*.jpg')))} images may be redistributed")

    out = args.out
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    (out / "images").mkdir(parents=True)
    total = 0
    for i in ids:
        data = thumbnail_bytes(image_dir / coco_file_name(i))
        (out / "images" / coco_file_name(i)).write_bytes(data)
        total += len(data)
    if total > MAX_IMAGE_BYTES:
        raise SystemExit(f"thumbnails take {total / 1e6:.2f} MB, over the {MAX_IMAGE_BYTES / 1e6:.0f} MB limit")
    print(f"thumbnails: {total / 1e6:.2f} MB")

    used = sorted({images[i]["license"] for i in ids})
    captions = {"info": {"description": "semsearch sample: COCO 2017 images with redistributable Flickr licences"},
                "licenses": [licences[k] for k in used],
                "images": [images[i] for i in ids],
                "annotations": sorted(annotations, key=lambda a: a["id"])}
    (out / "captions.json").write_text(json.dumps(captions, indent=0, ensure_ascii=False), encoding="utf-8")
    with open(out / "ATTRIBUTION.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "coco_id", "flickr_url", "coco_url", "license", "license_url"])
        for i in ids:
            lic = licences[images[i]["license"]]
            writer.writerow([coco_file_name(i), i, images[i]["flickr_url"], images[i]["coco_url"], lic["name"], lic["url"]])

    backbone = load_backbone("efficientnet-lite0")
    vectors = np.concatenate([backbone.describe([open_image(image_dir / coco_file_name(i))]) for i in ids])
    descriptors = Descriptors(dict(zip(ids, vectors)), backbone=backbone.info)
    descriptors.save(out / "descriptors.npz")
    print(f"descriptors: {descriptors} of the original images")

    model_bytes = train_sample_model(out, annotations_dir / "captions_val2017.json")
    if model_bytes > MAX_MODEL_BYTES:
        raise SystemExit(f"the model takes {model_bytes / 1e6:.2f} MB, over the {MAX_MODEL_BYTES / 1e6:.0f} MB limit")
    return 0


def train_sample_model(out: Path, idf_captions: Path) -> int:
    """Train on the whole sample; save the bundle to out/model; return its size in bytes.

    The training and saving calls are kept here, together, so that they are easy to adapt.
    """
    from semsearch.bundle import save_bundle
    from semsearch.database import ImageDatabase
    from semsearch.text import TextEmbedder
    from semsearch.training import TrainConfig
    from semsearch.workflow import train_model

    corpus = CocoCaptions.load(idf_captions)
    text_encoder = TextEmbedder.fit(corpus.captions(corpus.caption_ids))
    data = join(CocoCaptions.load(out / "captions.json"), Descriptors.load(out / "descriptors.npz"))
    config = TrainConfig(seed=0)  # the library's defaults, on every image of the sample
    model, history = train_model(data, text_encoder, data.image_ids, None, config)
    database = ImageDatabase.build(model, data.descriptors, text_encoder)
    info = {"backbone": "efficientnet-lite0", "trained_on": "semsearch sample", "n_images": int(len(data.image_ids)),
            "idf_corpus": f"{idf_captions.name} ({len(corpus.caption_ids)} captions)", "seed": 0,
            "training": config.as_dict(), "final_train_loss": float(history.train_loss[-1])}
    folder = save_bundle(out / "model", model, text_encoder, database, info=info)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"model: {folder} ({size / 1e6:.2f} MB), train loss {history.train_loss[-1]:.4f}")
    return size


if __name__ == "__main__":
    sys.exit(main())
