"""``semsearch grade TEAM.ipynb [...] --data DIR``: grade team notebooks, write one report.

The work is :mod:`semsearch.exercises.grading`; this module parses, prints and writes the
Markdown and JSON reports (atomically).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

WARNING = ("It RUNS EACH TEAM'S CODE (every cell of the notebook, then the team's functions), with your rights, "
           "as any notebook grader does: run it in an account or container that holds nothing the teams should not see.")


def add_parser(subparsers):
    """Add ``semsearch grade NOTEBOOK... --data DIR [--glove PATH] [--out PREFIX] [--timeout S]``."""
    from semsearch.cli.argtypes import integer, positive_int

    p = subparsers.add_parser(
        "grade", help="grade team notebooks (runs their code): checks, end-to-end scores, one report",
        description="Execute each team notebook (the student edition of the capstone, filled in) with nbclient, run "
        "every task's check on the function the notebook defines under the task's name, run the end-to-end pipeline "
        "with the team's functions on a fixed split of the data folder, and write one report (OUT.md and OUT.json): "
        "a row per team with each task pass / FAIL / - (not written) and Recall@1/5/10, median rank and MRR against "
        "the library's reference on the same split, then each failing case. " + WARNING,
        epilog="example: semsearch grade submissions/*.ipynb --data data --out grades",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", type=Path, help="team notebooks (.ipynb)")
    p.add_argument("--data", metavar="DIR", type=Path, help="data folder (default $SEMSEARCH_DATA or ./data)")
    p.add_argument("--glove", metavar="PATH", type=Path, help="GloVe / word2vec text file of any dimension (default: GloVe-50)")
    p.add_argument("--out", metavar="PREFIX", type=Path, default=Path("grades"), help="writes PREFIX.md and PREFIX.json (default %(default)s)")
    p.add_argument("--timeout", metavar="S", type=positive_int, default=600, help="time limit per notebook cell, seconds (default %(default)s)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks in (default %(default)s)")
    p.add_argument("--seed", type=integer, default=0, help="seeds the fixed split and the training (default %(default)s)")
    p.add_argument("--epochs", type=positive_int, help="training epochs of the pipeline (default: the library's)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from semsearch.common.files import atomic_write
    from semsearch.exercises.grading import format_markdown, grade
    from semsearch.paths import data_dir

    changes = {"epochs": args.epochs} if args.epochs else {}
    print(f"grading {len(args.notebooks)} notebooks (their code runs here) ...", flush=True)
    report = grade(args.notebooks, data_dir(args.data), glove_path=args.glove, timeout=args.timeout,
                   kernel_name=args.kernel, seed=args.seed, **changes)
    markdown = format_markdown(report)
    md_path, json_path = args.out.with_name(args.out.name + ".md"), args.out.with_name(args.out.name + ".json")
    with atomic_write(md_path, "w") as f:
        f.write(markdown)
    with atomic_write(json_path, "w") as f:
        json.dump(report.as_dict(), f, indent=1)
    print(markdown, f"wrote {md_path} and {json_path}", sep="\n")
    return 0
