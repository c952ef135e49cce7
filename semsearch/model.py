"""The image embedder ``se_image``: one MyNN dense layer, descriptor (D,) -> unit vector (50,).

Team task: *create the MyNN model*.

Example
-------
>>> model = Autoembedder(512, seed=0)
>>> model(np.ones((4, 512), dtype=np.float32)).shape
(4, 50)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Tuple, Union

import mygrad as mg
import numpy as np
from mynn.initializers import glorot_normal
from mynn.layers.dense import dense

from ._io import load_npz, save_npz
from .backbones import as_backbone_info, backbone_to_json, check_same_backbone, read_backbone_record
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-autoembedder-1"


@contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """MyGrad's initialisers draw from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def l2_normalize_rows(x, eps: float = 1e-12):
    """Divide each row by its own L2 norm (not the batch's), shape (N, M) -> (N, M).

    Works on NumPy arrays and MyGrad tensors alike; an all-zero row stays zero.
    """
    norms = mg.sqrt(mg.sum(x**2, axis=1, keepdims=True)) if isinstance(x, mg.Tensor) else np.linalg.norm(x, axis=1, keepdims=True)
    return x / (norms + eps)


class Autoembedder:
    """Maps image descriptors ``(N, D)`` to unit vectors ``(N, 50)`` in the text space.

    Parameters
    ----------
    input_dim : int
        D, the descriptor size (512 for ResNet18): take it from the data, ``descriptors.dim``.
    output_dim : int, optional
        Size of the semantic space, 50 for GloVe-50.
    seed : int, optional
        Seeds the ``glorot_normal`` weights; the same seed gives the same model.
    backbone : str, dict or None, optional
        The network whose descriptors it takes (``descriptors.backbone``); saved with the
        model, and checked by :meth:`check_backbone` wherever descriptors meet it. None:
        unknown, not checked.
    """

    def __init__(self, input_dim: int, output_dim: int = 50, *, seed: int = 0, backbone=None):
        if int(input_dim) < 1 or int(output_dim) < 1:
            raise InputError(f"sizes must be positive, got input_dim={input_dim}, output_dim={output_dim}")
        self.backbone = as_backbone_info(backbone)
        if self.backbone is not None and self.backbone["dim"] != int(input_dim):
            raise InputError(f"input_dim={input_dim}, but backbone {self.backbone['backbone']} makes {self.backbone['dim']}-d descriptors")
        with _numpy_global_seed(seed):
            self.dense = dense(int(input_dim), int(output_dim), weight_initializer=glorot_normal)

    def check_backbone(self, descriptors, what: str = "embedding descriptors") -> None:
        """Refuse ``descriptors`` (a :class:`~semsearch.descriptors.Descriptors`) from another backbone."""
        check_same_backbone(self.backbone, getattr(descriptors, "backbone", None), what)

    @property
    def input_dim(self) -> int:
        return self.dense.weight.shape[0]

    @property
    def output_dim(self) -> int:
        return self.dense.weight.shape[1]

    @property
    def parameters(self) -> Tuple[mg.Tensor, ...]:
        """The weight (D, 50) and bias (1, 50), for a MyNN optimizer."""
        return self.dense.parameters

    def unlock(self) -> None:
        """Make the weights writable again, for an optimizer.

        MyGrad keeps a tensor's memory read-only while a graph that used it is alive, e.g.
        ``out = model(x)`` left in a notebook cell. :func:`semsearch.train.train` calls this
        first, so such a leftover graph cannot make the optimizer step fail.
        """
        for parameter in self.parameters:
            if not parameter.data.flags.writeable:
                parameter.data = parameter.data.copy()

    def __call__(self, descriptors) -> mg.Tensor:
        """Embed descriptors: (N, D) -> (N, 50) MyGrad tensor with unit rows; (D,) -> (1, 50)."""
        descriptors = self.check_input(descriptors)
        return l2_normalize_rows(self.dense(descriptors))

    def embed(self, descriptors, batch_size: int = 65536) -> np.ndarray:
        """Like calling the model, but returns a float32 NumPy array and builds no graph."""
        descriptors = self.check_input(descriptors)
        w, b = self.dense.weight.data, self.dense.bias.data
        out = np.empty((len(descriptors), self.output_dim), dtype=np.float32)
        for start in range(0, len(descriptors), batch_size):
            out[start : start + batch_size] = l2_normalize_rows(descriptors[start : start + batch_size] @ w + b)
        return out

    def check_input(self, descriptors) -> np.ndarray:
        """Return descriptors as a float32 (N, D) array, or raise ValueError saying what is wrong."""
        data = descriptors.data if isinstance(descriptors, mg.Tensor) else np.asarray(descriptors)
        if data.ndim == 1:
            data = data[None]
        if data.ndim != 2 or data.shape[1] != self.input_dim:
            raise InputError(f"descriptors must have shape (N, {self.input_dim}), got {np.shape(data)}")
        if not np.isfinite(data).all():
            raise InputError("descriptors contain NaN or inf")
        return data.astype(np.float32, copy=False)

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write the weights and the backbone record to a ``.npz`` file, atomically."""
        save_npz(path, FORMAT, weight=self.dense.weight.data, bias=self.dense.bias.data,
                 backbone=np.array(backbone_to_json(self.backbone)))

    @classmethod
    def load(cls, path: PathLike) -> "Autoembedder":
        """Read a model written by :meth:`save`, checking the shapes (older files: backbone None)."""
        weight, bias = load_npz(path, FORMAT, ("weight", "bias"), "model file")
        if weight.ndim != 2 or bias.shape != (1, weight.shape[1]):
            raise InputError(f"{path} holds a weight {weight.shape} and a bias {bias.shape} that do not fit together")
        try:
            model = cls(*weight.shape, backbone=read_backbone_record(path))
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        model.dense.weight.data[...] = weight
        model.dense.bias.data[...] = bias
        return model

