"""Model files of multinomial GLMs and networks (format 2, kinds "multinomial" and "multinomial_network").

A loaded model predicts exactly what the fitted one predicts (every ``type``); what it holds is
checked entry by entry on load (edited files are refused by their checksums, and resealed edits
by the schema), and loading runs no code: the formula passes the allowlist before it meets data.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from helpers import model_file_entries, resealed_model_file
from neuralglm.errors import ModelFileError
from neuralglm.results.multinomial import MultinomialResult
from neuralglm.results.multinomial_network import MultinomialNetworkResult


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 240
    x = rng.normal(size=n)
    g = pd.Categorical(rng.choice(["north", "south", "west"], size=n))
    eta = np.column_stack([np.zeros(n), 0.4 + x + (g == "south"), -0.5 * x - 0.8 * (g == "west")])
    prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    codes = (rng.random(n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    y = pd.Categorical(np.array(["low", "mid", "high"])[codes], categories=["low", "mid", "high"])
    return pd.DataFrame({"y": y, "x": x, "g": g, "w": rng.integers(1, 4, size=n)})


@pytest.fixture(scope="module")
def fits(df):
    return {
        "glm": ng.glm("y ~ x + C(g) + np.log(x**2 + 1)", df, family="multinomial", weights="w"),
        "network": ng.fit("y ~ x + C(g)", df, family="multinomial", hidden=(3,), seed=1, weights="w"),
        "network-no-hidden": ng.fit("y ~ x + C(g)", df, family="multinomial", solver="lbfgs", l2=2.0),
    }


def _round_trip(fit, include_data=False):
    buffer = io.BytesIO()
    fit.save(buffer, include_data=include_data)
    raw = buffer.getvalue()
    return ng.load(io.BytesIO(raw)), raw


@pytest.mark.parametrize("name", ["glm", "network", "network-no-hidden"])
@pytest.mark.parametrize("include_data", [False, True])
def test_predictions_are_equal_after_load(fits, df, name, include_data):
    fit = fits[name]
    loaded, _ = _round_trip(fit, include_data)
    assert type(loaded) is type(fit) and loaded.levels == fit.levels == ("low", "mid", "high")
    new = df.sample(50, random_state=1)
    for kind in ("response", "link", "class"):
        expected, got = fit.predict(new, type=kind), loaded.predict(new, type=kind)
        pd.testing.assert_frame_equal(got, expected) if kind != "class" else pd.testing.assert_series_equal(got, expected)
    assert loaded.coef.equals(fit.coef)
    for statistic in ("deviance", "null_deviance", "loglik", "aic", "bic", "n_obs"):
        assert getattr(loaded, statistic) == getattr(fit, statistic), statistic
    assert loaded.info.status is fit.info.status and loaded.info.history.equals(fit.info.history)
    assert loaded.source is not None and loaded.source.include_data is include_data
    if include_data:
        pd.testing.assert_frame_equal(loaded.predict(), fit.predict())
    else:
        with pytest.raises(ModelFileError, match=r"predict\(\) without new data needs the training data"):
            loaded.predict()
    with pytest.raises(ModelFileError, match="refit"):
        loaded.refit()


def test_glm_keeps_its_inference(fits):
    fit = fits["glm"]
    loaded, _ = _round_trip(fit)
    assert isinstance(loaded, MultinomialResult)
    assert loaded.vcov.equals(fit.vcov) and loaded.std_errors.equals(fit.std_errors)
    assert loaded.conf_int().equals(fit.conf_int())
    assert str(loaded.summary()) == str(fit.summary()) + "\n" + loaded.source.describe()


def test_network_keeps_its_architecture_and_training(fits):
    fit = fits["network"]
    loaded, _ = _round_trip(fit)
    assert isinstance(loaded, MultinomialNetworkResult)
    assert loaded.architecture.hidden == fit.architecture.hidden and loaded.architecture.activations == fit.architecture.activations
    assert loaded.n_params == fit.n_params == (3 * 3 + 3) + (3 + 1) * 2  # inputs x and two dummies of g
    assert loaded.control == fit.control and loaded.seed == fit.seed and loaded.dtype == fit.dtype
    for mine, theirs in zip(loaded.params, fit.params, strict=True):
        assert np.array_equal(mine.weight, theirs.weight) and np.array_equal(mine.bias, theirs.bias)
    assert "Model file: saved without training data" in str(loaded.summary())
    assert ng.save(fit, io.BytesIO()) is None  # the module-level save takes multinomial results too


def test_edited_files_are_refused(fits):
    _, raw = _round_trip(fits["network"])
    spec, arrays = model_file_entries(raw)
    assert spec["kind"] == "multinomial_network"
    # an edit without new checksums: the spec's digest of the array no longer matches
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    entries["params.1.bias"] = entries["params.1.bias"] + 1.0
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    with pytest.raises(ModelFileError, match="checksum"):
        ng.load(io.BytesIO(buffer.getvalue()))
    # resealed edits: each is refused by the schema, naming what is wrong
    one_level = {**spec, "result": {**spec["result"], "levels": ["low"]}}
    with pytest.raises(ModelFileError, match="at least two distinct levels"):
        ng.load(resealed_model_file(one_level, arrays))
    four_levels = {**spec, "result": {**spec["result"], "levels": ["low", "mid", "high", "top"]}}
    with pytest.raises(ModelFileError, match="shape"):
        ng.load(resealed_model_file(four_levels, arrays))  # the output layer holds 2 logits, not 3
    odd_dtype = {**spec, "result": {**spec["result"], "dtype": "object"}}
    with pytest.raises(ModelFileError, match="dtype must be 'float32' or 'float64'"):
        ng.load(resealed_model_file(odd_dtype, arrays))
    code = {**spec, "result": {**spec["result"], "formula": "y ~ __import__('os').system('true')"}}
    code["result"]["design"] = {**spec["result"]["design"], "formula": code["result"]["formula"]}
    with pytest.raises(ModelFileError):
        ng.load(resealed_model_file(code, arrays))


def test_glm_file_with_wrong_coefficient_count_is_refused(fits):
    _, raw = _round_trip(fits["glm"])
    spec, arrays = model_file_entries(raw)
    assert spec["kind"] == "multinomial"
    arrays = {**arrays, "coef": arrays["coef"][:-1]}
    with pytest.raises(ModelFileError, match="'coef' has shape"):
        ng.load(resealed_model_file(spec, arrays))
