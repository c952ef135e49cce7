"""The machinery every ``check_<task>`` runs on: call the student's function, compare, stop at the first failure.

A check is a function ``battery(checker)`` that runs cases smallest first. For each case it
calls the student's function through :meth:`Checker.call` (which turns an exception into a
report showing the student's traceback, and ``NotImplementedError`` into "not written yet")
and compares with :meth:`Checker.expect`, which stops at the first failure with the case, the
expected and obtained values and a hint. :func:`run_check` runs a battery and makes the
:class:`~semsearch.exercises.report.CheckReport`.

Example
-------
>>> def battery(c):
...     c.case("f(2)")
...     c.expect(c.call(lambda x: x + 1, 2) == 4, 4, 3, "double it, don't add one")
>>> print(run_check("double", battery, verbose=False))
double: FAILED on case 1: f(2)
  expected: 4
  obtained: 3
  hint: double it, don't add one
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from semsearch.exercises.report import CheckReport, show, student_traceback


class _Stop(Exception):
    """Ends a battery early with a finished report."""

    def __init__(self, status: str, **fields):
        super().__init__(status)
        self.status, self.fields = status, fields


class Checker:
    """Runs one battery: counts the cases, records what passed, stops at the first failure."""

    def __init__(self, task: str):
        self.task = task
        self.checked: List[str] = []
        self.n_cases = 0
        self.current = ""
        self.hint_on_error: Optional[str] = None

    def case(self, description: str, hint_on_error: Optional[str] = None) -> None:
        """Start a case: ``description`` is what the report shows as its input."""
        self.n_cases += 1
        self.current = description
        self.hint_on_error = hint_on_error

    def call(self, function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)``; an exception from it ends the check with the student's traceback."""
        try:
            return function(*args, **kwargs)
        except NotImplementedError:
            raise _Stop("not written") from None
        except Exception as error:  # the student's own error, shown as their traceback
            raise _Stop("error", traceback=student_traceback(error), hint=self.hint_on_error) from None

    def fail(self, expected, obtained, hint) -> None:
        """End the check: the current case failed. ``hint``: a str, or a function making it."""
        hint = hint() if callable(hint) else hint
        raise _Stop("failed", expected=_text(expected), obtained=_text(obtained), hint=hint)

    def expect(self, ok: bool, expected, obtained, hint) -> None:
        """Fail the current case unless ``ok`` (``hint`` is made only then, if it is a function)."""
        if not ok:
            self.fail(expected, obtained, hint)

    def read(self, convert: Callable, obtained, expected, hint: str):
        """``convert(obtained)``, or a failure (with ``hint``) if the output cannot be read that way."""
        try:
            return convert(obtained)
        except Exception:  # the student's output has the wrong type or shape: say so, no traceback
            self.fail(expected, obtained, hint)

    def passed(self, what: str) -> None:
        """Record one thing the function got right (shown when the check passes)."""
        self.checked.append(what)


def _text(value) -> str:
    return value if isinstance(value, str) else show(value)


def run_check(task: str, battery: Callable[[Checker], None], verbose: bool = True) -> CheckReport:
    """Run ``battery`` and return (and, if ``verbose``, print) its report."""
    checker = Checker(task)
    try:
        battery(checker)
        report = CheckReport(task, "passed", checked=checker.checked, n_cases=checker.n_cases)
    except _Stop as stop:
        report = CheckReport(task, stop.status, checked=checker.checked, n_cases=checker.n_cases,
                             case=checker.current or None, **stop.fields)
    except Exception as error:  # an output the battery did not foresee: a failure in one line, not the checker's traceback
        report = CheckReport(task, "failed", checked=checker.checked, n_cases=checker.n_cases, case=checker.current or None,
                             expected="an output of the type and shape the task describes",
                             obtained=f"something the check could not read ({type(error).__name__}: {error})",
                             hint="compare what your function returns with the task's description (type, shape)")
    if verbose:
        print(report)
    return report


# ----------------------------------------------------------------------------- helpers


def as_float_array(value) -> np.ndarray:
    """A student's array-like (list, tuple, NumPy array, MyGrad tensor) as float64 NumPy."""
    data = getattr(value, "data", value) if type(value).__name__ == "Tensor" else value
    if isinstance(data, (list, tuple)) and data and not np.isscalar(data[0]):
        data = [np.asarray(getattr(row, "data", row), dtype=np.float64) for row in data]
    array = np.asarray(data, dtype=np.float64)
    return array


def as_scalar(value) -> float:
    """A student's number (float, NumPy scalar, 0-d or 1-element tensor) as a float."""
    array = as_float_array(value)
    if array.size != 1:
        raise ValueError(f"not a single number: shape {array.shape}")
    return float(array.reshape(()))


def close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Same shape and values within tolerance (NaN never equal)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def rounded(rng: np.random.Generator, shape, low: float = -1.0, high: float = 1.0, decimals: int = 2) -> np.ndarray:
    """Random numbers rounded to ``decimals`` digits: generated cases that read well in a report."""
    return np.round(rng.uniform(low, high, size=shape), decimals)
