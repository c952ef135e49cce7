"""Image descriptors: the CNN vectors that stand for each image.

A descriptor file is a pickle ``{coco_id: array of shape (1, D) or (D,)}``, as the course
ships ``resnet18_features.pkl`` (D = 512) and :mod:`semsearch.features` writes it.
:class:`Descriptors` holds them as one ``(N, D)`` float32 matrix with a row per image.

Example
-------
>>> descriptors = Descriptors.load("data/resnet18_features.pkl")  # doctest: +SKIP
>>> descriptors.dim, descriptors.vectors_of([139, 285]).shape     # doctest: +SKIP
(512, (2, 512))
"""
from __future__ import annotations

import os
import pickle
from typing import Dict, Iterable, Mapping, Union

import numpy as np

from ._io import atomic_write
from .coco import UnknownIdError
from .safe_pickle import load_descriptor_pickle
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def _to_numpy(value, coco_id) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch itself need not be imported here
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise InputError(f"descriptor of image {coco_id} has shape {array.shape}; expected (1, D) or (D,)")
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"descriptor of image {coco_id} is not numeric (dtype {array.dtype})")
    return array


class Descriptors:
    """One descriptor per image: ids ``(N,)`` and vectors ``(N, D)`` float32.

    Parameters
    ----------
    mapping : Mapping[int, array-like]
        coco id -> descriptor of shape (1, D) or (D,) (NumPy array or torch tensor).

    Raises
    ------
    ValueError
        Empty mapping, descriptors of different sizes, or NaN / infinite values.
    """

    def __init__(self, mapping: Mapping[int, object]):
        if len(mapping) == 0:
            raise InputError("no descriptors given")
        try:
            pairs = sorted(((int(key), value) for key, value in mapping.items()), key=lambda pair: pair[0])
        except (TypeError, ValueError):
            raise InputError("descriptor keys must be COCO image ids (integers)") from None
        ids = [i for i, _ in pairs]
        if len(set(ids)) != len(ids):
            raise InputError("two descriptor keys name the same COCO id")
        rows = [_to_numpy(value, i) for i, value in pairs]
        dims = {row.shape[0] for row in rows}
        if len(dims) != 1:
            raise InputError(f"descriptors have different sizes: {sorted(dims)}")
        vectors = np.stack(rows).astype(np.float32)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise InputError(f"descriptors of images {np.array(ids)[bad][:5].tolist()} contain NaN or inf")
        self.ids = np.array(ids, dtype=np.int64)
        self.vectors = vectors
        self._row = {i: r for r, i in enumerate(ids)}

    @classmethod
    def load(cls, path: PathLike) -> "Descriptors":
        """Read a descriptor pickle ``{coco_id: (1, D) array}`` (:func:`~semsearch.safe_pickle.load_descriptor_pickle`)."""
        mapping = load_descriptor_pickle(path)  # runs no code: refuses anything but arrays
        return cls(mapping)

    def save(self, path: PathLike) -> None:
        """Write the ``{coco_id: float32 (1, D)}`` pickle atomically."""
        with atomic_write(path, "wb") as f:
            pickle.dump(self.to_dict(), f, protocol=4)

    def to_dict(self) -> Dict[int, np.ndarray]:
        """``{coco_id: float32 array (1, D)}``."""
        return {int(i): self.vectors[r : r + 1].copy() for r, i in enumerate(self.ids)}

    @property
    def dim(self) -> int:
        """D, the size of one descriptor."""
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, coco_id) -> bool:
        return int(coco_id) in self._row

    def __repr__(self) -> str:
        return f"Descriptors({len(self)} images, D={self.dim})"

    def rows_of(self, image_ids: Iterable[int]) -> np.ndarray:
        """Row indices of these images in :attr:`vectors`, shape (N,)."""
        try:
            return np.array([self._row[int(i)] for i in image_ids], dtype=np.int64)
        except KeyError as e:
            raise UnknownIdError(f"no descriptor for COCO image id {e.args[0]}") from None

    def vectors_of(self, image_ids: Iterable[int]) -> np.ndarray:
        """Descriptors of these images, shape (N, D)."""
        return self.vectors[self.rows_of(image_ids)]

    def subset(self, image_ids: Iterable[int]) -> "Descriptors":
        """Only these images."""
        ids = list(image_ids)
        return Descriptors(dict(zip(ids, self.vectors_of(ids))))
