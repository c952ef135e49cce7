"""``semsearch classify`` and ``semsearch tags``: what is in the pictures, from their descriptors.

Wired into :mod:`semsearch.cli.commands` with :func:`add_parser` / :func:`run` (classify) and
:func:`add_tags_parser` / :func:`run_tags` (tags); ``semsearch search --tag`` uses
:func:`restrict_to_tag`.

    semsearch classify 19221 802 [--data DIR | --descriptors PKL] [-k 5]
    19221  broccoli 0.878  guacamole 0.031  cauliflower 0.012 ...

    semsearch tags 19221 [--db DB | --model DIR] [--data DIR] [-k 10]
    19221  broccoli 0.88 · cauliflower · zucchini · sprouts · spinach ...
"""
from __future__ import annotations

import argparse
import sys
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


def load_descriptors(descriptors, data):
    """The Descriptors of ``--descriptors``, else of the data folder; on a fresh machine (no folder
    named, none at ./data) the embedded sample's, saying so on stderr, as ``demo``, ``search`` and
    ``serve`` do."""
    import os
    import sys

    from semsearch.descriptors import Descriptors
    from semsearch.paths import ENV_VAR, data_dir, find_data_files

    if descriptors is not None:
        return Descriptors.load(Path(descriptors))
    try:
        return Descriptors.load(find_data_files(data)[1])
    except FileNotFoundError:
        if data is not None or ENV_VAR in os.environ:
            raise
    from semsearch import sample

    loaded = Descriptors.load(sample.descriptors_file())
    ids = sorted(int(i) for i in loaded.ids)
    print(f"semsearch: no data folder at {data_dir(None)}/ (nor ${ENV_VAR}): using the embedded sample's descriptors "
          f"(semsearch.sample: {len(ids)} images, ids {', '.join(map(str, ids[:4]))}, ...)", file=sys.stderr)
    return loaded


def run(args) -> int:
    """Print one line of tags per image; errors are raised as SemsearchError / FileNotFoundError."""
    from semsearch.routes.classifier import ImageNetClassifier

    descriptors = load_descriptors(args.descriptors, args.data)
    classifier = ImageNetClassifier.from_efficientnet_lite0()
    tags = classifier.tags(descriptors.vectors_of(args.image_ids), k=args.k)  # checks D = 1280 first
    for image_id, row in zip(args.image_ids, tags):
        print(f"{image_id}  " + "  ".join(f"{label} {p:.3f}" for label, p in row))
    return 0


# --------------------------------------------------------------------------- tags


def add_tags_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``tags [KEY ...] [--db DB | --model DIR] [--data DIR] [-k 10] [--all]``."""
    p = subparsers.add_parser(
        "tags", help="the tags of images: ImageNet labels merged with GloVe words",
        description="Print each image's tags: the backbone's ImageNet labels it is sure of (with their "
        "probability), then the GloVe words nearest to it. Images of an indexed folder (--db), of a trained "
        "COCO model (--model, descriptors from the data folder), or of the embedded sample (neither). "
        "Without the backbone's classifier the tags are GloVe words, and a warning says why.",
        epilog="examples: semsearch tags 139 19221\n          semsearch tags --db pics.npz --all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("keys", metavar="KEY", nargs="*", help="COCO image ids, or an indexed folder's relative paths")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="DB", type=Path, help="a database made by `semsearch index`")
    where.add_argument("--model", metavar="MODEL_DIR", type=Path, help="a trained model folder (COCO ids)")
    p.add_argument("--data", metavar="DIR", type=Path, help="with --model: the data folder whose descriptors give ImageNet labels")
    p.add_argument("-k", type=positive_int, default=10, help="tags per image (default %(default)s)")
    p.add_argument("--all", action="store_true", help="every image of the database")
    p.set_defaults(run=run_tags)
    return p


def open_tagged(db=None, model_dir=None, data=None):
    """``(database, DatabaseTags)`` of a photo database, a COCO model folder, or the embedded sample (neither)."""
    from semsearch.routes.image_tags import default_descriptors

    if db is not None:
        from semsearch.photos.folder import load_search

        search = load_search(db)
        database, descriptors = search.database, search.descriptors
    else:
        from semsearch.bundle import load_bundle
        from semsearch import sample

        model_dir = model_dir or sample.model_dir()
        database, descriptors = load_bundle(model_dir)[2], default_descriptors(model_dir, data)
    return database, tagged(database, descriptors)


def tagged(database, descriptors=None):
    """The database's :class:`DatabaseTags`, with its note (why no ImageNet labels, if so) printed once to stderr."""
    from semsearch.routes.image_tags import DatabaseTags

    tags = DatabaseTags.for_database(database, descriptors, warn=False)
    if tags.note:
        print(f"semsearch: warning: {tags.note}", file=sys.stderr)
    return tags


def restrict_to_tag(database, tag: str, descriptors=None):
    """``database`` cut down to the images carrying ``tag`` (``semsearch search --tag``); says how many to stderr."""
    from semsearch.routes.tagger import check_tag_query

    restricted = tagged(database, descriptors).restrict(check_tag_query(tag))
    print(f"semsearch: {len(restricted)} of {len(database)} images carry the tag {tag!r}", file=sys.stderr)
    return restricted


def run_tags(args) -> int:
    """Print ``KEY  tag · tag · ...`` per image."""
    from semsearch.errors import InputError

    if bool(args.keys) == args.all:
        raise InputError("give image KEYs or --all (one of them)")
    database, tags = open_tagged(args.db, args.model, args.data)
    if args.all:
        keys = database.keys.tolist()
    elif database.keys.dtype.kind == "U":
        keys = list(args.keys)
    else:
        keys = [_image_id(key) if isinstance(key, str) else key for key in args.keys]
    for key, row in zip(keys, tags.tags_of(keys, k=args.k)):
        print(f"{key}  " + " · ".join(str(t) for t in row), flush=True)
    return 0
