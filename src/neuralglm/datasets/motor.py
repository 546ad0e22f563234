"""``simulate_motor``: a motor third-party-liability portfolio with a known true claim frequency.

No real policy-level motor table with exposure and ≥ 10k policies ships with a package the
package index serves (SOURCES.md says what was checked), so the architectures are compared on
a simulator calibrated to the published shape of freMTPL2freq (the French MTPL portfolio of
R's CASdatasets, 678 013 policies; Noll, Salzmann & Wüthrich 2018, Schelldorfer & Wüthrich
2019): about 10 claims per 100 policy-years, exposures in (0, 1] with a mass at one year and
many short ones, and its covariates' kinds, names and ranges. The true mean is returned, so
every model's distance to the truth is known.

The truth (log scale, per policy-year) is a GLM-unfriendly mix: a U-shaped driver-age effect
with a steep excess for young drivers, a log bonus-malus effect, a vehicle-age effect with a
jump for new cars, log density, fixed region and brand effects, and an age × power interaction
(young drivers in powerful cars).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError

# freMTPL2freq's 22 region codes and (rounded) shares of policies.
REGIONS = (
    ("R11", 0.103), ("R21", 0.005), ("R22", 0.012), ("R23", 0.013), ("R24", 0.237), ("R25", 0.016),
    ("R26", 0.016), ("R31", 0.040), ("R41", 0.019), ("R42", 0.003), ("R43", 0.002), ("R52", 0.057),
    ("R53", 0.062), ("R54", 0.028), ("R72", 0.046), ("R73", 0.025), ("R74", 0.007), ("R82", 0.125),
    ("R83", 0.008), ("R91", 0.053), ("R93", 0.117), ("R94", 0.006),
)  # fmt: skip
# Fixed region effects on the log frequency (the truth must not change with the seed).
REGION_EFFECTS = (
    0.12, -0.05, 0.08, -0.10, -0.02, 0.04, -0.06, 0.10, -0.12, 0.02, -0.15,
    0.00, -0.04, 0.06, -0.08, 0.03, 0.15, 0.09, -0.03, -0.07, 0.05, 0.11,
)  # fmt: skip
BRANDS = (
    ("B1", 0.24), ("B2", 0.24), ("B3", 0.08), ("B4", 0.04), ("B5", 0.05), ("B6", 0.04),
    ("B10", 0.03), ("B11", 0.02), ("B12", 0.24), ("B13", 0.02), ("B14", 0.04),
)  # fmt: skip
BRAND_EFFECTS = {"B12": -0.20, "B11": 0.08, "B14": -0.10, "B3": 0.04}
AREAS = ("A", "B", "C", "D", "E", "F")
# Upper bounds of log(Density) for the areas A–E (F above): in freMTPL2 the area is a coarsening of density.
AREA_CUTS = (3.5, 4.5, 5.8, 7.2, 8.8)
# Chosen so that the expected claim frequency of the portfolio is 0.100 per policy-year
# (computed once on 4 million simulated policies; tests check the frequency of a sample).
LOG_BASE = -3.1603


def true_log_frequency(frame: pd.DataFrame) -> np.ndarray:
    """The true log claim frequency per policy-year of the rows of ``frame`` (the simulator's columns)."""
    age = frame["DrivAge"].to_numpy(dtype=float)
    power = frame["VehPower"].to_numpy(dtype=float)
    vehicle_age = frame["VehAge"].to_numpy(dtype=float)
    bonus = frame["BonusMalus"].to_numpy(dtype=float)
    density = frame["Density"].to_numpy(dtype=float)
    # U shape: young drivers far above the middle-aged, a milder rise after 60.
    age_effect = 1.1 * np.exp(-(age - 18.0) / 6.0) + 0.00035 * (age - 50.0) ** 2
    young_in_powerful_car = 0.09 * np.clip(power - 6.0, 0.0, None) * np.clip(30.0 - age, 0.0, None) / 12.0
    region = frame["Region"].map(pd.Series(REGION_EFFECTS, index=[r for r, _ in REGIONS])).to_numpy(dtype=float)
    brand = frame["VehBrand"].map(pd.Series(BRAND_EFFECTS)).fillna(0.0).to_numpy(dtype=float)
    return (
        LOG_BASE
        + age_effect
        + young_in_powerful_car
        + 0.02 * (power - 6.0)
        + 0.9 * np.log(bonus / 50.0)
        + 0.2 * (vehicle_age < 1.0)
        - 0.015 * vehicle_age
        + 0.07 * np.log(density)
        + 0.06 * (frame["VehGas"].to_numpy() == "Diesel")
        + region
        + brand
    )


def _covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    # 7 % novice drivers (18–25, as freMTPL2's young share), the others a skewed spread around 45.
    novice = rng.random(n) < 0.07
    age = np.where(novice, rng.integers(18, 26, n), np.clip(np.round(18.0 + rng.gamma(4.0, 7.0, n)), 18, 90))
    power = np.clip(np.round(4.0 + rng.gamma(2.2, 1.2, n)), 4, 15)
    vehicle_age = np.clip(np.round(rng.gamma(1.6, 4.5, n)), 0, 30)
    # Bonus-malus: most policies at the floor 50; young drivers start higher (100 in the French system).
    at_floor = rng.random(n) < np.clip(0.25 + 0.012 * (age - 18.0), 0.25, 0.8)
    bonus = np.where(at_floor, 50.0, np.clip(np.round(50.0 + rng.gamma(1.5, 20.0, n) + 25.0 * (age < 25)), 51, 230))
    log_density = np.clip(rng.normal(6.0, 2.0, n), 0.0, np.log(27000.0))
    regions, shares = zip(*REGIONS, strict=True)
    brands, brand_shares = zip(*BRANDS, strict=True)
    return pd.DataFrame(
        {
            "Area": np.array(AREAS)[np.searchsorted(AREA_CUTS, log_density)],
            "VehPower": power.astype(np.int64),
            "VehAge": vehicle_age.astype(np.int64),
            "DrivAge": age.astype(np.int64),
            "BonusMalus": bonus.astype(np.int64),
            "VehBrand": rng.choice(np.array(brands), n, p=np.array(brand_shares) / sum(brand_shares)),
            "VehGas": np.where(rng.random(n) < 0.49, "Diesel", "Regular"),
            "Density": np.round(np.exp(log_density)).astype(np.int64).clip(1, None),
            "Region": rng.choice(np.array(regions), n, p=np.array(shares) / sum(shares)),
        }
    )


def _exposure(rng: np.random.Generator, n: int) -> np.ndarray:
    # A third of the policies are in force the whole year; the others for a part of it
    # (Beta(0.9, 1.6): many short periods), at least one day, in days, as in freMTPL2.
    days = np.where(rng.random(n) < 0.3, 365.0, np.clip(np.round(365.0 * rng.beta(0.9, 1.6, n)), 1.0, 365.0))
    return days / 365.0


def simulate_motor(n: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """A simulated motor portfolio shaped like freMTPL2freq, with its true claim frequency.

    Parameters
    ----------
    n : number of policies (≥ 1).
    seed : seed of the simulation (the truth itself does not depend on it).

    Returns
    -------
    pandas.DataFrame
        one row per policy: ``IDpol``, ``ClaimNb`` (claims in the period), ``Exposure``
        (years in force, in (0, 1]), ``Area`` (A–F, a coarsening of density), ``VehPower``
        (4–15, an ordered class: use ``C(VehPower)`` for a factor), ``VehAge`` (0–30),
        ``DrivAge`` (18–90), ``BonusMalus`` (50–230), ``VehBrand`` (11 brands),
        ``VehGas`` (Diesel/Regular), ``Density`` (inhabitants per km², log-normal),
        ``Region`` (22 regions) and ``true_frequency``, the true expected claims per
        policy-year (``ClaimNb`` is Poisson with mean ``Exposure × true_frequency``).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.simulate_motor(20_000, seed=1)
    >>> df.shape
    (20000, 13)
    >>> bool(0.09 < df["ClaimNb"].sum() / df["Exposure"].sum() < 0.11)
    True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecificationError(f"The 'n' parameter of simulate_motor must be an int in the range [1, inf). Got {n!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecificationError(f"The 'seed' parameter of simulate_motor must be an int in the range [0, inf). Got {seed!r} instead.")
    rng = np.random.default_rng(seed)
    frame = _covariates(rng, int(n))
    exposure = _exposure(rng, int(n))
    frequency = np.exp(true_log_frequency(frame))
    claims = rng.poisson(exposure * frequency)
    frame.insert(0, "Exposure", exposure)
    frame.insert(0, "ClaimNb", claims.astype(np.int64))
    frame.insert(0, "IDpol", np.arange(1, int(n) + 1, dtype=np.int64))
    frame["true_frequency"] = frequency
    return frame
