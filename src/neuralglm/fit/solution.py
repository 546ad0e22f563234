"""What every solver returns: its parameters, its report and, for IRLS, its last weighted least squares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from neuralglm.fit.info import FitInfo
from neuralglm.fit.linalg import GramFactor

P = TypeVar("P")


@dataclass(frozen=True)
class LeastSquaresState:
    """The last weighted least squares of IRLS.

    Attributes
    ----------
    eta, mu : (n_obs,) linear predictor (offset included) and mean at the estimates.
    factor : factor of XᵀWX from the last Gram: the unscaled covariance is its inverse.
    working_weights : (n_obs,) the weights W of that Gram.
    """

    eta: np.ndarray
    mu: np.ndarray
    factor: GramFactor
    working_weights: np.ndarray


def _no_rows() -> np.ndarray:
    return np.arange(0)


@dataclass(frozen=True)
class Solution(Generic[P]):
    """Result of a solver (IRLS, L-BFGS, Adam, SGD).

    Attributes
    ----------
    params : the estimates: IRLS's coefficient vector (float64, shape ``(n_coef,)``), or the
        network's parameters (float64 NumPy leaves) for the gradient solvers.
    info : the report: status, iterations, history (the same columns for every solver).
    best_iteration : the iteration or epoch whose parameters are returned (early stopping
        restores the best validation epoch; otherwise the last).
    train_rows, validation_rows : the rows trained on and those held out (all rows and none
        for IRLS).
    least_squares : IRLS's last weighted least squares (None for the gradient solvers).
    """

    params: P
    info: FitInfo
    best_iteration: int
    train_rows: np.ndarray = field(default_factory=_no_rows, repr=False)
    validation_rows: np.ndarray = field(default_factory=_no_rows, repr=False)
    least_squares: LeastSquaresState | None = field(default=None, repr=False)

    # ---- IRLS's view (the names results/ reads) ------------------------------------------
    @property
    def coef(self) -> np.ndarray:
        """IRLS's coefficient vector."""
        if not isinstance(self.params, np.ndarray):
            raise AttributeError("Only an IRLS solution has a coefficient vector; a network's parameters are in 'params'.")
        return self.params

    def _least_squares(self) -> LeastSquaresState:
        if self.least_squares is None:
            raise AttributeError("Only an IRLS solution carries its last weighted least squares (eta, mu, factor, working_weights).")
        return self.least_squares

    @property
    def eta(self) -> np.ndarray:
        """IRLS's linear predictor at the estimates (offset included)."""
        return self._least_squares().eta

    @property
    def mu(self) -> np.ndarray:
        """IRLS's fitted means."""
        return self._least_squares().mu

    @property
    def factor(self) -> GramFactor:
        """IRLS's factor of the last XᵀWX."""
        return self._least_squares().factor

    @property
    def working_weights(self) -> np.ndarray:
        """IRLS's last working weights."""
        return self._least_squares().working_weights

    # ---- the gradient solvers' name ------------------------------------------------------
    @property
    def best_epoch(self) -> int:
        """The same as ``best_iteration`` (the name results/ reads for networks)."""
        return self.best_iteration
