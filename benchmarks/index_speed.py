"""Indexing speed: the ONNX Runtime photo path against the old torch path and the bare forward pass (run by hand).

    python benchmarks/index_speed.py [IMAGES_DIR] [--limit 96] [--phone 4032x3024]

Makes two folders in a temporary directory from the JPEGs of IMAGES_DIR (default
``$SEMSEARCH_DATA/coco/images``): COCO-size (the files as they are) and phone-size (each
image upscaled to 4032 x 3024, saved as JPEG quality 92, about 12 megapixels). For each, in
one run, it times end to end (files -> descriptors):

- **new**: ``index_folder`` as ``semsearch index`` runs it (EfficientNet-Lite0 on ONNX Runtime,
  JPEGs decoded at reduced scale, in threads ahead of the network), database saves included;
- **old**: the path ``semsearch index`` took before (each batch's files fully decoded one by one
  in the main thread, then EfficientNet-Lite0's forward pass in torch);
- **bare**: ONNX Runtime's forward pass alone on the already preprocessed batches;

and prints images/s with the ratios; the largest descriptor difference between old (torch)
and ONNX Runtime, both decoding fully; the cosine of each new descriptor with its old,
full-decode one (reduced decoding's own bar); and the time from launching ``semsearch
index`` to its first described image. One-time costs (building the graph, importing MyGrad for the model's
forward pass) are paid before the clocks start; the launch-to-first-image time includes
start-up. Speed is measured here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semsearch.backbones import load_backbone
from semsearch.cnn.preprocessing import REDUCED_DECODE_SIDE
from semsearch.common.images import image_suffixes, open_image
from semsearch.features import describe_files
from semsearch.photos.paths import find_photo_files
from semsearch.photos.folder import PhotoDatabase, index_folder

BATCH = 32


def make_folders(source: Path, tmp: Path, limit: int, phone: tuple) -> tuple:
    """(COCO-size folder, phone-size folder) of the first ``limit`` JPEGs of ``source``."""
    from PIL import Image

    coco, big = tmp / "coco", tmp / "phone"
    coco.mkdir()
    big.mkdir()
    for path in sorted(source.glob("*.jpg"))[:limit]:
        (coco / path.name).write_bytes(path.read_bytes())
        Image.open(path).convert("RGB").resize(phone, Image.BICUBIC).save(big / path.name, quality=92)
    return coco, big


def old_path(files: list, backbone) -> np.ndarray:
    """The loop ``index_folder`` ran before: per batch, full decodes one by one, then the torch forward."""
    out = []
    for start in range(0, len(files), BATCH):
        images = [open_image(path) for path in files[start : start + BATCH]]
        out.append(backbone.describe(images))
    return np.concatenate(out)


def bare_forward(files: list, backbone) -> float:
    """Seconds of the ONNX forward passes alone, on batches preprocessed beforehand."""
    batches = [np.stack([backbone.preprocess(open_image(p, reduce_to=REDUCED_DECODE_SIDE)) for p in files[i : i + BATCH]])
               for i in range(0, len(files), BATCH)]
    start = time.perf_counter()
    for batch in batches:
        backbone.forward(batch)
    return time.perf_counter() - start


def new_path(folder: Path, db: Path) -> tuple:
    """(seconds, descriptors by file name) of a first ``index_folder`` run with the defaults."""
    start = time.perf_counter()
    index_folder(folder, db, progress=False)
    seconds = time.perf_counter() - start
    saved = PhotoDatabase.load(db)
    return seconds, dict(zip(saved.keys.tolist(), saved.descriptors))


def first_image_seconds(folder: Path, db: Path, cache: str) -> float:
    """Seconds from launching ``python -m semsearch index`` to its first described image (batch of 1)."""
    code = ("import sys, time, tqdm\n"
            "real = tqdm.tqdm.update\n"
            "def update(self, n=1):\n"
            "    if self.n == 0:\n"
            "        print('first', time.time(), flush=True)\n"
            "    return real(self, n)\n"
            "tqdm.tqdm.update = update\n"
            "from semsearch.cli.commands import main\n"
            f"main(['index', {str(folder)!r}, '--db', {str(db)!r}, '--batch-size', '1'])\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEMSEARCH_CACHE": cache}
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    first = next(float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("first"))
    return first - launched


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def caption_recall(descriptors: np.ndarray, files: list, data: Path, k: int = 5) -> tuple:
    """(Recall@k of each image's captions among these images with the shipped sample model, captions)."""
    from semsearch import sample
    from semsearch.bundle import load_bundle
    from semsearch.coco import CocoCaptions

    model, text_encoder, _ = load_bundle(sample.model_dir())
    coco = CocoCaptions.load(*sorted((data / "annotations").glob("captions_*.json")))
    images = model.embed(descriptors)
    ids = [int(f.stem) for f in files]
    texts, truth = [], []
    for row, image_id in enumerate(ids):
        for caption in coco.captions_of(image_id):
            texts.append(caption)
            truth.append(row)
    scores = text_encoder(texts) @ images.T
    rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(1)
    return float((rank < k).mean()), len(texts)


def run_folder(name: str, folder: Path, tmp: Path, onnx, torch_backbone) -> dict:
    files = find_photo_files(folder, image_suffixes())[0]
    n = len(files)
    bare = bare_forward(files, onnx)
    seconds, new = new_path(folder, tmp / f"{name}.npz")
    start = time.perf_counter()
    index_folder(folder, tmp / f"{name}.npz", progress=False)  # nothing changed: nothing described
    again = time.perf_counter() - start
    start = time.perf_counter()
    old = old_path(files, torch_backbone)
    old_seconds = time.perf_counter() - start
    new = np.stack([new[f.name] for f in files])
    full, _, _ = describe_files(files, onnx, batch_size=BATCH, progress=False)  # ONNX, full decoding: not timed
    print(f"{name:>11}: new {n / seconds:6.1f} images/s | old (torch) {n / old_seconds:5.1f} | "
          f"bare ONNX forward {n / bare:6.1f} | new/old {old_seconds / seconds:4.1f}x, new/bare {bare / seconds:.2f}x | "
          f"re-index, nothing changed: {again:.2f} s")
    c = cosines(old, new)
    print(f"{'':>11}  max |old - new| with full decoding {np.abs(old - full).max():.1e}; reduced vs full decoding: "
          f"cosine min {c.min():.4f}, mean {c.mean():.4f}, {(c >= 0.995).mean():.0%} of images >= 0.995")
    data = Path(os.environ.get("SEMSEARCH_DATA", "data")) / "coco"
    if (data / "annotations").is_dir():
        (before, n_captions), (after, _) = caption_recall(old, files, data), caption_recall(new, files, data)
        noise = np.sqrt(before * (1 - before) / n_captions)
        print(f"{'':>11}  caption -> image Recall@5 among these images (sample model, {n_captions} captions): "
              f"full decoding {before:.3f}, new path {after:.3f} (one standard error {noise:.3f})")
    return {"old": old, "new": new}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("SEMSEARCH_DATA", "data")) / "coco" / "images"
    parser.add_argument("images_dir", type=Path, nargs="?", default=default, help="JPEGs to copy (default %(default)s)")
    parser.add_argument("--limit", type=int, default=96, help="how many images per folder (default %(default)s)")
    parser.add_argument("--phone", default="4032x3024", help="phone-size width x height (default %(default)s)")
    args = parser.parse_args()
    phone = tuple(int(v) for v in args.phone.lower().split("x"))
    import onnxruntime
    import torch

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        coco, big = make_folders(args.images_dir, tmp, args.limit, phone)
        cache = str(tmp / "cache")
        os.environ["SEMSEARCH_CACHE"] = cache
        onnx = load_backbone("efficientnet-lite0")  # builds and caches the graph before the clocks start
        import mygrad  # noqa: F401 - imported once by the first database save: a start-up cost, timed below
        torch_backbone = load_backbone("efficientnet-lite0", device="cpu", runtime="torch")
        print(f"{len(find_photo_files(coco, image_suffixes())[0])} images per folder, {os.cpu_count()} CPUs, batch {BATCH}, "
              f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
        run_folder("COCO-size", coco, tmp, onnx, torch_backbone)
        run_folder(f"{phone[0]}x{phone[1]}", big, tmp, onnx, torch_backbone)
        first = first_image_seconds(coco, tmp / "first.npz", cache)
        print(f"`semsearch index` launch -> first described image: {first:.2f} s (graph cached)")


if __name__ == "__main__":
    main()
