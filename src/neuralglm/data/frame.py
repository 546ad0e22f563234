"""Data frames at the boundary: whatever the caller passed becomes a plain pandas frame, or a clear error.

pandas and polars frames, pyarrow tables and dicts of equal-length columns are accepted (a
dict is R's ``list`` given to ``glm(data=)``). Frames that would reach pandas' or formulaic's
internals with a confusing error (hierarchical or duplicated column names, ragged dicts) are
refused here, naming the columns. The caller's object is never modified: every change is made
on a new frame.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from neuralglm.data.validate import describe_rows, shown_values
from neuralglm.errors import DataError, DataWarning, warn


def to_pandas(data, argument: str = "data") -> pd.DataFrame:
    """The caller's ``data`` as a pandas DataFrame (the same object when it already is one).

    Examples
    --------
    >>> to_pandas({"y": [1, 2], "x": [0.5, 1.5]}).shape
    (2, 2)
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_pandas") and not isinstance(data, pd.Series | np.ndarray):  # polars, pyarrow
        frame = _from_polars(data)
    elif hasattr(data, "collect") and hasattr(data, "lazy"):
        raise DataError(f"{argument} is a polars LazyFrame: call .collect() on it first.")
    elif isinstance(data, dict):
        frame = _from_dict(data, argument)
    else:
        raise DataError(f"{argument} must be a pandas or polars DataFrame, or a dict of equal-length columns; got {type(data).__name__}.")
    if isinstance(frame.columns, pd.MultiIndex):
        raise DataError(
            f"{argument} has hierarchical (MultiIndex) column names, which a formula cannot name. "
            "Flatten them first, e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns]."
        )
    return frame


def _from_polars(data) -> pd.DataFrame:
    frame = data.to_pandas()
    # A polars Categorical keeps its levels in order of first appearance, so the reference
    # level would depend on row order; sort them, as R's factor() does (an Enum keeps its order).
    schema = getattr(data, "schema", None)
    for name, dtype in schema.items() if hasattr(schema, "items") else ():  # a pyarrow schema has no items()
        if str(dtype).startswith("Categorical") and isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.reorder_categories(sorted(frame[name].cat.categories))
    return frame


def _from_dict(data: dict, argument: str) -> pd.DataFrame:
    lengths = {}
    for name, values in data.items():
        if isinstance(values, str | bytes) or np.ndim(values) == 0:
            raise DataError(
                f"{argument}[{name!r}] is a single value ({type(values).__name__}); a dict given as data needs one "
                "list or array per column, all of the same length."
            )
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name!r}: {n}" for name, n in list(lengths.items())[:10])
        raise DataError(
            f"The columns of the dict given as {argument} have different lengths ({shown}); every column needs one value per row."
        )
    try:
        return pd.DataFrame(data)
    except (ValueError, TypeError) as error:
        raise DataError(f"Cannot read the dict given as {argument} as a table of columns: {error}") from None


def check_used_columns(frame: pd.DataFrame, used: Iterable[str], context: str = "data") -> None:
    """Refuse column names the model uses that appear more than once (pandas would return a table, not a column)."""
    columns = pd.Index(frame.columns)
    if not columns.has_duplicates:
        return
    duplicated = sorted({str(name) for name in used if np.sum(columns == name) > 1})
    if duplicated:
        raise DataError(
            f"The column name(s) {', '.join(repr(n) for n in duplicated)} appear more than once in {context}, so the "
            "model cannot tell which to use: rename or drop the duplicates (df.loc[:, ~df.columns.duplicated()])."
        )


def check_column_kinds(frame: pd.DataFrame, names: Iterable[str]) -> None:
    """Refuse columns a GLM cannot read as numbers or as a factor: complex numbers, dates, lists and other objects."""
    labels = frame.index.to_numpy()
    for name in names:
        values = frame[name]
        dtype = values.dtype
        if pd.api.types.is_complex_dtype(dtype):
            raise DataError(
                f"Column '{name}' holds complex numbers; a GLM needs real ones. Use its real part (df['{name}'].real) if that is meant."
            )
        if pd.api.types.is_datetime64_any_dtype(dtype):
            raise DataError(
                f"Column '{name}' holds dates ({dtype}), which a formula cannot use directly: convert them to numbers, "
                f"e.g. (df['{name}'] - df['{name}'].min()).dt.days, or to a factor of years or months."
            )
        if pd.api.types.is_object_dtype(dtype):
            odd = values.notna().to_numpy() & np.array(
                [not isinstance(v, str | numbers.Real | np.number) or isinstance(v, complex | np.complexfloating) for v in values],
                dtype=bool,
            )
            if odd.any():
                kinds = ", ".join(sorted({type(v).__name__ for v in values[odd]}))
                raise DataError(
                    f"Column '{name}' holds values that are neither numbers nor text ({kinds}) in {describe_rows(labels, odd)}: "
                    "give one number or one label per row."
                )


def is_text(values: pd.Series) -> bool:
    """True for columns of strings (object or string dtype), not for categoricals, numbers or booleans."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_object_dtype(values.dtype)


def non_numbers(values: pd.Series) -> np.ndarray:
    """True where a value is present but is not a number (text, objects); missing values are False."""
    present = values.notna().to_numpy()
    return present & np.array([not isinstance(v, numbers.Real | np.number) for v in values], dtype=bool)


def warn_mostly_numeric_text(frame: pd.DataFrame, names: Iterable[str]) -> None:
    """Warn about text columns whose values are mostly numbers: one stray entry turns them into a factor.

    Such a column would otherwise be read as a factor with one level per distinct value.
    """
    for name in names:
        values = frame[name]
        if not is_text(values) or values.dropna().empty:
            continue
        parsed = pd.to_numeric(values.astype(object).where(values.notna()), errors="coerce")
        bad = values.notna().to_numpy() & parsed.isna().to_numpy()
        n_present = int(values.notna().sum())
        if not bad.any() and not non_numbers(values).all():
            warn(
                f"Column '{name}' holds numbers stored as Python objects (dtype {values.dtype}), so it is read as a factor "
                f"with {values.nunique():,} levels. Convert it with df['{name}'].astype(float), or with .astype('category') if a factor is meant.",
                DataWarning,
            )
        elif bad.any() and (n_present - bad.sum()) > n_present / 2:
            labels = frame.index.to_numpy()
            shown = shown_values(values[bad])
            warn(
                f"Column '{name}' holds text but is mostly numbers: it has values that are not numbers in "
                f"{describe_rows(labels, bad)}: {shown}, so it is read as a factor with {values.nunique():,} levels. Clean those values, or convert "
                f"the column with pd.to_numeric(df['{name}'], errors='coerce') (non-numbers become missing).",
                DataWarning,
            )


def check_numeric_as_in_training(frame: pd.DataFrame, numeric_names: Iterable[str]) -> None:
    """Refuse new data where a column that was numeric when fitting now holds text."""
    labels = frame.index.to_numpy()
    for name in numeric_names:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        bad = non_numbers(values)
        if bad.any():
            shown = shown_values(values[bad])
            raise DataError(
                f"Column '{name}' was numeric when the model was fitted, but the new data have values that are not numbers "
                f"in {describe_rows(labels, bad)}: {shown}. Clean them, or convert with pd.to_numeric(df['{name}'], errors='coerce')."
            )


def drop_unused_levels(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """A frame whose categorical columns among ``names`` keep only the levels that occur (R's ``droplevels``).

    Text columns of pandas' ``"string"`` dtype (missing values as ``pd.NA``) become plain object
    columns on the way: formulaic reads those as factors, but passes ``"string"`` columns through
    as if they were numbers.

    Returns ``frame`` itself when nothing changes; otherwise a new frame (the caller's is untouched).

    Examples
    --------
    >>> frame = pd.DataFrame({"g": pd.Categorical(["a", "a"], categories=["a", "b"]), "s": pd.array(["x", "y"], dtype="string")})
    >>> out = drop_unused_levels(frame, ["g", "s"])
    >>> list(out["g"].cat.categories), out["s"].dtype == object, frame["s"].dtype == "string"
    (['a'], True, True)
    """
    changed = {}
    for name in names:
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype) and int(values.nunique()) < len(values.cat.categories):
            changed[name] = values.cat.remove_unused_categories()
        elif isinstance(values.dtype, pd.StringDtype) and values.dtype.na_value is pd.NA:
            changed[name] = values.astype(object).where(values.notna(), np.nan)
    return frame.assign(**changed) if changed else frame
