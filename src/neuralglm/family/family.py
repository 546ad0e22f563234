r"""Exponential-dispersion families: each declares only what cannot be derived.

A family states its variance function ``V(mu)``, its unit deviance ``d(y, mu)``, its full
log-density ``loglik_obs`` (constants included) and the domains of ``y`` and ``mu``. Every
quantity built from these (IRLS weights, deviance, Pearson χ², residuals, AIC) lives in
:mod:`neuralglm.family.derived`; nothing else restates a formula.

The weight semantics of ``loglik_obs`` follow R's ``family()$aic`` so that ``loglik``/``AIC``
equal R's ``logLik``/``AIC``: for the Gaussian a prior weight divides the variance
(``y ~ N(mu, phi / w)``); for the binomial it is the number of trials; for every other family
it multiplies the log-density.

Notes
-----
The density of an exponential-dispersion model is
:math:`f(y; \mu, \phi) = a(y, \phi) \exp\{-d(y, \mu) / (2\phi)\}`, so
:math:`-2\phi\,[\ell(y, \mu) - \ell(y, y)] = d(y, \mu)` and
:math:`\partial d / \partial \mu = -2 (y - \mu) / V(\mu)`; the test-suite checks both laws
for every family (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 1989, ch. 2).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
from jax.scipy.special import gammaln

from neuralglm.errors import SpecificationError
from neuralglm.family.interval import (
    NON_NEGATIVE,
    POSITIVE,
    REAL,
    UNIT_CLOSED,
    UNIT_OPEN,
    Interval,
    is_finite_real,
)
from neuralglm.family.special import xlog1py, xlogy
from neuralglm.family.tweedie_series import tweedie_log_density

_LOG_2PI = math.log(2.0 * math.pi)

# The parameter value that asks for the parameter to be estimated: NegativeBinomial(alpha=ESTIMATE)
# (the default: "negative_binomial"), Tweedie(power=ESTIMATE) ("tweedie(estimate)").
ESTIMATE = "estimate"


@dataclass(frozen=True)
class Family:
    """Base class of the exponential-dispersion families.

    Class attributes
    ----------------
    name : registry name.
    y_domain, mu_domain : :class:`Interval` of valid responses and means.
    default_link : name of the link used when none is given.
    fixed_dispersion : 1.0 when the dispersion is known (Poisson, binomial,
        negative binomial), ``None`` when it is estimated.
    loglik_dispersion : which plug-in dispersion R's ``logLik`` uses: ``"mle_n"``
        (deviance / n, Gaussian), ``"mle_weights"`` (deviance / sum(weights), Gamma and
        inverse Gaussian), or ``None`` (dispersion fixed, or no closed-form density).
    integer_response : counts are expected; non-integer values only warn.
    allowed_links : the link names R's family object accepts (``?family``,
        ``MASS::negative.binomial``, ``statmod::tweedie``); ``"power(p)"`` stands for any power
        link. A :class:`~neuralglm.family.link.Link` object is taken as given for any family.
    weights_are_trials : prior weights are numbers of trials and ``y`` a proportion (binomial):
        the response may also be a two-level factor or ``cbind(successes, failures)``.
    separation_possible : fitted means at the edge of ``mu_domain`` mean the data are
        (quasi-)separated (binomial), which the fit reports.
    parameter_name : the name of the family's own parameter (``"power"``, ``"alpha"``) or
        ``None``; the registry spells the family ``name(value)`` then.
    parameter_estimable : whether the parameter can be estimated from the data: the family is
        then spelled with :data:`ESTIMATE` as its parameter (``"tweedie(estimate)"``), and
        ``parameter_estimator`` names how (``"theta_ml"``: alternate IRLS and Newton steps on θ,
        as ``MASS::glm.nb``; ``"profile"``: maximize the profile likelihood over the parameter).
    parameter_default : the parameter when the family is named without one: :data:`ESTIMATE`
        (the negative binomial, as ``glm.nb``), or ``None`` when it must be given (Tweedie).
    estimable_range : the interval a profile-likelihood estimate is searched in.
    """

    name: ClassVar[str] = "family"
    y_domain: ClassVar[Interval] = REAL
    mu_domain: ClassVar[Interval] = REAL
    default_link: ClassVar[str] = "identity"
    fixed_dispersion: ClassVar[float | None] = None
    loglik_dispersion: ClassVar[str | None] = None
    integer_response: ClassVar[bool] = False
    allowed_links: ClassVar[tuple[str, ...]] = ("identity",)
    weights_are_trials: ClassVar[bool] = False
    separation_possible: ClassVar[bool] = False
    parameter_name: ClassVar[str | None] = None
    parameter_estimable: ClassVar[bool] = False
    parameter_estimator: ClassVar[str | None] = None
    parameter_default: ClassVar[float | str | None] = None
    estimable_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)

    @property
    def estimates_parameter(self) -> bool:
        """Whether the family's parameter is still to be estimated from the data (spelled :data:`ESTIMATE`).

        Examples
        --------
        >>> NegativeBinomial().estimates_parameter, NegativeBinomial(alpha=0.5).estimates_parameter
        (True, False)
        """
        return self.parameter_name is not None and getattr(self, self.parameter_name) == ESTIMATE

    def with_parameter(self, value: float) -> Family:
        """The same family with its parameter fixed at ``value`` (e.g. the estimate).

        Examples
        --------
        >>> Tweedie(power=ESTIMATE).with_parameter(1.4)
        Tweedie(power=1.4)
        """
        if self.parameter_name is None:
            raise SpecificationError(f"The {self.name} family has no parameter to set.")
        return dataclasses.replace(self, **{self.parameter_name: value})

    def _parameter(self) -> float:
        """The parameter's value; a family whose parameter is still to be estimated has none yet."""
        value = getattr(self, str(self.parameter_name))
        if value == ESTIMATE:
            raise SpecificationError(f"The {self.name} family's {self.parameter_name} is to be estimated: fit the model first.")
        return value

    @property
    def registry_name(self) -> str:
        """The string :func:`~neuralglm.family.registry.get_family` reads back as this family.

        Examples
        --------
        >>> Tweedie(power=1.5).registry_name, Poisson().registry_name
        ('tweedie(1.5)', 'poisson')
        """
        if self.parameter_name is None:
            return self.name
        value = getattr(self, self.parameter_name)
        if value == ESTIMATE:
            return self.name if self.parameter_default == ESTIMATE else f"{self.name}({ESTIMATE})"
        return f"{self.name}({value!r})"

    def variance(self, mu):
        """Variance function V(mu): Var(y) = dispersion · V(mu) / weight."""
        raise NotImplementedError

    def unit_deviance(self, y, mu):
        """Unit deviance d(y, mu) ≥ 0 with d(y, y) = 0."""
        raise NotImplementedError

    def loglik_obs(self, y, mu, dispersion, weights):
        """Log-likelihood of each observation, constants included (R's conventions)."""
        raise NotImplementedError

    def starting_mu(self, y, weights):
        """Starting mean for IRLS (R's ``family()$initialize`` ``mustart``)."""
        return y

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Gaussian(Family):
    """Normal responses, V(mu) = 1.

    Examples
    --------
    >>> float(Gaussian().unit_deviance(3.0, 1.0))
    4.0
    """

    name: ClassVar[str] = "gaussian"
    allowed_links: ClassVar[tuple[str, ...]] = ("identity", "log", "inverse")
    loglik_dispersion: ClassVar[str | None] = "mle_n"

    def variance(self, mu):
        return jnp.ones_like(jnp.asarray(mu))

    def unit_deviance(self, y, mu):
        return (y - mu) ** 2

    def loglik_obs(self, y, mu, dispersion, weights):
        # Prior weights divide the variance: y ~ N(mu, dispersion / w) (R's gaussian()$aic).
        return -0.5 * (weights * (y - mu) ** 2 / dispersion + _LOG_2PI + jnp.log(dispersion / weights))


@dataclass(frozen=True)
class Binomial(Family):
    """Proportions of successes out of ``weights`` trials (0/1 when weights are 1).

    Examples
    --------
    >>> round(float(Binomial().variance(0.5)), 3)
    0.25
    """

    name: ClassVar[str] = "binomial"
    allowed_links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog", "log")
    weights_are_trials: ClassVar[bool] = True
    separation_possible: ClassVar[bool] = True
    y_domain: ClassVar[Interval] = UNIT_CLOSED
    mu_domain: ClassVar[Interval] = UNIT_OPEN
    default_link: ClassVar[str] = "logit"
    fixed_dispersion: ClassVar[float | None] = 1.0
    integer_response: ClassVar[bool] = True

    def variance(self, mu):
        return mu * (1.0 - mu)

    def unit_deviance(self, y, mu):
        return 2.0 * (xlogy(y, y) - xlogy(y, mu) + xlog1py(1.0 - y, -y) - xlog1py(1.0 - y, -mu))

    def loglik_obs(self, y, mu, dispersion, weights):
        # Weights are trials: successes k = w·y out of m = w (R's binomial()$aic, which rounds).
        trials = jnp.round(weights)
        successes = jnp.round(weights * y)
        log_choose = gammaln(trials + 1.0) - gammaln(successes + 1.0) - gammaln(trials - successes + 1.0)
        return log_choose + xlogy(successes, mu) + xlog1py(trials - successes, -mu)

    def starting_mu(self, y, weights):
        return (weights * y + 0.5) / (weights + 1.0)


@dataclass(frozen=True)
class Poisson(Family):
    """Counts, V(mu) = mu.

    Examples
    --------
    >>> float(Poisson().variance(2.0))
    2.0
    """

    name: ClassVar[str] = "poisson"
    allowed_links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    y_domain: ClassVar[Interval] = NON_NEGATIVE
    mu_domain: ClassVar[Interval] = POSITIVE
    default_link: ClassVar[str] = "log"
    fixed_dispersion: ClassVar[float | None] = 1.0
    integer_response: ClassVar[bool] = True

    def variance(self, mu):
        return jnp.asarray(mu)

    def unit_deviance(self, y, mu):
        return 2.0 * (xlogy(y, y) - xlogy(y, mu) - (y - mu))

    def loglik_obs(self, y, mu, dispersion, weights):
        return weights * (xlogy(y, mu) - mu - gammaln(y + 1.0))

    def starting_mu(self, y, weights):
        return y + 0.1


@dataclass(frozen=True)
class Gamma(Family):
    """Positive continuous responses with constant coefficient of variation, V(mu) = mu².

    Examples
    --------
    >>> float(Gamma().variance(3.0))
    9.0
    """

    name: ClassVar[str] = "gamma"
    allowed_links: ClassVar[tuple[str, ...]] = ("inverse", "identity", "log")
    y_domain: ClassVar[Interval] = POSITIVE
    mu_domain: ClassVar[Interval] = POSITIVE
    default_link: ClassVar[str] = "inverse"
    loglik_dispersion: ClassVar[str | None] = "mle_weights"

    def variance(self, mu):
        return jnp.asarray(mu) ** 2

    def unit_deviance(self, y, mu):
        return 2.0 * (-jnp.log(y / mu) + (y - mu) / mu)

    def loglik_obs(self, y, mu, dispersion, weights):
        # Gamma with shape 1/dispersion and scale mu·dispersion, times the weight (R's Gamma()$aic).
        shape = 1.0 / dispersion
        log_density = -gammaln(shape) - shape * jnp.log(mu * dispersion) + (shape - 1.0) * jnp.log(y) - y / (mu * dispersion)
        return weights * log_density


@dataclass(frozen=True)
class InverseGaussian(Family):
    """Positive, right-skewed responses, V(mu) = mu³.

    Examples
    --------
    >>> float(InverseGaussian().variance(2.0))
    8.0
    """

    name: ClassVar[str] = "inverse_gaussian"
    allowed_links: ClassVar[tuple[str, ...]] = ("inverse_squared", "inverse", "identity", "log")
    y_domain: ClassVar[Interval] = POSITIVE
    mu_domain: ClassVar[Interval] = POSITIVE
    default_link: ClassVar[str] = "inverse_squared"
    loglik_dispersion: ClassVar[str | None] = "mle_weights"

    def variance(self, mu):
        return jnp.asarray(mu) ** 3

    def unit_deviance(self, y, mu):
        return (y - mu) ** 2 / (y * mu**2)

    def loglik_obs(self, y, mu, dispersion, weights):
        log_density = -0.5 * (_LOG_2PI + jnp.log(dispersion) + 3.0 * jnp.log(y)) - (y - mu) ** 2 / (2.0 * dispersion * y * mu**2)
        return weights * log_density


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """Overdispersed counts: V(mu) = mu + alpha·mu² (NB2), ``alpha = 1/theta``.

    ``NegativeBinomial()`` (``"negative_binomial"``) estimates θ by maximum likelihood as
    R's ``MASS::glm.nb``; ``NegativeBinomial(alpha=0.5)`` (``"negative_binomial(0.5)"``) holds
    it fixed, as ``MASS::negative.binomial(theta = 2)``. The default link is log, as in MASS
    and statsmodels (the canonical link, log(mu / (mu + 1/alpha)), is rarely used).

    Examples
    --------
    >>> float(NegativeBinomial(alpha=0.5).variance(2.0))
    4.0
    >>> NegativeBinomial().estimates_parameter
    True
    """

    alpha: float | str = ESTIMATE
    name: ClassVar[str] = "negative_binomial"
    allowed_links: ClassVar[tuple[str, ...]] = ("log", "sqrt", "identity")
    parameter_name: ClassVar[str | None] = "alpha"
    parameter_estimable: ClassVar[bool] = True
    parameter_estimator: ClassVar[str | None] = "theta_ml"
    parameter_default: ClassVar[float | str | None] = ESTIMATE
    y_domain: ClassVar[Interval] = NON_NEGATIVE
    mu_domain: ClassVar[Interval] = POSITIVE
    default_link: ClassVar[str] = "log"
    fixed_dispersion: ClassVar[float | None] = 1.0
    integer_response: ClassVar[bool] = True

    def __post_init__(self):
        if self.alpha == ESTIMATE:
            return
        if not (is_finite_real(self.alpha) and self.alpha > 0):  # type: ignore[operator]
            raise SpecificationError(
                f"The 'alpha' parameter of NegativeBinomial must be a float in the range (0, inf). Got {self.alpha!r} instead. "
                "Leave it out ('negative_binomial') to estimate it."
            )
        # A Python float, whatever real type was given (np.float32(0.5)): the registry string
        # ("negative_binomial(0.5)") that model files store must parse back to an equal family.
        object.__setattr__(self, "alpha", float(self.alpha))

    @property
    def theta(self) -> float:
        """R's θ = 1/alpha (the "size" of the negative binomial)."""
        return 1.0 / self._parameter()

    def variance(self, mu):
        return mu + self._parameter() * mu**2

    def unit_deviance(self, y, mu):
        theta = self.theta
        return 2.0 * (xlogy(y, y) - xlogy(y, mu) - (y + theta) * (jnp.log(y + theta) - jnp.log(mu + theta)))

    def loglik_obs(self, y, mu, dispersion, weights):
        return weights * nb_log_density(y, mu, self.theta)

    def starting_mu(self, y, weights):
        return y + (y == 0) / 6.0  # MASS::negative.binomial's mustart

    def __str__(self) -> str:
        return "negative_binomial" if self.alpha == ESTIMATE else f"negative_binomial({self._parameter():g})"


def nb_log_density(y, mu, theta):
    """log P(Y = y) of the negative binomial with mean ``mu`` and size ``theta`` (MASS's ``glm.nb`` loglik terms)."""
    log_theta_mu = jnp.log(theta + mu)
    return (
        gammaln(y + theta) - gammaln(theta) - gammaln(y + 1.0) + theta * (jnp.log(theta) - log_theta_mu) + xlogy(y, mu) - y * log_theta_mu
    )


@dataclass(frozen=True)
class Tweedie(Family):
    """Tweedie family with variance power ``power``: V(mu) = mu ** power.

    ``power`` 0, 1, 2 and 3 are the Gaussian, Poisson, Gamma and inverse Gaussian variance
    functions; 1 < power < 2 is the compound Poisson–gamma (zeros and positive amounts), whose
    log-likelihood is evaluated by Dunn & Smyth's series (as R's ``tweedie::dtweedie``), so
    ``loglik``/``AIC`` exist there (``tweedie::AICtweedie``: the dispersion is the mean deviance
    deviance/sum(weights), and a prior weight divides it). For other non-integer powers they
    are NaN, as R's ``statmod::tweedie()$aic``. Powers in (0, 1) correspond to no distribution
    and are refused. The power has no default: ``Tweedie(power=1.5)`` fixes it,
    ``Tweedie(power="estimate")`` (``"tweedie(estimate)"``) estimates it in (1, 2) by profile
    likelihood.

    Examples
    --------
    >>> float(Tweedie(power=1.5).variance(4.0))
    8.0
    """

    power: float | str | None = None
    name: ClassVar[str] = "tweedie"
    allowed_links: ClassVar[tuple[str, ...]] = ("log", "identity", "inverse", "inverse_squared", "sqrt", "power(p)")
    parameter_name: ClassVar[str | None] = "power"
    parameter_estimable: ClassVar[bool] = True
    parameter_estimator: ClassVar[str | None] = "profile"
    default_link: ClassVar[str] = "log"
    estimable_range: ClassVar[tuple[float, float]] = (1.0, 2.0)  # compound Poisson-gamma: the series density exists

    def __post_init__(self):
        if self.power is None:
            raise SpecificationError(
                "The tweedie family needs its variance power: write e.g. 'tweedie(1.5)' (Tweedie(power=1.5)), "
                "or 'tweedie(estimate)' (Tweedie(power='estimate')) to estimate it by profile likelihood."
            )
        if self.power == ESTIMATE:
            return
        if not is_finite_real(self.power) or 0 < self.power < 1:  # type: ignore[operator]
            raise SpecificationError(
                "The 'power' parameter of Tweedie must be a float ≤ 0 or ≥ 1 (no distribution exists for 0 < power < 1), "
                f"or {ESTIMATE!r}. Got {self.power!r} instead."
            )
        object.__setattr__(self, "power", float(self.power))  # a Python float: see NegativeBinomial

    @property
    def _p(self) -> float:
        # A power to be estimated lies in (1, 2): domains and rules are those of that range.
        return 1.5 if self.power == ESTIMATE else float(self._parameter())

    @property
    def y_domain(self) -> Interval:  # type: ignore[override]
        if self._p <= 0:
            return REAL
        return NON_NEGATIVE if self._p < 2 else POSITIVE

    @property
    def mu_domain(self) -> Interval:  # type: ignore[override]
        # power 0 is the Gaussian (any real mean); every other power needs mu > 0 (Jørgensen 1997, §4.1).
        return REAL if self._p == 0 else POSITIVE

    @property
    def fixed_dispersion(self) -> float | None:  # type: ignore[override]
        return 1.0 if self._p == 1 else None

    @property
    def integer_response(self) -> bool:  # type: ignore[override]
        return self._p == 1

    @property
    def loglik_dispersion(self) -> str | None:  # type: ignore[override]
        if 1.0 < self._p < 2.0:
            return "mle_weights"  # tweedie::AICtweedie's deviance / sum(weights)
        return {0.0: "mle_n", 2.0: "mle_weights", 3.0: "mle_weights"}.get(self._p)

    def _equivalent(self) -> Family | None:
        return {0.0: Gaussian(), 1.0: Poisson(), 2.0: Gamma(), 3.0: InverseGaussian()}.get(self._p)

    def variance(self, mu):
        return jnp.power(mu, self._parameter())

    def unit_deviance(self, y, mu):
        special = self._equivalent()
        if special is not None:
            return special.unit_deviance(y, mu)
        p = float(self._parameter())
        return 2.0 * (
            jnp.power(y, 2.0 - p) / ((1.0 - p) * (2.0 - p)) - y * jnp.power(mu, 1.0 - p) / (1.0 - p) + jnp.power(mu, 2.0 - p) / (2.0 - p)
        )

    def loglik_obs(self, y, mu, dispersion, weights):
        special = self._equivalent()
        if special is not None:
            return special.loglik_obs(y, mu, dispersion, weights)
        p = float(self._parameter())
        if 1.0 < p < 2.0:
            # A prior weight divides the dispersion (y ~ Tw_p(mu, phi / w)), as tweedie::AICtweedie.
            return tweedie_log_density(y, mu, dispersion / weights, p)
        return jnp.full_like(jnp.asarray(mu, dtype=float), jnp.nan)

    def starting_mu(self, y, weights):
        # statsmodels' (y + ȳ)/2 rather than statmod's y + 0.1·(y == 0): with many zeros the
        # latter gives the zeros huge working weights (1 / 0.1^power), and the first identity-link
        # step then predicts negative means with no previous coefficients to halve back to.
        return (y + jnp.sum(weights * y) / jnp.sum(weights)) / 2.0

    def __str__(self) -> str:
        return f"tweedie({ESTIMATE})" if self.power == ESTIMATE else f"tweedie({self._p:g})"
