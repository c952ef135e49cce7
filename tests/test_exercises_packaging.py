"""What a student installs is enough for the checks, and the course's runner finds the adapter."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    import importlib.util

    # all thirteen tasks pass; preprocess compares with torch's networks and skips without the features extra
    expected = 13 if importlib.util.find_spec("torchvision") is not None else 12
    assert out.stdout.count("'") == 2 * expected


def test_the_benchmark_adapter_is_registered_under_the_contracts_name():
    """The course benchmark's contract: group ``cogworks.submissions.v2``, name ``language-search``."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (entry,) = project["entry-points"]["cogworks.submissions.v2"].items()
    name, target = entry
    assert name == "language-search"
    module, function = target.split(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), function))
