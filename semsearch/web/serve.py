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
import errno
import ipaddress
import socket
import sys
from pathlib import Path

from semsearch.cli.argtypes import port
from semsearch.errors import InputError, MissingExtraError
from semsearch.paths import ENV_VAR, data_dir, find_data_files

DEFAULT_MODEL_DIR = "semsearch-model"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to an argparse subparsers object (as made by ``semsearch.cli.commands``)."""
    p = subparsers.add_parser(
        "serve", help="a web page to search a model's images with",
        description="Load a model folder once and serve a search page and a JSON API on this machine. "
        "Images come from the image folder, else a download cache (from the captions' coco_url), "
        "else a grey tile. Needs `pip install 'semsearch[web]'`.",
        epilog="example: semsearch serve --model my-model --data data   (then open http://127.0.0.1:8000/)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--model", metavar="MODEL_DIR", type=Path, help=f"a COCO model folder (default ./{DEFAULT_MODEL_DIR}, else the embedded sample)")
    where.add_argument("--db", metavar="DB", type=Path, help="a photo database made by `semsearch index`")
    p.add_argument("--data", metavar="DIR", type=Path, help=f"data folder (default ${ENV_VAR} or ./data)")
    p.add_argument("--images", metavar="DIR", type=Path, help="image folder (default DATA/coco/images)")
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path,
                   help="caption files: a caption under each image, and where to download it (default: DATA/coco/annotations)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="default %(default)s")
    p.set_defaults(run=run)
    return p


def _first_captions(caption_files, image_ids, say):
    """``(first caption by id, coco_url by id)`` of the database images the caption files describe."""
    from semsearch.coco import CocoCaptions

    coco = CocoCaptions.load(*caption_files)
    covered = set(int(i) for i in image_ids) & set(coco.image_ids.tolist())
    say(f"captions:    {', '.join(str(f) for f in caption_files)} ({len(covered)} of {len(image_ids)} images)")
    first = {i: coco.captions_of(i)[0].strip() for i in covered if coco.captions_of(i)}
    return first, {i: coco.coco_url(i) for i in covered if coco.coco_url(i)}


def app_from_args(args, say=print):
    """Load what ``args`` names (``--db``, ``--model``, else the embedded sample) once; return the app.

    - ``--db DB``: a photo database made by ``semsearch index`` (images from its folder);
    - ``--model DIR``: a COCO model folder (images from ``--images`` or DATA/coco/images, else
      downloaded once from their ``coco_url`` into a cache, else a grey tile);
    - neither: ``./semsearch-model`` if there is one, else the embedded sample.
    """
    from semsearch.bundle import load_bundle
    from semsearch.web.app import create_app
    from semsearch.web.images import CocoImageFiles

    if args.db is not None:
        from semsearch.photos.folder import load_search

        search = load_search(args.db)
        say(f"photos:      {args.db} ({len(search)} images under {search.root})")
        from semsearch.photos.paths import file_inside

        root = search.root  # each file checked when asked for: inside the folder, links too
        app = create_app(search.database, model=search.model, image_path=lambda key: file_inside(root, key),
                         descriptors=search.descriptors, photos=search.photos)
        return _said_tags(app, say)
    model_dir, images, caption_files, descriptors = args.model, args.images, args.captions, None
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        raise FileNotFoundError(f"data folder not found: {args.data} (it should hold coco/images and coco/annotations: "
                                "see 'The data folder' in the README)")
    if model_dir is None and not Path(DEFAULT_MODEL_DIR).is_dir():
        from semsearch import sample

        model_dir, images, caption_files = sample.model_dir(), images or sample.image_dir(), caption_files or [sample.captions_file()]
        descriptors = sample.descriptors_file()
        say("no --model or --db: serving the embedded sample (semsearch.sample)")
    model, text_encoder, database = load_bundle(model_dir or DEFAULT_MODEL_DIR)
    say(f"model:       {model_dir or DEFAULT_MODEL_DIR} ({len(database)} images, {database.dim}-d, {type(text_encoder).__name__})")
    if database.keys.dtype.kind not in "iu":  # keyed by names (not COCO ids): no captions or files to find
        say("images:      the database is keyed by names, not COCO ids: grey tiles, no captions")
        return _said_tags(create_app(database, text_encoder, model=model), say)
    if images is not None and not Path(images).is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    if images is None:
        default = data_dir(args.data) / "coco" / "images"
        images = default if default.is_dir() else None
    for path in caption_files or ():
        if not Path(path).is_file():
            raise FileNotFoundError(f"caption file not found: {path}")
    if not caption_files or descriptors is None:
        try:
            found_captions, found_descriptors = find_data_files(args.data)
        except FileNotFoundError:
            found_captions, found_descriptors = [], None
        caption_files, descriptors = caption_files or found_captions, descriptors or found_descriptors
    first_captions, urls = _first_captions(caption_files, database.keys, say) if caption_files else ({}, {})
    say(f"images:      {images or 'no image folder'}; {len(urls)} downloadable from coco_url into the cache")
    missing = missing_images(database.keys, images, urls)
    if missing:
        say(f"warning:     {missing} of the {len(database)} images are neither in {images or 'an image folder'} nor "
            "downloadable: the page shows grey tiles for them. Give --images DIR (the COCO images) or --data DIR "
            "(a data folder holding coco/images and coco/annotations: see 'The data folder' in the README)")
    files = CocoImageFiles(images, urls=urls)
    app = create_app(database, text_encoder, model=model, image_path=files.path_of, captions=first_captions,
                     descriptors=descriptors)
    return _said_tags(app, say)


def _said_tags(app, say):
    """Say once what the tags are made of (and why not ImageNet labels, if not); return the app."""
    context = app.state.context
    if context.tags is None:
        say(f"tags:        none ({context.tags_error})")
    else:
        say(f"tags:        {context.tags.tagger.source}" + (f" ({context.tags.note})" if context.tags.note else ""))
    return app


def missing_images(image_ids, images, urls) -> int:
    """How many of the database's images are neither in the folder ``images`` nor in ``urls``."""
    from semsearch.common.keys import coco_file_name

    names = {p.name for p in Path(images).iterdir()} if images is not None else set()
    present = {name.rsplit("_", 1)[-1] for name in names}  # COCO_val2014_000000000139.jpg -> 000000000139.jpg
    return sum(1 for i in image_ids.tolist() if int(i) not in urls and coco_file_name(int(i)) not in present)


def run(args) -> int:
    """``semsearch serve``: load, then serve until Ctrl-C; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("semsearch serve needs uvicorn and FastAPI: pip install 'semsearch[web]'") from None
    listening = bind(args.host, args.port)  # before loading anything: a port in use is said at once
    try:
        app = app_from_args(args)
        try:
            loopback = ipaddress.ip_address(args.host).is_loopback
        except ValueError:
            loopback = args.host == "localhost"
        if not loopback:
            print(f"semsearch: warning: --host {args.host} lets other machines reach this page", file=sys.stderr)
        print(f"serving at http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
        uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).run(sockets=[listening])
    finally:
        listening.close()
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` for uvicorn to listen on, or one line saying why not.

    Raises
    ------
    InputError
        The port is in use (another server?), or the address is not one of this machine's.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart after Ctrl-C
    try:
        listening.bind(address)
    except OSError as e:
        listening.close()
        if e.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is in use (another server?): choose another with --port") from None
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return listening
