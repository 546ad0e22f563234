"""Networks whose family parameter is estimated: the negative binomial's θ, jointly with the weights.

The network's weights and θ maximize the (penalized) likelihood together by block-coordinate
ascent, as ``MASS::glm.nb`` does for a GLM: train the weights with θ fixed (warm-started from
the previous round), then θ by ``theta.ml`` at the network's means, until θ moves less than
:data:`THETA_TOL_SE` of its standard error. The penalty does not involve θ, so each block step
increases the same objective and the fixed point is the joint maximum. The first θ comes from
the intercept-only means (the null model, where training starts).
"""

from __future__ import annotations

import jax
import numpy as np

from neuralglm.errors import ConvergenceWarning, SpecificationError, warn
from neuralglm.family.family import Family, Poisson
from neuralglm.family.link import Link
from neuralglm.family.null_model import intercept_only
from neuralglm.fit.family_parameter import ParameterEstimate
from neuralglm.fit.gradient import GradientControl, fit_gradient
from neuralglm.fit.nb_theta import checked, theta_ml
from neuralglm.fit.solution import Solution
from neuralglm.model.architecture import Architecture
from neuralglm.model.predictor import linear_predictor_float64

THETA_TOL_SE = 1e-3  # stop when a round moves θ by less than this many standard errors of θ
MAX_ROUNDS = 25  # glm.nb's alternation limit (glm.control()'s maxit)


def check_estimable_in_network(family: Family) -> None:
    """Refuse, before any work, a family parameter a network cannot estimate (a profiled Tweedie power)."""
    if family.parameter_estimator != "theta_ml":
        raise SpecificationError(
            f"The {family.name} family's {family.parameter_name} is estimated by profile likelihood, for GLMs only "
            f"(ng.glm): a network would be trained once per trial value. Give the value, e.g. '{family.name}(1.5)'."
        )


def fit_network_estimating_parameter(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    family: Family,
    link: Link,
    arch: Architecture,
    control: GradientControl,
    *,
    has_bias: bool,
    **training,
) -> tuple[Solution, Family, ParameterEstimate]:
    """Train ``arch`` and estimate the family's parameter; the last solution, the family at the estimate, the estimate.

    ``training`` holds :func:`~neuralglm.fit.gradient.fit_gradient`'s ``seed``, ``dtype`` and ``progress``.
    """
    check_estimable_in_network(family)
    # The intercept-only start: with the log link NB and Poisson share it (the same score equation).
    bias = intercept_only(y, weights, offset, Poisson(), link) if has_bias else None
    mu = _mean(link, np.full(len(y), 0.0 if bias is None else bias) + offset)
    fitted = checked(theta_ml(y, mu, weights))
    params, solution, moved = None, None, np.inf
    for _ in range(MAX_ROUNDS):
        fixed = family.with_parameter(1.0 / fitted.theta)
        solution = fit_gradient(X, y, weights, offset, fixed, link, arch, control, output_bias=bias, start=params, **training)
        params = solution.params
        previous, fitted = fitted, checked(theta_ml(y, _mean(link, linear_predictor_float64(params, arch, X, offset)), weights))
        moved = abs(fitted.theta - previous.theta) / fitted.std_error
        if not moved > THETA_TOL_SE:
            break
    if moved > THETA_TOL_SE or fitted.warning is not None:
        reason = fitted.warning or f"theta still moved {moved:.2g} standard errors after {MAX_ROUNDS} rounds"
        warn(f"Estimating the negative binomial's theta with the network: {reason} (theta = {fitted.theta:.6g}).", ConvergenceWarning)
    assert solution is not None
    return solution, family.with_parameter(1.0 / fitted.theta), ParameterEstimate("theta", fitted.theta, fitted.std_error)


def _mean(link: Link, eta: np.ndarray) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(link.inverse(eta), dtype=np.float64)
