"""The call that made a fit (R's ``fit$call``), so that the same model can be fitted again.

Cross-validation, stepwise selection and ``drop1``/``add1`` refit one model on other rows or
with another formula, with every other setting kept. A :class:`FitCall` records the entry
point (the function object itself, so this module imports neither ``api`` nor ``network``:
results stay below them in the import order), the formula, the data as passed (a reference,
not a copy) and every other argument.

A model loaded from a file has no call: it holds no training data by default, and a file is
untrusted input, so it does not get to name a function to run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neuralglm.errors import ModelFileError, SpecificationError


@dataclass(frozen=True, eq=False)
class FitCall:
    """One call of ``ng.glm``, ``ng.glm_fit`` or ``ng.fit``: the function, its data and its arguments."""

    function: Callable[..., Any] = field(repr=False)
    data: Any = field(repr=False)
    arguments: Mapping[str, Any]

    @classmethod
    def record(cls, function: Callable[..., Any], data: Any, arguments: Mapping[str, Any]) -> FitCall:
        # A plain dict (a copy): a mappingproxy cannot be pickled, and fitted estimators are.
        return cls(function=function, data=data, arguments=dict(arguments))

    @property
    def name(self) -> str:
        return self.function.__name__

    def replay(self, data: Any = None, **changes: Any):
        """The same call on ``data`` (default: the data of the original call), with ``changes`` applied."""
        parameters = inspect.signature(self.function).parameters
        unknown = sorted(set(changes) - set(parameters) - {"data"})
        if unknown:
            raise SpecificationError(
                f"refit() got {', '.join(map(repr, unknown))}, which {self.name}() does not take; "
                f"it takes {', '.join(name for name in parameters if name not in _DATA_POSITIONS)}."
            )
        arguments = {**self.arguments, **changes}
        return self.function(**{_DATA_POSITIONS.get(self.name, "data"): self.data if data is None else data}, **arguments)


# The name of the data argument of each entry point (glm_fit takes X; its y is an argument).
_DATA_POSITIONS = {"glm": "data", "fit": "data", "glm_fit": "X"}


def no_call_error() -> ModelFileError:
    return ModelFileError(
        "refit() needs the call that made the fit, and a model loaded from a file has none (a file does not get to "
        "name code to run); fit it again with ng.glm(...) or ng.fit(...)."
    )
