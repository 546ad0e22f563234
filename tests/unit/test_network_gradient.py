"""Training: gradients against finite differences, determinism, divergence, convergence, early stopping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning, DivergenceError
from neuralglm.family.family import Gamma, Poisson
from neuralglm.family.link import Log
from neuralglm.fit import gradient_steps
from neuralglm.model import Architecture, init_params, objective


def data(n_obs: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n_obs),
            "x2": rng.uniform(-2, 2, n_obs),
            "g": rng.choice(list("abc"), n_obs),
            "e": rng.uniform(0.5, 2, n_obs),
        }
    )
    df["y"] = rng.poisson(df.e * np.exp(np.sin(2 * df.x1) + 0.3 * df.x2 - 0.5))
    return df


@pytest.mark.parametrize("family", [Poisson(), Gamma()], ids=str)
def test_objective_gradient_matches_finite_differences(family):
    arch = Architecture(hidden=(3,), activation="tanh")
    with jax.enable_x64(True):
        key = jax.random.key(0)
        X = jax.random.normal(key, (40, 2))
        y = jnp.abs(jax.random.normal(jax.random.key(1), (40,))) + 0.1
        weights = jnp.linspace(0.5, 2.0, 40)
        offset = jnp.linspace(-0.3, 0.3, 40)
        params = init_params(arch, 2, seed=3, output_bias=0.1, dtype=jnp.float64)
        params = jax.tree.map(lambda a: a + 0.1, params)  # move off the zero output layer
        flat, unravel = jax.flatten_util.ravel_pytree(params)

        def f(vector):
            return objective(unravel(vector), arch, family, Log(), X, y, weights, offset, 0.7, jnp.sum(weights))

        grad = np.asarray(jax.grad(f)(flat))
        step = 1e-6
        basis = np.eye(flat.size)
        numeric = np.array([(float(f(flat + step * e)) - float(f(flat - step * e))) / (2 * step) for e in basis])
    # Central differences: truncation O(h²) ≈ 1e-12 plus rounding O(eps/h) ≈ 1e-10 in float64.
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def fit(df, **kwargs):
    options = {
        "family": "poisson",
        "exposure": "e",
        "hidden": (8,),
        "activation": "tanh",
        "solver": "adam",
        "epochs": 5,
        "learning_rate": 0.01,
    }
    options.update(kwargs)
    with pytest.warns(ConvergenceWarning, match="maximum number of epochs"):
        return ng.fit("y ~ x1 + x2 + C(g)", df, **options)


def test_same_seed_gives_the_identical_fit_and_another_seed_does_not():
    df = data()
    first, second, other = fit(df, seed=3), fit(df, seed=3), fit(df, seed=4)
    leaves = jax.tree.leaves
    assert all(np.array_equal(a, b) for a, b in zip(leaves(first.params), leaves(second.params), strict=True))
    assert first.deviance == second.deviance
    assert not np.array_equal(leaves(first.params)[0], leaves(other.params)[0])


def test_repeat_fit_with_the_same_shapes_does_not_recompile():
    df = data()
    fit(df, seed=0, learning_rate=0.01)
    size = gradient_steps.minibatch_epoch._cache_size()
    fit(df, seed=1, learning_rate=0.02, l2=0.5)  # new seed and new hyper-parameters: traced, not static
    assert gradient_steps.minibatch_epoch._cache_size() == size


def test_non_convergence_warns_and_is_recorded():
    net = fit(data(), epochs=2)
    assert not net.info.converged and net.info.status.name == "ITERATION_LIMIT" and net.info.n_iter == 2
    assert list(net.history.columns) == ["iteration", "objective", "gradient_norm", "step", "validation_deviance", "seconds"]
    assert net.history["iteration"].tolist() == [1, 2] and np.isnan(net.history["gradient_norm"]).all()
    # The step is the largest weight change of the epoch: compare with the weights of a one-epoch fit.
    one = fit(data(), epochs=1)
    first = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(one.params)])
    second = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(net.params)])
    np.testing.assert_allclose(net.history["step"].iloc[1], np.max(np.abs(second - first)), rtol=1e-5)


def test_a_non_finite_loss_raises_with_advice():
    df = data()
    df["y"] = df["y"] * 1000.0
    with pytest.raises(DivergenceError, match="lower learning_rate"):
        ng.fit("y ~ x1 + x2", df, family="gaussian", hidden=(8,), solver="sgd", learning_rate=1e6, epochs=50)


def test_early_stopping_restores_the_best_weights():
    df = data(600, seed=1)
    net = ng.fit(
        "y ~ x1 + x2 + C(g)", df, family="poisson", exposure="e", hidden=(32,), solver="adam", learning_rate=0.05,
        epochs=300, early_stopping=True, validation_fraction=0.3, patience=5, seed=0,
    )  # fmt: skip
    history = net.history
    # Early stopping is a regularizer, not convergence to the training optimum: no warning, not converged.
    assert net.info.status.name == "EARLY_STOPPED" and not net.info.converged
    assert net.best_epoch == int(history.loc[history.validation_deviance.idxmin(), "iteration"]) < len(history)
    rows = net.validation_rows
    mu = net.fitted_mu[rows]
    # Recompute the validation deviance of the kept weights with statsmodels' Poisson deviance.
    import statsmodels.api as sm

    recomputed = sm.families.Poisson().deviance(df.y.to_numpy()[rows], mu) / len(rows)
    # Training ran in float32; the float64 recomputation differs by float32 rounding (~1e-6).
    np.testing.assert_allclose(recomputed, history.validation_deviance.min(), rtol=1e-5)
