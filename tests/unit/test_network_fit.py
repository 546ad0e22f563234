"""``ng.fit`` with hidden layers: the result's statistics, predictions, features, output GLM, summary, errors."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import neuralglm as ng
from neuralglm.errors import DataError, DomainError, SpecificationError
from neuralglm.fit.info import HISTORY_COLUMNS

FORMULA = "y ~ x1 + x2 + C(g)"


def data(n_obs: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(2, 3, n_obs),
            "x2": rng.uniform(-2, 2, n_obs),
            "g": rng.choice(list("abc"), n_obs),
            "e": rng.uniform(0.5, 2, n_obs),
        }
    )
    df["y"] = rng.poisson(df.e * np.exp(np.sin(df.x1) + 0.3 * df.x2 - 0.5))
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return data()


@pytest.fixture(scope="module")
def net(df):
    # Float64 L-BFGS to a tight gradient: the output layer is then at its conditional optimum.
    # Unpenalized, this small tanh network tends to drift towards redundant or saturated units,
    # and from most initial weights L-BFGS needs more than 6000 iterations to reach tol=3e-8
    # (5 of seeds 0-39 got there after the xlogy change of 44fb4cb moved the deviance by an ulp;
    # seed 0 did before; 3 of 40 (11, 27, 31) after the null model's intercept, the starting
    # output bias, moved by an ulp with its own Fisher-scoring fit; seed 3 did before). The seed
    # is one that converges.
    return ng.fit(
        FORMULA,
        df,
        family="poisson",
        exposure="e",
        hidden=(4,),
        activation="tanh",
        solver="lbfgs",
        dtype="float64",
        tol=3e-8,
        epochs=6000,
        seed=31,
        l2=0.0,  # pinned (the default before l2="auto"): output_glm reproduces an unpenalized output layer
    )


def test_statistics_are_float64_and_match_statsmodels(net, df):
    assert isinstance(net, ng.NetworkResult) and net.info.converged and net.info.solver == "lbfgs"
    y, mu = df.y.to_numpy(float), net.fitted_mu
    family = sm.families.Poisson()
    # statsmodels evaluates the same formulas independently, in float64.
    np.testing.assert_allclose(net.deviance, family.deviance(y, mu), rtol=1e-12)
    np.testing.assert_allclose(net.loglik, family.loglike(y, mu), rtol=1e-12)
    assert net.n_params == 4 * 4 + 4 + 4 + 1
    np.testing.assert_allclose(net.aic, -2 * net.loglik + 2 * net.n_params, rtol=1e-14)
    null = ng.glm("y ~ 1", df, family="poisson", exposure="e")
    np.testing.assert_allclose(net.null_deviance, null.deviance, rtol=1e-10)
    assert net.deviance < net.null_deviance and 0 < net.deviance_explained < 1


def test_predict_reapplies_the_stored_scaling(net, df):
    subset = df.iloc[[5, 1, 200]]
    # Same rows ⇒ same numbers as the fitted values (new data go through formula + scaling again).
    np.testing.assert_allclose(net.predict(subset).to_numpy(), net.fitted_mu[[5, 1, 200]], rtol=1e-12)
    np.testing.assert_allclose(net.predict(subset, type="link").to_numpy(), np.log(net.fitted_mu[[5, 1, 200]]), rtol=1e-10)
    assert list(net.predict(subset).index) == [5, 1, 200]
    unseen = subset.assign(g=["a", "z", "b"])
    with pytest.raises(DataError, match="not seen"):
        net.predict(unseen)
    with pytest.raises(SpecificationError, match="type must be one of"):
        net.predict(subset, type="mean")


def test_features_are_the_last_hidden_layer(net, df):
    features = net.features()
    assert net.scaling.names == ("x1", "x2", "C(g)[T.b]", "C(g)[T.c]")
    assert list(features.columns) == ["h1", "h2", "h3", "h4"] and features.shape == (len(df), 4)
    # Independent reconstruction: NumPy standardization of x1, x2 and a tanh layer.
    x = df[["x1", "x2"]].to_numpy()
    inputs = np.column_stack([(x - x.mean(0)) / x.std(0), df.g == "b", df.g == "c"]).astype(float)  # formulaic order
    layer = net.params[0]
    np.testing.assert_allclose(features.to_numpy(), np.tanh(inputs @ layer.weight + layer.bias), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.features(df.iloc[:3]).to_numpy(), features.to_numpy()[:3], rtol=1e-12)


def test_output_glm_reproduces_the_network(net):
    glm = net.output_glm()
    assert isinstance(glm, ng.FitResult) and list(glm.coef.index) == ["Intercept", "h1", "h2", "h3", "h4"]
    # IRLS on the learned features finds the same output layer; the issue asks for ≤ 1e-6 relative.
    np.testing.assert_allclose(glm.fitted_mu, net.fitted_mu, rtol=1e-6)
    np.testing.assert_allclose(glm.coef.to_numpy(), net.coef.to_numpy(), rtol=1e-4, atol=1e-6)
    assert np.all(glm.std_errors > 0)


def test_summary_and_history(net):
    text = str(net.summary())
    for needle in [
        "Neural GLM",
        "4 → 4 (tanh) → 1",
        "Parameters (k): 25",
        "Deviance explained",
        "AIC",
        "Solver: lbfgs",
        "not identifiable",
        "Offset: log(e)",
    ]:
        assert needle in text
    assert "conditional on learned features" in str(net.summary(coefficients=True))
    assert "<div" in net.summary()._repr_html_()
    assert list(net.history.columns) == list(HISTORY_COLUMNS)
    residuals = net.residuals("deviance")
    np.testing.assert_allclose(np.sum(residuals**2), net.deviance, rtol=1e-12)  # deviance residuals square-sum to the deviance


def test_inputs_are_never_mutated():
    df = data(seed=3)
    before = df.copy(deep=True)
    with pytest.warns(ng.errors.ConvergenceWarning):
        ng.fit(FORMULA, df, family="poisson", exposure="e", hidden=(4,), solver="adam", epochs=2)
    pd.testing.assert_frame_equal(df, before)


def test_float32_training_reports_float64_statistics(df):
    with pytest.warns(ng.errors.ConvergenceWarning):
        net = ng.fit(FORMULA, df, family="poisson", exposure="e", hidden=(4,), solver="adam", epochs=3, learning_rate=0.01)
    assert net.dtype == "float32" and net.fitted_mu.dtype == np.float64 and net.params[0].weight.dtype == np.float64
    np.testing.assert_allclose(net.deviance, sm.families.Poisson().deviance(df.y.to_numpy(float), net.fitted_mu), rtol=1e-12)


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("learning_rate", -1.0, "The 'learning_rate' parameter of fit must be a float in the range \\(0.0, inf\\). Got -1.0 instead."),
        ("epochs", 0, "The 'epochs' parameter of fit must be an int in the range \\[1, inf\\). Got 0 instead."),
        ("batch_size", 2.5, "'batch_size' parameter of fit must be an int"),
        ("l2", -0.1, "'l2' parameter of fit must be a float in the range \\[0.0, inf\\)"),
        ("momentum", 1.0, "'momentum' parameter of fit must be a float in the range \\[0.0, 1.0\\)"),
        ("validation_fraction", 1.0, "'validation_fraction'"),
        ("solver", "newton", "'solver' parameter of fit must be a str among"),
        ("dtype", "float16", "'dtype' parameter of fit must be 'float32' or 'float64'"),
        ("seed", -1, "'seed' parameter"),
        ("early_stopping", "yes", "'early_stopping' parameter of fit must be a bool"),
        ("penalize_output", 0, "'penalize_output' parameter of fit must be a bool"),
    ],
)
def test_hyperparameters_are_validated_up_front(df, option, value, match):
    with pytest.raises(SpecificationError, match=match):
        ng.fit(FORMULA, df, family="poisson", hidden=(4,), **{option: value})


def test_solver_combinations_are_checked(df):
    with pytest.raises(SpecificationError, match="solver='irls' fits only models without hidden layers"):
        ng.fit(FORMULA, df, family="poisson", hidden=(4,), solver="irls")
    with pytest.raises(SpecificationError, match="early_stopping needs a minibatch solver"):
        ng.fit(FORMULA, df, family="poisson", hidden=(4,), solver="lbfgs", early_stopping=True)


def test_data_errors_of_the_glm_core_apply(df):
    bad = df.assign(y=df.y - 5)
    with pytest.raises(DomainError, match="y"):
        ng.fit(FORMULA, bad, family="poisson", hidden=(4,))
    with pytest.raises(DataError, match="Unknown column 'x3'"):
        ng.fit("y ~ x1 + x3", df, family="poisson", hidden=(4,))


def test_auto_solver_and_zero_hidden_coefficients(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # only the solver choice matters here
        small = ng.fit(FORMULA, df, family="poisson", exposure="e", hidden=(4,), epochs=3)
    assert small.info.solver == "lbfgs"
    penalized = ng.fit(FORMULA, df, family="poisson", exposure="e", l2=1e-9, dtype="float64", tol=1e-10)
    glm = ng.glm(FORMULA, df, family="poisson", exposure="e")
    assert penalized.info.solver == "lbfgs" and list(penalized.coef.index) == list(glm.coef.index)
    # A 1e-9 prior precision moves the estimates by ~1e-9 relative: far below 1e-6.
    np.testing.assert_allclose(penalized.coef.to_numpy(), glm.coef.to_numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("x64", [False, True])
def test_fits_leave_the_global_x64_flag_as_they_found_it(df, x64):
    """Float64 statistics run inside ``jax.enable_x64(True)``; the user's global setting, either way, is untouched."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", x64)
    try:
        ng.fit(FORMULA, df, family="poisson", exposure="e", l2=1e-9, dtype="float64", tol=1e-10)
        assert jax.config.jax_enable_x64 is x64
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # three epochs: only the flag matters here
            ng.fit(FORMULA, df, family="poisson", exposure="e", hidden=(2,), epochs=3, dtype="float32")
        assert jax.config.jax_enable_x64 is x64
        ng.glm(FORMULA, df, family="poisson", exposure="e")
        assert jax.config.jax_enable_x64 is x64
    finally:
        jax.config.update("jax_enable_x64", before)


def test_auto_solver_follows_the_measured_crossover():
    """solver='auto': L-BFGS only while both the rows and rows × parameters are small (benchmarks/README.md)."""
    from neuralglm.model.architecture import Architecture
    from neuralglm.network import LBFGS_MAX_ROWS, LBFGS_MAX_WORK, _choose_solver

    net = Architecture((32,), "relu")

    def choose(n_obs, n_params, early_stopping=False):
        return _choose_solver("auto", net, n_obs, n_params, 0.0, early_stopping)

    assert choose(LBFGS_MAX_ROWS, LBFGS_MAX_WORK // LBFGS_MAX_ROWS) == "lbfgs"
    assert choose(LBFGS_MAX_ROWS + 1, 10) == "adam"  # many rows: Adam's epochs make many steps
    assert choose(1_000, LBFGS_MAX_WORK // 1_000 + 1) == "adam"  # too much work per L-BFGS iteration
    assert choose(1_000, 100, early_stopping=True) == "adam"  # early stopping needs epochs
    glm = Architecture((), "relu")
    assert _choose_solver("auto", glm, 10**7, 10, 0.0, False) == "irls"
    # A penalized GLM is convex: full-batch L-BFGS finds its optimum at any size (not Adam).
    assert _choose_solver("auto", glm, 10 * LBFGS_MAX_ROWS, 10, 1e-3, False) == "lbfgs"
    assert _choose_solver("sgd", net, 1_000, 100, 0.0, False) == "sgd"


def test_unpenalized_output_layer_is_the_glm_on_the_learned_features(df):
    """l2 on the hidden layers only: after convergence, IRLS on the features reproduces the network."""
    options = {"family": "poisson", "exposure": "e", "hidden": (4,), "activation": "tanh", "solver": "lbfgs", "dtype": "float64"}
    # Seed 5 converges to tol=3e-8 within 6000 iterations (3 of seeds 0-7 did at l2=0.1: the
    # unpenalized output layer leaves flat directions when units are nearly redundant).
    net = ng.fit(FORMULA, df, **options, l2=0.1, penalize_output=False, tol=3e-8, epochs=6000, seed=5)
    assert net.info.converged and net.control.penalize_output is False
    assert "l2 0.1 on hidden layers only" in str(net.summary())
    glm = net.output_glm()
    # The issue asks for predictions within 1e-6 relative of the network's.
    np.testing.assert_allclose(glm.fitted_mu, net.fitted_mu, rtol=1e-6)
    np.testing.assert_allclose(glm.coef.to_numpy(), net.coef.to_numpy(), rtol=1e-4, atol=1e-6)
    # With the output layer penalized as well, the network is a shrunken GLM on its features: IRLS,
    # unpenalized, moves the predictions and lowers the deviance by far more than 1e-6.
    shrunk = ng.fit(FORMULA, df, **options, l2=0.1, tol=1e-6, epochs=6000, seed=5)
    refit = shrunk.output_glm()
    assert np.max(np.abs(refit.fitted_mu / shrunk.fitted_mu - 1)) > 1e-4
    assert refit.deviance < shrunk.deviance - 1e-3


# ---- status as structure: the stall at working precision, training curves by kind ----------------


@pytest.mark.parametrize("at_precision", [True, False])
def test_at_precision_is_stored_in_model_files_and_read_from_older_ones(at_precision):
    """The field travels through the file schema; a file written before it gets it from its message."""
    import json

    from neuralglm.fit.info import FitInfo, Status
    from neuralglm.results import parts
    from neuralglm.results.model_file import ArrayStore

    message = "No further progress … stalled at working precision; a fit with dtype='float64' can go further."
    info = FitInfo(False, 120, Status.STALLED, "lbfgs", message if at_precision else "No further progress …", at_precision=at_precision)
    store = ArrayStore()
    node = json.loads(json.dumps(parts.info_to_dict(info, store, "info")))
    assert node["at_precision"] is at_precision
    assert parts.info_from_dict(node, store).at_precision is at_precision
    older = {key: value for key, value in node.items() if key != "at_precision"}
    assert parts.info_from_dict(older, store).at_precision is at_precision
    with pytest.raises(ng.errors.ModelFileError, match=r"info\.at_precision must be a bool"):
        parts.info_from_dict({**node, "at_precision": "yes"}, store)


def _line(ax, gid):
    (line,) = [line for line in ax.lines if line.get_gid() == gid]
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def test_training_curves_draw_the_history_of_a_glm_and_of_networks(net, df):
    from neuralglm import plots

    glm = ng.glm(FORMULA, df, family="poisson", exposure="e")
    ax = plots.training_curves(glm)
    history = glm.info.history
    np.testing.assert_array_equal(_line(ax, "train")[0], history["iteration"].to_numpy(dtype=float))
    np.testing.assert_array_equal(_line(ax, "train")[1], history["objective"].to_numpy(dtype=float))
    assert (ax.get_title(), ax.get_xlabel()) == ("Deviance per IRLS iteration", "Iteration")
    assert [line.get_gid() for line in ax.lines] == ["train"]  # IRLS has no validation deviance

    ax = plots.training_curves(net)  # L-BFGS, no early stopping: one row per chunk of iterations
    np.testing.assert_array_equal(_line(ax, "train")[0], net.history["iteration"].to_numpy(dtype=float))
    np.testing.assert_array_equal(_line(ax, "train")[1], net.history["objective"].to_numpy(dtype=float))
    assert (ax.get_title(), ax.get_xlabel()) == ("Training curves", "Iteration")
    assert [line.get_gid() for line in ax.lines] == ["train"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # 8 epochs may end while still improving
        adam = ng.fit(FORMULA, df, family="poisson", exposure="e", hidden=(3,), solver="adam", epochs=8, learning_rate=0.05,
                      early_stopping=True, validation_fraction=0.3, patience=2, seed=1)  # fmt: skip
    ax = plots.training_curves(adam)
    history = adam.history
    assert ax.get_xlabel() == "Epoch"
    np.testing.assert_array_equal(_line(ax, "validation")[1], history["validation_deviance"].to_numpy(dtype=float))
    best_x, best_y = _line(ax, "best_epoch")
    assert best_x.tolist() == [adam.best_epoch]  # the weights early stopping kept, from the result
    assert best_y.tolist() == history.loc[history["iteration"] == adam.best_epoch, "validation_deviance"].tolist()
    assert [line.get_label() for line in ax.lines if line.get_gid() == "best_epoch"] == [f"best epoch ({adam.best_epoch})"]
