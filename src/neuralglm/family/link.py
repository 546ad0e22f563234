"""Link functions g: mean mu -> linear predictor eta = g(mu).

Every link is a frozen, hashable dataclass (so it can be a ``jax.jit`` static argument) with
``__call__`` (g), ``inverse`` (g⁻¹), ``deriv`` (g′(mu)) and ``inverse_deriv`` (dmu/deta).
Only what cannot be derived is written; ``inverse_deriv`` defaults to ``1 / deriv(inverse(eta))``.
All functions are pure ``jax.numpy`` code and work elementwise on arrays of any shape.

The clamps on the inverses of the binomial links follow R's ``make.link`` (mu is kept at least
machine epsilon away from 0 and 1), so fits that approach separation behave as in R.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from neuralglm.errors import SpecificationError
from neuralglm.family.interval import is_finite_real

_EPS = 2.220446049250313e-16  # R's .Machine$double.eps, used by R's link clamps


@dataclass(frozen=True)
class Link:
    """Base class: a link g with inverse and derivatives.

    Examples
    --------
    >>> import neuralglm as ng
    >>> float(ng.links.Log()(1.0))
    0.0
    """

    name: ClassVar[str] = "link"

    def __call__(self, mu):
        """g(mu): the linear predictor for mean ``mu``."""
        raise NotImplementedError

    def inverse(self, eta):
        """g⁻¹(eta): the mean for linear predictor ``eta``."""
        raise NotImplementedError

    def deriv(self, mu):
        """g′(mu) = d eta / d mu."""
        raise NotImplementedError

    def inverse_deriv(self, eta):
        """d mu / d eta = 1 / g′(g⁻¹(eta))."""
        return 1.0 / self.deriv(self.inverse(eta))

    def eta_in_domain(self, eta):
        """Elementwise: whether ``eta`` maps to a valid mean (traceable, for use inside ``jax.jit``)."""
        return jnp.isfinite(eta)

    def valid_eta(self, eta) -> bool:
        """Whether every ``eta`` maps to a valid mean (R's ``valideta``)."""
        return bool(jnp.all(self.eta_in_domain(eta)))

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Identity(Link):
    """g(mu) = mu.

    Examples
    --------
    >>> float(Identity().inverse(2.5))
    2.5
    """

    name: ClassVar[str] = "identity"

    def __call__(self, mu):
        return jnp.asarray(mu)

    def inverse(self, eta):
        return jnp.asarray(eta)

    def deriv(self, mu):
        return jnp.ones_like(jnp.asarray(mu))

    def inverse_deriv(self, eta):
        return jnp.ones_like(jnp.asarray(eta))


@dataclass(frozen=True)
class Log(Link):
    """g(mu) = log(mu); the inverse is floored at machine epsilon as in R.

    Examples
    --------
    >>> round(float(Log().inverse(0.0)), 6)
    1.0
    """

    name: ClassVar[str] = "log"

    def __call__(self, mu):
        return jnp.log(mu)

    def inverse(self, eta):
        return jnp.maximum(jnp.exp(eta), _EPS)

    def deriv(self, mu):
        return 1.0 / jnp.asarray(mu)

    def inverse_deriv(self, eta):
        return jnp.maximum(jnp.exp(eta), _EPS)


@dataclass(frozen=True)
class Logit(Link):
    """g(mu) = log(mu / (1 - mu)), the canonical binomial link.

    Examples
    --------
    >>> float(Logit().inverse(0.0))
    0.5
    """

    name: ClassVar[str] = "logit"

    def __call__(self, mu):
        return jnp.log(mu) - jnp.log1p(-mu)

    def inverse(self, eta):
        return jnp.clip(jax.nn.sigmoid(eta), _EPS, 1.0 - _EPS)

    def deriv(self, mu):
        return 1.0 / (mu * (1.0 - mu))

    def inverse_deriv(self, eta):
        # R: pmax(exp(eta) / (1 + exp(eta))^2, eps), written without overflow.
        p = jax.nn.sigmoid(eta)
        return jnp.maximum(p * (1.0 - p), _EPS)


@dataclass(frozen=True)
class Probit(Link):
    """g(mu) = Φ⁻¹(mu), the standard normal quantile function.

    Examples
    --------
    >>> float(Probit().inverse(0.0))
    0.5
    """

    name: ClassVar[str] = "probit"
    _THRESH: ClassVar[float] = 8.125890664701906  # R: -qnorm(.Machine$double.eps)

    def __call__(self, mu):
        return ndtri(mu)

    def inverse(self, eta):
        return ndtr(jnp.clip(eta, -self._THRESH, self._THRESH))

    def deriv(self, mu):
        return 1.0 / jax.scipy.stats.norm.pdf(ndtri(mu))

    def inverse_deriv(self, eta):
        return jnp.maximum(jax.scipy.stats.norm.pdf(eta), _EPS)


@dataclass(frozen=True)
class CLogLog(Link):
    """g(mu) = log(-log(1 - mu)), the complementary log-log link.

    Examples
    --------
    >>> round(float(CLogLog().inverse(0.0)), 6)
    0.632121
    """

    name: ClassVar[str] = "cloglog"

    def __call__(self, mu):
        return jnp.log(-jnp.log1p(-mu))

    def inverse(self, eta):
        return jnp.clip(-jnp.expm1(-jnp.exp(eta)), _EPS, 1.0 - _EPS)

    def deriv(self, mu):
        return 1.0 / ((mu - 1.0) * jnp.log1p(-mu))

    def inverse_deriv(self, eta):
        eta = jnp.minimum(eta, 700.0)
        return jnp.maximum(jnp.exp(eta) * jnp.exp(-jnp.exp(eta)), _EPS)


@dataclass(frozen=True)
class Power(Link):
    """g(mu) = mu ** power (R's ``power(lambda)``); ``Power(0)`` is not allowed: use ``Log``.

    Examples
    --------
    >>> float(Power(0.5)(4.0))
    2.0
    """

    power: float = 1.0
    name: ClassVar[str] = "power"

    def __post_init__(self):
        if not is_finite_real(self.power):
            raise SpecificationError(f"The 'power' parameter of Power must be a finite float. Got {self.power!r} instead.")
        if self.power == 0:
            raise SpecificationError("Power(0) is the log link: use Log() or link='log'.")
        # A Python float, whatever real type was given (np.float64(0.5)): the registry string
        # ("power(0.5)") that model files store must parse back to an equal link.
        object.__setattr__(self, "power", float(self.power))

    def __call__(self, mu):
        return jnp.power(mu, self.power)

    def inverse(self, eta):
        return jnp.power(eta, 1.0 / self.power)

    def deriv(self, mu):
        return self.power * jnp.power(mu, self.power - 1.0)

    def inverse_deriv(self, eta):
        return jnp.power(eta, 1.0 / self.power - 1.0) / self.power

    def eta_in_domain(self, eta):
        # Negative or zero eta has no real mean for a non-integer or negative power.
        return jnp.isfinite(eta) & (eta > 0)

    def __str__(self) -> str:
        return f"power({self.power:g})"


@dataclass(frozen=True)
class Inverse(Power):
    """g(mu) = 1 / mu, the canonical Gamma link.

    Examples
    --------
    >>> float(Inverse()(4.0))
    0.25
    """

    power: float = -1.0
    name: ClassVar[str] = "inverse"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class InverseSquared(Power):
    """g(mu) = 1 / mu², the canonical inverse Gaussian link (R's ``"1/mu^2"``).

    Examples
    --------
    >>> float(InverseSquared()(2.0))
    0.25
    """

    power: float = -2.0
    name: ClassVar[str] = "inverse_squared"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Sqrt(Power):
    """g(mu) = √mu.

    Examples
    --------
    >>> float(Sqrt()(9.0))
    3.0
    """

    power: float = 0.5
    name: ClassVar[str] = "sqrt"

    def __str__(self) -> str:
        return self.name
