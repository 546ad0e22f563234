"""Model terms as R's ``terms`` object sees them, and which may be dropped or added (marginality).

A term is what a formula adds: ``wool``, ``tension``, ``wool:tension``; a factor with several
levels is one term with several design columns. Terms are matched by their set of variables,
so ``a:b`` and ``b:a`` are the same term, as R's ``factor.scope`` matches them. The scopes
follow R's ``drop.scope``/``add.scope``/``factor.scope`` exactly: a term may be dropped when no
other droppable term contains it, and added when it contains no other term that could be
added first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuralglm.data.formula import parse_terms, split_formula
from neuralglm.errors import SpecificationError

_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


@dataclass(frozen=True)
class Term:
    """One formula term: its label (R's term label), its variables and its design columns (if known)."""

    label: str
    variables: frozenset[str]
    columns: tuple[int, ...] = ()


def model_terms(fit) -> tuple[tuple[int, ...], list[Term]]:
    """The intercept's columns and the other terms of a formula fit, in formula order (R's ``terms``)."""
    spec = fit.design.spec
    if not fit.design.formula or spec is None or not hasattr(spec, "term_indices"):
        raise SpecificationError(
            "Analysis of deviance by term needs a fit made from a formula (ng.glm); a fit to a ready matrix "
            "(ng.glm_fit) has columns, not terms. Compare nested fits with ng.anova(fit1, fit2) instead."
        )
    intercept: tuple[int, ...] = ()
    terms = []
    for term, columns in spec.term_indices.items():
        variables = frozenset(factor.expr for factor in term.factors)
        if variables == frozenset({"1"}):
            intercept = tuple(columns)
        elif not str(term).startswith("offset("):
            terms.append(Term(str(term), variables, tuple(columns)))
    return intercept, terms


def scope_terms(fit, scope, what: str) -> list[Term]:
    """The terms of a scope: a formula (``"~ . + x"``; ``.`` is the model's right-hand side, as R's
    ``update.formula``) or a list of term labels."""
    if isinstance(scope, (list, tuple)) and all(isinstance(label, str) for label in scope):
        scope = "~ " + " + ".join(scope) if scope else "~ 1"
    if not isinstance(scope, str) or "~" not in scope:
        raise SpecificationError(
            f"The '{what}' parameter must be a formula such as '~ . + x' or a list of term labels. Got {scope!r} instead."
        )
    rhs = scope.split("~", 1)[1].strip() or "1"
    _, terms = model_terms(fit)
    current = " + ".join(term.label for term in terms) or "1"
    rhs = _DOT.sub(lambda _: f"({current})", rhs)
    parsed = parse_terms(scope, rhs)
    found = []
    for term in parsed:  # pyright: ignore[reportGeneralTypeIssues]  (a one-sided Formula is a list of terms)
        variables = frozenset(factor.expr for factor in term.factors)
        if variables != frozenset({"1"}) and not str(term).startswith("offset("):
            found.append(Term(str(term), variables))
    return found


def find(term: Term, terms: list[Term]) -> Term | None:
    """The term of ``terms`` with the same variables as ``term`` (``a:b`` is ``b:a``), or None."""
    return next((other for other in terms if other.variables == term.variables), None)


def drop_scope(model: list[Term], lower: list[Term]) -> list[Term]:
    """Terms that may be dropped: not in ``lower``, and not inside another such term (R's ``factor.scope``)."""
    missing = [term.label for term in lower if find(term, model) is None]
    if missing:
        raise SpecificationError(f"The lower scope has term(s) {', '.join(map(repr, missing))} that are not in the model.")
    candidates = [term for term in model if find(term, lower) is None]
    if len(candidates) <= 1:
        return candidates
    return [term for term in candidates if not any(term.variables <= other.variables for other in candidates if other is not term)]


def add_scope(model: list[Term], upper: list[Term]) -> list[Term]:
    """Terms of ``upper`` that may be added: not in the model, and containing no other such term (R's ``factor.scope``)."""
    missing = [term.label for term in model if find(term, upper) is None]
    if missing:
        raise SpecificationError(
            f"The upper scope must contain the model's terms; it lacks {', '.join(map(repr, missing))}. Write it as '~ . + ...'."
        )
    candidates = [term for term in upper if find(term, model) is None]
    if len(candidates) <= 1:
        return candidates
    return [term for term in candidates if not any(other.variables < term.variables for other in candidates if other is not term)]


def formula_with(fit, labels: list[str]) -> str:
    """The fit's formula with the right-hand side made of ``labels`` (intercept and ``offset()`` terms kept)."""
    lhs, rhs = split_formula(fit.formula)
    parts = list(labels) + _offset_calls(rhs)
    if not fit.design.has_intercept:
        parts.append("0")
    return f"{lhs} ~ {' + '.join(parts) if parts else '1'}"


def _offset_calls(rhs: str) -> list[str]:
    """The ``offset(...)`` calls written in a right-hand side, parentheses balanced."""
    calls = []
    for match in re.finditer(r"(?<![\w.])offset\s*\(", rhs):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(rhs)):
            depth += {"(": 1, ")": -1}.get(rhs[end], 0)
            if depth == 0:
                break
        calls.append(rhs[match.start() : end + 1])
    return calls
