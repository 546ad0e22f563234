r"""scikit-learn estimators: :class:`NeuralGLMRegressor` and :class:`NeuralGLMClassifier`.

Thin shells around :func:`neuralglm.fit`: ``fit(X, y)`` turns the array into a DataFrame with
columns ``x0 … x{p-1}``, fits ``y ~ x0 + … + x{p-1}`` (an intercept is always included) and
keeps the :class:`~neuralglm.NetworkResult` (or, for ``hidden=()`` fitted by IRLS, the
:class:`~neuralglm.FitResult`) as ``result_``. ``score`` is :math:`D^2`, the fraction of
deviance explained, scikit-learn's ``d2_tweedie_score`` generalized to every family and link.

scikit-learn is an optional dependency (``pip install neuralglm[sklearn]``); ``import
neuralglm`` does not import it, and ``ng.NeuralGLMRegressor`` imports this module on first use.

Examples
--------
>>> import numpy as np, neuralglm as ng
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 2))
>>> y = rng.poisson(np.exp(0.5 + 0.3 * X[:, 0]))
>>> model = ng.NeuralGLMRegressor(family="poisson").fit(X, y)
>>> model.predict(X[:2]).shape
(2,)
>>> 0.0 < model.score(X, y) < 1.0
True
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from neuralglm.errors import DataWarning
from neuralglm.family import derived
from neuralglm.family.null_model import null_deviance
from neuralglm.family.registry import get_family
from neuralglm.fit import multinomial
from neuralglm.network import fit as _network_fit
from neuralglm.options import PARAMETERS, document, estimator_init

_RESPONSE = "y"
# sklearn's sample_weight are importance weights and its Poisson/binomial losses accept
# non-integer targets (quasi-likelihood); neuralglm warns about those for R users, not here.
_QUASI_LIKELIHOOD_WARNING = r".*expects whole"


class _NeuralGLMBase(BaseEstimator):
    """Shared fitting, prediction and scoring; the public classes fix the family and the outputs."""

    # The keyword parameters; each public class sets ``__init__ = estimator_init(_PARAMETERS)``.
    _PARAMETERS: tuple[str, ...] = ()

    # ---- helpers ---------------------------------------------------------------------------
    def _family_name(self):
        return getattr(self, "family", "gaussian")

    def _settings(self) -> dict[str, Any]:
        """The hyper-parameters for :func:`neuralglm.fit`, as stored (scikit-learn: validated in fit, not __init__)."""
        return {name: getattr(self, name) for name in self._PARAMETERS} | {"family": self._family_name()}

    @staticmethod
    def _frame(X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])

    @staticmethod
    def _vector(values, n_rows: int, name: str) -> np.ndarray | None:
        if values is None:
            return None
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 0:
            values = np.full(n_rows, float(values))
        if values.shape != (n_rows,):
            raise ValueError(f"{name} must have shape ({n_rows},), one value per row of X; got shape {values.shape}.")
        return values

    def _fit_encoded(self, X: np.ndarray, y: np.ndarray, sample_weight, offset):
        n_rows = X.shape[0]
        if n_rows < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples; got n_samples = {n_rows} (1 sample).")
        data = self._frame(X)
        data[_RESPONSE] = y
        terms = " + ".join(data.columns[:-1])
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_QUASI_LIKELIHOOD_WARNING, category=DataWarning)
            self.result_ = _network_fit(
                f"{_RESPONSE} ~ {terms}",
                data,
                offset=self._vector(offset, n_rows, "offset"),
                weights=weights,
                **self._settings(),
            )
        # A multinomial fit has no family object: its family is the softmax over the classes, its link the logit.
        self.family_ = getattr(self.result_, "family", "multinomial")
        self.link_ = getattr(self.result_, "link", "logit")
        # scikit-learn's convention for estimators with max_iter: iterations (IRLS) or epochs run.
        self.n_iter_ = int(self.result_.info.n_iter)
        return self

    def _mean(self, X, offset=None) -> np.ndarray:
        """Predicted mean ``mu`` of the response, shape ``(n_obs,)``."""
        check_is_fitted(self, "result_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        offset = self._vector(offset, X.shape[0], "offset")
        return self.result_.predict(self._frame(X), type="response", offset=offset).to_numpy()

    def _d2(self, X, y_encoded: np.ndarray, sample_weight, offset) -> float:
        mu = self._mean(X, offset)
        n_rows = len(mu)
        if y_encoded.shape != (n_rows,):
            raise ValueError(f"y must have shape ({n_rows},), one value per row of X; got shape {y_encoded.shape}.")
        weights = np.ones(n_rows) if sample_weight is None else _check_sample_weight(sample_weight, mu[:, None], dtype=np.float64)
        offset_values = np.zeros(n_rows) if offset is None else self._vector(offset, n_rows, "offset")
        with jax.enable_x64(True):
            dev = float(derived.deviance(self.family_, y_encoded, mu, weights))
        null = null_deviance(y_encoded, weights, offset_values, self.family_, self.link_, True)
        return 1.0 - dev / null


@document(tuple(PARAMETERS), estimator=True)
class NeuralGLMRegressor(RegressorMixin, _NeuralGLMBase):
    r"""A neural GLM (or, with ``hidden=()``, a GLM) as a scikit-learn regressor.

    Every hyper-parameter of :func:`neuralglm.fit`, with the same defaults except
    ``verbose=False`` (no progress bars inside cross-validation). ``hidden=()`` with
    ``solver="auto"`` is the maximum-likelihood GLM fitted by IRLS. The data arguments go to
    :meth:`fit`: ``sample_weight`` (prior weights) and ``offset`` (e.g. ``log(exposure)``;
    inside a pipeline or a search, request it with ``set_fit_request(offset=True)`` under
    scikit-learn's metadata routing).

    Parameters
    ----------
    [hyper-parameters: generated from neuralglm.options.PARAMETERS]

    Attributes
    ----------
    result_ : the fitted :class:`~neuralglm.NetworkResult` or :class:`~neuralglm.FitResult`
        (summaries, coefficients, deviance; design columns are named ``x0 … x{p-1}``).
    family_, link_ : the family and link objects used.
    n_iter_ : IRLS iterations, or epochs (L-BFGS: iterations) of the network's training.
    n_features_in_ : number of columns of ``X``.
    feature_names_in_ : column names, when ``X`` was a DataFrame with string column names.

    Notes
    -----
    ``score`` returns :math:`D^2 = 1 - D(y, \hat\mu) / D(y, \hat\mu_0)`, the fraction of
    deviance explained, where :math:`\hat\mu_0` is the intercept-only (with offset) fit to the
    scored data (Cameron & Windmeijer, 1997). For the Gaussian family it is :math:`R^2`; for
    Tweedie families scikit-learn's ``d2_tweedie_score``.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.sklearn import NeuralGLMRegressor
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(100, 3))
    >>> y = 1.0 + X @ [0.5, -1.0, 0.0] + rng.normal(scale=0.1, size=100)
    >>> model = NeuralGLMRegressor().fit(X, y)
    >>> model.result_.coef.round(1).tolist()
    [1.0, 0.5, -1.0, 0.0]
    """

    _PARAMETERS = tuple(PARAMETERS)
    __init__ = estimator_init(_PARAMETERS)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            family = get_family(self._family_name())
        except ValueError:
            return tags
        tags.target_tags.positive_only = family.y_domain.low >= 0
        return tags

    def fit(self, X, y, sample_weight=None, offset=None):
        """Fit the model by maximum (penalized) likelihood.

        Parameters
        ----------
        X : array-like, shape ``(n_obs, n_features)``.
        y : array-like, shape ``(n_obs,)``, inside the family's domain.
        sample_weight : prior weights ``(n_obs,)``; ``None`` means 1.
        offset : known part of the linear predictor ``(n_obs,)`` (e.g. ``log(exposure)``).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        return self._fit_encoded(X, np.asarray(y, dtype=np.float64), sample_weight, offset)

    def predict(self, X, offset=None):
        """Predicted mean ``mu`` (response scale), shape ``(n_obs,)``; pass ``offset`` if the fit had one."""
        return self._mean(X, offset)

    def score(self, X, y, sample_weight=None, offset=None):
        """:math:`D^2`, the fraction of deviance explained on ``(X, y)`` (1 is perfect; can be negative)."""
        y = np.asarray(y, dtype=np.float64)
        return self._d2(X, y, sample_weight, offset)


@document(tuple(name for name in PARAMETERS if name != "family"), estimator=True)
class NeuralGLMClassifier(ClassifierMixin, _NeuralGLMBase):
    r"""A neural GLM classifier: the binomial family with any link (default logit) for two classes,
    the multinomial logit (a softmax output) for more.

    Any labels are accepted; ``classes_`` holds them sorted. With two, the second is the
    "success" whose probability the model fits; with K > 2 the model is
    ``ng.fit(..., family="multinomial")``: K−1 logits against the first class (with
    ``hidden=()`` and no penalty, the maximum-likelihood multinomial logit of ``nnet::multinom``
    and of scikit-learn's ``LogisticRegression(penalty=None)``). A multinomial model takes no
    ``offset`` and only the logit link.

    Every hyper-parameter of :func:`neuralglm.fit` except ``family`` (binomial), as
    :class:`NeuralGLMRegressor`; ``link=None`` is the logit.

    Parameters
    ----------
    [hyper-parameters: generated from neuralglm.options.PARAMETERS]

    Attributes
    ----------
    classes_ : the labels, sorted, shape ``(n_classes,)``.
    result_, family_, link_, n_features_in_, feature_names_in_ : as :class:`NeuralGLMRegressor`.

    Notes
    -----
    ``score`` is :math:`D^2` for the Bernoulli (multinomial) deviance, which is scikit-learn's
    ``d2_log_loss_score``; use ``scoring="accuracy"`` in model selection for accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from neuralglm.sklearn import NeuralGLMClassifier
    >>> rng = np.random.default_rng(2)
    >>> X = rng.normal(size=(300, 2))
    >>> y = np.where(rng.random(300) < 1 / (1 + np.exp(-2 * X[:, 0])), "yes", "no")
    >>> clf = NeuralGLMClassifier().fit(X, y)
    >>> clf.classes_.tolist()
    ['no', 'yes']
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    _PARAMETERS = tuple(name for name in PARAMETERS if name != "family")
    __init__ = estimator_init(_PARAMETERS)

    def _family_name(self):
        return "multinomial" if self._multinomial() else "binomial"

    def _multinomial(self) -> bool:
        return len(getattr(self, "classes_", ())) > 2

    def _encode(self, y) -> np.ndarray:
        """The binomial response (1 for the second class), or the multinomial class codes 0 … K−1."""
        found = np.isin(y, self.classes_)
        if not found.all():
            raise ValueError(f"y has labels not seen in fit: {np.unique(np.asarray(y)[~found])!r}; the classes are {self.classes_!r}.")
        if self._multinomial():
            return np.searchsorted(self.classes_, np.asarray(y)).astype(np.float64)
        return (np.asarray(y) == self.classes_[1]).astype(np.float64)

    def _probabilities(self, X, offset=None) -> np.ndarray:
        """``(n_obs, n_classes)`` class probabilities, columns in the order of ``classes_``."""
        if not self._multinomial():
            mu = self._mean(X, offset)
            return np.column_stack([1.0 - mu, mu])
        check_is_fitted(self, "result_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if offset is not None:
            raise ValueError("A multinomial classifier (more than two classes) takes no offset, as nnet::multinom.")
        return self.result_.predict(self._frame(X), type="response").to_numpy()

    def fit(self, X, y, sample_weight=None, offset=None):
        """Fit the binary (or multinomial) model by maximum (penalized) likelihood.

        Parameters
        ----------
        X : array-like, shape ``(n_obs, n_features)``.
        y : labels (at least two distinct), shape ``(n_obs,)``.
        sample_weight : prior weights ``(n_obs,)``; ``None`` means 1.
        offset : known part of the linear predictor ``(n_obs,)``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            when ``y`` is not categorical or has fewer than two classes (among the rows with
            positive weight).
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes = np.unique(y)
        if sample_weight is not None:
            weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            present = np.unique(y[weight > 0])
        else:
            present = classes
        if len(present) < 2:
            raise ValueError(
                f"{type(self).__name__} needs two classes to fit, but y has only one class ({present.tolist()!r}) among the rows with "
                "positive weight."
            )
        self.classes_ = classes
        y_encoded = self._encode(y)
        if self._multinomial():  # the codes as categories: the classes in their order, never read as a measurement
            y_encoded = pd.Categorical(y_encoded.astype(np.int64), categories=range(len(classes)))
        return self._fit_encoded(X, y_encoded, sample_weight, offset)

    def predict_proba(self, X, offset=None):
        """Class probabilities, shape ``(n_obs, n_classes)``, columns in the order of ``classes_``."""
        return self._probabilities(X, offset)

    def predict_log_proba(self, X, offset=None):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, offset))

    def predict(self, X, offset=None):
        """The most probable label per row (the first such class on a tie), shape ``(n_obs,)``."""
        if self._multinomial():
            return self.classes_[np.argmax(self._probabilities(X, offset), axis=1)]
        mu = self._mean(X, offset)
        return self.classes_[(mu > 0.5).astype(int)]

    def score(self, X, y, sample_weight=None, offset=None):
        """:math:`D^2` of the Bernoulli (multinomial) deviance on ``(X, y)`` (scikit-learn's ``d2_log_loss_score``)."""
        check_is_fitted(self, "result_")
        if not self._multinomial():
            return self._d2(X, self._encode(y), sample_weight, offset)
        log_prob = np.log(self._probabilities(X, offset))
        codes = self._encode(y).astype(np.int64)
        weights = np.ones(len(codes)) if sample_weight is None else _check_sample_weight(sample_weight, log_prob, dtype=np.float64)
        dev = multinomial.deviance(codes, weights, log_prob)
        return 1.0 - dev / multinomial.null_deviance(codes, weights, len(self.classes_), True)


__all__ = ["NeuralGLMClassifier", "NeuralGLMRegressor"]
