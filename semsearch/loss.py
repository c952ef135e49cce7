"""Margin ranking loss and accuracy on (caption, good image, bad image) similarities.

Team task: *loss and accuracy*.

``loss = mean(max(0, margin - (sim_good - sim_bad)))``: zero once every caption is closer to
its own image than to the bad one by at least ``margin``. MyGrad's
``margin_ranking_loss(x1, x2, y, margin)`` computes ``mean(max(0, margin - y * (x1 - x2)))``,
so ``y = +1`` says "x1 should rank higher" (y is never 0).

Example
-------
>>> loss, acc = loss_accuracy(np.array([0.9, 0.2]), np.array([0.1, 0.4]), margin=0.25)
>>> round(float(loss), 4), acc
(0.225, 0.5)
"""
from __future__ import annotations

from typing import Tuple

import mygrad as mg
import numpy as np
from mygrad.nnet.losses import margin_ranking_loss
from .errors import InputError


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
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    if not (np.isfinite(mg.asarray(sim_good)).all() and np.isfinite(mg.asarray(sim_bad)).all()):
        raise InputError("similarities contain NaN or inf")
    loss = margin_ranking_loss(sim_good, sim_bad, 1, float(margin))
    accuracy = float(np.mean(mg.asarray(sim_good) > mg.asarray(sim_bad)))
    return loss, accuracy
