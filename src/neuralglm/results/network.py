"""A fitted neural GLM: a frozen value whose statistics are all recomputed in float64.

A network is a GLM on learned features: :meth:`NetworkResult.features` returns the last
hidden layer and :meth:`NetworkResult.output_glm` refits the output layer on them by IRLS,
with standard errors that are conditional on the features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.family_parameter import ParameterEstimate
from neuralglm.fit.gradient import GradientControl, GradientSolution
from neuralglm.fit.info import FitInfo
from neuralglm.fit.linalg import aliased_columns
from neuralglm.fit.solution import Solution
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling
from neuralglm.model.params import Params
from neuralglm.model.predictor import hidden_features_float64, linear_predictor_float64
from neuralglm.results import architecture_parts, architecture_views, parts
from neuralglm.results.call import FitCall
from neuralglm.results.common import PREDICT_TYPES, FitStatistics, Fitted, ModelFileInfo, ResultBase, fit_statistics
from neuralglm.results.model_file import ArrayStore
from neuralglm.results.network_summary import AIC_CAVEAT, NetworkSummary
from neuralglm.results.result import FitResult, fitted_from_dict, fitted_to_dict, refit_glm

__all__ = ["AIC_CAVEAT", "CONDITIONAL_SE_NOTE", "PREDICT_TYPES", "NetworkResult", "NetworkSummary", "OutputLayerFit", "make_network_result"]

CONDITIONAL_SE_NOTE = (
    "The standard errors are conditional on the learned features (treated as fixed covariates): they ignore that "
    "the hidden layers were estimated from the same data, so they understate the uncertainty of the network's predictions."
)


@dataclass(frozen=True, eq=False)
class OutputLayerFit(FitResult):
    """The output layer of a network refitted as a GLM on its learned features (:meth:`NetworkResult.output_glm`).

    A :class:`~neuralglm.FitResult` in every respect (saved and loaded as one); its summary
    says that the standard errors are conditional on the learned features.
    """

    def summary(self, level: float = 0.95):
        """The GLM summary, with a note that the standard errors treat the learned features as fixed covariates."""
        summary = super().summary(level)
        return dataclasses.replace(summary, header=(*summary.header, f"Note: {CONDITIONAL_SE_NOTE}"))


def _forward(arch: Architecture, params: Params, inputs: np.ndarray, offset: np.ndarray, link: Link):
    """``(eta, mu)`` in float64: the forward pass in NumPy (BLAS), the inverse link in JAX."""
    eta = linear_predictor_float64(params, arch, inputs, offset)
    with jax.enable_x64(True):
        mu = np.asarray(_inverse_link(jax.device_put(eta), link=link), dtype=np.float64)
    return eta, mu


@partial(jax.jit, static_argnames=("link",))
def _inverse_link(eta, *, link):
    return link.inverse(eta)  # one compilation per link and shape, instead of one per eager operation


@dataclass(frozen=True, eq=False)
class NetworkResult(ResultBase):
    """A fitted neural GLM. Create it with :func:`neuralglm.fit`.

    Attributes
    ----------
    architecture : hidden widths and activations.
    params : the trained parameters (tuple of ``Dense``; float64 NumPy), acting on the
        standardized inputs described by ``scaling``.
    deviance, null_deviance, pearson_chi2 : float, on all rows given (float64).
    loglik, aic, bic : log-likelihood (R's dispersion conventions, as ``FitResult``) and
        criteria with ``k = n_params`` (+1 for an estimated dispersion); see ``AIC_CAVEAT``.
    dispersion : fixed (Poisson, binomial) or Pearson χ² / (n_obs − k), NaN when k ≥ n_obs.
    n_params, n_obs, df_resid : counts.
    info : :class:`~neuralglm.fit.info.FitInfo` (``converged``, ``status``, ``history``).
    best_epoch : the epoch whose weights were kept (early stopping), else the last one.
    statistics : the :class:`~neuralglm.results.common.FitStatistics` behind ``deviance``, ``aic``, ...
    family_params : the family's estimated parameters (θ of ``"negative_binomial"``, trained
        jointly with the weights), as :attr:`FitResult.family_params`; empty when none.
    kind : ``"network"``.
    """

    kind: ClassVar[str] = "network"
    formula: str
    family: Family
    link: Link
    architecture: Architecture
    params: Params = field(repr=False)
    scaling: InputScaling = field(repr=False)
    statistics: FitStatistics = field(repr=False)
    n_params: int
    info: FitInfo
    best_epoch: int
    control: GradientControl = field(repr=False)
    seed: int
    dtype: str
    cov_type: str
    validation_rows: np.ndarray = field(repr=False)
    design: Design = field(repr=False)
    fitted: Fitted | None = field(repr=False)
    source: ModelFileInfo | None = field(default=None, repr=False)
    family_params: pd.DataFrame = field(default_factory=lambda: parts.family_params_frame([]), repr=False)
    call: FitCall | None = field(default=None, repr=False)

    # ---- statistics --------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch (L-BFGS: per chunk of iterations), the columns every solver shares:
        ``iteration`` (epochs or iterations done), ``objective`` (training deviance per unit
        weight), ``gradient_norm`` (L-BFGS: largest gradient component; NaN for Adam/SGD),
        ``step`` (largest weight change), ``validation_deviance`` (NaN without early
        stopping), ``seconds`` since the start (:data:`neuralglm.fit.info.HISTORY_COLUMNS`).

        For Adam/SGD ``objective`` is accumulated during the epoch: the weighted mean of the
        minibatch deviances, each at the weights before its update (as scikit-learn's
        ``loss_curve_``), so it lags the end-of-epoch weights slightly; ``validation_deviance``
        and the L-BFGS ``objective`` are evaluated at the weights after the epoch/chunk."""
        return self.info.history

    @property
    def deviance_explained(self) -> float:
        """``1 − deviance / null_deviance``."""
        return 1.0 - self.deviance / self.null_deviance

    @property
    def coef(self) -> pd.Series:
        """Output-layer coefficients.

        With ``hidden=()`` these are the GLM coefficients on the design's own scale, indexed
        by design column (the input scaling undone). With hidden layers they are the output
        weights on the learned features ``h1 … hK`` (plus ``Intercept``): meaningful only
        conditional on those features.
        """
        if self.architecture.kind == "cann":
            return architecture_views.glm_part(self)  # the interpretable part; the network's output weights are on h1 … hK
        out = self.params[-1]
        weight = out.weight[:, 0]
        bias = 0.0 if out.bias is None else float(out.bias[0])
        if self.architecture.n_hidden == 0:
            beta = weight / self.scaling.scale
            values = dict(zip(self.scaling.names, beta, strict=True))
            if out.bias is not None:
                values["Intercept"] = bias - float(np.sum(beta * self.scaling.mean))
            return pd.Series([values[name] for name in self.design.column_names], index=list(self.design.column_names), name="coef")
        names = self._feature_names()
        values = list(weight)
        if out.bias is not None:
            names, values = ["Intercept", *names], [bias, *values]
        return pd.Series(values, index=names, name="coef")

    def _feature_names(self) -> list[str]:
        if self.architecture.n_hidden == 0:
            return list(self.scaling.names)
        return [f"h{j}" for j in range(1, self.architecture.hidden[-1] + 1)]

    # ---- the predictor, features ----------------------------------------------------------------
    def _linear_predictor(self, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return linear_predictor_float64(self.params, self.architecture, self.scaling.transform(X), offset)

    def _mean(self, eta: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            return np.asarray(_inverse_link(jax.device_put(eta), link=self.link), dtype=np.float64)

    def _prediction_covariance(self):
        raise SpecificationError(
            "predict(se_fit=True) and predict(interval=...) are for GLMs: a network's weights are not identifiable, so it has "
            "no covariance matrix to propagate. Use ng.bootstrap(fit) for standard errors and confidence intervals of its "
            "predictions, or ng.conformal(fit, calibration_data) for prediction intervals."
        )

    def features(self, new_data=None) -> pd.DataFrame:
        """The last hidden layer, one column per unit (``h1 … hK``): the engineered features.

        With ``hidden=()`` these are the standardized inputs.
        """
        if new_data is None:
            self._fitted("features() without new data")
            X, index = self.design.X, pd.Index(self.design.row_labels)
        else:
            X, _ = self._new_design(new_data, None, None)
            index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        values = hidden_features_float64(self.params, self.architecture, self.scaling.transform(X))
        return pd.DataFrame(values, index=index, columns=self._feature_names())

    def output_glm(self, *, cov_type: str | None = None, dispersion=None):
        """The output layer refitted as a GLM (IRLS) on the learned features, with standard errors.

        This is the network read as "a GLM on learned features": after a converged fit with no
        penalty on the output layer (``l2=0``, or ``penalize_output=False``), its predictions
        equal the network's. Units that are
        constant on the training data (e.g. dead ReLUs) are dropped: their weight is not
        identified and does not change any prediction. The standard errors are conditional on
        the features, treated as fixed covariates (they ignore the uncertainty of the hidden
        layers); with hidden layers the result's summary says so.

        Returns
        -------
        FitResult
            an :class:`OutputLayerFit` (a ``FitResult`` whose summary carries that note) when
            the network has hidden layers.
        """
        self._fitted("output_glm()")
        design = self.design
        if self.architecture.n_hidden == 0:
            X, names = design.X, list(design.column_names)
        else:
            features = self.features().to_numpy()
            varying = np.ptp(features, axis=0) > 0
            X, names = features[:, varying], [n for n, keep in zip(self._feature_names(), varying, strict=True) if keep]
            if design.has_intercept:
                X, names = np.column_stack([np.ones(len(X)), X]), ["Intercept", *names]
            # Units that are linear combinations of earlier ones on the training rows (common with
            # ReLU on few inputs: hinges outside the data range are linear there) carry no extra
            # information; R would report their coefficients as NA. Drop them: predictions are unchanged.
            aliased = aliased_columns(X, design.total_weights)
            keep = [j for j in range(X.shape[1]) if j not in aliased]
            X, names = X[:, keep], [names[j] for j in keep]
        glm = refit_glm(X, names, design, self.family, self.link, cov_type=cov_type or self.cov_type, dispersion=dispersion)
        if self.architecture.n_hidden == 0:
            return glm  # the inputs themselves: nothing was learned, the standard errors are the GLM's
        return OutputLayerFit(**{f.name: getattr(glm, f.name) for f in dataclasses.fields(glm)})

    # ---- the nested architectures (results/architecture_views.py) ----------------------------------
    def local_coef(self, data=None) -> pd.DataFrame:
        """LocalGLMnet (``architecture="localglmnet"``): the coefficients βⱼ(x) of every row, one column per input.

        η = β₀ + Σⱼ βⱼ(x)·xⱼ on the network's inputs (standardized numeric columns, 0/1 dummies).
        """
        return architecture_views.local_coef(self, data)

    def shape_functions(self, data, *, bootstrap=None, level: float = 0.95) -> pd.DataFrame:
        """Additive networks: each term's contribution to η over ``data``'s values, tidy, with bands from ``bootstrap``."""
        return architecture_views.shape_functions(self, data, bootstrap=bootstrap, level=level)

    def embeddings(self) -> pd.DataFrame:
        """The learned embedding of every level of each embedded factor (``embed=``), tidy."""
        return architecture_views.embeddings(self)

    def rebalance(self) -> NetworkResult:
        """The network with its output layer refitted by IRLS on the last hidden features.

        The hidden layers are kept; the output layer (a CANN's GLM part and network output, an
        additive model's term outputs) becomes the maximum-likelihood GLM on them, so Σ fitted =
        Σ observed on the training rows exactly for a canonical link with an intercept
        (``fit.balance == 1``, up to IRLS's convergence, ~1e-9). LocalGLMnet's attention layer is
        rescaled by one coefficient and the intercept refitted (its weights one by one would
        make a GLM on products of features and inputs, which separates easily).

        Examples
        --------
        >>> import neuralglm as ng
        >>> df = ng.datasets.simulate_motor(500, seed=0)
        >>> net = ng.fit("ClaimNb ~ DrivAge + BonusMalus", df, family="poisson", exposure="Exposure",
        ...              hidden=(3,), l2=30.0, seed=1)
        >>> round(net.rebalance().balance, 6)
        1.0
        """
        params = architecture_views.rebalanced_params(self)
        solution = Solution(params, self.info, self.best_epoch, np.arange(self.design.n_obs), self.validation_rows)
        result = make_network_result(
            self.design, self.family, self.link, self.architecture, self.scaling, solution, self.control,
            seed=self.seed, dtype=self.dtype, cov_type=self.cov_type,
        )  # fmt: skip
        return dataclasses.replace(result, family_params=self.family_params, call=self.call)

    def summary(self, coefficients: bool = False):
        """Architecture, parameter count, fit statistics and training history.

        ``coefficients=True`` adds the output layer refitted as a GLM (:meth:`output_glm`),
        labelled "conditional on learned features".
        """
        summary = NetworkSummary.from_fit(self, coefficients)
        return self._with_file_line(summary)

    # ---- model files ---------------------------------------------------------------------------
    def to_dict(self, store: ArrayStore, include_data: bool) -> dict:
        """The model-file form (format 2): JSON values, with the arrays put in ``store``."""
        node = {
            "formula": self.formula,
            "family": parts.family_string(self.family),
            "link": parts.link_string(self.link),
            "architecture": parts.architecture_to_dict(self.architecture),
            "params": parts.params_to_dict(self.params, store, "params"),
            "scaling": parts.scaling_to_dict(self.scaling, store, "scaling"),
            "statistics": self.statistics.to_dict(),
            "n_params": int(self.n_params),
            "info": parts.info_to_dict(self.info, store, "info"),
            "best_epoch": int(self.best_epoch),
            "control": parts.control_to_dict(self.control),
            "seed": int(self.seed),
            "dtype": self.dtype,
            "cov_type": self.cov_type,
            "validation_rows": store.put("validation_rows", np.asarray(self.validation_rows)),
            "design": parts.design_to_dict(self.design, store, "design", include_data),
            "fitted": fitted_to_dict(self.fitted, store, include_data),
            "family_params": parts.family_params_to_dict(self.family_params),
        }
        nesting = architecture_parts.nesting_to_dict(self.architecture)
        if nesting is not None:  # a plain network's file stays as it was
            node["nesting"] = nesting
        return node

    @classmethod
    def from_dict(cls, node: dict, store: ArrayStore, source: ModelFileInfo) -> NetworkResult:
        """Rebuild from :meth:`to_dict`, checking every entry (:class:`ModelFileError` naming the first bad one)."""
        design = parts.design_from_dict(parts.field(node, "design", dict, "result"), store)
        arch = parts.architecture_from_dict(parts.field(node, "architecture", dict, "result"))
        scaling = parts.scaling_from_dict(parts.field(node, "scaling", dict, "result"), store, design.n_coef)
        arch = architecture_parts.nesting_from_dict(node.get("nesting"), arch, scaling.n_in)
        read_params = architecture_parts.nested_params_from_dict if arch.nested else parts.params_from_dict
        params = read_params(parts.field(node, "params", list, "result"), store, arch, scaling.n_in, design.has_intercept)
        rows = store.get(parts.field(node, "validation_rows", str, "result"), kind="iu")
        family = parts.family_from(node.get("family"))
        return cls(
            formula=parts.field(node, "formula", str, "result"),
            family=family,
            link=parts.link_from(node.get("link")),
            architecture=arch,
            params=params,
            scaling=scaling,
            statistics=FitStatistics.from_dict(parts.field(node, "statistics", dict, "result")),
            n_params=parts.field(node, "n_params", int, "result"),
            info=parts.info_from_dict(parts.field(node, "info", dict, "result"), store),
            best_epoch=parts.field(node, "best_epoch", int, "result"),
            control=parts.control_from_dict(parts.field(node, "control", dict, "result")),
            seed=parts.field(node, "seed", int, "result"),
            dtype=parts.dtype_field(node, "result"),
            cov_type=parts.field(node, "cov_type", str, "result"),
            validation_rows=rows,
            design=design,
            fitted=fitted_from_dict(parts.field(node, "fitted", (dict, type(None)), "result"), store, design.n_obs),
            source=source,
            family_params=parts.family_params_from_dict(node.get("family_params"), family),
        )

    def __repr__(self) -> str:
        return (
            f"<NetworkResult {self.family}(link={self.link}) · {self.architecture.describe(self.scaling.n_in)} · "
            f"{self.formula} · n_obs={self.n_obs:g}, deviance={self.deviance:.6g}>"
        )


def make_network_result(
    design: Design,
    family: Family,
    link: Link,
    arch: Architecture,
    scaling: InputScaling,
    solution: GradientSolution,
    control: GradientControl,
    *,
    seed: int,
    dtype: str,
    dispersion=None,
    cov_type: str = "expected",
    inputs: np.ndarray | None = None,
    family_params: ParameterEstimate | None = None,
) -> NetworkResult:
    """Assemble a :class:`NetworkResult`: every statistic recomputed in float64.

    ``inputs`` is ``scaling.transform(design.X)`` when the caller has it already;
    ``family_params`` the estimate of the family's parameter (``family`` is then at it).
    """
    inputs = scaling.transform(design.X) if inputs is None else inputs
    eta, mu = _forward(arch, solution.params, inputs, design.offset, link)
    n_params = arch.n_params(scaling.n_in, design.has_intercept)
    estimates = [] if family_params is None else [family_params]
    stats = fit_statistics(design, family, link, mu, n_params, dispersion, n_family_params=len(estimates))
    return NetworkResult(
        formula=design.formula,
        family=family,
        link=link,
        architecture=arch,
        params=solution.params,
        scaling=scaling,
        statistics=stats,
        n_params=n_params,
        info=solution.info,
        best_epoch=solution.best_epoch,
        control=control,
        seed=seed,
        dtype=dtype,
        cov_type=cov_type,
        validation_rows=solution.validation_rows,
        design=design,
        fitted=Fitted(eta, mu),
        family_params=parts.family_params_frame(estimates),
    )
