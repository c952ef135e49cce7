"""Row normalisation, the one helper for "unit rows" across the package.

Each row is divided by its *own* L2 norm (never the batch's). A row whose norm is below
``EPS`` is all zeros (a query with no known word, a zero descriptor): it stays zero instead
of becoming NaN.

>>> l2_normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
array([[0.6, 0.8],
       [0. , 0. ]])
"""
from __future__ import annotations

import sys

import numpy as np

#: Norms below this count as zero.
EPS = 1e-12


def row_norms(x: np.ndarray) -> np.ndarray:
    """L2 norm of each row, shape (N, 1)."""
    return np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


def is_tensor(x) -> bool:
    """Whether ``x`` is a MyGrad tensor, without importing MyGrad (it cannot be one if MyGrad
    was never imported: searching a saved model never needs it)."""
    mygrad = sys.modules.get("mygrad")
    return mygrad is not None and isinstance(x, mygrad.Tensor)


def l2_normalize_rows(x, eps: float = EPS):
    """Each row of ``x`` (N, M) over its own L2 norm; NumPy in -> NumPy out, MyGrad -> MyGrad.

    On MyGrad tensors it is differentiable (``x / (|x| + eps)``); on arrays a zero row stays
    zero. Shape (M,) is treated as one row and returned as (M,).
    """
    if is_tensor(x):
        import mygrad as mg

        return x / (mg.sqrt(mg.sum(x**2, axis=1, keepdims=True)) + eps)
    x = np.asarray(x)
    if x.ndim == 1:
        return l2_normalize_rows(x[None], eps)[0]
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    norms = row_norms(x)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > eps)
