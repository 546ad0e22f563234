"""The compiled pieces of gradient training: one minibatch epoch, a chunk of L-BFGS iterations, initial weights.

Every compiled function takes the architecture, family, link and the data shapes as static
arguments and every hyper-parameter (learning rate, momentum, ``l2``, tolerances, the random
key) as a traced argument, so a second fit with the same shapes reuses the compiled code
(DESIGN.md §10: compilation costs ~1–3 s, an epoch ~0.1 s). The driver is
:mod:`neuralglm.fit.gradient`.
"""

from __future__ import annotations

from functools import partial
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from neuralglm.model.objective import mean_half_deviance, objective, penalty
from neuralglm.model.params import init_params

LBFGS_MAX_STALLS = 5  # consecutive iterations without decrease before L-BFGS gives up


def minibatch_optimizer(solver: str, learning_rate=1e-3, momentum=0.9):
    """Adam, or SGD with momentum; inside the compiled epoch the two rates are traced arrays."""
    if solver == "adam":
        return optax.adam(learning_rate)
    return optax.sgd(learning_rate, momentum=momentum)


def minibatch_state(params, solver: str):
    """The optimizer's initial state for the flat parameter vector, built on the host.

    optax's Adam (step count, first and second moments) and SGD momentum (trace) start at zero
    (a unit test compares with ``init``), so the state is zeros of the shapes ``init`` would
    give: nothing to compile for it.
    """
    n_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
    dtype = params[-1].weight.dtype
    shapes = jax.eval_shape(minibatch_optimizer(solver).init, jax.ShapeDtypeStruct((n_params,), dtype))
    return jax.tree.map(lambda leaf: jax.device_put(np.zeros(leaf.shape, leaf.dtype)), shapes)


@partial(jax.jit, static_argnames=("arch", "family", "link", "solver", "gather_all", "penalize_output"))
def minibatch_epoch(
    params,
    state,
    rows,
    X,
    y,
    weights,
    offset,
    learning_rate,
    momentum,
    l2,
    total_weight,
    *,
    arch,
    family,
    link,
    solver,
    gather_all,
    penalize_output=True,
):
    """One epoch over ``rows`` (``(n_batches, batch_size)``: a permutation of ``range(n_obs)``
    padded by repeating its first rows), one ``lax.scan``; returns the updated parameters and
    state and the weighted mean deviance of the batches, each at the weights before its update.

    ``gather_all`` gathers every batch of the epoch in one go before the scan (a copy of the
    training data; faster) instead of row by row inside each step.
    """
    n_obs = X.shape[0]
    dtype = X.dtype
    optimizer = minibatch_optimizer(solver, learning_rate, momentum)
    theta, unravel = ravel_pytree(params)
    # The padding rows (positions ≥ n_obs) get weight 0, so every row counts exactly once per epoch.
    real = jnp.arange(rows.size).reshape(rows.shape) < n_obs
    batch_w = jnp.where(real, weights[rows], 0.0).astype(dtype)
    batch_total = jnp.sum(batch_w, axis=1)
    batches = (X[rows], y[rows], batch_w, offset[rows], batch_total) if gather_all else (rows, batch_w, batch_total)

    def batch_loss(theta, Xb, yb, wb, ob, total_b):
        p = unravel(theta)
        nonempty = total_b > 0
        safe = jnp.where(nonempty, wb, jnp.ones_like(wb))  # an all-zero-weight batch contributes nothing
        deviance_part = mean_half_deviance(p, arch, family, link, Xb, yb, safe, ob) * nonempty
        return deviance_part + l2 * penalty(p, penalize_output, arch) / total_weight, deviance_part

    def step(carry, batch):
        theta, s = carry
        if gather_all:
            Xb, yb, wb, ob, total_b = batch
        else:
            index, wb, total_b = batch
            Xb, yb, ob = X[index], y[index], offset[index]
        (_, half_dev), grads = jax.value_and_grad(batch_loss, has_aux=True)(theta, Xb, yb, wb, ob, total_b)
        updates, s = optimizer.update(grads, s, theta)
        return (optax.apply_updates(theta, updates), s), half_dev * total_b

    (theta, state), sums = jax.lax.scan(step, (theta, state), batches)
    mean_deviance = 2.0 * jnp.sum(sums) / jnp.sum(batch_total)
    return unravel(cast(jax.Array, theta)), state, mean_deviance


@partial(jax.jit, static_argnames=("arch", "family", "link"))
def mean_deviance(params, X, y, weights, offset, *, arch, family, link):
    """Weighted mean unit deviance ``sum(w·d) / sum(w)`` (the history's unit)."""
    return 2.0 * mean_half_deviance(params, arch, family, link, X, y, weights, offset)


def lbfgs(memory_size: int):
    return optax.lbfgs(memory_size=memory_size, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))


@partial(jax.jit, static_argnames=("memory_size",))
def init_lbfgs_state(params, *, memory_size):
    """The L-BFGS state of the flat parameter vector (see :func:`lbfgs_chunk`)."""
    return strong(lbfgs(memory_size).init(ravel_pytree(params)[0]))


def strong(tree):
    """The same arrays without weak types, so the state's signature never changes between calls (no retracing)."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.dtype(a.dtype)), tree)


@partial(jax.jit, static_argnames=("arch", "family", "link", "memory_size", "penalize_output"))
def lbfgs_chunk(
    params, state, X, y, weights, offset, l2, total_weight, max_steps, tol, *, arch, family, link, memory_size, penalize_output=True
):
    """Up to ``max_steps`` L-BFGS iterations; returns (params, state, value, mean deviance, max|grad|, steps, stalls).

    The optimizer works on one flat parameter vector: optax's L-BFGS and its zoom line search
    repeat every vector operation per leaf of the parameter tree, and with one leaf XLA
    compiles this function in 1.4 s instead of 2.2 s for hidden (32,), 1.6 s instead of 3.2 s
    for (64, 64, 32) (measured on the 2-core machine, 2026-12-03).
    """
    optimizer = lbfgs(memory_size)
    theta, unravel = ravel_pytree(params)

    def loss(theta):
        return objective(unravel(theta), arch, family, link, X, y, weights, offset, l2, total_weight, penalize_output)

    value_and_grad = optax.value_and_grad_from_state(loss)

    def grad_max(s):
        return jnp.max(jnp.abs(optax.tree.get(s, "grad")))

    def cond(carry):
        _, _, _, gmax, k, stalls = carry
        return (k < max_steps) & (gmax > tol) & (stalls < LBFGS_MAX_STALLS) & jnp.isfinite(gmax)

    def body(carry):
        p, s, _, _, k, stalls = carry
        value, grad = value_and_grad(p, state=s)
        updates, s = optimizer.update(grad, s, p, value=value, grad=grad, value_fn=loss)
        p = optax.apply_updates(p, updates)
        new_value = optax.tree.get(s, "value")
        # A decrease below a few ulps is noise: the optimum is reached to working precision.
        progress = value - new_value > 4 * jnp.finfo(dtype).eps * jnp.abs(value)
        stalls = jnp.where(progress, 0, stalls + 1)
        return p, s, new_value, grad_max(s), k + 1, stalls

    dtype = X.dtype
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)
    start = (theta, state, big, big, jnp.asarray(0), jnp.asarray(0))
    theta, state, value, gmax, steps, stalls = jax.lax.while_loop(cond, body, start)
    params = unravel(theta)
    deviance = 2.0 * mean_half_deviance(params, arch, family, link, X, y, weights, offset)
    return params, state, value, deviance, gmax, steps, stalls


@partial(jax.jit, static_argnames=("arch", "n_in", "has_bias", "dtype"))
def init_network(key, bias, *, arch, n_in, has_bias, dtype):
    """:func:`init_params` from the first of three keys split from ``key``, compiled once per shape.

    Eager random operations would each compile on first use. (Drawing with NumPy instead would
    save this compilation, ~0.5 s per process, but would change every seed's initial weights.)
    """
    key_init = jax.random.split(key, 3)[0]
    params = init_params(arch, n_in, key_init, output_bias=0.0 if has_bias else None, dtype=dtype)
    if has_bias:
        params = (*params[:-1], params[-1]._replace(bias=jnp.reshape(bias, (1,)).astype(dtype)))
    return params


@jax.jit
def max_change(before, after):
    """Largest absolute change of any parameter (the history's ``step``)."""
    return jnp.max(jnp.abs(ravel_pytree(after)[0] - ravel_pytree(before)[0]))
