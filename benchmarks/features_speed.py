"""Images per second of each backbone, against its bare model's forward pass on the same batches.

For each backbone, times :func:`semsearch.features.describe_files` on the image files
(decoding, preprocessing, forward passes) and, in the same run, the bare
``backbone.model`` on the already preprocessed batches: the ratio says what the file
handling costs. ResNet18 runs with random weights (its ImageNet ones need the internet;
speed does not depend on them); EfficientNet-Lite0 with its pretrained, offline weights.
EfficientNet-Lite0 runs on torch and on ONNX Runtime (the default on the CPU). The models
are built before the clock starts.

Usage::

    python benchmarks/features_speed.py data/coco/images --limit 96 --batch-size 32
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from semsearch.backbones import load_backbone
from semsearch.features import describe_files
from semsearch.common.images import open_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image_dir", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per CPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    paths = sorted(args.image_dir.glob("*.jpg"))[: args.limit]
    print(f"{len(paths)} images, batch {args.batch_size}, workers {args.workers}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for name, runtime in (("resnet18", "torch"), ("efficientnet-lite0", "torch"), ("efficientnet-lite0", "onnx")):
        device = None if runtime == "onnx" else args.device
        backbone = load_backbone(name, pretrained=name != "resnet18", device=device, runtime=runtime)
        describe_files(paths[: args.batch_size], backbone, batch_size=args.batch_size, num_workers=0, progress=False)  # warm up
        start = time.perf_counter()
        vectors, ok, failed = describe_files(paths, backbone, batch_size=args.batch_size,
                                             num_workers=args.workers, progress=False)
        whole = time.perf_counter() - start
        batches = [np.stack([backbone.preprocess(open_image(p)) for p in paths[i : i + args.batch_size]])
                   for i in range(0, len(paths), args.batch_size)]
        start = time.perf_counter()
        for batch in batches:
            backbone.forward(batch)
        bare = time.perf_counter() - start
        print(f"{name + ' ' + runtime:>24}: {len(ok) / whole:6.1f} images/s describe_files, {len(paths) / bare:6.1f} images/s "
              f"bare forward; describe_files takes {whole / bare:.2f}x the forward time ({len(failed)} failed)")


if __name__ == "__main__":
    main()
