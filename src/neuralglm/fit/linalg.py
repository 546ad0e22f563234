"""Dense linear algebra for weighted least squares: Gram matrices, factorizations, rank.

The IRLS cost is the weighted Gram XᵀWX (n·p² flops). It is accumulated with BLAS ``dsyrk``
over row blocks, which measured about 2× faster than ``X.T @ (w[:, None] * X)`` and than
JAX's float64 Gram on these 2-core machines (DESIGN.md §10). Solves use a Cholesky factor of
the column-equilibrated Gram; when that is ill-conditioned (condition number above 1e8, where
squaring the condition of X would cost more than half the float64 digits), the solve falls back
to a QR factorization of √W·X, as R's ``glm.fit`` always does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg.blas import dsyrk

from neuralglm.errors import RankDeficientError

# Row blocks of ~1 MB: the √W-scaled block is written, then read by dsyrk, while it is still in
# a core's L2 cache (1.25-2 MB on these machines). Measured on the 2-core AMD EPYC machine
# (2026-12-03): a Gram at n = 1e6, p = 100 took 0.43 s with 1 MB blocks, 0.52 s with 8 MB;
# at n = 1e5, p = 100, 49 against 59 ms; at n = 1e6, p = 20, 68 against 87 ms.
_BLOCK_BYTES = 1024 * 1024
_ILL_CONDITIONED = 1e8  # condition number of the equilibrated Gram above which we use QR
RANK_TOLERANCE = 1e-7  # a column is aliased when < 1e-7 of its norm is outside the span of earlier ones (R's qr tol)
_GRAM_RANK_TOLERANCE = 1e-5  # the same rule computed from a Gram (squaring loses half the digits)
RANK_CERTIFICATE = 100 * _GRAM_RANK_TOLERANCE**2  # see rank_certified


def _block_rows(n_coef: int) -> int:
    return max(256, _BLOCK_BYTES // (8 * max(n_coef, 1)))


def weighted_gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """XᵀWX for a diagonal W = diag(w), w ≥ 0; shape (n_coef, n_coef), symmetric."""
    return weighted_gram_and_rhs(X, w)[0]


def weighted_gram_and_rhs(X: np.ndarray, w: np.ndarray, z: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """XᵀWX and, when ``z`` is given, XᵀWz, in one pass over the rows of ``X``.

    Each row block of √W·X is formed once in a reused buffer. With ``z``, the buffer has one
    more column, √W·z, so the same ``dsyrk`` also yields XᵀWz as its last column (2 % more
    flops at p = 100) instead of a second pass over ``X``, which would cost about a fifth of
    an iteration (reading X costs as much as a Gram at p = 20).
    """
    n_obs, n_coef = X.shape
    width = n_coef + (z is not None)
    gram = np.zeros((width, width), order="F")
    step = _block_rows(width)
    root_w = np.sqrt(w)
    buffer = np.empty((min(step, n_obs), width))
    for start in range(0, n_obs, step):
        stop = min(start + step, n_obs)
        block = buffer[: stop - start]
        np.multiply(X[start:stop], root_w[start:stop, None], out=block[:, :n_coef])
        if z is not None:
            np.multiply(z[start:stop], root_w[start:stop], out=block[:, n_coef])
        # block is C-ordered (m, width): its transpose is a Fortran (width, m) array, so dsyrk
        # with trans=0 computes blockᵀ·block without copying.
        gram = dsyrk(1.0, block.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
    upper = np.triu(gram[:n_coef, :n_coef])
    full = upper + np.triu(gram[:n_coef, :n_coef], 1).T
    return full, (None if z is None else np.array(gram[:n_coef, n_coef]))


@dataclass(frozen=True)
class GramFactor:
    """Upper-triangular ``R`` with ``D⁻¹ XᵀWX D⁻¹ = RᵀR`` for the column scales ``D``."""

    upper: np.ndarray
    scale: np.ndarray

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """(XᵀWX)⁻¹ · rhs."""
        scaled = rhs / self.scale
        inner = sla.cho_solve((self.upper, False), scaled)
        return inner / self.scale

    def inverse(self) -> np.ndarray:
        """(XᵀWX)⁻¹, the unscaled covariance (R's ``cov.unscaled``)."""
        r_inv = sla.solve_triangular(self.upper, np.eye(self.upper.shape[0]), lower=False)
        inner = r_inv @ r_inv.T
        return inner / np.outer(self.scale, self.scale)

    def inverse_diagonal(self) -> np.ndarray:
        """diag((XᵀWX)⁻¹) without forming the full inverse."""
        r_inv = sla.solve_triangular(self.upper, np.eye(self.upper.shape[0]), lower=False)
        return np.einsum("ij,ij->i", r_inv, r_inv) / self.scale**2


def _column_scale(diagonal: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.maximum(diagonal, 0.0))
    scale[scale == 0] = 1.0
    return scale


def factor_gram(gram: np.ndarray) -> GramFactor | None:
    """Cholesky factor of the equilibrated Gram, or None if it is too ill-conditioned."""
    scale = _column_scale(np.diag(gram).copy())
    scaled = gram / np.outer(scale, scale)
    try:
        upper = sla.cholesky(scaled, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    diagonal = np.abs(np.diag(upper))
    if diagonal.min() <= 0 or (diagonal.max() / diagonal.min()) ** 2 > _ILL_CONDITIONED:
        return None
    return GramFactor(upper=upper, scale=scale)


def factor_qr(X: np.ndarray, w: np.ndarray) -> GramFactor:
    """Factor of XᵀWX from a QR decomposition of √W·X (accurate when X is ill-conditioned)."""
    weighted = X * np.sqrt(w)[:, None]
    scale = _column_scale(np.einsum("ij,ij->j", weighted, weighted))
    upper = np.linalg.qr(weighted / scale, mode="r")
    signs = np.sign(np.diag(upper))
    signs[signs == 0] = 1.0
    return GramFactor(upper=upper * signs[:, None], scale=scale)


def solve_weighted_least_squares(X: np.ndarray, w: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, GramFactor]:
    """β minimizing Σ w (z − Xβ)², and a factor of XᵀWX for the covariance.

    (IRLS does the same in its steps, with the rank check between the Cholesky factor and
    its use: :func:`neuralglm.fit.irls_state.step`.)
    """
    gram, rhs = weighted_gram_and_rhs(X, w, z)
    assert rhs is not None
    factor = factor_gram(gram)
    if factor is None:
        factor = factor_qr(X, w)
    return factor.solve(rhs), factor


def rank_certified(factor: GramFactor | None, prior_weights: np.ndarray, working_weights: np.ndarray) -> bool:
    """Whether a factor of XᵀW_wX proves that :func:`aliased_columns` (with the prior weights) finds nothing.

    For every column j, the squared share of its weighted norm outside the span of all
    other columns is ``1 / (G_jj (G⁻¹)_jj)`` for G = XᵀWX, and the share outside the span of
    the earlier columns only is at least that. Changing the weights from ``w_prior`` to
    ``w_working = c·w_prior`` changes every squared share by at most the factor
    ``max c / min c``. So if ``min_j 1 / (G_jj (G⁻¹)_jj) · min c / max c`` exceeds
    ``RANK_CERTIFICATE`` (100 times the squared tolerance of the Gram rule, far above the
    rounding error of a factor with condition number below 1e8), no column is aliased under the
    prior weights and the extra Gram of :func:`aliased_columns` can be skipped. Otherwise the
    caller runs :func:`aliased_columns`. Costs O(n_obs + n_coef³).
    """
    if factor is None:
        return False
    diagonal = np.abs(np.diag(factor.upper))
    if diagonal.min() <= 0 or (diagonal.max() / diagonal.min()) ** 2 > _ILL_CONDITIONED:
        return False
    counted = prior_weights > 0
    if not counted.any():
        return False
    ratio = working_weights[counted] / prior_weights[counted]
    low, high = float(ratio.min()), float(ratio.max())
    if not (low > 0 and np.isfinite(high)):
        return False
    # factor.upper is the Cholesky factor of the equilibrated Gram D⁻¹GD⁻¹, whose diagonal is 1
    # (0 for an all-zero column, which then has a zero pivot and fails above).
    r_inv = sla.solve_triangular(factor.upper, np.eye(factor.upper.shape[0]), lower=False)
    share = 1.0 / np.einsum("ij,ij->i", r_inv, r_inv)
    return bool(share.min() * low / high > RANK_CERTIFICATE)


def aliased_columns(X: np.ndarray, w: np.ndarray) -> dict[int, dict[int, float]]:
    """Columns that are (numerically) linear combinations of earlier columns, in column order.

    Returns ``{aliased_index: {earlier_index: coefficient}}``: column ``j`` ≈ Σ coefficient·column.
    A column is aliased when the part of it outside the span of the earlier columns has less
    than ``RANK_TOLERANCE`` of its (weighted) norm. This is the order-preserving rule of R's
    ``dqrdc2``: the first column of a collinear set is kept, later ones are reported.

    Small problems use a Householder QR of √W·X (the residual norms are the diagonal of R,
    accurate to machine precision). When n·p² exceeds 5e8 the QR would cost more than the
    whole fit, so the residuals come from the equilibrated Gram instead; squaring loses half
    the digits, so there the tolerance on the squared residual is 1e-10 (norm ratio 1e-5).
    """
    n_obs, n_coef = X.shape
    root_w = np.sqrt(w)
    if n_obs * n_coef * n_coef <= 5e8:
        weighted = X * root_w[:, None]
        norms = np.sqrt(np.einsum("ij,ij->j", weighted, weighted))
        upper = np.linalg.qr(weighted / np.where(norms > 0, norms, 1.0), mode="r")
        # With fewer rows than columns, R is (n_obs, n_coef): columns past n_obs are aliased.
        residual_ratio = np.zeros(n_coef)
        residual_ratio[: min(n_obs, n_coef)] = np.abs(np.diag(upper))
        threshold = RANK_TOLERANCE
    else:
        weighted = None
        norms, residual_ratio = _gram_residual_ratios(weighted_gram(X, w))
        threshold = _GRAM_RANK_TOLERANCE
    aliased_index = [j for j in range(n_coef) if norms[j] == 0 or residual_ratio[j] < threshold]
    if not aliased_index:
        return {}
    if weighted is None:
        rows = slice(0, min(n_obs, 200_000))
        weighted = X[rows] * root_w[rows, None]
    kept = [j for j in range(n_coef) if j not in aliased_index]
    result: dict[int, dict[int, float]] = {}
    for j in aliased_index:
        earlier = [k for k in kept if k < j]
        if not earlier or norms[j] == 0:
            result[j] = {}
            continue
        coef = np.linalg.lstsq(weighted[:, earlier], weighted[:, j], rcond=None)[0]
        result[j] = {k: float(c) for k, c in zip(earlier, coef, strict=True) if abs(c) > 1e-8}
    return result


def _gram_residual_ratios(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column norms, and each column's share of its norm outside the span of the earlier kept columns, from XᵀWX."""
    n_coef = gram.shape[0]
    norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
    scale = np.where(norms > 0, norms, 1.0)
    scaled = gram / np.outer(scale, scale)
    residual_ratio = np.zeros(n_coef)
    kept_so_far: list[int] = []
    for j in range(n_coef):
        if kept_so_far:
            cross = scaled[kept_so_far, j]
            coef = np.linalg.solve(scaled[np.ix_(kept_so_far, kept_so_far)], cross)
            residual_ratio[j] = np.sqrt(max(scaled[j, j] - cross @ coef, 0.0))
        else:
            residual_ratio[j] = np.sqrt(scaled[j, j])
        if residual_ratio[j] >= _GRAM_RANK_TOLERANCE:
            kept_so_far.append(j)
    return norms, residual_ratio


def aliased_columns_from_gram(gram: np.ndarray) -> dict[int, dict[int, float]]:
    """:func:`aliased_columns` from an accumulated XᵀWX alone (data streamed in blocks): its Gram rule.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), np.arange(4.0), 2 * np.arange(4.0)])
    >>> {j: {k: round(c, 6) for k, c in r.items()} for j, r in aliased_columns_from_gram(X.T @ X).items()}
    {2: {1: 2.0}}
    """
    norms, residual_ratio = _gram_residual_ratios(gram)
    n_coef = gram.shape[0]
    aliased_index = [j for j in range(n_coef) if norms[j] == 0 or residual_ratio[j] < _GRAM_RANK_TOLERANCE]
    kept = [j for j in range(n_coef) if j not in aliased_index]
    result: dict[int, dict[int, float]] = {}
    for j in aliased_index:
        earlier = [k for k in kept if k < j]
        if not earlier or norms[j] == 0:
            result[j] = {}
            continue
        coef = np.linalg.lstsq(gram[np.ix_(earlier, earlier)], gram[earlier, j], rcond=None)[0]
        result[j] = {k: float(c) for k, c in zip(earlier, coef, strict=True) if abs(c) > 1e-8}
    return result


def refuse_aliased_columns(X: np.ndarray, w: np.ndarray, column_names) -> None:
    """Raise :class:`RankDeficientError` naming each aliased column and the combination it equals, if any.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), np.arange(4.0), 2 * np.arange(4.0)])
    >>> refuse_aliased_columns(X, np.ones(4), ("Intercept", "x", "x2"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neuralglm.errors.RankDeficientError: The design matrix is rank deficient: 1 column(s) ... 'x2' ≈ 2·x. ...
    """
    raise_for_aliased(aliased_columns(X, w), column_names)


def raise_for_aliased(aliased: dict[int, dict[int, float]], column_names) -> None:
    """Raise :class:`RankDeficientError` for the result of :func:`aliased_columns` (nothing when it is empty)."""
    if not aliased:
        return
    parts = []
    for j, relation in aliased.items():
        if not relation:
            parts.append(f"'{column_names[j]}' is all zeros (or zero weight)")
            continue
        terms = " + ".join(f"{c:.4g}·{column_names[k]}" for k, c in relation.items())
        parts.append(f"'{column_names[j]}' ≈ {terms}")
    raise RankDeficientError(
        f"The design matrix is rank deficient: {len(aliased)} column(s) are linear combinations of earlier ones: "
        + "; ".join(parts)
        + ". Drop the aliased column(s) from the formula (or merge factor levels) and refit."
    )
