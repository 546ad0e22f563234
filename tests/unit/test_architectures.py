"""CANN, LocalGLMnet, additive networks and embeddings: each reduces to the GLM in its tested limit.

References are independent: ng.glm's IRLS fit (R-matched elsewhere), hand-built one-hot
matrices, and the forward pass recomputed from the stored parameters.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm import network_nested
from neuralglm.data.design import make_design
from neuralglm.errors import ConvergenceWarning, SpecificationError
from neuralglm.family.registry import get_family, get_link
from neuralglm.model import nesting
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import fit_scaling
from neuralglm.model.params import Dense
from neuralglm.model.predictor import linear_predictor_float64, numpy_activations
from neuralglm.results import architecture_views

FORMULA = "ClaimNb ~ DrivAge + BonusMalus + C(Area) + VehGas"
SMALL = {"family": "poisson", "exposure": "Exposure", "hidden": (3,), "epochs": 15}


@pytest.fixture(scope="module")
def df():
    return ng.datasets.simulate_motor(800, seed=2)


@pytest.fixture(scope="module")
def glm(df):
    return ng.glm(FORMULA, df, family="poisson", exposure="Exposure")


def quiet_fit(*args, **kwargs):
    """ng.fit with 15 iterations: short of the optimum (it may warn so; not the subject here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ng.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def fits(df):
    return {kind: quiet_fit(FORMULA, df, architecture=kind, **SMALL) for kind in ("cann", "localglmnet", "additive")}


def _start(df, kind, hidden=(3,)):
    """What ng.fit trains from: the architecture and starting parameters of network_nested.prepare."""
    family = get_family("poisson")
    design = make_design(FORMULA, df, family, exposure="Exposure")
    scaling = fit_scaling(design.X, design.column_names)
    settings = {"architecture": kind, "embed": None, "cann_fixed": False, "seed": 0}
    arch, params = network_nested.prepare(design, scaling, Architecture(hidden=hidden), settings, family, get_link(None, family))
    return design, scaling, arch, params


@pytest.mark.parametrize("kind", ["cann", "localglmnet"])
def test_training_starts_exactly_at_the_glm(df, glm, kind):
    design, scaling, arch, params = _start(df, kind)
    eta = linear_predictor_float64(params, arch, scaling.transform(design.X), design.offset)
    np.testing.assert_allclose(eta, glm.fitted_eta, rtol=0, atol=1e-9)
    # The hidden layers are random (not a degenerate start): only the output weights are 0.
    assert np.std(np.asarray(params[0].weight)) > 0.1


def test_cann_without_hidden_layers_is_the_glm(df, glm):
    fit = ng.fit(FORMULA, df, family="poisson", exposure="Exposure", architecture="cann")
    np.testing.assert_allclose(fit.coef, glm.coef, rtol=1e-6, atol=1e-8)
    assert abs(fit.deviance - glm.deviance) < 1e-6 * glm.deviance


def test_fixed_cann_keeps_the_glm_part_at_the_irls_estimates(df, glm):
    fit = quiet_fit(FORMULA, df, architecture="cann", cann_fixed=True, **SMALL)
    # Trained in float32: the GLM part comes back rounded to float32, no further.
    np.testing.assert_allclose(fit.coef, glm.coef, rtol=1e-6, atol=1e-6)
    assert fit.deviance != glm.deviance  # the network part did train


def test_trained_cann_moves_away_from_the_glm_and_reports_its_glm_part(fits, glm):
    fit = fits["cann"]
    assert list(fit.coef.index) == list(glm.coef.index)
    # It starts at the GLM (network part 0, no penalty) and training only lowers the penalized
    # objective: half deviance + l2 · ½Σ(network weights)², the GLM part unpenalized.
    penalty = 0.5 * sum(np.sum(np.asarray(layer.weight) ** 2) for layer in fit.params[:-1])
    objective = fit.deviance / 2 + fit.control.l2 * penalty
    assert objective <= glm.deviance / 2 * (1 + 1e-6)  # float32 training
    assert penalty > 0  # and it did move


def test_localglmnet_with_zero_hidden_weights_is_a_glm(df):
    design, scaling, arch, params = _start(df, "localglmnet")
    X = scaling.transform(design.X)
    rng = np.random.default_rng(0)
    attention = Dense(rng.normal(size=params[-2].weight.shape), rng.normal(size=params[-2].bias.shape))
    hidden = Dense(np.zeros_like(params[0].weight), rng.normal(size=params[0].bias.shape))
    zeroed = (hidden, attention, params[-1])
    eta = linear_predictor_float64(zeroed, arch, X, design.offset)
    # β(x) is then the constant tanh(b)·W + b_att: the GLM with those coefficients.
    beta = np.tanh(hidden.bias) @ attention.weight + attention.bias
    np.testing.assert_allclose(eta, design.offset + params[-1].bias[0] + X @ beta, rtol=1e-12)
    local = nesting.local_coefficients(zeroed, arch, X, np, numpy_activations(arch))
    np.testing.assert_allclose(local, np.broadcast_to(beta, local.shape), rtol=1e-12)


def test_local_coef_reproduces_the_linear_predictor(fits, df):
    fit = fits["localglmnet"]
    beta = fit.local_coef(df)
    assert list(beta.columns) == list(fit.scaling.names) and beta.index.equals(df.index)
    X = fit.scaling.transform(fit.design.X)
    eta = fit.params[-1].bias[0] + np.sum(beta.to_numpy() * X, axis=1) + fit.design.offset
    np.testing.assert_allclose(eta, fit.fitted_eta, rtol=1e-10)
    assert beta["DrivAge"].std() > 0  # coefficients vary with x


def test_additive_shape_functions_sum_to_the_linear_predictor(fits, df):
    fit = fits["additive"]
    shapes = fit.shape_functions(df)
    assert set(shapes["term"]) == {"DrivAge", "BonusMalus", "C(Area)", "VehGas"}
    assert set(shapes.loc[shapes["term"] == "VehGas", "value"]) == {"Diesel", "Regular"}
    # Rebuild each row's η from the tidy table: intercept + Σ effect(term, value of the row) + offset.
    eta = np.full(len(df), float(fit.params[-1].bias[0])) + fit.design.offset
    for term, column in (("DrivAge", "DrivAge"), ("BonusMalus", "BonusMalus"), ("C(Area)", "Area"), ("VehGas", "VehGas")):
        table = shapes[shapes["term"] == term].set_index("value")["effect"]
        eta += df[column].map(table).to_numpy(dtype=float)
    np.testing.assert_allclose(eta, fit.fitted_eta, rtol=1e-10)


def test_additive_without_hidden_layers_is_the_glm(df, glm):
    fit = ng.fit(FORMULA, df, family="poisson", exposure="Exposure", architecture="additive")
    np.testing.assert_allclose(fit.coef, glm.coef, rtol=1e-6, atol=1e-8)


def test_an_embedding_is_the_one_hot_row_times_its_table(df):
    design, scaling, _, _ = _start(df, "cann")
    family = get_family("poisson")
    settings = {"architecture": "network", "embed": {"Area": 2}, "cann_fixed": False, "seed": 0}
    arch, params = network_nested.prepare(design, scaling, Architecture(hidden=(3,)), settings, family, get_link(None, family))
    (embedding,) = arch.embeddings
    assert embedding.n_levels == 6 and embedding.dim == 2 and embedding.levels == ("A", "B", "C", "D", "E", "F")
    table = np.asarray(params[0].weight)
    one_hot = pd.get_dummies(df["Area"]).reindex(columns=list("ABCDEF")).to_numpy(dtype=float)
    X = scaling.transform(design.X)
    inputs = nesting.network_input(params[:1], arch, X, np)
    np.testing.assert_allclose(inputs[:, -2:], one_hot @ table, rtol=1e-12)
    assert inputs.shape[1] == arch.network_inputs(scaling.n_in) == scaling.n_in - 5 + 2


def test_embed_auto_sizes_and_the_tidy_embeddings(df):
    fit = quiet_fit("ClaimNb ~ DrivAge + C(Region) + C(Area)", df, embed="auto", **SMALL)
    sizes = {e.name: (e.n_levels, e.dim) for e in fit.architecture.embeddings}
    assert sizes == {"C(Region)": (22, 10), "C(Area)": (6, 3)}  # min(10, ceil(levels / 2))
    table = fit.embeddings()
    assert len(table) == 28 and list(table.columns[:3]) == ["factor", "level", "dim1"]


@pytest.mark.parametrize("kind", ["cann", "localglmnet", "additive"])
def test_model_files_keep_the_architecture(fits, df, tmp_path, kind):
    fit = fits[kind]
    path = tmp_path / f"{kind}.npz"
    fit.save(path)
    loaded = ng.load(path)
    assert loaded.architecture.kind == kind and loaded.architecture.groups == fit.architecture.groups
    np.testing.assert_array_equal(loaded.predict(df), fit.predict(df))
    assert kind.replace("localglmnet", "LocalGLMnet").replace("cann", "GLM (trained)") in str(loaded.summary()) or kind == "additive"


def test_weights_and_offsets_are_used(df):
    weights = np.where(df["DrivAge"] < 30, 2.0, 1.0)
    a = quiet_fit(FORMULA, df, architecture="cann", weights=weights, **SMALL)
    glm = ng.glm(FORMULA, df, family="poisson", exposure="Exposure", weights=weights)
    assert abs(a.deviance - glm.deviance) < 0.05 * glm.deviance
    shifted = ng.fit(FORMULA, df.assign(Exposure=2 * df["Exposure"]), architecture="cann", hidden=(), family="poisson", exposure="Exposure")
    np.testing.assert_allclose(shifted.coef["Intercept"], glm_intercept(df) - np.log(2.0), rtol=1e-6)


def glm_intercept(df):
    return ng.glm(FORMULA, df, family="poisson", exposure="Exposure").coef["Intercept"]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"architecture": "localglmnet"}, "needs|computes its coefficients"),
        ({"architecture": "transformer", "hidden": (3,)}, "'architecture' parameter of fit"),
        ({"cann_fixed": True, "hidden": (3,)}, "cann_fixed=True"),
        ({"embed": {"Region": 2}}, "hidden=\\(\\)"),
        ({"embed": {"DrivAge": 2}, "hidden": (3,)}, "not a factor"),
        ({"embed": {"Area": 0}, "hidden": (3,)}, "'embed' parameter of fit"),
        ({"embed": {"Area": 2}, "hidden": (3,), "architecture": "additive"}, "not available with architecture='additive'"),
    ],
)
def test_bad_architecture_settings_are_refused(df, arguments, match):
    with pytest.raises(SpecificationError, match=match):
        ng.fit(FORMULA, df, family="poisson", exposure="Exposure", **arguments)


def test_the_architecture_is_static_and_hashable():
    arch = Architecture(hidden=(3,), kind="cann")
    assert hash(arch) == hash(dataclasses.replace(arch)) and arch.nested
    assert Architecture(hidden=(2,)).layer_shapes(3) == [((3, 2), (2,)), ((2, 1), (1,))]
    with pytest.raises(SpecificationError, match="architecture"):
        Architecture(hidden=(2,), kind="mixture")
    assert jax.tree.leaves(Architecture(hidden=(2,), kind="additive", groups=((0,), (1, 2)))) != []


def test_localglmnet_selection_keeps_a_strong_effect_and_not_the_noise():
    data = ng.datasets.simulate_motor(3000, seed=7)
    data["unrelated"] = np.random.default_rng(3).normal(size=len(data))  # a second, user-side noise column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        table = ng.localglmnet_selection(
            "ClaimNb ~ BonusMalus + unrelated", data, family="poisson", exposure="Exposure", hidden=(4,), epochs=60, seed=1
        )
    assert list(table.columns) == ["input", "mean_coef", "sd_coef", "lower", "upper", "outside", "keep"]
    rows = table.set_index("input")
    assert list(rows.index) == ["BonusMalus", "unrelated", "noise_covariate"]
    assert rows.loc["BonusMalus", "keep"] and rows.loc["BonusMalus", "outside"] > 0.5  # 0.9·log(BM/50): a strong effect
    assert np.isclose(rows.loc["noise_covariate", "outside"], 0.05, atol=0.05)  # the band is its own 95 % range
    assert table.attrs["fit"].architecture.kind == "localglmnet"


def test_localglmnet_selection_refuses_bad_arguments(df):
    with pytest.raises(SpecificationError, match="'level' parameter"):
        ng.localglmnet_selection(FORMULA, df, level=1.5)
    with pytest.raises(SpecificationError, match="noise_covariate"):
        ng.localglmnet_selection(FORMULA, df.assign(noise_covariate=1.0))


def test_plots_of_the_architectures_draw_on_the_given_axes(fits, df):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4)
    try:
        assert ng.plots.local_coefficients(fits["localglmnet"], df, "DrivAge", ax=axes[0], band=(-0.1, 0.1)) is axes[0]
        assert len(axes[0].collections[-1].get_offsets()) == len(df)  # one point per row
        assert ng.plots.shape_functions(fits["additive"], df, "DrivAge", ax=axes[1]) is axes[1]
        line = axes[1].get_lines()[-1]
        table = fits["additive"].shape_functions(df)
        np.testing.assert_allclose(line.get_ydata(), table.loc[table["term"] == "DrivAge", "effect"])
        assert ng.plots.shape_functions(fits["additive"], df, "C(Area)", ax=axes[2]) is axes[2]
        embedded = quiet_fit(FORMULA, df, embed={"Area": 2}, **SMALL)
        assert ng.plots.embeddings(embedded, ax=axes[3]) is axes[3]
        assert len(axes[3].texts) == 6  # one label per level
        with pytest.raises(SpecificationError, match="not a term"):
            ng.plots.shape_functions(fits["additive"], df, "Density", ax=axes[1])
    finally:
        plt.close(figure)


def test_shape_functions_take_bands_from_the_bootstrap(fits, df):
    fit = fits["additive"]
    with pytest.raises(SpecificationError, match="start='fitted'"):
        ng.bootstrap(fit, n_boot=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        boot = ng.bootstrap(fit, n_boot=8, seed=0, start="fitted", max_iter=20)
    shapes = fit.shape_functions(df, bootstrap=boot, level=0.9)
    assert (shapes["lower"] <= shapes["upper"]).all() and (shapes["upper"] - shapes["lower"]).max() > 0
    # Each band is the refits' own 5 %-95 % range: recompute one point from the replicate parameters.
    row = shapes[shapes["term"] == "DrivAge"].iloc[0]
    probe = df[df["DrivAge"] == row["value"]].head(1)
    effects = [
        dataclasses.replace(fit, params=architecture_views._unflatten(fit.params, vector))
        .shape_functions(probe)
        .query("term == 'DrivAge'")["effect"]
        .iloc[0]
        for vector in boot.estimates[boot.ok]
    ]
    np.testing.assert_allclose([row["lower"], row["upper"]], np.quantile(effects, [0.05, 0.95]), rtol=1e-10)
