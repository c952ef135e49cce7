"""Filtered photo search at 100,000 photos vs the unfiltered search, timed in the same run (by hand).

    python benchmarks/filters.py [--n 100000] [--dim 50] [--queries 200]

Synthetic photos: random unit vectors (the shipped model's 50-d by default), dates spread
over 2010-2024, 400 folders, 12 cameras (and unknown), mixed sizes and orientations. Each
search is one text-free query vector, k=9, exact (``approximate=False``: the filter always
searches exactly, so that is the fair reference; the approximate index's time is printed
too when hnswlib is installed). A filtered search includes computing its mask from the
filter (:meth:`PhotoFilter.mask`), as ``semsearch search`` does for each query.

Run it with ``OPENBLAS_NUM_THREADS=1`` (or ``OMP_NUM_THREADS=1``) on a shared machine: one
query's product is too small to gain from threads, and their contention is what varies most.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semsearch.database import ImageDatabase
from semsearch.photos.filters import PhotoColumns, PhotoFilter, filtered_query
from semsearch.photos.metadata import Metadata, wall_clock_seconds


def synthetic(n: int, dim: int, seed: int = 0):
    import datetime as dt

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    folders = [f"{2010 + f % 15}/album {f:03d}" for f in range(400)]
    keys = np.array([f"{folders[i % 400]}/IMG_{i:06d}.jpg" for i in range(n)])
    start, end = wall_clock_seconds(dt.datetime(2010, 1, 1)), wall_clock_seconds(dt.datetime(2025, 1, 1))
    cameras = np.array(["", "Google Pixel 3", "Google Pixel 7", "Apple iPhone 12", "Canon EOS 80D", "NIKON D750",
                        "SONY ILCE-7M3", "samsung SM-G991B", "FUJIFILM X-T3", "Apple iPhone 8", "OLYMPUS E-M10",
                        "Panasonic DMC-GX80", "HUAWEI P30"])
    portrait = rng.random(n) < 0.3
    long_side = rng.choice([1024, 2048, 4032, 6000], size=n)
    short_side = (long_side * 3) // 4
    metadata = Metadata(
        content_hash=np.array([f"{i:032x}" for i in range(n)]),
        taken=rng.integers(start, end, size=n),
        taken_source=np.where(rng.random(n) < 0.9, "exif", "mtime"),
        camera=cameras[rng.integers(0, len(cameras), size=n)],
        width=np.where(portrait, short_side, long_side).astype(np.int32),
        height=np.where(portrait, long_side, short_side).astype(np.int32),
        orientation=np.ones(n, np.int8),
    )
    return ImageDatabase(keys, vectors), PhotoColumns.of(keys, metadata), rng.normal(size=(200, dim)).astype(np.float32)


def paired_ms(search, reference, queries, rounds: int = 7):
    """ms per query of ``search`` and of ``reference``: each round times all the queries with
    one then the other (which goes first swaps every round); the best round of each counts,
    as ``timeit`` advises (on a shared machine, other work only ever adds time)."""
    for q in queries[:5]:
        search(q), reference(q)
    best = [np.inf, np.inf]
    for n in range(rounds):
        for which in ((0, 1) if n % 2 else (1, 0)):
            function = (search, reference)[which]
            t = time.perf_counter()
            for q in queries:
                function(q)
            best[which] = min(best[which], (time.perf_counter() - t) / len(queries))
    return 1000 * best[0], 1000 * best[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    database, columns, queries = synthetic(args.n, args.dim)
    queries = queries[: args.queries]
    def unfiltered(q):
        return database.query(q, k=9, approximate=False)

    print(f"{args.n} photos, {args.dim}-d, k=9, mean of {len(queries)} queries, best of 7 rounds; each filter "
          "timed in alternate rounds with the unfiltered exact search")
    print(f"  {'filter':58s} {'filtered':>9s} {'unfiltered':>11s}  ratio")
    filters = {
        "summer 2019 (--after 2019-06 --before 2019-09)": PhotoFilter(after="2019-06", before="2019-09"),
        "--after 2015": PhotoFilter(after="2015"),
        "--in 'album 007'": PhotoFilter(folder="album 007"),
        "--in 2019": PhotoFilter(folder="2019"),
        "--camera pixel": PhotoFilter(camera="pixel"),
        "--orientation landscape --min-size 1920x1080": PhotoFilter(orientation="landscape", min_size=(1920, 1080)),
        "all of: 2019-06..09, --in 2019, --camera pixel": PhotoFilter(after="2019-06", before="2019-09", folder="2019", camera="pixel"),
    }
    for name, only in filters.items():
        passing = int(only.mask(columns).sum())
        ms, reference = paired_ms(lambda q, only=only: filtered_query(database, columns, q, only, k=9), unfiltered, queries)
        print(f"  {name:58s} {ms:6.2f} ms {reference:8.2f} ms  {ms / reference:4.2f}x   ({passing} pass)")
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return
    database.build_ann()
    ann, reference = paired_ms(lambda q: database.query(q, k=9, approximate=True), unfiltered, queries)
    print(f"  {'(no filter, approximate index: hnswlib)':58s} {ann:6.2f} ms {reference:8.2f} ms  {ann / reference:4.2f}x")


if __name__ == "__main__":
    main()
