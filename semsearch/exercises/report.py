"""What a check says: passed, not written yet, failed on a case, or raised on a case.

A :class:`CheckReport` is what every ``check_<task>`` prints and returns. A failure names the
first failing case (cases run smallest first, so it is a small one): the input, the expected
and the obtained value, and a one-line hint. An exception raised by the student's function is
shown as the student's own traceback (the checker's frames cut off) with a line saying which
case raised it.

Example
-------
>>> report = CheckReport("loss_accuracy", "passed", checked=["3 fixed cases"], n_cases=3)
>>> print(report)
loss_accuracy: passed (3 cases)
  checked: 3 fixed cases
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

#: The outcomes of a check ("skipped": a package it needs is not installed).
STATUSES = ("passed", "not written", "failed", "error", "skipped")

_HERE = str(Path(__file__).resolve().parent)


@dataclass
class CheckReport:
    """The outcome of one ``check_<task>``.

    Attributes
    ----------
    task : str
        The task's name, e.g. ``"loss_accuracy"``.
    status : one of :data:`STATUSES`
        ``"not written"``: the function raised ``NotImplementedError`` (the stub as handed out).
    checked : list of str
        What was checked (all of it when passed, what passed before the failure otherwise).
    n_cases : int
        How many cases ran, the failing one included.
    case, expected, obtained, hint : str or None
        The first failing case (its input), what the library gives, what the function gave,
        and what to look at.
    traceback : str or None
        For ``"error"``: the student's traceback, without the checker's frames.
    """

    task: str
    status: str
    checked: List[str] = field(default_factory=list)
    n_cases: int = 0
    case: Optional[str] = None
    expected: Optional[str] = None
    obtained: Optional[str] = None
    hint: Optional[str] = None
    traceback: Optional[str] = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: the status and, for a failure, the hint."""
        if self.status == "passed":
            return "passed"
        if self.status == "not written":
            return "not written yet"
        if self.status == "skipped":
            return f"skipped: {self.hint}"
        if self.status == "error":
            return f"raised on {self.case}"
        return f"failed on {self.case}: {self.hint}"

    def __str__(self) -> str:
        if self.status == "passed":
            lines = [f"{self.task}: passed ({self.n_cases} cases)"]
            lines += [f"  checked: {line}" for line in self.checked]
            return "\n".join(lines)
        if self.status == "not written":
            return f"{self.task}: not written yet (it raises NotImplementedError): write it, then run this check again"
        if self.status == "skipped":
            return f"{self.task}: skipped: {self.hint}"
        if self.status == "error":
            return "\n".join([
                f"{self.task}: your function raised an exception on case {self.n_cases}: {self.case}",
                (self.traceback or "").rstrip(),
                f"hint: {self.hint}" if self.hint else "",
            ]).rstrip()
        lines = [
            f"{self.task}: FAILED on case {self.n_cases}: {self.case}",
            f"  expected: {self.expected}",
            f"  obtained: {self.obtained}",
            f"  hint: {self.hint}",
        ]
        if self.checked:
            lines.append("  (passed before it: " + "; ".join(self.checked) + ")")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CheckReport(task={self.task!r}, status={self.status!r})"


def show(value, width: int = 160) -> str:
    """A short one-line text of a value for a report: arrays rounded to 4 digits."""
    try:
        import mygrad as mg

        if isinstance(value, mg.Tensor):
            return "Tensor(" + show(value.data, width) + ")"
    except ImportError:  # pragma: no cover - MyGrad is a dependency
        pass
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            text = np.array2string(value, precision=4, separator=", ", threshold=24, suppress_small=True, max_line_width=10_000)
        else:
            text = np.array2string(value, separator=", ", threshold=24, max_line_width=10_000)
        text = " ".join(text.split())
        if value.ndim > 1:
            text += f" shape {value.shape}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, dict) and len(value) > 12:
        items = list(value.items())[:12]
        text = "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in items) + f", ... ({len(value)} entries)}}"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
        text = "(" + ", ".join(show(v) for v in value) + ")"
    else:
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def student_traceback(error: BaseException) -> str:
    """The traceback of ``error`` without the checker's own frames (the student's code only)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_HERE)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)
