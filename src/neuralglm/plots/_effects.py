r"""Effects of one input on a fitted model's predictions: partial dependence, and several fits compared.

Works for a :class:`~neuralglm.FitResult` and a :class:`~neuralglm.NetworkResult` alike (it only
calls ``predict``), so a GLM and a network can be drawn on the same Axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.plots import _common

PD_GRID_SIZE = 40  # grid points for a numeric variable with many distinct values
PD_MAX_LEVELS = 12  # a numeric variable with at most this many values is treated as levels
PD_MAX_ROWS = 200_000  # rows per predict() call when the data are stacked once per grid value


def _with_values(frame: pd.DataFrame, name: str, values) -> pd.DataFrame:
    """``frame`` with column ``name`` replaced, keeping a categorical dtype and its levels."""
    out = frame.copy()
    if isinstance(frame[name].dtype, pd.CategoricalDtype):
        out[name] = pd.Categorical(values, dtype=frame[name].dtype)
    else:
        out[name] = values
    return out


def _grid_for(column: pd.Series) -> tuple[np.ndarray, bool]:
    """Values to set ``column`` to, and whether they are levels (drawn with markers)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.categories), True
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return np.asarray(sorted(column.dropna().unique())), True
    distinct = np.unique(column.dropna().to_numpy())
    if distinct.size <= PD_MAX_LEVELS:
        return distinct, False
    return np.linspace(distinct[0], distinct[-1], PD_GRID_SIZE), False


def _average_predictions(fit, frame: pd.DataFrame, variable: str, grid: np.ndarray) -> np.ndarray:
    """Average prediction (a rate per unit of exposure when there is one) at each grid value."""
    n_rows = len(frame)
    per_call = max(1, PD_MAX_ROWS // max(n_rows, 1))
    exposure_name = _common.exposure_name(fit)
    exposure_total = float(frame[exposure_name].sum()) if exposure_name in frame.columns else None
    averages = []
    for start in range(0, grid.size, per_call):
        chunk = grid[start : start + per_call]
        stacked = _with_values(pd.concat([frame] * chunk.size, ignore_index=True), variable, np.repeat(chunk, n_rows))
        mu = fit.predict(stacked).to_numpy(dtype=np.float64).reshape(chunk.size, n_rows)
        averages.append(mu.sum(axis=1) / exposure_total if exposure_total else mu.mean(axis=1))
    return np.concatenate(averages)


def partial_dependence(fit, data, variable: str, ax=None, label: str | None = None):
    """Average prediction as ``variable`` varies, the other inputs as observed (Friedman, 2001).

    Call it several times on the same ``ax`` (with ``label=``) to overlay models, e.g. a GLM
    and a network; each call takes the next colour. Numeric inputs with many values are
    drawn as a line over their range with a rug of the data; categorical inputs (and numeric
    ones with few values) as points at each level.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame
        The rows to average over (usually the training data).
    variable : str
        A column of ``data`` used by the model.
    ax : matplotlib Axes, optional
    label : str, optional
        Legend entry for this curve.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    :math:`\\mathrm{PD}(v) = \\frac{1}{n} \\sum_i \\hat\\mu(x_i \\text{ with } x_{i,v} = v)`; with an
    exposure it is :math:`\\sum_i \\hat\\mu_i / \\sum_i e_i`, a rate per unit of exposure.
    Reference: Friedman (2001), *Greedy function approximation*, Ann. Statist. 29, §8.2.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import partial_dependence
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> ax = partial_dependence(fit, df, "age", label="GLM")
    >>> [tick.get_text() for tick in ax.get_xticklabels()]
    ['<25', '25-29', '30-35', '>35']
    """
    frame = _common.as_frame(data)
    if variable not in frame.columns:
        raise SpecificationError(f"partial_dependence: {variable!r} is not a column of the data.")
    frame = frame[_common.needed_columns(fit, frame) + ([variable] if variable not in _common.needed_columns(fit, frame) else [])]
    grid, is_levels = _grid_for(frame[variable])
    averages = _average_predictions(fit, frame, variable, grid)
    ax = _common.new_axes(ax)
    n_previous = sum(1 for line in ax.lines if line.get_gid() == "partial_dependence")
    color = _common.PALETTE[n_previous % len(_common.PALETTE)]
    if is_levels:
        positions = np.arange(grid.size)
        ax.plot(
            positions,
            averages,
            "o-",
            color=color,
            markersize=7,
            linewidth=1.2,
            markeredgecolor="white",
            label=label,
            gid="partial_dependence",
            zorder=3,
        )
        ax.set_xticks(positions, [str(level) for level in grid])
        ax.set_xlim(-0.4, grid.size - 0.6)
    else:
        marker = "o" if grid.size <= PD_MAX_LEVELS else None
        ax.plot(grid, averages, color=color, linewidth=2.0, marker=marker, markersize=5, label=label, gid="partial_dependence", zorder=3)
        if not any(line.get_gid() == "rug" for line in ax.lines):
            observed = frame[variable].dropna().to_numpy(dtype=np.float64)
            if observed.size > 500:
                observed = np.random.default_rng(0).choice(observed, 500, replace=False)
            ax.plot(
                observed,
                np.zeros_like(observed),
                "|",
                color="#888888",
                alpha=0.5,
                markersize=8,
                transform=ax.get_xaxis_transform(),
                gid="rug",
            )
    _common.style(ax, f"Partial dependence on {variable}", variable, _common.mean_label(fit, "Average predicted"))
    if label is not None:
        ax.legend(fontsize=9, frameon=False)
    return ax


def effect_comparison(fits: dict, data, variable: str, ax=None):
    """Partial dependence of several fits on one input, overlaid (e.g. a GLM against a network).

    Parameters
    ----------
    fits : dict of str to FitResult or NetworkResult
        The legend label of each fit, in drawing order.
    data : DataFrame
        The rows to average over.
    variable : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import effect_comparison
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> ax = effect_comparison({"full": full, "age only": small}, df, "age")
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['full', 'age only']
    """
    if not fits:
        raise SpecificationError("effect_comparison needs at least one fit, as a dict {label: fit}.")
    ax = _common.new_axes(ax)
    for name, fit in fits.items():
        partial_dependence(fit, data, variable, ax=ax, label=str(name))
    ax.set_title(
        f"Partial dependence on {variable}: {' vs '.join(map(str, fits))}", fontsize=11.5, fontweight="bold", color=_common.TEXT_COLOR
    )
    return ax
