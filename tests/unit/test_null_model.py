"""The null model (family/null_model.py) against statsmodels' intercept-only GLM with the same offset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from neuralglm.errors import ConvergenceWarning, DivergenceError
from neuralglm.family.null_model import intercept_only, null_deviance
from neuralglm.family.registry import get_family, get_link

CASES = [
    ("poisson", "log", lambda: sm.families.Poisson(sm.families.links.Log())),
    ("poisson", "sqrt", lambda: sm.families.Poisson(sm.families.links.Sqrt())),
    ("binomial", "probit", lambda: sm.families.Binomial(sm.families.links.Probit())),
    ("binomial", "cloglog", lambda: sm.families.Binomial(sm.families.links.CLogLog())),
    ("gamma", "log", lambda: sm.families.Gamma(sm.families.links.Log())),
]


def simulate(family: str, n: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    offset = rng.uniform(-0.4, 0.4, n)
    weights = rng.integers(1, 4, n).astype(float)
    mean = np.exp(0.2 + offset)
    if family == "poisson":
        y = rng.poisson(mean).astype(float)
    elif family == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + offset)))).astype(float)
    else:
        y = rng.gamma(2.0, mean / 2.0)
    return y, weights, offset


@pytest.mark.parametrize(("family", "link", "sm_family"), CASES, ids=[f"{f}-{link}" for f, link, _ in CASES])
def test_intercept_only_fit_with_an_offset_matches_statsmodels(family, link, sm_family):
    y, weights, offset = simulate(family)
    family_obj = get_family(family)
    link_obj = get_link(link, family_obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own notes on links
        reference = sm.GLM(y, np.ones((len(y), 1)), family=sm_family(), offset=offset, var_weights=weights).fit(
            tol=1e-14, tol_criterion="params", maxiter=200
        )
    # Both iterate to far below 1e-9 standard errors: 1e-10 relative leaves room for rounding.
    assert_allclose(intercept_only(y, weights, offset, family_obj, link_obj), reference.params[0], rtol=1e-10)
    assert_allclose(null_deviance(y, weights, offset, family_obj, link_obj, True), reference.deviance, rtol=1e-12)


def test_without_an_offset_the_intercept_is_the_link_of_the_weighted_mean():
    y, weights, _ = simulate("poisson")
    family = get_family("poisson")
    link = get_link(None, family)
    assert intercept_only(y, weights, np.zeros_like(y), family, link) == pytest.approx(np.log(np.average(y, weights=weights)), rel=1e-15)


def test_without_an_intercept_the_null_model_is_the_offset_alone():
    y, weights, offset = simulate("poisson")
    family = get_family("poisson")
    expected = sm.families.Poisson().deviance(y, np.exp(offset), var_weights=weights)
    assert_allclose(null_deviance(y, weights, offset, family, get_link(None, family), False), expected, rtol=1e-12)


def test_an_intercept_the_iterations_cannot_reach_is_a_clear_error():
    """Identity-link Poisson with offsets ±50: the first Fisher step from R's start, and every halving towards
    g(ȳ) − mean(offset) = 1.5, give negative means (a valid intercept must exceed 50): a DivergenceError
    naming the null model, as the IRLS fit on a column of ones gave before."""
    y = np.array([1.0, 2.0, 0.0, 3.0])
    offset = np.array([-50.0, 50.0, -50.0, 50.0])
    family = get_family("poisson")
    with pytest.raises(DivergenceError, match="null model"):
        intercept_only(y, np.ones(4), offset, family, get_link("identity", family))


def test_an_unconverged_null_model_warns_that_the_null_deviance_may_be_inaccurate():
    """With an offset the intercept takes several Fisher steps; stopped after one it warns and returns that step."""
    y, weights, offset = simulate("gamma")
    family = get_family("gamma")
    link = get_link("log", family)
    converged = intercept_only(y, weights, offset, family, link)
    with pytest.warns(ConvergenceWarning, match=r"null model\) did not converge in 1 Fisher-scoring iterations.*null deviance"):
        first = intercept_only(y, weights, offset, family, link, max_iter=1)
    # Independent: gamma, log link: working weights are the prior weights (V(μ)·g'(μ)² = μ²/μ² = 1) and the
    # working response is η − offset + (y − μ)/μ, from R's start μ = y.
    expected = np.sum(weights * (np.log(y) - offset)) / np.sum(weights)
    assert_allclose(first, expected, rtol=1e-12)
    assert abs(first - converged) > 1e-6  # the case needs more than one step: the warning is not idle
    # Enough iterations, and a looser step tolerance, converge without a warning (warnings are errors here).
    assert_allclose(intercept_only(y, weights, offset, family, link, max_iter=50, step_tol_se=1e-6), converged, rtol=1e-8)
