"""Shared fixtures.

Real-data tests read the data folder named by ``SEMSEARCH_DATA`` (CI points it at
``../shared/data``). Without it they skip, with a reason that says how to run them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _real_data_dir() -> Path | None:
    env = os.environ.get("SEMSEARCH_DATA")
    if env and (Path(env) / "coco" / "annotations" / "captions_val2017.json").is_file():
        return Path(env)
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data folder (COCO captions, 239 images, EfficientNet descriptors)."""
    path = _real_data_dir()
    if path is None:
        pytest.skip("set SEMSEARCH_DATA to a data folder with coco/annotations (e.g. ../shared/data)")
    return path
