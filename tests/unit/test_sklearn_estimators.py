"""scikit-learn estimators: the estimator checks, pipelines, grid search, and agreement with ``ng.fit``.

References are independent of the estimators: ``ng.fit`` on the same data (same code path, so
predictions agree to rounding), scikit-learn's ``d2_tweedie_score`` / ``d2_log_loss_score``
for D², and the sample-weight identities of the likelihood (integer weights ≡ repeated rows,
zero weights ≡ removed rows).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is an optional dependency (extra 'sklearn')")

from numpy.testing import assert_allclose  # noqa: E402
from sklearn.metrics import d2_log_loss_score, d2_tweedie_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import neuralglm as ng  # noqa: E402
from neuralglm.errors import ConvergenceWarning, SeparationWarning  # noqa: E402

# ---- scikit-learn's estimator checks ---------------------------------------------------------
# Small, fast configurations: the GLMs (IRLS) run every check; the network trains a few Adam
# epochs (float64, so repeated fits agree exactly) with a step size large enough to pass the
# "fits the training data" checks (R² > 0.5, accuracy > 0.83).
NETWORK = dict(hidden=(3,), activation="tanh", solver="adam", learning_rate=0.05, epochs=30, batch_size=64, dtype="float64")
CHECKED = [ng.NeuralGLMRegressor(), ng.NeuralGLMClassifier(), ng.NeuralGLMRegressor(**NETWORK)]

# Every check that is expected to fail, with the reason. The checks run with xfail_strict, so
# a check listed here that starts passing fails the suite and must be removed from the list.
_RANK_DEFICIENT = (
    "the check fits 30 features on 15 rows: the unpenalized GLM (one coefficient per column plus the intercept) "
    "is not identifiable there, and neuralglm raises instead of picking one of the infinitely many solutions"
)
EXPECTED_FAILED_CHECKS = {
    "NeuralGLMRegressor(glm)": {"check_sample_weight_equivalence_on_dense_data": _RANK_DEFICIENT},
    "NeuralGLMClassifier(glm)": {"check_sample_weight_equivalence_on_dense_data": _RANK_DEFICIENT},
    "NeuralGLMRegressor(network)": {
        "check_sample_weight_equivalence_on_dense_data": (
            "minibatch Adam draws batches of rows: repeating a row changes the batches, and the input standardization "
            "is computed over rows, not weighted; the fitted weights differ beyond rtol=1e-7 (the likelihood identity "
            "is checked at the optimum for the GLM in test_integer_weights_repeat_rows_and_zero_weights_remove_them)"
        ),
    },
}
# The network configuration runs the checks whose outcome depends on how the model is trained
# and stored (fitting quality, determinism, pickling, prediction invariances, dtypes). The other
# checks test input validation, parameters and tags, which run the same code before ng.fit
# whatever the architecture, and already pass on both GLM configurations; each costs a fresh XLA
# compilation (2–3 s on 2 cores) for nothing new, so they are skipped with this reason.
NETWORK_CHECKS = {
    "check_regressors_train",
    "check_regressors_int",
    "check_fit_idempotent",
    "check_estimators_pickle",
    "check_methods_subset_invariance",
    "check_methods_sample_order_invariance",
    "check_estimators_dtypes",
    "check_pipeline_consistency",
    "check_readonly_memmap_input",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_sample_weight_equivalence_on_dense_data",
}
NETWORK_SKIP_REASON = "input-validation/API check: same code path as the GLM configurations, which run it (see NETWORK_CHECKS)"
# Skipped by scikit-learn itself (SkipTest), with its own reason: check_array_api_input (runs
# only with SCIPY_ARRAY_API=1; the estimators take NumPy input), and the sparse-data checks
# are answered by the documented TypeError for sparse X (dense data required).


def _config(estimator) -> str:
    kind = "network" if estimator.hidden else "glm"
    return f"{type(estimator).__name__}({kind})"


def _expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS.get(_config(estimator), {})


# The checks' classification data (blobs) are separable, and the network's few epochs stop
# before convergence on purpose: those warnings are the behaviour under test elsewhere.
@pytest.mark.filterwarnings("ignore::neuralglm.errors.SeparationWarning")
@pytest.mark.filterwarnings("ignore::neuralglm.errors.ConvergenceWarning")
@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if estimator.hidden and name not in NETWORK_CHECKS:
        pytest.skip(NETWORK_SKIP_REASON)
    check(estimator)


def test_every_expected_failure_names_a_real_check_and_a_reason():
    from sklearn.utils.estimator_checks import _yield_all_checks

    configs = {_config(estimator): estimator for estimator in CHECKED}
    assert set(EXPECTED_FAILED_CHECKS) <= set(configs)
    for config, failures in EXPECTED_FAILED_CHECKS.items():
        names = {getattr(check, "func", check).__name__ for check in _yield_all_checks(configs[config], legacy=True)}
        for name, reason in failures.items():
            assert name in names
            assert len(reason) > 40
    network = next(estimator for estimator in CHECKED if estimator.hidden)
    assert NETWORK_CHECKS <= {getattr(check, "func", check).__name__ for check in _yield_all_checks(network, legacy=True)}


# Tests below share one row count (300 for fits) and one network configuration, so that XLA
# compiles each (shape, family, architecture) once for the whole file.
NET = dict(hidden=(8,), activation="tanh", solver="lbfgs", epochs=100, dtype="float64")


# ---- data -----------------------------------------------------------------------------------
def _poisson_data(n_obs=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, 3))
    exposure = rng.uniform(0.5, 2.0, size=n_obs)
    y = rng.poisson(exposure * np.exp(0.3 + 0.5 * X[:, 0] - 0.4 * X[:, 1])).astype(float)
    return X, y, np.log(exposure)


def _binary_data(n_obs=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, 2))
    p = 1.0 / (1.0 + np.exp(-(0.2 + 1.5 * X[:, 0] - X[:, 1] ** 2)))
    labels = np.where(rng.random(n_obs) < p, "yes", "no")
    return X, labels


def _frame(X):
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])


# ---- the estimators are ng.fit ----------------------------------------------------------------
@pytest.mark.parametrize("settings", [{}, NET], ids=["glm", "network"])
def test_regressor_predictions_equal_ng_fit(settings):
    X, y, offset = _poisson_data()
    with np.errstate(all="ignore"), _quiet():
        model = ng.NeuralGLMRegressor(family="poisson", **settings).fit(X, y, offset=offset)
        data = _frame(X).assign(y=y)
        reference = ng.fit("y ~ x0 + x1 + x2", data, family="poisson", offset=offset, **settings)
    new = _frame(X[:20] + 0.1)
    # Same data, settings and seed through the same code: equal up to float64 rounding.
    assert_allclose(model.predict(X[:20] + 0.1, offset=offset[:20]), reference.predict(new, offset=offset[:20]), rtol=1e-12)
    assert_allclose(model.result_.deviance, reference.deviance, rtol=1e-12)


def test_classifier_probabilities_equal_ng_fit_with_labels_encoded():
    X, labels = _binary_data()
    clf = ng.NeuralGLMClassifier(link="probit").fit(X, labels)
    reference = ng.fit("y ~ x0 + x1", _frame(X).assign(y=(labels == "yes").astype(float)), family="binomial", link="probit")
    proba = clf.predict_proba(X)
    assert clf.classes_.tolist() == ["no", "yes"]
    assert_allclose(proba[:, 1], reference.predict(_frame(X)), rtol=1e-12)  # same IRLS fit
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    assert (clf.predict(X) == np.where(proba[:, 1] > 0.5, "yes", "no")).all()


def test_sample_weight_and_offset_reach_ng_fit():
    X, y, offset = _poisson_data(seed=1)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    model = ng.NeuralGLMRegressor(family="poisson").fit(X, y, sample_weight=weights, offset=offset)
    reference = ng.glm("y ~ x0 + x1 + x2", _frame(X).assign(y=y), family="poisson", weights=weights, offset=offset)
    assert_allclose(model.result_.coef.to_numpy(), reference.coef.to_numpy(), rtol=1e-10)  # same IRLS on the same design


# ---- score is D² ------------------------------------------------------------------------------
def test_score_is_deviance_explained_of_the_fitted_result():
    X, y, _ = _poisson_data()
    model = ng.NeuralGLMRegressor(family="poisson", **NET)
    with _quiet():
        model.fit(X, y)
    result = model.result_
    # Without an offset, the null model is the weighted mean: the same null deviance as the fit's.
    assert_allclose(model.score(X, y), 1.0 - result.deviance / result.null_deviance, rtol=1e-10)


@pytest.mark.parametrize(
    "family, link, power", [("gaussian", "identity", 0), ("poisson", "log", 1), ("gamma", "log", 2), ("tweedie(1.5)", "log", 1.5)]
)
def test_regressor_score_equals_sklearn_d2_tweedie(family, link, power):
    rng = np.random.default_rng(int(power * 2))
    n_obs = 600
    X = rng.normal(size=(n_obs, 3))
    mean = np.exp(0.5 + 0.4 * X[:, 0])
    if power == 0:
        y = mean + rng.normal(size=n_obs)
    elif power == 1:
        y = rng.poisson(mean).astype(float)
    elif power == 2:
        y = rng.gamma(2.0, mean / 2.0)
    else:  # compound Poisson-gamma, with exact zeros
        y = np.array([rng.gamma(2.0, 0.5, size=k).sum() for k in rng.poisson(mean)])
    weights = rng.uniform(0.5, 2.0, size=n_obs)
    model = ng.NeuralGLMRegressor(family=family, link=link).fit(X[:300], y[:300], sample_weight=weights[:300])
    X_test, y_test, w_test = X[300:], y[300:], weights[300:]
    expected = d2_tweedie_score(y_test, model.predict(X_test), sample_weight=w_test, power=power)
    assert_allclose(model.score(X_test, y_test, sample_weight=w_test), expected, rtol=1e-9)  # two float64 sums of the same terms


def test_classifier_score_equals_sklearn_d2_log_loss():
    X, labels = _binary_data()
    weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(labels))
    clf = ng.NeuralGLMClassifier().fit(X[:300], labels[:300], sample_weight=weights[:300])
    X_test, y_test, w_test = X[300:], labels[300:], weights[300:]
    expected = d2_log_loss_score(y_test, clf.predict_proba(X_test), sample_weight=w_test, labels=clf.classes_)
    assert_allclose(clf.score(X_test, y_test, sample_weight=w_test), expected, rtol=1e-9)  # two float64 sums of the same terms


def test_score_with_offset_uses_the_intercept_only_fit_with_that_offset():
    X, y, offset = _poisson_data()
    model = ng.NeuralGLMRegressor(family="poisson").fit(X, y, offset=offset)
    # R's null deviance with an offset: the intercept-only GLM fitted with the offset.
    null = ng.glm("y ~ 1", pd.DataFrame({"y": y}), family="poisson", offset=offset)
    assert_allclose(model.score(X, y, offset=offset), 1.0 - model.result_.deviance / null.deviance, rtol=1e-8)


# ---- sample weights are the likelihood's weights -----------------------------------------------
def test_integer_weights_repeat_rows_and_zero_weights_remove_them():
    X, y, _ = _poisson_data(seed=2)
    # 50 rows dropped (0), 50 doubled (2), the rest once: the repeated data also have 300 rows.
    weights = np.random.default_rng(2).permutation(np.repeat([0, 2, 1], [50, 50, 200]))
    weighted = ng.NeuralGLMRegressor(family="poisson").fit(X, y, sample_weight=weights)
    repeated = ng.NeuralGLMRegressor(family="poisson").fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    # Identical likelihoods, both IRLS fits converged to R's criterion 1e-8 on the deviance.
    assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6)


# ---- pipelines and model selection ------------------------------------------------------------
def test_pipeline_with_standard_scaler():
    X, y, _ = _poisson_data()
    pipe = make_pipeline(StandardScaler(), ng.NeuralGLMRegressor(family="poisson")).fit(X * 100.0 + 5.0, y)
    direct = ng.NeuralGLMRegressor(family="poisson").fit(X, y)
    # A GLM's fitted means do not depend on an affine rescaling of its columns.
    assert_allclose(pipe.predict(X * 100.0 + 5.0), direct.predict(X), rtol=1e-6)
    assert pipe.score(X * 100.0 + 5.0, y) == pytest.approx(direct.score(X, y), rel=1e-6)


def test_grid_search_over_hidden_picks_by_d2():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3))
    y = rng.poisson(np.exp(0.5 + np.sin(2.0 * X[:, 0]))).astype(float)
    net = {key: value for key, value in NET.items() if key != "hidden"}
    search = GridSearchCV(ng.NeuralGLMRegressor(family="poisson", **net), {"hidden": [(), (8,)]}, cv=4)
    with _quiet():
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["hidden"] == [(), (8,)][int(np.argmax(scores))]
    # The truth, sin(2·x0) on the log scale, is far from linear: the network explains more.
    assert search.best_params_["hidden"] == (8,)
    assert isinstance(search.best_estimator_.result_, ng.NetworkResult)


def test_offset_through_metadata_routing_in_a_pipeline_and_grid_search():
    """GridSearchCV + Pipeline pass offset=log(exposure) to fit and score when the estimator requests it."""
    from sklearn.model_selection import KFold

    X, y, offset = _poisson_data(seed=3)
    folds = KFold(n_splits=3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        glm = ng.NeuralGLMRegressor(family="poisson").set_fit_request(offset=True).set_score_request(offset=True)
        pipe = make_pipeline(StandardScaler(), glm)
        search = GridSearchCV(pipe, {"neuralglmregressor__cov_type": ["expected", "sandwich"]}, cv=folds)
        search.fit(X, y, offset=offset)
    # Reference: the GLM with the offset, fitted directly on each fold (standardizing X does not
    # change a GLM's fitted means), scored by its D² with the same offset.
    expected = []
    for train, test in folds.split(X):
        model = ng.NeuralGLMRegressor(family="poisson").fit(X[train], y[train], offset=offset[train])
        expected.append(model.score(X[test], y[test], offset=offset[test]))
    assert_allclose(search.cv_results_["mean_test_score"], np.mean(expected), rtol=1e-6)
    refit = search.best_estimator_[-1].result_
    direct = ng.glm("y ~ x0 + x1 + x2", _frame(X).assign(y=y), family="poisson", offset=offset)
    assert_allclose(refit.deviance, direct.deviance, rtol=1e-8)
    # Without the offset the deviance is another one: the offset did reach the fit.
    assert abs(ng.glm("y ~ x0 + x1 + x2", _frame(X).assign(y=y), family="poisson").deviance - direct.deviance) > 1.0


def test_feature_names_from_a_dataframe():
    X, y, _ = _poisson_data()
    frame = pd.DataFrame(X, columns=["age", "income level", "1st"])
    model = ng.NeuralGLMRegressor(family="poisson").fit(frame, y)
    assert model.feature_names_in_.tolist() == ["age", "income level", "1st"]
    assert model.n_features_in_ == 3


def test_importing_neuralglm_does_not_import_sklearn():
    code = "import sys, neuralglm as ng; assert 'sklearn' not in sys.modules; ng.NeuralGLMRegressor; assert 'sklearn' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@contextlib.contextmanager
def _quiet():
    """Ignore non-convergence and separation: these fits stop early on purpose, and those warnings are tested elsewhere."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SeparationWarning)
        yield
