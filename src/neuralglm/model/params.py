"""Network parameters as plain pytrees: a tuple of :class:`Dense` layers (DESIGN.md §3).

``Dense.weight`` is ``(n_in, n_out)`` (batch-first, ``X @ W``); ``Dense.bias`` is ``(n_out,)``
or ``None`` (a GLM whose intercept is a design column). NamedTuples work unchanged with
``ravel_pytree``, ``jax.hessian``, optax and ``np.savez``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.model.architecture import Architecture


class Dense(NamedTuple):
    """One affine layer ``h @ weight + bias``."""

    weight: jax.Array
    bias: jax.Array | None


Params = tuple[Dense, ...]


def init_params(arch: Architecture, n_in: int, seed: int | jax.Array, *, output_bias: float | None = 0.0, dtype=jnp.float32) -> Params:
    """Glorot-uniform hidden layers, zero hidden biases, a zero output layer.

    The output weights start at zero and the output bias at ``output_bias`` (the
    intercept-only fit), so training starts exactly from the null model's deviance; the hidden
    weights are random, so the first gradient step already gives each unit a different weight.

    Parameters
    ----------
    arch : the architecture.
    n_in : number of inputs (design columns without the intercept).
    seed : integer seed or a ``jax.random.key``.
    output_bias : starting output bias, or ``None`` for a model without one.
    dtype : parameter dtype.

    Examples
    --------
    >>> params = init_params(Architecture(hidden=(3,)), n_in=2, seed=0)
    >>> [layer.weight.shape for layer in params]
    [(2, 3), (3, 1)]
    """
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    widths = (n_in, *arch.hidden)
    layers = []
    keys = jax.random.split(key, max(arch.n_hidden, 1))
    for k, (fan_in, fan_out) in zip(keys, itertools.pairwise(widths), strict=False):
        # Glorot & Bengio (2010) uniform bound, the default of scikit-learn's MLP.
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weight = jax.random.uniform(k, (fan_in, fan_out), dtype=dtype, minval=-bound, maxval=bound)
        layers.append(Dense(weight, jnp.zeros((fan_out,), dtype=dtype)))
    bias = None if output_bias is None else jnp.full((1,), output_bias, dtype=dtype)
    layers.append(Dense(jnp.zeros((widths[-1], 1), dtype=dtype), bias))
    return tuple(layers)


def cast_params(params: Params, dtype) -> Params:
    """The same parameters in another dtype (``None`` biases stay ``None``)."""
    return tuple(
        Dense(
            jax.device_put(np.asarray(layer.weight, dtype=dtype)),
            None if layer.bias is None else jax.device_put(np.asarray(layer.bias, dtype=dtype)),
        )
        for layer in params
    )


def to_numpy(params: Params) -> Params:
    """Parameters as float64 NumPy arrays (what results store)."""
    return tuple(
        Dense(np.asarray(layer.weight, dtype=np.float64), None if layer.bias is None else np.asarray(layer.bias, dtype=np.float64))
        for layer in params
    )


def param_names(arch: Architecture, input_names: tuple[str, ...], output_bias: bool = True) -> list[str]:
    """One name per scalar parameter, in ``ravel_pytree`` order (weights row-major, then bias).

    Examples
    --------
    >>> param_names(Architecture(hidden=(2,)), ("x",))
    ['layer1.weight[x, h1]', 'layer1.weight[x, h2]', 'layer1.bias[h1]', 'layer1.bias[h2]', 'output.weight[h1]', 'output.weight[h2]', 'output.bias']
    """
    names: list[str] = []
    rows = list(input_names)
    for index, width in enumerate(arch.hidden, start=1):
        units = [f"h{j}" if index == arch.n_hidden else f"l{index}h{j}" for j in range(1, width + 1)]
        names += [f"layer{index}.weight[{r}, {u}]" for r in rows for u in units]
        names += [f"layer{index}.bias[{u}]" for u in units]
        rows = units
    names += [f"output.weight[{r}]" for r in rows]
    if output_bias:
        names.append("output.bias")
    return names
