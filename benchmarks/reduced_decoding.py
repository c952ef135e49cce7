"""How far reduced JPEG decoding moves descriptors, by photo size (run by hand, not a test).

    python benchmarks/reduced_decoding.py [IMAGES_DIR] [--limit 120] [--shorter 1024 2048 3024 ...]

For each shorter side given, the first ``limit`` JPEGs of IMAGES_DIR (default
``$SEMSEARCH_DATA/coco/images``) are upscaled to that size (4:3, bicubic, JPEG quality 92, in
memory) and described by EfficientNet-Lite0 twice: decoded fully, and through
``open_image(reduce_to=...)`` as the photo tool decodes them. It prints, per size and per
``reduce_to`` (default: RESIZE = 256, as small as the network's resize allows, and today's
REDUCED_DECODE_SIDE = 742), the decoded size,
its ratio to RESIZE, and the cosine of each reduced-decode descriptor with the full-decode
one: the smallest, the mean, and how many fall under 0.995 (issue 20's bar), with the decode
time per image. This is the measurement behind
:data:`semsearch.cnn.preprocessing.REDUCED_DECODE_SIDE`.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semsearch.backbones import load_backbone
from semsearch.cnn.preprocessing import REDUCED_DECODE_SIDE, RESIZE
from semsearch.common.images import open_image

BATCH = 32


def upscaled(sources: list, shorter: int) -> list:
    """JPEG bytes (quality 92) of each source resized to 4:3 landscape with this shorter side."""
    from PIL import Image

    out = []
    for path in sources:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((round(shorter * 4 / 3), shorter), Image.BICUBIC).save(buffer, "JPEG", quality=92)
        out.append(buffer.getvalue())
    return out


def describe(backbone, datas: list, reduce_to) -> tuple:
    """(descriptors (N, D), decode + preprocess seconds per image, decoded size of the first)."""
    seconds, out, sizes = 0.0, [], []
    for start in range(0, len(datas), BATCH):
        batch = []
        for data in datas[start : start + BATCH]:
            began = time.perf_counter()
            image = open_image(data, reduce_to=reduce_to)
            batch.append(backbone.preprocess(image))
            seconds += time.perf_counter() - began
            sizes.append(image.size)
        out.append(backbone.forward(np.stack(batch)))
    return np.concatenate(out), seconds / len(datas), sizes[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="?", type=Path,
                        default=Path(os.environ.get("SEMSEARCH_DATA", "data")) / "coco" / "images")
    parser.add_argument("--limit", type=int, default=120, help="images per size")
    parser.add_argument("--shorter", type=int, nargs="+", default=[1080, 1536, 2048, 2448, 2800, 3024, 3456])
    parser.add_argument("--reduce-to", type=int, nargs="+", default=[RESIZE, REDUCED_DECODE_SIDE],
                        help="the open_image(reduce_to=...) values to compare")
    parser.add_argument("--worst", type=int, default=0, help="name this many worst images per row")
    args = parser.parse_args()
    sources = sorted(args.images.glob("*.jpg"))[: args.limit]
    if not sources:
        sys.exit(f"no .jpg files in {args.images}")
    backbone = load_backbone("efficientnet-lite0")
    print(f"{len(sources)} images per size; cosine of each reduced-decode descriptor with the full-decode one; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'shorter side':>12} {'reduce_to':>9} {'decoded':>11} {'x RESIZE':>8} {'min':>7} {'mean':>7} "
          f"{'< 0.995':>7} {'ms/image':>8} {'full ms':>8}")
    for shorter in args.shorter:
        datas = upscaled(sources, shorter)
        full, full_seconds, _ = describe(backbone, datas, None)
        for reduce_to in args.reduce_to:
            reduced, seconds, size = describe(backbone, datas, reduce_to)
            cosines = (full * reduced).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(reduced, axis=1)
            print(f"{shorter:>12} {reduce_to:>9} {'%dx%d' % size:>11} {min(size) / RESIZE:>8.2f} {cosines.min():>7.4f} "
                  f"{cosines.mean():>7.4f} {int((cosines < 0.995).sum()):>7} {seconds * 1e3:>8.1f} {full_seconds * 1e3:>8.1f}",
                  flush=True)
            if args.worst:
                print(f"{'':>12} worst images: " + ", ".join(f"{sources[i].name} {cosines[i]:.4f}" for i in np.argsort(cosines)[: args.worst]))


if __name__ == "__main__":
    main()
