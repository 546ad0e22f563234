"""Save and load fitted models: NumPy arrays plus a JSON spec in one ``.npz`` file, no pickle.

The file is a zip archive (:mod:`neuralglm.results.model_file`): every array (coefficients,
network weights, input scaling, history columns, and the training data only when saved with
``include_data=True``) is a ``.npy`` entry; the entry ``spec.json`` holds the format name and
version, the neuralglm version, the result's ``kind`` (``"glm"``, ``"network"``, ``"multinomial"`` or
``"multinomial_network"``) and the
result as written by its ``to_dict`` (format 2: an explicit schema per part,
:mod:`neuralglm.results.parts`). Files of format 1 are still read
(:mod:`neuralglm.results.format_v1`).

Loading reads arrays with ``allow_pickle=False`` after checking each entry's header against
its size, rebuilds families and links from their registry strings, checks every value's type,
dtype and shape, and never evaluates text from the file. The stored formula must pass an
allowlist (:func:`neuralglm.results.formula_state.check_formula`: column names, arithmetic,
numpy ufuncs and formulaic's transforms with literal arguments), checked at load and again
before ``predict`` evaluates it on new data. SHA-256 checksums of every array and of the spec
detect truncated, corrupted or edited files; they are not a signature, so load models only
from sources you trust.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.results import format_v1, formula_state
from neuralglm.results.common import ModelFileInfo
from neuralglm.results.model_file import FORMAT_VERSION, SPEC_ENTRY, read_file
from neuralglm.results.multinomial import MultinomialResult
from neuralglm.results.multinomial_network import MultinomialNetworkResult
from neuralglm.results.network import NetworkResult
from neuralglm.results.result import FitResult

# The stored ``kind`` names the class whose from_dict reads the file (the only dispatch loading does).
_KINDS: dict[str, Any] = {cls.kind: cls for cls in (FitResult, NetworkResult, MultinomialResult, MultinomialNetworkResult)}
_SAVABLE = tuple(_KINDS.values())

__all__ = ["FORMAT_VERSION", "SPEC_ENTRY", "load", "save"]


def save(result: FitResult | NetworkResult, path, *, include_data: bool = False) -> None:
    """Save a fitted model to one ``.npz`` file (the same as ``result.save(path)``).

    See :meth:`neuralglm.FitResult.save` for ``include_data`` (off by default: the file holds
    no training rows) and what can be saved.

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
    if not isinstance(result, _SAVABLE):
        raise SpecificationError(
            f"save() takes a FitResult, NetworkResult, MultinomialResult or MultinomialNetworkResult; got {type(result).__name__}."
        )
    result.save(path, include_data=include_data)


def load(path) -> FitResult | NetworkResult | MultinomialResult | MultinomialNetworkResult:
    """Load a model written by ``fit.save(path)``; never unpickles or runs code from the file.

    Parameters
    ----------
    path : file path or binary file object.

    Returns
    -------
    FitResult, NetworkResult, MultinomialResult or MultinomialNetworkResult
        (the stored ``kind``). Predicting with it gives bit-for-bit the original model's predictions. A model saved
        without its training data (the default) raises :class:`~neuralglm.errors.ModelFileError`
        from the methods that need them (``residuals()``, ``predict()`` without new data, ...);
        its ``summary()`` says what the file holds.

    Raises
    ------
    ModelFileError
        The path is not a model file, the file is truncated or corrupt, was edited (checksum
        mismatch), lacks entries, holds pickled objects, arrays of the wrong dtype or shape, a
        formula term outside the allowlist, or has a newer format version. Nothing is returned
        partially.

    Examples
    --------
    >>> import io
    >>> import neuralglm as ng
    >>> fit = ng.glm("claims ~ age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
    >>> buffer = io.BytesIO()
    >>> fit.save(buffer)
    >>> loaded = load(io.BytesIO(buffer.getvalue()))
    >>> loaded.coef.equals(fit.coef), loaded.family == fit.family, loaded.kind
    (True, True, 'glm')
    """
    spec, store = read_file(path)
    try:
        if spec["format_version"] == 1:
            return _checked(format_v1.read(spec, store))
        cls = _KINDS.get(spec.get("kind"))
        if cls is None:
            raise ModelFileError(f"The model file holds a {str(spec.get('kind'))[:40]!r}, which this neuralglm cannot load.")
        include_data = spec.get("include_data")
        node = spec.get("result")
        if not isinstance(include_data, bool) or not isinstance(node, dict):
            raise ModelFileError("The model file's spec lacks its result or include_data entry: the file is incomplete.")
        source = ModelFileInfo(format_version=spec["format_version"], include_data=include_data, n_rows=0)
        result = cls.from_dict(node, store, source)
        if include_data != result.has_data:
            raise ModelFileError("The model file's include_data does not match what it holds: the file is inconsistent.")
        return _checked(_with_rows(result))
    except ModelFileError:
        raise
    except Exception as error:  # anything the file's content breaks is a problem of the file (cause chained)
        if isinstance(error, SpecificationError):
            raise ModelFileError(f"The model file holds an invalid value: {error}") from error
        raise ModelFileError(f"The model file's spec is malformed ({type(error).__name__}: {error}).") from error


def _checked(result):
    """The formula text is parsed again when a loaded model meets new data with their response."""
    formula_state.check_formula_text(result.design.formula, ModelFileError)
    return result


def _with_rows(result):
    assert result.source is not None
    return dataclasses.replace(result, source=dataclasses.replace(result.source, n_rows=result.design.n_obs))
