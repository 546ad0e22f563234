"""x·log(y) and x·log(1 + y) with the convention 0·log(0) = 0, as the deviances need them.

``jax.scipy.special.xlogy`` selects 0 *after* the product, and XLA:CPU then will not fuse the
product into the sum that follows: the deviance of 10⁶ Poisson observations took 14 ms
(binomial 24 ms) against 1–2 ms for the same sum of logs. Selecting the argument instead
(log(1) = 0 where x = 0) gives the same values and fuses: 8 ms → 2.4 ms per xlogy at n = 10⁶.
The derivative in ``y`` is x/y where x ≠ 0 and 0 where x = 0, as for the scipy version; the
unselected branch is a constant, so no NaN leaks into gradients at y = 0.
"""

from __future__ import annotations

import jax.numpy as jnp


def xlogy(x, y):
    """x·log(y), 0 where x = 0 (whatever y).

    Examples
    --------
    >>> float(xlogy(0.0, 0.0)), round(float(xlogy(2.0, 3.0)), 6)
    (0.0, 2.197225)
    """
    return x * jnp.log(jnp.where(x == 0, 1.0, y))


def xlog1py(x, y):
    """x·log(1 + y), 0 where x = 0 (whatever y).

    Examples
    --------
    >>> float(xlog1py(0.0, -1.0)), round(float(xlog1py(2.0, 1.0)), 6)
    (0.0, 1.386294)
    """
    return x * jnp.log1p(jnp.where(x == 0, 0.0, y))
