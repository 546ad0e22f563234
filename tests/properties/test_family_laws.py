"""The laws that tie each family and link together (DESIGN.md §4), checked with hypothesis.

Strategies stay inside each family's domains (``y_domain``, ``mu_domain``) and away from the
links' clamps. Everything runs in float64 (``jax.enable_x64``); global x64 is off in tests on
purpose, so the library cannot rely on it.

Tolerances: all quantities are a handful of float64 operations (machine epsilon 2.2e-16). A
relative tolerance of 1e-9 leaves ~10⁶ ulps of slack for the conditioning of logs and powers,
while any real formula error (a wrong constant, a missing term) moves results by ≥ 1e-3.
Where the exact answer is 0 (d(y, y), a score at y = mu) a relative tolerance is meaningless,
so the absolute tolerance is 1e-12 times the size of the terms that cancel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from scipy import stats

import neuralglm as ng
from helpers import FAMILY_LINK_GRID
from neuralglm.family import derived
from neuralglm.family.family import Binomial, Family, Gamma, Gaussian, InverseGaussian, NegativeBinomial, Poisson, Tweedie
from neuralglm.family.link import CLogLog, Identity, Inverse, InverseSquared, Link, Log, Logit, Power, Probit, Sqrt

N = 8  # fixed length: one shape per test keeps JAX's per-shape dispatch cache warm

FAMILIES: list[Family] = [
    Gaussian(),
    Binomial(),
    Poisson(),
    Gamma(),
    InverseGaussian(),
    NegativeBinomial(alpha=0.5),
    NegativeBinomial(alpha=2.0),
    Tweedie(power=1.5),
    Tweedie(power=1.2),
    Tweedie(power=2.5),
    Tweedie(power=0.0),
    Tweedie(power=1.0),
    Tweedie(power=2.0),
    Tweedie(power=3.0),
]
# Families with a closed-form density (Tweedie only at the integer powers).
DENSITY_FAMILIES = [f for f in FAMILIES if not (isinstance(f, Tweedie) and f._equivalent() is None)]


def assert_close(actual, desired, *, rtol: float = 0.0, atol=0.0) -> None:
    """``|actual − desired| ≤ atol + rtol·|desired|`` elementwise, with ``atol`` an array if need be."""
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    bound = np.asarray(atol) + rtol * np.abs(desired)
    bad = ~(np.abs(actual - desired) <= bound)
    assert not bad.any(), (
        f"mismatch at {np.flatnonzero(bad)}: actual {actual[bad]}, desired {desired[bad]}, bound {np.broadcast_to(bound, bad.shape)[bad]}"
    )


def _floats(low: float, high: float):
    return arrays(np.float64, N, elements=st.floats(low, high, allow_nan=False, allow_infinity=False))


def _counts(high: int = 60):
    return arrays(np.float64, N, elements=st.integers(0, high).map(float))


def y_strategy(family: Family, *, for_density: bool = False):
    """Responses inside ``family.y_domain`` (whole numbers for count families when a density is needed)."""
    if isinstance(family, Binomial):
        return _counts(1) if for_density else _floats(0.0, 1.0)
    if family.integer_response and for_density:
        return _counts()
    low = family.y_domain.low
    if low == 0.0 and family.y_domain.low_closed:
        return _floats(0.0, 60.0)
    if low == 0.0:
        return _floats(0.01, 60.0)
    return _floats(-30.0, 30.0)


def mu_strategy(family: Family, *, positive: bool = False):
    """Means inside ``family.mu_domain`` (strictly positive when the link needs it)."""
    if isinstance(family, Binomial):
        return _floats(0.01, 0.99)
    if family.mu_domain.low == 0.0 or positive:
        return _floats(0.01, 60.0)
    return _floats(-30.0, 30.0)


def _id(value) -> str:
    return str(value)


def _family_cases(families):
    return pytest.mark.parametrize("family", families, ids=_id)


# ---- jitted kernels: the family/link is a static argument, so each compiles once per case ----


def _x64(fn):
    """``jax.jit`` ``fn`` with its first argument static; call it in float64, return NumPy arrays."""
    jitted = jax.jit(fn, static_argnums=0)

    def call(*args):
        with jax.enable_x64(True):
            return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), jitted(*args))

    return call


@_x64
def _deviance_kernel(family, y, mu):
    grad = jax.vmap(jax.grad(family.unit_deviance, argnums=1))(y, mu)
    return family.unit_deviance(y, y), family.unit_deviance(y, mu), grad, family.variance(mu)


@_x64
def _loglik_kernel(family, y, mu, phi, weights):
    return family.loglik_obs(y, mu, phi, weights)


@_x64
def _link_kernel(link, mu, eta):
    return {
        "round_trip": link.inverse(link(mu)),
        "deriv": link.deriv(mu),
        "grad_link": jax.vmap(jax.grad(link.__call__))(mu),
        "inverse_deriv": link.inverse_deriv(eta),
        "grad_inverse": jax.vmap(jax.grad(link.inverse))(eta),
        # the base-class definition 1 / g'(g⁻¹(η)), at η = g(mu) with mu inside the range
        "inverse_deriv_at_mu": link.inverse_deriv(link(mu)),
        "default_at_mu": 1.0 / link.deriv(link.inverse(link(mu))),
    }


@_x64
def _score_kernel(case, y, mu):
    family, link = case
    eta = link(mu)
    mu = link.inverse(eta)  # the mean the score sees, after the round trip

    def loglik(y_i, eta_i):
        return family.loglik_obs(y_i, link.inverse(eta_i), 1.0, 1.0)

    def minus_half_deviance(y_i, eta_i):
        return -0.5 * family.unit_deviance(y_i, link.inverse(eta_i))

    score = derived.eta_score(family, link, y, mu, jnp.ones_like(y))
    # atol scale: the terms of the score before cancellation, |y| + |mu| over V(mu) g'(mu)
    scale = (jnp.abs(y) + jnp.abs(mu) + 1.0) * jnp.abs(link.inverse_deriv(eta)) / family.variance(mu)
    return {
        "score": score,
        "grad_loglik": jax.vmap(jax.grad(loglik, argnums=1))(y, eta),
        "grad_half_deviance": jax.vmap(jax.grad(minus_half_deviance, argnums=1))(y, eta),
        "scale": scale,
    }


@_x64
def _stable_kernel(case, y, eta, weights):
    family, link = case

    def stable(e):
        return derived.half_deviance_loss(family, link, y, e, weights)

    def general(e):  # the textbook form, written out here: Σ w·d(y, g⁻¹(η)) / (2 Σ w)
        return jnp.sum(weights * family.unit_deviance(y, link.inverse(e))) / (2.0 * jnp.sum(weights))

    return stable(eta), general(eta), jax.grad(stable)(eta), jax.grad(general)(eta)


# ---- unit deviance ------------------------------------------------------------------------


@_family_cases(FAMILIES)
@given(data=st.data())
def test_deviance_is_zero_at_y_equals_mu(family, data):
    y = data.draw(y_strategy(family))
    if family.mu_domain.low == 0.0:  # d(y, y) needs y inside the mean domain (e.g. y > 0 for Tweedie p > 1)
        y = np.maximum(y, 0.01) if not isinstance(family, Binomial) else np.clip(y, 0.01, 0.99)
    d_saturated, _, _, _ = _deviance_kernel(family, y, y)
    # Exact answer 0; the terms that cancel are O(|y|^(2-p)/|(1-p)(2-p)|) ≤ ~1e3 here.
    assert_close(d_saturated, 0.0, atol=1e-12 * (1.0 + np.abs(y)) ** 2)


@_family_cases(FAMILIES)
@given(data=st.data())
def test_deviance_is_non_negative(family, data):
    y, mu = data.draw(y_strategy(family)), data.draw(mu_strategy(family))
    _, d, _, _ = _deviance_kernel(family, y, mu)
    assert np.isfinite(d).all()
    # d ≥ 0 up to the round-off of terms of size ≤ (1 + |y| + |mu|)² that cancel when y ≈ mu.
    assert (d >= -1e-12 * (1.0 + np.abs(y) + np.abs(mu)) ** 2).all()


@_family_cases(FAMILIES)
@given(data=st.data())
def test_deviance_derivative_is_variance(family, data):
    """∂d(y, mu)/∂mu = −2 (y − mu) / V(mu): ties ``unit_deviance`` to ``variance``."""
    y, mu = data.draw(y_strategy(family)), data.draw(mu_strategy(family))
    _, _, grad, variance = _deviance_kernel(family, y, mu)
    expected = -2.0 * (y - mu) / variance
    # Relative 1e-9 (see module docstring); absolute 1e-12 × the size of the cancelling terms.
    assert_close(grad, expected, rtol=1e-9, atol=1e-12 * 2.0 * (np.abs(y) + np.abs(mu) + 1.0) / variance)


# ---- log-likelihood -----------------------------------------------------------------------


@_family_cases(DENSITY_FAMILIES)
@given(data=st.data())
def test_loglik_ratio_is_deviance(family, data):
    """−2·φ·[ℓ(y, mu) − ℓ(y, y)] = d(y, mu) with unit weights (the density's exponent is −d/(2φ)).

    The binomial log-likelihood rounds successes (R's ``binomial()$aic``), so y ∈ {0, 1} there.
    """
    y, mu = data.draw(y_strategy(family, for_density=True)), data.draw(mu_strategy(family))
    if isinstance(family, Binomial):
        saturated_mu = np.clip(y, 1e-300, 1.0 - 1e-16)  # ℓ(y, y) at y ∈ {0, 1} is the limit: 0
    else:
        # ℓ(y, y) where y is a valid mean; at y = 0 (Poisson, NB) the limit mu → 0.
        saturated_mu = np.where(family.mu_domain.contains(y), y, 1e-300)
    phi = 1.0 if family.fixed_dispersion is not None else data.draw(st.floats(0.05, 5.0))
    ones = np.ones(N)
    ll = _loglik_kernel(family, y, mu, phi, ones)
    ll_saturated = _loglik_kernel(family, y, saturated_mu, phi, ones)
    _, d, _, _ = _deviance_kernel(family, y, mu)
    # The log-densities include constants (log Γ(y + 1), log 2π) of size |ℓ(y, y)| that cancel.
    assert_close(-2.0 * phi * (ll - ll_saturated), d, rtol=1e-9, atol=1e-11 * phi * (1.0 + np.abs(ll_saturated)))


def _scipy_logpdf(family: Family, y, mu, phi, weights):
    """log f(y) from scipy.stats, with neuralglm's weight conventions (numpyro's _DIST_MAP idea).

    Gaussian: a weight divides the variance; binomial: it is the number of trials (y is the
    proportion of successes); other families: it multiplies the log-density (R's ``aic``).
    """
    equivalent = family._equivalent() if isinstance(family, Tweedie) else family
    if isinstance(equivalent, Gaussian):
        return stats.norm.logpdf(y, loc=mu, scale=np.sqrt(phi / weights))
    if isinstance(equivalent, Binomial):
        return stats.binom.logpmf(np.round(weights * y), n=weights, p=mu)
    if isinstance(equivalent, Poisson):
        return weights * stats.poisson.logpmf(y, mu)
    if isinstance(equivalent, Gamma):
        return weights * stats.gamma.logpdf(y, a=1.0 / phi, scale=mu * phi)
    if isinstance(equivalent, InverseGaussian):
        # IG(mean m, shape λ = 1/φ) is scipy's invgauss(m/λ, scale=λ).
        lam = 1.0 / phi
        return weights * stats.invgauss.logpdf(y, mu / lam, scale=lam)
    if isinstance(equivalent, NegativeBinomial):
        theta = 1.0 / equivalent.alpha
        return weights * stats.nbinom.logpmf(y, theta, theta / (theta + mu))
    raise AssertionError(f"no scipy distribution for {family}")


@_family_cases(DENSITY_FAMILIES)
@given(data=st.data())
def test_loglik_matches_scipy(family, data):
    y, mu = data.draw(y_strategy(family, for_density=True)), data.draw(mu_strategy(family))
    if isinstance(family, Binomial):
        weights = data.draw(_counts(20)) + 1.0  # trials
        y = np.round(data.draw(_floats(0.0, 1.0)) * weights) / weights
    else:
        weights = data.draw(_floats(0.1, 5.0))
    phi = 1.0 if family.fixed_dispersion is not None else data.draw(st.floats(0.05, 5.0))
    ours = _loglik_kernel(family, y, mu, phi, weights)
    reference = _scipy_logpdf(family, y, mu, phi, weights)
    # Two independent implementations of log-gamma-based densities agree to ~1e-14 relative;
    # 1e-9 relative plus 1e-9 absolute (for log-densities near 0) is far below any formula error.
    assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("family", [Tweedie(power=-1.0), Tweedie(power=2.5)], ids=_id)
def test_loglik_is_nan_without_closed_form(family):
    """Tweedie outside 1 < p < 2 (series: tests/unit/test_tweedie_series.py) and the integer powers: NaN, as statmod's tweedie()$aic."""
    ll = _loglik_kernel(family, np.array([1.0, 2.0]), np.array([1.5, 1.5]), 1.0, np.ones(2))
    assert np.isnan(ll).all()


# ---- links --------------------------------------------------------------------------------

# Each link with means and linear predictors where it is defined and its clamps are inactive:
# the binomial links clamp mu to [eps, 1 - eps] (R's make.link), probit clamps |eta| ≤ 8.13,
# log floors mu at eps (eta > -36), cloglog reaches 1 - eps at eta ≈ 3.6.
LINK_CASES: list[tuple[Link, tuple[float, float], tuple[float, float]]] = [
    (Identity(), (-50.0, 50.0), (-50.0, 50.0)),
    (Log(), (1e-6, 1e4), (-30.0, 9.0)),
    (Logit(), (1e-6, 1.0 - 1e-6), (-30.0, 30.0)),
    (Probit(), (1e-6, 1.0 - 1e-6), (-8.0, 8.0)),
    # cloglog: η ≤ 2 because the reference is inexact beyond: JAX differentiates expm1(x) as
    # expm1(x) + 1, which keeps only ~eps / e^x relative digits (e^(−e^2.6) ≈ 1e-6 → 2e-10).
    (CLogLog(), (1e-6, 1.0 - 1e-6), (-30.0, 2.0)),
    (Inverse(), (1e-3, 1e3), (1e-3, 1e3)),
    (InverseSquared(), (1e-2, 1e2), (1e-3, 1e3)),
    (Sqrt(), (1e-4, 1e4), (1e-2, 1e2)),
    (Power(0.3), (1e-4, 1e4), (1e-2, 1e1)),
    (Power(-0.5), (1e-3, 1e3), (1e-2, 1e2)),
    (Power(2.0), (1e-3, 1e3), (1e-4, 1e4)),
]


@pytest.mark.parametrize(("link", "mu_range", "eta_range"), LINK_CASES, ids=[str(case[0]) for case in LINK_CASES])
@given(data=st.data())
def test_link_laws(link, mu_range, eta_range, data):
    """g⁻¹(g(mu)) = mu; g′ = jax.grad(g); ``inverse_deriv`` = jax.grad(g⁻¹) = 1 / g′(g⁻¹(η))."""
    mu, eta = data.draw(_floats(*mu_range)), data.draw(_floats(*eta_range))
    out = _link_kernel(link, mu, eta)
    # g and g⁻¹ are each accurate to a few ulps; with 1 − mu ≥ 1e-6 the round trip through
    # cloglog/probit keeps ≥ 10 digits of mu, so 1e-9 relative is ~100× the worst round-off.
    assert_allclose(out["round_trip"], mu, rtol=1e-9)
    assert_allclose(out["deriv"], out["grad_link"], rtol=1e-9)  # closed form against autodiff: ulps apart
    assert_allclose(out["inverse_deriv"], out["grad_inverse"], rtol=1e-9)
    # The generic 1 / g′(g⁻¹(η)) loses the digits of 1 − mu near mu = 1 (that is why links override
    # it), so it is compared only where the mean is in range: 1 − mu ≥ 1e-6 keeps 10 digits.
    assert_allclose(out["inverse_deriv_at_mu"], out["default_at_mu"], rtol=1e-9)


# ---- scores and the training objective ---------------------------------------------------

GRID = [(ng.get_family(f), ng.get_link(link, ng.get_family(f))) for f, link in FAMILY_LINK_GRID]
_GRID_IDS = [f"{f}-{link}" for f, link in FAMILY_LINK_GRID]


def _mean_for(family: Family, link: Link, data):
    """Means valid for the pair: positive unless the link maps onto the whole line, < 1 for log-binomial."""
    positive = not isinstance(link, (Identity, Logit, Probit, CLogLog))
    mu = data.draw(mu_strategy(family, positive=positive))
    if isinstance(link, Log) and isinstance(family, Binomial):
        mu = np.minimum(mu, 0.9)  # log-binomial: mu = exp(eta) < 1
    return mu


@pytest.mark.parametrize("case", GRID, ids=_GRID_IDS)
@given(data=st.data())
def test_eta_score_is_grad_of_loglik(case, data):
    """``eta_score`` = ∂ℓ/∂η by autodiff of ``loglik_obs ∘ link.inverse`` (dispersion 1), and = −½ ∂d/∂η.

    Tweedie at a non-integer power has no closed-form density; there only the deviance form applies.
    """
    family, link = case
    y = data.draw(y_strategy(family, for_density=True))
    out = _score_kernel(case, y, _mean_for(family, link, data))
    # Relative 1e-9 (module docstring); absolute 1e-12 × the score's terms before cancellation.
    assert_close(out["score"], out["grad_half_deviance"], rtol=1e-9, atol=1e-12 * out["scale"])
    if not (isinstance(family, Tweedie) and family._equivalent() is None):
        assert_close(out["score"], out["grad_loglik"], rtol=1e-9, atol=1e-12 * out["scale"])


@pytest.mark.parametrize("case", [(Binomial(), Logit()), (Poisson(), Log())], ids=["binomial-logit", "poisson-log"])
@given(data=st.data())
def test_stable_half_deviance_equals_general_form(case, data):
    family, _ = case
    y = data.draw(_floats(0.0, 1.0) if isinstance(family, Binomial) else _floats(0.0, 60.0))
    eta = data.draw(_floats(-15.0, 15.0) if isinstance(family, Binomial) else _floats(-10.0, 5.0))
    weights = data.draw(_floats(0.1, 5.0))
    stable, general, grad, general_grad = _stable_kernel(case, y, eta, weights)
    # In this eta range (|eta| ≤ 15: sigmoid ≥ 3e-7 from 0 and 1) the general form loses at
    # most ~7 digits to 1 − mu, so the two agree to 1e-8 relative; absolute 1e-12 per unit of
    # the summed terms (|y·eta| + e^eta ≤ ~1e3) covers values near 0.
    assert_allclose(stable, general, rtol=1e-8, atol=1e-12 * (1.0 + np.max(np.abs(y * eta) + np.exp(eta))))
    assert_allclose(grad, general_grad, rtol=1e-8, atol=1e-12 * (1.0 + np.max(np.abs(y) + np.exp(eta))))


@pytest.mark.parametrize("case", [(Binomial(), Logit()), (Poisson(), Log())], ids=["binomial-logit", "poisson-log"])
def test_stable_half_deviance_is_finite_at_extreme_eta(case):
    """Where the general form overflows or hits the clamps, the stable form stays finite."""
    y = np.array([0.0, 1.0, 0.0, 1.0])
    eta = np.array([-700.0, -700.0, 40.0, 40.0])
    stable, _, grad, _ = _stable_kernel(case, y, eta, np.ones(4))
    assert np.isfinite(stable)
    assert np.isfinite(grad).all()
