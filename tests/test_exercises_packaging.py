"""What a student installs is enough for the checks, and the course's runner finds the adapter."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_checks_need_no_test_or_notebook_package():
    """Every check runs with hypothesis, pytest, nbclient and jupytext unimportable (a student's install)."""
    code = (
        "import sys\n"
        "for name in ('hypothesis', 'pytest', 'nbclient', 'jupytext'):\n"
        "    sys.modules[name] = None\n"
        "from semsearch.exercises import check_all\n"
        "from semsearch.exercises.reference import solutions\n"
        "reports = check_all(solutions(), verbose=False)\n"
        "print(sorted(t for t, r in reports.items() if r.passed))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("'") == 2 * 13  # all thirteen tasks passed


def _entry_points() -> dict:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    keyword = next(k for k in call.keywords if k.arg == "entry_points")
    return ast.literal_eval(keyword.value)


def test_the_benchmark_adapter_is_registered_under_the_contracts_name():
    """The course benchmark's contract: group ``cogworks.submissions.v2``, name ``language-search``."""
    (entry,) = _entry_points()["cogworks.submissions.v2"]
    name, target = (part.strip() for part in entry.split("="))
    assert name == "language-search"
    module, function = target.split(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), function))
