"""IRLS as a state machine: ``init(problem) -> state``, ``step(state) -> state``, ``terminate(state) -> status``.

The state is an immutable :class:`IRLSState`; every threshold is a field of
:class:`IRLSControl`. One step is one weighted least-squares solve (:mod:`neuralglm.fit.linalg`)
plus elementwise family/link maths (:mod:`neuralglm.fit.irls_kernels`), with R's step
halving when the new coefficients give invalid means. :func:`run` drives the machine in a
plain Python loop, so warnings and the progress bar work.

Stopping rule: R's ``glm.fit`` criterion ``|dev − dev_old| / (|dev| + 0.1) < epsilon``, then
further steps until every coefficient moved by less than ``coef_tol`` standard errors (or the
steps stop shrinking: rounding noise). R's rule alone can leave coefficients ~0.1 SE from the
optimum at n = 10⁶ (a deviance change of 1e-8·n corresponds to steps of √(1e-8·n) SE). Each
extra step costs one weighted Gram; for canonical links (Newton = Fisher scoring, quadratic
convergence) it is usually one, for other links a few (Fisher scoring converges linearly).
When, during those extra steps, the working weights moved by less than ``covariance_rtol``
(relative) since the last Gram, that Gram's factor is the information matrix to that
precision: the next step is computed from it with one pass for the score instead of a new
Gram, and the factor stays the covariance (R's too is the factor of its last Gram, one step
before its estimate).

The check for aliased columns (:func:`linalg.aliased_columns`) costs one weighted Gram, as
much as an iteration. The first step's Gram usually proves that no column is aliased
(:func:`linalg.rank_certified`) and the check is skipped; when it proves nothing the check runs
before that Gram is used, so a rank-deficient design raises :class:`RankDeficientError`
exactly as if it had been checked up front. Whether this happened is the state's
``rank_checked``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuralglm.data.design import ones_columns
from neuralglm.errors import ConvergenceWarning, DivergenceError, SeparationWarning, warn
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import irls_kernels as kernels
from neuralglm.fit import linalg
from neuralglm.fit.info import FitInfo, Status, history_frame
from neuralglm.fit.solution import LeastSquaresState, Solution

# R's glm.fit: fitted probabilities within 10·eps of 0 or 1 are "numerically 0 or 1".
_BOUNDARY = 10 * 2.220446049250313e-16


@dataclass(frozen=True)
class IRLSControl:
    """Options of IRLS: R's ``glm.control`` plus the polishing rule and the large-data start.

    Attributes
    ----------
    epsilon, max_iter : R's ``glm.control``: the relative deviance change of the stopping
        rule, and the most full-data iterations.
    coef_tol, polish_steps : after R's criterion, steps continue until every coefficient
        moves by less than ``coef_tol`` standard errors, at most ``polish_steps`` more.
    max_halvings : step halvings (R's) before giving up on an invalid step.
    covariance_rtol : a Gram factor still serves as the information (and covariance) when no
        working weight moved more than this, relatively, since it was computed.
    warm_start : start large data from a fit on a subsample (:mod:`neuralglm.fit.irls_start`).
    subsample_min_n, subsample_rows : from ``subsample_min_n`` rows on, the start is a fit on
        about ``subsample_rows`` evenly spaced rows (≥ 50,000 keeps it within a fraction of a
        standard error; below 200,000 rows a full-data start is cheap enough).
    subsample_epsilon, subsample_max_iter : the subsample fit's (loose) stopping rule: the
        full-data steps do the rest. 1e-2 instead of 1e-6 saved 2 of 5 subsample Grams at
        n = 1e6, p = 100 with the same number of full-data steps.
    preconditioned_tol, preconditioned_max_iter : the preconditioned steps from that start
        hand over to full IRLS iterations once a step is below ``preconditioned_tol``
        standard errors, or after ``preconditioned_max_iter`` steps.
    anderson_memory : steps combined by the Anderson acceleration of the preconditioned steps.
    """

    epsilon: float = 1e-8
    max_iter: int = 100
    coef_tol: float = 1e-9
    polish_steps: int = 50
    max_halvings: int = 30
    covariance_rtol: float = 1e-7
    warm_start: bool = True
    subsample_min_n: int = 200_000
    subsample_rows: int = 50_000
    subsample_epsilon: float = 1e-2
    subsample_max_iter: int = 25
    preconditioned_tol: float = 1e-5
    preconditioned_max_iter: int = 40
    anderson_memory: int = 5


class IRLSProblem(NamedTuple):
    """The data and model: ``X`` (n_obs, n_coef); ``y``, ``weights`` (total), ``offset`` (n_obs,)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    family: Family
    link: Link
    column_names: tuple[str, ...] = ()


class IRLSState(NamedTuple):
    """Where IRLS stands after an iteration. Nothing in it is ever changed in place.

    Attributes
    ----------
    coef : accepted coefficients (None when started from the data's means, before any step).
    eta, mu, deviance : linear predictor, mean (None until computed) and deviance at ``coef``.
    factor, working_weights : factor of the last Gram XᵀWX and its weights W (the prior
        weights before any Gram).
    iteration : full-data iterations done.
    relative_change : R's ``|dev − dev_old| / (|dev| + 0.1)`` of the last iteration.
    step_in_se : the last step's largest coefficient change in standard errors when it met
        R's criterion, else NaN.
    polishing, previous_step_in_se : earlier steps that met R's criterion, and the last one's
        ``step_in_se``.
    certified : the last factor showed, with one pass for the score, that the next step is
        below ``coef_tol`` standard errors (no new Gram).
    rank_checked : no column is aliased (checked or certified), or the check is not wanted.
    records : history rows (see :data:`neuralglm.fit.info.HISTORY_COLUMNS`), the
        preconditioned steps of a large-data start first.
    total_weight, started : Σ weights (for the objective) and the clock's start.
    """

    coef: np.ndarray | None
    eta: np.ndarray
    mu: np.ndarray | None
    deviance: float
    factor: linalg.GramFactor | None
    working_weights: np.ndarray
    iteration: int
    relative_change: float
    step_in_se: float
    polishing: int
    previous_step_in_se: float
    certified: bool
    rank_checked: bool
    records: tuple[tuple, ...]
    total_weight: float
    started: float


def init(
    problem: IRLSProblem,
    *,
    start: np.ndarray | None = None,
    handover: tuple[np.ndarray, float] | None = None,
    prefix: tuple[tuple, ...] = (),
    check_rank: bool = True,
    started: float | None = None,
) -> IRLSState:
    """The state before the first iteration.

    Without ``start``, R's starting means (``mustart``); else the coefficients ``start``,
    whose linear predictor and deviance ``handover`` gives when already known (the
    preconditioned steps'). ``prefix`` are history rows of steps taken before.

    Raises
    ------
    DivergenceError
        if ``start`` gives an invalid mean or a non-finite deviance.
    """
    X, y, weights, offset, family, link, _ = problem
    mu: np.ndarray | None
    if start is None:
        mu, eta, deviance = kernels.starting_values(family, link, y, weights)
        coef = None
    else:
        coef = np.asarray(start, dtype=np.float64)
        if handover is not None:
            (eta, deviance), mu = handover, None
        else:
            eta = X @ coef + offset
            mu, deviance, valid = kernels.evaluate(family, link, y, eta, weights)
            if not valid:
                raise DivergenceError("The starting coefficients give an invalid mean or a non-finite deviance; supply other start values.")
    return IRLSState(
        coef=coef,
        eta=eta,
        mu=mu,
        deviance=deviance,
        factor=None,
        working_weights=np.asarray(weights),
        iteration=0,
        relative_change=math.inf,
        step_in_se=math.nan,
        polishing=0,
        previous_step_in_se=math.inf,
        certified=False,
        rank_checked=not check_rank,
        records=tuple(prefix),
        total_weight=float(np.sum(weights)),
        started=time.perf_counter() if started is None else started,
    )


def _in_se(change: np.ndarray, factor: linalg.GramFactor) -> float:
    return float(np.max(np.abs(change) / np.sqrt(np.maximum(factor.inverse_diagonal(), 1e-300))))


def _factor_still_fits(factor_weights: np.ndarray, weights_now: np.ndarray, rtol: float) -> bool:
    """Whether the Gram of ``factor_weights`` is within ``rtol`` of the Gram of ``weights_now``.

    If every weight changed by a relative δ at most, (1 − δ)·XᵀW₀X ≤ XᵀWX ≤ (1 + δ)·XᵀW₀X, so
    the old factor gives every variance and covariance to within δ relative.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return bool(np.all(np.abs(weights_now - factor_weights) <= rtol * factor_weights))


def step(problem: IRLSProblem, control: IRLSControl, state: IRLSState) -> IRLSState:
    """One IRLS iteration: a weighted least-squares solve with step halving (or a certified stop).

    Raises
    ------
    DivergenceError
        if the working weights are not finite or no valid step exists.
    RankDeficientError
        if the first Gram does not certify the rank and columns are aliased.
    """
    X, y, weights, offset, family, link, _ = problem
    met_before = not math.isnan(state.step_in_se)
    polishing = state.polishing + met_before
    previous_step_in_se = state.step_in_se if met_before else state.previous_step_in_se
    w, z = kernels.working_quantities(family, link, y, state.eta, offset, weights)
    if polishing and state.factor is not None and _factor_still_fits(state.working_weights, w, control.covariance_rtol):
        # The weights hardly moved, so the last factor is (to covariance_rtol) the information
        # here: one pass for the score checks the stopping rule without a new Gram, and that
        # factor stays the covariance (as in R, that of the last Gram).
        chord = state.factor.solve((w * (z - (state.eta - offset))) @ X)
        if _in_se(chord, state.factor) < control.coef_tol:
            return state._replace(certified=True, polishing=polishing, previous_step_in_se=previous_step_in_se)
    iteration = state.iteration + 1
    if not (np.isfinite(w).all() and np.isfinite(z).all()):
        where = "the starting values (the link of the data's means)" if state.coef is None else f"iteration {iteration}"
        raise DivergenceError(
            f"IRLS cannot continue: the working weights are not finite at {where}. The {link} link cannot map "
            f"some means of the {family} family (R: 'cannot find valid starting values'). Use the family's "
            f"default link ('{family.default_link}'), or check the response for values the link cannot take."
        )
    gram, rhs = linalg.weighted_gram_and_rhs(X, w, z)
    assert rhs is not None
    cholesky = linalg.factor_gram(gram)
    rank_checked = state.rank_checked or certify_rank(problem, cholesky, w)
    factor = cholesky if cholesky is not None else linalg.factor_qr(X, w)
    coef_old, coef, eta, mu, deviance = _valid_step(problem, control, state.coef, factor.solve(rhs), iteration)
    change = np.abs(coef - coef_old) if coef_old is not None else np.full_like(coef, np.inf)
    relative_change = abs(deviance - state.deviance) / (abs(deviance) + 0.1)
    step_in_se = _in_se(change, factor) if relative_change < control.epsilon else math.nan
    record = (len(state.records) + 1, deviance / state.total_weight, math.nan, float(np.max(change)), math.nan)
    return state._replace(
        coef=coef,
        eta=eta,
        mu=mu,
        deviance=deviance,
        factor=factor,
        working_weights=w,
        iteration=iteration,
        relative_change=relative_change,
        step_in_se=step_in_se,
        polishing=polishing,
        previous_step_in_se=previous_step_in_se,
        rank_checked=rank_checked,
        records=(*state.records, (*record, time.perf_counter() - state.started)),
    )


def _valid_step(problem: IRLSProblem, control: IRLSControl, coef_old, coef, iteration: int):
    """(reference, coef, eta, mu, deviance): the proposal, halved towards ``coef_old`` until valid (R's rule).

    From the starting means there is no ``coef_old``; R gives up there ("please supply starting
    values"), but halving towards the intercept-only fit, whose mean is the weighted mean of y,
    is always valid, and that fit is then the reference the step is measured from.
    """
    X, y, weights, offset, family, link, _ = problem
    eta = X @ coef + offset
    mu, deviance, valid = kernels.evaluate(family, link, y, eta, weights)
    if not valid and coef_old is None:
        coef_old = _intercept_only_coef(problem)
    halvings = 0
    while not valid:
        if coef_old is None or halvings >= control.max_halvings:
            raise DivergenceError(
                f"IRLS found no valid coefficients (iteration {iteration}): the {link} link gives means outside "
                f"the {family} family's range or a non-finite deviance. Try the family's default link "
                f"('{family.default_link}'), supply start values, or check the data for extreme values."
            )
        halvings += 1
        coef = (coef + coef_old) / 2.0
        eta = X @ coef + offset
        mu, deviance, valid = kernels.evaluate(family, link, y, eta, weights)
    return coef_old, coef, eta, mu, deviance


def _intercept_only_coef(problem: IRLSProblem) -> np.ndarray | None:
    X, y, weights, offset, _, link, _ = problem
    ones = ones_columns(X)
    if not ones:
        return None
    coef = np.zeros(X.shape[1])
    mean = np.sum(weights * y) / np.sum(weights)
    coef[ones[0]] = float(link(mean)) - float(np.average(offset, weights=weights))
    return coef


def terminate(control: IRLSControl, state: IRLSState) -> Status | None:
    """``CONVERGED`` when the stopping rule is met, ``ITERATION_LIMIT`` after ``max_iter`` iterations, else None."""
    if state.certified:
        return Status.CONVERGED
    if not math.isnan(state.step_in_se):
        # Fisher scoring converges linearly for non-canonical links, so polishing goes on while
        # the steps still shrink; a step that no longer shrinks is rounding noise.
        stalled = state.polishing > 0 and state.step_in_se > 0.5 * state.previous_step_in_se
        if state.step_in_se < control.coef_tol or stalled or state.polishing >= control.polish_steps:
            return Status.CONVERGED
    if state.iteration >= control.max_iter:
        return Status.ITERATION_LIMIT
    return None


def certify_rank(problem: IRLSProblem, cholesky: linalg.GramFactor | None, working_weights: np.ndarray) -> bool:
    """True when the Gram's factor certifies that no column is aliased, or the check finds none; else raises."""
    if linalg.rank_certified(cholesky, problem.weights, working_weights):
        return True
    check_rank(problem)
    return True


def check_rank(problem: IRLSProblem) -> None:
    """Raise :class:`RankDeficientError` naming the aliased columns, if any."""
    linalg.refuse_aliased_columns(problem.X, problem.weights, problem.column_names)


def run(problem: IRLSProblem, control: IRLSControl, state: IRLSState, *, progress: bool | None = False) -> tuple[IRLSState, Status]:
    """Step from ``state`` until :func:`terminate` answers; returns the last state and the status."""
    from tqdm.auto import tqdm

    bar = tqdm(total=control.max_iter, desc="IRLS", disable=None if progress is None else not progress, leave=False)
    try:
        while (status := terminate(control, state)) is None:
            state = step(problem, control, state)
            if not state.certified:
                bar.update(1)
                bar.set_postfix(deviance=f"{state.deviance:.6g}")
    finally:
        bar.close()
    return state, status


def solution(problem: IRLSProblem, control: IRLSControl, state: IRLSState, status: Status) -> Solution:
    """The solver's result from the final state: warns on separation and on non-convergence."""
    assert state.coef is not None and state.factor is not None and state.mu is not None
    converged = status is Status.CONVERGED
    mu = state.mu
    if problem.family.separation_possible:
        domain = problem.family.mu_domain
        boundary = (mu < domain.low + _BOUNDARY) | (mu > domain.high - _BOUNDARY)
        if boundary.any():
            status = Status.SEPARATION
            warn(f"{Status.SEPARATION.value} ({int(boundary.sum()):,} of {len(mu):,} fitted probabilities are 0 or 1.)", SeparationWarning)
    message = status.value
    if not converged:
        text = (
            f"IRLS did not converge in {control.max_iter} iterations (last relative deviance change "
            f"{state.relative_change:.2e}): increase max_iter, scale the inputs, or simplify the model."
        )
        warn(text, ConvergenceWarning)
        message = f"{message} {text}" if status is Status.SEPARATION else text
    history = history_frame(state.records)
    seconds = time.perf_counter() - state.started
    info = FitInfo(converged, len(state.records), status, "irls", message=message, history=history, seconds=seconds)
    least_squares = LeastSquaresState(state.eta, mu, state.factor, state.working_weights)
    return Solution(state.coef, info, best_iteration=len(state.records), least_squares=least_squares)
