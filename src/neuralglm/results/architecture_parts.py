"""The model-file schema of the architectures that nest a GLM (CANN, LocalGLMnet, additive) and of embeddings.

A plain network's file is unchanged: its ``architecture`` entry holds ``hidden`` and
``activations`` (:func:`neuralglm.results.parts.architecture_to_dict`). A nested one adds a
``nesting`` entry (kind, CANN's fixed flag, the additive model's term groups, the embedded
factors) and its parameters are checked against the layer shapes of that architecture
(:meth:`~neuralglm.model.architecture.Architecture.layer_shapes`), each entry by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.model.architecture import KINDS, Architecture, Embedding
from neuralglm.model.params import Dense
from neuralglm.results.model_file import ArrayStore
from neuralglm.results.parts import field, str_list


def nesting_to_dict(arch: Architecture) -> dict | None:
    """The ``nesting`` entry, or ``None`` for a plain network (whose file stays as it was)."""
    if not arch.nested:
        return None
    return {
        "kind": arch.kind,
        "glm_fixed": bool(arch.glm_fixed),
        "groups": [[int(j) for j in group] for group in arch.groups],
        "group_names": list(arch.group_names),
        "embeddings": [
            {"name": e.name, "columns": [int(j) for j in e.columns], "dim": int(e.dim), "levels": list(e.levels)} for e in arch.embeddings
        ],
    }


def _indices(values, n_in: int, where: str) -> tuple[int, ...]:
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(j, int) and not isinstance(j, bool) and 0 <= j < n_in for j in values)
    ):
        raise ModelFileError(f"The model file's {where} must be a non-empty list of input indices in [0, {n_in}).")
    return tuple(values)


def nesting_from_dict(node, arch: Architecture, n_in: int) -> Architecture:
    """``arch`` (hidden widths and activations, already read) with the ``nesting`` entry applied; ``None`` leaves it plain."""
    if node is None:
        return arch
    where = "nesting"
    kind = field(node, "kind", str, where)
    if kind not in KINDS:
        raise ModelFileError(f"The model file's nesting.kind must be one of {KINDS}; got {kind[:40]!r}.")
    groups = tuple(_indices(g, n_in, "nesting.groups") for g in field(node, "groups", list, where))
    embeddings = []
    for i, entry in enumerate(field(node, "embeddings", list, where)):
        at = f"nesting.embeddings.{i}"
        dim = field(entry, "dim", int, at)
        if not 1 <= dim <= 1024:
            raise ModelFileError(f"The model file's {at}.dim must be in [1, 1024]; got {dim}.")
        columns = _indices(field(entry, "columns", list, at), n_in, f"{at}.columns")
        levels = tuple(str_list(entry, "levels", at))
        embeddings.append(Embedding(field(entry, "name", str, at), columns, dim, levels))
    try:
        return dataclasses.replace(
            arch,
            kind=kind,
            glm_fixed=field(node, "glm_fixed", bool, where),
            groups=groups,
            group_names=tuple(str_list(node, "group_names", where)),
            embeddings=tuple(embeddings),
        )
    except SpecificationError as error:
        raise ModelFileError(f"The model file's nesting is invalid: {error}") from None


def nested_params_from_dict(nodes, store: ArrayStore, arch: Architecture, n_in: int, has_intercept: bool) -> tuple[Dense, ...]:
    """The parameters of a nested architecture, each layer checked against :meth:`Architecture.layer_shapes`."""
    shapes = arch.layer_shapes(n_in, has_intercept)
    if not isinstance(nodes, list) or len(nodes) != len(shapes):
        raise ModelFileError(f"The model file's params must hold {len(shapes)} layers for its architecture.")
    layers = []
    for i, (node, (wshape, bshape)) in enumerate(zip(nodes, shapes, strict=True)):
        where = f"params.{i}"
        weight = store.get(field(node, "weight", str, where), ndim=2, shape=wshape)
        bias_key = field(node, "bias", (str, type(None)), where)
        if (bias_key is None) != (bshape is None):
            raise ModelFileError(
                f"The model file's {where} {'lacks its' if bshape else 'has a'} bias, which its architecture does not allow."
            )
        bias = None if bias_key is None else store.get(bias_key, shape=bshape).astype(np.float64)
        layers.append(Dense(weight.astype(np.float64), bias))
    return tuple(layers)
