"""The compiled minibatch epoch and the float64 forward pass, against plain independent references."""

from __future__ import annotations

from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neuralglm.family.family import Poisson
from neuralglm.family.link import Log
from neuralglm.fit import gradient_steps
from neuralglm.model import Architecture, init_params, objective, predictor
from neuralglm.model.architecture import ACTIVATIONS
from neuralglm.model.predictor import hidden_features, hidden_features_float64, linear_predictor, linear_predictor_float64


def problem(n_obs: int = 45, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, 3))
    offset = rng.uniform(-0.2, 0.2, n_obs)
    y = rng.poisson(np.exp(np.sin(X[:, 0]) + offset)).astype(float)
    weights = rng.uniform(0.5, 2.0, n_obs)
    weights[:5] = 0.0  # zero prior weights are allowed and must not count
    return X, y, weights, offset


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_host_built_optimizer_state_equals_optax_init(solver):
    params = init_params(Architecture(hidden=(4, 3)), 2, seed=0)
    ours = gradient_steps.minibatch_state(params, solver)
    flat, _ = jax.flatten_util.ravel_pytree(params)
    reference = gradient_steps.minibatch_optimizer(solver).init(flat)
    assert jax.tree.structure(ours) == jax.tree.structure(reference)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("gather_all", [True, False])
def test_one_epoch_equals_a_plain_optax_loop_over_the_same_batches(solver, gather_all):
    """Flat parameters, one gather, padding rows of weight zero: the same updates as per-layer optax on each batch."""
    X, y, weights, offset = problem()
    arch = Architecture(hidden=(4,), activation="tanh")
    family, link = Poisson(), Log()
    batch_size, n_batches = 10, 5  # 45 rows: the last batch holds 5 real rows and 5 padding rows
    order = np.random.default_rng(1).permutation(len(y)).astype(np.int32)
    rows = np.concatenate([order, order[:5]]).reshape(n_batches, batch_size)
    rate, momentum, l2 = 0.05, 0.8, 0.3
    with jax.enable_x64(True):
        params = init_params(arch, 3, seed=2, output_bias=0.1, dtype=jnp.float64)
        total_weight = float(np.sum(weights))
        data = tuple(jnp.asarray(v) for v in (X, y, weights, offset))
        got, _, mean_deviance = gradient_steps.minibatch_epoch(
            params, gradient_steps.minibatch_state(params, solver), jnp.asarray(rows), *data,
            jnp.asarray(rate), jnp.asarray(momentum), jnp.asarray(l2), jnp.asarray(total_weight),
            arch=arch, family=family, link=link, solver=solver, gather_all=gather_all,
        )  # fmt: skip

        # Reference: optax on the parameter pytree, one batch at a time, the real rows of each batch only.
        optimizer = optax.adam(rate) if solver == "adam" else optax.sgd(rate, momentum=momentum)
        expected, state = params, optimizer.init(params)
        deviance_sum = 0.0
        for b in range(n_batches):
            index = rows[b][: min(batch_size, len(y) - b * batch_size)]
            batch = (X[index], y[index], weights[index], offset[index])
            loss = lambda p, batch=batch: objective(p, arch, family, link, *batch, l2, total_weight)  # noqa: E731
            value, grads = jax.value_and_grad(loss)(expected)
            penalty_part = l2 * 0.5 * sum(float(jnp.sum(layer.weight**2)) for layer in cast(tuple, expected)) / total_weight
            deviance_sum += 2 * (float(value) - penalty_part) * float(np.sum(batch[2]))
            updates, state = optimizer.update(grads, state, expected)
            expected = optax.apply_updates(expected, updates)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        # The same float64 arithmetic up to summation order: agreement to ~1e-13 after five steps.
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(mean_deviance), deviance_sum / total_weight, rtol=1e-10)


@pytest.mark.parametrize("activation", [*sorted(ACTIVATIONS), "callable"])
def test_float64_numpy_forward_pass_equals_the_jax_one(activation):
    act = jnp.sin if activation == "callable" else activation
    arch = Architecture(hidden=(5, 3), activation=act)
    rng = np.random.default_rng(0)
    X = rng.normal(scale=2.0, size=(30, 4))
    offset = rng.normal(size=30)
    with jax.enable_x64(True):
        params = jax.tree.map(np.asarray, init_params(arch, 4, seed=1, dtype=jnp.float64))
    params = tuple(layer._replace(bias=None if layer.bias is None else layer.bias + 0.3) for layer in params)
    numpy_params = (*params[:-1], params[-1]._replace(weight=params[-1].weight + 0.5))  # a non-zero output layer
    with jax.enable_x64(True):
        jax_params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), numpy_params)
        h_ref = np.asarray(hidden_features(jax_params, arch, jnp.asarray(X)))
        eta_ref = np.asarray(linear_predictor(jax_params, arch, jnp.asarray(X), jnp.asarray(offset)))
    h = hidden_features_float64(numpy_params, arch, X)
    eta = linear_predictor_float64(numpy_params, arch, X, offset)
    # More rows than one block (FORWARD_BLOCK_ROWS): every copy of X gets the same eta, up to the
    # ulps by which BLAS kernels for different row counts differ.
    copies = predictor.FORWARD_BLOCK_ROWS // len(X) + 2
    many = linear_predictor_float64(numpy_params, arch, np.tile(X, (copies, 1)), np.tile(offset, copies))
    np.testing.assert_allclose(many.reshape(copies, len(X)), np.broadcast_to(eta, (copies, len(X))), rtol=1e-14, atol=1e-14)
    assert h.dtype == np.float64 and eta.dtype == np.float64
    # Both float64; elementwise functions and dot summation order differ by a few ulps.
    np.testing.assert_allclose(h, h_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(eta, eta_ref, rtol=1e-13, atol=1e-14)
