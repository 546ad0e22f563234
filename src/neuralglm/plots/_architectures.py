"""Plots of the nested architectures: LocalGLMnet's βⱼ(x), additive shape functions, 2D embeddings.

Each takes ``ax=None`` and returns the Axes; the numbers come from the fit's tidy tables
(:meth:`~neuralglm.NetworkResult.local_coef`, ``shape_functions``, ``embeddings``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.plots import _common


def local_coefficients(fit, data, variable: str, ax=None, *, band=None):
    """LocalGLMnet's coefficient βⱼ(x) of ``variable`` (a network input) against its values, one point per row.

    ``band`` (``(lower, upper)``, e.g. from :func:`neuralglm.localglmnet_selection`) is shaded:
    the range of "no effect".

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.simulate_motor(300, seed=0)
    >>> fit = ng.fit("ClaimNb ~ DrivAge + BonusMalus", df, family="poisson", exposure="Exposure",
    ...              hidden=(3,), architecture="localglmnet", epochs=50, seed=1)  # doctest: +SKIP
    >>> ax = ng.plots.local_coefficients(fit, df, "DrivAge")  # doctest: +SKIP
    """
    beta = fit.local_coef(data)
    if variable not in beta.columns:
        raise SpecificationError(f"{variable!r} is not an input of this LocalGLMnet; its inputs are {list(beta.columns)}.")
    x = (
        data[variable]
        if variable in data.columns
        else fit.scaling.transform(fit._new_design(data, None, None)[0])[:, list(beta.columns).index(variable)]
    )
    ax = _common.new_axes(ax)
    if band is not None:
        ax.axhspan(band[0], band[1], color=_common.REFERENCE_COLOR, alpha=0.2, zorder=1, label="no effect")
    ax.axhline(0.0, color=_common.REFERENCE_COLOR, linewidth=0.8)
    ax.scatter(np.asarray(x), beta[variable].to_numpy(), **(_common.POINT_STYLE | {"s": 8}))
    _common.style(ax, f"LocalGLMnet coefficient of {variable}", variable, f"β({variable})(x)")
    return ax


def shape_functions(fit, data, term: str, ax=None, *, bootstrap=None, level: float = 0.95):
    """An additive network's shape function fₜ of ``term`` against its variable, with bootstrap bands when given."""
    table = fit.shape_functions(data, bootstrap=bootstrap, level=level)
    rows = table[table["term"] == term]
    if rows.empty:
        raise SpecificationError(f"{term!r} is not a term of this additive network; its terms are {sorted(set(table['term']))}.")
    ax = _common.new_axes(ax)
    values = rows["value"]
    numeric = pd.api.types.is_numeric_dtype(values) and values.notna().all()
    x = values.to_numpy(dtype=float) if numeric else np.arange(len(rows))
    if "lower" in rows:
        ax.fill_between(x, rows["lower"], rows["upper"], color=_common.PALETTE[0], alpha=0.2, step=None if numeric else "mid")
    ax.plot(x, rows["effect"], color=_common.PALETTE[0], marker=None if numeric else "o")
    if not numeric:
        ax.set_xticks(x, [str(v) for v in values], rotation=90 if len(x) > 8 else 0)
    _common.style(ax, f"Shape function of {term}", term, "contribution to η")
    return ax


def embeddings(fit, factor: str | None = None, ax=None, dims: tuple[int, int] = (1, 2)):
    """The learned embedding of each level of ``factor`` (the first embedded one by default) in two of its dimensions."""
    table = fit.embeddings()
    factor = factor if factor is not None else str(table["factor"].iloc[0])
    rows = table[table["factor"] == factor]
    if rows.empty:
        raise SpecificationError(f"{factor!r} is not an embedded factor; the embedded factors are {sorted(set(table['factor']))}.")
    columns = [f"dim{d}" for d in dims]
    if any(c not in rows for c in columns):
        raise SpecificationError(
            f"The embedding of {factor!r} has {sum(c.startswith('dim') for c in rows.columns)} dimension(s); dims={dims} asks for more."
        )
    ax = _common.new_axes(ax)
    ax.scatter(rows[columns[0]], rows[columns[1]], **_common.POINT_STYLE)
    for level, a, b in zip(rows["level"], rows[columns[0]], rows[columns[1]], strict=True):
        ax.annotate(str(level), (a, b), fontsize=8, xytext=(3, 3), textcoords="offset points", color=_common.TEXT_COLOR)
    _common.style(ax, f"Embedding of {factor}", columns[0], columns[1])
    return ax
