"""The :class:`Design` every fit reads, and the record of where its offset and weights came from.

Kept apart from the builders (:mod:`neuralglm.data.design` for formulas, :mod:`neuralglm.data.arrays`
for ready matrices) so that results and model files can import the types without the builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralglm.errors import DataError


@dataclass(frozen=True)
class OffsetSource:
    """Which columns (or arrays) gave the offset, exposure and weights, so new data can be read the same way."""

    offset_column: str | None = None
    exposure_column: str | None = None
    offset_array: bool = False
    exposure_array: bool = False
    weights_column: str | None = None
    freq_weights_column: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.offset_column or self.exposure_column or self.offset_array or self.exposure_array)

    def describe(self) -> str:
        """A label for summaries, e.g. ``'log(exposure)'``."""
        parts = []
        if self.offset_column or self.offset_array:
            parts.append(self.offset_column or "offset")
        if self.exposure_column or self.exposure_array:
            parts.append(f"log({self.exposure_column or 'exposure'})")
        return " + ".join(parts)


@dataclass(frozen=True)
class Design:
    """Everything a fit needs, as float64 NumPy arrays (fresh copies of the user's data, except ``X`` from ``glm_fit``).

    Attributes
    ----------
    y : (n_obs,) response (a proportion for binomial data with trials in ``weights``).
    X : (n_obs, n_coef) design matrix, C-contiguous. From :func:`design_from_arrays` it is the
        caller's own array when that is already float64 and C-ordered (as statsmodels keeps
        ``exog``): a copy cost 0.28 s at n = 10⁶, p = 100, a third of a whole fit. Its column
        sums are kept in ``X_column_sums`` so that anything reading ``X`` after the fit
        (:meth:`checked_X`) can refuse an array edited since.
    weights : (n_obs,) prior weights (binomial: trials × user weights).
    freq_weights : (n_obs,) frequency weights (repeat counts) or None.
    offset : (n_obs,) offset on the linear-predictor scale.
    column_names : names of the columns of ``X``.
    """

    y: np.ndarray
    X: np.ndarray
    weights: np.ndarray
    freq_weights: np.ndarray | None
    offset: np.ndarray
    column_names: tuple[str, ...]
    response_name: str
    formula: str
    row_labels: np.ndarray
    offset_source: OffsetSource = field(default_factory=OffsetSource)
    spec: Any = None
    has_intercept: bool = True
    X_column_sums: np.ndarray | None = None

    @property
    def n_obs(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_coef(self) -> int:
        return int(self.X.shape[1])

    def checked_X(self) -> np.ndarray:
        """``X``, after checking that a caller-owned matrix has not been edited since the fit.

        Raises :class:`DataError` when its column sums changed (a fitted model keeps a
        reference to the matrix given to ``glm_fit``, not a copy).
        """
        if self.X_column_sums is not None:
            now = column_sums(self.X)
            if not np.array_equal(now, self.X_column_sums, equal_nan=True):
                changed = [self.column_names[j] for j in np.flatnonzero(now != self.X_column_sums)]
                raise DataError(
                    f"The design matrix X passed to glm_fit was modified after the fit (column sums changed in "
                    f"{len(changed)} column(s): {', '.join(repr(c) for c in changed[:5])}). The model keeps a reference "
                    "to X, not a copy: refit on the edited matrix, or pass X.copy() to glm_fit if you edit it later."
                )
        return self.X

    @property
    def total_weights(self) -> np.ndarray:
        """Prior weights times frequency weights: what multiplies each unit deviance."""
        return self.weights if self.freq_weights is None else self.weights * self.freq_weights


def ones_columns(X: np.ndarray) -> list[int]:
    """Indices of the columns of ``X`` that are all ones; only columns that start with 1000 ones are read in full."""
    candidates = np.flatnonzero(np.all(X[:1000] == 1.0, axis=0))
    return [int(j) for j in candidates if np.all(X[:, j] == 1.0)]


def column_sums(X: np.ndarray) -> np.ndarray:
    # NumPy's own pairwise reduction, not BLAS: the same bits whatever the thread count.
    with np.errstate(over="ignore", invalid="ignore"):
        return X.sum(axis=0)
