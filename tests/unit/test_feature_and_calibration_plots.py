"""``plots.feature_curves`` and ``plots.calibration_comparison``: the drawn points against their definitions, computed here."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm import plots
from neuralglm.errors import SpecificationError

CLAIMS = "claims ~ C(district) + group + age"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def claims():
    return ng.datasets.load_insurance()


@pytest.fixture(scope="module")
def net_and_data():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.uniform(-2, 2, 300), "g": rng.choice(["a", "b", "c"], 300)})
    df["y"] = np.abs(df.x) + (df.g == "b") + 0.3 * rng.normal(size=300)
    net = ng.fit("y ~ x + g", df, hidden=(3,), activation="tanh", solver="lbfgs", epochs=5000, seed=0)
    return net, df


def _drawn(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


def test_feature_curves_are_the_hidden_units_over_the_input(net_and_data):
    net, df = net_and_data
    ax = plots.feature_curves(net, df, "x")
    lines = _drawn(ax, "feature")
    assert len(lines) == 3
    x = lines[0].get_xdata()
    assert x.min() == df.x.min() and x.max() == df.x.max()
    mode = df.g.mode().iloc[0]  # g is held at its most frequent level
    grid = pd.DataFrame({"x": x, "g": mode})
    # h_j = tanh(hidden weights · standardized inputs + bias): compare with the network's own forward pass
    assert_allclose(np.column_stack([line.get_ydata() for line in lines]), net.features(grid).to_numpy(), rtol=1e-12)
    assert all(np.all(np.abs(line.get_ydata()) < 1) for line in lines)  # tanh units
    assert f"held at: g={mode}" in " ".join(text.get_text() for text in ax.texts)


def test_scaled_feature_curves_add_up_to_the_linear_predictor(net_and_data):
    net, df = net_and_data
    ax = plots.feature_curves(net, df, "x", scaled=True)
    contributions = np.sum([line.get_ydata() for line in _drawn(ax, "feature")], axis=0)
    (eta,) = _drawn(ax, "linear_predictor")
    # The output layer is a GLM on the features: η = intercept + Σ β_j h_j (no offset here).
    assert_allclose(net.coef["Intercept"] + contributions, eta.get_ydata(), rtol=1e-10, atol=1e-12)
    grid = pd.DataFrame({"x": eta.get_xdata(), "g": df.g.mode().iloc[0]})
    assert_allclose(eta.get_ydata(), net.predict(grid, type="link").to_numpy(), rtol=1e-12)


def test_feature_curves_over_a_categorical_input_are_points_at_its_levels(net_and_data):
    net, df = net_and_data
    ax = plots.feature_curves(net, df, "g")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["a", "b", "c"]
    assert all(line.get_marker() == "o" and len(line.get_xdata()) == 3 for line in _drawn(ax, "feature"))


def test_feature_curves_refuses_what_has_no_learned_features(claims, net_and_data):
    net, df = net_and_data
    with pytest.raises(SpecificationError, match="a GLM's features are its inputs"):
        plots.feature_curves(ng.glm("claims ~ age", claims, family="poisson"), claims, "age")
    flat = ng.fit("y ~ x", df, hidden=(), solver="lbfgs", seed=0)
    with pytest.raises(SpecificationError, match="has no hidden layer"):
        plots.feature_curves(flat, df, "x")
    with pytest.raises(SpecificationError, match="'z' is not an input"):
        plots.feature_curves(net, df.assign(z=1.0), "z")


def test_calibration_comparison_points_are_exposure_weighted_bins(claims):
    glm = ng.glm(CLAIMS, claims, family="poisson", exposure="holders")
    small = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    ax = plots.calibration_comparison({"full": glm, "age": small}, bins=4)
    lines = _drawn(ax, "calibration")
    assert [line.get_label() for line in lines] == ["full", "age"]
    # By hand: cells sorted by predicted rate, cut where the cumulative exposure crosses quarters (at each cell's middle).
    rate = glm.predict().to_numpy() / claims.holders.to_numpy()
    order = np.argsort(rate, kind="stable")
    exposure = claims.holders.to_numpy()[order]
    quarter = np.minimum(((np.cumsum(exposure) - exposure / 2) / exposure.sum() * 4).astype(int), 3)
    mu, y = glm.predict().to_numpy()[order], claims.claims.to_numpy()[order]
    predicted = [mu[quarter == q].sum() / exposure[quarter == q].sum() for q in range(4)]
    observed = [y[quarter == q].sum() / exposure[quarter == q].sum() for q in range(4)]
    assert_allclose(lines[0].get_xdata(), predicted, rtol=1e-12)
    assert_allclose(lines[0].get_ydata(), observed, rtol=1e-12)
    # A Poisson GLM with its canonical link and an intercept fits the total: Σ e (observed − predicted) = 0 over bins.
    totals = [exposure[quarter == q].sum() for q in range(4)]
    assert_allclose(np.dot(totals, lines[0].get_ydata() - lines[0].get_xdata()), 0.0, atol=1e-8 * claims.claims.sum())


def test_calibration_comparison_on_new_data_and_bad_input(claims):
    test = np.arange(len(claims)) % 5 == 0  # every level of district, group and age stays in training
    glm = ng.glm(CLAIMS, claims[~test], family="poisson", exposure="holders")
    ax = plots.calibration_comparison({"GLM": glm}, claims[test], bins=4)
    assert ax.get_ylabel() == "Observed claims per holders" and len(_drawn(ax, "calibration")[0].get_xdata()) == 4
    with pytest.raises(SpecificationError, match="at least one fit"):
        plots.calibration_comparison({})
    with pytest.raises(SpecificationError, match="'bins' parameter of calibration_comparison must be an integer ≥ 2"):
        plots.calibration_comparison({"GLM": glm}, bins=1)
