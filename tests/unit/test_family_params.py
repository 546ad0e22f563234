"""Estimated family parameters: spellings, the Tweedie series density, the profile power, networks, model files.

The negative binomial's θ is checked against live R in tests/parity/test_glm_nb_vs_r.py; here
the references are independent computations: the compound Poisson–gamma density summed term by
term with scipy, numerical integration, and maxima checked against their neighbours.
"""

from __future__ import annotations

import io
import json
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import integrate

import neuralglm as ng
from helpers import compound_poisson_gamma_logpdf, model_file_entries, resealed_model_file
from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.family import NegativeBinomial, Tweedie
from neuralglm.family.registry import get_family
from neuralglm.family.tweedie_series import tweedie_log_density


# ---- spellings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["tweedie", "Tweedie()"])
def test_tweedie_without_its_power_is_an_error_that_shows_the_spellings(spelling):
    with pytest.raises(SpecificationError, match=r"'tweedie\(1\.5\)'.*'tweedie\(estimate\)'"):
        get_family(spelling) if spelling == "tweedie" else Tweedie()


def test_negative_binomial_without_alpha_estimates_theta_and_with_alpha_fixes_it():
    assert get_family("negative_binomial") == NegativeBinomial() and NegativeBinomial().estimates_parameter
    assert get_family("nb(estimate)").estimates_parameter
    assert get_family("negative_binomial(0.5)").theta == 2.0
    assert get_family("tweedie(estimate)").registry_name == "tweedie(estimate)"
    assert get_family(get_family("negative_binomial").registry_name).estimates_parameter


def test_a_family_whose_parameter_is_not_estimable_refuses_estimate():
    with pytest.raises(SpecificationError, match="takes no parameter"):
        get_family("poisson(estimate)")
    with pytest.raises(SpecificationError, match="not estimated"):
        ng.get_link("power(estimate)")


def test_an_unfitted_estimated_parameter_has_no_value():
    with pytest.raises(SpecificationError, match="to be estimated"):
        NegativeBinomial().variance(2.0)


def test_families_without_estimated_parameters_have_an_empty_frame():
    fit = ng.glm("claims ~ age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    assert fit.family_params.empty and list(fit.family_params.columns) == ["estimate", "std_error"]
    assert "Theta" not in str(fit.summary())


# ---- the Tweedie series density ---------------------------------------------------------------------
def _series(y, mu, phi, p) -> float:
    with jax.enable_x64(True):  # the statistics are float64, as fit_statistics evaluates them
        return float(tweedie_log_density(y, mu, phi, p))


@pytest.mark.parametrize(
    ("y", "mu", "phi", "p"),
    [
        (1.0, 2.0, 1.0, 1.5),
        (0.01, 2.0, 1.0, 1.1),  # many terms near j = 1
        (100.0, 50.0, 0.01, 1.3),  # a peak near j = 20 000: the spaced (trapezoidal) sum
        (1000.0, 800.0, 0.001, 1.7),
        (3.0, 1.0, 5.0, 1.9),
        (0.5, 0.3, 0.2, 1.05),
        (0.0, 4.0, 0.7, 1.6),
    ],
)
def test_series_matches_the_compound_poisson_gamma_sum(y, mu, phi, p):
    ours = _series(y, mu, phi, p)
    # Both are sums of the same terms by different routes; 1e-12 relative of log-densities up to ~600.
    assert ours == pytest.approx(compound_poisson_gamma_logpdf(y, mu, phi, p), rel=1e-11, abs=1e-11)


@pytest.mark.parametrize(("mu", "phi", "p"), [(2.0, 1.0, 1.5), (0.5, 0.3, 1.2), (3.0, 2.0, 1.8)])
def test_series_density_integrates_to_one_with_mean_mu(mu, phi, p):
    def density(y):
        return float(np.exp(_series(y, mu, phi, p)))

    mass = integrate.quad(density, 0.0, np.inf, limit=200)[0] + np.exp(-(mu ** (2 - p)) / (phi * (2 - p)))
    mean = integrate.quad(lambda y: y * density(y), 0.0, np.inf, limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-8) and mean == pytest.approx(mu, rel=1e-8)


def _tweedie_sample(rng, mu, phi, p):
    lam, shape, scale = mu ** (2 - p) / (phi * (2 - p)), (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1)
    counts = rng.poisson(lam)
    return np.array(
        [rng.gamma(k * s, c) if k > 0 else 0.0 for k, s, c in zip(counts, np.broadcast_to(shape, counts.shape), scale, strict=True)]
    )


@pytest.fixture(scope="module")
def tweedie_data():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.uniform(-1, 1, 600)})
    frame["y"] = _tweedie_sample(rng, np.exp(0.8 + 0.6 * frame["x"].to_numpy()), 1.2, 1.4)
    return frame


def test_tweedie_glm_loglik_and_aic_follow_aictweedie(tweedie_data):
    """tweedie::AICtweedie: the series density at φ = deviance / sum(w), and the dispersion counted in AIC."""
    fit = ng.glm("y ~ x", tweedie_data, family="tweedie(1.5)")
    phi = fit.deviance / len(tweedie_data)
    expected = sum(compound_poisson_gamma_logpdf(y, m, phi, 1.5) for y, m in zip(tweedie_data["y"], fit.fitted_mu, strict=True))
    assert fit.loglik == pytest.approx(expected, rel=1e-10)
    assert fit.aic == pytest.approx(-2 * expected + 2 * (fit.rank + 1), rel=1e-10)


def test_tweedie_power_by_profile_likelihood(tweedie_data):
    fit = ng.glm("y ~ x", tweedie_data, family="tweedie(estimate)")
    power, se = fit.family_params.loc["power", ["estimate", "std_error"]]
    assert fit.family == Tweedie(power=power) and 0 < se < 0.2
    assert abs(power - 1.4) < 3 * se  # the simulated power, within the estimate's standard error
    # The estimate is the profile's maximum: its neighbours at ±2 SE have a lower profile likelihood.
    from neuralglm.fit.family_parameter import _max_over_dispersion

    def profile(value):
        neighbour = ng.glm("y ~ x", tweedie_data, family=f"tweedie({value})")
        w = np.ones(len(tweedie_data))
        return _max_over_dispersion(neighbour.family, tweedie_data["y"].to_numpy(), neighbour.fitted_mu, w, w, None)

    best = profile(power)
    assert best > profile(power - 2 * se) and best > profile(power + 2 * se)
    # ... and the profile drops by about 2 (= (2 SE)² / (2 SE²)) there, the curvature the SE is read from.
    assert best - profile(power + 2 * se) == pytest.approx(2.0, rel=0.2)
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * (fit.rank + 2), rel=1e-12)  # dispersion and power counted
    assert "Power:" in str(fit.summary())


# ---- networks ---------------------------------------------------------------------------------------
def test_network_estimates_theta_jointly_with_the_weights():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.uniform(-2, 2, 1500), "z": rng.normal(size=1500)})
    mu = np.exp(1 + np.sin(2 * frame["x"]) + 0.3 * frame["z"])
    frame["y"] = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    net = ng.fit("y ~ x + z", frame, family="negative_binomial", hidden=(8,), activation="tanh", l2=1.0, solver="lbfgs", dtype="float64")
    theta, se = net.family_params.loc["theta", ["estimate", "std_error"]]
    assert abs(theta - 2.0) < 3 * se and net.family == NegativeBinomial(alpha=1 / theta)
    # θ̂ maximizes the likelihood at the network's means (theta.ml there returns it, to the stopping rule).
    from neuralglm.fit.nb_theta import theta_ml

    assert theta_ml(frame["y"].to_numpy(), net.fitted_mu, np.ones(len(frame))).theta == pytest.approx(theta, abs=1e-3 * se)
    assert net.aic == pytest.approx(-2 * net.loglik + 2 * (net.n_params + 1), rel=1e-12)
    buffer = io.BytesIO()
    net.save(buffer)
    pd.testing.assert_frame_equal(ng.load(io.BytesIO(buffer.getvalue())).family_params, net.family_params)


def test_network_refuses_a_profiled_power():
    frame = pd.DataFrame({"x": np.linspace(0, 1, 40), "y": np.linspace(0, 2, 40)})
    with pytest.raises(SpecificationError, match="profile likelihood, for GLMs only"):
        ng.fit("y ~ x", frame, family="tweedie(estimate)", hidden=(2,), solver="lbfgs")


# ---- model files --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb_file():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    mu = np.exp(1 + 0.5 * frame["x"])
    frame["y"] = rng.negative_binomial(1.5, 1.5 / (1.5 + mu)).astype(float)
    buffer = io.BytesIO()
    ng.glm("y ~ x", frame, family="negative_binomial").save(buffer)
    return model_file_entries(buffer.getvalue())


def _load_edited(nb_file, edit):
    spec, arrays = nb_file
    spec = json.loads(json.dumps(spec))
    edit(spec["result"])
    return ng.load(resealed_model_file(spec, arrays))


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r.update(family="negative_binomial"),  # a request for an estimate, not an estimate
        lambda r: r["family_params"][0].__setitem__(1, r["family_params"][0][1] * 2),  # θ that is not the family's
        lambda r: r["family_params"][0].__setitem__(0, "power"),  # a parameter the family does not have
        lambda r: r.update(family_params=[["theta", "1.0", 0.1]]),
        lambda r: r.update(family_params=[["theta", 1.0, 0.1], ["theta", 1.0, 0.1]]),
        lambda r: r.update(family_params={"theta": 1.0}),
    ],
)
def test_model_files_refuse_inconsistent_estimates(nb_file, edit):
    with pytest.raises(ModelFileError):
        _load_edited(nb_file, edit)


def test_a_file_without_estimates_loads_with_an_empty_frame(nb_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = _load_edited(nb_file, lambda r: r.pop("family_params"))
    assert loaded.family_params.empty


def test_refit_estimates_theta_again(nb_file):
    """fit.refit replays the call: family='negative_binomial' re-estimates θ on the new rows (not the old θ̂)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    frame["y"] = rng.negative_binomial(1.5, 1.5 / (1.5 + np.exp(1 + 0.5 * frame["x"]))).astype(float)
    fit = ng.glm("y ~ x", frame, family="negative_binomial")
    half = frame.iloc[:150]
    refit = fit.refit(half)
    direct = ng.glm("y ~ x", half, family="negative_binomial")
    pd.testing.assert_frame_equal(refit.family_params, direct.family_params)
    assert refit.family_params.loc["theta", "estimate"] != fit.family_params.loc["theta", "estimate"]
