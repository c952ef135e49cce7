"""Every text -> image route on the same folds: learned map, generated captions, ConSE tags, human captions.

Run by hand (needs the [captioner] and [classifier] extras):

    SEMSEARCH_DATA=path/to/data OMP_NUM_THREADS=1 python benchmarks/routes.py [--folds 5] [--epochs 30]

On the shared real data (239 images) each fold trains the learned map (seconds) and a caption
generator (about a minute on 2 cores at the defaults). It prints a table and writes it, with
the settings, to ``benchmarks/routes.md``. Routes:

- learned map: ``workflow.train_model`` (library defaults) + ``evaluate``;
- generated captions: ``captioner.train_captioner`` on the fold's training images, one
  caption per validation image, ranked by ``sim(Q, T_k)`` (TF-IDF and IDF-GloVe vectors);
  also BLEU-4 and CIDEr of those captions against the images' human captions;
- classifier tags (ConSE, top 10 EfficientNet-Lite0 classes): no training at all;
- human-caption baselines (``baselines.caption_baseline_scores``): the images' *other* captions;
- chance.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from semsearch.routes.baselines import caption_baseline_scores
from semsearch.routes.captioner import caption_quality, generated_caption_scores, train_captioner
from semsearch.routes.classifier import ConSE, ImageNetClassifier
from semsearch.coco import CocoCaptions
from semsearch.dataset import kfold_images
from semsearch.evaluation import evaluate
from semsearch.workflow import find_data_files, load_data, train_model

KEYS = ("recall@1", "recall@5", "recall@10", "median_rank", "mrr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data folder (default $SEMSEARCH_DATA, else ./data)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30, help="caption generator epochs")
    parser.add_argument("--hidden", type=int, default=256, help="caption generator GRU size")
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("routes.md")))
    args = parser.parse_args()

    caption_files, descriptor_file = find_data_files(args.data)
    data, text_encoder = load_data(caption_files, descriptor_file)
    coco = CocoCaptions.load(*caption_files)
    classifier = ImageNetClassifier.from_efficientnet_lite0()
    conse = ConSE(classifier, text_encoder, top=10)
    print(f"{len(data.image_ids)} images; ConSE: {conse.n_unknown_labels} of 1000 labels have no known word")

    rows: dict = {}
    quality = {"greedy": [], "beam": []}
    seconds = {"map": 0.0, "captioner": 0.0}

    def add(name, scores):
        rows.setdefault(name, []).append([scores.as_dict()[k] for k in KEYS])

    for fold, (train_ids, val_ids) in enumerate(kfold_images(data.image_ids, args.folds, seed=args.seed)):
        t = time.perf_counter()
        model, _ = train_model(data, text_encoder, train_ids, seed=args.seed)
        seconds["map"] += time.perf_counter() - t
        scores = evaluate(model, data, text_encoder, val_ids)
        rows.setdefault("chance", []).append([scores.chance[k] for k in KEYS])
        add("learned map (trained, IDF-GloVe)", scores)

        t = time.perf_counter()
        captioner, losses = train_captioner(data, train_ids, hidden=args.hidden, epochs=args.epochs, seed=args.seed)
        seconds["captioner"] += time.perf_counter() - t
        vectors = data.descriptors.vectors_of(val_ids)
        references = {int(i): data.captions.captions_of(i) for i in val_ids}
        for label, beam in (("greedy", 1), ("beam", args.beam)):
            generated = captioner.generate(vectors, beam=beam)
            quality[label].append(caption_quality(dict(zip(map(int, val_ids), generated)), references))
            for method, name in (("tfidf", "TF-IDF"), ("glove", "IDF-GloVe")):
                route = f"generated caption ({label}{'' if beam == 1 else f' {beam}'}), {name}"
                add(route, generated_caption_scores(captioner, data, val_ids, method=method,
                                                    text_encoder=text_encoder if method == "glove" else None,
                                                    captions=generated))
            if fold == 0:
                print(f"  e.g. {int(val_ids[0])}: {label}: {generated[0]!r} | human: {references[int(val_ids[0])][0]!r}")
        print(f"fold {fold}: captioner loss {losses[0]:.2f} -> {losses[-1]:.2f}; "
              f"BLEU-4 {quality['beam'][-1]['bleu4']:.3f} CIDEr {quality['beam'][-1]['cider']:.3f}")

        add("classifier tags (ConSE, top 10)", evaluate(conse, data, text_encoder, val_ids))
        for method, reduce, name in (("onehot", "mean", "one-hot, mean"), ("tfidf", "mean", "TF-IDF, mean"),
                                     ("glove", "max", "IDF-GloVe, max")):
            add(f"human captions ({name})", caption_baseline_scores(coco, val_ids, method=method, reduce=reduce,
                                                                    text_embedder=text_encoder))

    lines = [
        f"Same {args.folds} folds (seed {args.seed}) of {len(data.image_ids)} images, every caption of a held-out "
        "image a query among the held-out images; mean ± std over folds.",
        f"Caption generator: GRU {args.hidden}, {args.epochs} epochs, Adam 3e-3, batch 64, vocabulary of the fold's "
        f"training captions; beam {args.beam}. Learned map: library defaults. Training time over all folds: "
        f"learned map {seconds['map']:.0f} s, caption generator {seconds['captioner']:.0f} s.",
        "",
        "| route | Recall@1 | Recall@5 | Recall@10 | median rank | MRR |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in rows.items():
        values = np.array(values)
        cells = []
        for j, key in enumerate(KEYS):
            fmt = "{:.1f}" if key == "median_rank" else "{:.3f}"
            cell = fmt.format(values[:, j].mean())
            if name != "chance" and key != "median_rank":
                cell += f" ± {values[:, j].std():.3f}"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Generated captions against the held-out images' human captions (pycocoevalcap, mean ± std over folds):", "",
              "| decoding | BLEU-1 | BLEU-4 | CIDEr |", "|---|---|---|---|"]
    for label, q in quality.items():
        cells = [f"{np.mean([s[k] for s in q]):.3f} ± {np.std([s[k] for s in q]):.3f}" for k in ("bleu1", "bleu4", "cider")]
        lines.append(f"| {label}{'' if label == 'greedy' else f' {args.beam}'} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
