"""The defaults chosen on benchmarks/defaults.py's grid: l2="auto", tanh, early stopping when 'auto' picks Adam."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm import network
from neuralglm.data.design import make_design
from neuralglm.family.registry import get_family, get_link


def frame(n_obs: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.uniform(-2, 2, n_obs), "x2": rng.uniform(-2, 2, n_obs), "e": rng.uniform(0.5, 2, n_obs)})
    signal = np.sin(1.5 * df.x1) + 0.3 * df.x2
    df["y"] = 5.0 + 2.0 * signal + rng.normal(size=n_obs)
    df["count"] = rng.poisson(df.e * np.exp(signal))
    df["positive"] = rng.gamma(2.0, np.exp(signal) / 2.0)
    return df


def auto_l2(df: pd.DataFrame, formula: str, family: str, **data) -> float:
    family_obj = get_family(family)
    link = get_link(None if family != "gamma" else "log", family_obj)
    return network.default_l2(network.null_dispersion(make_design(formula, df, family_obj, **data), family_obj, link))


def test_auto_l2_is_ten_times_the_root_of_the_null_dispersion():
    df = frame()
    # Gaussian: φ₀ = Σ(y − ȳ)² / (n − 1), the sample variance (NumPy, independently).
    assert auto_l2(df, "y ~ x1 + x2", "gaussian") == pytest.approx(10.0 * np.sqrt(np.var(df.y, ddof=1)), rel=1e-12)
    # Fixed dispersion: 10, whatever the data and the exposure.
    assert auto_l2(df, "count ~ x1 + x2", "poisson", exposure="e") == 10.0
    # Gamma, log link: the null mean is the sample mean; Pearson φ₀ = Σ((y − m)/m)² / (n − 1).
    m = df.positive.mean()
    phi0 = np.sum(((df.positive - m) / m) ** 2) / (len(df) - 1)
    assert auto_l2(df, "positive ~ x1 + x2", "gamma") == pytest.approx(10.0 * np.sqrt(phi0), rel=1e-10)


def test_auto_l2_follows_the_unit_of_a_gaussian_response():
    # y → c·y scales φ₀ by c² and the penalty by c: the balance that leaves a ReLU fit unit-free.
    df = frame()
    base = auto_l2(df, "y ~ x1 + x2", "gaussian")
    for c in (1e-3, 250.0):
        assert auto_l2(df.assign(y=c * df.y), "y ~ x1 + x2", "gaussian") == pytest.approx(c * base, rel=1e-10)


def test_defaults_fit_a_penalized_tanh_network_and_record_the_resolved_l2():
    df = frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults must not warn
        net = ng.fit("y ~ x1 + x2", df, hidden=(4,))
    assert net.architecture.activations == ("tanh",)
    assert net.control.l2 == pytest.approx(auto_l2(df, "y ~ x1 + x2", "gaussian"), rel=1e-12)
    assert net.info.solver == "lbfgs" and not net.control.early_stopping
    # Explicit settings are kept as given.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 iterations: only the settings matter here
        explicit = ng.fit("y ~ x1 + x2", df, hidden=(4,), l2=0.0, activation="relu", solver="lbfgs", epochs=20)
    assert explicit.control.l2 == 0.0 and explicit.architecture.activations == ("relu",)


def test_zero_hidden_layers_stay_the_glm_with_auto_l2():
    df = frame()
    fit = ng.fit("count ~ x1 + x2", df, family="poisson", exposure="e")
    glm = ng.glm("count ~ x1 + x2", df, family="poisson", exposure="e")
    assert isinstance(fit, ng.FitResult) and fit.info.solver == "irls"
    np.testing.assert_array_equal(fit.coef.to_numpy(), glm.coef.to_numpy())
    # hidden=() with l2 'auto' is unpenalized, so solver='irls' accepts it.
    assert isinstance(ng.fit("count ~ x1 + x2", df, family="poisson", exposure="e", solver="irls"), ng.FitResult)


def test_early_stopping_is_on_when_auto_picks_adam(monkeypatch):
    df = frame(400)
    monkeypatch.setattr(network, "LBFGS_MAX_ROWS", 100)  # so that 'auto' picks Adam for 400 rows
    # 400 rows make 2 minibatches an epoch: a larger step than the default 1e-3 stops within the budget.
    net = ng.fit("y ~ x1 + x2", df, hidden=(4,), learning_rate=0.05, epochs=300)
    assert net.info.solver == "adam" and net.control.early_stopping
    assert net.info.status.name == "EARLY_STOPPED" and len(net.validation_rows) == 40
    # An explicit minibatch solver keeps its old default: no early stopping unless asked.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 epochs: only the settings matter here
        adam = ng.fit("y ~ x1 + x2", df, hidden=(4,), solver="adam", epochs=3, learning_rate=0.05)
    assert not adam.control.early_stopping and len(adam.validation_rows) == 0


def test_auto_trains_a_100k_row_network_to_its_penalized_optimum():
    # benchmarks/README.md "Defaults": at 100k rows, L-BFGS to the optimum of the l2="auto" objective
    # generalized better than Adam with early stopping (threshold gap 86-88 % against 74-81 %; linear
    # excess over the GLM 0.08-0.40 ‰ against 0.72-2.09 ‰), so 'auto' no longer switches at 50k rows.
    from neuralglm.model.architecture import Architecture

    net = Architecture((16,), "tanh")
    n_params = net.n_params(4, True)
    assert n_params == 97
    for n_obs in (50_001, 100_000, 1_000_000):
        assert network._choose_solver("auto", net, n_obs, n_params, 10.0, None) == "lbfgs"
    # Beyond the work limit (rows × parameters) Adam, which then stops early on held-out deviance.
    assert network._choose_solver("auto", net, 2_000_000, n_params, 10.0, None) == "adam"
    assert network._choose_solver("auto", Architecture((64, 64), "tanh"), 50_000, 4_929, 10.0, None) == "adam"
