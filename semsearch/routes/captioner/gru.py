"""MyGrad's GRU with a differentiable initial state: :func:`state_gru`.

MyGrad's ``mygrad.nnet.layers.gru`` treats its initial state as a constant; :func:`state_gru`
is the same operation with ``s_0`` as an input that receives its gradient (one more step of the
GRU's own backward formula), so whatever computed ``s_0`` (the captioner's image map
``W_img``) learns. MyGrad's GRU is compiled with numba (``pip install 'semsearch[captioner]'``),
built lazily on first use.

Example
-------
>>> S = state_gru(X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0)   # doctest: +SKIP
>>> S.shape                                                      # doctest: +SKIP
(T + 1, N, H)
"""
from __future__ import annotations

import weakref
from functools import lru_cache

import mygrad as mg
import numpy as np

from semsearch.errors import MissingExtraError


def _gru_module():
    import importlib

    try:
        module = importlib.import_module("mygrad.nnet.layers.gru")  # the module, not the function
    except ImportError:
        raise MissingExtraError("MyGrad's GRU needs numba: pip install 'semsearch[captioner]'") from None
    return module


@lru_cache(maxsize=None)
def _state_gru_operation():
    """MyGrad's ``GRUnit`` with the initial state as a differentiable input (built lazily: numba)."""
    module = _gru_module()

    class StateGRU(module.GRUnit):
        def __call__(self, X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0):
            out = super().__call__(X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0=s0.data)
            self.s0 = s0
            self.variables = self.variables + (s0,)  # so the graph reaches s0's own creator
            return out

        def backward(self, grad, **kwargs):
            z, r, h = self._z[0], self._r[0], self._h[0]  # the gates of step 1, (N, H)
            direct = np.array(grad[0], dtype=self.type)  # out[0] is s0 itself
            super().backward(grad, **kwargs)  # every other gradient; dL/ds_t (t >= 1) kept
            if self.s0.constant:
                return
            g = self._hidden_seq()._grad[0]  # total dL/ds_1
            s0, Wz, Wr, Wh = self.s0.data, self.Wz.data, self.Wr.data, self.Wh.data
            # s1 = (1 - z) h + z s0, z = sig(. + s0 Wz), r = sig(. + s0 Wr), h = tanh(. + (r s0) Wh)
            dh = g * (1 - z) * (1 - h**2)
            q = dh @ Wh.T  # dL / d(r * s0)
            ds0 = direct + g * z + (g * (s0 - h) * z * (1 - z)) @ Wz.T + q * r + (q * s0 * r * (1 - r)) @ Wr.T
            module._backprop(self.s0, ds0.astype(self.s0.dtype, copy=False))

    return StateGRU


def state_gru(X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0) -> mg.Tensor:
    """``mygrad.nnet.layers.gru`` whose initial state ``s0`` (N, H) may be a non-constant tensor.

    Returns the hidden states, shape (T + 1, N, H); ``[0]`` is ``s0``. Gradients reach
    ``s0`` (and whatever computed it) as well as the inputs and weights.
    """
    s = mg.Tensor._op(_state_gru_operation(), X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0)
    try:
        s.creator._hidden_seq = weakref.ref(s)
    except AttributeError:  # no-autodiff mode records no creator
        pass
    return s
