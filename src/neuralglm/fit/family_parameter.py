"""GLMs whose family parameter is estimated too: the negative binomial's θ, the Tweedie power.

A family declares whether and how its parameter is estimated (``parameter_estimator``):

- ``"theta_ml"``: ``MASS::glm.nb``'s alternation of IRLS and Newton steps on θ
  (:mod:`neuralglm.fit.nb_theta`); the estimate is reported as ``theta`` with R's ``SE.theta``.
- ``"profile"``: the profile log-likelihood :math:`\\ell_p(\\lambda) = \\max_{\\beta, \\phi} \\ell(\\beta, \\phi; \\lambda)`
  maximized over the parameter λ in the family's ``estimable_range`` (Brent's bounded method,
  to :data:`PROFILE_XTOL`): β by IRLS at each λ, φ by a one-dimensional maximization of the
  family's log-likelihood (as ``tweedie::tweedie.profile`` with ``phi.method = "mle"``).
  The standard error is :math:`1/\\sqrt{-\\ell_p''(\\hat\\lambda)}` by central differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np
from scipy import optimize

from neuralglm.errors import ConvergenceWarning, warn
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import nb_theta
from neuralglm.fit.irls import IRLSControl, fit_irls
from neuralglm.fit.solution import Solution

PROFILE_XTOL = 1e-4  # the power's tolerance: far below its standard error at any usable sample size
_PROFILE_STEP = 1e-3  # central-difference step for the profile's curvature (the standard error)
_CHUNK = 1 << 15


@dataclass(frozen=True)
class ParameterEstimate:
    """An estimated family parameter: its name as R reports it (``theta``, ``power``), value and standard error."""

    name: str
    estimate: float
    std_error: float


def fit_estimating_parameter(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    family: Family,
    link: Link,
    *,
    column_names: tuple[str, ...],
    control: IRLSControl,
    progress: bool | None = None,
    loglik_weights: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> tuple[Solution, Family, ParameterEstimate]:
    """Fit β and the family's parameter; returns the IRLS solution, the family at the estimate, and the estimate.

    ``weights`` are the total weights (prior × frequency), as :func:`~neuralglm.fit.irls.fit_irls`
    takes them; ``loglik_weights`` the prior and frequency weights apart, for a density in which
    they differ (a Tweedie prior weight divides the dispersion; default: all prior).
    """
    arguments = {"column_names": column_names, "control": control, "progress": progress}
    if family.parameter_estimator == "theta_ml":
        solution, theta = nb_theta.fit_glm_nb(X, y, weights, offset, link, **arguments)
        return solution, family.with_parameter(1.0 / theta.theta), ParameterEstimate("theta", theta.theta, theta.std_error)
    if family.parameter_estimator == "profile":
        prior, freq = loglik_weights if loglik_weights is not None else (weights, None)
        return _fit_profile(X, y, (weights, prior, freq), offset, family, link, arguments)
    raise ValueError(f"The {family.name} family declares no way to estimate its parameter.")  # pragma: no cover - a family bug


def _fit_profile(X, y, all_weights, offset, family: Family, link: Link, arguments: dict) -> tuple[Solution, Family, ParameterEstimate]:
    weights, prior, freq = all_weights
    low, high = family.estimable_range
    cache: dict[float, tuple[float, Solution]] = {}

    def profile(value: float) -> float:
        if value not in cache:
            fixed = family.with_parameter(value)
            solution = fit_irls(X, y, weights, offset, fixed, link, **arguments)
            cache[value] = (_max_over_dispersion(fixed, y, solution.mu, weights, prior, freq), solution)
        return cache[value][0]

    # A margin from the ends, where the density's series (and the family) degenerate.
    margin = 10 * PROFILE_XTOL
    found = optimize.minimize_scalar(
        lambda v: -profile(v), bounds=(low + margin, high - margin), method="bounded", options={"xatol": PROFILE_XTOL}
    )
    estimate = float(found.x)
    if min(estimate - low, high - estimate) < 2 * margin:
        warn(
            f"The profile likelihood of the {family.name} family's {family.parameter_name} is largest at the edge of "
            f"({low:g}, {high:g}) ({estimate:.4g}): the estimate is the edge, not an interior maximum.",
            ConvergenceWarning,
        )
    curvature = (profile(estimate + _PROFILE_STEP) - 2.0 * profile(estimate) + profile(estimate - _PROFILE_STEP)) / _PROFILE_STEP**2
    std_error = 1.0 / math.sqrt(-curvature) if curvature < 0 else math.nan
    return cache[estimate][1], family.with_parameter(estimate), ParameterEstimate(str(family.parameter_name), estimate, std_error)


def _max_over_dispersion(family: Family, y, mu, weights, prior, freq) -> float:
    """``max_φ loglik(φ)`` for fixed means: a bounded search on log φ around the mean deviance."""
    with jax.enable_x64(True):
        start = float(derived.deviance(family, y, mu, weights)) / float(np.sum(weights))

    def negative(log_phi: float) -> float:
        return -_loglik(family, y, mu, prior, freq, math.exp(log_phi))

    centre = math.log(start)
    found = optimize.minimize_scalar(negative, bounds=(centre - 5.0, centre + 5.0), method="bounded", options={"xatol": 1e-6})
    return -float(found.fun)


def _loglik(family: Family, y, mu, prior: np.ndarray, freq: np.ndarray | None, phi: float) -> float:
    """The log-likelihood in row chunks (a series density holds a hundred terms per row); zero weights count nothing."""
    repeats = np.where(prior > 0, 1.0 if freq is None else freq, 0.0)
    total = 0.0
    with jax.enable_x64(True):
        for start in range(0, len(y), _CHUNK):
            rows = slice(start, start + _CHUNK)
            values = np.asarray(family.loglik_obs(y[rows], mu[rows], phi, np.where(prior[rows] > 0, prior[rows], 1.0)))
            total += float(np.sum(np.where(repeats[rows] > 0, repeats[rows] * values, 0.0)))
    return total
