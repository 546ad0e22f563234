"""ng.bootstrap: percentile intervals that cover, replicates that respect weights and exposure, clear errors.

Coverage (``test_glm_mean_intervals_cover``): ``N_DATA`` Poisson data sets are simulated from
one fixed design (n = 100, an intercept and two U(-1, 1) covariates, known coefficients); each
is fitted with ``ng.glm_fit`` and bootstrapped (``N_BOOT`` Poisson-weight replicates), and we
count how often the 95% percentile interval of the mean at ``len(TARGETS)`` design rows (the
corners and edge midpoints of the covariate square) holds the true mean.

Why 93–97% is a fair band: the ``N_DATA × 8 = 1,200`` coverage events would have a binomial
standard error of √(0.95·0.05/1200) = 0.63% if independent; the events of one data set share
its estimate (mean pairwise correlation 0.18, measured), which inflates the variance by
1 + 7·0.18, to an SE of 0.95% (0.99% measured across data sets). The band is ±2.1 SE: a correct
implementation whose true coverage is 95% fails about 4% of seeds (seeds are fixed, so the
outcome is reproducible). Measured with these seeds: 94.6% (92.7–96.0% per row). A standard
error wrong by 15% moves coverage to ~92% or ~97.5% and fails. ``N_BOOT`` = 1,000 because a
percentile interval's ends are read off the replicates' tails: with 200 replicates (5 beyond
each end) the same simulation covered only 93.8%.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning, ModelFileError, SpecificationError

N_OBS = 100
N_DATA = 150
N_BOOT = 1000
BETA = np.array([0.5, 0.6, -0.4])
TARGETS = [(-1, -1), (-1, 1), (1, -1), (1, 1), (0, -1), (0, 1), (-1, 0), (1, 0)]


def _design() -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(N_OBS), rng.uniform(-1.0, 1.0, size=(N_OBS, 2))])
    rows = [int(np.argmin((X[:, 1] - a) ** 2 + (X[:, 2] - b) ** 2)) for a, b in TARGETS]
    return X, rows


def test_glm_mean_intervals_cover():
    X, rows = _design()
    mu = np.exp(X @ BETA)[rows]
    rng = np.random.default_rng(8)
    hits = np.zeros((N_DATA, len(rows)), dtype=bool)
    for d in range(N_DATA):
        y = rng.poisson(np.exp(X @ BETA)).astype(float)
        fit = ng.glm_fit(X, y, family="poisson", column_names=["Intercept", "x1", "x2"])
        bands = ng.bootstrap(fit, N_BOOT, seed=d).predict()
        hits[d] = (bands["lower"].to_numpy()[rows] <= mu) & (mu <= bands["upper"].to_numpy()[rows])
    assert 0.93 <= hits.mean() <= 0.97, hits.mean()


@pytest.fixture(scope="module")
def claims():
    return ng.datasets.load_insurance()


@pytest.fixture(scope="module")
def claims_glm(claims):
    return ng.glm("claims ~ group + age", claims, family="poisson", exposure="holders")


def test_glm_replicates_are_refits_and_respect_exposure(claims, claims_glm):
    boot = ng.bootstrap(claims_glm, 400, seed=3)
    assert boot.replicates.shape == (400, len(claims_glm.coef))
    assert list(boot.replicates.columns) == list(claims_glm.coef.index)
    # Each replicate is ng.glm on the resampled rows (drawn rows repeated by frequency weights).
    counts = np.random.default_rng(3).poisson(1.0, size=(400, len(claims)))
    for k in range(3):
        drawn = claims.assign(count=counts[k])[counts[k] > 0]
        refit = ng.glm("claims ~ group + age", drawn, family="poisson", exposure="holders", freq_weights="count")
        assert np.allclose(boot.replicates.iloc[k], refit.coef, rtol=0, atol=1e-7)
    # Case resampling estimates the sandwich variance: HC0 from 64 rows is 10-25% smaller (its small-sample bias).
    ratio = boot.replicates.std() / claims_glm.refit(cov_type="sandwich").std_errors
    assert ratio.between(1.0, 1.4).all(), ratio
    interval = boot.conf_int(0.9)
    assert interval.attrs["level"] == 0.9
    assert ((interval["lower"] < claims_glm.coef) & (claims_glm.coef < interval["upper"])).all()
    new = claims.head(5)
    bands = boot.predict(new)
    assert np.allclose(bands["fit"], claims_glm.predict(new))
    assert (bands["lower"] < bands["fit"]).all() and (bands["fit"] < bands["upper"]).all()
    # The new rows' exposure scales every replicate's mean (log link): the whole band doubles.
    doubled = boot.predict(new.assign(holders=2 * new["holders"]))
    assert np.allclose(doubled[["fit", "se_fit", "lower", "upper"]], 2 * bands[["fit", "se_fit", "lower", "upper"]])
    link = boot.predict(new, type="link")
    assert np.allclose(np.exp(link["lower"]), bands["lower"]) and np.allclose(np.exp(link["upper"]), bands["upper"])


def test_same_seed_same_replicates_and_prior_weights_count(claims, claims_glm):
    a, b = ng.bootstrap(claims_glm, 20, seed=5), ng.bootstrap(claims_glm, 20, seed=5, resample="multinomial")
    assert np.array_equal(a.estimates, ng.bootstrap(claims_glm, 20, seed=5).estimates)
    assert not np.array_equal(a.estimates, b.estimates)
    # Gaussian with prior weights: each refit is weighted least squares with weights × counts.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "w": rng.uniform(0.5, 3.0, 60)})
    df["y"] = 1.0 + 2.0 * df["x"] + rng.normal(size=60) / np.sqrt(df["w"])
    fit = ng.glm("y ~ x", df, weights="w")
    boot = ng.bootstrap(fit, 5, seed=1)
    counts = np.random.default_rng(1).poisson(1.0, size=(5, 60))
    X = np.column_stack([np.ones(60), df["x"]])
    for k in range(5):
        w = df["w"].to_numpy() * counts[k]
        expected = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * df["y"].to_numpy()))
        assert np.allclose(boot.estimates[k], expected, rtol=1e-8)


@pytest.fixture(scope="module")
def claims_net(claims):
    return ng.fit(
        "claims ~ group + age", claims, family="poisson", exposure="holders", hidden=(2,), activation="tanh", l2=1.0, solver="lbfgs", seed=0
    )


def test_network_bootstrap(claims, claims_net):
    net = claims_net
    boot = ng.bootstrap(net, 16, seed=0)
    assert boot.replicates.shape == (16, net.n_params)
    # Every refit says how it ended; these all meet the fit's criterion, or stall at float32's precision.
    assert set(boot.status) <= {"converged", "stalled"} and boot.n_unconverged == np.sum(boot.status == "stalled")
    assert boot.n_iter.shape == (16,) and (boot.n_iter > 0).all() and "start='init'" in repr(boot)
    bands = boot.predict(claims.head(4))
    assert np.allclose(bands["fit"], net.predict(claims.head(4)))
    assert (bands["se_fit"] > 0).all() and (bands["lower"] <= bands["upper"]).all()
    with pytest.raises(SpecificationError, match="conf_int\\(\\) needs identifiable parameters"):
        boot.conf_int()


def test_refits_at_the_iteration_limit_warn_and_say_so(claims, claims_glm, claims_net):
    glm_boot = ng.bootstrap(claims_glm, 10, seed=0)
    assert (glm_boot.status == "converged").all() and glm_boot.n_unconverged == 0 and (glm_boot.n_iter >= 1).all()
    with pytest.warns(ConvergenceWarning, match=r"16 of 16 bootstrap refits reached the iteration limit \(3\)"):
        boot = ng.bootstrap(claims_net, 16, seed=0, max_iter=3)
    assert (boot.status == "iteration limit").all() and (boot.n_iter == 3).all() and boot.n_unconverged == 16
    assert boot.n_failed == 0  # kept in the intervals, as the warning says


def test_warm_starts_agree_with_cold_starts_and_the_glm(claims, claims_net):
    """``start="fitted"`` (warm) against ``start="init"`` (cold), on the same resamples (same seed).

    Without hidden layers the objective is convex: warm and cold refits reach the same optimum,
    the GLM's refit on the same counts, up to where L-BFGS stops (largest gradient component
    ≤ tol). In float64 they agree to 1e-5 relative in ``se_fit`` and the interval ends
    (measured), so 1e-4: far below the 5% Monte Carlo error of a 200-replicate SE, this checks
    that the refits are the same ones, not only alike. (In float32 the refits stall at the
    working precision, the warm ones closer to their start: their SEs were 0.1-0.9% below the
    GLM's, the cold ones' within 0.2%; documented in ``ng.bootstrap``, not asserted here.)

    With hidden units, warm refits stay in the fitted basin and cold ones may land elsewhere, so
    only the Monte Carlo tolerance applies: an SE from B = 200 replicates has a relative
    standard deviation of about 1/√(2B) = 5% (normal replicates), so two sets, even
    independent, differ by 7% (√2 × 5%) per row; the median over the 64 rows of the per-row
    ratio must be within 0.85-1.18 (a ±2.3-SD band for one row; the median is steadier).
    Measured (float32, seed 4): median 0.95, rows 0.74-1.13, all 400 refits stalled at the
    working precision (warm 133 iterations on average, cold 186); in float64 the median was
    1.001. A warm start that stopped early, near the fitted weights, would shrink the SEs well
    beyond this band.
    """
    glm = ng.glm("claims ~ group + age", claims, family="poisson", exposure="holders")
    net = ng.fit(
        "claims ~ group + age", claims, family="poisson", exposure="holders", hidden=(), l2=0.0, solver="lbfgs", seed=0, dtype="float64"
    )
    reference = ng.bootstrap(glm, 200, seed=4).predict()
    for start in ("fitted", "init"):
        bands = ng.bootstrap(net, 200, seed=4, start=start).predict()
        for column in ("se_fit", "lower", "upper"):
            assert np.allclose(bands[column], reference[column], rtol=1e-4, atol=0), (start, column)
    warm, cold = (ng.bootstrap(claims_net, 200, seed=4, start=start) for start in ("fitted", "init"))
    assert warm.n_failed == 0 and cold.n_failed == 0
    ratio = warm.predict()["se_fit"] / cold.predict()["se_fit"]
    assert 0.85 <= ratio.median() <= 1.18, ratio.describe()


def test_bad_input(claims_glm):
    with pytest.raises(SpecificationError, match=r"The 'n_boot' parameter of bootstrap must be an int in the range \[2, inf\). Got 1"):
        ng.bootstrap(claims_glm, 1)
    with pytest.raises(SpecificationError, match="'resample' parameter"):
        ng.bootstrap(claims_glm, resample="case")
    with pytest.raises(SpecificationError, match="'fit' parameter"):
        ng.bootstrap("model")
    with pytest.raises(SpecificationError, match="The 'level' parameter of predict"):
        ng.bootstrap(claims_glm, 4).predict(level=95)
    buffer = io.BytesIO()
    claims_glm.save(buffer)
    with pytest.raises(ModelFileError, match="bootstrap\\(\\) needs the training data"):
        ng.bootstrap(ng.load(io.BytesIO(buffer.getvalue())))


def test_batched_irls_without_column_products_agrees():
    # The large-design path (each refit weighs X itself) gives the same refits as the products path.
    import jax

    from neuralglm.family.registry import get_family, get_link
    from neuralglm.fit import batched

    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.2]))).astype(float)
    counts = rng.poisson(1.0, size=(4, 50)).astype(float)
    family = get_family("poisson")
    args = (np.zeros(3), X)
    with jax.enable_x64(True):
        a = batched.irls_replicates(
            *args, batched.column_products(X), y, counts, np.zeros(50), 1e-10, family=family, link=get_link(None, family), max_iter=50
        )
        b = batched.irls_replicates(*args, None, y, counts, np.zeros(50), 1e-10, family=family, link=get_link(None, family), max_iter=50)
    assert np.all(np.asarray(a[2])) and np.allclose(np.asarray(a[0]), np.asarray(b[0]), rtol=0, atol=1e-10)
