"""A network without hidden layers is a GLM: a full-batch polish to its (penalized) maximum-likelihood estimates.

Minibatch Adam/SGD stop where the noise of their steps hides the remaining progress: on a
GLM (``hidden=()``) that left the estimates 0.4-2 standard errors from the maximum-likelihood
ones while the fit reported success (issue 9). :func:`polish` finishes such a fit in float64
on all rows: by IRLS (:func:`~neuralglm.fit.irls.fit_irls`, the estimates of ``ng.glm``) when
nothing is penalized, else by penalized Fisher scoring to the optimum of the training
objective (mean half deviance + ``l2``·½‖W‖² / Σw, the bias unpenalized).

:func:`distance_in_se` measures how far estimates are from that optimum, in standard errors:
the length of one Fisher-scoring step, coefficient by coefficient, over the coefficient's
standard error. Near the optimum the step is the distance to it (exactly so for a Gaussian
identity model), so a fit within :data:`SE_TOLERANCE` of it may keep its estimates, and no
fit farther away is reported as converged.

The coefficients here act on the network's (standardized) inputs: ``[bias, w_1, …, w_p]``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from neuralglm.errors import ConvergenceWarning, DivergenceError, RankDeficientError, SeparationWarning, warn
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import irls_kernels, linalg
from neuralglm.fit.info import FitInfo, Status
from neuralglm.fit.irls import fit_irls
from neuralglm.model.params import Dense, Params

SE_TOLERANCE = 0.05  # issue 9: never claim convergence farther than this many standard errors from the optimum
POLISH_TOL_SE = 1e-6  # penalized scoring stops when a step is below this many standard errors
MAX_ITER = 100
MAX_HALVINGS = 30
# A step is accepted unless it raises the penalized objective beyond rounding (a sum over many rows).
ACCEPT_RELATIVE = 1e-12


@dataclass(frozen=True)
class PolishOutcome:
    """What :func:`polish` did.

    Attributes
    ----------
    params : the polished parameters (float64), or the given ones when the polish could not run.
    status : ``CONVERGED``, ``SEPARATION`` (IRLS found fitted probabilities of 0 or 1) or
        ``ITERATION_LIMIT``; ``None`` when the polish could not run (``reason`` says why).
    converged : whether the polish met its criterion.
    n_iter : its iterations.
    method : ``"IRLS"`` or ``"penalized Fisher scoring"``.
    reason : why the polish could not run or did not finish ('' otherwise).
    separation : the separation warning's text, to be issued by the caller ('' if none).
    """

    params: Params
    status: Status | None
    converged: bool
    n_iter: int
    method: str
    reason: str = ""
    separation: str = ""


def coefficients(params: Params) -> np.ndarray:
    """``[bias, w_1, …, w_p]`` (no bias entry when the output layer has none) of a network without hidden layers."""
    (layer,) = params
    weight = np.asarray(layer.weight, dtype=np.float64)[:, 0]
    if layer.bias is None:
        return weight.copy()
    return np.concatenate([np.asarray(layer.bias, dtype=np.float64).reshape(1), weight])


def from_coefficients(coef: np.ndarray, has_bias: bool) -> Params:
    """The parameters of :func:`coefficients`' vector."""
    weights = np.asarray(coef[1:] if has_bias else coef, dtype=np.float64)[:, None]
    bias = np.asarray(coef[:1], dtype=np.float64) if has_bias else None
    return (Dense(weight=cast(Any, weights), bias=cast(Any, bias)),)  # float64 NumPy leaves, as results store them


def _design(X: np.ndarray, has_bias: bool) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return np.column_stack([np.ones(X.shape[0]), X]) if has_bias else np.ascontiguousarray(X)


def _penalty_diagonal(n_coef: int, has_bias: bool, l2: float) -> np.ndarray:
    diagonal = np.full(n_coef, float(l2))
    if has_bias:
        diagonal[0] = 0.0  # biases are not penalized (model/objective.py)
    return diagonal


@dataclass(frozen=True)
class _Step:
    step: np.ndarray  # the Fisher-scoring step from the current coefficients
    se: np.ndarray  # standard errors of the coefficients (penalized information, dispersion)
    objective: float  # half deviance + l2·½‖W‖² at the current coefficients


def _scoring_step(Z, coef, y, weights, offset, family: Family, link: Link, penalty: np.ndarray) -> _Step:
    """One penalized Fisher-scoring step: (ZᵀWZ + λD)⁻¹ ZᵀWz − β (z the working response)."""
    eta = Z @ coef + offset
    _, deviance, valid = irls_kernels.evaluate(family, link, y, eta, weights)
    if not valid:
        raise DivergenceError("The estimates give invalid fitted means for the family.")
    working_weights, z = irls_kernels.working_quantities(family, link, y, eta, offset, weights)
    gram, rhs = linalg.weighted_gram_and_rhs(Z, working_weights, z)
    assert rhs is not None
    information = gram + np.diag(penalty)
    factor = linalg.factor_gram(information)
    if factor is None:
        target = np.linalg.solve(information, rhs)
        inverse_diagonal = np.diag(np.linalg.inv(information))
    else:
        target, inverse_diagonal = factor.solve(rhs), factor.inverse_diagonal()
    # Pearson χ² from the working quantities: W·(z − η + o)² = w·(y − μ)²/V(μ).
    residual = z - (eta - offset)
    df_resid = float(np.sum(weights > 0)) - Z.shape[1]
    if family.fixed_dispersion is not None:
        phi = float(family.fixed_dispersion)
    elif df_resid > 0:
        phi = float(np.sum(working_weights * residual**2)) / df_resid
    else:
        phi = 1.0  # nothing to estimate it from; the unit scale still orders the coefficients
    se = np.sqrt(np.maximum(phi, np.finfo(np.float64).tiny) * np.maximum(inverse_diagonal, 0.0))
    objective = 0.5 * float(deviance) + 0.5 * float(np.sum(penalty * coef**2))
    return _Step(target - coef, se, objective)


def _in_se(step: _Step, coef: np.ndarray) -> float:
    """The largest step over its standard error; a step at rounding level counts as none."""
    rounding = 64 * np.finfo(np.float64).eps * (1.0 + np.abs(coef))
    ratios = np.where(np.abs(step.step) <= rounding, 0.0, np.abs(step.step) / np.maximum(step.se, np.finfo(np.float64).tiny))
    return float(np.max(ratios, initial=0.0))


def distance_in_se(params: Params, X, y, weights, offset, family: Family, link: Link, *, l2: float) -> float:
    """How far ``params`` are from the (penalized) optimum, in standard errors of the coefficients (see module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Gaussian
    >>> from neuralglm.family.link import Identity
    >>> X, y = np.array([[-1.0], [0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 1.0, 3.0])
    >>> ones, zeros = np.ones(4), np.zeros(4)
    >>> exact = from_coefficients(np.array([0.8, 0.9]), has_bias=True)  # least squares: intercept 0.8, slope 0.9
    >>> bool(distance_in_se(exact, X, y, ones, zeros, Gaussian(), Identity(), l2=0.0) < 1e-9)
    True
    >>> off = from_coefficients(np.array([0.8, 1.0]), has_bias=True)
    >>> round(distance_in_se(off, X, y, ones, zeros, Gaussian(), Identity(), l2=0.0), 2)  # 0.1 over the slope's SE
    0.36
    """
    coef = coefficients(params)
    has_bias = params[-1].bias is not None
    Z = _design(X, has_bias)
    penalty = _penalty_diagonal(len(coef), has_bias, l2)
    try:
        y64, weights64, offset64 = _float64(y, weights, offset)
        step = _scoring_step(Z, coef, y64, weights64, offset64, family, link, penalty)
    except (DivergenceError, np.linalg.LinAlgError):
        return math.inf
    return _in_se(step, coef)


def _float64(y, weights, offset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.asarray(y, dtype=np.float64), np.asarray(weights, dtype=np.float64), np.asarray(offset, dtype=np.float64)


def polish(
    params: Params, X, y, weights, offset, family: Family, link: Link, *, l2: float, column_names: tuple[str, ...] | None = None
) -> PolishOutcome:
    """Estimates of a network without hidden layers moved to the optimum of its training objective, in float64.

    ``l2 == 0`` (or an unpenalized output layer): IRLS from ``params``, i.e. the estimates of
    ``ng.glm``; otherwise penalized Fisher scoring with step halving, until a step is below
    :data:`POLISH_TOL_SE` standard errors. Never raises for a polish that cannot run
    (aliased columns, invalid means): the outcome's ``status`` is then ``None`` and ``reason``
    says why.
    """
    has_bias = params[-1].bias is not None
    Z = _design(X, has_bias)
    y, weights, offset = _float64(y, weights, offset)
    start = coefficients(params)
    if l2 == 0.0:
        names = (("Intercept",) if has_bias else ()) + tuple(column_names or (f"x{j}" for j in range(1, Z.shape[1] + 1 - has_bias)))
        return _polish_irls(Z, start, y, weights, offset, family, link, names, has_bias, params)
    return _polish_penalized(Z, start, y, weights, offset, family, link, _penalty_diagonal(len(start), has_bias, l2), has_bias, params)


def _polish_irls(Z, start, y, weights, offset, family, link, names, has_bias, params) -> PolishOutcome:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            solution = fit_irls(Z, y, weights, offset, family, link, column_names=names, start=start, progress=False)
    except (RankDeficientError, DivergenceError, np.linalg.LinAlgError, ArithmeticError) as error:
        return PolishOutcome(params, None, False, 0, "IRLS", reason=str(error))
    separation = "".join(str(w.message) for w in caught if issubclass(w.category, SeparationWarning))
    info = solution.info
    if not info.converged:
        reason = next((str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)), info.message)
        return PolishOutcome(
            from_coefficients(solution.coef, has_bias), Status.ITERATION_LIMIT, False, info.n_iter, "IRLS", reason, separation
        )
    status = Status.SEPARATION if info.status is Status.SEPARATION else Status.CONVERGED  # CLOSED_FORM: least squares, also at the optimum
    return PolishOutcome(from_coefficients(solution.coef, has_bias), status, True, info.n_iter, "IRLS", separation=separation)


def _polish_penalized(Z, coef, y, weights, offset, family, link, penalty, has_bias, params) -> PolishOutcome:
    method = "penalized Fisher scoring"
    try:
        current = _scoring_step(Z, coef, y, weights, offset, family, link, penalty)
        for iteration in range(1, MAX_ITER + 1):
            if _in_se(current, coef) <= POLISH_TOL_SE:
                return PolishOutcome(from_coefficients(coef, has_bias), Status.CONVERGED, True, iteration - 1, method)
            coef, current = _halving_step(Z, coef, current, y, weights, offset, family, link, penalty)
    except (DivergenceError, np.linalg.LinAlgError) as error:
        return PolishOutcome(params, None, False, 0, method, reason=str(error))
    reason = f"{method} did not reach the optimum in {MAX_ITER} iterations (last step {_in_se(current, coef):.2e} standard errors)"
    return PolishOutcome(from_coefficients(coef, has_bias), Status.ITERATION_LIMIT, False, MAX_ITER, method, reason)


def _halving_step(Z, coef, current: _Step, y, weights, offset, family, link, penalty) -> tuple[np.ndarray, _Step]:
    """The scoring step, halved until the penalized objective does not increase and the means are valid (R's step halving)."""
    step = current.step
    for _ in range(MAX_HALVINGS):
        proposal = coef + step
        try:
            candidate = _scoring_step(Z, proposal, y, weights, offset, family, link, penalty)
        except DivergenceError:
            candidate = None
        if candidate is not None and candidate.objective <= current.objective * (1 + ACCEPT_RELATIVE):
            return proposal, candidate
        step = step / 2
    raise DivergenceError("Step halving could not decrease the penalized objective.")


def finish_glm(
    params: Params, info: FitInfo, warns: bool, data, family: Family, link: Link, *, l2: float, column_names: tuple[str, ...] | None
) -> tuple[Params, FitInfo, bool]:
    """The gradient fit of a network without hidden layers, finished at the optimum of its objective; and whether it warns.

    Adam/SGD are always polished (:func:`polish`); an L-BFGS fit only when it ended more than
    :data:`SE_TOLERANCE` standard errors from the optimum (otherwise its estimates, status and
    warning stand; a float32 L-BFGS fit on many rows can stall there). A polished fit is
    ``CONVERGED`` (or ``SEPARATION``) whatever stopped the first solver, and does not warn;
    when the polish cannot run or finish, the fit keeps a not-converged status and warns,
    saying how far from the optimum it is.

    ``data`` is ``(X, y, weights, offset)`` on all rows; ``l2`` the penalty on the output
    weights (0 when ``penalize_output=False``).
    """
    started = time.perf_counter()
    X, y, weights, offset = data
    distance = distance_in_se(params, X, y, weights, offset, family, link, l2=l2)
    if info.solver == "lbfgs" and distance <= SE_TOLERANCE:
        return params, info, warns
    unit = "iterations" if info.solver == "lbfgs" else "epochs"
    first = (
        f"{SOLVER_NAMES.get(info.solver, info.solver)} stopped after {info.n_iter} {unit} ({info.status.label}), "
        f"{distance:.2g} standard errors from the optimum"
    )
    outcome = polish(params, X, y, weights, offset, family, link, l2=l2, column_names=column_names)
    if outcome.separation:
        warn(outcome.separation, SeparationWarning)
    optimum = "maximum-likelihood estimates (those of ng.glm)" if l2 == 0.0 else "optimum of the penalized objective"
    seconds = info.seconds + time.perf_counter() - started
    if outcome.converged:
        assert outcome.status is not None
        details = f"{first}; a full-batch {outcome.method} polish then reached the {optimum} in {outcome.n_iter} iteration{'s' if outcome.n_iter != 1 else ''}"
        if outcome.status is Status.SEPARATION:  # no finite estimates to reach: say what ran
            ran = f"{first}; then a full-batch {outcome.method} polish ran {outcome.n_iter} iterations"
            message = f"{Status.SEPARATION.value} {ran[0].upper()}{ran[1:]}."
        else:
            message = Status.CONVERGED.sentence(details)
        return (
            outcome.params,
            replace(info, converged=True, status=outcome.status, message=message, seconds=seconds, at_precision=False),
            False,
        )
    remedy = {
        (True, True): "add an l2 penalty, drop aliased columns, or fit it with ng.glm",
        (True, False): "fit it with ng.glm (raising max_iter)",
        (False, True): "check the inputs and the response for extreme values, or use solver='lbfgs' with dtype='float64'",
        (False, False): "use solver='lbfgs' with dtype='float64'",
    }[(l2 == 0.0, outcome.status is None)]
    status = Status.ITERATION_LIMIT if outcome.status is Status.ITERATION_LIMIT else (Status.STALLED if info.converged else info.status)
    what = "could not run" if outcome.status is None else "did not finish"
    message = (
        f"{status.value} {first}, and the full-batch {outcome.method} polish to the {optimum} {what} ({outcome.reason.rstrip('.')}): "
        f"this network without hidden layers is a GLM; {remedy}."
    )
    new = replace(info, converged=False, status=status, message=message, seconds=seconds, at_precision=False)
    return outcome.params, new, True


SOLVER_NAMES = {"lbfgs": "L-BFGS", "adam": "Adam", "sgd": "SGD"}
