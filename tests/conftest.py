"""Strict settings for the whole suite (DESIGN.md §7, §9).

- ``jax_numpy_rank_promotion="raise"``: silent broadcasting such as ``(n,) + (n, 1)`` fails.
- Global x64 stays OFF: the library must manage float64 itself, and tests check it does.
- Hypothesis profiles: "ci" (25 examples, no deadline; the default) and "dev" (more examples).
"""

from __future__ import annotations

import os
import sys

import jax
import matplotlib
import pytest
from hypothesis import settings

# The command line keeps compiled code in the user's cache folder by default; tests calling it
# in-process must neither write there nor switch the cache on for the rest of the suite
# (tests/unit/test_compilation_cache.py turns it on in subprocesses).
os.environ.setdefault("NEURALGLM_NO_CACHE", "1")

# Test modules import shared helpers as `from helpers import ...` (importlib import mode).
sys.path.insert(0, os.path.dirname(__file__))

matplotlib.use("Agg")
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=[0, 1])
def seed(request) -> int:
    """Seeds for simulated data; every random thing in the suite takes one."""
    return request.param


@pytest.fixture(autouse=True)
def _close_figures():
    """Close figures after each test: matplotlib warns past 20 open figures, and warnings are errors."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
