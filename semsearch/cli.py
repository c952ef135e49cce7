"""The ``semsearch`` command line: ``semsearch <command> --help`` for each command.

=========  ==================================================================
features   ResNet18 descriptors of a folder of images (needs torch)
train      train a model on captions + descriptors, save it as a folder
search     the top-k images for a text query, printed and as a picture grid
eval       Recall@K, median rank and MRR of a saved model, or k-fold
demo       train, evaluate and search the data folder in one go
fetch      download the COCO captions and the course's descriptors
=========  ==================================================================

This module only parses arguments, calls the library and prints. Errors a user can cause
(a missing file, an unknown id, a query with no known word, a bad argument) end with one
line ``semsearch: error: ...`` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .paths import ENV_VAR, data_dir

#: Queries the demo runs when none is given; all fit the 239 images of the shared data.
DEMO_QUERIES = ("a kitchen with a stove and a sink", "people skiing down a snowy hill", "a baseball player swinging a bat")
DEFAULT_MODEL_DIR = "semsearch-model"
DEFAULT_DEMO_DIR = "semsearch-demo"

_EPILOG_DATA = (
    f"The data folder is --data DIR, else ${ENV_VAR}, else ./data (layout: data/README.md). "
    "--captions and --descriptors default to the files found there."
)


def _wrap(*paragraphs: str) -> str:
    """Paragraphs wrapped to 78 columns (the help formatter keeps our line breaks)."""
    return "\n\n".join(textwrap.fill(p, 78) for p in paragraphs)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like the rest of the command's errors."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"semsearch: error: {message} (see: {self.prog} --help)\n")


# --------------------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


# --------------------------------------------------------------------------- the parser


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path, help="COCO caption files (merged)")
    p.add_argument("--descriptors", metavar="PKL", type=Path, help="descriptor pickle {coco_id: (1, D) array}")
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")


def _add_text_encoder_option(p) -> None:
    from .encoders import ENCODERS

    p.add_argument(
        "--text-encoder", choices=ENCODERS, default="idf",
        help="se_text: IDF-, SIF- or mean-weighted GloVe, or MiniLM (needs the minilm extra) (default %(default)s)",
    )


def _add_training_options(p: argparse.ArgumentParser) -> None:
    from .train import DEFAULTS

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"], help="passes over the captions (default %(default)s)")
    g.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"], help="triples per step (default %(default)s)")
    g.add_argument("--learning-rate", type=_positive_float, default=DEFAULTS["learning_rate"], help="default %(default)s")
    g.add_argument("--momentum", type=_non_negative_float, default=DEFAULTS["momentum"], help="SGD momentum (default %(default)s)")
    g.add_argument("--margin", type=_non_negative_float, default=DEFAULTS["margin"], help="ranking-loss margin (default %(default)s)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default=DEFAULTS["optimizer"], help="default %(default)s")
    g.add_argument(
        "--negatives", choices=("random", "hard"), default=DEFAULTS["negatives"],
        help="how bad images are drawn (default %(default)s)",
    )
    g.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the triples (default %(default)s)")
    _add_text_encoder_option(g)


def build_parser() -> argparse.ArgumentParser:
    """The ``semsearch`` argument parser with all subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="semsearch",
        description=_wrap("Semantic image search over MS-COCO: type a sentence, get the matching images."),
        epilog="Start with `semsearch demo --data DIR`; `semsearch COMMAND --help` explains each command.",
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"semsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "features", help="ResNet18 descriptors of a folder of images (needs torch)", formatter_class=fmt,
        description=_wrap("Compute a 512-d ResNet18 descriptor per image of IMAGES_DIR (files named by COCO id) "
        "and write them as a pickle {coco_id: (1, 512) array}. An existing pickle is extended: "
        "images it already has are skipped. Needs `pip install semsearch[features]`."),
        epilog="example: semsearch features data/coco/images --out data/descriptors/resnet18_mine.pkl",
    )
    p.add_argument("images_dir", metavar="IMAGES_DIR", type=Path)
    p.add_argument("--out", metavar="PKL", type=Path, required=True, help="descriptor pickle to write or extend")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="images per forward pass (default %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="image-decoding processes (default: a few)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument("--no-pretrained", action="store_true", help="random weights instead of ImageNet ones (for tests)")
    p.set_defaults(run=_cmd_features)

    p = sub.add_parser(
        "train", help="train a model and save it as a folder", formatter_class=fmt,
        description=_wrap("Fit the text embedder (IDF over all captions), join captions with descriptors, split "
        "the images, train the image embedder, print each epoch and the validation Recall@K, and "
        "save MODEL_DIR/{model.npz,text.json,database.npz,bundle.json}; the database holds every "
        "joined image.", _EPILOG_DATA),
        epilog="example: semsearch train --captions data/coco/annotations/captions_train2014.json "
        "--descriptors data/resnet18_features.pkl --out my-model",
    )
    _add_data_options(p)
    p.add_argument("--out", metavar="MODEL_DIR", type=Path, default=Path(DEFAULT_MODEL_DIR), help="default %(default)s")
    p.add_argument(
        "--validation-fraction", type=_fraction, default=0.2,
        help="share of images held out for validation; 0 trains on all (default %(default)s)",
    )
    _add_training_options(p)
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser(
        "search", help="the top-k images for a text query", formatter_class=fmt,
        description=_wrap("Rank the images of a saved model's database by similarity to QUERY and print "
        "'rank coco_id score' lines; optionally show them or save them as a picture grid."),
        epilog='example: semsearch search "a dog catching a frisbee" --model my-model -k 9 --out dogs.png',
    )
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, default=Path(DEFAULT_MODEL_DIR), help="default %(default)s")
    p.add_argument("-k", type=_positive_int, default=9, help="how many images (default %(default)s)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--show", action="store_true", help="show the images in a window")
    shown.add_argument("--out", metavar="PNG", type=Path, help="save the images as a grid")
    p.add_argument("--images", metavar="DIR", type=Path, help="image folder (default DATA/coco/images)")
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path, help="caption files: print a caption per hit, download missing images")
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")
    p.set_defaults(run=_cmd_search)

    p = sub.add_parser(
        "eval", help="Recall@K, median rank and MRR", formatter_class=fmt,
        description=_wrap("With --model: score a saved model on the images of the given data (its own "
        "validation images when the model recorded them and they are there, else all). Without: "
        "train and score K-fold (--folds) and print mean ± std. Chance levels are printed beside "
        "each score.", _EPILOG_DATA),
        epilog="examples: semsearch eval --model my-model\n          semsearch eval --folds 5 --epochs 20",
    )
    _add_data_options(p)
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, help="a saved model (else train K-fold)")
    p.add_argument("--folds", type=_positive_int, default=5, help="K for K-fold, without --model (default %(default)s)")
    p.add_argument("--all", action="store_true", help="with --model: score on all images, not its validation images")
    _add_training_options(p)
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser(
        "demo", help="train, evaluate and search the data folder in one go", formatter_class=fmt,
        description=_wrap("Find the caption files and a descriptor pickle in the data folder, train with the "
        "default settings on a split, print validation Recall@K against chance, build the database, "
        "run example queries, print their top images with the top hit's caption, and write one PNG "
        "grid per query and the trained model (OUT/model) to --out."),
        epilog="example: semsearch demo --data ../shared/data --out /tmp/demo",
    )
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")
    p.add_argument("--out", metavar="DIR", type=Path, default=Path(DEFAULT_DEMO_DIR), help="default %(default)s")
    p.add_argument("--query", action="append", metavar="TEXT", help="a query to run (repeatable; default: three examples)")
    p.add_argument("-k", type=_positive_int, default=6, help="images per query (default %(default)s)")
    p.add_argument(
        "--max-images", type=_positive_int, default=5000,
        help="train on at most this many images, drawn at random, to stay quick (default %(default)s)",
    )
    p.add_argument("--no-download", action="store_true", help="never download images missing from DATA/coco/images")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    _add_text_encoder_option(p)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser(
        "fetch", help="download the COCO captions and the course's descriptors", formatter_class=fmt,
        description=_wrap("Download into the data folder, checking pinned checksums: the COCO 2014 and 2017 "
        "caption files (from the official annotation zips, about 250 MB each; only the captions "
        "are kept) and the course's resnet18_features.pkl (about 175 MB) with its "
        "captions_train2014.json. Files already there are not downloaded again."),
        epilog="example: semsearch fetch --data data --only captions2017",
    )
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")
    p.add_argument(
        "--only", nargs="+", choices=("captions2014", "captions2017", "resnet18"), metavar="PART",
        help="captions2014, captions2017 and/or resnet18 (default: all)",
    )
    p.add_argument("--force", action="store_true", help="download again even if the files are there")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_fetch)
    return parser


# --------------------------------------------------------------------------- helpers


def _say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def _data_files(args) -> tuple:
    """--captions / --descriptors, each defaulting to what the data folder has."""
    if args.captions and args.descriptors:
        return list(args.captions), args.descriptors
    from .workflow import find_data_files

    found_captions, found_descriptors = find_data_files(data_dir(args.data))
    return list(args.captions or found_captions), args.descriptors or found_descriptors


def _training_options(args) -> dict:
    return dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        margin=args.margin,
        optimizer=args.optimizer,
        negatives=args.negatives,
    )


def _load(args, text_embedder=None):
    from .workflow import describe_join, load_data

    caption_files, descriptor_file = _data_files(args)
    _say(f"captions:    {', '.join(str(c) for c in caption_files)}", f"descriptors: {descriptor_file}")
    data, embedder = load_data(
        caption_files, descriptor_file, text_embedder, text_encoder=getattr(args, "text_encoder", "idf")
    )
    _say(f"joined:      {describe_join(data)}")
    return data, embedder, caption_files, descriptor_file


def _pyplot(show: bool):
    import matplotlib

    if not show:
        matplotlib.use("Agg")  # files only: no window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _image_dir(images: Optional[Path], data: Optional[Path]) -> Optional[Path]:
    if images is not None:
        if not images.is_dir():
            raise FileNotFoundError(f"image folder not found: {images}")
        return images
    default = data_dir(data) / "coco" / "images"
    return default if default.is_dir() else None


def _slug(text: str, n: int) -> str:
    return f"{n}-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "query")


def _print_ranking(ids, scores, captions=None) -> None:
    _say("  rank    coco_id   score" + ("   caption" if captions else ""))
    for rank, (image_id, score) in enumerate(zip(ids, scores), start=1):
        line = f"  {rank:4d}  {int(image_id):9d}  {float(score):6.3f}"
        if captions:
            line += f"   {captions[rank - 1]}"
        _say(line)


# --------------------------------------------------------------------------- commands


def _cmd_features(args) -> int:
    if not args.images_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {args.images_dir}")
    from .features import extract_features  # needs torch: imported only for this command

    result = extract_features(
        args.images_dir,
        args.out,
        weights=None if args.no_pretrained else "IMAGENET1K_V1",
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        progress=sys.stderr.isatty(),
    )
    _say(
        f"{result.path}: {result.n_new} new descriptors, {result.n_skipped_existing} already there, "
        f"{len(result.failed)} images could not be read"
    )
    for path, reason in result.failed[:20]:
        print(f"semsearch: warning: skipped {path}: {reason}", file=sys.stderr)
    if len(result.failed) > 20:
        print(f"semsearch: warning: ... and {len(result.failed) - 20} more", file=sys.stderr)
    return 0


def _cmd_train(args) -> int:
    from .bundle import save_bundle
    from .database import ImageDatabase
    from .evaluate import evaluate
    from .workflow import format_history, format_scores, split, train_model

    data, embedder, caption_files, descriptor_file = _load(args)
    train_ids, val_ids = split(data, args.validation_fraction, args.seed)
    options = _training_options(args)
    held_out = f", validating on {len(val_ids)}" if val_ids is not None else " (no validation)"
    _say(f"training on {len(train_ids)} images{held_out}: " + ", ".join(f"{k}={v}" for k, v in options.items()))
    model, history = train_model(data, embedder, train_ids, val_ids, seed=args.seed, progress=sys.stderr.isatty(), **options)
    _say(format_history(history))
    info = dict(
        captions=[str(c) for c in caption_files],
        descriptors=str(descriptor_file),
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        training=options,
        validation_image_ids=[int(i) for i in val_ids] if val_ids is not None else [],
    )
    if val_ids is not None:
        scores = evaluate(model, data, embedder, val_ids)
        _say(format_scores(scores, "validation"))
        info["validation_scores"] = scores.as_dict()
    database = ImageDatabase.build(model, data.descriptors, embedder)
    save_bundle(args.out, model, embedder, database, info=info)
    _say(f"saved {args.out}/ (model.npz, text.json, database.npz with {len(database)} images, bundle.json)")
    return 0


def _cmd_search(args) -> int:
    from .bundle import load_bundle

    _, _, database = load_bundle(args.model)
    ids, scores = database.query(args.query, k=args.k)
    coco = None
    if args.captions:
        from .coco import CocoCaptions

        coco = CocoCaptions.load(*args.captions)
    captions = [_first_caption(coco, i) for i in ids] if coco is not None else None
    _say(f'top {len(ids)} of {len(database)} images for "{args.query}":')
    _print_ranking(ids, scores, captions)
    if args.show or args.out:
        from .display import save_figure, show_images

        plt = _pyplot(args.show)
        urls = {int(i): coco.coco_url(i) for i in ids if coco.coco_url(i)} if coco is not None else None
        fig = show_images(
            ids, scores, captions=captions, query=args.query, image_dir=_image_dir(args.images, args.data), urls=urls
        )
        if args.out:
            _say(f"wrote {save_figure(fig, args.out)}")
        else:
            plt.show()
        plt.close(fig)
    return 0


def _first_caption(coco, image_id) -> str:
    from .coco import UnknownIdError

    try:
        texts = coco.captions_of(image_id)
    except UnknownIdError:
        return ""
    return texts[0].strip() if texts else ""


def _cmd_eval(args) -> int:
    from .workflow import cross_validate, format_cross_validation, format_scores

    if args.model is None:
        data, embedder, _, _ = _load(args)
        options = _training_options(args)
        _say(f"training {args.folds} models, one per fold: " + ", ".join(f"{k}={v}" for k, v in options.items()))
        folds = cross_validate(data, embedder, args.folds, seed=args.seed, progress=sys.stderr.isatty(), **options)
        for k, s in enumerate(folds, start=1):
            _say(f"  fold {k}: " + "  ".join(f"R@{n} {v:.3f}" for n, v in s.recall.items()) + f"  MRR {s.mean_reciprocal_rank:.3f}")
        _say(format_cross_validation(folds))
        return 0

    import numpy as np

    from .bundle import load_bundle, read_info
    from .evaluate import evaluate

    model, embedder, _ = load_bundle(args.model)
    data, _, _, _ = _load(args, text_embedder=embedder)
    if model.input_dim != data.descriptors.dim:
        raise ValueError(f"the model takes {model.input_dim}-d descriptors, the descriptor file has {data.descriptors.dim}-d")
    val_ids = np.array(read_info(args.model)["info"].get("validation_image_ids", []), dtype=np.int64)
    have = np.isin(val_ids, data.image_ids)
    if not args.all and len(val_ids) and have.all():
        ids, title = val_ids, "the model's validation images"
    else:
        ids, title = data.image_ids, "all images (training images included)"
        if not args.all and len(val_ids):
            _say(f"note: {int((~have).sum())} of the model's {len(val_ids)} validation images are not in this data")
    _say(format_scores(evaluate(model, data, embedder, ids), title))
    return 0


def _cmd_demo(args) -> int:
    from .bundle import save_bundle
    from .database import ImageDatabase
    from .display import save_figure, show_images
    from .evaluate import evaluate
    from .workflow import describe_join, find_data_files, format_scores, load_data, split, subsample, train_model

    root = data_dir(args.data)
    caption_files, descriptor_file = find_data_files(root)
    _say(
        f"data folder: {root}",
        f"captions:    {', '.join(c.name for c in caption_files)}",
        f"descriptors: {descriptor_file.relative_to(root) if descriptor_file.is_relative_to(root) else descriptor_file}",
    )
    data, embedder = load_data(caption_files, descriptor_file, text_encoder=args.text_encoder)
    _say(f"joined:      {describe_join(data)}")
    if len(data.image_ids) > args.max_images:
        data = subsample(data, args.max_images, args.seed)
        _say(f"using {args.max_images} of them, drawn at random (--max-images)")

    train_ids, val_ids = split(data, 0.2, args.seed)
    _say(f"\ntraining on {len(train_ids)} images, validating on {len(val_ids)} (default settings) ...")
    model, history = train_model(data, embedder, train_ids, val_ids, seed=args.seed, progress=sys.stderr.isatty())
    _say(
        f"after {len(history.train_loss)} epochs: train loss {history.train_loss[-1]:.4f}, "
        f"validation triple accuracy {history.val_accuracy[-1]:.3f}"
    )
    scores = evaluate(model, data, embedder, val_ids)
    _say(format_scores(scores, "validation"))

    database = ImageDatabase.build(model, data.descriptors, embedder)
    model_dir = save_bundle(
        args.out / "model", model, embedder, database,
        info=dict(captions=[str(c) for c in caption_files], descriptors=str(descriptor_file), seed=args.seed,
                  validation_image_ids=[int(i) for i in val_ids], validation_scores=scores.as_dict()),
    )
    _say(f"database:    {len(database)} images embedded; model saved to {model_dir}/")

    plt = _pyplot(show=False)
    image_dir = _image_dir(None, root)
    for n, query in enumerate(args.query or DEMO_QUERIES, start=1):
        ids, sims = database.query(query, k=args.k)
        captions = [_first_caption(data.captions, i) for i in ids]
        _say(f'\n"{query}"')
        _print_ranking(ids, sims)
        _say(f'  top hit {int(ids[0])}: "{captions[0]}"')
        urls = None if args.no_download else {int(i): data.captions.coco_url(i) for i in ids if data.captions.coco_url(i)}
        fig = show_images(ids, sims, captions=captions, query=query, image_dir=image_dir, urls=urls, ncols=min(args.k, 3))
        _say(f"  grid: {save_figure(fig, args.out / (_slug(query, n) + '.png'))}")
        plt.close(fig)
    _say(f'\nnext: semsearch search "your words" --model {model_dir} --out grid.png')
    return 0


def _cmd_fetch(args) -> int:
    from .fetch import DEFAULT_WHAT, fetch

    root = data_dir(args.data)
    what = tuple(args.only or DEFAULT_WHAT)
    _say(f"fetching {', '.join(what)} into {root}/ (files already there are kept)")
    paths = fetch(root, what=what, progress=not args.quiet, force=args.force)
    for path in paths:
        _say(f"  {path}  ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


# --------------------------------------------------------------------------- entry point

#: Errors a user can cause: reported in one line, exit status 2 (not a traceback).
def _user_errors() -> tuple:
    from .fetch import FetchError

    return (OSError, ValueError, KeyError, ImportError, FetchError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``semsearch`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("semsearch: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str) else str(e)
        message = " ".join(message.split()) or type(e).__name__
        print(f"semsearch: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
