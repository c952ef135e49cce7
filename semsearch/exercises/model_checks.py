"""Check a team's MyNN image model against :class:`semsearch.model.Autoembedder`.

The task: a class ``Model(input_dim, output_dim, seed=0)`` (the signature of the library's
``Autoembedder``) whose ``model(descriptors (B, D))`` is a MyGrad tensor ``(B, E)`` of unit
rows (each embedding over its own norm), with ``model.parameters`` its MyGrad tensors. The
course's model is one dense layer with a bias; then its output must be
``normalise(descriptors @ W + b)``. A team's own architecture (say dense -> relu -> dense) is
checked for everything but that formula.

Example
-------
>>> from semsearch.model import Autoembedder
>>> check_model(Autoembedder, verbose=False).passed
True
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from semsearch.exercises.checking import Checker, as_float_array, close, rounded, run_check
from semsearch.exercises.report import CheckReport


def dense_parts(parameters, input_dim: int, output_dim: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(W (D, E), b (E,)) if the parameters are those of one dense layer with a bias, else None."""
    arrays = [as_float_array(p) for p in parameters]
    weights = [a for a in arrays if a.shape == (input_dim, output_dim)]
    biases = [a for a in arrays if a.shape in ((output_dim,), (1, output_dim))]
    if len(arrays) == 2 and len(weights) == 1 and len(biases) == 1:
        return weights[0], biases[0].reshape(-1)
    return None


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _diagnose_norms(x, out, parts) -> str:
    if out.shape[0] > 1 and np.isclose(np.linalg.norm(out), 1, atol=1e-4):
        return ("the whole batch has norm 1, each row should: divide each row by its own norm "
                "(sum over axis=1 with keepdims=True), not by the norm of the batch")
    if parts is not None:
        w, b = parts
        if close(out, x @ w + b, atol=1e-4):
            return "normalise each embedding to unit length: a dot product is a cosine only between unit vectors"
        if close(out, _unit(x) @ w + b, atol=1e-4):
            return "normalise the embeddings (the dense layer's output), not the descriptors (its input)"
    return "each row of the output must have length 1: divide it by its own norm"


def _battery(Model: Callable, c: Checker) -> None:
    import mygrad as mg

    D, E = 6, 4
    c.case(f"Model({D}, {E}, seed=0).parameters")
    model = c.call(Model, D, E, seed=0)
    params = c.read(tuple, c.call(lambda: model.parameters), "a tuple of MyGrad tensors", "give the model a `parameters` attribute")
    c.expect(len(params) > 0 and all(isinstance(p, mg.Tensor) for p in params), "MyGrad tensors",
             [type(p).__name__ for p in params], "parameters must be the model's MyGrad tensors (e.g. dense.parameters)")
    shapes = [tuple(p.shape) for p in params]
    c.expect(shapes != [(D, E)], f"a weight {(D, E)} and a bias {(E,)} or {(1, E)}", f"shapes {shapes}",
             "the dense layer needs its bias: x @ W + b (MyNN's dense has one unless you turn it off)")
    parts = dense_parts(params, D, E)
    c.passed("its parameters are MyGrad tensors" + (", a dense layer's weight and bias" if parts else ""))

    rng = np.random.default_rng(0)
    for batch in (1, 2, 5):
        x = rounded(rng, (batch, D), -2, 2, 1).astype(np.float32)
        c.case(f"Model({D}, {E}, seed=0) on descriptors of shape {x.shape}: {np.round(x.astype(np.float64), 2).tolist()}")
        out = c.call(model, x)
        c.expect(isinstance(out, mg.Tensor), "a MyGrad tensor", type(out).__name__,
                 "return a MyGrad tensor (use MyGrad operations): training back-propagates through it")
        got = out.data.astype(np.float64)
        c.expect(got.shape == (batch, E), f"shape {(batch, E)}", f"shape {got.shape}", f"one row of E = {E} numbers per descriptor")
        c.expect(bool(np.isfinite(got).all()), "finite numbers", got, "the output holds NaN or inf")
        norms = np.linalg.norm(got, axis=1)
        c.expect(np.allclose(norms, 1, atol=1e-4), "rows of norm 1", f"row norms {np.round(norms, 4).tolist()}",
                 lambda: _diagnose_norms(x.astype(np.float64), got, parts))
        if parts is not None:
            w, b = parts
            expected = _unit(x.astype(np.float64) @ w + b)
            c.expect(close(got, expected, atol=1e-4), expected, got,
                     "a dense layer's output, normalised: normalise(x @ W + b) with the model's own W and b")
    c.passed("model(x) is a MyGrad tensor (B, E) of unit rows for B = 1, 2, 5" + (": normalise(x @ W + b)" if parts else ""))

    c.case("the gradient of sum(model(x) * captions) reaches every parameter")
    x = rounded(rng, (3, D), -2, 2, 1).astype(np.float32)
    for p in params:
        p.null_grad()
    loss = mg.sum(c.call(model, x) * _unit(rounded(rng, (3, E))))
    c.call(loss.backward)
    missing = [i for i, p in enumerate(params) if p.grad is None or not np.isfinite(p.grad).all()]
    c.expect(not missing, "a finite gradient for every parameter", f"none for parameters {missing}",
             "compute the output with MyGrad operations (mg.sqrt, mg.sum, the MyNN layer), not NumPy: "
             "NumPy cuts the graph, so training could not change those weights")
    c.passed("training can back-propagate into every parameter")

    c.case(f"Model({D}, {E}, seed=0) twice, and Model({D}, {E}, seed=1)")
    x = rounded(rng, (2, D), -2, 2, 1).astype(np.float32)
    first, again = c.call(lambda: Model(D, E, seed=0)(x)), c.call(lambda: Model(D, E, seed=0)(x))
    c.expect(close(as_float_array(first), as_float_array(again)), as_float_array(first), as_float_array(again),
             "the same seed must give the same model: seed the weight initialiser with `seed`")
    other = c.call(lambda: Model(D, E, seed=1)(x))
    c.expect(not close(as_float_array(first), as_float_array(other)), "another model for another seed",
             "the same outputs", "the seed must choose the initial weights (another seed, other weights)")
    c.case("Model(5, 3, seed=0) on float64 descriptors (another D and E)")
    out = c.call(lambda: Model(5, 3, seed=0)(rng.normal(size=(2, 5))))
    got = c.read(as_float_array, out, "shape (2, 3)", "return the embeddings")
    c.expect(got.shape == (2, 3) and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4), "2 unit rows of 3",
             got, "D and E come from the arguments (E follows the GloVe file's dimension): don't hard-code 512 or 50")
    c.passed("the seed fixes the weights; any D and E work")


def check_model(Model: Callable, *, verbose: bool = True) -> CheckReport:
    """Check a model class ``Model(input_dim, output_dim, seed=0)``; print and return the report."""
    return run_check("model", lambda c: _battery(Model, c), verbose)
