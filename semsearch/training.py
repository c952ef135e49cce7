"""Training the image embedder with MyGrad on (caption, good image, bad image) triples.

Team task: *train the model*. Each epoch draws fresh triples with
:func:`semsearch.triples.make_triples`; each step takes a batch of them, asks the model for
each caption's cosine with its good image minus that with its bad image
(:func:`semsearch.model.similarity_gap`: one fused node for an ``Autoembedder``, two
:func:`semsearch.model.caption_similarity` through MyGrad autodiff for any other model), and
lowers the margin ranking loss (:func:`semsearch.loss.gap_loss_accuracy`, the same as
:func:`semsearch.loss.loss_accuracy`) with a MyNN optimizer. Every setting is a field of
:class:`TrainConfig`; the command line makes one flag per field.

``loss="vse0" | "vse++" | "infonce"`` trains on in-batch negatives instead: each step takes B
captions with their own images, asks the model for the (B, B) cosines of every caption with
every image of the batch (:func:`semsearch.model.batch_similarity`), and every other image of
the batch is a bad image (:func:`semsearch.loss.vse_loss`, :func:`semsearch.loss.info_nce_loss`).

Example
-------
>>> model = Autoembedder(data.descriptors.dim, seed=0)                    # doctest: +SKIP
>>> history = train(model, data, text_encoder, train_ids, val_ids, epochs=60)  # doctest: +SKIP
>>> history.val_accuracy[-1]                                               # doctest: +SKIP
0.87
>>> TrainConfig().learning_rate, TrainConfig().lr_schedule
(1.0, 'cosine')
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import mygrad as mg
import numpy as np
from mynn.optimizers.adam import Adam
from mynn.optimizers.sgd import SGD
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

from semsearch.backbones import check_same_backbone
from semsearch.common.checks import _is_integer
from semsearch.dataset import CaptionedImages, Split
from semsearch.errors import InputError, InputTypeError, TrainingError
from semsearch.loss import DIRECTIONS, gap_loss_accuracy, info_nce_loss, loss_accuracy, same_image_mask, vse_loss
from semsearch.model import batch_similarity, embed_images, parameters_of, similarity_gap
from semsearch.regularisation import SCHEDULES, add_weight_decay, decayed_parameters, scheduled_learning_rate
from semsearch.triples import NEGATIVES, Triples, make_triples

OPTIMIZERS = ("sgd", "adam")
#: "triple": the course's loss on (caption, good, bad image) triples; the others use the batch.
LOSSES = ("triple", "vse0", "vse++", "infonce")


def _setting(default, help: str, **kwargs):
    return field(default=default, metadata=dict(help=help, **kwargs))


#: The most epochs :class:`TrainConfig` accepts: far beyond any useful run, and small enough
#: for every counter (a 20-digit number of epochs overflowed the progress bar).
MAX_EPOCHS = 1_000_000


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting, with its default. ``semsearch train`` has one flag per field.

    The defaults were chosen by measurement on the real data (239 images, 5 folds x 3 seeds,
    mean R@1 / R@10; ``benchmarks/REPORT.md``): SGD lr 0.1 -> 0.224 / 0.801, lr 0.5 -> 0.245 /
    0.835, lr 1 -> 0.247 / 0.840, lr 2 -> 0.240 / 0.843 (30 epochs, constant rate); margin 0.1 /
    0.5 / 1.0 -> R@10 0.790 / 0.773 / 0.614 (0.25: 0.835); hard negatives (3 / 10 candidates) ->
    0.803 / 0.657; Adam lr 0.003-0.01 and centred descriptors tie (within 0.01 MRR).
    The cosine schedule at lr 1 over 60 epochs (``benchmarks/regularisation.md``) was selected
    on seeds 0-2 (0.291 / 0.867, vs 0.245 / 0.835 for the old 30 epochs at constant lr 0.5) and
    confirmed on fresh splits, seeds 3-5: 0.309 / 0.866 vs 0.268 / 0.834, paired R@1 gain
    +0.041 +- 0.034 (12 of 15 runs better). Weight decay only hurt (1e-4: -0.025 R@1; the
    embedding is normalised, so shrinking the weight only shrinks it relative to the bias), and so
    did fewer epochs at a constant rate; standardised descriptors tied.
    """

    epochs: int = _setting(60, "passes over the training captions")
    batch_size: int = _setting(32, "triples per optimizer step")
    learning_rate: float = _setting(1.0, "optimizer step size (of the first epoch, with lr_schedule cosine)")
    momentum: float = _setting(0.9, "SGD momentum (ignored by adam)")
    optimizer: str = _setting("sgd", "MyNN optimizer", choices=OPTIMIZERS)
    margin: float = _setting(0.25, "margin of the ranking loss (triple, vse0, vse++)")
    loss: str = _setting(
        "triple", "triple: one random bad image per caption; vse0: hinges summed over the batch's other images; "
        "vse++: the hardest of them only; infonce: softmax cross-entropy over the batch", choices=LOSSES,
    )
    directions: str = _setting("both", "in-batch losses: caption -> image only, or image -> caption too", choices=DIRECTIONS)
    warmup_epochs: int = _setting(2, "vse++: epochs of the vse0 loss before the hardest negative only")
    temperature: float = _setting(0.2, "infonce: divides the cosines before the softmax")
    weight_decay: float = _setting(0.0, "L2 penalty on the weights (not biases): lam * W is added to their gradient")
    lr_schedule: str = _setting("cosine", "constant step size, or cosine: half a cosine from learning_rate down to 0", choices=SCHEDULES)
    negatives: str = _setting("random", "how bad images are drawn", choices=NEGATIVES)
    n_candidates: int = _setting(10, "random candidates the hardest bad image is chosen from (negatives=hard)")
    validation_fraction: float = _setting(0.2, "share of images held out for validation; 0 trains on all")
    seed: int = _setting(0, "seeds the split, the weights and the triples")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                if not _is_integer(value):
                    raise InputTypeError(f"{f.name} must be an integer, got {value!r}")
            elif f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                    raise InputTypeError(f"{f.name} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise InputError(f"{f.name} must be finite, got {value!r}")
            if "choices" in f.metadata and value not in f.metadata["choices"]:
                raise InputError(f"{f.name} must be one of {f.metadata['choices']}, got {value!r}")
        for name in ("epochs", "batch_size", "n_candidates"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.momentum < 0 or self.margin < 0:
            raise InputError(f"momentum and margin must be >= 0, got {self.momentum!r} and {self.margin!r}")
        if not self.momentum < 1:  # SGD's velocity would grow without bound
            raise InputError(f"momentum must be < 1 (0.9 is usual), got {self.momentum!r}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0 (NumPy's generators take no negative seed), got {self.seed!r}")
        if self.epochs > MAX_EPOCHS:
            raise InputError(f"epochs must be at most {MAX_EPOCHS:,}, got {self.epochs!r}")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.warmup_epochs < 0:
            raise InputError(f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}")
        if not self.temperature > 0:
            raise InputError(f"temperature must be > 0, got {self.temperature!r}")
        if self.loss != "triple" and self.negatives != "random":
            raise InputError(f"negatives={self.negatives!r} chooses the triple loss's bad image; loss={self.loss!r} uses the whole batch")
        if self.loss != "triple" and self.batch_size < 2:
            raise InputError(f"loss={self.loss!r} needs batch_size >= 2 (the other captions' images are the bad ones), got {self.batch_size}")
        if not 0 <= self.validation_fraction < 1:
            raise InputError(f"validation_fraction must lie in [0, 1), got {self.validation_fraction!r}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed; an unknown name is an error that names it."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InputTypeError(f"unknown training settings {unknown}; known: {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: Dict[str, Any]) -> "TrainConfig":
        """The configuration saved by :meth:`as_dict` (e.g. in a model's ``bundle.json``)."""
        return cls().replace(**settings)


@dataclass
class History:
    """Per-epoch mean train loss / accuracy and validation loss / accuracy."""

    train_loss: List[float] = field(default_factory=list)
    train_accuracy: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_accuracy: List[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        """One line per epoch: train loss and accuracy, and validation ones if there are."""
        has_val = bool(self.val_loss)
        lines = ["epoch  train loss  train acc" + ("  val loss  val acc" if has_val else "")]
        for e in range(len(self.train_loss)):
            line = f"{e + 1:5d}  {self.train_loss[e]:10.4f}  {self.train_accuracy[e]:9.3f}"
            if has_val:
                line += f"  {self.val_loss[e]:8.4f}  {self.val_accuracy[e]:7.3f}"
            lines.append(line)
        return "\n".join(lines)


def evaluate_triples(model, triples: Triples, caption_vectors: np.ndarray, margin: float):
    """Loss and accuracy of the model on fixed triples, without building a graph."""
    images = embed_images(model, triples.split.descriptors)
    sim_good = np.einsum("nd,nd->n", caption_vectors, images[triples.good_rows])
    sim_bad = np.einsum("nd,nd->n", caption_vectors, images[triples.bad_rows])
    loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
    return float(loss.item()), accuracy


def batch_loss(config: TrainConfig, epoch: int = 0):
    """The in-batch loss of ``config`` in epoch ``epoch`` (0-based): ``f(sims, same_image) -> (loss, accuracy)``.

    ``vse++`` is the summed ``vse0`` loss for the first ``warmup_epochs`` epochs, then the
    hardest bad image only.
    """
    if config.loss == "infonce":
        return lambda sims, same: info_nce_loss(sims, same, config.temperature, directions=config.directions)
    hardest = config.loss == "vse++" and epoch >= config.warmup_epochs
    return lambda sims, same: vse_loss(sims, same, config.margin, hardest=hardest, directions=config.directions)


def evaluate_batches(model, split: Split, caption_vectors: np.ndarray, order: np.ndarray, config: TrainConfig, epoch: int = 0):
    """Mean in-batch loss and accuracy of the model over ``split`` in fixed batches, without a graph."""
    images = embed_images(model, split.descriptors)
    loss_of = batch_loss(config, epoch)
    losses, accuracies, sizes = [], [], []
    for start in range(0, len(order), config.batch_size):
        rows = order[start : start + config.batch_size]
        good = split.image_rows[rows]
        loss, accuracy = loss_of(caption_vectors[rows] @ images[good].T, same_image_mask(good))
        losses.append(loss.item())
        accuracies.append(accuracy)
        sizes.append(len(rows))
    return float(np.average(losses, weights=sizes)), float(np.average(accuracies, weights=sizes))


class MomentumSGD(SGD):
    """MyNN's SGD with momentum, the same update, without the pass its own weight decay makes.

    ``mynn.optimizers.SGD.step`` starts each weight's update from ``-weight_decay * weight``, a new
    array even when the decay is 0; at batch 32 that is a tenth of a step. Here (decay 0, as
    semsearch uses it: its own ``weight_decay`` goes into the gradient) the update is MyNN's
    ``v = momentum * v - lr * grad; param += v``, bit for bit (tested).
    """

    def step(self):
        if self.weight_decay or self.momentum == 0:
            return super().step()
        for param, moment in zip(self.params, self.param_moments):
            if param.grad is not None:
                moment *= self.momentum
                moment -= self.learning_rate * param.grad
                param.data += moment


def make_optimizer(config: TrainConfig, parameters):
    """The MyNN optimizer the configuration names: SGD with momentum, or Adam."""
    if config.optimizer == "sgd":
        return MomentumSGD(parameters, learning_rate=config.learning_rate, momentum=config.momentum)
    return Adam(parameters, learning_rate=config.learning_rate)


def train(
    model,
    data: CaptionedImages,
    text_encoder,
    train_image_ids,
    validation_image_ids=None,
    config: Optional[TrainConfig] = None,
    *,
    progress: bool = True,
    **changes,
) -> History:
    """Train ``model`` in place; return the per-epoch history.

    Parameters
    ----------
    model : Autoembedder, or any MyNN-style model (``__call__``, ``parameters``)
        Maps (B, D) descriptors to (B, text_encoder.dim) unit rows.
    data : CaptionedImages
        Captions joined with descriptors (:func:`semsearch.dataset.join`).
    text_encoder : TextEncoder
        ``se_text``, fitted on the captions.
    train_image_ids, validation_image_ids : array-like of int
        The split (by image). Validation is optional.
    config : TrainConfig, optional
        The settings (default ``TrainConfig()``); ``changes`` override single fields,
        e.g. ``train(..., epochs=5)``.

    Raises
    ------
    TrainingError
        The loss became NaN or infinite (learning rate too high?), or a step failed; the
        model's weights are restored to what they were before ``train`` was called.
    """
    config = (config or TrainConfig()).replace(**changes)
    parameters = parameters_of(model)
    if getattr(model, "input_dim", data.descriptors.dim) != data.descriptors.dim:
        raise InputError(f"the model takes {model.input_dim}-d descriptors, the data has {data.descriptors.dim}-d")
    if getattr(model, "output_dim", text_encoder.dim) != text_encoder.dim:
        raise InputError(f"the model outputs {model.output_dim}-d vectors, the text encoder {text_encoder.dim}-d")
    check_same_backbone(getattr(model, "backbone", None), data.descriptors.backbone, "training")
    train_split = data.split(train_image_ids)
    if len(train_split.image_ids) < 2:
        raise InputError(f"training needs at least 2 images, got {len(train_split.image_ids)}")
    train_captions = text_encoder(train_split.captions).astype(np.float32)
    validation = None
    if validation_image_ids is not None:
        val_split = data.split(validation_image_ids)
        if len(val_split.image_ids) < 2:
            raise InputError(f"validation needs at least 2 images, got {len(val_split.image_ids)}")
        shared = np.intersect1d(val_split.image_ids, train_split.image_ids)
        if len(shared):  # the validation scores would measure memory, not generalisation
            import warnings

            warnings.warn(f"{len(shared)} of the {len(val_split.image_ids)} validation images are also training "
                          f"images (e.g. {int(shared[0])}): the validation loss and scores will look better than "
                          "they are", stacklevel=2)
        val_captions = text_encoder(val_split.captions).astype(np.float32)
        if config.loss == "triple":
            validation = (make_triples(val_split, seed=config.seed + 1), val_captions)
        else:  # fixed batches, drawn once
            validation = (val_split, val_captions, np.random.default_rng(config.seed + 1).permutation(len(val_split)))

    for parameter in parameters:  # a graph left over in a notebook cell may hold them read-only
        if not parameter.data.flags.writeable:
            parameter.data = parameter.data.copy()
    before = [parameter.data.copy() for parameter in parameters]
    rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(config, parameters)
    history = History()
    bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    try:
        # A batch's matrices are small: BLAS threads cost more in handing work around than they save.
        with threadpool_limits(limits=1, user_api="blas"):
            for epoch in bar:
                optimizer.learning_rate = scheduled_learning_rate(config.learning_rate, epoch, config.epochs, config.lr_schedule)
                triples = make_triples(
                    train_split, negatives=config.negatives, n_candidates=config.n_candidates,
                    caption_vectors=train_captions, seed=rng,
                )
                _train_epoch(model, optimizer, triples, train_captions, rng, history, config, epoch)
                if not _still_sound(model, parameters, train_split.descriptors, history.train_loss[-1]):
                    raise TrainingError(
                        f"training diverged in epoch {epoch + 1} (loss {history.train_loss[-1]:.4g}; the image "
                        f"embeddings overflowed to zero, inf or NaN): try a smaller learning rate than {config.learning_rate}"
                    )
                if validation is not None:
                    if config.loss == "triple":
                        val_loss, val_accuracy = evaluate_triples(model, *validation, config.margin)
                    else:
                        val_loss, val_accuracy = evaluate_batches(model, *validation, config, epoch)
                    history.val_loss.append(val_loss)
                    history.val_accuracy.append(val_accuracy)
                bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", acc=f"{history.train_accuracy[-1]:.3f}")
    except BaseException as error:
        for parameter, old in zip(parameters, before):  # leave the model as it was
            parameter.data = old
        if isinstance(error, InputError) and "NaN or inf" in str(error):
            raise TrainingError(
                f"training diverged (similarities became NaN or inf): try a smaller learning rate than {config.learning_rate}"
            ) from None
        raise
    return history


def _still_sound(model, parameters, descriptors: np.ndarray, loss: float) -> bool:
    """Whether training has not diverged: finite loss and weights, and unit (not zero) embeddings."""
    if not (math.isfinite(loss) and all(np.isfinite(p.data).all() for p in parameters)):
        return False
    with np.errstate(all="ignore"):
        sample = embed_images(model, descriptors[:256])
    norms = np.linalg.norm(sample, axis=1)
    return bool(np.isfinite(norms).all() and (norms > 0.5).all())


def _train_epoch(model, optimizer, triples: Triples, caption_vectors, rng, history: History, config: TrainConfig, epoch: int = 0) -> None:
    """One pass over every training triple, in a random order, in batches.

    With an in-batch loss each batch uses only the triples' captions and good images: the bad
    images are the batch's other images.
    """
    order = rng.permutation(len(triples))
    losses, accuracies, sizes = [], [], []
    in_batch = config.loss != "triple"
    loss_of = batch_loss(config, epoch) if in_batch else None
    decayed = decayed_parameters(parameters_of(model)) if config.weight_decay else ()
    # MyGrad's memory guard (making a graph's arrays read-only until backward) costs more than a
    # batch's arithmetic; it is safe off: the optimizer writes to the weights only after backward.
    with mg.mem_guard_off:
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            if in_batch:
                good = triples.good_rows[rows]
                sims = batch_similarity(model, triples.split.descriptors[good], caption_vectors[rows])
                loss, accuracy = loss_of(sims, same_image_mask(good))
            else:
                # the loss needs only sim_good - sim_bad: one fused graph node for an Autoembedder
                gap = similarity_gap(model, triples.split.descriptors, triples.good_rows[rows], triples.bad_rows[rows], caption_vectors[rows])
                loss, accuracy = gap_loss_accuracy(gap, config.margin)
            loss.backward()
            add_weight_decay(decayed, config.weight_decay)
            optimizer.step()
            losses.append(loss.item())
            accuracies.append(accuracy)
            sizes.append(len(rows))
    history.train_loss.append(float(np.average(losses, weights=sizes)))
    history.train_accuracy.append(float(np.average(accuracies, weights=sizes)))
