"""The explicit model-file schema (format 2) of the parts a result is made of.

Each part is written by a ``*_to_dict(part, store, key)`` function into JSON values plus arrays
in an :class:`~neuralglm.results.model_file.ArrayStore`, and read back by ``*_from_dict`` which
checks every value's type, dtype and shape, so a file is refused at load time (a
:class:`ModelFileError` naming the entry) rather than failing later. Only the fields listed here
are part of the format: adding a field to a class does not change the file format until it is
added here (with a default for files that lack it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data.design import Design, OffsetSource
from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link, Power
from neuralglm.family.registry import get_family, get_link
from neuralglm.fit.family_parameter import ParameterEstimate
from neuralglm.fit.gradient import GradientControl
from neuralglm.fit.info import FitInfo, Status, at_precision_before_field
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling
from neuralglm.model.params import Dense
from neuralglm.results import formula_state
from neuralglm.results.model_file import ArrayStore

# Data-sized Design arrays that include_data=False leaves out (predicting new data does not need them).
_DATA_FIELDS = ("y", "X", "weights", "freq_weights", "offset")


def field(node: dict, name: str, types: type | tuple[type, ...], where: str) -> Any:
    """``node[name]`` checked to be one of ``types`` (bools are not numbers), else :class:`ModelFileError`."""
    if not isinstance(node, dict) or name not in node:
        raise ModelFileError(f"The model file's {where} lacks the entry {name!r}: the file is incomplete.")
    value = node[name]
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ModelFileError(f"The model file's {where}.{name} must be a {names}; got {str(value)[:60]!r}.")
    return value


TRAINING_DTYPES = ("float32", "float64")


def dtype_field(node: dict, where: str) -> str:
    """``node["dtype"]``: a network's training dtype, one of :data:`TRAINING_DTYPES` (the file is refused otherwise).

    Examples
    --------
    >>> dtype_field({"dtype": "float64"}, "result")
    'float64'
    """
    value = field(node, "dtype", str, where)
    if value not in TRAINING_DTYPES:
        raise ModelFileError(f"The model file's {where}.dtype must be 'float32' or 'float64'; got {value[:60]!r}.")
    return value


def str_list(node: dict, name: str, where: str) -> list[str]:
    values = field(node, name, list, where)
    if not all(isinstance(v, str) for v in values):
        raise ModelFileError(f"The model file's {where}.{name} must be a list of strings.")
    return values


# ---- family and link: registry strings ------------------------------------------------------------
def family_string(family: Family) -> str:
    text = family.registry_name
    if type(get_family(text)) is not type(family) or get_family(text) != family:
        raise SpecificationError(f"Cannot save family {family!r}: only the built-in families (see ng.get_family) can be saved.")
    return text


def link_string(link: Link) -> str:
    text = f"power({link.power!r})" if type(link) is Power else link.name
    if type(get_link(text)) is not type(link) or get_link(text) != link:
        raise SpecificationError(f"Cannot save link {link!r}: only the built-in links (see ng.get_link) can be saved.")
    return text


def family_from(text) -> Family:
    try:
        family = get_family(text if isinstance(text, str) else repr(text))
    except (SpecificationError, ValueError, TypeError) as error:
        raise ModelFileError(f"The model file names an unknown family {str(text)[:60]!r}: {error}") from None
    if family.estimates_parameter:  # a fitted model's family holds its estimate, never the request for one
        raise ModelFileError(f"The model file's family {str(text)[:60]!r} has no value for its {family.parameter_name}.")
    return family


def link_from(text) -> Link:
    try:
        return get_link(text if isinstance(text, str) else repr(text))
    except (SpecificationError, ValueError, TypeError) as error:
        raise ModelFileError(f"The model file names an unknown link {str(text)[:60]!r}: {error}") from None


# ---- plain values (formula transform state): JSON scalars, arrays, lists, tuples, dicts ---------------
def value_to_dict(value, store: ArrayStore, key: str):
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"np_scalar": [value.dtype.str, value.item()]}
    if isinstance(value, np.ndarray):
        return {"array": store.put(key, value)}
    if isinstance(value, (list, tuple)):
        items = [value_to_dict(v, store, f"{key}.{i}") for i, v in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    if isinstance(value, dict):
        return {
            "dict": [
                [value_to_dict(k, store, f"{key}.key{i}"), value_to_dict(v, store, f"{key}.{i}")] for i, (k, v) in enumerate(value.items())
            ]
        }
    raise SpecificationError(f"Cannot save {key}: values of type {type(value).__name__} are not supported in model files.")


def value_from_dict(node, store: ArrayStore):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise ModelFileError(f"The model file's spec holds an unexpected value {str(node)[:80]!r}.")
    ((tag, body),) = node.items()
    if tag == "np_scalar" and isinstance(body, list) and len(body) == 2 and isinstance(body[0], str):
        dtype = np.dtype(body[0]) if body[0] in {np.dtype(t).str for t in "?bhilqBHILQefd"} else None
        if dtype is None or not isinstance(body[1], (bool, int, float)):
            raise ModelFileError(f"The model file's spec holds a scalar of unsupported dtype {body[0]!r}.")
        return dtype.type(body[1])
    if tag == "array":
        return store.get(body, kind="biufU", ndim=None)
    if tag in ("list", "tuple") and isinstance(body, list):
        items = [value_from_dict(v, store) for v in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(body, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in body):
        pairs = [(value_from_dict(k, store), value_from_dict(v, store)) for k, v in body]
        if not all(isinstance(k, (str, int, float, bool, tuple, type(None), np.generic)) for k, _ in pairs):
            raise ModelFileError("The model file's spec holds a mapping with keys that are not plain values.")
        return dict(pairs)
    raise ModelFileError(f"The model file's spec holds an unknown entry type {tag!r}.")


# ---- Series and frames --------------------------------------------------------------------------
def series_to_dict(series: pd.Series, store: ArrayStore, key: str) -> dict:
    return {"values": store.put(key, series.to_numpy()), "index": [str(i) for i in series.index], "name": series.name}


def series_from_dict(node: dict, store: ArrayStore, where: str, index: list[str] | None = None) -> pd.Series:
    labels = str_list(node, "index", where)
    if index is not None and labels != list(index):
        raise ModelFileError(f"The model file's {where} is indexed {labels[:5]}, not by the column names {list(index)[:5]}.")
    values = store.get(field(node, "values", str, where), shape=(len(labels),))
    name = field(node, "name", (str, type(None)), where)
    return pd.Series(values, index=pd.Index(labels), name=name)


def frame_to_dict(frame: pd.DataFrame, store: ArrayStore, key: str) -> dict:
    """Any number of numeric (or string) columns: new history columns need no schema change."""
    if not all(isinstance(c, str) for c in frame.columns):
        raise SpecificationError(f"Cannot save {key}: its column names must be strings.")
    return {"columns": list(frame.columns), "values": [store.put(f"{key}.{i}", frame[c].to_numpy()) for i, c in enumerate(frame.columns)]}


def frame_from_dict(node: dict, store: ArrayStore, where: str) -> pd.DataFrame:
    columns = str_list(node, "columns", where)
    keys = str_list(node, "values", where)
    if len(keys) != len(columns):
        raise ModelFileError(f"The model file's {where} has {len(columns)} column names but {len(keys)} columns.")
    values = [store.get(k, kind="biufU") for k in keys]
    if len({len(v) for v in values}) > 1:
        raise ModelFileError(f"The model file's {where} has columns of different lengths.")
    return pd.DataFrame(dict(zip(columns, values, strict=True)), columns=pd.Index(columns))


# ---- FitInfo --------------------------------------------------------------------------------
def status_from_name(name) -> Status:
    """A :class:`Status` by name; the names of format 1 that were renamed are the enum's own aliases."""
    if isinstance(name, str) and name in Status.__members__:
        return Status[name]
    raise ModelFileError(f"The model file holds an unknown fit status {str(name)[:40]!r}.")


def info_to_dict(info: FitInfo, store: ArrayStore, key: str) -> dict:
    return {
        "converged": bool(info.converged),
        "n_iter": int(info.n_iter),
        "status": info.status.name,
        "solver": info.solver,
        "message": info.message,
        "seconds": float(info.seconds),
        "history": frame_to_dict(info.history, store, f"{key}.history"),
        "at_precision": bool(info.at_precision),
    }


def info_from_dict(node: dict, store: ArrayStore) -> FitInfo:
    where = "info"
    converged = field(node, "converged", bool, where)
    status = status_from_name(field(node, "status", str, where))
    # Only CONVERGED and CLOSED_FORM are converged fits; SEPARATION keeps the criterion's verdict.
    if status is not Status.SEPARATION and converged != (status in (Status.CONVERGED, Status.CLOSED_FORM)):
        raise ModelFileError(
            f"The model file's info claims converged={str(converged).lower()} with the status {status.name}: "
            "the file is inconsistent (only CONVERGED and CLOSED_FORM fits are converged)."
        )
    return FitInfo(
        converged=converged,
        n_iter=field(node, "n_iter", int, where),
        status=status,
        solver=field(node, "solver", str, where),
        message=field(node, "message", str, where),
        history=frame_from_dict(field(node, "history", dict, where), store, "info.history"),
        seconds=float(field(node, "seconds", (int, float), where)),
        at_precision=field(node, "at_precision", bool, where)
        if "at_precision" in node
        else at_precision_before_field(node["status"], node["message"]),
    )


# ---- Design ---------------------------------------------------------------------------------
_OFFSET_FIELDS = {
    "offset_column": (str, type(None)),
    "exposure_column": (str, type(None)),
    "offset_array": bool,
    "exposure_array": bool,
    "weights_column": (str, type(None)),
    "freq_weights_column": (str, type(None)),
}


def design_to_dict(design: Design, store: ArrayStore, key: str, include_data: bool) -> dict:
    node: dict[str, Any] = {
        "column_names": list(design.column_names),
        "response_name": design.response_name,
        "formula": design.formula,
        "has_intercept": bool(design.has_intercept),
        "offset_source": {name: getattr(design.offset_source, name) for name in _OFFSET_FIELDS},
        "spec": None,
        "data": None,
    }
    if design.spec is not None:
        spec_node = formula_state.encode_model_spec(design.spec, lambda v, p: value_to_dict(v, store, p), f"{key}.spec")
        rebuilt = formula_state.decode_model_spec(spec_node, lambda n: value_from_dict(n, store))
        formula_state.check_round_trip(design.spec, rebuilt)
        if tuple(rebuilt.column_names) != tuple(design.column_names):
            raise SpecificationError("Cannot save this model: its formula's columns would not be rebuilt exactly from a model file.")
        node["spec"] = spec_node
    if include_data:
        data = {name: None if getattr(design, name) is None else store.put(f"{key}.{name}", getattr(design, name)) for name in _DATA_FIELDS}
        data["row_labels"] = _row_labels_to_dict(design.row_labels, store, f"{key}.row_labels")
        node["data"] = data
    return node


def _row_labels_to_dict(labels, store: ArrayStore, key: str):
    labels = np.asarray(labels)
    if labels.dtype.kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels.flat):
        labels = labels.astype(np.int64)
    try:
        return store.put(key, labels)
    except SpecificationError:
        return {"default_labels": len(labels)}  # e.g. mixed-type labels: restored as 0..n-1


def design_from_dict(node: dict, store: ArrayStore) -> Design:
    where = "design"
    names = tuple(str_list(node, "column_names", where))
    source_node = field(node, "offset_source", dict, where)
    source = OffsetSource(**{name: field(source_node, name, types, "design.offset_source") for name, types in _OFFSET_FIELDS.items()})
    spec_node = field(node, "spec", (dict, type(None)), where)
    spec = None
    if spec_node is not None:
        spec = formula_state.decode_model_spec(spec_node, lambda n: value_from_dict(n, store))
        if tuple(spec.column_names) != names:
            raise ModelFileError("The model file's formula spec does not reproduce its stored column names.")
    data = field(node, "data", (dict, type(None)), where)
    arrays = _design_data(data, store, len(names))
    return Design(
        column_names=names,
        response_name=field(node, "response_name", str, where),
        formula=field(node, "formula", str, where),
        offset_source=source,
        spec=spec,
        has_intercept=field(node, "has_intercept", bool, where),
        **arrays,
    )


def _design_data(data: dict | None, store: ArrayStore, n_coef: int) -> dict:
    if data is None:
        empty = np.empty(0)
        return {"y": empty, "X": np.empty((0, n_coef)), "weights": empty, "freq_weights": None, "offset": empty, "row_labels": np.arange(0)}
    X = store.get(field(data, "X", str, "design.data"), ndim=2)
    if X.shape[1] != n_coef:
        raise ModelFileError(f"The model file's design matrix has {X.shape[1]} columns but {n_coef} column names.")
    n = X.shape[0]
    out = {"X": np.ascontiguousarray(X, dtype=np.float64)}
    for name in ("y", "weights", "offset", "freq_weights"):
        key = field(data, name, (str, type(None)) if name == "freq_weights" else str, "design.data")
        out[name] = None if key is None else store.get(key, shape=(n,)).astype(np.float64)
    labels = data.get("row_labels")
    if isinstance(labels, dict) and isinstance(labels.get("default_labels"), int) and labels["default_labels"] == n:
        out["row_labels"] = np.arange(n)
    else:
        values = store.get(labels, kind="biufUSMm", shape=(n,))
        out["row_labels"] = np.array(values.tolist(), dtype=object) if values.dtype.kind == "U" else values
    return out


# ---- network parts ------------------------------------------------------------------------------
def architecture_to_dict(arch: Architecture) -> dict:
    custom = [a for a in arch.activations if not isinstance(a, str)]
    if custom:
        raise SpecificationError(
            f"Cannot save a network with a custom activation function ({custom[0]!r}): model files store "
            "activations by name, so that loading runs no code. Refit with a built-in activation name."
        )
    return {"hidden": [int(h) for h in arch.hidden], "activations": list(arch.activations)}


def architecture_from_dict(node: dict) -> Architecture:
    hidden = field(node, "hidden", list, "architecture")
    activations = str_list(node, "activations", "architecture")
    if not all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 1 << 20 for h in hidden):
        raise ModelFileError(f"The model file's architecture.hidden must be a list of widths ≥ 1; got {str(hidden)[:60]}.")
    try:
        return Architecture(hidden=tuple(hidden), activation=tuple(activations))
    except SpecificationError as error:
        raise ModelFileError(f"The model file's architecture is invalid: {error}") from None


def scaling_to_dict(scaling: InputScaling, store: ArrayStore, key: str) -> dict:
    return {
        "columns": store.put(f"{key}.columns", np.asarray(scaling.columns, dtype=np.int64)),
        "names": list(scaling.names),
        "mean": store.put(f"{key}.mean", scaling.mean),
        "scale": store.put(f"{key}.scale", scaling.scale),
    }


def scaling_from_dict(node: dict, store: ArrayStore, n_coef: int) -> InputScaling:
    names = tuple(str_list(node, "names", "scaling"))
    shape = (len(names),)
    columns = store.get(field(node, "columns", str, "scaling"), kind="iu", shape=shape)
    if len(columns) and (columns.min() < 0 or columns.max() >= n_coef):
        raise ModelFileError(f"The model file's scaling.columns must index the {n_coef} design columns.")
    mean = store.get(field(node, "mean", str, "scaling"), shape=shape)
    scale = store.get(field(node, "scale", str, "scaling"), shape=shape)
    return InputScaling(columns=columns.astype(np.int64), names=names, mean=mean, scale=scale)


def params_to_dict(params, store: ArrayStore, key: str) -> list:
    return [
        {
            "weight": store.put(f"{key}.{i}.weight", np.asarray(layer.weight)),
            "bias": None if layer.bias is None else store.put(f"{key}.{i}.bias", np.asarray(layer.bias)),
        }
        for i, layer in enumerate(params)
    ]


def params_from_dict(
    nodes: list, store: ArrayStore, arch: Architecture, n_in: int, has_intercept: bool, n_out: int = 1
) -> tuple[Dense, ...]:
    """The layers, each checked to have the shapes of ``arch`` (``n_out`` outputs: a multinomial network's K−1)."""
    widths = (n_in, *arch.hidden, n_out)
    if not isinstance(nodes, list) or len(nodes) != len(widths) - 1:
        raise ModelFileError(f"The model file's params must hold {len(widths) - 1} layers for its architecture.")
    layers = []
    for i, node in enumerate(nodes):
        where = f"params.{i}"
        weight = store.get(field(node, "weight", str, where), ndim=2, shape=(widths[i], widths[i + 1]))
        bias_key = field(node, "bias", (str, type(None)), where)
        output_without_bias = i == len(nodes) - 1 and has_intercept and bias_key is None
        if bias_key is None and not output_without_bias:
            raise ModelFileError(f"The model file's {where} lacks its bias.")
        bias = None if bias_key is None else store.get(bias_key, shape=(widths[i + 1],))
        layers.append(Dense(weight.astype(np.float64), None if bias is None else bias.astype(np.float64)))
    return tuple(layers)


_CONTROL_FIELDS = {
    "solver": str,
    "epochs": int,
    "batch_size": int,
    "l2": (int, float),
    "penalize_output": bool,
    "momentum": (int, float),
    "early_stopping": bool,
    "validation_fraction": (int, float),
    "patience": int,
    "tol": (int, float),
    "memory_size": int,
}


def control_to_dict(control: GradientControl) -> dict:
    node: dict[str, Any] = {name: getattr(control, name) for name in _CONTROL_FIELDS}
    rate = control.learning_rate
    node["learning_rate"] = {"unsaved_callable": getattr(rate, "__name__", "schedule")} if callable(rate) else float(rate)
    return node


def _unsaved_schedule(epoch: int) -> float:
    """Stand-in for a learning-rate schedule that was a Python callable (not saved)."""
    raise ModelFileError("The learning-rate schedule of this model was a Python callable and is not saved in model files.")


def control_from_dict(node: dict) -> GradientControl:
    values = {name: field(node, name, types, "control") for name, types in _CONTROL_FIELDS.items()}
    rate = node.get("learning_rate") if isinstance(node, dict) else None
    if isinstance(rate, dict) and set(rate) == {"unsaved_callable"}:
        values["learning_rate"] = _unsaved_schedule
    elif isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate):
        values["learning_rate"] = float(rate)
    else:
        raise ModelFileError(f"The model file's control.learning_rate must be a number; got {str(rate)[:40]!r}.")
    return GradientControl(**values)


# ---- multinomial fits: the response levels (the first is the reference) ------------------------------
def levels_from_dict(node: dict) -> tuple[str, ...]:
    levels = str_list(node, "levels", "result")
    if len(levels) < 2 or len(set(levels)) != len(levels):
        raise ModelFileError(f"The model file's result.levels must be at least two distinct levels; got {str(levels)[:60]}.")
    return tuple(levels)


# ---- estimated family parameters (θ of the negative binomial, a Tweedie power) --------------------
FAMILY_PARAMS_COLUMNS = ("estimate", "std_error")


def family_params_frame(estimates) -> pd.DataFrame:
    """``fit.family_params``: one row per estimated parameter (``theta``, ``power``), columns ``estimate``, ``std_error``.

    ``estimates`` holds objects with ``name``, ``estimate`` and ``std_error`` (none: an empty frame).

    Examples
    --------
    >>> family_params_frame([]).shape
    (0, 2)
    """
    rows = {e.name: [float(e.estimate), float(e.std_error)] for e in estimates}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(FAMILY_PARAMS_COLUMNS), dtype=float)
    frame.index.name = "parameter"
    return frame


def family_params_to_dict(frame: pd.DataFrame) -> list:
    estimates, errors = frame["estimate"].to_numpy(dtype=float), frame["std_error"].to_numpy(dtype=float)
    return [[str(name), float(e), float(s)] for name, e, s in zip(frame.index, estimates, errors, strict=True)]


def family_params_from_dict(node, family: Family) -> pd.DataFrame:
    """The stored estimates (a file written before they were saved has none), each checked to be the family's parameter."""
    if node is None:
        return family_params_frame([])
    if not isinstance(node, list) or len(node) > 1:
        raise ModelFileError("The model file's family_params must be a list of at most one [name, estimate, std_error].")
    names = {"theta", str(family.parameter_name)} if family.parameter_estimable else set()
    for entry in node:
        valid = isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
        numbers = valid and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry[1:])
        if not numbers or entry[0] not in names or not math.isfinite(entry[1]):
            raise ModelFileError(
                f"The model file's family_params entry {str(entry)[:60]!r} is not an estimate of the {family} family's parameter."
            )
        if not math.isclose(entry[1], _family_value(family, entry[0]), rel_tol=1e-12):
            raise ModelFileError(f"The model file's family_params {entry[0]} ({entry[1]!r}) is not its family's ({family}).")
    return family_params_frame([ParameterEstimate(*entry) for entry in node])


def _family_value(family: Family, name: str) -> float:
    """The family's own value of an estimated parameter (θ = 1/α for the negative binomial)."""
    value = getattr(family, name, None)
    return float(value) if isinstance(value, (int, float)) else math.nan
