"""A fitted multinomial logit model (``family="multinomial"``), reported as R's ``nnet::multinom``.

The response is a factor with K levels; the first is the reference (R: the first level of the
factor; for a pandas categorical its first category, otherwise the sorted distinct values as
R's ``factor()`` sorts them). Coefficients and standard errors are Series indexed by
(response level, term), the covariance follows the same order (R's ``vcov`` names
``"level:term"``). ``deviance`` is ``-2 loglik`` and ``aic`` adds twice the number of
coefficients, as ``multinom`` reports them; weights are case counts (R's ``weights``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from neuralglm.data.design import Design, make_design, model_matrix_for
from neuralglm.data.formula import split_formula
from neuralglm.data.frame import to_pandas
from neuralglm.errors import ConvergenceWarning, DataError, SeparationWarning, SpecificationError, warn
from neuralglm.family.family import Gaussian
from neuralglm.fit.info import FitInfo, Status
from neuralglm.fit.multinomial import fit_multinomial, log_probabilities
from neuralglm.inference.significance import wald_table
from neuralglm.results.call import FitCall, no_call_error
from neuralglm.results.summary import format_count, format_p_value

PREDICT_TYPES = ("response", "class", "link")


@dataclass(frozen=True, eq=False)
class MultinomialResult:
    """A fitted baseline-category logit model. Create it with ``ng.glm(formula, data, family="multinomial")``.

    Attributes
    ----------
    levels : the response levels; the first is the reference.
    coef, std_errors : pd.Series with a (response level, term) MultiIndex, levels after the first.
    vcov : pd.DataFrame, the inverse information, in the same order.
    deviance, loglik, aic, bic : ``-2 loglik``, R's ``logLik``, ``AIC`` and ``BIC``.
    edf : number of coefficients, ``(K - 1) × p``; ``n_obs`` : total case weight.
    info : :class:`~neuralglm.fit.info.FitInfo` of the Newton iterations.
    kind : ``"multinomial"``.
    """

    kind: ClassVar[str] = "multinomial"
    formula: str
    response_name: str
    levels: tuple[str, ...]
    coef: pd.Series
    std_errors: pd.Series
    vcov: pd.DataFrame
    deviance: float
    edf: int
    n_obs: float
    info: FitInfo
    design: Design = field(repr=False)
    call: FitCall | None = field(default=None, repr=False)

    @property
    def loglik(self) -> float:
        """R's ``logLik(multinom)``: ``-deviance / 2``."""
        return -self.deviance / 2.0

    @property
    def aic(self) -> float:
        return self.deviance + 2.0 * self.edf

    @property
    def bic(self) -> float:
        return self.deviance + math.log(self.n_obs) * self.edf

    @property
    def coef_matrix(self) -> pd.DataFrame:
        """Coefficients as R prints ``coef(multinom)``: one row per non-reference level, one column per term."""
        return self.coef.unstack().loc[list(self.levels[1:]), list(self.design.column_names)]

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors, Wald z tests and intervals, indexed by (response level, term)."""
        return wald_table(self.coef, self.std_errors, None, level)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence intervals (``lower``, ``upper``), as R's ``confint(multinom)``."""
        return self.coef_table(level)[["lower", "upper"]]

    def predict(self, new_data=None, type: str = "response"):
        """Class probabilities (``"response"``: a DataFrame, one column per level), the most probable
        level (``"class"``) or the linear predictors against the reference (``"link"``).

        Examples
        --------
        >>> import neuralglm as ng
        >>> df = ng.datasets.load_insurance()
        >>> fit = ng.glm("group ~ age", df, family="multinomial")
        >>> probabilities = fit.predict(df.head(2))
        >>> list(probabilities.columns) == list(fit.levels), bool(abs(probabilities.sum(axis=1) - 1).max() < 1e-12)
        (True, True)
        """
        if type not in PREDICT_TYPES:
            raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
        if new_data is None:
            X, index = self.design.X, self.design.row_labels
        else:
            X, _ = model_matrix_for(self.design, new_data)
            index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        coef = self.coef_matrix.to_numpy().T
        if type == "link":
            return pd.DataFrame(X @ coef, index=index, columns=list(self.levels[1:]))
        probabilities = pd.DataFrame(np.exp(log_probabilities(X, coef)), index=index, columns=list(self.levels))
        if type == "class":
            return probabilities.idxmax(axis=1).rename("class")
        return probabilities

    def summary(self, level: float = 0.95) -> MultinomialSummary:
        """R-style summary: the coefficient table per response level, deviance, AIC and the fit's status."""
        return MultinomialSummary(self, self.coef_table(level))

    def save(self, path, *, include_data: bool = False) -> None:
        """Model files do not hold multinomial fits yet; this says so instead of writing a partial file."""
        raise SpecificationError(
            "Multinomial fits cannot be saved to a model file yet; keep the formula and refit, or save fit.coef and fit.vcov."
        )

    def refit(self, data=None, **changes):
        """The same model fitted again on other ``data`` and/or with changed arguments (see ``FitResult.refit``)."""
        if self.call is None:
            raise no_call_error()
        return self.call.replay(data, **changes)


@dataclass(frozen=True)
class MultinomialSummary:
    """Text (``print``) of a multinomial fit; ``coefficients`` is the table as a DataFrame."""

    fit: MultinomialResult
    coefficients: pd.DataFrame

    def __str__(self) -> str:
        fit = self.fit
        lines = [
            f"Multinomial logit model (reference level {fit.levels[0]!r})   Formula: {fit.formula}",
            f"Observations: {format_count(fit.n_obs)}   Coefficients: {fit.edf}   Status: {fit.info.status.label}",
            "",
        ]
        for level in fit.levels[1:]:
            table = self.coefficients.loc[level]
            lines.append(f"{fit.response_name} = {level} vs {fit.levels[0]}:")
            shown = table[["estimate", "std_error", "z_value"]].map(lambda v: f"{v:.5g}")
            shown["p_value"] = table["p_value"].map(format_p_value)
            lines.extend("  " + row for row in shown.to_string().splitlines())
            lines.append("")
        lines.append(f"Residual deviance: {fit.deviance:.6g}   AIC: {fit.aic:.6g}   BIC: {fit.bic:.6g}")
        if not fit.info.converged:
            lines.append(f"Warning: {fit.info.message}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _response_levels(values: pd.Series, name: str) -> tuple[list, np.ndarray]:
    """The levels (R's order) and float codes (NaN where missing) of the response column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        observed = set(values.dropna().unique())
        levels = [level for level in values.cat.categories if level in observed]  # unused levels dropped
    else:
        levels = sorted(values.dropna().unique().tolist())
    if len(levels) < 2:
        raise DataError(f"The response {name!r} of a multinomial model needs at least two levels; it has {len(levels)}.")
    position = {level: code for code, level in enumerate(levels)}
    codes = values.map(lambda v: position.get(v, np.nan)).astype(np.float64).to_numpy()
    return levels, codes


def multinomial_glm(formula, data, *, offset, exposure, weights, freq_weights, missing, max_iter, epsilon):
    """Read the factor response, build the design of the right-hand side and fit by Newton's method."""
    if offset is not None or exposure is not None:
        raise SpecificationError("family='multinomial' takes no offset or exposure (nnet::multinom has none).")
    frame = to_pandas(data)
    lhs, _ = split_formula(formula)
    if lhs not in frame.columns:
        raise DataError(f"The response of a multinomial model must be one column of the data; {lhs!r} is not a column.")
    levels, codes = _response_levels(frame[lhs], lhs)
    # The codes stand in for the response (float, NaN where missing), so that the design's own
    # checks (missing values, weights, row counts) apply to it unchanged.
    frame = frame.assign(**{lhs: codes})  # a new frame: the caller's is untouched
    design = make_design(formula, frame, Gaussian(), weights=weights, freq_weights=freq_weights, missing=missing)
    total = design.total_weights
    solution = fit_multinomial(
        design.X, design.y.astype(np.int64), len(levels), total, design.column_names, max_iter=max_iter, epsilon=epsilon
    )
    names = [str(level) for level in levels]
    index = pd.MultiIndex.from_product([names[1:], list(design.column_names)], names=["level", "term"])
    coef = pd.Series(solution.coef.T.reshape(-1), index=index, name="coef")
    std = pd.Series(np.sqrt(np.diag(solution.covariance)), index=index, name="std_errors")
    if solution.info.status is Status.SEPARATION:
        warn(solution.info.message, SeparationWarning)
    elif not solution.info.converged:
        warn(f"{solution.info.message} Raise max_iter= (now {max_iter}).", ConvergenceWarning)
    return MultinomialResult(
        formula=formula,
        response_name=lhs,
        levels=tuple(names),
        coef=coef,
        std_errors=std,
        vcov=pd.DataFrame(solution.covariance, index=index, columns=index),
        deviance=solution.deviance,
        edf=int(coef.size),
        n_obs=float(total[total > 0].sum()),
        info=solution.info,
        design=design,
    )
