"""FitResult: residuals, predictions, summaries; checked against statsmodels and closed forms."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import neuralglm as ng
from helpers import simulate_glm


@pytest.fixture(scope="module")
def gamma_fit():
    df = simulate_glm("gamma", "log", n_obs=300, n_features=2, seed=11)
    df["w"] = np.random.default_rng(11).uniform(0.5, 2.0, len(df))
    ours = ng.glm("y ~ x1 + x2", df, family="gamma", link="log", weights="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.glm("y ~ x1 + x2", df, family=sm.families.Gamma(sm.families.links.Log()), var_weights=df["w"]).fit(tol=1e-13)
    return ours, ref, df


@pytest.mark.parametrize(
    ("kind", "attribute"),
    [("deviance", "resid_deviance"), ("pearson", "resid_pearson"), ("response", "resid_response"), ("working", "resid_working")],
)
def test_residuals_match_statsmodels(gamma_fit, kind, attribute):
    ours, ref, _ = gamma_fit
    # statsmodels' resid_working is (y - mu)·g'(mu) — R's working residuals — for every link.
    assert_allclose(ours.residuals(type=kind), getattr(ref, attribute), rtol=1e-6, atol=1e-12)


def test_deviance_residuals_square_to_deviance(gamma_fit):
    ours, _, _ = gamma_fit
    assert_allclose(np.sum(ours.residuals("deviance") ** 2), ours.deviance, rtol=1e-12)
    assert_allclose(np.sum(ours.residuals("pearson") ** 2), ours.pearson_chi2, rtol=1e-12)


def test_unknown_residual_type_lists_the_valid_ones(gamma_fit):
    ours, _, _ = gamma_fit
    with pytest.raises(ValueError, match="deviance, pearson, response, working"):
        ours.residuals(type="studentized")


def test_predict_new_data_matches_statsmodels(gamma_fit):
    ours, ref, df = gamma_fit
    new = df.sample(25, random_state=1)
    assert_allclose(ours.predict(new), ref.predict(new), rtol=1e-6)
    assert_allclose(ours.predict(new, type="link"), np.log(ref.predict(new)), rtol=1e-6, atol=1e-9)
    assert list(ours.predict(new).index) == list(new.index)


def test_predict_type_is_validated(gamma_fit):
    ours, _, df = gamma_fit
    with pytest.raises(ng.errors.SpecificationError, match="type must be one of response, link"):
        ours.predict(df, type="probability")


def test_predict_with_offset_array_requires_new_offset():
    df = simulate_glm("poisson", "log", n_obs=200, n_features=1, seed=2)
    offset = np.full(len(df), 0.1)
    fit = ng.glm("y ~ x1", df, family="poisson", offset=offset)
    with pytest.raises(ng.errors.DataError, match="fitted with an offset array: pass offset="):
        fit.predict(df.head())
    with_offset = fit.predict(df.head(), offset=np.full(5, 0.1))
    assert_allclose(with_offset, fit.predict().head(), rtol=1e-12)


def test_summary_text_has_the_r_layout():
    data = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ C(district) + group + age", data, family="poisson", exposure="holders")
    text = str(fit.summary())
    assert text.startswith("Generalized linear model · poisson(link=log) · IRLS,")
    assert "Offset: log(holders)" in text
    assert "Observations: 64   Df residual: 54   Dispersion: 1 (fixed)" in text
    for name in fit.coef.index:
        assert name in text
    assert f"Null deviance {fit.null_deviance:,.6g} on 63 df" in text
    assert f"AIC {fit.aic:,.6g}" in text
    html = fit.summary()._repr_html_()
    assert "<table" in html and "age.C" in html  # an ordered factor: R's contr.poly names (issue 10)
    escaped = ng.glm("claims ~ C(age)", data, family="poisson", exposure="holders").summary()._repr_html_()
    assert "C(age)[T.&gt;35]" in escaped
    assert isinstance(fit.summary().coefficients, pd.DataFrame)


def test_linear_model_summary_reports_r_squared_and_f():
    df = simulate_glm("gaussian", "identity", n_obs=100, n_features=2, seed=4)
    fit = ng.glm("y ~ x1 + x2", df)
    text = str(fit.summary())
    assert text.startswith("Linear model · gaussian(link=identity) · closed form")
    assert f"Residual standard error: {np.sqrt(fit.dispersion):.6g} on 97 df" in text
    assert "t_value" in text and "R²:" in text and "F:" in text


def test_results_are_frozen(gamma_fit):
    ours, _, _ = gamma_fit
    with pytest.raises(AttributeError):
        ours.deviance = 0.0


def test_user_dispersion_gives_z_tests_and_scaled_errors(gamma_fit):
    ours, _, df = gamma_fit
    fixed = ng.glm("y ~ x1 + x2", df, family="gamma", link="log", weights="w", dispersion=1.0)
    assert "z_value" in fixed.coef_table().columns
    assert_allclose(fixed.std_errors, ours.std_errors / np.sqrt(ours.dispersion), rtol=1e-9)
    quasi = ng.glm("y ~ x1 + x2", df.assign(y=np.round(df["y"])), family="poisson", dispersion="pearson")
    assert quasi.dispersion_method == "pearson" and "t_value" in quasi.coef_table().columns


# ---- results composed from shared parts ----------------------------------------------------------
def test_glm_and_network_share_one_statistics_part_and_say_their_kind(gamma_fit):
    from neuralglm.results import common, network, result

    ours, ref, df = gamma_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)
        net = ng.fit("y ~ x1 + x2", df, family="gamma", link="log", weights="w", hidden=(2,), solver="lbfgs", epochs=30, seed=0)
    assert (ours.kind, net.kind) == ("glm", "network")
    for fitted in (ours, net):
        assert type(fitted.statistics) is common.FitStatistics
        for name in ("n_obs", "df_resid", "deviance", "null_deviance", "pearson_chi2", "dispersion", "loglik", "aic", "bic"):
            assert getattr(fitted, name) == getattr(fitted.statistics, name)
    # Against statsmodels (independent): the properties read the statistics part.
    assert_allclose(ours.deviance, ref.deviance, rtol=1e-8)
    assert_allclose(ours.null_deviance, ref.null_deviance, rtol=1e-8)
    assert ours.n_obs == ref.nobs and ours.df_resid == ref.df_resid
    # Each shared definition exists once.
    assert result.PREDICT_TYPES is network.PREDICT_TYPES is common.PREDICT_TYPES
    assert ng.FitResult.predict is ng.NetworkResult.predict is common.ResultBase.predict
    assert ng.FitResult.residuals is ng.NetworkResult.residuals
    assert "deviance" not in {f.name for f in dataclasses.fields(ng.FitResult)}


def test_statistics_are_read_only_properties(gamma_fit):
    ours, _, _ = gamma_fit
    with pytest.raises(AttributeError):
        ours.deviance = 1.0  # type: ignore[misc]
