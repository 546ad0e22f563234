"""What a solver reports about its run: a value, not attributes changed along the way."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# The history of every solver (IRLS, L-BFGS, Adam, SGD) has these columns, one row per
# iteration (IRLS, and each preconditioned step of its large-data start), chunk of iterations
# (L-BFGS) or epoch (Adam/SGD). NaN where a solver has no such quantity.
HISTORY_COLUMNS = ("iteration", "objective", "gradient_norm", "step", "validation_deviance", "seconds")
HISTORY_DOC = """\
``iteration`` : iterations (IRLS, L-BFGS) or epochs (Adam/SGD) done at the end of the row.
``objective`` : the mean deviance per unit weight on the training rows, ``deviance / sum(weights)``
    (Adam/SGD: accumulated over the epoch's minibatches, each at the weights before its update).
``gradient_norm`` : largest absolute component of the gradient of the solver's objective (the
    mean half deviance plus any penalty), where the solver computes it (L-BFGS, the
    preconditioned steps of IRLS's large-data start), else NaN.
``step`` : largest absolute change of a coefficient or weight since the previous row.
``validation_deviance`` : mean deviance per unit weight on the validation rows (early
    stopping), else NaN.
``seconds`` : since the start of the fit."""


def history_frame(rows) -> pd.DataFrame:
    """The history table from rows ``(iteration, objective, gradient_norm, step, validation_deviance, seconds)``.

    Examples
    --------
    >>> history_frame([(1, 0.5, float("nan"), 0.1, float("nan"), 0.01)]).columns.tolist()
    ['iteration', 'objective', 'gradient_norm', 'step', 'validation_deviance', 'seconds']
    """
    frame = pd.DataFrame(list(rows), columns=list(HISTORY_COLUMNS), dtype=np.float64)
    return frame.astype({"iteration": np.int64})


def upgrade_history(history: pd.DataFrame, total_weight: float | None = None) -> pd.DataFrame:
    """A history in the columns of :data:`HISTORY_COLUMNS`, also from model files written before them.

    Earlier versions wrote ``epoch, train_deviance, validation_deviance, learning_rate|max_gradient,
    seconds`` (gradient solvers) and ``iteration, deviance, step_halvings, max_coef_change, seconds``
    (IRLS, with the total deviance: divided by ``total_weight`` when given, else NaN).

    Examples
    --------
    >>> old = pd.DataFrame({"epoch": [1], "train_deviance": [0.5], "validation_deviance": [0.6],
    ...                     "learning_rate": [0.01], "seconds": [0.1]})
    >>> upgrade_history(old).iloc[0].tolist()
    [1.0, 0.5, nan, nan, 0.6, 0.1]
    """
    if list(history.columns) == list(HISTORY_COLUMNS):
        return history
    n = len(history)

    def column(name: str, scale: float = 1.0) -> np.ndarray:
        return history[name].to_numpy(dtype=np.float64) / scale if name in history.columns else np.full(n, np.nan)

    if "deviance" in history.columns:  # IRLS
        objective = column("deviance", total_weight) if total_weight else np.full(n, np.nan)
        step = column("max_coef_change")
    else:
        objective, step = column("train_deviance"), np.full(n, np.nan)
    iteration = column("iteration") if "iteration" in history.columns else column("epoch")
    rows = zip(iteration, objective, column("max_gradient"), step, column("validation_deviance"), column("seconds"), strict=True)
    return history_frame(list(rows))


class Status(enum.Enum):
    """How a fit ended; each member carries the sentence a user reads.

    ``CONVERGED`` and ``CLOSED_FORM`` are the only outcomes where :attr:`FitInfo.converged` is
    True. ``STALLED`` means no further progress was possible before the criterion was met
    (an L-BFGS line search that no longer decreases the objective, or a minibatch training
    deviance on a plateau without a validation set to tell noise from progress);
    ``EARLY_STOPPED`` is the regularizer of early stopping, not an optimum of the training
    objective; ``ITERATION_LIMIT`` ran out of iterations (or epochs).

    A fit short of its optimum warns (:class:`~neuralglm.errors.ConvergenceWarning`) with what
    to change: ``ITERATION_LIMIT`` always, ``STALLED`` unless it is an L-BFGS stall at the
    working precision (:attr:`FitInfo.at_precision`); ``EARLY_STOPPED`` does not warn (the
    best weights on held-out data are the intended fit). A network without hidden layers
    fitted by a gradient solver is ``CONVERGED`` only within 0.05 standard errors of its
    (penalized) maximum-likelihood estimates (:mod:`neuralglm.fit.polish`).
    """

    CONVERGED = "The convergence criterion was met."
    CLOSED_FORM = "Solved in closed form (weighted least squares); no iteration needed."
    STALLED = "No further progress was possible before the convergence criterion was met."
    EARLY_STOPPED = "Training stopped early: the validation deviance stopped improving; the best weights were restored."
    ITERATION_LIMIT = "The iteration limit was reached before convergence."
    SEPARATION = (
        "Fitted probabilities numerically 0 or 1 occurred: the classes are (quasi-)separated, so some estimates "
        "and standard errors are not meaningful. Consider fewer predictors, merging factor levels, or a penalized fit."
    )

    @property
    def label(self) -> str:
        """A few words for summaries, e.g. ``"stalled"`` or ``"iteration limit"``."""
        return self.name.lower().replace("_", " ")

    def sentence(self, details: str) -> str:
        """The status's sentence with ``details`` in parentheses before its full stop.

        Examples
        --------
        >>> Status.CONVERGED.sentence("largest gradient component 1.00e-05 ≤ tol=0.0001")
        'The convergence criterion was met (largest gradient component 1.00e-05 ≤ tol=0.0001).'
        """
        return f"{self.value.removesuffix('.')} ({details})."

    # Names of earlier versions, kept as aliases so that model files that store them still load.
    MAX_ITER = ITERATION_LIMIT
    MAX_EPOCHS = ITERATION_LIMIT


@dataclass(frozen=True)
class FitInfo:
    """Solver report.

    Attributes
    ----------
    converged : whether the convergence criterion was met (status ``CONVERGED`` or
        ``CLOSED_FORM``; a separated binomial fit keeps the criterion's verdict).
    n_iter : iterations (IRLS, L-BFGS) or epochs (Adam/SGD) run; IRLS counts the
        preconditioned steps of its large-data start.
    status : a :class:`Status` member; ``message`` is its sentence with details.
    solver : ``"closed_form"``, ``"irls"``, ``"lbfgs"``, ``"adam"`` or ``"sgd"``.
    history : one row per iteration, chunk or epoch, with the columns of
        :data:`HISTORY_COLUMNS` for every solver (see :data:`HISTORY_DOC`).
    at_precision : ``STALLED`` L-BFGS only: the line search stalled with a gradient within
        what the training dtype can resolve, so the fit went as far as L-BFGS can in that
        dtype (no warning; a float64 fit can go further). False otherwise.
    """

    converged: bool
    n_iter: int
    status: Status
    solver: str
    message: str = ""
    history: pd.DataFrame = field(default_factory=lambda: history_frame([]))
    seconds: float = 0.0
    at_precision: bool = False

    def __post_init__(self):
        if list(self.history.columns) != list(HISTORY_COLUMNS):  # a model file written before the common schema
            object.__setattr__(self, "history", upgrade_history(self.history))
        if not self.message:
            object.__setattr__(self, "message", self.status.value)


def at_precision_before_field(status_name: str, message: str) -> bool:
    """:attr:`FitInfo.at_precision` of a model file written before the field: its message said so.

    Only the L-BFGS driver wrote "working precision" into a ``STALLED`` message, and files of
    format 1 predate that message, so this reads older files as they were summarized.

    Examples
    --------
    >>> at_precision_before_field("STALLED", "… stalled at working precision; a fit with dtype='float64' can go further.")
    True
    """
    return status_name == "STALLED" and "working precision" in message
