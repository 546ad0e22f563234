"""Held-out deviance: statsmodels' family deviance and closed forms as references."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from numpy.testing import assert_allclose

import neuralglm as ng
from helpers import simulate_glm


def test_heldout_deviance_matches_statsmodels_family_deviance_with_exposure_and_weights():
    df = simulate_glm("poisson", "log", n_obs=400, n_features=2, seed=21)
    rng = np.random.default_rng(21)
    df["e"] = rng.uniform(0.5, 2.0, len(df))
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    train, test = df.iloc[:300], df.iloc[300:]
    fit = ng.glm("y ~ x1 + x2", train, family="poisson", exposure="e", weights="w")
    mu = np.exp(fit.coef["Intercept"] + test[["x1", "x2"]].to_numpy() @ fit.coef[["x1", "x2"]].to_numpy() + np.log(test["e"]))
    expected = sm.families.Poisson().deviance(test["y"].to_numpy(), mu, var_weights=test["w"].to_numpy())
    assert_allclose(ng.heldout_deviance(fit, test), expected, rtol=1e-10)  # same quantity, two implementations


def test_heldout_deviance_explained_is_out_of_sample_r_squared_for_least_squares():
    df = simulate_glm("gaussian", "identity", n_obs=300, n_features=2, seed=22)
    train, test = df.iloc[:200], df.iloc[200:]
    fit = ng.glm("y ~ x1 + x2", train)
    residual = test["y"] - fit.predict(test)
    expected = 1.0 - np.sum(residual**2) / np.sum((test["y"] - train["y"].mean()) ** 2)
    assert_allclose(ng.heldout_deviance_explained(fit, test), expected, rtol=1e-10)


def test_heldout_deviance_on_training_rows_is_the_deviance():
    df = simulate_glm("gamma", "log", n_obs=200, n_features=2, seed=23)
    fit = ng.glm("y ~ x1 + x2", df, family="gamma", link="log")
    assert_allclose(ng.heldout_deviance(fit, df), fit.deviance, rtol=1e-12)
