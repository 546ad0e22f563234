r"""Residual diagnostics of a fitted GLM or network, the four panels of R's ``plot.lm``.

Every function takes a fitted model (:class:`~neuralglm.FitResult` or
:class:`~neuralglm.NetworkResult`), ``data=None`` and ``ax=None``, draws on ``ax`` (or a new
figure), and returns the Axes. Residuals are the fit's deviance and Pearson residuals;
leverage and Cook's distance come from :func:`neuralglm.inference.influence.influence`.
Rows with zero weight are left out.

``data`` (with the response) matters for a model saved without its training data, which
asks for them: the leverage-based plots (Q–Q, scale–location, leverage, the panel) take the
training rows only, since leverages and Cook's distances exist for the rows of the fit;
:func:`residuals_vs_fitted` also draws new data.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import model_matrix_for
from neuralglm.errors import SpecificationError
from neuralglm.family import derived
from neuralglm.inference.influence import influence
from neuralglm.plots import _common
from neuralglm.plots._rows import data_and_axes, model_rows

COOK_LEVELS = (0.5, 1.0)
# Data given to the leverage-based plots must reproduce the fit's deviance (and n_obs): the
# predictions on the rows again are the fitted values up to rounding.
TRAINING_DEVIANCE_RTOL = 1e-6


def _residual_table(fit, data, caller: str) -> pd.DataFrame:
    """Linear predictor, deviance residual and label of each row with positive weight."""
    rows = model_rows(fit, data, caller)
    table = pd.DataFrame({"eta": rows.eta, "deviance_residual": rows.deviance_residuals(fit), "label": rows.labels})
    return table.loc[rows.total_weights > 0]


def _influence_table(fit, data, caller: str) -> pd.DataFrame:
    """Everything the four panels draw, one row per training observation with positive weight."""
    rows = model_rows(fit, data, caller)
    if data is None:
        table = influence(fit)
    else:
        _check_training_rows(fit, rows, caller)
        table = influence(_OnRows(fit, data, rows))
    table["eta"] = rows.eta
    table["deviance_residual"] = rows.deviance_residuals(fit)
    table["label"] = rows.labels
    return table.loc[rows.total_weights > 0]


def _check_training_rows(fit, rows, caller: str) -> None:
    """Refuse data other than the training rows: leverages and Cook's distances exist for those only."""
    design = rows.design
    counted = rows.total_weights > 0
    n_obs = float(np.sum(design.freq_weights[counted])) if design.freq_weights is not None else float(np.sum(counted))
    with jax.enable_x64(True):
        deviance = float(derived.deviance(fit.family, rows.y, rows.mu, rows.total_weights))
    if n_obs != fit.n_obs or not np.isclose(deviance, fit.deviance, rtol=TRAINING_DEVIANCE_RTOL, atol=0.0):
        raise SpecificationError(
            f"{caller} draws leverages and standardized residuals, which exist for the model's training rows only; "
            f"the data given are other rows (deviance {deviance:.6g} on {n_obs:g} observations, the fit's {fit.deviance:.6g} "
            f"on {fit.n_obs:g}). Pass the training data, or draw new data with residuals_vs_fitted, observed_vs_fitted or calibration."
        )


class _OnRows:
    """``fit`` as :func:`~neuralglm.inference.influence.influence` reads it, on the rows of ``data``.

    ``data`` are the training rows (checked by the caller), given again for a model saved
    without them: the design, fitted values and residuals are rebuilt from them, the rest
    (coefficients, covariance, dispersion, a network's weights) is the fit's own.
    """

    def __init__(self, fit, data, rows) -> None:
        X, _ = model_matrix_for(fit.design, data)  # the fitted columns (stored factor levels), as predict() builds them
        self._fit, self._data, self._rows = fit, data, rows
        self.design = dataclasses.replace(rows.design, X=X, X_column_sums=None)
        self.fitted_mu = rows.mu

    def __getattr__(self, name: str):
        return getattr(self._fit, name)

    def require_data(self, what: str) -> None:
        """The training rows are here: ``data`` (checked by the caller) stands in for the stored ones."""

    def residuals(self, type: str = "deviance") -> pd.Series:
        rows = self._rows
        with jax.enable_x64(True):
            values = derived.residuals(self._fit.family, self._fit.link, rows.y, rows.mu, rows.weights, kind=type)
        return pd.Series(np.asarray(values, dtype=np.float64), index=self.design.row_labels, name=type)

    def features(self, new_data=None) -> pd.DataFrame:
        return self._fit.features(self._data)


def _scatter(ax, x, y):
    return ax.scatter(x, y, **_common.POINT_STYLE)


def _draw_residuals_vs_fitted(ax, fit, table: pd.DataFrame, title: str = "Residuals vs fitted"):
    x, y = table["eta"].to_numpy(), table["deviance_residual"].to_numpy()
    _scatter(ax, x, y)
    _common.reference_hline(ax, 0.0)
    _common.smoother(ax, x, y)
    _common.label_extremes(ax, x, y, table["label"].to_numpy(), np.abs(y))
    _common.style(ax, title, _common.link_axis_label(fit), "Deviance residual")
    return ax


def _draw_qq(ax, fit, table: pd.DataFrame):
    residual = table["standardized_deviance"].to_numpy()
    finite = np.isfinite(residual)
    residual, labels = residual[finite], table["label"].to_numpy()[finite]
    order = np.argsort(residual)
    theoretical = _normal_quantiles(residual.size)
    sample = residual[order]
    _scatter(ax, theoretical, sample)
    low = float(min(theoretical.min(), sample.min())) if sample.size else -3.0
    high = float(max(theoretical.max(), sample.max())) if sample.size else 3.0
    _common.identity_line(ax, low, high)
    _common.label_extremes(ax, theoretical, sample, labels[order], np.abs(sample))
    _common.style(ax, "Normal Q–Q", "Theoretical quantile N(0, 1)", "Standardized deviance residual")
    return ax


def _draw_scale_location(ax, fit, table: pd.DataFrame):
    x = table["eta"].to_numpy()
    y = np.sqrt(np.abs(table["standardized_deviance"].to_numpy()))
    _scatter(ax, x, y)
    _common.smoother(ax, x, y)
    _common.label_extremes(ax, x, y, table["label"].to_numpy(), y)
    ax.set_ylim(bottom=0.0)
    _common.style(ax, "Scale–location", _common.link_axis_label(fit), "√|standardized deviance residual|")
    return ax


def _draw_leverage(ax, fit, table: pd.DataFrame):
    h = table["leverage"].to_numpy()
    r = table["standardized_pearson"].to_numpy()
    finite = np.isfinite(r)
    _scatter(ax, h[finite], r[finite])
    _common.reference_hline(ax, 0.0)
    _common.smoother(ax, h[finite], r[finite])
    _common.label_extremes(ax, h, r, table["label"].to_numpy(), table["cooks_distance"].to_numpy())
    n_coef = max(round(float(np.sum(h))), 1)  # trace(H) = number of coefficients
    h_max = float(np.max(h)) if h.size else 1.0
    x_high = min(1.0, 1.08 * h_max) if h_max > 0 else 1.0
    r_span = float(np.max(np.abs(r[finite]))) if finite.any() else 3.0
    y_limit = 1.15 * max(r_span, 2.0)
    ax.set_xlim(0.0, x_high)
    ax.set_ylim(-y_limit, y_limit)
    # Cook's distance D = r² h / (p (1 − h))  ⇒  r = ±√(D p (1 − h) / h).
    grid = np.linspace(x_high / 200, x_high, 200)
    for level in COOK_LEVELS:
        bound = np.sqrt(level * n_coef * (1.0 - grid) / grid)
        for sign in (1.0, -1.0):
            ax.plot(
                grid,
                sign * bound,
                color=_common.SMOOTH_COLOR,
                linestyle=(0, (4, 3)),
                linewidth=0.9,
                alpha=0.8,
                gid=f"cooks_{level:g}",
                label=f"Cook's distance {level:g}" if sign > 0 else None,
            )
            inside = np.abs(bound) <= y_limit
            if inside.any():
                ax.annotate(
                    f"{level:g}",
                    (grid[inside][-1], sign * bound[inside][-1]),
                    xytext=(2, 0),
                    textcoords="offset points",
                    fontsize=8,
                    color=_common.SMOOTH_COLOR,
                    va="center",
                )
    ax.set_ylim(-y_limit, y_limit)
    _common.style(ax, "Residuals vs leverage", "Leverage h (diagonal of the hat matrix)", "Standardized Pearson residual")
    ax.legend(
        handles=[line for line in ax.lines if line.get_gid() == "cooks_0.5"][:1],
        labels=["Cook's distance"],
        loc="lower left",
        fontsize=8,
        frameon=False,
    )
    return ax


def _normal_quantiles(n: int) -> np.ndarray:
    """Normal quantiles at R's ``ppoints(n)``: (i − a)/(n + 1 − 2a), a = 3/8 for n ≤ 10, else 1/2."""
    from scipy.stats import norm

    a = 0.375 if n <= 10 else 0.5
    return norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def residuals_vs_fitted(fit, data=None, ax=None):
    """Deviance residuals against the linear predictor, with a binned-mean smoother.

    A flat smoother near zero supports the chosen link and the linear predictor; a curve
    suggests a missing term or transformation. The three largest residuals are labelled.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        Data with the response (e.g. a test set): the residuals of ``fit.predict(data)``. The
        training rows when omitted (a model saved without them then raises
        :class:`~neuralglm.errors.ModelFileError` asking for them).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import residuals_vs_fitted
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> residuals_vs_fitted(fit).get_ylabel()
    'Deviance residual'
    """
    data, ax = data_and_axes(data, ax, "residuals_vs_fitted")
    table = _residual_table(fit, data, "residuals_vs_fitted")
    title = "Residuals vs fitted" if data is None else "Residuals vs predicted"
    return _draw_residuals_vs_fitted(_common.new_axes(ax), fit, table, title)


def qq_plot(fit, data=None, ax=None):
    """Normal Q–Q plot of the standardized deviance residuals, with the 45° line.

    Standardized residuals :math:`r_D / \\sqrt{\\phi (1 - h)}` (R's ``rstandard``) are close to
    N(0, 1) when the model is right and the counts or dispersion are not too small.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        The training data, for a model saved without them (include_data=False); other rows
        are refused (leverages exist for the fit's own rows only).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import qq_plot
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> qq_plot(fit).get_title()
    'Normal Q–Q'
    """
    data, ax = data_and_axes(data, ax, "qq_plot")
    return _draw_qq(_common.new_axes(ax), fit, _influence_table(fit, data, "qq_plot"))


def scale_location(fit, data=None, ax=None):
    """√|standardized deviance residual| against the linear predictor, with a smoother.

    A rising smoother means the variance grows faster than the family's variance function
    (e.g. overdispersion that increases with the mean).

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        The training data, for a model saved without them (include_data=False); other rows
        are refused (leverages exist for the fit's own rows only).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import scale_location
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> scale_location(fit).get_title()
    'Scale–location'
    """
    data, ax = data_and_axes(data, ax, "scale_location")
    return _draw_scale_location(_common.new_axes(ax), fit, _influence_table(fit, data, "scale_location"))


def leverage_plot(fit, data=None, ax=None):
    r"""Standardized Pearson residuals against leverage, with Cook's distance contours 0.5 and 1.

    Points beyond a contour have a Cook's distance above it: removing them alone would move
    the coefficients noticeably. The three most influential points are labelled.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        The training data, for a model saved without them (include_data=False); other rows
        are refused (leverages exist for the fit's own rows only).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The contours solve :math:`D = r^2 h / (p (1 - h))` for :math:`r`, with :math:`p` the number
    of coefficients; leverages are the diagonal of
    :math:`W^{1/2} X (X^\top W X)^{-1} X^\top W^{1/2}` (see
    :func:`neuralglm.inference.influence.influence`).

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import leverage_plot
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> ax = leverage_plot(fit)
    >>> sorted({line.get_gid() for line in ax.lines if line.get_gid().startswith("cooks")})
    ['cooks_0.5', 'cooks_1']
    """
    data, ax = data_and_axes(data, ax, "leverage_plot")
    return _draw_leverage(_common.new_axes(ax), fit, _influence_table(fit, data, "leverage_plot"))


def diagnostic_panel(fit, data=None, axes=None):
    """The four diagnostic plots in a 2×2 figure, as R's ``plot(glm_fit)``.

    Parameters
    ----------
    fit : FitResult or NetworkResult
    data : DataFrame, optional
        The training data, for a model saved without them (include_data=False); other rows
        are refused (leverages exist for the fit's own rows only).
    axes : array of 4 matplotlib Axes, optional
        Where to draw (in the order residuals vs fitted, Q–Q, scale–location, leverage); a new
        10×8 inch figure when omitted.

    Returns
    -------
    numpy.ndarray of matplotlib Axes, shape (2, 2) (or the shape of ``axes``).

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import diagnostic_panel
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> diagnostic_panel(fit).shape
    (2, 2)
    """
    data, axes = data_and_axes(data, axes, "diagnostic_panel")
    table = _influence_table(fit, data, "diagnostic_panel")  # before a figure is made: it may raise
    if axes is None:
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 2, figsize=(10.0, 8.0), layout="constrained")
        figure.suptitle(_common.model_label(fit), fontsize=12, color=_common.TEXT_COLOR)
    axes = np.asarray(axes, dtype=object)
    if axes.size != 4:
        raise SpecificationError(f"diagnostic_panel needs 4 axes (a 2×2 grid); got {axes.size}.")
    drawers = (_draw_residuals_vs_fitted, _draw_qq, _draw_scale_location, _draw_leverage)
    for ax, draw in zip(axes.ravel(), drawers, strict=True):
        draw(ax, fit, table)
    return axes
