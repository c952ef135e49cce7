"""Command-line parts for photos: ``semsearch index``, ``semsearch search`` and the sample demo.

``semsearch.cli`` adds these with ``add_index_parser(sub)`` / ``add_search_parser(sub)``;
each parser's ``run`` default (:func:`run_index`, :func:`run_search`) does the work, prints
and returns the exit status. :func:`run_sample_demo` is ``semsearch demo`` without a data
folder. Errors are raised (SemsearchError, FileNotFoundError) for the CLI to print as one line.

``semsearch search`` searches, in this order: ``--db DB`` (an indexed folder),
``--model DIR`` (a trained COCO model), ``./.semsearch/photos.npz`` if the current folder was
indexed, else the embedded sample.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

#: Where ``semsearch index FOLDER`` keeps the database unless --db says otherwise (hidden: not indexed).
DEFAULT_DB = Path(".semsearch") / "photos.npz"
SAMPLE_QUERIES = ("a dog", "people skiing down a snowy hill", "a plate of food on a table")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


# --------------------------------------------------------------------------- index


def add_index_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``index FOLDER [--db DB] [--model DIR] [--batch-size N] [--quiet]``."""
    p = subparsers.add_parser(
        "index", help="make a folder of photos searchable (incremental)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find the images under FOLDER (jpg, jpeg, png, webp; heic with pillow-heif), any names, "
        "sub-folders too; describe the new or changed ones (size or mtime) with the model's backbone, "
        "embed them, drop deleted ones, and save the database (default FOLDER/.semsearch/photos.npz). "
        "Broken files are skipped and listed. Needs `pip install 'semsearch[features]'`.",
        epilog='example: semsearch index ~/Pictures && semsearch search "a dog on the beach" --db ~/Pictures/.semsearch/photos.npz',
    )
    p.add_argument("folder", metavar="FOLDER", type=Path)
    p.add_argument("--db", metavar="DB", type=Path, help="database file (default FOLDER/.semsearch/photos.npz)")
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, help="trained model (default: the database's, else the shipped sample model)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_index)
    return p


def run_index(args) -> int:
    from .photos import index_folder

    if not args.folder.expanduser().is_dir():
        raise FileNotFoundError(f"image folder not found: {args.folder}")
    db = args.db or args.folder.expanduser() / DEFAULT_DB
    report = index_folder(args.folder, db, model=args.model, batch_size=args.batch_size,
                          progress=not args.quiet and sys.stderr.isatty())
    _say(f"{db}: {report.summary()}")
    for path, reason in report.failed[:20]:
        print(f"semsearch: warning: skipped {path}: {reason}", file=sys.stderr)
    if len(report.failed) > 20:
        print(f"semsearch: warning: ... and {len(report.failed) - 20} more", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- search


def add_search_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``search [QUERY] [--db DB | --model DIR] [--image FILE] [-k 9] [--paths] [--out PNG | --show]``."""
    p = subparsers.add_parser(
        "search", help="the top-k images for a text (or image) query",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rank the images of an indexed folder (--db), of a trained model's COCO database "
        "(--model), or of the embedded sample (neither) by similarity to QUERY, and print them with "
        "their scores. Queries may be compound: 'dog + beach - grass', '2:dog + sky' (each part's "
        "unit vector, times its weight, summed). --image FILE queries with a picture instead.",
        epilog='examples: semsearch search "a dog"\n          semsearch search "dog + beach - grass" --db pics.npz --paths | xargs open',
    )
    p.add_argument("query", metavar="QUERY", nargs="?", help="text; omit with --image")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="DB", type=Path, help="a database made by `semsearch index`")
    where.add_argument("--model", metavar="MODEL_DIR", type=Path, help="a trained model folder (COCO ids)")
    p.add_argument("--image", metavar="FILE", type=Path, help="query with this image (described with the database's backbone)")
    p.add_argument("-k", type=_positive_int, default=9, help="how many images (default %(default)s)")
    p.add_argument("--paths", action="store_true", help="print only the image files, one per line (for xargs)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--show", action="store_true", help="show the images in a window")
    shown.add_argument("--out", metavar="PNG", type=Path, help="save the images as a grid of thumbnails")
    p.add_argument("--images", metavar="DIR", type=Path, help="with --model: the COCO image folder")
    p.set_defaults(run=run_search)
    return p


def _open_target(args):
    """(ImageDatabase, image folder, 'photos' | 'coco', model folder or None, what) for the search."""
    from .bundle import load_bundle

    db = args.db if args.db is not None else (DEFAULT_DB if args.model is None and DEFAULT_DB.is_file() else None)
    if db is not None:
        from .photos import load_search

        database = load_search(db)
        return database, database.root, "photos", None, str(db)
    if args.model is not None:
        _, _, database = load_bundle(args.model)
        if args.images is not None and not args.images.is_dir():
            raise FileNotFoundError(f"image folder not found: {args.images}")
        return database, args.images, "coco", args.model, str(args.model)
    from . import sample

    _, _, database = load_bundle(sample.model_dir())
    return database, sample.image_dir(), "coco", sample.model_dir(), "the embedded sample"


def _image_vector(args, database, kind, model_dir):
    from .photos import image_query, load_model

    if kind == "coco":  # give the COCO database what load_search gives a photo one
        database.model, _, _, _, database.backbone = load_model(model_dir, with_text=False)
    return image_query(args.image, database)


def run_search(args) -> int:
    from .errors import InputError

    if (args.query is None) == (args.image is None):
        raise InputError("give a text QUERY or --image FILE (one of them)")
    database, image_dir, kind, model_dir, what = _open_target(args)
    query = args.query if args.image is None else _image_vector(args, database, kind, model_dir)
    keys, scores = database.query(query, k=args.k)
    shown = args.query if args.image is None else str(args.image)
    if args.paths:
        for key in keys:
            _say(str(_file_of(key, image_dir)))
    else:
        _say(f'top {len(keys)} of {len(database)} images in {what} for "{shown}":', "  rank   score   image")
        for rank, (key, score) in enumerate(zip(keys, scores), start=1):
            _say(f"  {rank:4d}  {float(score):6.3f}   {key}")
    if args.out or args.show:
        _grid(keys, scores, shown, image_dir, args.out)
    return 0


def _file_of(key, image_dir) -> Path:
    if isinstance(key, str):
        return Path(image_dir) / key
    from .display import find_local_image

    return (find_local_image(int(key), image_dir) if image_dir else None) or Path(f"{int(key):012d}.jpg")


def _grid(keys, scores, title, image_dir, out: Optional[Path]) -> None:
    import matplotlib

    if out is not None:
        matplotlib.use("Agg")  # a file only: no window, works without a display
    import matplotlib.pyplot as plt

    from .display import save_figure, show_images

    fig = show_images(list(keys), scores, query=title, image_dir=image_dir)
    if out is not None:
        _say(f"wrote {save_figure(fig, out)}")
    else:
        plt.show()
    plt.close(fig)


# --------------------------------------------------------------------------- demo on the sample


def run_sample_demo(args) -> int:
    """``semsearch demo`` with no data folder: train on the embedded sample, score, search, write grids.

    Uses ``args.out`` (folder), ``args.query`` (list or None), ``args.k`` and ``args.seed``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import sample
    from .bundle import save_bundle
    from .database import ImageDatabase
    from .display import save_figure, show_images
    from .evaluate import evaluate
    from .workflow import format_scores, split, train_model

    data = sample.load()
    text_encoder = sample.text_encoder()
    _say(f"no data folder: using the embedded sample ({len(data.image_ids)} COCO images, "
         f"{len(data.captions.caption_ids)} captions, {data.descriptors.dim}-d EfficientNet-Lite0 descriptors)")
    train_ids, val_ids = split(data, 0.2, args.seed)
    _say(f"training on {len(train_ids)} images, validating on {len(val_ids)} (default settings) ...")
    model, history = train_model(data, text_encoder, train_ids, val_ids, seed=args.seed, progress=sys.stderr.isatty())
    _say(f"after {len(history.train_loss)} epochs: train loss {history.train_loss[-1]:.4f}, "
         f"validation triple accuracy {history.val_accuracy[-1]:.3f}")
    scores = evaluate(model, data, text_encoder, val_ids)
    _say(format_scores(scores, "validation"))
    database = ImageDatabase.build(model, data.descriptors, text_encoder)
    out = Path(args.out)
    model_dir = save_bundle(out / "model", model, text_encoder, database,
                            info={"backbone": "efficientnet-lite0", "trained_on": "semsearch sample", "seed": args.seed,
                                  "validation_image_ids": [int(i) for i in val_ids], "validation_scores": scores.as_dict()})
    for n, query in enumerate(args.query or SAMPLE_QUERIES, start=1):
        keys, sims = database.query(query, k=args.k)
        _say(f'\n"{query}"', "  rank    coco_id   score")
        for rank, (key, score) in enumerate(zip(keys, sims), start=1):
            _say(f"  {rank:4d}  {int(key):9d}  {float(score):6.3f}")
        captions = [data.captions.captions_of(int(k))[0].strip() for k in keys]
        _say(f'  top hit {int(keys[0])}: "{captions[0]}"')
        fig = show_images(keys, sims, captions=captions, query=query, image_dir=sample.image_dir(), ncols=min(args.k, 3))
        slug = "".join(c if c.isalnum() else "-" for c in query.lower()).strip("-")[:60]
        _say(f"  grid: {save_figure(fig, out / f'{n}-{slug}.png')}")
        plt.close(fig)
    _say(f'\nnext: semsearch search "your words" --model {model_dir} --out grid.png')
    return 0
