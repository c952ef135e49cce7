"""Training the image embedder with MyGrad on (caption, good image, bad image) triples.

Team task: *train the model*. Each epoch draws fresh triples with
:func:`semsearch.triples.make_triples`; each step embeds a batch's good and bad images with the
model's forward pass, takes each caption's cosine with them (:func:`semsearch.model.caption_similarity`)
and calls :func:`semsearch.loss.loss_accuracy` on them, then a MyNN optimizer steps. Both team
functions are looked up when training starts, or passed in (``train(..., make_triples=mine,
loss_accuracy=mine)``), so a team's own or an edited one is what trains. An
``Autoembedder``'s fused fast path is used only where it equals the forward pass
(:func:`choose_fast_path`). Every setting is a field of :class:`TrainConfig`; the command line
makes one flag per field.

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
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import mygrad as mg
import numpy as np
from mynn.optimizers.adam import Adam
from mynn.optimizers.sgd import SGD
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # not tqdm.auto: that warns in Jupyter without ipywidgets

from semsearch.backbones import check_same_backbone
from semsearch.common.checks import is_integer
from semsearch.dataset import CaptionedImages, Split
from semsearch.errors import InputError, InputTypeError, TrainingError
from semsearch import loss as loss_module
from semsearch import triples as triples_module
from semsearch.loss import DIRECTIONS, depends_only_on_gap, info_nce_loss, same_image_mask, vse_loss
from semsearch.model import batch_similarity, caption_similarity, embed_images, fast_path_agrees, parameters_of
from semsearch.regularisation import SCHEDULES, add_weight_decay, decayed_parameters, scheduled_learning_rate
from semsearch.triples import NEGATIVES, Triples

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

    The defaults (SGD with momentum, lr 1.0 on a cosine schedule over 60 epochs, margin 0.25,
    batch 32, random bad images) were chosen by measurement on the real data, 5 folds x 3
    seeds, and confirmed on fresh seeds: the figures are in ``benchmarks/REPORT.md`` and
    ``benchmarks/regularisation.md``.

    >>> TrainConfig(epochs=5).replace(margin=0.1).margin
    0.1
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
                if not is_integer(value):
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


def evaluate_triples(model, triples: Triples, caption_vectors: np.ndarray, margin: float, *, loss_accuracy: Optional[Callable] = None):
    """Loss and accuracy of the model on fixed triples, without building a graph.

    ``loss_accuracy`` defaults to :func:`semsearch.loss.loss_accuracy`.
    """
    images = embed_images(model, triples.split.descriptor_vectors)
    sim_good = np.einsum("nd,nd->n", caption_vectors, images[triples.good_rows])
    sim_bad = np.einsum("nd,nd->n", caption_vectors, images[triples.bad_rows])
    loss, accuracy = (loss_accuracy or loss_module.loss_accuracy)(sim_good, sim_bad, margin)
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
    images = embed_images(model, split.descriptor_vectors)
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
    make_triples: Optional[Callable] = None,
    loss_accuracy: Optional[Callable] = None,
    **changes,
) -> History:
    """Train ``model`` in place; return the per-epoch history.

    Parameters
    ----------
    model : Autoembedder, or any MyNN-style model (``__call__``, ``parameters``)
        Maps (B, D) descriptors to (B, text_encoder.dim) unit rows. Its forward pass is what
        trains (an ``Autoembedder``'s fused fast path only where it equals it).
    data : CaptionedImages
        Captions joined with descriptors (:func:`semsearch.dataset.join`).
    text_encoder : TextEncoder
        ``se_text``, fitted on the captions.
    train_image_ids, validation_image_ids : array-like of int
        The split (by image). Validation is optional.
    config : TrainConfig, optional
        The settings (default ``TrainConfig()``); ``changes`` override single fields,
        e.g. ``train(..., epochs=5)``.
    make_triples : callable, optional
        Draws each epoch's triples, with the signature of :func:`semsearch.triples.make_triples`
        (the default: that function, looked up when training starts).
    loss_accuracy : callable, optional
        ``(sim_good (B,), sim_bad (B,), margin) -> (loss, accuracy)``, called at every step of
        the triple loss, as :func:`semsearch.loss.loss_accuracy` (the default, looked up when
        training starts).

    Raises
    ------
    TrainingError
        The loss became NaN or infinite (learning rate too high?), or a step failed; the
        model's weights are restored to what they were before ``train`` was called.
    """
    config = (config or TrainConfig()).replace(**changes)
    parameters = check_fits(model, data, text_encoder)
    team = TeamFunctions(make_triples or triples_module.make_triples, loss_accuracy or loss_module.loss_accuracy)
    train_split, train_captions = encoded_split(data, train_image_ids, text_encoder, "training")
    validation = None
    if validation_image_ids is not None:
        val_split, val_captions = encoded_split(data, validation_image_ids, text_encoder, "validation")
        warn_if_shared(val_split.image_ids, train_split.image_ids)
        validation = validation_set(val_split, val_captions, config, team)
    fast = config.loss == "triple" and choose_fast_path(model, train_split, train_captions, team, config.margin)
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
                triples = team.make_triples(
                    train_split, negatives=config.negatives, n_candidates=config.n_candidates,
                    caption_vectors=train_captions, seed=rng,
                )
                train_epoch(model, optimizer, triples, train_captions, rng, history, config, epoch,
                            loss_accuracy=team.loss_accuracy, fast=fast)
                check_sound(model, parameters, train_split.descriptor_vectors, history.train_loss[-1], epoch, config)
                if validation is not None:
                    validate(model, validation, history, config, epoch, team)
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


@dataclass(frozen=True)
class TeamFunctions:
    """The team tasks training calls: each epoch's triples, and each step's loss and accuracy."""

    make_triples: Callable
    loss_accuracy: Callable


def check_fits(model, data: CaptionedImages, text_encoder) -> tuple:
    """The model's parameters, once its sizes and backbone fit the data and the text encoder."""
    parameters = parameters_of(model)
    if getattr(model, "input_dim", data.descriptors.dim) != data.descriptors.dim:
        raise InputError(f"the model takes {model.input_dim}-d descriptors, the data has {data.descriptors.dim}-d")
    if getattr(model, "output_dim", text_encoder.dim) != text_encoder.dim:
        raise InputError(f"the model outputs {model.output_dim}-d vectors, the text encoder {text_encoder.dim}-d")
    check_same_backbone(getattr(model, "backbone_info", None), data.descriptors.backbone_info, "training")
    return parameters


def encoded_split(data: CaptionedImages, image_ids, text_encoder, what: str) -> Tuple[Split, np.ndarray]:
    """``data.split(image_ids)`` and ``se_text`` of its captions (float32), at least 2 images."""
    split = data.split(image_ids)
    if len(split.image_ids) < 2:
        raise InputError(f"{what} needs at least 2 images, got {len(split.image_ids)}")
    return split, text_encoder(split.caption_texts).astype(np.float32)


def warn_if_shared(validation_ids: np.ndarray, train_ids: np.ndarray) -> None:
    """Warn when validation images are also training images: their scores would measure memory."""
    shared = np.intersect1d(validation_ids, train_ids)
    if len(shared):
        import warnings

        warnings.warn(f"{len(shared)} of the {len(validation_ids)} validation images are also training images "
                      f"(e.g. {int(shared[0])}): the validation loss and scores will look better than they are",
                      stacklevel=3)


def validation_set(split: Split, captions: np.ndarray, config: TrainConfig, team: TeamFunctions) -> tuple:
    """What :func:`validate` scores every epoch: fixed triples, or fixed batches for an in-batch loss."""
    if config.loss == "triple":
        return team.make_triples(split, seed=config.seed + 1), captions
    return split, captions, np.random.default_rng(config.seed + 1).permutation(len(split))


def validate(model, validation: tuple, history: History, config: TrainConfig, epoch: int, team: TeamFunctions) -> None:
    """Append the validation loss and accuracy of this epoch to ``history``."""
    if config.loss == "triple":
        loss, accuracy = evaluate_triples(model, *validation, config.margin, loss_accuracy=team.loss_accuracy)
    else:
        loss, accuracy = evaluate_batches(model, *validation, config, epoch)
    history.val_loss.append(loss)
    history.val_accuracy.append(accuracy)


#: How many training pairs :func:`choose_fast_path` compares the fast path on.
PROBE_SIZE = 64


def choose_fast_path(model, split: Split, caption_vectors: np.ndarray, team: TeamFunctions, margin: float) -> bool:
    """Whether to train with the model's fused fast path: only where it equals its forward.

    The fast path hands ``loss_accuracy`` the fused gap ``sim_good - sim_bad`` (and zeros), so
    it needs both: :func:`semsearch.model.fast_path_agrees` (values and gradients of the gap,
    on the first ``PROBE_SIZE`` captions with their images and other images) and
    :func:`semsearch.loss.depends_only_on_gap`. A model with a fast path that fails either
    (a changed ``__call__``, or a loss that is not a function of the gap) trains through
    autodiff of its forward, and one line on stderr says so.
    """
    if getattr(model, "similarity_gap", None) is None:
        return False
    rows = np.arange(min(PROBE_SIZE, len(caption_vectors)))
    good = split.image_rows[rows]
    bad = (good + 1) % len(split.image_ids)
    if not fast_path_agrees(model, split.descriptor_vectors, good, bad, caption_vectors[rows]):
        why = f"{type(model).__name__}'s forward pass differs from its fused fast path (Autoembedder.similarity_gap)"
    elif not depends_only_on_gap(team.loss_accuracy, margin):
        why = "loss_accuracy is not a function of sim_good - sim_bad alone, as the fused fast path needs"
    else:
        return True
    print(f"semsearch: {why}: training runs the model's forward through MyGrad autodiff (slower)", file=sys.stderr)
    return False


def check_sound(model, parameters, descriptors: np.ndarray, loss: float, epoch: int, config: TrainConfig) -> None:
    """Raise TrainingError if training diverged: a loss or weight not finite, or zero embeddings."""
    if math.isfinite(loss) and all(np.isfinite(p.data).all() for p in parameters):
        with np.errstate(all="ignore"):
            try:
                norms = np.linalg.norm(embed_images(model, descriptors[:256]), axis=1)
            except InputError:  # NaN or inf embeddings
                norms = np.array([np.nan])
        if np.isfinite(norms).all() and (norms > 0.5).all():
            return
    raise TrainingError(
        f"training diverged in epoch {epoch + 1} (loss {loss:.4g}; the image embeddings overflowed "
        f"to zero, inf or NaN): try a smaller learning rate than {config.learning_rate}"
    )


def zeros(n: int, _cache: dict = {}) -> np.ndarray:  # noqa: B006 - a cache of read-only zeros by length
    """A read-only float64 array of ``n`` zeros, made once per length (``sim_bad`` of the fused gap)."""
    if n not in _cache:
        _cache[n] = np.zeros(n)
        _cache[n].flags.writeable = False
    return _cache[n]


def train_epoch(
    model, optimizer, triples: Triples, caption_vectors, rng, history: History, config: TrainConfig, epoch: int = 0,
    *, loss_accuracy: Optional[Callable] = None, fast: bool = False,
) -> None:
    """One pass over every training triple, in a random order, in batches; appends to ``history``.

    Triple loss: each step embeds the batch's good and bad images with ``model``'s forward,
    takes each caption's cosine with them and calls ``loss_accuracy(sim_good, sim_bad,
    margin)`` (default :func:`semsearch.loss.loss_accuracy`); with ``fast=True`` (which
    :func:`choose_fast_path` decides) the model's fused gap instead, ``loss_accuracy(gap, 0,
    margin)``. With an in-batch loss each batch uses only the
    triples' captions and good images: the bad images are the batch's other images.
    """
    loss_accuracy = loss_accuracy or loss_module.loss_accuracy
    order = rng.permutation(len(triples))
    losses, accuracies, sizes = [], [], []
    in_batch = config.loss != "triple"
    loss_of = batch_loss(config, epoch) if in_batch else None
    decayed = decayed_parameters(parameters_of(model)) if config.weight_decay else ()
    descriptors = triples.split.descriptor_vectors
    # MyGrad's memory guard (making a graph's arrays read-only until backward) costs more than a
    # batch's arithmetic; it is safe off: the optimizer writes to the weights only after backward.
    with mg.mem_guard_off:
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            captions = caption_vectors[rows]
            if in_batch:
                good = triples.good_rows[rows]
                loss, accuracy = loss_of(batch_similarity(model, descriptors[good], captions), same_image_mask(good))
            elif fast:  # the same loss of the fused gap: checked by choose_fast_path
                gap = model.similarity_gap(descriptors, triples.good_rows[rows], triples.bad_rows[rows], captions)
                loss, accuracy = loss_accuracy(gap, zeros(len(rows)), config.margin)
            else:
                sim_good = caption_similarity(model, descriptors[triples.good_rows[rows]], captions)
                sim_bad = caption_similarity(model, descriptors[triples.bad_rows[rows]], captions)
                loss, accuracy = loss_accuracy(sim_good, sim_bad, config.margin)
            loss.backward()
            add_weight_decay(decayed, config.weight_decay)
            optimizer.step()
            losses.append(loss.item())
            accuracies.append(accuracy)
            sizes.append(len(rows))
    history.train_loss.append(float(np.average(losses, weights=sizes)))
    history.train_accuracy.append(float(np.average(accuracies, weights=sizes)))
