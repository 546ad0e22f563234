r"""The negative binomial with θ estimated: R's ``MASS::glm.nb``, step for step.

``glm.nb`` (MASS 7.3) alternates two maximizations until the log-likelihood and θ settle:

1. a Poisson fit (same link) gives the first means μ, and :func:`theta_ml` the first θ;
2. repeat: IRLS for β with θ held fixed (starting from the current μ); then ``theta.ml``
   for θ at the new μ, and the log-likelihood :math:`L_m` at the new θ and μ;
3. until :math:`|L_{m,0} - L_m| / d_1 + |\Delta\theta| / d_2 \le` ``epsilon``, with
   :math:`d_1 = \sqrt{2 \max(1, \text{df}_{resid})}`, :math:`d_2 = 1`, at most ``max_iter``
   alternations (R: ``glm.control()``, ``epsilon = 1e-8``).

``theta.ml`` is Newton's method on the score of θ from the moment estimate
:math:`n / \sum w (y/\mu - 1)^2`, stopping when the step is below ``eps = .Machine$double.eps^0.25``
or after ``limit`` iterations; ``SE.theta`` is :math:`1/\sqrt{I(\theta)}` with the expected
information evaluated at the θ before the last step, exactly as MASS.

One deliberate difference: ``glm.nb`` computes θ from the means *before* the IRLS of the same
round. With R's loose IRLS stop this goes unnoticed, but with an IRLS converged tightly (ours
polishes to 1e-9 standard errors) it makes every other round repeat θ (the IRLS at an unchanged
θ returns the same means), so ``|Δθ|`` is 0 and the stopping rule can pass while θ is still
moving: on MASS's ``ships`` it stopped 5e-4 short. From the new means each round makes progress,
and the same rule stops within ~1e-8 of the maximum (R's own result at
``glm.control(epsilon = 1e-13)``, to which ``glm.nb``'s default comes within 1e-9).

Reference: Venables & Ripley, *Modern Applied Statistics with S*, 4th ed., 2002, §7.4.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from scipy.special import digamma, polygamma

from neuralglm.errors import ConvergenceWarning, DivergenceError, warn
from neuralglm.family.family import NegativeBinomial, Poisson, nb_log_density
from neuralglm.family.link import Link
from neuralglm.fit.info import Status
from neuralglm.fit.irls import IRLSControl, fit_irls
from neuralglm.fit.solution import Solution

THETA_EPS = np.finfo(float).eps ** 0.25  # theta.ml's default eps
# glm.control()'s maxit, which glm.nb passes to theta.ml as its limit and uses for the alternation;
# max_iter (ours 100) is the IRLS's limit only: 25 Newton steps on θ are R's, and matter where θ → ∞.
GLM_NB_MAXIT = 25


@dataclasses.dataclass(frozen=True)
class ThetaFit:
    """θ̂ with R's ``SE.theta`` and the warnings ``glm.nb`` would attach (``th.warn``)."""

    theta: float
    std_error: float
    warning: str | None = None


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 10, eps: float = THETA_EPS) -> ThetaFit:
    """Maximum-likelihood θ of the negative binomial for fixed means, as ``MASS::theta.ml(y, mu, sum(w), w)``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 1, 3, 7, 2, 0, 12, 5])
    >>> fit = theta_ml(y, np.full(8, y.mean()), np.ones(8))
    >>> round(fit.theta, 4) > 0, fit.warning is None
    (True, True)
    """
    n = float(np.sum(weights))
    theta = n / float(np.sum(weights * (y / mu - 1.0) ** 2))
    info = math.nan
    iteration, step = 0, 1.0
    while (iteration := iteration + 1) < limit and abs(step) > eps:
        theta = abs(theta)
        score = np.sum(
            weights * (digamma(theta + y) - digamma(theta) + math.log(theta) + 1.0 - np.log(theta + mu) - (y + theta) / (mu + theta))
        )
        info = np.sum(
            weights * (-polygamma(1, theta + y) + polygamma(1, theta) - 1.0 / theta + 2.0 / (mu + theta) - (y + theta) / (mu + theta) ** 2)
        )
        if not (math.isfinite(score) and math.isfinite(info) and info != 0.0):
            # θ → ∞ (no overdispersion): the score and information vanish below double precision.
            return ThetaFit(float(theta), math.nan, "theta diverges to infinity (no overdispersion: consider the Poisson family)")
        step = float(score / info)
        theta += step
    warning = None
    if theta < 0:
        theta, warning = 0.0, "estimate truncated at zero"
    if iteration == limit:
        warning = "iteration limit reached"
    return ThetaFit(float(theta), math.sqrt(1.0 / info) if info > 0 else math.nan, warning)


def nb_loglik(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, theta: float) -> float:
    """``glm.nb``'s log-likelihood ``sum(w · log f(y; mu, theta))``."""
    with jax.enable_x64(True):
        return float(np.sum(weights * np.asarray(nb_log_density(y, mu, theta))))


def fit_glm_nb(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    link: Link,
    *,
    column_names: tuple[str, ...],
    control: IRLSControl,
    progress: bool | None = None,
) -> tuple[Solution, ThetaFit]:
    """β and θ by ``glm.nb``'s alternation (module docstring); the last IRLS solution and θ̂.

    ``control.epsilon`` is ``glm.control``'s ``epsilon``: the IRLS stopping rule and the
    alternation's; the alternation and ``theta.ml`` stop after :data:`GLM_NB_MAXIT` rounds, as
    ``glm.nb`` with ``glm.control()``. Running out of them, or θ diverging, warns
    (:class:`ConvergenceWarning`) as ``glm.nb`` does.
    """

    def irls(family, start):
        return fit_irls(X, y, weights, offset, family, link, column_names=column_names, control=control, start=start, progress=progress)

    solution = irls(Poisson(), None)
    mu = solution.mu
    fitted = checked(theta_ml(y, mu, weights, limit=GLM_NB_MAXIT))
    seen = [fitted.warning]
    d1 = math.sqrt(2.0 * max(1.0, float(np.sum(weights > 0)) - len(column_names)))
    step, iteration = 1.0, 0
    loglik = nb_loglik(y, mu, weights, fitted.theta)
    previous = loglik + 2.0 * d1
    while (iteration := iteration + 1) <= GLM_NB_MAXIT and abs(previous - loglik) / d1 + abs(step) > control.epsilon:
        solution = irls(NegativeBinomial(alpha=1.0 / fitted.theta), solution.coef)
        old, mu = fitted.theta, solution.mu
        fitted = checked(theta_ml(y, mu, weights, limit=GLM_NB_MAXIT))
        seen.append(fitted.warning)
        step = old - fitted.theta
        previous, loglik = loglik, nb_loglik(y, mu, weights, fitted.theta)
    if iteration > GLM_NB_MAXIT:
        seen.append("alternation limit reached")
        solution = _not_converged(solution)
    problems = list(dict.fromkeys(w for w in seen if w is not None))
    if problems:
        fitted = dataclasses.replace(fitted, warning="; ".join(problems))
        warn(
            f"Estimating the negative binomial's theta: {fitted.warning} (theta = {fitted.theta:.6g}), as MASS::glm.nb warns.",
            ConvergenceWarning,
        )
    return solution, fitted


def checked(fitted: ThetaFit) -> ThetaFit:
    """``fitted``, or :class:`DivergenceError` when θ is not a finite positive number."""
    if fitted.theta > 0 and math.isfinite(fitted.theta):
        return fitted
    raise DivergenceError(
        f"The negative binomial's theta could not be estimated (theta.ml: {fitted.warning or fitted.theta}): the data "
        "give no finite positive theta. Fix alpha instead (family='negative_binomial(0.5)'), or use the Poisson family."
    )


def _not_converged(solution: Solution) -> Solution:
    message = (
        f"The alternation of IRLS and theta.ml did not settle within {GLM_NB_MAXIT} rounds (MASS::glm.nb: "
        "'alternation limit reached'): theta is poorly determined by these data."
    )
    info = dataclasses.replace(solution.info, converged=False, status=Status.ITERATION_LIMIT, message=message)
    return dataclasses.replace(solution, info=info)
