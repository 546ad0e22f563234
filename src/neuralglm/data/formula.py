"""Formulas: parsing and building the design matrix with formulaic, with errors in the library's words.

formulaic's own errors span several lines with terminal colour codes, and a transform that
fails on a text column surfaces as a numpy error deep inside it. Here every such failure
becomes one :class:`DataError` sentence naming the formula, the term and the column. R's spellings (``I(x^2)`` as a power,
``offset()``, ``sqrt``, ``factor``, ``.``, ordered factors) are translated first, by
:mod:`neuralglm.data.r_spellings`; every model matrix is built with its context.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data.design_matrix import Unsupported, block_model_matrix
from neuralglm.data.frame import is_text
from neuralglm.data.r_spellings import CONTEXT_NAMES, formula_frame
from neuralglm.errors import DataError, plain_text

_FACTOR = re.compile(r"Unable to evaluate factor `(.*?)`\. \[(\w+): (.*)\]", re.S)


def split_formula(formula: str) -> tuple[str, str]:
    """Split ``'y ~ x1 + x2'`` into ``('y', 'x1 + x2')``.

    Examples
    --------
    >>> split_formula("y ~ x1 + x2")
    ('y', 'x1 + x2')
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise DataError(f"The formula must have one '~' with the response on the left, like 'y ~ x1 + x2'; got {formula!r}.")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise DataError(f"The formula {formula!r} has no response: write it as 'y ~ x1 + x2'.")
    return lhs, rhs or "1"


def _one_line_syntax_error(error: Exception, formula: str, part: str) -> DataError:
    """formulaic's message (reason, blank line, the formula with the culprit marked in colour) as one sentence."""
    text = plain_text(str(error))
    reason, _, context = text.partition("\n\n")
    reason = " ".join(reason.split()).rstrip(".")
    where = ""
    marker = context.find("⧛")
    if marker >= 0:
        # The context is ``part`` with the culprit between ⧛ and ⧚: its start is the marker's index.
        start = formula.find(part)
        culprit = context[marker + 1 :].split("⧚", 1)[0]
        where = f" at position {marker + max(start, 0) + 1} ({culprit!r})"
    return DataError(f"Cannot parse the formula {formula!r}{where}: {reason}. Check the formula's syntax.")


def parse_terms(formula: str, part: str):
    """The formulaic ``Formula`` of one side of ``formula`` (as translated from R's spellings); syntax errors become one-line :class:`DataError`."""
    from formulaic.errors import FormulaicError

    try:
        return _parsed(part)
    except (FormulaicError, SyntaxError, ValueError, TypeError) as error:
        raise _one_line_syntax_error(error, formula, part) from None


@functools.lru_cache(maxsize=32)
def _parsed(part: str):
    """formulaic's parse of ``part``, kept: a fit reads the same side several times (its columns, its bare names), and
    parsing 100 terms took 20-60 ms each time. Only read, never changed (errors are not kept)."""
    import formulaic

    return formulaic.Formula(part)  # pyright: ignore[reportAbstractUsage]


def required_variables(formula: str, part: str) -> set[str]:
    """Names of the data columns one side of ``formula`` reads (R's functions such as ``sqrt`` are no columns)."""
    return {str(v) for v in parse_terms(formula, part).required_variables} - CONTEXT_NAMES


def bare_columns(formula: str, part: str) -> list[str]:
    """The names used as bare terms (looked up, not computed) on one side of ``formula``."""
    terms = parse_terms(formula, part)
    return sorted({f.expr for term in terms for f in term.factors if f.eval_method.value == "lookup"})  # pyright: ignore[reportGeneralTypeIssues]


def _text_columns(expr: str, frame: pd.DataFrame) -> list[str]:
    """Columns of ``frame`` named in the expression ``expr`` that hold text."""
    try:
        names = {node.id for node in ast.walk(ast.parse(expr, mode="eval")) if isinstance(node, ast.Name)}
    except SyntaxError:
        names = set(re.findall(r"[A-Za-z_]\w*", expr))
    return sorted(name for name in names if name in frame.columns and is_text(frame[name]))


_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


def _is_arithmetic(expr: str) -> bool:
    """Whether ``expr`` does arithmetic or calls NumPy (a text method such as ``g.str.upper()`` does neither)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
        ):
            return True
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in ("np", "numpy"):
                return True
    return False


def evaluation_error(error: Exception, formula: str, frame: pd.DataFrame) -> DataError:
    """A formulaic evaluation error as a :class:`DataError` naming the term and, when one is text, the column."""
    message = plain_text(str(error))
    match = _FACTOR.search(message)
    if not match:
        return DataError(f"Cannot build the design matrix of formula {formula!r}: {' '.join(message.split())}")
    expr, kind, cause = match.group(1), match.group(2), " ".join(match.group(3).split())
    text = _text_columns(expr, frame)
    if text:
        columns = ", ".join(f"'{name}'" for name in text)
        return DataError(
            f"The term '{expr}' of formula {formula!r} cannot be computed: column {columns} holds text, and the transform "
            "needs numbers. Convert the column with pd.to_numeric(..., errors='coerce'), or use C(...) for a factor."
        )
    return DataError(f"The term '{expr}' of formula {formula!r} cannot be computed: {kind}: {cause}")


def check_transforms_of_text(spec, formula: str, frame: pd.DataFrame) -> None:
    """Refuse arithmetic (``I(g*2)``, ``np.char.add(g, g)``) that ran on a text column and gave text (read as a factor).

    Text methods such as ``g.str.upper()`` are left alone: text from text is what they are for.
    """
    for expr, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or expr in frame.columns or expr.startswith("C("):
            continue
        if not any(isinstance(level, str) for level in (state or {}).get("categories", ())):
            continue  # e.g. numbers rounded into a factor: a transform of text that gave no text
        text = _text_columns(expr, frame)
        if text and _is_arithmetic(expr):
            columns = ", ".join(f"'{name}'" for name in text)
            raise DataError(
                f"The term '{expr}' of formula {formula!r} applies a transform to text: column {columns} holds text, so the "
                "result is text and would be read as a factor. Convert the column with pd.to_numeric(..., errors='coerce') "
                "first, or write C(...) if you mean a factor."
            )


def model_matrix(spec: str, frame: pd.DataFrame, formula: str, ordered=()):
    """formulaic's model matrix of ``spec`` (one side, or ``'lhs ~ 1'``) on ``frame``, or a clear :class:`DataError`.

    ``ordered``: columns coded with R's contr.poly. Missing values are kept as NaN, for the caller
    to report by column.
    """
    import formulaic

    data, context = formula_frame(frame, ordered)
    try:
        with warnings.catch_warnings():
            _quiet()
            matrix = formulaic.model_matrix(spec, data, na_action="ignore", context=context)
    except Exception as error:  # formulaic wraps whatever the user's transform raised
        raise evaluation_error(error, formula, frame) from None
    for part in (matrix.lhs, matrix.rhs) if hasattr(matrix, "rhs") else (matrix,):
        check_transforms_of_text(part.model_spec, formula, frame)
    return matrix


def design_matrix(text: str, frame: pd.DataFrame, formula: str, ordered=(), *, known=None) -> tuple[np.ndarray, list[str], Any, bool]:
    """The design matrix of the right-hand side ``text`` as one C-ordered float64 array, written in place.

    Returns the matrix, its column names, formulaic's ``ModelSpec`` and whether every value is
    certainly finite and within range (False: not known, for the caller's exact checks).
    The same matrix, names and spec as :func:`model_matrix`'s, without its copies
    (:mod:`neuralglm.data.design_matrix`); formulaic's own matrix is used where that path
    does not apply. ``known``: memory keys of columns of ``frame`` already found clean.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "k": [1, 2, 3]})
    >>> X, columns, spec, clean = design_matrix("x:k", frame, "y ~ x:k")
    >>> X[:, 1].tolist(), columns
    ([0.5, 3.0, 7.5], ['Intercept', 'x:k'])
    """
    data, context = formula_frame(frame, ordered)
    caught: list = []  # warnings held back, so that a fallback to formulaic's matrix does not repeat them
    try:
        with warnings.catch_warnings(record=True) as caught:
            _quiet()
            X, spec, clean = block_model_matrix(text, data, context, known)
    except Unsupported:
        matrix = model_matrix(text, frame, formula, ordered)
        return np.ascontiguousarray(matrix.to_numpy(dtype=np.float64)), [str(c) for c in matrix.columns], matrix.model_spec, False
    except Exception as error:  # as in model_matrix: formulaic wraps whatever the user's transform raised
        _replay(caught)
        raise evaluation_error(error, formula, frame) from None
    _replay(caught)
    check_transforms_of_text(spec, formula, frame)
    return X, [str(c) for c in spec.column_names], spec, clean


def _replay(caught: list) -> None:
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno, source=warning.source)


def _quiet() -> None:
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and friends: reported by the caller, by column
