"""Check a team's margin ranking loss and accuracy against :func:`semsearch.loss.loss_accuracy`.

The task: ``loss_accuracy(sim_good, sim_bad, margin) -> (loss, accuracy)`` with
``loss = mean(max(0, margin - (sim_good - sim_bad)))`` (MyGrad's ``margin_ranking_loss`` with
``y = +1``), a MyGrad scalar that back-propagates into the similarities, and ``accuracy`` the
fraction of triples with ``sim_good > sim_bad`` (a tie is not a win). The gradient is checked
against finite differences of the definition.

Example
-------
>>> from semsearch.loss import loss_accuracy
>>> check_loss_accuracy(loss_accuracy, verbose=False).passed
True
"""
from __future__ import annotations

from typing import Callable, Iterator, Tuple

import numpy as np

from semsearch.exercises.checking import Checker, as_scalar, close, rounded, run_check
from semsearch.exercises.report import CheckReport


def reference_loss(sim_good: np.ndarray, sim_bad: np.ndarray, margin: float) -> float:
    """The definition in NumPy, independent of MyGrad: ``mean(max(0, margin - (good - bad)))``."""
    return float(np.mean(np.maximum(0.0, margin - (sim_good - sim_bad))))


def finite_difference_gradients(sim_good, sim_bad, margin, h: float = 1e-6) -> Tuple[np.ndarray, np.ndarray]:
    """Central differences of :func:`reference_loss` with respect to each similarity."""
    grads = []
    for which in (0, 1):
        grad = np.empty(len(sim_good))
        for i in range(len(sim_good)):
            up = [np.array(sim_good, dtype=np.float64), np.array(sim_bad, dtype=np.float64)]
            down = [up[0].copy(), up[1].copy()]
            up[which][i] += h
            down[which][i] -= h
            grad[i] = (reference_loss(*up, margin) - reference_loss(*down, margin)) / (2 * h)
        grads.append(grad)
    return grads[0], grads[1]


def loss_cases() -> Iterator[Tuple[str, np.ndarray, np.ndarray, float]]:
    """(name, sim_good, sim_bad, margin): fixed cases, then generated ones of growing size."""
    yield "the notebook's example", np.array([0.9, 0.2, 0.5]), np.array([0.1, 0.4, 0.4]), 0.25
    yield "one triple inside the margin", np.array([0.3]), np.array([0.2]), 0.25
    yield "a tie", np.array([0.5, 0.7]), np.array([0.5, 0.1]), 0.1
    yield "margin 0", np.array([0.2, -0.3]), np.array([0.1, 0.4]), 0.0
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 6, 8, 12, 16, 32):
        for margin in (0.1, 0.5):
            good, bad = rounded(rng, n), rounded(rng, n)
            bad[: n // 4] = good[: n // 4]  # some ties
            yield f"generated, {n} triples", good, bad, margin


def _diagnose_loss(good, bad, margin, obtained: float, expected: float) -> str:
    n = len(good)
    if np.isclose(obtained, margin) and not np.isclose(expected, margin):
        return ("the loss is the constant margin: y must be +1 (sim_good should rank higher), "
                "y = 0 makes margin_ranking_loss ignore the similarities")
    if n > 1 and np.isclose(obtained, expected * n):
        return f"the loss is {n} times too big: take the mean over the batch, not the sum (as MyGrad's margin_ranking_loss does)"
    if np.isclose(obtained, float(np.mean(np.maximum(0.0, margin + (good - bad))))):
        return "the sign is reversed: use y = +1 (sim_good first), so that a good image closer than the bad one costs less"
    if np.isclose(obtained, float(np.mean(margin - (good - bad)))):
        return "a triple that already wins by the margin must cost 0: clip at 0 with max(0, ...)"
    return "loss = mean(max(0, margin - (sim_good - sim_bad))) over the triples"


def _diagnose_accuracy(good, bad, obtained: float, expected: float) -> str:
    if np.isclose(obtained, np.mean(good >= bad)):
        return "a tie (sim_good == sim_bad) is not a win: count sim_good > sim_bad, not >="
    if np.isclose(obtained, np.sum(good > bad)):
        return "accuracy is a fraction of the triples (between 0 and 1), not a count"
    if np.isclose(obtained, np.mean(good < bad)):
        return "accuracy counts the triples where the good image wins: sim_good > sim_bad"
    return "accuracy = the fraction of triples with sim_good > sim_bad"


def _battery(loss_accuracy: Callable, c: Checker) -> None:
    import mygrad as mg

    for name, good, bad, margin in loss_cases():
        shown = f"{name}: sim_good={good.tolist()}, sim_bad={bad.tolist()}, margin={margin}"
        c.case(shown)
        out = c.call(loss_accuracy, good.copy(), bad.copy(), margin)
        loss, accuracy = c.read(lambda o: (o[0], o[1]), out, "a pair (loss, accuracy)",
                                "return two things: the loss and the accuracy")
        expected = reference_loss(good, bad, margin)
        got = c.read(as_scalar, loss, f"a single number {expected:.6g}", "the loss must be one number (a 0-d tensor)")
        c.expect(np.isclose(got, expected, rtol=1e-5, atol=1e-7), expected, got, lambda: _diagnose_loss(good, bad, margin, got, expected))
        expected_acc = float(np.mean(good > bad))
        got_acc = c.read(as_scalar, accuracy, f"a single number {expected_acc:.6g}", "the accuracy must be one number")
        c.expect(np.isclose(got_acc, expected_acc), expected_acc, got_acc, lambda: _diagnose_accuracy(good, bad, got_acc, expected_acc))

        # the gradient, given tensors: against finite differences of the definition
        c.case(shown + " (as MyGrad tensors: the gradient)")
        tg, tb = mg.tensor(good), mg.tensor(bad)
        out = c.call(loss_accuracy, tg, tb, margin)
        loss = out[0] if isinstance(out, (tuple, list)) else out
        c.expect(isinstance(loss, mg.Tensor), "a MyGrad tensor (it must back-propagate)", type(loss).__name__,
                 "build the loss from MyGrad operations on the tensors you were given (mg.maximum, mg.mean, "
                 "or margin_ranking_loss), not NumPy or float(): training needs its gradient")
        c.call(loss.backward)
        fd_good, fd_bad = finite_difference_gradients(good, bad, margin)
        smooth = np.abs(margin - (good - bad)) > 1e-4  # away from the hinge's kink
        for tensor, fd, which in ((tg, fd_good, "sim_good"), (tb, fd_bad, "sim_bad")):
            grad = tensor.grad
            c.expect(grad is not None, f"d loss / d {which} = {np.round(fd, 4).tolist()}", None,
                     f"no gradient reached {which}: compute the loss from the tensors with MyGrad operations")
            c.expect(close(np.asarray(grad)[smooth], fd[smooth], rtol=1e-4, atol=1e-6),
                     fd, np.asarray(grad), f"d loss / d {which} differs from finite differences of mean(max(0, margin - (sim_good - sim_bad)))")
    c.passed("loss and accuracy on 4 fixed and 18 generated cases (1 to 32 triples, ties, margin 0)")
    c.passed("the gradient with respect to sim_good and sim_bad against finite differences")


def check_loss_accuracy(loss_accuracy: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``loss_accuracy(sim_good, sim_bad, margin) -> (loss, accuracy)``; print and return the report."""
    return run_check("loss_accuracy", lambda c: _battery(loss_accuracy, c), verbose)
