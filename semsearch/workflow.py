"""The end-to-end steps, as plain functions: what ``semsearch train``, ``eval`` and ``demo`` run.

Load and join the data, fit ``se_text``, split, train, evaluate, build the database and save
the model folder: :func:`train_and_save` does all of it and returns a :class:`TrainingRun`
that the command line prints. Notebooks and scripts can call the same functions.

Example
-------
>>> caption_files, descriptor_file = find_data_files("data")            # doctest: +SKIP
>>> data, text_encoder = load_data(caption_files, descriptor_file)       # doctest: +SKIP
>>> run = train_and_save(data, text_encoder, TrainConfig(), out="my-model")  # doctest: +SKIP
>>> print(run.scores)                                                    # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.bundle import save_bundle
from semsearch.coco import CocoCaptions
from semsearch.database import ImageDatabase
from semsearch.dataset import CaptionedImages, join, kfold_images, split_images
from semsearch.descriptors import Descriptors
from semsearch.encoders import TextEncoder, fit_text_encoder
from semsearch.errors import InputError
from semsearch.evaluation import RetrievalScores, evaluate
from semsearch.model import Autoembedder
from semsearch.paths import ENV_VAR, data_dir, find_data_files, image_folder
from semsearch.training import History, TrainConfig, train

PathLike = Union[str, "os.PathLike[str]"]


def load_data(
    caption_files: Sequence[PathLike],
    descriptor_file: PathLike,
    text_encoder: Optional[TextEncoder] = None,
    glove=None,
    *,
    encoder_name: str = "idf",
) -> Tuple[CaptionedImages, TextEncoder]:
    """Load captions and descriptors, join them, and fit ``se_text`` unless one is given.

    The word weights are computed over every caption of the files (the corpus), including
    images that have no descriptor; the returned data keeps only images that have both. Pass
    ``text_encoder`` (e.g. a saved model's) to use it instead of fitting a new one, or
    ``encoder_name`` ("idf", "sif", "mean", "minilm"; see
    :func:`semsearch.encoders.fit_text_encoder`) to choose which one is fitted.
    """
    coco = CocoCaptions.load(*caption_files)
    descriptors = Descriptors.load(descriptor_file)
    data = join(coco, descriptors, warn=False)  # the caller reports the dropped counts
    if text_encoder is None:
        text_encoder = fit_text_encoder(coco.captions(coco.caption_ids), encoder_name, glove)
    return data, text_encoder


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


def train_validation_ids(data: CaptionedImages, config: TrainConfig) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Train and validation image ids; ``validation_fraction=0`` trains on all (validation None)."""
    if config.validation_fraction == 0:
        return data.image_ids.copy(), None
    return split_images(data.image_ids, validation_fraction=config.validation_fraction, seed=config.seed)


def train_model(
    data: CaptionedImages,
    text_encoder: TextEncoder,
    train_ids,
    validation_ids=None,
    config: Optional[TrainConfig] = None,
    *,
    progress: bool = False,
    **changes,
) -> Tuple[Autoembedder, History]:
    """A new :class:`Autoembedder` (seeded by ``config.seed``) trained on ``train_ids``."""
    config = (config or TrainConfig()).replace(**changes)
    model = Autoembedder(data.descriptors.dim, text_encoder.dim, seed=config.seed, backbone=data.descriptors.backbone_info)
    history = train(model, data, text_encoder, train_ids, validation_ids, config, progress=progress)
    return model, history


def cross_validate(
    data: CaptionedImages, text_encoder: TextEncoder, n_folds: int = 5, config: Optional[TrainConfig] = None,
    *, progress: bool = False, **changes,
) -> List[RetrievalScores]:
    """Train a fresh model on each of ``n_folds`` folds; the scores on each held-out fold."""
    config = (config or TrainConfig()).replace(**changes)
    scores = []
    for train_ids, held_out in kfold_images(data.image_ids, n_folds, seed=config.seed):
        model, _ = train_model(data, text_encoder, train_ids, config=config, progress=progress)
        scores.append(evaluate(model, data, text_encoder, held_out))
    return scores


@dataclass
class TrainingRun:
    """What :func:`train_and_save` did: the parts it made and where it saved them."""

    model: Autoembedder
    history: History
    database: ImageDatabase
    train_ids: np.ndarray
    validation_ids: Optional[np.ndarray]
    scores: Optional[RetrievalScores]
    model_dir: Path


def train_and_save(
    data: CaptionedImages,
    text_encoder: TextEncoder,
    config: TrainConfig,
    out: PathLike,
    *,
    info: Optional[Dict[str, Any]] = None,
    progress: bool = False,
) -> TrainingRun:
    """Split, train, score the validation images, embed every image, save the model folder.

    The database holds every joined image (training ones included), as a search engine
    would; ``bundle.json`` keeps the whole ``config``, the validation ids and scores, and
    ``info`` (e.g. which files the data came from).
    """
    train_ids, val_ids = train_validation_ids(data, config)
    model, history = train_model(data, text_encoder, train_ids, val_ids, config, progress=progress)
    scores = evaluate(model, data, text_encoder, val_ids) if val_ids is not None else None
    database = ImageDatabase.build(model, data.descriptors, text_encoder)
    facts = dict(info or {})
    facts.update(
        training=config.as_dict(),
        validation_image_ids=[int(i) for i in val_ids] if val_ids is not None else [],
        validation_scores=scores.as_dict() if scores is not None else None,
    )
    model_dir = save_bundle(out, model, text_encoder, database, info=facts)
    return TrainingRun(model, history, database, train_ids, val_ids, scores, Path(model_dir))


def evaluation_ids(model, data: CaptionedImages, info: Dict[str, Any], *, everything: bool = False) -> Tuple[np.ndarray, str, str]:
    """Which images to score a saved model on: ``(image_ids, title, note)``.

    Its own validation images (``info["validation_image_ids"]`` of its ``bundle.json``) when it
    recorded them and ``data`` has them all, else every image of ``data`` (then ``note`` says why).
    """
    if model.input_dim != data.descriptors.dim:
        raise InputError(f"the model takes {model.input_dim}-d descriptors, the descriptor file has {data.descriptors.dim}-d")
    val_ids = np.array(info.get("validation_image_ids") or [], dtype=np.int64)
    have = np.isin(val_ids, data.image_ids)
    if not everything and len(val_ids) and have.all():
        return val_ids, "the model's validation images", ""
    note = f"note: {int((~have).sum())} of the model's {len(val_ids)} validation images are not in this data" if not everything and len(val_ids) else ""
    return data.image_ids, "all images (training images included)", note


@dataclass
class DemoData:
    """What ``semsearch demo`` runs on, and the lines that say so."""

    data: CaptionedImages
    text_encoder: TextEncoder
    image_dir: Optional[Path]
    info: Dict[str, Any]
    lines: List[str]


def demo_data(data_folder: Optional[PathLike] = None, encoder_name: str = "idf", *, glove=None) -> DemoData:
    """The data folder's files, joined, with ``se_text`` fitted; or, on a fresh machine, the sample.

    When no folder is named (``data_folder`` None and no ``$SEMSEARCH_DATA``) and ``./data``
    holds no data, the embedded sample (:mod:`semsearch.sample`) is used with its shipped text
    encoder (IDF over all val2017 captions; another ``encoder_name`` is fitted on its captions).
    A folder that is named must hold the data. ``glove``: word vectors of any dimension
    (default GloVe-50); the sample, made with GloVe-50, refuses others.
    """
    root = data_dir(data_folder)
    try:
        caption_files, descriptor_file = find_data_files(root)
    except FileNotFoundError:
        if data_folder is not None or ENV_VAR in os.environ:
            raise
        from semsearch import sample

        if glove is not None:
            raise InputError(f"no data folder at {root}/ (nor ${ENV_VAR}): the embedded sample uses GloVe-50; "
                             "give --data with --glove") from None
        data = sample.load()
        text_encoder = sample.text_encoder() if encoder_name == "idf" else fit_text_encoder(
            data.captions.captions(data.captions.caption_ids), encoder_name)
        line = f"no data folder at {root}/ (nor ${ENV_VAR}): using the embedded sample, semsearch.sample"
        return DemoData(data, text_encoder, sample.image_dir(), {"data": "semsearch.sample"}, [line, f"joined:      {describe_join(data)}"])
    data, text_encoder = load_data(caption_files, descriptor_file, glove=glove, encoder_name=encoder_name)
    shown = descriptor_file.relative_to(root) if descriptor_file.is_relative_to(root) else descriptor_file
    lines = [f"data folder: {root}", f"captions:    {', '.join(c.name for c in caption_files)}",
             f"descriptors: {shown}", f"joined:      {describe_join(data)}"]
    info = dict(captions=[str(c) for c in caption_files], descriptors=str(descriptor_file))
    return DemoData(data, text_encoder, image_folder(None, root), info, lines)
