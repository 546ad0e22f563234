"""The parts a fitted GLM and a fitted network share, each defined once: statistics, fitted values, predictor, model file."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design, model_matrix_for
from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.family import derived, rowwise
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.null_model import null_deviance
from neuralglm.fit.info import FitInfo
from neuralglm.inference import prediction
from neuralglm.results import formula_state
from neuralglm.results.call import FitCall, no_call_error
from neuralglm.results.model_file import FORMAT, FORMAT_VERSION, SUMMARY_KEY, ArrayStore, write_file

PREDICT_TYPES = ("response", "link")
_STATISTICS = ("n_obs", "df_resid", "deviance", "null_deviance", "pearson_chi2", "dispersion", "dispersion_method", "loglik", "aic", "bic")


@dataclass(frozen=True)
class FitStatistics:
    """The likelihood statistics every fitted model reports, in float64."""

    n_obs: float
    df_resid: float
    deviance: float
    null_deviance: float
    pearson_chi2: float
    dispersion: float
    dispersion_method: str
    loglik: float
    aic: float
    bic: float
    # Σ w·μ̂ / Σ w·y on the training rows (results/balance.py); NaN in files written before it was stored.
    balance: float = math.nan

    def to_dict(self) -> dict:
        """The model-file form: a JSON object of the ten fields (and the balance).

        Examples
        --------
        >>> stats = FitStatistics(10.0, 8.0, 1.5, 3.0, 1.4, 1.0, "fixed", -7.0, 18.0, 18.6)
        >>> FitStatistics.from_dict(stats.to_dict()) == stats
        True
        """
        return {name: getattr(self, name) for name in _STATISTICS} | {"balance": self.balance}

    @classmethod
    def from_dict(cls, node: dict) -> FitStatistics:
        """Rebuild from :meth:`to_dict`; raises :class:`ModelFileError` for a missing or non-number entry."""
        values = {}
        for name in _STATISTICS:
            value = node.get(name) if isinstance(node, dict) else None
            wanted = str if name == "dispersion_method" else float
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise ModelFileError(f"The model file's statistics.{name} must be a {wanted.__name__}; got {str(value)[:40]!r}.")
            values[name] = value
        balance = node.get("balance", math.nan)  # absent from older files
        if isinstance(balance, bool) or not isinstance(balance, (int, float)):
            raise ModelFileError(f"The model file's statistics.balance must be a float; got {str(balance)[:40]!r}.")
        return cls(**values, balance=float(balance))


@dataclass(frozen=True)
class Fitted:
    """The fitted values on the training rows (absent from a model saved without its data)."""

    eta: np.ndarray
    mu: np.ndarray


@dataclass(frozen=True)
class ModelFileInfo:
    """Where a loaded model came from: what its file holds (``None`` on a model fitted in this session)."""

    format_version: int
    include_data: bool
    n_rows: int

    def describe(self) -> str:
        """The summary line, e.g. ``'Model file: saved without training data'``."""
        if self.include_data:
            return f"Model file: saved with training data ({self.n_rows:,} rows)"
        return "Model file: saved without training data (residuals, fitted values and diagnostics need it: refit, or save with include_data=True)"


def no_data_error(what: str) -> ModelFileError:
    """The error of a method that needs the training data a model file does not hold."""
    return ModelFileError(
        f"{what} needs the training data, which this model was saved without (include_data=False). "
        "Pass new data where the method takes it (e.g. predict(new_data)), or save the model with include_data=True."
    )


class ResultBase:
    """What :class:`~neuralglm.FitResult` and :class:`~neuralglm.NetworkResult` share.

    A result is composed of parts, each defined once: the statistics (:class:`FitStatistics`,
    read through the properties ``deviance``, ``aic``, ...), the fit information
    (:class:`~neuralglm.fit.info.FitInfo`), the design, the fitted values (:class:`Fitted`) and
    the predictor (``_linear_predictor`` and ``_mean``: how eta and mu follow from a design
    matrix). ``kind`` (``"glm"`` or ``"network"``) tells consumers which result they hold.
    """

    kind: ClassVar[str]
    family: Family
    link: Link
    design: Design
    statistics: FitStatistics
    info: FitInfo
    fitted: Fitted | None
    source: ModelFileInfo | None
    family_params: pd.DataFrame
    call: FitCall | None

    # ---- statistics ---------------------------------------------------------------------------
    n_obs = property(lambda self: self.statistics.n_obs, doc="Observations with positive weight (times frequency weights).")
    df_resid = property(lambda self: self.statistics.df_resid, doc="Residual degrees of freedom.")
    deviance = property(lambda self: self.statistics.deviance, doc="Deviance of the fit.")
    null_deviance = property(lambda self: self.statistics.null_deviance, doc="Deviance of the intercept-only (or offset-only) model.")
    pearson_chi2 = property(lambda self: self.statistics.pearson_chi2, doc="Pearson's χ² statistic.")
    dispersion = property(lambda self: self.statistics.dispersion, doc="The dispersion (fixed, Pearson or given).")
    dispersion_method = property(lambda self: self.statistics.dispersion_method, doc='"fixed", "pearson" or "user".')
    loglik = property(lambda self: self.statistics.loglik, doc="Log-likelihood (R's conventions).")
    aic = property(lambda self: self.statistics.aic, doc="Akaike's information criterion.")
    bic = property(lambda self: self.statistics.bic, doc="Bayesian information criterion.")

    # ---- training data --------------------------------------------------------------------------
    @property
    def has_data(self) -> bool:
        """Whether the training data are available (``False`` for a model saved without them)."""
        return self.fitted is not None

    def require_data(self, what: str) -> None:
        """Raise :class:`ModelFileError` naming ``what`` when the training data are not available.

        Diagnostics (influence, residual plots) call it first, so that a model loaded without
        its data asks for them in one sentence.

        Examples
        --------
        >>> import io
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
        >>> buffer = io.BytesIO()
        >>> fit.save(buffer)  # without the training data (the default)
        >>> ng.load(io.BytesIO(buffer.getvalue())).require_data("influence()")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        neuralglm.errors.ModelFileError: influence() needs the training data, ...
        """
        self._fitted(what)

    def _fitted(self, what: str) -> Fitted:
        if self.fitted is None:
            raise no_data_error(what)
        return self.fitted

    @property
    def balance(self) -> float:
        """Σ fitted / Σ observed on the training rows, with the prior weights (:mod:`neuralglm.results.balance`)."""
        return self.statistics.balance

    @property
    def fitted_eta(self) -> np.ndarray:
        """Linear predictor on the training rows."""
        return self._fitted("fitted_eta (the fitted linear predictor)").eta

    @property
    def fitted_mu(self) -> np.ndarray:
        """Fitted means on the training rows."""
        return self._fitted("fitted_mu (the fitted values)").mu

    # ---- predictions and residuals --------------------------------------------------------------
    def _linear_predictor(self, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _mean(self, eta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _new_design(self, new_data, offset, exposure) -> tuple[np.ndarray, np.ndarray]:
        """Design matrix and offset of new data; a loaded formula is checked against the allowlist first."""
        if self.source is not None and self.design.spec is not None:
            formula_state.check_formula(self.design.spec, ModelFileError)
            formula_state.check_formula_text(self.design.formula, ModelFileError)  # its offset() terms are evaluated too
        return model_matrix_for(self.design, new_data, offset=offset, exposure=exposure)

    def predict(
        self, new_data=None, type: str = "response", *, offset=None, exposure=None, se_fit: bool = False, interval=None, level: float = 0.95
    ) -> pd.Series | pd.DataFrame:
        """Predictions on the response (``mu``) or link (``eta``) scale, R's ``predict(type=, se.fit=)``.

        ``new_data=None`` returns the fitted values. For new data the design matrix is rebuilt
        from the stored formula (and a network's input scaling); offsets given as column names
        are re-read from ``new_data``; factor levels unseen in training raise a :class:`DataError`.

        Without ``se_fit`` or ``interval`` the result is a Series. With ``se_fit=True`` (GLMs)
        it is a DataFrame with columns ``fit`` and ``se_fit`` as R's
        ``predict.glm(se.fit=TRUE)``: on the link scale ``se_fit`` is ``sqrt(diag(X V Xᵀ))``
        with ``V = vcov`` (dispersion included); on the response scale it is the delta-method
        ``|dμ/dη|·se``. ``interval="confidence"`` adds ``lower`` and ``upper`` (and implies
        ``se_fit``): ``η ± q·se`` on the link scale, mapped through the inverse link for
        ``type="response"`` (asymmetric around ``fit``), with ``q`` the normal quantile of
        ``level`` when the dispersion is known and Student's t on ``df_resid`` when it is
        estimated. A network has no such standard errors: use ``ng.bootstrap`` or ``ng.conformal``.

        Examples
        --------
        >>> import neuralglm as ng
        >>> df = ng.datasets.load_insurance()
        >>> fit = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
        >>> bool((fit.predict(df.head(3)) == fit.predict().head(3).to_numpy()).all())
        True
        >>> table = fit.predict(df.head(2), se_fit=True, interval="confidence")
        >>> list(table.columns)
        ['fit', 'se_fit', 'lower', 'upper']
        >>> bool(((table["lower"] < table["fit"]) & (table["fit"] < table["upper"])).all())
        True
        """
        if type not in PREDICT_TYPES:
            raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
        if not isinstance(se_fit, bool):
            raise SpecificationError(f"The 'se_fit' parameter of predict must be True or False. Got {se_fit!r} instead.")
        if not se_fit and interval is None:
            return self._point_prediction(new_data, type, offset, exposure)
        prediction.check_interval(interval)
        level = prediction.check_level(level)
        coef, vcov, df_resid = self._prediction_covariance()  # a network refuses here, before any work
        if new_data is None:
            index = self.design.row_labels
            eta = self._fitted("predict() without new data").eta
            X = self.design.checked_X()
        else:
            X, offset_values = self._new_design(new_data, offset, exposure)
            index = new_data.index if isinstance(new_data, pd.DataFrame) else None
            eta = prediction.linear_predictor(X, coef, offset_values)
        se_eta = prediction.link_standard_errors(X, vcov, coef)
        return prediction.prediction_frame(
            eta, se_eta, self.link, type=type, interval=interval, level=level, df_resid=df_resid, index=index
        )

    def _point_prediction(self, new_data, type: str, offset, exposure) -> pd.Series:
        if new_data is None:
            fitted = self._fitted("predict() without new data")
            return pd.Series(fitted.mu if type == "response" else fitted.eta, index=self.design.row_labels, name=type)
        X, offset_values = self._new_design(new_data, offset, exposure)
        eta = self._linear_predictor(X, offset_values)
        index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        return pd.Series(eta if type == "link" else self._mean(eta), index=index, name=type)

    def _prediction_covariance(self) -> tuple[np.ndarray, np.ndarray, float | None]:
        """``(coef, vcov, df)`` behind ``predict(se_fit=True)``: df_resid for t quantiles, None for normal ones."""
        raise NotImplementedError

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals of the fit: ``"deviance"``, ``"pearson"``, ``"response"`` or ``"working"`` (R's types).

        Examples
        --------
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ group + age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
        >>> round(float((fit.residuals("deviance") ** 2).sum() - fit.deviance), 8)
        0.0
        """
        if type not in derived.RESIDUAL_KINDS:
            raise SpecificationError(f"Unknown residual type {type!r}; choose one of {', '.join(derived.RESIDUAL_KINDS)}.")
        mu = self._fitted("residuals()").mu
        with jax.enable_x64(True):
            values = derived.residuals(self.family, self.link, self.design.y, mu, self.design.weights, kind=type)
        return pd.Series(np.asarray(values, dtype=np.float64), index=self.design.row_labels, name=type)

    # ---- refitting ------------------------------------------------------------------------------
    def refit(self, data=None, **changes):
        """The same model fitted again: on other ``data`` (same columns) and/or with ``changes`` to its arguments.

        Every argument of the original call (formula, family, link, offset/exposure/weights
        given as column names, hyper-parameters, seed) is kept unless changed, so the refit is
        the fit that call would make on the new rows; cross-validation and stepwise selection
        use it. Offsets or weights given as arrays belong to the original rows: pass new ones
        with the new data. A model loaded from a file has no call and raises.

        Examples
        --------
        >>> import neuralglm as ng
        >>> df = ng.datasets.load_insurance()
        >>> fit = ng.glm("claims ~ age + group", df, family="poisson", exposure="holders")
        >>> fit.refit(formula="claims ~ group").coef.index.tolist()  # group is an ordered factor: R's contr.poly
        ['Intercept', 'group.L', 'group.Q', 'group.C']
        >>> round(fit.refit(df.iloc[:40]).n_obs)
        40
        """
        if self.call is None:
            raise no_call_error()
        return self.call.replay(data, **changes)

    # ---- report --------------------------------------------------------------------------------
    def report(self, data, path, *, compare=None, name: str | None = None, **options):
        """Write a self-contained HTML report of this model on ``data`` to ``path`` (see :func:`neuralglm.report`).

        ``compare`` (a dict ``{label: fit}``) adds other models and a comparison; ``options``
        are those of :func:`neuralglm.report` (``title``, ``folds``, ``seed``, ``top``, ``n_repeats``).
        """
        from neuralglm.reporting import report

        label = name or ("GLM" if self.kind == "glm" else "network")
        return report({label: self, **dict(compare or {})}, data, path, **options)

    # ---- model files ---------------------------------------------------------------------------
    def to_dict(self, store: ArrayStore, include_data: bool) -> dict:
        """The model-file form of this result (JSON values; arrays go to ``store``)."""
        raise NotImplementedError

    def save(self, path, *, include_data: bool = False) -> None:
        """Save to one ``.npz`` file (arrays + JSON spec, no pickle); read it back with :func:`neuralglm.load`.

        Parameters
        ----------
        path : file path (written as given, atomically; ``.npz`` is the usual suffix) or a binary file object.
        include_data : also store the training data (``y``, ``X``, weights, offset, row labels)
            and fitted values, so that the loaded model supports ``predict()`` without new data,
            ``residuals()``, influence and diagnostic plots. Off by default: a model file shared
            with others then holds no training rows, only what predicting new data and the
            summary need.

        Raises
        ------
        SpecificationError
            For what a model file cannot hold without running code on load: a custom
            activation, a family or link outside the registry, non-treatment contrasts, a
            formula term outside the allowlist, or transform state that is not plain data.

        Examples
        --------
        >>> import io
        >>> import neuralglm as ng
        >>> df = ng.datasets.load_insurance()
        >>> fit = ng.glm("claims ~ C(district) + age", df, family="poisson", exposure="holders")
        >>> buffer = io.BytesIO()
        >>> fit.save(buffer)
        >>> bool((ng.load(io.BytesIO(buffer.getvalue())).predict(df) == fit.predict(df)).all())
        True
        """

        # What `neuralglm summary` prints without rebuilding the model (no JAX): the summary the
        # file's model gives once loaded, rendered now by the same code.
        def stored_summary(included: bool) -> str:
            return str(dataclasses.replace(self, source=ModelFileInfo(FORMAT_VERSION, included, self.design.n_obs)).summary())

        write_result(self, path, include_data, stored_summary)

    def _with_file_line(self, summary):
        """``summary`` of a loaded model, with a header line saying what its file holds."""
        if self.source is None:
            return summary
        return dataclasses.replace(summary, header=(*summary.header, self.source.describe()))


def write_result(result, path, include_data, stored_summary=None) -> None:
    """The model file of any result with ``kind``, ``has_data`` and ``to_dict`` (GLMs, networks, multinomial fits).

    ``stored_summary(include_data)``, when given, is the text ``neuralglm summary`` prints from the file.
    """
    if not isinstance(include_data, bool):
        raise SpecificationError(f"The 'include_data' parameter of save must be True or False. Got {include_data!r} instead.")
    from neuralglm._version import __version__

    include_data = include_data and result.has_data
    store = ArrayStore()
    spec = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neuralglm_version": __version__,
        "kind": result.kind,
        "include_data": include_data,
        "result": result.to_dict(store, include_data),
    }
    if stored_summary is not None:
        spec[SUMMARY_KEY] = stored_summary(include_data)
    write_file(store.arrays, spec, path)


@partial(jax.jit, static_argnums=(0,))
def _deviance_and_pearson(family: Family, y, mu, weights):
    return derived.deviance(family, y, mu, weights), derived.pearson_chi2(family, y, mu, weights)


@partial(jax.jit, static_argnums=(0,))
def _loglik(family: Family, y, mu, weights, freq_weights, dispersion):
    return (derived.loglik(family, y, mu, weights, dispersion, freq_weights),)


def resolve_dispersion(family: Family, chi2: float, df_resid: float, dispersion) -> tuple[float, str]:
    """The dispersion φ and how it was set (``"fixed"``, ``"pearson"`` or ``"user"``), from the ``dispersion`` argument of a fit.

    Shared by in-memory and streamed fits, so that both read the argument (and reject a bad one) alike.
    """
    if dispersion is None or dispersion == "pearson":
        phi = derived.dispersion_from_pearson(family, chi2, df_resid, quasi=dispersion == "pearson")
        return phi, "fixed" if dispersion is None and family.fixed_dispersion is not None else "pearson"
    if isinstance(dispersion, numbers.Real) and not isinstance(dispersion, bool) and 0 < dispersion < math.inf:
        return float(dispersion), "user"
    raise SpecificationError(f"dispersion must be None, 'pearson' or a positive number; got {dispersion!r}.")


def fit_statistics(
    design: Design, family: Family, link: Link, mu: np.ndarray, n_params: int, dispersion=None, *, n_family_params: int = 0
) -> FitStatistics:
    """Deviance, Pearson χ², dispersion, R's loglik/AIC/BIC and counts of a fit with ``n_params`` parameters.

    ``n_family_params`` estimated family parameters (θ of ``glm.nb``) count in AIC and BIC, not
    in ``df_resid``, as MASS's ``logLik.negbin``.

    ``n_obs`` counts rows with positive weight (times their frequency weights); ``dispersion``
    is ``None`` (fixed for Poisson/binomial/negative binomial, else Pearson χ²/df_resid),
    ``"pearson"`` or a finite positive number; NaN where df_resid ≤ 0 leaves nothing to estimate from.
    """
    y, prior, freq = design.y, design.weights, design.freq_weights
    total = design.total_weights
    counted = total > 0
    n_obs = float(np.sum(freq[counted])) if freq is not None else float(np.sum(counted))
    df_resid = n_obs - n_params
    dev, chi2 = rowwise.map_rows(_deviance_and_pearson, (family,), (y, mu, total), zero_padded=(2,))
    phi, method = resolve_dispersion(family, chi2, df_resid, dispersion)
    with jax.enable_x64(True):
        ll_phi = float(derived.loglik_dispersion(family, dev, total, n_obs))
        # Rows of zero weight count neither in R's logLik (frequency 0) nor can they give NaN (weight 1).
        (ll,) = rowwise.map_rows(
            _loglik,
            (family,),
            (y, mu, np.where(counted, prior, 1.0), np.where(counted, 1.0 if freq is None else freq, 0.0)),
            zero_padded=(3,),
            scalars=(ll_phi,),
        )
        k = derived.n_loglik_params(family, n_params) + n_family_params
        aic = float(derived.aic(ll, k))
        bic = float(derived.bic(ll, k, n_obs))
    null_dev = null_deviance(y, total, design.offset, family, link, design.has_intercept)
    observed = float(np.sum(total * y))
    balance = float(np.sum(total * mu)) / observed if observed != 0.0 else math.nan
    return FitStatistics(n_obs, df_resid, dev, null_dev, chi2, phi, method, ll, aic, bic, balance)
