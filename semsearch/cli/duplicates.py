"""``semsearch duplicates``: list groups of exact and near-duplicate photos of an indexed folder.

Nothing is ever deleted: the command prints groups, best copy first, for a person (or a
script, with ``--print0``) to decide.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``duplicates [--db DB] [--exact | --near] [--threshold T] [--print0]``."""
    from semsearch.photos.duplicates import NEAR_THRESHOLD

    p = subparsers.add_parser(
        "duplicates", help="groups of duplicate photos in an indexed folder (exact and near)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List groups of photos that are the same: exact duplicates (the same bytes) and near "
        "duplicates (the same photo re-encoded, resized, cropped a little or lightly edited: backbone "
        f"descriptors' cosine >= {NEAR_THRESHOLD}, measured on planted pairs). The best copy comes first (most "
        "pixels, then largest file). Nothing is deleted.",
        epilog="examples: semsearch duplicates --db ~/Pictures/.semsearch/photos.npz\n"
               "          semsearch duplicates --print0 | while IFS= read -r -d '' f; do\n"
               "            if [ -z \"$f\" ]; then echo --; else ls -l \"$f\"; fi; done   # an empty record ends a group",
    )
    p.add_argument("--db", metavar="DB", type=Path,
                   help="a database made by `semsearch index` (default ./.semsearch/photos.npz)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--exact", action="store_true", help="only exact duplicates (the same bytes)")
    kind.add_argument("--near", action="store_true", help="only near duplicates")
    p.add_argument("--threshold", type=float, metavar="COSINE",
                   help=f"near duplicates' descriptor cosine (default {NEAR_THRESHOLD}; higher: stricter)")
    p.add_argument("--print0", action="store_true",
                   help="print only full paths, each ended by a NUL byte, and an extra NUL after each group")
    p.set_defaults(run=run)
    return p


def human_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 kB'`` (powers of 1000, like file managers)."""
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def run(args) -> int:
    from semsearch.cli.photos import DEFAULT_DB
    from semsearch.photos.duplicates import NEAR_THRESHOLD, find_duplicates
    from semsearch.photos.folder import PhotoDatabase

    photos = PhotoDatabase.load(args.db if args.db is not None else DEFAULT_DB)
    groups = find_duplicates(photos, exact=not args.near, near=not args.exact, threshold=args.threshold)
    root = Path(photos.root)
    if args.print0:
        sys.stdout.write("".join("".join(f"{root / key}\0" for key in g.keys) + "\0" for g in groups))
        sys.stdout.flush()
        return 0
    if not groups:
        print(f"no duplicates among the {len(photos)} photos of {root}")
        return 0
    threshold = NEAR_THRESHOLD if args.threshold is None else args.threshold
    spare = sum(g.spare_bytes for g in groups)
    print(f"{len(groups)} groups of duplicates among the {len(photos)} photos of {root} "
          f"({sum(len(g) - 1 for g in groups)} extra copies, {human_bytes(spare)}); best copy first:")
    for n, g in enumerate(groups, start=1):
        what = "the same bytes" if g.kind == "exact" else f"near: descriptor cosine >= {threshold}"
        print(f"\ngroup {n} ({len(g)} photos, {what}):")
        for i, (key, size, (w, h), sim) in enumerate(zip(g.keys, g.sizes, g.shapes, g.similarities)):
            note = "best" if i == 0 else ("same bytes" if sim == 1.0 and g.kind == "exact" else f"similarity {sim:.3f}")
            print(f"  {root / key}   {w}x{h}, {human_bytes(size)}, {note}")
    return 0
