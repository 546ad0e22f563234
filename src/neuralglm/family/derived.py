r"""Everything computed from a (family, link) pair; the only place these formulas exist.

IRLS, the network objective, the inference code, summaries and plots call these functions.
All are pure ``jax.numpy`` functions of arrays (shape ``(n_obs,)``) and the frozen
family/link objects, so they can be jitted with the family and link as static arguments.

References: McCullagh & Nelder (1989), *Generalized Linear Models*, 2nd ed., ch. 2;
R's ``glm.fit``/``summary.glm``/``residuals.glm``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from neuralglm.family.family import Binomial, Family, Poisson
from neuralglm.family.link import Link, Log, Logit
from neuralglm.family.special import xlog1py, xlogy

RESIDUAL_KINDS = ("deviance", "pearson", "response", "working")


def irls_weights(family: Family, link: Link, mu, weights):
    r"""Working weights :math:`w / (V(\mu)\, g'(\mu)^2)` (Fisher scoring)."""
    return weights / (family.variance(mu) * link.deriv(mu) ** 2)


def working_response(link: Link, eta, y, mu, offset):
    r"""Working response :math:`z = (\eta - o) + (y - \mu)\, g'(\mu)` (offset removed)."""
    return (eta - offset) + (y - mu) * link.deriv(mu)


def eta_score(family: Family, link: Link, y, mu, weights):
    r"""Per-observation score :math:`\partial \ell / \partial \eta = w (y - \mu) / (V(\mu) g'(\mu))` at dispersion 1."""
    return weights * (y - mu) / (family.variance(mu) * link.deriv(mu))


def unit_deviances(family: Family, y, mu, weights):
    """Weighted unit deviances ``w · d(y, mu)``, one per observation."""
    return weights * family.unit_deviance(y, mu)


def deviance(family: Family, y, mu, weights):
    """Deviance ``sum(w · d(y, mu))`` (R's ``deviance()``)."""
    return jnp.sum(unit_deviances(family, y, mu, weights))


def pearson_chi2(family: Family, y, mu, weights):
    r"""Pearson statistic :math:`\sum w (y - \mu)^2 / V(\mu)`."""
    return jnp.sum(weights * (y - mu) ** 2 / family.variance(mu))


def dispersion(family: Family, y, mu, weights, df_resid, *, quasi: bool = False):
    """Dispersion as R's ``summary.glm`` reports it: fixed, else Pearson χ² / df_resid.

    ``quasi=True`` estimates it from Pearson χ² even where the family fixes it (quasi-Poisson,
    quasi-binomial). With no residual degrees of freedom there is nothing to estimate from: NaN.
    """
    if family.fixed_dispersion is not None and not quasi:
        return float(family.fixed_dispersion)
    return dispersion_from_pearson(family, float(pearson_chi2(family, y, mu, weights)), df_resid, quasi=quasi)


def dispersion_from_pearson(family: Family, chi2: float, df_resid, *, quasi: bool = False) -> float:
    """:func:`dispersion` from an already computed Pearson χ²."""
    if family.fixed_dispersion is not None and not quasi:
        return float(family.fixed_dispersion)
    if df_resid <= 0:
        return float("nan")
    return chi2 / df_resid


def residuals(family: Family, link: Link, y, mu, weights, kind: str = "deviance"):
    """Residuals of the kinds R's ``residuals.glm`` offers.

    ``deviance``: sign(y − mu)·√(w·d); ``pearson``: (y − mu)·√w / √V(mu);
    ``response``: y − mu; ``working``: (y − mu)·g′(mu).
    """
    if kind == "deviance":
        return jnp.sign(y - mu) * jnp.sqrt(jnp.maximum(unit_deviances(family, y, mu, weights), 0.0))
    if kind == "pearson":
        return (y - mu) * jnp.sqrt(weights) / jnp.sqrt(family.variance(mu))
    if kind == "response":
        return y - mu
    if kind == "working":
        return (y - mu) * link.deriv(mu)
    raise ValueError(f"Unknown residual type {kind!r}; choose one of {', '.join(RESIDUAL_KINDS)}.")


def loglik_dispersion(family: Family, deviance_value, weights, n_obs):
    """The dispersion R plugs into ``logLik``: deviance/n (Gaussian), deviance/sum(w) (Gamma, IG).

    Returns 1.0 where the dispersion is fixed and NaN where the family has no closed-form
    density (Tweedie with a non-integer power).
    """
    basis = family.loglik_dispersion
    if basis == "mle_n":
        return deviance_value / n_obs
    if basis == "mle_weights":
        return deviance_value / jnp.sum(weights)
    if family.fixed_dispersion is not None:
        return jnp.asarray(family.fixed_dispersion)
    return jnp.asarray(jnp.nan)


def loglik(family: Family, y, mu, weights, dispersion_value, freq_weights=None):
    """Log-likelihood ``sum(loglik_obs)``; frequency weights repeat observations."""
    per_obs = family.loglik_obs(y, mu, dispersion_value, weights)
    if freq_weights is not None:
        per_obs = per_obs * freq_weights
    return jnp.sum(per_obs)


def n_loglik_params(family: Family, rank: int) -> int:
    """Parameters counted by R's AIC: the coefficients, plus one for an estimated dispersion."""
    return rank + (0 if family.fixed_dispersion is not None else 1)


def aic(loglik_value, n_params: int):
    """Akaike information criterion ``-2·loglik + 2·k``."""
    return -2.0 * loglik_value + 2.0 * n_params


def bic(loglik_value, n_params: int, n_obs):
    """Bayesian information criterion ``-2·loglik + log(n)·k``."""
    return -2.0 * loglik_value + math.log(float(n_obs)) * n_params


def half_deviance_loss(family: Family, link: Link, y, eta, weights):
    r"""Training objective :math:`\sum w\, d(y, \mu) / (2 \sum w)` with :math:`\mu = g^{-1}(\eta)`.

    The canonical Bernoulli/logit and Poisson/log pairs are computed from ``eta`` in a form
    that cannot overflow (``softplus(eta) - y·eta`` and ``exp(eta) - y·eta``, each plus the
    saturated term), so gradients stay finite for any ``eta``. A test checks them against
    the general form.
    """
    unit_half = _stable_half_unit_deviance(family, link, y, eta)
    if unit_half is None:
        unit_half = 0.5 * family.unit_deviance(y, link.inverse(eta))
    return jnp.sum(weights * unit_half) / jnp.sum(weights)


def _stable_half_unit_deviance(family: Family, link: Link, y, eta):
    if isinstance(family, Binomial) and isinstance(link, Logit):
        saturated = xlogy(y, y) + xlog1py(1.0 - y, -y)
        return jax.nn.softplus(eta) - y * eta + saturated
    if isinstance(family, Poisson) and isinstance(link, Log):
        return jnp.exp(eta) - y * eta + xlogy(y, y) - y
    return None
