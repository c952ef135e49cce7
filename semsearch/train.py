"""Training the image embedder with MyGrad on (caption, good image, bad image) triples.

Team task: *train the model*. Each step embeds the good and bad images of a batch of
triples, takes their cosine similarity to the caption's ``se_text`` vector, and lowers the
margin ranking loss with a MyNN optimizer (SGD with momentum by default, or Adam).
Bad images are drawn afresh every epoch.

Example
-------
>>> model = Autoembedder(data.descriptors.dim, seed=0)                    # doctest: +SKIP
>>> history = train(model, data, embedder, train_ids, val_ids, epochs=30)  # doctest: +SKIP
>>> history.val_accuracy[-1]                                               # doctest: +SKIP
0.87
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List

import mygrad as mg
import numpy as np
from mygrad.operation_base import Operation
from mynn.optimizers.adam import Adam
from mynn.optimizers.sgd import SGD
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

from .dataset import CaptionedImages
from .loss import loss_accuracy
from .model import Autoembedder
from .triples import NEGATIVES, hardest_of, image_text_vectors, sample_other
from .errors import InputError

# Chosen by measurement on the real data (239 images, 5 folds x 3 seeds, mean R@1 / R@10; see
# benchmarks/REPORT.md): SGD lr 0.1 -> 0.224 / 0.801; lr 0.5 -> 0.245 / 0.835; lr 1 -> 0.247 / 0.840;
# lr 2 -> 0.240 / 0.843. Margin 0.1 / 0.5 / 1.0 -> R@10 0.790 / 0.773 / 0.614 (0.25: 0.835).
# Hard negatives (3 / 10 candidates) -> 0.803 / 0.657. Adam lr 0.003-0.01, 60 epochs and centred
# descriptors tie with these defaults (within 0.01 MRR).
DEFAULTS = dict(
    epochs=30,
    batch_size=32,
    learning_rate=0.5,
    momentum=0.9,
    optimizer="sgd",
    margin=0.25,
    negatives="random",
    n_candidates=10,
)


@dataclass
class History:
    """Per-epoch mean train loss / accuracy and validation loss / accuracy."""

    train_loss: List[float] = field(default_factory=list)
    train_accuracy: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_accuracy: List[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class TripleTable:
    """What training indexes into, for the images of one split.

    Attributes
    ----------
    caption_vectors : (N_captions, 50)  ``se_text`` of every caption of these images.
    good_rows : (N_captions,)           row in ``descriptors`` of each caption's image.
    descriptors : (N_images, D)         the images' descriptors.
    """

    def __init__(self, data: CaptionedImages, text_embedder, image_ids):
        image_ids = np.unique(np.asarray(image_ids, dtype=np.int64))
        if len(image_ids) < 2:
            raise InputError(f"a split needs at least 2 images, got {len(image_ids)}")
        caption_ids = data.captions.caption_ids_of_images(image_ids)
        self.image_ids = image_ids
        self.caption_ids = caption_ids
        self.caption_vectors = text_embedder(data.captions.captions(caption_ids)).astype(np.float32)
        self.good_rows = np.searchsorted(image_ids, data.captions.images_of(caption_ids))
        self.descriptors = data.descriptors.vectors_of(image_ids)
        self._image_text_vectors = None

    def __len__(self) -> int:
        return len(self.caption_ids)

    def sample_bad_rows(self, rng: np.random.Generator, negatives: str = "random", n_candidates: int = 10) -> np.ndarray:
        """One bad image row per caption, never the caption's own image, shape (N_captions,)."""
        if negatives == "random":
            return sample_other(self.good_rows, len(self.image_ids), rng=rng)
        if self._image_text_vectors is None:
            self._image_text_vectors = image_text_vectors(self.caption_vectors, self.good_rows, len(self.image_ids))
        return hardest_of(self.caption_vectors, self.good_rows, self._image_text_vectors, n_candidates, rng=rng)


class _Cosine(Operation):
    """``model(descriptors) . captions`` row by row, as one MyGrad operation on the layer's parameters.

    Written with MyGrad functions (dense layer, row normalisation, dot product) this is about ten
    graph nodes, and at batch 32 MyGrad's bookkeeping for them costs more than the arithmetic.
    Here it is one node, with its gradient derived by hand; MyGrad still chains it into
    ``margin_ranking_loss`` and delivers ``weight.grad`` and ``bias.grad`` to the optimizer.
    """

    def __call__(self, weight, bias, descriptors, captions, eps=1e-12):
        self.variables = (weight, bias)  # the tensors that receive a gradient
        self.x, self.c, self.eps, self.dh = descriptors, captions, eps, None
        self.h = descriptors @ weight.data + bias.data  # the dense layer, (B, 50)
        self.norms = np.sqrt(np.einsum("ij,ij->i", self.h, self.h))  # |h|
        # s = (h / (|h| + eps)) . c, the cosine similarity (as l2_normalize_rows normalises)
        self.s = np.einsum("ij,ij->i", self.h, captions) / (self.norms + eps)
        return self.s

    def backward_var(self, grad, index, **kwargs):
        if self.dh is None:  # dL/dh, shared by the weight and the bias
            # ds/dh = (c - h s / |h|) / (|h| + eps), one row per caption
            n = self.norms
            self.dh = (grad / (n + self.eps))[:, None] * (self.c - self.h * (self.s / n)[:, None])
        return self.x.T @ self.dh if index == 0 else self.dh.sum(axis=0, keepdims=True)


def similarities(model: Autoembedder, caption_vectors, good_descriptors, bad_descriptors):
    """Cosine similarity of each caption to its good and to its bad image, shapes (B,), (B,).

    The same as ``sum(model(images) * captions, axis=1)`` for the good and the bad images, but
    each is one graph node (:class:`_Cosine`): a training step takes about half the time.
    """
    captions = np.asarray(caption_vectors)
    weight, bias = model.parameters
    return tuple(
        mg.execute_op(_Cosine, weight, bias, op_args=(model.check_input(images), captions))
        for images in (good_descriptors, bad_descriptors)
    )


def evaluate_triples(model: Autoembedder, table: TripleTable, bad_rows: np.ndarray, margin: float):
    """Loss and accuracy of the model on fixed triples, without building a graph."""
    images = model.embed(table.descriptors)
    sim_good = np.einsum("nd,nd->n", table.caption_vectors, images[table.good_rows])
    sim_bad = np.einsum("nd,nd->n", table.caption_vectors, images[bad_rows])
    loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
    return float(loss.item()), accuracy


def make_optimizer(name: str, parameters, learning_rate: float, momentum: float):
    """A MyNN optimizer: ``"sgd"`` (with momentum) or ``"adam"``."""
    if name == "sgd":
        return SGD(parameters, learning_rate=learning_rate, momentum=momentum)
    if name == "adam":
        return Adam(parameters, learning_rate=learning_rate)
    raise InputError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def train(
    model: Autoembedder,
    data: CaptionedImages,
    text_embedder,
    train_image_ids,
    validation_image_ids=None,
    *,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    momentum: float = DEFAULTS["momentum"],
    optimizer: str = DEFAULTS["optimizer"],
    margin: float = DEFAULTS["margin"],
    negatives: str = DEFAULTS["negatives"],
    n_candidates: int = DEFAULTS["n_candidates"],
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` in place; return the per-epoch history.

    Parameters
    ----------
    model : Autoembedder
        Its input size must equal ``data.descriptors.dim``.
    data : CaptionedImages
        Captions joined with descriptors (:func:`semsearch.dataset.join`).
    text_embedder : TextEmbedder
        ``se_text``, fitted on the captions.
    train_image_ids, validation_image_ids : array-like of int
        The split (by image). Validation is optional.
    epochs, batch_size, learning_rate, momentum, optimizer, margin, negatives, n_candidates
        See :data:`DEFAULTS`. ``negatives`` is ``"random"`` or ``"hard"``.
    seed : int
        The same seed and data give the same weights.
    """
    if model.input_dim != data.descriptors.dim:
        raise InputError(f"the model takes {model.input_dim}-d descriptors, the data has {data.descriptors.dim}-d")
    if model.output_dim != text_embedder.dim:
        raise InputError(f"the model outputs {model.output_dim}-d vectors, the text embedder {text_embedder.dim}-d")
    if negatives not in NEGATIVES:
        raise InputError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise InputError(f"need epochs >= 1, batch_size >= 1, learning_rate > 0; got {epochs}, {batch_size}, {learning_rate}")
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    rng = np.random.default_rng(seed)
    train_table = TripleTable(data, text_embedder, train_image_ids)
    val_table = TripleTable(data, text_embedder, validation_image_ids) if validation_image_ids is not None else None
    val_bad = val_table.sample_bad_rows(np.random.default_rng(seed + 1)) if val_table is not None else None
    model.unlock()
    optim = make_optimizer(optimizer, model.parameters, learning_rate, momentum)
    history = History()

    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress)
    # A batch's matrices are small: BLAS threads cost more in handing work around than they save.
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in bar:
            _train_epoch(model, optim, train_table, rng, history, batch_size, margin, negatives, n_candidates)
            if val_table is not None:
                val_loss, val_accuracy = evaluate_triples(model, val_table, val_bad, margin)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_accuracy)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", acc=f"{history.train_accuracy[-1]:.3f}")
    return history


def _train_epoch(model, optim, table: TripleTable, rng, history: History, batch_size, margin, negatives, n_candidates) -> None:
    """One pass over every training caption, with freshly drawn bad images."""
    bad_rows = table.sample_bad_rows(rng, negatives, n_candidates)
    order = rng.permutation(len(table))
    good_rows, bad_rows = table.good_rows[order], bad_rows[order]  # in batch order, sliced below
    losses, accuracies, sizes = [], [], []
    # MyGrad's memory guard (making a graph's arrays read-only until backward) costs more than a
    # batch's arithmetic; it is safe off: the optimizer writes to the weights only after backward.
    with mg.mem_guard_off:
        for start in range(0, len(order), batch_size):
            batch = slice(start, start + batch_size)
            sim_good, sim_bad = similarities(
                model,
                table.caption_vectors[order[batch]],
                table.descriptors[good_rows[batch]],
                table.descriptors[bad_rows[batch]],
            )
            loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
            loss.backward()
            optim.step()
            losses.append(loss.item())
            accuracies.append(accuracy)
            sizes.append(len(sim_good))
    history.train_loss.append(float(np.average(losses, weights=sizes)))
    history.train_accuracy.append(float(np.average(accuracies, weights=sizes)))
