r"""Calibration of several models on one Axes: observed against predicted by quantile bin of each model's prediction.

:func:`~neuralglm.plots.calibration` draws one model with ±2 standard-error bars; this draws
several (e.g. a GLM and a network fitted to the same data), each binned by its own
predictions, so that their calibration can be compared at a glance.
"""

from __future__ import annotations

import numpy as np

from neuralglm.effects._rows import weighted_bins
from neuralglm.errors import SpecificationError
from neuralglm.plots import _common
from neuralglm.plots._rows import model_rows


def calibration_points(fit, data=None, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    r"""Predicted and observed mean per bin: rows sorted by predicted rate, cut into ``bins`` of equal weight × exposure.

    Each bin gives :math:`\sum w \hat\mu / \sum w e` and :math:`\sum w y / \sum w e`
    (:math:`e` = 1 without an exposure): rates per unit of exposure, so that a cell of 1,000
    policy-years counts 1,000 times as much as a cell of one.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> predicted, observed = calibration_points(fit, bins=4)
    >>> len(predicted), bool(abs(predicted.mean() - observed.mean()) < 0.02)
    (4, True)
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise SpecificationError(f"The 'bins' parameter of calibration_comparison must be an integer ≥ 2. Got {bins!r} instead.")
    rows = model_rows(fit, data, "calibration_comparison")
    keep = rows.total_weights > 0
    y, mu, w, e = rows.y[keep], rows.mu[keep], rows.total_weights[keep], rows.exposure[keep]
    index = weighted_bins(mu / e, w * e, int(bins))
    n_bins = int(index.max()) + 1
    denominator = np.bincount(index, weights=w * e, minlength=n_bins)
    predicted = np.bincount(index, weights=w * mu, minlength=n_bins) / denominator
    observed = np.bincount(index, weights=w * y, minlength=n_bins) / denominator
    return predicted, observed


def calibration_comparison(fits: dict, data=None, bins: int = 10, ax=None):
    """Calibration curves of several models overlaid: observed against predicted mean by quantile bin.

    Each model's rows are sorted by its own predicted rate and cut into ``bins`` groups of
    equal total weight × exposure (deciles by default); each group is one point, the
    exposure-weighted mean prediction against the observed rate. A calibrated model follows
    the 45° line. For one model with error bars, use :func:`~neuralglm.plots.calibration`.

    Parameters
    ----------
    fits : dict of str to FitResult or NetworkResult
        The legend label of each model, in drawing order.
    data : DataFrame, optional
        Data with the response (e.g. held-out rows); each model's training rows when omitted.
    bins : int
        Number of bins (10: deciles).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.plots import calibration_comparison
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> ax = calibration_comparison({"full": full, "age only": small}, bins=5)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['perfect calibration', 'full', 'age only']
    """
    if not isinstance(fits, dict) or not fits:
        raise SpecificationError("calibration_comparison needs at least one fit, as a dict {label: fit}.")
    points = {str(name): calibration_points(fit, data, bins) for name, fit in fits.items()}
    ax = _common.new_axes(ax)
    values = np.concatenate([np.concatenate(pair) for pair in points.values()])
    _common.identity_line(ax, float(values.min()), float(values.max()), label="perfect calibration")
    for j, (name, (predicted, observed)) in enumerate(points.items()):
        color = _common.PALETTE[j % len(_common.PALETTE)]
        ax.plot(
            predicted,
            observed,
            "o-",
            color=color,
            markersize=6,
            markeredgecolor="white",
            linewidth=1.4,
            label=name,
            gid="calibration",
            zorder=3,
        )
    if _common.spans_decades(values):
        ax.set_xscale("log")
        ax.set_yscale("log")
    first = next(iter(fits.values()))
    in_bins = "by decile of prediction" if bins == 10 else f"in {bins} bins of prediction"
    _common.style(
        ax, f"Calibration {in_bins}", _common.mean_label(first, "Predicted"), _common.mean_label(first, "Observed", observed=True)
    )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
