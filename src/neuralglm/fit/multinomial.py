"""Multinomial logistic regression (baseline-category logit) by Newton–Raphson, as ``nnet::multinom`` fits it.

With K response levels and the first as reference, level k > 0 has linear predictor
``eta_k = X b_k`` and ``P(y = k) = exp(eta_k) / (1 + sum_j exp(eta_j))``. The log-likelihood
is concave, so Newton's method with step halving converges from zero; its gradient and
Hessian are closed forms (canonical link: observed = expected information), computed here in
float64 with NumPy. The parameters are ordered level-major (all terms of level 1, then of
level 2, …), as R's ``vcov(multinom)``.

``nnet`` itself minimises the same deviance by BFGS with loose tolerances; R's answer agrees
with the optimum only to its ``reltol``, and the tests run it with a tight one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, xlogy

from neuralglm.fit.info import FitInfo, Status, history_frame
from neuralglm.fit.linalg import refuse_aliased_columns

# A class probability below this (relative to the fit's precision) at a row of that class, with
# a coefficient still growing, is how separation shows: the likelihood has no finite maximum.
_SEPARATION_PROBABILITY = 1e-10
_MAX_HALVINGS = 30


@dataclass(frozen=True)
class MultinomialSolution:
    """Coefficients (n_coef × (K−1)), their covariance (level-major), deviance and the solver's report."""

    coef: np.ndarray
    covariance: np.ndarray
    deviance: float
    info: FitInfo


def log_probabilities(X: np.ndarray, coef: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """(n, K) log class probabilities for coefficients ``coef`` (n_coef × (K−1)); the reference level has eta 0.

    Examples
    --------
    >>> X = np.ones((2, 1))
    >>> np.round(np.exp(log_probabilities(X, np.array([[0.0, np.log(2.0)]]))), 3).tolist()
    [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5]]
    """
    eta = X @ coef
    if offset is not None:
        eta = eta + offset
    return log_softmax(eta)


def log_softmax(eta: np.ndarray) -> np.ndarray:
    """(n, K) log class probabilities from the (n, K−1) logits against the reference level.

    Examples
    --------
    >>> np.round(np.exp(log_softmax(np.array([[0.0, np.log(2.0)]]))), 3).tolist()
    [[0.25, 0.25, 0.5]]
    """
    eta = np.column_stack([np.zeros(eta.shape[0]), eta])
    return eta - logsumexp(eta, axis=1, keepdims=True)


def deviance(codes: np.ndarray, weights: np.ndarray, log_prob: np.ndarray) -> float:
    """``-2 sum w_i log p_{i, y_i}``: nnet's ``deviance`` (twice its ``value``) for case weights ``w``."""
    return float(-2.0 * np.sum(weights * log_prob[np.arange(codes.size), codes]))


def null_logits(codes: np.ndarray, weights: np.ndarray, n_levels: int) -> np.ndarray:
    """The intercept-only fit: ``log(W_k / W_0)`` for the levels after the reference (``W_k`` their case weight).

    Examples
    --------
    >>> np.round(null_logits(np.array([0, 1, 1, 2]), np.ones(4), 3), 4).tolist()
    [0.6931, 0.0]
    """
    totals = np.bincount(codes, weights=weights, minlength=n_levels)
    with np.errstate(divide="ignore"):  # a level without weight has no finite logit (the fit then reports separation)
        return np.log(totals[1:]) - np.log(totals[0])


def null_deviance(codes: np.ndarray, weights: np.ndarray, n_levels: int, has_intercept: bool) -> float:
    """Deviance of the intercept-only model (``multinom(y ~ 1)``), or of equal probabilities without an intercept.

    Examples
    --------
    >>> round(null_deviance(np.array([0, 1, 1, 2]), np.ones(4), 3, True), 4)  # -2 (2 log 1/4 + 2 log 1/2)
    8.3178
    """
    totals = np.bincount(codes, weights=weights, minlength=n_levels)
    if not has_intercept:
        return float(2.0 * totals.sum() * np.log(n_levels))
    return float(-2.0 * np.sum(xlogy(totals, totals / totals.sum())))  # a level without weight adds nothing


def _gradient_and_information(X, codes, weights, log_prob, coef, precision):
    """The score (level-major) and the information matrix ``-d²loglik`` at the current probabilities.

    With ``precision`` (one per term, the same for every level) those of the penalized
    log-likelihood ``loglik - ½ Σ precision·b²``: a network's output layer under its L2 prior.
    """
    n, p = X.shape
    k = log_prob.shape[1] - 1
    prob = np.exp(log_prob[:, 1:])
    indicator = np.zeros((n, k))
    rows = codes > 0
    indicator[np.flatnonzero(rows), codes[rows] - 1] = 1.0
    score = (X.T @ (weights[:, None] * (indicator - prob))).T.reshape(-1)
    information = np.empty((p * k, p * k))
    for a in range(k):
        for b in range(a, k):
            w = weights * prob[:, a] * ((1.0 if a == b else 0.0) - prob[:, b])
            block = (X * w[:, None]).T @ X
            information[a * p : (a + 1) * p, b * p : (b + 1) * p] = block
            information[b * p : (b + 1) * p, a * p : (a + 1) * p] = block.T
    if precision is not None:
        score = score - (precision[:, None] * coef).T.reshape(-1)
        information[np.diag_indices_from(information)] += np.tile(precision, k)
    return score, information


def _objective(codes, weights, log_prob, coef, precision) -> float:
    """The deviance, plus ``Σ precision·b²`` (twice the penalty) when penalized."""
    dev = deviance(codes, weights, log_prob)
    return dev if precision is None else dev + float(np.sum(precision[:, None] * coef**2))


def fit_multinomial(
    X: np.ndarray,
    codes: np.ndarray,
    n_levels: int,
    weights: np.ndarray,
    column_names: tuple[str, ...],
    *,
    max_iter: int = 100,
    epsilon: float = 1e-8,
    start: np.ndarray | None = None,
    precision: np.ndarray | None = None,
) -> MultinomialSolution:
    """Maximum-likelihood coefficients of the baseline-category logit model.

    Stops on R's ``glm`` criterion ``|dev − dev_old| / (|dev| + 0.1) < epsilon``, then takes one
    more Newton step (quadratic convergence brings the coefficients to machine precision).
    ``start`` (n_coef × (K−1)) replaces the zero start; ``precision`` (one per column of ``X``)
    maximizes the penalized log-likelihood instead (the criterion then reads the penalized
    objective; ``deviance`` stays the deviance).

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), [0.0, 1, 2, 0, 1, 2]])
    >>> sol = fit_multinomial(X, np.array([0, 1, 2, 1, 2, 2]), 3, np.ones(6), ("Intercept", "x"))
    >>> sol.info.status.name, sol.coef.shape
    ('CONVERGED', (2, 2))
    """
    refuse_aliased_columns(X, weights, column_names)
    started = time.perf_counter()
    p, k = X.shape[1], n_levels - 1
    coef = np.zeros((p, k)) if start is None else np.array(start, dtype=np.float64)
    log_prob = log_probabilities(X, coef)
    objective = _objective(codes, weights, log_prob, coef, precision)
    history, status, polished = [], Status.ITERATION_LIMIT, False
    for iteration in range(1, max_iter + 1):
        score, information = _gradient_and_information(X, codes, weights, log_prob, coef, precision)
        step = np.linalg.solve(information, score).reshape(k, p).T
        new_coef, new_log_prob, new_objective = _halved_step(X, codes, weights, coef, step, objective, precision)
        change = float(np.max(np.abs(new_coef - coef)))
        converged = abs(new_objective - objective) / (abs(new_objective) + 0.1) < epsilon
        coef, log_prob, objective = new_coef, new_log_prob, new_objective
        history.append((iteration, objective / weights.sum(), float(np.max(np.abs(score))), change, np.nan, time.perf_counter() - started))
        if polished:
            status = Status.CONVERGED
            break
        polished = converged
    if _separated(codes, log_prob, weights):
        status = Status.SEPARATION
    dev = deviance(codes, weights, log_prob)
    _, information = _gradient_and_information(X, codes, weights, log_prob, coef, precision)
    info = FitInfo(
        converged=status is Status.CONVERGED,
        n_iter=len(history),
        status=status,
        solver="newton",
        message=status.sentence(f"{len(history)} Newton iterations, deviance {dev:.6g}"),
        history=history_frame(history),
        seconds=time.perf_counter() - started,
    )
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:  # separation can make the information singular: no finite standard errors
        covariance = np.full_like(information, np.nan)
    return MultinomialSolution(coef=coef, covariance=covariance, deviance=dev, info=info)


def _halved_step(X, codes, weights, coef, step, objective, precision):
    """The Newton step, halved until the objective does not increase (it always can, the objective being convex)."""
    for _ in range(_MAX_HALVINGS):
        new_coef = coef + step
        new_log_prob = log_probabilities(X, new_coef)
        new_objective = _objective(codes, weights, new_log_prob, new_coef, precision)
        if np.isfinite(new_objective) and new_objective <= objective * (1 + 1e-12) + 1e-12:
            return new_coef, new_log_prob, new_objective
        step = step / 2.0
    return coef, log_probabilities(X, coef), objective


def _separated(codes: np.ndarray, log_prob: np.ndarray, weights: np.ndarray) -> bool:
    """Whether some class has fitted probability numerically 0 or 1 at rows that carry weight."""
    used = weights > 0
    prob = np.exp(log_prob[used])
    own = prob[np.arange(prob.shape[0]), codes[used]]
    return bool(np.any(own > 1 - _SEPARATION_PROBABILITY)) and bool(np.any(prob < _SEPARATION_PROBABILITY))
