"""Methods that a fitted GLM and a fitted network share: they read only fields both have."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import partial

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design
from neuralglm.errors import SpecificationError
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.null_model import null_deviance
from neuralglm.fit import rowwise


class SharedResultMethods:
    """Mixed into :class:`~neuralglm.FitResult` and :class:`~neuralglm.NetworkResult`."""

    family: Family
    link: Link
    design: Design
    fitted_mu: np.ndarray

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals of the fit: ``"deviance"``, ``"pearson"``, ``"response"`` or ``"working"`` (R's types).

        Examples
        --------
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ group + age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
        >>> round(float((fit.residuals("deviance") ** 2).sum() - fit.deviance), 8)
        0.0
        """
        if type not in derived.RESIDUAL_KINDS:
            raise SpecificationError(f"Unknown residual type {type!r}; choose one of {', '.join(derived.RESIDUAL_KINDS)}.")
        with jax.enable_x64(True):
            values = derived.residuals(self.family, self.link, self.design.y, self.fitted_mu, self.design.weights, kind=type)
        return pd.Series(np.asarray(values, dtype=np.float64), index=self.design.row_labels, name=type)

    def save(self, path, *, include_data: bool = True) -> None:
        """Save to one ``.npz`` file (arrays + JSON spec, no pickle); read it back with :func:`neuralglm.load`.

        See :func:`neuralglm.results.serialize.save` for ``include_data`` and what can be saved.
        """
        from neuralglm.results.serialize import save

        save(self, path, include_data=include_data)


@dataclass(frozen=True)
class FitStatistics:
    """The likelihood statistics every fitted model reports, in float64."""

    n_obs: float
    df_resid: float
    deviance: float
    null_deviance: float
    pearson_chi2: float
    dispersion: float
    dispersion_method: str
    loglik: float
    aic: float
    bic: float


@partial(jax.jit, static_argnums=(0,))
def _deviance_and_pearson(family: Family, y, mu, weights):
    return derived.deviance(family, y, mu, weights), derived.pearson_chi2(family, y, mu, weights)


@partial(jax.jit, static_argnums=(0,))
def _loglik(family: Family, y, mu, weights, freq_weights, dispersion):
    return (derived.loglik(family, y, mu, weights, dispersion, freq_weights),)


def fit_statistics(design: Design, family: Family, link: Link, mu: np.ndarray, n_params: int, dispersion=None) -> FitStatistics:
    """Deviance, Pearson χ², dispersion, R's loglik/AIC/BIC and counts of a fit with ``n_params`` parameters.

    ``n_obs`` counts rows with positive weight (times their frequency weights); ``dispersion``
    is ``None`` (fixed for Poisson/binomial/negative binomial, else Pearson χ²/df_resid),
    ``"pearson"`` or a finite positive number; NaN where df_resid ≤ 0 leaves nothing to estimate from.
    """
    y, prior, freq = design.y, design.weights, design.freq_weights
    total = design.total_weights
    counted = total > 0
    n_obs = float(np.sum(freq[counted])) if freq is not None else float(np.sum(counted))
    df_resid = n_obs - n_params
    dev, chi2 = rowwise.map_rows(_deviance_and_pearson, (family,), (y, mu, total), zero_padded=(2,))
    if dispersion is None or dispersion == "pearson":
        phi = derived.dispersion_from_pearson(family, chi2, df_resid, quasi=dispersion == "pearson")
        method = "fixed" if dispersion is None and family.fixed_dispersion is not None else "pearson"
    elif isinstance(dispersion, numbers.Real) and not isinstance(dispersion, bool) and 0 < dispersion < math.inf:
        phi, method = float(dispersion), "user"
    else:
        raise SpecificationError(f"dispersion must be None, 'pearson' or a positive number; got {dispersion!r}.")
    with jax.enable_x64(True):
        ll_phi = float(derived.loglik_dispersion(family, dev, total, n_obs))
        # Rows of zero weight count neither in R's logLik (frequency 0) nor can they give NaN (weight 1).
        (ll,) = rowwise.map_rows(
            _loglik,
            (family,),
            (y, mu, np.where(counted, prior, 1.0), np.where(counted, 1.0 if freq is None else freq, 0.0)),
            zero_padded=(3,),
            scalars=(ll_phi,),
        )
        k = derived.n_loglik_params(family, n_params)
        aic = float(derived.aic(ll, k))
        bic = float(derived.bic(ll, k, n_obs))
    null_dev = null_deviance(y, total, design.offset, family, link, design.has_intercept)
    return FitStatistics(n_obs, df_resid, dev, null_dev, chi2, phi, method, ll, aic, bic)
