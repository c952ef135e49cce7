"""The image embedder ``se_image``: one MyNN dense layer, descriptor (D,) -> unit vector (50,).

Team task: *create the MyNN model*.

Training (:func:`semsearch.training.train`) uses a model only through these functions:

- :func:`caption_similarity` ``(model, descriptors (B, D), captions (B, 50)) -> (B,)``: the cosine
  of each image's embedding with its caption, a MyGrad tensor to differentiate. For any
  MyNN-style model (``__call__`` and ``parameters``) it is ``sum(model(x) * captions, axis=1)``
  through MyGrad's autodiff; a model with a ``similarity`` method (``Autoembedder``: one fused
  operation with a hand-derived gradient, twice as fast) uses that instead.
- :func:`similarity_gap` ``(model, descriptors (N, D), good_rows (B,), bad_rows (B,), captions
  (B, 50)) -> (B,)``: the cosine of each caption with its good image minus that with its bad
  one, all the triple loss needs. It is :func:`caption_similarity` twice; the ``Autoembedder``
  computes it as one fused node.
- :func:`batch_similarity` ``(model, descriptors (B, D), captions (B, 50)) -> (B, B)``: every
  caption of a batch with every image of it, ``captions @ model(descriptors).T`` through
  MyGrad's autodiff, for the in-batch losses (:func:`semsearch.loss.vse_loss`).
- :func:`embed_images` ``(model, descriptors (N, D)) -> (N, 50)`` NumPy, no graph: evaluation
  and the image database.

So a student's own model (say dense -> relu -> dense, then unit rows) trains as it is.

Example
-------
>>> import mygrad as mg
>>> model = Autoembedder(512, seed=0)
>>> model(np.ones((4, 512), dtype=np.float32)).shape
(4, 50)
>>> x, c = np.ones((2, 512), dtype=np.float32), np.eye(50, dtype=np.float32)[:2]
>>> bool(np.allclose(model.similarity(x, c).data, mg.sum(model(x) * c, axis=1).data, atol=1e-6))
True
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Optional, Tuple, Union

import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.backbones import as_backbone_info, backbone_to_json, check_same_backbone, read_backbone_record
from semsearch.errors import InputError, InputTypeError
from semsearch.common.vectors import is_tensor, l2_normalize_rows

if TYPE_CHECKING:  # MyGrad and MyNN are imported when a model is trained or called, not to search
    import mygrad as mg

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
        self._shape, self._seed = (int(input_dim), int(output_dim)), seed
        self._dense = None  # the MyNN layer, made on first use (see `dense`)
        self._weights: Optional[Tuple[np.ndarray, np.ndarray]] = None  # weights read by `load`, until then

    @property
    def dense(self):
        """The MyNN ``dense(D, 50)`` layer (``glorot_normal`` weights drawn from ``seed``).

        It is made on first use, so that loading a model to search with (which needs only
        :meth:`embed`, in NumPy) does not import MyGrad; the weights are the same either way.
        """
        if self._dense is None:
            from mynn.initializers import glorot_normal
            from mynn.layers.dense import dense

            with _numpy_global_seed(self._seed):
                layer = dense(*self._shape, weight_initializer=glorot_normal)
            if self._weights is not None:
                layer.weight.data[...], layer.bias.data[...] = self._weights
                self._weights = None
            self._dense = layer
        return self._dense

    @dense.setter
    def dense(self, layer) -> None:
        self._dense, self._weights = layer, None

    def weight_arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """The weight (D, 50) and bias (1, 50) as NumPy arrays, without making the MyNN layer."""
        if self._dense is None and self._weights is not None:
            return self._weights
        return self.dense.weight.data, self.dense.bias.data

    def check_backbone(self, descriptors, what: str = "embedding descriptors") -> None:
        """Refuse ``descriptors`` (a :class:`~semsearch.descriptors.Descriptors`) from another backbone."""
        check_same_backbone(self.backbone, getattr(descriptors, "backbone", None), what)

    @property
    def input_dim(self) -> int:
        return self._shape[0]

    @property
    def output_dim(self) -> int:
        return self._shape[1]

    @property
    def parameters(self) -> Tuple[mg.Tensor, ...]:
        """The weight (D, 50) and bias (1, 50), for a MyNN optimizer."""
        return self.dense.parameters

    def unlock(self) -> None:
        """Make the weights writable again, for an optimizer.

        MyGrad keeps a tensor's memory read-only while a graph that used it is alive, e.g.
        ``out = model(x)`` left in a notebook cell. :func:`semsearch.training.train` calls this
        first, so such a leftover graph cannot make the optimizer step fail.
        """
        for parameter in self.parameters:
            if not parameter.data.flags.writeable:
                parameter.data = parameter.data.copy()

    def __call__(self, descriptors) -> mg.Tensor:
        """Embed descriptors: (N, D) -> (N, 50) MyGrad tensor with unit rows; (D,) -> (1, 50)."""
        descriptors = self.check_input(descriptors)
        return l2_normalize_rows(self.dense(descriptors))

    def similarity(self, descriptors, captions) -> mg.Tensor:
        """Cosine of each embedded descriptor with its caption, shape (B,): fused and fast.

        Equals ``mg.sum(self(descriptors) * captions, axis=1)`` in value and gradient, as one
        graph node (:class:`semsearch.fused.Cosine`).
        """
        import mygrad as mg

        from semsearch.fused import Cosine

        weight, bias = self.parameters
        return mg.execute_op(Cosine, weight, bias, op_args=(self.check_input(descriptors), np.asarray(captions)))

    def similarity_gap(self, descriptors, good_rows, bad_rows, captions):
        """Cosine of each caption with its good image minus that with its bad image, shape (B,).

        Equals ``self.similarity(descriptors[good_rows], captions) -
        self.similarity(descriptors[bad_rows], captions)`` in value and gradient (to the last
        bit or so), as one graph node (:class:`semsearch.fused.CosineGap`). For training only: the
        finiteness of ``descriptors`` (N, D), checked where they were loaded, is not checked
        again for every batch (a NaN would make the gap NaN, which the loss refuses).
        """
        import mygrad as mg

        from semsearch.fused import CosineGap

        if descriptors.ndim != 2 or descriptors.shape[1] != self.input_dim:
            raise InputError(f"descriptors must have shape (N, {self.input_dim}), got {np.shape(descriptors)}")
        x = descriptors.take(np.concatenate([good_rows, bad_rows]), axis=0).astype(np.float32, copy=False)
        captions = np.asarray(captions)
        weight, bias = self.parameters
        return mg.execute_op(CosineGap, weight, bias, op_args=(x, np.concatenate([captions, captions])))

    def embed(self, descriptors, batch_size: int = 65536) -> np.ndarray:
        """Like calling the model, but returns a float32 NumPy array and builds no graph."""
        descriptors = self.check_input(descriptors)
        self.check_weights()
        w, b = self.weight_arrays()
        out = np.empty((len(descriptors), self.output_dim), dtype=np.float32)
        for start in range(0, len(descriptors), batch_size):
            out[start : start + batch_size] = l2_normalize_rows(descriptors[start : start + batch_size] @ w + b)
        return out

    def check_weights(self) -> None:
        """Raise InputError if a weight is NaN or inf (every embedding would be wrong)."""
        for name, array in zip(("weight", "bias"), self.weight_arrays()):
            if not np.isfinite(array).all():
                raise InputError(
                    f"the model's {name} holds NaN or inf: it cannot embed images "
                    "(did its training diverge? train it again with a smaller learning rate)"
                )

    def check_input(self, descriptors) -> np.ndarray:
        """Return descriptors as a float32 (N, D) array, or raise ValueError saying what is wrong."""
        data = descriptors.data if is_tensor(descriptors) else np.asarray(descriptors)
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
        weight, bias = self.weight_arrays()
        save_npz(path, FORMAT, weight=weight, bias=bias,
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
        # as the layer's own float32 arrays would hold them; the layer is made on first use
        model._weights = (weight.astype(np.float32), bias.astype(np.float32))
        return model


# --------------------------------------------------------------------------- any model


def caption_similarity(model, descriptors, captions) -> mg.Tensor:
    """Cosine of ``model``'s embedding of each descriptor with its caption vector, shape (B,).

    Parameters
    ----------
    model : Autoembedder, or any MyNN-style model
        ``model(descriptors)`` gives (B, 50) unit rows as a MyGrad tensor; a ``similarity``
        method, if the model has one, is used instead (it must compute the same).
    descriptors : (B, D) array
    captions : (B, 50) array of unit rows (``se_text``)
    """
    fused = getattr(model, "similarity", None)
    if fused is not None:
        return fused(descriptors, captions)
    import mygrad as mg

    return mg.sum(model(np.asarray(descriptors, dtype=np.float32)) * captions, axis=1)


def similarity_gap(model, descriptors, good_rows, bad_rows, captions):
    """Cosine of each caption with its good image minus that with its bad image, shape (B,).

    The margin ranking loss of a triple depends only on this gap:
    ``loss_accuracy(gap, 0, margin)`` is ``loss_accuracy(sim_good, sim_bad, margin)``.

    Parameters
    ----------
    model : Autoembedder, or any MyNN-style model
        Its ``similarity_gap`` method if it has one (the ``Autoembedder``: one fused node),
        else :func:`caption_similarity` of the good images minus that of the bad ones.
    descriptors : (N, D) array
        Every image of the split; ``good_rows`` and ``bad_rows`` (B,) pick rows of it.
    captions : (B, 50) array of unit rows (``se_text``)

    Example
    -------
    >>> model = Autoembedder(4, 3, seed=0)
    >>> similarity_gap(model, np.eye(4), [0, 1], [2, 3], np.eye(3)[:2]).shape
    (2,)
    """
    fused = getattr(model, "similarity_gap", None)
    if fused is not None:
        return fused(descriptors, np.asarray(good_rows), np.asarray(bad_rows), captions)
    descriptors = np.asarray(descriptors)
    return caption_similarity(model, descriptors[good_rows], captions) - caption_similarity(model, descriptors[bad_rows], captions)


def batch_similarity(model, descriptors, captions) -> mg.Tensor:
    """Cosine of every caption of a batch with every image of it, shape (B, B): ``[i, j]`` is
    caption i with ``model``'s embedding of descriptor j.

    The in-batch losses read it with descriptor j the image of caption j, so the diagonal holds
    the caption-image pairs. Any MyNN-style model works: ``model(descriptors)`` must give unit
    rows as a MyGrad tensor, and the gradient flows back into its parameters.

    Parameters
    ----------
    descriptors : (B, D) array
    captions : (B, 50) array of unit rows (``se_text``)

    Example
    -------
    >>> model = Autoembedder(4, 3, seed=0)
    >>> batch_similarity(model, np.eye(4)[:2], np.eye(3)[:2]).shape
    (2, 2)
    """
    import mygrad as mg

    images = model(np.asarray(descriptors, dtype=np.float32))
    return mg.matmul(np.asarray(captions, dtype=np.float32), images.T)


def embed_images(model, descriptors, batch_size: int = 65536) -> np.ndarray:
    """Embed descriptors (N, D) -> (N, 50) float32 unit rows, as a NumPy array, building no graph.

    Uses ``model.embed`` when there is one, else calls the model in batches without autodiff.
    """
    embed = getattr(model, "embed", None)
    if embed is not None:
        return embed(descriptors)
    import mygrad as mg

    descriptors = np.asarray(descriptors, dtype=np.float32)
    parts = []
    with mg.no_autodiff:
        for start in range(0, len(descriptors), batch_size):
            out = model(descriptors[start : start + batch_size])
            parts.append(np.asarray(out.data if isinstance(out, mg.Tensor) else out, dtype=np.float32))
    if not all(np.isfinite(part).all() for part in parts):
        raise InputError(f"{type(model).__name__} gives NaN or inf embeddings: are its weights finite?")
    return l2_normalize_rows(np.concatenate(parts)).astype(np.float32, copy=False)


def parameters_of(model) -> tuple:
    """The model's trainable tensors (``model.parameters``), checked to be MyGrad tensors."""
    parameters = getattr(model, "parameters", None)
    if parameters is None:
        raise InputTypeError(f"a model needs a 'parameters' attribute (its MyGrad tensors), {type(model).__name__} has none")
    parameters = tuple(parameters)
    if not parameters or not all(is_tensor(p) for p in parameters):
        raise InputTypeError(f"{type(model).__name__}.parameters must be MyGrad tensors, got {parameters!r:.80}")
    return parameters
