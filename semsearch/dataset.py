"""Captions joined with descriptors, and train/validation splits by image.

Team task: *split the data*. Splits are made by image, never by caption, so that no image
has captions on both sides.

Example
-------
>>> data = join(CocoCaptions.load(captions_json), Descriptors.load(pkl))  # doctest: +SKIP
>>> train_ids, val_ids = split_images(data.image_ids, validation_fraction=0.2, seed=0)  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np

from semsearch.common.checks import check_image_ids

from semsearch.coco import CocoCaptions
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError


@dataclass
class CaptionedImages:
    """Images that have both captions and a descriptor.

    Attributes
    ----------
    captions : CocoCaptions
        Only the images that have a descriptor.
    descriptors : Descriptors
        Only the images that have captions.
    n_dropped_images, n_dropped_captions : int
        Captioned images without a descriptor, and their captions, that were left out.
    n_unused_descriptors : int
        Descriptors of images that no caption file lists.
    """

    captions: CocoCaptions
    descriptors: Descriptors
    n_dropped_images: int = 0
    n_dropped_captions: int = 0
    n_unused_descriptors: int = 0

    @property
    def image_ids(self) -> np.ndarray:
        """shape (N_images,), sorted."""
        return self.captions.image_ids

    def split(self, image_ids) -> "Split":
        """The images ``image_ids`` and all their captions, rows aligned: see :class:`Split`.

        Training, triples, evaluation and the caption baselines all work on this view.
        """
        return split_view(self.captions, image_ids, self.descriptors)

    def __repr__(self) -> str:
        return (
            f"CaptionedImages({len(self.image_ids)} images, {len(self.captions.caption_ids)} captions, "
            f"D={self.descriptors.dim}; dropped {self.n_dropped_images} images without a descriptor)"
        )


@dataclass(frozen=True, repr=False)
class Split:
    """The images of one split and every caption of them, with rows that line up.

    Attributes
    ----------
    image_ids : (N_images,) int64
        Sorted COCO ids.
    caption_ids : (N_captions,) int64
        Sorted ids of all their captions.
    caption_texts : list of str, length N_captions
        The caption texts, in ``caption_ids`` order (``data.captions`` is the CocoCaptions they come from).
    image_rows : (N_captions,) int64
        Row in ``image_ids`` (and ``descriptors``) of each caption's own image.
    descriptor_vectors : (N_images, D) float32, or None
        The images' descriptors, in ``image_ids`` order (None for a view of captions only;
        ``data.descriptors`` is the Descriptors they come from).

    Example
    -------
    >>> split = data.split(val_ids)                                   # doctest: +SKIP
    >>> split.image_ids[split.image_rows[0]] == data.captions.image_of(split.caption_ids[0])  # doctest: +SKIP
    True
    """

    image_ids: np.ndarray
    caption_ids: np.ndarray
    caption_texts: List[str]
    image_rows: np.ndarray
    descriptor_vectors: Optional[np.ndarray]

    def __len__(self) -> int:
        """The number of captions (one query, or one triple, each)."""
        return len(self.caption_ids)

    def __repr__(self) -> str:
        dim = f", D={self.descriptor_vectors.shape[1]}" if self.descriptor_vectors is not None else ""
        return f"Split({len(self.image_ids)} images, {len(self.caption_ids)} captions{dim})"


def split_view(captions: CocoCaptions, image_ids, descriptors: Optional[Descriptors] = None) -> Split:
    """The :class:`Split` of ``image_ids``: the one place a split's captions and rows are worked out.

    Raises
    ------
    UnknownIdError
        An id that ``captions`` (or ``descriptors``, if given) does not have.
    """
    image_ids = np.unique(check_image_ids(image_ids))
    if len(image_ids) == 0:
        raise InputError("a split needs at least one image, got none")
    caption_ids = captions.caption_ids_of_images(image_ids)
    return Split(
        image_ids=image_ids,
        caption_ids=caption_ids,
        caption_texts=captions.captions(caption_ids),
        image_rows=np.searchsorted(image_ids, captions.images_of(caption_ids)),
        descriptor_vectors=descriptors.vectors_of(image_ids) if descriptors is not None else None,
    )


def join(captions: CocoCaptions, descriptors: Descriptors, *, warn: bool = True) -> CaptionedImages:
    """Keep the images that have both captions and a descriptor.

    Images without a descriptor are dropped with their captions, and the count is reported
    (a warning, and the returned counts): the course's ResNet18 pickle covers 82,612 of
    the 82,783 train2014 images.

    Raises
    ------
    ValueError
        No image has both.
    """
    has_descriptor = np.array([i in descriptors for i in captions.image_ids], dtype=bool)
    kept = captions.image_ids[has_descriptor]
    if len(kept) == 0:
        raise InputError("no captioned image has a descriptor: are the ids of the two files from the same COCO release?")
    kept_captions = captions.subset(kept) if not has_descriptor.all() else captions
    kept_descriptors = descriptors.subset(kept) if len(kept) < len(descriptors) else descriptors
    result = CaptionedImages(
        kept_captions,
        kept_descriptors,
        n_dropped_images=int((~has_descriptor).sum()),
        n_dropped_captions=len(captions.caption_ids) - len(kept_captions.caption_ids),
        n_unused_descriptors=len(descriptors) - len(kept),
    )
    if warn and result.n_dropped_images:
        warnings.warn(
            f"{result.n_dropped_images} of {len(captions.image_ids)} captioned images have no descriptor; "
            f"they and their {result.n_dropped_captions} captions are left out",
            stacklevel=2,
        )
    return result


def split_images(image_ids, validation_fraction: float = 0.2, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Split image ids at random into train and validation, shapes (N_train,), (N_val,).

    Both parts are sorted; together they are ``image_ids``, with no id in both.
    """
    if not 0 < validation_fraction < 1:
        raise InputError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    n_val = int(round(validation_fraction * len(image_ids)))
    if n_val == 0 or n_val == len(image_ids):
        raise InputError(f"cannot split {len(image_ids)} images with validation_fraction={validation_fraction}")
    shuffled = np.random.default_rng(seed).permutation(image_ids)
    return np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val])


def kfold_images(image_ids, n_folds: int = 5, seed: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yield ``(train_ids, validation_ids)`` for each of ``n_folds`` folds of the images.

    Every image is in exactly one validation fold; fold sizes differ by at most one.
    """
    image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
    if not 2 <= n_folds <= len(image_ids):  # checked now, not at the first iteration
        raise InputError(f"n_folds must lie in [2, {len(image_ids)}], got {n_folds}")
    folds: List[np.ndarray] = np.array_split(np.random.default_rng(seed).permutation(image_ids), n_folds)
    return ((np.sort(np.concatenate(folds[:k] + folds[k + 1 :])), np.sort(folds[k])) for k in range(n_folds))
