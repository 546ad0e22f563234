"""IRLS on data seen only through passes over blocks of rows (Parquet batches, Dask partitions).

The caller gives a *pass*: a function that, for a :class:`~neuralglm.fit.accumulated_sums.Request`,
runs over every row once and returns the combined float64 partial sums
(:mod:`neuralglm.fit.accumulated_sums`): XᵀWX and XᵀWz at the current coefficients with the
deviance there, and on the final passes Pearson χ², the log-likelihood and the null model's
sums. The solve happens here, on p×p matrices, as Spark's GeneralizedLinearRegression does on
its driver.

The iteration is that of :mod:`neuralglm.fit.irls_state` step for step: R's starting means, R's
stopping rule ``|dev − dev_old| / (|dev| + 0.1) < epsilon`` followed by the polishing steps to
``coef_tol`` standard errors, the certified stop when the working weights no longer move,
step halving, the rank certificate of the first Gram (with the Gram rule of
:func:`~neuralglm.fit.linalg.aliased_columns_from_gram` when it proves nothing) and the
same :class:`~neuralglm.fit.irls_state.IRLSControl` thresholds, so the estimates equal the
in-memory fit's up to the order of additions. What differs: no large-data start from a
subsample (each of its steps would be a pass too), and each pass computes the Gram at the
point it evaluates, so an iteration is one pass (a halved step costs one more).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

from neuralglm.errors import ConvergenceWarning, DivergenceError, RankDeficientError, SeparationWarning, warn
from neuralglm.family import derived
from neuralglm.family.family import Family, Gaussian
from neuralglm.family.link import Identity, Link
from neuralglm.family.null_model import fisher_scoring_intercept
from neuralglm.fit import linalg
from neuralglm.fit.accumulated_sums import Request
from neuralglm.fit.info import FitInfo, Status, history_frame
from neuralglm.fit.irls_state import IRLSControl, IRLSState, _in_se, terminate

Pass = Callable[[Request], dict]
_EMPTY = np.zeros(0)


@dataclass(frozen=True)
class AccumulatedFit:
    """The estimates, the factor of the last Gram (the unscaled covariance is its inverse), the deviance, the report and the data's totals."""

    coef: np.ndarray
    factor: linalg.GramFactor
    deviance: float
    info: FitInfo
    totals: dict


def fit_accumulated(
    run_pass: Pass,
    family: Family,
    link: Link,
    *,
    column_names: tuple[str, ...],
    control: IRLSControl = IRLSControl(),
    check_rank: bool = True,
    progress: bool | None = None,
) -> AccumulatedFit:
    """Maximum-likelihood GLM by IRLS over passes of accumulated sums (see the module docstring).

    Raises
    ------
    RankDeficientError, DivergenceError
        as :func:`neuralglm.fit.irls.fit_irls`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Poisson
    >>> from neuralglm.family.link import Log
    >>> from neuralglm.fit.accumulated_sums import Block, block_sums, combine_all
    >>> X = np.column_stack([np.ones(6), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    >>> y = np.array([1.0, 2.0, 4.0, 9.0, 15.0, 30.0])
    >>> blocks = [Block(X[:4], y[:4], np.ones(4), None, np.zeros(4)), Block(X[4:], y[4:], np.ones(2), None, np.zeros(2))]
    >>> def run_pass(request):
    ...     return combine_all(block_sums(b, Poisson(), Log(), request) for b in blocks)
    >>> fit = fit_accumulated(run_pass, Poisson(), Log(), column_names=("Intercept", "x"))
    >>> from neuralglm.fit.irls import fit_irls
    >>> in_memory = fit_irls(X, y, np.ones(6), np.zeros(6), Poisson(), Log(), column_names=("Intercept", "x"))
    >>> fit.info.status.name, bool(np.allclose(fit.coef, in_memory.coef, rtol=1e-12)), np.round(fit.coef, 4).tolist()
    ('CONVERGED', True, [0.0964, 0.6616])
    """
    started = time.perf_counter()
    with jax.enable_x64(True):
        current = run_pass(Request("iterate"))
        totals = {
            key: current[key] for key in ("n_obs", "n_rows", "weight_total", "weighted_y", "weighted_offset", "max_abs_offset", "all_ones")
        }
        try:
            if isinstance(family, Gaussian) and isinstance(link, Identity):
                return _closed_form(run_pass, current, totals, column_names, check_rank, started)
            state = _initial(current, totals, check_rank, started)
            state, status = _run(run_pass, family, link, control, state, current, totals, column_names, progress)
        except RankDeficientError:
            raise
        except (DivergenceError, np.linalg.LinAlgError, ArithmeticError, ValueError):
            if check_rank:
                _check_rank(run_pass, column_names)  # aliased columns explain the failure better
            raise
        if not state.rank_checked:
            _check_rank(run_pass, column_names)
    assert state.coef is not None and state.factor is not None
    converged = status is Status.CONVERGED
    message = status.value
    if not converged:
        message = (
            f"IRLS did not converge in {control.max_iter} iterations (last relative deviance change "
            f"{state.relative_change:.2e}): increase max_iter, scale the inputs, or simplify the model."
        )
        warn(message, ConvergenceWarning)
    seconds = time.perf_counter() - started
    info = FitInfo(converged, len(state.records), status, "irls", message=message, history=history_frame(state.records), seconds=seconds)
    return AccumulatedFit(state.coef, state.factor, state.deviance, info, totals)


def _initial(current: dict, totals: dict, check_rank: bool, started: float) -> IRLSState:
    return IRLSState(
        coef=None,
        eta=_EMPTY,
        mu=None,
        deviance=current["deviance"],
        factor=None,
        working_weights=_EMPTY,
        iteration=0,
        relative_change=math.inf,
        step_in_se=math.nan,
        polishing=0,
        previous_step_in_se=math.inf,
        certified=False,
        rank_checked=not check_rank,
        records=(),
        total_weight=totals["weight_total"],
        started=started,
    )


def _run(run_pass: Pass, family, link, control, state, current, totals, column_names, progress) -> tuple[IRLSState, Status]:
    from tqdm.auto import tqdm

    bar = tqdm(total=control.max_iter, desc="IRLS (passes)", disable=None if progress is None else not progress, leave=False)
    try:
        while (status := terminate(control, state)) is None:
            state, current = _step(run_pass, family, link, control, state, current, totals, column_names)
            if not state.certified:
                bar.update(1)
                bar.set_postfix(deviance=f"{state.deviance:.6g}")
    finally:
        bar.close()
    return state, status


def _step(run_pass: Pass, family, link, control: IRLSControl, state: IRLSState, current: dict, totals, column_names):
    """One iteration of :func:`neuralglm.fit.irls_state.step` from the sums ``current`` at ``state.coef``."""
    met_before = not math.isnan(state.step_in_se)
    polishing = state.polishing + met_before
    previous_step_in_se = state.step_in_se if met_before else state.previous_step_in_se
    if polishing and state.factor is not None and current.get("all_weights_fit", False):
        chord = state.factor.solve(current["score"])
        if _in_se(chord, state.factor) < control.coef_tol:
            return state._replace(certified=True, polishing=polishing, previous_step_in_se=previous_step_in_se), current
    iteration = state.iteration + 1
    if not current["all_finite"]:
        where = "the starting values (the link of the data's means)" if state.coef is None else f"iteration {iteration}"
        raise DivergenceError(
            f"IRLS cannot continue: the working weights are not finite at {where}. The {link} link cannot map "
            f"some means of the {family} family (R: 'cannot find valid starting values'). Use the family's "
            f"default link ('{family.default_link}'), or check the response for values the link cannot take."
        )
    cholesky = linalg.factor_gram(current["gram"])
    rank_checked = state.rank_checked or _certify_rank(run_pass, cholesky, current, column_names)
    factor = cholesky if cholesky is not None else _qr_factor(run_pass, state.coef)
    proposal = factor.solve(current["rhs"])
    coef_old, coef, after = _valid_step(run_pass, control, state.coef, proposal, iteration, totals, link, family)
    deviance = after["deviance"]
    change = np.abs(coef - coef_old) if coef_old is not None else np.full_like(coef, np.inf)
    relative_change = abs(deviance - state.deviance) / (abs(deviance) + 0.1)
    step_in_se = _in_se(change, factor) if relative_change < control.epsilon else math.nan
    record = (len(state.records) + 1, deviance / state.total_weight, math.nan, float(np.max(change)), math.nan)
    state = state._replace(
        coef=coef,
        deviance=deviance,
        factor=factor,
        iteration=iteration,
        relative_change=relative_change,
        step_in_se=step_in_se,
        polishing=polishing,
        previous_step_in_se=previous_step_in_se,
        rank_checked=rank_checked,
        records=(*state.records, (*record, time.perf_counter() - state.started)),
    )
    return state, after


def _valid_step(run_pass: Pass, control: IRLSControl, coef_old, coef, iteration: int, totals: dict, link, family):
    """(reference, coef, sums at coef): the proposal halved towards ``coef_old`` until valid, as irls_state's."""

    def at(candidate: np.ndarray) -> dict:
        # The Gram at the candidate too: when it is accepted, the next iteration needs it.
        return run_pass(Request("iterate", candidate, reference=coef_old, check_weights=True, rtol=control.covariance_rtol))

    sums = at(coef)
    valid = bool(sums["all_valid"]) and math.isfinite(sums["deviance"])
    if not valid and coef_old is None:
        coef_old = _intercept_only_coef(totals, link, len(coef))
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
        sums = at(coef)
        valid = bool(sums["all_valid"]) and math.isfinite(sums["deviance"])
    return coef_old, coef, sums


def _intercept_only_coef(totals: dict, link: Link, n_coef: int) -> np.ndarray | None:
    ones = np.flatnonzero(totals["all_ones"])
    if not len(ones):
        return None
    coef = np.zeros(n_coef)
    mean = totals["weighted_y"] / totals["weight_total"]
    coef[ones[0]] = float(link(mean)) - totals["weighted_offset"] / totals["weight_total"]
    return coef


def _certify_rank(run_pass: Pass, cholesky, current: dict, column_names) -> bool:
    """linalg.rank_certified from the range of W / prior weights, else the Gram rule on a pass of the prior-weighted Gram."""
    low, high = current.get("min_ratio", math.nan), current.get("max_ratio", math.nan)
    if cholesky is not None and low > 0 and math.isfinite(high):
        # rank_certified reads only the ratio's range: two pseudo-rows with ratios low and high.
        if linalg.rank_certified(cholesky, np.ones(2), np.array([low, high])):
            return True
    _check_rank(run_pass, column_names)
    return True


def _check_rank(run_pass: Pass, column_names) -> None:
    gram = run_pass(Request("prior_gram"))["gram"]
    linalg.raise_for_aliased(linalg.aliased_columns_from_gram(gram), column_names)


def _qr_factor(run_pass: Pass, coef: np.ndarray | None) -> linalg.GramFactor:
    """linalg.factor_qr of √W·X from the stacked triangular factors of the blocks (TSQR)."""
    upper = run_pass(Request("qr", coef))["r_factor"]
    scale = np.sqrt(np.einsum("ij,ij->j", upper, upper))
    scale[scale == 0] = 1.0
    upper = upper / scale
    signs = np.sign(np.diag(upper))
    signs[signs == 0] = 1.0
    return linalg.GramFactor(upper=upper * signs[:, None], scale=scale)


def _closed_form(run_pass: Pass, current: dict, totals: dict, column_names, check_rank: bool, started: float) -> AccumulatedFit:
    """Gaussian identity: the starting pass's Gram has W = prior weights and z = y − offset, so one solve."""
    cholesky = linalg.factor_gram(current["gram"])
    if check_rank:
        _check_rank(run_pass, column_names)
    factor = cholesky if cholesky is not None else _qr_factor(run_pass, None)
    coef = factor.solve(current["rhs"])
    deviance = run_pass(Request("iterate", coef))["deviance"]
    seconds = time.perf_counter() - started
    history = history_frame([(1, deviance / totals["weight_total"], np.nan, np.nan, np.nan, seconds)])
    info = FitInfo(True, 1, Status.CLOSED_FORM, "closed_form", history=history, seconds=seconds)
    return AccumulatedFit(coef, factor, deviance, info, totals)


def accumulated_statistics(run_pass: Pass, fit: AccumulatedFit, family: Family) -> tuple[dict, FitInfo]:
    """Deviance, Pearson χ², R's log-likelihood and the count of boundary means at the estimates: one pass.

    The log-likelihood's dispersion (deviance/n for the Gaussian, as R's ``logLik.glm``) needs
    the deviance, which the IRLS passes end with. Fitted probabilities of 0 or 1 warn and set
    the status, as in :func:`neuralglm.fit.irls_state.solution`; the report comes back with it.
    """
    totals = fit.totals
    with jax.enable_x64(True):
        ll_phi = float(derived.loglik_dispersion(family, fit.deviance, np.array([totals["weight_total"]]), totals["n_obs"]))
        sums = run_pass(Request("statistics", fit.coef, scalar=ll_phi))
    info = fit.info
    if family.separation_possible and sums["boundary"] > 0:
        warn(
            f"{Status.SEPARATION.value} ({int(sums['boundary']):,} of {totals['n_rows']:,} fitted probabilities are 0 or 1.)",
            SeparationWarning,
        )
        message = Status.SEPARATION.value if info.converged else f"{Status.SEPARATION.value} {info.message}"
        info = dataclasses.replace(info, status=Status.SEPARATION, message=message)
    return {**sums, "n_obs": totals["n_obs"], "weight_total": totals["weight_total"]}, info


def null_deviance(run_pass: Pass, totals: dict, family: Family, link: Link, has_intercept: bool, *, max_iter: int = 100) -> float:
    """R's null deviance from passes, as :func:`neuralglm.family.null_model.null_deviance` computes it in memory."""
    with jax.enable_x64(True):
        if has_intercept and totals["max_abs_offset"] == 0:
            return run_pass(Request("null_mean", scalar=totals["weighted_y"] / totals["weight_total"]))["deviance"]
        if not has_intercept:
            return run_pass(Request("offset_only"))["deviance"]
        return _intercept_only_deviance(run_pass, totals, family, link, max_iter=max_iter)


def _null_pass(run_pass: Pass, beta: float | None) -> tuple[dict, bool]:
    sums = run_pass(Request("null", scalar=beta))
    valid = sums["all_valid"] and math.isfinite(sums["deviance"]) and math.isfinite(sums["weighted_z"]) and sums["working_total"] > 0
    return sums, bool(valid)


def _intercept_only_deviance(
    run_pass: Pass, totals: dict, family: Family, link: Link, *, max_iter: int, max_halvings: int = 30, step_tol_se: float = 1e-10
) -> float:
    """:func:`neuralglm.family.null_model.intercept_only` step for step, then the deviance there."""

    def evaluate(beta: float | None) -> tuple[float, float, bool, dict]:
        sums, valid = _null_pass(run_pass, beta)
        return sums["weighted_z"], sums["working_total"], valid, sums

    def fallback() -> float:
        return float(link(totals["weighted_y"] / totals["weight_total"])) - totals["weighted_offset"] / totals["weight_total"]

    consequence = "so the null deviance may be inaccurate."
    _, sums = fisher_scoring_intercept(
        evaluate, fallback, family, link, max_iter=max_iter, max_halvings=max_halvings, step_tol_se=step_tol_se, consequence=consequence
    )
    return float(sums["deviance"])
