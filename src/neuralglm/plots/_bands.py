"""Predictions with their uncertainty bands (bootstrap or conformal) against one variable."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from neuralglm.errors import DataError, SpecificationError
from neuralglm.plots._common import PALETTE, POINT_STYLE, new_axes, style

_NEEDED = ("fit", "lower", "upper")


def prediction_bands(
    data, x: str, bands, *, observed: str | None = None, per: str | None = None, kind: str = "band", ax=None, title: str | None = None
):
    """Predictions and their intervals against the column ``x`` of ``data``, one shaded band per method.

    Parameters
    ----------
    data : the rows that were predicted (a DataFrame holding ``x``, and ``observed``/``per`` if given).
    x : the column on the horizontal axis; rows are drawn in its order.
    bands : a DataFrame with ``fit``, ``lower``, ``upper`` (e.g. ``ng.bootstrap(fit).predict(data)``
        or ``ng.conformal(fit, calibration).predict(data)``), or a mapping label → such frames,
        drawn in order with the palette's colours.
    observed : a column of ``data`` to draw as points (e.g. the response).
    per : a column to divide everything by (e.g. an exposure: counts become rates).
    kind : ``"band"`` (a shaded band and the fitted curve: for rows on a grid of ``x``) or
        ``"bars"`` (one vertical interval per row, the methods side by side: for cells of a
        table, whose intervals need not vary smoothly with ``x``).
    ax : matplotlib Axes to draw on (a new figure when None).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> ax = ng.plots.prediction_bands(df, "age", {"bootstrap": ng.bootstrap(fit, 50).predict(df)}, observed="claims", per="holders")
    >>> ax.get_ylabel()
    'claims per holders'
    """
    if kind not in ("band", "bars"):
        raise SpecificationError(f"The 'kind' parameter of prediction_bands must be 'band' or 'bars'. Got {kind!r} instead.")
    frames = {"prediction": bands} if isinstance(bands, pd.DataFrame) else bands
    if not isinstance(frames, Mapping) or not frames:
        raise SpecificationError(
            f"The 'bands' parameter of prediction_bands must be a DataFrame with columns fit, lower, upper, or a dict of them. Got {type(bands).__name__} instead."
        )
    if not isinstance(data, pd.DataFrame):
        raise SpecificationError(f"The 'data' parameter of prediction_bands must be a pandas DataFrame. Got {type(data).__name__} instead.")
    for column in (x, observed, per):
        if column is not None and column not in data:
            raise DataError(f"prediction_bands needs the column {column!r} in data; it has {', '.join(map(str, data.columns[:10]))}.")
    positions, ticks = _positions(data[x])
    order = np.argsort(positions, kind="stable")
    scale = np.ones(len(data)) if per is None else data[per].to_numpy(dtype=np.float64)
    xs = positions[order]
    ax = new_axes(ax)
    # Side-by-side intervals: each method shifted by a fraction of the smallest gap between x values.
    gaps = np.diff(np.unique(xs))
    dodge = 0.25 * (float(gaps.min()) if gaps.size else 1.0) / max(1, len(frames) - 1)
    if observed is not None:
        ax.scatter(xs, (data[observed].to_numpy(dtype=np.float64) / scale)[order], label=observed, **POINT_STYLE)
    for (label, frame), colour in zip(frames.items(), PALETTE[1:], strict=False):
        missing = [c for c in _NEEDED if c not in frame]
        if missing or len(frame) != len(data):
            raise DataError(f"The bands {label!r} must have columns fit, lower, upper and one row per row of data ({len(data)}).")
        values = {c: (frame[c].to_numpy(dtype=np.float64) / scale)[order] for c in _NEEDED}
        level = frame.attrs.get("level")
        text = f"{label} ({level:.0%})" if isinstance(level, float) else label
        if kind == "band":
            ax.fill_between(xs, values["lower"], values["upper"], color=colour, alpha=0.22, linewidth=0, label=text)
            ax.plot(xs, values["fit"], color=colour, linewidth=1.6)
        else:
            at = xs + dodge * (list(frames).index(label) - (len(frames) - 1) / 2)
            ax.vlines(at, values["lower"], values["upper"], color=colour, alpha=0.7, linewidth=1.4, label=text)
            ax.plot(at, values["fit"], "_", color=colour, markersize=5)
    ylabel = (observed or "prediction") if per is None else f"{observed or 'prediction'} per {per}"
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks)
    style(ax, title, x, ylabel)
    ax.legend(frameon=False, fontsize=9)
    return ax


def _positions(column: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numbers to draw ``column`` at: itself when numeric, else the position of each level (and the level labels)."""
    if pd.api.types.is_numeric_dtype(column) and not isinstance(column.dtype, pd.CategoricalDtype):
        return column.to_numpy(dtype=np.float64), None
    categorical = column.astype("category")
    return categorical.cat.codes.to_numpy(dtype=np.float64), [str(level) for level in categorical.cat.categories]
