r"""Covariance matrices of GLM coefficients.

- ``"expected"``: :math:`\phi\,(X^\top W X)^{-1}` with the Fisher working weights, R's
  ``summary.glm`` (``vcov()``).
- ``"observed"``: :math:`\phi\,(X^\top W_o X)^{-1}`, where :math:`W_o` holds the observed
  information :math:`-\partial^2 \ell_i / \partial \eta_i^2`, obtained by differentiating
  the family's unit deviance through the inverse link twice with JAX (no formula restated).
  Equal to ``"expected"`` for canonical links at the optimum.
- ``"sandwich"``: HC0 robust covariance :math:`B^{-1} M B^{-1}` with bread
  :math:`B = X^\top W X` and meat :math:`M = \sum_i s_i^2 x_i x_i^\top`, :math:`s_i` the
  per-observation score on the eta scale; R's ``sandwich::sandwich(fit)``. It does not depend
  on the dispersion (it cancels).
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from neuralglm.errors import SpecificationError
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import linalg

COV_TYPES = ("expected", "observed", "sandwich")


def check_cov_type(cov_type: str) -> None:
    """Raise :class:`SpecificationError` unless ``cov_type`` is one of :data:`COV_TYPES`."""
    if cov_type not in COV_TYPES:
        raise SpecificationError(f"cov_type must be one of {', '.join(COV_TYPES)}; got {cov_type!r}.")


@partial(jax.jit, static_argnums=(0, 1))
def _observed_weights(family: Family, link: Link, y, eta, weights):
    def half_deviance(y_i, eta_i):
        return 0.5 * family.unit_deviance(y_i, link.inverse(eta_i))

    curvature = jax.vmap(jax.grad(jax.grad(half_deviance, argnums=1), argnums=1))(y, eta)
    return weights * curvature


@partial(jax.jit, static_argnums=(0, 1))
def _scores(family: Family, link: Link, y, eta, weights):
    return derived.eta_score(family, link, y, link.inverse(eta), weights)


def unscaled_covariance(
    cov_type: str,
    X: np.ndarray,
    y: np.ndarray,
    eta: np.ndarray,
    prior_weights: np.ndarray,
    freq_weights: np.ndarray | None,
    family: Family,
    link: Link,
    factor: linalg.GramFactor,
) -> np.ndarray:
    """Covariance of the coefficients before multiplying by the dispersion.

    For ``"sandwich"`` the result is already the final covariance (the dispersion cancels);
    the caller must not rescale it.
    """
    check_cov_type(cov_type)
    freq = np.ones_like(prior_weights) if freq_weights is None else freq_weights
    with jax.enable_x64(True):
        if cov_type == "expected":
            return factor.inverse()
        if cov_type == "observed":
            w_obs = np.asarray(_observed_weights(family, link, y, eta, prior_weights * freq), dtype=np.float64)
            observed = linalg.weighted_gram(X, np.maximum(w_obs, 0.0)) - linalg.weighted_gram(X, np.maximum(-w_obs, 0.0))
            return np.linalg.inv(observed)
        scores = np.asarray(_scores(family, link, y, eta, prior_weights), dtype=np.float64)
        bread_inverse = factor.inverse()
        meat = linalg.weighted_gram(X, freq * scores**2)
        return bread_inverse @ meat @ bread_inverse
