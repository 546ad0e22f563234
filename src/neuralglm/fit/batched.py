"""Many refits of one model at once: the same design, one weight vector per refit, ``jax.vmap`` over the weights.

The bootstrap (:mod:`neuralglm.bootstrapping`) resamples rows as frequency weights, so every
refit shares ``X``, ``y`` and the offset and differs only in its weights. Vectorizing over the
weights turns the refits' matrix-vector products into matrix-matrix products (one BLAS call
for all refits instead of one per refit) and compiles one computation for all of them.

- :func:`irls_replicates`: Fisher scoring (IRLS) in float64 from a given start (the original
  estimate), R's stopping rule (relative deviance change below ``epsilon``) in a
  ``while_loop``; under ``vmap`` a refit that has converged keeps its value while the others
  iterate. The weighted Gram matrix of every refit is one product of the weights with the
  row-wise products of the columns of ``X`` (computed once), so no ``(refits, rows, columns)``
  array is ever formed.
- :func:`lbfgs_replicates`: :func:`neuralglm.fit.gradient_steps.lbfgs_chunk` (the network
  solver's own compiled L-BFGS loop) vectorized over the weights.

Refits run in groups of equal size (the last padded with copies of the first weights), so one
compilation serves all. A GLM's groups are as large as :data:`GLM_GROUP_BYTES` of weights
allow. A network's are small: its refits cost what their arithmetic costs only while the
hidden activations of a group, ``(refits, n_obs, width)``, stay in the CPU's cache. Measured
(2026-12-03, 2 cores, n = 5,000, hidden (16,) tanh, float32: one value-and-gradient per
refit): 0.5-0.9 ms per refit in groups of 2-8, 1.3 ms in groups of 16, 2.2 ms at 32, 4.7 ms
at 64 and 4.5 ms at 200 (one fit alone: 0.8-1.9 ms); hence :data:`NETWORK_GROUP_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import gradient_steps as compiled
from neuralglm.model.architecture import Architecture

GLM_GROUP_BYTES = 1 << 27  # 128 MiB of weights per group: 200 refits × 80,000 rows in float64
PRODUCTS_MAX_BYTES = 1 << 28  # column_products beyond 256 MiB (n·p² float64): weigh X per refit instead
NETWORK_GROUP_BYTES = 1 << 21  # 2 MiB of hidden activations per group: 6 refits at n = 5,000, width 16, float32


def in_groups(counts: np.ndarray, bytes_per_refit: int, budget: int, run: Callable[[np.ndarray], tuple]) -> tuple:
    """``run`` on groups of rows of ``counts`` (one row per refit), results concatenated along the first axis.

    A group holds as many refits as ``budget // bytes_per_refit`` (at least one). Groups have
    equal sizes (the last padded by repeating the first row, whose results are dropped), so a
    compiled ``run`` is traced once.
    """
    n_refits = counts.shape[0]
    size = max(1, min(n_refits, budget // max(1, bytes_per_refit)))
    outputs = []
    for start in range(0, n_refits, size):
        group = counts[start : start + size]
        short = size - len(group)
        if short:
            group = np.concatenate([group, np.repeat(group[:1], short, axis=0)])
        result = run(group)
        outputs.append(jax.tree.map(lambda leaf, keep=size - short: np.asarray(leaf)[:keep], result))
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *outputs)


def column_products(X: np.ndarray) -> np.ndarray:
    """``(n_obs, p·p)``: row ``i`` holds ``x_i x_iᵀ`` flattened, so ``w @ products`` is the flattened ``Xᵀ diag(w) X``."""
    return np.einsum("ni,nj->nij", X, X).reshape(X.shape[0], -1)


@partial(jax.jit, static_argnames=("family", "link", "max_iter"))
def irls_replicates(beta, X, products, y, weights, offset, epsilon, *, family: Family, link: Link, max_iter: int):
    """IRLS for each row of ``weights`` (``(refits, n_obs)``, total weights), all starting at ``beta``.

    ``products`` is :func:`column_products` of ``X``, or ``None`` where it would be too large
    (then each refit forms its weighted Gram matrix from ``X``, and groups should hold
    ``(refits, n_obs, p)`` in memory). Returns ``(coefficients (refits, p), deviance,
    converged, iterations)``. A refit whose Gram
    matrix is singular (e.g. a factor level with no resampled row) ends with non-finite values
    and ``converged`` False. Call it with float64 enabled.
    """
    p = X.shape[1]

    def deviance_at(b, w):
        mu = link.inverse(X @ b + offset)
        return derived.deviance(family, y, mu, w)

    def refit(w):
        counted = w > 0

        def step(state):
            b, dev, _, k = state
            eta = X @ b + offset
            mu = link.inverse(eta)
            # Rows left out of this resample carry no weight; where() keeps 0 · inf from making NaN.
            working_w = jnp.where(counted, derived.irls_weights(family, link, mu, w), 0.0)
            z = jnp.where(counted, derived.working_response(link, eta, y, mu, offset), 0.0)
            # products=None (too large to hold): each refit weighs X itself, (group, n, p) at once.
            gram = X.T @ (working_w[:, None] * X) if products is None else (working_w @ products).reshape(p, p)
            factor = jnp.linalg.cholesky(gram)
            new = jax.scipy.linalg.cho_solve((factor, True), X.T @ (working_w * z))
            new_dev = deviance_at(new, w)
            # R's glm.fit criterion: |dev - dev_old| / (|dev| + 0.1) < epsilon.
            done = jnp.abs(new_dev - dev) / (jnp.abs(new_dev) + 0.1) < epsilon
            return new, new_dev, done, k + 1

        def going(state):
            _, dev, done, k = state
            return (~done) & (k < max_iter) & jnp.isfinite(dev)

        start = (beta, deviance_at(beta, w), jnp.asarray(False), jnp.asarray(0))
        b, dev, done, k = jax.lax.while_loop(going, step, start)
        ok = done & jnp.isfinite(dev) & jnp.all(jnp.isfinite(b))
        return b, dev, ok, k

    return jax.vmap(refit)(weights)


def lbfgs_replicates(
    params,
    X,
    y,
    weights,
    offset,
    l2,
    tol,
    max_steps: int,
    *,
    arch: Architecture,
    family: Family,
    link: Link,
    memory_size: int,
    penalize_output: bool,
):
    """The network's L-BFGS (:func:`~neuralglm.fit.gradient_steps.lbfgs_chunk`) for each row of ``weights``, from ``params``.

    ``weights`` is ``(refits, n_obs)`` (total weights), the other arrays are shared and already
    on the device in the training dtype. Returns ``(params, gmax, steps, stalls)``, each with a
    leading axis of refits: the parameters as a pytree of stacked leaves, the largest gradient
    component at the end, the iterations done and the count of iterations without progress.
    """
    dtype = X.dtype
    state = compiled.init_lbfgs_state(params, memory_size=memory_size)
    statics = {"arch": arch, "family": family, "link": link, "memory_size": memory_size, "penalize_output": penalize_output}
    hyper = (jnp.asarray(l2, dtype), jnp.asarray(max_steps), jnp.asarray(tol, dtype))
    return _lbfgs_vmapped(params, state, X, y, weights, offset, *hyper, **statics)


@partial(jax.jit, static_argnames=("arch", "family", "link", "memory_size", "penalize_output"))
def _lbfgs_vmapped(params, state, X, y, weights, offset, l2, max_steps, tol, **statics):
    # One jit around the vmap, so that a second group of refits reuses the compiled code.
    run = jax.vmap(partial(compiled.lbfgs_chunk, **statics), in_axes=(None, None, None, None, 0, None, None, 0, None, None))
    out, _, _, _, gmax, steps, stalls = run(params, state, X, y, weights, offset, l2, jnp.sum(weights, axis=1), max_steps, tol)
    return out, gmax, steps, stalls
