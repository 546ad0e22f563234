"""A fitted multinomial network (``ng.fit(..., family="multinomial", hidden=...)``): a softmax output.

The output layer holds the K−1 logits of the levels after the first (the reference) against
it, the parameterisation of :class:`~neuralglm.results.multinomial.MultinomialResult` (R's
``nnet::multinom``): without hidden layers and penalty the network is that model and its
``coef`` are that model's coefficients. Response coding, levels, predictions and model-file
entries are those of the multinomial GLM (:mod:`neuralglm.results.multinomial`); deviance,
log-likelihood, AIC and BIC are ``multinom``'s with every weight and bias counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from neuralglm.data.design import Design
from neuralglm.errors import DataError
from neuralglm.fit.gradient import GradientControl
from neuralglm.fit.info import FitInfo
from neuralglm.fit.multinomial import deviance, log_softmax, null_deviance
from neuralglm.fit.multinomial_network import logit_matrix, n_network_params, train
from neuralglm.fit.solution import Solution
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling, fit_scaling
from neuralglm.model.params import Params
from neuralglm.model.predictor import linear_predictor_float64
from neuralglm.results import parts
from neuralglm.results.call import FitCall, no_call_error
from neuralglm.results.common import ModelFileInfo, write_result
from neuralglm.results.model_file import ArrayStore
from neuralglm.results.multinomial import MultinomialCriteria, coefficient_index, design_matrix, predictions, response_to_dict
from neuralglm.results.network_summary import AIC_CAVEAT, PENALIZED_AIC_CAVEAT, _history_rows, _status_words


@dataclass(frozen=True, eq=False)
class MultinomialNetworkResult(MultinomialCriteria):
    """A fitted multinomial network. Create it with ``ng.fit(formula, data, family="multinomial", hidden=...)``.

    Attributes
    ----------
    levels : the response levels; the first is the reference.
    architecture, params, scaling : as :class:`~neuralglm.NetworkResult`; the output layer has K−1 units.
    deviance, null_deviance : ``-2 loglik`` and that of the intercept-only model (``multinom``'s).
    loglik, aic, bic : with ``k = n_params`` (every weight and bias; nominal for hidden layers).
    n_obs : total case weight; ``info``, ``best_epoch``, ``control`` : the training.
    kind : ``"multinomial_network"``.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> net = ng.fit("group ~ age", df, family="multinomial", weights="holders", hidden=(3,), seed=1)
    >>> probabilities = net.predict(df.head(2))
    >>> list(probabilities.columns) == list(net.levels), net.deviance < net.null_deviance
    (True, True)
    """

    kind: ClassVar[str] = "multinomial_network"
    formula: str
    response_name: str
    levels: tuple[str, ...]
    architecture: Architecture
    params: Params = field(repr=False)
    scaling: InputScaling = field(repr=False)
    deviance: float
    null_deviance: float
    n_params: int
    n_obs: float
    info: FitInfo
    best_epoch: int
    control: GradientControl = field(repr=False)
    seed: int
    dtype: str
    validation_rows: np.ndarray = field(repr=False)
    design: Design = field(repr=False)
    call: FitCall | None = field(default=None, repr=False)
    source: ModelFileInfo | None = field(default=None, repr=False)

    @property
    def _n_estimated(self) -> float:
        return self.n_params

    @property
    def deviance_explained(self) -> float:
        """``1 − deviance / null_deviance``."""
        return 1.0 - self.deviance / self.null_deviance

    @property
    def history(self) -> pd.DataFrame:
        """The training history (see ``NetworkResult.history``)."""
        return self.info.history

    @property
    def has_data(self) -> bool:
        """Whether the training data are available (``False`` for a model saved without them)."""
        return self.design.X.shape[0] > 0

    @property
    def coef(self) -> pd.Series:
        """Output-layer coefficients, indexed by (response level, term).

        Without hidden layers these are the multinomial GLM's coefficients on the design's own
        scale (the input scaling undone); with hidden layers the output weights on the learned
        features ``h1 … hK`` (plus ``Intercept``), meaningful only conditional on them.
        """
        out = self.params[-1]
        weight = np.asarray(out.weight, dtype=np.float64)  # (features, K−1)
        bias = np.zeros(weight.shape[1]) if out.bias is None else np.asarray(out.bias, dtype=np.float64)
        if self.architecture.n_hidden == 0:
            beta = weight / self.scaling.scale[:, None]
            rows = dict(zip(self.scaling.names, beta, strict=True))
            if out.bias is not None:
                rows["Intercept"] = bias - self.scaling.mean @ beta
            terms = list(self.design.column_names)
        else:
            rows = {f"h{j}": w for j, w in enumerate(weight, start=1)}
            terms = list(rows)
            if out.bias is not None:
                rows["Intercept"], terms = bias, ["Intercept", *terms]
        matrix = np.array([rows[term] for term in terms])  # (terms, K−1)
        return pd.Series(matrix.T.reshape(-1), index=coefficient_index(self.levels, terms), name="coef")

    def predict(self, new_data=None, type: str = "response"):
        """Class probabilities (``"response"``: a DataFrame, one column per level), the most probable
        level (``"class"``) or the K−1 logits against the reference (``"link"``), as ``MultinomialResult.predict``."""
        X, index = design_matrix(self, new_data)
        eta = logit_matrix(linear_predictor_float64(self.params, self.architecture, self.scaling.transform(X), np.zeros(X.shape[0])))
        return predictions(eta, self.levels, index, type)

    def summary(self) -> MultinomialNetworkSummary:
        """Architecture, parameter count, training, deviance and AIC, and the fit's status."""
        return MultinomialNetworkSummary(self)

    def refit(self, data=None, **changes):
        """The same model fitted again on other ``data`` and/or with changed arguments (see ``FitResult.refit``)."""
        if self.call is None:
            raise no_call_error()
        return self.call.replay(data, **changes)

    # ---- model files ---------------------------------------------------------------------------
    def save(self, path, *, include_data: bool = False) -> None:
        """Save to one ``.npz`` model file, read back by :func:`neuralglm.load` (see ``FitResult.save``)."""
        write_result(self, path, include_data)

    def to_dict(self, store: ArrayStore, include_data: bool) -> dict:
        """The model-file form (format 2): JSON values, with the arrays put in ``store``."""
        return {
            **response_to_dict(self),
            "architecture": parts.architecture_to_dict(self.architecture),
            "params": parts.params_to_dict(self.params, store, "params"),
            "scaling": parts.scaling_to_dict(self.scaling, store, "scaling"),
            "deviance": float(self.deviance),
            "null_deviance": float(self.null_deviance),
            "n_obs": float(self.n_obs),
            "info": parts.info_to_dict(self.info, store, "info"),
            "best_epoch": int(self.best_epoch),
            "control": parts.control_to_dict(self.control),
            "seed": int(self.seed),
            "dtype": self.dtype,
            "validation_rows": store.put("validation_rows", np.asarray(self.validation_rows)),
            "design": parts.design_to_dict(self.design, store, "design", include_data),
        }

    @classmethod
    def from_dict(cls, node: dict, store: ArrayStore, source: ModelFileInfo) -> MultinomialNetworkResult:
        """Rebuild from :meth:`to_dict`, checking every entry (:class:`ModelFileError` naming the first bad one)."""
        design = parts.design_from_dict(parts.field(node, "design", dict, "result"), store)
        levels = parts.levels_from_dict(node)
        arch = parts.architecture_from_dict(parts.field(node, "architecture", dict, "result"))
        scaling = parts.scaling_from_dict(parts.field(node, "scaling", dict, "result"), store, design.n_coef)
        layers = parts.field(node, "params", list, "result")
        params = parts.params_from_dict(layers, store, arch, scaling.n_in, design.has_intercept, n_out=len(levels) - 1)
        return cls(
            formula=parts.field(node, "formula", str, "result"),
            response_name=parts.field(node, "response_name", str, "result"),
            levels=levels,
            architecture=arch,
            params=params,
            scaling=scaling,
            deviance=float(parts.field(node, "deviance", (int, float), "result")),
            null_deviance=float(parts.field(node, "null_deviance", (int, float), "result")),
            n_params=n_network_params(arch, scaling.n_in, params[-1].bias is not None, len(levels)),
            n_obs=float(parts.field(node, "n_obs", (int, float), "result")),
            info=parts.info_from_dict(parts.field(node, "info", dict, "result"), store),
            best_epoch=parts.field(node, "best_epoch", int, "result"),
            control=parts.control_from_dict(parts.field(node, "control", dict, "result")),
            seed=parts.field(node, "seed", int, "result"),
            dtype=parts.dtype_field(node, "result"),
            validation_rows=store.get(parts.field(node, "validation_rows", str, "result"), kind="iu"),
            design=design,
            source=source,
        )

    def __repr__(self) -> str:
        return (
            f"<MultinomialNetworkResult {self.architecture.describe(self.scaling.n_in)[:-1]}{len(self.levels) - 1} (softmax) · "
            f"{self.formula} · n_obs={self.n_obs:g}, deviance={self.deviance:.6g}>"
        )


@dataclass(frozen=True)
class MultinomialNetworkSummary:
    """Text (``print``) of a multinomial network."""

    fit: MultinomialNetworkResult

    def __str__(self) -> str:
        net, info, control = self.fit, self.fit.info, self.fit.control
        architecture = f"{net.architecture.describe(net.scaling.n_in)[:-1]}{len(net.levels) - 1} (softmax)"
        lines = [
            f"Multinomial neural network (reference level {net.levels[0]!r}) · {architecture}",
            f"Formula: {net.formula}   Levels: {', '.join(net.levels)}",
            f"Parameters (k): {net.n_params:,}   Observations: {net.n_obs:,.0f}",
            f"Solver: {info.solver}, {info.n_iter} {'iterations' if info.solver == 'lbfgs' else 'epochs'} "
            f"(l2 {control.l2:g}, {net.dtype}, seed {net.seed}) · "
            f"{_status_words(info)} · {info.seconds:.2f} s",
        ]
        if info.status.name not in ("CONVERGED", "EARLY_STOPPED"):
            lines.append(f"{'Note' if info.at_precision else 'Warning'}: {info.message}")
        if net.source is not None:
            lines.append(net.source.describe())
        history = _history_rows(info.history, net.best_epoch, validation=control.early_stopping)
        lines += ["", "Training history (mean deviance per unit weight):", history.to_string(index=False), ""]
        lines.append(
            f"Residual deviance: {net.deviance:.6g}   Null deviance: {net.null_deviance:.6g}   AIC: {net.aic:.6g}   BIC: {net.bic:.6g}"
        )
        if net.architecture.n_hidden or (control.l2 and control.penalize_output):
            lines.append(f"Note: {AIC_CAVEAT if net.architecture.n_hidden else PENALIZED_AIC_CAVEAT}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def fit_multinomial_network(
    design: Design,
    levels: tuple[str, ...],
    response_name: str,
    arch: Architecture,
    control: GradientControl,
    *,
    seed: int,
    dtype: str,
    progress,
) -> MultinomialNetworkResult:
    """Scale the inputs, train from the null model and assemble the result (statistics in float64)."""
    scaling = fit_scaling(design.X, design.column_names)
    inputs = scaling.transform(design.X)
    codes, total = design.y.astype(np.int64), design.total_weights
    weightless = [level for level, w in zip(levels, np.bincount(codes, weights=total, minlength=len(levels)), strict=True) if w <= 0]
    if weightless:
        # The null model's logit of such a level is -inf: training would start (and stay) at infinity.
        raise DataError(
            f"The response level(s) {weightless} of {response_name!r} have no weight (every row of theirs has weight 0), so a "
            "network cannot give them a finite logit; drop those rows (or the level) before fitting, or give them weight."
        )
    has_bias = design.has_intercept
    options = {"has_bias": has_bias, "seed": seed, "dtype": np.dtype(dtype), "progress": progress, "column_names": scaling.names}
    solution: Solution[Params] = train(inputs, codes, total, len(levels), arch, control, **options)
    eta = logit_matrix(linear_predictor_float64(solution.params, arch, inputs, np.zeros(len(codes))))
    return MultinomialNetworkResult(
        formula=design.formula,
        response_name=response_name,
        levels=levels,
        architecture=arch,
        params=solution.params,
        scaling=scaling,
        deviance=deviance(codes, total, log_softmax(eta)),
        null_deviance=null_deviance(codes, total, len(levels), has_bias),
        n_params=n_network_params(arch, scaling.n_in, has_bias, len(levels)),
        n_obs=float(total[total > 0].sum()),
        info=solution.info,
        best_epoch=solution.best_epoch,
        control=control,
        seed=seed,
        dtype=dtype,
        validation_rows=solution.validation_rows,
        design=design,
    )


__all__ = ["MultinomialNetworkResult", "MultinomialNetworkSummary", "fit_multinomial_network"]
