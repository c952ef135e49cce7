"""The end-to-end steps the command line runs, as plain functions for scripts and notebooks.

Find the data files, load and join them, train on a split, cross-validate, and format
the results as text.

Example
-------
>>> captions, descriptors = find_data_files("data")                     # doctest: +SKIP
>>> data, embedder = load_data(captions, descriptors)                    # doctest: +SKIP
>>> train_ids, val_ids = split(data, validation_fraction=0.2, seed=0)    # doctest: +SKIP
>>> model, history = train_model(data, embedder, train_ids, val_ids)     # doctest: +SKIP
>>> print(format_scores(evaluate(model, data, embedder, val_ids)))       # doctest: +SKIP
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .coco import CocoCaptions
from .dataset import CaptionedImages, join, kfold_images, split_images
from .descriptors import Descriptors
from .encoders import fit_text_encoder
from .evaluate import RetrievalScores, evaluate
from .model import Autoembedder
from .paths import data_dir as _data_dir
from .text import TextEmbedder
from .train import DEFAULTS, History, train
from .errors import InputError, InputTypeError

PathLike = Union[str, "os.PathLike[str]"]
_CAPTION_FILE = re.compile(r"captions_(?:train|val)(\d{4})(?:_\w+)?\.json$")

#: The descriptor pickle the course ships; its images are COCO train2014.
COURSE_DESCRIPTORS = "resnet18_features.pkl"


def find_data_files(data_dir: Optional[PathLike] = None) -> Tuple[List[Path], Path]:
    """The caption files and the descriptor pickle of a data folder.

    Caption files are ``coco/annotations/captions_{train,val}<year>[_suffix].json``. Files
    of different COCO releases describe the same images differently (2014 and 2017 name
    their files differently), so only one release is used: 2014 with the course's
    ``resnet18_features.pkl`` (it covers train2014), else the newest one there is.
    The descriptor pickle is ``resnet18_features.pkl``, else the first ``*.pkl`` in
    ``descriptors/``, else the first ``*.pkl`` in the folder itself.

    Raises
    ------
    FileNotFoundError
        No caption file or no descriptor pickle; the message says what to do.
    """
    root = _data_dir(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root} (give --data DIR, set SEMSEARCH_DATA, or run `semsearch fetch`)")
    descriptor = root / COURSE_DESCRIPTORS
    if not descriptor.is_file():
        candidates = sorted((root / "descriptors").glob("*.pkl")) + sorted(root.glob("*.pkl"))
        if not candidates:
            raise FileNotFoundError(
                f"no descriptor pickle in {root} ({COURSE_DESCRIPTORS}, descriptors/*.pkl or *.pkl): "
                "run `semsearch fetch` or `semsearch features`"
            )
        descriptor = candidates[0]
    annotations = root / "coco" / "annotations"
    by_year: dict = {}
    for path in sorted(annotations.glob("captions_*.json")):
        match = _CAPTION_FILE.search(path.name)
        if match:
            by_year.setdefault(match.group(1), []).append(path)
    if not by_year:
        raise FileNotFoundError(f"no captions_*.json in {annotations}: run `semsearch fetch` (see data/README.md)")
    year = "2014" if descriptor.name == COURSE_DESCRIPTORS and "2014" in by_year else max(by_year)
    return by_year[year], descriptor


def load_data(
    caption_files: Sequence[PathLike],
    descriptor_file: PathLike,
    text_embedder: Optional[TextEmbedder] = None,
    glove=None,
    *,
    text_encoder: str = "idf",
) -> Tuple[CaptionedImages, TextEmbedder]:
    """Load captions and descriptors, join them, and fit ``se_text`` unless one is given.

    The word weights are computed over every caption of the files (the corpus), including
    images that have no descriptor; the returned data keeps only images that have both. Pass
    ``text_embedder`` (e.g. a saved model's) to use it instead of fitting a new one, or
    ``text_encoder`` ("idf", "sif", "mean", "minilm"; see
    :func:`semsearch.encoders.fit_text_encoder`) to choose which one is fitted.
    """
    coco = CocoCaptions.load(*caption_files)
    descriptors = Descriptors.load(descriptor_file)
    data = join(coco, descriptors, warn=False)  # the caller reports the dropped counts
    if text_embedder is None:
        text_embedder = fit_text_encoder(coco.captions(coco.caption_ids), text_encoder, glove)
    return data, text_embedder


def describe_join(data: CaptionedImages) -> str:
    """One line: how many images and captions were joined, and what was left out."""
    line = f"{len(data.image_ids)} images with {len(data.captions.caption_ids)} captions and a {data.descriptors.dim}-d descriptor"
    left_out = []
    if data.n_dropped_images:
        left_out.append(f"{data.n_dropped_images} captioned images without a descriptor")
    if data.n_unused_descriptors:
        left_out.append(f"{data.n_unused_descriptors} descriptors without captions")
    return line + (f" (left out: {'; '.join(left_out)})" if left_out else "")


def subsample(data: CaptionedImages, max_images: Optional[int], seed: int = 0) -> CaptionedImages:
    """At most ``max_images`` images of ``data``, drawn at random (all of them if fewer)."""
    if max_images is None or len(data.image_ids) <= max_images:
        return data
    if max_images < 2:
        raise InputError(f"max_images must be at least 2, got {max_images}")
    keep = np.sort(np.random.default_rng(seed).choice(data.image_ids, max_images, replace=False))
    return CaptionedImages(data.captions.subset(keep), data.descriptors.subset(keep))


def split(data: CaptionedImages, validation_fraction: float = 0.2, seed: int = 0) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Train and validation image ids; ``validation_fraction=0`` trains on all (validation None)."""
    if validation_fraction == 0:
        return data.image_ids.copy(), None
    return split_images(data.image_ids, validation_fraction=validation_fraction, seed=seed)


def train_model(
    data: CaptionedImages,
    text_embedder: TextEmbedder,
    train_ids: Iterable[int],
    validation_ids: Optional[Iterable[int]] = None,
    *,
    seed: int = 0,
    progress: bool = False,
    **options,
) -> Tuple[Autoembedder, History]:
    """A new :class:`Autoembedder` trained on ``train_ids``; ``options`` as in :func:`semsearch.train.train`."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise InputTypeError(f"unknown training options: {sorted(unknown)}")
    model = Autoembedder(data.descriptors.dim, text_embedder.dim, seed=seed)
    history = train(model, data, text_embedder, train_ids, validation_ids, seed=seed, progress=progress, **options)
    return model, history


def cross_validate(
    data: CaptionedImages, text_embedder: TextEmbedder, n_folds: int = 5, *, seed: int = 0, progress: bool = False, **options
) -> List[RetrievalScores]:
    """Train a fresh model on each of ``n_folds`` folds; the scores on each held-out fold."""
    scores = []
    for train_ids, held_out in kfold_images(data.image_ids, n_folds, seed=seed):
        model, _ = train_model(data, text_embedder, train_ids, seed=seed, progress=progress, **options)
        scores.append(evaluate(model, data, text_embedder, held_out))
    return scores


# --------------------------------------------------------------------------- text output


def _rows(scores: RetrievalScores):
    for k, value in scores.recall.items():
        yield f"Recall@{k}", f"recall@{k}", value, "{:.3f}"
    yield "median rank", "median_rank", scores.median_rank, "{:g}"
    yield "MRR", "mrr", scores.mean_reciprocal_rank, "{:.3f}"


def format_scores(scores: RetrievalScores, title: str = "retrieval") -> str:
    """Recall@K, median rank and MRR with their chance levels, one per line."""
    lines = [f"{title} ({scores.n_queries} caption queries among {scores.n_images} images):"]
    for label, key, value, fmt in _rows(scores):
        lines.append(f"  {label:<12}{fmt.format(value):>8}    (chance {fmt.format(scores.chance[key])})")
    return "\n".join(lines)


def format_cross_validation(folds: Sequence[RetrievalScores]) -> str:
    """Mean ± standard deviation over folds of each score, and the mean chance level."""
    n_images = sum(s.n_images for s in folds)
    lines = [f"{len(folds)}-fold cross-validation ({n_images} images, {sum(s.n_queries for s in folds)} caption queries):"]
    for row, (label, key, _, fmt) in enumerate(_rows(folds[0])):
        values = np.array([list(_rows(s))[row][2] for s in folds], dtype=float)
        chance = float(np.mean([s.chance[key] for s in folds]))
        fmt = "{:.1f}" if key == "median_rank" else fmt
        spread = f"{fmt.format(values.mean())} ± {fmt.format(values.std())}"
        lines.append(f"  {label:<12}{spread:>16}    (chance {fmt.format(chance)})")
    return "\n".join(lines)


def format_history(history: History) -> str:
    """One line per epoch: train loss and accuracy, and validation ones if there are."""
    has_val = bool(history.val_loss)
    header = "epoch  train loss  train acc" + ("  val loss  val acc" if has_val else "")
    lines = [header]
    for e in range(len(history.train_loss)):
        line = f"{e + 1:5d}  {history.train_loss[e]:10.4f}  {history.train_accuracy[e]:9.3f}"
        if has_val:
            line += f"  {history.val_loss[e]:8.4f}  {history.val_accuracy[e]:7.3f}"
        lines.append(line)
    return "\n".join(lines)
