"""Image descriptors from a CNN backbone: one vector per image file.

The backbones (EfficientNet-Lite0, 1280-d, offline, the default; ResNet18, 512-d) live in
:mod:`semsearch.backbones`. This module runs one over files:

- :func:`describe_files`: a list of image files -> ``(vectors, ok_paths, failed)``; files
  that cannot be read (empty, truncated, not images, too many pixels) go to ``failed``
  with a reason, never an exception. ``engine="ray"`` runs it on a Ray cluster
  (:mod:`semsearch.distributed`).
- :func:`extract_features`: a folder of COCO images ``<id>.jpg`` -> a descriptor file
  that records its backbone (:class:`~semsearch.descriptors.Descriptors`), resumable.
- :func:`describe`: one image -> its vector.

It needs ``pip install 'semsearch[features]'`` (torch, torchvision, the EfficientNet
packages), imported only when a function runs: ``import semsearch.features`` works without.

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

import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.common.files import check_writable
from semsearch.cli.argtypes import non_negative_int, output_path, positive_int
from semsearch.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, check_same_backbone, describe_backbone, load_backbone
from semsearch.common.checks import check_image_ids
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError, InputTypeError
from semsearch.common.images import IMAGE_SUFFIXES, failure_reason, open_image
from semsearch.common.keys import coco_id_from_filename

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


class _Failed(NamedTuple):
    """What the dataset returns, instead of a tensor, for a file it cannot read."""

    index: int
    reason: str


class _ImageDataset:
    """Item i: ``(i, tensor (3, 224, 224))``, or ``_Failed(i, reason)`` if unreadable."""

    def __init__(self, paths: Sequence, backbone: Backbone):
        self.paths, self.backbone = paths, backbone

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.backbone.preprocess(open_image(self.paths[i]))
        except (InputError, OSError) as error:  # OSError: the file vanished or is unreadable
            return _Failed(i, failure_reason(error, self.paths[i]))  # the path is listed beside it


def _collate(batch: list):
    """``(indices, tensor (B, 3, 224, 224) or None, failed)`` from one batch of items."""
    import torch

    good = [item for item in batch if not isinstance(item, _Failed)]
    failed = [item for item in batch if isinstance(item, _Failed)]
    images = torch.stack([image for _, image in good]) if good else None
    return [i for i, _ in good], images, failed


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


def _iter_described(
    paths: list, backbone: Backbone, batch_size: int, num_workers: Optional[int]
) -> Iterator[Tuple[List[int], np.ndarray, List[_Failed]]]:
    """Yield ``(indices into paths, vectors (B, D), failed)`` batch by batch, in order."""
    from torch.utils.data import DataLoader

    if num_workers is None:  # worker processes only pay off past one batch
        num_workers = 0 if len(paths) <= batch_size else min(4, os.cpu_count() or 1)
    loader = DataLoader(
        _ImageDataset(paths, backbone), batch_size=batch_size, num_workers=num_workers,
        collate_fn=_collate, pin_memory=backbone.device.startswith("cuda"),
    )
    for indices, batch, failed in loader:
        vectors = backbone.forward(batch) if batch is not None else np.zeros((0, backbone.dim), np.float32)
        yield indices, vectors, failed


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
        Processes that decode images; None: ``min(4, cpu count)`` when there is more than
        one batch, else 0 (decode in this process).
    progress : bool
        Show a progress bar on stderr.
    engine : {"local", "ray"}
        ``"ray"`` runs the same steps on Ray Data actors (``pip install 'semsearch[ray]'``);
        ``ray_options`` go to :func:`semsearch.distributed.describe_files_ray`.

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
        from semsearch.distributed import describe_files_ray

        return describe_files_ray(paths, backbone, batch_size=batch_size, progress=progress, **ray_options)
    if ray_options:
        raise InputTypeError(f"options {sorted(ray_options)} are for engine='ray' only")
    backbone = _as_backbone(backbone)
    from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

    chunks, ok, failed = [], [], []
    with tqdm(total=len(paths), unit="img", disable=not progress, file=sys.stderr) as bar:
        for indices, vectors, bad in _iter_described(paths, backbone, batch_size, num_workers):
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
    if not path.is_file():
        return
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # the zip every .npz is
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
    check_same_backbone(backbone.info, existing.backbone, f"cannot resume from {path}")
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
        if backbone not in (None, "resnet18"):
            raise InputError(f"weights= is ResNet18's option, but backbone={backbone!r}: use pretrained= instead")
        if weights not in (None, "IMAGENET1K_V1"):
            raise InputError(f"unknown ResNet18 weights {weights!r}; choose 'IMAGENET1K_V1' or None")
        backbone, pretrained = "resnet18", weights is not None
    check_writable(out_path, "descriptor file")
    if Path(out_path).suffix.lower() in IMAGE_SUFFIXES:  # it could be (or overwrite) one of the images
        raise InputError(f"the descriptor file {out_path} has an image's suffix: name it .npz")
    out_path = Path(out_path)
    check_own_format(out_path)
    images = find_images(image_dir)
    if ids is not None:
        wanted = set(check_image_ids(ids).tolist())
        missing = sorted(wanted - images.keys())
        if missing:
            raise InputError(f"{len(missing)} requested ids have no image in {image_dir}: {missing[:10]}")
        images = {i: p for i, p in images.items() if i in wanted}
    model = load_backbone(backbone or DEFAULT_BACKBONE, pretrained=pretrained, device=device, seed=seed)

    descriptors = _read_existing(out_path, model) if out_path.exists() else {}
    todo = [(i, p) for i, p in images.items() if i not in descriptors]
    result = ExtractionResult(out_path, n_new=0, n_skipped_existing=len(images) - len(todo))
    if not todo:
        return result

    from tqdm import tqdm

    todo_paths = [p for _, p in todo]
    unsaved = 0
    save = lambda: Descriptors(descriptors, backbone=model.info).save(out_path)  # noqa: E731
    with tqdm(total=len(todo), unit="img", disable=not progress, file=sys.stderr) as bar:
        for indices, vectors, failed in _iter_described(todo_paths, model, _check_batch_size(batch_size), num_workers):
            result.failed.extend((str(todo_paths[f.index]), f.reason) for f in failed)
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
    if result.failed:
        shown = "; ".join(f"{path} ({reason})" for path, reason in result.failed[:5])
        warnings.warn(f"skipped {len(result.failed)} unreadable image(s): {shown}", stacklevel=2)
    return result


# --------------------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``semsearch features IMAGES_DIR --out FILE [--backbone ...]`` to ``subparsers``."""
    p = subparsers.add_parser(
        "features", help="CNN descriptors of a folder of COCO images (needs torch)",
        description="Describe every image <id>.jpg of a folder with a CNN backbone and save the "
        "descriptors (with a record of the backbone) to a file; images it already has are skipped, "
        "so an interrupted run resumes. Needs `pip install 'semsearch[features]'`.",
        epilog="example: semsearch features data/coco/images --out data/descriptors/effnet_mine.npz",
    )
    p.add_argument("images_dir", type=Path, help="folder of COCO images named <id>.jpg")
    p.add_argument("--out", type=output_path, required=True, help="descriptor file to write or extend")
    p.add_argument("--backbone", choices=BACKBONES, default=DEFAULT_BACKBONE,
                   help="the network (default %(default)s: pretrained, works offline; resnet18 downloads its weights)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=None, help="image decoding processes (default: min(4, cpus))")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--no-pretrained", action="store_true", help="random weights instead of ImageNet ones (for tests)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Do ``semsearch features``: print what was done, warn about skipped images; 0 on success."""
    if not Path(args.images_dir).is_dir():
        raise FileNotFoundError(f"image folder not found: {args.images_dir}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the skipped images are listed below
        result = extract_features(
            args.images_dir, args.out, backbone=args.backbone, pretrained=not args.no_pretrained,
            batch_size=args.batch_size, num_workers=args.workers, device=args.device,
            progress=sys.stderr.isatty(),
        )
    print(f"{result.path}: {result.n_new} new {args.backbone} descriptors, {result.n_skipped_existing} "
          f"already there, {len(result.failed)} images could not be read")
    for path, reason in result.failed[:20]:
        print(f"semsearch: warning: skipped {path}: {reason}", file=sys.stderr)
    if len(result.failed) > 20:
        print(f"semsearch: warning: ... and {len(result.failed) - 20} more", file=sys.stderr)
    return 0
