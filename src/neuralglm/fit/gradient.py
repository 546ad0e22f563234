"""Gradient training of networks (and of GLMs) with optax: full-batch L-BFGS, minibatch Adam/SGD.

Every compiled function is defined at module level with the architecture, family, link and
the data shapes as static arguments and every hyper-parameter (learning rate, momentum,
``l2``, tolerances, the random key) as a traced argument, so a second fit with the same
shapes reuses the compiled code (DESIGN.md §10: compilation costs ~1–3 s, an epoch ~0.1 s).

- Minibatch solvers run one whole epoch as a single ``jax.lax.scan`` over the batches of a
  random permutation (the last batch is padded with zero-weight rows, so every row counts
  exactly once per epoch). Python only sees epoch boundaries: history, early stopping, the
  progress bar and the divergence check.
- L-BFGS (``optax.lbfgs`` with its zoom line search) runs in a compiled ``while_loop`` in
  chunks of :data:`LBFGS_CHUNK` iterations; it stops when the largest gradient component of
  the objective is below ``tol`` or when the line search can make no further progress.

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

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from neuralglm.errors import ConvergenceWarning, DivergenceError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.info import FitInfo, Status
from neuralglm.model.architecture import Architecture
from neuralglm.model.objective import mean_half_deviance, objective, penalty
from neuralglm.model.params import Params, cast_params, init_params, to_numpy

SOLVERS = ("lbfgs", "adam", "sgd")
LBFGS_CHUNK = 50  # iterations per compiled call: Python sees progress this often
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


def _optimizer(solver: str):
    if solver == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    return optax.inject_hyperparams(optax.sgd)(learning_rate=1e-2, momentum=0.9)


def _with_hyperparams(state, learning_rate, momentum, dtype):
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(learning_rate, dtype=dtype)
    if "momentum" in hyper:
        hyper["momentum"] = jnp.asarray(momentum, dtype=dtype)
    return state._replace(hyperparams=hyper)


@partial(jax.jit, static_argnames=("solver",))
def _init_minibatch_state(params, learning_rate, momentum, *, solver):
    dtype = params[-1].weight.dtype
    return _strong(_with_hyperparams(_optimizer(solver).init(params), learning_rate, momentum, dtype))


@partial(jax.jit, static_argnames=("arch", "family", "link", "solver", "n_batches", "batch_size"))
def _minibatch_epoch(
    params,
    state,
    key,
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
    n_batches,
    batch_size,
):
    """One epoch: a random permutation cut into ``n_batches`` batches, one ``lax.scan``."""
    n_obs = X.shape[0]
    dtype = X.dtype
    optimizer = _optimizer(solver)
    state = _with_hyperparams(state, learning_rate, momentum, dtype)
    order = jax.random.permutation(key, n_obs)
    n_pad = n_batches * batch_size - n_obs
    rows = jnp.concatenate([order, order[:n_pad]]).reshape(n_batches, batch_size)
    mask = jnp.concatenate([jnp.ones(n_obs, dtype), jnp.zeros(n_pad, dtype)]).reshape(n_batches, batch_size)

    def batch_loss(p, Xb, yb, wb, ob):
        batch_weight = jnp.sum(wb)
        safe = jnp.where(batch_weight > 0, wb, jnp.ones_like(wb))  # an all-zero-weight batch contributes nothing
        deviance_part = mean_half_deviance(p, arch, family, link, Xb, yb, safe, ob) * (batch_weight > 0)
        return deviance_part + l2 * penalty(p) / total_weight, deviance_part

    def step(carry, batch):
        p, s = carry
        index, m = batch
        wb = weights[index] * m
        (_, half_dev), grads = jax.value_and_grad(batch_loss, has_aux=True)(p, X[index], y[index], wb, offset[index])
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), (half_dev * jnp.sum(wb), jnp.sum(wb))

    (params, state), (sums, batch_weights) = jax.lax.scan(step, (params, state), (rows, mask))
    mean_deviance = 2.0 * jnp.sum(sums) / jnp.sum(batch_weights)
    return params, state, mean_deviance


@partial(jax.jit, static_argnames=("arch", "family", "link"))
def _mean_deviance(params, X, y, weights, offset, *, arch, family, link):
    """Weighted mean unit deviance ``sum(w·d) / sum(w)`` (the history's unit)."""
    return 2.0 * mean_half_deviance(params, arch, family, link, X, y, weights, offset)


def _lbfgs(memory_size: int):
    return optax.lbfgs(memory_size=memory_size, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=30))


@partial(jax.jit, static_argnames=("memory_size",))
def _init_lbfgs_state(params, *, memory_size):
    return _strong(_lbfgs(memory_size).init(params))


def _strong(tree):
    """The same arrays without weak types, so the state's signature never changes between calls (no retracing)."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.dtype(a.dtype)), tree)


@partial(jax.jit, static_argnames=("arch", "family", "link", "memory_size"))
def _lbfgs_chunk(params, state, X, y, weights, offset, l2, total_weight, max_steps, tol, *, arch, family, link, memory_size):
    """Up to ``max_steps`` L-BFGS iterations; returns (params, state, value, max|grad|, steps, stalls)."""
    optimizer = _lbfgs(memory_size)

    def loss(p):
        return objective(p, arch, family, link, X, y, weights, offset, l2, total_weight)

    value_and_grad = optax.value_and_grad_from_state(loss)

    def grad_max(s):
        grad = optax.tree.get(s, "grad")
        return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(grad)]))

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
    start = (params, state, big, big, jnp.asarray(0), jnp.asarray(0))
    params, state, value, gmax, steps, stalls = jax.lax.while_loop(cond, body, start)
    return params, state, value, gmax, steps, stalls


@partial(jax.jit, static_argnames=("arch", "n_in", "has_bias", "dtype"))
def _init(key, bias, *, arch, n_in, has_bias, dtype):
    """:func:`init_params` compiled once per shape (eager random ops would each compile on first use)."""
    params = init_params(arch, n_in, key, output_bias=0.0 if has_bias else None, dtype=dtype)
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


def _rate_at(control: GradientControl, epoch: int) -> float:
    rate = control.learning_rate
    return float(rate(epoch)) if callable(rate) else float(rate)


def split_rows(n_obs: int, key: jax.Array, validation_fraction: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Random training/validation rows (sorted), the validation part ``ceil(fraction·n)`` rows."""
    if not validation_fraction:
        return np.arange(n_obs), np.arange(0)
    order = np.asarray(jax.random.permutation(key, n_obs))
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
    with jax.enable_x64(dtype == jnp.float64):
        key_init, key_split, key_shuffle = jax.random.split(jax.random.key(seed), 3)
        fraction = control.validation_fraction if control.early_stopping else None
        train_rows, validation_rows = split_rows(X.shape[0], key_split, fraction)
        if start is None:
            bias = jnp.asarray(0.0 if output_bias is None else output_bias, dtype)
            params = _init(key_init, bias, arch=arch, n_in=X.shape[1], has_bias=output_bias is not None, dtype=dtype)
        else:
            params = cast_params(start, dtype)

        def device(values, rows):
            return jnp.asarray(values[rows] if len(rows) < len(values) else values, dtype=dtype)

        train = tuple(device(v, train_rows) for v in (X, y, weights, offset))
        validation = tuple(device(v, validation_rows) for v in (X, y, weights, offset)) if len(validation_rows) else None
        static = {"arch": arch, "family": family, "link": link}
        if control.solver == "lbfgs":
            result = _run_lbfgs(params, train, control, static, progress, started)
        else:
            result = _run_minibatch(params, train, validation, key_shuffle, control, static, progress, started)
    params_out, info, best_epoch = result
    return GradientSolution(to_numpy(params_out), info, best_epoch, train_rows, validation_rows)


def _progress_bar(total: int, solver: str, progress: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"neuralglm {solver}", disable=None if progress is None else not progress, leave=False, delay=1.0)


def _run_lbfgs(params, train, control: GradientControl, static, progress, started):
    X, y, weights, offset = train
    dtype = X.dtype
    total_weight = jnp.sum(weights)
    l2 = jnp.asarray(control.l2, dtype)
    tol = jnp.asarray(control.tol, dtype)
    state = _init_lbfgs_state(params, memory_size=control.memory_size)
    records = []
    done = 0
    gmax = float("inf")
    stalls = 0
    bar = _progress_bar(control.epochs, "lbfgs", progress)
    try:
        while done < control.epochs:
            chunk = min(LBFGS_CHUNK, control.epochs - done)
            params, state, value, gmax_j, steps, stalls_j = _lbfgs_chunk(
                params, state, X, y, weights, offset, l2, total_weight, jnp.asarray(chunk), tol, memory_size=control.memory_size, **static
            )
            steps, gmax, stalls = int(steps), float(gmax_j), int(stalls_j)
            done += steps
            deviance = float(_mean_deviance(params, X, y, weights, offset, **static))
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


def _run_minibatch(params, train, validation, key, control: GradientControl, static, progress, started):
    X, y, weights, offset = train
    dtype = X.dtype
    n_obs = X.shape[0]
    batch_size = min(control.batch_size, n_obs)
    n_batches = -(-n_obs // batch_size)
    total_weight = jnp.sum(weights)
    l2 = jnp.asarray(control.l2, dtype)
    momentum = jnp.asarray(control.momentum, dtype)
    state = _init_minibatch_state(params, jnp.asarray(_rate_at(control, 0), dtype), momentum, solver=control.solver)
    keys = jax.random.split(key, control.epochs)
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
                keys[epoch - 1],
                X,
                y,
                weights,
                offset,
                jnp.asarray(rate, dtype),
                momentum,
                l2,
                total_weight,
                solver=control.solver,
                n_batches=n_batches,
                batch_size=batch_size,
                **static,
            )
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
