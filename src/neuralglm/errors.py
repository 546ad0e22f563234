"""Exceptions and warnings raised by neuralglm.

Every error says what is wrong, where (column, row count, first row labels) and what to do.
They all derive from :class:`NeuralGLMError`, so ``except ng.errors.NeuralGLMError`` catches
any problem the library diagnosed, while genuine bugs still surface as ordinary exceptions.
"""

from __future__ import annotations

import re
import sys
import warnings

_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain_text(text: str) -> str:
    """``text`` without terminal colour codes (formulaic colours its parser's messages).

    Examples
    --------
    >>> plain_text("\x1b[1;31m+\x1b[0m misplaced")
    '+ misplaced'
    """
    return _TERMINAL_CODES.sub("", text)


class NeuralGLMError(Exception):
    """Base class of every error neuralglm raises on purpose."""


class DataError(NeuralGLMError, ValueError):
    """The data cannot be used as given: missing values, unknown columns, bad shapes."""


class DomainError(DataError):
    """A response, weight or exposure lies outside what the family or model allows."""


class ModelFileError(DataError):
    """A saved model file cannot be loaded: not a neuralglm model, truncated, edited, or from a newer version."""


class RankDeficientError(NeuralGLMError, ValueError):
    """The design matrix has linearly dependent (aliased) columns."""


class SpecificationError(NeuralGLMError, ValueError):
    """An argument (family, link, option) is invalid or unknown."""


class DivergenceError(NeuralGLMError, RuntimeError):
    """The fit produced a non-finite deviance or loss and could not recover."""


class ConvergenceWarning(UserWarning):
    """The solver stopped before its convergence criterion was met."""


class SeparationWarning(UserWarning):
    """Fitted probabilities of 0 or 1 occurred: the classes are (quasi-)separated."""


class DataWarning(UserWarning):
    """The data were usable but something deserves a look (dropped rows, non-integer counts)."""


def _in_library(frame) -> bool:
    name = frame.f_globals.get("__name__", "")
    return name == "neuralglm" or name.startswith("neuralglm.")


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the first caller outside neuralglm: the user's line.

    A fixed ``stacklevel`` counts the library's own frames, so it points at library code as
    soon as a call is added or moved between the user and the warning; walking the stack to
    the first frame whose module is not ``neuralglm`` (or a submodule) does not depend on how
    deep the library is (Python 3.11 has no ``skip_file_prefixes``). Every warning of the
    library goes through here.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("Something deserves a look.", DataWarning)
    >>> caught[0].category.__name__, str(caught[0].message)
    ('DataWarning', 'Something deserves a look.')
    """
    frame = sys._getframe(1)  # the caller of warn; warnings.warn's level 2
    level = 2
    while frame is not None and _in_library(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DivergenceError",
    "DomainError",
    "ModelFileError",
    "NeuralGLMError",
    "RankDeficientError",
    "SeparationWarning",
    "SpecificationError",
]
