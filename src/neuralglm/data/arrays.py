"""A :class:`Design` from a ready design matrix and response (R's ``glm.fit(x, y)``): no formula.

``X`` must be a 2-d array of real numbers with at least one row and one column; anything else
(complex numbers, text, ragged lists, a 3-d array) is a :class:`DataError` naming ``X``,
raised before any conversion warning of NumPy's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuralglm.data import structures, validate
from neuralglm.data.structures import Design, OffsetSource
from neuralglm.errors import DataError
from neuralglm.family.family import Family

_X_IS = "X must be a 2-d array of real numbers (n_obs, n_coef)"


def real_matrix(X) -> np.ndarray:
    """``X`` as a float64 C-ordered 2-d array: the same object when it already is one, else a converted copy.

    Examples
    --------
    >>> real_matrix([[1, 2], [1, 3]]).dtype
    dtype('float64')
    """
    if isinstance(X, np.ndarray):
        array = X
    elif X is None or isinstance(X, str | bytes | dict | set):
        raise DataError(f"{_X_IS}; got a {type(X).__name__}.")
    else:
        try:
            array = np.asarray(X)
        except (ValueError, TypeError) as error:
            raise DataError(f"{_X_IS}; got a {type(X).__name__} that is not one (rows of different lengths?): {error}") from None
    if array.ndim != 2:
        raise DataError(f"{_X_IS}; got shape {array.shape}.")
    if array.shape[0] == 0:
        raise DataError("X has no rows.")
    if array.shape[1] == 0:
        raise DataError("X has no columns: give at least one (a column of ones for the intercept, as R's glm.fit needs).")
    kind = array.dtype.kind
    if kind == "c":
        raise DataError("X holds complex numbers; a GLM needs real ones. Pass X.real if the imaginary parts are zero.")
    if kind == "O":
        bad = ~np.vectorize(validate.is_real_number, otypes=[bool])(array)
        if bad.any():
            row, column = (int(i[0]) for i in np.nonzero(bad))
            raise DataError(
                f"{_X_IS}; {int(bad.sum()):,} of its values are not numbers (the first, at row {row}, column {column}: "
                f"{array[row, column]!r:.40}). Convert them first, e.g. with pd.to_numeric."
            )
    elif kind not in "biuf":
        raise DataError(f"{_X_IS}; got text or other non-numbers (dtype {array.dtype}). Convert them first, e.g. with pd.to_numeric.")
    try:
        return np.asarray(array, dtype=np.float64, order="C")
    except (OverflowError, ValueError, TypeError) as error:
        raise DataError(f"{_X_IS}; its values cannot be converted to float64: {error}") from None


def _column_names(column_names, n_columns: int) -> tuple:
    if column_names is None:
        return tuple(f"x{j + 1}" for j in range(n_columns))
    if isinstance(column_names, str | bytes) or not hasattr(column_names, "__iter__"):
        raise DataError(f"column_names must be a list of {n_columns} names, one per column of X; got {column_names!r:.60}.")
    names = tuple(column_names)
    if len(names) != n_columns:
        raise DataError(f"column_names has {len(names)} names but X has {n_columns} columns.")
    return names


def design_from_arrays(X, y, *, column_names=None, weights=None, freq_weights=None, offset=None, family: Family) -> Design:
    """A :class:`Design` from a ready design matrix (R's ``glm.fit(x, y)``); no formula.

    ``X`` is not copied when it is already a float64 C-ordered array (see :class:`Design`).
    """
    X = real_matrix(X)
    n_obs = X.shape[0]
    y_values, _ = validate.as_column(y, None, n_obs, "y")
    labels = np.arange(n_obs)
    names = _column_names(column_names, X.shape[1])
    extras = {}
    for name, value in (("weights", weights), ("freq_weights", freq_weights), ("offset", offset)):
        if value is not None:
            extras[name], _ = validate.as_column(value, None, n_obs, name)
    checked: dict[str, Any] = {"y": y_values, **extras}
    validate.find_missing(checked, labels, "raise")
    # One pass without a temporary: a NaN or inf makes a column sum non-finite (so can an
    # overflow, which the exact per-column check below then clears). The sums also fingerprint X.
    column_sums = structures.column_sums(X)
    if not np.isfinite(column_sums).all():
        finite = np.isfinite(X)
        bad_columns = [f"'{names[j]}' has {validate.describe_rows(labels, ~finite[:, j])}" for j in np.flatnonzero(~finite.all(axis=0))]
        if bad_columns:
            raise DataError(f"X has missing or infinite values: {'; '.join(bad_columns)}. Fix or drop those rows.")
    # Values beyond the limit are screened by the column sums (no extra pass over X); a column
    # whose huge values cancel in the sum is then left to the solver's own divergence checks.
    suspicious = np.flatnonzero(np.abs(column_sums) > validate.MAX_ABS_RESPONSE)
    if suspicious.size:
        maxima = np.zeros(X.shape[1])
        maxima[suspicious] = np.abs(X[:, suspicious]).max(axis=0)
        validate.check_design_magnitude(X, names, labels, maxima)
    prior = extras.get("weights", np.ones(n_obs))
    validate.check_weights(prior, labels, "weights")
    if "freq_weights" in extras:
        validate.check_weights(extras["freq_weights"], labels, "freq_weights")
    validate.check_response(family, y_values, prior, labels, "y")
    return Design(
        y=y_values,
        X=X,
        weights=prior,
        freq_weights=extras.get("freq_weights"),
        offset=extras.get("offset", np.zeros(n_obs)),
        column_names=names,
        response_name="y",
        formula="",
        row_labels=labels,
        offset_source=OffsetSource(offset_array=offset is not None),
        # As R's glm.fit(intercept=TRUE): a column of ones is the intercept of the null model.
        has_intercept=bool(structures.ones_columns(X)),
        X_column_sums=column_sums,
    )
