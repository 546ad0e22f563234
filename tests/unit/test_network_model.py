"""Architecture, parameters, input scaling: the static pieces of a network."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from neuralglm.errors import SpecificationError
from neuralglm.model import Architecture, init_params, linear_predictor, penalty
from neuralglm.model.inputs import fit_scaling
from neuralglm.model.params import param_names


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"hidden": (4, 0)},
            r"'hidden' parameter of fit must be an int in \[1, 1048576\] \(one hidden layer of that width\) or a tuple of such ints",
        ),
        ({"hidden": 10**30}, r"'hidden' parameter of fit must be an int in \[1, 1048576\]"),
        ({"hidden": (2.5,)}, r"'hidden' parameter of fit .*Got \(2\.5,\) instead"),
        ({"hidden": None}, r"'hidden' parameter of fit .*Got None instead"),
        ({"hidden": (True,)}, r"'hidden' parameter of fit .*Got \(True,\) instead"),
        ({"hidden": "4"}, r"'hidden' parameter of fit .*Got '4' instead"),
        ({"hidden": (3,), "activation": "swish"}, r"'activation' parameter of fit must be a str among \{'relu', .*Got 'swish'"),
        ({"hidden": (3, 3), "activation": ["relu"]}, "one activation per hidden layer \\(2\\); got 1"),
        ({"hidden": (3,), "activation": 3}, r"'activation' parameter of fit must be .*a JAX-differentiable callable.*Got 3 instead"),
    ],
)
def test_architecture_is_validated(kwargs, match):
    with pytest.raises(SpecificationError, match=match):
        Architecture(**kwargs)


def test_an_int_is_one_layer_and_numpy_integers_are_widths():
    assert Architecture(hidden=5).hidden == (5,)
    assert Architecture(hidden=(np.int64(4), np.int32(2))).hidden == (4, 2)
    assert all(type(width) is int for width in Architecture(hidden=[np.int64(4)]).hidden)  # hashable, JSON-friendly


def test_activation_names_of_the_table_are_the_implemented_ones():
    from neuralglm.model.architecture import ACTIVATIONS
    from neuralglm.options import ACTIVATION_NAMES

    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_architecture_is_hashable_and_counts_parameters():
    arch = Architecture(hidden=(5, 3), activation=["tanh", jnp.sin])
    assert hash(arch) == hash(Architecture(hidden=(5, 3), activation=("tanh", jnp.sin)))
    assert arch.describe(4) == "4 → 5 (tanh) → 3 (sin) → 1"
    params = init_params(arch, 4, seed=0)
    flat, _ = ravel_pytree(params)
    # The closed-form count against the size of the actual pytree.
    assert arch.n_params(4) == flat.size == len(param_names(arch, ("a", "b", "c", "d")))
    assert Architecture().n_params(4, output_bias=False) == 4


def test_init_starts_at_the_null_model_and_respects_the_glorot_bound():
    arch = Architecture(hidden=(6, 4))
    params = init_params(arch, 3, seed=1, output_bias=0.25)
    for layer, (fan_in, fan_out) in zip(params[:-1], [(3, 6), (6, 4)], strict=True):
        assert np.all(np.abs(np.asarray(layer.weight)) <= np.sqrt(6 / (fan_in + fan_out)))
    X = jax.random.normal(jax.random.key(0), (10, 3))
    offset = jnp.linspace(-1, 1, 10)
    # Zero output weights: eta is the null model's intercept plus the offset, whatever X is.
    np.testing.assert_allclose(np.asarray(linear_predictor(params, arch, X, offset)), 0.25 + np.asarray(offset), rtol=1e-6)
    again = init_params(arch, 3, seed=1, output_bias=0.25)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True))


def test_scaling_standardizes_numeric_columns_and_keeps_dummies():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(50), rng.integers(0, 2, 50), rng.normal(3, 2, 50), np.full(50, 7.0)])
    scaling = fit_scaling(X, ("Intercept", "C(g)[T.b]", "age", "constant"))
    Z = scaling.transform(X)
    assert scaling.names == ("C(g)[T.b]", "age", "constant")
    np.testing.assert_array_equal(Z[:, 0], X[:, 1])  # 0/1 columns untouched
    np.testing.assert_allclose([Z[:, 1].mean(), Z[:, 1].std()], [0.0, 1.0], atol=1e-12)  # NumPy's own mean/std as reference
    np.testing.assert_array_equal(Z[:, 2], 0.0)  # a constant column is centred, never divided by zero


def test_penalty_covers_the_output_layer_only_when_asked():
    arch = Architecture(hidden=(3, 2))
    params = init_params(arch, 4, seed=0)
    params = (*params[:-1], params[-1]._replace(weight=params[-1].weight + 0.7))  # a non-zero output layer
    squares = [float(np.sum(np.asarray(layer.weight, np.float64) ** 2)) for layer in params]
    # Against NumPy sums of squares: float32 parameters, so agreement to float32 rounding.
    np.testing.assert_allclose(float(penalty(params)), 0.5 * sum(squares), rtol=1e-6)
    np.testing.assert_allclose(float(penalty(params, penalize_output=False)), 0.5 * sum(squares[:-1]), rtol=1e-6)
    assert float(penalty((params[-1],), penalize_output=False)) == 0.0  # a GLM's only layer is the output
