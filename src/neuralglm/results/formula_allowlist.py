"""The allowlist a formula read from a model file must pass before ``predict`` evaluates it.

``predict`` on new data evaluates each term's Python expression (as formulaic does), so the
formula text, terms, factor and transform states of a model file are checked against this
list at load and again before any evaluation. Parsing evaluates nothing.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import NoReturn

import numpy as np

from neuralglm.data.r_spellings import translate
from neuralglm.errors import SpecificationError

# ---- formula safety: an allowlist of what predict() may evaluate --------------------------------
# ``predict`` on new data evaluates each term's Python expression (as formulaic does), so a
# formula read from a model file may only hold what is listed here; everything else is refused
# by name. A term may be:
#   - a column name (bare, or backquoted: `my column`), a number, a string/bool/None literal;
#   - arithmetic: + - * / // % ** and unary +/-, comparisons (< <= > >= == !=); the exponent of
#     ** must be a number (or minus one) of size at most 64, no operand of arithmetic may be a
#     string, list or tuple literal, and integers (literals and arithmetic on them) stay below
#     2**63 (Python's integers are exact: ``I(10**10**10)``, ``I((((10**64)**64)**64)**64)`` or
#     ``I('a' * 10**12)`` would exhaust memory or time);
#   - a call of formulaic's transforms C, I, center, scale, standardize, poly, bs, log, log2,
#     log10, exp, exp2, exp10 or R's sqrt, abs, factor on allowed expressions, with literal keyword arguments (poly's and
#     bs's degree and df: numbers ≤ 64, or a crafted file could ask predict for 10**18 columns);
#   - in C(...): contr.treatment / contr.treatment(base=<literal>) (contr.sum, .helmert, .diff,
#     .poly parse too, but model files store treatment contrasts only) and lists or tuples of literals;
#   - np.<ufunc>(...) for numpy's ufuncs (np.log, np.exp, np.sqrt, ...), np.where, np.clip,
#     np.round, np.around, np.abs, np.asarray, np.array (on allowed arguments), and the
#     constants np.pi, np.e, np.inf, np.nan.
# Refused: any other call or attribute, subscripts, lambdas, comprehensions, f-strings,
# walrus, starred arguments, names starting with an underscore.
# sqrt, abs and factor are R's spellings, supplied by neuralglm.data.r_spellings.CONTEXT (np.sqrt, np.abs, C).
TRANSFORMS = frozenset("C I center scale standardize poly bs log log2 log10 exp exp2 exp10 sqrt abs factor".split())
_NUMPY_MODULES = frozenset({"np", "numpy"})
_CONTRASTS = frozenset("treatment sum helmert diff poly".split())
_NUMPY_FUNCTIONS = frozenset("where clip round around abs asarray array".split())
_NUMPY_CONSTANTS = frozenset("pi e inf nan".split())
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UAdd, ast.USub)
_COMPARISONS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_MAX_EXPONENT = 64
_MAX_INTEGER = 2**63  # integers as large as numpy's int64: larger ones become exact Python integers
_INTEGER_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_INTEGER_OPERATORS |= {ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
# poly() and bs() make as many columns as their degree or df: a literal number of at most 64.
_BASIS_SIZES, _MAX_BASIS = {"poly": ("degree",), "bs": ("df", "degree")}, 64


def _numpy_function(name: str) -> bool:
    return isinstance(getattr(np, name, None), np.ufunc) or name in _NUMPY_FUNCTIONS


def _literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        if type(node.value) is int:
            return abs(node.value) < _MAX_INTEGER
        return node.value is None or isinstance(node.value, (bool, float, str))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _literal(node.operand)
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_literal(item) for item in node.elts)
    return False


def _sequence_literal(node: ast.AST) -> bool:
    """A string, list or tuple literal: repeated by ``*`` (a string literal may only be an argument)."""
    if isinstance(node, ast.UnaryOp):
        return _sequence_literal(node.operand)
    return isinstance(node, (ast.List, ast.Tuple)) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _small_number(node: ast.AST) -> bool:
    """An int or float literal (or minus one) of size at most 64: a bounded exponent for ``**``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _MAX_EXPONENT


def _integer_value(node: ast.AST) -> int | None:
    """The value of an all-integer constant expression (None for any other), computed only while
    every intermediate stays below 2**63; past that, OverflowError."""
    if isinstance(node, ast.Constant):
        return node.value if type(node.value) is int else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _integer_value(node.operand)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if not (isinstance(node, ast.BinOp) and type(node.op) in _INTEGER_OPERATORS):
        return None
    left, right = _integer_value(node.left), _integer_value(node.right)
    if left is None or right is None or abs(left) >= _MAX_INTEGER or abs(right) >= _MAX_INTEGER:
        return None if left is None or right is None else _overflow()
    if isinstance(node.op, ast.Pow) and not 0 <= right <= _MAX_EXPONENT:
        return None  # a negative power is a float; a larger one is refused by the exponent rule
    if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
        return None  # fails at evaluation (ZeroDivisionError), costs nothing
    value = _INTEGER_OPERATORS[type(node.op)](left, right)  # at most 63 * 64 bits: quick
    return value if abs(value) < _MAX_INTEGER else _overflow()


def _overflow() -> NoReturn:
    raise OverflowError


def _disallowed(node: ast.AST) -> ast.AST | None:
    """The first sub-expression of ``node`` outside the allowlist, else None."""
    if _literal(node):
        return None
    if isinstance(node, ast.Name):
        return node if node.id.startswith("_") or node.id in _NUMPY_MODULES or node.id == "contr" else None
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _OPERATORS) or _sequence_literal(node.left) or _sequence_literal(node.right):
            return node
        if isinstance(node.op, ast.Pow) and not _small_number(node.right):
            return node
        try:
            _integer_value(node)
        except OverflowError:
            return node
        return _disallowed(node.left) or _disallowed(node.right)
    if isinstance(node, ast.UnaryOp):
        return node if not isinstance(node.op, _OPERATORS) or _sequence_literal(node.operand) else _disallowed(node.operand)
    if isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARISONS) for op in node.ops):
            return node
        return next((bad for part in (node.left, *node.comparators) if (bad := _disallowed(part)) is not None), None)
    if isinstance(node, ast.Attribute):
        base = node.value
        allowed = isinstance(base, ast.Name) and base.id in _NUMPY_MODULES and node.attr in _NUMPY_CONSTANTS
        return None if allowed else node
    if isinstance(node, ast.Call):
        return _disallowed_call(node)
    return node


def _disallowed_call(node: ast.Call) -> ast.AST | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in TRANSFORMS:
        sizes = [*node.args[1:2], *(k.value for k in node.keywords if k.arg in _BASIS_SIZES.get(func.id, ()))]
        small = (isinstance(n, ast.Constant) and type(n.value) in (int, float) and 0 <= n.value <= _MAX_BASIS for n in sizes)
        if func.id in _BASIS_SIZES and not all(small):
            return node
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if not (func.value.id in _NUMPY_MODULES and _numpy_function(func.attr)):
            return node
    else:
        return node
    for arg in node.args:
        if isinstance(func, ast.Name) and func.id == "C" and _contrast(arg):
            continue
        bad = _disallowed(arg)
        if bad is not None:
            return bad
    for keyword in node.keywords:
        if keyword.arg is None:  # **kwargs
            return node
        if isinstance(func, ast.Name) and func.id == "C" and keyword.arg == "contr" and _contrast(keyword.value):
            continue
        if not _literal(keyword.value):
            return keyword.value
    return None


def _contrast(node: ast.AST) -> bool:
    """``contr.treatment`` or ``contr.treatment(base=<literal>)`` (or one positional literal); also formulaic's
    other contrasts by name (safe to evaluate; saving refuses them with its own message)."""
    if isinstance(node, ast.Call):
        literal_args = all(_literal(a) for a in node.args) and all(k.arg is not None and _literal(k.value) for k in node.keywords)
        return literal_args and len(node.args) + len(node.keywords) <= 1 and _contrast(node.func)
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "contr" and node.attr in _CONTRASTS


def unsafe_part(expr: str) -> str | None:
    """The first part of a term expression outside the allowlist (its source text), else None.

    Examples
    --------
    >>> unsafe_part("np.log(x) + I(x ** 2) - center(`my col`)") is None
    True
    >>> unsafe_part("np.log(open('notes.txt'))")
    "open('notes.txt')"
    """
    from formulaic.utils.code import sanitize_variable_names

    if not isinstance(expr, str):
        return repr(expr)
    # Check exactly the code formulaic evaluates: its own rewriting of `quoted names` (which skips
    # backquotes inside string literals) gives the source; the names it made are column lookups.
    columns: dict[str, str] = {}
    try:
        source = sanitize_variable_names(expr, {}, columns)
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return expr
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in columns and not unsafe_lookup(node.id):
            node.id = "Q0"  # a backquoted column name (formulaic may have given it a leading underscore)
    try:
        bad = _disallowed(tree.body)
    except RecursionError:
        return expr
    if bad is None:
        return None
    return ast.get_source_segment(source, bad) or expr


def unsafe_lookup(name: str) -> bool:
    """Whether a column-name lookup is refused: only dunder names (never column names in practice)."""
    return not isinstance(name, str) or (name.startswith("__") and name.endswith("__"))


_CBIND_ARGUMENTS = re.compile(r"^\s*cbind\((.*)\)\s*$", re.S)


def check_formula_text(formula: str, error: type[Exception]) -> None:
    """Raise ``error`` unless both sides of the stored formula text pass the allowlist.

    The text (response included) is parsed again when a loaded model evaluates new data with
    their response (``ng.heldout_deviance``, plots given data), so it is checked as the stored
    spec is: the response is an allowed expression or ``cbind(a, b)`` of allowed expressions,
    the right-hand side a formula whose terms are all allowed. Parsing evaluates nothing.

    Examples
    --------
    >>> check_formula_text("cbind(s, f) ~ np.log(x) + C(g)", ValueError)
    >>> check_formula_text("__import__('os').getcwd() ~ x", ValueError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: The formula's response "__import__('os').getcwd()" uses ...
    """
    import formulaic

    if not isinstance(formula, str):
        raise error(f"The stored formula must be text; got {type(formula).__name__}.")
    if not formula.strip():
        return  # a model fitted to arrays (glm_fit) has no formula
    lhs, tilde, rhs = formula.partition("~")
    if not tilde:
        lhs, rhs = "", formula
    try:  # R's spellings as fitting read them: ^ inside expressions is **, offset() terms apart
        terms = translate(formula, rhs)
        response = lhs if _CBIND_ARGUMENTS.match(lhs) or not lhs.strip() else translate(formula, lhs.strip()).text
    except SpecificationError as refused:
        raise error(str(refused)) from None
    for expr in terms.offsets:
        bad = unsafe_part(expr)
        if bad is not None:
            raise error(f"The formula term 'offset({expr})' uses {bad!r}, which model files do not allow (predict would evaluate it).")
    if response.strip():
        cbind = _CBIND_ARGUMENTS.match(response)
        parts = [part for part in cbind.group(1).split(",")] if cbind else [response]
        for part in parts:
            bad = unsafe_part(part.strip())
            if bad is not None:
                raise error(
                    f"The formula's response {lhs.strip()!r} uses {bad!r}, which model files do not allow: "
                    "a column name or an allowed expression (see the allowlist)."
                )
    try:
        spec = formulaic.ModelSpec(terms.text)
    except Exception as parse_error:  # formulaic's parser raises several types
        raise error(f"The stored formula {formula[:80]!r} cannot be parsed ({type(parse_error).__name__}).") from None
    check_formula(spec, error)


def check_formula(spec, error: type[Exception]) -> None:
    """Raise ``error`` naming the first term of ``spec`` outside the allowlist (see the module's list).

    Checks the parsed formula's factors, the term structure and the keys of the factor and
    transform states: all that ``predict`` may look up or evaluate.

    Examples
    --------
    >>> import formulaic
    >>> check_formula(formulaic.ModelSpec("np.log(x) + C(g) + center(z)"), ValueError)
    >>> check_formula(formulaic.ModelSpec("np.log(x) + open('notes.txt')"), ValueError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: The formula term "open('notes.txt')" uses "open('notes.txt')", ...
    """
    from formulaic.parser.types import Factor

    factors = {factor.expr: factor.eval_method is Factor.EvalMethod.LOOKUP for term in spec.formula for factor in term.factors}
    for expr, lookup in factors.items():
        part = (expr if unsafe_lookup(expr) else None) if lookup else unsafe_part(expr)
        if part is not None:
            raise error(
                f"The formula term {expr!r} uses {part!r}, which model files do not allow (predict would evaluate it): use column "
                "names, arithmetic, numpy ufuncs and formulaic's transforms (C, I, center, scale, standardize, poly, bs, log, exp, sqrt, abs, factor) only."
            )
    # Everything else that names a factor must name one of the formula's (already checked) factors.
    named = [f.factor.expr for item in spec.structure or () for scoped in item.scoped_terms for f in scoped.factors]
    named += [*dict(spec.encoder_state or {}), *dict(spec.transform_state or {})]
    for expr in named:
        if expr not in factors:
            raise error(f"The formula term {expr!r} is not a term of the formula {str(spec.formula)!r}: model files may not add terms.")
