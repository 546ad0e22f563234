r"""The training objective: mean half deviance plus an L2 penalty (pure, jit-able).

.. math::

    L(\theta) = \frac{\sum_i w_i\, d(y_i, \mu_i)}{2 \sum_i w_i}
              + \frac{\lambda}{2 \sum_i w_i} \sum_{\text{weights}} W^2,
    \qquad \mu_i = g^{-1}(\eta_i(\theta)).

:math:`\sum_i w_i L(\theta)` is the negative log-likelihood at dispersion 1, up to a constant,
plus the negative log-density of a Gaussian prior :math:`W \sim N(0, 1/\lambda)` on the
weights (biases are not penalized). For the Gaussian family :math:`\lambda` is scikit-learn's
``MLPRegressor(alpha=λ)``. With ``penalize_output=False`` the sum runs over the hidden layers'
weights only (a flat prior on the output layer, as an unpenalized column in glmnet's
``penalty.factor``): the output layer is then the maximum-likelihood GLM on the learned
features. The family maths comes from :mod:`neuralglm.family.derived`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.model import nesting
from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Params
from neuralglm.model.predictor import linear_predictor


def penalty(params: Params, penalize_output: bool = True, arch: Architecture | None = None) -> jax.Array:
    """Half the sum of squared weights (biases excluded); the output layer's only if ``penalize_output``.

    With an ``arch`` that nests a GLM, its layout says which layers count (a CANN's GLM part never does).
    """
    layers = (
        nesting.penalized_layers(params, arch, penalize_output)
        if arch is not None and arch.nested
        else params
        if penalize_output
        else params[:-1]
    )
    return 0.5 * sum((jnp.sum(layer.weight**2) for layer in layers), jnp.zeros((), params[-1].weight.dtype))


def mean_half_deviance(params: Params, arch: Architecture, family: Family, link: Link, X, y, weights, offset) -> jax.Array:
    """``sum(w·d(y, mu)) / (2·sum(w))`` of the network's predictions."""
    eta = linear_predictor(params, arch, X, offset)
    own = getattr(family, "mean_half_deviance", None)  # a vector response's likelihood (the multinomial's softmax) is its own
    return own(y, eta, weights) if own is not None else derived.half_deviance_loss(family, link, y, eta, weights)


def objective(
    params: Params, arch: Architecture, family: Family, link: Link, X, y, weights, offset, l2, total_weight, penalize_output: bool = True
) -> jax.Array:
    """Mean half deviance plus ``l2 · penalty / total_weight``.

    ``total_weight`` is the sum of the training weights, so that minibatch objectives, whose
    deviance term is a mean over the batch, carry the same penalty as the full-batch one.
    """
    return (
        mean_half_deviance(params, arch, family, link, X, y, weights, offset) + l2 * penalty(params, penalize_output, arch) / total_weight
    )


def negative_loglik(params: Params, arch: Architecture, family: Family, link: Link, X, y, weights, offset, dispersion_value) -> jax.Array:
    """Negative log-likelihood with the family's full density (constants included)."""
    eta = linear_predictor(params, arch, X, offset)
    return -derived.loglik(family, y, link.inverse(eta), weights, dispersion_value)
