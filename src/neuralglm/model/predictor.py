"""The forward pass: inputs → hidden features → linear predictor ``eta`` (pure functions).

:func:`hidden_features` and :func:`linear_predictor` are the JAX forward pass used in training;
:func:`hidden_features_float64` is the same maths in NumPy float64 for reported statistics and
predictions: NumPy's BLAS ran the float64 forward pass of n=1e5, (64, 64) about 20× faster than
XLA's float64 dots on CPU, with nothing to compile (benchmarks/README.md).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from neuralglm.model import nesting
from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Params

FORWARD_BLOCK_ROWS = 4096  # (4096, 64) float64 temporaries: 2 MiB, within a core's L2 here

# NumPy twins of the named activations in ``architecture.ACTIVATIONS`` (same formulas as jax.nn).
NUMPY_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": special.expit,
    "logistic": special.expit,
    "gelu": lambda z: 0.5 * z * (1.0 + special.erf(z / np.sqrt(2.0))),
    "softplus": lambda z: np.logaddexp(z, 0.0),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "identity": lambda z: z,
}


def hidden_features(params: Params, arch: Architecture, X: jax.Array) -> jax.Array:
    """The last hidden layer, ``(n_obs, width)``: the features the output GLM sees.

    With no hidden layer these are the inputs themselves.
    """
    if arch.nested:
        return nesting.hidden_features(params, arch, X, jnp, arch.activation_functions())
    h = X
    for layer, activation in zip(params[:-1], arch.activation_functions(), strict=True):
        assert layer.bias is not None  # hidden layers always have biases; only a GLM output has none
        h = activation(h @ layer.weight + layer.bias[None, :])
    return h


def linear_predictor(params: Params, arch: Architecture, X: jax.Array, offset: jax.Array) -> jax.Array:
    """``eta = output(hidden(X)) + offset``, shape ``(n_obs,)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from neuralglm.model.params import Dense
    >>> params = (Dense(jnp.array([[2.0]]), None),)
    >>> linear_predictor(params, Architecture(), jnp.array([[1.0], [3.0]]), jnp.zeros(2)).tolist()
    [2.0, 6.0]
    """
    if arch.nested:
        return nesting.linear_predictor(params, arch, X, offset, jnp, arch.activation_functions(), freeze=jax.lax.stop_gradient)
    h = hidden_features(params, arch, X)
    out = params[-1]
    if out.weight.shape[1] > 1:  # several outputs (a multinomial network's K−1 logits): eta is (n_obs, K−1)
        eta = h @ out.weight + offset[:, None]
        return eta if out.bias is None else eta + out.bias[None, :]
    eta = (h @ out.weight)[:, 0] + offset
    return eta if out.bias is None else eta + out.bias[0]


def _activate_float64(activation, z: np.ndarray) -> np.ndarray:
    if isinstance(activation, str):
        return NUMPY_ACTIVATIONS[activation](z)
    with jax.enable_x64(True):  # a user's JAX callable, evaluated in float64
        return np.asarray(jax.jit(activation)(jnp.asarray(z)), dtype=np.float64)


def hidden_features_float64(params: Params, arch: Architecture, X: np.ndarray) -> np.ndarray:
    """:func:`hidden_features` in NumPy float64, ``(n_obs, width)``."""
    if arch.nested:
        return nesting.hidden_features(_float64(params), arch, np.asarray(X, dtype=np.float64), np, numpy_activations(arch))
    h = np.asarray(X, dtype=np.float64)
    for layer, activation in zip(params[:-1], arch.activations, strict=True):
        assert layer.bias is not None
        h = _activate_float64(activation, h @ np.asarray(layer.weight, np.float64) + np.asarray(layer.bias, np.float64))
    return h


def linear_predictor_float64(params: Params, arch: Architecture, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """:func:`linear_predictor` in NumPy float64, ``(n_obs,)``.

    Computed in blocks of :data:`FORWARD_BLOCK_ROWS` rows, so the hidden layers' temporaries stay
    in cache and only ``eta`` is new memory (fresh pages cost ~0.3 s at n=1e5, (64, 64) in a
    first call, DESIGN.md §10).

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.model.params import Dense
    >>> params = (Dense(np.array([[1.0, -1.0]]), np.zeros(2)), Dense(np.array([[2.0], [1.0]]), np.array([0.5])))
    >>> linear_predictor_float64(params, Architecture(hidden=(2,), activation="relu"), np.array([[1.0], [-3.0]]), np.zeros(2)).tolist()
    [2.5, 3.5]
    """
    if arch.nested:
        params64, activations = _float64(params), numpy_activations(arch)
        eta = np.array(offset, dtype=np.float64)
        for start in range(0, len(eta), FORWARD_BLOCK_ROWS):
            block = slice(start, start + FORWARD_BLOCK_ROWS)
            eta[block] = nesting.linear_predictor(params64, arch, np.asarray(X[block], np.float64), eta[block], np, activations)
        return eta
    out = params[-1]
    several = out.weight.shape[1] > 1  # a multinomial network's K−1 logits: eta is (n_obs, K−1)
    weight = np.asarray(out.weight if several else out.weight[:, 0], np.float64)
    eta = np.array(offset, dtype=np.float64)
    if several:
        eta = np.repeat(eta[:, None], weight.shape[1], axis=1)
    if out.bias is not None:
        eta += np.asarray(out.bias, np.float64) if several else float(out.bias[0])
    for start in range(0, len(eta), FORWARD_BLOCK_ROWS):
        block = slice(start, start + FORWARD_BLOCK_ROWS)
        eta[block] += hidden_features_float64(params, arch, X[block]) @ weight
    return eta


def numpy_activations(arch: Architecture) -> list:
    """The float64 NumPy twins of the architecture's activations, one per hidden layer."""
    return [partial(_activate_float64, a) for a in arch.activations]


def _float64(params: Params) -> Params:
    return tuple(type(layer)(*(None if leaf is None else np.asarray(leaf, np.float64) for leaf in layer)) for layer in params)
