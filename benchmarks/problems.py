"""Simulated dense GLM problems with a fixed seed: Poisson (log link) and logistic (logit link).

The design has an intercept column followed by ``p − 1`` features; the true coefficients shrink
as ``0.5/√p`` so the linear predictor has standard deviation about 0.3 whatever ``p`` is
(Poisson means stay near e⁰, probabilities away from 0 and 1).

Two designs:

- ``"iid"``: independent standard normal features. Their Hessian is close to a multiple of the
  identity, the best case for first-order solvers such as L-BFGS.
- ``"correlated"``: features sharing one common factor (pairwise correlation 0.5) and measured
  on scales from 0.1 to 10, as raw covariates are. Newton/IRLS solvers do not care (same
  iterations); first-order solvers need more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("poisson", "binomial")
DESIGNS = ("iid", "correlated")
SIZES = {
    "small": [(100_000, 20), (100_000, 100)],
    "full": [(100_000, 20), (100_000, 100), (1_000_000, 20), (1_000_000, 100)],
}


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: ``X`` (n_obs, n_coef) with an intercept column, ``y`` (n_obs,)."""

    family: str
    design: str
    X: np.ndarray
    y: np.ndarray
    coef: np.ndarray

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]

    @property
    def n_coef(self) -> int:
        return self.X.shape[1]

    @property
    def label(self) -> str:
        design = "" if self.design == "iid" else f" {self.design}"
        return f"{self.family}{design} n={self.n_obs:.0e} p={self.n_coef}".replace("e+0", "e")


def make_problem(family: str, n_obs: int, n_coef: int, design: str = "iid", seed: int = 20240601) -> Problem:
    """Simulate a problem; the same arguments always give the same arrays."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose one of {DESIGNS}")
    rng = np.random.default_rng(seed)
    X = np.empty((n_obs, n_coef))
    X[:, 0] = 1.0
    X[:, 1:] = rng.standard_normal((n_obs, n_coef - 1))
    coef = np.concatenate([[0.2], rng.uniform(-1.0, 1.0, n_coef - 1) * 0.5 / np.sqrt(n_coef)])
    eta = X @ coef
    if design == "correlated":
        scales = 10.0 ** rng.uniform(-1.0, 1.0, n_coef - 1)
        common = rng.standard_normal(n_obs)
        features = X[:, 1:]
        features *= np.sqrt(0.5)
        features += np.sqrt(0.5) * common[:, None]
        features *= scales
        coef[1:] /= scales  # same spread of eta on the new scales
        eta = X @ coef
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    elif family == "binomial":
        y = (rng.uniform(size=n_obs) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    else:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    return Problem(family, design, X, y, coef)


def feature_names(problem: Problem) -> list[str]:
    """The names of the features (the columns of ``X`` after the intercept) in :func:`frame`: x1, x2, …"""
    return [f"x{j}" for j in range(1, problem.n_coef)]


def frame(problem: Problem):
    """The problem as a pandas DataFrame (features x1 … x{p−1}, then y), as a user would hold it: one float64 block."""
    import pandas as pd

    table = pd.DataFrame(problem.X[:, 1:], columns=feature_names(problem))
    table["y"] = problem.y
    return table


def formula(problem: Problem) -> str:
    """``'y ~ x1 + … + x{p−1}'``: the formula whose design is the problem's ``X``."""
    return "y ~ " + " + ".join(feature_names(problem))
