"""What the nested architectures let a statistician read, and the rebalanced output layer.

- :func:`local_coef`: LocalGLMnet's attention coefficients βⱼ(x), one column per input;
- :func:`shape_functions`: an additive network's term contributions fₜ(xₜ), tidy, with
  bootstrap bands when a :func:`neuralglm.bootstrap` result is given;
- :func:`embeddings`: the learned embedding of every level of each embedded factor;
- :func:`rebalanced_params`: the output layer refitted by IRLS on the last hidden features, so that
  Σ fitted = Σ observed exactly for a canonical link with an intercept;
- :func:`glm_part`: a CANN's GLM coefficients on the design's scale.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.fit.linalg import aliased_columns
from neuralglm.model import nesting
from neuralglm.model.params import Dense
from neuralglm.model.predictor import hidden_features_float64, numpy_activations
from neuralglm.results.result import refit_glm


def _require(fit, kind: str, what: str) -> None:
    if fit.architecture.kind != kind:
        raise SpecificationError(f"{what} is for architecture={kind!r}; this fit's architecture is {fit.architecture.kind!r}.")


def _inputs(fit, data) -> tuple[np.ndarray, pd.Index | None]:
    if data is None:
        fit._fitted("this view without new data")
        return fit.scaling.transform(fit.design.X), pd.Index(fit.design.row_labels)
    X, _ = fit._new_design(data, None, None)
    return fit.scaling.transform(X), (data.index if isinstance(data, pd.DataFrame) else None)


def local_coef(fit, data=None) -> pd.DataFrame:
    """LocalGLMnet's βⱼ(x) for every row, one column per network input (per standard deviation of a
    standardized input, per unit of a 0/1 column), so that η = β₀ + Σⱼ βⱼ(x)·xⱼ on those inputs."""
    _require(fit, "localglmnet", "local_coef()")
    X, index = _inputs(fit, data)
    beta = nesting.local_coefficients(fit.params, fit.architecture, X, np, numpy_activations(fit.architecture))
    return pd.DataFrame(beta, index=index, columns=list(fit.scaling.names))


def _term_values(fit, data, term: str) -> pd.Series | None:
    """The one data column a term is a function of, when it is one (else None)."""
    spec = fit.design.spec
    if data is None or spec is None or not hasattr(spec, "term_variables"):
        return None
    for candidate, variables in spec.term_variables.items():
        if str(candidate) == term:
            names = [v for v in variables if isinstance(data, pd.DataFrame) and v in data.columns]
            return data[names[0]] if len(names) == 1 else None
    return None


def shape_functions(fit, data=None, *, bootstrap=None, level: float = 0.95) -> pd.DataFrame:
    """An additive network's term contributions, tidy: ``term``, ``value`` (the term's variable,
    when it has one), ``effect`` (fₜ on the link scale) and, with ``bootstrap``, ``lower``/``upper``
    (percentile bands of the refits), one row per distinct value of each term."""
    _require(fit, "additive", "shape_functions()")
    if data is None:
        raise SpecificationError("shape_functions() needs the data whose values to show, e.g. fit.shape_functions(train_frame).")
    X, _ = _inputs(fit, data)
    arch, activations = fit.architecture, numpy_activations(fit.architecture)
    effects = nesting.term_contributions(fit.params, arch, X, np, activations)
    replicates = None
    if bootstrap is not None:
        rows = bootstrap.estimates[bootstrap.ok]
        replicates = np.stack([nesting.term_contributions(_unflatten(fit.params, r), arch, X, np, activations) for r in rows])
    frames = []
    for g, term in enumerate(arch.group_names):
        values = _term_values(fit, data, term)
        frame = pd.DataFrame({"term": term, "value": values.to_numpy() if values is not None else np.nan, "effect": effects[:, g]})
        if replicates is not None:
            alpha = (1.0 - level) / 2.0
            frame["lower"], frame["upper"] = np.quantile(replicates[:, :, g], [alpha, 1.0 - alpha], axis=0)
        key = "value" if values is not None else "effect"
        frames.append(frame.drop_duplicates(subset=[key]).sort_values(key))
    return pd.concat(frames, ignore_index=True)


def _unflatten(params, vector: np.ndarray) -> tuple:
    """A flat parameter vector (``ravel_pytree`` order: each layer's weight, then its bias) as ``params``' layers."""
    layers, at = [], 0
    for layer in params:
        weight = vector[at : at + layer.weight.size].reshape(layer.weight.shape)
        at += layer.weight.size
        bias = None if layer.bias is None else vector[at : at + layer.bias.size]
        at += 0 if layer.bias is None else layer.bias.size
        layers.append(Dense(weight, bias))
    return tuple(layers)


def embeddings(fit) -> pd.DataFrame:
    """The learned embeddings, tidy: ``factor``, ``level`` and one column per dimension (``dim1``, …)."""
    arch = fit.architecture
    if not arch.embeddings:
        raise SpecificationError("embeddings() is for fits with embed=...; this fit feeds its factors as dummies.")
    frames = []
    for table, e in zip(fit.params[: len(arch.embeddings)], arch.embeddings, strict=True):
        weight = np.asarray(table.weight, dtype=np.float64)
        frame = pd.DataFrame(weight, columns=[f"dim{k}" for k in range(1, e.dim + 1)])
        frame.insert(0, "level", list(e.levels) if len(e.levels) == e.n_levels else [str(i) for i in range(e.n_levels)])
        frame.insert(0, "factor", e.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def glm_part(fit) -> pd.Series:
    """A CANN's GLM coefficients on the design's scale (the input scaling undone)."""
    glm = fit.params[-1]
    beta = np.asarray(glm.weight[:, 0], dtype=np.float64) / fit.scaling.scale
    values = dict(zip(fit.scaling.names, beta, strict=True))
    if glm.bias is not None:
        values["Intercept"] = float(glm.bias[0]) - float(np.sum(beta * fit.scaling.mean))
    return pd.Series([values.get(name, 0.0) for name in fit.design.column_names], index=list(fit.design.column_names), name="coef")


def _output_features(fit, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns η is linear in, given the hidden layers (``(n_obs, k)``), and the fixed part of η besides the offset."""
    arch, params = fit.architecture, fit.params
    h = hidden_features_float64(params, arch, X)
    fixed = np.zeros(X.shape[0])
    if arch.kind == "cann":
        if arch.glm_fixed:
            return h, X @ np.asarray(params[-1].weight[:, 0], np.float64)
        return np.column_stack([X, h]), fixed
    if arch.kind == "localglmnet":
        # One column, Σⱼ βⱼ(x)·xⱼ: the attention layer is rescaled, not refitted weight by weight. Its
        # n_in·(width + 1) weights multiply products hₖ(x)·xⱼ, which a GLM fit separates easily (a
        # rare level's dummy times a unit: IRLS diverged on 700 rows of simulate_motor).
        attention = params[-2]
        beta = h @ np.asarray(attention.weight, np.float64) + np.asarray(attention.bias, np.float64)[None, :]
        return np.sum(beta * X, axis=1, keepdims=True), fixed
    return h, fixed


def _with_output(fit, coef: np.ndarray, intercept: float | None) -> tuple:
    """The parameters with the output layer(s) replaced by ``coef`` (in :func:`_output_features`' order)."""
    arch, layers = fit.architecture, list(fit.params)
    bias = None if intercept is None else np.array([intercept])
    if arch.kind == "cann":
        n_in = fit.scaling.n_in
        glm_w = layers[-1].weight if arch.glm_fixed else coef[:n_in].reshape(-1, 1)
        net_w = coef if arch.glm_fixed else coef[n_in:]
        layers[-2] = Dense(net_w.reshape(-1, 1), None)
        layers[-1] = Dense(np.asarray(glm_w, np.float64), bias)
    elif arch.kind == "localglmnet":
        attention = layers[-2]
        layers[-2] = Dense(coef[0] * np.asarray(attention.weight, np.float64), coef[0] * np.asarray(attention.bias, np.float64))
        layers[-1] = layers[-1]._replace(bias=bias)
    elif arch.kind == "additive":
        L, at = arch.n_hidden, 0
        for g in range(len(arch.groups)):
            width = layers[g * (L + 1) + L].weight.shape[0]
            layers[g * (L + 1) + L] = Dense(coef[at : at + width].reshape(-1, 1), None)
            at += width
        layers[-1] = layers[-1]._replace(bias=bias)
    else:
        layers[-1] = Dense(coef.reshape(-1, 1), bias)
    return tuple(layers)


def rebalanced_params(fit) -> tuple:
    """The parameters with the output layer refitted by IRLS on the last hidden features (see
    :meth:`neuralglm.NetworkResult.rebalance`)."""
    fit._fitted("rebalance()")
    design = fit.design
    X = fit.scaling.transform(design.X)
    features, fixed = _output_features(fit, X)
    keep = np.flatnonzero(np.ptp(features, axis=0) > 0)  # constant units (dead ReLUs) carry nothing
    matrix = features[:, keep]
    if design.has_intercept:
        matrix = np.column_stack([np.ones(len(matrix)), matrix])
    aliased = set(aliased_columns(matrix, design.total_weights))
    used = [j for j in range(matrix.shape[1]) if j not in aliased]
    shifted = dataclasses.replace(design, offset=design.offset + fixed)
    glm = refit_glm(matrix[:, used], [f"f{j}" for j in used], shifted, fit.family, fit.link, cov_type="expected")
    estimates = np.zeros(matrix.shape[1])
    estimates[used] = glm.coef.to_numpy(dtype=np.float64)
    intercept = float(estimates[0]) if design.has_intercept else None
    coef = np.zeros(features.shape[1])
    coef[keep] = estimates[1:] if design.has_intercept else estimates
    return _with_output(fit, coef, intercept)
