"""Choose the relevance-feedback weights by simulated feedback on the data folder (run by hand).

    SEMSEARCH_DATA=... python benchmarks/feedback.py [--epochs 60]

5 folds x 3 seeds: a model is trained on four fifths of the data folder's images (the default
TrainConfig), and every caption of the held-out images is a query whose one relevant image is
the one it describes. Round 1 ranks the held-out images. The simulated person then marks the
relevant image good if it is in the top 10, and the top 3 non-relevant images of the top 10
bad. Round 2 searches with :func:`semsearch.routes.feedback.rocchio` (alpha 1) for each (beta, gamma)
of a grid. Reported: MRR of both rounds, paired per fold and seed, over all queries and over
the queries whose relevant image was *not* in the top 10 (there only "less like this" acts,
and nothing can be moved up by being marked).

Choice: gamma maximises round 2's MRR on those queries (it is the only weight that matters
there; marking the relevant image good trivially lifts it, so that set cannot judge gamma);
beta is the smallest of the grid whose overall round-2 MRR is within 1% of the best (the
larger beta, the more the query becomes "the marked image" and forgets its words, and the
overall MRR saturates). Results go to ``benchmarks/feedback.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HERE = Path(__file__).resolve().parent
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75)
N_BAD = 3


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reciprocal_ranks(queries, images, relevant):
    scores = queries @ images.T
    target = scores[np.arange(len(queries)), relevant]
    return 1.0 / (1 + (scores > target[:, None]).sum(axis=1))


def simulate(queries, images, relevant):
    """Round 1's reciprocal ranks, who was in the top 10, and round 2's for each (beta, gamma)."""
    from semsearch.routes.feedback import rocchio

    scores = queries @ images.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    found = (order == relevant[:, None]).any(axis=1)
    bad = [row[row != r][:N_BAD] for row, r in zip(order, relevant)]
    first = reciprocal_ranks(queries, images, relevant)
    second = {}
    for beta in BETAS:
        for gamma in GAMMAS:
            moved = np.stack([rocchio(q, images[[r]] if f else None, images[b], beta=beta, gamma=gamma)
                              for q, r, f, b in zip(queries, relevant, found, bad)])
            second[(beta, gamma)] = reciprocal_ranks(moved, images, relevant)
    return first, found, second


def main(argv=None) -> None:
    from semsearch.dataset import kfold_images
    from semsearch.model import embed_images
    from semsearch.paths import find_data_files
    from semsearch.training import TrainConfig
    from semsearch.workflow import load_data, train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    data, text_encoder = load_data(*find_data_files(os.environ.get("SEMSEARCH_DATA")))
    runs = []
    for seed in args.seeds:
        for fold, (train_ids, held_out) in enumerate(kfold_images(data.image_ids, 5, seed=seed)):
            model, _ = train_model(data, text_encoder, train_ids, config=TrainConfig(seed=seed, epochs=args.epochs))
            split = data.split(held_out)
            images = unit(np.asarray(embed_images(model, split.descriptor_vectors), np.float64))
            queries = unit(np.asarray(text_encoder(split.caption_texts), np.float64))
            first, found, second = simulate(queries, images, split.image_rows)
            runs.append((first, found, second))
            print(f"seed {seed} fold {fold}: {len(queries)} queries, {len(images)} images, round-1 MRR "
                  f"{first.mean():.3f}, relevant in the top 10 for {found.mean():.0%}", flush=True)
    table = {}
    for key in runs[0][2]:
        gain = np.array([s[key].mean() - f.mean() for f, _, s in runs])
        missed = np.array([s[key][~m].mean() - f[~m].mean() for f, m, s in runs])
        table[key] = dict(mrr1=float(np.mean([f.mean() for f, _, _ in runs])),
                          mrr2=float(np.mean([s[key].mean() for _, _, s in runs])),
                          gain=float(gain.mean()), gain_sd=float(gain.std(ddof=1)), runs_improved=int((gain > 0).sum()),
                          missed_mrr1=float(np.mean([f[~m].mean() for f, m, _ in runs])),
                          missed_mrr2=float(np.mean([s[key][~m].mean() for f, m, s in runs])),
                          missed_gain=float(missed.mean()), missed_gain_sd=float(missed.std(ddof=1)),
                          missed_runs_improved=int((missed > 0).sum()))
    gamma = max(GAMMAS, key=lambda g: (round(table[(0.0, g)]["missed_mrr2"], 6), -g))
    best = max(table[(b, gamma)]["mrr2"] for b in BETAS)
    beta = min(b for b in BETAS if table[(b, gamma)]["mrr2"] >= 0.99 * best)
    print(f"\n{'beta':>5} {'gamma':>6} {'MRR 1':>6} {'MRR 2':>6} {'gain (sd)':>15} {'runs up':>8} | "
          f"{'missed: MRR 1':>13} {'MRR 2':>6} {'gain (sd)':>15} {'runs up':>8}")
    for (b, g), row in table.items():
        mark = "  <- chosen" if (b, g) == (beta, gamma) else ""
        print(f"{b:5.2f} {g:6.2f} {row['mrr1']:6.3f} {row['mrr2']:6.3f} {row['gain']:+7.3f} ({row['gain_sd']:.3f})"
              f" {row['runs_improved']:5d}/{len(runs)} | {row['missed_mrr1']:13.3f} {row['missed_mrr2']:6.3f} "
              f"{row['missed_gain']:+7.3f} ({row['missed_gain_sd']:.3f}) {row['missed_runs_improved']:5d}/{len(runs)}{mark}")
    result = {"beta": beta, "gamma": gamma, "alpha": 1.0, "n_bad": N_BAD, "epochs": args.epochs, "seeds": args.seeds,
              "folds": 5, "grid": {f"beta={b},gamma={g}": row for (b, g), row in table.items()}}
    (HERE / "feedback.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
