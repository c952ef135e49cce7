"""Training triples (caption, good image, bad image).

Team task: *extract triples*. The good image is the caption's own; the bad image is another
image of the same split, never the good one, drawn

- ``"random"``: uniformly from the other images, or
- ``"hard"``: as the most confusable of ``n_candidates`` random other images, the one
  whose own captions (their mean embedding) are most similar to the triple's caption.

Example
-------
>>> triples = make_triples(coco, train_image_ids, seed=0)   # doctest: +SKIP
>>> triples[0]            # caption id, good image id, bad image id   # doctest: +SKIP
array([    48, 318556, 524881])
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .coco import CocoCaptions
from .errors import InputError

NEGATIVES = ("random", "hard")


def sample_other(good_rows: np.ndarray, n_images: int, size: Optional[int] = None, *, rng: np.random.Generator) -> np.ndarray:
    """Uniform random rows in ``[0, n_images)`` that differ from ``good_rows``.

    Returns shape (N,) or, with ``size``, (N, size): each entry is drawn from the
    ``n_images - 1`` rows other than that triple's good row.
    """
    if n_images < 2:
        raise InputError(f"need at least 2 images to draw a bad image, got {n_images}")
    good_rows = np.asarray(good_rows)
    shape = good_rows.shape if size is None else (*good_rows.shape, size)
    other = rng.integers(0, n_images - 1, size=shape)
    good = good_rows if size is None else good_rows[..., None]
    return other + (other >= good)  # skip over the good row: uniform over the rest


def hardest_of(
    caption_vectors: np.ndarray,
    good_rows: np.ndarray,
    image_text_vectors: np.ndarray,
    n_candidates: int,
    *,
    rng: np.random.Generator,
    chunk: int = 65536,
) -> np.ndarray:
    """For each caption, the bad row among ``n_candidates`` random others most similar to it.

    Parameters
    ----------
    caption_vectors : (N, 50)
        Embedding of each triple's caption.
    good_rows : (N,)
        Row of each caption's own image.
    image_text_vectors : (N_images, 50)
        One text vector per image (the mean embedding of its captions).
    """
    if n_candidates < 1:
        raise InputError(f"n_candidates must be >= 1, got {n_candidates}")
    candidates = sample_other(good_rows, len(image_text_vectors), n_candidates, rng=rng)
    bad = np.empty(len(good_rows), dtype=np.int64)
    for start in range(0, len(good_rows), chunk):
        part = slice(start, start + chunk)
        scores = np.einsum("nd,ncd->nc", caption_vectors[part], image_text_vectors[candidates[part]])
        bad[part] = candidates[part][np.arange(len(scores)), scores.argmax(axis=1)]
    return bad


def image_text_vectors(caption_vectors: np.ndarray, caption_image_rows: np.ndarray, n_images: int) -> np.ndarray:
    """Mean caption embedding of each image, shape (N_images, 50)."""
    sums = np.zeros((n_images, caption_vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, caption_image_rows, caption_vectors)
    counts = np.bincount(caption_image_rows, minlength=n_images)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def make_triples(
    coco: CocoCaptions,
    image_ids,
    *,
    negatives: str = "random",
    text_embedder=None,
    n_candidates: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """One triple per caption of the given images, shape (N_captions, 3), as COCO ids.

    Parameters
    ----------
    coco : CocoCaptions
    image_ids : array-like of int
        The images of one split; good and bad images both come from them.
    negatives : "random" or "hard"
    text_embedder : TextEmbedder, optional
        Needed for ``"hard"``: it embeds the captions to compare them.
    n_candidates : int
        How many random bad images ``"hard"`` chooses among.
    seed : int
    """
    if negatives not in NEGATIVES:
        raise InputError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    caption_ids = coco.caption_ids_of_images(image_ids)
    good_rows = np.searchsorted(image_ids, coco.images_of(caption_ids))
    rng = np.random.default_rng(seed)
    if negatives == "random":
        bad_rows = sample_other(good_rows, len(image_ids), rng=rng)
    else:
        if text_embedder is None:
            raise InputError("hard negatives need a text_embedder to compare captions")
        caption_vectors = text_embedder(coco.captions(caption_ids))
        per_image = image_text_vectors(caption_vectors, good_rows, len(image_ids))
        bad_rows = hardest_of(caption_vectors, good_rows, per_image, n_candidates, rng=rng)
    return np.stack([caption_ids, image_ids[good_rows], image_ids[bad_rows]], axis=1)
