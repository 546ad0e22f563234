r"""Comparing models on data with the response: lift, double lift, calibration by decile, ordered Lorenz curves and Gini.

Every table works in rates per unit of exposure with rows weighted by prior × frequency
weights: a bin's rate is :math:`\sum w\hat\mu / \sum w e` (predicted) and
:math:`\sum w y / \sum w e` (observed), and bins hold equal total :math:`w e` (equal exposure).
``data`` is read as the fit read its training data (response, weights, exposure columns);
``None`` uses each model's training rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from neuralglm.effects import _rows


def _models(fits, caller: str) -> dict:
    if isinstance(fits, Mapping):
        if not fits:
            raise _rows.SpecificationError(f"{caller} needs at least one fit, as a fit or a dict {{label: fit}}.")
        return {str(name): fit for name, fit in fits.items()}
    if not hasattr(fits, "predict"):
        raise _rows.SpecificationError(
            f"The 'fits' parameter of {caller} must be a fit or a dict {{label: fit}}. Got {type(fits).__name__}."
        )
    return {"model": fits}


def _binned(index: np.ndarray, n_bins: int, rows: _rows.ObservedRows, extra: dict) -> pd.DataFrame:
    w, e = rows.weights, rows.exposure
    exposure = np.bincount(index, weights=w * e, minlength=n_bins)
    columns = {"bin": np.arange(1, n_bins + 1), "exposure": exposure}
    for name, values in {"predicted": rows.mu, "observed": rows.y, **extra}.items():
        columns[name] = np.bincount(index, weights=w * values, minlength=n_bins) / exposure
    return pd.DataFrame(columns)


def _check_bins(bins, caller: str) -> int:
    return _rows.check_count(bins, "bins", caller, 2)


def lift(fits, data=None, *, bins: int = 10) -> pd.DataFrame:
    """Lift chart table: rows sorted by each model's predicted rate, cut into ``bins`` of equal exposure.

    Returns
    -------
    Long DataFrame: ``model``, ``bin`` (1 = lowest predictions), ``exposure`` (Σ w e),
    ``predicted`` and ``observed`` rates, and ``lift`` (observed rate over the overall
    observed rate). A model that separates risks well has a steep ``observed`` column.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.lift(fit, bins=4)
    >>> bool(table["observed"].is_monotonic_increasing)
    True
    """
    bins = _check_bins(bins, "lift")
    tables = []
    for name, fit in _models(fits, "lift").items():
        rows = _rows.observed_rows(fit, data, "lift")
        index = _rows.weighted_bins(rows.mu / rows.exposure, rows.weights * rows.exposure, bins)
        table = _binned(index, bins, rows, {})
        overall = float(rows.weights @ rows.y / (rows.weights @ rows.exposure))
        tables.append(table.assign(lift=table["observed"] / overall).assign(model=name))
    out = pd.concat(tables, ignore_index=True)
    return out[["model", "bin", "exposure", "predicted", "observed", "lift"]]


def calibration_table(fits, data=None, *, bins: int = 10) -> pd.DataFrame:
    """Calibration by decile (``bins`` quantiles of each model's predicted rate, equal exposure): predicted against observed.

    Returns
    -------
    Long DataFrame: ``model``, ``bin``, ``exposure``, ``predicted``, ``observed`` and
    ``ratio`` (observed / predicted: 1 for a calibrated bin).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.calibration_table({"GLM": fit}, bins=5)
    >>> round(float((table["exposure"] * (table["observed"] - table["predicted"])).sum()), 6)  # Poisson GLM: balanced
    0.0
    """
    table = lift(fits, data, bins=_check_bins(bins, "calibration_table"))
    return table.drop(columns="lift").assign(ratio=table["observed"] / table["predicted"])


def double_lift(fit_a, fit_b, data=None, *, bins: int = 10, names=("A", "B")) -> pd.DataFrame:
    r"""Double lift chart table: rows sorted by the ratio of two models' predictions, cut into ``bins`` of equal exposure.

    Where the models disagree most (the first and last bins) the observed rate shows which
    of them is right. Both models must be read on the same rows, so ``data`` (or their
    common training rows) must give both the same response, weights and exposure.

    Returns
    -------
    DataFrame with ``bin``, ``exposure``, ``ratio`` (Σ w μ̂_A / Σ w μ̂_B in the bin),
    ``predicted_a``, ``predicted_b``, ``observed`` (rates), and ``observed_over_a``,
    ``observed_over_b`` (actual over expected); ``attrs["names"]`` holds the two labels.
    Summed over the bins with weights ``exposure``, each rate column gives its total.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.double_lift(full, small, bins=4, names=("full", "age only"))
    >>> round(float((table["exposure"] * table["observed"]).sum()))  # every claim, once
    3151
    """
    bins = _check_bins(bins, "double_lift")
    first = _rows.observed_rows(fit_a, data, "double_lift")
    second = _rows.observed_rows(fit_b, data, "double_lift")
    same = first.y.shape == second.y.shape and all(
        np.allclose(a, b) for a, b in ((first.y, second.y), (first.weights, second.weights), (first.exposure, second.exposure))
    )
    if not same:
        raise _rows.DataError("double_lift needs both models read on the same rows: pass data, or two fits of the same training rows.")
    index = _rows.weighted_bins(first.mu / second.mu, first.weights * first.exposure, bins)
    table = _binned(index, bins, first, {"predicted_b": second.mu}).rename(columns={"predicted": "predicted_a"})
    w = first.weights
    table.insert(
        2, "ratio", np.bincount(index, weights=w * first.mu, minlength=bins) / np.bincount(index, weights=w * second.mu, minlength=bins)
    )
    table = table[["bin", "exposure", "ratio", "predicted_a", "predicted_b", "observed"]]
    table = table.assign(observed_over_a=table["observed"] / table["predicted_a"], observed_over_b=table["observed"] / table["predicted_b"])
    table.attrs["names"] = tuple(str(name) for name in names)
    return table


def _lorenz(rows: _rows.ObservedRows) -> tuple[np.ndarray, np.ndarray]:
    """Ordered Lorenz curve: cumulative shares of exposure and of losses, rows by increasing predicted rate; tied predictions form one step."""
    rate = rows.mu / rows.exposure
    # Rates equal to 12 significant digits are ties: exp(η) / e of an intercept-only model
    # differs between rows in the last bits, and the curve must not depend on that noise.
    magnitude = 10.0 ** (11 - np.floor(np.log10(np.where(rate > 0, np.abs(rate), 1.0))))
    distinct, group = np.unique(np.round(rate * magnitude) / magnitude, return_inverse=True)
    exposure = np.bincount(group, weights=rows.weights * rows.exposure, minlength=distinct.size)
    losses = np.bincount(group, weights=rows.weights * rows.y, minlength=distinct.size)
    x = np.concatenate([[0.0], np.cumsum(exposure) / exposure.sum()])
    y = np.concatenate([[0.0], np.cumsum(losses) / losses.sum()])
    return x, y


def lorenz_curve(fits, data=None) -> pd.DataFrame:
    """Ordered Lorenz curves (Frees, Meyers & Cummings, 2011): cumulative share of losses against cumulative share of exposure.

    Rows are sorted by predicted rate, lowest first; a model that ranks risks well keeps the
    curve far below the diagonal. Returns a long DataFrame ``model``, ``exposure_share``,
    ``loss_share`` starting at (0, 0).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> curve = ng.effects.lorenz_curve(fit)
    >>> curve[["exposure_share", "loss_share"]].iloc[[0, -1]].values.tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    """
    frames = []
    for name, fit in _models(fits, "lorenz_curve").items():
        x, y = _lorenz(_rows.observed_rows(fit, data, "lorenz_curve"))
        frames.append(pd.DataFrame({"model": name, "exposure_share": x, "loss_share": y}))
    return pd.concat(frames, ignore_index=True)


def gini(fits, data=None) -> pd.DataFrame:
    r"""Gini index of each model's ordered Lorenz curve (with exposure): 1 − 2 × the area under the curve.

    0 for a model that ranks no better than chance (or a constant prediction), larger for
    better separation of low and high risks; it measures ranking only, not calibration
    (multiplying every prediction by 2 leaves it unchanged): read it next to the lift and
    calibration tables. Tied predictions are one step of the curve, so ties do not depend on
    row order.

    Returns
    -------
    DataFrame indexed by ``model`` with ``gini`` and ``exposure`` (Σ w e).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.gini({"full": full, "age only": small})
    >>> bool(table.loc["full", "gini"] > table.loc["age only", "gini"] > 0)
    True
    """
    records = {}
    for name, fit in _models(fits, "gini").items():
        rows = _rows.observed_rows(fit, data, "gini")
        x, y = _lorenz(rows)
        area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
        records[name] = {"gini": 1.0 - 2.0 * area, "exposure": float(rows.weights @ rows.exposure)}
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "model"
    return table
