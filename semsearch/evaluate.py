"""How good is the search? Recall@K, median rank and mean reciprocal rank.

Over one split, every caption is a query and its own image is the target among that
split's images. The rank of the target is 1 + the number of images scored at least as
high as it (ties count against the model, so a constant scorer is not rewarded).
Chance levels for N images: Recall@K = K / N, median rank = (N + 1) / 2, MRR = H_N / N.

Example
-------
>>> result = evaluate(model, data, embedder, validation_ids)   # doctest: +SKIP
>>> print(result)                                               # doctest: +SKIP
Recall@1 0.240 (chance 0.021)  Recall@5 ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Sequence

import numpy as np

from .backbones import check_same_backbone
from .dataset import CaptionedImages
from .errors import InputError


@dataclass
class RetrievalScores:
    """Retrieval quality over ``n_queries`` queries among ``n_images`` images."""

    recall: Dict[int, float]
    median_rank: float
    mean_reciprocal_rank: float
    n_queries: int
    n_images: int
    chance: Dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        row = {f"recall@{k}": v for k, v in self.recall.items()}
        row.update(median_rank=self.median_rank, mrr=self.mean_reciprocal_rank)
        return row

    def __str__(self) -> str:
        parts = [f"Recall@{k} {v:.3f} (chance {self.chance[f'recall@{k}']:.3f})" for k, v in self.recall.items()]
        parts.append(f"median rank {self.median_rank:g} (chance {self.chance['median_rank']:g})")
        parts.append(f"MRR {self.mean_reciprocal_rank:.3f} (chance {self.chance['mrr']:.3f})")
        return "  ".join(parts) + f"  [{self.n_queries} queries, {self.n_images} images]"


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each query's target column, shape (Q,).

    Parameters
    ----------
    scores : (Q, N)  similarity of each query to each image.
    targets : (Q,)   column of each query's own image.
    """
    target_scores = scores[np.arange(len(scores)), targets][:, None]
    return (scores >= target_scores).sum(axis=1)


def chance_levels(n_images: int, ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """What ranking the images at random achieves on average."""
    levels = {f"recall@{k}": min(k, n_images) / n_images for k in ks}
    levels["median_rank"] = (n_images + 1) / 2
    levels["mrr"] = float(np.sum(1.0 / np.arange(1, n_images + 1)) / n_images)
    return levels


def retrieval_scores(ranks: np.ndarray, n_images: int, ks: Sequence[int] = (1, 5, 10)) -> RetrievalScores:
    """Recall@K, median rank and MRR from the targets' ranks."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise InputError("no queries to score")
    return RetrievalScores(
        recall={k: float(np.mean(ranks <= k)) for k in ks},
        median_rank=float(np.median(ranks)),
        mean_reciprocal_rank=float(np.mean(1.0 / ranks)),
        n_queries=len(ranks),
        n_images=n_images,
        chance=chance_levels(n_images, ks),
    )


def evaluate(model, data: CaptionedImages, text_embedder, image_ids, ks: Sequence[int] = (1, 5, 10)) -> RetrievalScores:
    """Text -> image retrieval over the images ``image_ids``, every caption of them a query.

    Parameters
    ----------
    model : Autoembedder (or anything with ``embed(descriptors) -> (N, 50)``)
    data : CaptionedImages
    text_embedder : TextEmbedder
    image_ids : array-like of int
        The split's images: both the candidates and the sources of the queries.
    """
    check_same_backbone(getattr(model, "backbone", None), data.descriptors.backbone, "evaluating")
    image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    caption_ids = data.captions.caption_ids_of_images(image_ids)
    queries = text_embedder(data.captions.captions(caption_ids))
    images = model.embed(data.descriptors.vectors_of(image_ids))
    targets = np.searchsorted(image_ids, data.captions.images_of(caption_ids))
    return retrieval_scores(target_ranks(queries @ images.T, targets), len(image_ids), ks)
