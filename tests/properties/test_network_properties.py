"""Properties of networks that must hold for any data: scaling invariance, row order, a zero-hidden forward pass."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import neuralglm as ng
from neuralglm.model import Architecture, Dense, linear_predictor

N_OBS = 60


def data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=N_OBS), "x2": rng.uniform(-1, 1, N_OBS), "g": rng.choice(list("ab"), N_OBS)})
    df["y"] = rng.poisson(np.exp(0.5 * np.sin(2 * df.x1) + 0.3 * df.x2))
    return df


def small_fit(df: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # 3 epochs on purpose: any trained weights will do
        return ng.fit(
            "y ~ x1 + x2 + C(g)",
            df,
            family="poisson",
            hidden=(5,),
            activation="tanh",
            solver="adam",
            epochs=3,
            learning_rate=0.05,
            dtype="float64",
        )


@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_affine_rescaling_of_an_input_changes_nothing(seed, scale, shift):
    df = data(seed)
    rescaled = df.assign(x1=df.x1 * scale + shift)
    first, second = small_fit(df), small_fit(rescaled)
    # Inputs are standardized inside the model, so the two fits see the same numbers up to
    # rounding of (a·x + b − mean)/sd (~1e-13 for |b|/a ≤ 1e6), which three Adam epochs keep tiny.
    np.testing.assert_allclose(second.fitted_mu, first.fitted_mu, rtol=1e-6)
    np.testing.assert_allclose(second.predict(rescaled.iloc[:5]).to_numpy(), first.fitted_mu[:5], rtol=1e-6)


@given(order=st.permutations(list(range(10))))
def test_predictions_follow_the_rows_of_new_data(order):
    df = data(0)
    net = small_fit(df)
    new = df.iloc[:10].iloc[list(order)]
    # Row i of new data is predicted from row i alone (no batch statistics at prediction time).
    np.testing.assert_array_equal(net.predict(new).to_numpy(), net.fitted_mu[list(order)])


@given(
    weights=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    bias=st.floats(-3, 3),
    seed=st.integers(0, 1000),
)
def test_zero_hidden_forward_pass_is_the_linear_predictor(weights, bias, seed):
    X = np.random.default_rng(seed).normal(size=(8, 3))
    offset = np.linspace(-1, 1, 8)
    with jax.enable_x64(True):
        params = (Dense(jnp.asarray(weights)[:, None], jnp.asarray([bias])),)
        eta = np.asarray(linear_predictor(params, Architecture(), jnp.asarray(X), jnp.asarray(offset)))
    np.testing.assert_allclose(eta, X @ np.asarray(weights) + bias + offset, rtol=1e-12, atol=1e-12)  # float64 both ways
