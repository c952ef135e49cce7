"""``semsearch classify``: ImageNet tags of images from their stored EfficientNet-Lite0 descriptors.

Wired into :mod:`semsearch.cli.commands` with :func:`add_parser` and :func:`run`.

    semsearch classify 19221 802 [--data DIR | --descriptors PKL] [-k 5]
    19221  broccoli 0.878  guacamole 0.031  cauliflower 0.012 ...
"""
from __future__ import annotations

import argparse
from pathlib import Path

from semsearch.common.checks import check_image_id
from semsearch.cli.argtypes import positive_int


def _image_id(text: str) -> int:
    try:
        return check_image_id(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``classify`` to an argparse subparsers object."""
    p = subparsers.add_parser("classify", help="ImageNet tags of images, from their EfficientNet-Lite0 descriptors",
                              description=__doc__.splitlines()[0])
    p.add_argument("image_ids", metavar="IMAGE_ID", nargs="+", type=_image_id, help="COCO image ids")
    p.add_argument("--data", metavar="DIR", type=Path, help="data folder (default $SEMSEARCH_DATA or ./data)")
    p.add_argument("--descriptors", metavar="PKL", type=Path, help="1280-d EfficientNet-Lite0 descriptor pickle")
    p.add_argument("-k", type=positive_int, default=5, help="tags per image (default %(default)s)")
    p.set_defaults(run=run)
    return p


def descriptor_file(descriptors, data) -> Path:
    """``--descriptors``, else the data folder's; on a fresh machine (no folder named, none at
    ./data) the embedded sample's, saying so on stderr, as ``demo``, ``search`` and ``serve`` do."""
    import os
    import sys

    from semsearch.paths import ENV_VAR, data_dir
    from semsearch.workflow import find_data_files

    if descriptors is not None:
        return Path(descriptors)
    try:
        return find_data_files(data)[1]
    except FileNotFoundError:
        if data is not None or ENV_VAR in os.environ:
            raise
    from semsearch import sample
    from semsearch.descriptors import Descriptors

    ids = sorted(int(i) for i in Descriptors.load(sample.descriptors_file()).ids)
    print(f"semsearch: no data folder at {data_dir(None)}/ (nor ${ENV_VAR}): using the embedded sample's descriptors "
          f"(semsearch.sample: {len(ids)} images, ids {', '.join(map(str, ids[:4]))}, ...)", file=sys.stderr)
    return sample.descriptors_file()


def run(args) -> int:
    """Print one line of tags per image; errors are raised as SemsearchError / FileNotFoundError."""
    from semsearch.descriptors import Descriptors
    from semsearch.routes.classifier import ImageNetClassifier

    descriptors = Descriptors.load(descriptor_file(args.descriptors, args.data))
    classifier = ImageNetClassifier.from_efficientnet_lite0()
    tags = classifier.tags(descriptors.vectors_of(args.image_ids), k=args.k)  # checks D = 1280 first
    for image_id, row in zip(args.image_ids, tags):
        print(f"{image_id}  " + "  ".join(f"{label} {p:.3f}" for label, p in row))
    return 0
