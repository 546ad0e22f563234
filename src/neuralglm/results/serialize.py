"""Save and load fitted models: NumPy arrays plus a JSON spec in one ``.npz`` file, no pickle.

The file is a zip archive written by :func:`numpy.savez`. Every array (coefficients, network
weights, input scaling, training data, history columns) is a ``.npy`` entry; the entry
``spec.json`` (a ``uint8`` array) holds everything else as JSON: the format name and version,
the neuralglm version, the result's fields (formula, family and link as registry strings,
statistics, :class:`~neuralglm.fit.info.FitInfo`, architecture, design metadata) and the
formulaic model spec (formula, term structure, factor levels, stateful-transform state), from
which ``predict`` rebuilds the design matrix of new data.

Loading reads arrays with ``allow_pickle=False``, rebuilds objects only from an allowlist of
neuralglm classes, families and links by their registry strings, and never evaluates text from
the file. SHA-256 checksums of every array and of the spec detect truncated, corrupted or
edited files; they are not a signature (anyone who edits a file can recompute them), so load
models only from sources you trust. ``predict`` on new data evaluates the formula's terms (as
formulaic does for any model), so :func:`load` refuses formulas whose terms reach private
attributes, file input/output or builtins such as ``eval`` and ``open``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data.design import Design, OffsetSource
from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link, Power
from neuralglm.family.registry import get_family, get_link
from neuralglm.fit.gradient import GradientControl
from neuralglm.fit.info import FitInfo, Status
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import InputScaling
from neuralglm.model.params import Dense
from neuralglm.results import formula_state
from neuralglm.results.network import NetworkResult
from neuralglm.results.result import FitResult

FORMAT = "neuralglm-model"
FORMAT_VERSION = 1
SPEC_ENTRY = "spec.json"
_NUMERIC_KINDS = "biuf"
# Data-sized arrays that include_data=False leaves out (predicting new data does not need them).
_DATA_FIELDS = ("y", "X", "weights", "freq_weights", "offset", "row_labels")

__all__ = ["FORMAT_VERSION", "load", "save"]


# ---- results without training data -----------------------------------------------------------
def _no_data(what: str) -> ModelFileError:
    return ModelFileError(
        f"{what} needs the training data, which this model was saved without (include_data=False). "
        "Pass new data (predict(new_data)), or save the model with include_data=True."
    )


class _WithoutTrainingData:
    """Methods of a result loaded without training data: those that need it raise."""

    def predict(self, new_data=None, type: str = "response", *, offset=None, exposure=None) -> pd.Series:
        if new_data is None:
            raise _no_data("predict() without new data")
        return super().predict(new_data, type, offset=offset, exposure=exposure)  # type: ignore[misc]

    def residuals(self, type: str = "deviance") -> pd.Series:
        raise _no_data("residuals()")


class _FitResultWithoutData(_WithoutTrainingData, FitResult):
    """A :class:`FitResult` loaded from a file saved with ``include_data=False``."""


class _NetworkResultWithoutData(_WithoutTrainingData, NetworkResult):
    """A :class:`NetworkResult` loaded from a file saved with ``include_data=False``."""

    def features(self, new_data=None) -> pd.DataFrame:
        if new_data is None:
            raise _no_data("features() without new data")
        return super().features(new_data)

    def output_glm(self, *, cov_type: str | None = None, dispersion=None):
        raise _no_data("output_glm()")


_DATACLASSES: dict[str, type] = {
    cls.__name__: cls for cls in (FitResult, NetworkResult, Design, OffsetSource, FitInfo, Architecture, InputScaling, GradientControl)
}


def _unsaved_schedule(epoch: int) -> float:
    """Stand-in for a learning-rate schedule that was a Python callable (not saved)."""
    raise ModelFileError("The learning-rate schedule of this model was a Python callable and is not saved in model files.")


# ---- family and link as registry strings -----------------------------------------------------
def _family_string(family: Family) -> str:
    text = family.registry_name
    if type(get_family(text)) is not type(family) or get_family(text) != family:
        raise SpecificationError(f"Cannot save family {family!r}: only the built-in families (see ng.get_family) can be saved.")
    return text


def _link_string(link: Link) -> str:
    text = f"power({link.power!r})" if type(link) is Power else link.name
    if type(get_link(text)) is not type(link) or get_link(text) != link:
        raise SpecificationError(f"Cannot save link {link!r}: only the built-in links (see ng.get_link) can be saved.")
    return text


# ---- generic encoding: JSON scalars, or one-key objects tagging everything else ----------------
class _Writer:
    """Encodes values to JSON-ready trees, collecting arrays under unique keys."""

    def __init__(self, include_data: bool):
        self.include_data = include_data
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, values: np.ndarray, path: str) -> dict:
        values = np.asarray(values)
        if values.dtype.kind == "O":
            if not all(isinstance(v, str) for v in values.flat):
                raise SpecificationError(f"Cannot save {path}: an array of Python objects; model files store numbers and strings.")
            self.arrays[path] = np.asarray(values, dtype=str)
            return {"str_array": path}
        if values.dtype.kind not in _NUMERIC_KINDS + "USMm":
            raise SpecificationError(f"Cannot save {path}: arrays of dtype {values.dtype} are not supported.")
        self.arrays[path] = np.ascontiguousarray(values)
        return {"array": path}

    def encode(self, value, path: str):
        if value is None or (isinstance(value, (bool, int, float, str)) and type(value) in (bool, int, float, str)):
            return value
        if isinstance(value, np.generic) and value.dtype.kind in _NUMERIC_KINDS:
            return {"np_scalar": [value.dtype.str, value.item()]}
        if type(value) is Status:
            return {"status": value.name}
        if isinstance(value, Family):
            return {"family": _family_string(value)}
        if isinstance(value, Link):
            return {"link": _link_string(value)}
        if isinstance(value, Dense):
            return {"dense": [self.encode(value.weight, f"{path}.weight"), self.encode(value.bias, f"{path}.bias")]}
        if isinstance(value, pd.Index):
            if not isinstance(value.dtype, np.dtype) and str(value.dtype) != "str":
                raise SpecificationError(f"Cannot save {path}: an index of dtype {value.dtype} is not supported in model files.")
            return {"index": [self.array(value.to_numpy(), path), str(value.dtype)]}
        if isinstance(value, np.ndarray) or type(value).__module__.startswith("jax"):
            return self.array(np.asarray(value), path)
        if isinstance(value, pd.Series):
            return {
                "series": {
                    "values": self.array(value.to_numpy(), path),
                    "index": self.encode(value.index, f"{path}.index"),
                    "name": value.name,
                }
            }
        if isinstance(value, pd.DataFrame):
            return self._frame(value, path)
        if isinstance(value, (list, tuple)):
            items = [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
            return {"tuple" if isinstance(value, tuple) else "list": items}
        if isinstance(value, dict):
            return {"dict": [[self.encode(k, f"{path}.key{i}"), self.encode(v, f"{path}.{i}")] for i, (k, v) in enumerate(value.items())]}
        if type(value).__name__ == "ModelSpec" and type(value).__module__.startswith("formulaic"):
            return {"model_spec": formula_state.encode_model_spec(value, self.encode, path)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._dataclass(value, path)
        raise SpecificationError(f"Cannot save {path}: values of type {type(value).__name__} are not supported in model files.")

    def _frame(self, frame: pd.DataFrame, path: str) -> dict:
        if not all(isinstance(c, str) for c in frame.columns):
            raise SpecificationError(f"Cannot save {path}: its column names must be strings.")
        default = isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1
        dtypes = set(frame.dtypes)
        if len(dtypes) == 1 and next(iter(dtypes)).kind in _NUMERIC_KINDS and frame.shape[1] > 0:
            body: dict[str, Any] = {"values": self.array(frame.to_numpy(), path)}
        else:
            body = {"columns_values": [self.array(frame[c].to_numpy(), f"{path}.{i}") for i, c in enumerate(frame.columns)]}
        body["columns"] = list(frame.columns)
        body["n_rows"] = len(frame)
        body["index"] = None if default else self.encode(frame.index, f"{path}.index")
        return {"frame": body}

    def _dataclass(self, value, path: str) -> dict:
        cls = next((c for c in type(value).__mro__ if _DATACLASSES.get(c.__name__) is c), None)
        if cls is None:
            raise SpecificationError(f"Cannot save {path}: {type(value).__name__} is not a neuralglm class that model files know.")
        if isinstance(value, Architecture):
            custom = [a for a in value.activations if not isinstance(a, str)]
            if custom:
                raise SpecificationError(
                    f"Cannot save a network with a custom activation function ({custom[0]!r}): model files store "
                    "activations by name, so that loading runs no code. Refit with a built-in activation name."
                )
        fields = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if isinstance(value, Design) and field.name in _DATA_FIELDS and not self.include_data:
                item = None if item is None else np.empty((0, *np.shape(item)[1:]), dtype=np.asarray(item).dtype)
            if isinstance(value, Design) and field.name == "row_labels":
                fields[field.name] = self._row_labels(item, f"{path}.{field.name}")
                continue
            if field.name in ("fitted_eta", "fitted_mu") and not self.include_data:
                item = np.empty(0)
            if isinstance(value, GradientControl) and callable(item):
                fields[field.name] = {"unsaved_callable": getattr(item, "__name__", "schedule")}
                continue
            fields[field.name] = self.encode(item, f"{path}.{field.name}")
        return {"dataclass": {"class": cls.__name__, "fields": fields}}

    def _row_labels(self, labels: np.ndarray, path: str):
        labels = np.asarray(labels)
        if labels.dtype.kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels.flat):
            labels = labels.astype(np.int64)
        try:
            return self.encode(labels, path)
        except SpecificationError:
            return {"default_labels": len(labels)}  # e.g. mixed-type labels: restored as 0..n-1


class _Reader:
    """Decodes the trees written by :class:`_Writer` (only the tags it writes; anything else is refused)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ModelFileError(f"The model file refers to an array entry {key!r} that it does not contain: the file is incomplete.")
        return self.arrays[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise ModelFileError(f"The model file's spec holds an unexpected value {str(node)[:80]!r}.")
        ((tag, body),) = node.items()
        if tag == "array":
            return self.array(body)
        if tag == "str_array":
            return np.array(self.array(body).tolist(), dtype=object)
        if tag == "index":
            values = self.decode(body[0])
            return pd.Index(values, dtype=body[1] if body[1] == "str" else np.dtype(body[1]))
        if tag == "np_scalar":
            dtype = np.dtype(body[0])
            if dtype.kind not in _NUMERIC_KINDS:
                raise ModelFileError(f"The model file's spec holds a scalar of unsupported dtype {body[0]!r}.")
            return dtype.type(body[1])
        if tag == "status":
            return Status[body]
        if tag == "family":
            return get_family(body)
        if tag == "link":
            return get_link(body)
        if tag == "dense":
            return Dense(self.decode(body[0]), self.decode(body[1]))
        if tag == "tuple":
            return tuple(self.decode(v) for v in body)
        if tag == "list":
            return [self.decode(v) for v in body]
        if tag == "dict":
            return {self.decode(k): self.decode(v) for k, v in body}
        if tag == "series":
            return pd.Series(self.decode(body["values"]), index=self.decode(body["index"]), name=body["name"])
        if tag == "frame":
            return self._frame(body)
        if tag == "model_spec":
            return formula_state.decode_model_spec(body, self.decode)
        if tag == "dataclass":
            return self._dataclass(body)
        if tag == "unsaved_callable":
            return _unsaved_schedule
        if tag == "default_labels":
            return np.arange(body)
        raise ModelFileError(f"The model file's spec holds an unknown entry type {tag!r}.")

    def _frame(self, body: dict) -> pd.DataFrame:
        index = None if body["index"] is None else self.decode(body["index"])
        if "values" in body:
            values = self.decode(body["values"])
            return pd.DataFrame(values.reshape(body["n_rows"], len(body["columns"])), index=index, columns=pd.Index(body["columns"]))
        columns = {name: self.decode(node) for name, node in zip(body["columns"], body["columns_values"], strict=True)}
        return pd.DataFrame(columns, index=index, columns=pd.Index(body["columns"]))

    def _dataclass(self, body: dict):
        cls = _DATACLASSES.get(body["class"])
        if cls is None:
            raise ModelFileError(f"The model file holds a {body['class']!r} object, which this neuralglm cannot rebuild.")
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(body["fields"]) - set(known))
        if unknown:
            raise ModelFileError(
                f"The model file's {cls.__name__} has fields {unknown} unknown to this neuralglm: upgrade neuralglm to load it."
            )
        missing = [
            name
            for name, f in known.items()
            if name not in body["fields"] and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ModelFileError(f"The model file's {cls.__name__} lacks the fields {missing}, which this neuralglm needs.")
        return cls(**{name: self.decode(node) for name, node in body["fields"].items()})


# ---- checksums and the archive ----------------------------------------------------------------
def _array_digest(values: np.ndarray) -> str:
    digest = hashlib.sha256(f"{values.dtype.str}|{values.shape}|".encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _spec_digest(spec: dict) -> str:
    body = {k: v for k, v in spec.items() if k != "spec_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()).hexdigest()


def _write_file(arrays: dict[str, np.ndarray], spec: dict, path) -> None:
    """Write ``arrays`` and ``spec`` (checksums filled in) as one ``.npz`` archive at ``path``."""
    spec = {**spec, "arrays": {key: _array_digest(values) for key, values in arrays.items()}}
    spec["spec_sha256"] = _spec_digest(spec)
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=True, ensure_ascii=False)
    entries = {SPEC_ENTRY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    if hasattr(path, "write"):
        np.savez(path, **entries)  # type: ignore[arg-type]
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".neuralglm-", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **entries)  # type: ignore[arg-type]
        os.replace(temporary, path)  # a crash mid-write never leaves a half-written model behind
    except BaseException:
        os.unlink(temporary)
        raise


def _read_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The verified spec and arrays of a model file (raises :class:`ModelFileError`)."""
    name = repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else "The model file"
    corrupt = (zipfile.BadZipFile, ValueError, EOFError, OSError, UnicodeDecodeError, KeyError)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except corrupt as error:
        raise ModelFileError(
            f"{name} is not a readable neuralglm model file (truncated, corrupt, or not an .npz archive): {error}"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{name} is a single NumPy array, not a neuralglm model file: save models with fit.save(path).")
    with archive:
        if SPEC_ENTRY not in archive.files:
            raise ModelFileError(f"{name} is not a neuralglm model file (it has no {SPEC_ENTRY!r} entry): save models with fit.save(path).")
        try:
            spec = json.loads(archive[SPEC_ENTRY].tobytes().decode("utf-8"))
        except corrupt as error:
            raise ModelFileError(f"{name} is corrupt: its {SPEC_ENTRY!r} entry cannot be read ({error}). Save the model again.") from error
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise ModelFileError(f"{name} is not a neuralglm model file (its {SPEC_ENTRY!r} does not name the format {FORMAT!r}).")
        version = spec.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelFileError(f"{name} has an invalid format_version {version!r}.")
        if version > FORMAT_VERSION:
            from neuralglm import __version__

            raise ModelFileError(
                f"{name} was written by neuralglm {spec.get('neuralglm_version', '?')} in model-file format version {version}, but this "
                f"neuralglm ({__version__}) reads format versions up to {FORMAT_VERSION}: upgrade neuralglm (pip install -U neuralglm) to load it."
            )
        if spec.get("spec_sha256") != _spec_digest(spec) or not isinstance(spec.get("arrays"), dict):
            raise ModelFileError(f"{name} is corrupt or was edited after saving: the checksum of its {SPEC_ENTRY!r} does not match.")
        stored = set(archive.files) - {SPEC_ENTRY}
        missing, extra = sorted(set(spec["arrays"]) - stored), sorted(stored - set(spec["arrays"]))
        if missing or extra:
            raise ModelFileError(f"{name} is incomplete or was modified: missing array entries {missing}, unexpected entries {extra}.")
        arrays = {}
        for key, expected in spec["arrays"].items():
            try:
                values = archive[key]
            except ValueError as error:
                if "pickle" in str(error):
                    raise ModelFileError(
                        f"{name}: entry {key!r} holds pickled Python objects. neuralglm model files never do, and pickles are not loaded (they can run code)."
                    ) from None
                raise ModelFileError(f"{name} is corrupt: entry {key!r} cannot be read ({error}).") from error
            except corrupt as error:
                raise ModelFileError(f"{name} is corrupt (truncated or damaged): entry {key!r} cannot be read ({error}).") from error
            if _array_digest(values) != expected:
                raise ModelFileError(f"{name} is corrupt or was modified after saving: the checksum of array {key!r} does not match.")
            arrays[key] = values
    return spec, arrays


# ---- public API ------------------------------------------------------------------------------
def save(result: FitResult | NetworkResult, path, *, include_data: bool = True) -> None:
    """Save a fitted model to one ``.npz`` file: arrays plus a JSON spec, no pickle.

    Parameters
    ----------
    result : a :class:`~neuralglm.FitResult` or :class:`~neuralglm.NetworkResult`.
    path : file path (written as given, atomically; ``.npz`` is the usual suffix) or a binary file object.
    include_data : also store the training data (``y``, ``X``, weights, offset, row labels) and
        fitted values, so that the loaded model supports ``predict()`` without new data,
        ``residuals()`` and ``output_glm()``. With ``False`` only what predicting new data and
        the summary need is stored.

    Raises
    ------
    SpecificationError
        For what a model file cannot hold without running code on load: a custom activation
        function, a family or link outside the registry, non-treatment contrasts, factor
        levels that are not strings or numbers, or transform state that is not plain data.

    Examples
    --------
    >>> import os, tempfile
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + age", df, family="poisson", exposure="holders")
    >>> path = os.path.join(tempfile.mkdtemp(), "claims.npz")
    >>> save(fit, path)
    >>> bool((ng.load(path).predict(df) == fit.predict(df)).all())
    True
    """
    if not isinstance(result, (FitResult, NetworkResult)):
        raise SpecificationError(f"save() takes a FitResult or NetworkResult; got {type(result).__name__}.")
    from neuralglm import __version__

    writer = _Writer(include_data and not isinstance(result, _WithoutTrainingData))
    tree = writer._dataclass(result, "result")
    spec_object = result.design.spec
    if spec_object is not None:
        rebuilt = _Reader(writer.arrays).decode(tree["dataclass"]["fields"]["design"]["dataclass"]["fields"]["spec"])
        formula_state.check_round_trip(spec_object, rebuilt)
        if tuple(rebuilt.column_names) != tuple(result.design.column_names):
            raise SpecificationError("Cannot save this model: its formula's columns would not be rebuilt exactly from a model file.")
    spec = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neuralglm_version": __version__,
        "kind": tree["dataclass"]["class"],
        "include_data": writer.include_data,
        "result": tree,
    }
    _write_file(writer.arrays, spec, path)


def load(path) -> FitResult | NetworkResult:
    """Load a model written by :func:`save` (or ``fit.save``); never unpickles or runs code from the file.

    Parameters
    ----------
    path : file path or binary file object.

    Returns
    -------
    FitResult or NetworkResult
        Predicting with it gives bit-for-bit the original model's predictions. A model saved
        with ``include_data=False`` raises :class:`~neuralglm.errors.ModelFileError` from the
        methods that need the training data.

    Raises
    ------
    ModelFileError
        The file is not a neuralglm model, is truncated or corrupt, was edited (checksum
        mismatch), lacks entries, holds pickled objects, or has a newer format version.

    Examples
    --------
    >>> import io
    >>> import neuralglm as ng
    >>> fit = ng.glm("claims ~ age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    >>> buffer = io.BytesIO()
    >>> fit.save(buffer)
    >>> loaded = load(io.BytesIO(buffer.getvalue()))
    >>> loaded.coef.equals(fit.coef), loaded.family == fit.family
    (True, True)
    """
    spec, arrays = _read_file(path)
    try:
        tree = spec["result"]
        if spec.get("kind") not in ("FitResult", "NetworkResult") or tree["dataclass"]["class"] != spec["kind"]:
            raise ModelFileError(f"The model file holds a {spec.get('kind')!r}, which this neuralglm cannot load.")
        result: Any = _Reader(arrays).decode(tree)
    except ModelFileError:
        raise
    except Exception as error:  # anything the file's content breaks is a problem of the file (cause chained)
        if isinstance(error, SpecificationError):
            raise ModelFileError(f"The model file holds an invalid value: {error}") from error
        raise ModelFileError(f"The model file's spec is malformed ({type(error).__name__}: {error}).") from error
    design = result.design
    if design.spec is not None and tuple(design.spec.column_names) != tuple(design.column_names):
        raise ModelFileError("The model file's formula spec does not reproduce its stored column names.")
    if not spec["include_data"]:
        without: Callable = _FitResultWithoutData if isinstance(result, FitResult) else _NetworkResultWithoutData
        result = without(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})
    return result


def _buffer_bytes(result, include_data: bool = True) -> bytes:
    """The bytes of a saved model (tests)."""
    buffer = io.BytesIO()
    save(result, buffer, include_data=include_data)
    return buffer.getvalue()
