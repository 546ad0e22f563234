"""One registry for families and links: strings for users, objects for power users.

``get_family("tweedie(1.5)")`` is ``Tweedie(power=1.5)``; an unknown name raises an error that
lists the valid ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from neuralglm.errors import SpecificationError
from neuralglm.family import quasi as _quasi  # noqa: F401  (defines the quasi families before they are collected below)
from neuralglm.family.family import ESTIMATE, Family
from neuralglm.family.link import CLogLog, Identity, Inverse, InverseSquared, Link, Log, Logit, Power, Probit, Sqrt

# Every family defined in family/family.py, by its declared name: adding a family is one class there.
_FAMILIES: dict[str, type[Family]] = {cls.name: cls for cls in Family.__subclasses__()}
_FAMILY_ALIASES = {"normal": "gaussian", "inverse.gaussian": "inverse_gaussian", "negbin": "negative_binomial", "nb": "negative_binomial"}

_LINKS: dict[str, Callable[..., Link]] = {
    "identity": Identity,
    "log": Log,
    "logit": Logit,
    "probit": Probit,
    "cloglog": CLogLog,
    "inverse": Inverse,
    "inverse_squared": InverseSquared,
    "sqrt": Sqrt,
    "power": Power,
}
_LINK_ALIASES = {"1/mu^2": "inverse_squared", "inverse_power": "inverse"}

_CALL = re.compile(r"^\s*([A-Za-z_./^0-9]+?)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


def _parse(text: str) -> tuple[str, float | str | None]:
    match = _CALL.match(text)
    if match is None:
        raise SpecificationError(f"Cannot read {text!r}: write a name such as 'poisson' or 'tweedie(1.5)'.")
    name, argument = match.group(1).lower(), match.group(2)
    if argument in (None, ""):
        return name, None
    if argument.lower() == ESTIMATE:
        return name, ESTIMATE
    try:
        return name, float(argument)
    except ValueError:
        raise SpecificationError(f"Cannot read the number in {text!r}: write e.g. 'tweedie(1.5)'.") from None


# The multinomial model is not a one-parameter exponential family of a scalar response: it has its
# own solver and result (fit/multinomial.py, results/multinomial.py); the name is recognised here,
# where family names live.
MULTINOMIAL = "multinomial"


def is_multinomial(family) -> bool:
    """Whether ``family`` asks for the multinomial logit model (``"multinomial"``, any case).

    Examples
    --------
    >>> is_multinomial("Multinomial"), is_multinomial("poisson")
    (True, False)
    """
    return isinstance(family, str) and family.strip().lower() == MULTINOMIAL


def get_family(family: str | Family) -> Family:
    """Return the family for a name or pass a :class:`Family` through.

    Examples
    --------
    >>> from neuralglm.family import Gamma, Tweedie
    >>> get_family("tweedie(1.5)") == Tweedie(power=1.5)
    True
    >>> get_family("negative_binomial(0.5)").alpha
    0.5
    >>> get_family("negative_binomial").estimates_parameter  # θ estimated, as MASS::glm.nb
    True
    >>> get_family("tweedie(estimate)").estimates_parameter  # the power, by profile likelihood
    True
    """
    if isinstance(family, Family):
        return family
    if not isinstance(family, str):
        raise SpecificationError(f"family must be a name or a neuralglm Family; got {type(family).__name__}.")
    reader = getattr(_FAMILIES.get(family.split("(", 1)[0].strip().lower()), "from_spelling", None)
    if reader is not None:  # a family that reads its own arguments (quasi(variance=..., link=...))
        return reader(family)
    name, argument = _parse(family)
    name = _FAMILY_ALIASES.get(name, name)
    if name not in _FAMILIES:
        raise SpecificationError(f"Unknown family {family!r}. Valid families: {', '.join(valid_families())}.")
    try:
        if argument is None:
            return _FAMILIES[name]()
        factory = _FAMILIES[name]
        if getattr(factory, "parameter_name", None) is None:
            raise SpecificationError(f"Family {name!r} takes no parameter; got {family!r}.")
        if argument == ESTIMATE and not factory.parameter_estimable:
            raise SpecificationError(f"The {factory.parameter_name} of family {name!r} cannot be estimated; give its value.")
        return factory(argument)
    except ValueError as error:
        if isinstance(error, SpecificationError):
            raise
        raise SpecificationError(str(error)) from None


def get_link(link: str | Link | None, family: Family | None = None) -> Link:
    """Return the link for a name, a :class:`Link`, or ``None`` (the family's default).

    Examples
    --------
    >>> get_link("power(0.5)")
    Power(power=0.5)
    >>> from neuralglm.family import Gamma
    >>> get_link(None, Gamma()).name
    'inverse'
    """
    if link is None:
        if family is None:
            raise SpecificationError("get_link(None) needs a family to take the default link from.")
        return get_link(family.default_link)
    if isinstance(link, Link):
        return link
    resolved = _resolve_link(link)
    if family is not None:
        # The links R's family object accepts, declared by the family; a Link object is taken
        # as given, as R takes a "link-glm" object for any family.
        allowed = family.allowed_links
        name = "power(p)" if type(resolved) is Power else resolved.name
        if name not in allowed:
            raise SpecificationError(
                f"Link {link!r} is not available for the {family} family (as in R); available links: {', '.join(allowed)}. "
                "Pass a Link object to use another one at your own risk."
            )
    return resolved


def _resolve_link(link) -> Link:
    if not isinstance(link, str):
        raise SpecificationError(f"link must be a name or a neuralglm Link; got {type(link).__name__}.")
    name, argument = _parse(link) if link.strip() not in _LINK_ALIASES else (link.strip(), None)
    name = _LINK_ALIASES.get(name, name)
    if isinstance(argument, str):
        raise SpecificationError(f"A link's parameter is a number, not estimated; got {link!r}.")
    if name not in _LINKS:
        raise SpecificationError(f"Unknown link {link!r}. Valid links: {', '.join(valid_links())}.")
    if name == "power":
        if argument is None:
            raise SpecificationError("The power link needs its exponent, e.g. 'power(0.5)'.")
        if argument == 0:
            return Log()
        if argument == 1:
            return Identity()
        return Power(argument)
    if argument is not None:
        raise SpecificationError(f"Link {name!r} takes no parameter; got {link!r}.")
    return _LINKS[name]()


def valid_families() -> list[str]:
    """Names accepted by :func:`get_family`, with the family's parameter where it has one.

    Examples
    --------
    >>> valid_families()[5:7]
    ['negative_binomial(alpha)', 'tweedie(power)']
    """
    return [name if cls.parameter_name is None else f"{name}({cls.parameter_name})" for name, cls in _FAMILIES.items()]


def valid_links() -> list[str]:
    """Names accepted by :func:`get_link`."""
    return ["identity", "log", "logit", "probit", "cloglog", "inverse", "inverse_squared", "sqrt", "power(p)"]
