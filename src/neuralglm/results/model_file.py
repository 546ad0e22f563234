"""The model-file container: NumPy arrays plus a JSON spec in one ``.npz`` archive, with checksums.

This module knows nothing about fitted models: it writes and reads named arrays and a JSON
spec, and guards the reading (no pickles, bounded sizes and nesting, SHA-256 checksums).
What the spec means is defined by the ``to_dict``/``from_dict`` methods of the result parts
(:mod:`neuralglm.results.parts`) and dispatched by :func:`neuralglm.results.serialize.load`.

The checksums detect truncated, corrupted or edited files; they are not a signature (anyone
who edits a file can recompute them), which is why the reader checks every value it rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import unicodedata
import zipfile

import numpy as np

from neuralglm.errors import ModelFileError, SpecificationError

FORMAT = "neuralglm-model"
FORMAT_VERSION = 2
SPEC_ENTRY = "spec.json"
# The spec's entry holding the summary text of the model as loaded, written at save time, so that
# `neuralglm summary` prints it with NumPy alone (no JAX, pandas or SciPy to import).
SUMMARY_KEY = "summary"
_MAX_SUMMARY_CHARACTERS = 1_000_000  # a summary of 10,000 coefficients is ~1 MB
MAX_SPEC_DEPTH = 64  # the deepest spec written is ~12 levels; a deeper one is not ours
_STORABLE_KINDS = "biufUSMm"
# Deflate compresses at most ~1032:1; an entry claiming more uncompressed bytes is a zip bomb.
_MAX_DEFLATE_RATIO = 1100


class ArrayStore:
    """Arrays collected while writing, under unique keys; and checked access while reading.

    Examples
    --------
    >>> store = ArrayStore()
    >>> store.put("coef", np.array([1.0, 2.0]))
    'coef'
    >>> store.get("coef", kind="f", shape=(2,)).tolist()
    [1.0, 2.0]
    """

    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self.arrays: dict[str, np.ndarray] = {} if arrays is None else arrays

    def put(self, key: str, values) -> str:
        """Store ``values`` (numbers or strings) under ``key``; object arrays of strings become string arrays."""
        values = np.asarray(values)
        if values.dtype.kind == "O":
            if not all(isinstance(v, str) for v in values.flat):
                raise SpecificationError(f"Cannot save {key}: an array of Python objects; model files store numbers and strings.")
            values = np.asarray(values, dtype=str)
        if values.dtype.kind not in _STORABLE_KINDS:
            raise SpecificationError(f"Cannot save {key}: arrays of dtype {values.dtype} are not supported.")
        if key in self.arrays:
            raise SpecificationError(f"Cannot save {key}: two arrays share that name.")
        self.arrays[key] = np.ascontiguousarray(values)
        return key

    def get(self, key, *, kind: str = "f", ndim: int | None = 1, shape: tuple | None = None) -> np.ndarray:
        """The array ``key``, checked: dtype kind among ``kind`` (``"f"`` also accepts integers), ``ndim`` and ``shape``.

        Raises :class:`ModelFileError` naming the entry for a missing key, a wrong dtype or shape.
        """
        if not isinstance(key, str) or key not in self.arrays:
            raise ModelFileError(f"The model file refers to an array entry {key!r} that it does not contain: the file is incomplete.")
        values = self.arrays[key]
        accepted = kind + ("iu" if "f" in kind else "")
        if values.dtype.kind not in accepted:
            raise ModelFileError(f"The model file's array {key!r} has dtype {values.dtype}, where {_KIND_NAMES.get(kind, kind)} belong.")
        if (ndim is not None and values.ndim != ndim) or (shape is not None and values.shape != tuple(shape)):
            wanted = shape if shape is not None else f"{ndim} dimension(s)"
            raise ModelFileError(
                f"The model file's array {key!r} has shape {values.shape}, where {wanted} belongs: the file is inconsistent."
            )
        return values.astype(np.float64) if kind == "f" and values.dtype.kind in "iu" else values


_KIND_NAMES = {"f": "floating-point numbers", "b": "booleans", "i": "integers", "iu": "integers", "U": "strings"}


# ---- checksums --------------------------------------------------------------------------------
def array_digest(values: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{values.dtype.str}|{values.shape}|".encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def spec_digest(spec: dict) -> str:
    """SHA-256 of the canonical JSON of ``spec`` without its own ``spec_sha256``."""
    body = {k: v for k, v in spec.items() if k != "spec_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()).hexdigest()


# ---- writing ----------------------------------------------------------------------------------
def write_file(arrays: dict[str, np.ndarray], spec: dict, path) -> None:
    """Write ``arrays`` and ``spec`` (checksums filled in) as one ``.npz`` archive at ``path`` (atomically) or to a file object."""
    spec = {**spec, "arrays": {key: array_digest(values) for key, values in arrays.items()}}
    spec["spec_sha256"] = spec_digest(spec)
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=True, ensure_ascii=False)
    entries = {SPEC_ENTRY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    if hasattr(path, "write"):
        np.savez(path, **entries)  # type: ignore[arg-type]
        return
    if not isinstance(path, (str, os.PathLike)):
        raise SpecificationError(f"The 'path' argument of save must be a file path or a binary file object. Got {path!r} instead.")
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


# ---- reading ----------------------------------------------------------------------------------
def _depth(value) -> int:
    """Nesting depth of a JSON value, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_SPEC_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One ``.npy`` entry, its header checked against the entry's size before anything is allocated."""
    entry = info.filename
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (
        info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1)
    ):
        raise ModelFileError(f"{name} is corrupt: entry {entry!r} is compressed in a way neuralglm never writes.")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ModelFileError(f"{name} is corrupt: entry {entry!r} has an unsupported .npy version {version}.")
        header_size = handle.tell()
    if dtype.hasobject:
        raise ModelFileError(
            f"{name}: entry {entry!r} holds pickled Python objects. neuralglm model files never do, and pickles are not loaded (they can run code)."
        )
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if claimed != info.file_size - header_size:
        raise ModelFileError(
            f"{name} is corrupt: entry {entry!r} claims an array of shape {shape} ({claimed:,} bytes) but holds {info.file_size - header_size:,} bytes."
        )
    with archive.open(info) as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _open(path, name: str) -> zipfile.ZipFile:
    if path is None or not (isinstance(path, (str, os.PathLike)) or hasattr(path, "read")):
        raise ModelFileError(f"The 'path' argument of load must be a file path or a binary file object. Got {path!r} instead.")
    if isinstance(path, (str, os.PathLike)):
        if os.path.isdir(path):
            raise ModelFileError(f"{name} is a folder, not a model file: pass the path of a file written by fit.save(path).")
        if not os.path.exists(path):
            raise ModelFileError(f"{name} does not exist: check the path (the current folder is {os.getcwd()!r}).")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as error:
        if _single_npy(path):
            raise ModelFileError(f"{name} is a single NumPy array, not a neuralglm model file: save models with fit.save(path).") from None
        raise ModelFileError(
            f"{name} is not a readable neuralglm model file (truncated, corrupt, or not an .npz archive): {error}"
        ) from error


def _single_npy(path) -> bool:
    try:
        if hasattr(path, "read"):
            path.seek(0)
            return path.read(6) == b"\x93NUMPY"
        with open(path, "rb") as handle:
            return handle.read(6) == b"\x93NUMPY"
    except (OSError, ValueError):
        return False


def _check_spec(spec, name: str, reader_version: int) -> dict:
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not a neuralglm model file (its {SPEC_ENTRY!r} does not name the format {FORMAT!r}).")
    if _depth(spec) > MAX_SPEC_DEPTH:
        raise ModelFileError(f"{name} is corrupt: its {SPEC_ENTRY!r} is nested deeper than {MAX_SPEC_DEPTH} levels.")
    version = spec.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{name} has an invalid format_version {version!r}.")
    if version > reader_version:
        from neuralglm._version import __version__

        raise ModelFileError(
            f"{name} was written by neuralglm {spec.get('neuralglm_version', '?')} in model-file format version {version}, but this "
            f"neuralglm ({__version__}) reads format versions up to {reader_version}: upgrade neuralglm (pip install -U neuralglm) to load it."
        )
    if spec.get("spec_sha256") != spec_digest(spec) or not isinstance(spec.get("arrays"), dict):
        raise ModelFileError(f"{name} is corrupt or was edited after saving: the checksum of its {SPEC_ENTRY!r} does not match.")
    return spec


def read_file(path) -> tuple[dict, ArrayStore]:
    """The verified spec and arrays of a model file; raises :class:`ModelFileError` for anything else.

    Examples
    --------
    >>> import io
    >>> buffer = io.BytesIO()
    >>> write_file({"a": np.arange(3.0)}, {"format": FORMAT, "format_version": FORMAT_VERSION}, buffer)
    >>> spec, arrays = read_file(io.BytesIO(buffer.getvalue()))
    >>> spec["format_version"], arrays.get("a").tolist()
    (2, [0.0, 1.0, 2.0])
    """
    name = repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else "The model file"
    corrupt = (zipfile.BadZipFile, ValueError, EOFError, OSError, UnicodeDecodeError, KeyError, RecursionError)
    with _open(path, name) as archive:
        infos = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if SPEC_ENTRY not in infos:
            raise ModelFileError(f"{name} is not a neuralglm model file (it has no {SPEC_ENTRY!r} entry): save models with fit.save(path).")
        try:
            raw = _read_entry(archive, infos[SPEC_ENTRY], name)
            spec = _check_spec(json.loads(raw.tobytes().decode("utf-8")), name, FORMAT_VERSION)
        except ModelFileError:
            raise
        except corrupt as error:
            raise ModelFileError(
                f"{name} is corrupt: its {SPEC_ENTRY!r} entry cannot be read ({type(error).__name__}). Save the model again."
            ) from None
        stored = set(infos) - {SPEC_ENTRY}
        missing, extra = sorted(set(spec["arrays"]) - stored), sorted(stored - set(spec["arrays"]))
        if missing or extra:
            raise ModelFileError(f"{name} is incomplete or was modified: missing array entries {missing}, unexpected entries {extra}.")
        arrays = {}
        for key, expected in spec["arrays"].items():
            try:
                values = _read_entry(archive, infos[key], name)
            except ModelFileError:
                raise
            except corrupt as error:
                raise ModelFileError(f"{name} is corrupt (truncated or damaged): entry {key!r} cannot be read ({error}).") from error
            if array_digest(values) != expected:
                raise ModelFileError(f"{name} is corrupt or was modified after saving: the checksum of array {key!r} does not match.")
            arrays[key] = values
    return spec, ArrayStore(arrays)


def stored_summary(path) -> str | None:
    """The summary text a model file holds, verified like the rest of the file; ``None`` to rebuild it instead.

    ``None`` when the file predates stored summaries or was written by another neuralglm
    version (whose summary may be laid out differently): the caller then loads the model and
    asks it. Control characters other than newlines, and format characters, are dropped, so that
    a file cannot send terminal escape sequences or reorder the text shown (U+202E). Raises :class:`ModelFileError` as :func:`read_file` does.

    Examples
    --------
    >>> import io
    >>> from neuralglm._version import __version__
    >>> spec = {"format": FORMAT, "format_version": FORMAT_VERSION, "neuralglm_version": __version__, SUMMARY_KEY: "Model\x1b[2J\u202etxt"}
    >>> buffer = io.BytesIO()
    >>> write_file({}, spec, buffer)
    >>> stored_summary(io.BytesIO(buffer.getvalue()))
    'Model[2Jtxt'
    """
    from neuralglm._version import __version__

    spec, _arrays = read_file(path)  # every checksum is checked, although only the text is printed
    text = spec.get(SUMMARY_KEY)
    if not isinstance(text, str) or len(text) > _MAX_SUMMARY_CHARACTERS or spec.get("neuralglm_version") != __version__:
        return None
    # Control characters (terminal escapes) and format characters (bidirectional overrides such as
    # U+202E, which reorder what a terminal shows) are dropped: the text is the file's, not ours.
    return "".join(character for character in text if character == "\n" or unicodedata.category(character) not in ("Cc", "Cf"))
