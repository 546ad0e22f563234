r"""``ng.conformal``: prediction intervals with finite-sample coverage from held-out calibration rows.

Split conformal prediction (Vovk et al., 2005; Lei et al., 2018) with the family's own scale:
on calibration rows the score is the Pearson-type residual

.. math:: s_i = |y_i - \mu_i| \,/\, \sqrt{\phi\, V(\mu_i) / w_i},

with the fitted model's dispersion :math:`\phi`, variance function :math:`V` and prior weights
:math:`w` (binomial: trials). With :math:`n` calibration scores and :math:`k = \lceil (n+1)\,
\text{level} \rceil`, :math:`q` is the :math:`k`-th smallest score (infinite when
:math:`k > n`), and a new row gets :math:`\mu \pm q \sqrt{\phi V(\mu)/w}`, clipped to the
family's range of :math:`y`. If calibration and new rows are exchangeable, the interval holds
the new response with probability at least ``level`` whatever the model (and at most
``level + 1/(n+1)`` for continuous responses); the scaling makes the width follow the
family's variance instead of being the same everywhere.

With an exposure (a Poisson rate model) :math:`\mu` is the expected count of the row, so the
interval is on counts and widens with the new row's exposure as :math:`\sqrt{\mu}` does.

Discrete responses (Poisson, binomial counts) are conservative: the event
:math:`|y - \mu| \le q \sqrt{\phi V(\mu)/w}` jumps at the attainable values of :math:`y`,
so coverage is at least ``level`` and can only err upwards: negligibly for expected counts of a
few or more (90.01% at level 0.9 for a Poisson rate network in the test suite, counts ≈ 0.1–25),
by points when most counts are 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd

from neuralglm.bootstrapping import check_level
from neuralglm.errors import DataError, SpecificationError
from neuralglm.evaluate import evaluation_design
from neuralglm.results.common import ResultBase


def _scale(fit: ResultBase, mu: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sqrt(φ·V(μ)/w)``: the standard deviation of y the family assigns to each row."""
    with jax.enable_x64(True):
        variance = np.asarray(fit.family.variance(jax.device_put(np.asarray(mu, np.float64))), dtype=np.float64)
    return np.sqrt(fit.dispersion * variance / weights)


def conformal_quantile(scores: np.ndarray, counts: np.ndarray, level: float) -> float:
    """The ``ceil((n+1)·level)``-th smallest score (each counted ``counts`` times), or inf when that exceeds n.

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 20.0), np.ones(19), 0.9)  # k = ceil(20 · 0.9) = 18
    18.0
    >>> conformal_quantile(np.arange(1.0, 5.0), np.ones(4), 0.9)  # k = 5 > n = 4
    inf
    """
    order = np.argsort(scores, kind="stable")
    cumulative = np.cumsum(counts[order])
    n = cumulative[-1]
    # A little slack so that (n + 1)·level = 18.000000000000004 still gives k = 18.
    k = math.ceil((n + 1) * level - 1e-9)
    if k > n:
        return math.inf
    return float(scores[order][np.searchsorted(cumulative, k)])


def conformal(fit: ResultBase, calibration_data, level: float = 0.9) -> ConformalResult:
    """Split-conformal prediction intervals for ``fit``, calibrated on rows it was not trained on.

    Parameters
    ----------
    fit : a fitted GLM or network.
    calibration_data : rows not used in fitting, with the response (and the offset/exposure and
        weight columns of the fit, read as in training).
    level : coverage of the intervals, in (0, 1).

    Returns
    -------
    ConformalResult
        whose ``predict(new)`` gives ``fit, lower, upper`` on the response scale.

    Raises
    ------
    SpecificationError
        for a bad ``level``; :class:`DataError` for calibration data without usable rows.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:40], family="poisson", exposure="holders")
    >>> bands = ng.conformal(fit, df.iloc[40:], level=0.8).predict(df.head(2))
    >>> bands.columns.tolist(), bool((bands["lower"] <= bands["fit"]).all())
    (['fit', 'lower', 'upper'], True)
    """
    if not isinstance(fit, ResultBase):
        raise SpecificationError(f"The 'fit' parameter of conformal must be a fitted model from ng.glm or ng.fit. Got {fit!r} instead.")
    level = check_level(level, "conformal")
    design = evaluation_design(fit, calibration_data)
    mu = fit.predict(calibration_data, type="response").to_numpy()
    used = design.total_weights > 0
    if not np.any(used):
        raise DataError("The calibration data of conformal have no row with positive weight; pass rows held out from the fit.")
    counts = np.ones(design.n_obs) if design.freq_weights is None else design.freq_weights
    scores = np.abs(design.y - mu)[used] / _scale(fit, mu[used], design.weights[used])
    q = conformal_quantile(scores, counts[used], level)
    return ConformalResult(fit, level, q, scores)


@dataclass(frozen=True, eq=False)
class ConformalResult:
    """Calibrated split-conformal intervals (:func:`conformal`).

    Attributes
    ----------
    fit : the model.
    level : the coverage asked for.
    quantile : the calibrated score quantile ``q`` (inf with too few calibration rows for ``level``).
    scores : the calibration scores, ``|y − μ| / sqrt(φ V(μ)/w)``.
    """

    fit: ResultBase
    level: float
    quantile: float
    scores: np.ndarray = field(repr=False)

    def predict(self, new_data, *, offset=None, exposure=None, weights=None) -> pd.DataFrame:
        """Intervals for new rows: ``fit`` (the mean), ``lower``, ``upper``, on the response scale.

        ``weights`` are the prior weights of the new rows (binomial: trials; default 1, or the
        weights column of the fit when ``new_data`` has it); offsets/exposure are read as in
        ``fit.predict``, and a rate model's interval is on the counts of each row's exposure.
        """
        mu = self.fit.predict(new_data, type="response", offset=offset, exposure=exposure).to_numpy()
        w = self._new_weights(new_data, weights, len(mu))
        half = self.quantile * _scale(self.fit, mu, w)
        domain = self.fit.family.y_domain
        # A binomial y is a proportion of the trials: its range is [0, 1] whatever the weights.
        lower = np.maximum(mu - half, domain.low)
        upper = np.minimum(mu + half, domain.high)
        index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        frame = pd.DataFrame({"fit": mu, "lower": lower, "upper": upper}, index=index)
        frame.attrs["level"] = self.level
        return frame

    def _new_weights(self, new_data, weights, n_rows: int) -> np.ndarray:
        if weights is not None:
            values = np.asarray(weights, dtype=np.float64)
            if values.shape != (n_rows,) or not np.all(np.isfinite(values) & (values > 0)):
                raise DataError(f"The 'weights' of predict must be {n_rows} positive finite numbers, one per row of the new data.")
            return values
        column = self.fit.design.offset_source.weights_column
        if column is not None and isinstance(new_data, pd.DataFrame) and column in new_data:
            return np.asarray(new_data[column], dtype=np.float64)
        return np.ones(n_rows)

    def __repr__(self) -> str:
        return f"<ConformalResult level={self.level:g}, q={self.quantile:.4g} from {len(self.scores)} calibration rows>"


__all__ = ["ConformalResult", "conformal"]
