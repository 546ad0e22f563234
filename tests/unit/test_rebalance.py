"""fit.rebalance() and fit.balance: Σ fitted = Σ observed for canonical links with an intercept.

The reference is the intercept's score equation Σ wᵢ(yᵢ − μᵢ) = 0 of a GLM with a canonical link,
checked on the sums themselves, and ng.glm's own refit of the output layer (output_glm).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning

FORMULA = "ClaimNb ~ DrivAge + BonusMalus + C(Area) + VehGas"


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ng.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def df():
    return ng.datasets.simulate_motor(700, seed=4)


def _sums(fit):
    weights = fit.design.total_weights
    return float(np.sum(weights * fit.fitted_mu)), float(np.sum(weights * fit.design.y))


@pytest.mark.parametrize("kind", ["network", "cann", "localglmnet", "additive"])
def test_rebalanced_fits_predict_the_observed_total(df, kind):
    # l2=30 and 10 iterations: a fit visibly off balance before.
    fit = quiet_fit(FORMULA, df, family="poisson", exposure="Exposure", hidden=(3,), epochs=10, l2=30.0, architecture=kind)
    balanced = fit.rebalance()
    predicted, observed = _sums(balanced)
    assert abs(predicted / observed - 1.0) < 1e-8 and abs(balanced.balance - 1.0) < 1e-8
    # The hidden layers are kept: only the output layer changed.
    assert balanced.architecture == fit.architecture
    assert balanced.deviance <= fit.deviance + 1e-8  # the output layer is now the unpenalized MLE on the same features
    assert "Balance (Σ fitted / Σ observed, training rows): 1.000000" in str(balanced.summary())


def test_rebalance_of_a_plain_network_is_its_output_glm(df):
    fit = quiet_fit(FORMULA, df, family="poisson", exposure="Exposure", hidden=(3,), epochs=10, l2=30.0)
    balanced = fit.rebalance()
    np.testing.assert_allclose(balanced.fitted_mu, fit.output_glm().fitted_mu, rtol=1e-7)
    np.testing.assert_allclose(balanced.predict(df.head(20)), balanced.fitted_mu[:20], rtol=1e-10)


def test_rebalance_with_weights_and_binomial_trials():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    trials = rng.integers(1, 6, size=300)
    frame = pd.DataFrame({"x": x, "k": rng.binomial(trials, 1 / (1 + np.exp(-x))), "n": trials})
    frame["share"] = frame["k"] / frame["n"]
    fit = quiet_fit("share ~ x", frame, family="binomial", weights=frame["n"].to_numpy(float), hidden=(2,), epochs=5, l2=20.0)
    balanced = fit.rebalance()
    assert abs(np.sum(frame["n"] * balanced.fitted_mu) - frame["k"].sum()) < 1e-6 * frame["k"].sum()


def test_glms_report_their_balance():
    fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    assert abs(fit.balance - 1.0) < 1e-10
    assert "Balance (Σ fitted / Σ observed, training rows): 1.000000" in str(fit.summary())
    gamma = ng.glm("holders ~ age", ng.datasets.load_insurance(), family="gamma", link="log")
    assert np.isfinite(gamma.balance)  # a non-canonical link: reported, not forced to 1


def test_the_balance_is_kept_in_model_files(tmp_path, df):
    fit = quiet_fit(FORMULA, df, family="poisson", exposure="Exposure", hidden=(3,), epochs=10, l2=30.0)
    fit.save(tmp_path / "m.npz")  # without the training data: the balance is a stored statistic
    loaded = ng.load(tmp_path / "m.npz")
    assert loaded.balance == fit.balance and abs(fit.balance - 1.0) > 1e-6
