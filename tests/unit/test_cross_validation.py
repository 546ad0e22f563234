"""``ng.cross_validate``: the same folds for every model, scores equal to a by-hand loop, and the verdicts it must reach.

References are independent of the module: folds from :func:`fold_ids` (one permutation), a
loop of ``refit`` + ``heldout_deviance`` per fold, and the weighted fold mean and standard
error computed here with NumPy (R's ``cv.glmnet`` formula).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.cross_validation import fold_ids
from neuralglm.errors import DataError, ModelFileError, SpecificationError

NETWORK = {"hidden": (4,), "activation": "tanh", "l2": 1.0, "solver": "lbfgs", "epochs": 5000, "seed": 0}
CLAIMS = "claims ~ C(district) + group + age"


def simulate(n_obs: int, seed: int, linear: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.uniform(-2, 2, n_obs), "x2": rng.uniform(-2, 2, n_obs)})
    signal = 0.8 * df.x1 - 0.5 * df.x2 if linear else np.sin(2 * df.x1) + 0.5 * df.x2**2
    df["y"] = signal + 0.5 * rng.normal(size=n_obs)
    return df


@pytest.fixture(scope="module")
def claims():
    return ng.datasets.load_insurance()


def by_hand(model, data, labels, **arrays):
    """Held-out deviance, null deviance and weight of each fold, from refit and the public evaluation functions."""
    rows = []
    for label in np.unique(labels):
        test = labels == label
        fit = model.refit(data[~test], **{k: v[~test] for k, v in arrays.items()})
        held = {k: v[test] for k, v in arrays.items()}
        deviance = ng.heldout_deviance(fit, data[test], **held)
        explained = ng.heldout_deviance_explained(fit, data[test], **held)
        weight = float(np.sum(held["weights"])) if "weights" in held else float(test.sum())
        rows.append((deviance, deviance / (1.0 - explained), weight))
    return np.array(rows).T


def weighted_mean_and_se(values, weights):
    mean = np.sum(weights * values) / np.sum(weights)
    return mean, np.sqrt(np.sum(weights * (values - mean) ** 2) / np.sum(weights) / (len(values) - 1))


def test_glm_on_a_linear_truth_is_not_beaten_by_a_network():
    df = simulate(500, seed=0, linear=True)
    table = ng.cross_validate({"GLM": ng.glm("y ~ x1 + x2", df), "network": ng.fit("y ~ x1 + x2", df, **NETWORK)}, df)
    difference, se = table.loc["network", ["difference", "SE difference"]]
    assert difference > -2.0 * se  # the network does not win beyond noise ...
    assert difference < 0.05 * table.loc["GLM", "deviance per obs"]  # ... and its extra parameters cost little


def test_network_on_a_nonlinear_truth_wins_by_many_standard_errors():
    df = simulate(500, seed=0, linear=False)
    table = ng.cross_validate({"GLM": ng.glm("y ~ x1 + x2", df), "network": ng.fit("y ~ x1 + x2", df, **NETWORK)}, df)
    difference, se = table.loc["network", ["difference", "SE difference"]]
    assert difference < -5.0 * se
    assert table.loc["network", "% deviance explained"] > table.loc["GLM", "% deviance explained"] + 10.0
    # Pairing: the difference is known far better than either model's mean deviance.
    assert se < table.loc["GLM", "SE"]


def test_poisson_rate_model_equals_a_by_hand_loop_over_the_same_folds(claims):
    glm = ng.glm(CLAIMS, claims, family="poisson", exposure="holders")
    small = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    table, per_fold = ng.cross_validate({"full": glm, "age": small}, claims, folds=4, seed=3, return_folds=True)
    labels = fold_ids(len(claims), 4, seed=3)
    means = {}
    for name, model in (("full", glm), ("age", small)):
        deviance, null, weight = by_hand(model, claims, labels)
        assert_allclose(per_fold.loc[name, "deviance"], deviance, rtol=1e-12)
        assert_allclose(per_fold.loc[name, "null deviance"], null, rtol=1e-9)
        means[name] = deviance / weight
        mean, se = weighted_mean_and_se(means[name], weight)
        assert_allclose(table.loc[name, ["deviance per obs", "SE"]].to_numpy(float), [mean, se], rtol=1e-12)
        assert_allclose(table.loc[name, "% deviance explained"], 100 * (1 - deviance.sum() / null.sum()), rtol=1e-9)
    paired = weighted_mean_and_se(means["age"] - means["full"], weight)
    assert_allclose(table.loc["age", ["difference", "SE difference"]].to_numpy(float), paired, rtol=1e-9)


def test_arrays_for_exposure_and_weights_are_cut_to_the_folds(claims):
    weights = np.random.default_rng(5).uniform(0.5, 2.0, len(claims))
    data = claims.assign(w=weights)
    by_name = ng.glm(CLAIMS, data, family="poisson", exposure="holders", weights="w")
    by_array = ng.glm(CLAIMS, claims, family="poisson", exposure=claims["holders"].to_numpy(), weights=weights)
    from_columns = ng.cross_validate({"m": by_name}, data, folds=4)
    from_arrays, per_fold = ng.cross_validate({"m": by_array}, claims, folds=4, return_folds=True)
    assert_allclose(from_arrays.to_numpy(float), from_columns.to_numpy(float), rtol=1e-12)
    labels = fold_ids(len(claims), 4, seed=0)
    deviance, _, weight = by_hand(by_array, claims, labels, exposure=claims["holders"].to_numpy(), weights=weights)
    assert_allclose(per_fold.loc["m", "deviance"], deviance, rtol=1e-12)
    assert_allclose(per_fold.loc["m", "weight"], weight, rtol=1e-12)  # deviance per unit of prior weight


def test_every_model_sees_the_same_folds_and_the_seed_fixes_them(claims):
    glm = ng.glm(CLAIMS, claims, family="poisson", exposure="holders")
    small = ng.glm("claims ~ group", claims, family="poisson", exposure="holders")
    _, together = ng.cross_validate({"full": glm, "group": small}, claims, folds=5, seed=1, return_folds=True)
    _, alone = ng.cross_validate({"group": small}, claims, folds=5, seed=1, return_folds=True)
    counts = np.bincount(fold_ids(len(claims), 5, seed=1))
    assert together.loc["full", "rows"].tolist() == together.loc["group", "rows"].tolist() == counts.tolist()
    # A model's fold scores do not depend on which other models are compared: the folds are the data's, not the model's.
    assert_allclose(together.loc["group", "deviance"], alone.loc["group", "deviance"], rtol=0)
    again = ng.cross_validate({"group": small}, claims, folds=5, seed=1)
    other = ng.cross_validate({"group": small}, claims, folds=5, seed=2)
    assert again.equals(ng.cross_validate({"group": small}, claims, folds=5, seed=1))
    assert not np.isclose(again.loc["group", "SE"], other.loc["group", "SE"])


def test_fold_labels_can_be_given(claims):
    small = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    labels = fold_ids(len(claims), 4, seed=0)
    by_count = ng.cross_validate({"m": small}, claims, folds=4, seed=0)
    by_labels = ng.cross_validate({"m": small}, claims, folds=np.array(["abcd"[k] for k in labels]))
    assert_allclose(by_labels.to_numpy(float), by_count.to_numpy(float), rtol=1e-12)


def test_network_model_is_refitted_with_its_own_settings(claims):
    settings = {
        "family": "poisson",
        "exposure": "holders",
        "hidden": (2,),
        "activation": "tanh",
        "l2": 0.1,
        "solver": "lbfgs",
        "epochs": 5000,
    }
    net = ng.fit(CLAIMS, claims, **settings, seed=0)
    _, per_fold = ng.cross_validate({"net": net}, claims, folds=4, return_folds=True)
    test = fold_ids(len(claims), 4, seed=0) == 2
    direct = ng.fit(CLAIMS, claims[~test], **settings, seed=0)
    assert_allclose(per_fold.loc[("net", 2), "deviance"], ng.heldout_deviance(direct, claims[test]), rtol=1e-12)


def test_loaded_model_gives_the_refit_error(claims):
    buffer = io.BytesIO()
    ng.glm("claims ~ age", claims, family="poisson", exposure="holders").save(buffer)
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    with pytest.raises(ModelFileError, match=r"model 'loaded' cannot be refitted: refit\(\) needs the call .* ng.glm"):
        ng.cross_validate({"loaded": loaded}, claims)


def test_a_level_missing_from_the_training_folds_is_a_clear_error(claims):
    data = claims.assign(region=np.where(np.arange(len(claims)) == 7, "rare", "common"))
    fit = ng.glm("claims ~ age + region", data, family="poisson", exposure="holders")
    with pytest.raises(
        DataError, match=r"fold \d holds rows that model 'm', refitted on the other folds, cannot predict \(.*'rare'.*\); use fewer folds"
    ):
        ng.cross_validate({"m": fit}, data, folds=4)


def test_models_that_cannot_be_compared_are_refused(claims):
    poisson = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    with pytest.raises(SpecificationError, match="deviances of different families are not on one scale"):
        ng.cross_validate({"poisson": poisson, "gaussian": ng.glm("claims ~ age", claims)}, claims)
    unweighted = ng.glm("claims ~ age", claims, family="poisson", exposure="holders", weights=np.full(len(claims), 2.0))
    with pytest.raises(SpecificationError, match="different responses or weights"):
        ng.cross_validate({"a": poisson, "b": unweighted}, claims, folds=2)
    X = np.column_stack([np.ones(len(claims)), claims["district"]])
    with pytest.raises(SpecificationError, match=r"ng\.glm_fit from a matrix"):
        ng.cross_validate({"m": ng.glm_fit(X, claims["claims"], family="poisson")}, claims)


@pytest.mark.parametrize(
    ("models", "folds", "message"),
    [
        ({}, 5, "must be a non-empty dict"),
        ([1], 5, "must be a non-empty dict"),
        ({"m": "fit"}, 5, "model 'm' is a str, not a fitted model"),
        (None, 1, r"'folds' parameter of cross_validate must be an integer in \[2, 64\]"),
        (None, 65, r"must be an integer in \[2, 64\]"),
        (None, np.zeros(10), "one fold label per row of data"),
        (None, np.zeros(64), "at least 2 folds"),
    ],
)
def test_bad_arguments_are_refused(claims, models, folds, message):
    models = {"m": ng.glm("claims ~ age", claims, family="poisson", exposure="holders")} if models is None else models
    with pytest.raises(SpecificationError, match=message):
        ng.cross_validate(models, claims, folds=folds)


def test_models_whose_family_parameters_differ_are_refused():
    """Negative binomial deviances depend on α: models with different α are not on one scale."""
    claims = ng.datasets.load_insurance()
    a = ng.glm("claims ~ group", claims, family="negative_binomial(0.1)", exposure="holders")
    b = ng.glm("claims ~ age", claims, family="negative_binomial(0.5)", exposure="holders")
    with pytest.raises(SpecificationError, match="depends on its parameter"):
        ng.cross_validate({"a": a, "b": b}, claims)


def test_models_fitted_with_missing_drop_score_the_rows_complete_for_every_model(claims):
    # R's na.omit over the union of the models' variables: a row missing for any model leaves
    # the data before the folds are drawn, so every model is scored on the same rows.
    data = claims.assign(extra=np.where(np.arange(len(claims)) % 9 == 4, np.nan, np.linspace(0, 1, len(claims))))
    with pytest.warns(ng.errors.DataWarning):
        with_extra = ng.glm("claims ~ age + extra", data, family="poisson", exposure="holders", missing="drop")
    small = ng.glm("claims ~ age", data, family="poisson", exposure="holders")
    labels = fold_ids(len(data), 4, seed=2)
    table, per_fold = ng.cross_validate({"extra": with_extra, "age": small}, data, folds=labels, return_folds=True)
    complete = data["extra"].notna().to_numpy()
    reference = ng.cross_validate(
        {"extra": with_extra.refit(data[complete], missing="raise"), "age": small}, data[complete], folds=labels[complete]
    )
    assert_allclose(table.to_numpy(float), reference.to_numpy(float), rtol=1e-12)
    assert per_fold.loc["age", "rows"].sum() == complete.sum()


def test_missing_values_in_a_model_fitted_without_drop_name_the_column_not_the_level_remedy(claims):
    data = claims.assign(extra=np.where(np.arange(len(claims)) == 5, np.nan, np.linspace(0, 1, len(claims))))
    glm = ng.glm("claims ~ age", data, family="poisson", exposure="holders")
    with_extra = ng.glm("claims ~ age + extra", data.dropna(), family="poisson", exposure="holders")
    with pytest.raises(DataError, match=r"cross_validate: refitting model 'extra' without fold .*'extra' has 1 row") as error:
        ng.cross_validate({"age": glm, "extra": with_extra}, data, folds=3)
    assert "merge rare levels" not in str(error.value)


def test_a_multinomial_fit_is_refused_as_not_supported_yet(claims):
    multinomial = ng.glm("age ~ group", claims, family="multinomial")
    with pytest.raises(SpecificationError, match="'m' is a multinomial fit, which cross_validate does not support yet"):
        ng.cross_validate({"m": multinomial}, claims, folds=3)
