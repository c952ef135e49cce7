"""Training triples (caption, good image, bad image).

Team task: *extract triples*. The good image is the caption's own; the bad image is another
image of the same split, never the good one, drawn

- ``"random"``: uniformly from the other images, or
- ``"hard"``: as the most confusable of ``n_candidates`` random other images, the one
  whose own captions (their mean embedding) are most similar to the triple's caption.

Example
-------
>>> triples = make_triples(data.split(train_ids), seed=0)   # doctest: +SKIP
>>> triples.ids()[0]      # caption id, good image id, bad image id   # doctest: +SKIP
array([    48, 318556, 524881])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from semsearch.common.checks import check_k
from semsearch.dataset import Split
from semsearch.errors import InputError

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
    n_candidates = check_k(n_candidates, "n_candidates")
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


@dataclass(frozen=True, repr=False)
class Triples:
    """One (caption, good image, bad image) triple per caption of a split, as rows.

    Attributes
    ----------
    split : Split
        The images and captions the rows index.
    good_rows, bad_rows : (N_captions,) int64
        Row in ``split.image_ids`` of each caption's own image and of its bad image
        (never the same). Triple i is caption i of the split.
    """

    split: Split
    good_rows: np.ndarray
    bad_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.good_rows)

    def ids(self) -> np.ndarray:
        """The triples as COCO ids ``[caption id, good image id, bad image id]``, shape (N, 3)."""
        ids = self.split.image_ids
        return np.stack([self.split.caption_ids, ids[self.good_rows], ids[self.bad_rows]], axis=1)

    def __repr__(self) -> str:
        return f"Triples({len(self)} triples over {len(self.split.image_ids)} images)"


def make_triples(
    split: Split,
    *,
    negatives: str = "random",
    n_candidates: int = 10,
    caption_vectors: Optional[np.ndarray] = None,
    seed: Union[int, np.random.Generator] = 0,
) -> Triples:
    """One triple per caption of ``split``: its own image, and a bad image from the same split.

    This is what :func:`semsearch.training.train` calls every epoch to draw fresh bad images.

    Parameters
    ----------
    split : Split
        ``data.split(image_ids)``: good and bad images both come from its images.
    negatives : "random" or "hard"
    n_candidates : int
        How many random other images ``"hard"`` chooses among.
    caption_vectors : (N_captions, 50), optional
        ``se_text`` of ``split.caption_texts``; needed for ``"hard"`` (it compares captions).
    seed : int or numpy Generator
        The same seed gives the same triples; training passes its own generator.
    """
    if negatives not in NEGATIVES:
        raise InputError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_images = len(split.image_ids)
    if negatives == "random":
        bad_rows = sample_other(split.image_rows, n_images, rng=rng)
    else:
        if caption_vectors is None:
            raise InputError("hard negatives need caption_vectors (se_text of split.caption_texts) to compare captions")
        per_image = image_text_vectors(caption_vectors, split.image_rows, n_images)
        bad_rows = hardest_of(caption_vectors, split.image_rows, per_image, n_candidates, rng=rng)
    return Triples(split, split.image_rows, bad_rows)
