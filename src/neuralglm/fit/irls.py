"""Iteratively reweighted least squares for GLMs (no hidden layer), in float64.

:func:`fit_irls` wires the pieces: Gaussian/identity models are solved in closed form; large
data start from a subsample fit and preconditioned steps (:mod:`neuralglm.fit.irls_start`);
then the IRLS state machine (:mod:`neuralglm.fit.irls_state`: ``init``/``step``/``terminate``
over an immutable state, every threshold a field of :class:`IRLSControl`) runs to R's stopping
rule. The result is a :class:`~neuralglm.fit.solution.Solution` with the coefficients, the
final Gram factor and the history every solver shares.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from neuralglm.errors import DivergenceError, RankDeficientError
from neuralglm.family.family import Family, Gaussian
from neuralglm.family.link import Identity, Link
from neuralglm.fit import irls_kernels, irls_start, irls_state, linalg
from neuralglm.fit.info import FitInfo, Status, history_frame
from neuralglm.fit.irls_state import IRLSControl, IRLSProblem
from neuralglm.fit.solution import LeastSquaresState, Solution

# The solution type of IRLS (one type for every solver; kept under its former name).
IRLSSolution = Solution

__all__ = ["IRLSControl", "IRLSProblem", "IRLSSolution", "fit_irls"]


def fit_irls(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    family: Family,
    link: Link,
    *,
    column_names: tuple[str, ...],
    control: IRLSControl = IRLSControl(),
    start: np.ndarray | None = None,
    check_rank: bool = True,
    progress: bool | None = None,
) -> Solution[np.ndarray]:
    """Maximum-likelihood fit of a GLM by IRLS (Fisher scoring), float64.

    Parameters
    ----------
    X : (n_obs, n_coef) design matrix.
    y, weights, offset : (n_obs,) response, total weights (prior × frequency), offset.
    family, link : the model.
    column_names : names of the columns of ``X`` (for error messages).
    control : stopping rule, iteration limits and the thresholds of the large-data start.
    start : optional starting coefficients.
    check_rank : refuse aliased columns (:class:`RankDeficientError`).
    progress : progress bar (``None``: only on a terminal).

    Returns
    -------
    Solution
        ``params`` (= ``coef``), ``info`` and the last weighted least squares (``eta``, ``mu``,
        ``factor``, ``working_weights``).

    Raises
    ------
    RankDeficientError
        if columns of ``X`` are aliased.
    DivergenceError
        if no valid coefficients can be found (non-finite deviance after step halving).

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Poisson
    >>> from neuralglm.family.link import Log
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> y = np.array([1.0, 2.0, 4.0, 9.0])
    >>> sol = fit_irls(X, y, np.ones(4), np.zeros(4), Poisson(), Log(), column_names=("Intercept", "x"))
    >>> bool(sol.info.converged), sol.info.status.name
    (True, 'CONVERGED')
    >>> sol.info.history.columns.tolist()
    ['iteration', 'objective', 'gradient_norm', 'step', 'validation_deviance', 'seconds']
    """
    started = time.perf_counter()
    problem = IRLSProblem(X, y, weights, offset, family, link, tuple(column_names))
    with jax.enable_x64(True):
        if isinstance(family, Gaussian) and isinstance(link, Identity):
            if check_rank:
                irls_state.check_rank(problem)
            return _closed_form(problem, started)
        try:
            state = _initial_state(problem, control, start, check_rank, started)
            state, status = irls_state.run(problem, control, state, progress=progress)
        except RankDeficientError:
            raise
        except (DivergenceError, np.linalg.LinAlgError, ArithmeticError, ValueError):
            if check_rank:
                irls_state.check_rank(problem)  # aliased columns explain the failure better, as when checked first
            raise
        if not state.rank_checked:
            irls_state.check_rank(problem)
        return irls_state.solution(problem, control, state, status)


def _initial_state(problem: IRLSProblem, control: IRLSControl, start, check_rank: bool, started: float) -> irls_state.IRLSState:
    """The start state: ``start``, or for large data the large-data start (:mod:`irls_start`), or R's."""
    if start is None and control.warm_start:
        warm = irls_start.warm_start(problem, control)
        if warm is not None:
            handover = irls_start.preconditioned_steps(problem, control, warm, started)
            return irls_state.init(
                problem,
                start=handover.coef,
                handover=handover.eta_and_deviance,
                prefix=handover.records,
                check_rank=check_rank,
                started=started,
            )
    return irls_state.init(problem, start=start, check_rank=check_rank, started=started)


def _closed_form(problem: IRLSProblem, started: float) -> Solution[np.ndarray]:
    X, y, weights, offset, family, link, _ = problem
    coef, factor = linalg.solve_weighted_least_squares(X, weights, y - offset)
    eta = X @ coef + offset
    mu, dev, _ = irls_kernels.evaluate(family, link, y, eta, weights)
    seconds = time.perf_counter() - started
    history = history_frame([(1, dev / float(np.sum(weights)), np.nan, np.nan, np.nan, seconds)])
    info = FitInfo(True, 1, Status.CLOSED_FORM, "closed_form", history=history, seconds=seconds)
    least_squares = LeastSquaresState(eta, mu, factor, weights.copy())
    return Solution(coef, info, best_iteration=1, least_squares=least_squares)
