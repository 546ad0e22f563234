"""``predict(se_fit=, interval=, level=)`` and ``conf_int(method="profile")``: properties without R.

Live R is the reference in ``tests/parity/test_predict_se_vs_r.py`` and
``tests/parity/test_profile_ci_vs_r.py``; here the closed forms (least squares, an
intercept-only Poisson), invariances (frequency weights, exposure) and the errors.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import neuralglm as ng
from helpers import simulate_glm
from neuralglm.errors import DataWarning, ModelFileError, SpecificationError
from neuralglm.inference.prediction import linear_predictor, link_standard_errors


@pytest.fixture(scope="module")
def gaussian():
    df = simulate_glm("gaussian", None, 40, 2, seed=3)
    return df, ng.glm("y ~ x1 + x2", df)


@pytest.fixture(scope="module")
def poisson():
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"x": rng.uniform(-1, 1, 60), "e": rng.uniform(1, 5, 60)})
    df["y"] = rng.poisson(df["e"] * np.exp(0.5 + 0.8 * df["x"]))
    return df, ng.glm("y ~ x", df, family="poisson", exposure="e")


def test_gaussian_se_fit_and_interval_are_least_squares(gaussian):
    """se = s·sqrt(x₀ᵀ(XᵀX)⁻¹x₀) and a t interval on n − p df: the linear model's closed form."""
    df, fit = gaussian
    new = pd.DataFrame({"x1": [0.0, 0.5, -2.0], "x2": [0.1, -0.3, 3.0]})
    X = np.column_stack([np.ones(len(df)), df["x1"], df["x2"]])
    X0 = np.column_stack([np.ones(3), new["x1"], new["x2"]])
    beta = np.linalg.lstsq(X, df["y"], rcond=None)[0]
    s2 = np.sum((df["y"] - X @ beta) ** 2) / (len(df) - 3)
    se = np.sqrt(s2 * np.einsum("ij,jk,ik->i", X0, np.linalg.inv(X.T @ X), X0))
    q = stats.t.ppf(0.975, len(df) - 3)
    table = fit.predict(new, se_fit=True, interval="confidence")
    assert_allclose(table["fit"], X0 @ beta, rtol=1e-10)
    assert_allclose(table["se_fit"], se, rtol=1e-9)
    assert_allclose(table["lower"], X0 @ beta - q * se, rtol=1e-9)
    assert_allclose(table["upper"], X0 @ beta + q * se, rtol=1e-9)


def test_response_interval_is_the_link_interval_mapped(poisson):
    df, fit = poisson
    link = fit.predict(df, type="link", se_fit=True, interval="confidence", level=0.9)
    response = fit.predict(df, type="response", se_fit=True, interval="confidence", level=0.9)
    q = stats.norm.ppf(0.95)  # Poisson: dispersion known, normal quantiles
    assert_allclose(link["lower"], link["fit"] - q * link["se_fit"], rtol=1e-12)
    assert_allclose(response["lower"], np.exp(link["lower"]), rtol=1e-12)
    assert_allclose(response["upper"], np.exp(link["upper"]), rtol=1e-12)
    assert_allclose(response["se_fit"], response["fit"] * link["se_fit"], rtol=1e-12)  # delta method, dμ/dη = μ
    assert np.all(response["upper"] - response["fit"] > response["fit"] - response["lower"])  # asymmetric, as exp is convex


def test_exposure_moves_the_fit_not_its_link_standard_error(poisson):
    df, fit = poisson
    doubled = df.assign(e=df["e"] * 2)
    a, b = fit.predict(df, type="link", se_fit=True), fit.predict(doubled, type="link", se_fit=True)
    assert_allclose(b["fit"] - a["fit"], np.log(2.0), rtol=1e-12)
    assert_allclose(b["se_fit"], a["se_fit"], rtol=0, atol=0)


def test_training_rows_and_saved_models(poisson):
    df, fit = poisson
    on_new = fit.predict(df, se_fit=True, interval="confidence")
    assert_allclose(fit.predict(se_fit=True, interval="confidence").to_numpy(), on_new.to_numpy(), rtol=1e-12)
    buffer = io.BytesIO()
    fit.save(buffer)  # without the training data
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    assert_allclose(loaded.predict(df, se_fit=True, interval="confidence").to_numpy(), on_new.to_numpy(), rtol=1e-12)
    with pytest.raises(ModelFileError, match="training data"):
        loaded.predict(se_fit=True)
    with pytest.raises(ModelFileError, match="training data"):
        loaded.conf_int(method="profile")
    assert_allclose(loaded.conf_int().to_numpy(), fit.conf_int().to_numpy(), rtol=0, atol=0)


def test_decreasing_inverse_link_keeps_lower_below_upper():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.uniform(1, 2, 50)})
    df["y"] = rng.gamma(5.0, 1.0 / (0.2 + 0.3 * df["x"]) / 5.0)
    table = ng.glm("y ~ x", df, family="gamma").predict(df, se_fit=True, interval="confidence")
    assert np.all(table["lower"] < table["fit"]) and np.all(table["fit"] < table["upper"])


def test_without_se_fit_predict_is_unchanged(poisson):
    df, fit = poisson
    series = fit.predict(df)
    assert isinstance(series, pd.Series) and series.name == "response"
    assert_allclose(series, fit.predict(df, se_fit=True)["fit"], rtol=0, atol=0)


def test_aliased_coefficients_are_left_out():
    """A NaN coefficient (R's NA for an aliased column) drops out of the product, as in R."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(5), rng.normal(size=5), rng.normal(size=5)])
    V = np.array([[0.5, 0.1, np.nan], [0.1, 0.3, np.nan], [np.nan, np.nan, np.nan]])
    coef = np.array([1.0, 2.0, np.nan])
    assert_allclose(link_standard_errors(X, V, coef), link_standard_errors(X[:, :2], V[:2, :2], coef[:2]), rtol=0)
    assert_allclose(linear_predictor(X, coef, np.zeros(5)), X[:, :2] @ coef[:2], rtol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": "prediction"}, "'interval' parameter of predict must be None or 'confidence'"),
        ({"se_fit": True, "level": 1.5}, "'level' parameter must be a float in the range"),
        ({"se_fit": "yes"}, "'se_fit' parameter of predict must be True or False"),
    ],
)
def test_bad_arguments(poisson, kwargs, match):
    df, fit = poisson
    with pytest.raises(SpecificationError, match=match):
        fit.predict(df, **kwargs)


def test_network_refuses_standard_errors():
    df = simulate_glm("poisson", None, 60, 2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short training run may not converge; not the point here
        net = ng.fit("y ~ x1 + x2", df, family="poisson", hidden=(2,), solver="lbfgs", epochs=5, seed=0)
    for kwargs in ({"se_fit": True}, {"interval": "confidence"}):
        with pytest.raises(SpecificationError, match=r"ng\.bootstrap\(fit\).*ng\.conformal\(fit, calibration_data\)"):
            net.predict(df, **kwargs)
    assert isinstance(net.predict(df), pd.Series)


# ---- profile intervals ------------------------------------------------------------------------


def test_gaussian_profile_is_the_normal_wald_interval(gaussian):
    """The Gaussian deviance is quadratic in β, so the profile's ends are β̂ ± z·se exactly (z normal, as MASS)."""
    _, fit = gaussian
    profile = fit.conf_int(0.9, method="profile")
    z = stats.norm.ppf(0.95)
    assert_allclose(profile["lower"], fit.coef - z * fit.std_errors, rtol=1e-7)
    assert_allclose(profile["upper"], fit.coef + z * fit.std_errors, rtol=1e-7)
    assert profile.attrs == {"level": 0.9, "method": "profile"}


def test_intercept_only_poisson_profile_solves_the_deviance_equation():
    """No column is left to refit: D(b) = 2Σ[y log(y/e^b) − (y − e^b)], so the ends satisfy D − D̂ = z²."""
    y = np.array([0, 1, 1, 2, 3, 5, 8], dtype=float)
    fit = ng.glm("y ~ 1", pd.DataFrame({"y": y}), family="poisson")
    ends = fit.conf_int(method="profile").loc["Intercept"]

    def deviance(b):
        mu = np.exp(b)
        return 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - (y - mu))

    minimum = deviance(np.log(y.mean()))
    for end in ends:
        assert deviance(end) - minimum == pytest.approx(stats.norm.ppf(0.975) ** 2, rel=1e-8)
    assert ends["lower"] < np.log(y.mean()) < ends["upper"]


def test_profile_with_frequency_weights_equals_repeated_rows(poisson):
    df, _ = poisson
    small = df.iloc[:20].assign(n=np.arange(20) % 3 + 1)
    repeated = small.loc[small.index.repeat(small["n"])].reset_index(drop=True)
    weighted = ng.glm("y ~ x", small, family="poisson", exposure="e", freq_weights="n").conf_int(method="profile")
    expanded = ng.glm("y ~ x", repeated, family="poisson", exposure="e").conf_int(method="profile")
    assert_allclose(weighted.to_numpy(), expanded.to_numpy(), rtol=1e-7)


def test_profile_that_never_reaches_the_cutoff_is_nan_with_a_warning():
    """A group with only zero counts: its log-rate → −∞ and the deviance stays below the cutoff (R: NA)."""
    df = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6, "y": [0] * 6 + [3, 1, 4, 2, 5, 3]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit itself may say the zero group's estimate is not finite
        fit = ng.glm("y ~ C(g, levels=['b', 'a'])", df, family="poisson")
    with pytest.warns(DataWarning, match="does not reach the cutoff.*lower side"):
        table = fit.conf_int(method="profile")
    row = table.iloc[1]
    assert np.isnan(row["lower"]) and np.isfinite(row["upper"])
    assert np.all(np.isfinite(table.iloc[0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "likelihood"}, "'method' parameter of conf_int must be 'wald' or 'profile'"),
        ({"level": 0, "method": "profile"}, "'level'"),
    ],
)
def test_conf_int_bad_arguments(gaussian, kwargs, match):
    _, fit = gaussian
    with pytest.raises(SpecificationError, match=match):
        fit.conf_int(**kwargs)


def test_profile_without_a_dispersion_is_nan_like_wald():
    """Two rows, two coefficients, Gaussian: nothing estimates φ, so both intervals are NaN (no search is run)."""
    df = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 3.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a guardrail may warn about df_resid = 0; not the point here
        fit = ng.glm("y ~ x", df)
        assert fit.conf_int().isna().all().all()
        assert fit.conf_int(method="profile").isna().all().all()
