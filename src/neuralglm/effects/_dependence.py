r"""Partial dependence, ICE and ALE of one input: tidy tables, per unit of exposure and weighted by exposure × prior weights.

Each row ``i`` of the data counts for :math:`w_i e_i` (prior × frequency weights × exposure,
the columns the model was fitted with), so a portfolio average counts a policy-year as a
policy-year. Values are per unit of exposure: :math:`\hat\mu_i / e_i` on the response scale,
:math:`\hat\eta_i - \log e_i` on the link scale (an offset that is not an exposure stays in).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.effects import _rows

GRID_SIZE = 40


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise _rows.SpecificationError(f"The 'level' parameter must be a number in (0, 1). Got {level!r} instead.")
    return float(level)


def _band_columns(table: pd.DataFrame, replicates: np.ndarray, level: float) -> pd.DataFrame:
    """``se``, ``lower``, ``upper`` across bootstrap replicates (rows of ``replicates``), percentile interval."""
    alpha = 1.0 - level
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)
    table = table.assign(se=replicates.std(axis=0, ddof=1), lower=low, upper=high)
    table.attrs["level"] = level
    return table


def _prepare(fit, data, variable, scale, caller, sample=None, seed=0):
    frame = _rows.sample_rows(_rows.as_frame(data, caller), sample, seed, caller)
    _rows.check_variable(fit, frame, variable, caller)
    _rows.check_scale(scale, caller)
    return frame, _rows.row_weights(fit, frame, caller)


def _grid(frame: pd.DataFrame, variable: str, grid, grid_size) -> np.ndarray:
    if grid is None:
        return _rows.grid_for(frame[variable], _rows.check_count(grid_size, "grid_size", "partial_dependence", 2))
    values = np.asarray(grid)
    if values.ndim != 1 or values.size == 0:
        raise _rows.SpecificationError(f"The 'grid' parameter must be a non-empty 1-d list of values of {variable!r}.")
    return values


def partial_dependence(
    fit, data, variable: str, *, scale: str = "response", grid=None, grid_size: int = GRID_SIZE, bootstrap=None, level: float = 0.95
) -> pd.DataFrame:
    r"""Partial dependence of the prediction on one input (Friedman, 2001), weighted by exposure × prior weights.

    :math:`\mathrm{PD}(v) = \sum_i w_i e_i\, f_i(v) / \sum_i w_i e_i`, where :math:`f_i(v)` is row
    *i*'s prediction per unit of exposure with ``variable`` set to *v* and the other inputs as
    observed. On the response scale this is :math:`\sum_i w_i \hat\mu_i(v) / \sum_i w_i e_i`, the
    portfolio's rate had every row the value *v*.

    Parameters
    ----------
    fit : FitResult or NetworkResult (anything with ``predict`` and ``design``)
    data : DataFrame of the rows to average over (usually the training data), with the
        exposure and weight columns the model was fitted with.
    variable : the input to vary.
    scale : ``"response"`` (rates) or ``"link"`` (η minus log exposure).
    grid : values to set ``variable`` to; by default the levels of a categorical input, the
        distinct values of a numeric one with at most ``grid_size`` of them, else
        ``grid_size`` evenly spaced values over its range.
    bootstrap : ``ng.bootstrap(fit)``: adds ``se``, ``lower``, ``upper``, the replicates'
        standard deviation and percentile interval at ``level``.

    Returns
    -------
    DataFrame with columns ``variable``, ``value``, ``estimate`` (and the band columns);
    ``attrs`` hold ``kind``, ``scale`` and the response name.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.partial_dependence(fit, df, "age")
    >>> table["value"].tolist()
    ['<25', '25-29', '30-35', '>35']
    >>> bool(table["estimate"].is_monotonic_decreasing)  # older drivers claim less
    True
    """
    frame, weights = _prepare(fit, data, variable, scale, "partial_dependence")
    values = _grid(frame, variable, grid, grid_size)
    level = _check_level(level)
    boot = _rows.check_bootstrap(bootstrap, fit, "partial_dependence")
    base, replicates = _rows.stacked_predictions(fit, frame, variable, values, scale, weights.exposure, boot)
    share = weights.weights / weights.weights.sum()
    table = pd.DataFrame({"variable": variable, "value": values, "estimate": base @ share})
    if replicates is not None:
        table = _band_columns(table, replicates @ share, level)
    return _describe(table, fit, "partial dependence", scale)


def _describe(table: pd.DataFrame, fit, kind: str, scale: str) -> pd.DataFrame:
    table.attrs.update(kind=kind, scale=scale, response=fit.design.response_name, exposure=_rows.exposure_name(fit))
    return table


def ice(
    fit, data, variable: str, *, scale: str = "response", grid=None, grid_size: int = GRID_SIZE, centered: bool = False, sample=None, seed=0
) -> pd.DataFrame:
    """Individual conditional expectation curves (Goldstein et al., 2015): each row's prediction as one input varies.

    Their average weighted by ``weight`` (exposure × prior weights, as in the data) is the
    partial dependence. ``centered=True`` subtracts each curve's value at the first grid value
    (c-ICE), so that curves differing only by a level shift coincide: curves that still fan
    out show an interaction. ``sample`` draws that many rows (seed ``seed``) for large data.

    Returns
    -------
    DataFrame with columns ``variable``, ``row`` (the data's index label), ``value``,
    ``estimate`` and ``weight``, one row per data row and grid value.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> curves = ng.effects.ice(fit, df, "age", scale="link", centered=True)
    >>> curves.shape  # 64 rows × 4 ages
    (256, 5)
    >>> bool(curves.groupby("value", observed=True)["estimate"].std().max() < 1e-12)  # a GLM: parallel on the link scale
    True
    """
    frame, weights = _prepare(fit, data, variable, scale, "ice", sample, seed)
    values = _grid(frame, variable, grid, grid_size)
    base, _ = _rows.stacked_predictions(fit, frame, variable, values, scale, weights.exposure)
    if centered:
        base = base - base[:1]
    n_rows = len(frame)
    table = pd.DataFrame(
        {
            "variable": variable,
            "row": np.tile(np.asarray(frame.index), values.size),
            "value": np.repeat(values, n_rows),
            "estimate": base.ravel(),
            "weight": np.tile(weights.weights, values.size),
        }
    )
    table = _describe(table, fit, "centered ICE" if centered else "ICE", scale)
    table.attrs["centered"] = bool(centered)
    return table
