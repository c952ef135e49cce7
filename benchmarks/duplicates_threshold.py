"""Choose the near-duplicate threshold on planted pairs of real photos (run by hand).

    SEMSEARCH_DATA=... python benchmarks/duplicates_threshold.py [--sources 120] [--seed 0]

For each source photo of the data folder (``coco/images``), EfficientNet-Lite0 describes the
original and (all in memory, as JPEG bytes where re-encoding matters):

- duplicates: re-encoded at quality 60; resized to half; cropped 10% (5% off each side);
  brightened 15% and contrast +10%; all of these at once (resized to 60%, cropped 6%,
  brightened, quality 75);
- look-alikes that are *not* duplicates: the photo's left and right 60% (one scene framed
  twice, overlapping by a fifth), and the photo's most similar *other* photo of the folder.

The sources are split in two halves (seeded): the threshold is the one with the best F1 on
the first half's pairs, and its precision and recall are reported on the second half (and on
all pairs). Results go to ``benchmarks/duplicates_threshold.json``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semsearch.common.vectors import l2_normalize_rows

HERE = Path(__file__).resolve().parent


def jpeg(image, quality: int):
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop(image, fraction: float):
    w, h = image.size
    dx, dy = int(w * fraction / 2), int(h * fraction / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def edit(image):
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.15)).enhance(1.1)


DUPLICATES = {
    "re-encoded q60": lambda im: jpeg(im, 60),
    "resized 50%": lambda im: im.resize((im.width // 2, im.height // 2)),
    "cropped 10%": lambda im: crop(im, 0.10),
    "brightness+contrast": edit,
    "all at once": lambda im: jpeg(edit(crop(im.resize((im.width * 3 // 5, im.height * 3 // 5)), 0.06)), 75),
}


def halves(image):
    w, h = image.size
    return image.crop((0, 0, w * 3 // 5, h)), image.crop((w * 2 // 5, 0, w, h))


def precision_recall(similarity, is_duplicate, threshold):
    said = similarity >= threshold
    tp = int((said & is_duplicate).sum())
    precision = tp / max(int(said.sum()), 1)
    recall = tp / max(int(is_duplicate.sum()), 1)
    return precision, recall


def main(argv=None) -> None:
    from PIL import Image

    from semsearch.backbones import load_backbone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = Path(os.environ.get("SEMSEARCH_DATA", "data"))
    files = sorted((data / "coco" / "images").glob("*.jpg"))
    if not files:
        sys.exit(f"no photos in {data / 'coco' / 'images'}: set SEMSEARCH_DATA to the data folder")
    rng = np.random.default_rng(args.seed)
    backbone = load_backbone("efficientnet-lite0", device="cpu")

    def describe(images):
        out = [backbone.describe(images[i : i + 32]) for i in range(0, len(images), 32)]
        return l2_normalize_rows(np.concatenate(out).astype(np.float32))

    originals = [Image.open(f).convert("RGB") for f in files]
    every = describe(originals)  # the whole folder: each source's most similar other photo
    chosen = sorted(rng.choice(len(files), size=min(args.sources, len(files)), replace=False).tolist())
    first_half = set(rng.permutation(chosen)[: len(chosen) // 2].tolist())
    pairs = []  # (source, kind, is duplicate, similarity)
    for s in chosen:
        variants = [f(originals[s]) for f in DUPLICATES.values()] + list(halves(originals[s]))
        vectors = describe(variants)
        for kind, v in zip(DUPLICATES, vectors):
            pairs.append((s, kind, True, float(v @ every[s])))
        pairs.append((s, "two framings of one scene", False, float(vectors[-2] @ vectors[-1])))
        others = every @ every[s]
        others[s] = -np.inf
        pairs.append((s, "most similar other photo", False, float(others.max())))
    source = np.array([p[0] for p in pairs])
    kinds = np.array([p[1] for p in pairs])
    truth = np.array([p[2] for p in pairs])
    similarity = np.array([p[3] for p in pairs])
    tune = np.isin(source, list(first_half))
    candidates = np.round(np.arange(0.50, 0.995, 0.005), 3)
    f1 = []
    for t in candidates:
        p, r = precision_recall(similarity[tune], truth[tune], t)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    best = float(candidates[int(np.argmax(f1))])
    held_p, held_r = precision_recall(similarity[~tune], truth[~tune], best)
    all_p, all_r = precision_recall(similarity, truth, best)
    by_kind = {k: {"pairs": int((kinds == k).sum()),
                   "min": float(similarity[kinds == k].min()), "median": float(np.median(similarity[kinds == k])),
                   "max": float(similarity[kinds == k].max()),
                   "called duplicate": float((similarity[kinds == k] >= best).mean())}
               for k in dict.fromkeys(kinds.tolist())}
    result = {"backbone": "efficientnet-lite0", "sources": len(chosen), "seed": args.seed, "threshold": best,
              "tuning half F1": float(max(f1)), "held-out half": {"precision": held_p, "recall": held_r},
              "all pairs": {"precision": all_p, "recall": all_r}, "by kind": by_kind}
    print(json.dumps(result, indent=2))
    (HERE / "duplicates_threshold.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
