"""Plots: axes content (labels, titles, artists, data limits), never pixels (Agg backend, conftest)."""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
import warnings
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm import plots
from neuralglm.errors import ConvergenceWarning, ModelFileError, SpecificationError
from neuralglm.inference.influence import influence

FORMULA = "claims ~ C(district) + group + age"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def insurance():
    return ng.datasets.load_insurance()


@pytest.fixture(scope="module")
def poisson_fit(insurance):
    return ng.glm(FORMULA, insurance, family="poisson", exposure="holders")


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "g": rng.choice(["a", "b"], n)})
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + 1.5 * df["x1"] - df["x2"]))))
    return df, ng.glm("y ~ x1 + x2 + g", df, family="binomial")


def _lines(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


def _points(ax) -> np.ndarray:
    """Offsets of the scatter (PathCollection) on ``ax``: one collection expected."""
    scatters = [c for c in ax.collections if c.__class__.__name__ == "PathCollection"]
    assert len(scatters) == 1
    return np.asarray(scatters[0].get_offsets())


def _without_data(result):
    """``result`` saved without its training data and loaded back."""
    buffer = io.BytesIO()
    result.save(buffer, include_data=False)
    return ng.load(io.BytesIO(buffer.getvalue()))


def _poisson_deviance_residuals(y, mu) -> np.ndarray:
    """sign(y − μ)·√(2 (y log(y/μ) − (y − μ))), with y log(y/μ) = 0 at y = 0 (closed form, unit weights)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return np.sign(y - mu) * np.sqrt(2.0 * (term - (y - mu)))


def test_every_public_name_is_a_plotting_function():
    import neuralglm.plots as package

    for name in package.__all__:
        assert inspect.isfunction(getattr(package, name)), name
        assert getattr(__import__("neuralglm.plots", fromlist=[name]), name) is getattr(package, name)
    public_modules = {name for name, value in vars(package).items() if inspect.ismodule(value) and not name.startswith("_")}
    assert public_modules <= {"training"}  # not 'fit' (ng.fit is the network fit), 'effects', 'diagnostics'
    assert not hasattr(ng.plots, "fit")


def test_importing_neuralglm_does_not_import_matplotlib():
    code = "import sys, neuralglm, neuralglm.plots; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- diagnostics ---------------------------------------------------------------------------
def test_residuals_vs_fitted(poisson_fit):
    ax = plots.residuals_vs_fitted(poisson_fit)
    assert (ax.get_title(), ax.get_ylabel()) == ("Residuals vs fitted", "Deviance residual")
    assert "log" in ax.get_xlabel()
    assert_allclose(_points(ax), np.column_stack([poisson_fit.fitted_eta, poisson_fit.residuals("deviance")]))
    assert len(_lines(ax, "smoother")) == 1 and len(_lines(ax, "reference")) == 1
    assert_allclose(_lines(ax, "reference")[0].get_ydata(), [0, 0])
    assert len([t for t in ax.texts if t.get_gid() == "extreme_label"]) == 3
    low, high = ax.get_xlim()
    assert low <= poisson_fit.fitted_eta.min() and high >= poisson_fit.fitted_eta.max()


def test_binned_mean_smoother_is_bin_means():
    from neuralglm.plots._common import binned_mean

    x = np.arange(100.0)
    x_mean, y_mean = binned_mean(x, 2 * x, n_bins=4)
    # Quartile bins of 0..99 hold 25 consecutive values each (closed form of their means).
    assert_allclose(x_mean, [12.0, 37.0, 62.0, 87.0])
    assert_allclose(y_mean, 2 * x_mean)


def test_qq_plot_against_normal_quantiles(poisson_fit):
    from scipy.stats import norm

    ax = plots.qq_plot(poisson_fit)
    points = _points(ax)
    n = len(points)
    # R's ppoints(n) for n > 10: (i - 1/2) / n.
    assert_allclose(points[:, 0], norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    assert_allclose(points[:, 1], np.sort(influence(poisson_fit)["standardized_deviance"]))
    reference = _lines(ax, "reference")[0]
    assert_allclose(reference.get_xdata(), reference.get_ydata())  # the 45° line
    assert ax.get_xlabel() == "Theoretical quantile N(0, 1)"


def test_scale_location(poisson_fit):
    ax = plots.scale_location(poisson_fit)
    points = _points(ax)
    assert_allclose(points[:, 1], np.sqrt(np.abs(influence(poisson_fit)["standardized_deviance"])))
    assert ax.get_ylim()[0] == 0.0
    assert ax.get_title() == "Scale–location"


def test_leverage_plot_draws_cooks_contours(poisson_fit):
    ax = plots.leverage_plot(poisson_fit)
    table = influence(poisson_fit)
    assert_allclose(_points(ax), table[["leverage", "standardized_pearson"]].to_numpy())
    p = poisson_fit.rank
    for level in (0.5, 1.0):
        contour = _lines(ax, f"cooks_{level:g}")
        assert len(contour) == 2  # above and below zero
        for line in contour:
            h, r = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
            assert_allclose(r**2 * h / (p * (1 - h)), level, rtol=1e-12)  # Cook's D on the contour
    assert ax.get_xlim()[0] == 0.0 and ax.get_xlim()[1] >= table["leverage"].max()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Cook's distance"]


def test_diagnostic_panel(poisson_fit):
    axes = plots.diagnostic_panel(poisson_fit)
    assert axes.shape == (2, 2)
    assert [ax.get_title() for ax in axes.ravel()] == ["Residuals vs fitted", "Normal Q–Q", "Scale–location", "Residuals vs leverage"]
    assert "poisson(link=log)" in axes[0, 0].figure.get_suptitle()


def test_diagnostic_panel_on_given_axes(poisson_fit):
    _, given = plt.subplots(1, 4)
    assert plots.diagnostic_panel(poisson_fit, axes=given) is not None
    assert given[3].get_title() == "Residuals vs leverage"
    with pytest.raises(SpecificationError, match="needs 4 axes"):
        plots.diagnostic_panel(poisson_fit, axes=given[:3])


@pytest.mark.parametrize(
    "draw",
    [plots.residuals_vs_fitted, plots.qq_plot, plots.scale_location, plots.leverage_plot, plots.observed_vs_fitted, plots.calibration],
)
def test_functions_draw_on_the_given_axes(poisson_fit, draw):
    _, ax = plt.subplots()
    assert draw(poisson_fit, ax=ax) is ax
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_an_axes_given_second_still_means_ax(poisson_fit):
    # ax came right after fit before data was added to these functions.
    _, ax = plt.subplots()
    assert plots.observed_vs_fitted(poisson_fit, ax) is ax
    assert ax.get_title() == "Observed vs fitted"
    _, given = plt.subplots(2, 2)
    assert plots.diagnostic_panel(poisson_fit, given) is not None
    assert given[1, 1].get_title() == "Residuals vs leverage"
    with pytest.raises(SpecificationError, match="'data' parameter of qq_plot"):
        plots.qq_plot(poisson_fit, ax, ax=ax)


# ---- fit -----------------------------------------------------------------------------------
def test_observed_vs_fitted(poisson_fit):
    ax = plots.observed_vs_fitted(poisson_fit)
    assert_allclose(_points(ax), np.column_stack([poisson_fit.fitted_mu, poisson_fit.design.y]))
    assert ax.get_ylabel() == "Observed claims"
    assert len(_lines(ax, "reference")) == 1


def test_calibration_compares_rates(poisson_fit, insurance):
    ax = plots.calibration(poisson_fit, bins=4)
    assert ax.get_xlabel() == "Predicted claims per holders"
    assert ax.get_title() == "Calibration in 4 bins of prediction"
    bins_line = _lines(ax, "calibration")[0]
    predicted, observed = np.asarray(bins_line.get_xdata()), np.asarray(bins_line.get_ydata())
    assert predicted.size == 4 and np.all(np.diff(predicted) > 0)
    # Poisson log-link with an intercept: sum(y) = sum(mu) (score equation), so the
    # exposure-weighted averages of the bin rates agree, and equal the overall claim rate.
    rate = insurance["claims"].sum() / insurance["holders"].sum()
    assert_allclose(np.mean(observed), np.mean(predicted), rtol=0.2)
    assert predicted.min() < rate < predicted.max()
    # Passing the training data again gives the same points.
    again = plots.calibration(poisson_fit, data=insurance, bins=4)
    line = _lines(again, "calibration")[0]
    assert_allclose(line.get_xdata(), predicted)
    assert_allclose(line.get_ydata(), observed)
    with pytest.raises(SpecificationError, match="bins"):
        plots.calibration(poisson_fit, bins=1)


def test_calibration_deciles_for_binomial(binary):
    _, fit = binary
    ax = plots.calibration(fit)
    assert ax.get_title() == "Calibration by decile of prediction"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted probability", "Observed proportion")
    line = _lines(ax, "calibration")[0]
    # 200 unit-weight rows in 10 equal-weight bins: 20 rows each; the first bin is the mean of
    # the 20 smallest predictions.
    assert_allclose(line.get_xdata()[0], np.sort(fit.fitted_mu)[:20].mean())


def test_decision_surface(binary):
    df, fit = binary
    ax = plots.decision_surface(fit, df, "x1", "x2", resolution=25)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert ax.get_title() == "Predicted probability over x1 and x2"
    assert_allclose(ax.get_xlim(), (df["x1"].min(), df["x2"].max() * 0 + df["x1"].max()))
    assert len(ax.figure.axes) == 2  # the plot and its colour bar
    assert ax.figure.axes[1].get_ylabel() == "Predicted probability"
    data = [c for c in ax.collections if c.get_gid() == "data"]
    assert sum(len(c.get_offsets()) for c in data) == len(df)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y = 0", "y = 1"]
    assert any("g=" in text.get_text() for text in ax.texts)  # the held value is stated
    with pytest.raises(SpecificationError, match="two numeric inputs"):
        plots.decision_surface(fit, df, "x1", "g")


def test_partial_dependence_matches_closed_form(poisson_fit, insurance):
    ax = plots.partial_dependence(poisson_fit, insurance, "age", label="GLM")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["<25", "25-29", "30-35", ">35"]
    assert ax.get_ylabel() == "Average predicted claims per holders"
    line = _lines(ax, "partial_dependence")[0]
    values = np.asarray(line.get_ydata())
    # Log link, no interaction: moving every row to another age band multiplies every mean by
    # exp(band's contribution to η), so the ratios of the averages are its exponentiated differences.
    # (age is an ordered factor: contr.poly columns age.L, age.Q, age.C, as in R.)
    columns = [j for j, name in enumerate(poisson_fit.coef.index) if name.startswith("age")]
    codes = insurance["age"].cat.codes.to_numpy()
    eta = [poisson_fit.design.X[codes == band][0, columns] @ poisson_fit.coef.to_numpy()[columns] for band in range(4)]
    assert_allclose(values[1:] / values[0], np.exp(np.subtract(eta[1:], eta[0])), rtol=1e-10)


def test_partial_dependence_overlays_on_the_same_axes(binary):
    df, fit = binary
    ax = plots.partial_dependence(fit, df, "x1", label="first")
    assert plots.partial_dependence(fit, df, "x1", ax=ax, label="second") is ax
    lines = _lines(ax, "partial_dependence")
    assert len(lines) == 2 and lines[0].get_color() != lines[1].get_color()
    assert len(lines[0].get_xdata()) == 40
    assert_allclose([lines[0].get_xdata()[0], lines[0].get_xdata()[-1]], [df["x1"].min(), df["x1"].max()])
    assert len(_lines(ax, "rug")) == 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["first", "second"]
    assert ax.get_ylabel() == "Average predicted probability"


def test_effect_comparison(poisson_fit, insurance):
    small = ng.glm("claims ~ age", insurance, family="poisson", exposure="holders")
    ax = plots.effect_comparison({"full": poisson_fit, "age only": small}, insurance, "age")
    assert len(_lines(ax, "partial_dependence")) == 2
    assert ax.get_title() == "Partial dependence on age: full vs age only"
    with pytest.raises(SpecificationError, match="at least one fit"):
        plots.effect_comparison({}, insurance, "age")


# ---- training ------------------------------------------------------------------------------
def _history(train, validation):
    return pd.DataFrame({"epoch": np.arange(1, len(train) + 1), "train_deviance": train, "validation_deviance": validation})


def _network_stand_in(history, best_epoch=None):
    """What training_curves reads of a NetworkResult: its kind, best epoch and info (history, solver)."""
    return SimpleNamespace(kind="network", best_epoch=best_epoch, info=SimpleNamespace(history=history, solver="adam"))


def test_training_curves_marks_the_best_epoch():
    history = _history([3.0, 2.0, 1.5, 1.2, 1.1], [3.1, 2.2, 1.9, 2.0, 2.1])
    ax = plots.training_curves(_network_stand_in(history))
    assert [line.get_label() for line in ax.lines if line.get_gid() in ("train", "validation")] == ["train", "validation"]
    best = _lines(ax, "best_epoch")[0]
    assert (best.get_xdata()[0], best.get_ydata()[0]) == (3, 1.9)
    assert ax.get_yscale() == "linear"
    assert ax.get_ylabel() == "Mean deviance per unit weight"
    # A result's own best_epoch (the weights early stopping kept) wins over the minimum.
    ax = plots.training_curves(_network_stand_in(history, best_epoch=4))
    assert _lines(ax, "best_epoch")[0].get_xdata()[0] == 4


def test_training_curves_log_scale_beyond_two_decades():
    ax = plots.training_curves(_history([100.0, 10.0, 1.0, 0.5], [120.0, 12.0, 1.5, 0.9]))
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel().endswith("(log scale)")


def test_training_curves_without_validation_and_for_irls(poisson_fit):
    ax = plots.training_curves(_history([2.0, 1.0], [np.nan, np.nan]))
    assert _lines(ax, "validation") == [] and _lines(ax, "best_epoch") == []
    ax = plots.training_curves(poisson_fit)  # IRLS: info.history with iteration/deviance
    assert ax.get_xlabel() == "Iteration" and ax.get_title() == "Deviance per IRLS iteration"
    with pytest.raises(SpecificationError, match="training history"):
        plots.training_curves(object())
    with pytest.raises(SpecificationError, match="'epoch'"):
        plots.training_curves(pd.DataFrame({"loss": [1.0]}))


# ---- networks (when neuralglm.fit exists) ----------------------------------------------------
@pytest.fixture(scope="module")
def network(insurance):
    if not hasattr(ng, "fit"):
        pytest.skip("neuralglm.fit is not available in this build")
    with warnings.catch_warnings():
        # 15 epochs may stop before convergence (ConvergenceWarning): enough to test the plots.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ng.fit(
            FORMULA,
            insurance,
            family="poisson",
            exposure="holders",
            hidden=(4,),
            solver="adam",
            epochs=15,
            learning_rate=0.02,
            early_stopping=True,
            validation_fraction=0.25,
            seed=0,
        )


def test_plots_accept_a_network(network, poisson_fit, insurance):
    ax = plots.training_curves(network)
    assert len(_lines(ax, "train")[0].get_xdata()) == len(network.history)
    assert _lines(ax, "best_epoch")[0].get_xdata()[0] == network.best_epoch
    ax = plots.effect_comparison({"GLM": poisson_fit, "network": network}, insurance, "group")
    assert len(_lines(ax, "partial_dependence")) == 2
    axes = plots.diagnostic_panel(network)
    assert_allclose(_points(axes[0, 0])[:, 1], network.residuals("deviance"))
    # Leverage on the learned features (+ intercept): trace(H) = their rank.
    assert 1 <= influence(network)["leverage"].sum() <= network.architecture.hidden[-1] + 1 + 1e-9


# ---- new data and models saved without their training data --------------------------------
@pytest.fixture(scope="module")
def split(insurance):
    """A GLM fitted on 42 rows, and the 22 others (every third row: all factor levels stay in training) held out."""
    test = insurance.iloc[::3]
    train = insurance.drop(index=test.index)
    return train, test, ng.glm(FORMULA, train, family="poisson", exposure="holders")


def test_observed_vs_fitted_on_new_data(split):
    _, test, fit = split
    ax = plots.observed_vs_fitted(fit, test)
    assert_allclose(_points(ax), np.column_stack([fit.predict(test), test["claims"]]))
    assert (ax.get_title(), ax.get_xlabel()) == ("Observed vs predicted", "Predicted mean μ̂ of claims")


def test_residuals_vs_fitted_on_new_data(split):
    _, test, fit = split
    ax = plots.residuals_vs_fitted(fit, data=test)
    eta = np.log(fit.predict(test).to_numpy())  # log link: η = log μ (the offset log(holders) included)
    expected = _poisson_deviance_residuals(test["claims"].to_numpy(float), fit.predict(test).to_numpy())
    assert_allclose(_points(ax), np.column_stack([eta, expected]), rtol=1e-10)
    assert ax.get_title() == "Residuals vs predicted"


def test_calibration_on_new_data_bins_the_new_predictions(binary):
    df, _ = binary
    train, test = df.iloc[:100], df.iloc[100:]
    fit = ng.glm("y ~ x1 + x2 + g", train, family="binomial")
    line = _lines(plots.calibration(fit, test, bins=5), "calibration")[0]
    # 100 unit-weight rows in 5 equal-weight bins: the first holds the 20 smallest predictions.
    mu = fit.predict(test).to_numpy()
    first = np.argsort(mu, kind="stable")[:20]
    assert_allclose(line.get_xdata()[0], mu[first].mean(), rtol=1e-12)
    assert_allclose(line.get_ydata()[0], test["y"].to_numpy()[first].mean(), rtol=1e-12)


def test_decision_surface_colours_points_by_the_data_response(binary):
    df, fit = binary
    flipped = df.assign(y=1 - df["y"])  # same length as the training data, other responses
    ax = plots.decision_surface(fit, flipped, "x1", "x2", resolution=10)
    ones = next(c for c in ax.collections if c.get_gid() == "data" and c.get_label() == "y = 1")
    assert len(ones.get_offsets()) == int(flipped["y"].sum())
    grid_only = plots.decision_surface(fit, df.drop(columns="y"), "x1", "x2", resolution=10)
    assert sum(len(c.get_offsets()) for c in grid_only.collections if c.get_gid() == "data") == len(df)


FITTED_VALUE_PLOTS = [
    "observed_vs_fitted",
    "calibration",
    "residuals_vs_fitted",
    "qq_plot",
    "scale_location",
    "leverage_plot",
    "diagnostic_panel",
]


@pytest.mark.parametrize("name", FITTED_VALUE_PLOTS)
def test_a_model_saved_without_data_asks_for_it(poisson_fit, name):
    loaded = _without_data(poisson_fit)
    with pytest.raises(ModelFileError, match=rf"{name}\(fit\) draws the model's training rows.*include_data=True"):
        getattr(plots, name)(loaded)


@pytest.mark.parametrize("name", FITTED_VALUE_PLOTS[:-1])
def test_a_model_saved_without_data_draws_the_data_given(poisson_fit, insurance, name):
    # Given the training data back, the loaded model draws what the fitted one draws.
    draw = getattr(plots, name)
    original, loaded = draw(poisson_fit), draw(_without_data(poisson_fit), insurance)
    for gid in ("calibration", "smoother", "cooks_1"):
        for before, after in zip(_lines(original, gid), _lines(loaded, gid), strict=True):
            assert_allclose(after.get_xydata(), before.get_xydata(), rtol=1e-9)
    assert [t.get_text() for t in loaded.texts] == [t.get_text() for t in original.texts]  # the labelled rows
    if name != "calibration":
        assert_allclose(_points(loaded), _points(original), rtol=1e-9, atol=1e-12)


def test_plots_of_given_data_need_no_training_data(poisson_fit, insurance):
    loaded = _without_data(poisson_fit)
    for draw in (plots.partial_dependence, lambda fit, data, v: plots.effect_comparison({"m": fit}, data, v)):
        before, after = draw(poisson_fit, insurance, "age"), draw(loaded, insurance, "age")
        assert_allclose(_lines(after, "partial_dependence")[0].get_ydata(), _lines(before, "partial_dependence")[0].get_ydata(), rtol=1e-12)


def test_leverage_plots_refuse_rows_other_than_the_training_rows(split):
    _, test, fit = split
    for draw in (plots.qq_plot, plots.scale_location, plots.leverage_plot, plots.diagnostic_panel):
        with pytest.raises(SpecificationError, match="training rows only"):
            draw(fit, test)


def test_plots_of_a_network_on_new_data(network, insurance):
    test = insurance.iloc[::3]
    ax = plots.observed_vs_fitted(network, test)  # the call of the report: positional new data
    assert_allclose(_points(ax), np.column_stack([network.predict(test), test["claims"]]))
    ax = plots.residuals_vs_fitted(network, test)
    expected = _poisson_deviance_residuals(test["claims"].to_numpy(float), network.predict(test).to_numpy())
    assert_allclose(_points(ax), np.column_stack([network.predict(test, type="link"), expected]), rtol=1e-9)
    line = _lines(plots.calibration(network, test, bins=4), "calibration")[0]
    rates = network.predict(test).to_numpy() / test["holders"].to_numpy()
    # Each bin's predicted rate is an exposure-weighted mean of the rows' predicted rates.
    assert rates.min() * (1 - 1e-12) <= np.min(line.get_xdata()) and np.max(line.get_xdata()) <= rates.max() * (1 + 1e-12)


def test_a_network_saved_without_data(network, insurance):
    loaded = _without_data(network)
    with pytest.raises(ModelFileError, match="diagnostic_panel"):
        plots.diagnostic_panel(loaded)
    original, again = plots.diagnostic_panel(network), plots.diagnostic_panel(loaded, insurance)
    for before, after in zip(original.ravel(), again.ravel(), strict=True):
        assert_allclose(_points(after), _points(before), rtol=1e-6, atol=1e-9)
