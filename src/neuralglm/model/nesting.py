r"""Architectures that nest a GLM: CANN, LocalGLMnet, additive networks, and factor embeddings.

Every kind keeps the parameters a flat tuple of :class:`~neuralglm.model.params.Dense` layers
(so the solvers, ``ravel_pytree``, the bootstrap and the model files treat them alike), laid
out as :meth:`Architecture.layer_shapes` says:

- embeddings first, one ``(levels, dim)`` table per embedded factor (no bias): the factor's
  one-hot row (reference level included) times the table replaces its dummies at the network's
  input (Guo & Berkhahn 2016; Schelldorfer & Wüthrich 2019);
- ``"network"``: hidden layers, output ``(width, 1)`` with the intercept as bias;
- ``"cann"`` (Schelldorfer & Wüthrich 2019): hidden layers, the network's output ``(width, 1)``
  without bias, then the GLM part ``(n_in, 1)`` with the intercept:
  :math:`\eta = b + x^\top\beta + h(x)^\top w`. The GLM part is never penalized; with
  ``glm_fixed`` no gradient reaches it, so it acts as an offset;
- ``"localglmnet"`` (Richman & Wüthrich 2023): hidden layers, the attention layer
  ``(width, n_in)`` with bias, then a layer without inputs whose bias is the intercept:
  :math:`\eta = \beta_0 + \sum_j \beta_j(x) x_j`, :math:`\beta(x) = h(x) W + b`. With the hidden
  weights at 0 (or ``W = 0``) β(x) is constant: a GLM;
- ``"additive"`` (Agarwal et al. 2021): for each formula term its own hidden layers and output
  ``(width, 1)`` without bias, then the intercept layer: :math:`\eta = b + \sum_g f_g(x_g)`.

The functions take the array namespace (``jax.numpy`` for training, ``numpy`` for float64
statistics) and the activation callables, so one formula serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm.model.architecture import Architecture
from neuralglm.model.params import Dense

Activations = Sequence[Callable]


def _identity(x):
    return x


def network_input(embeddings: Sequence[Dense], arch: Architecture, X, xp):
    """The first hidden layer's input: ``X`` with each embedded factor's dummies replaced by its embedding."""
    if not arch.embeddings:
        return X
    embedded = {j for e in arch.embeddings for j in e.columns}
    keep = [j for j in range(X.shape[1]) if j not in embedded]
    parts = [X[:, keep]] if keep else []
    for table, e in zip(embeddings, arch.embeddings, strict=True):
        dummies = X[:, list(e.columns)]
        reference = 1.0 - xp.sum(dummies, axis=1, keepdims=True)  # the reference level's indicator
        parts.append(xp.concatenate([reference, dummies], axis=1) @ table.weight)
    return xp.concatenate(parts, axis=1)


def _mlp(layers: Sequence[Dense], h, activations: Activations):
    for layer, activation in zip(layers, activations, strict=True):
        assert layer.bias is not None  # hidden layers always have biases
        h = activation(h @ layer.weight + layer.bias[None, :])
    return h


def _split(params, arch: Architecture):
    k = len(arch.embeddings)
    return params[:k], params[k:]


def hidden_features(params, arch: Architecture, X, xp, activations: Activations):
    """The last hidden layer the output sees: the network part (CANN), the attention network
    (LocalGLMnet), or every term's last hidden layer side by side (additive)."""
    embeddings, body = _split(params, arch)
    if arch.kind == "additive":
        L = arch.n_hidden
        blocks = [_mlp(body[g * (L + 1) : g * (L + 1) + L], X[:, list(cols)], activations) for g, cols in enumerate(arch.groups)]
        return xp.concatenate(blocks, axis=1)
    return _mlp(body[: arch.n_hidden], network_input(embeddings, arch, X, xp), activations)


def term_contributions(params, arch: Architecture, X, xp, activations: Activations):
    """Additive networks: ``(n_obs, n_terms)``, each term's shape function ``f_g(x_g)`` (the intercept apart)."""
    _, body = _split(params, arch)
    L = arch.n_hidden
    columns = []
    for g, cols in enumerate(arch.groups):
        layers = body[g * (L + 1) : (g + 1) * (L + 1)]
        columns.append((_mlp(layers[:L], X[:, list(cols)], activations) @ layers[L].weight)[:, 0])
    return xp.stack(columns, axis=1)


def local_coefficients(params, arch: Architecture, X, xp, activations: Activations):
    """LocalGLMnet: ``(n_obs, n_in)``, the attention coefficients βⱼ(x) (on the standardized inputs)."""
    attention = params[-2]
    return hidden_features(params, arch, X, xp, activations) @ attention.weight + attention.bias[None, :]


def linear_predictor(params, arch: Architecture, X, offset, xp, activations: Activations, freeze: Callable = _identity):
    """η of any kind; ``freeze`` is applied to a fixed CANN's GLM part (``jax.lax.stop_gradient`` in training)."""
    intercept = params[-1].bias
    eta = offset if intercept is None else offset + intercept[0]
    if arch.kind == "additive":
        return eta + xp.sum(term_contributions(params, arch, X, xp, activations), axis=1)
    if arch.kind == "localglmnet":
        return eta + xp.sum(local_coefficients(params, arch, X, xp, activations) * X, axis=1)
    h = hidden_features(params, arch, X, xp, activations)
    if arch.kind == "cann":
        glm, network = params[-1], params[-2]
        weight = freeze(glm.weight) if arch.glm_fixed else glm.weight
        if arch.glm_fixed and intercept is not None:
            eta = offset + freeze(intercept)[0]
        return eta + (X @ weight)[:, 0] + (h @ network.weight)[:, 0]
    return eta + (h @ params[-1].weight)[:, 0]


def penalized_layers(params, arch: Architecture, penalize_output: bool) -> list:
    """The layers whose weights the L2 penalty sums: never a CANN's GLM part; outputs only if ``penalize_output``."""
    if arch.kind == "cann":
        return list(params[:-2]) + ([params[-2]] if penalize_output else [])
    if arch.kind == "additive":
        L = arch.n_hidden
        return [layer for i, layer in enumerate(params[:-1]) if penalize_output or i % (L + 1) != L]
    if arch.kind == "localglmnet":
        return list(params[:-2]) + ([params[-2]] if penalize_output else [])
    return list(params) if penalize_output else list(params[:-1])


def init_nested(arch: Architecture, n_in: int, key, *, intercept: float | None, glm_coef=None, dtype=np.float32) -> tuple[Dense, ...]:
    """Starting parameters: Glorot-uniform hidden layers and embeddings, zero outputs, and the GLM.

    ``glm_coef`` (the IRLS estimates on the standardized inputs; CANN and LocalGLMnet) starts
    the GLM part (CANN) or the attention bias (LocalGLMnet), and the network's outputs start at
    0: training starts exactly at the GLM. Without it those start at 0 (the intercept-only model).
    """
    shapes = arch.layer_shapes(n_in, intercept is not None)
    keys = jax.random.split(key, len(shapes))
    outputs = _output_positions(arch, len(shapes))
    layers = []
    for i, (k, (wshape, bshape)) in enumerate(zip(keys, shapes, strict=True)):
        if i in outputs or i == len(shapes) - 1:
            weight = jnp.zeros(wshape, dtype=dtype)
        else:
            # Glorot & Bengio (2010) uniform, as init_params; an embedding table as a (levels → dim) layer.
            bound = np.sqrt(6.0 / (wshape[0] + wshape[1]))
            weight = jax.random.uniform(k, wshape, dtype=dtype, minval=-bound, maxval=bound)
        bias = None if bshape is None else jnp.zeros(bshape, dtype=dtype)
        layers.append(Dense(weight, bias))
    if intercept is not None:
        layers[-1] = layers[-1]._replace(bias=jnp.full((1,), intercept, dtype=dtype))
    if glm_coef is not None and arch.kind == "cann":
        layers[-1] = layers[-1]._replace(weight=jnp.asarray(np.reshape(glm_coef, (n_in, 1)), dtype=dtype))
    if glm_coef is not None and arch.kind == "localglmnet":
        layers[-2] = layers[-2]._replace(bias=jnp.asarray(np.reshape(glm_coef, (n_in,)), dtype=dtype))
    return tuple(layers)


def _output_positions(arch: Architecture, n_layers: int) -> set[int]:
    if arch.kind == "additive":
        L = arch.n_hidden
        return {g * (L + 1) + L for g in range(len(arch.groups))}
    if arch.kind in ("cann", "localglmnet"):
        return {n_layers - 2, n_layers - 1}
    return {n_layers - 1}
