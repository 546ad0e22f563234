"""Validation at the boundary: every check on user data, each with a message that helps.

Messages say what is wrong, where (column, count of rows, the first few row labels) and what
to do. Code after this module assumes valid input.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from neuralglm.errors import DataError, DataWarning, DomainError, warn
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
    advice = ""
    if any(not isinstance(c, str) for c in data.columns):
        advice = " Some column names are not strings, which a formula cannot name: convert them with df.columns = df.columns.astype(str)."
    raise DataError(f"Unknown column {', '.join(hints)} in {context}. The data have columns: {shown}.{advice}")


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
    warn(
        f"Dropped {bad_any.sum():,} of {n_rows:,} rows with missing or infinite values: " + "; ".join(problems) + ".",
        DataWarning,
    )
    return ~bad_any


# The fit squares the response (the Gaussian deviance, Pearson residuals) and cubes means
# (the inverse Gaussian variance) and sums them over rows: beyond this size float64 overflows
# and the deviance comes out inf or NaN. No measured quantity in any unit is this large.
MAX_ABS_RESPONSE = 1e100


def check_response(family: Family, y: np.ndarray, weights: np.ndarray, labels: Sequence, response_name: str) -> None:
    """Raise :class:`DomainError` if ``y`` is outside the family's domain or too large for float64; warn on non-integer counts.

    The size check covers every row, zero-weight ones included: their unit deviances still
    enter sums (0 · inf is NaN), and a value of 1e200 is a data error more often than not.
    """
    huge = np.abs(y) > MAX_ABS_RESPONSE
    if huge.any():
        raise DomainError(
            f"Response '{response_name}' has {describe_rows(labels, huge)} with |value| > {MAX_ABS_RESPONSE:g} (largest "
            f"{np.max(np.abs(y)):.3g}); the deviance and variances square or cube it and overflow double precision. "
            "Rescale the response (e.g. express it in larger units) or fix those rows."
        )
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
            warn(
                f"The {family} family expects whole {what}; response '{response_name}' has "
                f"{describe_rows(labels, fractional)} that are not whole. The fit is a quasi-likelihood fit there.",
                DataWarning,
            )


def check_design_magnitude(X: np.ndarray, columns: Sequence, labels: Sequence, maxima: np.ndarray | None = None) -> None:
    """Raise :class:`DataError` for design-matrix columns with values beyond :data:`MAX_ABS_RESPONSE`.

    The fit forms ``X'WX``, which squares them and overflows. ``maxima`` (the largest
    ``|X[:, j]|``) may be given when the caller has them; non-finite values are reported elsewhere.
    """
    with np.errstate(invalid="ignore"):
        largest = np.max(np.where(np.isfinite(X), np.abs(X), 0.0), axis=0, initial=0.0) if maxima is None else maxima
        huge = np.flatnonzero(largest > MAX_ABS_RESPONSE)
    if huge.size:
        j = int(huge[0])
        rows = describe_rows(labels, np.isfinite(X[:, j]) & (np.abs(X[:, j]) > MAX_ABS_RESPONSE))
        raise DataError(
            f"Column '{columns[j]}' of the design matrix has {rows} with |value| > {MAX_ABS_RESPONSE:g} (largest {largest[j]:.3g}); "
            "the fit squares it (X'WX) and would overflow double precision. Rescale it (e.g. I(x / 1e6) in the formula)."
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
    Missing values are kept as NaN for :func:`find_missing` to report or drop. Anything that is
    not a column name or ``n_rows`` real numbers (text, objects, complex numbers, a dict, a
    table of several columns) is a :class:`DataError` naming ``name``.

    Examples
    --------
    >>> as_column([1, 2, None], None, 3, "weights")[0]
    array([ 1.,  2., nan])
    """
    if isinstance(value, str):
        if data is None:
            raise DataError(f"{name}={value!r} names a column, but no data frame was given.")
        check_columns_exist([value], data, f"{name}=")
        series = data[value]
        if isinstance(series, pd.DataFrame):
            raise DataError(f"{name}={value!r} names a column that appears more than once in the data: rename or drop the duplicates.")
        return _numbers(series, f"{name} ('{value}')"), value
    values = _one_dimensional(value, n_rows, name)
    return _numbers(pd.Series(values), name), name


def _one_dimensional(value, n_rows: int, name: str) -> np.ndarray:
    what = f"{name} must be a column name or an array of {n_rows:,} numbers (one per row)"
    if isinstance(value, dict | set | frozenset | bytes) or value is None or callable(value):
        raise DataError(f"{what}; got a {type(value).__name__}.")
    if isinstance(value, pd.Series | pd.Index):
        values = value.to_numpy()
    else:
        try:
            values = np.asarray(value)
            if values.dtype.kind in "US" and isinstance(value, list | tuple):
                values = np.asarray(value, dtype=object)  # NumPy turned the numbers of a mixed list into text
        except (ValueError, TypeError) as error:
            raise DataError(f"{what}; got a {type(value).__name__} that is not an array ({error}).") from None
    if values.ndim == 2 and 1 in values.shape:
        values = values.ravel()  # a column or row vector, as R takes a one-column matrix
    if values.ndim != 1:
        raise DataError(f"{what}; got an array of shape {values.shape}.")
    if len(values) != n_rows:
        raise DataError(f"{name} has {len(values):,} values but the data have {n_rows:,} rows; they must match.")
    return values


def shown_values(values: pd.Series, limit: int = 3) -> str:
    """The first few distinct values, each shortened: "'abc', 'x'" (for messages)."""
    distinct = dict.fromkeys(f"{v!r:.30}" for v in values.iloc[:1000])
    return ", ".join(list(distinct)[:limit]) + (", …" if len(distinct) > limit else "")


def is_real_number(value) -> bool:
    """True for Python and NumPy real numbers and booleans (not text, not complex)."""
    return isinstance(value, numbers.Real | np.integer | np.floating | np.bool_)


def _numbers(series: pd.Series, label: str) -> np.ndarray:
    """A fresh float64 copy of ``series``; text, objects and complex numbers are refused, naming ``label``."""
    dtype = series.dtype
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"{label} holds complex numbers; it must be real. Pass the real part (.real) if the imaginary parts are zero.")
    numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    if not numeric and not isinstance(dtype, pd.CategoricalDtype):
        present = series.notna().to_numpy()
        bad = present & np.array([not is_real_number(v) for v in series], dtype=bool)
        if bad.any():
            shown = shown_values(series[bad])
            raise DataError(
                f"{label} must be numeric; it has values that are not numbers in {describe_rows(series.index.to_numpy(), bad)}: {shown}. "
                "Convert with pd.to_numeric(..., errors='coerce') if the text is numbers."
            )
        numeric = True
    if not numeric:
        raise DataError(f"{label} must be numeric; got values of type {dtype}.")
    try:
        return np.array(series.to_numpy(dtype=float, na_value=np.nan), dtype=np.float64, copy=True)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{label} must be numeric; got values of type {dtype}.") from None
