"""Our fusion-friendly xlogy/xlog1py against SciPy's, values and derivatives."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.special as sps
from numpy.testing import assert_allclose

from neuralglm.family.special import xlog1py, xlogy


@pytest.fixture(autouse=True)
def _float64():
    """Float64 for these comparisons at 1e-15, scoped to each test: the session's global flag stays as it was."""
    with jax.enable_x64(True):
        yield


X = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 3.0, 7.0, 0.0])
Y = np.array([0.0, 2.0, 1e-300, 0.3, 1.0, 2.5, 1e-8, 5.0])


def test_xlogy_matches_scipy_including_zero_times_log_zero():
    assert_allclose(np.asarray(xlogy(X, Y)), sps.xlogy(X, Y), rtol=1e-15, atol=0)


def test_xlog1py_matches_scipy_including_x_zero_at_y_minus_one():
    y = np.array([-1.0, 0.5, -0.999, 1e-12, 3.0, -0.25, 2.0, -1.0])
    assert_allclose(np.asarray(xlog1py(X, y)), sps.xlog1py(X, y), rtol=1e-15, atol=0)


def test_derivative_in_y_is_x_over_y_and_zero_without_nan_where_x_is_zero():
    grad = jax.vmap(jax.grad(xlogy, argnums=1))(X, np.where(Y == 0, 0.0, Y))
    expected = np.where(X == 0, 0.0, X / np.where(Y == 0, 1.0, Y))
    assert_allclose(np.asarray(grad), expected, rtol=1e-14)
    assert np.isfinite(np.asarray(grad)).all()
