"""Quasi-likelihood families, as R's ``quasipoisson``, ``quasibinomial`` and ``quasi(variance, link)``.

A quasi family states only a mean–variance relation ``Var(y) = φ·V(μ)/w``; there is no density.
The estimates are those of the family with the same variance function (IRLS only reads ``V``
and the link), the dispersion φ is always estimated by Pearson's χ²/df_resid, tests use
Student's t and F, and ``loglik``/``AIC``/``BIC`` do not exist (NaN here, NA in R). The deviance
is R's quasi-deviance: the same unit deviance as the matching full family, with R's handling
of zeros for ``quasi(variance="mu")`` and ``"mu^2"``.

Reference: McCullagh & Nelder (1989), *Generalized Linear Models*, 2nd ed., ch. 9; R's
``?quasi``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from neuralglm.errors import SpecificationError
from neuralglm.family.family import Binomial, Family, Gamma, Gaussian, InverseGaussian, Poisson
from neuralglm.family.interval import NON_NEGATIVE, POSITIVE, REAL, UNIT_CLOSED, UNIT_OPEN, Interval
from neuralglm.family.link import Link, Power

# R's quasi() accepts any make.link link; "power(p)" stands for every power link.
_ANY_LINK = ("identity", "log", "logit", "probit", "cloglog", "inverse", "inverse_squared", "sqrt", "power(p)")
_LINK_SPELLINGS = {"1/mu^2": "inverse_squared", "inverse_power": "inverse"}
_POWER_LINK = re.compile(r"^power\(\s*([-+0-9.eE]+)\s*\)$")

# variance name -> (y domain, mu domain); the five names R's quasi() knows.
_VARIANCES: dict[str, tuple[Interval, Interval]] = {
    "constant": (REAL, REAL),
    "mu(1-mu)": (UNIT_CLOSED, UNIT_OPEN),
    "mu": (NON_NEGATIVE, POSITIVE),
    "mu^2": (NON_NEGATIVE, POSITIVE),
    "mu^3": (POSITIVE, POSITIVE),
}


def _nan_loglik(mu):
    # No density: R's quasi families' aic() is NA, so loglik, AIC and BIC are NaN.
    return jnp.full_like(jnp.asarray(mu, dtype=float), jnp.nan)


@dataclass(frozen=True)
class QuasiPoisson(Family):
    """Overdispersed counts: V(μ) = μ with φ estimated (R's ``quasipoisson``).

    Same estimates as the Poisson fit; standard errors scaled by √φ̂; t tests.

    Examples
    --------
    >>> float(QuasiPoisson().variance(2.0)), QuasiPoisson().fixed_dispersion is None
    (2.0, True)
    """

    name: ClassVar[str] = "quasipoisson"
    allowed_links: ClassVar[tuple[str, ...]] = Poisson.allowed_links
    y_domain: ClassVar[Interval] = NON_NEGATIVE
    mu_domain: ClassVar[Interval] = POSITIVE
    default_link: ClassVar[str] = "log"

    def variance(self, mu):
        return Poisson().variance(mu)

    def unit_deviance(self, y, mu):
        return Poisson().unit_deviance(y, mu)

    def loglik_obs(self, y, mu, dispersion, weights):
        return _nan_loglik(mu)

    def starting_mu(self, y, weights):
        return y + 0.1  # R's quasipoisson()$initialize


@dataclass(frozen=True)
class QuasiBinomial(Family):
    """Overdispersed proportions: V(μ) = μ(1 − μ) with φ estimated (R's ``quasibinomial``).

    Weights are numbers of trials and ``cbind(successes, failures)`` works, as for the
    binomial; non-integer successes are allowed without a warning, as in R.

    Examples
    --------
    >>> round(float(QuasiBinomial().variance(0.5)), 3)
    0.25
    """

    name: ClassVar[str] = "quasibinomial"
    allowed_links: ClassVar[tuple[str, ...]] = Binomial.allowed_links
    weights_are_trials: ClassVar[bool] = True
    separation_possible: ClassVar[bool] = True
    y_domain: ClassVar[Interval] = UNIT_CLOSED
    mu_domain: ClassVar[Interval] = UNIT_OPEN
    default_link: ClassVar[str] = "logit"

    def variance(self, mu):
        return Binomial().variance(mu)

    def unit_deviance(self, y, mu):
        return Binomial().unit_deviance(y, mu)

    def loglik_obs(self, y, mu, dispersion, weights):
        return _nan_loglik(mu)

    def starting_mu(self, y, weights):
        return Binomial().starting_mu(y, weights)


# The family whose variance function each of R's quasi variances is (one place for each formula).
_SAME_VARIANCE: dict[str, type[Family]] = {
    "constant": Gaussian,
    "mu(1-mu)": Binomial,
    "mu": Poisson,
    "mu^2": Gamma,
    "mu^3": InverseGaussian,
}


@dataclass(frozen=True, init=False)
class Quasi(Family):
    """R's ``quasi(variance=, link=)``: a variance function and a link, φ estimated.

    ``variance`` is one of ``"constant"``, ``"mu(1-mu)"``, ``"mu"``, ``"mu^2"``, ``"mu^3"``;
    ``link`` (default ``"identity"``, as in R) is used when ``ng.glm`` is given no ``link``.
    The registry spells it ``"quasi(variance=mu^2, link=log)"``.

    Examples
    --------
    >>> family = Quasi(variance="mu^2", link="log")
    >>> family.registry_name, family.default_link, float(family.variance(3.0))
    ('quasi(variance=mu^2, link=log)', 'log', 9.0)
    """

    variance_name: str
    link_name: str
    name: ClassVar[str] = "quasi"
    allowed_links: ClassVar[tuple[str, ...]] = _ANY_LINK

    def __init__(self, variance: str = "constant", link: str | Link = "identity"):
        spelled = "".join(variance.split()).strip("'\"") if isinstance(variance, str) else None
        if spelled not in _VARIANCES:
            raise SpecificationError(
                f"The 'variance' parameter of quasi must be one of {', '.join(map(repr, _VARIANCES))} (R's names). "
                f"Got {variance!r} instead."
            )
        object.__setattr__(self, "variance_name", spelled)
        object.__setattr__(self, "link_name", _link_spelling(link))

    @classmethod
    def from_spelling(cls, text: str) -> Quasi:
        """The family a registry string names: ``"quasi"``, ``"quasi(variance=mu, link=log)"`` (quotes optional).

        Examples
        --------
        >>> Quasi.from_spelling('quasi(variance = "mu(1-mu)", link = "logit")')
        Quasi(variance_name='mu(1-mu)', link_name='logit')
        """
        inside = text.strip()[len(cls.name) :].strip()
        if not inside:
            return cls()
        if not (inside.startswith("(") and inside.endswith(")")):
            raise _spelling_error(text)
        arguments = {}
        for part in _split_top_level(inside[1:-1]):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in ("variance", "link") or key in arguments:
                raise _spelling_error(text)
            arguments[key] = value.strip().strip("'\"")
        return cls(**arguments)

    @property
    def registry_name(self) -> str:
        return f"quasi(variance={self.variance_name}, link={self.link_name})"

    @property
    def default_link(self) -> str:  # type: ignore[override]
        return self.link_name

    @property
    def y_domain(self) -> Interval:  # type: ignore[override]
        return _VARIANCES[self.variance_name][0]

    @property
    def mu_domain(self) -> Interval:  # type: ignore[override]
        return _VARIANCES[self.variance_name][1]

    def variance(self, mu):
        return _SAME_VARIANCE[self.variance_name]().variance(mu)

    def unit_deviance(self, y, mu):
        # R's quasi()$dev.resids: the deviance of the family with the same variance, except for
        # "mu^2", where R allows zeros (log(1) where y = 0) and clips at 0, unlike Gamma's.
        if self.variance_name == "mu^2":
            return jnp.maximum(-2.0 * (jnp.log(jnp.where(y == 0, 1.0, y) / mu) - (y - mu) / mu), 0.0)
        return _SAME_VARIANCE[self.variance_name]().unit_deviance(y, mu)

    def loglik_obs(self, y, mu, dispersion, weights):
        return _nan_loglik(mu)

    def starting_mu(self, y, weights):
        # R's quasi()$initialize for each variance.
        if self.variance_name == "constant":
            return y
        if self.variance_name == "mu(1-mu)":
            return jnp.clip(y, 0.001, 0.999)
        return y + 0.1 * (y == 0)

    def __str__(self) -> str:
        return f"quasi(variance={self.variance_name})"


def _link_spelling(link) -> str:
    """The registry name of ``link`` (a name or a built-in Link object), checked against R's make.link names."""
    if isinstance(link, Link):
        link = f"power({link.power!r})" if type(link) is Power else link.name
    if isinstance(link, str):
        text = "".join(link.split()).strip("'\"")
        text = _LINK_SPELLINGS.get(text, text)
        match = _POWER_LINK.match(text)
        if match is not None:
            try:
                return f"power({float(match.group(1))!r})"
            except ValueError:
                pass
        elif text in _ANY_LINK:
            return text
    raise SpecificationError(
        f"The 'link' parameter of quasi must be one of {', '.join(_ANY_LINK[:-1])} or 'power(p)' with a number p. Got {link!r} instead."
    )


def _split_top_level(text: str) -> list[str]:
    """``'variance=mu(1-mu), link=logit'`` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part for part in parts if part.strip()]


def _spelling_error(text: str) -> SpecificationError:
    return SpecificationError(
        f"Cannot read the family {text!r}: write 'quasi', or 'quasi(variance=mu^2, link=log)' with variance one of "
        f"{', '.join(_VARIANCES)} (as R's quasi())."
    )
