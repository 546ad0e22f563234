"""Gradient training of networks (and of GLMs) with optax: full-batch L-BFGS, minibatch Adam/SGD.

Every compiled function is defined at module level with the architecture, family, link and
the data shapes as static arguments and every hyper-parameter (learning rate, momentum,
``l2``, tolerances, the random key) as a traced argument, so a second fit with the same
shapes reuses the compiled code (DESIGN.md §10: compilation costs ~1–3 s, an epoch ~0.1 s).

- Minibatch solvers run one whole epoch as a single ``jax.lax.scan`` over the batches of a
  random permutation (the last batch is padded with zero-weight rows, so every row counts
  exactly once per epoch). Python only sees epoch boundaries: history, early stopping, the
  progress bar and the divergence check. The permutation is drawn by NumPy on the host while
  the previous epoch runs (``jax.random.permutation`` sorts, which took half of each epoch on
  CPU), the epoch's batches are gathered in one go, and the optimizer acts on one flat
  parameter vector (one fused update instead of one per layer); see benchmarks/README.md.
- L-BFGS (``optax.lbfgs`` with its zoom line search, on one flat parameter vector, which
  compiles in about half the time of the parameter tree) runs in a compiled ``while_loop`` in
  chunks of :data:`LBFGS_CHUNK` iterations; it stops when the largest gradient component of
  the objective is below ``tol`` or when the line search can make no further progress.

Randomness: the initial weights come from ``jax.random.key(seed)`` (split in three, the first
key); the validation split and the minibatch order from NumPy generators spawned from the same
integer (``numpy.random.SeedSequence(seed).spawn(3)``, the second and third), which need no
compilation. The same seed gives the same fit.

Non-convergence warns (:class:`~neuralglm.errors.ConvergenceWarning`) and is recorded in the
returned :class:`~neuralglm.fit.info.FitInfo`; a non-finite loss raises
:class:`~neuralglm.errors.DivergenceError` with advice.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jax.flatten_util import ravel_pytree

from neuralglm.errors import ConvergenceWarning, DivergenceError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.info import FitInfo, Status
from neuralglm.model.architecture import Architecture
from neuralglm.model.objective import mean_half_deviance, objective, penalty
from neuralglm.model.params import Params, cast_params, init_params, to_numpy

SOLVERS = ("lbfgs", "adam", "sgd")
LBFGS_CHUNK = 50  # iterations per compiled call: Python sees progress this often
# Gather a whole epoch's batches at once (a copy of the training data) while that copy is at most
# this size; beyond, each step gathers its own rows. At n=1e5, p=20, (64, 64) the one gather made
# an epoch ~20% faster (benchmarks/README.md).
GATHER_ALL_MAX_BYTES = 1 << 28
_LBFGS_MAX_STALLS = 5  # consecutive iterations without decrease before L-BFGS gives up


@dataclass(frozen=True)
class GradientControl:
    """Options of :func:`fit_gradient` (validated by :func:`neuralglm.fit`).

    Attributes
    ----------
    solver : ``"lbfgs"``, ``"adam"`` or ``"sgd"`` (with momentum).
    learning_rate : step size of Adam/SGD, or a callable ``epoch -> step size`` (evaluated in
        Python once per epoch, so a schedule never recompiles).
    epochs : maximum number of epochs (L-BFGS: iterations).
    batch_size : rows per minibatch (Adam/SGD).
    l2 : prior precision of the weights (see :mod:`neuralglm.model.objective`).
    penalize_output : whether ``l2`` also applies to the output layer's weights.
    momentum : SGD momentum.
    early_stopping, validation_fraction, patience : monitor the deviance of a random
        ``validation_fraction`` of the rows and stop after ``patience`` epochs without a
        relative improvement of ``tol``; the best weights are restored.
    tol : L-BFGS: gradient tolerance (largest component); Adam/SGD: relative improvement
        of the monitored deviance below which an epoch counts as no progress.
    memory_size : L-BFGS history length.
    """

    solver: str = "adam"
    learning_rate: float | Callable[[int], float] = 1e-3
    epochs: int = 200
    batch_size: int = 256
    l2: float = 0.0
    penalize_output: bool = True
    momentum: float = 0.9
    early_stopping: bool = False
    validation_fraction: float = 0.1
    patience: int = 10
    tol: float = 1e-4
    memory_size: int = 10


@dataclass(frozen=True)
class GradientSolution:
    """Trained parameters (float64 NumPy), the rows used for training, and the solver report."""

    params: Params
    info: FitInfo
    best_epoch: int
    train_rows: np.ndarray
    validation_rows: np.ndarray


# ---- compiled pieces ------------------------------------------------------------------------


def _optimizer(solver: str, learning_rate=1e-3, momentum=0.9):
    """Adam, or SGD with momentum; inside the compiled epoch the two rates are traced arrays."""
    if solver == "adam":
        return optax.adam(learning_rate)
    return optax.sgd(learning_rate, momentum=momentum)


def _minibatch_state(params, solver: str):
    """The optimizer's initial state for the flat parameter vector, built on the host.

    optax's Adam (step count, first and second moments) and SGD momentum (trace) start at zero
    (a unit test compares with ``init``), so the state is zeros of the shapes ``init`` would
    give: nothing to compile for it.
    """
    n_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
    dtype = params[-1].weight.dtype
    shapes = jax.eval_shape(_optimizer(solver).init, jax.ShapeDtypeStruct((n_params,), dtype))
    return jax.tree.map(lambda leaf: jax.device_put(np.zeros(leaf.shape, leaf.dtype)), shapes)


@partial(jax.jit, static_argnames=("arch", "family", "link", "solver", "gather_all", "penalize_output"))
def _minibatch_epoch(
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
    optimizer = _optimizer(solver, learning_rate, momentum)
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
        return deviance_part + l2 * penalty(p, penalize_output) / total_weight, deviance_part

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
def _mean_deviance(params, X, y, weights, offset, *, arch, family, link):
    """Weighted mean unit deviance ``sum(w·d) / sum(w)`` (the history's unit)."""
    return 2.0 * mean_half_deviance(params, arch, family, link, X, y, weights, offset)


def _lbfgs(memory_size: int):
    return optax.lbfgs(memory_size=memory_size, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))


@partial(jax.jit, static_argnames=("memory_size",))
def _init_lbfgs_state(params, *, memory_size):
    """The L-BFGS state of the flat parameter vector (see :func:`_lbfgs_chunk`)."""
    return _strong(_lbfgs(memory_size).init(ravel_pytree(params)[0]))


def _strong(tree):
    """The same arrays without weak types, so the state's signature never changes between calls (no retracing)."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.dtype(a.dtype)), tree)


@partial(jax.jit, static_argnames=("arch", "family", "link", "memory_size", "penalize_output"))
def _lbfgs_chunk(
    params, state, X, y, weights, offset, l2, total_weight, max_steps, tol, *, arch, family, link, memory_size, penalize_output=True
):
    """Up to ``max_steps`` L-BFGS iterations; returns (params, state, value, mean deviance, max|grad|, steps, stalls).

    The optimizer works on one flat parameter vector: optax's L-BFGS and its zoom line search
    repeat every vector operation per leaf of the parameter tree, and with one leaf XLA
    compiles this function in 1.4 s instead of 2.2 s for hidden (32,), 1.6 s instead of 3.2 s
    for (64, 64, 32) (measured on the 2-core machine, 2026-12-03).
    """
    optimizer = _lbfgs(memory_size)
    theta, unravel = ravel_pytree(params)

    def loss(theta):
        return objective(unravel(theta), arch, family, link, X, y, weights, offset, l2, total_weight, penalize_output)

    value_and_grad = optax.value_and_grad_from_state(loss)

    def grad_max(s):
        return jnp.max(jnp.abs(optax.tree.get(s, "grad")))

    def cond(carry):
        _, _, _, gmax, k, stalls = carry
        return (k < max_steps) & (gmax > tol) & (stalls < _LBFGS_MAX_STALLS) & jnp.isfinite(gmax)

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
def _init(key, bias, *, arch, n_in, has_bias, dtype):
    """:func:`init_params` from the first of three keys split from ``key``, compiled once per shape.

    Eager random operations would each compile on first use. (Drawing with NumPy instead would
    save this compilation, ~0.5 s per process, but would change every seed's initial weights.)
    """
    key_init = jax.random.split(key, 3)[0]
    params = init_params(arch, n_in, key_init, output_bias=0.0 if has_bias else None, dtype=dtype)
    if has_bias:
        params = (*params[:-1], params[-1]._replace(bias=jnp.reshape(bias, (1,)).astype(dtype)))
    return params


# ---- driver ---------------------------------------------------------------------------------


def _divergence(solver: str, epoch: int, control: GradientControl) -> DivergenceError:
    rate = "" if solver == "lbfgs" else f", learning rate {_rate_at(control, epoch):g}"
    return DivergenceError(
        f"The training loss became non-finite at epoch {epoch} (solver {solver}{rate}). Try a lower learning_rate "
        "(or solver='lbfgs'), check the scale of the response and of any offset/exposure (numeric inputs are "
        "standardized already), look for outliers, or add an l2 penalty."
    )


def _on_device(values, dtype) -> jax.Array:
    """NumPy conversion, then a plain copy: ``jnp.asarray`` of host data compiles a copy per shape."""
    return jax.device_put(np.asarray(values, dtype=dtype))


def _rate_at(control: GradientControl, epoch: int) -> float:
    rate = control.learning_rate
    return float(rate(epoch)) if callable(rate) else float(rate)


def split_rows(n_obs: int, rng: np.random.Generator, validation_fraction: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Random training/validation rows (sorted), the validation part ``ceil(fraction·n)`` rows."""
    if not validation_fraction:
        return np.arange(n_obs), np.arange(0)
    order = rng.permutation(n_obs)
    n_validation = max(1, math.ceil(validation_fraction * n_obs))
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def fit_gradient(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    family: Family,
    link: Link,
    arch: Architecture,
    control: GradientControl,
    *,
    output_bias: float | None,
    seed: int = 0,
    dtype=jnp.float32,
    progress: bool | None = None,
    start: Params | None = None,
) -> GradientSolution:
    """Train ``arch`` on ``(X, y)`` by minimizing :func:`neuralglm.model.objective.objective`.

    Parameters
    ----------
    X : (n_obs, n_in) inputs (standardized, no intercept column).
    y, weights, offset : (n_obs,) response, total weights, offset.
    family, link, arch : the model.
    control : solver options.
    output_bias : starting output bias (the intercept-only fit), or ``None`` for no bias.
    seed : seeds the initial weights, the validation split and the minibatch order.
    dtype : training dtype (``jnp.float32`` or ``jnp.float64``).
    progress : progress bar (``None``: only on a terminal, after one second).
    start : optional starting parameters (overrides the random initialization).

    Returns
    -------
    GradientSolution

    Raises
    ------
    DivergenceError
        if the loss becomes non-finite.
    """
    started = time.perf_counter()
    dtype = jnp.dtype(dtype)
    _, seed_split, seed_shuffle = np.random.SeedSequence(seed).spawn(3)
    with jax.enable_x64(dtype == jnp.float64):
        fraction = control.validation_fraction if control.early_stopping else None
        train_rows, validation_rows = split_rows(X.shape[0], np.random.default_rng(seed_split), fraction)
        if start is None:
            bias = _on_device(0.0 if output_bias is None else output_bias, dtype)
            params = _init(jax.random.key(seed), bias, arch=arch, n_in=X.shape[1], has_bias=output_bias is not None, dtype=dtype)
        else:
            params = cast_params(start, dtype)

        def device(values, rows):
            return _on_device(values[rows] if len(rows) < len(values) else values, dtype)

        train = tuple(device(v, train_rows) for v in (X, y, weights, offset))
        validation = tuple(device(v, validation_rows) for v in (X, y, weights, offset)) if len(validation_rows) else None
        total_weight = _on_device(np.sum(weights[train_rows], dtype=np.float64), dtype)
        static = {"arch": arch, "family": family, "link": link}
        if control.solver == "lbfgs":
            result = _run_lbfgs(params, train, total_weight, control, static, progress, started)
        else:
            shuffle = np.random.default_rng(seed_shuffle)
            result = _run_minibatch(params, train, total_weight, validation, shuffle, control, static, progress, started)
    params_out, info, best_epoch = result
    return GradientSolution(to_numpy(params_out), info, best_epoch, train_rows, validation_rows)


def _progress_bar(total: int, solver: str, progress: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"neuralglm {solver}", disable=None if progress is None else not progress, leave=False, delay=1.0)


def _run_lbfgs(params, train, total_weight, control: GradientControl, static, progress, started):
    X, y, weights, offset = train
    dtype = X.dtype
    l2 = _on_device(control.l2, dtype)
    tol = _on_device(control.tol, dtype)
    state = _init_lbfgs_state(params, memory_size=control.memory_size)
    records = []
    done = 0
    gmax = float("inf")
    stalls = 0
    bar = _progress_bar(control.epochs, "lbfgs", progress)
    try:
        while done < control.epochs:
            chunk = min(LBFGS_CHUNK, control.epochs - done)
            params, state, value, deviance_j, gmax_j, steps, stalls_j = _lbfgs_chunk(
                params,
                state,
                X,
                y,
                weights,
                offset,
                l2,
                total_weight,
                _on_device(chunk, np.int32),
                tol,
                memory_size=control.memory_size,
                penalize_output=control.penalize_output,
                **static,
            )
            steps, gmax, stalls, deviance = int(steps), float(gmax_j), int(stalls_j), float(deviance_j)
            done += steps
            if not (np.isfinite(float(value)) and np.isfinite(deviance) and np.isfinite(gmax)):
                raise _divergence("lbfgs", done, control)
            records.append((done, deviance, np.nan, gmax, time.perf_counter() - started))
            bar.update(steps)
            bar.set_postfix(deviance=f"{deviance:.6g}", grad=f"{gmax:.2e}")
            if gmax <= control.tol or stalls >= _LBFGS_MAX_STALLS or steps < chunk:
                break
    finally:
        bar.close()
    history = pd.DataFrame(records, columns=["epoch", "train_deviance", "validation_deviance", "max_gradient", "seconds"])
    if gmax <= control.tol:
        converged, status, message = (
            True,
            Status.CONVERGED,
            f"{Status.CONVERGED.value} (largest gradient component {gmax:.2e} ≤ tol={control.tol:g})",
        )
    elif stalls >= _LBFGS_MAX_STALLS:
        converged, status = True, Status.CONVERGED
        message = (
            f"The line search could make no further progress (largest gradient component {gmax:.2e}): the optimum is reached "
            "to the working precision; use dtype='float64' for a tighter fit."
        )
    else:
        converged, status = False, Status.MAX_ITER
        message = (
            f"L-BFGS stopped after {done} iterations with largest gradient component {gmax:.2e} > tol={control.tol:g}: increase epochs."
        )
        warnings.warn(message, ConvergenceWarning, stacklevel=4)
    info = FitInfo(converged, done, status, "lbfgs", message=message, history=history, seconds=time.perf_counter() - started)
    return params, info, done


def _run_minibatch(
    params, train, total_weight, validation, shuffle: np.random.Generator, control: GradientControl, static, progress, started
):
    X, y, weights, offset = train
    dtype = X.dtype
    n_obs = X.shape[0]
    batch_size = min(control.batch_size, n_obs)
    n_batches = -(-n_obs // batch_size)
    n_pad = n_batches * batch_size - n_obs
    gather_all = n_batches * batch_size * (X.shape[1] + 3) * dtype.itemsize <= GATHER_ALL_MAX_BYTES
    l2 = _on_device(control.l2, dtype)
    momentum = _on_device(control.momentum, dtype)
    state = _minibatch_state(params, control.solver)

    def epoch_rows():
        order = shuffle.permutation(n_obs).astype(np.int32)
        return jax.device_put(np.concatenate([order, order[:n_pad]]).reshape(n_batches, batch_size))

    rows = epoch_rows()
    records = []
    best_score, best_params, best_epoch = float("inf"), params, 0
    since_best = 0
    stopped = False
    bar = _progress_bar(control.epochs, control.solver, progress)
    try:
        for epoch in range(1, control.epochs + 1):
            rate = _rate_at(control, epoch - 1)
            params, state, train_deviance = _minibatch_epoch(
                params,
                state,
                rows,
                X,
                y,
                weights,
                offset,
                _on_device(rate, dtype),
                momentum,
                l2,
                total_weight,
                solver=control.solver,
                gather_all=gather_all,
                penalize_output=control.penalize_output,
                **static,
            )
            if epoch < control.epochs:
                rows = epoch_rows()  # drawn while the device runs this epoch (JAX dispatches asynchronously)
            train_deviance = float(train_deviance)
            validation_deviance = float(_mean_deviance(params, *validation, **static)) if validation is not None else np.nan
            if not (np.isfinite(train_deviance) and (validation is None or np.isfinite(validation_deviance))):
                raise _divergence(control.solver, epoch, control)
            records.append((epoch, train_deviance, validation_deviance, rate, time.perf_counter() - started))
            bar.update(1)
            bar.set_postfix(deviance=f"{train_deviance:.6g}")
            score = validation_deviance if validation is not None else train_deviance
            if score < best_score - control.tol * abs(best_score) or not np.isfinite(best_score):
                since_best = 0
            else:
                since_best += 1
            if score < best_score:
                best_score, best_epoch = score, epoch
                if validation is not None:
                    best_params = params
            if since_best >= control.patience:
                stopped = True
                break
    finally:
        bar.close()
    history = pd.DataFrame(records, columns=["epoch", "train_deviance", "validation_deviance", "learning_rate", "seconds"])
    n_epochs = len(records)
    if validation is not None:
        params = best_params
    if stopped and validation is not None:
        status = Status.EARLY_STOPPED
        message = f"{Status.EARLY_STOPPED.value} (best validation deviance at epoch {best_epoch} of {n_epochs})"
    elif stopped:
        status = Status.CONVERGED
        message = f"{Status.CONVERGED.value} (training deviance improved by less than tol={control.tol:g} for {control.patience} epochs)"
    else:
        status = Status.MAX_EPOCHS
        message = (
            f"{Status.MAX_EPOCHS.value} ({control.epochs}) while the {'validation' if validation is not None else 'training'} deviance "
            "was still improving: increase epochs or the learning rate."
        )
        warnings.warn(message, ConvergenceWarning, stacklevel=4)
    if validation is None:
        best_epoch = n_epochs
    info = FitInfo(stopped, n_epochs, status, control.solver, message=message, history=history, seconds=time.perf_counter() - started)
    return params, info, best_epoch
