"""How good is the search? Recall@K, median rank and mean reciprocal rank.

Over one split, every caption is a query and its own image is the target among that
split's images. The rank of the target is 1 + the number of other images scored at least as
high as it (ties count against the model, so a constant scorer is not rewarded; a NaN score
counts as the lowest). Chance levels for N images: Recall@K = K / N, median rank =
(N + 1) / 2, MRR = H_N / N.

Queries are scored in blocks and only their ranks are kept, so memory stays bounded
however many captions and images there are.

Protocols (``evaluate(..., protocol=...)``): ``"all"`` (default) ranks every caption of the
images among all of them. The two that COCO text -> image papers report use 5,000 test
images, drawn at random (seeded) from the given ones, and the first 5 captions (by caption
id) of each: ``"5k"`` ranks the 25,000 captions among the 5,000 images; ``"1k"`` splits the
5,000 into 5 folds of 1,000 and gives each score's mean over the folds (each caption ranked
among its fold's 1,000 images). Both need at least 5,000 images.

Example
-------
>>> result = evaluate(model, data, text_encoder, validation_ids)   # doctest: +SKIP
>>> print(result)                                                   # doctest: +SKIP
validation (240 caption queries among 48 images):
  Recall@1       0.329    (chance 0.021)
...
>>> retrieval_scores(np.array([1, 2, 4]), n_images=4).recall[1]
0.3333333333333333
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from semsearch.backbones import check_same_backbone
from semsearch.common.checks import check_ks
from semsearch.dataset import CaptionedImages
from semsearch.errors import InputError
from semsearch.model import embed_images


@dataclass
class RetrievalScores:
    """Retrieval quality over ``n_queries`` queries among ``n_images`` images."""

    recall: Dict[int, float]
    median_rank: float
    mean_reciprocal_rank: float
    n_queries: int
    n_images: int
    chance: Dict[str, float] = field(default_factory=dict)
    protocol: str = "all"
    n_folds: int = 1  #: "1k": the scores are means over this many folds of ``n_images`` images

    def as_dict(self) -> dict:
        row = {f"recall@{k}": v for k, v in self.recall.items()}
        row.update(median_rank=self.median_rank, mrr=self.mean_reciprocal_rank)
        return row

    def rows(self) -> Iterator[Tuple[str, str, float, str]]:
        """(label, key, value, format) of each score, in print order."""
        for k, value in self.recall.items():
            yield f"Recall@{k}", f"recall@{k}", value, "{:.3f}"
        yield "median rank", "median_rank", self.median_rank, "{:g}"
        yield "MRR", "mrr", self.mean_reciprocal_rank, "{:.3f}"

    def format(self, title: str = "retrieval") -> str:
        """Recall@K, median rank and MRR with their chance levels, one per line."""
        if self.n_folds > 1:
            among = f"{self.protocol} protocol: {self.n_queries} caption queries, mean over {self.n_folds} folds of {self.n_images} images"
        elif self.protocol != "all":
            among = f"{self.protocol} protocol: {self.n_queries} caption queries among {self.n_images} images"
        else:
            among = f"{self.n_queries} caption queries among {self.n_images} images"
        lines = [f"{title} ({among}):"]
        for label, key, value, fmt in self.rows():
            lines.append(f"  {label:<12}{fmt.format(value):>8}    (chance {fmt.format(self.chance[key])})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def format_folds(folds: Sequence[RetrievalScores]) -> str:
    """Mean ± standard deviation over folds of each score, and the mean chance level."""
    if not folds:
        raise InputError("no folds to summarise")
    n_images = sum(s.n_images for s in folds)
    lines = [f"{len(folds)}-fold cross-validation ({n_images} images, {sum(s.n_queries for s in folds)} caption queries):"]
    per_fold = [list(s.rows()) for s in folds]
    for row, (label, key, _, fmt) in enumerate(per_fold[0]):
        values = np.array([rows[row][2] for rows in per_fold], dtype=float)
        chance = float(np.mean([s.chance[key] for s in folds]))
        fmt = "{:.1f}" if key == "median_rank" else fmt
        spread = f"{fmt.format(values.mean())} ± {fmt.format(values.std())}"
        lines.append(f"  {label:<12}{spread:>16}    (chance {fmt.format(chance)})")
    return "\n".join(lines)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each query's target column, shape (Q,).

    Parameters
    ----------
    scores : (Q, N)  similarity of each query to each image; NaN counts as the lowest score.
    targets : (Q,)   column of each query's own image.

    >>> target_ranks(np.array([[0.9, 0.5, 0.5], [np.nan, 0.1, 0.2]]), np.array([1, 0]))
    array([3, 3])
    """
    scores = np.where(np.isnan(scores), -np.inf, scores)
    target_scores = scores[np.arange(len(scores)), targets][:, None]
    return (scores >= target_scores).sum(axis=1)


def ranks_in_blocks(queries: np.ndarray, images: np.ndarray, targets: np.ndarray, block: int = 1024) -> np.ndarray:
    """:func:`target_ranks` of ``queries @ images.T`` computed ``block`` queries at a time, shape (Q,).

    Memory: one (block, N_images) score matrix, never (Q, N_images).
    """
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        part = slice(start, start + block)
        ranks[part] = target_ranks(queries[part] @ images.T, targets[part])
    return ranks


def chance_levels(n_images: int, ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """What ranking the images at random achieves on average."""
    levels = {f"recall@{k}": min(k, n_images) / n_images for k in check_ks(ks)}
    levels["median_rank"] = (n_images + 1) / 2
    levels["mrr"] = float(np.sum(1.0 / np.arange(1, n_images + 1)) / n_images)
    return levels


def recall_at(ranks: np.ndarray, ks: Sequence[int]) -> Dict[int, float]:
    """Recall@K for each K: the share of queries whose image ranks K or better (rank inf: never).

    >>> recall_at(np.array([1, 3, np.inf]), [1, 5])
    {1: 0.3333333333333333, 5: 0.6666666666666666}
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    return {k: float(np.mean(ranks <= k)) for k in ks}


def retrieval_scores(ranks: np.ndarray, n_images: int, ks: Sequence[int] = (1, 5, 10)) -> RetrievalScores:
    """Recall@K, median rank and MRR from the targets' ranks."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise InputError("no queries to score")
    ks = check_ks(ks)
    return RetrievalScores(
        recall=recall_at(ranks, ks),
        median_rank=float(np.median(ranks)),
        mean_reciprocal_rank=float(np.mean(1.0 / ranks)),
        n_queries=len(ranks),
        n_images=n_images,
        chance=chance_levels(n_images, ks),
    )


#: What :func:`evaluate` can score: every caption ("all"), or COCO's published protocols.
PROTOCOLS = ("all", "1k", "5k")
PROTOCOL_IMAGES = 5000  #: test images of the "5k" and "1k" protocols
PROTOCOL_FOLDS = 5  #: "1k": folds of PROTOCOL_IMAGES / PROTOCOL_FOLDS = 1,000 images
PROTOCOL_CAPTIONS = 5  #: captions per image the published protocols query with


def protocol_folds(image_ids, protocol: str = "all", seed: int = 0) -> List[np.ndarray]:
    """The image sets a protocol ranks among: one for "all" and "5k", five for "1k" (each sorted).

    >>> [len(f) for f in protocol_folds(np.arange(6000), "1k")]
    [1000, 1000, 1000, 1000, 1000]
    >>> protocol_folds(np.arange(10), "5k")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: protocol '5k' needs at least 5000 test images, got 10 (use protocol 'all')
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    if protocol == "all":
        return [image_ids]
    if len(image_ids) < PROTOCOL_IMAGES:
        raise InputError(
            f"protocol {protocol!r} needs at least {PROTOCOL_IMAGES} test images, got {len(image_ids)} (use protocol 'all')"
        )
    drawn = np.random.default_rng(seed).permutation(image_ids)[:PROTOCOL_IMAGES]
    if protocol == "5k":
        return [np.sort(drawn)]
    return [np.sort(fold) for fold in np.array_split(drawn, PROTOCOL_FOLDS)]


def first_captions(image_rows: np.ndarray, n: int) -> np.ndarray:
    """Mask of the first ``n`` captions of each image, shape (N_captions,) bool.

    ``image_rows`` gives each caption's image, captions in ascending id order (as in a
    :class:`~semsearch.dataset.Split`).

    >>> first_captions(np.array([0, 1, 0, 0, 1]), 2)
    array([ True,  True,  True, False,  True])
    """
    image_rows = np.asarray(image_rows)
    order = np.argsort(image_rows, kind="stable")
    grouped = image_rows[order]
    position = np.arange(len(order)) - np.searchsorted(grouped, grouped, side="left")
    keep = np.zeros(len(order), dtype=bool)
    keep[order[position < n]] = True
    return keep


def mean_scores(folds: Sequence[RetrievalScores], protocol: str) -> RetrievalScores:
    """Each score's mean over ``folds`` (of equal size), as the "1k" protocol reports it."""
    first = folds[0]
    return RetrievalScores(
        recall={k: float(np.mean([f.recall[k] for f in folds])) for k in first.recall},
        median_rank=float(np.mean([f.median_rank for f in folds])),
        mean_reciprocal_rank=float(np.mean([f.mean_reciprocal_rank for f in folds])),
        n_queries=sum(f.n_queries for f in folds),
        n_images=first.n_images,
        chance={key: float(np.mean([f.chance[key] for f in folds])) for key in first.chance},
        protocol=protocol,
        n_folds=len(folds),
    )


def check_some_query(queries: np.ndarray) -> None:
    """Refuse queries that all embed to zero: every image would tie, and Recall@K would be a silent 0."""
    if len(queries) and not np.any(queries):
        raise InputError(
            "the text encoder embeds every caption to the zero vector (its words all weigh 0, or none is known): "
            "there is nothing to score; fit the text encoder on these captions"
        )


def evaluate(
    model, data: CaptionedImages, text_encoder, image_ids, ks: Sequence[int] = (1, 5, 10),
    *, protocol: str = "all", seed: int = 0,
) -> RetrievalScores:
    """Text -> image retrieval over the images ``image_ids``.

    Parameters
    ----------
    model : Autoembedder, or any model :func:`semsearch.model.embed_images` can run
    data : CaptionedImages
    text_encoder : TextEncoder
    image_ids : array-like of int
        The split's images: both the candidates and the sources of the queries.
    protocol : "all" (default), "5k" or "1k"
        "all": every caption of the images, among all of them. "5k" / "1k": COCO's
        published protocols on 5,000 images drawn with ``seed`` (see the module notes);
        they refuse fewer than 5,000 images.

    Example
    -------
    >>> evaluate(model, data, text_encoder, val_ids, protocol="1k").recall[1]   # doctest: +SKIP
    """
    folds = protocol_folds(image_ids, protocol, seed)  # refuses a bad protocol before any work
    check_same_backbone(getattr(model, "backbone_info", None), data.descriptors.backbone_info, "evaluating")
    split = data.split(np.concatenate(folds))
    images = embed_images(model, split.descriptor_vectors)
    if not np.isfinite(images).all():
        raise InputError("the model's image embeddings contain NaN or inf: its weights are not finite")
    if protocol == "all":
        queries = text_encoder(split.caption_texts)
        check_some_query(queries)
        return retrieval_scores(ranks_in_blocks(queries, images, split.image_rows), len(split.image_ids), ks)
    chosen = np.flatnonzero(first_captions(split.image_rows, PROTOCOL_CAPTIONS))
    queries, query_rows = text_encoder([split.caption_texts[c] for c in chosen]), split.image_rows[chosen]
    check_some_query(queries)
    scores = []
    for fold in folds:
        rows = np.searchsorted(split.image_ids, fold)  # the fold's images among the split's
        asked = np.isin(query_rows, rows)
        targets = np.searchsorted(rows, query_rows[asked])
        scores.append(retrieval_scores(ranks_in_blocks(queries[asked], images[rows], targets), len(fold), ks))
    if protocol == "5k":
        return dataclasses.replace(scores[0], protocol=protocol)
    return mean_scores(scores, protocol)
