"""Plots of the tables of :mod:`neuralglm.effects`: effect curves (PD, ICE, ALE) with bands, importance and interaction bars.

Each function takes the DataFrame an ``ng.effects`` function returned, so a table computed
once (e.g. for a report) is drawn without recomputing it, and returns the Axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.plots import _common

ICE_MAX_CURVES = 100  # more curves than this are drawn as a random subset (seed 0)


def _need(table, columns: tuple[str, ...], caller: str, source: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or any(column not in table.columns for column in columns):
        raise SpecificationError(f"The 'table' parameter of {caller} must be a DataFrame from {source} (columns {', '.join(columns)}).")
    return table


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64), None
    labels = [str(value) for value in dict.fromkeys(values)]
    return np.array([labels.index(str(value)) for value in values], dtype=np.float64), labels


def _effect_label(attrs: dict) -> str:
    response, exposure, scale = attrs.get("response"), attrs.get("exposure"), attrs.get("scale", "response")
    per = f" per {exposure}" if exposure else ""
    return f"{response or 'prediction'}{per}" if scale == "response" else f"η{' − log ' + exposure if exposure else ''} (link scale)"


def effect_plot(table, ax=None, label: str | None = None):
    """Draw a partial dependence, ICE or ALE table of :mod:`neuralglm.effects`, with its bootstrap band when it has one.

    ICE tables are drawn as thin curves (at most 100, a random subset) under their weighted
    average, the partial dependence. Call it again on the same ``ax`` with ``label=`` to overlay models.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.effect_plot(ng.effects.partial_dependence(fit, df, "age"), ax=Figure().subplots())
    >>> ax.get_title(), ax.get_ylabel()
    ('Partial dependence on age', 'claims per holders')
    """
    table = _need(table, ("variable", "value", "estimate"), "effect_plot", "ng.effects.partial_dependence, ice or ale")
    ax = _common.new_axes(ax)
    n_previous = sum(1 for line in ax.lines if line.get_gid() == "effect")
    color = _common.PALETTE[n_previous % len(_common.PALETTE)]
    kind = table.attrs.get("kind", "partial dependence")
    variable = str(table["variable"].iloc[0]) if len(table) else ""
    attrs = dict(table.attrs)
    if "row" in table.columns:  # ICE: thin curves, then their weighted mean
        rows = table["row"].unique()
        shown = rows if len(rows) <= ICE_MAX_CURVES else np.random.default_rng(0).permutation(np.asarray(rows))[:ICE_MAX_CURVES]
        for row in shown:
            curve = table[table["row"] == row]
            ax.plot(_positions(curve["value"])[0], curve["estimate"], color=color, alpha=0.25, linewidth=0.7, gid="ice")
        values = table["value"].to_numpy()
        estimate, weight = table["estimate"].to_numpy(dtype=np.float64), table["weight"].to_numpy(dtype=np.float64)
        grid = list(dict.fromkeys(values))
        average = [float(estimate[values == v] @ weight[values == v] / weight[values == v].sum()) for v in grid]
        table = pd.DataFrame({"value": grid, "estimate": average})
    x, labels = _positions(table["value"])
    if "lower" in table.columns:
        ax.fill_between(x, table["lower"], table["upper"], color=color, alpha=0.2, linewidth=0, gid="band")
    marker = "o" if labels is not None or len(x) <= 12 else None
    ax.plot(x, table["estimate"], color=color, linewidth=2.0, marker=marker, markersize=5, label=label, gid="effect", zorder=3)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
    elif len(x) <= 12 and np.all(x == np.round(x)):  # a few whole numbers (codes, counts): one tick each, no 1.5
        ax.set_xticks(x, [str(int(value)) for value in x])
    title = {"ICE": "ICE curves", "centered ICE": "Centred ICE curves"}.get(kind, kind[0].upper() + kind[1:])
    _common.style(ax, f"{title} on {variable}", variable, _effect_label(attrs) if attrs else None)
    if label is not None:
        ax.legend(fontsize=9, frameon=False)
    return ax


def importance_plot(table, ax=None, top: int | None = None):
    """Horizontal bars of a :func:`neuralglm.effects.permutation_importance` table, with ±2 standard errors.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.importance_plot(ng.effects.permutation_importance(fit, df, n_repeats=3), ax=Figure().subplots())
    >>> [tick.get_text() for tick in ax.get_yticklabels()]
    ['district', 'group', 'age']
    """
    table = _need(table, ("importance", "se"), "importance_plot", "ng.effects.permutation_importance")
    table = table.sort_values("importance", ascending=False).head(top)[::-1]
    ax = _common.new_axes(ax, figsize=(6.0, 0.6 + 0.45 * len(table)))
    positions = np.arange(len(table))
    ax.barh(positions, table["importance"], xerr=2 * table["se"], color=_common.PALETTE[0], alpha=0.85, error_kw={"ecolor": "#555555"})
    ax.set_yticks(positions, [str(name) for name in table.index])
    _common.style(ax, "Permutation importance", "Increase in deviance when shuffled (±2 SE)", None)
    return ax


def interaction_plot(table, ax=None):
    """Horizontal bars of Friedman's H per pair of inputs, from :func:`neuralglm.effects.h_statistic`.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ district + group * age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.interaction_plot(ng.effects.h_statistic(fit, df), ax=Figure().subplots())
    >>> ax.get_yticklabels()[-1].get_text()
    'group × age'
    """
    table = _need(table, ("variable_1", "variable_2", "h"), "interaction_plot", "ng.effects.h_statistic")[::-1]
    ax = _common.new_axes(ax, figsize=(6.0, 0.6 + 0.45 * len(table)))
    positions = np.arange(len(table))
    ax.barh(positions, table["h"], color=_common.PALETTE[2], alpha=0.85)
    ax.set_yticks(positions, [f"{a} × {b}" for a, b in zip(table["variable_1"], table["variable_2"], strict=True)])
    ax.set_xlim(0, max(1e-3, float(table["h"].max()) * 1.15) if len(table) else 1)
    _common.style(ax, f"Interaction strength (Friedman's H, {table.attrs.get('scale', 'link')} scale)", "H", None)
    return ax
