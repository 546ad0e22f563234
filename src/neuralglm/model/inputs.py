"""Input scaling inside the model: the design matrix → what the network's first layer sees.

The design matrix of :func:`neuralglm.data.design.make_design` holds an ``Intercept``
column, treatment-coded factor dummies and numeric columns. The network drops the intercept
(its output bias plays that role), leaves 0/1 columns (dummies, indicators) as they are, and
standardizes every other column to mean 0 and standard deviation 1. The means and scales are
stored in the fitted model and reapplied by ``predict``, so users never scale by hand.

Treatment coding (a dummy for every level but the first) spans the same functions as a full
one-hot encoding once the first layer has biases, so the design's coding is kept: the same
columns then serve the GLM, the network and ``predict`` on new data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputScaling:
    """Which design columns feed the network, and their centring and scaling.

    Attributes
    ----------
    columns : indices of the design columns used (all but the intercept).
    names : their names.
    mean, scale : (n_in,) subtracted, then divided by; 0 and 1 for 0/1 columns.
    """

    columns: np.ndarray
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray

    @property
    def n_in(self) -> int:
        return len(self.names)

    @property
    def standardized(self) -> tuple[str, ...]:
        """Names of the columns that are centred and scaled (the non-binary ones)."""
        return tuple(name for name, s, m in zip(self.names, self.scale, self.mean, strict=True) if not (s == 1.0 and m == 0.0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(n_obs, n_coef) design matrix → (n_obs, n_in) network inputs, float64."""
        return np.ascontiguousarray((X[:, self.columns] - self.mean) / self.scale)


def fit_scaling(X: np.ndarray, column_names: tuple[str, ...]) -> InputScaling:
    """Means and standard deviations of the non-binary, non-intercept columns of ``X``.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0, 10.0], [1.0, 1.0, 20.0], [1.0, 1.0, 30.0]])
    >>> scaling = fit_scaling(X, ("Intercept", "C(g)[T.b]", "age"))
    >>> scaling.names, scaling.standardized
    (('C(g)[T.b]', 'age'), ('age',))
    >>> scaling.transform(X)[:, 1].round(3).tolist()
    [-1.225, 0.0, 1.225]
    """
    columns = np.array([j for j, name in enumerate(column_names) if name != "Intercept"], dtype=np.intp)
    used = X[:, columns]
    binary = np.all((used == 0.0) | (used == 1.0), axis=0)
    mean = np.where(binary, 0.0, used.mean(axis=0)) if used.shape[0] else np.zeros(len(columns))
    std = used.std(axis=0) if used.shape[0] else np.ones(len(columns))
    scale = np.where(binary | (std == 0.0), 1.0, std)
    return InputScaling(columns, tuple(column_names[j] for j in columns), mean, scale)
