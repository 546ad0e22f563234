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

Every solver returns a :class:`~neuralglm.fit.solution.Solution` whose history has the columns
of :data:`~neuralglm.fit.info.HISTORY_COLUMNS`, and a status that says what happened: L-BFGS
``CONVERGED`` (largest gradient component ≤ ``tol``), ``STALLED`` (the line search can make no
further progress) or ``ITERATION_LIMIT``; Adam/SGD ``EARLY_STOPPED`` (validation),
``STALLED`` (the training deviance on a plateau, without validation) or ``ITERATION_LIMIT``.
Only ``CONVERGED`` counts as converged. Running out of iterations warns
(:class:`~neuralglm.errors.ConvergenceWarning`, saying what to change), and so do a minibatch
plateau (noise can hide the remaining progress) and an L-BFGS stall whose gradient is above
what the training dtype can resolve (see :func:`_stall_floor`); ``EARLY_STOPPED`` (the best
validation weights restored) does not. A non-finite loss raises
:class:`~neuralglm.errors.DivergenceError` with advice.

A network without hidden layers is a GLM: without early stopping, its fit is finished by a
full-batch polish to the (penalized) maximum-likelihood estimates
(:func:`neuralglm.fit.polish.finish_glm`; always after Adam/SGD, after L-BFGS when it ended
more than 0.05 standard errors away), and its warning, if any, is issued after that polish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neuralglm.errors import ConvergenceWarning, DivergenceError, warn
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit import gradient_steps as compiled
from neuralglm.fit.info import FitInfo, Status, history_frame
from neuralglm.fit.polish import finish_glm
from neuralglm.fit.solution import Solution
from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Params, cast_params, to_numpy

SOLVERS = ("lbfgs", "adam", "sgd")
LBFGS_CHUNK = 50  # iterations per compiled call: Python sees progress this often
# Gather a whole epoch's batches at once (a copy of the training data) while that copy is at most
# this size; beyond, each step gathers its own rows. At n=1e5, p=20, (64, 64) the one gather made
# an epoch ~20% faster (benchmarks/README.md).
GATHER_ALL_MAX_BYTES = 1 << 28
STALL_MARGIN = 10.0  # see _stall_floor


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


# The solution type of the gradient solvers (one type for every solver; kept under its former name).
GradientSolution = Solution


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
    column_names: tuple[str, ...] | None = None,
    finish: Callable = finish_glm,
) -> Solution[Params]:
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
    column_names : names of the columns of ``X`` (messages of the polish of a network without
        hidden layers).
    finish : the polish of a network without hidden layers (:func:`~neuralglm.fit.polish.finish_glm`;
        a multinomial network's is Newton's method, :mod:`neuralglm.fit.multinomial_network`).

    Returns
    -------
    Solution
        ``params`` (float64 NumPy leaves), ``info``, ``best_iteration`` and the rows trained on
        and held out.

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
            params = compiled.init_network(
                jax.random.key(seed), bias, arch=arch, n_in=X.shape[1], has_bias=output_bias is not None, dtype=dtype
            )
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
    params_out, info, best_epoch, warns = result
    params_out = to_numpy(params_out)
    if arch.n_hidden == 0 and not control.early_stopping:
        l2 = control.l2 if control.penalize_output else 0.0  # without hidden layers the output layer is the only one
        params_out, info, warns = finish(params_out, info, warns, (X, y, weights, offset), family, link, l2=l2, column_names=column_names)
    if warns:
        warn(info.message, ConvergenceWarning)
    return Solution(params_out, info, best_epoch, train_rows, validation_rows)


def _progress_bar(total: int, solver: str, progress: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"neuralglm {solver}", disable=None if progress is None else not progress, leave=False, delay=1.0)


def _run_lbfgs(params, train, total_weight, control: GradientControl, static, progress, started):
    X, y, weights, offset = train
    dtype = X.dtype
    l2 = _on_device(control.l2, dtype)
    tol = _on_device(control.tol, dtype)
    state = compiled.init_lbfgs_state(params, memory_size=control.memory_size)
    records = []
    done, gmax, stalls, value = 0, math.inf, 0, math.nan
    bar = _progress_bar(control.epochs, "lbfgs", progress)
    try:
        while done < control.epochs:
            chunk = min(LBFGS_CHUNK, control.epochs - done)
            before = params
            params, state, value_j, deviance_j, gmax_j, steps_j, stalls_j = compiled.lbfgs_chunk(
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
            steps, gmax, stalls, deviance, value = int(steps_j), float(gmax_j), int(stalls_j), float(deviance_j), float(value_j)
            done += steps
            if not (np.isfinite(value) and np.isfinite(deviance) and np.isfinite(gmax)):
                raise _divergence("lbfgs", done, control)
            step = float(compiled.max_change(before, params))
            records.append((done, deviance, gmax, step, math.nan, time.perf_counter() - started))
            bar.update(steps)
            bar.set_postfix(deviance=f"{deviance:.6g}", grad=f"{gmax:.2e}")
            if gmax <= control.tol or stalls >= compiled.LBFGS_MAX_STALLS or steps < chunk:
                break
    finally:
        bar.close()
    floor = _stall_floor(state, value, dtype)
    status, message, at_precision, warns = _lbfgs_status(control, done, gmax, stalls, floor, wide=jnp.dtype(dtype) == jnp.float64)
    seconds = time.perf_counter() - started
    info = FitInfo(status is Status.CONVERGED, done, status, "lbfgs", message, history_frame(records), seconds, at_precision)
    return params, info, done, warns


def _stall_floor(state, value: float, dtype) -> float:
    """The largest gradient component the training dtype can leave when the objective is at its minimum to rounding.

    The line search counts a decrease only above 4·eps·|f| (f: the objective). Along a
    direction of curvature h, the objective is within that of its minimum up to a distance
    √(8·eps·|f| / h), where the gradient is √(8·eps·|f|·h). The curvatures come from L-BFGS's
    own memory: h ≈ yᵀy / sᵀy for each stored pair (s: change of the parameters, y: of the
    gradient), the largest one (the stiffest direction) being used. That ratio is a weighted mean
    of the Hessian's eigenvalues along recent steps, so it can fall short of the largest one: the
    floor is taken ``STALL_MARGIN`` times larger (curvature up to 100× underestimated).

    Measured (2026-12-03): the 8 float32 L-BFGS runs of the test suite that stall (tol 1e-5)
    end with gradients 1.1–2.4× the unscaled floor, the 2 float64 ones far below it; the
    ``ng.fit`` docstring's former example (insurance data, hidden (4,), no l2) stalled at 14×
    and warns. The floor is a heuristic, not a proof: continuing the README's float32 stall
    (1.1×) in float64 still lowered the objective by 1e-3 relative (the doctest's, 14×: 18 %),
    so "at working precision" means as far as float32 L-BFGS can go, and the message says a
    float64 fit can go further.
    """
    s = np.asarray(optax.tree.get(state, "diff_params_memory"), dtype=np.float64)
    g = np.asarray(optax.tree.get(state, "diff_updates_memory"), dtype=np.float64)
    sy = np.einsum("ij,ij->i", s, g)
    yy = np.einsum("ij,ij->i", g, g)
    curvature = yy[sy > 0] / sy[sy > 0]
    if not curvature.size or not np.isfinite(value):
        return 0.0
    eps = float(jnp.finfo(dtype).eps)
    return STALL_MARGIN * math.sqrt(8.0 * eps * abs(value) * float(np.max(curvature)))


def _lbfgs_outcome(control: GradientControl, done: int, gmax: float, stalls: int, floor: float) -> tuple[Status, str, bool]:
    """The status, message and ``at_precision`` of an L-BFGS run; warns unless it is at its optimum (to the working precision).

    :func:`_lbfgs_status` decides; this issues its warning at once (the driver defers it
    until a network without hidden layers has been polished, see :func:`neuralglm.fit.polish.finish_glm`).
    """
    status, message, at_precision, warns = _lbfgs_status(control, done, gmax, stalls, floor)
    if warns:
        warn(message, ConvergenceWarning)
    return status, message, at_precision


def _lbfgs_status(
    control: GradientControl, done: int, gmax: float, stalls: int, floor: float, *, wide: bool = False
) -> tuple[Status, str, bool, bool]:
    """The status, message, ``at_precision`` of an L-BFGS run and whether it warns.

    A stall (the line search can make no further progress) is not convergence: the criterion
    was not met, so the status is ``STALLED`` and ``converged`` False. It warns (the house
    rule: a fit warns when it is not at its optimum) only when the gradient is above what the
    training dtype can resolve (:func:`_stall_floor`); below, the fit went as far as L-BFGS can
    in that dtype, and the message says so (and that float64 can go further). A warning on every stall would fire on most
    float32 fits of the README and the command line (8 of the 10 L-BFGS runs of the test
    suite that stall are float32, all at the precision floor). ``at_precision`` (True only for
    such a stall) is what summaries read, not the message. ``wide``: the fit trained in float64,
    so there is no wider dtype to suggest.
    """
    if gmax <= control.tol:
        return Status.CONVERGED, Status.CONVERGED.sentence(f"largest gradient component {gmax:.2e} ≤ tol={control.tol:g}"), False, False
    if stalls >= compiled.LBFGS_MAX_STALLS:
        message = (
            f"{Status.STALLED.value} The line search could make no further progress after {done} iterations with largest "
            f"gradient component {gmax:.2e} > tol={control.tol:g}"
        )
        if gmax <= floor:
            further = "." if wide else "; a fit with dtype='float64' can go further."
            message += f", within what the training precision can resolve ({floor:.2e}): stalled at working precision{further}"
            return Status.STALLED, message, True, False
        remedies = "scale the inputs or add an l2 penalty." if wide else "scale the inputs, add an l2 penalty, or use dtype='float64'."
        message += f", above what the training precision can resolve ({floor:.2e}): {remedies}"
        return Status.STALLED, message, False, True
    message = (
        f"{Status.ITERATION_LIMIT.value} L-BFGS stopped after {done} iterations with largest gradient component "
        f"{gmax:.2e} > tol={control.tol:g}: increase epochs (e.g. epochs={2 * control.epochs}), or add an l2 penalty "
        "if the gradient is still large."
    )
    return Status.ITERATION_LIMIT, message, False, True


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
    hyper = (_on_device(control.momentum, dtype), _on_device(control.l2, dtype), total_weight)
    options = {"solver": control.solver, "gather_all": gather_all, "penalize_output": control.penalize_output, **static}
    state = compiled.minibatch_state(params, control.solver)

    def epoch_rows():
        order = shuffle.permutation(n_obs).astype(np.int32)
        return jax.device_put(np.concatenate([order, order[:n_pad]]).reshape(n_batches, batch_size))

    rows = epoch_rows()
    records = []
    best_score, best_params, best_epoch, since_best, stopped = math.inf, params, 0, 0, False
    bar = _progress_bar(control.epochs, control.solver, progress)
    try:
        for epoch in range(1, control.epochs + 1):
            before, rate = params, _rate_at(control, epoch - 1)
            params, state, train_deviance = compiled.minibatch_epoch(
                params, state, rows, X, y, weights, offset, _on_device(rate, dtype), *hyper, **options
            )
            if epoch < control.epochs:
                rows = epoch_rows()  # drawn while the device runs this epoch (JAX dispatches asynchronously)
            train_deviance = float(train_deviance)
            validation_deviance = float(compiled.mean_deviance(params, *validation, **static)) if validation is not None else math.nan
            if not (np.isfinite(train_deviance) and (validation is None or np.isfinite(validation_deviance))):
                raise _divergence(control.solver, epoch, control)
            step = float(compiled.max_change(before, params))
            records.append((epoch, train_deviance, math.nan, step, validation_deviance, time.perf_counter() - started))
            bar.update(1)
            bar.set_postfix(deviance=f"{train_deviance:.6g}")
            score = validation_deviance if validation is not None else train_deviance
            since_best = 0 if score < best_score - control.tol * abs(best_score) or not np.isfinite(best_score) else since_best + 1
            if score < best_score:
                best_score, best_epoch = score, epoch
                best_params = params if validation is not None else best_params
            if since_best >= control.patience:
                stopped = True
                break
    finally:
        bar.close()
    n_epochs = len(records)
    status, message, warns = _minibatch_status(control, stopped, validation is not None, best_epoch, n_epochs)
    info = FitInfo(
        status is Status.CONVERGED, n_epochs, status, control.solver, message, history_frame(records), time.perf_counter() - started
    )
    if validation is None:
        return params, info, n_epochs, warns
    return best_params, info, best_epoch, warns


def _minibatch_outcome(control: GradientControl, stopped: bool, monitored: bool, best_epoch: int, n_epochs: int) -> tuple[Status, str]:
    """The status and message of an Adam/SGD run; warns unless it stopped early on validation (see :func:`_minibatch_status`)."""
    status, message, warns = _minibatch_status(control, stopped, monitored, best_epoch, n_epochs)
    if warns:
        warn(message, ConvergenceWarning)
    return status, message


def _minibatch_status(control: GradientControl, stopped: bool, monitored: bool, best_epoch: int, n_epochs: int) -> tuple[Status, str, bool]:
    """The status and message of an Adam/SGD run, and whether it warns.

    Early stopping is a regularizer: ``EARLY_STOPPED`` with the best validation weights
    restored is the intended optimum on held-out data, and does not warn. Without a validation
    set, the plateau of the (noisy, minibatch) training deviance (``tol``, ``patience``, as
    scikit-learn's ``n_iter_no_change``) is ``STALLED``: the noise of the minibatch steps can
    hide the remaining progress, so no criterion shows an optimum, and it warns with what to
    change (issue 9: Adam on a GLM stopped there 0.4-2 standard errors from the optimum). So
    does running out of epochs.
    """
    if stopped and monitored:
        return Status.EARLY_STOPPED, Status.EARLY_STOPPED.sentence(f"best validation deviance at epoch {best_epoch} of {n_epochs}"), False
    rate = (
        "a decaying learning_rate schedule"
        if callable(control.learning_rate)
        else f"a lower learning_rate= (now {control.learning_rate:g})"
    )
    if stopped:
        return (
            Status.STALLED,
            (
                f"{Status.STALLED.value} The training deviance improved by less than tol={control.tol:g} for {control.patience} epochs "
                f"after {n_epochs} epochs: a plateau of the minibatch deviance, whose noise can hide the remaining progress, so no "
                f"criterion shows an optimum. Use early_stopping=True (held-out deviance, best weights restored), {rate}, a larger "
                "batch_size=, or solver='lbfgs'."
            ),
            True,
        )
    if monitored and best_epoch < n_epochs:
        progress = (
            f"with the best validation deviance at epoch {best_epoch}, before patience={control.patience} epochs without "
            f"improvement ran out: increase epochs (e.g. epochs={2 * control.epochs}), or lower patience="
        )
    else:
        progress = (
            f"while the {'validation' if monitored else 'training'} deviance was still improving: increase epochs "
            f"(e.g. epochs={2 * control.epochs}) or the learning rate" + ("" if monitored else ", or use early_stopping=True")
        )
    message = f"{Status.ITERATION_LIMIT.value} The maximum number of epochs ({control.epochs}) was reached {progress}."
    return Status.ITERATION_LIMIT, message, True
