"""Plots of model comparison tables of :mod:`neuralglm.effects`: lift, double lift and ordered Lorenz curves."""

from __future__ import annotations

from neuralglm.plots import _common
from neuralglm.plots._effect_tables import _need


def lift_plot(table, ax=None):
    """Observed (points) and predicted (lines) rate per bin of predicted rate, one colour per model, from :func:`neuralglm.effects.lift`.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.lift_plot(ng.effects.lift({"GLM": fit}, bins=5), ax=Figure().subplots())
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['GLM predicted', 'GLM observed']
    """
    table = _need(table, ("model", "bin", "predicted", "observed"), "lift_plot", "ng.effects.lift")
    ax = _common.new_axes(ax)
    for j, (name, group) in enumerate(table.groupby("model", sort=False)):
        color = _common.PALETTE[j % len(_common.PALETTE)]
        ax.plot(group["bin"], group["predicted"], "-", color=color, linewidth=1.8, label=f"{name} predicted", gid="lift")
        ax.plot(group["bin"], group["observed"], "o", color=color, markeredgecolor="white", markersize=7, label=f"{name} observed")
    ax.set_xticks(sorted(table["bin"].unique()))
    _common.style(
        ax, "Lift: rate by bin of predicted rate (equal exposure)", "Bin of predicted rate (1 = lowest)", "Rate per unit of exposure"
    )
    ax.legend(fontsize=8, frameon=False)
    return ax


def double_lift_plot(table, ax=None):
    """Actual over expected of two models per bin of their prediction ratio, from :func:`neuralglm.effects.double_lift`.

    The model whose line stays nearer 1 in the outer bins (where the two disagree most) is the better one there.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.double_lift_plot(ng.effects.double_lift(full, small, bins=4, names=("full", "age only")), ax=Figure().subplots())
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['full', 'age only']
    """
    table = _need(table, ("bin", "observed_over_a", "observed_over_b"), "double_lift_plot", "ng.effects.double_lift")
    names = table.attrs.get("names", ("A", "B"))
    ax = _common.new_axes(ax)
    for column, name, color in zip(("observed_over_a", "observed_over_b"), names, _common.PALETTE, strict=False):
        ax.plot(table["bin"], table[column], "o-", color=color, markeredgecolor="white", linewidth=1.6, label=str(name), gid="double_lift")
    _common.reference_hline(ax, 1.0)
    ax.set_xticks(table["bin"].tolist())
    _common.style(ax, f"Double lift: {names[0]} vs {names[1]}", f"Bin of {names[0]} / {names[1]} prediction ratio", "Observed / predicted")
    ax.legend(fontsize=9, frameon=False)
    return ax


def lorenz_plot(table, ax=None, gini=None):
    """Ordered Lorenz curves from :func:`neuralglm.effects.lorenz_curve`, with each model's Gini in the legend when ``gini`` is given.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from matplotlib.figure import Figure  # an Axes outside pyplot: no figure is left open
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.lorenz_plot(ng.effects.lorenz_curve({"GLM": fit}), gini=ng.effects.gini({"GLM": fit}), ax=Figure().subplots())
    >>> ax.get_legend().get_texts()[1].get_text()[:10]
    'GLM (Gini '
    """
    table = _need(table, ("model", "exposure_share", "loss_share"), "lorenz_plot", "ng.effects.lorenz_curve")
    ax = _common.new_axes(ax)
    _common.identity_line(ax, 0.0, 1.0, label="no ranking")
    for j, (name, group) in enumerate(table.groupby("model", sort=False)):
        text = str(name)
        if gini is not None and name in gini.index:
            text += f" (Gini {float(gini.loc[name, 'gini']):.3f})"
        ax.plot(group["exposure_share"], group["loss_share"], color=_common.PALETTE[j % len(_common.PALETTE)], linewidth=1.8, label=text)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    _common.style(ax, "Ordered Lorenz curves", "Share of exposure (lowest predicted rate first)", "Share of losses")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return ax
