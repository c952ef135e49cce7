"""Regularising the training step: L2 weight decay and a learning-rate schedule.

With ~200 training images a dense layer of 1280 x 50 weights overfits quickly (R@1 falls from
30 to 60 epochs). Two standard remedies, both options of :class:`semsearch.training.TrainConfig`:

- **weight decay** (``weight_decay = lam``): the loss gains ``lam / 2 * sum(W ** 2)`` over every
  weight matrix ``W`` (not the biases), so its gradient gains ``lam * W``.
  :func:`add_weight_decay` adds that term to the gradients after ``backward`` and before the
  optimizer step; SGD, momentum and Adam then treat it like any other gradient.
- **a learning-rate schedule** (``lr_schedule``): ``"constant"`` keeps the step size;
  ``"cosine"`` lowers it from ``learning_rate`` towards 0 over the epochs along half a cosine,
  ``lr_e = lr * (1 + cos(pi * e / epochs)) / 2`` for epoch ``e = 0 .. epochs - 1``
  (:func:`scheduled_learning_rate`), so the last epochs take small steps.

Example
-------
>>> import mygrad as mg
>>> w, b = mg.tensor([[1.0, -2.0], [0.5, 0.0]]), mg.tensor([[3.0, 3.0]])
>>> mg.sum(w * 0).backward(); mg.sum(b * 0).backward()
>>> add_weight_decay((w, b), 0.1)
>>> w.grad.tolist(), b.grad.tolist()          # the bias (one row) is not decayed
([[0.1, -0.2], [0.05, 0.0]], [[0.0, 0.0]])
>>> [round(scheduled_learning_rate(0.5, e, 4, "cosine"), 4) for e in range(4)]
[0.5, 0.4268, 0.25, 0.0732]
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import mygrad as mg

from semsearch.errors import InputError

#: "constant": every epoch steps with ``learning_rate``; "cosine": half a cosine down towards 0.
SCHEDULES = ("constant", "cosine")


def decayed_parameters(parameters: Sequence[mg.Tensor]) -> Tuple[mg.Tensor, ...]:
    """The parameters weight decay applies to: the weight matrices, not the biases.

    A bias is a parameter with fewer than two dimensions or a single row (MyNN's ``dense``
    keeps its bias as a (1, n) row); every other parameter is a weight.
    """
    return tuple(p for p in parameters if p.ndim >= 2 and p.shape[0] > 1)


def add_weight_decay(parameters: Sequence[mg.Tensor], weight_decay: float) -> None:
    """Add ``weight_decay * W`` to the gradient of every weight ``W`` (in place), after ``backward``.

    That is the gradient of ``weight_decay / 2 * sum(W ** 2)``, the L2 penalty. Parameters
    without a gradient (not used by the loss) and biases (:func:`decayed_parameters`) are left
    alone; ``weight_decay = 0`` changes nothing.

    Parameters
    ----------
    parameters : sequence of mygrad.Tensor
        The model's parameters, gradients already computed by ``loss.backward()``.
    weight_decay : float
        ``lam >= 0``, the strength of the penalty.
    """
    if not weight_decay:
        return
    for parameter in decayed_parameters(parameters):
        if parameter.grad is not None:
            parameter.grad[...] += weight_decay * parameter.data


def scheduled_learning_rate(learning_rate: float, epoch: int, epochs: int, schedule: str = "constant") -> float:
    """The step size of epoch ``epoch`` (0-based) of ``epochs`` under ``schedule`` (:data:`SCHEDULES`).

    ``"cosine"``: ``learning_rate * (1 + cos(pi * epoch / epochs)) / 2``, from ``learning_rate``
    in the first epoch down to nearly 0 in the last.
    """
    if schedule == "constant":
        return float(learning_rate)
    if schedule == "cosine":
        return float(learning_rate) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    raise InputError(f"lr_schedule must be one of {SCHEDULES}, got {schedule!r}")
