"""``semsearch features``: describe a folder of COCO images into a descriptor file.

The parser and its runner; :func:`semsearch.features.extract_features` does the work.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from semsearch.backbones import BACKBONES, DEFAULT_BACKBONE
from semsearch.cli.argtypes import non_negative_int, output_path, positive_int
from semsearch.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``semsearch features IMAGES_DIR --out FILE [--backbone ...]`` to ``subparsers``."""
    p = subparsers.add_parser(
        "features", help="CNN descriptors of a folder of COCO images",
        description="Describe every image <id>.jpg of a folder with a CNN backbone and save the "
        "descriptors (with a record of the backbone) to a file; images it already has are skipped, "
        "so an interrupted run resumes. EfficientNet-Lite0 runs on ONNX Runtime (`pip install 'semsearch[photos]'`), "
        "ResNet18 and --device cuda on torch (`pip install 'semsearch[features]'`).",
        epilog="example: semsearch features data/coco/images --out data/descriptors/effnet_mine.npz",
    )
    p.add_argument("images_dir", type=Path, help="folder of COCO images named <id>.jpg")
    p.add_argument("--out", type=output_path, required=True, help="descriptor file to write or extend")
    p.add_argument("--backbone", choices=BACKBONES, default=DEFAULT_BACKBONE,
                   help="the network (default %(default)s: pretrained, works offline; resnet18 downloads its weights)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=None, help="image decoding threads (default: one per cpu)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: the cpu for efficientnet-lite0 on ONNX Runtime, else cuda if available)")
    p.add_argument("--no-pretrained", action="store_true", help="random weights instead of ImageNet ones (for tests)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Do ``semsearch features``: print what was done, warn about skipped images; 0 on success."""
    if not Path(args.images_dir).is_dir():
        raise FileNotFoundError(f"image folder not found: {args.images_dir}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}")
    from semsearch.features import extract_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the skipped images are listed below
        result = extract_features(
            args.images_dir, args.out, backbone=args.backbone, pretrained=not args.no_pretrained,
            batch_size=args.batch_size, num_workers=args.workers, device=args.device,
            progress=sys.stderr.isatty(),
        )
    print(f"{result.path}: {result.n_new} new {args.backbone} descriptors, {result.n_skipped_existing} "
          f"already there, {len(result.failed)} images could not be read")
    for path, reason in result.failed[:20]:
        print(f"semsearch: warning: skipped {path}: {reason}", file=sys.stderr)
    if len(result.failed) > 20:
        print(f"semsearch: warning: ... and {len(result.failed) - 20} more", file=sys.stderr)
    return 0
