"""ng.effects against independent references: closed forms, scikit-learn's inspection tools, hand-written loops."""

from __future__ import annotations

from itertools import combinations, pairwise

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import partial_dependence as sk_partial_dependence
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.metrics import mean_poisson_deviance

import neuralglm as ng
from neuralglm.errors import DataError, SpecificationError


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Correlated inputs (x2 follows x1), a factor, integer prior weights and exposures in (0, 1]."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-1.0, 1.0, n)
    x2 = 0.6 * x1 + rng.normal(0.0, 0.5, n)
    g = pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["a", "b", "c"])
    frame = pd.DataFrame({"x1": x1, "x2": x2, "g": g, "w": rng.integers(1, 4, n).astype(float), "e": rng.uniform(0.1, 1.0, n)})
    effect = np.array([0.0, 0.4, -0.3])[frame["g"].cat.codes.to_numpy()]
    frame["y"] = 1.0 + 2.0 * x1 - x2 + effect + rng.normal(0.0, 0.3, n)
    frame["claims"] = rng.poisson(frame["e"] * np.exp(-1.5 + 0.8 * x1 + 0.5 * x1 * x2 + effect))
    return frame


class _Predictor(RegressorMixin, BaseEstimator):
    """scikit-learn's view of a fitted model: predict = its rate per unit of exposure (column ``e``), or its mean."""

    def __init__(self, model=None, per_exposure: bool = True):
        self.model = model
        self.per_exposure = per_exposure

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X):
        mu = self.model.predict(X).to_numpy()
        return mu / X["e"].to_numpy() if self.per_exposure else mu


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def poisson_fit(frame):
    return ng.glm("claims ~ x1 + x2 + g", frame, family="poisson", exposure="e", weights="w")


# ---- partial dependence and ICE --------------------------------------------------------------
def test_pd_of_identity_glm_is_the_closed_form(frame):
    fit = ng.glm("y ~ x1 + x2 + g", frame, weights="w")
    grid = np.array([-0.9, -0.2, 0.0, 0.5, 1.3])
    table = ng.effects.partial_dependence(fit, frame, "x1", grid=grid)
    b, w = fit.coef, frame["w"].to_numpy()
    others = b["Intercept"] + b["x2"] * frame["x2"] + frame["g"].map({"a": 0.0, "b": b["g[T.b]"], "c": b["g[T.c]"]}).astype(float)
    constant = float(np.sum(w * others) / w.sum())  # weighted by the prior weights
    np.testing.assert_allclose(table["estimate"], b["x1"] * grid + constant, rtol=0, atol=1e-10)
    assert table["value"].tolist() == grid.tolist() and set(table["variable"]) == {"x1"}
    link = ng.effects.partial_dependence(fit, frame, "x1", grid=grid, scale="link")
    np.testing.assert_allclose(link["estimate"], table["estimate"], atol=1e-12)  # identity link: the same


def test_pd_of_poisson_glm_is_a_rate_per_unit_of_exposure(frame, poisson_fit):
    b, w, e = poisson_fit.coef, frame["w"].to_numpy(), frame["e"].to_numpy()
    levels = ng.effects.partial_dependence(poisson_fit, frame, "g")
    assert levels["value"].tolist() == ["a", "b", "c"]
    rest = np.exp(b["Intercept"] + b["x1"] * frame["x1"] + b["x2"] * frame["x2"]).to_numpy()
    # Σ w μ_i(level) / Σ w e: the exposure multiplies each row's rate, so it weighs the average.
    expected = [np.sum(w * e * rest * np.exp(shift)) / np.sum(w * e) for shift in (0.0, b["g[T.b]"], b["g[T.c]"])]
    np.testing.assert_allclose(levels["estimate"], expected, rtol=1e-12)
    link = ng.effects.partial_dependence(poisson_fit, frame, "g", scale="link")
    np.testing.assert_allclose(np.diff(link["estimate"]), np.diff([0.0, b["g[T.b]"], b["g[T.c]"]]), atol=1e-12)


def test_integer_prior_weights_count_as_repeated_rows(frame, poisson_fit):
    repeated = frame.loc[frame.index.repeat(frame["w"].astype(int))].assign(w=1.0)
    weighted = ng.effects.partial_dependence(poisson_fit, frame, "x1", grid_size=7)
    expanded = ng.effects.partial_dependence(poisson_fit, repeated, "x1", grid_size=7)
    np.testing.assert_allclose(weighted["estimate"], expanded["estimate"], rtol=1e-12)


def _sklearn_pd(model, frame, variable, weights):
    return sk_partial_dependence(
        _Predictor(model).fit(frame), frame, [variable], sample_weight=weights, kind="both", grid_resolution=15, method="brute"
    )


def test_pd_and_ice_match_scikit_learn(frame, poisson_fit):
    inputs = frame[["x1", "x2", "g", "e", "w"]]
    weights = (frame["w"] * frame["e"]).to_numpy()
    reference = _sklearn_pd(poisson_fit, inputs, "x1", weights)
    grid = reference["grid_values"][0]
    ours = ng.effects.partial_dependence(poisson_fit, inputs, "x1", grid=grid)
    np.testing.assert_allclose(ours["estimate"], reference["average"][0], rtol=1e-10)
    curves = ng.effects.ice(poisson_fit, inputs, "x1", grid=grid)
    wide = curves.pivot(index="row", columns="value", values="estimate").loc[inputs.index, grid]
    np.testing.assert_allclose(wide.to_numpy(), reference["individual"][0], rtol=1e-10)
    # The ICE curves' weighted average is the partial dependence.
    averaged = curves.assign(p=curves["estimate"] * curves["weight"]).groupby("value")[["p", "weight"]].sum()
    np.testing.assert_allclose((averaged["p"] / averaged["weight"]).loc[grid], ours["estimate"], rtol=1e-12)


def test_network_pd_matches_scikit_learn(frame):
    net = ng.fit("claims ~ x1 + x2", frame, family="poisson", exposure="e", hidden=(4,), epochs=200, seed=0)
    inputs = frame[["x1", "x2", "e"]]
    reference = _sklearn_pd(net, inputs, "x2", frame["e"].to_numpy())
    ours = ng.effects.partial_dependence(net, inputs, "x2", grid=reference["grid_values"][0])
    np.testing.assert_allclose(ours["estimate"], reference["average"][0], rtol=1e-6)


def test_centered_ice_of_a_glm_is_one_curve_on_the_link_scale(frame, poisson_fit):
    curves = ng.effects.ice(poisson_fit, frame, "x1", scale="link", centered=True, grid_size=5, sample=50, seed=1)
    assert curves["row"].nunique() == 50
    spread = curves.groupby("value")["estimate"].agg(["min", "max"])
    np.testing.assert_allclose(spread["max"] - spread["min"], 0.0, atol=1e-12)
    np.testing.assert_allclose(spread["max"], poisson_fit.coef["x1"] * (spread.index - spread.index[0]), atol=1e-12)


def test_pd_bands_from_the_bootstrap_follow_the_replicates(frame):
    fit = ng.glm("y ~ x1 + x2 + g", frame, weights="w")
    boot = ng.bootstrap(fit, n_boot=40, seed=0)
    grid = np.array([-0.5, 0.0, 0.5])
    table = ng.effects.partial_dependence(fit, frame, "x1", grid=grid, bootstrap=boot, level=0.9)
    # Independently: each replicate's coefficients give its own closed-form partial dependence.
    coef = boot.replicates
    w = frame["w"].to_numpy()
    g = frame["g"].astype(str).to_numpy()
    mean_x2 = np.sum(w * frame["x2"]) / w.sum()
    share = {level: np.sum(w * (g == level)) / w.sum() for level in ("b", "c")}
    const = coef["Intercept"] + coef["x2"] * mean_x2 + coef["g[T.b]"] * share["b"] + coef["g[T.c]"] * share["c"]
    replicates = np.outer(coef["x1"], grid) + const.to_numpy()[:, None]
    np.testing.assert_allclose(table["se"], replicates.std(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(table["lower"], np.quantile(replicates, 0.05, axis=0), rtol=1e-9)
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()
    assert table.attrs["level"] == 0.9


# ---- ALE ----------------------------------------------------------------------------------------
def test_ale_of_an_additive_model_recovers_its_shape(frame):
    fit = ng.glm("claims ~ x1 + I(x1**2) + x2 + g", frame, family="poisson", exposure="e", weights="w")
    table = ng.effects.ale(fit, frame, "x1", bins=12)  # link scale: the model is additive there
    b, z = fit.coef, table["value"].to_numpy()
    shape = b["x1"] * z + b["I(x1 ** 2)"] * z**2
    np.testing.assert_allclose(table["estimate"] - table["estimate"].iloc[0], shape - shape[0], atol=1e-10)
    assert z[0] == frame["x1"].min() and z[-1] == frame["x1"].max()
    # Centred: the weighted mean over rows, each interval at the mean of its two ends, is 0.
    mid = (table["estimate"].to_numpy()[:-1] + table["estimate"].to_numpy()[1:]) / 2
    assert abs(np.sum(mid * table["weight"].to_numpy()[1:])) < 1e-9
    np.testing.assert_allclose(table["weight"].sum(), np.sum(frame["w"] * frame["e"]))
    levels = ng.effects.ale(fit, frame, "g")
    np.testing.assert_allclose(np.diff(levels["estimate"]), np.diff([0.0, b["g[T.b]"], b["g[T.c]"]]), atol=1e-12)


def test_ale_bands_and_errors(frame, poisson_fit):
    boot = ng.bootstrap(poisson_fit, n_boot=20, seed=0)
    table = ng.effects.ale(poisson_fit, frame, "x2", bins=5, bootstrap=boot)
    assert {"se", "lower", "upper"} <= set(table.columns) and (table["upper"] >= table["lower"]).all()
    with pytest.raises(SpecificationError, match="same fit"):
        ng.effects.ale(ng.glm("y ~ x1", frame), frame, "x1", bootstrap=boot)


# ---- interactions ----------------------------------------------------------------------------------
def _h_by_loops(fit, frame, first, second):
    """Friedman's H² from its definition, one prediction at a time (link scale, weights w·e)."""
    w = (frame["w"] * frame["e"]).to_numpy()
    eta = lambda rows: fit.predict(rows, type="link").to_numpy() - np.log(rows["e"].to_numpy())  # noqa: E731

    def pd_at(names):
        values = []
        for i in range(len(frame)):
            rows = frame.copy()
            for name in names:
                rows[name] = frame[name].iloc[i]
            values.append(np.sum(w * eta(rows)) / w.sum())
        values = np.array(values)
        return values - np.sum(w * values) / w.sum()

    joint, one, two = pd_at([first, second]), pd_at([first]), pd_at([second])
    return np.sum(w * (joint - one - two) ** 2) / np.sum(w * joint**2)


def test_h_statistic_is_zero_for_an_additive_glm_and_matches_its_definition(frame, poisson_fit):
    additive = ng.effects.h_statistic(poisson_fit, frame, sample=None)
    assert len(additive) == 3 and (additive["h"] < 1e-6).all()
    interacting = ng.glm("claims ~ x1 * x2 + g", frame, family="poisson", exposure="e", weights="w")
    table = ng.effects.h_statistic(interacting, frame, ["x1", "x2", "g"], sample=25, seed=3)
    pair = table.set_index(["variable_1", "variable_2"]).loc[("x1", "x2")]
    assert pair["h"] > 0.05
    small = frame.iloc[np.sort(np.random.default_rng(3).choice(len(frame), 25, replace=False))]
    assert pair["h_squared"] == pytest.approx(_h_by_loops(interacting, small, "x1", "x2"), rel=1e-9)
    assert (table.set_index(["variable_1", "variable_2"]).drop(index=("x1", "x2"))["h"] < 1e-6).all()


def test_h_on_the_response_scale_sees_the_log_links_product(frame, poisson_fit):
    table = ng.effects.h_statistic(poisson_fit, frame, ["x1", "g"], scale="response", sample=60)
    assert table["h"].iloc[0] > 1e-3


# ---- permutation importance --------------------------------------------------------------------
def test_permutation_importance_matches_scikit_learn(frame, poisson_fit):
    inputs = frame[["x1", "x2", "g", "e", "w"]]
    ours = ng.effects.permutation_importance(poisson_fit, frame, n_repeats=40, seed=0)
    assert ours.index.tolist()[0] == "x1" and ours["baseline"].iloc[0] == pytest.approx(poisson_fit.deviance, rel=1e-9)

    def minus_deviance(estimator, X, y):  # scikit-learn's own Poisson deviance, weighted by the prior weights
        return -mean_poisson_deviance(y, estimator.predict(X), sample_weight=X["w"]) * X["w"].sum()

    reference = sk_permutation_importance(
        _Predictor(poisson_fit, per_exposure=False).fit(inputs),
        inputs,
        frame["claims"],
        scoring=minus_deviance,
        n_repeats=40,
        random_state=0,
    )
    for j, name in enumerate(inputs.columns[:3]):
        sk_mean, sk_se = reference["importances_mean"][j], reference["importances_std"][j] / np.sqrt(40 - 1)
        assert abs(ours.loc[name, "importance"] - sk_mean) < 4 * np.hypot(ours.loc[name, "se"], sk_se) + 1e-9, name


def test_permutation_importance_of_a_linear_model_has_its_expected_value(frame):
    # E[increase] = 2 β² Σ(x − x̄)² for a Gaussian identity GLM with an intercept (residuals ⟂ x, Σr = 0).
    fit = ng.glm("y ~ x1 + x2", frame)
    table = ng.effects.permutation_importance(fit, frame, ["x1", "g"], n_repeats=200, seed=1)
    x = frame["x1"].to_numpy()
    expected = 2 * fit.coef["x1"] ** 2 * np.sum((x - x.mean()) ** 2)
    assert abs(table.loc["x1", "importance"] - expected) < 4 * table.loc["x1", "se"]
    assert table.loc["g", "importance"] == 0.0 and table.loc["g", "se"] == 0.0  # not in the model


# ---- lift, double lift, Gini, calibration ---------------------------------------------------------
def _gini_by_hand(y, mu, exposure):
    """Sort by predicted rate, walk the ordered Lorenz curve step by step (ties as one step), 1 − 2 × trapezoid area."""
    rate = mu / exposure
    points, x, y_cum = [(0.0, 0.0)], 0.0, 0.0
    for value in sorted(set(rate)):
        tied = rate == value
        x += exposure[tied].sum() / exposure.sum()
        y_cum += y[tied].sum() / y.sum()
        points.append((x, y_cum))
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))
    return 1 - 2 * area


def test_gini_matches_a_hand_sorted_lorenz_curve(frame):
    fit = ng.glm("claims ~ x1 + g", frame, family="poisson", exposure="e")
    by_hand = _gini_by_hand(frame["claims"].to_numpy(float), fit.predict().to_numpy(), frame["e"].to_numpy())
    table = ng.effects.gini({"GLM": fit, "intercept": ng.glm("claims ~ 1", frame, family="poisson", exposure="e")})
    assert table.loc["GLM", "gini"] == pytest.approx(by_hand, rel=1e-12) and by_hand > 0.05
    assert table.loc["intercept", "gini"] == pytest.approx(0.0, abs=1e-12)  # one tied step: the diagonal
    curve = ng.effects.lorenz_curve(fit)
    assert curve["exposure_share"].is_monotonic_increasing and curve["loss_share"].is_monotonic_increasing


def test_double_lift_bins_sum_to_the_totals(frame, poisson_fit):
    other = ng.glm("claims ~ x1", frame, family="poisson", exposure="e", weights="w")
    table = ng.effects.double_lift(poisson_fit, other, frame, bins=5, names=("full", "x1 only"))
    w, e = frame["w"].to_numpy(), frame["e"].to_numpy()
    assert len(table) == 5 and table.attrs["names"] == ("full", "x1 only")
    np.testing.assert_allclose(table["exposure"].sum(), np.sum(w * e))
    np.testing.assert_allclose((table["exposure"] * table["observed"]).sum(), np.sum(w * frame["claims"]))
    np.testing.assert_allclose((table["exposure"] * table["predicted_a"]).sum(), np.sum(w * poisson_fit.predict(frame)))
    np.testing.assert_allclose((table["exposure"] * table["predicted_b"]).sum(), np.sum(w * other.predict(frame)))
    assert table["ratio"].is_monotonic_increasing
    assert table["exposure"].max() < 1.2 * table["exposure"].min() + e.max() * 3  # equal exposure, up to one row
    with pytest.raises(DataError, match="same rows"):
        ng.effects.double_lift(poisson_fit, ng.glm("claims ~ x1", frame.iloc[:100], family="poisson", exposure="e"))


def test_lift_and_calibration_tables_agree_with_the_calibration_plot(frame, poisson_fit):
    from neuralglm.plots._calibration import calibration_points

    table = ng.effects.calibration_table({"GLM": poisson_fit}, frame, bins=8)
    predicted, observed = calibration_points(poisson_fit, frame, bins=8)
    np.testing.assert_allclose(table["predicted"], predicted, rtol=1e-12)
    np.testing.assert_allclose(table["observed"], observed, rtol=1e-12)
    lift = ng.effects.lift(poisson_fit, frame, bins=8)
    overall = np.sum(frame["w"] * frame["claims"]) / np.sum(frame["w"] * frame["e"])
    np.testing.assert_allclose(lift["lift"], lift["observed"] / overall)
    assert lift["predicted"].is_monotonic_increasing


# ---- errors and plots -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda fit, df: ng.effects.partial_dependence(fit, df, "x1", scale="log"), SpecificationError, "'scale' parameter"),
        (lambda fit, df: ng.effects.partial_dependence(fit, df, "nope"), DataError, "'variable' parameter"),
        (lambda fit, df: ng.effects.ice(fit, df, "e"), SpecificationError, "exposure or weights"),
        (lambda fit, df: ng.effects.lift(fit, df, bins=1), SpecificationError, "'bins' parameter of lift"),
        (lambda fit, df: ng.effects.permutation_importance(fit, df, n_repeats=1), SpecificationError, "n_repeats"),
        (lambda fit, df: ng.effects.partial_dependence(fit, df.drop(columns="e"), "x1"), DataError, "'e'"),
        (lambda fit, df: ng.effects.partial_dependence(fit, None, "x1"), SpecificationError, "pass data"),
    ],
)
def test_bad_arguments_are_named(frame, poisson_fit, call, error, match):
    with pytest.raises(error, match=match):
        call(poisson_fit, frame)


def test_effects_do_not_mutate_the_data(frame, poisson_fit):
    before = frame.copy()
    ng.effects.ale(poisson_fit, frame, "g")
    ng.effects.permutation_importance(poisson_fit, frame, ["g"], n_repeats=2)
    pd.testing.assert_frame_equal(frame, before)


def test_plots_draw_the_tables(frame, poisson_fit):
    boot = ng.bootstrap(poisson_fit, n_boot=10, seed=0)
    ax = ng.plots.effect_plot(ng.effects.partial_dependence(poisson_fit, frame, "x1", grid_size=9, bootstrap=boot), label="GLM")
    assert [line.get_gid() for line in ax.lines].count("effect") == 1 and ax.collections  # the band
    ax = ng.plots.effect_plot(ng.effects.ice(poisson_fit, frame, "g", sample=30))
    assert [line.get_gid() for line in ax.lines].count("ice") == 30
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    ax = ng.plots.interaction_plot(ng.effects.h_statistic(poisson_fit, frame, sample=20))
    assert len(ax.patches) == len(list(combinations(["x1", "x2", "g"], 2)))
    ax = ng.plots.lorenz_plot(ng.effects.lorenz_curve({"a": poisson_fit, "b": poisson_fit}, frame))
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(SpecificationError, match=r"ng\.effects\.lift"):
        ng.plots.lift_plot(pd.DataFrame({"x": [1]}))
