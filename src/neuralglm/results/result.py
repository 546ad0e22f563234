"""The fitted model: a frozen value assembled once by :func:`make_result`.

Attributes are cheap and already computed; anything that costs work (predicting new data,
a summary) is a method with a verb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design, model_matrix_for
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family, Gaussian
from neuralglm.family.link import Identity, Link
from neuralglm.fit.info import FitInfo
from neuralglm.fit.irls import IRLSSolution
from neuralglm.inference import covariance, significance
from neuralglm.results.common import SharedResultMethods, fit_statistics

PREDICT_TYPES = ("response", "link")


@dataclass(frozen=True, eq=False)
class FitResult(SharedResultMethods):
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

    Notes
    -----
    ``loglik`` follows R's ``logLik.glm``: for the Gaussian the dispersion plugged into the
    likelihood is deviance/n (its MLE); for Gamma and inverse Gaussian it is
    deviance/sum(weights); AIC and BIC then count that dispersion as one more parameter.
    statsmodels' ``llf`` differs (it uses the Pearson dispersion for Gamma/IG and does not
    count it in AIC).
    """

    formula: str
    family: Family
    link: Link
    coef: pd.Series
    std_errors: pd.Series
    vcov: pd.DataFrame
    cov_type: str
    deviance: float
    null_deviance: float
    pearson_chi2: float
    loglik: float
    aic: float
    bic: float
    dispersion: float
    dispersion_method: str
    df_model: int
    df_resid: float
    df_null: float
    n_obs: float
    rank: int
    info: FitInfo
    fitted_eta: np.ndarray = field(repr=False)
    fitted_mu: np.ndarray = field(repr=False)
    design: Design = field(repr=False)

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

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence intervals (t-based when the dispersion is estimated), columns ``lower``, ``upper``."""
        table = self.coef_table(level)
        return table[["lower", "upper"]]  # keeps attrs["level"]

    # ---- predictions and residuals -------------------------------------------------------
    def predict(self, new_data=None, type: str = "response", *, offset=None, exposure=None) -> pd.Series:
        """Predictions on the response (``mu``) or link (``eta``) scale, R's ``predict(type=)``.

        ``new_data=None`` returns the fitted values. For new data the design matrix is rebuilt
        from the stored formula; offsets given as column names are re-read from ``new_data``.
        """
        if type not in PREDICT_TYPES:
            raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
        if new_data is None:
            values = self.fitted_mu if type == "response" else self.fitted_eta
            return pd.Series(values, index=self.design.row_labels, name=type)
        X, offset_values = model_matrix_for(self.design, new_data, offset=offset, exposure=exposure)
        eta = X @ self.coef.to_numpy() + offset_values
        index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        if type == "link":
            return pd.Series(eta, index=index, name="link")
        with jax.enable_x64(True):
            mu = np.asarray(self.link.inverse(eta), dtype=np.float64)
        return pd.Series(mu, index=index, name="response")

    def summary(self, level: float = 0.95):
        """An R-style summary: text with ``print()``, HTML in notebooks, ``.coefficients`` as a DataFrame."""
        from neuralglm.results.summary import Summary

        return Summary.from_fit(self, level)

    def __repr__(self) -> str:
        return (
            f"<FitResult {self.family}(link={self.link}) · {self.formula or 'arrays'} · n_obs={self.n_obs:g}, deviance={self.deviance:.6g}>"
        )


def make_result(
    design: Design,
    family: Family,
    link: Link,
    solution: IRLSSolution,
    *,
    dispersion: float | str | None = None,
    cov_type: str = "expected",
) -> FitResult:
    """Assemble a :class:`FitResult` from a design and an IRLS solution (all float64)."""
    y, prior, freq = design.y, design.weights, design.freq_weights
    rank = design.n_coef
    stats = fit_statistics(design, family, link, solution.mu, rank, dispersion)
    unscaled = covariance.unscaled_covariance(cov_type, design.X, y, solution.eta, prior, freq, family, link, solution.factor)
    vcov = unscaled if cov_type == "sandwich" else unscaled * stats.dispersion
    names = list(design.column_names)
    return FitResult(
        formula=design.formula,
        family=family,
        link=link,
        coef=pd.Series(solution.coef, index=names, name="coef"),
        std_errors=pd.Series(np.sqrt(np.diag(vcov)), index=names, name="std_error"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        cov_type=cov_type,
        deviance=stats.deviance,
        null_deviance=stats.null_deviance,
        pearson_chi2=stats.pearson_chi2,
        loglik=stats.loglik,
        aic=stats.aic,
        bic=stats.bic,
        dispersion=stats.dispersion,
        dispersion_method=stats.dispersion_method,
        df_model=rank - int(design.has_intercept),
        df_resid=stats.df_resid,
        df_null=stats.n_obs - int(design.has_intercept),
        n_obs=stats.n_obs,
        rank=rank,
        info=solution.info,
        fitted_eta=solution.eta,
        fitted_mu=solution.mu,
        design=design,
    )
