"""Exceptions and warnings raised by neuralglm.

Every error says what is wrong, where (column, row count, first row labels) and what to do.
They all derive from :class:`NeuralGLMError`, so ``except ng.errors.NeuralGLMError`` catches
any problem the library diagnosed, while genuine bugs still surface as ordinary exceptions.
"""

from __future__ import annotations


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
