"""Peak resident memory of ``semsearch train`` / ``eval`` on a data folder, step by step.

Run by hand (it is not a test), e.g. on the folder ``make_full_size_data.py`` writes::

    python benchmarks/memory.py DATA_DIR [--epochs 30] [--out MODEL_DIR]

It runs the steps ``semsearch train`` runs (load and join, fit ``se_text``, train, evaluate
the validation split, build the database, save), then ``semsearch eval``'s (load the model
folder and the data, evaluate), in this one process, and prints after each step the resident
memory now and the peak so far (``ru_maxrss``), with the step's wall time. The target is a
peak of at most 1.5 GB at full size (82,612 images, 414,113 captions).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux


class Steps:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        print(f"{'step':<28}{'wall s':>8}{'RSS MB':>9}{'peak MB':>9}", flush=True)
        self("start")

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        print(f"{name:<28}{now - self.last:8.1f}{rss_now_mb():9.0f}{peak_mb():9.0f}", flush=True)
        self.last = now


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("memory-bench-model"))
    args = parser.parse_args(argv)
    step = Steps()
    from semsearch.bundle import load_bundle, read_info, save_bundle
    from semsearch.database import ImageDatabase
    from semsearch.evaluation import evaluate
    from semsearch.paths import find_data_files
    from semsearch.training import TrainConfig
    from semsearch.workflow import evaluation_ids, load_data, train_model, train_validation_ids

    step("imports")
    caption_files, descriptor_file = find_data_files(args.data)
    data, text_encoder = load_data(caption_files, descriptor_file)
    step("load, join, fit se_text")
    config = TrainConfig(epochs=args.epochs)
    train_ids, val_ids = train_validation_ids(data, config)
    model, _ = train_model(data, text_encoder, train_ids, val_ids, config)
    step(f"train {args.epochs} epochs")
    scores = evaluate(model, data, text_encoder, val_ids)
    step("evaluate validation")
    database = ImageDatabase.build(model, data.descriptors, text_encoder)
    step("build database")
    save_bundle(args.out, model, text_encoder, database,
                info={"validation_image_ids": [int(i) for i in val_ids], "validation_scores": scores.as_dict()})
    step("save model folder")
    del data, text_encoder, model, database
    model, text_encoder, _ = load_bundle(args.out)
    data, _ = load_data(caption_files, descriptor_file, text_encoder)
    ids, _, _ = evaluation_ids(model, data, read_info(args.out)["info"])
    evaluate(model, data, text_encoder, ids)
    step("eval: load and evaluate")
    print(f"total {time.perf_counter() - step.start:.1f} s, peak {peak_mb():.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
