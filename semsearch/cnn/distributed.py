"""Describe image files on a Ray cluster: the same descriptors as the local path, past one machine.

:func:`describe_files_ray` is :func:`semsearch.features.describe_files` on Ray Data: the
paths become a dataset, ``map_batches`` sends batches of them to actors that each hold the
backbone (one GPU per actor when the cluster has GPUs), and the results come back in the
order of the paths. Each actor decodes, preprocesses and runs the network exactly as the
local path does (the same runtime: ONNX Runtime for EfficientNet-Lite0 on CPU actors, torch
on GPU actors), so the descriptors agree with it (to float rounding between batch sizes).

The files must be readable at the same path on every node (a shared or network folder).
Needs ``pip install 'semsearch[ray]'``; nothing else in semsearch imports Ray.

Example
-------
>>> import ray; ray.init(num_cpus=2)                                          # doctest: +SKIP
>>> vectors, ok, failed = describe_files_ray(paths, "efficientnet-lite0")      # doctest: +SKIP
>>> # or: describe_files(paths, "efficientnet-lite0", engine="ray")
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.backbones import Backbone, check_backbone_name, load_backbone
from semsearch.common.images import failure_reason, open_image
from semsearch.errors import InputError, MissingExtraError
from semsearch.cnn.preprocessing import REDUCED_DECODE_SIDE

PathLike = Union[str, "os.PathLike[str]"]


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise MissingExtraError(f"engine='ray' needs Ray Data: pip install 'semsearch[ray]' ({error})") from error
    return ray


class DescribeActor:
    """A Ray Data actor: holds one backbone, maps a batch of paths to descriptors.

    Parameters
    ----------
    name, pretrained, seed
        As for :func:`~semsearch.backbones.load_backbone`.
    device : str
        ``"cuda"`` when the actor was given a GPU, else ``"cpu"``.
    reduced_decoding, max_pixels
        As for :func:`semsearch.features.iter_described`.
    """

    def __init__(self, name: str, pretrained: bool, seed: int, device: str, reduced_decoding: bool = False,
                 max_pixels: Optional[int] = None):
        cpu = device == "cpu"  # None lets load_backbone choose ONNX Runtime for EfficientNet-Lite0
        self.backbone = load_backbone(name, pretrained=pretrained, seed=seed, device=None if cpu else device)
        self.reduce_to, self.max_pixels = (REDUCED_DECODE_SIDE if reduced_decoding else None), max_pixels

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """``{"index", "path"}`` -> ``{"index", "vector" (B, D), "reason"}`` ("" when read)."""
        arrays, reasons = [], []
        for path in batch["path"]:
            try:
                image = open_image(str(path), max_pixels=self.max_pixels, reduce_to=self.reduce_to)
                arrays.append(self.backbone.preprocess(image))
                reasons.append("")
            except (InputError, OSError) as error:
                reasons.append(failure_reason(error, path))
        vectors = np.zeros((len(reasons), self.backbone.dim), dtype=np.float32)
        good = np.array([reason == "" for reason in reasons], dtype=bool)
        if arrays:
            vectors[good] = self.backbone.forward(np.stack(arrays))
        return {"index": np.asarray(batch["index"]), "vector": vectors, "reason": np.array(reasons, dtype=object)}


def describe_files_ray(
    paths: Sequence[PathLike],
    backbone: Union[str, Backbone],
    *,
    batch_size: int = 32,
    concurrency: Optional[int] = None,
    num_gpus: Optional[float] = None,
    progress: bool = True,
    reduced_decoding: bool = False,
    max_pixels: Optional[int] = None,
) -> Tuple[np.ndarray, list, List[Tuple[str, str]]]:
    """:func:`semsearch.features.describe_files` on Ray Data; same outputs, same order.

    Uses the running Ray cluster (``ray.init(...)`` first to choose one), else starts a
    local one with ``ray.init()``.

    Parameters
    ----------
    paths : list of str or PathLike
        Image files, readable at these paths on every node.
    backbone : str or Backbone
        The network; a loaded Backbone is rebuilt in each actor from its name, weights and seed.
    batch_size : int
        Images per actor call (per forward pass).
    concurrency : int or None
        Number of actors; None: one per GPU when the cluster has GPUs, else one per two CPUs.
    num_gpus : float or None
        GPUs per actor; None: 1 when the cluster has GPUs, else 0.
    progress : bool
        Show Ray Data's progress bars.
    reduced_decoding, max_pixels
        As for :func:`semsearch.features.iter_described`.

    Returns
    -------
    vectors : (N_ok, D) float32, ok_paths : list, failed : list of (str, str)
        As :func:`~semsearch.features.describe_files`.
    """
    ray = _import_ray()
    if isinstance(backbone, Backbone):
        name, pretrained, seed = backbone.name, backbone.pretrained, backbone.seed
    else:
        name, pretrained, seed = check_backbone_name(backbone), True, 0
    if not paths:
        return np.zeros((0, load_backbone(name, pretrained=pretrained, seed=seed, device="cpu").dim), np.float32), [], []
    if not ray.is_initialized():
        ray.init()
    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 1)
    if num_gpus is None:
        num_gpus = 1 if gpus > 0 else 0
    if concurrency is None:
        concurrency = max(1, int(gpus // num_gpus) if num_gpus else int(cpus // 2))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = bool(progress)

    dataset = ray.data.from_items([{"index": i, "path": os.fspath(p)} for i, p in enumerate(paths)])
    described = dataset.map_batches(
        DescribeActor,
        fn_constructor_kwargs=dict(name=name, pretrained=pretrained, seed=seed, device="cuda" if num_gpus else "cpu",
                                   reduced_decoding=reduced_decoding, max_pixels=max_pixels),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus,
        num_cpus=0 if num_gpus else 1,
    )
    indices, vectors, reasons = [], [], []
    for batch in described.iter_batches(batch_size=1024, batch_format="numpy"):
        indices.append(batch["index"])
        vectors.append(batch["vector"])
        reasons.extend(batch["reason"].tolist())
    indices, vectors, reasons = np.concatenate(indices), np.concatenate(vectors), np.array(reasons, dtype=object)
    order = np.argsort(indices, kind="stable")  # back to the order of the paths
    indices, vectors, reasons = indices[order], vectors[order], reasons[order]
    good = reasons == ""
    ok = [paths[i] for i in indices[good]]
    failed = [(os.fspath(paths[i]), reason) for i, reason in zip(indices[~good], reasons[~good])]
    return np.ascontiguousarray(vectors[good], dtype=np.float32), ok, failed
