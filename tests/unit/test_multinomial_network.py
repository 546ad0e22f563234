"""Multinomial networks: ``ng.fit(..., family="multinomial")`` with a softmax output.

References: the multinomial GLM (``ng.glm(..., family="multinomial")``, itself checked against
live ``nnet::multinom`` in tests/parity), a penalized objective written here in NumPy and
minimized by SciPy, the likelihood identities of case weights, and counts of parameters by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize
from scipy.special import log_softmax

import neuralglm as ng
from neuralglm.errors import DataError, SpecificationError
from neuralglm.results.multinomial import MultinomialResult
from neuralglm.results.multinomial_network import MultinomialNetworkResult


def _data(n=500, seed=0, nonlinear=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.uniform(-1, 1, size=n)
    bend = 1.5 * x1**2 - 1.0 if nonlinear else 0.8 * x1
    eta = np.column_stack([np.zeros(n), 0.3 + bend, -0.2 - 0.5 * x1 + 1.2 * x2])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    codes = (rng.random(n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    return pd.DataFrame({"y": np.array(["lo", "mid", "up"])[codes], "x1": x1, "x2": x2})


@pytest.fixture(scope="module")
def df():
    return _data()


@pytest.fixture(scope="module")
def glm(df):
    return ng.glm("y ~ x1 + x2", df, family="multinomial")


@pytest.mark.parametrize(
    "settings",
    [dict(solver="lbfgs"), dict(solver="lbfgs", dtype="float64"), dict(solver="adam", epochs=5, learning_rate=0.05)],
    ids=["lbfgs-float32", "lbfgs-float64", "adam"],
)
def test_no_hidden_layer_reproduces_the_multinomial_glm(df, glm, settings):
    net = ng.fit("y ~ x1 + x2", df, family="multinomial", **settings)
    assert isinstance(net, MultinomialNetworkResult)
    assert net.info.converged and "Newton polish" in net.info.message
    assert net.coef.index.equals(glm.coef.index)
    np.testing.assert_allclose(net.coef.to_numpy(), glm.coef.to_numpy(), rtol=1e-6, atol=1e-9)
    assert net.deviance == pytest.approx(glm.deviance, rel=1e-10)
    assert net.null_deviance == pytest.approx(glm.null_deviance, rel=1e-12)
    assert net.aic == pytest.approx(glm.aic, rel=1e-10) and net.n_params == glm.edf
    np.testing.assert_allclose(net.predict(df).to_numpy(), glm.predict(df).to_numpy(), rtol=1e-6)


def test_hidden_none_with_auto_solver_is_the_glm_itself(df, glm):
    fit = ng.fit("y ~ x1 + x2", df, family="multinomial")
    assert isinstance(fit, MultinomialResult)
    assert fit.coef.equals(glm.coef) and fit.call is not None and fit.call.name == "fit"


def test_penalized_output_layer_is_the_optimum_of_the_objective(df):
    """l2 > 0 without hidden layers: the polish reaches the minimum of deviance/2 + l2/2·‖W‖² (bias free), on standardized inputs."""
    l2 = 25.0
    net = ng.fit("y ~ x1 + x2", df, family="multinomial", solver="lbfgs", l2=l2)
    Z = (df[["x1", "x2"]].to_numpy() - net.scaling.mean) / net.scaling.scale
    codes = pd.Categorical(df["y"]).codes

    def objective(theta):
        bias, weight = theta[:2], theta[2:].reshape(2, 2)
        eta = np.column_stack([np.zeros(len(Z)), Z @ weight + bias])
        return -log_softmax(eta, axis=1)[np.arange(len(Z)), codes].sum() + 0.5 * l2 * np.sum(weight**2)

    reference = optimize.minimize(objective, np.zeros(6), method="BFGS", options={"gtol": 1e-10}).x
    layer = net.params[-1]
    np.testing.assert_allclose(np.concatenate([layer.bias, layer.weight.reshape(-1)]), reference, rtol=1e-6, atol=1e-8)
    assert net.info.converged


def test_hidden_layers_learn_a_nonlinear_truth_and_predictions_are_consistent():
    data = _data(n=800, seed=1, nonlinear=True)
    glm = ng.glm("y ~ x1 + x2", data, family="multinomial")
    net = ng.fit("y ~ x1 + x2", data, family="multinomial", hidden=(8,), seed=2)
    assert net.deviance < glm.deviance - 50  # the x1² bend is beyond any linear logit
    assert net.deviance < net.null_deviance
    prob = net.predict(data.head(20))
    assert list(prob.columns) == ["lo", "mid", "up"] and prob.index.equals(data.head(20).index)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-12)
    link = net.predict(data.head(20), type="link")
    assert list(link.columns) == ["mid", "up"]
    np.testing.assert_allclose(link.to_numpy(), np.log(prob[["mid", "up"]].to_numpy() / prob[["lo"]].to_numpy()), atol=1e-10)
    assert (net.predict(data.head(20), type="class") == prob.idxmax(axis=1)).all()
    # deviance from the fitted probabilities of the observed levels; k counted by hand: 2·8 + 8 + (8 + 1)·2
    fitted = net.predict(data)
    own = fitted.to_numpy()[np.arange(len(data)), pd.Categorical(data["y"]).codes]
    assert net.deviance == pytest.approx(-2 * np.log(own).sum(), rel=1e-12)
    assert net.n_params == 42
    assert net.loglik == pytest.approx(-net.deviance / 2) and net.aic == pytest.approx(net.deviance + 84)
    assert net.bic == pytest.approx(net.deviance + np.log(800) * 42)


def test_case_weights_are_counts(df):
    small = df.iloc[:120]
    counts = np.random.default_rng(4).integers(0, 4, size=len(small))
    weighted = ng.fit("y ~ x1 + x2", small, family="multinomial", solver="lbfgs", dtype="float64", weights=counts)
    repeated = small.loc[small.index.repeat(counts)]
    reference = ng.glm("y ~ x1 + x2", repeated, family="multinomial")
    np.testing.assert_allclose(weighted.coef.to_numpy(), reference.coef.to_numpy(), rtol=1e-6, atol=1e-9)
    assert weighted.deviance == pytest.approx(reference.deviance, rel=1e-9)
    assert weighted.n_obs == counts.sum()


def test_early_stopping_network_and_summary(df):
    settings = dict(solver="adam", early_stopping=True, learning_rate=0.05, patience=3, epochs=300, seed=0)
    net = ng.fit("y ~ x1 + x2", df, family="multinomial", hidden=(4,), **settings)
    text = str(net.summary())
    for piece in ("Multinomial neural network", "2 → 4 (tanh) → 2 (softmax)", "Residual deviance", "AIC", "reference level 'lo'"):
        assert piece in text
    assert net.info.status.name == "EARLY_STOPPED"
    assert len(net.validation_rows) == 50


def test_null_deviance_is_the_intercept_only_multinom(df, glm):
    assert glm.null_deviance == pytest.approx(ng.glm("y ~ 1", df, family="multinomial").deviance, rel=1e-10)


def test_refit_replays_the_network_call(df):
    net = ng.fit("y ~ x1", df, family="multinomial", hidden=(2,), seed=3)
    again = net.refit(df.iloc[:300])
    assert isinstance(again, MultinomialNetworkResult) and again.n_obs == 300 and again.architecture == net.architecture


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fitter", ["glm", "fit"])
def test_bad_input_is_refused_with_what_to_do(fitter):
    def run(data, **arguments):
        return getattr(ng, fitter)("y ~ x", data, family="multinomial", **({"hidden": (2,)} if fitter == "fit" else {}), **arguments)

    x = np.linspace(0, 1, 80)
    with pytest.raises(DataError, match=r"needs at least two levels; it has 1 \('a'\)"):
        run(pd.DataFrame({"y": ["a"] * 80, "x": x}))
    with pytest.raises(DataError, match=r"numeric with 80 distinct values.*astype\('category'\)"):
        run(pd.DataFrame({"y": np.arange(80), "x": x}))
    with pytest.raises(DataError, match=r"numeric with non-integer values such as 0\.5"):
        run(pd.DataFrame({"y": np.where(x > 0.5, 1.0, 0.5), "x": x}))
    three = pd.DataFrame({"y": np.arange(80) % 3, "x": x, "e": 1.0 + x})
    assert run(three).levels == ("0", "1", "2")  # few integer codes are a factor
    with pytest.raises(SpecificationError, match="takes no offset or exposure"):
        run(three, exposure="e")
    with pytest.raises(SpecificationError, match="takes no offset or exposure"):
        run(three, offset=np.zeros(80))
    with pytest.raises(SpecificationError, match=r"takes no offset.*offset\(\) term"):
        getattr(ng, fitter)("y ~ x + offset(np.log(e))", three, family="multinomial")
    with pytest.raises(SpecificationError, match="logit link only"):
        run(three, link="probit")
    with pytest.raises(SpecificationError, match=r"has no dispersion .* got dispersion=2\.0"):
        run(three, dispersion=2.0)
    with pytest.raises(SpecificationError, match=r"expected \(Fisher\) covariance only.*got cov_type='sandwich'"):
        run(three, cov_type="sandwich")


def test_categorical_response_may_have_many_levels():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": pd.Categorical(np.repeat(np.arange(60), 5)), "x": rng.normal(size=300)})
    assert len(ng.glm("y ~ 1", df, family="multinomial").levels) == 60


def test_user_frame_is_not_mutated(df):
    before = df.copy(deep=True)
    ng.fit("y ~ x1 + x2", df, family="multinomial", hidden=(2,))
    pd.testing.assert_frame_equal(df, before)


def test_training_loss_is_half_the_multinomial_deviance_per_unit_weight():
    """The JAX loss the solvers minimize equals the NumPy deviance the results report, for extreme logits too."""
    import jax

    from neuralglm.fit.multinomial import deviance, log_softmax
    from neuralglm.fit.multinomial_network import SoftmaxOutput

    rng = np.random.default_rng(9)
    eta = rng.normal(scale=30.0, size=(50, 3))  # probabilities far below float64's tiny for some rows
    codes, weights = rng.integers(0, 4, size=50), rng.uniform(0.0, 3.0, size=50)
    with jax.enable_x64(True):
        loss = float(SoftmaxOutput(4).mean_half_deviance(codes.astype(np.float64), eta, weights))
    assert loss == pytest.approx(deviance(codes, weights, log_softmax(eta)) / (2 * weights.sum()), rel=1e-12)


@pytest.mark.parametrize("response", ["text", "bool"])
def test_two_levels_train_as_one_logit(response):
    # Two levels: the network's single output is the logit of the second level (the GLM's parameterisation).
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    outcome = rng.random(300) < 1 / (1 + np.exp(-(0.5 + np.sin(2 * x))))
    frame = pd.DataFrame({"x": x, "y": np.where(outcome, "b", "a") if response == "text" else outcome})
    net = ng.fit("y ~ x", frame, family="multinomial", hidden=(3,), seed=0, solver="lbfgs")
    probabilities = net.predict(frame)
    assert probabilities.shape == (300, 2)
    assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    # The deviance is the Bernoulli deviance of the same probabilities.
    second = probabilities.iloc[:, 1].to_numpy()
    bernoulli = -2 * np.sum(np.where(outcome, np.log(second), np.log1p(-second)))
    assert_allclose(net.deviance, bernoulli, rtol=1e-8)


def test_a_level_without_weight_is_a_clear_error():
    x = np.linspace(0, 1, 90)
    frame = pd.DataFrame({"y": np.array(["a", "b", "c"] * 30), "x": x, "w": np.where(np.arange(90) % 3 == 2, 0.0, 1.0)})
    with pytest.raises(DataError, match=r"level\(s\) \['c'\] of 'y' have no weight"):
        ng.fit("y ~ x", frame, family="multinomial", hidden=(2,), weights="w")
