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

_BLOCK_BYTES = 8 * 1024 * 1024  # row blocks of ~8 MB stay in cache-friendly sizes
_ILL_CONDITIONED = 1e8  # condition number of the equilibrated Gram above which we use QR
RANK_TOLERANCE = 1e-7  # a column is aliased when < 1e-7 of its norm is outside the span of earlier ones (R's qr tol)


def _block_rows(n_coef: int) -> int:
    return max(256, _BLOCK_BYTES // (8 * max(n_coef, 1)))


def weighted_gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """XᵀWX for a diagonal W = diag(w), w ≥ 0; shape (n_coef, n_coef), symmetric."""
    n_obs, n_coef = X.shape
    gram = np.zeros((n_coef, n_coef), order="F")
    step = _block_rows(n_coef)
    root_w = np.sqrt(w)
    buffer = np.empty((min(step, n_obs), n_coef))
    for start in range(0, n_obs, step):
        stop = min(start + step, n_obs)
        block = buffer[: stop - start]
        np.multiply(X[start:stop], root_w[start:stop, None], out=block)
        # block is C-ordered (m, p): its transpose is a Fortran (p, m) array, so dsyrk with
        # trans=0 computes blockᵀ·block without copying.
        gram = dsyrk(1.0, block.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
    upper = np.triu(gram)
    return upper + np.triu(gram, 1).T


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
    """β minimizing Σ w (z − Xβ)², and a factor of XᵀWX for the covariance."""
    gram = weighted_gram(X, w)
    factor = factor_gram(gram)
    if factor is None:
        factor = factor_qr(X, w)
    rhs = X.T @ (w * z)
    return factor.solve(rhs), factor


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
        residual_ratio = np.abs(np.diag(upper))
        threshold = RANK_TOLERANCE
    else:
        weighted = None
        gram = weighted_gram(X, w)
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
            if residual_ratio[j] >= 1e-5:
                kept_so_far.append(j)
        threshold = 1e-5
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
