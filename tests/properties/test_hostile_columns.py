"""Hostile columns, generated: whatever a column holds, the data layer answers with a fit or a library error.

A column of random values (numbers, huge numbers, text, numbers written as text, None, NaN,
complex numbers, lists, booleans, dates) is put in the regressor, the response or the
weights. The outcome must be a fit with a finite deviance or a :class:`NeuralGLMError` (a
``DataWarning`` may come first), never an error or warning from numpy, pandas or formulaic;
and the caller's frame is the same afterwards.
"""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import neuralglm as ng
from neuralglm.errors import DataWarning, NeuralGLMError

N = 12

VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 1e200, -1e300, 1e-300]),
    st.text(max_size=4),
    st.sampled_from(["1.5", "2", "abc", "", " ", "nan", "1e400"]),
    st.none(),
    st.complex_numbers(max_magnitude=10.0),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
    st.just(datetime.date(2024, 1, 1)),
)


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.uniform(0.5, 2.0, N), "y": rng.poisson(2.0, N).astype(float), "w": rng.uniform(0.5, 1.5, N)})


def _outcome(call) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DataWarning)
        try:
            fit = call()
        except NeuralGLMError:
            return "refused"
    assert np.isfinite(fit.deviance), fit.deviance
    return "fitted"


@given(column=st.sampled_from(["x", "y", "w"]), values=st.lists(VALUES, min_size=N, max_size=N), seed=st.integers(0, 3))
def test_any_column_gives_a_fit_or_a_library_error_and_the_frame_is_unchanged(column, values, seed):
    frame = _frame(seed)
    frame[column] = pd.Series(values, dtype=object)
    before = frame.copy(deep=True)
    weights = "w" if column == "w" else None
    _outcome(lambda: ng.glm("y ~ x", frame, family="poisson", weights=weights, missing="drop"))
    pd.testing.assert_frame_equal(frame, before)


@given(values=st.lists(VALUES, min_size=N, max_size=N), argument=st.sampled_from(["weights", "offset", "exposure", "freq_weights"]))
def test_any_array_argument_gives_a_fit_or_a_library_error(values, argument):
    frame = _frame(0)
    before = frame.copy(deep=True)
    _outcome(lambda: ng.glm("y ~ x", frame, family="poisson", **{argument: values}))
    pd.testing.assert_frame_equal(frame, before)


@given(values=st.lists(VALUES, min_size=2 * N, max_size=2 * N))
def test_any_matrix_for_glm_fit_gives_a_fit_or_a_library_error(values):
    X = np.empty((N, 2), dtype=object)
    X.ravel()[:] = values
    y = _frame(1)["y"].to_numpy()
    _outcome(lambda: ng.glm_fit(X, y, family="poisson"))
