"""Same weights ⇒ same network: our forward pass and objective against scikit-learn's MLPRegressor.

scikit-learn's MLP is an independent implementation (NumPy, hand-written backprop). We fit it
for a few L-BFGS iterations, copy ``coefs_``/``intercepts_`` into our pytree and compare:
predictions (``loss="squared_error"``: identity output = our Gaussian/identity ``eta``;
``loss="poisson"``: exp output = our Poisson/log ``mu``) and the training loss ``loss_``,
which is the half deviance mean plus ``alpha/(2n)·‖W‖²``, our objective with ``l2=alpha``.
Both sides compute in float64, so the tolerance is a few ulps of accumulated rounding.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from neuralglm.family.family import Gaussian, Poisson
from neuralglm.family.link import Identity, Log
from neuralglm.model import Architecture, Dense, linear_predictor, objective

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}


def fitted_mlp(loss: str, activation: str, hidden: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    eta = 0.5 * np.sin(X[:, 0]) + 0.3 * X[:, 1] * X[:, 2]
    y = eta + 0.3 * rng.normal(size=300) if loss == "squared_error" else rng.poisson(np.exp(eta)).astype(float)
    model = MLPRegressor(
        hidden_layer_sizes=hidden, activation=activation, loss=loss, solver="lbfgs", alpha=0.05, max_iter=15, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations on purpose: any weights will do
        model.fit(X, y)
    params = tuple(Dense(W, b) for W, b in zip(model.coefs_, model.intercepts_, strict=True))  # NumPy float64
    return model, params, X, y


@pytest.mark.parametrize("sk_activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_forward_pass_and_loss_match_sklearn(loss, sk_activation, seed):
    hidden = (5, 3)
    model, params, X, y = fitted_mlp(loss, sk_activation, hidden, seed)
    arch = Architecture(hidden=hidden, activation=ACTIVATIONS[sk_activation])
    family, link = (Gaussian(), Identity()) if loss == "squared_error" else (Poisson(), Log())
    with jax.enable_x64(True):
        Xj, yj = jnp.asarray(X), jnp.asarray(y)
        params = jax.tree.map(jnp.asarray, params)
        ones, zeros = jnp.ones(len(y)), jnp.zeros(len(y))
        eta = linear_predictor(params, arch, Xj, zeros)
        ours = np.asarray(link.inverse(eta))
        value = float(objective(params, arch, family, link, Xj, yj, ones, zeros, model.alpha, float(len(y))))
    # Float64 on both sides: differences are accumulated rounding of a few matrix products.
    np.testing.assert_allclose(ours, model.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, model.loss_, rtol=1e-10)


def test_gelu_and_per_layer_activations_compose():
    # sklearn has no GELU: check the per-layer composition against a NumPy forward pass instead.
    from scipy.special import erf

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    W1, b1, W2, b2, W3 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)), rng.normal(size=2), rng.normal(size=(2, 1))
    h = X @ W1 + b1
    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
    h = np.tanh(h @ W2 + b2)
    expected = (h @ W3)[:, 0] + 0.7
    arch = Architecture(hidden=(4, 2), activation=["gelu", "tanh"])
    params = (Dense(W1, b1), Dense(W2, b2), Dense(W3, np.array([0.7])))
    with jax.enable_x64(True):
        got = np.asarray(linear_predictor(jax.tree.map(jnp.asarray, params), arch, jnp.asarray(X), jnp.zeros(20)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # float64 both sides
