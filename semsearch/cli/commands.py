"""The ``semsearch`` command line: ``semsearch <command> --help`` for each command.

=========  ==================================================================
features   CNN descriptors of a folder of images (:mod:`semsearch.features`)
train      train a model on captions + descriptors, save it as a folder
index      make a folder of photos searchable (:mod:`semsearch.cli.photos`)
search     the top-k images for a text or image query (:mod:`semsearch.cli.photos`)
eval       Recall@K, median rank and MRR of a saved model, or k-fold
demo       train, evaluate and search the data folder (or the shipped sample)
serve      a web page to search with (:mod:`semsearch.web.serve`)
classify   ImageNet tags of images from their descriptors (:mod:`semsearch.cli.classify`)
tags       the tags of images: ImageNet labels merged with GloVe words (:mod:`semsearch.cli.classify`)
fetch      download the COCO captions and the course's descriptors
grade      grade team notebooks: checks and end-to-end scores (:mod:`semsearch.cli.grade`)
=========  ==================================================================

This module only parses arguments, calls the library (mostly :mod:`semsearch.workflow`) and
prints. The library's own errors (:class:`~semsearch.errors.SemsearchError`), a missing or
unwritable file and a bad argument end with one line ``semsearch: error: ...`` on stderr and
exit status 2; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional, Sequence

from semsearch import __version__
from semsearch.cli.argtypes import finite_float, integer, output_path, positive_int
from semsearch.cli.output import print_ranking, say
from semsearch.errors import SemsearchError
from semsearch.paths import ENV_VAR, data_dir

#: Queries the demo runs when none is given; all fit the 239 images of the shared data.
DEMO_QUERIES = ("a kitchen with a stove and a sink", "people skiing down a snowy hill", "a baseball player swinging a bat")
DEFAULT_MODEL_DIR = "semsearch-model"
DEFAULT_DEMO_DIR = "semsearch-demo"
#: Errors a user can cause: one line and exit status 2. Anything else is a bug: a traceback.
USER_ERRORS = (SemsearchError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
_DATA_HELP = f"data folder (default ${ENV_VAR} or ./data)"


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, 78) for p in paragraphs)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like the rest of the command's errors."""

    def error(self, message: str):
        self.exit(2, f"semsearch: error: {message} (see: {self.prog} --help)\n")


def _add_command(sub, name: str, summary: str, description: str, example: str, run):
    p = sub.add_parser(name, help=summary, description=_wrap(description), epilog=f"example: {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=run)
    return p


def _add_data_options(p) -> None:
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path, help="COCO caption files (merged)")
    p.add_argument("--descriptors", metavar="PKL", type=Path, help="descriptor pickle {coco_id: (1, D) array}")
    p.add_argument("--data", metavar="DIR", type=Path, help=_DATA_HELP)


def _add_text_encoder_option(p) -> None:
    from semsearch.encoders import ENCODERS

    p.add_argument("--text-encoder", choices=ENCODERS, default="idf",
                   help="se_text: IDF-, SIF- or mean-weighted GloVe, or MiniLM (extra [minilm]) (default %(default)s)")


def _add_glove_option(p) -> None:
    p.add_argument("--glove", metavar="PATH", type=Path,
                   help="GloVe / word2vec text file of any dimension, or the course's .zip of one (e.g. "
                        "glove.6B.200d.txt.w2v.zip from `semsearch fetch --only glove200`); the model's output size "
                        "follows it (default: the packaged GloVe-50)")


def _glove(args):
    """The word vectors of --glove, or None (the packaged GloVe-50)."""
    from semsearch.glove import load_glove

    return load_glove(args.glove) if getattr(args, "glove", None) else None


def _add_config_options(p, chosen: Optional[str]) -> None:
    """One flag per :class:`TrainConfig` field, with its default and help.

    Only for the command being run (``chosen``; None: all): importing the training code loads
    MyGrad, which would slow down every other command, ``search`` included.
    """
    if chosen not in (p.prog.split()[-1], None):
        return
    from semsearch.training import TrainConfig

    g = p.add_argument_group("training (semsearch.training.TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        kind = {"int": integer, "float": finite_float}.get(str(f.type), str)  # checked, not coerced
        g.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default, choices=f.metadata.get("choices"),
                       help=f"{f.metadata['help']} (default %(default)s)")
    _add_text_encoder_option(g)


def _config(args):
    from semsearch.training import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


#: Subcommands whose parser lives beside their code: name -> (module, its add_parser, one-line help).
ELSEWHERE = {
    "features": ("semsearch.cli.features", "add_parser", "CNN descriptors of a folder of COCO images"),
    "index": ("semsearch.cli.photos", "add_index_parser", "make a folder of photos searchable (incremental)"),
    "duplicates": ("semsearch.cli.duplicates", "add_parser", "groups of duplicate photos in an indexed folder (exact and near)"),
    "search": ("semsearch.cli.photos", "add_search_parser", "the top-k images for a text (or image) query"),
    "serve": ("semsearch.web.serve", "add_parser", "a web page to search with (extra [web])"),
    "classify": ("semsearch.cli.classify", "add_parser", "ImageNet tags of images, from their EfficientNet-Lite0 descriptors"),
    "tags": ("semsearch.cli.classify", "add_tags_parser", "the tags of images: ImageNet labels merged with GloVe words"),
    "fetch": ("semsearch.fetch", "add_parser", "download the COCO captions and the course's descriptors"),
    "grade": ("semsearch.cli.grade", "add_parser", "grade team notebooks (runs their code): checks, end-to-end scores, one report"),
}


def _add_elsewhere(sub, names, chosen: Optional[str]) -> None:
    """The chosen command's real parser (imported from its module); for the others, their help line only."""
    import importlib

    for name in names:
        module, function, summary = ELSEWHERE[name]
        if chosen in (name, None):
            getattr(importlib.import_module(module), function)(sub)
        else:
            sub.add_parser(name, help=summary)


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The ``semsearch`` argument parser; with ``argv``, only the chosen command's parser is complete."""
    chosen = next((a for a in argv if not a.startswith("-")), "") if argv is not None else None
    parser = _Parser(prog="semsearch", description="Semantic image search: type a sentence, get the matching images.",
                     epilog="Start with `semsearch demo`; `semsearch COMMAND --help` explains each command.")
    parser.add_argument("--version", action="version", version=f"semsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    _add_elsewhere(sub, ("features",), chosen)
    p = _add_command(sub, "train", "train a model and save it as a folder",
                     "Fit the text encoder over all captions, join captions with descriptors, split the images, train, "
                     "print each epoch and the validation Recall@K, and save MODEL_DIR (model.npz, text.json, database.npz "
                     "with every joined image, bundle.json with the whole training configuration).",
                     "semsearch train --data data --out my-model --epochs 20", _cmd_train)
    _add_data_options(p)
    p.add_argument("--out", metavar="MODEL_DIR", type=output_path, default=Path(DEFAULT_MODEL_DIR), help="default %(default)s")
    _add_glove_option(p)
    _add_config_options(p, chosen)

    _add_elsewhere(sub, ("index", "search", "duplicates", "serve", "classify", "tags"), chosen)

    p = _add_command(sub, "eval", "Recall@K, median rank and MRR",
                     "With --model: score a saved model on the given data (its own validation images when it recorded "
                     "them and they are there, else all). Without: train and score K-fold and print mean ± std, with "
                     "chance levels beside each score.", "semsearch eval --model my-model", _cmd_eval)
    _add_data_options(p)
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, help="a saved model (else train K-fold)")
    p.add_argument("--folds", type=positive_int, default=5, help="K for K-fold, without --model (default %(default)s)")
    p.add_argument("--all", action="store_true", help="with --model: score on all images, not its validation images")
    p.add_argument("--protocol", choices=("all", "1k", "5k"), default="all",
                   help="with --model: every caption of the images (all), or COCO's published protocols on 5,000 of "
                        "them: 5 folds of 1,000 images (1k) or all 5,000 (5k), 5 captions each (default %(default)s)")
    _add_glove_option(p)
    _add_config_options(p, chosen)

    p = _add_command(sub, "demo", "train, evaluate and search the data folder (or the shipped sample)",
                     "Find the caption files and a descriptor pickle in the data folder, train with the default settings "
                     "on a split, print validation Recall@K against chance, run example queries, print their top images "
                     "with the top hit's caption, and write one PNG grid per query and the model (OUT/model).",
                     "semsearch demo --data ../shared/data --out /tmp/demo", _cmd_demo)
    p.add_argument("--data", metavar="DIR", type=Path, help=_DATA_HELP)
    p.add_argument("--out", metavar="DIR", type=output_path, default=Path(DEFAULT_DEMO_DIR), help="default %(default)s")
    p.add_argument("--query", action="append", metavar="TEXT", help="a query to run (repeatable; default: three examples)")
    p.add_argument("-k", type=positive_int, default=6, help="images per query (default %(default)s)")
    p.add_argument("--max-images", type=positive_int, default=5000, help="train on at most this many images (default %(default)s)")
    p.add_argument("--no-download", action="store_true", help="never download images missing from DATA/coco/images")
    p.add_argument("--seed", type=integer, default=0, help="default %(default)s")
    _add_text_encoder_option(p)
    _add_glove_option(p)

    _add_elsewhere(sub, ("fetch", "grade"), chosen)
    return parser


# --------------------------------------------------------------------------- helpers


def _data_files(args):
    """The caption files and descriptor file a command reads: --captions/--descriptors, else the data folder's."""
    from semsearch.paths import find_data_files

    if args.captions and args.descriptors:
        return list(args.captions), args.descriptors
    found_captions, found_descriptors = find_data_files(args.data)
    return list(args.captions or found_captions), args.descriptors or found_descriptors


def _load(args, text_encoder=None):
    """The data of --captions/--descriptors (default: the data folder's), joined; prints what it used."""
    from semsearch.workflow import describe_join, load_data

    caption_files, descriptor_file = _data_files(args)
    say(f"captions:    {', '.join(str(c) for c in caption_files)}", f"descriptors: {descriptor_file}")
    glove = _glove(args) if text_encoder is None else None
    data, text_encoder = load_data(caption_files, descriptor_file, text_encoder, glove, encoder_name=getattr(args, "text_encoder", "idf"))
    say(f"joined:      {describe_join(data)}")
    return data, text_encoder, dict(captions=[str(c) for c in caption_files], descriptors=str(descriptor_file))


# --------------------------------------------------------------------------- commands


def _cmd_train(args) -> int:
    from semsearch.workflow import train_and_save

    from semsearch.common.files import ensure_distinct_output
    from semsearch.bundle import check_bundle_target

    config = _config(args)
    check_bundle_target(args.out)  # before loading and training: a folder that cannot be written
    caption_files, descriptor_file = _data_files(args)
    ensure_distinct_output(args.out, [*caption_files, descriptor_file], "--out")
    data, text_encoder, files = _load(args)
    say("training: " + ", ".join(f"{k}={v}" for k, v in config.as_dict().items()))
    run = train_and_save(data, text_encoder, config, args.out, info=files, progress=sys.stderr.isatty())
    held_out = f", validated on {len(run.validation_ids)}" if run.validation_ids is not None else " (no validation)"
    say(f"trained on {len(run.train_ids)} images{held_out}", str(run.history))
    if run.scores is not None:
        say(run.scores.format("validation"))
    files = ", ".join(sorted(path.name for path in run.model_dir.iterdir()))
    say(f"saved {run.model_dir}/ ({files}; the database holds {len(run.database)} images)")
    return 0


def _cmd_eval(args) -> int:
    from semsearch.evaluation import evaluate, format_folds

    if args.model is None:
        from semsearch.errors import InputError
        from semsearch.workflow import cross_validate

        if args.protocol != "all":
            raise InputError(f"--protocol {args.protocol} scores a saved model: give --model MODEL_DIR")

        config = _config(args)
        data, text_encoder, _ = _load(args)
        say(f"training {args.folds} models, one per fold: " + ", ".join(f"{k}={v}" for k, v in config.as_dict().items()))
        folds = cross_validate(data, text_encoder, args.folds, config, progress=sys.stderr.isatty())
        for k, s in enumerate(folds, start=1):
            say(f"  fold {k}: " + "  ".join(f"R@{n} {v:.3f}" for n, v in s.recall.items()) + f"  MRR {s.mean_reciprocal_rank:.3f}")
        say(format_folds(folds))
        return 0
    from semsearch.bundle import load_bundle, read_info
    from semsearch.workflow import evaluation_ids

    model, text_encoder, _ = load_bundle(args.model)
    data, _, _ = _load(args, text_encoder=text_encoder)
    ids, title, note = evaluation_ids(model, data, read_info(args.model)["info"], everything=args.all)
    if note:
        say(note)
    say(evaluate(model, data, text_encoder, ids, protocol=args.protocol, seed=args.seed).format(title))
    return 0


def _cmd_demo(args) -> int:
    from semsearch.common.files import check_writable, ensure_distinct_output
    from semsearch.bundle import check_bundle_target
    from semsearch.display import first_caption, result_grid
    from semsearch.workflow import demo_data, subsample, train_and_save

    root = data_dir(args.data)
    check_writable(args.out, "demo folder", folder=True)  # before training: where the model and grids go
    check_bundle_target(args.out / "model")
    ensure_distinct_output(args.out, [root] if root.exists() else [], "--out")
    demo = demo_data(args.data, args.text_encoder, glove=_glove(args))
    data, text_encoder = demo.data, demo.text_encoder
    say(*demo.lines)
    if len(data.image_ids) > args.max_images:
        data = subsample(data, args.max_images, args.seed)
        say(f"using {args.max_images} of them, drawn at random (--max-images)")
    from semsearch.training import TrainConfig

    config = TrainConfig(seed=args.seed)
    n_val = int(round(config.validation_fraction * len(data.image_ids)))  # as split_images counts
    say(f"\ntraining on {len(data.image_ids) - n_val} images, validating on {n_val} (default settings) ...")
    run = train_and_save(data, text_encoder, config, args.out / "model", info=demo.info, progress=sys.stderr.isatty())
    say(f"after {len(run.history.train_loss)} epochs: train loss {run.history.train_loss[-1]:.4f}, "
         f"validation triple accuracy {run.history.val_accuracy[-1]:.3f}", run.scores.format("validation"),
         f"database:    {len(run.database)} images embedded; model saved to {run.model_dir}/")
    for n, query in enumerate(args.query or DEMO_QUERIES, start=1):
        ids, sims = run.database.query(query, k=args.k)
        say(f'\n"{query}"')
        print_ranking(ids, sims)
        say(f'  top hit {int(ids[0])}: "{first_caption(data.captions, ids[0])}"')
        slug = f"{n}-" + (re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:60] or "query")
        grid = result_grid(ids, sims, query, args.out / f"{slug}.png", coco=None if args.no_download else data.captions,
                           image_dir=demo.image_dir, ncols=min(args.k, 3))
        say(f"  grid: {grid}")
    say(f'\nnext: semsearch search "your words" --model {run.model_dir} --out grid.png')
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``semsearch`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("semsearch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `semsearch search ... --paths | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except USER_ERRORS as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"semsearch: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
