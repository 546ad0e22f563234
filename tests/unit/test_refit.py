"""``fit.refit``: the recorded call replayed gives exactly the fit a direct call makes."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neuralglm as ng
from neuralglm.errors import ModelFileError, SpecificationError


@pytest.fixture
def claims():
    return ng.datasets.load_insurance()


def test_glm_refit_on_rows_equals_direct_fit(claims):
    fit = ng.glm("claims ~ age + group", claims, family="poisson", exposure="holders")
    part = claims.iloc[10:50]
    direct = ng.glm("claims ~ age + group", part, family="poisson", exposure="holders")
    np.testing.assert_array_equal(fit.refit(part).coef.to_numpy(), direct.coef.to_numpy())
    assert fit.refit(part).deviance == direct.deviance


def test_glm_refit_with_changed_formula_equals_direct_fit(claims):
    fit = ng.glm("claims ~ age + group", claims, family="poisson", exposure="holders")
    smaller = fit.refit(formula="claims ~ age")
    direct = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    np.testing.assert_array_equal(smaller.coef.to_numpy(), direct.coef.to_numpy())
    assert smaller.call is not None and smaller.call.arguments["formula"] == "claims ~ age"


def test_network_refit_replays_seed_and_settings(claims):
    settings = {"family": "poisson", "exposure": "holders", "hidden": (3,), "l2": 1.0, "solver": "lbfgs", "seed": 2}
    net = ng.fit("claims ~ age + group", claims, **settings)
    part = claims.iloc[:48]
    direct = ng.fit("claims ~ age + group", part, **settings)
    assert net.refit(part).deviance == direct.deviance
    assert net.refit(l2=3.0).deviance != net.deviance  # a changed argument is used


def test_fit_without_hidden_layers_refits_through_fit(claims):
    fit = ng.fit("claims ~ age", claims, family="poisson", exposure="holders")
    assert fit.call is not None and fit.call.name == "fit"
    assert fit.refit(claims.iloc[:30]).n_obs == 30


def test_glm_fit_refit_with_new_response():
    X = np.column_stack([np.ones(20), np.linspace(0, 1, 20)])
    y = 1 + 2 * X[:, 1] + np.sin(np.arange(20))
    fit = ng.glm_fit(X, y)
    y2 = y + 1.0
    np.testing.assert_allclose(fit.refit(y=y2).coef.to_numpy(), fit.coef.to_numpy() + np.array([1.0, 0.0]), rtol=1e-10)


def test_unknown_argument_and_loaded_model_are_refused(claims):
    fit = ng.glm("claims ~ age", claims, family="poisson", exposure="holders")
    with pytest.raises(SpecificationError, match=r"'hidden'.*glm\(\) does not take"):
        fit.refit(hidden=(3,))
    buffer = io.BytesIO()
    fit.save(buffer)
    with pytest.raises(ModelFileError, match="loaded from a file"):
        ng.load(io.BytesIO(buffer.getvalue())).refit()
