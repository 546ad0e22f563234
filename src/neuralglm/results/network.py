"""A fitted neural GLM: a frozen value whose statistics are all recomputed in float64.

A network is a GLM on learned features: :meth:`NetworkResult.features` returns the last
hidden layer and :meth:`NetworkResult.output_glm` refits the output layer on them by IRLS,
with standard errors that are conditional on the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design, model_matrix_for
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.gradient import GradientControl, GradientSolution
from neuralglm.fit.info import FitInfo
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling
from neuralglm.model.params import Params
from neuralglm.model.predictor import hidden_features_float64, linear_predictor_float64
from neuralglm.results.common import SharedResultMethods, fit_statistics
from neuralglm.results.summary import html_summary

PREDICT_TYPES = ("response", "link")
AIC_CAVEAT = (
    "AIC/BIC count every weight and bias as a parameter (k). Network parameters are not identifiable "
    "(units can be permuted, some may be redundant), so k overstates the effective degrees of freedom and "
    "the usual asymptotics do not hold: compare held-out deviance before trusting these criteria."
)


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
class NetworkResult(SharedResultMethods):
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
    """

    formula: str
    family: Family
    link: Link
    architecture: Architecture
    params: Params = field(repr=False)
    scaling: InputScaling = field(repr=False)
    deviance: float
    null_deviance: float
    pearson_chi2: float
    loglik: float
    aic: float
    bic: float
    dispersion: float
    dispersion_method: str
    n_params: int
    n_obs: float
    df_resid: float
    info: FitInfo
    best_epoch: int
    control: GradientControl = field(repr=False)
    seed: int
    dtype: str
    cov_type: str
    validation_rows: np.ndarray = field(repr=False)
    fitted_eta: np.ndarray = field(repr=False)
    fitted_mu: np.ndarray = field(repr=False)
    design: Design = field(repr=False)

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

    # ---- predictions, residuals, features ------------------------------------------------
    def _inputs(self, new_data, offset, exposure) -> tuple[np.ndarray, np.ndarray, pd.Index | None]:
        if new_data is None:
            return self.scaling.transform(self.design.X), self.design.offset, pd.Index(self.design.row_labels)
        X, offset_values = model_matrix_for(self.design, new_data, offset=offset, exposure=exposure)
        index = new_data.index if isinstance(new_data, pd.DataFrame) else None
        return self.scaling.transform(X), offset_values, index

    def predict(self, new_data=None, type: str = "response", *, offset=None, exposure=None) -> pd.Series:
        """Predictions on the response (``mu``) or link (``eta``) scale, R's ``predict(type=)``.

        ``new_data=None`` returns the fitted values. New data go through the stored formula and
        input scaling; factor levels unseen in training raise a :class:`DataError`.
        """
        if type not in PREDICT_TYPES:
            raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
        if new_data is None:
            values = self.fitted_mu if type == "response" else self.fitted_eta
            return pd.Series(values, index=self.design.row_labels, name=type)
        inputs, offset_values, index = self._inputs(new_data, offset, exposure)
        eta, mu = _forward(self.architecture, self.params, inputs, offset_values, self.link)
        return pd.Series(mu if type == "response" else eta, index=index, name=type)

    def features(self, new_data=None) -> pd.DataFrame:
        """The last hidden layer, one column per unit (``h1 … hK``): the engineered features.

        With ``hidden=()`` these are the standardized inputs.
        """
        inputs, _, index = (
            self._inputs(new_data, None, None) if new_data is not None else (self.scaling.transform(self.design.X), None, None)
        )
        if new_data is None:
            index = pd.Index(self.design.row_labels)
        values = hidden_features_float64(self.params, self.architecture, inputs)
        return pd.DataFrame(values, index=index, columns=self._feature_names())

    def output_glm(self, *, cov_type: str | None = None, dispersion=None):
        """The output layer refitted as a GLM (IRLS) on the learned features, with standard errors.

        This is the network read as "a GLM on learned features": after a converged fit with no
        penalty on the output layer (``l2=0``, or ``penalize_output=False``), its predictions
        equal the network's. Units that are
        constant on the training data (e.g. dead ReLUs) are dropped: their weight is not
        identified and does not change any prediction. The standard errors are conditional on
        the features (they ignore the uncertainty of the hidden layers).

        Returns
        -------
        FitResult
        """
        from neuralglm.api import glm_fit
        from neuralglm.fit.linalg import aliased_columns

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
        return glm_fit(
            X,
            design.y,
            self.family,
            self.link,
            column_names=names,
            offset=design.offset,
            weights=design.weights,
            freq_weights=design.freq_weights,
            dispersion=dispersion,
            cov_type=cov_type or self.cov_type,
            progress=False,
        )

    def summary(self, coefficients: bool = False):
        """Architecture, parameter count, fit statistics and training history.

        ``coefficients=True`` adds the output layer refitted as a GLM (:meth:`output_glm`),
        labelled "conditional on learned features".
        """
        return NetworkSummary.from_fit(self, coefficients)

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
) -> NetworkResult:
    """Assemble a :class:`NetworkResult`: every statistic recomputed in float64.

    ``inputs`` is ``scaling.transform(design.X)`` when the caller has it already.
    """
    inputs = scaling.transform(design.X) if inputs is None else inputs
    eta, mu = _forward(arch, solution.params, inputs, design.offset, link)
    n_params = arch.n_params(scaling.n_in, design.has_intercept)
    stats = fit_statistics(design, family, link, mu, n_params, dispersion)
    return NetworkResult(
        formula=design.formula,
        family=family,
        link=link,
        architecture=arch,
        params=solution.params,
        scaling=scaling,
        deviance=stats.deviance,
        null_deviance=stats.null_deviance,
        pearson_chi2=stats.pearson_chi2,
        loglik=stats.loglik,
        aic=stats.aic,
        bic=stats.bic,
        dispersion=stats.dispersion,
        dispersion_method=stats.dispersion_method,
        n_params=n_params,
        n_obs=stats.n_obs,
        df_resid=stats.df_resid,
        info=solution.info,
        best_epoch=solution.best_epoch,
        control=control,
        seed=seed,
        dtype=dtype,
        cov_type=cov_type,
        validation_rows=solution.validation_rows,
        fitted_eta=eta,
        fitted_mu=mu,
        design=design,
    )


def _status_words(info: FitInfo) -> str:
    """The status as a summary says it: "converged", "stalled at working precision", "iteration limit", …"""
    if info.status.name == "STALLED" and "working precision" in info.message:
        return "stalled at working precision"
    return info.status.label


def _history_rows(history: pd.DataFrame, best_epoch: int, *, validation: bool) -> pd.DataFrame:
    """The first, best and last rows of the training history, in the columns a summary shows."""
    picks = (
        sorted({0, len(history) - 1} | set(np.flatnonzero(history["iteration"].to_numpy() == best_epoch).tolist())) if len(history) else []
    )
    columns = ["iteration", "objective", *(["validation_deviance"] if validation else []), "seconds"]
    return history.iloc[picks][columns]


@dataclass(frozen=True)
class NetworkSummary:
    """Printable summary of a :class:`NetworkResult`: ``str()`` for text, ``_repr_html_`` for notebooks.

    Attributes
    ----------
    header, footer : text lines.
    history : selected rows of the training history (first, best, last).
    coefficients : output-layer table conditional on the learned features, or ``None``.
    """

    header: tuple[str, ...]
    history: pd.DataFrame
    footer: tuple[str, ...]
    coefficients: pd.DataFrame | None = None

    @classmethod
    def from_fit(cls, net: NetworkResult, coefficients: bool = False) -> NetworkSummary:
        info, control, arch = net.info, net.control, net.architecture
        header = [f"Neural GLM · {net.family}(link={net.link}) · {arch.describe(net.scaling.n_in)}"]
        formula_line = f"Formula: {net.formula}"
        if net.design.offset_source.any:
            formula_line += f"   Offset: {net.design.offset_source.describe()}"
        header.append(formula_line)
        if net.scaling.standardized:
            header.append(f"Standardized inputs: {', '.join(net.scaling.standardized)}")
        dispersion = {
            "fixed": f"{net.dispersion:g} (fixed)",
            "pearson": f"{net.dispersion:.6g} (Pearson, df = n − k)",
            "user": f"{net.dispersion:g} (given)",
        }[net.dispersion_method]
        header.append(
            f"Parameters (k): {net.n_params:,}   Observations: {net.n_obs:,.0f}   Df residual (n − k): {net.df_resid:,.0f}   Dispersion: {dispersion}"
        )
        unit = "iterations" if info.solver == "lbfgs" else "epochs"
        penalty_scope = " on hidden layers only" if control.l2 and not control.penalize_output else ""
        if info.solver == "lbfgs":
            settings = f"tol {control.tol:g}"
        else:
            rate = "schedule" if callable(control.learning_rate) else f"{control.learning_rate:g}"
            settings = f"batch {control.batch_size}, learning rate {rate}"
        header.append(
            f"Solver: {info.solver}, {info.n_iter} {unit} ({settings}, l2 {control.l2:g}{penalty_scope}, {net.dtype}, seed {net.seed}) · "
            f"{_status_words(info)} · {info.seconds:.2f} s"
        )
        if control.early_stopping:
            header.append(
                f"Early stopping: validation fraction {control.validation_fraction:g} ({len(net.validation_rows):,} rows), "
                f"best epoch {net.best_epoch} of {info.n_iter}"
            )
        if info.status.name not in ("CONVERGED", "EARLY_STOPPED"):
            header.append(f"Warning: {info.message}")
        shown = _history_rows(info.history, net.best_epoch, validation=control.early_stopping)
        footer = [
            f"Deviance {net.deviance:,.6g} · Null deviance {net.null_deviance:,.6g} · Deviance explained {100 * net.deviance_explained:.2f}%",
            f"Log-likelihood {net.loglik:,.6g} · AIC {net.aic:,.6g} · BIC {net.bic:,.6g}",
            f"Note: {AIC_CAVEAT}",
        ]
        table = None
        if coefficients:
            table = net.output_glm().coef_table()
        return cls(tuple(header), shown.reset_index(drop=True), tuple(footer), table)

    def __str__(self) -> str:
        lines = [*self.header, "", "Training history (mean deviance per unit weight):", self.history.to_string(index=False), ""]
        if self.coefficients is not None:
            lines += [
                "Output layer refitted as a GLM, conditional on learned features:",
                self.coefficients.to_string(float_format=lambda v: f"{v:.6g}"),
                "",
            ]
        lines += list(self.footer)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = [self.history.to_html(index=False, float_format=lambda v: f"{v:.6g}")]
        if self.coefficients is not None:
            parts += [
                "<div>Output layer refitted as a GLM, conditional on learned features:</div>",
                self.coefficients.to_html(float_format=lambda v: f"{v:.6g}"),
            ]
        return html_summary(self.header, parts, self.footer)
