r"""Accumulated local effects (Apley & Zhu, 2020): the effect of one input from local differences only.

Partial dependence sets every row to every value, also to combinations the data never show
(a young driver with forty years' licence); ALE differences each row's prediction only across
the small interval its own value lies in, and accumulates the weighted mean differences. For a
model additive in the input on the chosen scale, ALE is exactly that input's component up to a
constant (the telescoping sum of differences), whatever the correlation between inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.effects import _rows
from neuralglm.effects._dependence import _band_columns, _check_level, _describe, _prepare

ALE_BINS = 20


def ale(fit, data, variable: str, *, scale: str = "link", bins: int = ALE_BINS, bootstrap=None, level: float = 0.95) -> pd.DataFrame:
    r"""Accumulated local effects of one input, weighted by exposure × prior weights, centred to weighted mean 0.

    Numeric input: the rows are cut at the quantiles of the input into ``bins`` intervals
    :math:`(z_{k-1}, z_k]`; in each, the weighted mean of
    :math:`f_i(z_k) - f_i(z_{k-1})` (row *i*'s prediction per unit of exposure with the input
    at either end) is accumulated from :math:`z_0`, and the curve is centred so that its
    weighted mean over the rows is 0 (Apley & Zhu's estimator, each interval represented by
    the mean of its two ends). Categorical input: the levels in their order (the categories'
    order; for unordered factors the order is a choice, and the curve depends on it); the step
    from level *k − 1* to *k* is averaged over the rows at either level.

    Parameters
    ----------
    scale : ``"link"`` (default: where a GLM is additive) or ``"response"``.
    bins : number of quantile intervals of a numeric input (fewer when values are tied).
    bootstrap, level : as in :func:`partial_dependence`.

    Returns
    -------
    DataFrame with ``variable``, ``value`` (interval ends, or levels), ``estimate`` and
    ``weight`` (total weight of the rows in the interval ending at ``value``, or at the level).

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.uniform(-1, 1, 200), "z": rng.normal(size=200)})
    >>> df["y"] = 2 * df["x"] ** 2 + df["z"] + rng.normal(0, 0.1, 200)
    >>> fit = ng.glm("y ~ x + I(x**2) + z", df)
    >>> table = ng.effects.ale(fit, df, "x", bins=10)
    >>> b = fit.coef
    >>> shape = b["x"] * table["value"] + b["I(x ** 2)"] * table["value"] ** 2
    >>> bool(np.allclose(np.diff(table["estimate"]), np.diff(shape)))
    True
    """
    frame, weights = _prepare(fit, data, variable, scale, "ale")
    level = _check_level(level)
    boot = _rows.check_bootstrap(bootstrap, fit, "ale")
    if _rows.is_categorical(frame[variable]):
        table, replicates = _categorical_ale(fit, frame, variable, scale, weights, boot)
    else:
        table, replicates = _numeric_ale(fit, frame, variable, scale, weights, _rows.check_count(bins, "bins", "ale", 1), boot)
    if replicates is not None:
        table = _band_columns(table, replicates, level)
    return _describe(table, fit, "accumulated local effects", scale)


def _accumulate(steps: np.ndarray, interval_weights: np.ndarray, trapezoid: bool) -> np.ndarray:
    """ALE at the interval ends (or levels) from the mean steps, centred to weighted mean 0; works on ``(..., K)`` arrays."""
    shape = (*steps.shape[:-1], 1)
    curve = np.concatenate([np.zeros(shape), np.cumsum(steps, axis=-1)], axis=-1)
    if trapezoid:  # rows of interval k sit, on average, midway between its two ends
        centre = ((curve[..., :-1] + curve[..., 1:]) / 2) @ interval_weights[1:] / interval_weights[1:].sum()
    else:
        centre = curve @ interval_weights / interval_weights.sum()
    return curve - centre[..., None]


def _numeric_ale(fit, frame, variable, scale, weights, bins, boot):
    x = frame[variable].to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        raise _rows.DataError(f"ale: {variable!r} takes one value in the data; it has no effect to accumulate.")
    # Interval k = (edges[k-1], edges[k]]; the smallest value belongs to the first interval.
    index = np.clip(np.searchsorted(edges, x, side="left"), 1, edges.size - 1)
    upper = _rows.with_values(frame, variable, edges[index])
    lower = _rows.with_values(frame, variable, edges[index - 1])
    exposure = weights.exposure
    difference = _rows.per_exposure(fit, upper, scale, exposure) - _rows.per_exposure(fit, lower, scale, exposure)
    interval_weights = np.bincount(index, weights=weights.weights, minlength=edges.size)
    used = interval_weights[1:] > 0

    def steps(diff: np.ndarray) -> np.ndarray:  # (..., rows) → (..., K) weighted mean step per interval
        sums = np.stack([diff[..., index == k] @ weights.weights[index == k] for k in range(1, edges.size)], axis=-1)
        return np.where(used, sums / np.where(used, interval_weights[1:], 1.0), 0.0)

    table = pd.DataFrame(
        {
            "variable": variable,
            "value": edges,
            "estimate": _accumulate(steps(difference), interval_weights, True),
            "weight": interval_weights,
        }
    )
    replicates = None
    if boot is not None:
        diff = _rows.replicate_per_exposure(boot, upper, scale, exposure) - _rows.replicate_per_exposure(boot, lower, scale, exposure)
        replicates = _accumulate(steps(diff), interval_weights, True)
    return table, replicates


def _categorical_ale(fit, frame, variable, scale, weights, boot):
    levels = _rows.grid_for(frame[variable], 0)
    column = frame[variable].astype(object).to_numpy()
    at = np.array([np.flatnonzero(levels == value)[0] for value in column])
    base, replicates = _rows.stacked_predictions(fit, frame, variable, levels, scale, weights.exposure, boot)
    level_weights = np.bincount(at, weights=weights.weights, minlength=levels.size)

    def steps(values: np.ndarray) -> np.ndarray:  # (..., levels, rows) → (..., levels − 1)
        out = []
        for k in range(1, levels.size):
            rows = (at == k - 1) | (at == k)  # the step up from the rows below, down from the rows above
            w = weights.weights[rows]
            step = (values[..., k, :] - values[..., k - 1, :])[..., rows] @ w
            out.append(step / w.sum() if w.sum() > 0 else np.zeros_like(step))
        return np.stack(out, axis=-1)

    table = pd.DataFrame(
        {"variable": variable, "value": levels, "estimate": _accumulate(steps(base), level_weights, False), "weight": level_weights}
    )
    return table, (None if replicates is None else _accumulate(steps(replicates), level_weights, False))
