"""The fitted model: a frozen value assembled once by :func:`make_result`.

Attributes are cheap and already computed; anything that costs work (predicting new data,
a summary) is a method with a verb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design, design_from_arrays
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family, Gaussian
from neuralglm.family.link import Identity, Link
from neuralglm.fit.family_parameter import ParameterEstimate
from neuralglm.fit.info import FitInfo
from neuralglm.fit.irls import IRLSControl, IRLSSolution, fit_irls
from neuralglm.inference import covariance, prediction, profile, significance
from neuralglm.results import parts
from neuralglm.results.call import FitCall
from neuralglm.results.common import PREDICT_TYPES, FitStatistics, Fitted, ModelFileInfo, ResultBase, fit_statistics
from neuralglm.results.model_file import ArrayStore

__all__ = ["PREDICT_TYPES", "FitResult", "make_result"]


@dataclass(frozen=True, eq=False)
class FitResult(ResultBase):
    """A fitted GLM. Create it with :func:`neuralglm.glm`.

    Attributes
    ----------
    coef, std_errors : pd.Series indexed by design column.
    vcov : pd.DataFrame, the covariance of ``coef`` (``cov_type``).
    deviance, null_deviance, pearson_chi2 : float.
    loglik, aic, bic : R's ``logLik``, ``AIC``, ``BIC`` (see Notes).
    dispersion : 1 for Poisson/binomial/negative binomial, else Pearson χ²/df_resid.
    df_model, df_resid, df_null, n_obs, rank : degrees of freedom and counts.
    info : :class:`~neuralglm.fit.info.FitInfo` (``converged``, ``n_iter``, ``history``).
    statistics : the :class:`~neuralglm.results.common.FitStatistics` behind ``deviance``, ``aic``, ...
    fitted_eta, fitted_mu : the fitted values (a model saved without data raises asking for them).
    family_params : pd.DataFrame of the family's estimated parameters, indexed by name
        (``theta`` of ``"negative_binomial"``, ``power`` of ``"tweedie(estimate)"``), columns
        ``estimate``, ``std_error`` (R's ``SE.theta``); empty when none is estimated. ``family``
        then holds the estimate (``negative_binomial(1/θ̂)``), and ``loglik``/``aic``/``bic``
        count it as a parameter, as ``MASS::glm.nb``.
    kind : ``"glm"``.

    Notes
    -----
    ``loglik`` follows R's ``logLik.glm``: for the Gaussian the dispersion plugged into the
    likelihood is deviance/n (its MLE); for Gamma and inverse Gaussian it is
    deviance/sum(weights); AIC and BIC then count that dispersion as one more parameter.
    statsmodels' ``llf`` differs (it uses the Pearson dispersion for Gamma/IG and does not
    count it in AIC).
    """

    kind: ClassVar[str] = "glm"
    formula: str
    family: Family
    link: Link
    coef: pd.Series
    std_errors: pd.Series
    vcov: pd.DataFrame
    cov_type: str
    statistics: FitStatistics = field(repr=False)
    df_model: int
    df_null: float
    rank: int
    info: FitInfo
    design: Design = field(repr=False)
    fitted: Fitted | None = field(repr=False)
    source: ModelFileInfo | None = field(default=None, repr=False)
    family_params: pd.DataFrame = field(default_factory=lambda: parts.family_params_frame([]), repr=False)
    call: FitCall | None = field(default=None, repr=False)

    # ---- statistics -------------------------------------------------------------------
    @property
    def uses_t(self) -> bool:
        """Whether tests use Student's t (dispersion estimated) rather than the normal."""
        return self.dispersion_method == "pearson"

    @property
    def r_squared(self) -> float | None:
        """R² (Gaussian identity only; 1 − deviance/null deviance, as ``summary.lm``)."""
        if not self._is_linear_model:
            return None
        return 1.0 - self.deviance / self.null_deviance

    @property
    def adj_r_squared(self) -> float | None:
        """Adjusted R², ``1 − (1 − R²)·df_null/df_resid`` (Gaussian identity only)."""
        r2 = self.r_squared
        if r2 is None:
            return None
        return 1.0 - (1.0 - r2) * self.df_null / self.df_resid

    @property
    def f_statistic(self) -> tuple[float, int, float] | None:
        """(F, df_model, df_resid) of the overall regression F test (Gaussian identity only)."""
        if not self._is_linear_model or self.df_model == 0:
            return None
        value = ((self.null_deviance - self.deviance) / self.df_model) / (self.deviance / self.df_resid)
        return float(value), int(self.df_model), float(self.df_resid)

    @property
    def _is_linear_model(self) -> bool:
        return isinstance(self.family, Gaussian) and isinstance(self.link, Identity)

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates with standard errors, z or t values, p-values and Wald intervals.

        Examples
        --------
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
        ...              family="poisson", exposure="holders")
        >>> list(fit.coef_table().columns)[:4]
        ['estimate', 'std_error', 'z_value', 'p_value']
        """
        return significance.wald_table(self.coef, self.std_errors, self.df_resid if self.uses_t else None, level)

    def conf_int(self, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Confidence intervals of the coefficients, columns ``lower``, ``upper`` (``attrs["level"]``).

        ``method="wald"`` (the default): estimate ± quantile × standard error, t-based when the
        dispersion is estimated (R's ``confint.default`` with ``summary.glm``'s t). ``"profile"``:
        profile-likelihood intervals, R's ``confint(fit)`` (MASS's ``confint.glm``): each end is
        where the signed root deviance ``sign(b − β̂)·sqrt((D(b) − D̂)/φ)`` of the fit with the
        coefficient held at ``b`` (the others refitted by IRLS) reaches the normal quantile,
        found by root finding rather than MASS's grid. With an estimated dispersion φ is the
        fit's Pearson estimate and the quantile is still normal, as in R 4.2's MASS (see
        :mod:`neuralglm.inference.profile`). Profiling needs the training data.

        Examples
        --------
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ district", ng.datasets.load_insurance(), family="poisson", exposure="holders")
        >>> fit.conf_int(method="profile").round(4)  # R: confint(fit)
                    lower   upper
        Intercept -2.1714 -2.0184
        district   0.0124  0.0824
        >>> fit.conf_int().round(4)  # R: confint.default(fit)
                    lower   upper
        Intercept -2.1711 -2.0180
        district   0.0125  0.0826
        """
        if method == "wald":
            table = self.coef_table(level)
            return table[["lower", "upper"]]  # keeps attrs["level"]
        if method != "profile":
            raise SpecificationError(f"The 'method' parameter of conf_int must be 'wald' or 'profile'. Got {method!r} instead.")
        level = prediction.check_level(level)
        self.require_data("conf_int(method='profile')")
        d = self.design
        args = (d.checked_X(), d.y, d.total_weights, d.offset, self.family, self.link, self.coef, self.vcov.to_numpy(), self.dispersion)
        return profile.profile_intervals(*args, level=level)

    # ---- the predictor -------------------------------------------------------------------------
    def _linear_predictor(self, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return X @ self.coef.to_numpy() + offset

    def _prediction_covariance(self) -> tuple[np.ndarray, np.ndarray, float | None]:
        # t quantiles exactly when the coefficient tests use t (dispersion estimated).
        return self.coef.to_numpy(), self.vcov.to_numpy(), (self.df_resid if self.uses_t else None)

    def _mean(self, eta: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            return np.asarray(self.link.inverse(eta), dtype=np.float64)

    def summary(self, level: float = 0.95):
        """An R-style summary: text with ``print()``, HTML in notebooks, ``.coefficients`` as a DataFrame."""
        from neuralglm.results.summary import Summary

        summary = Summary.from_fit(self, level)
        return self._with_file_line(summary)

    # ---- model files ---------------------------------------------------------------------------
    def to_dict(self, store: ArrayStore, include_data: bool) -> dict:
        """The model-file form (format 2): JSON values, with the arrays put in ``store``."""
        node = {
            "formula": self.formula,
            "family": parts.family_string(self.family),
            "link": parts.link_string(self.link),
            "coef": parts.series_to_dict(self.coef, store, "coef"),
            "std_errors": parts.series_to_dict(self.std_errors, store, "std_errors"),
            "vcov": store.put("vcov", self.vcov.to_numpy()),
            "cov_type": self.cov_type,
            "statistics": self.statistics.to_dict(),
            "df_model": int(self.df_model),
            "df_null": float(self.df_null),
            "rank": int(self.rank),
            "info": parts.info_to_dict(self.info, store, "info"),
            "design": parts.design_to_dict(self.design, store, "design", include_data),
            "fitted": fitted_to_dict(self.fitted, store, include_data),
            "family_params": parts.family_params_to_dict(self.family_params),
        }
        return node

    @classmethod
    def from_dict(cls, node: dict, store: ArrayStore, source: ModelFileInfo) -> FitResult:
        """Rebuild from :meth:`to_dict`, checking every entry (:class:`ModelFileError` naming the first bad one)."""
        design = parts.design_from_dict(parts.field(node, "design", dict, "result"), store)
        names = list(design.column_names)
        coef = parts.series_from_dict(parts.field(node, "coef", dict, "result"), store, "coef", names)
        vcov = store.get(parts.field(node, "vcov", str, "result"), ndim=2, shape=(len(names), len(names)))
        family = parts.family_from(node.get("family"))
        return cls(
            formula=parts.field(node, "formula", str, "result"),
            family=family,
            link=parts.link_from(node.get("link")),
            coef=coef.rename("coef"),
            std_errors=parts.series_from_dict(parts.field(node, "std_errors", dict, "result"), store, "std_errors", names),
            vcov=pd.DataFrame(vcov, index=names, columns=names),
            cov_type=parts.field(node, "cov_type", str, "result"),
            statistics=FitStatistics.from_dict(parts.field(node, "statistics", dict, "result")),
            df_model=parts.field(node, "df_model", int, "result"),
            df_null=float(parts.field(node, "df_null", (int, float), "result")),
            rank=parts.field(node, "rank", int, "result"),
            info=parts.info_from_dict(parts.field(node, "info", dict, "result"), store),
            design=design,
            fitted=fitted_from_dict(parts.field(node, "fitted", (dict, type(None)), "result"), store, design.n_obs),
            source=source,
            family_params=parts.family_params_from_dict(node.get("family_params"), family),
        )

    def __repr__(self) -> str:
        return (
            f"<FitResult {self.family}(link={self.link}) · {self.formula or 'arrays'} · n_obs={self.n_obs:g}, deviance={self.deviance:.6g}>"
        )


_Result = TypeVar("_Result", bound=FitResult)


def make_result(
    design: Design,
    family: Family,
    link: Link,
    solution: IRLSSolution,
    *,
    dispersion: float | str | None = None,
    cov_type: str = "expected",
    family_params: ParameterEstimate | None = None,
) -> FitResult:
    """Assemble a :class:`FitResult` from a design and an IRLS solution (all float64).

    ``family_params`` is the estimate of the family's parameter when it was estimated
    (``family`` is then the family at that estimate).
    """
    y, prior, freq = design.y, design.weights, design.freq_weights
    rank = design.n_coef
    estimates = [] if family_params is None else [family_params]
    stats = fit_statistics(design, family, link, solution.mu, rank, dispersion, n_family_params=len(estimates))
    unscaled = covariance.unscaled_covariance(cov_type, design.X, y, solution.eta, prior, freq, family, link, solution.factor)
    vcov = unscaled if cov_type == "sandwich" else unscaled * stats.dispersion
    fitted = Fitted(solution.eta, solution.mu)
    return assemble_fit_result(FitResult, design, family, link, solution.coef, vcov, stats, solution.info, cov_type, fitted, estimates)


def assemble_fit_result(
    result_type: type[_Result],
    design: Design,
    family: Family,
    link: Link,
    coef: np.ndarray,
    vcov: np.ndarray,
    statistics: FitStatistics,
    info: FitInfo,
    cov_type: str,
    fitted: Fitted | None,
    estimates: list[ParameterEstimate],
    **extra,
) -> _Result:
    """A :class:`FitResult` (or subclass, with its ``extra`` fields) from coefficients, their covariance and statistics.

    One constructor for the in-memory and the streamed fit, so that both label and count alike.
    """
    names = list(design.column_names)
    rank = design.n_coef
    return result_type(
        formula=design.formula,
        family=family,
        link=link,
        coef=pd.Series(coef, index=names, name="coef"),
        std_errors=pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        cov_type=cov_type,
        statistics=statistics,
        df_model=rank - int(design.has_intercept),
        df_null=statistics.n_obs - int(design.has_intercept),
        rank=rank,
        info=info,
        design=design,
        fitted=fitted,
        family_params=parts.family_params_frame(estimates),
        **extra,
    )


def fitted_to_dict(fitted: Fitted | None, store: ArrayStore, include_data: bool) -> dict | None:
    """The fitted values' model-file entry: ``None`` unless the training data are saved with them."""
    if not include_data or fitted is None:
        return None
    return {"eta": store.put("fitted.eta", fitted.eta), "mu": store.put("fitted.mu", fitted.mu)}


def fitted_from_dict(node: dict | None, store: ArrayStore, n_obs: int) -> Fitted | None:
    """The fitted values of a model file (``None`` when saved without data), one per training row."""
    if node is None:
        return None
    eta = store.get(parts.field(node, "eta", str, "fitted"), shape=(n_obs,))
    mu = store.get(parts.field(node, "mu", str, "fitted"), shape=(n_obs,))
    return Fitted(eta.astype(np.float64), mu.astype(np.float64))


def refit_glm(X: np.ndarray, names: list[str], design: Design, family: Family, link: Link, *, cov_type: str, dispersion=None) -> FitResult:
    """A GLM fitted by IRLS to the matrix ``X`` with the response, weights and offset of ``design`` (as ``ng.glm_fit``)."""
    covariance.check_cov_type(cov_type)
    refit = design_from_arrays(
        X, design.y, column_names=names, weights=design.weights, freq_weights=design.freq_weights, offset=design.offset, family=family
    )
    solution = fit_irls(
        refit.X,
        refit.y,
        refit.total_weights,
        refit.offset,
        family,
        link,
        column_names=refit.column_names,
        control=IRLSControl(),
        progress=False,
    )
    return make_result(refit, family, link, solution, dispersion=dispersion, cov_type=cov_type)
