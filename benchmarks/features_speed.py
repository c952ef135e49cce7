"""How many images per second does ResNet18 descriptor extraction manage?

Runs ``semsearch.features.extract_features`` on every image of a folder, with random
weights (speed does not depend on them, and nothing is downloaded), writing to a
temporary file. The model is built before the clock starts; worker start-up, image
decoding, the forward passes and the final pickle write are timed.

Usage::

    python benchmarks/features_speed.py data/coco/images --batch-size 32 --device cpu
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from semsearch.features import extract_features, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image_dir", type=Path)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes (default: min(4, cpu count))")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time this many runs, report the best")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = min(4, os.cpu_count() or 1)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    load_model(None, args.device)  # build (and cache) the model outside the timing
    rates = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = extract_features(args.image_dir, Path(tmp) / "descriptors.pkl", weights=None,
                                      batch_size=args.batch_size, num_workers=args.workers,
                                      device=args.device, progress=False)
            seconds = time.perf_counter() - start
        rates.append(result.n_new / seconds)
        print(f"{result.n_new} images in {seconds:.2f} s: {rates[-1]:.1f} images/s "
              f"({len(result.failed)} failed)")
    print(f"best: {max(rates):.1f} images/s (batch {args.batch_size}, workers {args.workers}, "
          f"device {args.device})")


if __name__ == "__main__":
    main()
