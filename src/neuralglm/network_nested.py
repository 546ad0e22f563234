"""``ng.fit``'s wiring for the architectures that nest a GLM (CANN, LocalGLMnet, additive) and embeddings.

:mod:`neuralglm.network` calls :func:`check_architecture` before any work and
:func:`prepare` once the design exists: it turns the formula's terms into the static
:class:`~neuralglm.model.architecture.Architecture` (the additive model's groups, the embedded
factors' dummy columns) and builds the starting parameters, the GLM's IRLS estimates included,
so that CANN and LocalGLMnet start exactly at the GLM.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from neuralglm.data.design import Design
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.null_model import intercept_only
from neuralglm.model.architecture import Architecture, Embedding
from neuralglm.model.inputs import InputScaling
from neuralglm.model.nesting import init_nested
from neuralglm.model.params import Params, to_numpy
from neuralglm.results.result import refit_glm

AUTO_EMBEDDING_MAX = 10  # embed="auto": min(10, ceil(levels / 2)) dimensions


def check_architecture(settings: dict, family: Family) -> None:
    """Refuse combinations of ``architecture``, ``embed``, ``hidden`` and the family that have no model."""
    kind, hidden, embed = settings["architecture"], settings["hidden"], settings["embed"]
    if kind == "localglmnet" and not hidden:
        raise SpecificationError(
            "architecture='localglmnet' computes its coefficients βⱼ(x) with hidden layers; got hidden=(). Give hidden "
            "widths, e.g. hidden=(16,), or use architecture='network' with hidden=() for the GLM."
        )
    if embed is not None and not hidden:
        raise SpecificationError(
            f"embed={embed!r} feeds factor embeddings to hidden layers; got hidden=(). Give hidden widths or drop embed."
        )
    if embed is not None and kind == "additive":
        raise SpecificationError(
            "embed is not available with architecture='additive': each term has its own network already (a factor's "
            "network sees its dummies). Drop embed, or use architecture='network' or 'cann'."
        )
    if settings["cann_fixed"] and kind != "cann":
        raise SpecificationError(f"cann_fixed=True keeps the GLM part of a CANN fixed; got architecture={kind!r}. Use architecture='cann'.")
    nested = kind != "network" or embed is not None
    if nested and hidden and family.estimates_parameter:
        raise SpecificationError(
            f"architecture={kind!r} (and embed) cannot estimate the family's parameter yet; fix it, e.g. "
            "family='negative_binomial(0.5)', or use architecture='network'."
        )


def _terms(design: Design, scaling: InputScaling) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """``(label, factor expressions, network-input indices)`` of every formula term but the intercept."""
    position = {int(column): j for j, column in enumerate(scaling.columns)}
    spec = design.spec
    if spec is None or not hasattr(spec, "term_indices"):
        # A ready matrix (the estimators): every column is its own term.
        return [(name, (name,), (j,)) for j, name in enumerate(scaling.names)]
    terms = []
    for term, columns in spec.term_indices.items():
        inputs = tuple(position[c] for c in columns if c in position)
        if inputs:
            terms.append((str(term), tuple(str(factor.expr) for factor in term.factors), inputs))
    return terms


def _categorical(design: Design, expr: str) -> bool:
    state = getattr(design.spec, "encoder_state", {}) or {}
    kind = state.get(expr, (None,))[0]
    return getattr(kind, "value", kind) == "categorical"


def _embeddings(design: Design, scaling: InputScaling, embed) -> tuple[Embedding, ...]:
    """The embedded factors: their main-effect terms' dummy inputs and the sizes asked for (or the 'auto' rule)."""
    if embed is None:
        return ()
    factors = {}
    for label, exprs, inputs in _terms(design, scaling):
        if len(exprs) == 1 and _categorical(design, exprs[0]):
            factors[label] = (exprs[0], inputs)
    found = []
    if embed == "auto":
        for label, (_, inputs) in factors.items():
            if len(inputs) >= 2:  # 3 or more levels
                found.append((label, factors[label][0], inputs, min(AUTO_EMBEDDING_MAX, math.ceil((len(inputs) + 1) / 2))))
    else:
        for name, dim in embed.items():
            match = [(label, inputs) for label, (expr, inputs) in factors.items() if name in (label, expr) or f"({name})" in label]
            if not match:
                raise SpecificationError(
                    f"embed names {name!r}, which is not a factor (categorical main effect) of the formula {design.formula!r}; "
                    f"its factors are {sorted(factors) or 'none'}."
                )
            found.append((match[0][0], factors[match[0][0]][0], match[0][1], dim))
    return tuple(Embedding(label, inputs, dim, _levels(design, expr, inputs, scaling)) for label, expr, inputs, dim in found)


def _levels(design: Design, expr: str, inputs: tuple[int, ...], scaling: InputScaling) -> tuple[str, ...]:
    """Level names, reference first: formulaic's categories when they match the dummies, else read from the dummies' names."""
    state = (getattr(design.spec, "encoder_state", {}) or {}).get(expr, (None, {}))[1]
    categories = [str(c) for c in state.get("categories", [])] if isinstance(state, dict) else []
    levels = [name.rsplit("[T.", 1)[-1].rstrip("]") if "[T." in name else name for name in (scaling.names[j] for j in inputs)]
    if len(categories) == len(levels) + 1 and categories[1:] == levels:
        return tuple(categories)
    return ("(reference)", *levels)


def prepare(design: Design, scaling: InputScaling, arch: Architecture, settings: dict, family: Family, link: Link):
    """The architecture with its data-dependent parts, and the starting parameters (``None``: the plain network's own)."""
    kind, embed = settings["architecture"], settings["embed"]
    if kind == "network" and embed is None:
        return arch, None
    groups, names = (), ()
    if kind == "additive":
        terms = _terms(design, scaling)
        groups, names = tuple(t[2] for t in terms), tuple(t[0] for t in terms)
    arch = dataclasses.replace(
        arch,
        kind=kind,
        glm_fixed=bool(settings["cann_fixed"]),
        groups=groups,
        group_names=names,
        embeddings=_embeddings(design, scaling, embed),
    )
    glm_coef, intercept = None, None
    if kind in ("cann", "localglmnet"):
        glm_coef, intercept = glm_start(design, scaling, family, link)
    elif design.has_intercept:
        intercept = intercept_only(design.y, design.total_weights, design.offset, family, link)
    if not design.has_intercept:
        intercept = None
    key = jax.random.split(jax.random.key(settings["seed"]), 3)[0]
    params = init_nested(arch, scaling.n_in, key, intercept=0.0 if intercept is not None else None, glm_coef=None)
    return arch, with_start(to_numpy(params), arch, intercept, glm_coef)


def with_start(params: Params, arch: Architecture, intercept: float | None, glm_coef) -> Params:
    """``params`` (float64) with the intercept and the GLM part set exactly (no float32 rounding of the GLM)."""
    layers = list(params)
    if intercept is not None:
        layers[-1] = layers[-1]._replace(bias=np.array([intercept], dtype=np.float64))
    if glm_coef is not None and arch.kind == "cann":
        layers[-1] = layers[-1]._replace(weight=np.asarray(glm_coef, dtype=np.float64).reshape(-1, 1))
    if glm_coef is not None and arch.kind == "localglmnet":
        layers[-2] = layers[-2]._replace(bias=np.asarray(glm_coef, dtype=np.float64).reshape(-1))
    return tuple(layers)


def glm_start(design: Design, scaling: InputScaling, family: Family, link: Link) -> tuple[np.ndarray, float | None]:
    """The GLM's IRLS estimates on the network's standardized inputs: ``(coefficients, intercept)``.

    Aliased columns (R's NA) get 0: they change no prediction.
    """
    glm = refit_glm(design.X, list(design.column_names), design, family, link, cov_type="expected")
    beta = np.nan_to_num(glm.coef.to_numpy(dtype=np.float64), nan=0.0)
    on_inputs = beta[scaling.columns]
    coef = on_inputs * scaling.scale
    if not design.has_intercept:
        return coef, None
    position = list(design.column_names).index("Intercept")
    return coef, float(beta[position] + np.sum(on_inputs * scaling.mean))
