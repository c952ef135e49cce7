"""Regularising the training loop (weight decay, cosine schedule, epochs) for the default IDF encoder.

Run by hand (it is not a test)::

    python benchmarks/regularisation.py --data ../shared/data                  # every stage, ~10 min on 2 cores
    python benchmarks/regularisation.py --data ../shared/data --stage triple   # one stage of the selection grid
    python benchmarks/regularisation.py --data ../shared/data --report         # tables from the saved runs only

Protocol, in two honest halves (issue 14):

- **selection**: every configuration of the grid is trained on ``kfold_images(image_ids, 5,
  seed=s)`` for s in 0, 1, 2 (15 splits by image; ~191 training, ~48 held-out images each;
  ``Autoembedder(D, seed=s)``, ``TrainConfig(seed=s, ...)``) and scored text -> image on the
  held-out images (:func:`semsearch.evaluation.evaluate`), paired against the defaults before
  issue 14 (``BASE``: constant lr 0.5, 30 epochs) on the same 15 splits. The best rows of this
  grid are optimistic: they were picked on the splits they are scored on.
- **confirmation**: the settings chosen from the selection tables (``CONFIRM`` below, fixed
  before these runs) are trained again on fresh splits, seeds 3, 4, 5, paired against the
  defaults on those same fresh splits. Only these figures are unbiased.

``Delta`` columns: mean and std (ddof 1) of the 15 paired differences, and in how many runs the
row is better / worse. A gain is *clear* when the mean paired difference exceeds their std.

Every run is kept in ``<out>/regularisation.json`` (a rerun skips the runs already there);
``<out>/regularisation.md`` gets the selection and confirmation tables.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np

from semsearch.dataset import kfold_images
from semsearch.evaluation import evaluate
from semsearch.paths import find_data_files
from semsearch.training import TrainConfig
from semsearch.workflow import load_data, train_model

METRICS = ("recall@1", "recall@10", "mrr")
SELECTION_SEEDS = (0, 1, 2)
CONFIRMATION_SEEDS = (3, 4, 5)
#: The reference: the defaults before issue 14 (triple loss, batch 32, margin 0.25, SGD momentum 0.9,
#: constant lr 0.5, 30 epochs). Every configuration below lists its changes to these.
BASE = dict(loss="triple", batch_size=32, margin=0.25, optimizer="sgd", momentum=0.9,
            learning_rate=0.5, lr_schedule="constant", epochs=30, weight_decay=0.0)
DEFAULTS: Dict = {}  # BASE itself
WD = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)

#: The selection grid, in stages (issue 14's order: regularisation, then combinations).
STAGES: Dict[str, List[Dict]] = {
    "triple": [dict(weight_decay=w) for w in WD]
    + [dict(lr_schedule="cosine"), dict(epochs=15), dict(epochs=20), dict(lr_schedule="cosine", epochs=60)],
    "schedule": [dict(lr_schedule="cosine", learning_rate=lr, epochs=e) for e in (30, 60) for lr in (1.0, 2.0)]
    + [dict(lr_schedule="cosine", epochs=90), dict(lr_schedule="cosine", epochs=60, weight_decay=1e-4)],
    "inbatch": [dict(loss="infonce", temperature=t, lr_schedule="cosine", epochs=e) for t in (0.1, 0.2) for e in (30, 60)]
    + [dict(loss="infonce", temperature=0.2, lr_schedule="cosine", epochs=60, directions="caption")]
    + [dict(loss="vse++", margin=0.5, lr_schedule="cosine", epochs=e) for e in (30, 60)]
    + [dict(loss="vse0", batch_size=128, lr_schedule="cosine", epochs=60)],
    "combine": [dict(lr_schedule="cosine", learning_rate=1.0, epochs=60, margin=m) for m in (0.2, 0.3)]
    + [dict(lr_schedule="cosine", learning_rate=1.0, epochs=e) for e in (45, 80)]
    + [dict(lr_schedule="cosine", learning_rate=1.0, epochs=60, batch_size=16)]
    + [dict(loss="vse++", margin=0.5, lr_schedule="cosine", learning_rate=1.0, epochs=60)]
    + [dict(loss="infonce", temperature=0.2, directions="caption", lr_schedule="cosine", learning_rate=1.0, epochs=60)],
}
#: Chosen from the selection tables before the confirmation runs: the first is the candidate
#: default (the course's triple loss, best R@10 and a clear R@1 gain in selection); the second
#: the best R@1 row of the same family.
CONFIRM: List[Dict] = [dict(lr_schedule="cosine", learning_rate=1.0, epochs=60),
                       dict(lr_schedule="cosine", learning_rate=1.0, epochs=60, batch_size=16)]


def label(config: Dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in config.items()) or "old defaults (reference)"


def key(config: Dict, seed: int, fold: int) -> str:
    return json.dumps([sorted(config.items()), seed, fold])


class Runner:
    """Trains and scores configurations on the 5 folds of given seeds, caching every run in a JSON file."""

    def __init__(self, data_dir, path: Path):
        self.data, self.text_encoder = load_data(*find_data_files(data_dir))
        self.path = path
        self.runs = json.loads(path.read_text()) if path.exists() else {}
        self.folds = {}

    def scores(self, config: Dict, seeds) -> List[Dict]:
        out, start, trained = [], time.process_time(), 0
        for seed in seeds:
            if seed not in self.folds:
                self.folds[seed] = list(kfold_images(self.data.image_ids, 5, seed=seed))
            for fold, (train_ids, val_ids) in enumerate(self.folds[seed]):
                k = key(config, seed, fold)
                if k not in self.runs:
                    model, _ = train_model(self.data, self.text_encoder, train_ids, config=TrainConfig(seed=seed, **{**BASE, **config}))
                    s = evaluate(model, self.data, self.text_encoder, val_ids).as_dict()
                    self.runs[k] = {m: s[m] for m in METRICS}
                    trained += 1
                out.append(self.runs[k])
        if trained:
            self.path.write_text(json.dumps(self.runs, indent=0))
            print(f"  {label(config):55s} R@1 {np.mean([r['recall@1'] for r in out]):.3f} "
                  f"R@10 {np.mean([r['recall@10'] for r in out]):.3f} ({time.process_time() - start:.0f} s CPU)", flush=True)
        return out


def line(config: Dict, runs: List[Dict], reference: List[Dict]) -> str:
    cells = []
    for m in METRICS:
        v = np.array([r[m] for r in runs])
        cells.append(f"{v.mean():.3f} ± {v.std(ddof=1):.3f}")
    if runs is reference:
        return f"| {label(config)} | " + " | ".join(cells) + " | — | — | — |"
    d1 = np.array([a["recall@1"] - b["recall@1"] for a, b in zip(runs, reference)])
    d10 = np.array([a["recall@10"] - b["recall@10"] for a, b in zip(runs, reference)])
    clear = "**yes**" if d1.mean() > d1.std(ddof=1) and d1.mean() > 0 else "no"
    return (f"| {label(config)} | " + " | ".join(cells)
            + f" | {d1.mean():+.3f} ± {d1.std(ddof=1):.3f} ({(d1 > 0).sum()}/{(d1 < 0).sum()})"
            + f" | {d10.mean():+.3f} ± {d10.std(ddof=1):.3f} | {clear} |")


HEADER = ("| configuration (changes to the old defaults) | R@1 | R@10 | MRR | ΔR@1 paired (better/worse) | ΔR@10 paired | clear gain |\n"
          "|---|---|---|---|---|---|---|")


def table(runner: Runner, configs: List[Dict], seeds) -> List[str]:
    reference = runner.scores(DEFAULTS, seeds)
    return [HEADER, line(DEFAULTS, reference, reference)] + [line(c, runner.scores(c, seeds), reference) for c in configs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SEMSEARCH_DATA", "data"))
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument("--stage", choices=list(STAGES) + ["confirm"], action="append",
                        help="run only these stages (repeatable); default: all, then the confirmation")
    parser.add_argument("--report", action="store_true", help="write the tables from the runs already saved")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    runner = Runner(args.data, out / "regularisation.json")
    stages = args.stage or (list(STAGES) + ["confirm"])
    start = time.time()
    if not args.report:
        for stage in stages:
            print(f"stage {stage}", flush=True)
            if stage == "confirm":
                table(runner, CONFIRM, CONFIRMATION_SEEDS)
            else:
                table(runner, STAGES[stage], SELECTION_SEEDS)
    def done(c, seeds):
        return all(key(c, s, f) in runner.runs for s in seeds for f in range(5))

    text = [
        "# Regularising the training loop, default IDF encoder (`benchmarks/regularisation.py`)", "",
        "239 images, EfficientNet-Lite0 descriptors, se_text IDF-GloVe; reference (\"defaults\"): the defaults "
        "before issue 14, triple loss, batch 32, margin 0.25, SGD lr 0.5 (constant), momentum 0.9, 30 epochs. 15 runs per row (5 folds x 3 seeds), mean ± std; "
        "Δ: paired difference to the defaults on the same 15 splits, mean ± std of the 15 differences "
        "(runs better/worse); clear gain: mean > std.", "",
        "## Selection: seeds 0, 1, 2 (the best rows are optimistic: picked on these splits)",
    ]
    for stage, configs in STAGES.items():
        configs = [c for c in configs if done(c, SELECTION_SEEDS)]
        if configs:
            text += ["", f"### {stage}", ""] + table(runner, configs, SELECTION_SEEDS)
    confirmed = [c for c in CONFIRM if done(c, CONFIRMATION_SEEDS)]
    if confirmed:
        text += ["", "## Confirmation: fresh splits, seeds 3, 4, 5 (settings fixed before these runs)", ""]
        text += table(runner, confirmed, CONFIRMATION_SEEDS)
    text += ["", "## Conclusion", "",
             "Weight decay only hurts here: the image embedding is L2-normalised, so shrinking the weight (not the "
             "bias) changes no ranking except by making the bias dominate, and acts as a larger effective step. What "
             "helps is a cosine learning-rate schedule with more epochs: the noisy constant-rate SGD ends far from a "
             "minimum rather than over-fitted (fewer epochs at a constant rate are worse, not better). The candidate "
             "chosen on seeds 0-2 (cosine, lr 1.0, 60 epochs; the course's triple loss) is confirmed on the fresh "
             "seeds 3-5 with a clear paired R@1 gain and became the default (`TrainConfig`). Against issue 14's target "
             "(R@1 >= 0.30, R@10 >= 0.87): R@1 is met on the fresh seeds (0.309) but not on the selection seeds "
             "(0.291); R@10 (0.866 / 0.867) stays just short. In-batch losses with the schedule (InfoNCE, VSE++) "
             "do not beat it for IDF."]
    (out / "regularisation.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"({time.time() - start:.0f} s wall)")


if __name__ == "__main__":
    main()
