"""Shared test helpers: simulated GLM data with a known truth, and the family × link grid.

``simulate_glm`` draws ``y`` from the family itself, so a fit can be compared with the truth
(coverage tests) and with statsmodels (parity tests). Everything is deterministic in ``seed``.
"""

from __future__ import annotations

import io
import json

import jax
import numpy as np
import pandas as pd
from scipy import special, stats

import neuralglm as ng
from neuralglm.results import model_file, serialize

# Every supported (family, link) pair, as the strings users pass to ``ng.glm``. The links per
# family follow R's ``family()`` objects: gaussian(identity, log, inverse); binomial(logit,
# probit, cloglog, log); poisson(log, identity, sqrt); Gamma(inverse, identity, log);
# inverse.gaussian(1/mu^2, inverse, identity, log); MASS::negative.binomial(log, sqrt,
# identity); statmod::tweedie(link.power = 0 (log), 1 (identity), any power).
FAMILY_LINK_GRID: list[tuple[str, str]] = [
    ("gaussian", "identity"),
    ("gaussian", "log"),
    ("gaussian", "inverse"),
    ("binomial", "logit"),
    ("binomial", "probit"),
    ("binomial", "cloglog"),
    ("binomial", "log"),
    ("poisson", "log"),
    ("poisson", "identity"),
    ("poisson", "sqrt"),
    ("gamma", "inverse"),
    ("gamma", "identity"),
    ("gamma", "log"),
    ("inverse_gaussian", "inverse_squared"),
    ("inverse_gaussian", "inverse"),
    ("inverse_gaussian", "identity"),
    ("inverse_gaussian", "log"),
    ("negative_binomial(0.5)", "log"),
    ("negative_binomial(0.5)", "sqrt"),
    ("negative_binomial(0.5)", "identity"),
    ("tweedie(1.5)", "log"),
    ("tweedie(1.5)", "identity"),
    ("tweedie(1.5)", "power(0.5)"),
]

# Range of the true mean per family: inside the family's mean domain and far from its edges,
# so every link of the grid maps it to a finite, valid linear predictor.
_MU_RANGE = {
    "gaussian": (1.0, 5.0),
    "binomial": (0.2, 0.8),
    "poisson": (1.0, 10.0),
    "gamma": (1.0, 5.0),
    "inverse_gaussian": (1.0, 3.0),
    "negative_binomial": (1.0, 10.0),
    "tweedie": (1.0, 5.0),
}
# Binomial with the log link: exp(eta) must stay below 1 everywhere.
_MU_RANGE_BINOMIAL_LOG = (0.1, 0.6)
# True dispersion where it is estimated (Gaussian sigma² = 0.25, Gamma shape 4, IG lambda 5,
# Tweedie phi 1): moderate noise, so n = 500 fits are precise but not degenerate.
_DISPERSION = {"gaussian": 0.25, "gamma": 0.25, "inverse_gaussian": 0.2, "tweedie": 1.0}


def _draw_response(family: ng.families.Family, mu: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    name = family.name
    if name == "gaussian":
        phi = _DISPERSION[name]
        return rng.normal(mu, np.sqrt(phi)), phi
    if name == "binomial":
        return rng.binomial(1, mu).astype(float), 1.0
    if name == "poisson":
        return rng.poisson(mu).astype(float), 1.0
    if name == "gamma":
        phi = _DISPERSION[name]
        return rng.gamma(shape=1.0 / phi, scale=mu * phi), phi
    if name == "inverse_gaussian":
        phi = _DISPERSION[name]
        return rng.wald(mu, 1.0 / phi), phi
    if name == "negative_binomial":
        theta = 1.0 / family.alpha
        return rng.negative_binomial(theta, theta / (theta + mu)).astype(float), 1.0
    if name == "tweedie":
        p = float(family.power)
        if not 1.0 < p < 2.0:
            raise ValueError(f"simulate_glm draws Tweedie responses only for 1 < power < 2; got {p}.")
        phi = _DISPERSION[name]
        # Compound Poisson–gamma (Jørgensen 1997, §6.2): N ~ Poisson(mu^(2-p) / (phi (2-p))),
        # y = sum of N Gamma((2-p)/(p-1), phi (p-1) mu^(p-1)) draws.
        counts = rng.poisson(mu ** (2.0 - p) / (phi * (2.0 - p)))
        shape = (2.0 - p) / (p - 1.0)
        amounts = rng.gamma(np.maximum(counts, 1) * shape, phi * (p - 1.0) * mu ** (p - 1.0))
        return np.where(counts > 0, amounts, 0.0), phi
    raise ValueError(f"simulate_glm does not know how to draw from family {family}.")


def simulate_glm(family: str, link: str | None, n_obs: int, n_features: int, seed: int) -> pd.DataFrame:
    """Data frame with columns ``x1..xp`` and ``y`` drawn from ``family`` with a known truth.

    The features are U(-1, 1). The intercept sits at the middle of the link-scale image of
    the family's mean range and the slopes share its half-width, so ``|x·β|`` never leaves it
    and every mean is valid for every link. ``df.attrs["coef"]`` holds the true coefficients
    (a dict ``{"Intercept": …, "x1": …}``; plain floats so pandas can compare attrs) and
    ``df.attrs["dispersion"]`` the true dispersion.
    """
    family_obj = ng.get_family(family)
    link_obj = ng.get_link(link, family_obj)
    rng = np.random.default_rng(seed)
    low, high = _MU_RANGE_BINOMIAL_LOG if (family_obj.name == "binomial" and link_obj.name == "log") else _MU_RANGE[family_obj.name]
    with jax.enable_x64(True):
        eta_ends = sorted(float(link_obj(np.float64(v))) for v in (low, high))
    centre, half_width = (eta_ends[0] + eta_ends[1]) / 2.0, (eta_ends[1] - eta_ends[0]) / 2.0
    slopes = rng.choice([-1.0, 1.0], size=n_features) * rng.uniform(0.5, 1.0, size=n_features) * half_width / n_features
    X = rng.uniform(-1.0, 1.0, size=(n_obs, n_features))
    eta = centre + X @ slopes
    with jax.enable_x64(True):
        mu = np.asarray(link_obj.inverse(eta), dtype=np.float64)
    y, phi = _draw_response(family_obj, mu, rng)
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(n_features)])
    df["y"] = y
    df.attrs["coef"] = {"Intercept": centre, **{f"x{j + 1}": float(b) for j, b in enumerate(slopes)}}
    df.attrs["dispersion"] = phi
    return df


def formula_for(df: pd.DataFrame) -> str:
    """``'y ~ x1 + … + xp'`` for a frame made by :func:`simulate_glm`."""
    return "y ~ " + " + ".join(c for c in df.columns if c != "y")


def to_statsmodels(family: str, link: str | None = None):
    """The statsmodels family (with its link) equal to ``ng.get_family(family)`` with ``link``.

    Examples: ``to_statsmodels("tweedie(1.5)", "log")`` is
    ``sm.families.Tweedie(sm.families.links.Log(), var_power=1.5)``.
    """
    import statsmodels.api as sm

    links = sm.families.links
    family_obj = ng.get_family(family)
    link_obj = ng.get_link(link, family_obj)
    named = {
        "identity": links.Identity,
        "log": links.Log,
        "logit": links.Logit,
        "probit": links.Probit,
        "cloglog": links.CLogLog,
        "inverse": links.InversePower,
        "inverse_squared": links.InverseSquared,
        "sqrt": links.Sqrt,
    }
    sm_link = named[link_obj.name]() if link_obj.name in named else links.Power(power=float(link_obj.power))
    name = family_obj.name
    if name == "negative_binomial":
        return sm.families.NegativeBinomial(sm_link, alpha=family_obj.alpha)
    if name == "tweedie":
        return sm.families.Tweedie(sm_link, var_power=float(family_obj.power))
    classes = {
        "gaussian": sm.families.Gaussian,
        "binomial": sm.families.Binomial,
        "poisson": sm.families.Poisson,
        "gamma": sm.families.Gamma,
        "inverse_gaussian": sm.families.InverseGaussian,
    }
    return classes[name](sm_link)


def compound_poisson_gamma_logpdf(y: float, mu: float, phi: float, p: float) -> float:
    """log f(y) of the Tweedie distribution with 1 < p < 2 as a Poisson sum of gamma densities, term by term
    (Jørgensen 1997, §4.2): the independent reference for the library's series density."""
    lam = mu ** (2 - p) / (phi * (2 - p))
    if y == 0:
        return -lam
    shape, scale = (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1)
    n = np.arange(1, int(lam + 60 * np.sqrt(lam) + 400))
    return float(special.logsumexp(stats.poisson.logpmf(n, lam) + stats.gamma.logpdf(y, n * shape, scale=scale)))


def model_file_entries(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON spec and the arrays of a model file's bytes, to edit as an attacker or a careless hand would."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop(serialize.SPEC_ENTRY).tobytes()), arrays


def resealed_model_file(spec: dict, arrays: dict[str, np.ndarray]) -> io.BytesIO:
    """Entries written with fresh checksums, computed the way the writer does (an edit by someone who recomputes them)."""
    buffer = io.BytesIO()
    model_file.write_file(arrays, {k: v for k, v in spec.items() if k not in ("arrays", "spec_sha256")}, buffer)
    buffer.seek(0)
    return buffer
