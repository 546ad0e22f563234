"""Training a multinomial network: a softmax output on the gradient solvers, finished by Newton without hidden layers.

The network's output layer has K−1 units, the logits of levels 2…K against the first (the
reference), so that without hidden layers it is exactly the baseline-category logit model of
``ng.glm(..., family="multinomial")`` (``nnet::multinom``). The gradient solvers of
:mod:`neuralglm.fit.gradient` train it unchanged: :class:`SoftmaxOutput` stands where a family
stands and computes the objective's likelihood term itself (:mod:`neuralglm.model.objective`),
``-Σ w log p_y / Σ w``, half the multinomial deviance per unit weight.

A network without hidden layers is finished, as the other families' are
(:func:`neuralglm.fit.polish.finish_glm`), at the optimum of its objective: by the Newton
iterations of :func:`neuralglm.fit.multinomial.fit_multinomial` from the gradient solver's
estimates, with the output weights' L2 prior when they are penalized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.errors import RankDeficientError, SeparationWarning, warn
from neuralglm.family.link import Logit
from neuralglm.fit import gradient_steps as compiled
from neuralglm.fit.gradient import GradientControl, fit_gradient
from neuralglm.fit.info import FitInfo, Status
from neuralglm.fit.multinomial import fit_multinomial, null_logits
from neuralglm.fit.polish import SOLVER_NAMES
from neuralglm.fit.solution import Solution
from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Dense, Params, to_numpy


@dataclass(frozen=True)
class SoftmaxOutput:
    """The multinomial likelihood as the gradient solvers see it (hashable: a static ``jax.jit`` argument).

    ``y`` holds the level codes ``0 … K−1`` (as floats), ``eta`` the ``(n_obs, K−1)`` logits.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> loss = SoftmaxOutput(3).mean_half_deviance(jnp.array([0.0, 2.0]), jnp.zeros((2, 2)), jnp.ones(2))
    >>> round(float(loss), 4)  # -log(1/3)
    1.0986
    """

    n_levels: int

    def mean_half_deviance(self, y, eta, weights):
        """``-Σ w log p_y / Σ w`` by a log-softmax (finite for any logits)."""
        eta = logit_matrix(eta)
        logits = jnp.concatenate([jnp.zeros_like(eta[:, :1]), eta], axis=1)
        log_prob = jax.nn.log_softmax(logits, axis=1)
        own = jnp.sum(jnp.where(y[:, None] == jnp.arange(self.n_levels, dtype=y.dtype)[None, :], log_prob, 0.0), axis=1)
        return -jnp.sum(weights * own) / jnp.sum(weights)


def logit_matrix(eta):
    """The ``(n_obs, K−1)`` logits: with two levels the network's single output comes as a vector.

    Examples
    --------
    >>> logit_matrix(np.zeros(3)).shape
    (3, 1)
    """
    return eta[:, None] if eta.ndim == 1 else eta


def n_network_params(arch: Architecture, n_in: int, has_bias: bool, n_levels: int) -> int:
    """Weights and biases of the network with K−1 output units.

    Examples
    --------
    >>> n_network_params(Architecture(hidden=(4,)), 2, True, 3)  # 2·4 + 4 + (4 + 1)·2
    22
    """
    last = arch.hidden[-1] if arch.hidden else n_in
    return arch.n_params(n_in, has_bias) + (n_levels - 2) * (last + int(has_bias))


def train(
    inputs: np.ndarray,
    codes: np.ndarray,
    weights: np.ndarray,
    n_levels: int,
    arch: Architecture,
    control: GradientControl,
    *,
    has_bias: bool,
    seed: int,
    dtype,
    progress: bool | None,
    column_names: tuple[str, ...],
) -> Solution[Params]:
    """Train from the null model: random hidden layers (as :func:`neuralglm.fit` draws them), zero output
    weights and the intercept-only logits as output biases, so training starts at the null deviance."""
    with jax.enable_x64(jnp.dtype(dtype) == jnp.float64):
        hidden = compiled.init_network(
            jax.random.key(seed), jnp.zeros((), dtype), arch=arch, n_in=inputs.shape[1], has_bias=True, dtype=dtype
        )
    width = arch.hidden[-1] if arch.hidden else inputs.shape[1]
    bias = null_logits(codes, weights, n_levels) if has_bias else None
    output = Dense(cast(Any, np.zeros((width, n_levels - 1))), cast(Any, bias))
    start = (*to_numpy(hidden)[:-1], output)
    y = codes.astype(np.float64)
    family, offset = SoftmaxOutput(n_levels), np.zeros(len(codes))
    return fit_gradient(
        inputs, y, weights, offset, cast(Any, family), Logit(), arch, control, output_bias=None, seed=seed, dtype=dtype,
        progress=progress, start=start, column_names=column_names, finish=finish_newton,
    )  # fmt: skip


def finish_newton(
    params: Params, info: FitInfo, warns: bool, data, family, link, *, l2: float, column_names
) -> tuple[Params, FitInfo, bool]:
    """A multinomial network without hidden layers, finished at the optimum of its objective by Newton's method.

    Newton's iterations converge from any start (the objective is convex), so every such fit is
    polished, whatever its solver reached; the fit is then ``CONVERGED`` (or ``SEPARATION``)
    and does not warn. When they cannot run (aliased columns) the fit keeps the solver's
    estimates, is not converged, and warns.
    """
    started = time.perf_counter()
    X, y, weights, _ = data
    (layer,) = params
    has_bias = layer.bias is not None
    Z = np.column_stack([np.ones(len(X)), X]) if has_bias else np.asarray(X, dtype=np.float64)
    start = np.vstack([np.asarray(layer.bias)[None, :], layer.weight]) if has_bias else np.asarray(layer.weight)
    names = (("Intercept",) if has_bias else ()) + tuple(column_names)
    precision = np.array([0.0] * has_bias + [l2] * len(column_names)) if l2 > 0 else None
    unit = "iterations" if info.solver == "lbfgs" else "epochs"
    first = f"{SOLVER_NAMES.get(info.solver, info.solver)} stopped after {info.n_iter} {unit} ({info.status.label})"
    try:
        solution = fit_multinomial(Z, y.astype(np.int64), family.n_levels, weights, names, start=start, precision=precision)
    except (RankDeficientError, np.linalg.LinAlgError) as error:
        message = f"{Status.STALLED.value} {first}; the Newton polish to the optimum could not run ({str(error).rstrip('.')})."
        return params, replace(info, converged=False, status=Status.STALLED, message=message), True
    coef = solution.coef
    polished = (Dense(cast(Any, coef[1:] if has_bias else coef), cast(Any, coef[0] if has_bias else None)),)
    optimum = "maximum-likelihood estimates (those of ng.glm)" if precision is None else "optimum of the penalized objective"
    outcome = solution.info
    seconds = info.seconds + time.perf_counter() - started
    if outcome.status is Status.SEPARATION:
        warn(outcome.message, SeparationWarning)
    if not outcome.converged and outcome.status is not Status.SEPARATION:
        message = f"{Status.ITERATION_LIMIT.value} {first}; the Newton polish did not reach the {optimum} ({outcome.message})."
        return polished, replace(info, converged=False, status=Status.ITERATION_LIMIT, message=message, seconds=seconds), True
    details = f"{first}; a full-batch Newton polish then reached the {optimum} in {outcome.n_iter} iterations"
    message = Status.CONVERGED.sentence(details) if outcome.converged else f"{Status.SEPARATION.value} {details}."
    new = replace(info, converged=outcome.converged, status=outcome.status, message=message, seconds=seconds, at_precision=False)
    return polished, new, False


__all__ = ["SoftmaxOutput", "finish_newton", "n_network_params", "train"]
