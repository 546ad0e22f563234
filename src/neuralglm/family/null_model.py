"""The null model: the intercept-only GLM with the offset, and its deviance (R's null deviance).

Without an offset the intercept-only fit is closed form, g(weighted mean of y). With one it
is fitted by Fisher scoring on the single intercept, which is IRLS on a column of ones with
the weighted least-squares solve written out: from R's starting means, each step is
β ← Σ W z / Σ W with the working weights W and working response z (offset removed) at the
current mean. Everything runs in float64 over row chunks (:mod:`neuralglm.family.rowwise`),
so the kernels compile once per family and link.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.errors import ConvergenceWarning, DivergenceError, warn
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.rowwise import map_rows

_Payload = TypeVar("_Payload")


@partial(jax.jit, static_argnums=(0, 1))
def _fisher_kernel(family: Family, link: Link, y, eta, offset, weights):
    """Σ W·z, Σ W, the deviance and its validity at η (per chunk; summed by map_rows)."""
    mu = link.inverse(eta)
    working = derived.irls_weights(family, link, mu, weights)
    z = derived.working_response(link, eta, y, mu, offset)
    dev = derived.deviance(family, y, mu, weights)
    valid = jnp.all(link.eta_in_domain(eta)) & jnp.all(family.mu_domain.contains(mu)) & jnp.isfinite(dev)
    return jnp.sum(working * z), jnp.sum(working), dev, valid


@partial(jax.jit, static_argnums=(0, 1))
def _start_kernel(family: Family, link: Link, y, weights):
    return (link(family.starting_mu(y, weights)),)


@partial(jax.jit, static_argnums=(0,))
def _mean_kernel(link: Link, eta):
    return (link.inverse(eta),)


@partial(jax.jit, static_argnums=(0,))
def _deviance_kernel(family: Family, y, mu, weights):
    return (derived.deviance(family, y, mu, weights),)


def deviance(family: Family, y, mu, weights) -> float:
    """The deviance ``Σ w·d(y, μ)`` in float64, evaluated in row chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Gaussian
    >>> deviance(Gaussian(), np.array([1.0, 3.0]), np.array([2.0, 2.0]), np.ones(2))
    2.0
    """
    return map_rows(_deviance_kernel, (family,), (y, mu, weights), zero_padded=(2,))[0]


def fisher_sums(family: Family, link: Link, y, eta, offset, weights) -> tuple[float, float, float, bool]:
    """Σ W·z, Σ W, the deviance and whether η and μ are valid, at η: one Fisher-scoring step's sums (also per block of rows)."""
    return map_rows(_fisher_kernel, (family, link), (y, eta, offset, weights), zero_padded=(3,))


def _fisher(family: Family, link: Link, y, eta, offset, weights) -> tuple[float, float, float, bool]:
    weighted_z, total, dev, valid = fisher_sums(family, link, y, eta, offset, weights)
    return weighted_z, total, dev, valid and math.isfinite(dev) and math.isfinite(weighted_z) and total > 0


def intercept_only(
    y, weights, offset, family: Family, link: Link, *, max_iter: int = 100, max_halvings: int = 30, step_tol_se: float = 1e-10
) -> float:
    """Intercept of the intercept-only GLM with the offset (R's null model), on the link scale.

    Parameters
    ----------
    y, weights, offset : (n_obs,) response, total weights (prior × frequency), offset.
    family, link : the model.
    max_iter : Fisher-scoring iterations before giving up with a
        :class:`~neuralglm.errors.ConvergenceWarning` (the default fits in a handful).
    max_halvings : step halvings per iteration while the means are invalid.
    step_tol_se : the fit stops when a step is below this many standard errors of the
        intercept (1/√ΣW): 1e-10 is beyond what the 1e-9 SE stopping rule of the full IRLS fit
        can tell apart. A step that stops shrinking (after the third iteration) is rounding
        noise and also ends the fit.

    Returns
    -------
    float
        The maximum-likelihood intercept: g(weighted mean of y) without an offset; with one,
        the Fisher-scoring fit described in the module docstring.

    Raises
    ------
    DivergenceError
        if no intercept gives valid means (e.g. an identity link that the offset pushes out of
        the family's range).

    Warns
    -----
    ConvergenceWarning
        if ``max_iter`` iterations end before the stopping rule: the intercept, and the null
        deviance computed from it, may be inaccurate.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Poisson
    >>> from neuralglm.family.link import Log
    >>> y, w = np.array([1.0, 2.0, 6.0]), np.ones(3)
    >>> round(intercept_only(y, w, np.zeros(3), Poisson(), Log()), 6) == round(float(np.log(3.0)), 6)
    True
    >>> # With an exposure, a Poisson rate model's intercept is log(Σy / Σexposure).
    >>> exposure = np.array([1.0, 2.0, 3.0])
    >>> round(intercept_only(y, w, np.log(exposure), Poisson(), Log()), 10) == round(float(np.log(9.0 / 6.0)), 10)
    True
    """
    with jax.enable_x64(True):
        y, weights, offset = (np.asarray(v, dtype=np.float64) for v in (y, weights, offset))
        if not np.any(offset):
            return float(link(np.sum(weights * y) / np.sum(weights)))
        (eta,) = map_rows(_start_kernel, (family, link), (y, weights), zero_padded=(1,))

        def evaluate(beta: float | None) -> tuple[float, float, bool, None]:
            weighted_z, total, _, valid = _fisher(family, link, y, eta if beta is None else offset + beta, offset, weights)
            return weighted_z, total, valid, None

        def fallback() -> float:
            return float(link(np.sum(weights * y) / np.sum(weights))) - float(np.average(offset, weights=weights))

        consequence = (
            "so the null deviance and the deviance explained computed from it may be inaccurate; check the offset for extreme values."
        )
        beta, _ = fisher_scoring_intercept(
            evaluate, fallback, family, link, max_iter=max_iter, max_halvings=max_halvings, step_tol_se=step_tol_se, consequence=consequence
        )
        return beta


def fisher_scoring_intercept(
    evaluate: Callable[[float | None], tuple[float, float, bool, _Payload]],
    fallback: Callable[[], float],
    family: Family,
    link: Link,
    *,
    max_iter: int,
    max_halvings: int,
    step_tol_se: float,
    consequence: str,
) -> tuple[float, _Payload]:
    """The Fisher-scoring loop of :func:`intercept_only`, over rows in memory or read in passes.

    ``evaluate(beta)`` gives Σ W·z, Σ W, whether the means are valid, and anything else the
    caller keeps (the streamed fit: the pass's sums), at the intercept ``beta`` (``None``: the
    starting means). An invalid proposal is halved towards the last intercept, or, from the
    starting means, towards ``fallback()`` (g(weighted mean of y) − weighted mean of the offset).
    Returns the intercept and ``evaluate``'s payload there; ``consequence`` ends the warning
    given when ``max_iter`` iterations end before the stopping rule.
    """
    weighted_z, total, valid, payload = evaluate(None)
    beta: float | None = None
    last_step = step_in_se = math.inf
    for iteration in range(1, max_iter + 1):
        if not valid:
            raise _no_valid_intercept(family, link)
        proposal = weighted_z / total
        next_z, next_total, valid, payload = evaluate(proposal)
        if not valid:
            previous = fallback() if beta is None else beta
            for _ in range(max_halvings):
                proposal = (proposal + previous) / 2.0
                next_z, next_total, valid, payload = evaluate(proposal)
                if valid:
                    break
            else:
                raise _no_valid_intercept(family, link)
        step = math.inf if beta is None else abs(proposal - beta)
        beta = proposal
        step_in_se = step * math.sqrt(total)
        if step_in_se < step_tol_se or (iteration > 3 and step >= last_step):
            break
        last_step = step
        weighted_z, total = next_z, next_total
    else:
        warn(
            f"The intercept-only model (the null model) did not converge in {max_iter} Fisher-scoring iterations "
            f"(last step {step_in_se:.2e} standard errors of the intercept), {consequence}",
            ConvergenceWarning,
        )
    assert beta is not None
    return beta, payload


def _no_valid_intercept(family: Family, link: Link) -> DivergenceError:
    return DivergenceError(
        f"The intercept-only model (the null model) has no valid fit: with this offset the {link} link gives means outside "
        f"the {family} family's range. Use the family's default link ('{family.default_link}'), or check the offset."
    )


def null_deviance(y, weights, offset, family: Family, link: Link, has_intercept: bool) -> float:
    """Deviance of the model with only the intercept (and the offset), as R's ``glm.fit`` reports it.

    Without an intercept the null model is the offset alone.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.family import Gaussian
    >>> from neuralglm.family.link import Identity
    >>> y = np.array([1.0, 2.0, 6.0])
    >>> null_deviance(y, np.ones(3), np.zeros(3), Gaussian(), Identity(), has_intercept=True)
    14.0
    """
    with jax.enable_x64(True):
        if has_intercept and not np.any(offset):
            return deviance(family, y, np.full_like(y, np.sum(weights * y) / np.sum(weights)), weights)
        eta = offset + intercept_only(y, weights, offset, family, link) if has_intercept else np.asarray(offset, dtype=np.float64)
        (mu,) = map_rows(_mean_kernel, (link,), (eta,))
        return deviance(family, y, mu, weights)
