r"""Which inputs matter: permutation importance in deviance, and Friedman's H statistic for pairwise interactions."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from neuralglm.effects import _rows


def _variables(fit, frame: pd.DataFrame, variables, caller: str) -> list[str]:
    if variables is None:
        names = [name for name in _rows.model_inputs(fit) if name in frame.columns]
        if not names:
            raise _rows.SpecificationError(f"{caller} could not read the model's inputs from its formula: pass variables=[...].")
        return names
    if isinstance(variables, str):
        variables = [variables]
    return [_rows.check_variable(fit, frame, name, caller) for name in variables]


def permutation_importance(fit, data, variables=None, *, n_repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    r"""Permutation importance (Breiman, 2001; Fisher et al., 2019) measured in deviance.

    For each input, its column is shuffled across the rows (the others kept), and the
    deviance of the predictions on ``data`` (response, weights and exposure read as in
    training, as :func:`neuralglm.heldout_deviance` does) is compared with the unshuffled
    deviance: the increase is what the model loses without the information in that input.
    Repeated ``n_repeats`` times with independent shuffles (generator seeded by ``seed``).

    Returns
    -------
    DataFrame indexed by ``variable``, most important first, with ``importance`` (mean
    increase in deviance), ``se`` (its standard error over the repeats, the repeats' standard
    deviation over √``n_repeats``), ``relative`` (importance / baseline deviance) and
    ``baseline`` (the deviance unshuffled).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.permutation_importance(fit, df, n_repeats=3)
    >>> table.index.tolist()
    ['age', 'group', 'district']
    >>> bool((table["importance"] > 0).all())
    True
    """
    frame = _rows.as_frame(data, "permutation_importance")
    names = _variables(fit, frame, variables, "permutation_importance")
    n_repeats = _rows.check_count(n_repeats, "n_repeats", "permutation_importance", 2)
    rows = _rows.observed_rows(fit, frame, "permutation_importance")
    baseline = _rows.deviance(fit, rows.y, rows.mu, rows.weights)
    rng = np.random.default_rng(seed)
    n = len(frame)
    records = {}
    for name in names:
        order = np.concatenate([rng.permutation(n) for _ in range(n_repeats)])
        stacked = pd.concat([frame] * n_repeats, ignore_index=True)
        stacked[name] = frame[name].iloc[order].set_axis(stacked.index)  # keeps a categorical's levels
        mu = fit.predict(stacked).to_numpy(dtype=np.float64).reshape(n_repeats, n)
        increases = np.array([_rows.deviance(fit, rows.y, mu[r], rows.weights) - baseline for r in range(n_repeats)])
        records[name] = {"importance": increases.mean(), "se": increases.std(ddof=1) / np.sqrt(n_repeats)}
    table = pd.DataFrame.from_dict(records, orient="index")
    table["relative"] = table["importance"] / baseline if baseline > 0 else np.nan
    table["baseline"] = baseline
    table.index.name = "variable"
    table = table.sort_values("importance", ascending=False, kind="stable")
    table.attrs.update(n_repeats=n_repeats, seed=seed, response=fit.design.response_name)
    return table


def _pd_at_rows(fit, frame, names: list[str], scale, weights) -> np.ndarray:
    """Partial dependence on ``names`` jointly, at each row's own values of them, centred to weighted mean 0."""
    keys = frame[names].astype(object).apply(tuple, axis=1)
    unique = list(dict.fromkeys(keys))
    position = {key: j for j, key in enumerate(unique)}
    n = len(frame)
    per_call = max(1, _rows.MAX_STACKED_ROWS // n)
    values = []
    for start in range(0, len(unique), per_call):
        chunk = unique[start : start + per_call]
        stacked = pd.concat([frame] * len(chunk), ignore_index=True)
        for j, name in enumerate(names):
            stacked = _rows.with_values(stacked, name, np.repeat([key[j] for key in chunk], n))
        predictions = _rows.per_exposure(fit, stacked, scale, np.tile(weights.exposure, len(chunk))).reshape(len(chunk), n)
        values.append(predictions @ weights.weights / weights.weights.sum())
    at_rows = np.concatenate(values)[[position[key] for key in keys]]
    return at_rows - at_rows @ weights.weights / weights.weights.sum()


def h_statistic(fit, data, variables=None, *, scale: str = "link", sample: int | None = 200, seed: int = 0) -> pd.DataFrame:
    r"""Friedman & Popescu's (2008) H statistic of every pair of inputs: the share of their joint effect that is interaction.

    .. math:: H^2_{jk} = \frac{\sum_i w_i\,[\mathrm{PD}_{jk}(x_{ij}, x_{ik}) - \mathrm{PD}_j(x_{ij}) - \mathrm{PD}_k(x_{ik})]^2}
                              {\sum_i w_i\,\mathrm{PD}_{jk}(x_{ij}, x_{ik})^2}

    with centred, weighted partial dependences evaluated at the rows' own values. ``H = 0``
    when the model is additive in the two inputs on ``scale``; so a GLM without their
    interaction has H = 0 on the link scale (the default), while on the response scale a
    log link makes every pair interact multiplicatively. The cost grows as the square of
    the rows: ``sample`` of them are drawn (seed ``seed``; ``None`` uses all).

    Returns
    -------
    DataFrame with ``variable_1``, ``variable_2``, ``h`` and ``h_squared``, largest first.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group * age", df, family="poisson", exposure="holders")
    >>> table = ng.effects.h_statistic(fit, df)
    >>> table[["variable_1", "variable_2"]].values.tolist()
    [['group', 'age']]
    >>> bool(table["h"].iloc[0] > 0)
    True
    """
    frame = _rows.sample_rows(_rows.as_frame(data, "h_statistic"), sample, seed, "h_statistic")
    names = _variables(fit, frame, variables, "h_statistic")
    if len(names) < 2:
        raise _rows.SpecificationError(f"h_statistic needs at least two inputs; got {names}.")
    _rows.check_scale(scale, "h_statistic")
    weights = _rows.row_weights(fit, frame, "h_statistic")
    single = {name: _pd_at_rows(fit, frame, [name], scale, weights) for name in names}
    records = []
    for first, second in combinations(names, 2):
        joint = _pd_at_rows(fit, frame, [first, second], scale, weights)
        denominator = float(joint**2 @ weights.weights)
        numerator = float((joint - single[first] - single[second]) ** 2 @ weights.weights)
        h_squared = numerator / denominator if denominator > 0 else 0.0
        records.append({"variable_1": first, "variable_2": second, "h": np.sqrt(h_squared), "h_squared": h_squared})
    table = pd.DataFrame.from_records(records).sort_values("h", ascending=False, kind="stable", ignore_index=True)
    table.attrs.update(scale=scale, n_rows=len(frame))
    return table
