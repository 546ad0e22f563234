"""Shared look and helpers of the plots: palette, axes creation, styling, a binned-mean smoother.

matplotlib is imported inside the functions only, so that ``import neuralglm`` stays free of it.
"""

from __future__ import annotations

import numpy as np

# Okabe & Ito (2008) colour-blind-safe palette; the first colour is the data, the second the
# smoother/highlight, the rest are for overlaid fits.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
POINT_COLOR = "#0072B2"
SMOOTH_COLOR = "#D55E00"
REFERENCE_COLOR = "#7f7f7f"
TEXT_COLOR = "#333333"
POINT_STYLE = {"s": 18, "alpha": 0.6, "color": POINT_COLOR, "edgecolors": "white", "linewidths": 0.4, "zorder": 3}


def new_axes(ax=None, figsize=(6.0, 4.5)):
    """``ax`` itself, or the Axes of a new figure (constrained layout)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def style(ax, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None) -> None:
    """Title, labels, a light grid behind the data, and no top/right spines."""
    if title is not None:
        ax.set_title(title, fontsize=11.5, fontweight="bold", color=TEXT_COLOR)
    if xlabel is not None:
        ax.set_xlabel(xlabel, color=TEXT_COLOR)
    if ylabel is not None:
        ax.set_ylabel(ylabel, color=TEXT_COLOR)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#999999")
    ax.tick_params(colors="#555555", labelsize=9)


def reference_hline(ax, y: float = 0.0) -> None:
    ax.axhline(y, color=REFERENCE_COLOR, linestyle="--", linewidth=1.0, zorder=2, gid="reference")


def identity_line(ax, low: float, high: float, label: str | None = None) -> None:
    """The 45° line y = x over [low, high]."""
    ax.plot([low, high], [low, high], color=REFERENCE_COLOR, linestyle="--", linewidth=1.0, zorder=2, gid="reference", label=label)


def binned_mean(x, y, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``x`` and ``y`` within quantile bins of ``x``: a dependency-free smoother.

    ``n_bins`` defaults to about one bin per 30 points, between 5 and 12 (few
    enough that the means of binary responses do not zig-zag). Ties in ``x`` never
    split across bins, so a few distinct fitted values give one point each.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if x.size == 0:
        return x, y
    if n_bins is None:
        n_bins = int(np.clip(x.size // 30, 5, 12))
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        return np.array([x.mean()]), np.array([y.mean()])
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(index, minlength=edges.size - 1)
    used = counts > 0
    x_mean = np.bincount(index, weights=x, minlength=edges.size - 1)[used] / counts[used]
    y_mean = np.bincount(index, weights=y, minlength=edges.size - 1)[used] / counts[used]
    return x_mean, y_mean


def smoother(ax, x, y) -> None:
    """Draw the binned-mean smoother of ``y`` on ``x``."""
    x_mean, y_mean = binned_mean(x, y)
    ax.plot(x_mean, y_mean, color=SMOOTH_COLOR, linewidth=2.0, zorder=4, gid="smoother", label="binned mean")


def label_extremes(ax, x, y, labels, score, n: int = 3) -> None:
    """Annotate the ``n`` points with the largest ``score`` by their row labels (as R's plot.lm)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    score = np.where(np.isfinite(score), score, -np.inf)
    # Points closer than 4% of the data range get their labels stacked, not overprinted.
    x_span = float(np.ptp(x[np.isfinite(x)])) or 1.0 if x.size else 1.0
    y_span = float(np.ptp(y[np.isfinite(y)])) or 1.0 if y.size else 1.0
    placed: list[tuple[float, float]] = []
    for i in np.argsort(score)[::-1][: min(n, len(score))]:
        crowd = sum(abs(x[i] - px) < 0.04 * x_span and abs(y[i] - py) < 0.04 * y_span for px, py in placed)
        placed.append((x[i], y[i]))
        ax.annotate(
            str(labels[i]),
            (x[i], y[i]),
            xytext=(4, 3 - 9 * crowd),
            textcoords="offset points",
            fontsize=8,
            color=TEXT_COLOR,
            gid="extreme_label",
        )


def model_label(fit) -> str:
    """``'poisson(link=log) · claims ~ age'``, for titles."""
    formula = getattr(fit, "formula", "") or ""
    return f"{fit.family}(link={fit.link})" + (f" · {formula}" if formula else "")


def link_axis_label(fit) -> str:
    return f"Linear predictor η ({fit.link} scale)"


def spans_decades(values, decades: float = 2.0) -> bool:
    """Whether positive ``values`` span more than ``decades`` powers of ten (→ log axis)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or np.any(values <= 0):
        return False
    return bool(np.log10(values.max() / values.min()) > decades)


# ---- reading a fitted model (attributes FitResult and NetworkResult share) --------------------
def as_frame(data):
    """A pandas DataFrame from pandas, polars (``to_pandas``) or a dict of columns."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return pd.DataFrame(data)


def exposure_name(fit) -> str | None:
    """The exposure's name when the offset is exactly log(exposure), else None."""
    source = fit.design.offset_source
    if (source.exposure_column or source.exposure_array) and not (source.offset_column or source.offset_array):
        return source.exposure_column or "exposure"
    return None


def mean_label(fit, prefix: str, observed: bool = False) -> str:
    """``'Predicted claims per holders'``, ``'Observed proportion'``, ``'Average predicted probability'``…"""
    if fit.family.weights_are_trials:  # the mean is a probability, the response a proportion
        return f"{prefix} {'proportion' if observed else 'probability'}"
    exposure = exposure_name(fit)
    response = fit.design.response_name
    return f"{prefix} {response}" + (f" per {exposure}" if exposure is not None else "")


def needed_columns(fit, frame) -> list[str]:
    """Columns of ``frame`` the model reads: the formula's inputs, offset and exposure."""
    from neuralglm.data.design import input_columns

    names = input_columns(fit.design)  # offset() terms' columns included
    if not names:  # no spec, or one that does not list its inputs (a model loaded from a file): keep every column
        names = set(frame.columns)
    source = fit.design.offset_source
    names |= {c for c in (source.offset_column, source.exposure_column) if c}
    return [name for name in frame.columns if name in names]
