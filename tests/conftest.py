"""Shared test fixtures: where the real data lives, and seeded randomness."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _real_data_root() -> Path:
    """$PAPERLIB_DATA (made absolute: tests run commands and notebooks in other folders, and
    `make test DATA=../shared/data` passes it relative), else ../shared/data."""
    env = os.environ.get("PAPERLIB_DATA")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The folder holding the real DUTS-TE / DUTS-TR subsets; skips the test when absent."""
    root = _real_data_root()
    if not (root / "DUTS-TE").is_dir():
        pytest.skip(f"real data not found at {root} (set PAPERLIB_DATA)")
    return root


@pytest.fixture(scope="session")
def golden_root() -> Path:
    """The reference data made with other projects' released code ($PAPERLIB_GOLDEN, else
    ../shared/golden); skips the test when absent."""
    env = os.environ.get("PAPERLIB_GOLDEN")
    root = Path(env).resolve() if env else Path(__file__).resolve().parents[2] / "shared" / "golden"
    if not root.is_dir():
        pytest.skip(f"golden reference data not found at {root} (set PAPERLIB_GOLDEN)")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
