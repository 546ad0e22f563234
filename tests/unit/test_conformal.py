"""ng.conformal: split-conformal intervals of networks cover new data at the nominal rate.

For each family one network is trained (1,000 rows of a nonlinear truth); then ``N_SPLITS``
times, fresh calibration and test sets of ``N_ROWS`` rows each are simulated from the truth, the
intervals are calibrated on one and their coverage counted on the other. Conformal coverage
holds given the trained model, so one network per family suffices; the model need not be good.

Why these bands: with n calibration rows the coverage of a level-0.9 interval, averaged over
calibration sets, is ⌈0.9(n+1)⌉/(n+1) = 90.005% at n = 2,000, and at most 0.9 + 1/(n+1)
for a continuous response. One split's coverage varies by √(0.9·0.1/(n+2)) (the calibration
quantile's Beta law) and √(0.9·0.1/n) (the test rows), together 0.95%; over ``N_SPLITS`` = 60
splits the mean's standard error is 0.12%. "At least nominal" is checked as ≥ 90% − 3 SE
(89.63%), "not more than 3 points above" as ≤ 93%. Measured (these seeds): Gaussian 90.15%,
Gamma 90.06%, Poisson with exposure 90.01%. Discrete families (Poisson) are checked only from
below: their coverage can only err upwards (a count lies in the interval or not as the
interval's ends cross integers), by little here (expected counts ≈ 0.1–25, most above 1) and more
for small means, where a few attainable values carry most of the probability.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.conformal_prediction import conformal_quantile
from neuralglm.errors import SpecificationError

N_TRAIN = 1000
N_ROWS = 2000
N_SPLITS = 60
LEVEL = 0.9
SE = math.sqrt(LEVEL * (1 - LEVEL) * (1 / (N_ROWS + 2) + 1 / N_ROWS) / N_SPLITS)
GAMMA_SHAPE = 4.0


def _truth(family: str, rng: np.random.Generator, n: int) -> pd.DataFrame:
    df = pd.DataFrame({"x1": rng.uniform(-1.0, 1.0, n), "x2": rng.uniform(-1.0, 1.0, n)})
    signal = np.sin(2.5 * df["x1"]) + 0.6 * df["x2"] ** 2
    if family == "gaussian":
        df["y"] = signal + rng.normal(scale=0.5, size=n)
    elif family == "gamma":
        mean = np.exp(0.5 + signal)
        df["y"] = rng.gamma(GAMMA_SHAPE, mean / GAMMA_SHAPE)
    else:
        df["exposure"] = rng.uniform(0.2, 3.0, n)
        df["y"] = rng.poisson(df["exposure"] * np.exp(0.5 + signal)).astype(float)
    return df


def _coverage(family: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    exposure = {"exposure": "exposure"} if family == "poisson" else {}
    net = ng.fit(
        "y ~ x1 + x2",
        _truth(family, rng, N_TRAIN),
        family=family,
        hidden=(8,),
        activation="tanh",
        l2=1.0,
        solver="lbfgs",
        seed=1,
        **exposure,
    )
    covered = []
    for _ in range(N_SPLITS):
        calibration, test = _truth(family, rng, N_ROWS), _truth(family, rng, N_ROWS)
        bands = ng.conformal(net, calibration, level=LEVEL).predict(test)
        covered.append(np.mean((bands["lower"] <= test["y"]) & (test["y"] <= bands["upper"])))
    return float(np.mean(covered))


@pytest.mark.filterwarnings("ignore::neuralglm.errors.ConvergenceWarning")  # coverage does not need an optimum
@pytest.mark.parametrize(("family", "upper"), [("gaussian", LEVEL + 0.03), ("gamma", LEVEL + 0.03), ("poisson", 1.0)])
def test_network_conformal_coverage(family, upper):
    rate = _coverage(family, seed=11)
    assert LEVEL - 3 * SE <= rate <= upper, rate


def test_quantile_and_exposure_scaling():
    assert conformal_quantile(np.array([3.0, 1.0, 2.0]), np.ones(3), 0.5) == 2.0  # k = ceil(4 · 0.5) = 2
    assert conformal_quantile(np.array([1.0, 2.0]), np.array([1.0, 9.0]), 0.5) == 2.0  # frequency weights count as rows
    df = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ group + age", df.iloc[:40], family="poisson", exposure="holders")
    result = ng.conformal(fit, df.iloc[40:], level=0.8)
    new = df.head(3)
    bands = result.predict(new)
    bigger = result.predict(new.assign(holders=4 * new["holders"]))
    # μ scales with exposure and the Poisson half-width q·sqrt(μ) with its square root.
    assert np.allclose(bigger["fit"], 4 * bands["fit"])
    assert np.allclose(bigger["upper"] - bigger["fit"], 2 * (bands["upper"] - bands["fit"]))
    assert (bands["lower"] >= 0).all()  # clipped to the counts' range
    with pytest.raises(SpecificationError, match=r"The 'level' parameter of conformal must be a float in the range \(0.0, 1.0\)"):
        ng.conformal(fit, df.iloc[40:], level=1.5)


def test_prediction_bands_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ group + age", df.iloc[:40], family="poisson", exposure="holders")
    bands = ng.conformal(fit, df.iloc[40:], level=0.8).predict(df)
    ax = ng.plots.prediction_bands(df, "holders", {"a": bands, "b": bands}, observed="claims", per="holders", kind="bars")
    assert len(ax.collections) == 3  # the points and one set of vertical intervals per method
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["claims", "a (80%)", "b (80%)"]
    plt.close(ax.figure)
    with pytest.raises(SpecificationError, match="The 'kind' parameter of prediction_bands"):
        ng.plots.prediction_bands(df, "holders", bands, kind="ribbon")
