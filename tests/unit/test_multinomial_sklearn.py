"""NeuralGLMClassifier with more than two classes: the multinomial logit (a softmax network).

References: scikit-learn's own ``LogisticRegression(C=np.inf)`` (no penalty: the same maximum-likelihood
multinomial logit, fitted by its L-BFGS to a tight tolerance), ``d2_log_loss_score`` and
``ng.fit(..., family="multinomial")`` on the same data. scikit-learn's estimator checks, which
include the multiclass ones now that the classifier declares them, run in test_sklearn_estimators.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is an optional dependency (extra 'sklearn')")

from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import d2_log_loss_score

import neuralglm as ng


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    eta = np.column_stack([np.zeros(n), 0.5 + X[:, 0], -0.3 + X[:, 1] - X[:, 2], 0.2 * X[:, 2] ** 2])
    prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    codes = (rng.random(n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    return X, np.array(["cat", "dog", "emu", "yak"])[codes]


def test_glm_probabilities_equal_sklearn_unpenalized_logistic_regression():
    X, y = _data()
    clf = ng.NeuralGLMClassifier(hidden=()).fit(X, y)
    # No penalty (C=inf: scikit-learn 1.8 deprecates penalty=None), its L-BFGS run to a tight tolerance.
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    assert clf.classes_.tolist() == reference.classes_.tolist() == ["cat", "dog", "emu", "yak"]
    assert_allclose(clf.predict_proba(X), reference.predict_proba(X), rtol=1e-5, atol=1e-8)
    assert (clf.predict(X) == reference.predict(X)).all()
    assert clf.n_iter_ == clf.result_.info.n_iter and clf.family_ == "multinomial"


def test_score_is_d2_log_loss_and_predict_is_the_most_probable_class():
    X, y = _data(seed=1)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    clf = ng.NeuralGLMClassifier().fit(X, y)
    proba = clf.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (clf.predict(X) == clf.classes_[proba.argmax(axis=1)]).all()
    assert clf.score(X, y) == pytest.approx(d2_log_loss_score(y, proba, labels=clf.classes_), rel=1e-10)
    expected = d2_log_loss_score(y, proba, sample_weight=weights, labels=clf.classes_)
    assert clf.score(X, y, sample_weight=weights) == pytest.approx(expected, rel=1e-10)


def test_network_classifier_equals_ng_fit_with_labels_as_categories():
    X, y = _data(seed=2)
    settings = dict(hidden=(4,), seed=5, l2=1.0)
    clf = ng.NeuralGLMClassifier(**settings).fit(X, y)
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"]).assign(y=pd.Categorical(y))
    reference = ng.fit("y ~ x0 + x1 + x2", frame, family="multinomial", **settings)
    assert_allclose(clf.predict_proba(X), reference.predict(frame).to_numpy(), rtol=1e-12)


def test_multiclass_refuses_an_offset_and_unseen_labels():
    X, y = _data(n=120, seed=3)
    with pytest.raises(ValueError, match="takes no offset"):
        ng.NeuralGLMClassifier().fit(X, y, offset=np.zeros(len(y)))
    clf = ng.NeuralGLMClassifier().fit(X, y)
    with pytest.raises(ValueError, match="takes no offset"):
        clf.predict_proba(X, offset=np.zeros(len(y)))
    with pytest.raises(ValueError, match="labels not seen in fit"):
        clf.score(X, np.where(y == "cat", "gnu", y))
