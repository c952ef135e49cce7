"""Ranking losses: the course's triple loss, and in-batch losses over a batch's similarity matrix.

Team task: *loss and accuracy*. :func:`loss_accuracy` is the course's margin ranking loss on
(caption, good image, bad image) triples, what the notebook teaches first, and what
:func:`semsearch.training.train` calls at every step (looked up here when training starts, so
an edited or patched ``semsearch.loss.loss_accuracy`` is what trains). The in-batch losses
(:func:`vse_loss`, :func:`info_nce_loss`) take the (B, B) similarity matrix of a batch's B
captions with the B captions' own images, ``sims[i, j] = cos(caption i, image of caption j)``,
so every other image of the batch is a bad image. Captions of the same image in a batch are not
bad images for each other: ``same_image`` (from :func:`same_image_mask`) masks them.

``loss = mean(max(0, margin - (sim_good - sim_bad)))``: zero once every caption is closer to
its own image than to the bad one by at least ``margin``. MyGrad's
``margin_ranking_loss(x1, x2, y, margin)`` computes ``mean(max(0, margin - y * (x1 - x2)))``,
so ``y = +1`` says "x1 should rank higher" (y is never 0).

Example
-------
>>> loss, acc = loss_accuracy(np.array([0.9, 0.2]), np.array([0.1, 0.4]), margin=0.25)
>>> round(float(loss), 4), acc
(0.225, 0.5)
>>> sims = np.array([[0.9, 0.1], [0.5, 0.3]])   # caption 1 prefers caption 0's image
>>> loss, acc = vse_loss(sims, same_image_mask([0, 1]), margin=0.25, directions="caption")
>>> round(float(loss), 4), acc                     # (0 + (0.25 - 0.3 + 0.5)) / 2
(0.225, 0.5)
"""
from __future__ import annotations

import math
from typing import Tuple

import mygrad as mg
import numpy as np
from mygrad.nnet.losses import margin_ranking_loss

from semsearch.errors import InputError

DIRECTIONS = ("caption", "both")


def loss_accuracy(sim_good, sim_bad, margin: float) -> Tuple[mg.Tensor, float]:
    """Margin ranking loss and the fraction of triples with ``sim_good > sim_bad``.

    Parameters
    ----------
    sim_good, sim_bad : array-like or mygrad.Tensor, shape (N,)
        Similarity of each caption to its own image, and to its bad image.
    margin : float
        How much closer the good image must be, >= 0.

    Returns
    -------
    loss : mygrad.Tensor, shape ()
        Back-propagates into whichever inputs are tensors.
    accuracy : float
        Ties (``sim_good == sim_bad``) count as wrong.
    """
    sim_good = sim_good if isinstance(sim_good, mg.Tensor) else np.asarray(sim_good, dtype=np.float64)
    sim_bad = sim_bad if isinstance(sim_bad, mg.Tensor) else np.asarray(sim_bad, dtype=np.float64)
    if sim_good.shape != sim_bad.shape or sim_good.ndim != 1:
        raise InputError(f"sim_good and sim_bad must have the same shape (N,), got {sim_good.shape} and {sim_bad.shape}")
    if len(sim_good) == 0:
        raise InputError("no similarities given")
    if not (math.isfinite(margin) and margin >= 0):
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    good, bad = mg.asarray(sim_good), mg.asarray(sim_bad)
    if not (np.isfinite(good).all() and np.isfinite(bad).all()):
        raise InputError("similarities contain NaN or inf")
    loss = margin_ranking_loss(sim_good, sim_bad, 1, float(margin))  # y = +1: sim_good should be the larger
    accuracy = float(np.count_nonzero(good > bad)) / len(good)  # ties count as wrong
    return loss, accuracy


def depends_only_on_gap(loss_accuracy, margin: float, n: int = 16) -> bool:
    """Whether ``loss_accuracy(sim_good, sim_bad, margin)`` is a function of ``sim_good - sim_bad``.

    Training's fast path hands the loss the fused gap and zeros, ``loss_accuracy(gap, 0,
    margin)``; that is the same training only where the loss, the accuracy and the gradients
    (``+g`` for ``sim_good``, ``-g`` for ``sim_bad``) depend on the gap alone, as the margin
    ranking loss does. Checked here on ``n`` random similarities; a loss that raises on either
    form, or returns no MyGrad loss, gets ``False``.

    >>> depends_only_on_gap(loss_accuracy, 0.25)
    True
    >>> depends_only_on_gap(lambda good, bad, margin: loss_accuracy(good, bad * 2, margin), 0.25)
    False
    """
    rng = np.random.default_rng(0)
    good, bad = (mg.tensor(rng.uniform(-1, 1, n)) for _ in range(2))
    gap = mg.tensor(good.data - bad.data)
    try:
        loss, accuracy = loss_accuracy(good, bad, margin)
        gap_loss, gap_accuracy = loss_accuracy(gap, np.zeros(n), margin)
        loss.backward()
        gap_loss.backward()
    except Exception:
        return False
    if good.grad is None or bad.grad is None or gap.grad is None:
        return False
    return bool(
        np.isclose(float(loss.item()), float(gap_loss.item()), rtol=1e-6, atol=1e-9) and accuracy == gap_accuracy
        and np.allclose(good.grad, gap.grad, rtol=1e-6, atol=1e-9) and np.allclose(bad.grad, -gap.grad, rtol=1e-6, atol=1e-9)
    )


def same_image_mask(image_rows) -> np.ndarray:
    """``mask[i, j]``: captions i and j of a batch belong to the same image, shape (B, B) bool.

    ``image_rows`` (B,) gives each caption's image (``triples.good_rows`` of the batch). The
    diagonal is True: a caption's own image is never one of its bad images.

    >>> same_image_mask([7, 3, 7]).astype(int)
    array([[1, 0, 1],
           [0, 1, 0],
           [1, 0, 1]])
    """
    rows = np.asarray(image_rows)
    if rows.ndim != 1 or len(rows) == 0:
        raise InputError(f"image_rows must be a non-empty (B,) array, got shape {rows.shape}")
    return rows[:, None] == rows[None, :]


def _check_batch(sims, same_image):
    """``sims`` as a tensor or float64 array and ``same_image`` as a bool array, both (B, B)."""
    sims = sims if isinstance(sims, mg.Tensor) else np.asarray(sims, dtype=np.float64)
    same_image = np.asarray(same_image)
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1] or sims.shape[0] == 0:
        raise InputError(f"sims must be a square (B, B) matrix with B >= 1, got shape {sims.shape}")
    if same_image.shape != sims.shape or same_image.dtype != bool:
        raise InputError(f"same_image must be a bool matrix of the shape of sims {sims.shape}, got {same_image.dtype} {same_image.shape}")
    if not np.all(np.diagonal(same_image)) or not np.array_equal(same_image, same_image.T):
        raise InputError("same_image must be symmetric with a True diagonal (a caption always shares its own image)")
    if not np.isfinite(mg.asarray(sims)).all():
        raise InputError("similarities contain NaN or inf")
    return sims, same_image


def _check_directions(directions: str) -> None:
    if directions not in DIRECTIONS:
        raise InputError(f"directions must be one of {DIRECTIONS}, got {directions!r}")


def in_batch_accuracy(sims, same_image) -> float:
    """Fraction of captions whose own image scores above every other image of the batch.

    Columns of the caption's own image (``same_image``) do not count; ties count as wrong; a
    caption with no other image in its batch counts as right.
    """
    values = np.asarray(mg.asarray(sims))
    positive = np.diagonal(values)[:, None]
    beaten = (values >= positive) & ~same_image
    return float(np.mean(~beaten.any(axis=1)))


def vse_loss(sims, same_image, margin: float, *, hardest: bool = False, directions: str = "both") -> Tuple[mg.Tensor, float]:
    """The VSE hinge loss over a batch: VSE0 (sum over bad images) or VSE++ (hardest only).

    For caption i (its own image is column i) and each bad image j of the batch
    (``not same_image[i, j]``) the hinge is ``max(0, margin - sims[i, i] + sims[i, j])``;
    VSE0 (Kiros et al. 2014) sums them, VSE++ (Faghri et al. 2018, ``hardest=True``) keeps the
    largest. ``directions="both"`` adds the image -> caption direction: for the image of column
    i, its caption i against every caption j of another image, ``sims[j, i]``. The loss is the
    mean over the B captions of the (summed) hinges, the two directions added, as in VSE++.

    Parameters
    ----------
    sims : (B, B) array-like or mygrad.Tensor
        ``sims[i, j]``: caption i with the image of caption j; the diagonal holds the pairs.
    same_image : (B, B) bool
        :func:`same_image_mask` of the batch's image rows; True pairs are never bad images.
    margin : float >= 0
    hardest : bool
        VSE++ (the hardest bad image only) instead of VSE0 (all of them).
    directions : "caption" or "both"

    Returns
    -------
    loss : mygrad.Tensor, shape ()
        0 when no caption has a bad image (all captions of one image), never NaN.
    accuracy : float
        :func:`in_batch_accuracy`, caption -> image.

    Example
    -------
    >>> sims = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6], [0.8, 0.0, 0.9]])
    >>> same = same_image_mask([0, 1, 0])            # captions 0 and 2 share an image
    >>> loss, _ = vse_loss(sims, same, margin=0.2, directions="caption")
    >>> round(float(loss), 4)                        # (0.0 + 0.1 + 0.0) / 3
    0.0333
    """
    sims, same_image = _check_batch(sims, same_image)
    _check_directions(directions)
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    n = sims.shape[0]
    negative = (~same_image).astype(mg.asarray(sims).dtype)
    positive = sims[np.arange(n), np.arange(n)]
    # hinge[i, j] = max(0, margin - positive + bad), zeroed where j is not a bad image
    per_direction = [mg.maximum(0.0, margin - positive[:, None] + sims) * negative]  # caption i, row i
    if directions == "both":
        per_direction.append(mg.maximum(0.0, margin - positive[None, :] + sims) * negative)  # image i, column i
    total = 0.0
    for axis, hinges in enumerate(per_direction):
        # the hinges are >= 0 and 0 where masked, so the max is the hardest bad image's (0 if none)
        total = total + (mg.max(hinges, axis=1 - axis) if hardest else mg.sum(hinges, axis=1 - axis))
    return mg.mean(total), in_batch_accuracy(sims, same_image)


def info_nce_loss(sims, same_image, temperature: float, *, directions: str = "both") -> Tuple[mg.Tensor, float]:
    """InfoNCE: cross-entropy of each caption's own image among the batch's images (as CLIP).

    For caption i, ``-log softmax_j(sims[i, j] / temperature)`` at ``j = i``, the softmax over
    its own image and the bad images of the batch (other captions of the same image are left
    out of it, not counted as wrong). ``directions="both"`` averages it with the image ->
    caption cross-entropy over the columns, as CLIP's symmetric loss does.

    Parameters
    ----------
    sims : (B, B) array-like or mygrad.Tensor
        ``sims[i, j]``: caption i with the image of caption j.
    same_image : (B, B) bool
        :func:`same_image_mask` of the batch's image rows.
    temperature : float > 0
        Divides the cosines; CLIP learns it, starting from 0.07.
    directions : "caption" or "both"

    Returns
    -------
    loss : mygrad.Tensor, shape ()
        Mean over captions; 0 when no caption has a bad image.
    accuracy : float
        :func:`in_batch_accuracy`, caption -> image.

    Example
    -------
    >>> loss, _ = info_nce_loss(np.array([[1.0, 0.0], [0.0, 1.0]]), same_image_mask([0, 1]), 1.0)
    >>> round(float(loss), 4)                         # log(1 + e^-1)
    0.3133
    """
    sims, same_image = _check_batch(sims, same_image)
    _check_directions(directions)
    if not (np.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be a finite number > 0, got {temperature}")
    n = sims.shape[0]
    logits = sims / float(temperature)
    # the softmax runs over the pair itself and the bad images: 1 where j takes part
    keep = (~same_image | np.eye(n, dtype=bool)).astype(mg.asarray(sims).dtype)
    positive = logits[np.arange(n), np.arange(n)]
    losses = []
    for axis in (1, 0) if directions == "both" else (1,):
        shift = np.max(mg.asarray(logits), axis=axis, keepdims=True)  # a constant: only for stability
        log_sum = mg.log(mg.sum(mg.exp(logits - shift) * keep, axis=axis)) + np.squeeze(shift, axis)
        losses.append(mg.mean(log_sum - positive))
    return sum(losses[1:], losses[0]) / len(losses), in_batch_accuracy(sims, same_image)
