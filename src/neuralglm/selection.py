"""Stepwise model selection by AIC, as R's ``step``.

Each step scores every allowed single-term change with R's ``drop1``/``add1`` AIC
(:mod:`neuralglm.inference.deviance_tables`), refits the best one with ``fit.refit(formula=...)``
(every other argument of the original call kept) and stops when no change lowers the AIC by
more than R's 1e-7. Terms are dropped and added respecting marginality, within the ``lower``
and ``upper`` scopes. This module sits above ``api`` in the import order because it refits.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from neuralglm.errors import DataError, SpecificationError
from neuralglm.inference import deviance_tables as tables
from neuralglm.inference import terms as term_tools
from neuralglm.results.result import FitResult

DIRECTIONS = ("both", "backward", "forward")


class StepResult(NamedTuple):
    """What :func:`step` returns: the selected ``fit`` and the ``path`` that led to it (R's ``$anova``)."""

    fit: FitResult
    path: pd.DataFrame


def step(fit, scope=None, direction: str | None = None, k: float = 2.0, *, scale: float = 0.0, steps: int = 1000) -> StepResult:
    """R's ``step(fit, scope, direction, k)``: stepwise search for the model of lowest AIC.

    Parameters
    ----------
    fit : a GLM from ``ng.glm`` in this session (its call is replayed for each candidate).
    scope : ``None`` (only drop terms), an upper formula (``"~ .^2"``, ``"~ a * b * c"``; ``.``
        is the model's right-hand side), or ``{"lower": formula, "upper": formula}``: the
        terms always kept and the largest model considered.
    direction : ``"both"``, ``"backward"`` or ``"forward"``; ``None`` is ``"both"`` with a
        scope and ``"backward"`` without, as R's default.
    k : penalty per coefficient (2: AIC; ``log(n)``: BIC).
    scale, steps : R's ``scale`` (a fixed dispersion for the drop1/add1 scores) and the most steps.

    Returns
    -------
    StepResult
        ``fit``: the selected model; ``path``: one row per model visited, columns ``step``
        (``""``, ``"- term"``, ``"+ term"``), ``df``, ``deviance_change``, ``df_resid``,
        ``deviance``, ``aic`` (R's ``Step, Df, Deviance, Resid. Df, Resid. Dev, AIC``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200), "w": rng.normal(size=200)})
    >>> df["y"] = rng.poisson(np.exp(0.3 + 0.6 * df["x"]))
    >>> best, path = ng.step(ng.glm("y ~ x + z + w", df, family="poisson"))
    >>> best.formula, path["step"].tolist()
    ('y ~ x', ['', '- w', '- z'])
    """
    tables.check_glm(fit, "step()")
    direction = _direction(direction, scope)
    scale, k = tables._check_scale_k(scale, k)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise SpecificationError(f"The 'steps' parameter of step must be an int in the range [0, inf). Got {steps!r} instead.")
    lower, upper = _scopes(fit, scope)
    aic = tables.extract_aic(fit, k)
    if math.isnan(aic):
        raise SpecificationError(
            f"AIC is not defined for the {fit.family} family (no likelihood), so step() cannot proceed (as in R). "
            "Select terms with ng.drop1(fit, test='F') instead."
        )
    rows = [_row("", fit, aic)]
    current = fit
    for _ in range(steps):
        change = _best_change(current, lower, upper, direction, scale, k)
        if change is None:
            break
        candidate = current.refit(formula=_changed_formula(current, change))
        if candidate.n_obs != fit.n_obs:
            raise DataError("The number of rows in use changed during step(): remove the rows with missing values first (as R says).")
        candidate_aic = tables.extract_aic(candidate, k)
        if candidate_aic >= aic + 1e-7:  # R's tolerance: dropping a 0-df term may raise the AIC a hair
            break
        current, aic = candidate, candidate_aic
        rows.append(_row(change, current, aic))
    return StepResult(current, _path(rows))


def _direction(direction, scope) -> str:
    if direction is None:
        return "backward" if scope is None else "both"
    if direction not in DIRECTIONS:
        raise SpecificationError(f"The 'direction' parameter of step must be one of {', '.join(DIRECTIONS)}. Got {direction!r} instead.")
    return direction


def _scopes(fit, scope) -> tuple[list[term_tools.Term], list[term_tools.Term]]:
    """(lower, upper) term lists; without a scope, nothing is kept and the upper model is the fit's (R)."""
    if scope is None:
        return [], term_tools.model_terms(fit)[1]
    if isinstance(scope, dict):
        unknown = set(scope) - {"lower", "upper"}
        if unknown:
            raise SpecificationError(f"The 'scope' of step takes the keys 'lower' and 'upper'. Got {sorted(unknown)!r}.")
        lower = term_tools.scope_terms(fit, scope["lower"], "scope['lower']") if scope.get("lower") is not None else []
        upper = term_tools.scope_terms(fit, scope["upper"], "scope['upper']") if scope.get("upper") is not None else []
        return lower, upper
    return [], term_tools.scope_terms(fit, scope, "scope")


def _best_change(fit, lower, upper, direction: str, scale: float, k: float) -> str | None:
    """The change R's step makes next (``"- term"`` / ``"+ term"``), or None when ``<none>`` is best."""
    _, model = term_tools.model_terms(fit)
    scores: list[tuple[str, float, float]] = []  # (change, df, aic), <none> first
    if direction != "forward":
        droppable = term_tools.drop_scope(model, lower)
        if droppable:
            table = tables.drop1_table(fit, droppable, scale=scale, k=k)
            zero_df = [label for label, df in zip(table.index[1:], table["df"].iloc[1:], strict=True) if df == 0]
            if zero_df:  # aliased terms go first, one at a time (R: the last of them)
                return f"- {zero_df[-1]}"
            scores += [(("- " + label) if i else "", df, aic) for i, (label, df, aic) in enumerate(_rows(table))]
    if direction != "backward" and upper:
        addable = term_tools.add_scope(model, upper)
        if addable:
            table = tables.add1_table(fit, addable, scale=scale, k=k)
            rows = [(("+ " + label) if i else "", df, aic) for i, (label, df, aic) in enumerate(_rows(table))]
            scores += rows if not scores else rows[1:]
    scores = [row for row in scores if not row[0] or row[1] != 0]
    if not scores:
        return None
    order = np.argsort([aic for _, _, aic in scores], kind="stable")  # ties as R's order(): first listed wins
    return scores[order[0]][0] or None


def _rows(table: pd.DataFrame):
    return zip(table.index, table["df"], table["aic"], strict=True)


def _changed_formula(fit, change: str) -> str:
    sign, label = change[0], change[2:]
    _, model = term_tools.model_terms(fit)
    labels = [term.label for term in model]
    return term_tools.formula_with(fit, [x for x in labels if x != label] if sign == "-" else [*labels, label])


def _row(change: str, fit, aic: float) -> dict:
    return {"step": change, "deviance": float(fit.deviance), "df_resid": float(fit.df_resid), "aic": aic}


def _path(rows: list[dict]) -> pd.DataFrame:
    path = pd.DataFrame(rows)
    path.insert(1, "df", np.r_[np.nan, np.diff(path["df_resid"].to_numpy())])
    path.insert(2, "deviance_change", np.r_[np.nan, np.abs(np.diff(path["deviance"].to_numpy()))])
    return path.reindex(columns=["step", "df", "deviance_change", "df_resid", "deviance", "aic"])
