"""Reading model files of format version 1 (neuralglm ≤ 0.1.0 wrote them; nothing writes them now).

Format 1 wrote every dataclass field through a generic tagged encoding. This reader accepts
only the tags and classes that format held, rebuilds the parts, and composes today's results
from them; renamed fit statuses are mapped (``MAX_ITER``/``MAX_EPOCHS``). The stored formula
goes through the same allowlist as format 2.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data.design import Design, OffsetSource
from neuralglm.errors import ModelFileError
from neuralglm.fit.gradient import GradientControl
from neuralglm.fit.info import FitInfo, upgrade_history
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling
from neuralglm.model.params import Dense
from neuralglm.results import formula_state, parts
from neuralglm.results.common import FitStatistics, Fitted, ModelFileInfo
from neuralglm.results.model_file import ArrayStore
from neuralglm.results.network import NetworkResult
from neuralglm.results.result import FitResult

_PARTS: dict[str, type] = {cls.__name__: cls for cls in (Design, OffsetSource, FitInfo, Architecture, InputScaling, GradientControl)}
_RESULTS = ("FitResult", "NetworkResult")
_STATISTICS = ("n_obs", "df_resid", "deviance", "null_deviance", "pearson_chi2", "dispersion", "dispersion_method", "loglik", "aic", "bic")


class _Reader:
    """Decodes the tagged trees of format 1 (only the tags it wrote; anything else is refused)."""

    def __init__(self, store: ArrayStore):
        self.store = store
        self.fit_history: pd.DataFrame | None = None  # the FitInfo's history as written (see _composed)

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise ModelFileError(f"The model file's spec holds an unexpected value {str(node)[:80]!r}.")
        ((tag, body),) = node.items()
        simple = {
            "array": lambda: self.store.get(body, kind="biufUSMm", ndim=None),
            "str_array": lambda: np.array(self.store.get(body, kind="U", ndim=None).tolist(), dtype=object),
            "np_scalar": lambda: parts.value_from_dict(node, self.store),
            "status": lambda: parts.status_from_name(body),
            "family": lambda: parts.family_from(body),
            "link": lambda: parts.link_from(body),
            "dense": lambda: Dense(self.decode(body[0]), self.decode(body[1])),
            "tuple": lambda: tuple(self.decode(v) for v in body),
            "list": lambda: [self.decode(v) for v in body],
            "dict": lambda: {self.decode(k): self.decode(v) for k, v in body},
            "model_spec": lambda: formula_state.decode_model_spec(body, self.decode),
            "unsaved_callable": lambda: parts._unsaved_schedule,
            "default_labels": lambda: np.arange(body),
        }
        if tag in simple:
            return simple[tag]()
        if tag == "index":
            values = self.decode(body[0])
            return pd.Index(values, dtype=body[1] if body[1] == "str" else np.dtype(body[1]))
        if tag == "series":
            return pd.Series(self.decode(body["values"]), index=self.decode(body["index"]), name=body["name"])
        if tag == "frame":
            return self._frame(body)
        if tag == "dataclass":
            return self._dataclass(body)
        raise ModelFileError(f"The model file's spec holds an unknown entry type {tag!r}.")

    def _frame(self, body: dict) -> pd.DataFrame:
        index = None if body["index"] is None else self.decode(body["index"])
        if "values" in body:
            values = self.decode(body["values"])
            return pd.DataFrame(values.reshape(body["n_rows"], len(body["columns"])), index=index, columns=pd.Index(body["columns"]))
        columns = {name: self.decode(node) for name, node in zip(body["columns"], body["columns_values"], strict=True)}
        return pd.DataFrame(columns, index=index, columns=pd.Index(body["columns"]))

    def fields(self, body: dict, allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        name = body.get("class") if isinstance(body, dict) else None
        if name not in allowed or not isinstance(body.get("fields"), dict):
            raise ModelFileError(f"The model file holds a {name!r} object, which this neuralglm cannot rebuild.")
        return name, {key: self.decode(node) for key, node in body["fields"].items()}

    def _dataclass(self, body: dict):
        name, values = self.fields(body, tuple(_PARTS))
        cls = _PARTS[name]
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelFileError(f"The model file's {name} has fields {unknown} unknown to this neuralglm: upgrade neuralglm to load it.")
        if cls is FitInfo and isinstance(values.get("history"), pd.DataFrame):
            self.fit_history = values["history"]
        return cls(**values)


def _composed(kind: str, values: dict[str, Any], include_data: bool, fit_history: pd.DataFrame | None = None):
    """Today's result from the fields a format-1 result held.

    A v1 IRLS history holds the total deviance; today's objective is deviance / Σ weights, so
    ``fit_history`` (as written) is upgraded again with the training rows' total weight when
    the file has them (without them the objective stays NaN).
    """
    stats = FitStatistics.from_dict({name: values.pop(name) for name in _STATISTICS})
    eta, mu = values.pop("fitted_eta"), values.pop("fitted_mu")
    design: Design = values["design"]
    if not include_data:
        n_coef = len(design.column_names)
        empty = np.empty(0)
        design = dataclasses.replace(design, y=empty, X=np.empty((0, n_coef)), weights=empty, offset=empty, row_labels=np.arange(0))
        values["design"] = dataclasses.replace(design, freq_weights=None)
    elif np.shape(eta) != (design.n_obs,) or np.shape(mu) != (design.n_obs,):
        raise ModelFileError("The model file's fitted values do not match its training rows: the file is inconsistent.")
    if include_data and fit_history is not None and isinstance(values.get("info"), FitInfo):
        total_weight = float(np.sum(values["design"].total_weights))
        values["info"] = dataclasses.replace(values["info"], history=upgrade_history(fit_history, total_weight))
    source = ModelFileInfo(format_version=1, include_data=include_data, n_rows=values["design"].n_obs)
    fitted = Fitted(np.asarray(eta, dtype=np.float64), np.asarray(mu, dtype=np.float64)) if include_data else None
    cls = FitResult if kind == "FitResult" else NetworkResult
    return cls(**values, statistics=stats, fitted=fitted, source=source)


def read(spec: dict, store: ArrayStore):
    """The result of a format-1 spec and its arrays."""
    tree = spec.get("result")
    if spec.get("kind") not in _RESULTS or not isinstance(tree, dict) or not isinstance(tree.get("dataclass"), dict):
        raise ModelFileError(f"The model file holds a {spec.get('kind')!r}, which this neuralglm cannot load.")
    reader = _Reader(store)
    kind, values = reader.fields(tree["dataclass"], (spec["kind"],))
    include_data = spec.get("include_data")
    if not isinstance(include_data, bool):
        raise ModelFileError("The model file's include_data must be true or false.")
    return _composed(kind, values, include_data, reader.fit_history)
