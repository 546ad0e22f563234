"""The large-data start of IRLS: a fit on a subsample, then preconditioned full-data steps.

Large data start from a fit on an evenly spaced subsample (``IRLSControl.subsample_rows``
rows, from ``subsample_min_n`` rows on), which lands within a few standard errors of the
optimum. From there, cheap *preconditioned* steps β ← β + (c·H_sub)⁻¹ Xᵀ s(β) use the
full-data score s (one pass over X for Xβ, one for Xᵀs) and the subsample's Fisher information
H_sub scaled by c = Σw / Σw_sub instead of a full weighted Gram (n·p² flops, ≈ 10–15 such
passes at p = 100). They converge linearly, at a rate ≈ ‖I − (c·H_sub)⁻¹H‖ ≈ √(p/m) (≈ 0.05,
faster with Anderson acceleration), to the same optimum; they hand over once a step is below
``preconditioned_tol`` standard errors, or as soon as anything looks wrong (a step not
halving, the deviance rising, an invalid mean). The full IRLS iterations
(:mod:`neuralglm.fit.irls_state`) then take over unchanged: one weighted Gram, whose Newton
step lands far below 1e-9 SE from the optimum. The optimum is unique, so all this changes the
cost, not the answer.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuralglm.errors import DivergenceError, RankDeficientError
from neuralglm.fit import irls_kernels as kernels
from neuralglm.fit import irls_state, linalg
from neuralglm.fit.irls_state import IRLSControl, IRLSProblem


@dataclass(frozen=True)
class WarmStart:
    """A subsample fit: its coefficients and the factor of its XᵀWX, which ≈ the full one / ``scale``."""

    coef: np.ndarray
    factor: linalg.GramFactor  # of the subsample's XᵀWX
    scale: float  # Σ w / Σ w_sub: the full-data XᵀWX ≈ scale · the subsample's


class Handover(NamedTuple):
    """What the preconditioned steps hand to the full iterations (see :func:`irls_state.init`)."""

    coef: np.ndarray
    eta_and_deviance: tuple[np.ndarray, float] | None  # None when invalid or never computed
    records: tuple[tuple, ...]  # one history row per step taken


def subsample(n_obs: int, control: IRLSControl) -> np.ndarray | None:
    """The evenly spaced rows of the warm start, or None below ``control.subsample_min_n`` rows."""
    if n_obs < control.subsample_min_n:
        return None
    return np.arange(0, n_obs, n_obs // control.subsample_rows)


def warm_start(problem: IRLSProblem, control: IRLSControl) -> WarmStart | None:
    """A loose IRLS fit on the subsample, or None when the data are small or that fit fails."""
    rows = subsample(problem.X.shape[0], control)
    if rows is None:
        return None
    X, y, weights, offset, family, link, names = problem
    sub = IRLSProblem(np.ascontiguousarray(X[rows]), y[rows], weights[rows], offset[rows], family, link, names)
    loose = dataclasses.replace(control, epsilon=control.subsample_epsilon, max_iter=control.subsample_max_iter, polish_steps=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state, _ = irls_state.run(sub, loose, irls_state.init(sub, check_rank=False))
    except (np.linalg.LinAlgError, DivergenceError, RankDeficientError, ArithmeticError, ValueError):
        # Any failure only costs the warm start (aliased columns, for one, are checked later).
        return None
    scale = float(np.sum(weights) / np.sum(weights[rows]))
    assert state.coef is not None and state.factor is not None
    if not (np.isfinite(state.coef).all() and np.isfinite(scale) and scale > 0):
        return None
    return WarmStart(state.coef, state.factor, scale)


def preconditioned_steps(problem: IRLSProblem, control: IRLSControl, warm: WarmStart, started: float) -> Handover:
    """Steps β ← β + (c·H_sub)⁻¹ Xᵀs(β) from the warm start (see the module docstring).

    Returns the last coefficients known to be valid and no worse than the warm start, their
    linear predictor and deviance, and one history row per step taken. Anything unexpected
    ends the phase early; the full-data iterations then carry on from there.
    """
    X, y, weights, offset, family, link, _ = problem
    coef, eta, dev = warm.coef, None, math.nan
    total_weight = float(np.sum(weights))
    records: list[tuple] = []
    try:
        se = np.sqrt(np.maximum(warm.factor.inverse_diagonal(), 1e-300) / warm.scale)
        eta = X @ coef + offset
        score, dev, valid = kernels.score_and_deviance(family, link, y, eta, weights)
        if not valid:
            return Handover(coef, None, ())
        last_size = np.inf
        # Anderson acceleration (GMRES-like for the nearly linear fixed point): combine the
        # last few steps so the error shrinks faster than the plain iteration's ≈ √(p/m).
        points: list[np.ndarray] = []
        residuals: list[np.ndarray] = []
        gradient = score @ X
        for _ in range(control.preconditioned_max_iter):
            residual = warm.factor.solve(gradient) / warm.scale / se  # plain step, in SE units
            size = float(np.max(np.abs(residual)))
            if not np.isfinite(size) or size > 0.5 * last_size:
                break  # not converging fast: leave it to full Newton steps
            if size < control.preconditioned_tol:
                break  # the full-data Newton step will confirm it (and give the covariance)
            scaled = coef / se
            target = scaled + residual
            if points:
                d_points = np.column_stack([scaled - q for q in points])
                d_residuals = np.column_stack([residual - r for r in residuals])
                gamma = np.linalg.lstsq(d_residuals, residual, rcond=1e-12)[0]
                target = target - (d_points + d_residuals) @ gamma
            points = ([*points, scaled])[-control.anderson_memory :]
            residuals = ([*residuals, residual])[-control.anderson_memory :]
            step = target * se - coef
            coef_new = coef + step
            eta_new = X @ coef_new + offset
            score, dev_new, valid = kernels.score_and_deviance(family, link, y, eta_new, weights)
            rising = dev_new > dev + 1e-12 * (abs(dev) + 0.1) and size > 1e-3
            if not valid or rising:
                break
            coef, eta, dev, last_size = coef_new, eta_new, dev_new, size
            # The gradient of the mean half deviance is −Xᵀs / Σw (s: the score ∂ℓ/∂η per row).
            gradient = score @ X
            row = (
                len(records) + 1,
                dev / total_weight,
                float(np.max(np.abs(gradient))) / total_weight,
                float(np.max(np.abs(step))),
                math.nan,
            )
            records.append((*row, time.perf_counter() - started))
    except (np.linalg.LinAlgError, ArithmeticError, ValueError):
        pass
    return Handover(coef, None if eta is None else (eta, dev), tuple(records))
