"""Influence measures (leverage, standardized residuals, Cook's distance) against statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import neuralglm as ng
from helpers import simulate_glm
from neuralglm.inference.influence import influence

# (family, link, statsmodels family, prior weights?): fixed dispersions with canonical links,
# estimated dispersions with and without a non-canonical link, with prior weights.
CASES = [
    ("poisson", "log", lambda: sm.families.Poisson(), False),
    ("gamma", "log", lambda: sm.families.Gamma(sm.families.links.Log()), True),
    ("binomial", "logit", lambda: sm.families.Binomial(), False),
    ("gaussian", "identity", lambda: sm.families.Gaussian(), True),
]


@pytest.mark.parametrize(("family", "link", "sm_family", "weighted"), CASES, ids=lambda c: c if isinstance(c, str) else "")
def test_influence_matches_statsmodels(family, link, sm_family, weighted):
    df = simulate_glm(family, link, n_obs=150, n_features=2, seed=5)
    df["w"] = np.random.default_rng(5).uniform(0.5, 2.0, len(df)) if weighted else 1.0
    ours = influence(ng.glm("y ~ x1 + x2", df, family=family, link=link, weights="w"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own deprecation/domain warnings
        ref_fit = smf.glm("y ~ x1 + x2", df, family=sm_family(), var_weights=df["w"]).fit(tol=1e-13)
        # observed=False: the expected-information (IRLS) weights, as R's hatvalues. statsmodels'
        # default uses the observed information, which differs for non-canonical links.
        ref = ref_fit.get_influence(observed=False)
        cooks = ref.cooks_distance[0]
    # Same estimator and the same formulas on coefficients that agree to ~1e-10 (tol=1e-13):
    # rtol 1e-6 is the parity tolerance of the suite.
    assert_allclose(ours["leverage"], ref.hat_matrix_diag, rtol=1e-6)
    assert_allclose(ours["standardized_pearson"], ref.resid_studentized, rtol=1e-6)
    assert_allclose(ours["cooks_distance"], cooks, rtol=1e-6)
    # R's rstandard.glm: deviance residual / sqrt(phi (1 - h)), with statsmodels' pieces.
    expected = ref_fit.resid_deviance / np.sqrt(ref_fit.scale * (1 - ref.hat_matrix_diag))
    assert_allclose(ours["standardized_deviance"], expected, rtol=1e-6)


def test_leverage_is_a_projection_trace():
    # trace(H) = rank(X): a closed form, independent of statsmodels.
    df = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    table = influence(fit)
    assert_allclose(table["leverage"].sum(), fit.rank, rtol=1e-10)
    assert table.index.equals(fit.residuals().index)
    assert ((table["leverage"] >= 0) & (table["leverage"] <= 1)).all()


def test_leverage_does_not_depend_on_cov_type():
    # The hat matrix uses the IRLS weights whatever covariance the user asked for.
    df = simulate_glm("gamma", "log", n_obs=120, n_features=2, seed=3)
    expected = influence(ng.glm("y ~ x1 + x2", df, family="gamma", link="log"))
    for cov_type in ("observed", "sandwich"):
        other = influence(ng.glm("y ~ x1 + x2", df, family="gamma", link="log", cov_type=cov_type))
        assert_allclose(other["leverage"], expected["leverage"], rtol=1e-8)
