"""Image tags measured against the images' own captions: the old GloVe tags, ImageNet labels, the merge.

Two measures (:mod:`semsearch.routes.tag_quality`) on each image's top-5 tags: the **hit rate**
(share of images with a tag one of whose words is in the image's own captions, plural "s"
stripped) and the **precision** (mean share of the 5 tags that hit).

Two sets:

- **sample**: the embedded sample's 154 images, tagged as ``semsearch serve`` shows them: the
  shipped model's embeddings (trained on these images) and its text encoder (IDF over the
  25,014 val2017 captions);
- **data**: the data folder's 239 images, each embedded by a model that never saw it (5 folds,
  ``kfold_images(seed=0)``, default training), with a text encoder fitted on the val2017
  captions of the *other* 4,841+ images, so neither the model nor the tag vocabulary has seen
  the captions it is scored against.

Prints the comparison table, then the grid the merge's two settings were chosen on.

    python benchmarks/tags.py [--data DIR]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semsearch import sample
from semsearch.bundle import load_bundle
from semsearch.coco import CocoCaptions
from semsearch.dataset import join
from semsearch.descriptors import Descriptors
from semsearch.dataset import kfold_images
from semsearch.model import Autoembedder
from semsearch.paths import data_dir
from semsearch.routes.classifier import classifier_for
from semsearch.routes.tag_quality import tag_scores
from semsearch.routes.tagger import Tagger, TagSettings
from semsearch.text import TextEmbedder
from semsearch.training import train

K = 5
#: Sample images shown before and after (22892: the cat-and-dog photo of issue 23).
EXAMPLES = [139, 19221, 22892, 145311]


def sample_set():
    data = sample.load()
    _, text_encoder, database = load_bundle(sample.model_dir())
    ids = database.keys
    return ids, database.vectors, data.descriptors.vectors_of(ids), text_encoder, captions_of(data, ids)


def data_set(folder: Path):
    coco = CocoCaptions.load(folder / "coco/annotations/captions_val2017.json",
                             folder / "coco/annotations/captions_train2017_mini.json")
    data = join(coco, Descriptors.load(folder / "descriptors/effnet_lite0_coco_mini.pkl"), warn=False)
    ids = np.asarray(data.image_ids)
    held = set(ids.tolist())
    owners = coco.images_of(coco.caption_ids)
    others = coco.caption_ids[~np.isin(owners, list(held))]
    text_encoder = TextEmbedder.fit(coco.captions(others))
    vectors = np.zeros((len(ids), text_encoder.dim), np.float32)
    for fold, (train_ids, test_ids) in enumerate(kfold_images(ids, 5, seed=0)):
        model = Autoembedder(data.descriptors.dim, seed=fold)
        train(model, data, text_encoder, train_ids, progress=False)
        vectors[np.searchsorted(ids, test_ids)] = model.embed(data.descriptors.vectors_of(test_ids))
    return ids, vectors, data.descriptors.vectors_of(ids), text_encoder, captions_of(data, ids)


def captions_of(data, ids):
    return [data.captions.captions(data.captions.caption_ids_of_images([i])) for i in ids]


def score(tagger: Tagger, vectors, descriptors, captions):
    tags = tagger.tags(vectors, descriptors, k=K)
    return tag_scores([[t.text for t in row] for row in tags], captions, k=K), tags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data folder (default $SEMSEARCH_DATA or ./data)")
    args = parser.parse_args()
    start = time.perf_counter()
    classifier = classifier_for("efficientnet-lite0")
    sets = {"sample (154)": sample_set(), "data folder (239, held out)": data_set(data_dir(args.data))}
    rows = {
        "GloVe words nearest the embedding (the old tags)": lambda enc: Tagger(enc, None, TagSettings(vocabulary="glove")),
        "GloVe words, caption vocabulary (no classifier)": lambda enc: Tagger(enc, None),
        "ImageNet labels alone (top 5)": lambda enc: Tagger(None, classifier),
        "merge (chosen: labels p >= 0.5, words at mix 0.5)": lambda enc: Tagger(enc, classifier),
    }
    print("| tags | " + " | ".join(f"{name}: hit rate | precision" for name in sets) + " |")
    print("|---|" + "---:|---:|" * len(sets))
    for label, make in rows.items():
        cells = []
        for _ids, vectors, descriptors, enc, captions in sets.values():
            s, _ = score(make(enc), vectors, descriptors, captions)
            cells += [f"{s.hit_rate:.3f}", f"{s.precision:.3f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\nThe merge's settings (hit rate / precision; sample | data folder):\n")
    print("| mix | labels p >= 0.3 | labels p >= 0.5 | no labels |")
    print("|---:|---|---|---|")
    for mix in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0):
        cells = []
        for settings in (TagSettings(mix=mix, label_threshold=0.3), TagSettings(mix=mix), TagSettings(mix=mix, max_labels=0)):
            parts = []
            for _ids, vectors, descriptors, enc, captions in sets.values():
                s, _ = score(Tagger(enc, classifier, settings), vectors, descriptors, captions)
                parts.append(f"{s.hit_rate:.3f} / {s.precision:.3f}")
            cells.append(" \\| ".join(parts))
        print(f"| {mix} | " + " | ".join(cells) + " |")

    ids, vectors, descriptors, enc, captions = sets["sample (154)"]
    print("\nSample images, top-5 tags before (old) and after (merge):\n")
    old, new = Tagger(enc, None, TagSettings(vocabulary="glove")), Tagger(enc, classifier)
    for i in np.searchsorted(ids, EXAMPLES):
        before = old.tags(vectors[i], None, k=K)[0]
        after = new.tags(vectors[i], descriptors[i], k=K)[0]
        print(f"- {int(ids[i])} ({captions[i][0].strip()})")
        print(f"  - before: {', '.join(str(t) for t in before)}")
        print(f"  - after:  {', '.join(str(t) for t in after)}")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
