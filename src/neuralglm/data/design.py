"""Formula + data frame → :class:`Design`: the response, design matrix, weights and offset.

Formulas are R/Wilkinson formulas parsed by formulaic (``C(x)``, interactions, ``np.log(x)``,
``- 1``). Two R idioms formulaic lacks are handled here: ``cbind(successes, failures) ~ …``
for binomial counts, and a two-level factor (or boolean) response for binomial data (the
first level is the failure, as in R). The formulaic ``ModelSpec`` is kept so that
:func:`model_matrix_for` rebuilds the same columns for new data.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data import validate
from neuralglm.data.arrays import design_from_arrays
from neuralglm.data.design_matrix import clean_flags, memory_key
from neuralglm.data.formula import bare_columns, design_matrix, evaluation_error, required_variables, split_formula
from neuralglm.data.formula import model_matrix as formula_model_matrix
from neuralglm.data.frame import (
    check_column_kinds,
    check_numeric_as_in_training,
    check_used_columns,
    drop_unused_levels,
    non_numbers,
    to_pandas,
    warn_mostly_numeric_text,
)
from neuralglm.data.r_spellings import (
    CONTEXT_NAMES,
    Translated,
    expand_dot,
    formula_frame,
    offset_variables,
    ordered_columns,
    ordered_in_spec,
    translate,
)
from neuralglm.data.structures import Design, OffsetSource, ones_columns
from neuralglm.errors import DataError, DataWarning, DomainError, warn
from neuralglm.family.family import Family

_CBIND = re.compile(r"^\s*cbind\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


@dataclass(frozen=True)
class _Response:
    """The response as read from the frame: the column (successes for cbind), the failures column, the columns used."""

    values: pd.Series
    failures: pd.Series | None
    columns: list[str]


def _response_columns(lhs: str, formula: str, data: pd.DataFrame, family: Family) -> list[str]:
    """The data columns the left-hand side reads (two for ``cbind(successes, failures)``)."""
    match = _CBIND.match(lhs)
    if match:
        names = [match.group(1), match.group(2)]
        validate.check_columns_exist(names, data, "the formula's cbind(successes, failures)")
        if not family.weights_are_trials:
            raise DataError(f"cbind(successes, failures) ~ … is for the binomial family; got family {family}.")
        return names
    if lhs in data.columns:
        return [lhs]
    names = sorted(required_variables(formula, translate(formula, lhs, columns=data.columns).text))
    validate.check_columns_exist(names, data, "the formula's response")
    return names


def _response(lhs: str, formula: str, data: pd.DataFrame, columns: list[str]) -> _Response:
    """The response column (and the failures column for cbind)."""
    if _CBIND.match(lhs):
        return _Response(data[columns[0]], data[columns[1]], columns)
    if lhs in data.columns:
        return _Response(data[lhs], None, columns)
    values = formula_model_matrix(f"{translate(formula, lhs).text} ~ 1", data, formula).lhs
    if values.shape[1] != 1:
        raise DataError(f"The response {lhs!r} gives {values.shape[1]} columns; it must give one (use cbind(s, f) for binomial counts).")
    return _Response(values.iloc[:, 0], None, columns)


def _numeric_response(values: pd.Series, family: Family, name: str) -> np.ndarray:
    if pd.api.types.is_complex_dtype(values.dtype):
        raise DataError(f"The response '{name}' holds complex numbers; a GLM needs real numbers.")
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float, copy=True)
    if pd.api.types.is_numeric_dtype(values.dtype):
        # A copy: with pandas' copy-on-write a float64 column would come back as a read-only view.
        return values.to_numpy(dtype=float, na_value=np.nan, copy=True)
    if not isinstance(values.dtype, pd.CategoricalDtype):
        text = non_numbers(values)
        if not text.any():  # an object column of numbers
            return values.to_numpy(dtype=float, na_value=np.nan)
        if text.sum() < values.notna().sum():
            shown = validate.shown_values(values[text])
            raise DataError(
                f"The response '{name}' mixes numbers and text: it has values that are not numbers in "
                f"{validate.describe_rows(values.index.to_numpy(), text)}: {shown}. Clean them, or convert with pd.to_numeric(df['{name}'], errors='coerce') "
                "(non-numbers become missing)."
            )
    present = values.dropna()
    levels = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else sorted(pd.unique(present), key=str)
    if family.weights_are_trials and len(levels) == 2:
        return (values != levels[0]).to_numpy(dtype=float)  # R: the first level is "failure"
    as_numbers = pd.to_numeric(present.astype(object), errors="coerce")
    if len(present) and as_numbers.notna().all():
        raise DataError(
            f"The response '{name}' holds numbers written as text ({validate.shown_values(present)}): convert it with "
            f"pd.to_numeric(df['{name}']) (polars: pl.col('{name}').cast(pl.Float64))."
        )
    raise DataError(
        f"The response '{name}' is not numeric (levels {levels[:5]}). For the binomial family give a 0/1 column, "
        "a two-level factor, or cbind(successes, failures); other families need numbers."
    )


def _extras(frame: pd.DataFrame, given: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Offset, exposure and weights as float64 vectors, with the label each is reported by."""
    extras: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for name, value in given.items():
        if value is not None:
            extras[name], sources[name] = validate.as_column(value, frame, len(frame), name)
    return extras, sources


def _y_weights_offset(response: _Response, extras: dict[str, np.ndarray], sources: dict[str, str], family: Family, lhs: str, labels):
    """The response (a proportion for cbind), prior weights (× trials for cbind), frequency weights and total offset."""
    n_kept = len(labels)
    prior = extras.get("weights", np.ones(n_kept))
    validate.check_weights(prior, labels, "weights")
    freq = extras.get("freq_weights")
    if freq is not None:
        validate.check_weights(freq, labels, "freq_weights")
    if response.failures is not None:
        successes_v = _numeric_response(response.values, family, response.columns[0])
        failures_v = _numeric_response(response.failures, family, response.columns[1])
        for values, name in ((successes_v, response.columns[0]), (failures_v, response.columns[1])):
            negative = values < 0
            if negative.any():
                raise DomainError(f"cbind() counts must be ≥ 0; column '{name}' has {validate.describe_rows(labels, negative)} negative.")
        trials = successes_v + failures_v
        y = np.divide(successes_v, trials, out=np.zeros(n_kept), where=trials > 0)
        prior = prior * trials
    else:
        y = _numeric_response(response.values, family, lhs)
    validate.check_response(family, y, prior, labels, lhs)
    total_offset = np.array(extras.get("offset", np.zeros(n_kept)), dtype=np.float64)
    if "exposure" in extras:
        validate.check_exposure(extras["exposure"], labels, sources["exposure"])
        total_offset = total_offset + np.log(extras["exposure"])
    return y, prior, freq, total_offset


def _non_finite_terms(X: np.ndarray, columns, labels, missing: str) -> np.ndarray | None:
    """Rows to keep where the formula's terms are finite (None: all are); raise under ``missing='raise'``."""
    if np.isfinite(X.sum(axis=1)).all():
        return None
    finite = np.isfinite(X)
    bad_rows = ~finite.all(axis=1)
    if not bad_rows.any():
        return None  # the sum overflowed, no value is non-finite
    problems = "; ".join(
        f"'{columns[j]}' has {validate.describe_rows(labels, ~finite[:, j])} missing or infinite"
        for j in np.flatnonzero(~finite.all(axis=0))
    )
    if missing == "raise":
        raise DataError(
            f"The formula's terms produce missing or infinite values: {problems} (e.g. log of 0). "
            "Fix the data or the transform, or pass missing='drop' to drop those rows."
        )
    if bad_rows.all():
        raise DataError(f"Every row has a missing or infinite value in the formula's terms: {problems}.")
    warn(
        f"Dropped {bad_rows.sum():,} of {len(X):,} rows where the formula's terms are missing or infinite: {problems}.",
        DataWarning,
    )
    return ~bad_rows


def _clean_numeric_columns(frame: pd.DataFrame, names) -> set[str]:
    """The columns among ``names`` of NumPy numeric dtype that certainly hold no NaN, inf or value beyond the limit."""
    numeric = {}
    for name in names:
        values = frame[name]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
            numeric[name] = values.to_numpy(copy=False)
    return {name for name, ok in zip(numeric, clean_flags(list(numeric.values())), strict=True) if ok}


def _offset_source(offset, exposure, weights, freq_weights) -> OffsetSource:
    def column(value) -> str | None:
        return value if isinstance(value, str) else None

    return OffsetSource(
        offset_column=column(offset),
        exposure_column=column(exposure),
        offset_array=offset is not None and not isinstance(offset, str),
        exposure_array=exposure is not None and not isinstance(exposure, str),
        weights_column=column(weights),
        freq_weights_column=column(freq_weights),
    )


def make_design(
    formula: str,
    data,
    family: Family,
    *,
    offset=None,
    exposure=None,
    weights=None,
    freq_weights=None,
    missing: str = "raise",
) -> Design:
    """Build the :class:`Design` of a GLM from an R-style formula and a data frame.

    Stages: read the frame, find the columns used, read the response and the
    weights/offset, drop or refuse missing values, build the formula's design matrix.

    Parameters
    ----------
    formula : ``'y ~ x1 + C(region)'`` (formulaic syntax), or ``'cbind(s, f) ~ …'`` for binomial counts.
    data : pandas or polars DataFrame, or a dict of equal-length columns.
    family : the family (validates the response's domain).
    offset, exposure, weights, freq_weights : an array or the name of a column of ``data``;
        ``exposure=e`` adds ``log(e)`` to the offset.
    missing : ``"raise"`` (default) or ``"drop"`` rows with NaN/inf in the columns used.

    Examples
    --------
    >>> import pandas as pd
    >>> from neuralglm.family import Poisson
    >>> df = pd.DataFrame({"y": [1, 0, 3, 2], "x": [0.1, 0.5, 0.9, 0.4]})
    >>> make_design("y ~ x", df, Poisson()).column_names
    ('Intercept', 'x')
    """
    frame = to_pandas(data)
    if len(frame) == 0:
        raise DataError("The data have no rows.")
    lhs = split_formula(formula)[0]
    response_columns = _response_columns(lhs, formula, frame, family)
    given = {"offset": offset, "exposure": exposure, "weights": weights, "freq_weights": freq_weights}
    formula, terms = _right_hand_side(formula, frame, lhs, [*response_columns, *(v for v in given.values() if isinstance(v, str))])
    rhs_variables = sorted(required_variables(formula, terms.text) | offset_variables(terms.offsets))
    validate.check_columns_exist(rhs_variables, frame, f"formula {formula!r}")
    check_used_columns(frame, [*rhs_variables, *response_columns, *(v for v in given.values() if isinstance(v, str))])
    check_column_kinds(frame, [*rhs_variables, *response_columns])
    warn_mostly_numeric_text(frame, rhs_variables)
    response = _response(lhs, formula, frame, response_columns)
    extras, sources = _extras(frame, given)

    # Numeric columns found clean in one pass each (no NaN, inf or huge value) are left out of
    # the missing-value checks, which would find nothing there, and of the design's checks.
    clean = _clean_numeric_columns(frame, rhs_variables)
    checked: dict[str, Any] = {name: frame[name] for name in rhs_variables if name not in clean}
    checked[lhs if response.failures is None else response_columns[0]] = response.values
    if response.failures is not None:
        checked[response_columns[1]] = response.failures
    # Arrays are named by their argument ('weights'), columns by argument and column ("weights ('w')").
    checked.update({name if sources[name] == name else f"{name} ('{sources[name]}')": values for name, values in extras.items()})
    labels = frame.index.to_numpy()
    keep = validate.find_missing(checked, labels, missing)
    if not keep.all():
        frame, labels = frame.loc[keep], labels[keep]
        failures = None if response.failures is None else response.failures[keep]
        response = _Response(response.values[keep], failures, response.columns)
        extras = {name: values[keep] for name, values in extras.items()}
    y, prior, freq, total_offset = _y_weights_offset(response, extras, sources, family, lhs, labels)

    # Levels with no rows left (after subsetting, or dropped rows) would give all-zero dummy
    # columns; R's model.frame drops unused levels, and so do we (for the variables used).
    ordered = ordered_columns(frame, bare_columns(formula, terms.text))
    known = {memory_key(frame[name].to_numpy(copy=False)) for name in clean}  # after any dropped rows: the columns now used
    X, columns, spec, clean_design = design_matrix(terms.text, drop_unused_levels(frame, rhs_variables), formula, ordered, known=known)
    if X.shape[1] == 0:
        raise DataError(f"The formula {formula!r} has no terms on its right-hand side (not even an intercept).")
    if terms.offsets:  # offset() terms: checked for missing or infinite values with the other terms
        in_formula = formula_offset(terms.offsets, frame, formula)
        rows = None
        if not (clean_design and np.isfinite(in_formula).all()):
            rows = _non_finite_terms(np.column_stack([X, in_formula]), [*columns, _offset_label(terms.offsets)], labels, missing)
        total_offset = total_offset + in_formula
    else:
        rows = None if clean_design else _non_finite_terms(X, columns, labels, missing)
    if not clean_design:  # a clean design has no value beyond the limit either
        validate.check_design_magnitude(X, columns, labels)
    if rows is not None:
        X, y, prior, total_offset, labels = X[rows], y[rows], prior[rows], total_offset[rows], labels[rows]
        freq = None if freq is None else freq[rows]
    return Design(
        y=np.ascontiguousarray(y, dtype=np.float64),
        X=X,
        weights=np.ascontiguousarray(prior, dtype=np.float64),
        freq_weights=None if freq is None else np.ascontiguousarray(freq, dtype=np.float64),
        offset=total_offset,
        column_names=tuple(columns),
        response_name=lhs,
        formula=formula,
        row_labels=labels,
        offset_source=_offset_source(offset, exposure, weights, freq_weights),
        spec=spec,
        has_intercept="Intercept" in columns,
    )


def _right_hand_side(formula: str, frame: pd.DataFrame, lhs: str, exclude: list[str]) -> tuple[str, Translated]:
    """The formula with R's ``.`` expanded (what the fit records), and its right-hand side translated for formulaic."""
    rhs = split_formula(formula)[1]
    expanded = expand_dot(formula, rhs, list(frame.columns), exclude)
    if expanded != rhs:
        formula = f"{lhs} ~ {expanded}"
    return formula, translate(formula, expanded, columns=list(frame.columns))


def _offset_label(offsets) -> str:
    return " + ".join(f"offset({expr})" for expr in offsets)


def formula_offset(offsets, frame: pd.DataFrame, formula: str) -> np.ndarray:
    """The sum of the formula's ``offset(expr)`` terms evaluated on ``frame`` (NaN kept, for the caller to report)."""
    total = np.zeros(len(frame))
    for expr in offsets:
        values = formula_model_matrix(f"0 + I({expr})", frame, formula)
        if values.shape[1] != 1 or not all(pd.api.types.is_numeric_dtype(t) for t in values.dtypes):
            raise DataError(
                f"The term 'offset({expr})' of formula {formula!r} must give one number per row; it gives {values.shape[1]} columns."
            )
        total = total + values.to_numpy(dtype=np.float64)[:, 0]
    return total


def _new_data_matrix(design: Design, frame: pd.DataFrame):
    from formulaic.errors import FactorEvaluationError, FormulaicError

    data, context = formula_frame(frame, ordered_in_spec(design.spec))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return design.spec.get_model_matrix(data, na_action="ignore", context=context)
    except FactorEvaluationError as error:
        raise evaluation_error(error, design.formula, frame) from None
    except (Warning, FormulaicError) as error:
        message = str(error)
        if "categories outside" in message or "not seen" in message:
            levels = re.search(r"\{.*\}", message)
            raise DataError(
                f"New data contain factor levels not seen when fitting: {levels.group(0) if levels else message}. "
                "The model has no coefficient for them: drop those rows or refit with them included."
            ) from None
        raise DataError(f"Cannot build the design matrix for the new data: {' '.join(message.split())}") from None


def _formula_offsets(design: Design) -> tuple[str, ...]:
    return translate(design.formula, split_formula(design.formula)[1]).offsets if "~" in design.formula else ()


def input_columns(design: Design) -> set[str]:
    """The data columns the right-hand side of a fitted formula reads, those of its ``offset()`` terms included.

    Examples
    --------
    >>> import pandas as pd
    >>> from neuralglm.family import Poisson
    >>> df = pd.DataFrame({"y": [1, 0, 3, 2], "x": [0.1, 0.5, 0.9, 0.4], "e": [1.0, 2.0, 1.5, 3.0]})
    >>> sorted(input_columns(make_design("y ~ sqrt(x) + offset(log(e))", df, Poisson())))
    ['e', 'x']
    """
    if design.spec is None:
        return set()
    # From the parsed formula, not spec.required_variables: that lists only the columns formulaic
    # found in the data (not ordered factors, passed in its context), and none for a loaded spec.
    named = {str(v) for v in design.spec.formula.required_variables}
    return (named - CONTEXT_NAMES) | offset_variables(_formula_offsets(design))


def model_matrix_for(design: Design, new_data, *, offset=None, exposure=None) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and offset for new data, rebuilt from the stored formulaic spec.

    Raises :class:`DataError` for missing columns, NaN/inf, text where training had numbers,
    and factor levels unseen in training (present in rows; unused declared levels are fine).
    The formula's ``offset()`` terms are evaluated on the new data and added to the offset.
    """

    if design.spec is None:
        raise DataError(
            "This model was fitted from a design matrix (no formula), so it cannot build the design for new data. "
            "Use predict() without data for the fitted values, compute link.inverse(X @ coef + offset) for a matrix X, or fit with a formula."
        )
    frame = to_pandas(new_data, "new data")
    offsets = _formula_offsets(design)
    variables = sorted(input_columns(design))
    validate.check_columns_exist(variables, frame, "new data")
    check_used_columns(frame, variables, "the new data")
    check_column_kinds(frame, variables)
    labels = frame.index.to_numpy()
    no_drop = "Predictions need complete rows: fix, impute or drop those rows of the new data."
    validate.find_missing({name: frame[name] for name in variables}, labels, "raise", hint=no_drop)
    numeric = [expr for expr, (kind, _) in design.spec.encoder_state.items() if getattr(kind, "value", kind) == "numerical"]
    check_numeric_as_in_training(frame, [name for name in numeric if name in variables])
    # A level the categorical declares but no row uses is no unseen level: drop it (R's
    # droplevels), so that only levels actually present and unseen when fitting are refused.
    matrix = _new_data_matrix(design, drop_unused_levels(frame, variables))
    X = np.ascontiguousarray(matrix.to_numpy(dtype=np.float64))
    n_rows = len(frame)
    source = design.offset_source
    total = np.zeros(n_rows)
    if offsets:  # the formula's offset() terms, from the new data
        total = formula_offset(offsets, frame, design.formula)
        validate.find_missing({_offset_label(offsets): total}, labels, "raise", hint=no_drop)
    for kind, given, column, was_array in (
        ("offset", offset, source.offset_column, source.offset_array),
        ("exposure", exposure, source.exposure_column, source.exposure_array),
    ):
        value = given if given is not None else column
        if value is None:
            if was_array:
                raise DataError(f"This model was fitted with an {kind} array: pass {kind}= for the new data too.")
            continue
        values, label = validate.as_column(value, frame, n_rows, kind)
        validate.find_missing({label: values}, labels, "raise", hint=no_drop)
        if kind == "exposure":
            validate.check_exposure(values, labels, label)
            values = np.log(values)
        total = total + values
    return X, total


__all__ = [
    "Design",
    "OffsetSource",
    "design_from_arrays",
    "input_columns",
    "make_design",
    "model_matrix_for",
    "ones_columns",
    "split_formula",
]
