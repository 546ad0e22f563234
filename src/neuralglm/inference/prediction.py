r"""Standard errors and confidence intervals of GLM predictions, as R's ``predict.glm(se.fit=TRUE)``.

For rows :math:`x_i` (the design matrix of the new data) and the coefficients' covariance
:math:`V` (which already holds the dispersion):

- link scale: :math:`\hat\eta_i = x_i^\top\hat\beta + o_i` and
  :math:`\mathrm{se}(\hat\eta_i) = \sqrt{x_i^\top V x_i}` (the offset is known, so it adds nothing);
- response scale: :math:`\hat\mu_i = g^{-1}(\hat\eta_i)` and, by the delta method,
  :math:`\mathrm{se}(\hat\mu_i) = |d\mu/d\eta|\;\mathrm{se}(\hat\eta_i)`;
- intervals: :math:`\hat\eta_i \pm q\,\mathrm{se}(\hat\eta_i)` on the link scale, mapped
  through :math:`g^{-1}` for the response scale (so they stay inside the mean's domain and are
  asymmetric around :math:`\hat\mu_i`), with :math:`q` a normal quantile when the dispersion
  is known and a Student-t quantile on ``df_resid`` degrees of freedom when it is estimated.

Coefficients that are NaN (aliased columns, which R reports as ``NA``) are left out of the
products, as R's ``predict.lm`` leaves them out.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from scipy import stats

from neuralglm.errors import SpecificationError
from neuralglm.family.link import Link

INTERVALS = ("confidence",)
PREDICTION_COLUMNS = ("fit", "se_fit", "lower", "upper")


def check_level(level, name: str = "level") -> float:
    """``level`` as a float, or :class:`SpecificationError` unless it lies in (0, 1).

    Examples
    --------
    >>> check_level(0.9)
    0.9
    >>> check_level(95)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neuralglm.errors.SpecificationError: The 'level' parameter must be a float in the range (0, 1). Got 95 instead.
    """
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise SpecificationError(f"The '{name}' parameter must be a float in the range (0, 1). Got {level!r} instead.")
    return float(level)


def check_interval(interval) -> None:
    """Raise :class:`SpecificationError` unless ``interval`` is ``None`` or one of :data:`INTERVALS`."""
    if interval is not None and interval not in INTERVALS:
        raise SpecificationError(
            f"The 'interval' parameter of predict must be None or 'confidence'. Got {interval!r} instead. "
            "(A GLM has no R-style prediction interval for a new response; use 'confidence' for the mean.)"
        )


def critical_value(level: float, df_resid: float | None) -> float:
    """The two-sided quantile: normal for ``df_resid=None`` (dispersion known), else Student's t.

    Examples
    --------
    >>> round(critical_value(0.95, None), 6)
    1.959964
    >>> round(critical_value(0.95, 10), 6)
    2.228139
    """
    upper = 0.5 + level / 2.0
    return float(stats.norm.ppf(upper) if df_resid is None else stats.t.ppf(upper, df_resid))


def link_standard_errors(X: np.ndarray, vcov: np.ndarray, coef: np.ndarray) -> np.ndarray:
    r""":math:`\sqrt{\mathrm{diag}(X V X^\top)}` without forming the n × n matrix; NaN coefficients dropped.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [1.0, 2.0]])
    >>> V = np.array([[0.04, 0.01], [0.01, 0.09]])
    >>> link_standard_errors(X, V, np.array([0.5, 1.0])).round(6).tolist()  # sqrt(0.04), sqrt(0.04 + 4·0.01 + 4·0.09)
    [0.2, 0.663325]
    """
    kept = np.isfinite(coef)
    X_kept = np.asarray(X, dtype=np.float64)[:, kept]
    V_kept = np.asarray(vcov, dtype=np.float64)[np.ix_(kept, kept)]
    quadratic = np.einsum("ij,jk,ik->i", X_kept, V_kept, X_kept)
    # Rounding can leave a true 0 (a row of zeros) a hair below it.
    return np.sqrt(np.maximum(quadratic, 0.0))


def linear_predictor(X: np.ndarray, coef: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``X β + offset`` with NaN (aliased) coefficients left out, as R's ``predict.lm``."""
    kept = np.isfinite(coef)
    if kept.all():  # the very product of predict() without se_fit, so that both give the same bits
        return X @ coef + offset
    return np.asarray(X, dtype=np.float64)[:, kept] @ np.asarray(coef, dtype=np.float64)[kept] + offset


def prediction_frame(
    eta: np.ndarray,
    se_eta: np.ndarray,
    link: Link,
    *,
    type: str,
    interval: str | None,
    level: float,
    df_resid: float | None,
    index=None,
) -> pd.DataFrame:
    """The table ``fit, se_fit[, lower, upper]`` on the link or response scale from ``eta`` and its standard errors.

    ``df_resid=None`` uses normal quantiles (dispersion known), a number Student's t.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family.link import Log
    >>> table = prediction_frame(np.array([0.0]), np.array([0.1]), Log(), type="response",
    ...                          interval="confidence", level=0.95, df_resid=None)
    >>> table.round(6).to_dict("records")  # exp(0 ± 1.959964 · 0.1)
    [{'fit': 1.0, 'se_fit': 0.1, 'lower': 0.822015, 'upper': 1.216523}]
    """
    with jax.enable_x64(True):
        if type == "link":
            fit, se = eta, se_eta
        else:
            fit = np.asarray(link.inverse(eta), dtype=np.float64)
            se = np.abs(np.asarray(link.inverse_deriv(eta), dtype=np.float64)) * se_eta
        columns = {"fit": fit, "se_fit": se}
        if interval is not None:
            q = critical_value(level, df_resid)
            ends = (eta - q * se_eta, eta + q * se_eta)
            if type == "response":
                ends = tuple(np.asarray(link.inverse(end), dtype=np.float64) for end in ends)
            # A decreasing inverse link (e.g. Gamma's 1/mu) swaps the ends.
            columns["lower"], columns["upper"] = np.minimum(*ends), np.maximum(*ends)
    table = pd.DataFrame(columns, index=index)
    if interval is not None:
        table.attrs["level"] = level
    return table
