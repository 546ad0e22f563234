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
from neuralglm.errors import ConvergenceWarning, DataError, ModelFileError, SeparationWarning, SpecificationError, warn
from neuralglm.family.family import Gaussian
from neuralglm.fit.info import FitInfo, Status
from neuralglm.fit.multinomial import fit_multinomial, log_softmax, null_deviance
from neuralglm.inference.significance import wald_table
from neuralglm.results import formula_state, parts
from neuralglm.results.call import FitCall, no_call_error
from neuralglm.results.common import ModelFileInfo, no_data_error, write_result
from neuralglm.results.model_file import ArrayStore
from neuralglm.results.summary import format_count, format_p_value

PREDICT_TYPES = ("response", "class", "link")
# A numeric response with more distinct values than this is taken for a measurement, not a factor
# (a categorical column may have any number of levels).
MAX_NUMERIC_LEVELS = 50


class MultinomialCriteria:
    """R's ``logLik``, ``AIC`` and ``BIC`` of a multinomial fit with ``_n_estimated`` parameters.

    A multinomial deviance is exactly ``-2 loglik`` (the saturated model's log-likelihood is 0),
    so the three follow from it alone, for the GLM and the network alike.
    """

    deviance: float
    n_obs: float

    @property
    def _n_estimated(self) -> float:
        raise NotImplementedError

    @property
    def loglik(self) -> float:
        """R's ``logLik(multinom)``: ``-deviance / 2``."""
        return -self.deviance / 2.0

    @property
    def aic(self) -> float:
        return self.deviance + 2.0 * self._n_estimated

    @property
    def bic(self) -> float:
        return self.deviance + math.log(self.n_obs) * self._n_estimated


@dataclass(frozen=True, eq=False)
class MultinomialResult(MultinomialCriteria):
    """A fitted baseline-category logit model. Create it with ``ng.glm(formula, data, family="multinomial")``.

    Attributes
    ----------
    levels : the response levels; the first is the reference.
    coef, std_errors : pd.Series with a (response level, term) MultiIndex, levels after the first.
    vcov : pd.DataFrame, the inverse information, in the same order.
    deviance, loglik, aic, bic : ``-2 loglik``, R's ``logLik``, ``AIC`` and ``BIC``.
    null_deviance : that of the intercept-only model, ``multinom(y ~ 1)``.
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
    null_deviance: float
    edf: int
    n_obs: float
    info: FitInfo
    design: Design = field(repr=False)
    call: FitCall | None = field(default=None, repr=False)
    source: ModelFileInfo | None = field(default=None, repr=False)

    @property
    def _n_estimated(self) -> float:
        return self.edf

    @property
    def has_data(self) -> bool:
        """Whether the training data are available (``False`` for a model saved without them)."""
        return self.design.X.shape[0] > 0

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
        X, index = design_matrix(self, new_data)
        return predictions(X @ self.coef_matrix.to_numpy().T, self.levels, index, type)

    def summary(self, level: float = 0.95) -> MultinomialSummary:
        """R-style summary: the coefficient table per response level, deviance, AIC and the fit's status."""
        return MultinomialSummary(self, self.coef_table(level))

    def save(self, path, *, include_data: bool = False) -> None:
        """Save to one ``.npz`` model file, read back by :func:`neuralglm.load` (see ``FitResult.save``).

        Examples
        --------
        >>> import io
        >>> import neuralglm as ng
        >>> df = ng.datasets.load_insurance()
        >>> fit = ng.glm("group ~ age", df, family="multinomial")
        >>> buffer = io.BytesIO()
        >>> fit.save(buffer)
        >>> ng.load(io.BytesIO(buffer.getvalue())).predict(df).equals(fit.predict(df))
        True
        """
        write_result(self, path, include_data)

    def to_dict(self, store: ArrayStore, include_data: bool) -> dict:
        """The model-file form (format 2): JSON values, with the arrays put in ``store``."""
        return {
            **response_to_dict(self),
            "coef": store.put("coef", self.coef.to_numpy()),
            "vcov": store.put("vcov", self.vcov.to_numpy()),
            "deviance": float(self.deviance),
            "null_deviance": float(self.null_deviance),
            "n_obs": float(self.n_obs),
            "info": parts.info_to_dict(self.info, store, "info"),
            "design": parts.design_to_dict(self.design, store, "design", include_data),
        }

    @classmethod
    def from_dict(cls, node: dict, store: ArrayStore, source: ModelFileInfo) -> MultinomialResult:
        """Rebuild from :meth:`to_dict`, checking every entry (:class:`ModelFileError` naming the first bad one)."""
        design = parts.design_from_dict(parts.field(node, "design", dict, "result"), store)
        levels = parts.levels_from_dict(node)
        index = coefficient_index(levels, design.column_names)
        coef = store.get(parts.field(node, "coef", str, "result"), shape=(len(index),))
        vcov = store.get(parts.field(node, "vcov", str, "result"), ndim=2, shape=(len(index), len(index)))
        return cls(
            formula=parts.field(node, "formula", str, "result"),
            response_name=parts.field(node, "response_name", str, "result"),
            levels=levels,
            coef=pd.Series(coef, index=index, name="coef"),
            std_errors=pd.Series(np.sqrt(np.diag(vcov)), index=index, name="std_errors"),
            vcov=pd.DataFrame(vcov, index=index, columns=index),
            deviance=float(parts.field(node, "deviance", (int, float), "result")),
            null_deviance=float(parts.field(node, "null_deviance", (int, float), "result")),
            edf=len(index),
            n_obs=float(parts.field(node, "n_obs", (int, float), "result")),
            info=parts.info_from_dict(parts.field(node, "info", dict, "result"), store),
            design=design,
            source=source,
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
        if fit.source is not None:
            lines.append(fit.source.describe())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def coefficient_index(levels, terms) -> pd.MultiIndex:
    """The (response level, term) index of the coefficients: the levels after the reference, level-major."""
    return pd.MultiIndex.from_product([list(levels[1:]), list(terms)], names=["level", "term"])


def design_matrix(fit, new_data) -> tuple[np.ndarray, object]:
    """The design matrix and row index of ``new_data``, or of the training rows (``None``)."""
    if new_data is None:
        if not fit.has_data:
            raise no_data_error("predict() without new data")
        return fit.design.X, fit.design.row_labels
    if fit.source is not None and fit.design.spec is not None:  # a loaded formula is checked before it meets data
        formula_state.check_formula(fit.design.spec, ModelFileError)
    X, _ = model_matrix_for(fit.design, new_data)
    return X, new_data.index if isinstance(new_data, pd.DataFrame) else None


def predictions(eta: np.ndarray, levels, index, type: str):
    """From the (n, K−1) logits against the reference: the probabilities (a DataFrame, one column per level),
    the most probable level (``"class"``) or the logits themselves (``"link"``)."""
    if type not in PREDICT_TYPES:
        raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
    if type == "link":
        return pd.DataFrame(eta, index=index, columns=list(levels[1:]))
    probabilities = pd.DataFrame(np.exp(log_softmax(eta)), index=index, columns=list(levels))
    if type == "class":
        return probabilities.idxmax(axis=1).rename("class")
    return probabilities


def response_to_dict(fit) -> dict:
    """The entries every multinomial model file holds: its formula and response levels."""
    return {"formula": fit.formula, "response_name": fit.response_name, "levels": list(fit.levels)}


def _response_levels(values: pd.Series, name: str) -> tuple[list, np.ndarray]:
    """The levels (R's order) and float codes (NaN where missing) of the response column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        observed = set(values.dropna().unique())
        levels = [level for level in values.cat.categories if level in observed]  # unused levels dropped
    else:
        levels = sorted(values.dropna().unique().tolist())
        _refuse_measurement(levels, values, name)
    if len(levels) < 2:
        raise DataError(
            f"The response {name!r} of a multinomial model needs at least two levels; it has {len(levels)} "
            f"({', '.join(map(repr, levels[:1]))}). Check the rows selected, or model the response with another family."
        )
    position = {level: code for code, level in enumerate(levels)}
    codes = values.map(lambda v: position.get(v, np.nan)).astype(np.float64).to_numpy()
    return levels, codes


def _refuse_measurement(levels: list, values: pd.Series, name: str) -> None:
    """A numeric response with fractional values or very many distinct values is a measurement, not a factor: say so."""
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return
    fractional = [v for v in levels if not float(v).is_integer()]
    if fractional or len(levels) > MAX_NUMERIC_LEVELS:
        why = f"non-integer values such as {fractional[0]!r}" if fractional else f"{len(levels)} distinct values"
        raise DataError(
            f"The response {name!r} of a multinomial model is numeric with {why}: a multinomial response is a factor "
            "(one category per row). For a numeric response use another family (e.g. 'gaussian', 'poisson'); if the "
            f"values are category labels, convert the column first: df[{name!r}] = df[{name!r}].astype('category')."
        )


def multinomial_design(formula, data, *, offset, exposure, weights, freq_weights, missing) -> tuple[Design, tuple[str, ...], str]:
    """The design of a multinomial model (GLM or network): the response coded 0 … K−1, its levels and its name."""
    if offset is not None or exposure is not None:
        raise SpecificationError(
            "family='multinomial' takes no offset or exposure (nnet::multinom has none); drop offset=/exposure=, or put "
            "the variable in the formula as a covariate."
        )
    frame = to_pandas(data)
    lhs, _ = split_formula(formula)
    if lhs not in frame.columns:
        raise DataError(f"The response of a multinomial model must be one column of the data; {lhs!r} is not a column.")
    levels, codes = _response_levels(frame[lhs], lhs)
    # The codes stand in for the response (float, NaN where missing), so that the design's own
    # checks (missing values, weights, row counts) apply to it unchanged.
    frame = frame.assign(**{lhs: codes})  # a new frame: the caller's is untouched
    design = make_design(formula, frame, Gaussian(), weights=weights, freq_weights=freq_weights, missing=missing)
    if design.offset_source.any or np.any(design.offset != 0.0):
        raise SpecificationError(
            "family='multinomial' takes no offset (nnet::multinom has none); remove the offset() term from the formula, "
            "or enter the variable as a covariate."
        )
    return design, tuple(str(level) for level in levels), lhs


def multinomial_glm(formula, data, *, offset, exposure, weights, freq_weights, missing, max_iter, epsilon):
    """Read the factor response, build the design of the right-hand side and fit by Newton's method."""
    design, levels, lhs = multinomial_design(
        formula, data, offset=offset, exposure=exposure, weights=weights, freq_weights=freq_weights, missing=missing
    )
    total, codes = design.total_weights, design.y.astype(np.int64)
    solution = fit_multinomial(design.X, codes, len(levels), total, design.column_names, max_iter=max_iter, epsilon=epsilon)
    index = coefficient_index(levels, design.column_names)
    coef = pd.Series(solution.coef.T.reshape(-1), index=index, name="coef")
    std = pd.Series(np.sqrt(np.diag(solution.covariance)), index=index, name="std_errors")
    if solution.info.status is Status.SEPARATION:
        warn(solution.info.message, SeparationWarning)
    elif not solution.info.converged:
        warn(f"{solution.info.message} Raise max_iter= (now {max_iter}).", ConvergenceWarning)
    return MultinomialResult(
        formula=formula,
        response_name=lhs,
        levels=levels,
        coef=coef,
        std_errors=std,
        vcov=pd.DataFrame(solution.covariance, index=index, columns=index),
        deviance=solution.deviance,
        null_deviance=null_deviance(codes, total, len(levels), design.has_intercept),
        edf=int(coef.size),
        n_obs=float(total[total > 0].sum()),
        info=solution.info,
        design=design,
    )


def refuse_dispersion_settings(dispersion, cov_type: str) -> None:
    """A multinomial model has no dispersion and one covariance (nnet::multinom's): other settings are refused, not ignored."""
    if dispersion is not None:
        raise SpecificationError(
            f"family='multinomial' has no dispersion (the multinomial variance is fixed by the probabilities); got dispersion={dispersion!r}. Leave it at None."
        )
    if cov_type != "expected":
        raise SpecificationError(
            f"family='multinomial' reports the expected (Fisher) covariance only, as nnet::multinom; got cov_type={cov_type!r}. Leave it at 'expected'."
        )
