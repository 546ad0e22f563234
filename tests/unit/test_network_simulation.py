"""Known truths: a network learns a nonlinear signal the GLM misses, and costs nothing on a linear one.

Data are simulated (2,000 training rows, 5,000 held-out rows) from a Gaussian, a Poisson with
exposure and a Bernoulli model; the held-out mean deviance of the GLM, of the network (16 tanh
units, Adam with early stopping) and of the true mean are compared.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.family import derived
from neuralglm.family.registry import get_family

FAMILIES = ["gaussian", "poisson", "binomial"]


def simulate(family: str, n_obs: int, seed: int, linear: bool) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {"x1": rng.uniform(-2, 2, n_obs), "x2": rng.uniform(-2, 2, n_obs), "x3": rng.normal(size=n_obs), "e": rng.uniform(0.5, 2, n_obs)}
    )
    signal = 0.8 * df.x1 - 0.5 * df.x2 if linear else np.sin(2 * df.x1) + 0.5 * df.x2**2 - 0.5
    if family == "gaussian":
        mu = signal.to_numpy()
        df["y"] = mu + 0.5 * rng.normal(size=n_obs)
    elif family == "poisson":
        mu = (df.e * np.exp(signal)).to_numpy()
        df["y"] = rng.poisson(mu)
    else:
        mu = (1 / (1 + np.exp(-2 * signal))).to_numpy()
        df["y"] = rng.binomial(1, mu)
    return df, mu


def held_out_deviances(family: str, linear: bool) -> tuple[float, float, float]:
    train, _ = simulate(family, 2000, seed=0, linear=linear)
    test, true_mu = simulate(family, 5000, seed=1, linear=linear)
    exposure = {"exposure": "e"} if family == "poisson" else {}
    glm = ng.glm("y ~ x1 + x2 + x3", train, family=family, **exposure)
    # l2=0.0 pinned: the default before l2="auto", with which the numbers below were measured.
    net = ng.fit(
        "y ~ x1 + x2 + x3", train, family=family, hidden=(16,), activation="tanh", solver="adam",
        learning_rate=0.01, epochs=300, early_stopping=True, patience=20, seed=0, l2=0.0, **exposure,
    )  # fmt: skip
    assert net.info.status.name == "EARLY_STOPPED"

    def mean_deviance(mu) -> float:
        with jax.enable_x64(True):
            y = test.y.to_numpy(float)
            return float(derived.deviance(get_family(family), y, np.asarray(mu, float), np.ones(len(y)))) / len(y)

    return mean_deviance(glm.predict(test)), mean_deviance(net.predict(test)), mean_deviance(true_mu)


@pytest.mark.parametrize("family", FAMILIES)
def test_network_learns_a_nonlinear_truth(family):
    glm, net, truth = held_out_deviances(family, linear=False)
    # The GLM misses most of the signal (its excess deviance is 0.4–1.7 per row here); the
    # network must recover at least 75% of the gap and come within 20% of the truth. Measured:
    # it recovers 89–96% and lands 5–12% above the truth (estimation noise of ~80 weights).
    assert net - truth <= 0.25 * (glm - truth)
    assert net <= 1.2 * truth


@pytest.mark.parametrize("family", FAMILIES)
def test_network_is_no_worse_on_a_linear_truth(family):
    glm, net, truth = held_out_deviances(family, linear=True)
    # Both are estimates of the same truth; the network spends more degrees of freedom (early
    # stopping keeps ~20–40 effective ones vs 4), which costs ~1–2% of held-out deviance at
    # n = 2,000. Allow 3%, and require the GLM itself to be near the truth (sanity of the oracle).
    assert glm <= 1.01 * truth
    assert net <= 1.03 * glm
