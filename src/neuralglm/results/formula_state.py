"""The formulaic ``ModelSpec`` of a design as plain JSON, and back (for model files).

``predict`` rebuilds the design matrix of new data from the formulaic ``ModelSpec`` kept in
:class:`~neuralglm.data.design.Design`. A model file stores what that needs: the right-hand
side formula, the term structure (which factors are reduced in rank, the column names), each
factor's kind and levels (treatment or polynomial contrasts) and the state of stateful transforms such
as ``center(x)``. Level values keep their JSON types (ints stay ints, strings stay strings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from neuralglm.data.r_spellings import is_r_poly, r_poly_class
from neuralglm.errors import ModelFileError, SpecificationError, plain_text
from neuralglm.results.formula_allowlist import check_formula as check_formula
from neuralglm.results.formula_allowlist import check_formula_text as check_formula_text


# ---- factor levels: Python scalars that keep their type through JSON ---------------------------
def level_value(value, where: str):
    """A factor level as a Python ``str``, ``int``, ``float`` or ``bool`` (numpy scalars converted).

    Raises :class:`SpecificationError` naming the factor ``where`` for any other type.

    Examples
    --------
    >>> level_value(np.int64(3), "C(k)"), level_value("a", "g")
    (3, 'a')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    raise SpecificationError(
        f"Cannot save factor {where}: its level {value!r} is a {type(value).__name__}; model files store "
        "levels that are strings, integers, floats or booleans. Convert the column (e.g. to str) and refit."
    )


# ---- the formulaic ModelSpec ------------------------------------------------------------------
def encode_model_spec(spec, encode: Callable[[Any, str], Any], path: str) -> dict:
    """The JSON form of a formulaic ``ModelSpec``.

    ``encode(value, path)`` turns the free-form parts (transform state, materializer options)
    into JSON; ``path`` names them in messages.

    Examples
    --------
    >>> import formulaic, pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"]})
    >>> spec = formulaic.model_matrix("x + C(g)", frame).model_spec
    >>> data = encode_model_spec(spec, lambda value, path: value, "spec")
    >>> data["encoder_state"]["C(g)"]["categories"]
    ['a', 'b']
    >>> list(decode_model_spec(data, lambda node: node).column_names)
    ['Intercept', 'x', 'C(g)[T.b]']
    """

    check_formula(spec, SpecificationError)
    encoder_state = {}
    for expr, (kind, state) in spec.encoder_state.items():
        entry: dict[str, Any] = {"kind": kind.value}
        rest = dict(state)
        if "categories" in rest:
            entry["categories"] = [level_value(v, expr) for v in rest.pop("categories")]
        if "contrasts" in rest:
            entry["contrasts"] = _contrasts_to_dict(rest.pop("contrasts"), expr)
        entry["state"] = encode(rest, f"{path}.encoder_state.{len(encoder_state)}")
        encoder_state[expr] = entry
    structure = [
        {
            "term": str(item.term),
            "scoped_terms": [
                {"factors": [[f.factor.expr, bool(f.reduced)] for f in st.factors], "scale": st.scale} for st in item.scoped_terms
            ],
            "columns": [str(c) for c in item.columns],
        }
        for item in spec.structure or ()
    ]
    try:
        transform_state = encode(spec.transform_state, f"{path}.transform_state")
    except SpecificationError as error:
        raise SpecificationError(f"Cannot save the state of the formula's stateful transforms: {error}") from None
    return {
        "formula": str(spec.formula),
        "materializer": spec.materializer,
        "materializer_params": encode(spec.materializer_params, f"{path}.materializer_params"),
        "ensure_full_rank": bool(spec.ensure_full_rank),
        "na_action": spec.na_action.value,
        "output": spec.output,
        "cluster_by": spec.cluster_by.value,
        "structure": structure,
        "encoder_state": encoder_state,
        "transform_state": transform_state,
    }


def _coding(contrasts) -> str | None:
    """The stored name of a formulaic contrasts object, None for one model files do not store."""
    from formulaic.transforms.contrasts import PolyContrasts, TreatmentContrasts

    if type(contrasts) is TreatmentContrasts:
        return "treatment"
    if is_r_poly(contrasts):  # an ordered pandas categorical: R's contr.poly, columns named g.L, g.Q, ...
        return "r_poly"
    if type(contrasts) is PolyContrasts and contrasts.scores is None:  # C(g, contr.poly)
        return "poly"
    return None


def _contrasts_to_dict(contrasts, expr: str) -> dict:
    from formulaic.transforms.contrasts import ContrastsState
    from formulaic.utils.sentinels import UNSET

    coding = _coding(contrasts.contrasts) if isinstance(contrasts, ContrastsState) else None
    if coding is None:
        name = type(getattr(contrasts, "contrasts", contrasts)).__name__
        raise SpecificationError(
            f"Cannot save factor {expr}: it uses {name}; model files store treatment contrasts only (the default, or "
            "contr.treatment(base=...)), besides the polynomial contrasts of ordered factors (contr.poly)."
        )
    base = getattr(contrasts.contrasts, "base", UNSET)
    node = {"levels": [level_value(v, expr) for v in contrasts.levels], "base": None if base is UNSET else [level_value(base, expr)]}
    return node if coding == "treatment" else {**node, "coding": coding}  # files without 'coding' hold treatment contrasts


def _contrasts_from_dict(node: dict, expr: str):
    from formulaic.transforms.contrasts import ContrastsState, PolyContrasts, TreatmentContrasts
    from formulaic.utils.sentinels import UNSET

    coding, base = node.get("coding", "treatment"), node["base"]
    if coding == "treatment":
        contrasts = TreatmentContrasts(base=UNSET if base is None else base[0])
    elif coding in ("poly", "r_poly") and base is None:
        contrasts = r_poly_class()() if coding == "r_poly" else PolyContrasts()
    else:
        raise ModelFileError(
            f"The model file's factor {expr!r} has contrasts {coding!r}; model files hold 'treatment', 'poly' or 'r_poly'."
        )
    return ContrastsState(contrasts=contrasts, levels=list(node["levels"]))


def decode_model_spec(data: dict, decode: Callable[[Any], Any]):
    """Rebuild the formulaic ``ModelSpec`` of :func:`encode_model_spec` (``decode`` reverses ``encode``).

    Parsing the formula evaluates nothing; :func:`check_formula` then refuses unsafe terms
    with :class:`ModelFileError`. See :func:`encode_model_spec` for an example.
    """
    from formulaic import ModelSpec
    from formulaic.materializers.base import EncodedTermStructure
    from formulaic.materializers.types import EvaluatedFactor, ScopedFactor, ScopedTerm
    from formulaic.parser.types import Factor

    if not isinstance(data.get("formula"), str) or data.get("materializer") != "pandas":
        raise ModelFileError("The model file's formula spec must hold a formula string and the 'pandas' materializer.")
    try:
        spec = ModelSpec(
            formula=data["formula"],
            materializer=data["materializer"],
            materializer_params=decode(data["materializer_params"]),
            ensure_full_rank=data["ensure_full_rank"],
            na_action=data["na_action"],
            output=data["output"],
            cluster_by=data["cluster_by"],
        )
    except ModelFileError:
        raise
    except Exception as error:
        reason = plain_text(str(error)).replace("⧛", "").replace("⧚", "").splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"The formula {data['formula']!r} stored in the model file cannot be parsed ({reason}).") from None
    check_formula(spec, ModelFileError)
    named = [expr for item in data["structure"] for st in item["scoped_terms"] for expr, _ in st["factors"]]
    named += [*data["encoder_state"]]
    unknown = [expr for expr in named if expr not in {f.expr for term in spec.formula for f in term.factors}]
    if unknown:
        raise ModelFileError(
            f"The formula term {unknown[0]!r} is not a term of the formula {data['formula']!r}: model files may not add terms."
        )
    terms = {str(term): term for term in spec.formula}
    factors = {factor.expr: factor for term in spec.formula for factor in term.factors}
    structure = [
        EncodedTermStructure(
            terms[item["term"]],
            [
                ScopedTerm(
                    [ScopedFactor(EvaluatedFactor(factors[expr], None), reduced=reduced) for expr, reduced in st["factors"]],
                    scale=st["scale"],
                )
                for st in item["scoped_terms"]
            ],
            list(item["columns"]),
        )
        for item in data["structure"]
    ]
    encoder_state = {}
    for expr, entry in data["encoder_state"].items():
        state = dict(decode(entry["state"]))
        if "categories" in entry:
            state["categories"] = list(entry["categories"])
        if "contrasts" in entry:
            state["contrasts"] = _contrasts_from_dict(entry["contrasts"], expr)
        encoder_state[expr] = (Factor.Kind(entry["kind"]), state)
    spec = spec.update(structure=structure, encoder_state=encoder_state, transform_state=decode(data["transform_state"]))
    check_formula(spec, ModelFileError)
    return spec


def same(a, b) -> bool:
    """Structural equality that also compares types (numpy scalars compare as Python scalars).

    Examples
    --------
    >>> same({"k": [1, np.int64(2)]}, {"k": [1, 2]}), same(1, 1.0)
    (True, False)
    """
    a, b = (x.item() if isinstance(x, np.generic) else x for x in (a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def check_round_trip(spec, rebuilt) -> None:
    """Raise :class:`SpecificationError` unless ``rebuilt`` has the formula, structure, levels and state of ``spec``.

    Examples
    --------
    >>> import formulaic, pandas as pd
    >>> spec = formulaic.model_matrix("C(g)", pd.DataFrame({"g": [1, 2]})).model_spec
    >>> check_round_trip(spec, decode_model_spec(encode_model_spec(spec, lambda v, p: v, "spec"), lambda n: n))
    """
    checks = {
        "formula": (str(spec.formula), str(rebuilt.formula)),
        "term structure": (repr(spec.structure), repr(rebuilt.structure)),
        "factor levels": ({k: (v[0], v[1]) for k, v in spec.encoder_state.items()}, dict(rebuilt.encoder_state)),
        "stateful-transform state": (spec.transform_state, rebuilt.transform_state),
    }
    for what, (original, copy) in checks.items():
        if not same(original, copy):
            raise SpecificationError(f"Cannot save this model: its formula's {what} would not be restored exactly from a model file.")
