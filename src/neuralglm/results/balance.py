"""The balance of a fit: Σ predicted / Σ observed on the training rows, with the prior weights.

For a canonical link with an intercept the maximum-likelihood GLM is balanced exactly (the
intercept's score equation is Σ wᵢ(yᵢ − μᵢ) = 0), so the portfolio's predicted total equals its
observed one; a network trained by gradient steps, early stopping or a penalty need not be, and
:meth:`~neuralglm.NetworkResult.rebalance` restores it. With an exposure offset the sums are of
counts (μ includes the exposure); with binomial trials in the weights, of successes.
"""

from __future__ import annotations

import numpy as np


def balance_ratio(fit) -> float:
    """``Σ w·μ̂ / Σ w·y`` on the training rows (stored with the fit's statistics, so also in model
    files); NaN with Σ w·y = 0 or for a file written before the balance was stored.

    Examples
    --------
    >>> import neuralglm as ng
    >>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    >>> round(balance_ratio(fit), 12)  # Poisson, log link, intercept: balanced exactly
    1.0
    """
    return float(fit.statistics.balance)


def balance_lines(fit) -> list[str]:
    """The summary's balance line (none when the balance is unknown)."""
    ratio = balance_ratio(fit)
    if not np.isfinite(ratio):
        return []
    return [f"Balance (Σ fitted / Σ observed, training rows): {ratio:.6f}"]
