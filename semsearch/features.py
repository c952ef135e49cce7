"""Image descriptors from a CNN backbone: one vector per image file.

The backbones (EfficientNet-Lite0, 1280-d, offline, the default; ResNet18, 512-d) live in
:mod:`semsearch.backbones`. This module runs one over files:

- :func:`describe_files`: a list of image files -> ``(vectors, ok_paths, failed)``; files
  that cannot be read (empty, truncated, not images, too many pixels) go to ``failed``
  with a reason, never an exception. ``engine="ray"`` runs it on a Ray cluster
  (:mod:`semsearch.cnn.distributed`).
- :func:`extract_features`: a folder of COCO images ``<id>.jpg`` -> a descriptor file
  that records its backbone (:class:`~semsearch.descriptors.Descriptors`), resumable.
- :func:`describe`: one image -> its vector.

Images are decoded and preprocessed in threads, a batch or two ahead of the network, so the
network does not wait for them. The network runs on ONNX Runtime for EfficientNet-Lite0
(``pip install 'semsearch[photos]'``: no torch) or on torch (ResNet18, random weights, a
GPU: ``pip install 'semsearch[features]'``); see :func:`semsearch.backbones.load_backbone`.
Neither is imported by ``import semsearch.features``. The command ``semsearch features``
is in :mod:`semsearch.cli.features`.

Examples
--------
>>> from semsearch.features import extract_features, describe, describe_files  # doctest: +SKIP
>>> extract_features("data/coco/images", "effnet.npz").n_new                  # doctest: +SKIP
239
>>> describe("data/coco/images/000000000139.jpg").shape                        # doctest: +SKIP
(1280,)
>>> vectors, ok, failed = describe_files(["a.jpg", "empty.jpg"], "efficientnet-lite0")  # doctest: +SKIP
>>> vectors.shape, failed                                                      # doctest: +SKIP
((1, 1280), [('empty.jpg', 'empty file (0 bytes)')])
"""
from __future__ import annotations

import os
import sys
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.backbones import DEFAULT_BACKBONE, Backbone, check_same_backbone, describe_backbone, load_backbone
from semsearch.common.checks import check_image_ids
from semsearch.common.files import check_writable
from semsearch.common.images import IMAGE_SUFFIXES, check_aspect_ratio, failure_reason, open_image
from semsearch.common.keys import coco_id_from_filename
from semsearch.descriptors import Descriptors, is_npz_file
from semsearch.errors import InputError, InputTypeError
from semsearch.cnn.preprocessing import REDUCED_DECODE_SIDE

PathLike = Union[str, "os.PathLike[str]"]
ENGINES = ("local", "ray")


# --------------------------------------------------------------------------- image files


def image_id_from_path(path: PathLike) -> int:
    """The COCO image id of a file named as COCO names its images (:mod:`semsearch.common.keys`).

    Examples
    --------
    >>> image_id_from_path("images/000000000139.jpg")
    139
    >>> image_id_from_path("COCO_train2014_000000000009.jpg")
    9
    """
    coco_id = coco_id_from_filename(path)
    if coco_id is None:
        raise InputError(f"{path} is not named as COCO names its images (000000000139.jpg, COCO_train2014_000000000139.jpg)")
    return coco_id


def find_images(image_dir: PathLike) -> dict[int, Path]:
    """Map COCO image id -> image file, for the image files directly in ``image_dir``.

    Files not named as COCO names its images are ignored: ``IMG_0139.jpg`` is not image 139.

    Raises
    ------
    FileNotFoundError
        If ``image_dir`` is not a folder.
    InputError
        If it holds no image files, or two files with the same id.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    images: dict[int, Path] = {}
    for path in sorted(image_dir.iterdir()):
        coco_id = coco_id_from_filename(path)
        if coco_id is None:
            continue
        if coco_id in images:
            raise InputError(f"two images with COCO id {coco_id}: {images[coco_id]} and {path}")
        images[coco_id] = path
    if not images:
        raise InputError(f"no images (<id>.jpg) in {image_dir}")
    return images


# --------------------------------------------------------------------------- batches of files


class Failed(NamedTuple):
    """A file that could not be described: its index in the list of paths, and why."""

    index: int
    reason: str


def _prepare(path, backbone, reduced_decoding: bool, max_pixels: Optional[int],
             resolve: Optional[Callable[[PathLike], PathLike]] = None):
    """The network's input for one file (an array, or the PIL image for a backbone without
    ``preprocess``), or a reason it cannot be read (too long and thin to resize included)."""
    try:
        image = open_image(resolve(path) if resolve is not None else path, max_pixels=max_pixels,
                           reduce_to=REDUCED_DECODE_SIDE if reduced_decoding else None, name=str(path))
        check_aspect_ratio(*image.size, name=str(path))  # before any resize (backbones without preprocess too)
        return backbone.preprocess(image) if hasattr(backbone, "forward") else image
    except InputError as error:  # broken, too large, or refused by ``resolve``
        return Failed(-1, failure_reason(error, path))  # the path is listed beside it
    except OSError as error:  # the file vanished, or is unreadable (permissions)
        return Failed(-1, f"cannot read it ({error.strerror})" if error.strerror else failure_reason(error, path))


def _ordered_map(function, items: Sequence, threads: int, ahead: int) -> Iterator:
    """``function(item)`` for each item, in order, computed by ``threads`` threads up to ``ahead`` items ahead."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="semsearch-decode")
    try:
        pending: deque = deque()
        upcoming = iter(items)
        for item in upcoming:
            pending.append(pool.submit(function, item))
            if len(pending) >= ahead:
                break
        while pending:
            result = pending.popleft().result()
            for item in upcoming:
                pending.append(pool.submit(function, item))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def iter_described(
    paths: Sequence, backbone, *, batch_size: int = 32, threads: Optional[int] = None,
    reduced_decoding: bool = False, max_pixels: Optional[int] = None,
    resolve: Optional[Callable[[PathLike], PathLike]] = None,
) -> Iterator[Tuple[List[int], np.ndarray, List[Failed]]]:
    """Describe files batch by batch: yield ``(indices into paths, vectors (B, D), failed)``, in order.

    Threads open and preprocess the images of the next batches while the network runs.

    Parameters
    ----------
    paths : sequence of str or PathLike
        Image files.
    backbone : Backbone or object
        A :class:`~semsearch.backbones.Backbone` (``preprocess`` + ``forward``), or any
        object with ``name``, ``dim`` and ``describe(list of PIL images) -> (B, D)``.
    batch_size : int
        Images per forward pass.
    threads : int, optional
        Threads that decode images; default the number of CPUs.
    reduced_decoding : bool
        Decode JPEGs at a reduced scale, no smaller than
        :data:`~semsearch.cnn.preprocessing.REDUCED_DECODE_SIDE` (:func:`open_image`'s
        ``reduce_to``): 3-4 times faster on 12 MP photos; descriptors differ slightly
        (cosine >= 0.995 with full decoding, measured in ``benchmarks/index_speed.py``).
    max_pixels : int, optional
        Images with more pixels are failed; default :data:`semsearch.common.images.DEFAULT_MAX_PIXELS`.
    resolve : callable, optional
        ``path -> path to open``, called in the decoding thread just before the file is
        opened; an :class:`~semsearch.errors.InputError` or ``OSError`` it raises fails that
        file (e.g. :func:`semsearch.photos.paths.require_inside`: a photo replaced by a link
        to outside its folder since it was listed).
    """
    threads = max(1, int(threads or os.cpu_count() or 1))
    prepare = lambda path: _prepare(path, backbone, reduced_decoding, max_pixels, resolve)  # noqa: E731
    prepared = _ordered_map(prepare, paths, threads, ahead=2 * batch_size + threads)
    for start in range(0, len(paths), batch_size):
        indices, inputs, failed = [], [], []
        for i in range(start, min(start + batch_size, len(paths))):
            item = next(prepared)
            if isinstance(item, Failed):
                failed.append(Failed(i, item.reason))
            else:
                indices.append(i)
                inputs.append(item)
        if not inputs:
            vectors = np.zeros((0, backbone.dim), np.float32)
        elif hasattr(backbone, "forward"):
            vectors = np.asarray(backbone.forward(np.stack(inputs)), dtype=np.float32)
        else:
            vectors = np.asarray(backbone.describe(inputs), dtype=np.float32)
        if vectors.shape != (len(inputs), backbone.dim) or not np.isfinite(vectors).all():
            raise InputError(f"backbone {backbone.name} gave descriptors of shape {vectors.shape} (or NaN) for {len(inputs)} images")
        yield indices, vectors, failed


def _check_paths(paths) -> list:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise InputTypeError(f"paths must be a list of image files, not one path ({paths!s}): wrap it in a list")
    try:
        return list(paths)
    except TypeError:
        raise InputTypeError(f"paths must be a list of image files, got {type(paths).__name__}") from None


def _check_batch_size(batch_size) -> int:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)


def _as_backbone(backbone: Union[str, Backbone], device: Optional[str] = None) -> Backbone:
    if isinstance(backbone, Backbone):
        return backbone
    return load_backbone(backbone, device=device)


def describe_files(
    paths: Iterable[PathLike],
    backbone: Union[str, Backbone] = DEFAULT_BACKBONE,
    *,
    batch_size: int = 32,
    num_workers: Optional[int] = None,
    progress: bool = True,
    engine: str = "local",
    **ray_options,
) -> Tuple[np.ndarray, list, List[Tuple[str, str]]]:
    """Describe image files with a backbone; unreadable files are set aside, never raised.

    Parameters
    ----------
    paths : list of str or PathLike
        Image files (any names, any of the formats PIL reads).
    backbone : str or Backbone
        A name of :data:`~semsearch.backbones.BACKBONES` (loaded with
        :func:`~semsearch.backbones.load_backbone`) or a loaded backbone.
    batch_size : int
        Images per forward pass.
    num_workers : int or None
        Threads that decode images ahead of the network; None: one per CPU.
    progress : bool
        Show a progress bar on stderr.
    engine : {"local", "ray"}
        ``"ray"`` runs the same steps on Ray Data actors (``pip install 'semsearch[ray]'``);
        ``ray_options`` go to :func:`semsearch.cnn.distributed.describe_files_ray`.

    Returns
    -------
    vectors : numpy.ndarray, shape (N_ok, D), float32
        One row per readable file, in the order of ``paths``.
    ok_paths : list
        Those files, as given.
    failed : list of (str, str)
        ``(path, reason)`` for each file that could not be read: missing, empty,
        truncated, not an image, or more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``.

    Examples
    --------
    >>> vectors, ok, failed = describe_files(["dog.jpg", "notes.jpg"], "efficientnet-lite0")  # doctest: +SKIP
    >>> vectors.shape, ok, [p for p, _ in failed]                                           # doctest: +SKIP
    ((1, 1280), ['dog.jpg'], ['notes.jpg'])
    """
    paths = _check_paths(paths)
    batch_size = _check_batch_size(batch_size)
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "ray":
        from semsearch.cnn.distributed import describe_files_ray

        return describe_files_ray(paths, backbone, batch_size=batch_size, progress=progress, **ray_options)
    if ray_options:
        raise InputTypeError(f"options {sorted(ray_options)} are for engine='ray' only")
    backbone = _as_backbone(backbone)
    from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

    chunks, ok, failed = [], [], []
    with tqdm(total=len(paths), unit="img", disable=not progress, file=sys.stderr) as bar:
        for indices, vectors, bad in iter_described(paths, backbone, batch_size=batch_size, threads=num_workers):
            chunks.append(vectors)
            ok.extend(paths[i] for i in indices)
            failed.extend((str(paths[f.index]), f.reason) for f in bad)
            bar.update(len(indices) + len(bad))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, backbone.dim), np.float32)
    return vectors, ok, failed


def describe(
    image,
    backbone: Union[str, Backbone] = DEFAULT_BACKBONE,
    *,
    pretrained: bool = True,
    device: Optional[str] = None,
    seed: int = 0,
) -> np.ndarray:
    """The descriptor of one image, shape (D,) float32.

    Parameters
    ----------
    image : str, PathLike or PIL.Image.Image
        An image file, or a picture opened with PIL (any mode: it is converted to RGB).
    backbone : str or Backbone
        Which network (see :mod:`semsearch.backbones`); the model is built once and cached.
    pretrained, device, seed
        For a backbone given by name: as for :func:`~semsearch.backbones.load_backbone`.

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        The file is not a readable image.

    Examples
    --------
    >>> describe("data/coco/images/000000000139.jpg", "resnet18").shape  # doctest: +SKIP
    (512,)
    """
    if not isinstance(backbone, Backbone):
        backbone = load_backbone(backbone, pretrained=pretrained, device=device, seed=seed)
    picture = image if hasattr(image, "convert") and hasattr(image, "size") else open_image(image)
    return backbone.describe([picture])[0]


# --------------------------------------------------------------------------- descriptor files


@dataclass
class ExtractionResult:
    """What ``extract_features`` did.

    Attributes
    ----------
    path : Path
        The descriptor file.
    n_new : int
        Descriptors computed and added in this run.
    n_skipped_existing : int
        Images skipped because the file already held their descriptor.
    failed : list of (str, str)
        ``(image path, reason)`` for each image that could not be read.
    """

    path: Path
    n_new: int
    n_skipped_existing: int
    failed: list[tuple[str, str]] = field(default_factory=list)


def check_own_format(path: Path) -> None:
    """Refuse to extend (so replace) an existing file that is not semsearch's own ``.npz`` format.

    The course's descriptor files are plain pickles (``{id: array}``) read with
    ``pickle.load``; resuming into one would rewrite it as a zip under the same name.
    """
    if path.is_file() and not is_npz_file(path):
        raise InputError(
            f"{path} is not a semsearch descriptor file (.npz) but another format (a pickle?): extending it "
            f"would rewrite it as semsearch's .npz, which pickle.load cannot read; write to a new file, "
            f"e.g. --out {path.with_suffix('.npz')}"
        )


def _read_existing(path: Path, backbone: Backbone) -> dict[int, np.ndarray]:
    """The descriptors already in ``path``, to resume from, if they come from ``backbone``."""
    try:
        existing = Descriptors.load(path)
    except ValueError as error:
        raise InputError(f"cannot resume from {path}: {error}") from error
    if existing.dim != backbone.dim:
        raise InputError(f"{path} holds {existing.dim}-d descriptors, not {describe_backbone(backbone.info)} "
                         "ones; use another output file")
    check_same_backbone(backbone.info, existing.backbone_info, f"cannot resume from {path}")
    return existing.to_dict()


_LEGACY = object()


def extract_features(
    image_dir: PathLike,
    out_path: PathLike,
    *,
    backbone: Optional[str] = None,
    pretrained: bool = True,
    batch_size: int = 64,
    num_workers: Optional[int] = None,
    device: Optional[str] = None,
    seed: int = 0,
    ids: Optional[Iterable[int]] = None,
    progress: bool = True,
    save_every: Optional[int] = 10_000,
    weights=_LEGACY,
) -> ExtractionResult:
    """Describe every COCO image ``<id>.jpg`` of ``image_dir`` into a descriptor file.

    The file (:meth:`Descriptors.save`: ``.npz``, ids, vectors and the backbone's record)
    is extended if it exists: its descriptors are kept and their images skipped, so an
    interrupted run is resumed by running it again; it must come from the same backbone.
    It is always replaced atomically: the old file or a complete new one.

    Parameters
    ----------
    image_dir : str or PathLike
        Folder of images named ``<id>.jpg``, e.g. ``000000000139.jpg`` or
        ``COCO_train2014_000000000009.jpg`` (the id is the trailing integer).
    out_path : str or PathLike
        The descriptor file to write (or extend).
    backbone : {"efficientnet-lite0", "resnet18"} or None
        The network; None means :data:`~semsearch.backbones.DEFAULT_BACKBONE`
        (EfficientNet-Lite0, offline).
    pretrained : bool
        ImageNet weights, or random ones seeded by ``seed`` (for tests).
    batch_size, num_workers, progress
        As for :func:`describe_files`.
    device : str or None
        ``"cpu"``, ``"cuda"``, ...; None means CUDA when available, else CPU.
    ids : iterable of int or None
        Only these images (all must be in ``image_dir``); None means all.
    save_every : int or None
        Also save (atomically) after about this many new descriptors, so a crash loses
        little; None saves only at the end.
    weights : str or None
        The older ResNet18-only spelling: passing it selects ``backbone="resnet18"``;
        ``"IMAGENET1K_V1"`` is ``pretrained=True``, None is ``pretrained=False``.

    Returns
    -------
    ExtractionResult
        Counts of new and skipped descriptors, and the images that could not be read
        (skipped with a warning, tried again by the next run).

    Raises
    ------
    MissingExtraError
        torch or the backbone's package is not installed.
    FileNotFoundError
        ``image_dir`` does not exist.
    InputError
        ``image_dir`` has no images, ``ids`` names images that are not there, or
        ``out_path`` exists but holds other descriptors (another backbone, or not a
        descriptor file).
    """
    if weights is not _LEGACY:
        backbone, pretrained = _legacy_weights(backbone, weights)
    check_writable(out_path, "descriptor file")
    if Path(out_path).suffix.lower() in IMAGE_SUFFIXES:  # it could be (or overwrite) one of the images
        raise InputError(f"the descriptor file {out_path} has an image's suffix: name it .npz")
    out_path = Path(out_path)
    check_own_format(out_path)
    images = _select_images(image_dir, ids)
    model = load_backbone(backbone or DEFAULT_BACKBONE, pretrained=pretrained, device=device, seed=seed)
    descriptors = _read_existing(out_path, model) if out_path.exists() else {}
    todo = [(i, p) for i, p in images.items() if i not in descriptors]
    result = ExtractionResult(out_path, n_new=0, n_skipped_existing=len(images) - len(todo))
    if todo:
        _describe_into(descriptors, todo, model, out_path, result, batch_size=_check_batch_size(batch_size),
                       threads=num_workers, progress=progress, save_every=save_every)
    if result.failed:
        shown = "; ".join(f"{path} ({reason})" for path, reason in result.failed[:5])
        warnings.warn(f"skipped {len(result.failed)} unreadable image(s): {shown}", stacklevel=2)
    return result


def _legacy_weights(backbone: Optional[str], weights) -> Tuple[str, bool]:
    """``(backbone, pretrained)`` from the older ResNet18-only ``weights=`` spelling."""
    if backbone not in (None, "resnet18"):
        raise InputError(f"weights= is ResNet18's option, but backbone={backbone!r}: use pretrained= instead")
    if weights not in (None, "IMAGENET1K_V1"):
        raise InputError(f"unknown ResNet18 weights {weights!r}; choose 'IMAGENET1K_V1' or None")
    return "resnet18", weights is not None


def _select_images(image_dir: PathLike, ids: Optional[Iterable[int]]) -> dict[int, Path]:
    """The COCO images of ``image_dir`` (id -> file), only ``ids`` when given (all must be there)."""
    images = find_images(image_dir)
    if ids is None:
        return images
    wanted = set(check_image_ids(ids).tolist())
    missing = sorted(wanted - images.keys())
    if missing:
        raise InputError(f"{len(missing)} requested ids have no image in {image_dir}: {missing[:10]}")
    return {i: p for i, p in images.items() if i in wanted}


def _describe_into(descriptors: dict, todo: list, model: Backbone, out_path: Path, result: ExtractionResult, *,
                   batch_size: int, threads: Optional[int], progress: bool, save_every: Optional[int]) -> None:
    """Describe ``todo`` ((id, path) pairs) into ``descriptors``, saving every ``save_every`` and at the end."""
    from tqdm import tqdm

    paths = [p for _, p in todo]
    unsaved = 0
    save = lambda: Descriptors(descriptors, backbone=model.info).save(out_path)  # noqa: E731
    with tqdm(total=len(todo), unit="img", disable=not progress, file=sys.stderr) as bar:
        for indices, vectors, failed in iter_described(paths, model, batch_size=batch_size, threads=threads):
            result.failed.extend((str(paths[f.index]), f.reason) for f in failed)
            for i, vector in zip(indices, vectors):
                descriptors[todo[i][0]] = vector[np.newaxis].copy()  # (1, D)
            result.n_new += len(indices)
            unsaved += len(indices)
            if save_every is not None and unsaved >= save_every:
                save()
                unsaved = 0
            bar.update(len(indices) + len(failed))
    if unsaved:
        save()
