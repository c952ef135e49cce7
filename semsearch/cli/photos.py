"""Command-line parts for photos: ``semsearch index`` and ``semsearch search``.

``semsearch.cli.commands`` adds these with ``add_index_parser(sub)`` / ``add_search_parser(sub)``;
each parser's ``run`` default (:func:`run_index`, :func:`run_search`) does the work, prints
and returns the exit status. Errors are raised (SemsearchError, FileNotFoundError) for the CLI to print as one line.

``semsearch search`` searches, in this order: ``--db DB`` (an indexed folder),
``--model DIR`` (a trained COCO model), ``./.semsearch/photos.npz`` if the current folder was
indexed, else the embedded sample.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from semsearch.common.files import check_writable, ensure_distinct_output
from semsearch.cli.argtypes import output_path, positive_int
from semsearch.cli.output import print_ranking, say

#: Where ``semsearch index FOLDER`` keeps the database unless --db says otherwise (hidden: not indexed).
DEFAULT_DB = Path(".semsearch") / "photos.npz"


# --------------------------------------------------------------------------- index


def add_index_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``index FOLDER [--db DB] [--model DIR] [--batch-size N] [--quiet]``."""
    p = subparsers.add_parser(
        "index", help="make a folder of photos searchable (incremental)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find the images under FOLDER (jpg, jpeg, png, webp; heic with pillow-heif), any names, "
        "sub-folders too; describe the new or changed ones (size or mtime) with the model's backbone, "
        "embed them, drop deleted ones, and save the database (default FOLDER/.semsearch/photos.npz). "
        "Broken files are skipped and listed. Needs `pip install 'semsearch[photos]'` (ONNX Runtime, no torch).",
        epilog='example: semsearch index ~/Pictures && semsearch search "a dog on the beach" --db ~/Pictures/.semsearch/photos.npz',
    )
    p.add_argument("folder", metavar="FOLDER", type=Path)
    p.add_argument("--db", metavar="DB", type=output_path, help="database file (default FOLDER/.semsearch/photos.npz)")
    p.add_argument("--model", metavar="MODEL_DIR", type=Path, help="trained model (default: the database's, else the shipped sample model)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="describe here, or on a Ray cluster's actors (extra [ray]; default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--watch", action="store_true",
                   help="then keep the database current as files appear, change, move or disappear, until Ctrl-C "
                   "(file-system events with `pip install 'semsearch[watch]'`, else polling)")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="with --watch: how often to look when polling, and the quiet time that ends a batch "
                   "(default %(default)s)")
    p.set_defaults(run=run_index)
    return p


def run_index(args) -> int:
    from semsearch.photos.folder import index_folder

    if not args.folder.expanduser().is_dir():
        raise FileNotFoundError(f"image folder not found: {args.folder}")
    db = args.db or args.folder.expanduser() / DEFAULT_DB
    check_writable(db, "photo database")
    ensure_distinct_output(db, [args.model], "--db")
    options = dict(model=args.model, batch_size=args.batch_size, engine=args.engine,
                   progress=not args.quiet and sys.stderr.isatty())
    if args.watch:
        return _watch(args, db, options)
    report = index_folder(args.folder, db, **options)
    say(f"{db}: {report.summary()}")
    _warn_skipped(report)
    return 0


def _watch(args, db, options) -> int:
    """``index --watch``: a summary line per batch; Ctrl-C stops it with a complete database."""
    import time

    from semsearch.photos.watch import watch_folder

    def said(report) -> None:
        say(f"{time.strftime('%H:%M:%S')} {db}: {report.summary()}")
        _warn_skipped(report)

    if args.interval <= 0:
        from semsearch.errors import InputError

        raise InputError(f"--interval must be positive, got {args.interval}")
    say(f"watching {args.folder} (Ctrl-C stops; the database is saved whole after each batch)")
    try:
        watch_folder(args.folder, db, on_report=said, settle=args.interval, interval=args.interval, **options)
    except KeyboardInterrupt:
        from semsearch.photos.folder import PhotoDatabase

        n = len(PhotoDatabase.load(db)) if Path(db).exists() else 0
        say(f"stopped: {db} is complete ({n} images)")
    return 0


def _warn_skipped(report) -> None:
    for path, reason in report.failed[:20]:
        print(f"semsearch: warning: skipped {_printable(path)}: {_printable(reason)}", file=sys.stderr)
    if len(report.failed) > 20:
        print(f"semsearch: warning: ... and {len(report.failed) - 20} more", file=sys.stderr)


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
        epilog='examples: semsearch search "a dog"\n'
               '          semsearch search "dog + beach - grass" --db pics.npz --print0 | xargs -0 xdg-open   (macOS: open)\n'
               '          semsearch search "beach" --db pics.npz --after 2019-06 --before 2019-09 --in "Holiday 2019" --camera pixel',
    )
    p.add_argument("query", metavar="QUERY", nargs="?", help="text; omit with --image")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="DB", type=Path, help="a database made by `semsearch index`")
    where.add_argument("--model", metavar="MODEL_DIR", type=Path, help="a trained model folder (COCO ids)")
    p.add_argument("--image", metavar="FILE", type=Path, help="query with this image (described with the database's backbone)")
    p.add_argument("-k", type=positive_int, default=9, help="how many images (default %(default)s)")
    listed = p.add_mutually_exclusive_group()
    listed.add_argument("--paths", action="store_true", help="print only the image files, one per line (for xargs)")
    listed.add_argument("--print0", action="store_true",
                        help="print only the image files, each ended by a NUL byte (for xargs -0: any file name)")
    add_filter_options(p)
    p.add_argument("--more-like", action="append", default=[], metavar="IMAGE",
                   help="relevance feedback: move the query toward this result (a path it printed, or a COCO id); repeatable")
    p.add_argument("--less-like", action="append", default=[], metavar="IMAGE",
                   help="move the query away from this result; repeatable")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--show", action="store_true", help="show the images in a window")
    shown.add_argument("--out", metavar="PNG", type=output_path, help="save the images as a grid of thumbnails")
    p.add_argument("--images", metavar="DIR", type=Path, help="with --model: the COCO image folder (default DATA/coco/images)")
    p.add_argument("--captions", nargs="+", metavar="JSON", type=Path, help="with --model: caption files (a caption per hit, image URLs)")
    p.add_argument("--data", metavar="DIR", type=Path, help="with --model: the data folder (default $SEMSEARCH_DATA or ./data)")
    p.add_argument("--tag", metavar="TAG", help='only images carrying this tag (any of whose tags has its words, e.g. "dog"; see `semsearch tags`)')
    p.set_defaults(run=run_search)
    return p


def add_filter_options(p) -> None:
    """--after, --before, --in, --camera, --orientation, --min-size (photo databases only)."""
    from semsearch.photos.filters import ORIENTATIONS

    g = p.add_argument_group("filters (an indexed folder only; date: EXIF DateTimeOriginal, else the file's mtime)")
    g.add_argument("--after", metavar="DATE", help="taken at or after DATE: YYYY, YYYY-MM, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'")
    g.add_argument("--before", metavar="DATE", help="taken before DATE (--after 2019-06 --before 2019-09: June to August)")
    g.add_argument("--in", dest="folder", metavar="FOLDER", help="under this folder of the indexed one (any case)")
    g.add_argument("--camera", metavar="TEXT", help="camera make or model contains TEXT (any case), e.g. pixel")
    g.add_argument("--orientation", choices=ORIENTATIONS, help="as shown")
    g.add_argument("--min-size", metavar="WxH", help="at least W x H pixels, either way round, e.g. 1920x1080")


def photo_filter(args):
    """The :class:`~semsearch.photos.filters.PhotoFilter` the options ask for."""
    from semsearch.photos.filters import PhotoFilter, parse_size

    return PhotoFilter(after=args.after, before=args.before, folder=args.folder, camera=args.camera,
                       orientation=args.orientation, min_size=parse_size(args.min_size) if args.min_size else None)


def _open_target(args):
    """(ImageDatabase, image folder, 'photos' | 'coco', model folder or None, what, PhotoSearch or None) for the search."""
    from semsearch.bundle import load_bundle

    db = args.db if args.db is not None else (DEFAULT_DB if args.model is None and DEFAULT_DB.is_file() else None)
    if db is not None:
        from semsearch.photos.folder import load_search

        search = load_search(db)
        return search.database, search.root, "photos", None, str(db), search
    if args.data is not None and not args.data.expanduser().is_dir():
        raise FileNotFoundError(f"data folder not found: {args.data} (it should hold coco/images and coco/annotations: "
                                "see 'The data folder' in the README)")
    if args.model is not None:
        from semsearch.paths import image_folder

        _, _, database = load_bundle(args.model)
        return database, image_folder(args.images, args.data), "coco", args.model, str(args.model), None
    from semsearch import sample

    _, _, database = load_bundle(sample.model_dir())
    return database, sample.image_dir(), "coco", sample.model_dir(), "the embedded sample", None


def _image_vector(args, search, model_dir):
    from semsearch.photos.folder import image_query, load_model

    if search is not None:
        return image_query(args.image, search.model, search.backbone_name)
    loaded = load_model(model_dir, with_text=False)
    return image_query(args.image, loaded.autoembedder, loaded.backbone_name)


def run_search(args) -> int:
    _check_search_args(args)
    only = photo_filter(args)
    database, image_dir, kind, model_dir, what, search = _open_target(args)
    if kind != "photos" and not only.is_empty():
        from semsearch.errors import InputError

        raise InputError("filters (--after, --before, --in, --camera, --orientation, --min-size) need an indexed folder: "
                         "--db DB from `semsearch index FOLDER`")
    if args.query is not None:
        from semsearch.query import stop_words_warning

        warning = stop_words_warning(args.query)
        if warning is not None:
            print(f"semsearch: warning: {warning}", file=sys.stderr)
    query = args.query if args.image is None else _image_vector(args, search, model_dir)
    if args.more_like or args.less_like:
        query = _feedback_vector(args, database, query, image_dir)
    if args.tag is not None:
        from semsearch.cli.classify import restrict_to_tag
        from semsearch.routes.image_tags import default_descriptors

        descriptors = search.descriptors if search is not None else default_descriptors(model_dir, args.data)
        database = restrict_to_tag(database, args.tag, descriptors)
    columns = None
    if kind == "photos":
        from semsearch.photos.filters import PhotoColumns, filtered_query

        columns = PhotoColumns.of(search.photos.keys, search.photos.metadata).subset(database.keys)
        keys, scores = filtered_query(database, columns, query, only, k=args.k)
    else:
        keys, scores = database.query(query, k=args.k)
    coco = None
    if kind == "coco" and args.captions:
        from semsearch.coco import CocoCaptions

        coco = CocoCaptions.load(*args.captions)
    shown = args.query if args.image is None else str(args.image)
    shows_captions = not (args.paths or args.print0) or args.out or args.show
    taken = taken_lines(columns, keys) if columns is not None and shows_captions else None
    _print_results(args, keys, scores, image_dir, taken, coco, f"{len(database)} images" if only.is_empty()
                   else f"the images that pass ({only.describe()})", what, shown)
    if args.out or args.show:
        _write_grid(args, keys, scores, shown, kind, coco, image_dir, model_dir, taken)
    return 0


def _check_search_args(args) -> None:
    """One query (text or image); a grid file that can be written and overwrites no input: before any work."""
    from semsearch.errors import InputError

    if (args.query is None) == (args.image is None):
        raise InputError("give a text QUERY or --image FILE (one of them)")
    if args.out is not None:
        from semsearch.common.images import image_format_of

        ensure_distinct_output(args.out, [args.db, args.model, args.image, args.images, *(args.captions or [])], "--out")
        check_writable(args.out, "grid image")
        image_format_of(args.out)


def _print_results(args, keys, scores, image_dir, taken, coco, among: str, what: str, shown: str) -> None:
    """The files (--paths, --print0), or the ranking with each photo's date or each COCO image's caption."""
    if args.paths or args.print0:
        _print_files([_file_of(key, image_dir) for key in keys], keys, b"\0" if args.print0 else b"\n")
        return
    from semsearch.display import first_caption

    say(f'top {len(keys)} of {among} in {what} for "{shown}":')
    captions = taken if taken is not None else ([first_caption(coco, key) for key in keys] if coco is not None else None)
    print_ranking([_printable(str(key)) for key in keys], scores, captions)


def _write_grid(args, keys, scores, shown: str, kind: str, coco, image_dir, model_dir, taken) -> None:
    """The picture grid (--out, --show): COCO captions, or each photo's date and folder, under the images."""
    from semsearch.display import result_grid

    if kind == "coco":
        coco = coco or _default_captions(args, model_dir)
        _warn_missing_images(keys, image_dir, coco)
    written = result_grid(keys, scores, shown, args.out, coco=coco, image_dir=image_dir, captions=taken)
    if written is not None:
        say(f"wrote {written}")


def _feedback_vector(args, database, query, image_dir):
    """The query moved toward --more-like and away from --less-like images (Rocchio, semsearch.routes.feedback)."""
    from semsearch.routes.feedback import query_vector, rocchio

    def key_of(text: str):
        if database.keys.dtype.kind != "U":
            from semsearch.common.keys import coco_id_from_filename

            return coco_id_from_filename(text) if not text.isdigit() else int(text)
        path = Path(text).expanduser()
        root = Path(image_dir or ".")
        if not path.is_absolute():
            return text
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            from semsearch.errors import InputError

            raise InputError(f"{text} is not under the indexed folder {root}") from None

    good = [database.vector_of(key_of(t)) for t in args.more_like]
    bad = [database.vector_of(key_of(t)) for t in args.less_like]
    first = query_vector(database, query)
    moved = rocchio(first, good or None, bad or None)
    print(f"semsearch: query moved toward {len(good)} and away from {len(bad)} marked images "
          f"(cosine with the first query {float(moved @ first):.3f})", file=sys.stderr)
    return moved


def _default_captions(args, model_dir):
    """The captions a COCO grid is captioned with when --captions is not given: the sample's, or
    the data folder's (None when there is none)."""
    from semsearch import sample
    from semsearch.coco import CocoCaptions

    if Path(model_dir).resolve() == sample.model_dir().resolve():
        return CocoCaptions.load(sample.captions_file())
    from semsearch.paths import find_data_files

    try:
        return CocoCaptions.load(*find_data_files(args.data)[0])
    except FileNotFoundError:
        return None


def _warn_missing_images(keys, image_dir, coco) -> None:
    """One line on stderr when some hits' image files cannot be found (nor downloaded), and how to fix it."""
    from semsearch.common.coco_images import find_local_image

    missing = [k for k in keys if image_dir is None or find_local_image(int(k), image_dir) is None]
    if not missing:
        return
    where = f"in {image_dir}" if image_dir is not None else "here (no image folder: no --images, no DATA/coco/images)"
    fix = ("give --images DIR (the COCO images) or --data DIR (a data folder holding coco/images: see 'The data "
           "folder' in the README)")
    if coco is not None and all(coco.coco_url(k) for k in missing):
        print(f"semsearch: {len(missing)} of the {len(keys)} images are not {where}: downloading them from cocodataset.org "
              f"(cached); offline, they show as grey tiles: {fix}", file=sys.stderr)
    else:
        print(f"semsearch: warning: {len(missing)} of the {len(keys)} images are not {where}, so the grid shows their ids "
              f"on grey tiles: {fix}", file=sys.stderr)


def taken_lines(columns, keys):
    """``taken 2019-07-14 10:31`` per key (``file date`` when it is the mtime), None if not known."""
    from semsearch.photos.metadata import format_time

    if not columns.complete:
        return None
    rows = {k: r for r, k in enumerate(columns.keys.tolist())}
    meta = columns.metadata
    return [f"taken {format_time(meta.taken[rows[k]])[:16]}" + ("" if meta.taken_source[rows[k]] == "exif" else " (file date)")
            for k in map(str, keys)]


def _printable(name: str) -> str:
    """A name on one line of a terminal: not-UTF-8 bytes as ``\\xNN``, line breaks and tabs escaped."""
    from semsearch.photos.paths import shown_name

    return shown_name(name)


def _print_files(files, keys, end: bytes) -> None:
    """Write each file's path (its bytes, whatever the name) ended by ``end``; warn about the rest.

    A ``None`` file (a key whose file is no longer inside the folder) and, with newline
    ends, a name holding a line break (it would read as two files) are left out, each
    with a warning on stderr.
    """
    out = sys.stdout.buffer
    for key, path in zip(keys, files):
        if path is None:
            print(f"semsearch: warning: left out {_printable(str(key))}: not a file inside the indexed folder "
                  "(deleted, or now a link to elsewhere)", file=sys.stderr)
        elif end == b"\n" and ("\n" in str(path) or "\r" in str(path)):
            print(f"semsearch: warning: left out {_printable(str(path))}: its name holds a line break "
                  "(use --print0 and xargs -0)", file=sys.stderr)
        else:
            out.write(os.fsencode(path) + end)
    out.flush()


def _file_of(key, image_dir) -> Path | None:
    if isinstance(key, str):  # a photo: only ever a file inside the folder (links checked now)
        from semsearch.photos.paths import file_inside

        found = file_inside(image_dir, key)
        return Path(image_dir) / key if found is not None else None
    from semsearch.common.coco_images import find_local_image

    return (find_local_image(int(key), image_dir) if image_dir else None) or Path(f"{int(key):012d}.jpg")
