"""Check a team's training step against :func:`semsearch.exercises.reference.train_step`.

The task: ``train_step(model, optimizer, descriptors_good, descriptors_bad, captions, margin)
-> (loss, accuracy)``: the cosine of each caption with its good and its bad image (the model's
unit rows dotted with the caption vectors), the margin ranking loss, ``loss.backward()``, one
``optimizer.step()``. The check runs it and the reference on two identical models with the same
plain SGD optimizer, step after step, and compares the loss, the accuracy and the weights.

Example
-------
>>> from semsearch.exercises.reference import train_step
>>> check_train_step(train_step, verbose=False).passed
True
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from semsearch.exercises.checking import Checker, as_scalar, close, rounded, run_check
from semsearch.exercises.reference import train_step as reference_step
from semsearch.exercises.report import CheckReport


def _battery(train_step: Callable, c: Checker) -> None:
    from mynn.optimizers.sgd import SGD

    from semsearch.model import Autoembedder

    rng = np.random.default_rng(0)
    for batch, dim, out_dim, steps in ((1, 4, 3, 1), (2, 5, 3, 2), (8, 12, 6, 3)):
        theirs, ours = Autoembedder(dim, out_dim, seed=batch), Autoembedder(dim, out_dim, seed=batch)
        theirs_opt = SGD(theirs.parameters, learning_rate=0.5)
        ours_opt = SGD(ours.parameters, learning_rate=0.5)
        good, bad = rounded(rng, (batch, dim), -2, 2, 1).astype(np.float32), rounded(rng, (batch, dim), -2, 2, 1).astype(np.float32)
        captions = rng.normal(size=(batch, out_dim))
        captions = np.round(captions / np.linalg.norm(captions, axis=1, keepdims=True), 3).astype(np.float32)
        for step in range(1, steps + 1):
            c.case(f"step {step} on a batch of {batch} triples (D = {dim}, E = {out_dim}, SGD learning rate 0.5, margin 0.5)")
            before = [p.data.copy() for p in theirs.parameters]
            out = c.call(train_step, theirs, theirs_opt, good.copy(), bad.copy(), captions.copy(), 0.5)
            loss, accuracy = reference_step(ours, ours_opt, good, bad, captions, 0.5)
            got = c.read(lambda o: (as_scalar(o[0]), as_scalar(o[1])), out, "(loss, accuracy)",
                         "return the batch's loss and accuracy, as two numbers")
            c.expect(np.isclose(got[0], loss, rtol=1e-4, atol=1e-6), f"loss {loss:.6g}", f"loss {got[0]:.6g}",
                     "the loss of the batch before the step: loss_accuracy(sim_good, sim_bad, margin), with "
                     "sim = sum(model(descriptors) * captions, axis=1)")
            c.expect(np.isclose(got[1], accuracy), f"accuracy {accuracy:.6g}", f"accuracy {got[1]:.6g}",
                     "the accuracy of the batch before the step")
            after = [p.data for p in theirs.parameters]
            if loss > 0 and all(np.array_equal(a, b) for a, b in zip(before, after)):
                c.fail("weights changed by the step", "the same weights",
                       "call loss.backward() and then optimizer.step(): the step must change the weights")
            for name, mine, want in zip(("weight", "bias"), after, (p.data for p in ours.parameters)):
                c.expect(close(mine, want, rtol=1e-4, atol=1e-6), want, mine,
                         f"after the step the {name} differs from one SGD step on this loss: one backward(), one "
                         "optimizer.step(), with the good image's similarity first (sim_good, sim_bad)")
    c.passed("3 batches (1 to 8 triples), 1 to 3 steps each: the loss, the accuracy and the weights after every step")


def check_train_step(train_step: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``train_step(model, optimizer, descriptors_good, descriptors_bad, captions, margin) -> (loss, accuracy)``."""
    return run_check("train_step", lambda c: _battery(train_step, c), verbose)
