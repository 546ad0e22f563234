"""What a solver reports about its run: a value, not attributes changed along the way."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import pandas as pd


class Status(enum.Enum):
    """How a fit ended; each member carries the sentence a user reads."""

    CONVERGED = "The convergence criterion was met."
    CLOSED_FORM = "Solved in closed form (weighted least squares); no iteration needed."
    MAX_ITER = (
        "The maximum number of iterations was reached before convergence: increase max_iter, scale the inputs, or simplify the model."
    )
    SEPARATION = (
        "Fitted probabilities numerically 0 or 1 occurred: the classes are (quasi-)separated, so some estimates "
        "and standard errors are not meaningful. Consider fewer predictors, merging factor levels, or a penalized fit."
    )
    EARLY_STOPPED = "Training stopped early: the validation deviance stopped improving; the best weights were restored."
    MAX_EPOCHS = "The maximum number of epochs was reached."


@dataclass(frozen=True)
class FitInfo:
    """Solver report.

    Attributes
    ----------
    converged : whether the convergence criterion was met.
    n_iter : iterations (IRLS) or epochs (gradient training) run.
    status : a :class:`Status` member; ``message`` is its sentence with details.
    solver : ``"closed_form"``, ``"irls"``, ``"lbfgs"``, ``"adam"`` or ``"sgd"``.
    history : one row per iteration (``iteration``, ``deviance``, ``seconds``, …).
    """

    converged: bool
    n_iter: int
    status: Status
    solver: str
    message: str = ""
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    def __post_init__(self):
        if not self.message:
            object.__setattr__(self, "message", self.status.value)
