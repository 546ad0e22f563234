r"""A network's learned features drawn as curves over one input: the hidden layer as feature engineering.

The last hidden layer of a :class:`~neuralglm.NetworkResult` holds the features
:math:`h_1(x), \dots, h_K(x)` the output layer is a GLM on, :math:`\eta = b + \sum_j \beta_j h_j(x)
+ \text{offset}`. Drawn over one input, with the other inputs held fixed, they show what
the network built: hinges, steps, smooth bends.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.plots import _common
from neuralglm.plots._effects import _grid_for
from neuralglm.plots._fit import _reference_row


def _grid_frame(fit, frame: pd.DataFrame, variable: str, values: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """One row per value of ``variable``, the other inputs at their median or most frequent value (dtypes kept)."""
    reference = _reference_row(frame, [name for name in _common.needed_columns(fit, frame) if name != variable])
    columns = {name: [value] * len(values) for name, value in reference.items()} | {variable: list(values)}
    grid = pd.DataFrame(columns, index=pd.RangeIndex(len(values)))
    for name in columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):  # the training levels, so the design has its columns
            grid[name] = pd.Categorical(grid[name], dtype=frame[name].dtype)
    return grid, reference


def feature_curves(fit, data, variable: str, ax=None, scaled: bool = False):
    r"""The network's learned features (last hidden layer) as curves over one input.

    Each unit :math:`h_j` is drawn as ``variable`` runs over its range (numeric) or levels
    (categorical), the other inputs held at their median (numeric) or most frequent value.
    With ``scaled=True`` each curve is the unit's contribution :math:`\beta_j h_j` to the
    linear predictor, and their sum with the intercept and offset, the linear predictor
    itself, is drawn dashed: the network read as a GLM on these features.

    Parameters
    ----------
    fit : NetworkResult
    data : DataFrame
        Rows whose range of ``variable`` (and typical values of the other inputs) the grid follows.
    variable : str
        A column of ``data`` the model uses.
    ax : matplotlib Axes, optional
    scaled : bool
        Draw :math:`\beta_j h_j` and the linear predictor instead of :math:`h_j`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> from neuralglm.plots import feature_curves
    >>> x = np.linspace(-2, 2, 200)
    >>> df = pd.DataFrame({"x": x, "y": np.abs(x) + np.sin(7 * x) / 5})
    >>> net = ng.fit("y ~ x", df, hidden=(2,), activation="tanh", solver="lbfgs", epochs=3000, seed=0)
    >>> ax = feature_curves(net, df, "x")
    >>> [text.get_text() for text in ax.get_legend().get_texts()]  # doctest: +ELLIPSIS
    ['h1 (β = ...)', 'h2 (β = ...)']
    """
    if getattr(fit, "kind", None) != "network":
        raise SpecificationError(
            f"feature_curves draws a network's learned features, and got a {type(fit).__name__}; a GLM's features are its inputs (use partial_dependence)."
        )
    if fit.architecture.n_hidden == 0:
        raise SpecificationError(
            "feature_curves draws learned features, and this network has no hidden layer: its features are its inputs (use partial_dependence)."
        )
    frame = _common.as_frame(data)
    if variable not in frame.columns or variable not in _common.needed_columns(fit, frame):
        raise SpecificationError(
            f"feature_curves: {variable!r} is not an input of the model in the data; give one of {_common.needed_columns(fit, frame)}."
        )
    values, is_levels = _grid_for(frame[variable])
    grid, reference = _grid_frame(fit, frame, variable, values)
    features = fit.features(grid)
    weights = fit.coef.reindex(features.columns).to_numpy(dtype=np.float64)
    ax = _common.new_axes(ax)
    positions = np.arange(len(values)) if is_levels else np.asarray(values, dtype=np.float64)
    style = {"marker": "o", "markersize": 6, "markeredgecolor": "white"} if is_levels else {}
    for j, name in enumerate(features.columns):
        curve = features[name].to_numpy(dtype=np.float64) * (weights[j] if scaled else 1.0)
        label = f"β·{name}" if scaled else name
        ax.plot(
            positions,
            curve,
            color=_common.PALETTE[j % len(_common.PALETTE)],
            linewidth=2.0,
            label=f"{label} (β = {weights[j]:.3g})",
            gid="feature",
            zorder=3,
            **style,
        )
    if scaled:
        eta = fit.predict(grid, type="link").to_numpy(dtype=np.float64)
        ax.plot(
            positions,
            eta,
            color=_common.TEXT_COLOR,
            linestyle="--",
            linewidth=1.6,
            label="linear predictor η",
            gid="linear_predictor",
            zorder=4,
            **style,
        )
    if is_levels:
        ax.set_xticks(positions, [str(level) for level in values])
    ylabel = "Contribution to η" if scaled else "Feature value (last hidden layer)"
    _common.style(ax, f"Learned features over {variable}", variable, ylabel)
    ax.legend(fontsize=8, frameon=False)
    held = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in reference.items())
    if held:
        ax.text(0.0, -0.16, f"held at: {held}", transform=ax.transAxes, fontsize=8, color="#666666", va="top")
    return ax
