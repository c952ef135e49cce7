"""The image embedder ``se_image``: one MyNN dense layer, descriptor (D,) -> unit vector (50,).

Team task: *create the MyNN model*. :meth:`Autoembedder.__call__` is the forward pass, and the
only one: training differentiates it, and the image database, evaluation, the photo tool and
the web app run it (:func:`embed_images`, without a graph). Change it there and everything
that embeds an image changes with it.

Beside it sits one fast path, :meth:`Autoembedder.similarity_gap`: each caption's cosine with
its good image minus that with its bad image, as a single MyGrad node with a hand-derived
gradient (:mod:`semsearch.fused`), about twice as fast to train as autodiff through ``__call__``.
Training uses it only after :func:`fast_path_agrees` has checked, on a probe batch, that its
values and gradients equal autodiff through ``__call__``; a model whose forward was changed (a
subclass, or an edit in this file) trains through its own forward, and training says so.

Any MyNN-style model (``__call__`` giving unit rows as a MyGrad tensor, ``parameters``)
trains, searches and evaluates the same way, through these functions:

- :func:`caption_similarity` ``(model, descriptors (B, D), captions (B, 50)) -> (B,)``
- :func:`similarity_gap` ``(model, descriptors (N, D), good_rows, bad_rows, captions (B, 50)) -> (B,)``
- :func:`batch_similarity` ``(model, descriptors (B, D), captions (B, 50)) -> (B, B)``
- :func:`embed_images` ``(model, descriptors (N, D)) -> (N, 50)`` NumPy, no graph

Example
-------
>>> import mygrad as mg
>>> model = Autoembedder(512, seed=0)
>>> model(np.ones((4, 512), dtype=np.float32)).shape
(4, 50)
>>> x, c = np.random.default_rng(0).random((4, 512), dtype=np.float32), np.eye(50, dtype=np.float32)[:2]
>>> fast, slow = model.similarity_gap(x, [0, 1], [2, 3], c), similarity_gap(model, x, [0, 1], [2, 3], c)
>>> bool(np.allclose(fast.data, slow.data, atol=1e-6))
True
>>> fast_path_agrees(model, x, [0, 1], [2, 3], c)
True
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Optional, Tuple, Union

import numpy as np

from semsearch.common.checks import is_integer
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
        The network whose descriptors it takes (a name or a record, e.g. ``descriptors.backbone_info``);
        kept as the record :attr:`backbone_info`, saved with the model, and checked by :meth:`check_backbone` wherever descriptors meet it. None:
        unknown, not checked.
    """

    def __init__(self, input_dim: int, output_dim: int = 50, *, seed: int = 0, backbone=None):
        for name, size in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not is_integer(size) or size < 1:
                raise InputError(f"{name} must be a positive whole number (a size), got {size!r}")
        self.backbone_info = as_backbone_info(backbone)
        info = self.backbone_info
        if info is not None and info["dim"] != int(input_dim):
            raise InputError(f"input_dim={input_dim}, but backbone {info['backbone']} makes {info['dim']}-d descriptors")
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
        check_same_backbone(self.backbone_info, getattr(descriptors, "backbone_info", None), what)

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

    def __call__(self, descriptors) -> mg.Tensor:
        """The forward pass: embed descriptors (N, D) -> (N, 50) MyGrad tensor of unit rows.

        ``l2_normalize_rows(dense(descriptors))``; one descriptor (D,) gives (1, 50). Training,
        the image database, evaluation and the photo tool all run this method, so a change here
        (say a ReLU, or a second layer) changes what all of them compute.
        """
        descriptors = self.check_input(descriptors)
        return l2_normalize_rows(self.dense(descriptors))

    def similarity_gap(self, descriptors, good_rows, bad_rows, captions) -> mg.Tensor:
        """Fast path: each caption's cosine with its good image minus that with its bad one, (B,).

        Must equal :func:`similarity_gap` ``(self, ...)`` through autodiff of :meth:`__call__`, in
        value and gradient, as one graph node (:class:`semsearch.fused.CosineGap`) that computes
        the *default* forward pass by hand. Training checks that it does
        (:func:`fast_path_agrees`) before it uses it, so an edited ``__call__`` is never silently
        replaced by this copy of the old one. For training only: ``descriptors`` (N, D) were
        checked to be finite where they were loaded (a NaN would make the loss refuse the gap).
        """
        import mygrad as mg

        from semsearch.fused import CosineGap

        if descriptors.ndim != 2 or descriptors.shape[1] != self.input_dim:
            raise InputError(f"descriptors must have shape (N, {self.input_dim}), got {np.shape(descriptors)}")
        x = descriptors.take(np.concatenate([good_rows, bad_rows]), axis=0).astype(np.float32, copy=False)
        captions = np.asarray(captions, dtype=np.float32)
        weight, bias = self.parameters
        return mg.execute_op(CosineGap, weight, bias, op_args=(x, np.concatenate([captions, captions])))

    def embed(self, descriptors, batch_size: int = 65536) -> np.ndarray:
        """The forward pass without a graph: (N, D) -> (N, 50) float32 NumPy, :func:`embed_images`."""
        return embed_images(self, descriptors, batch_size)

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
                 backbone=np.array(backbone_to_json(self.backbone_info)))

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

    ``sum(model(descriptors) * captions, axis=1)`` through MyGrad's autodiff.

    Parameters
    ----------
    model : Autoembedder, or any MyNN-style model
        ``model(descriptors)`` gives (B, 50) unit rows as a MyGrad tensor.
    descriptors : (B, D) array
    captions : (B, 50) array of unit rows (``se_text``)

    Example
    -------
    >>> model = Autoembedder(4, 3, seed=0)
    >>> caption_similarity(model, np.eye(4)[:2], np.eye(3)[:2]).shape
    (2,)
    """
    import mygrad as mg

    return mg.sum(model(np.asarray(descriptors, dtype=np.float32)) * np.asarray(captions, dtype=np.float32), axis=1)


def similarity_gap(model, descriptors, good_rows, bad_rows, captions, *, fast: bool = False) -> mg.Tensor:
    """Each caption's cosine with its good image minus that with its bad image, shape (B,).

    :func:`caption_similarity` of the good images minus that of the bad ones, through autodiff
    of the model's forward; with ``fast=True`` the model's fused
    :meth:`~Autoembedder.similarity_gap`, which training passes only once
    :func:`fast_path_agrees` has confirmed it computes the same.

    Parameters
    ----------
    descriptors : (N, D) array
        Every image of the split; ``good_rows`` and ``bad_rows`` (B,) pick rows of it.
    captions : (B, 50) array of unit rows (``se_text``)

    Example
    -------
    >>> model = Autoembedder(4, 3, seed=0)
    >>> similarity_gap(model, np.eye(4), [0, 1], [2, 3], np.eye(3)[:2]).shape
    (2,)
    """
    good_rows, bad_rows = np.asarray(good_rows), np.asarray(bad_rows)
    if fast:
        return model.similarity_gap(descriptors, good_rows, bad_rows, captions)
    descriptors = np.asarray(descriptors)
    return caption_similarity(model, descriptors[good_rows], captions) - caption_similarity(model, descriptors[bad_rows], captions)


def fast_path_agrees(model, descriptors, good_rows, bad_rows, captions, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Whether ``model.similarity_gap`` (a fused fast path) equals autodiff through ``model(x)``.

    Both are run on the probe batch, values and the gradients of every parameter compared. A
    model without a ``similarity_gap`` method, or whose fast path raises or differs (its forward
    pass was changed: a subclass, or an edit of :meth:`Autoembedder.__call__`), gets ``False``:
    it must train through its own forward. The parameters' gradients are cleared afterwards.

    Parameters
    ----------
    descriptors : (N, D) array
    good_rows, bad_rows : (B,) rows of ``descriptors``
    captions : (B, E) array of unit rows
    rtol, atol : float
        Tolerances of the comparison (float32 arithmetic in a different order).
    """
    if getattr(model, "similarity_gap", None) is None:
        return False
    import mygrad as mg

    parameters = parameters_of(model)
    upstream = np.random.default_rng(0).standard_normal(len(good_rows))

    def values_and_gradients(fast: bool):
        gap = similarity_gap(model, descriptors, good_rows, bad_rows, captions, fast=fast)
        mg.sum(gap * upstream).backward()
        gradients = [None if p.grad is None else np.array(p.grad) for p in parameters]
        for p in parameters:
            p.null_grad()
        return np.array(gap.data), gradients

    try:
        fast_values, fast_gradients = values_and_gradients(fast=True)
    except Exception:  # a fast path that cannot run on this model is not its fast path
        return False
    values, gradients = values_and_gradients(fast=False)
    return all_close([fast_values, *fast_gradients], [values, *gradients], rtol, atol)


def all_close(first, second, rtol: float, atol: float) -> bool:
    """Whether two lists of arrays (or Nones) match one for one, shapes and values."""
    def close(a, b) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))

    return len(first) == len(second) and all(close(a, b) for a, b in zip(first, second))


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
    """Run ``model``'s forward pass without a graph: (N, D) -> (N, 50) float32 NumPy unit rows.

    The database, evaluation and the photo tool embed images through here, in batches of
    ``batch_size`` rows under ``mygrad.no_autodiff``: whatever ``model(x)`` computes is what
    they get.

    Example
    -------
    >>> embed_images(Autoembedder(4, 3, seed=0), np.eye(4)).shape
    (4, 3)
    """
    import mygrad as mg

    check_weights = getattr(model, "check_weights", None)
    if check_weights is not None:
        check_weights()
    descriptors = np.asarray(descriptors.data if is_tensor(descriptors) else descriptors, dtype=np.float32)
    if descriptors.ndim == 1:
        descriptors = descriptors[None]
    parts = []
    with mg.no_autodiff:
        for start in range(0, len(descriptors), batch_size):
            out = model(descriptors[start : start + batch_size])
            parts.append(np.asarray(out.data if is_tensor(out) else out, dtype=np.float32))
    out = np.concatenate(parts) if parts else np.zeros((0, getattr(model, "output_dim", 0)), np.float32)
    if not np.isfinite(out).all():
        raise InputError(f"{type(model).__name__} gives NaN or inf embeddings: are its weights finite?")
    return l2_normalize_rows(out).astype(np.float32, copy=False)


def parameters_of(model) -> tuple:
    """The model's trainable tensors (``model.parameters``), checked to be MyGrad tensors."""
    parameters = getattr(model, "parameters", None)
    if parameters is None:
        raise InputTypeError(f"a model needs a 'parameters' attribute (its MyGrad tensors), {type(model).__name__} has none")
    parameters = tuple(parameters)
    if not parameters or not all(is_tensor(p) for p in parameters):
        raise InputTypeError(f"{type(model).__name__}.parameters must be MyGrad tensors, got {parameters!r:.80}")
    return parameters
