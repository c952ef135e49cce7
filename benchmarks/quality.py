"""Retrieval quality of semsearch on the real data: training settings, caption baselines, se_text.

Run by hand (it is not a test)::

    python benchmarks/quality.py --data ../shared/data                  # full: 3 seeds, ~10-12 min on 2 cores
    python benchmarks/quality.py --data ../shared/data --quick --out /tmp/q   # smoke run, ~1-2 min

Protocol (image side). The images that have both captions and a descriptor (239 on the
shared data, 1280-d EfficientNet-Lite0 descriptors) are split 5-fold *by image* with
``kfold_images(image_ids, 5, seed=s)`` for every seed ``s``; each fold trains
``Autoembedder(D, seed=s)`` with ``train(..., seed=s)`` on 4/5 of the images and scores text ->
image retrieval on the held-out ~48 images (every caption of them a query,
:func:`semsearch.evaluation.evaluate`). With 3 seeds that is 15 runs per configuration;
tables give mean +- std (ddof 1) over them, and the paired difference to the library
defaults over the same 15 folds (mean +- standard error, and in how many of the runs the
configuration is better / worse). The caption baselines
(:mod:`semsearch.routes.baselines`) are scored on the same folds.

Protocol (text side). All captions of captions_val2017.json (25,014 over 5,000 images): each
caption is a query, its own image the target, every image scored by its *other* captions
(mean or max of the cosines), for se_text with IDF / mean / SIF weighting and for the
one-hot and TF-IDF caption vectors. It also times se_text (captions/s) on 414,113 captions.

Writes ``<out>/quality_results.json`` (every run, the summaries, the text side) and plots in
``<out>/figures/``, and prints markdown tables. ``--replot`` redraws the tables and plots from
that JSON file without training anything.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

import semsearch as ss
from semsearch.routes.baselines import caption_baseline_scores, caption_to_image_retrieval
from semsearch.evaluation import chance_levels, evaluate
from semsearch.glove import load_glove
from semsearch.paths import data_dir
from semsearch.text import inverse_document_frequency
from semsearch.training import TrainConfig

DEFAULTS = {k: v for k, v in TrainConfig().as_dict().items() if k not in ('validation_fraction', 'seed')}

METRICS = ("recall@1", "recall@5", "recall@10", "median_rank", "mrr")
N_FOLDS = 5
COCO_TRAIN_CAPTIONS = 414_113  # captions of COCO train2014, for the se_text speed
T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] {message}", flush=True)


# --------------------------------------------------------------------------- configurations
def config(name: str, *, kind: str = "train", descriptors: str = "raw", weighting: str = "idf", **train_kwargs) -> dict:
    """One configuration: how to get a model (or a baseline score) for one fold."""
    return dict(name=name, kind=kind, descriptors=descriptors, weighting=weighting, train=train_kwargs)


def all_configs(quick: bool) -> Dict[str, dict]:
    """id -> configuration. ``default`` trains with :data:`semsearch.training.DEFAULTS` as they are."""
    d = DEFAULTS
    c: Dict[str, dict] = {}
    c["chance"] = config("chance", kind="chance")
    c["untrained"] = config("untrained map (random init)", kind="untrained")
    c["default"] = config(
        f"defaults: SGD lr {d['learning_rate']:g} mom {d['momentum']:g}, margin {d['margin']:g}, "
        f"{d['epochs']} ep, batch {d['batch_size']}, random neg."
    )
    hard = (10,) if quick else (3, 5, 10)
    for n in hard:
        c[f"hard{n}"] = config(f"hard negatives, {n} candidates", negatives="hard", n_candidates=n)
    for lr in ((0.003,) if quick else (0.001, 0.003, 0.01)):
        c[f"adam{lr:g}"] = config(f"Adam lr {lr:g}", optimizer="adam", learning_rate=lr)
    for lr in ((0.1,) if quick else (0.03, 0.1, 0.5, 1.0, 2.0)):
        if lr != d["learning_rate"]:
            c[f"sgd{lr:g}"] = config(f"SGD lr {lr:g}", learning_rate=lr)
    for m in ((0.1,) if quick else (0.1, 0.25, 0.5, 1.0)):
        if m != d["margin"]:
            c[f"margin{m:g}"] = config(f"margin {m:g}", margin=m)
    for e in ((1, 5) if quick else (1, 2, 5, 10, 20, 30, 60)):
        if e != d["epochs"]:
            c[f"epochs{e}"] = config(f"{e} epochs", epochs=e)
    c["centred"] = config("descriptors centred", descriptors="centred")
    if not quick:
        c["l2"] = config("descriptors L2-normalised", descriptors="l2")
    for lr in ((0.5,) if quick else (0.1, 0.5, 2.0)):
        key = "cl2" if lr == d["learning_rate"] else f"cl2_sgd{lr:g}"
        c[key] = config(f"descriptors centred + L2, SGD lr {lr:g}", descriptors="centred+l2", learning_rate=lr)
    if not quick:
        c["cl2_adam0.003"] = config("descriptors centred + L2, Adam lr 0.003", descriptors="centred+l2",
                                    optimizer="adam", learning_rate=0.003)
    for w in (("mean",) if quick else ("mean", "sif")):
        c[f"text_{w}"] = config(f"se_text weighting {w} (train + eval)", weighting=w)
    if not quick:  # does SIF move the best learning rate or margin?
        c["text_sif_sgd1"] = config("se_text sif, SGD lr 1", weighting="sif", learning_rate=1.0)
        c["text_sif_margin0.1"] = config("se_text sif, margin 0.1", weighting="sif", margin=0.1)
        c["text_sif_margin0.5"] = config("se_text sif, margin 0.5", weighting="sif", margin=0.5)
    methods = (("tfidf", "idf"), ("glove", "idf")) if quick else (
        ("onehot", "idf"), ("tfidf", "idf"), ("glove", "idf"), ("glove", "mean"), ("glove", "sif"))
    labels = {"onehot": "one-hot", "tfidf": "TF-IDF"}
    for method, w in methods:
        for reduce in ("mean", "max"):
            label = labels.get(method, f"{w.upper() if w != 'mean' else 'mean'}-GloVe (se_text {w})")
            c[f"base_{method}_{w}_{reduce}"] = config(
                f"caption baseline {label}, {reduce}", kind="baseline", weighting=w, method=method, reduce=reduce)
    return c


def groups(configs: Dict[str, dict]) -> Dict[str, List[str]]:
    """Table sections: ids in display order (only those that exist)."""
    d = DEFAULTS
    keyed = lambda prefix, values, default_value: [  # noqa: E731
        "default" if v == default_value else f"{prefix}{v:g}" for v in values]
    spec = {
        "reference": ["chance", "untrained", "default"],
        "negatives": ["default", "hard3", "hard5", "hard10"],
        "optimizer and learning rate": ["sgd0.03", "sgd0.1", "default", "sgd1", "sgd2", "adam0.001", "adam0.003", "adam0.01"],
        "margin": keyed("margin", (0.1, 0.25, 0.5, 1.0), d["margin"]),
        "epochs (learning curve)": keyed("epochs", (1, 2, 5, 10, 20, 30, 60), d["epochs"]),
        "descriptors": ["default", "centred", "l2", "cl2_sgd0.1", "cl2", "cl2_sgd2", "cl2_adam0.003"],
        "se_text weighting": ["default", "text_mean", "text_sif", "text_sif_sgd1", "text_sif_margin0.1", "text_sif_margin0.5"],
        "caption baselines": ["default"] + [k for k in configs if k.startswith("base_")],
    }
    return {g: [k for k in ids if k in configs] for g, ids in spec.items()}


# --------------------------------------------------------------------------- data
def load_data(folder: Path):
    annotations = folder / "coco" / "annotations"
    coco = ss.CocoCaptions.load(annotations / "captions_val2017.json", annotations / "captions_train2017_mini.json")
    descriptors = ss.Descriptors.load(folder / "descriptors" / "effnet_lite0_coco_mini.pkl")
    data = ss.join(coco, descriptors, warn=False)
    val2017 = ss.CocoCaptions.load(annotations / "captions_val2017.json")
    return coco, data, val2017


def transformed(data: ss.CaptionedImages, how: str, train_ids) -> ss.CaptionedImages:
    """The same captions with descriptors centred on the *training* images' mean and/or L2-normalised."""
    if how == "raw":
        return data
    x = data.descriptors.vectors.astype(np.float64)
    if how in ("centred", "centred+l2"):
        x = x - data.descriptors.vectors_of(train_ids).mean(axis=0)
    if how in ("l2", "centred+l2"):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    descriptors = ss.Descriptors(dict(zip(data.descriptors.ids.tolist(), x.astype(np.float32))))
    return ss.CaptionedImages(data.captions, descriptors)


# --------------------------------------------------------------------------- the image side
def run_one(cfg: dict, data, coco, embedders, train_ids, val_ids, seed: int, cache: dict) -> dict:
    """Scores of one configuration on one fold, as a flat dict."""
    started = time.perf_counter()
    text_encoder = embedders[cfg["weighting"]]
    history = None
    if cfg["kind"] == "chance":
        row = chance_levels(len(val_ids))
    elif cfg["kind"] == "baseline":
        scores = caption_baseline_scores(coco, val_ids, method=cfg["train"]["method"], reduce=cfg["train"]["reduce"],
                                         text_encoder=text_encoder if cfg["train"]["method"] == "glove" else None)
        row = scores.as_dict()
    else:
        key = (cfg["descriptors"], id(train_ids))
        if key not in cache:
            cache[key] = transformed(data, cfg["descriptors"], train_ids)
        fold_data = cache[key]
        model = ss.Autoembedder(fold_data.descriptors.dim, seed=seed)
        if cfg["kind"] == "train":
            kwargs = dict(cfg["train"])
            # the longest learning-curve run keeps its per-epoch history (loss, triple accuracy)
            with_val = kwargs.get("epochs") == 60
            history = ss.train(model, fold_data, text_encoder, train_ids, val_ids if with_val else None,
                               seed=seed, progress=False, **kwargs)
        row = evaluate(model, fold_data, text_encoder, val_ids).as_dict()
    row = {k: float(row[k]) for k in METRICS}
    row["seconds"] = time.perf_counter() - started
    if history is not None:
        row["history"] = history.as_dict()
    return row


def image_side(configs, data, coco, embedders, seeds) -> Dict[str, List[dict]]:
    runs: Dict[str, List[dict]] = {k: [] for k in configs}
    folds = {s: list(ss.kfold_images(data.image_ids, N_FOLDS, seed=s)) for s in seeds}
    total = len(configs) * len(seeds) * N_FOLDS
    done = 0
    for key, cfg in configs.items():
        started = time.perf_counter()
        for seed in seeds:
            cache: dict = {}
            for fold, (train_ids, val_ids) in enumerate(folds[seed]):
                row = run_one(cfg, data, coco, embedders, train_ids, val_ids, seed, cache)
                row.update(seed=seed, fold=fold, n_val_images=len(val_ids))
                runs[key].append(row)
                done += 1
        r = summarise(runs[key])
        log(f"{done}/{total} {cfg['name']}: R@1 {r['recall@1']['mean']:.3f}  R@10 {r['recall@10']['mean']:.3f}  "
            f"MRR {r['mrr']['mean']:.3f}  ({time.perf_counter() - started:.1f} s)")
    return runs


def summarise(rows: List[dict], reference: Optional[List[dict]] = None) -> dict:
    out = {}
    for m in METRICS:
        v = np.array([r[m] for r in rows])
        out[m] = dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                      min=float(v.min()), max=float(v.max()))
        if reference is not None:
            diff = v - np.array([r[m] for r in reference])  # same seeds and folds, same order
            out[m]["paired_diff_mean"] = float(diff.mean())
            out[m]["paired_diff_std"] = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
            out[m]["paired_diff_se"] = out[m]["paired_diff_std"] / np.sqrt(len(diff))
            better = diff < 0 if m == "median_rank" else diff > 0
            out[m]["paired_better"] = int(better.sum())
            out[m]["paired_worse"] = int((diff != 0).sum() - better.sum())
    out["n_runs"] = len(rows)
    out["seconds_per_run"] = float(np.mean([r["seconds"] for r in rows]))
    return out


# --------------------------------------------------------------------------- the text side
def text_side(val2017: ss.CocoCaptions, embedders, all_texts: List[str], n_images: Optional[int], quick: bool) -> dict:
    image_ids = val2017.image_ids if n_images is None else val2017.image_ids[:n_images]
    caption_ids = val2017.caption_ids_of_images(image_ids)
    texts = val2017.captions(caption_ids)
    targets = np.searchsorted(image_ids, val2017.images_of(caption_ids))
    idf = inverse_document_frequency(all_texts)
    rows = []
    variants = [("glove", w) for w in embedders] + [("tfidf", "idf"), ("onehot", "idf")]
    for method, w in variants:
        for reduce in ("mean", "max"):
            started = time.perf_counter()
            scores = caption_to_image_retrieval(
                texts, targets, len(image_ids), method=method, reduce=reduce,
                idf=idf if method == "tfidf" else None,
                text_encoder=embedders[w] if method == "glove" else None)
            row = dict(method=method, weighting=w if method == "glove" else None, reduce=reduce, **scores.as_dict(),
                       n_queries=scores.n_queries, n_images=scores.n_images, seconds=time.perf_counter() - started)
            rows.append(row)
            log(f"text side {method}/{w}/{reduce}: R@1 {row['recall@1']:.3f}  R@10 {row['recall@10']:.3f}  "
                f"MRR {row['mrr']:.3f}  median rank {row['median_rank']:g}  ({row['seconds']:.1f} s)")
    # se_text throughput: val2017 captions repeated to the size of COCO train2014's captions
    n = COCO_TRAIN_CAPTIONS // (10 if quick else 1)
    corpus = (val2017.captions(val2017.caption_ids) * (n // len(val2017.caption_ids) + 1))[:n]
    speed = {}
    for w in ("idf", "sif"):
        if w not in embedders:
            continue
        started = time.perf_counter()
        embedders[w](corpus)
        seconds = time.perf_counter() - started
        speed[w] = dict(n_captions=n, seconds=seconds, captions_per_s=n / seconds)
        log(f"se_text ({w}) on {n} captions: {seconds:.2f} s, {n / seconds:,.0f} captions/s")
    return dict(rows=rows, n_images=len(image_ids), n_captions=len(texts), se_text_speed=speed)


# --------------------------------------------------------------------------- output
def fmt(s: dict, m: str) -> str:
    if m == "median_rank":
        return f"{s[m]['mean']:.1f} ± {s[m]['std']:.1f}"
    return f"{s[m]['mean']:.3f} ± {s[m]['std']:.3f}"


def markdown_tables(configs, summaries, group_ids) -> str:
    lines = []
    for title, ids in group_ids.items():
        if not ids:
            continue
        lines += [f"#### {title}", "",
                  "| configuration | R@1 | R@5 | R@10 | median rank | MRR | ΔR@1 paired | ΔMRR paired (better/worse runs) |",
                  "|---|---|---|---|---|---|---|---|"]
        for k in ids:
            s = summaries[k]
            diffs = []
            for m in ("recall@1", "mrr"):
                d = s[m].get("paired_diff_mean")
                if k == "default" or d is None:
                    diffs.append("—")
                else:
                    diffs.append(f"{d:+.3f} ± {s[m]['paired_diff_se']:.3f}"
                                 + (f" ({s[m]['paired_better']}/{s[m]['paired_worse']})" if m == "mrr" else ""))
            lines.append(f"| {configs[k]['name']} | " + " | ".join(fmt(s, m) for m in METRICS) + " | " + " | ".join(diffs) + " |")
        lines.append("")
    return "\n".join(lines)


def text_table(text: dict) -> str:
    lines = [f"Caption -> image over {text['n_images']:,} images, {text['n_captions']:,} queries "
             "(each image scored by its other captions)", "",
             "| caption vectors | reduce | R@1 | R@5 | R@10 | median rank | MRR |", "|---|---|---|---|---|---|---|"]
    for r in text["rows"]:
        name = f"se_text ({r['weighting']})" if r["method"] == "glove" else {"tfidf": "TF-IDF", "onehot": "one-hot"}[r["method"]]
        lines.append(f"| {name} | {r['reduce']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} "
                     f"| {r['median_rank']:g} | {r['mrr']:.3f} |")
    return "\n".join(lines) + "\n"


def plots(configs, summaries, runs, group_ids, figures: Path) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    written = []
    chance = summaries["chance"]
    d = DEFAULTS

    def save(fig, name):
        path = figures / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))

    def errorline(ax, xs, ids, metric, label, **kw):
        means = [summaries[k][metric]["mean"] for k in ids]
        stds = [summaries[k][metric]["std"] for k in ids]
        ax.errorbar(xs, means, yerr=stds, capsize=3, marker="o", label=label, **kw)

    # learning curve
    ids = group_ids["epochs (learning curve)"]
    epochs = [configs[k]["train"].get("epochs", d["epochs"]) for k in ids]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for metric, label in (("recall@10", "Recall@10"), ("recall@1", "Recall@1"), ("mrr", "MRR")):
        errorline(a1, epochs, ids, metric, label)
        a1.axhline(chance[metric]["mean"], ls=":", color=a1.lines[-1].get_color(), lw=1)
    a1.set_xscale("log")
    a1.set_xticks(epochs)
    a1.set_xticklabels([str(e) for e in epochs])
    a1.set_xlabel("epochs (separate runs; dotted: chance)")
    a1.set_ylabel("validation score, mean ± std over runs")
    a1.set_title("Retrieval on held-out images vs epochs")
    a1.legend(fontsize=8)
    long_key = next((k for k in ids if configs[k]["train"].get("epochs") == 60), None)
    if long_key is not None:
        hist = [r["history"] for r in runs[long_key] if "history" in r]
        for series, label in (("train_accuracy", "train triple accuracy"), ("val_accuracy", "validation triple accuracy")):
            v = np.array([h[series] for h in hist])
            x = np.arange(1, v.shape[1] + 1)
            a2.plot(x, v.mean(0), label=label)
            a2.fill_between(x, v.mean(0) - v.std(0), v.mean(0) + v.std(0), alpha=0.2)
        a2.set_xlabel("epoch (the 60-epoch runs)")
        a2.set_ylabel("fraction of triples ranked right")
        a2.set_title("Triple accuracy per epoch")
        a2.legend(fontsize=8)
    else:
        fig.delaxes(a2)
    fig.tight_layout()
    save(fig, "learning_curve.png")

    # bar chart of every configuration
    order = [k for k in configs]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.28 * len(order) + 1.2), sharey=True)
    y = np.arange(len(order))
    for ax, metric in zip(axes, ("recall@1", "recall@10")):
        means = [summaries[k][metric]["mean"] for k in order]
        stds = [summaries[k][metric]["std"] for k in order]
        colors = ["tab:gray" if configs[k]["kind"] in ("chance", "untrained") else
                  "tab:orange" if configs[k]["kind"] == "baseline" else
                  "tab:green" if k == "default" else "tab:blue" for k in order]
        ax.barh(y, means, xerr=stds, color=colors, capsize=2, error_kw=dict(lw=0.8))
        ax.axvline(summaries["default"][metric]["mean"], color="tab:green", ls="--", lw=0.8)
        ax.set_title(f"{metric.replace('recall', 'Recall')} (mean ± std)")
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([configs[k]["name"] for k in order], fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    save(fig, "configurations.png")

    # margin and learning rate
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ids = group_ids["margin"]
    margins = [configs[k]["train"].get("margin", d["margin"]) for k in ids]
    for metric, label in (("recall@10", "Recall@10"), ("recall@1", "Recall@1"), ("mrr", "MRR")):
        errorline(a1, margins, ids, metric, label)
    a1.set_xlabel(f"margin (SGD lr {d['learning_rate']:g}, {d['epochs']} epochs)")
    a1.set_title("Margin")
    a1.legend(fontsize=8)
    sgd = [k for k in group_ids["optimizer and learning rate"] if k == "default" or k.startswith("sgd")]
    adam = [k for k in group_ids["optimizer and learning rate"] if k.startswith("adam")]
    for ids, opt, style in ((sgd, "SGD mom 0.9", "-"), (adam, "Adam", "--")):
        if not ids:
            continue
        lrs = [configs[k]["train"].get("learning_rate", d["learning_rate"]) for k in ids]
        for metric, color in (("recall@10", "tab:blue"), ("mrr", "tab:green")):
            errorline(a2, lrs, ids, metric, f"{opt} {metric.replace('recall', 'R').replace('mrr', 'MRR')}",
                      ls=style, color=color)
    a2.set_xscale("log")
    a2.set_xlabel("learning rate")
    a2.set_title(f"Learning rate ({d['epochs']} epochs, margin {d['margin']:g})")
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.set_ylabel("validation score, mean ± std")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, "margin_learning_rate.png")
    return written


def rounded(value, digits: int = 5):
    """Floats rounded, for a smaller JSON file."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder (default $SEMSEARCH_DATA, else ./data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="k-fold / model seeds (default 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer configurations, text side on 1,000 images")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"), help="where quality_results.json and figures/ go")
    parser.add_argument("--no-text", action="store_true", help="skip the text side (25,014 captions)")
    parser.add_argument("--replot", action="store_true", help="tables and plots from <out>/quality_results.json only")
    args = parser.parse_args()
    if args.replot:
        return replot(args.out)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    folder = data_dir(args.data)
    warnings.simplefilter("ignore")

    coco, data, val2017 = load_data(folder)
    log(f"data: {data}; val2017 {len(val2017.image_ids)} images, {len(val2017.caption_ids)} captions")
    glove = load_glove()
    all_texts = coco.captions(coco.caption_ids)
    embedders = {w: ss.TextEmbedder.fit(all_texts, glove, weighting=w) for w in ("idf", "mean", "sif")}
    log(f"se_text fitted (idf, mean, sif) on {len(all_texts)} captions of both files; defaults {DEFAULTS}")

    configs = all_configs(args.quick)
    runs = image_side(configs, data, coco, embedders, seeds)
    summaries = {k: summarise(v, runs["default"] if k != "default" else None) for k, v in runs.items()}
    group_ids = groups(configs)
    tables = markdown_tables(configs, summaries, group_ids)

    text = None
    if not args.no_text:
        text = text_side(val2017, embedders, all_texts, 1000 if args.quick else None, args.quick)

    args.out.mkdir(parents=True, exist_ok=True)
    figures = plots(configs, summaries, runs, group_ids, args.out / "figures")
    results = dict(
        protocol=dict(data=str(folder), seeds=seeds, n_folds=N_FOLDS, images=len(data.image_ids),
                      captions=len(data.captions.caption_ids), descriptor_dim=data.descriptors.dim,
                      defaults=DEFAULTS, quick=args.quick),
        machine=dict(platform=platform.platform(), python=platform.python_version(), numpy=np.__version__,
                     cpu_count=os.cpu_count(), loadavg=os.getloadavg()),
        configs=configs, groups=group_ids, summaries=summaries, runs=runs, text_side=text, figures=figures,
        total_seconds=time.perf_counter() - T0,
    )
    path = args.out / "quality_results.json"
    with open(path, "w") as f:
        json.dump(rounded(results), f, separators=(",", ":"))
    print_tables(results["protocol"], tables, text)
    log(f"wrote {path} and {len(figures)} figures")


def print_tables(protocol: dict, tables: str, text: Optional[dict]) -> None:
    print()
    print(f"### Image side: {protocol['images']} images, {protocol['n_folds']} folds x seeds {protocol['seeds']} "
          f"= {len(protocol['seeds']) * protocol['n_folds']} runs per row, mean ± std; "
          "paired differences to the defaults: mean ± standard error\n")
    print(tables)
    if text is not None:
        print("### Text side\n")
        print(text_table(text))


def replot(out: Path) -> None:
    with open(out / "quality_results.json") as f:
        results = json.load(f)
    configs, runs, group_ids = results["configs"], results["runs"], results["groups"]
    summaries = {k: summarise(v, runs["default"] if k != "default" else None) for k, v in runs.items()}
    figures = plots(configs, summaries, runs, group_ids, out / "figures")
    print_tables(results["protocol"], markdown_tables(configs, summaries, group_ids), results["text_side"])
    log(f"redrew {len(figures)} figures from {out / 'quality_results.json'}")


if __name__ == "__main__":
    sys.exit(main())
