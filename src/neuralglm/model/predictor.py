"""The forward pass: inputs → hidden features → linear predictor ``eta`` (pure functions)."""

from __future__ import annotations

import jax

from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Params


def hidden_features(params: Params, arch: Architecture, X: jax.Array) -> jax.Array:
    """The last hidden layer, ``(n_obs, width)``: the features the output GLM sees.

    With no hidden layer these are the inputs themselves.
    """
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
    h = hidden_features(params, arch, X)
    out = params[-1]
    eta = (h @ out.weight)[:, 0] + offset
    return eta if out.bias is None else eta + out.bias[0]
