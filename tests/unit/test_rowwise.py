"""map_rows: chunked evaluation equals evaluating the whole vectors at once."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_allclose

from neuralglm.family import derived
from neuralglm.family.registry import get_family, get_link
from neuralglm.family.rowwise import CHUNK_ROWS, map_rows


@partial(jax.jit, static_argnums=(0, 1))
def _kernel(family, link, y, eta, weights):
    mu = link.inverse(eta)
    return mu, derived.deviance(family, y, mu, weights), jnp.all(mu > 0)


def test_chunks_reproduce_whole_vector_results_across_chunk_boundaries():
    rng = np.random.default_rng(1)
    family = get_family("poisson")
    link = get_link(None, family)
    n = 2 * CHUNK_ROWS + 7  # two full chunks and a padded one
    eta = rng.normal(0, 0.5, n)
    y = rng.poisson(np.exp(eta)).astype(float)
    weights = rng.uniform(0.5, 2.0, n)
    mu, dev, positive = map_rows(_kernel, (family, link), (y, eta, weights), zero_padded=(2,))
    with jax.enable_x64(True):
        expected = float(derived.deviance(family, y, np.exp(eta), weights))
    assert mu.shape == (n,) and mu.dtype == np.float64
    assert_allclose(mu, np.exp(eta), rtol=1e-15)
    assert_allclose(dev, expected, rtol=1e-12)
    assert positive is True


def test_a_false_flag_in_any_chunk_is_reported_and_padding_adds_nothing():
    family = get_family("poisson")
    link = get_link("identity", family)
    n = CHUNK_ROWS + 3
    eta = np.ones(n)
    eta[-1] = -1.0  # invalid mean in the short last chunk, which is padded with copies of it
    y = np.ones(n)
    _, dev, positive = map_rows(_kernel, (family, link), (y, np.ones(n), np.ones(n)), zero_padded=(2,))
    assert dev == 0.0 and positive is True
    _, _, positive = map_rows(_kernel, (family, link), (y, eta, np.ones(n)), zero_padded=(2,))
    assert positive is False
    # Weights padded with zeros: the padded copies of the last row do not count.
    _, dev, _ = map_rows(_kernel, (family, link), (np.full(n, 2.0), np.ones(n), np.ones(n)), zero_padded=(2,))
    with jax.enable_x64(True):
        assert_allclose(dev, n * float(family.unit_deviance(2.0, 1.0)), rtol=1e-12)
