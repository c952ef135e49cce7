"""ResNet18 image descriptors: one 512-d vector per image.

This module is optional: it needs ``torch`` and ``torchvision``, installed with
``pip install -e .[features]``. Nothing else in ``semsearch`` imports it, so the rest
of the package works without torch.

The descriptor of an image is the output of torchvision's ``resnet18`` with its
classifier removed (``model.fc = torch.nn.Identity()``): the 512 numbers of the
global average pool over the last convolutional block. Images are preprocessed with
the weights' own transforms (resize to 256, centre-crop 224, ImageNet normalisation).

Descriptor files are pickles of a plain ``dict``, the same format as the
EfficientNet descriptors shipped in the data folder::

    {coco_image_id (int): numpy.ndarray, dtype float32, shape (1, 512)}

Examples
--------
>>> from semsearch.features import extract_features, describe  # doctest: +SKIP
>>> result = extract_features("data/coco/images", "resnet18.pkl")  # doctest: +SKIP
>>> result.n_new, result.failed                                # doctest: +SKIP
(239, [])
>>> describe("data/coco/images/000000000139.jpg").shape        # doctest: +SKIP
(512,)
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, NamedTuple, Optional, Union

import numpy as np
from PIL import Image
from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

from semsearch._io import atomic_write
from semsearch.descriptors import Descriptors
from .errors import InputError

try:
    import torch
    from torch.utils.data import DataLoader
    from torchvision.models import ResNet18_Weights, resnet18
except ImportError as _error:  # the optional extra is not installed
    torch = None
    _TORCH_IMPORT_ERROR: Optional[ImportError] = _error
else:
    _TORCH_IMPORT_ERROR = None

PathLike = Union[str, "os.PathLike[str]"]

#: Length of one descriptor.
DIM = 512
#: File name endings that count as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

_INSTALL_HINT = "semsearch.features needs torch and torchvision: pip install -e .[features]"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError)


def _require_torch() -> None:
    """Raise ``ImportError`` with an install hint if torch or torchvision is missing."""
    if torch is None:
        raise ImportError(_INSTALL_HINT) from _TORCH_IMPORT_ERROR


# --------------------------------------------------------------------------- the model


def _device_name(device: Optional[str]) -> str:
    """``device`` as a string such as ``"cpu"`` or ``"cuda:0"``; CUDA when available if None."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return str(torch.device(device))


def _weights_enum(weights: Optional[str]) -> Optional["ResNet18_Weights"]:
    """Look up ``weights`` (e.g. ``"IMAGENET1K_V1"``) in ``ResNet18_Weights``; None stays None."""
    if weights is None:
        return None
    try:
        return ResNet18_Weights[weights]
    except KeyError:
        names = [w.name for w in ResNet18_Weights]
        raise InputError(
            f"unknown ResNet18 weights {weights!r}; choose one of {names} or None"
        ) from None


def load_model(
    weights: Optional[str] = "IMAGENET1K_V1", device: Optional[str] = None, seed: int = 0
) -> "torch.nn.Module":
    """Return ResNet18 without its classifier, in eval mode, on ``device``.

    Models are cached per ``(weights, device, seed)``: calling this again with the same
    arguments returns the same object. Do not modify it (``.train()``, new layers, ...);
    make a copy with ``copy.deepcopy`` if you need to.

    Parameters
    ----------
    weights : str or None
        A member name of ``torchvision.models.ResNet18_Weights`` (``"IMAGENET1K_V1"``,
        downloaded once by torchvision), or None for random weights.
    device : str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; None means CUDA when available, else CPU.
    seed : int
        Seeds the random initialisation when ``weights`` is None; ignored otherwise.

    Returns
    -------
    torch.nn.Module
        Maps a batch of preprocessed images, shape (N, 3, 224, 224), to descriptors of
        shape (N, 512).
    """
    _require_torch()
    name = None if weights is None else _weights_enum(weights).name
    return _cached_model(name, _device_name(device), seed if name is None else 0)


@lru_cache(maxsize=4)
def _cached_model(weights: Optional[str], device: str, seed: int) -> "torch.nn.Module":
    if weights is None:
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
            torch.manual_seed(seed)
            model = resnet18(weights=None)
    else:
        model = resnet18(weights=ResNet18_Weights[weights])
    model.fc = torch.nn.Identity()  # drop the 1000-class layer: output is the 512-d pool
    return model.eval().to(device)


def _preprocess():
    """The ImageNet preprocessing of ResNet18: PIL image -> tensor of shape (3, 224, 224).

    The same for random weights, so that they see exactly what the trained ones would.
    """
    return ResNet18_Weights.IMAGENET1K_V1.transforms()


# --------------------------------------------------------------------------- image files


def image_id_from_path(path: PathLike) -> int:
    """The COCO image id in a file name: the trailing integer of its stem.

    Examples
    --------
    >>> image_id_from_path("images/000000000139.jpg")
    139
    >>> image_id_from_path("COCO_train2014_000000000009.jpg")
    9
    """
    match = re.search(r"(\d+)$", Path(path).stem)
    if match is None:
        raise InputError(f"no COCO image id at the end of the file name: {path}")
    return int(match.group(1))


def find_images(image_dir: PathLike) -> dict[int, Path]:
    """Map COCO image id -> image file, for the image files directly in ``image_dir``.

    Files whose name does not end in ``<digits>.jpg`` (or ``.jpeg``, ``.png``) are ignored.

    Raises
    ------
    FileNotFoundError
        If ``image_dir`` is not a folder.
    ValueError
        If it holds no image files, or two files with the same id.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    images: dict[int, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not re.search(r"\d$", path.stem):
            continue
        coco_id = image_id_from_path(path)
        if coco_id in images:
            raise InputError(f"two images with COCO id {coco_id}: {images[coco_id]} and {path}")
        images[coco_id] = path
    if not images:
        raise InputError(f"no images (<id>.jpg) in {image_dir}")
    return images


class _Failed(NamedTuple):
    """What the dataset returns, instead of a tensor, for an image it cannot decode."""

    path: str
    reason: str


class _ImageDataset:
    """Item i: ``(coco_id, tensor of shape (3, 224, 224))``, or ``_Failed`` if unreadable."""

    def __init__(self, items: list[tuple[int, Path]], transform):
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        coco_id, path = self.items[i]
        try:
            with Image.open(path) as image:
                return coco_id, self.transform(image.convert("RGB"))  # some COCO images are grey
        except _DECODE_ERRORS as error:
            return _Failed(str(path), f"{type(error).__name__}: {error}")


def _collate(batch: list) -> tuple[list[int], Optional["torch.Tensor"], list[_Failed]]:
    """Stack the readable images of a batch; set aside the unreadable ones.

    Returns ``(ids, images, failed)``: ``images`` has shape (len(ids), 3, 224, 224),
    or is None if no image of the batch could be read.
    """
    good = [item for item in batch if not isinstance(item, _Failed)]
    failed = [item for item in batch if isinstance(item, _Failed)]
    ids = [coco_id for coco_id, _ in good]
    images = torch.stack([image for _, image in good]) if good else None
    return ids, images, failed


# --------------------------------------------------------------------------- descriptor files


def _read_existing(path: Path) -> dict[int, np.ndarray]:
    """The descriptors already in ``path``, to resume from: ``{coco_id: float32 (1, 512)}``.

    Raises ``ValueError`` (and leaves the file alone) if it is not a descriptor pickle of
    512-d vectors. Only resume from pickles you trust: unpickling can run arbitrary code.
    """
    try:
        existing = Descriptors.load(path)
    except ValueError as error:
        raise InputError(f"cannot resume from {path}: {error}") from error
    if existing.dim != DIM:
        raise InputError(f"{path} holds {existing.dim}-d descriptors, not ResNet18's (1, {DIM}); "
                         "use another out_path")
    return existing.to_dict()


def _save(descriptors: dict[int, np.ndarray], path: Path) -> None:
    with atomic_write(path, "wb") as f:
        pickle.dump(descriptors, f, protocol=4)


# --------------------------------------------------------------------------- public API


@dataclass
class ExtractionResult:
    """What ``extract_features`` did.

    Attributes
    ----------
    path : Path
        The descriptor pickle.
    n_new : int
        Descriptors computed and added in this run.
    n_skipped_existing : int
        Images skipped because the pickle already held their descriptor.
    failed : list of (str, str)
        ``(image path, reason)`` for each image that could not be read.
    """

    path: Path
    n_new: int
    n_skipped_existing: int
    failed: list[tuple[str, str]] = field(default_factory=list)


def extract_features(
    image_dir: PathLike,
    out_path: PathLike,
    *,
    weights: Optional[str] = "IMAGENET1K_V1",
    batch_size: int = 64,
    num_workers: Optional[int] = None,
    device: Optional[str] = None,
    seed: int = 0,
    ids: Optional[Iterable[int]] = None,
    progress: bool = True,
    save_every: Optional[int] = 10_000,
) -> ExtractionResult:
    """Compute a ResNet18 descriptor for every image in ``image_dir`` and pickle them.

    The pickle at ``out_path`` maps COCO image id (int) to a float32 array of shape
    (1, 512). If it exists already, its descriptors are kept and their images skipped,
    so an interrupted run can be resumed by running it again (make sure to use the same
    ``weights`` and ``seed``: the file does not record them). The file is always
    replaced atomically: it is either the old file or a complete new one.

    Parameters
    ----------
    image_dir : str or PathLike
        Folder of images named ``<id>.jpg``, e.g. ``000000000139.jpg`` or
        ``COCO_train2014_000000000009.jpg`` (the id is the trailing integer).
    out_path : str or PathLike
        The descriptor pickle to write (or extend).
    weights : str or None
        ``"IMAGENET1K_V1"`` (downloaded once by torchvision), or None for random weights
        (for tests: no download; seeded by ``seed``).
    batch_size : int
        Images per forward pass.
    num_workers : int or None
        Processes that decode images; None means ``min(4, os.cpu_count())``; 0 decodes in
        this process.
    device : str or None
        ``"cpu"``, ``"cuda"``, ...; None means CUDA when available, else CPU.
    seed : int
        Seeds the random weights when ``weights`` is None.
    ids : iterable of int or None
        Only these images (all must be in ``image_dir``); None means all.
    progress : bool
        Show a progress bar.
    save_every : int or None
        Also save (atomically) after about this many new descriptors, so a crash loses
        little; None saves only at the end.

    Returns
    -------
    ExtractionResult
        Counts of new and skipped descriptors, and the images that could not be read
        (they are skipped with a warning, and tried again by the next run).

    Raises
    ------
    ImportError
        If torch or torchvision is not installed.
    FileNotFoundError
        If ``image_dir`` does not exist.
    ValueError
        If ``image_dir`` has no images, ``ids`` names images that are not there, or
        ``out_path`` exists but is not a descriptor pickle of 512-d vectors.
    """
    _require_torch()
    out_path = Path(out_path)
    images = find_images(image_dir)
    if ids is not None:
        wanted = set(ids)
        missing = sorted(wanted - images.keys())
        if missing:
            raise InputError(
                f"{len(missing)} requested ids have no image in {image_dir}: {missing[:10]}"
            )
        images = {i: p for i, p in images.items() if i in wanted}

    descriptors = _read_existing(out_path) if out_path.exists() else {}
    todo = [(i, p) for i, p in images.items() if i not in descriptors]
    result = ExtractionResult(out_path, n_new=0, n_skipped_existing=len(images) - len(todo))
    if not todo:
        return result

    device = _device_name(device)
    model = load_model(weights, device, seed)
    if num_workers is None:
        num_workers = min(4, os.cpu_count() or 1)
    loader = DataLoader(
        _ImageDataset(todo, _preprocess()),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.startswith("cuda"),
    )
    unsaved = 0
    with torch.inference_mode(), tqdm(total=len(todo), unit="img", disable=not progress) as bar:
        for batch_ids, batch, failed in loader:
            result.failed.extend((f.path, f.reason) for f in failed)
            if batch is not None:
                vectors = model(batch.to(device)).float().cpu().numpy()  # (N, 512)
                for coco_id, vector in zip(batch_ids, vectors):
                    descriptors[coco_id] = vector[np.newaxis].copy()  # (1, 512)
                result.n_new += len(batch_ids)
                unsaved += len(batch_ids)
            if save_every is not None and unsaved >= save_every:
                _save(descriptors, out_path)
                unsaved = 0
            bar.update(len(batch_ids) + len(failed))

    if unsaved:
        _save(descriptors, out_path)
    if result.failed:
        shown = "; ".join(f"{p} ({reason})" for p, reason in result.failed[:5])
        warnings.warn(f"skipped {len(result.failed)} unreadable image(s): {shown}", stacklevel=2)
    return result


def describe(
    image: Union[PathLike, Image.Image],
    *,
    weights: Optional[str] = "IMAGENET1K_V1",
    device: Optional[str] = None,
    seed: int = 0,
) -> np.ndarray:
    """The ResNet18 descriptor of one image.

    Gives the same vector as ``extract_features`` with the same ``weights`` and ``seed``
    (up to float rounding). The model is built once and cached.

    Parameters
    ----------
    image : str, PathLike or PIL.Image.Image
        An image file, or an image already opened with PIL (any mode: it is converted
        to RGB).
    weights, device, seed
        As for ``extract_features``.

    Returns
    -------
    numpy.ndarray, shape (512,), dtype float32
    """
    _require_torch()
    device = _device_name(device)
    model = load_model(weights, device, seed)
    if isinstance(image, Image.Image):
        x = _preprocess()(image.convert("RGB"))
    else:
        with Image.open(image) as opened:
            x = _preprocess()(opened.convert("RGB"))
    with torch.inference_mode():
        return model(x.unsqueeze(0).to(device)).float().cpu().numpy()[0]  # (512,)
