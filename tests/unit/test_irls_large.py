"""The large-n path of IRLS: subsample warm start, preconditioned steps, one full Gram.

The parity tests run at n = 500, below ``IRLSControl.subsample_min_n``, so they never reach
this path. Here the control's thresholds are lowered so n ≈ 20,000 uses it, and one honest
n = 250,000 Poisson fit runs with the real thresholds. References: statsmodels at tol 1e-13.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.data.design import design_from_arrays
from neuralglm.errors import RankDeficientError
from neuralglm.family.registry import get_family, get_link
from neuralglm.fit import irls_start, linalg
from neuralglm.fit.irls import IRLSControl, fit_irls
from neuralglm.results.result import make_result

RTOL = 1e-7

SM_FAMILIES = {
    ("poisson", "log"): lambda: sm.families.Poisson(sm.families.links.Log()),
    ("binomial", "logit"): lambda: sm.families.Binomial(sm.families.links.Logit()),
    ("binomial", "probit"): lambda: sm.families.Binomial(sm.families.links.Probit()),
    ("gamma", "log"): lambda: sm.families.Gamma(sm.families.links.Log()),
}


LARGE_PATH = IRLSControl(subsample_min_n=10_000, subsample_rows=2_000)


def _glm_fit(X, y, *, family, link=None, offset, weights, column_names=None, control=LARGE_PATH):
    """``ng.glm_fit`` with an IRLS control (the large-data path at n ≈ 20,000)."""
    family_obj = get_family(family)
    link_obj = get_link(link, family_obj)
    design = design_from_arrays(X, y, column_names=column_names, weights=weights, freq_weights=None, offset=offset, family=family_obj)
    solution = fit_irls(
        design.X, design.y, design.total_weights, design.offset, family_obj, link_obj, column_names=design.column_names, control=control
    )
    return make_result(design, family_obj, link_obj, solution)


def _design(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "iid":
        features = rng.standard_normal((n, 4))
    else:  # one common factor (correlation ≈ 0.8) and column scales from 0.01 to 100
        common = rng.standard_normal((n, 1))
        features = (2.0 * common + rng.standard_normal((n, 4))) * np.array([0.01, 1.0, 10.0, 100.0])
    return np.column_stack([np.ones(n), features])


def _simulate(family: str, link: str, n: int, kind: str, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = _design(n, kind, rng)
    beta_scaled = np.array([0.2, 0.3, -0.2, 0.1, 0.25])
    beta = beta_scaled / np.maximum(X.std(axis=0), 1.0)  # linear predictor sd ≈ 0.3 whatever the scales
    offset = rng.uniform(-0.2, 0.2, n)
    weights = rng.integers(1, 4, n).astype(float)  # whole numbers: binomial y × weights stays whole
    eta = X @ beta + offset
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "binomial":
        p = 1 / (1 + np.exp(-eta)) if link == "logit" else sm.families.links.Probit().inverse(eta)
        y = (rng.random(n) < p).astype(float)
    else:
        y = rng.gamma(2.0, np.exp(eta) / 2.0)
    return X, y, offset, weights


def _reference(family, link, X, y, offset, weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, X, family=SM_FAMILIES[(family, link)](), offset=offset, var_weights=weights)
        return model.fit(tol=1e-13, tol_criterion="params", maxiter=200)


def _check(fit, ref):
    assert_allclose(fit.coef.to_numpy(), ref.params, rtol=RTOL, atol=1e-12)
    assert_allclose(fit.std_errors.to_numpy(), ref.bse, rtol=RTOL)
    assert_allclose(fit.deviance, ref.deviance, rtol=1e-12)


@pytest.mark.parametrize("kind", ["iid", "correlated"])
@pytest.mark.parametrize(("family", "link"), list(SM_FAMILIES))
def test_large_path_matches_statsmodels(family, link, kind):
    X, y, offset, weights = _simulate(family, link, 20_000, kind)
    fit = _glm_fit(X, y, family=family, link=link, offset=offset, weights=weights)
    assert fit.info.converged
    _check(fit, _reference(family, link, X, y, offset, weights))


@pytest.mark.parametrize(("family", "link"), [("poisson", "log"), ("binomial", "logit")])
def test_one_full_gram_whose_step_is_verified_by_a_score_pass(monkeypatch, family, link):
    """Preconditioned steps, then a single full-data Gram: its Newton step is checked against the
    stopping rule with its own factor (the weights moved < covariance_rtol), not by a second Gram.
    The covariance from that factor still matches statsmodels (test_large_path_matches_statsmodels).
    Canonical links only: elsewhere Fisher scoring is not Newton's method and converges linearly,
    so its step from 1e-5 SE does not reach 1e-9 SE and further Gram iterations follow."""
    grams = []
    original = linalg.weighted_gram_and_rhs

    def counting(X, *args, **kwargs):
        grams.append(X.shape)
        return original(X, *args, **kwargs)

    monkeypatch.setattr(linalg, "weighted_gram_and_rhs", counting)
    X, y, offset, weights = _simulate(family, link, 20_000, "iid")
    fit = _glm_fit(X, y, family=family, link=link, offset=offset, weights=weights)
    assert fit.info.converged
    assert grams.count(X.shape) == 1  # (the subsample's Grams have fewer rows)
    assert fit.info.n_iter > 1  # the history records the preconditioned steps too
    assert fit.info.history["iteration"].tolist() == list(range(1, fit.info.n_iter + 1))


def test_fallback_when_preconditioner_is_poor(monkeypatch):
    """A badly scaled preconditioner makes the steps stall; the full iterations still converge."""
    original = irls_start.warm_start

    def poor(*args, **kwargs):
        warm = original(*args, **kwargs)
        return None if warm is None else irls_start.WarmStart(warm.coef, warm.factor, warm.scale * 0.3)

    monkeypatch.setattr(irls_start, "warm_start", poor)
    X, y, offset, weights = _simulate("binomial", "logit", 20_000, "iid")
    fit = _glm_fit(X, y, family="binomial", offset=offset, weights=weights)
    _check(fit, _reference("binomial", "logit", X, y, offset, weights))


def test_honest_large_poisson():
    n = 250_000
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 5))])
    offset = rng.uniform(-0.2, 0.2, n)
    y = rng.poisson(np.exp(X @ np.array([0.1, 0.2, -0.1, 0.05, 0.3, -0.2]) + offset)).astype(float)
    weights = np.ones(n)
    assert n >= IRLSControl().subsample_min_n
    fit = ng.glm_fit(X, y, family="poisson", offset=offset)
    _check(fit, _reference("poisson", "log", X, y, offset, weights))


def test_collinear_column_at_large_n_raises():
    X, y, offset, weights = _simulate("poisson", "log", 20_000, "iid")
    X = np.column_stack([X, X[:, 1] - 2.0 * X[:, 3]])
    names = ["Intercept", "a", "b", "c", "d", "a_minus_2c"]
    with pytest.raises(RankDeficientError, match="a_minus_2c"):
        _glm_fit(X, y, family="poisson", offset=offset, weights=weights, column_names=names)


def test_rank_certified():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(5_000), rng.standard_normal((5_000, 3))])
    prior = np.ones(5_000)
    working = rng.uniform(0.5, 2.0, 5_000)  # working/prior weight ratio within [0.5, 2]
    factor = linalg.factor_gram(linalg.weighted_gram(X, working))
    assert linalg.rank_certified(factor, prior, working)
    assert not linalg.rank_certified(None, prior, working)
    # Nearly collinear: the share outside the span of the others is far below the certificate.
    near = np.column_stack([X, X[:, 1] + 1e-4 * rng.standard_normal(5_000)])
    near_factor = linalg.factor_gram(linalg.weighted_gram(near, working))
    assert not linalg.rank_certified(near_factor, prior, working)
    # Extreme weight spread voids the certificate even for a well-conditioned design.
    extreme = working.copy()
    extreme[0] = 1e-12
    assert not linalg.rank_certified(linalg.factor_gram(linalg.weighted_gram(X, extreme)), prior, extreme)
