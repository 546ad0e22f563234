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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data import validate
from neuralglm.errors import DataError, DataWarning, DomainError
from neuralglm.family.family import Family

_CBIND = re.compile(r"^\s*cbind\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


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
            now = _column_sums(self.X)
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


def _to_pandas(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # polars (and pyarrow) frames
        frame = data.to_pandas()
        # A polars Categorical keeps its levels in order of first appearance, so the reference
        # level would depend on row order; sort them, as R's factor() does (an Enum keeps its order).
        for name, dtype in getattr(data, "schema", {}).items():
            if str(dtype).startswith("Categorical") and isinstance(frame[name].dtype, pd.CategoricalDtype):
                frame[name] = frame[name].cat.reorder_categories(sorted(frame[name].cat.categories))
        return frame
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise DataError(f"data must be a pandas or polars DataFrame (or a dict of columns); got {type(data).__name__}.")


def split_formula(formula: str) -> tuple[str, str]:
    """Split ``'y ~ x1 + x2'`` into ``('y', 'x1 + x2')``."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise DataError(f"The formula must have one '~' with the response on the left, like 'y ~ x1 + x2'; got {formula!r}.")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise DataError(f"The formula {formula!r} has no response: write it as 'y ~ x1 + x2'.")
    return lhs, rhs or "1"


def _required_rhs_variables(rhs: str) -> set[str]:
    import formulaic

    try:
        return {str(v) for v in formulaic.Formula(rhs).required_variables}  # pyright: ignore[reportAbstractUsage]
    except Exception as error:  # formulaic raises several parser errors
        raise DataError(f"Cannot parse the formula's right-hand side {rhs!r}: {error}") from None


def _response(lhs: str, data: pd.DataFrame, family: Family) -> tuple[pd.Series, pd.Series | None, list[str]]:
    """The response column (and the failures column for cbind), plus the columns used."""
    match = _CBIND.match(lhs)
    if match:
        successes, failures = match.group(1), match.group(2)
        validate.check_columns_exist([successes, failures], data, "the formula's cbind(successes, failures)")
        if not family.weights_are_trials:
            raise DataError(f"cbind(successes, failures) ~ … is for the binomial family; got family {family}.")
        return data[successes], data[failures], [successes, failures]
    if lhs in data.columns:
        return data[lhs], None, [lhs]
    import formulaic

    variables = [str(v) for v in formulaic.Formula(f"{lhs} ~ 1").required_variables]  # pyright: ignore[reportAbstractUsage]
    validate.check_columns_exist(variables, data, "the formula's response")
    values = formulaic.model_matrix(f"{lhs} ~ 1", data, na_action="ignore").lhs
    if values.shape[1] != 1:
        raise DataError(f"The response {lhs!r} gives {values.shape[1]} columns; it must give one (use cbind(s, f) for binomial counts).")
    return values.iloc[:, 0], None, variables


def _numeric_response(values: pd.Series, family: Family, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    levels = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else sorted(pd.unique(values))
    if family.weights_are_trials and len(levels) == 2:
        return (values != levels[0]).to_numpy(dtype=float)  # R: the first level is "failure"
    raise DataError(
        f"The response '{name}' is not numeric (levels {levels[:5]}). For the binomial family give a 0/1 column, "
        "a two-level factor, or cbind(successes, failures); other families need numbers."
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

    Parameters
    ----------
    formula : ``'y ~ x1 + C(region)'`` (formulaic syntax), or ``'cbind(s, f) ~ …'`` for binomial counts.
    data : pandas or polars DataFrame.
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
    import formulaic

    frame = _to_pandas(data)
    n_rows = len(frame)
    if n_rows == 0:
        raise DataError("The data have no rows.")
    labels = frame.index.to_numpy()
    lhs, rhs = split_formula(formula)
    rhs_variables = _required_rhs_variables(rhs)
    validate.check_columns_exist(sorted(rhs_variables), frame, f"formula {formula!r}")
    response, failures, response_columns = _response(lhs, frame, family)

    extras: dict[str, np.ndarray] = {}
    sources = {}
    for name, value in (("offset", offset), ("exposure", exposure), ("weights", weights), ("freq_weights", freq_weights)):
        if value is not None:
            extras[name], sources[name] = validate.as_column(value, frame, n_rows, name)

    checked: dict[str, Any] = {name: frame[name] for name in sorted(rhs_variables)}
    checked[lhs if failures is None else response_columns[0]] = response
    if failures is not None:
        checked[response_columns[1]] = failures
    # Arrays are named by their argument ('weights'), columns by argument and column ("weights ('w')").
    checked.update({name if sources[name] == name else f"{name} ('{sources[name]}')": values for name, values in extras.items()})
    keep = validate.find_missing(checked, labels, missing)
    if not keep.all():
        frame = frame.loc[keep]
        response = response.loc[keep] if failures is None else response[keep]
        failures = None if failures is None else failures[keep]
        extras = {name: values[keep] for name, values in extras.items()}
        labels = labels[keep]
    n_kept = len(frame)

    prior = extras.get("weights", np.ones(n_kept))
    validate.check_weights(prior, labels, "weights")
    freq = extras.get("freq_weights")
    if freq is not None:
        validate.check_weights(freq, labels, "freq_weights")
    if failures is not None:
        successes_v = _numeric_response(response, family, response_columns[0])
        failures_v = _numeric_response(failures, family, response_columns[1])
        for values, name in ((successes_v, response_columns[0]), (failures_v, response_columns[1])):
            negative = values < 0
            if negative.any():
                raise DomainError(f"cbind() counts must be ≥ 0; column '{name}' has {validate.describe_rows(labels, negative)} negative.")
        trials = successes_v + failures_v
        y = np.divide(successes_v, trials, out=np.zeros(n_kept), where=trials > 0)
        prior = prior * trials
        response_name = lhs
    else:
        y = _numeric_response(response, family, lhs)
        response_name = lhs
    validate.check_response(family, y, prior, labels, response_name)

    total_offset = np.array(extras.get("offset", np.zeros(n_kept)), dtype=np.float64)
    if "exposure" in extras:
        validate.check_exposure(extras["exposure"], labels, sources["exposure"])
        total_offset = total_offset + np.log(extras["exposure"])

    # Levels with no rows left (after subsetting, or dropped rows) would give all-zero dummy
    # columns; R's model.frame drops unused levels, and so do we (for the variables used).
    unused = {
        name: frame[name].cat.remove_unused_categories()
        for name in rhs_variables
        if isinstance(frame[name].dtype, pd.CategoricalDtype) and int(frame[name].nunique()) < len(frame[name].cat.categories)
    }
    if unused:
        frame = frame.assign(**unused)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and friends: reported below, by column
            matrix = formulaic.model_matrix(rhs, frame, na_action="ignore")
    except Exception as error:
        raise DataError(f"Cannot build the design matrix for {rhs!r}: {error}") from None
    X = np.ascontiguousarray(matrix.to_numpy(dtype=np.float64))
    if X.shape[1] == 0:
        raise DataError(f"The formula {formula!r} has no terms on its right-hand side (not even an intercept).")
    if not np.isfinite(X.sum(axis=1)).all():
        finite = np.isfinite(X)
        bad_rows = ~finite.all(axis=1)
        if bad_rows.any():
            problems = "; ".join(
                f"'{matrix.columns[j]}' has {validate.describe_rows(labels, ~finite[:, j])} missing or infinite"
                for j in np.flatnonzero(~finite.all(axis=0))
            )
            if missing == "raise":
                raise DataError(
                    f"The formula's terms produce missing or infinite values: {problems} (e.g. log of 0). "
                    "Fix the data or the transform, or pass missing='drop' to drop those rows."
                )
            if bad_rows.all():
                raise DataError(f"Every row has a missing or infinite value in the formula's terms: {problems}.")
            warnings.warn(
                f"Dropped {bad_rows.sum():,} of {len(X):,} rows where the formula's terms are missing or infinite: {problems}.",
                DataWarning,
                stacklevel=2,
            )
            keep_rows = ~bad_rows
            X, y, prior, total_offset, labels = X[keep_rows], y[keep_rows], prior[keep_rows], total_offset[keep_rows], labels[keep_rows]
            freq = None if freq is None else freq[keep_rows]

    def column_source(name: str, value) -> str | None:
        return value if isinstance(value, str) else None

    offset_source = OffsetSource(
        offset_column=column_source("offset", offset),
        exposure_column=column_source("exposure", exposure),
        offset_array=offset is not None and not isinstance(offset, str),
        exposure_array=exposure is not None and not isinstance(exposure, str),
        weights_column=weights if isinstance(weights, str) else None,
        freq_weights_column=freq_weights if isinstance(freq_weights, str) else None,
    )
    return Design(
        y=np.ascontiguousarray(y, dtype=np.float64),
        X=X,
        weights=np.ascontiguousarray(prior, dtype=np.float64),
        freq_weights=None if freq is None else np.ascontiguousarray(freq, dtype=np.float64),
        offset=total_offset,
        column_names=tuple(str(c) for c in matrix.columns),
        response_name=response_name,
        formula=formula,
        row_labels=labels,
        offset_source=offset_source,
        spec=matrix.model_spec,
        has_intercept="Intercept" in matrix.columns,
    )


def ones_columns(X: np.ndarray) -> list[int]:
    """Indices of the columns of ``X`` that are all ones; only columns that start with 1000 ones are read in full."""
    candidates = np.flatnonzero(np.all(X[:1000] == 1.0, axis=0))
    return [int(j) for j in candidates if np.all(X[:, j] == 1.0)]


def design_from_arrays(X, y, *, column_names=None, weights=None, freq_weights=None, offset=None, family: Family) -> Design:
    """A :class:`Design` from a ready design matrix (R's ``glm.fit(x, y)``); no formula.

    ``X`` is not copied when it is already a float64 C-ordered array (see :class:`Design`).
    """
    X = np.asarray(X, dtype=np.float64, order="C")
    if X.ndim != 2:
        raise DataError(f"X must be a 2-d array (n_obs, n_coef); got shape {X.shape}.")
    if X.shape[0] == 0:
        raise DataError("X has no rows.")
    n_obs = X.shape[0]
    y_values, _ = validate.as_column(y, None, n_obs, "y")
    labels = np.arange(n_obs)
    names = tuple(column_names) if column_names is not None else tuple(f"x{j + 1}" for j in range(X.shape[1]))
    if len(names) != X.shape[1]:
        raise DataError(f"column_names has {len(names)} names but X has {X.shape[1]} columns.")
    extras = {}
    for name, value in (("weights", weights), ("freq_weights", freq_weights), ("offset", offset)):
        if value is not None:
            extras[name], _ = validate.as_column(value, None, n_obs, name)
    checked: dict[str, Any] = {"y": y_values, **extras}
    validate.find_missing(checked, labels, "raise")
    # One pass without a temporary: a NaN or inf makes a column sum non-finite (so can an
    # overflow, which the exact per-column check below then clears). The sums also fingerprint X.
    column_sums = _column_sums(X)
    if not np.isfinite(column_sums).all():
        finite = np.isfinite(X)
        bad_columns = [f"'{names[j]}' has {validate.describe_rows(labels, ~finite[:, j])}" for j in np.flatnonzero(~finite.all(axis=0))]
        if bad_columns:
            raise DataError(f"X has missing or infinite values: {'; '.join(bad_columns)}. Fix or drop those rows.")
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
        has_intercept=bool(ones_columns(X)),
        X_column_sums=column_sums,
    )


def _column_sums(X: np.ndarray) -> np.ndarray:
    # NumPy's own pairwise reduction, not BLAS: the same bits whatever the thread count.
    with np.errstate(over="ignore", invalid="ignore"):
        return X.sum(axis=0)


def model_matrix_for(design: Design, new_data, *, offset=None, exposure=None) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and offset for new data, rebuilt from the stored formulaic spec.

    Raises :class:`DataError` for missing columns, NaN/inf, and factor levels unseen in training.
    """
    from formulaic.errors import FormulaicError

    if design.spec is None:
        raise DataError(
            "This model was fitted from a design matrix (no formula), so it cannot build the design for new data. "
            "Use predict() without data for the fitted values, compute link.inverse(X @ coef + offset) for a matrix X, or fit with a formula."
        )
    frame = _to_pandas(new_data)
    variables = sorted(str(v) for v in design.spec.required_variables)
    validate.check_columns_exist(variables, frame, "new data")
    labels = frame.index.to_numpy()
    no_drop = "Predictions need complete rows: fix, impute or drop those rows of the new data."
    validate.find_missing({name: frame[name] for name in variables}, labels, "raise", hint=no_drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            matrix = design.spec.get_model_matrix(frame, na_action="ignore")
    except (Warning, FormulaicError) as error:
        message = str(error)
        if "categories outside" in message or "not seen" in message:
            levels = re.search(r"\{.*\}", message)
            raise DataError(
                f"New data contain factor levels not seen when fitting: {levels.group(0) if levels else message}. "
                "The model has no coefficient for them: drop those rows or refit with them included."
            ) from None
        raise DataError(f"Cannot build the design matrix for the new data: {message}") from None
    X = np.ascontiguousarray(matrix.to_numpy(dtype=np.float64))
    n_rows = len(frame)
    source = design.offset_source
    total = np.zeros(n_rows)
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
