r"""Profile-likelihood confidence intervals of GLM coefficients (MASS's ``confint.glm``).

For coefficient :math:`j` the profile deviance :math:`D(b)` is the deviance of the fit with
:math:`\beta_j` held at :math:`b`: the other coefficients refitted by IRLS with
:math:`x_j b` moved into the offset. The signed root

.. math:: z(b) = \operatorname{sign}(b - \hat\beta_j)\,\sqrt{(D(b) - \hat D)/\phi}

is referred to the normal quantiles :math:`\pm z_{1-\alpha/2}`, and each end of the interval
is the root of :math:`|z(b)| = z_{1-\alpha/2}` found by :func:`scipy.optimize.brentq` (MASS
evaluates :math:`z` on a grid and interpolates with a spline instead, so the two agree to
MASS's interpolation error).

With the dispersion estimated (Gaussian, Gamma, inverse Gaussian, ``dispersion="pearson"``)
:math:`\phi` is the fit's Pearson estimate held fixed, and :math:`z` (MASS's ``tau``) is still
compared with *normal* quantiles: that is what R 4.2's MASS 7.3 (``confint.profile.glm``,
``cutoff <- qnorm(a)``) does; only the range of its grid uses the F distribution. These
intervals are therefore slightly narrower than the t-based Wald intervals of ``conf_int()``
for small ``df_resid``.
"""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
import pandas as pd
from scipy import optimize, stats

from neuralglm.errors import DataWarning, DivergenceError, warn
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import irls_kernels
from neuralglm.fit.irls import IRLSControl, fit_irls

MAX_STANDARD_ERRORS = 1000.0  # the search for an end stops this many standard errors from the estimate
_SHRINKS = 12  # halvings of a step whose constrained fit fails (e.g. a negative Poisson mean under the identity link)


class _Profile:
    """The constrained fits of one coefficient, remembering their coefficients as warm starts."""

    def __init__(self, X, y, weights, offset, family: Family, link: Link, names: list[str], coef, vcov, j: int, control: IRLSControl):
        self.y, self.weights, self.family, self.link, self.control = y, weights, family, link, control
        self.column = X[:, j]
        self.offset = offset
        self.X_rest = np.ascontiguousarray(np.delete(X, j, axis=1))
        self.names_rest = tuple(name for k, name in enumerate(names) if k != j)
        self.starts: dict[float, np.ndarray] = {float(coef[j]): np.delete(coef, j)}
        self.values: dict[float, float] = {}  # brentq evaluates its bracket's ends again
        # How the other estimates follow β_j to first order (the regression of β_rest on β_j under
        # the estimates' normal approximation): starting each fit there, not at the last fit's
        # values, keeps IRLS from diverging when β_j moves by several standard errors (esoph's intercept).
        self.slope = np.delete(vcov[:, j], j) / vcov[j, j]

    def deviance(self, b: float) -> float:
        """``D(b)``: the deviance with the coefficient held at ``b``; raises DivergenceError where no fit exists."""
        if b in self.values:
            return self.values[b]
        offset = self.offset + self.column * b
        with jax.enable_x64(True):
            if self.X_rest.shape[1] == 0:  # nothing left to refit: the mean is the offset's
                _, value, valid = irls_kernels.evaluate(self.family, self.link, self.y, offset, self.weights)
                if not valid:
                    raise DivergenceError("invalid mean")
                return float(value)
            nearest = min(self.starts, key=lambda known: abs(known - b))
            start = self.starts[nearest] + self.slope * (b - nearest)
            # R's own start (from y) when the warm start fails.
            solution = self._fit(offset, start) or self._fit(offset, None)
            if solution is None:
                raise DivergenceError(f"no converged fit with the coefficient at {b!r}")
            _, value, _ = irls_kernels.evaluate(self.family, self.link, self.y, solution.eta, self.weights)
        self.starts[b], self.values[b] = solution.coef, float(value)
        return float(value)

    def _fit(self, offset: np.ndarray, start: np.ndarray | None):
        """The converged constrained fit, or None; its warnings are not the user's (a failure is retried or reported)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                solution = fit_irls(
                    self.X_rest,
                    self.y,
                    self.weights,
                    offset,
                    self.family,
                    self.link,
                    column_names=self.names_rest,
                    control=self.control,
                    start=start,
                    check_rank=False,
                    progress=False,
                )
            except (DivergenceError, np.linalg.LinAlgError, ArithmeticError):
                return None
        return solution if solution.info.converged else None


class BetterFitError(DivergenceError):
    """A constrained fit beat the unconstrained one: the original fit had not converged (R's profile.glm stops too)."""


def _end(
    profile: _Profile, name: str, estimate: float, se: float, sign: int, cutoff: float, deviance_hat: float, dispersion: float
) -> float:
    """One end of the interval: ``b`` on the ``sign`` side of the estimate with ``|z(b)| = cutoff`` (NaN if none)."""

    def excess(t: float) -> float:  # |z| − cutoff at t standard errors from the estimate
        change = (profile.deviance(estimate + sign * t * se) - deviance_hat) / dispersion
        if change < -1e-3:  # R's tolerance in profile.glm
            raise BetterFitError(
                f"Profiling '{name}' found a smaller deviance than the fit's ({change * dispersion:.6g} lower), so the fit had not "
                "converged: refit with a smaller epsilon or a larger max_iter, then ask for profile intervals again."
            )
        return math.sqrt(max(change, 0.0)) - cutoff

    low, high = 0.0, cutoff  # excess(0) = −cutoff; the first try is the Wald end
    while low < MAX_STANDARD_ERRORS:
        found = _excess_or_none(excess, low, high)
        if found is None:
            break
        value, high = found
        if value >= 0:
            t = high if value == 0 else optimize.root_scalar(excess, bracket=(low, high), method="brentq", xtol=1e-10, rtol=1e-12).root
            return estimate + sign * float(t) * se
        low, high = high, 2.0 * high
    side = "upper" if sign > 0 else "lower"
    warn(
        f"The profile deviance of '{name}' does not reach the cutoff {cutoff:.4g} on the {side} side (within "
        f"{MAX_STANDARD_ERRORS:g} standard errors, or before the mean leaves its domain): its {side} limit is NaN (R's NA). "
        "This happens with separation or zero counts; look at the data of that term.",
        DataWarning,
    )
    return math.nan


def _excess_or_none(excess, low: float, high: float) -> tuple[float, float] | None:
    """``(excess(t), t)`` at ``t = high``, or nearer ``low`` where the constrained fit fails; None if it always fails."""
    for _ in range(_SHRINKS):
        try:
            return excess(high), high
        except BetterFitError:
            raise
        except DivergenceError:
            high = low + (high - low) / 2.0
    return None


def profile_intervals(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    family: Family,
    link: Link,
    coef: pd.Series,
    vcov: np.ndarray,
    dispersion: float,
    level: float = 0.95,
    control: IRLSControl = IRLSControl(),
) -> pd.DataFrame:
    """Profile-likelihood intervals of every coefficient: a DataFrame with columns ``lower``, ``upper``.

    ``weights`` are the total weights (prior × frequency) the fit used; ``vcov`` the
    coefficients' covariance (its diagonal scales the search, its off-diagonal gives each
    constrained fit its start); ``dispersion`` the fit's (1 for Poisson and binomial, else the
    Pearson estimate), held fixed. NaN
    coefficients (aliased) get NaN intervals. Each end costs about ten IRLS fits with one
    column fewer, warm-started from the nearest fit already done.

    Examples
    --------
    >>> import neuralglm as ng
    >>> fit = ng.glm("claims ~ district", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    >>> d = fit.design
    >>> profile_intervals(d.X, d.y, d.total_weights, d.offset, fit.family, fit.link, fit.coef, fit.vcov.to_numpy(), 1.0).round(4)
                lower   upper
    Intercept -2.1714 -2.0184
    district   0.0124  0.0824
    """
    names = [str(name) for name in coef.index]
    beta = coef.to_numpy(dtype=np.float64)
    kept = np.isfinite(beta)
    X_kept, beta_kept = np.asarray(X, dtype=np.float64)[:, kept], beta[kept]
    vcov_kept = np.asarray(vcov, dtype=np.float64)[np.ix_(kept, kept)]
    se_kept = np.sqrt(np.diag(vcov_kept))
    with jax.enable_x64(True):
        _, deviance_hat, _ = irls_kernels.evaluate(family, link, y, X_kept @ beta_kept + offset, weights)
    cutoff = float(stats.norm.ppf(0.5 + level / 2.0))
    kept_names = [name for name, keep in zip(names, kept, strict=True) if keep]
    rows = {name: (math.nan, math.nan) for name in names}
    # No dispersion (df_resid ≤ 0): z is undefined, as the Wald intervals are NaN then.
    for j, name in enumerate(kept_names if math.isfinite(dispersion) and dispersion > 0 else []):
        profile = _Profile(X_kept, y, weights, offset, family, link, kept_names, beta_kept, vcov_kept, j, control)
        lower, upper = (_end(profile, name, beta_kept[j], se_kept[j], sign, cutoff, float(deviance_hat), dispersion) for sign in (-1, 1))
        rows[name] = (lower, upper)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
    table.attrs["level"] = level
    table.attrs["method"] = "profile"
    return table
