"""The :class:`~semsearch.model.Autoembedder`'s fast path: the cosine of an embedded
descriptor with its caption, as one MyGrad graph node with a hand-derived gradient.

It computes the *default* forward pass (:meth:`Autoembedder.__call__`) by hand, so training
uses it only after :func:`semsearch.model.fast_path_agrees` has found it equal to autodiff
through the model's actual forward. Kept apart from :mod:`semsearch.model` so that a model
can be loaded, and a database searched, without importing MyGrad.

Example
-------
>>> import mygrad as mg
>>> weight, bias = mg.tensor(np.eye(3, 2)), mg.tensor(np.zeros((1, 2)))
>>> s = mg.execute_op(Cosine, weight, bias, op_args=(np.eye(3)[:2], np.eye(2)))
>>> s.data
array([1., 1.])
"""
from __future__ import annotations

import numpy as np
from mygrad.operation_base import Operation

from semsearch.common.vectors import EPS


class Cosine(Operation):
    """``sum(l2_normalize_rows(x @ weight + bias) * captions, axis=1)`` as one MyGrad operation.

    Written with MyGrad functions (dense layer, row normalisation, dot product) this is about ten
    graph nodes, and at batch 32 MyGrad's bookkeeping for them costs more than the arithmetic.
    Here it is one node with its gradient derived by hand; MyGrad still chains it into the loss
    and delivers ``weight.grad`` and ``bias.grad`` to the optimizer. It must equal
    :meth:`Autoembedder.__call__` followed by the dot product (tested to 1e-6, with gradients).

    Inputs: ``weight`` (D, E) and ``bias`` (1, E) tensors; ``descriptors`` (M, D) and
    ``captions`` (M, E) arrays. Output: (M,).
    """

    def __call__(self, weight, bias, descriptors, captions, eps=EPS):
        self.variables = (weight, bias)  # the tensors that receive a gradient
        self.x, self.c, self.eps, self.dh = descriptors, captions, eps, None
        self.h = self.dense(descriptors, weight.data, bias.data)  # (M, E)
        self.norms = np.sqrt(np.einsum("ij,ij->i", self.h, self.h))  # |h|
        # s = (h / (|h| + eps)) . c, the cosine similarity (as l2_normalize_rows normalises)
        self.s = np.einsum("ij,ij->i", self.h, captions) / (self.norms + eps)
        return self.s

    def dense(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The dense layer, ``x @ weight + bias``."""
        return x @ weight + bias

    def grad_h(self, grad: np.ndarray) -> np.ndarray:
        """dL/dh (M, E) from dL/ds (M,), shared by the weight and the bias."""
        # ds/dh = (c - h s / |h|) / (|h| + eps), one row per caption
        n = self.norms
        return (grad / (n + self.eps))[:, None] * (self.c - self.h * (self.s / n)[:, None])

    def backward_var(self, grad, index, **kwargs):
        if self.dh is None:
            self.dh = self.grad_h(grad)
        return self.x.T @ self.dh if index == 0 else self.dh.sum(axis=0, keepdims=True)


class CosineGap(Cosine):
    """``cos(good image, caption) - cos(bad image, caption)`` for a batch of B triples, (B,).

    The descriptors are the B good images then the B bad ones (2B rows), the captions the B
    captions twice. The margin ranking loss depends on the two similarities only through this
    gap, so training needs one graph node per batch instead of two (MyGrad's bookkeeping is
    paid once) and one matrix product for the 2B rows each way, as the hand-derived NumPy loop
    of ``benchmarks/speed.py`` does. The gap's gradient ``g`` is ``+g`` for the good images and
    ``-g`` for the bad ones, as the loss gives them to two nodes.

    A product of 2B rows rounds a few rows differently, in the last bit, from two products of
    B rows: trained weights agree with two separate nodes' to ~3e-7 after 30 epochs, as two
    runs of the same code do (tested per step to 1e-6).
    """

    def __call__(self, weight, bias, descriptors, captions, eps=EPS):
        both = super().__call__(weight, bias, descriptors, captions, eps)
        n = len(both) // 2
        return both[:n] - both[n:]

    def backward_var(self, grad, index, **kwargs):
        if self.dh is None:
            self.dh = self.grad_h(np.concatenate([grad, -grad]))  # d gap / d s: +1 good, -1 bad
        return self.x.T @ self.dh if index == 0 else self.dh.sum(axis=0, keepdims=True)
