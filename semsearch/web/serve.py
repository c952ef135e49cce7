"""``semsearch serve``: load a model folder once and serve the search page on this machine.

``add_parser(subparsers)`` adds the subcommand; ``run(args)`` loads everything (the
model, its text encoder and database, the captions, where the images are) and then runs
uvicorn until Ctrl-C. :func:`app_from_args` is the loading part alone.

Example
-------
.. code-block:: text

    semsearch serve --model my-model --data data          # then open http://127.0.0.1:8000/
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path
from typing import List, Optional

from ..errors import MissingExtraError
from ..paths import ENV_VAR, data_dir

DEFAULT_MODEL_DIR = "semsearch-model"
_CAPTION_FILE = re.compile(r"captions_(?:train|val)(\d{4})(?:_\w+)?\.json$")


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= 65535:  # no sign, no other scripts' digits
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to an argparse subparsers object (as made by ``semsearch.cli``)."""
    p = subparsers.add_parser(
        "serve", help="a web page to search a model's images with",
        description="Load a model folder once and serve a search page and a JSON API on this machine. "
        "Images come from the image folder, else a download cache (from the captions' coco_url), "
        "else a grey tile. Needs `pip install 'semsearch[web]'`.",
        epilog="example: semsearch serve --model my-model --data data   (then open http://127.0.0.1:8000/)",
    )
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, default=Path(DEFAULT_MODEL_DIR), help="default %(default)s")
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")
    p.add_argument("--images", metavar="DIR", type=Path, help="image folder (default DATA/coco/images)")
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path,
                   help="caption files: a caption under each image, and where to download it (default: DATA/coco/annotations)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="default %(default)s")
    p.set_defaults(run=run)
    return p


def _caption_files(captions: Optional[List[Path]], data: Optional[Path]) -> List[List[Path]]:
    """Groups of caption files to try, one COCO release each (2014 and 2017 cannot be merged)."""
    if captions:
        return [list(captions)]
    annotations = data_dir(data) / "coco" / "annotations"
    by_year: dict = {}
    for path in sorted(annotations.glob("captions_*.json")):
        match = _CAPTION_FILE.search(path.name)
        if match:
            by_year.setdefault(match.group(1), []).append(path)
    return [by_year[year] for year in sorted(by_year, reverse=True)]


def _load_captions(groups: List[List[Path]], image_ids, say):
    """The release whose captions cover most database images: ``(first caption by id, coco_url by id)``."""
    from ..coco import CocoCaptions

    best = ({}, {})
    wanted = set(int(i) for i in image_ids)
    for files in groups:
        coco = CocoCaptions.load(*files)
        covered = wanted & set(coco.image_ids.tolist())
        if len(covered) > len(best[0]):
            first = {i: coco.captions_of(i)[0].strip() for i in covered if coco.captions_of(i)}
            best = (first, {i: coco.coco_url(i) for i in covered if coco.coco_url(i)})
            say(f"captions:    {', '.join(str(f) for f in files)} ({len(covered)} of {len(wanted)} images)")
        if len(covered) == len(wanted):
            break
    return best


def app_from_args(args, say=print):
    """Load the model folder, captions and image locations named by ``args``; return the app."""
    from ..bundle import load_bundle
    from .app import create_app
    from .images import CocoImageFiles

    model, text_encoder, database = load_bundle(args.model)
    say(f"model:       {args.model} ({len(database)} images, {database.dim}-d, {type(text_encoder).__name__})")
    images = args.images
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    if images is None:
        default = data_dir(args.data) / "coco" / "images"
        images = default if default.is_dir() else None
    if args.captions:
        for path in args.captions:
            if not Path(path).is_file():
                raise FileNotFoundError(f"caption file not found: {path}")
    first_captions, urls = _load_captions(_caption_files(args.captions, args.data), database.image_ids, say)
    say(f"images:      {images or 'no image folder'}; {len(urls)} downloadable from coco_url into the cache")
    files = CocoImageFiles(images, urls=urls)
    return create_app(database, text_encoder, model=model, image_path=files.path_of, captions=first_captions)


def run(args) -> int:
    """``semsearch serve``: load, then serve until Ctrl-C; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("semsearch serve needs uvicorn and FastAPI: pip install 'semsearch[web]'") from None
    app = app_from_args(args)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(f"semsearch: warning: --host {args.host} lets other machines reach this page", file=sys.stderr)
    print(f"serving at http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
