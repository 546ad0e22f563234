"""Invariances a GLM fit must respect (DESIGN.md §7): each compares two fits of the same model.

The reference of each test is the other fit (duplicated data, a permuted or rescaled design, the
rate form of an offset), so no tolerance hides a formula. Tolerances: both fits solve the same
score equations, and IRLS stops only when a step moves every coefficient by < 1e-9 standard
errors (``IRLSControl.coef_tol``), so estimates agree to ~1e-9 SE; 1e-6 SE leaves 1000× room
for round-off while a wrong weight or a dropped row moves them by ≥ 1e-2 SE at n = 300.
Deviances and log-likelihoods are flat at the optimum (errors quadratic in those of the
estimates), so 1e-10 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neuralglm as ng
from helpers import formula_for, simulate_glm
from neuralglm.errors import DataWarning

N_OBS = 300
CASES = [("poisson", "log"), ("binomial", "logit"), ("gamma", "log")]


def assert_same_estimates(a: ng.FitResult, b: ng.FitResult, *, what: str = "coef") -> None:
    """Coefficients equal to 1e-6 standard errors (see module docstring)."""
    pd.testing.assert_index_equal(a.coef.index, b.coef.index)
    se = a.std_errors.to_numpy()
    assert np.all(np.abs(a.coef.to_numpy() - b.coef.to_numpy()) <= 1e-6 * se), f"{what}: {a.coef.to_numpy()} vs {b.coef.to_numpy()}"


@pytest.mark.parametrize(("family", "link"), CASES, ids=[f"{f}-{g}" for f, g in CASES])
def test_duplicated_rows_equal_weights_two_and_freq_weights_two(family, link, seed):
    df = simulate_glm(family, link, N_OBS, 3, seed)
    formula = formula_for(df)
    doubled = pd.concat([df, df], ignore_index=True)
    fit_doubled = ng.glm(formula, doubled, family=family, link=link)
    fit_weights = ng.glm(formula, df, family=family, link=link, weights=np.full(N_OBS, 2.0))
    fit_freq = ng.glm(formula, df, family=family, link=link, freq_weights=np.full(N_OBS, 2.0))

    assert_same_estimates(fit_doubled, fit_weights, what="weights=2")
    assert_same_estimates(fit_doubled, fit_freq, what="freq_weights=2")
    # Prior weights multiply each unit deviance, so the deviance doubles exactly like duplication.
    assert_allclose(fit_weights.deviance, fit_doubled.deviance, rtol=1e-10)
    # Frequency weights *are* duplication: every statistic matches the duplicated data.
    assert fit_freq.n_obs == fit_doubled.n_obs == 2 * N_OBS
    assert fit_freq.df_resid == fit_doubled.df_resid
    assert_allclose(
        [fit_freq.deviance, fit_freq.null_deviance, fit_freq.pearson_chi2, fit_freq.loglik, fit_freq.aic, fit_freq.dispersion],
        [
            fit_doubled.deviance,
            fit_doubled.null_deviance,
            fit_doubled.pearson_chi2,
            fit_doubled.loglik,
            fit_doubled.aic,
            fit_doubled.dispersion,
        ],
        rtol=1e-10,
    )
    # Standard errors scale with the curvature at the estimates; estimates agree to 1e-9 SE, so
    # the curvature (smooth in beta) agrees to ~1e-9 relative.
    assert_allclose(fit_freq.std_errors.to_numpy(), fit_doubled.std_errors.to_numpy(), rtol=1e-7)


def test_freq_weights_equal_duplicating_rows_unevenly(seed):
    """Integer frequency weights 1..3 reproduce the data with each row repeated that many times."""
    df = simulate_glm("gamma", "log", N_OBS, 3, seed)
    counts = np.random.default_rng(seed).integers(1, 4, size=N_OBS)
    repeated = df.loc[df.index.repeat(counts)].reset_index(drop=True)
    fit_freq = ng.glm(formula_for(df), df, family="gamma", link="log", freq_weights=counts.astype(float))
    fit_repeated = ng.glm(formula_for(df), repeated, family="gamma", link="log")
    assert_same_estimates(fit_repeated, fit_freq)
    assert fit_freq.df_resid == fit_repeated.df_resid == counts.sum() - 4
    assert_allclose(
        [fit_freq.deviance, fit_freq.loglik, fit_freq.dispersion],
        [fit_repeated.deviance, fit_repeated.loglik, fit_repeated.dispersion],
        rtol=1e-10,
    )
    assert_allclose(fit_freq.std_errors.to_numpy(), fit_repeated.std_errors.to_numpy(), rtol=1e-7)


@pytest.mark.parametrize(("family", "link"), CASES, ids=[f"{f}-{g}" for f, g in CASES])
def test_column_order_permutes_coefficients(family, link):
    seed = 0  # one data set suffices: the property is exact, not statistical
    df = simulate_glm(family, link, N_OBS, 3, seed)
    fit = ng.glm("y ~ x1 + x2 + x3", df, family=family, link=link)
    permuted = ng.glm("y ~ x3 + x1 + x2", df, family=family, link=link)
    assert list(permuted.coef.index) == ["Intercept", "x3", "x1", "x2"]
    assert_same_estimates(fit, _reorder(permuted, fit))
    assert_allclose(permuted.std_errors[fit.coef.index].to_numpy(), fit.std_errors.to_numpy(), rtol=1e-7)
    assert_allclose(permuted.deviance, fit.deviance, rtol=1e-10)


class _Reordered:
    def __init__(self, coef, std_errors):
        self.coef, self.std_errors = coef, std_errors


def _reorder(fit: ng.FitResult, like: ng.FitResult):
    return _Reordered(fit.coef[like.coef.index], fit.std_errors[like.coef.index])


@pytest.mark.parametrize("scale", [-0.25])
@pytest.mark.parametrize(("family", "link"), CASES, ids=[f"{f}-{g}" for f, g in CASES])
def test_scaling_a_column_divides_its_coefficient(family, link, scale):
    seed = 0  # one data set suffices: the property is exact, not statistical
    df = simulate_glm(family, link, N_OBS, 3, seed)
    fit = ng.glm("y ~ x1 + x2 + x3", df, family=family, link=link)
    scaled = ng.glm("y ~ x1 + x2 + x3", df.assign(x2=df["x2"] * scale), family=family, link=link)
    expected = fit.coef.copy()
    expected["x2"] = fit.coef["x2"] / scale
    assert_same_estimates(_Reordered(expected, fit.std_errors), scaled)
    assert_allclose(scaled.std_errors["x2"], fit.std_errors["x2"] / abs(scale), rtol=1e-7)
    assert_allclose(scaled.deviance, fit.deviance, rtol=1e-10)


def test_arrays_and_formula_give_the_same_fit():
    """``glm_fit`` on the formula's design matrix reproduces ``glm`` (same estimator, two front doors)."""
    seed = 0  # one data set suffices: the property is exact, not statistical
    df = simulate_glm("poisson", "log", N_OBS, 3, seed)
    fit = ng.glm("y ~ x1 + x2 + x3", df, family="poisson")
    X = np.column_stack([np.ones(N_OBS), df[["x1", "x2", "x3"]].to_numpy()])
    from_arrays = ng.glm_fit(X, df["y"].to_numpy(), family="poisson", column_names=["Intercept", "x1", "x2", "x3"])
    assert_same_estimates(fit, from_arrays)
    assert_allclose(from_arrays.deviance, fit.deviance, rtol=1e-10)
    assert_allclose(from_arrays.null_deviance, fit.null_deviance, rtol=1e-10)


def test_log_offset_equals_rate_with_exposure_weights(seed):
    """Poisson/log: offset log(e) on counts y ≡ rates y/e with weights e (glum's invariance).

    The score equations are identical (Σ x (y − e·μ) = Σ x e (y/e − μ)), and so are the
    deviance and the Fisher information, hence estimates, standard errors and deviance.
    """
    df = simulate_glm("poisson", "log", N_OBS, 3, seed)
    exposure = np.random.default_rng(seed + 100).uniform(0.5, 3.0, size=N_OBS)
    df["y"] = np.random.default_rng(seed + 200).poisson(exposure * np.exp(0.2 + 0.3 * df["x1"] - 0.2 * df["x2"])).astype(float)
    with_offset = ng.glm("y ~ x1 + x2 + x3", df, family="poisson", offset=np.log(exposure))
    with_exposure = ng.glm("y ~ x1 + x2 + x3", df, family="poisson", exposure=exposure)
    # Rates are not whole numbers: R's dpois warns too; the fit is the quasi-likelihood one.
    with pytest.warns(DataWarning, match="not whole"):
        rates = ng.glm("rate ~ x1 + x2 + x3", df.assign(rate=df["y"] / exposure), family="poisson", weights=exposure)
    assert_same_estimates(with_offset, rates)
    assert_same_estimates(with_offset, with_exposure)
    assert_allclose(rates.std_errors.to_numpy(), with_offset.std_errors.to_numpy(), rtol=1e-7)
    assert_allclose(rates.deviance, with_offset.deviance, rtol=1e-10)


def test_same_data_gives_bitwise_identical_fit():
    seed = 0  # one data set suffices: the property is exact, not statistical
    df = simulate_glm("gamma", "log", N_OBS, 3, seed)
    first = ng.glm(formula_for(df), df, family="gamma", link="log")
    second = ng.glm(formula_for(df), df.copy(), family="gamma", link="log")
    # Deterministic arithmetic: no tolerance at all.
    assert_array_equal(first.coef.to_numpy(), second.coef.to_numpy())
    assert_array_equal(first.vcov.to_numpy(), second.vcov.to_numpy())
    assert_array_equal(first.fitted_mu, second.fitted_mu)
    assert [first.deviance, first.loglik, first.dispersion, first.info.n_iter] == [
        second.deviance,
        second.loglik,
        second.dispersion,
        second.info.n_iter,
    ]


def test_inputs_are_never_mutated():
    seed = 0  # one data set suffices: the property is exact, not statistical
    df = simulate_glm("poisson", "log", N_OBS, 3, seed)
    df["region"] = pd.Categorical(np.where(df["x1"] > 0, "north", "south"))
    df.loc[3, "x2"] = np.nan  # dropped with missing="drop": must not be dropped from the caller's frame
    weights = np.random.default_rng(seed).uniform(0.5, 2.0, size=N_OBS)
    offset = pd.Series(np.full(N_OBS, 0.1), index=df.index)
    exposure = np.random.default_rng(seed + 1).uniform(0.5, 2.0, size=N_OBS)
    before = (df.copy(deep=True), weights.copy(), offset.copy(deep=True), exposure.copy())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the dropped row; tested in test_validate
        fit = ng.glm("y ~ x1 + x2 + C(region)", df, family="poisson", weights=weights, offset=offset, exposure=exposure, missing="drop")
    fit.predict(df.dropna(), exposure=exposure[df["x2"].notna().to_numpy()], offset=offset[df["x2"].notna()])
    pd.testing.assert_frame_equal(df, before[0])
    assert_array_equal(weights, before[1])
    pd.testing.assert_series_equal(offset, before[2])
    assert_array_equal(exposure, before[3])

    X = np.column_stack([np.ones(N_OBS), df[["x1", "x3"]].to_numpy()])
    y = df["y"].to_numpy()
    X_before, y_before = X.copy(), y.copy()
    arrays_fit = ng.glm_fit(X, y, family="poisson", weights=weights, offset=offset.to_numpy())
    assert_array_equal(X, X_before)
    assert_array_equal(y, y_before)
    # The fit keeps its own copies: changing the caller's arrays later cannot change the result.
    for mine in (arrays_fit.design.y, arrays_fit.design.weights, arrays_fit.design.offset):
        assert not np.shares_memory(mine, y) and not np.shares_memory(mine, weights)
