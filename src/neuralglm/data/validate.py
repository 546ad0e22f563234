"""Validation at the boundary: every check on user data, each with a message that helps.

Messages say what is wrong, where (column, count of rows, the first few row labels) and what
to do. Code after this module assumes valid input.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from neuralglm.errors import DataError, DataWarning, DomainError
from neuralglm.family.family import Family

_MAX_ROWS_SHOWN = 5


def describe_rows(labels: Sequence, mask: np.ndarray) -> str:
    """'3 rows (17, 42, 99)': a count and the first few row labels where ``mask`` is True."""
    where = np.flatnonzero(mask)
    shown = ", ".join(str(labels[i]) for i in where[:_MAX_ROWS_SHOWN])
    more = ", …" if where.size > _MAX_ROWS_SHOWN else ""
    noun = "row" if where.size == 1 else "rows"
    return f"{where.size:,} {noun} ({shown}{more})"


def check_columns_exist(names: Iterable[str], data: pd.DataFrame, context: str) -> None:
    """Raise :class:`DataError` for names that are not columns of ``data``, suggesting close ones."""
    columns = [str(c) for c in data.columns]
    missing = [name for name in names if name not in data.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    shown = ", ".join(columns[:20]) + (", …" if len(columns) > 20 else "")
    raise DataError(f"Unknown column {', '.join(hints)} in {context}. The data have columns: {shown}.")


def non_finite_mask(values: pd.Series | np.ndarray) -> np.ndarray:
    """True where a value is missing (NaN/None/NA) or, for numbers, ±inf."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    mask = series.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numbers = series.to_numpy(dtype=float, na_value=np.nan)
        mask = mask | ~np.isfinite(numbers)
    return mask


_DROP_HINT = "Fix or impute them, or pass missing='drop' to drop those rows (as R's na.omit does)."


def find_missing(columns: dict[str, pd.Series | np.ndarray], labels: Sequence, missing: str, *, hint: str = _DROP_HINT) -> np.ndarray:
    """Rows to keep. Raise on NaN/inf (``missing="raise"``) or drop them with a warning.

    ``hint`` is the advice that ends the error message (where ``missing='drop'`` is no option,
    e.g. for new data in ``predict``, the caller says what to do instead).
    """
    if missing not in ("raise", "drop"):
        raise DataError(f"missing must be 'raise' or 'drop'; got {missing!r}.")
    n_rows = len(labels)
    bad_any = np.zeros(n_rows, dtype=bool)
    problems = []
    for name, values in columns.items():
        bad = non_finite_mask(values)
        if bad.any():
            bad_any |= bad
            problems.append(f"'{name}' has {describe_rows(labels, bad)} missing or infinite")
    if not problems:
        return np.ones(n_rows, dtype=bool)
    if missing == "raise":
        raise DataError("Missing or infinite values in the columns the model uses: " + "; ".join(problems) + ". " + hint)
    if bad_any.all():
        raise DataError("Every row has a missing or infinite value in the columns the model uses: " + "; ".join(problems) + ".")
    warnings.warn(
        f"Dropped {bad_any.sum():,} of {n_rows:,} rows with missing or infinite values: " + "; ".join(problems) + ".",
        DataWarning,
        stacklevel=4,
    )
    return ~bad_any


def check_response(family: Family, y: np.ndarray, weights: np.ndarray, labels: Sequence, response_name: str) -> None:
    """Raise :class:`DomainError` if ``y`` is outside the family's domain; warn on non-integer counts."""
    outside = ~family.y_domain.contains(y) & (weights > 0)
    if outside.any():
        condition = family.y_domain.describe("y")
        advice = "Fix the data, or choose a family that allows those values."
        if family.weights_are_trials and np.all(y[outside] > 1):
            advice = (
                "For counts of successes give the proportion with weights=trials, or write "
                "cbind(successes, failures) ~ … on the left of the formula."
            )
        raise DomainError(
            f"The {family} family needs {condition}; response '{response_name}' has {describe_rows(labels, outside)} outside that range. "
            + advice
        )
    if family.integer_response:
        counts = y * weights if family.weights_are_trials else y
        fractional = np.abs(counts - np.round(counts)) > 1e-3
        if fractional.any():
            what = "numbers of successes (y × weights)" if family.weights_are_trials else "counts"
            warnings.warn(
                f"The {family} family expects whole {what}; response '{response_name}' has "
                f"{describe_rows(labels, fractional)} that are not whole. The fit is a quasi-likelihood fit there.",
                DataWarning,
                stacklevel=4,
            )


def check_weights(values: np.ndarray, labels: Sequence, name: str) -> None:
    """Raise :class:`DomainError` for negative weights or weights that are all zero."""
    negative = values < 0
    if negative.any():
        raise DomainError(f"{name} must be ≥ 0; {describe_rows(labels, negative)} are negative. Fix or drop those rows.")
    if not (values > 0).any():
        raise DomainError(f"{name} are all zero: no observation would count in the fit.")


def check_exposure(values: np.ndarray, labels: Sequence, name: str) -> None:
    """Raise :class:`DomainError` for exposures that are not strictly positive."""
    bad = ~(values > 0)
    if bad.any():
        raise DomainError(
            f"exposure must be > 0 (it enters as offset log(exposure)); '{name}' has {describe_rows(labels, bad)} "
            "that are zero or negative. Drop those rows or correct the exposure."
        )


def as_column(value, data: pd.DataFrame | None, n_rows: int, name: str) -> tuple[np.ndarray, str]:
    """Turn a column name or an array-like into a float64 vector of length ``n_rows``.

    Returns the vector (a fresh copy, never a view of the caller's data) and a label for messages.
    Missing values are kept as NaN for :func:`find_missing` to report or drop.
    """
    if isinstance(value, str):
        if data is None:
            raise DataError(f"{name}={value!r} names a column, but no data frame was given.")
        check_columns_exist([value], data, f"{name}=")
        series = data[value]
        label = value
    else:
        series = pd.Series(np.array(value, dtype=float, copy=True).ravel())
        label = name
    if len(series) != n_rows:
        raise DataError(f"{name} has {len(series):,} values but the data have {n_rows:,} rows; they must match.")
    try:
        return np.array(series.to_numpy(dtype=float, na_value=np.nan), dtype=np.float64, copy=True), label
    except (TypeError, ValueError):
        raise DataError(f"{name} ('{label}') must be numeric; got values of type {series.dtype}.") from None
