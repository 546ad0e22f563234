"""What every effect reads from a fitted model and a frame: row weights, exposures, predictions per unit of exposure.

A fitted model is used only through ``predict`` and the record of which columns gave its
weights and exposure (``fit.design.offset_source``), so a GLM and a network are read alike.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from neuralglm.data.frame import to_pandas
from neuralglm.errors import DataError, SpecificationError
from neuralglm.family import derived

SCALES = ("response", "link")
MAX_STACKED_ROWS = 200_000  # rows per predict() call when a frame is stacked once per grid value
MAX_REPLICATE_VALUES = 4_000_000  # bootstrap replicates × stacked rows held at once


def check_scale(scale, caller: str) -> str:
    if scale not in SCALES:
        raise SpecificationError(f"The 'scale' parameter of {caller} must be 'response' or 'link'. Got {scale!r} instead.")
    return scale


def check_count(value, name: str, caller: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise SpecificationError(f"The '{name}' parameter of {caller} must be an integer ≥ {low}. Got {value!r} instead.")
    return int(value)


def as_frame(data, caller: str) -> pd.DataFrame:
    if data is None:
        raise SpecificationError(f"{caller} needs the rows to average over: pass data, a DataFrame of the model's inputs.")
    return to_pandas(data)


def exposure_name(fit) -> str | None:
    """The exposure column when the offset is exactly log(exposure), else None (no rate to speak of)."""
    source = fit.design.offset_source
    if source.exposure_column and not (source.offset_column or source.offset_array):
        return source.exposure_column
    return None


def model_inputs(fit) -> list[str]:
    """The columns the formula's right-hand side reads, offsets (``offset()`` terms too), exposure and weights left out, in formula order."""
    from neuralglm.data.r_spellings import CONTEXT_NAMES

    design = fit.design
    if design.spec is None:
        return []
    source = design.offset_source
    skip = {source.offset_column, source.exposure_column, source.weights_column, source.freq_weights_column, design.response_name}
    # The parsed formula holds the offset() terms no more (they are translated out), only the inputs.
    names = {str(v) for v in design.spec.formula.required_variables} - CONTEXT_NAMES - skip
    formula = fit.design.formula
    return sorted(names, key=lambda name: (formula.find(name) if name in formula else len(formula), name))


def check_variable(fit, frame: pd.DataFrame, variable, caller: str) -> str:
    if not isinstance(variable, str) or variable not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:12]))
        raise DataError(f"The 'variable' parameter of {caller} must be a column of the data ({columns}). Got {variable!r} instead.")
    source = fit.design.offset_source
    if variable in {source.offset_column, source.exposure_column, source.weights_column, source.freq_weights_column}:
        raise SpecificationError(f"{caller}: {variable!r} is the model's offset, exposure or weights column, not an input.")
    return variable


class RowWeights(NamedTuple):
    """``weights`` = prior × frequency weights × exposure (what each row counts for); ``exposure`` (ones without one)."""

    weights: np.ndarray
    exposure: np.ndarray


def row_weights(fit, frame: pd.DataFrame, caller: str) -> RowWeights:
    """Each row's weight in an average: its prior and frequency weights (columns named when fitting) times its exposure."""
    source = fit.design.offset_source
    n = len(frame)
    weights, exposure = np.ones(n), np.ones(n)
    for column in (source.weights_column, source.freq_weights_column, exposure_name(fit)):
        if column is None:
            continue
        if column not in frame.columns:
            raise DataError(f"{caller} needs the column {column!r} (the model's weights or exposure) in the data.")
        values = frame[column].to_numpy(dtype=np.float64)
        if column == exposure_name(fit):
            exposure = values
        else:
            weights = weights * values
    total = weights * exposure
    if not np.all(np.isfinite(total)) or np.any(total < 0) or not np.any(total > 0):
        raise DataError(f"{caller} needs finite, non-negative weights × exposures with a positive total.")
    return RowWeights(total, exposure)


def with_values(frame: pd.DataFrame, name: str, values) -> pd.DataFrame:
    """``frame`` with column ``name`` replaced, a categorical dtype and its levels kept."""
    out = frame.copy()
    if isinstance(frame[name].dtype, pd.CategoricalDtype):
        out[name] = pd.Categorical(values, dtype=frame[name].dtype)
    else:
        out[name] = np.asarray(values, dtype=frame[name].to_numpy().dtype) if pd.api.types.is_bool_dtype(frame[name]) else values
    return out


def is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column)


def grid_for(column: pd.Series, grid_size: int) -> np.ndarray:
    """Levels of a categorical column; the distinct values of a numeric one with at most ``grid_size`` of them, else an even grid over its range."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.categories)
    if is_categorical(column):
        return np.asarray(sorted(column.dropna().unique()))
    distinct = np.unique(column.dropna().to_numpy(dtype=np.float64))
    if distinct.size <= grid_size:
        return distinct
    return np.linspace(distinct[0], distinct[-1], grid_size)


def sample_rows(frame: pd.DataFrame, sample, seed, caller: str) -> pd.DataFrame:
    """At most ``sample`` rows drawn without replacement (all rows when ``sample`` is None)."""
    if sample is None or len(frame) <= check_count(sample, "sample", caller, 2):
        return frame
    chosen = np.sort(np.random.default_rng(seed).choice(len(frame), int(sample), replace=False))
    return frame.iloc[chosen]


def per_exposure(fit, frame: pd.DataFrame, scale: str, exposure: np.ndarray) -> np.ndarray:
    """Predictions of ``frame`` per unit of exposure: μ/e on the response scale, η − log e on the link scale."""
    values = fit.predict(frame, type=scale).to_numpy(dtype=np.float64)
    return values / exposure if scale == "response" else values - np.log(exposure)


def replicate_per_exposure(boot, frame: pd.DataFrame, scale: str, exposure: np.ndarray) -> np.ndarray:
    """``(replicates, rows)``: the same predictions from each bootstrap refit of :func:`neuralglm.bootstrap`."""
    fit = boot.fit
    X, offset = fit._new_design(frame, None, None)
    eta = boot._replicate_eta(X, offset)
    if scale == "link":
        return eta - np.log(exposure)
    return fit._mean(eta.ravel()).reshape(eta.shape) / exposure


def check_bootstrap(boot, fit, caller: str):
    if boot is None:
        return None
    if not hasattr(boot, "_replicate_eta") or getattr(boot, "fit", None) is not fit:
        raise SpecificationError(
            f"The 'bootstrap' parameter of {caller} must be ng.bootstrap(fit) of the same fit. Got {type(boot).__name__}."
        )
    return boot


def stacked_predictions(fit, frame: pd.DataFrame, variable: str, grid: np.ndarray, scale: str, exposure: np.ndarray, boot=None):
    """``(len(grid), rows)`` predictions per unit of exposure with ``variable`` set to each grid value in turn,
    and, given a bootstrap, ``(replicates, len(grid), rows)`` the same from each refit (else None)."""
    n_rows = len(frame)
    per_call = max(1, MAX_STACKED_ROWS // max(n_rows, 1))
    if boot is not None:
        per_call = max(1, min(per_call, MAX_REPLICATE_VALUES // max(n_rows * int(boot.ok.sum()), 1)))
    base, replicates = [], []
    for start in range(0, len(grid), per_call):
        chunk = grid[start : start + per_call]
        stacked = with_values(pd.concat([frame] * len(chunk), ignore_index=True), variable, np.repeat(chunk, n_rows))
        tiled = np.tile(exposure, len(chunk))
        base.append(per_exposure(fit, stacked, scale, tiled).reshape(len(chunk), n_rows))
        if boot is not None:
            values = replicate_per_exposure(boot, stacked, scale, tiled)
            replicates.append(values.reshape(values.shape[0], len(chunk), n_rows))
    return np.concatenate(base), (np.concatenate(replicates, axis=1) if boot is not None else None)


class ObservedRows(NamedTuple):
    """Rows with the response: ``y`` (a proportion for binomial), ``mu``, total weights, exposure."""

    y: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    exposure: np.ndarray


def observed_rows(fit, data, caller: str) -> ObservedRows:
    """Response, prediction, weights and exposure of ``data`` read as the fit read its training data (its training rows for None)."""
    if data is None:
        fit.require_data(f"{caller} without data")
        design, mu = fit.design, fit.predict().to_numpy(dtype=np.float64)
    else:
        from neuralglm.evaluate import evaluation_design

        design = evaluation_design(fit, to_pandas(data))
        mu = fit.predict(to_pandas(data)).to_numpy(dtype=np.float64)
    offset = np.asarray(design.offset, dtype=np.float64)
    exposure = np.exp(offset) if exposure_name(fit) is not None else np.ones_like(mu)
    return ObservedRows(np.asarray(design.y, dtype=np.float64), mu, np.asarray(design.total_weights, dtype=np.float64), exposure)


def deviance(fit, y, mu, weights) -> float:
    with jax.enable_x64(True):
        return float(derived.deviance(fit.family, y, mu, weights))


def weighted_bins(score: np.ndarray, weights: np.ndarray, bins: int) -> np.ndarray:
    """Bin index 0..bins-1 of each row: rows sorted by ``score`` and cut into groups of equal total weight."""
    order = np.argsort(score, kind="stable")
    cumulative = np.cumsum(weights[order])
    midpoints = (cumulative - 0.5 * weights[order]) / cumulative[-1]
    index = np.empty(score.size, dtype=np.int64)
    index[order] = np.minimum((midpoints * bins).astype(np.int64), bins - 1)
    return index
