"""R's formula spellings, translated for formulaic before it parses the formula.

A statistician coming from R writes ``y ~ I(x^2) + log(x) + sqrt(z) + factor(cyl) +
offset(log(e))`` or ``y ~ .``; this module gives those their R meaning:

- ``^`` inside a Python expression (``I(x^2)``, ``log(x^2)``) is a power, as in R, never
  Python's bitwise XOR: it is rewritten to ``**`` (the column is then named ``I(x ** 2)``).
  Between terms, ``(a + b)^2`` stays formulaic's (and R's) interaction power.
- ``offset(expr)`` terms leave the design matrix: :func:`translate` returns their expressions,
  which the caller evaluates and adds to the offset (and again on new data).
- ``sqrt``, ``abs``, ``factor`` (= ``C``), ``TRUE`` and ``FALSE`` are supplied through
  :data:`CONTEXT` (formulaic itself has ``log``, ``exp``, ``poly``, ``scale``…), so the
  columns keep the names the user wrote (``sqrt(x)``, ``factor(cyl)[T.6]``).
- ``.`` on the right-hand side expands to every other column of the data, minus the response
  and the columns used as weights, offset or exposure.
- A pandas *ordered* categorical used as a bare term gets R's ``contr.poly`` coding, its columns
  named as R names them (``agegp.L``, ``agegp.Q``, ``agegp.C``, ``agegp^4``), through
  :func:`formula_frame`.

R functions with no counterpart here are refused by name with the spelling to use instead.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError


def factor(x, levels=None):
    """R's ``factor(x)``: formulaic's ``C(x)`` (treatment coding; ``levels=`` orders the levels).

    Examples
    --------
    >>> import formulaic, pandas as pd
    >>> frame = pd.DataFrame({"cyl": [4, 6, 8, 6]})
    >>> list(formulaic.model_matrix("factor(cyl)", frame, context=CONTEXT).columns)
    ['Intercept', 'factor(cyl)[T.6]', 'factor(cyl)[T.8]']
    """
    from formulaic.transforms.contrasts import C

    # R's factor() of an ordered factor stays ordered, so it keeps contr.poly (`.L`, `.Q`, …).
    if levels is None and isinstance(getattr(x, "dtype", None), pd.CategoricalDtype) and x.dtype.ordered:
        return C(x, r_poly_class()())
    return C(x, levels=levels)


# Names a formula may use beyond formulaic's own transforms; every model matrix is built with them.
CONTEXT: dict[str, Any] = {"sqrt": np.sqrt, "abs": np.abs, "factor": factor, "TRUE": True, "FALSE": False}
CONTEXT_NAMES = frozenset(CONTEXT)

# R functions a formula may reach for that have no counterpart here: the spelling to use instead.
_R_ONLY = {
    "ns": "bs(x, df=...) for a spline basis",
    "relevel": "C(g, contr.treatment('b')) to make level 'b' the reference",
    "ordered": "an ordered pandas categorical: df['g'] = pd.Categorical(df['g'], categories=[...], ordered=True)",
    "interaction": "a:b for the interaction of a and b",
    "as.factor": "factor(x) or C(x)",
    "as.numeric": "pd.to_numeric(df['x']) on the data before fitting",
    "as.character": "C(x) for a factor, or df['x'].astype(str) on the data before fitting",
    "as.integer": "np.floor(x), or df['x'].astype(int) on the data before fitting",
    "cbind": "cbind(successes, failures) on the left-hand side only (binomial counts)",
    "s": "a network (ng.fit) for smooth effects, or bs(x, df=...)",
}
_SUPPORTED = (
    "log, exp, sqrt, abs, I(), factor() or C(), poly(x, k), bs(), scale(), center() or np.<function> instead, "
    "or compute the column in the data before fitting"
)
_AS_CALL = re.compile(r"\bas\.(\w+)\s*\(")


@dataclass(frozen=True)
class Translated:
    """One side of a formula as formulaic should read it, and the expressions of its ``offset()`` terms."""

    text: str
    offsets: tuple[str, ...] = ()


def _python_power(code: str) -> str:
    """``code`` with each ``^`` outside string literals and backquoted names replaced by ``**``."""
    out, quote = [], None
    for char in code:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "^":
            out.append("**")
            continue
        out.append(char)
    return "".join(out)


def _called_names(code: str) -> list[str]:
    """Plain function names called in ``code`` (backquoted column names made harmless first)."""
    try:
        tree = ast.parse(re.sub(r"`[^`]*`", "_q", code), mode="eval")
    except SyntaxError:
        return []
    return [node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]


def _log_with_base(code: str) -> bool:
    """Whether ``code`` calls ``log`` with a second argument (R's base), which formulaic's ``log`` lacks."""
    try:
        tree = ast.parse(re.sub(r"`[^`]*`", "_q", code), mode="eval")
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "log"
        and (len(node.args) + len(node.keywords)) > 1
        for node in ast.walk(tree)
    )


def _check_functions(code: str, formula: str, columns) -> None:
    """Refuse R functions that have no counterpart, naming the term and the spelling to use."""
    import builtins

    from formulaic.transforms import TRANSFORMS

    called = [f"as.{m.group(1)}" for m in _AS_CALL.finditer(code)] + _called_names(code)
    if _log_with_base(code):
        raise SpecificationError(
            f"The term '{code}' of formula {formula!r} gives log() a base, which formulas here do not take: "
            "write log2(x), log10(x), or I(log(x) / log(b)) for base b."
        )
    for name in called:
        known = name in TRANSFORMS or name in CONTEXT_NAMES or name == "offset" or hasattr(builtins, name) or name in (columns or ())
        if name in _R_ONLY or not known:
            hint = _R_ONLY.get(name, _SUPPORTED)
            raise SpecificationError(
                f"The term '{code}' of formula {formula!r} calls {name}(), which neuralglm formulas do not provide: write {hint}."
            )


def _quoted(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


def translate(formula: str, side: str, *, columns=None) -> Translated:
    """``side`` (one side of ``formula``) in formulaic's terms, with its ``offset()`` expressions apart.

    ``columns`` (the data's column names) are given when fitting: then R functions with no
    counterpart here are refused by name (a stored formula is checked by the allowlist instead).

    Examples
    --------
    >>> translate("y ~ I(x^2) + offset(log(e))", "I(x^2) + offset(log(e))")
    Translated(text='I(x**2)', offsets=('log(e)',))
    """
    if "%in%" in side:
        # formulaic reads `x %in% g` as R's g/x (g + g:x); R's own %in% is the nested term x:g alone.
        raise SpecificationError(
            f"The term '%in%' in formula {formula!r} is not supported: write the nested term as x:g (R's x %in% g), or g/x for g + g:x."
        )
    if columns is not None:
        for match in _AS_CALL.finditer(side):  # 'as' is a Python keyword: such a term would not even parse
            _check_functions(match.group(0) + "...)", formula, columns)
    tokens = _tokens(side)
    edits: list[tuple[int, int, str]] = []
    offsets: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind.value != "python":
            continue
        start, end = int(token.source_start), int(token.source_end) + 1
        code = side[start:end]
        if columns is not None:
            _check_functions(code, formula, columns)
        code = _python_power(code)
        match = re.fullmatch(r"offset\s*\((.*)\)", code, re.S)
        if match:
            offsets.append(match.group(1).strip())
            edits.append(_offset_removal(tokens, i, formula, code))
        elif code != side[start:end]:
            edits.append((start, end, code))
    text = side
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return Translated(text.strip() or "1", tuple(offsets))


def _tokens(side: str) -> list:
    """formulaic's tokens of ``side`` that come from its text (syntax errors are left to the parse that follows)."""
    from formulaic.parser import DefaultFormulaParser

    try:
        return [t for t in DefaultFormulaParser().get_tokens(side) if t.source_start is not None]
    except Exception:  # formulaic's syntax errors: reported in one line by the parse that follows
        return []


def expand_dot(formula: str, side: str, columns, exclude) -> str:
    """``side`` with R's ``.`` replaced by every column of ``columns`` not in ``exclude`` nor in an ``offset()`` term.

    Examples
    --------
    >>> expand_dot("y ~ . - a", ". - a", ["y", "a", "w", "my col"], exclude=["y", "w"])
    '(a + `my col`) - a'
    """
    dots = [t for t in _tokens(side) if t.kind.value == "operator" and t.token == "."]
    if not dots:
        return side
    used = {str(c) for c in exclude} | offset_variables(translate(formula, side).offsets)
    names = [_quoted(str(c)) for c in columns if str(c) not in used]
    if not names:
        raise SpecificationError(f"The '.' of formula {formula!r} stands for no column: the data have no other columns.")
    if side.strip() == ".":
        return " + ".join(names)
    for token in sorted(dots, key=lambda t: -int(t.source_start)):
        start = int(token.source_start)
        side = side[:start] + f"({' + '.join(names)})" + side[start + 1 :]
    return side


def _offset_removal(tokens, i: int, formula: str, code: str) -> tuple[int, int, str]:
    """The span to delete for the ``offset()`` term ``tokens[i]`` with the ``+`` that joins it to the formula."""
    before = tokens[i - 1] if i > 0 else None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    start, end = int(tokens[i].source_start), int(tokens[i].source_end) + 1
    if before is not None and before.token == "+" and (after is None or after.token in ("+", "-", ")")):
        return int(before.source_start), end, ""
    if before is None and after is not None and after.token == "+":
        return start, int(after.source_end) + 1, ""
    if before is None and (
        after is None or after.token == "-"
    ):  # the offset alone, or 'offset(e) - 1': the intercept stands in its place, as in R
        return start, end, "1"
    raise SpecificationError(
        f"The term '{code}' of formula {formula!r} must be added on its own: write '... + {code}' "
        "(an offset enters the linear predictor with coefficient 1, in no interaction)."
    )


def offset_variables(offsets) -> set[str]:
    if not offsets:
        return set()
    return {str(v) for v in offset_formula(offsets).required_variables} - CONTEXT_NAMES


def offset_formula(offsets):
    """The formulaic ``Formula`` whose terms are the ``offset()`` expressions (each as ``I(expr)``)."""
    import formulaic

    return formulaic.Formula(" + ".join(["0", *(f"I({expr})" for expr in offsets)]))  # pyright: ignore[reportAbstractUsage]


# ---- ordered categoricals: R's contr.poly ------------------------------------------------------
@functools.cache
def r_poly_class() -> type:
    """formulaic's ``PolyContrasts`` with columns named as R names them: ``g.L``, ``g.Q``, ``g.C``, ``g^4``."""
    from formulaic.transforms.contrasts import PolyContrasts

    class RPolyContrasts(PolyContrasts):
        """R's ``contr.poly`` for an ordered factor: the suffix is joined to the name as in R."""

        FACTOR_FORMAT = "{name}{field}"
        FACTOR_FORMAT_REDUCED = "{name}{field}"

    return RPolyContrasts


def is_r_poly(contrasts) -> bool:
    """Whether ``contrasts`` (a formulaic contrasts object or ``ContrastsState``) is R's ordered-factor coding."""
    return isinstance(getattr(contrasts, "contrasts", contrasts), r_poly_class())


def ordered_columns(frame: pd.DataFrame, lookups) -> list[str]:
    """The columns among ``lookups`` (bare column terms) that are pandas ordered categoricals."""
    return [
        name for name in lookups if name in frame.columns and isinstance(frame[name].dtype, pd.CategoricalDtype) and frame[name].cat.ordered
    ]


def formula_frame(frame: pd.DataFrame, ordered) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame and context for formulaic: each ``ordered`` column moves into the context, coded as R's contr.poly.

    formulaic looks a bare name up in the data first, then in the context; a column found in the
    context already marked with its contrasts is encoded with them (and the coding is kept in the
    model spec, so new data are coded the same way).
    """
    from formulaic.transforms.contrasts import C

    context = dict(CONTEXT)
    frame = _widened_integers(frame)
    bare = [name for name in ordered if name in frame.columns]
    # A fitted ``factor(g)`` of an ordered g is coded by contr.poly; new data may hold g as plain
    # text (a CSV), so g is marked ordered again for factor() to keep that coding (the spec keeps the levels).
    wrapped = [m.group(1) for m in map(_FACTOR_OF_COLUMN.fullmatch, ordered) if m and m.group(1) in frame.columns]
    if wrapped:
        frame = frame.assign(**{name: _as_ordered(frame[name]) for name in wrapped})
    for name in bare:
        context[name] = C(frame[name], r_poly_class()())
    return frame.drop(columns=bare), context


_FACTOR_OF_COLUMN = re.compile(r"factor\((\w+)\)")


def _as_ordered(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.as_ordered()
    return column.astype(pd.CategoricalDtype(ordered=True))


def _widened_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns narrower than 64 bits as int64 (values and factor levels unchanged).

    Polars, pyarrow and Parquet data often arrive as int32; formulaic evaluates ``I(k^3)`` on
    the column's own dtype, where the cube wraps around silently (R's ``^`` always gives a
    double). int64 holds every power a model term plausibly takes; it is the dtype pandas gives
    integers read from CSV, so the formula means the same whichever reader made the frame.
    """
    narrow = [
        name
        for name, dtype in frame.dtypes.items()
        if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype) and np.dtype(dtype).itemsize < 8
    ]
    if not narrow:
        return frame
    return frame.astype({name: np.int64 for name in narrow})


def ordered_in_spec(spec) -> list[str]:
    """The bare columns a fitted spec codes with R's contr.poly (to be coded so again on new data)."""
    return [expr for expr, (_, state) in (spec.encoder_state or {}).items() if is_r_poly((state or {}).get("contrasts"))]
