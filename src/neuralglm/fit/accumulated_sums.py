"""The partial sums one block of rows contributes to a pass of accumulated IRLS, and how two are combined.

A data source that cannot hold all rows in memory (Parquet read in row batches, a Dask frame
mapped over its partitions) turns each block of rows into a :class:`Block` and calls
:func:`block_sums` on it; :func:`combine` adds the results, in any order and as a tree. The
driver (:mod:`neuralglm.fit.accumulated_irls`) only ever sees the combined sums.

Every row-wise quantity comes from the same kernels as in-memory IRLS
(:mod:`neuralglm.fit.irls_kernels`, :mod:`neuralglm.family.derived`,
:mod:`neuralglm.family.null_model`) and every Gram from :mod:`neuralglm.fit.linalg`, so the
accumulated fit differs from the in-memory one by the order of float64 additions only.

Sums are plain dicts (they travel between Dask workers). How a key combines follows from its
name: ``all_*`` by logical *and*, ``min_*``/``max_*`` by minimum/maximum, ``r_factor`` by
the QR of the stacked triangular factors (TSQR), everything else by addition.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.family import derived, null_model
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.rowwise import map_rows
from neuralglm.fit import irls_kernels as kernels
from neuralglm.fit import linalg

# R's glm.fit: fitted probabilities within 10·eps of 0 or 1 are "numerically 0 or 1" (as irls_state).
_BOUNDARY = 10 * 2.220446049250313e-16


class Block(NamedTuple):
    """One block of rows: design ``X`` (rows, n_coef), response, prior and frequency weights, total offset."""

    X: np.ndarray
    y: np.ndarray
    prior: np.ndarray
    freq: np.ndarray | None
    offset: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Prior times frequency weights: what multiplies each unit deviance."""
        return self.prior if self.freq is None else self.prior * self.freq


class Request(NamedTuple):
    """What a pass computes.

    ``kind``: ``"iterate"`` (the deviance at ``coef`` and the IRLS Gram there; ``coef=None`` is
    R's starting means, and that pass also returns the totals), ``"qr"`` (the triangular factor
    of √W·X at ``coef``, for an ill-conditioned Gram), ``"prior_gram"`` (XᵀWX with the prior
    weights, for the rank check), ``"statistics"`` (Pearson χ², log-likelihood with the
    dispersion ``scalar``, deviance and boundary means at ``coef``), ``"null"`` (the
    intercept-only model's Fisher-scoring sums at η = offset + ``scalar``, or at R's starting
    means when ``scalar`` is None), ``"null_mean"`` (the deviance at the constant mean
    ``scalar``), ``"offset_only"`` (the deviance at η = offset).

    ``reference``: for ``"iterate"`` with ``check_weights``, the coefficients (None: the
    starting means) where the last Gram's working weights were computed; the pass then says
    whether every weight is within ``rtol`` of them.
    """

    kind: str
    coef: np.ndarray | None = None
    reference: np.ndarray | None = None
    check_weights: bool = False
    rtol: float = 0.0
    scalar: float | None = None


def combine(left: dict, right: dict) -> dict:
    """The sums of two disjoint sets of rows combined into the sums of their union.

    Examples
    --------
    >>> out = combine({"deviance": 1.0, "all_valid": True, "max_ratio": 2.0}, {"deviance": 2.5, "all_valid": False, "max_ratio": 3.0})
    >>> out["deviance"], out["all_valid"], out["max_ratio"]
    (3.5, False, 3.0)
    """
    out = dict(left)
    for key, value in right.items():
        if key not in out:
            out[key] = value
        elif key.startswith("all_"):
            out[key] = np.logical_and(out[key], value) if np.ndim(value) else bool(out[key] and value)
        elif key.startswith("min_"):
            out[key] = min(out[key], value)
        elif key.startswith("max_"):
            out[key] = max(out[key], value)
        elif key == "r_factor":
            out[key] = np.linalg.qr(np.vstack([out[key], value]), mode="r")
        else:
            out[key] = out[key] + value
    return out


def combine_all(parts) -> dict:
    """:func:`combine` over an iterable of sums (an empty one gives ``{}``)."""
    total: dict = {}
    for part in parts:
        total = combine(total, part) if total else part
    return total


def block_sums(block: Block, family: Family, link: Link, request: Request) -> dict:
    """The partial sums of ``block`` for ``request`` (see :class:`Request`)."""
    with jax.enable_x64(True):
        if request.kind == "iterate":
            return _iterate(block, family, link, request)
        if request.kind == "qr":
            w, _ = _working(block, family, link, request.coef)
            return {"r_factor": np.linalg.qr(block.X * np.sqrt(w)[:, None], mode="r")}
        if request.kind == "prior_gram":
            return {"gram": linalg.weighted_gram(block.X, block.total)}
        if request.kind == "statistics":
            return _statistics(block, family, link, request)
        return _null(block, family, link, request)


def _start_eta(block: Block, family: Family, link: Link) -> np.ndarray:
    return kernels.starting_values(family, link, block.y, block.total)[1]


def _eta(block: Block, family: Family, link: Link, coef: np.ndarray | None) -> np.ndarray:
    return _start_eta(block, family, link) if coef is None else block.X @ coef + block.offset


def _working(block: Block, family: Family, link: Link, coef: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    eta = _eta(block, family, link, coef)
    return kernels.working_quantities(family, link, block.y, eta, block.offset, block.total)


def _iterate(block: Block, family: Family, link: Link, request: Request) -> dict:
    X, y, total, offset = block.X, block.y, block.total, block.offset
    if request.coef is None:
        _, eta, dev = kernels.starting_values(family, link, y, total)
        out: dict = {"deviance": dev, "all_valid": True, **_totals(block)}
    else:
        eta = X @ request.coef + offset
        _, dev, valid = kernels.evaluate(family, link, y, eta, total)
        out = {"deviance": dev, "all_valid": valid}
        if not valid:
            return out  # a step to be halved: no Gram wanted there
    w, z = kernels.working_quantities(family, link, y, eta, offset, total)
    finite = bool(np.isfinite(w).all() and np.isfinite(z).all())
    out["all_finite"] = finite
    if not finite:
        return out
    gram, rhs = linalg.weighted_gram_and_rhs(X, w, z)
    out["gram"], out["rhs"] = gram, rhs
    # The score Xᵀ W (z − (η − o)), for the step from the last Gram's factor (irls_state.step).
    out["score"] = (w * (z - (eta - offset))) @ X
    counted = total > 0
    if counted.any():  # the range of W / prior weights, for linalg.rank_certified
        ratio = w[counted] / total[counted]
        out["min_ratio"], out["max_ratio"] = float(ratio.min()), float(ratio.max())
    if request.check_weights:
        w_then, _ = _working(block, family, link, request.reference)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["all_weights_fit"] = bool(np.all(np.abs(w - w_then) <= request.rtol * w_then))
    return out


def _totals(block: Block) -> dict:
    """Counts and totals of the data, taken in the first pass: R's n, Σw, Σw·y, Σw·o and the all-ones columns."""
    total, counted = block.total, block.total > 0
    n_obs = float(np.sum(block.freq[counted])) if block.freq is not None else float(np.sum(counted))
    return {
        "n_obs": n_obs,
        "n_rows": len(block.y),
        "weight_total": float(np.sum(total)),
        "weighted_y": float(np.sum(total * block.y)),
        "weighted_offset": float(np.sum(total * block.offset)),
        "max_abs_offset": float(np.max(np.abs(block.offset))),
        "all_ones": np.all(block.X == 1.0, axis=0),
    }


@partial(jax.jit, static_argnums=(0, 1))
def _statistics_kernel(family: Family, link: Link, y, eta, total, prior, freq, ll_dispersion):
    mu = link.inverse(eta)
    ll = derived.loglik(family, y, mu, prior, ll_dispersion, freq)
    domain = family.mu_domain
    boundary = jnp.sum(jnp.where(total > 0, (mu < domain.low + _BOUNDARY) | (mu > domain.high - _BOUNDARY), False) * 1.0)
    return derived.deviance(family, y, mu, total), derived.pearson_chi2(family, y, mu, total), ll, boundary


def _statistics(block: Block, family: Family, link: Link, request: Request) -> dict:
    eta = block.X @ request.coef + block.offset
    counted = block.total > 0
    # As results.common.fit_statistics: rows of zero weight count neither in R's logLik
    # (frequency 0) nor can they give NaN (weight 1).
    prior = np.where(counted, block.prior, 1.0)
    freq = np.where(counted, 1.0 if block.freq is None else block.freq, 0.0)
    dev, chi2, ll, boundary = map_rows(
        _statistics_kernel, (family, link), (block.y, eta, block.total, prior, freq), zero_padded=(2, 4), scalars=(request.scalar,)
    )
    return {"deviance": dev, "pearson_chi2": chi2, "loglik": ll, "boundary": boundary}


def _null(block: Block, family: Family, link: Link, request: Request) -> dict:
    y, total, offset = block.y, block.total, block.offset
    if request.kind == "null_mean":
        return {"deviance": null_model.deviance(family, y, np.full_like(y, request.scalar), total)}
    if request.kind == "offset_only":
        return {"deviance": kernels.evaluate(family, link, y, offset, total)[1]}
    eta = _start_eta(block, family, link) if request.scalar is None else offset + request.scalar
    weighted_z, weight, dev, valid = null_model.fisher_sums(family, link, y, eta, offset, total)
    return {"weighted_z": weighted_z, "working_total": weight, "deviance": dev, "all_valid": valid}
