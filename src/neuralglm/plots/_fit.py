r"""How well a fitted model describes the data (observed vs fitted, calibration) and its prediction surface.

Every function takes a fitted model (:class:`~neuralglm.FitResult` or
:class:`~neuralglm.NetworkResult`) and data with the response (the training rows when
omitted), reads only ``predict`` and ``design``, draws on ``ax`` (or a new figure) and
returns the Axes. For a count model fitted with an exposure (``exposure="holders"``), means
are compared as rates per unit of exposure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.effects._rows import weighted_bins
from neuralglm.errors import DataError, SpecificationError
from neuralglm.plots import _common
from neuralglm.plots._rows import data_and_axes, model_rows


def _set_log_if_wide(ax, values) -> None:
    if _common.spans_decades(values):
        ax.set_xscale("log")
        ax.set_yscale("log")


def observed_vs_fitted(fit, data=None, ax=None):
    """Observed responses against fitted means, with the 45° line and a binned-mean smoother.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        Data with the response (e.g. a test set): its observed values against
        ``fit.predict(data)``. The training rows when omitted (a model saved without its
        training data then raises :class:`~neuralglm.errors.ModelFileError` asking for them).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Both axes are logarithmic when all values are positive and span more than two decades.
    Binomial responses are proportions (successes / trials). Rows with zero weight are left out.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import observed_vs_fitted
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> observed_vs_fitted(fit).get_xlabel()
    'Fitted mean μ̂ of claims'
    >>> observed_vs_fitted(fit, ng.datasets.load_insurance().tail(16)).get_xlabel()  # new data
    'Predicted mean μ̂ of claims'
    """
    data, ax = data_and_axes(data, ax, "observed_vs_fitted")
    rows = model_rows(fit, data, "observed_vs_fitted")
    ax = _common.new_axes(ax)
    keep = rows.total_weights > 0
    mu, y = rows.mu[keep], rows.y[keep]
    ax.scatter(mu, y, **_common.POINT_STYLE)
    both = np.concatenate([mu, y])
    _common.identity_line(ax, float(both.min()), float(both.max()))
    _common.smoother(ax, mu, y)
    _set_log_if_wide(ax, both)
    response = fit.design.response_name
    title, kind = ("Observed vs fitted", "Fitted") if data is None else ("Observed vs predicted", "Predicted")
    _common.style(ax, title, f"{kind} mean μ̂ of {response}", f"Observed {response}")
    return ax


def calibration(fit, data=None, bins: int = 10, ax=None):
    r"""Observed against predicted mean within quantile bins of the prediction.

    Rows are sorted by prediction and cut into ``bins`` groups of equal total weight (prior
    weights × exposure); each group gives one point, the weighted mean prediction against the
    weighted mean response, with ±2 standard errors. A calibrated model follows the 45° line.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        Data with the response (e.g. a test set); the training rows when omitted (a model
        saved without its training data then raises :class:`~neuralglm.errors.ModelFileError`
        asking for them). Response, offset/exposure and weight columns are re-read by the
        names used when fitting.
    bins : int
        Number of bins (10: deciles).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    With an exposure :math:`e` (``offset = log e``) the points are rates
    :math:`\sum w y / \sum w e` against :math:`\sum w \hat\mu / \sum w e`. The error bars use the
    model's variance, :math:`\mathrm{se} = \sqrt{\phi \sum w V(\hat\mu)} / \sum w e`.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import calibration
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> ax = calibration(fit, bins=5)
    >>> ax.get_ylabel()
    'Observed claims per holders'
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise SpecificationError(f"The 'bins' parameter of calibration must be an integer ≥ 2. Got {bins!r} instead.")
    bins = int(bins)
    data, ax = data_and_axes(data, ax, "calibration")
    rows = model_rows(fit, data, "calibration")
    ax = _common.new_axes(ax)
    keep = rows.total_weights > 0
    y, mu, w, e = rows.y[keep], rows.mu[keep], rows.total_weights[keep], rows.exposure[keep]
    index = weighted_bins(mu / e, w * e, bins)
    n_bins = int(index.max()) + 1
    denominator = np.bincount(index, weights=w * e, minlength=n_bins)
    predicted = np.bincount(index, weights=w * mu, minlength=n_bins) / denominator
    observed = np.bincount(index, weights=w * y, minlength=n_bins) / denominator
    variance = np.asarray(fit.family.variance(mu), dtype=np.float64)
    dispersion = float(fit.dispersion) if np.isfinite(fit.dispersion) else 0.0
    error = 2.0 * np.sqrt(dispersion * np.bincount(index, weights=w * variance, minlength=n_bins)) / denominator
    low = float(min(predicted.min(), (observed - error).min()))
    high = float(max(predicted.max(), (observed + error).max()))
    _common.identity_line(ax, low, high, label="perfect calibration")
    container = ax.errorbar(
        predicted,
        observed,
        yerr=error,
        fmt="o-",
        color=_common.POINT_COLOR,
        markersize=6,
        markeredgecolor="white",
        linewidth=1.4,
        elinewidth=1.0,
        capsize=2.5,
        zorder=3,
        label="bins (±2 s.e.)",
    )
    container.lines[0].set_gid("calibration")
    if _common.spans_decades(predicted) and low > 0:
        ax.set_xscale("log")
        ax.set_yscale("log")
    title = "Calibration by decile of prediction" if bins == 10 else f"Calibration in {bins} bins of prediction"
    _common.style(ax, title, _common.mean_label(fit, "Predicted"), _common.mean_label(fit, "Observed", observed=True))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


def _reference_row(frame: pd.DataFrame, columns) -> dict:
    """Median of numeric columns, mode of the others (categorical dtype kept)."""
    row = {}
    for name in columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            row[name] = float(column.median())
        else:
            row[name] = column.mode(dropna=True).iloc[0]
    return row


def _response_of(fit, frame: pd.DataFrame) -> np.ndarray | None:
    """The response of ``frame`` read as ``fit`` read its training data; None when ``frame`` cannot give it."""
    from neuralglm.evaluate import evaluation_design

    try:
        return np.asarray(evaluation_design(fit, frame).y, dtype=np.float64)
    except DataError:  # e.g. a grid of inputs without the response: the points are drawn uncoloured
        return None


def decision_surface(fit, data, x: str, y: str, ax=None, resolution: int = 100):
    """Predicted mean (probability for binomial) over a grid of two numeric inputs.

    The other inputs are held at their median (numeric) or most frequent value; the data are
    overlaid, coloured by their response. For a binomial model the 0.5 contour is drawn.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame
        The data whose ranges span the grid and whose points are overlaid, coloured by their
        response when ``data`` has it (it need not be the training data).
    x, y : str
        Two numeric columns of ``data`` used by the model.
    ax : matplotlib Axes, optional
    resolution : int
        Grid points per axis.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, neuralglm as ng
    >>> from neuralglm.plots import decision_surface
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ district + np.log(holders)", df, family="poisson")
    >>> ax = decision_surface(fit, df, "district", "holders", resolution=20)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('district', 'holders')
    """
    frame = _common.as_frame(data)
    for name in (x, y):
        if name not in frame.columns:
            raise SpecificationError(f"decision_surface: {name!r} is not a column of the data.")
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise SpecificationError(
                f"decision_surface needs two numeric inputs; {name!r} is {column.dtype}. Use partial_dependence for categorical inputs."
            )
    ax = _common.new_axes(ax, figsize=(6.5, 5.0))
    # The grid stays within the data (a transform such as log(x) may not extend beyond them);
    # points on its edge are drawn unclipped.
    grid_x, grid_y = (np.linspace(frame[name].min(), frame[name].max(), resolution) for name in (x, y))
    mesh_x, mesh_y = np.meshgrid(grid_x, grid_y)
    reference = _reference_row(frame, [c for c in _common.needed_columns(fit, frame) if c not in (x, y)])
    grid = pd.DataFrame({name: [value] * mesh_x.size for name, value in reference.items()})
    for name in reference:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(grid[name], dtype=frame[name].dtype)
    grid[x], grid[y] = mesh_x.ravel(), mesh_y.ravel()
    surface = fit.predict(grid).to_numpy(dtype=np.float64).reshape(mesh_x.shape)

    binomial = fit.family.weights_are_trials  # the mean is a probability: a fixed 0-1 colour scale
    if binomial:
        levels, cmap, label = np.linspace(0.0, 1.0, 11), "RdBu_r", "Predicted probability"
    else:
        levels, cmap, label = 12, "viridis", f"Predicted mean of {fit.design.response_name}"
    filled = ax.contourf(mesh_x, mesh_y, surface, levels=levels, cmap=cmap, alpha=0.5 if binomial else 0.85, zorder=1)
    colorbar = ax.figure.colorbar(filled, ax=ax, shrink=0.9, pad=0.02)
    colorbar.set_label(label)
    colorbar.outline.set_visible(False)
    if binomial and surface.min() < 0.5 < surface.max():
        ax.contour(mesh_x, mesh_y, surface, levels=[0.5], colors=_common.TEXT_COLOR, linewidths=1.2, linestyles="--", zorder=2)
    response = _response_of(fit, frame)
    if binomial and response is not None:
        observed = response >= 0.5
        for value, color, name in ((False, "#2166ac", "0"), (True, "#b2182b", "1")):
            rows = observed == value
            ax.scatter(
                frame[x][rows],
                frame[y][rows],
                color=color,
                s=20,
                edgecolors="#222222",
                linewidths=0.6,
                zorder=3,
                clip_on=False,
                gid="data",
                label=f"{fit.design.response_name} = {name}",
            )
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85, edgecolor="none")
    elif response is not None:
        ax.scatter(
            frame[x],
            frame[y],
            c=response,
            cmap=cmap,
            norm=filled.norm,
            s=22,
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
            clip_on=False,
            gid="data",
        )
    else:
        ax.scatter(
            frame[x], frame[y], color="white", s=18, edgecolors=_common.TEXT_COLOR, linewidths=0.5, zorder=3, clip_on=False, gid="data"
        )
    ax.set_xlim(grid_x[0], grid_x[-1])
    ax.set_ylim(grid_y[0], grid_y[-1])
    held = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in reference.items())
    title = ("Predicted probability" if binomial else f"Predicted {fit.design.response_name}") + f" over {x} and {y}"
    _common.style(ax, title, x, y)
    ax.grid(False)
    if held:
        ax.text(0.0, -0.13, f"held at: {held}", transform=ax.transAxes, fontsize=8, color="#666666", va="top")
    return ax
