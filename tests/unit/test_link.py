"""Focused unit tests of the links: round trips, derivatives against jax.grad, values against statsmodels, domains.

statsmodels' links (``statsmodels.genmod.families.links``) are the independent reference for
the values of g, g⁻¹, g′ and dmu/deta at fixed points. The hypothesis laws over random means
live in ``tests/properties/test_family_laws.py``; these are the readable fixed cases. All in
float64 (``jax.enable_x64``), as the library computes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.genmod.families.links as sm_links
from numpy.testing import assert_allclose

from neuralglm.errors import SpecificationError
from neuralglm.family.link import CLogLog, Identity, Inverse, InverseSquared, Link, Log, Logit, Power, Probit, Sqrt
from neuralglm.family.registry import get_link

# Each link, means inside its domain, and statsmodels' link of the same definition.
LINKS = [
    (Identity(), [-3.0, -0.5, 0.0, 0.7, 12.0], sm_links.Identity()),
    (Log(), [1e-3, 0.2, 1.0, 3.5, 1e4], sm_links.Log()),
    (Logit(), [1e-4, 0.1, 0.5, 0.77, 0.999], sm_links.Logit()),
    (Probit(), [1e-4, 0.1, 0.5, 0.77, 0.999], sm_links.Probit()),
    (CLogLog(), [1e-4, 0.1, 0.5, 0.77, 0.99], sm_links.CLogLog()),
    (Inverse(), [0.01, 0.5, 1.0, 4.0, 300.0], sm_links.InversePower()),
    (InverseSquared(), [0.05, 0.5, 1.0, 4.0, 30.0], sm_links.InverseSquared()),
    (Sqrt(), [1e-3, 0.5, 1.0, 4.0, 900.0], sm_links.Sqrt()),
    (Power(1.5), [1e-2, 0.5, 1.0, 4.0, 90.0], sm_links.Power(1.5)),
    (Power(-0.5), [1e-2, 0.5, 1.0, 4.0, 90.0], sm_links.Power(-0.5)),
]
IDS = [str(link) for link, _, _ in LINKS]


def _values(link: Link, mu: np.ndarray) -> dict[str, np.ndarray]:
    with jax.enable_x64(True):
        m = jnp.asarray(mu, dtype=jnp.float64)
        eta = link(m)
        return {
            "eta": np.asarray(eta),
            "round_trip": np.asarray(link.inverse(eta)),
            "deriv": np.asarray(link.deriv(m)),
            "inverse_deriv": np.asarray(link.inverse_deriv(eta)),
            "grad_link": np.asarray(jax.vmap(jax.grad(link.__call__))(m)),
            "grad_inverse": np.asarray(jax.vmap(jax.grad(link.inverse))(eta)),
            "in_domain": np.asarray(link.eta_in_domain(eta)),
        }


@pytest.mark.parametrize(("link", "mu", "reference"), LINKS, ids=IDS)
def test_inverse_undoes_the_link_on_its_domain(link, mu, reference):
    values = _values(link, np.array(mu))
    assert_allclose(values["round_trip"], mu, rtol=1e-12)
    assert values["in_domain"].all()


@pytest.mark.parametrize(("link", "mu", "reference"), LINKS, ids=IDS)
def test_derivatives_equal_automatic_differentiation(link, mu, reference):
    values = _values(link, np.array(mu))
    assert_allclose(values["deriv"], values["grad_link"], rtol=1e-10)
    assert_allclose(values["inverse_deriv"], values["grad_inverse"], rtol=1e-10)
    assert_allclose(values["inverse_deriv"] * values["deriv"], 1.0, rtol=1e-10)


@pytest.mark.parametrize(("link", "mu", "reference"), LINKS, ids=IDS)
def test_values_match_statsmodels(link, mu, reference):
    mu = np.array(mu)
    values = _values(link, mu)
    assert_allclose(values["eta"], reference(mu), rtol=1e-12)
    assert_allclose(values["round_trip"], reference.inverse(reference(mu)), rtol=1e-12)
    assert_allclose(values["deriv"], reference.deriv(mu), rtol=1e-9)
    assert_allclose(values["inverse_deriv"], reference.inverse_deriv(reference(mu)), rtol=1e-9)


def test_binomial_inverses_clamp_as_r_make_link():
    # R's make.link keeps mu at least machine epsilon inside (0, 1); statsmodels does not clamp.
    eps = np.finfo(float).eps
    with jax.enable_x64(True):
        for link in (Logit(), Probit(), CLogLog()):
            mu = np.asarray(link.inverse(jnp.array([-800.0, 800.0])))
            assert mu[0] >= eps and mu[1] <= 1.0 - eps, link


@pytest.mark.parametrize(
    ("link", "eta", "inside"),
    [
        (Identity(), [-1e300, 0.0, 5.0, np.inf, np.nan], [True, True, True, False, False]),
        (Log(), [-700.0, 0.0, 700.0, -np.inf, np.nan], [True, True, True, False, False]),
        (Logit(), [-50.0, 0.0, 50.0, np.inf, np.nan], [True, True, True, False, False]),
        (Inverse(), [1e-8, 1.0, 0.0, -1.0, np.inf], [True, True, False, False, False]),
        (InverseSquared(), [1e-8, 1.0, 0.0, -2.0, np.nan], [True, True, False, False, False]),
        (Sqrt(), [0.5, 3.0, 0.0, -0.1, np.inf], [True, True, False, False, False]),
    ],
    ids=lambda v: str(v) if isinstance(v, Link) else None,
)
def test_eta_in_domain_marks_linear_predictors_with_a_valid_mean(link, eta, inside):
    with jax.enable_x64(True):
        got = np.asarray(link.eta_in_domain(jnp.array(eta)))
        assert got.tolist() == inside
        assert link.valid_eta(jnp.array([e for e, ok in zip(eta, inside, strict=True) if ok]))
        assert not link.valid_eta(jnp.array(eta))


def test_power_links_are_the_named_links_at_their_powers():
    mu = np.array([0.3, 1.0, 7.0])
    for power, named in ((-1.0, Inverse()), (-2.0, InverseSquared()), (0.5, Sqrt())):
        assert_allclose(_values(Power(power), mu)["eta"], _values(named, mu)["eta"], rtol=1e-15)
    assert str(get_link("power(0.5)")) == "power(0.5)" and get_link("power(0.5)").power == 0.5


@pytest.mark.parametrize("power", [0, 0.0, "x", None, float("inf"), float("nan"), True])
def test_bad_powers_are_specification_errors(power):
    with pytest.raises(SpecificationError, match=r"Power|power"):
        Power(power)


def test_links_are_hashable_static_arguments():
    assert len({Log(), Log(), Logit(), Power(1.5), Power(1.5)}) == 3
