r"""Influence measures of a fitted GLM: leverage, standardized residuals, Cook's distance.

The hat matrix of a GLM is that of the final IRLS weighted least-squares step,

.. math:: H = W^{1/2} X (X^\top W X)^{-1} X^\top W^{1/2},

with :math:`W` the working (IRLS) weights from :func:`neuralglm.family.derived.irls_weights`.
For a network the same is computed on the learned features (the design of the output layer),
so the measures are conditional on those features, like ``NetworkResult.output_glm()``.

References: Pregibon (1981), *Logistic regression diagnostics*, Ann. Statist. 9, 705–724;
Williams (1987), *Generalized linear model diagnostics using the deviance and single case
deletions*, Appl. Statist. 36, 181–191; R's ``hatvalues``, ``rstandard``, ``cooks.distance``.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from neuralglm.family import derived

INFLUENCE_COLUMNS = ("leverage", "standardized_deviance", "standardized_pearson", "cooks_distance")


def _output_design(fit) -> np.ndarray:
    """The matrix whose column space the fitted linear predictor lies in: X, or the learned features."""
    if fit.kind == "glm" or fit.architecture.n_hidden == 0:
        return np.asarray(fit.design.checked_X(), dtype=np.float64)
    features = fit.features().to_numpy(dtype=np.float64)
    if fit.params[-1].bias is None:
        return features
    return np.column_stack([np.ones(len(features)), features])


def _unscaled_covariance(fit, X: np.ndarray, working_weights: np.ndarray) -> np.ndarray:
    r""":math:`(X^\top W X)^{-1}`: the fit's own ``vcov / dispersion`` when it is that matrix."""
    dispersion = float(fit.dispersion)
    if fit.kind == "glm" and fit.cov_type == "expected" and np.isfinite(dispersion) and dispersion > 0:
        if fit.vcov.shape == (X.shape[1], X.shape[1]):
            return np.asarray(fit.vcov, dtype=np.float64) / dispersion
    root = np.sqrt(working_weights)[:, None] * X
    # pinv: a network may learn collinear (or constant) features; their weight is not identified.
    return np.linalg.pinv(root.T @ root)


def influence(fit) -> pd.DataFrame:
    r"""Leverage, standardized residuals and Cook's distance of each observation.

    Parameters
    ----------
    fit : FitResult or NetworkResult
        A fitted model. For a network with hidden layers the hat matrix is that of the
        output layer on the learned features (conditional on them).

    Returns
    -------
    pd.DataFrame
        One row per observation (indexed like the data), columns

        - ``leverage``: :math:`h_i`, the diagonal of the hat matrix (R's ``hatvalues``);
        - ``standardized_deviance``: :math:`r_{D,i} / \sqrt{\phi (1 - h_i)}` (R's ``rstandard``);
        - ``standardized_pearson``: :math:`r_{P,i} / \sqrt{\phi (1 - h_i)}`
          (statsmodels' ``resid_studentized``);
        - ``cooks_distance``: :math:`D_i = r_{SP,i}^2\, h_i / (p (1 - h_i))` (R's ``cooks.distance``).

    Notes
    -----
    :math:`h_i = w_i\, x_i^\top (X^\top W X)^{-1} x_i` with :math:`w_i` the IRLS weights; for
    ``cov_type="expected"`` :math:`(X^\top W X)^{-1}` is ``vcov / dispersion``. The leverages
    sum to the rank :math:`p`. Cook's distance is the one-step approximation of Williams
    (1987), with :math:`p` the number of coefficients and :math:`\phi` the fit's dispersion.
    With frequency weights each row is reported as one of its identical copies.

    Examples
    --------
    >>> import neuralglm as ng
    >>> from neuralglm.inference.influence import influence
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
    ...              family="poisson", exposure="holders")
    >>> table = influence(fit)
    >>> list(table.columns)
    ['leverage', 'standardized_deviance', 'standardized_pearson', 'cooks_distance']
    >>> round(float(table["leverage"].sum()), 6)  # the trace of H is the number of coefficients
    10.0
    """
    fit.require_data("influence()")
    design = fit.design
    X = _output_design(fit)
    with jax.enable_x64(True):
        working = np.asarray(derived.irls_weights(fit.family, fit.link, fit.fitted_mu, design.weights), dtype=np.float64)
    unscaled = _unscaled_covariance(fit, X, working)
    leverage = working * np.einsum("ij,jk,ik->i", X, unscaled, X)
    leverage = np.clip(leverage, 0.0, 1.0)
    n_coef = max(round(float(leverage.sum())), 1)  # trace(H) = rank(X)
    dispersion = float(fit.dispersion)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(dispersion * (1.0 - leverage))
        std_deviance = fit.residuals("deviance").to_numpy() / scale
        std_pearson = fit.residuals("pearson").to_numpy() / scale
        cooks = std_pearson**2 * leverage / (n_coef * (1.0 - leverage))
    return pd.DataFrame(
        {
            "leverage": leverage,
            "standardized_deviance": std_deviance,
            "standardized_pearson": std_pearson,
            "cooks_distance": cooks,
        },
        index=pd.Index(design.row_labels),
    )
