"""Image descriptors: the CNN vectors that stand for each image, and the CNN that made them.

:class:`Descriptors` holds one ``(N, D)`` float32 matrix with a row per image, and
``backbone_info``: the record of the network that made them (a dict as
:func:`semsearch.backbones.backbone_info` gives, or None when unknown). Models and databases
check it, so a 512-d ResNet18 vector is never compared with another network's.

Two file formats are read (told apart by their first bytes, not their names):

- what semsearch writes (:meth:`Descriptors.save`, :func:`semsearch.features.extract_features`):
  a ``.npz`` with format ``semsearch-descriptors-1``, ``ids`` (N,) int64, ``vectors``
  (N, D) float32 and ``backbone`` (the record as JSON); read without unpickling;
- a pickle ``{coco_id: array (1, D) or (D,)}``, as the course ships ``resnet18_features.pkl``.
  A pickle records no backbone: pass ``backbone=`` to say which; otherwise its size names
  it, as the two backbones semsearch knows differ in size: 512-d is ResNet18 (the course's),
  1280-d EfficientNet-Lite0 (the shared data's ``effnet_lite0_coco_mini.pkl``); any other
  size is unknown (None). For a 1280-d pickle of another network (MobileNetV2 is 1280-d
  too) say so: ``backbone={"backbone": "mobilenet_v2", "dim": 1280}``.

Example
-------
>>> descriptors = Descriptors.load("data/resnet18_features.pkl")  # doctest: +SKIP
>>> descriptors.dim, descriptors.backbone_info["backbone"]        # doctest: +SKIP
(512, 'resnet18')
>>> descriptors.save("data/descriptors/resnet18.npz")             # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.backbones import BACKBONES, as_backbone_info, backbone_info, check_same_backbone
from semsearch.common.checks import check_image_id, check_image_ids
from semsearch.errors import InputError, UnknownIdError
from semsearch.paths import require_file
from semsearch.common.safe_pickle import load_descriptor_pickle

FORMAT = "semsearch-descriptors-1"
_ZIP_MAGIC = b"PK\x03\x04"  # how a .npz (a zip archive) starts

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



def is_npz_file(path: PathLike) -> bool:
    """Whether ``path`` starts as an ``.npz`` (a zip archive), semsearch's own descriptor format,
    rather than a pickle such as the course's ``resnet18_features.pkl``."""
    with open(path, "rb") as f:
        return f.read(4) == _ZIP_MAGIC

class Descriptors:
    """One descriptor per image: ids ``(N,)`` and vectors ``(N, D)`` float32.

    Parameters
    ----------
    mapping : Mapping[int, array-like]
        coco id -> descriptor of shape (1, D) or (D,) (NumPy array or torch tensor).
    backbone : str, dict or None
        The network that made them: a name of :data:`~semsearch.backbones.BACKBONES`, a
        record (dict with at least ``backbone`` and ``dim``), or None (unknown).

    Attributes
    ----------
    ids : numpy.ndarray (N,) int64, sorted
    vectors : numpy.ndarray (N, D) float32
    backbone_info : dict or None
        The record of the network that made them (``backbone`` given as a name becomes its record).

    Raises
    ------
    ValueError
        Empty mapping, descriptors of different sizes, NaN / infinite values, or a
        backbone whose size is not D.
    """

    def __init__(self, mapping: Mapping[int, object], backbone=None):
        if len(mapping) == 0:
            raise InputError("no descriptors given")
        try:  # 139.5, True or np.float64(139) are refused, never truncated to an id
            pairs = sorted(((check_image_id(key), value) for key, value in mapping.items()), key=lambda pair: pair[0])
        except (TypeError, ValueError) as e:
            raise InputError(f"descriptor keys must be COCO image ids (integers): {e}") from None
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
        self.backbone_info = _checked_backbone(backbone, self.dim)

    @classmethod
    def load(cls, path: PathLike, backbone=None) -> "Descriptors":
        """Read a descriptor file: semsearch's ``.npz``, or a pickle ``{coco_id: (1, D) array}``.

        Parameters
        ----------
        path : str or PathLike
        backbone : str, dict or None
            For a pickle, which records nothing: the network that made it (None: named by
            its size, see the module notes). For a ``.npz``: if given, it must match the
            file's record.

        Raises
        ------
        FileNotFoundError
            No such file.
        InputError
            Not a descriptor file, bad contents, or ``backbone`` contradicts the file.
        """
        path = require_file(path, "descriptor file")
        if is_npz_file(path):
            return cls._load_npz(path, backbone)
        mapping = load_descriptor_pickle(path)  # runs no code: refuses anything but arrays
        descriptors = cls(mapping)
        try:
            descriptors.backbone_info = _checked_backbone(backbone, descriptors.dim) if backbone is not None else _by_size(descriptors.dim)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        return descriptors

    @classmethod
    def _load_npz(cls, path, backbone) -> "Descriptors":
        ids, vectors, record = load_npz(path, FORMAT, ("ids", "vectors", "backbone"), "descriptor file")
        try:
            found = json.loads(str(record)) if str(record) else None
            if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors):
                raise InputError(f"ids {ids.shape} and vectors {vectors.shape} do not fit together")
            if not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(vectors.dtype, np.number):
                raise InputError(f"ids ({ids.dtype}) must be integers and vectors ({vectors.dtype}) numbers")
            descriptors = cls(dict(zip(ids.tolist(), vectors)), backbone=found)
            if backbone is not None:
                check_same_backbone(as_backbone_info(backbone), found, "the backbone= given")
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: its backbone record is not JSON: {e}") from None
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        return descriptors

    def save(self, path: PathLike) -> None:
        """Write ids, vectors and the backbone record to a ``.npz`` file, atomically.

        The file is read back with ``allow_pickle=False`` (loading it never runs code),
        whatever its name; ``.npz`` is the name to give it. For a plain
        ``{coco_id: (1, D)}`` pickle, pickle :meth:`to_dict` yourself (it loses the record).
        """
        record = "" if self.backbone_info is None else json.dumps(self.backbone_info, sort_keys=True)
        save_npz(path, FORMAT, ids=self.ids, vectors=self.vectors, backbone=np.array(record))

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
        return check_image_id(coco_id) in self._row

    def __repr__(self) -> str:
        name = "unknown backbone" if self.backbone_info is None else self.backbone_info["backbone"]
        return f"Descriptors({len(self)} images, D={self.dim}, {name})"

    def rows_of(self, image_ids: Iterable[int]) -> np.ndarray:
        """Row indices of these images in :attr:`vectors`, shape (N,)."""
        try:
            return np.array([self._row[i] for i in check_image_ids(image_ids).tolist()], dtype=np.int64)
        except KeyError as e:
            raise UnknownIdError(f"no descriptor for COCO image id {e.args[0]}") from None

    def vectors_of(self, image_ids: Iterable[int]) -> np.ndarray:
        """Descriptors of these images, shape (N, D)."""
        return self.vectors[self.rows_of(image_ids)]

    def subset(self, image_ids: Iterable[int]) -> "Descriptors":
        """Only these images."""
        ids = list(image_ids)
        return Descriptors(dict(zip(ids, self.vectors_of(ids))), backbone=self.backbone_info)


def _checked_backbone(backbone, dim: int) -> Optional[Dict[str, Any]]:
    """The backbone record, checked against the descriptors' size D."""
    info = as_backbone_info(backbone)
    if info is not None and info["dim"] != dim:
        raise InputError(f"the descriptors are {dim}-d, but backbone {info['backbone']} makes {info['dim']}-d ones")
    return info


def _by_size(dim: int) -> Optional[Dict[str, Any]]:
    """The known backbone of this size (512: ResNet18, 1280: EfficientNet-Lite0), else None."""
    known = [name for name in BACKBONES if backbone_info(name)["dim"] == dim]
    return backbone_info(known[0]) if len(known) == 1 else None
