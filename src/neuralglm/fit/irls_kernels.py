"""The row-wise maths of IRLS: working quantities, score, mean and deviance, over row chunks.

Each kernel is jitted with the family and link as static arguments and evaluated by
:func:`neuralglm.family.rowwise.map_rows` over fixed-size chunks, so it compiles once per
family and link whatever the number of rows.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.rowwise import map_rows


@partial(jax.jit, static_argnums=(0, 1))
def _working_kernel(family: Family, link: Link, y, eta, offset, weights):
    mu = link.inverse(eta)
    return derived.irls_weights(family, link, mu, weights), derived.working_response(link, eta, y, mu, offset)


def _validity(family: Family, link: Link, eta, mu, dev):
    """(eta valid, eta, mu and deviance all valid): R's valideta and validmu, traced."""
    eta_ok = jnp.all(link.eta_in_domain(eta))
    return eta_ok, eta_ok & jnp.isfinite(dev) & jnp.all(family.mu_domain.contains(mu))


@partial(jax.jit, static_argnums=(0, 1))
def _mean_kernel(family: Family, link: Link, y, eta, weights):
    mu = link.inverse(eta)
    dev = derived.deviance(family, y, mu, weights)
    return mu, dev, *_validity(family, link, eta, mu, dev)


@partial(jax.jit, static_argnums=(0, 1))
def _score_kernel(family: Family, link: Link, y, eta, weights):
    mu = link.inverse(eta)
    dev = derived.deviance(family, y, mu, weights)
    return derived.eta_score(family, link, y, mu, weights), dev, _validity(family, link, eta, mu, dev)[1]


@partial(jax.jit, static_argnums=(0, 1))
def _start_kernel(family: Family, link: Link, y, weights):
    mu = family.starting_mu(y, weights)
    return mu, link(mu), derived.deviance(family, y, mu, weights)


def working_quantities(family: Family, link: Link, y, eta, offset, weights) -> tuple[np.ndarray, np.ndarray]:
    """IRLS working weights and working response (offset removed)."""
    return map_rows(_working_kernel, (family, link), (y, eta, offset, weights), zero_padded=(3,))


def score_and_deviance(family: Family, link: Link, y, eta, weights) -> tuple[np.ndarray, float, bool]:
    """Score ∂ℓ/∂η per row, the deviance, and whether η, μ and the deviance are valid."""
    score, dev, valid = map_rows(_score_kernel, (family, link), (y, eta, weights), zero_padded=(2,))
    return score, dev, valid and math.isfinite(dev)


def evaluate(family: Family, link: Link, y, eta, weights) -> tuple[np.ndarray, float, bool]:
    """Mean, deviance, and whether both are valid for the family (R's validmu/valideta)."""
    mu, dev, eta_ok, valid = map_rows(_mean_kernel, (family, link), (y, eta, weights), zero_padded=(2,))
    if not eta_ok:
        return np.full_like(eta, np.nan), np.inf, False
    return mu, dev, valid and math.isfinite(dev)


def starting_values(family: Family, link: Link, y, weights) -> tuple[np.ndarray, np.ndarray, float]:
    """R's starting means (``mustart``), their linear predictor and deviance."""
    return map_rows(_start_kernel, (family, link), (y, weights), zero_padded=(1,))
