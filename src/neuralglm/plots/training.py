"""Training curves of a fitted network (or the deviance per iteration of IRLS)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.fit.info import HISTORY_COLUMNS, upgrade_history
from neuralglm.plots import _common

TRAIN_COLOR = _common.PALETTE[0]
VALIDATION_COLOR = _common.PALETTE[1]


def _history(result_or_history) -> tuple[pd.DataFrame, int | None, str, str | None]:
    """The history table, the epoch whose weights were kept (a network's), the result's kind and its solver.

    A fitted model says what it is by its ``kind`` (``"glm"`` or ``"network"``), and its
    ``info.history`` has the one schema of every solver (:data:`HISTORY_COLUMNS`); a table
    alone has no kind (``"table"``) and may be in the columns of earlier versions.
    """
    if isinstance(result_or_history, pd.DataFrame):
        return _in_schema(result_or_history), None, "table", None
    kind = getattr(result_or_history, "kind", None)
    if kind not in ("glm", "network"):
        raise SpecificationError(
            "training_curves needs a fitted model (FitResult or NetworkResult) with a training history, or the history "
            f"DataFrame itself (columns {', '.join(HISTORY_COLUMNS)}); got {type(result_or_history).__name__}."
        )
    info = result_or_history.info
    best = result_or_history.best_epoch if kind == "network" else None
    return _in_schema(info.history), None if best is None else int(best), kind, info.solver


def _in_schema(history: pd.DataFrame) -> pd.DataFrame:
    """``history`` in the columns of :data:`HISTORY_COLUMNS` (a table of an earlier version is upgraded), else an error."""
    legacy = {"epoch", "train_deviance"} <= set(history.columns) or {"iteration", "deviance"} <= set(history.columns)
    if legacy:  # a table in the columns of earlier versions
        history = upgrade_history(history)
    if not {"iteration", "objective"} <= set(history.columns):
        raise SpecificationError(
            f"training_curves needs columns 'iteration' and 'objective' in the history (or, from earlier versions, 'epoch' and "
            f"'train_deviance'); it has {', '.join(map(str, history.columns))}."
        )
    return history


def training_curves(result_or_history, ax=None):
    """Train and validation deviance per epoch (or iteration), with the best validation epoch marked.

    Parameters
    ----------
    result_or_history : NetworkResult, FitResult or DataFrame
        A fitted model (its ``history``, or ``info.history`` for IRLS) or the history itself,
        with the columns every solver writes (:data:`neuralglm.fit.info.HISTORY_COLUMNS`):
        ``iteration``, ``objective`` (the mean deviance per unit weight) and
        ``validation_deviance`` are drawn.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The y axis is logarithmic when the curves span more than two decades. The marked epoch is
    the result's ``best_epoch`` when it has one (the weights early stopping kept), else the
    epoch of the lowest validation deviance.

    Examples
    --------
    >>> import pandas as pd
    >>> from neuralglm.plots import training_curves
    >>> history = pd.DataFrame({"iteration": [1, 2, 3, 4], "objective": [2.0, 1.2, 0.9, 0.8],
    ...                         "validation_deviance": [2.1, 1.4, 1.3, 1.35]})
    >>> ax = training_curves(history)
    >>> [line.get_label() for line in ax.lines][:2]
    ['train', 'validation']
    """
    history, best, kind, solver = _history(result_or_history)
    per_irls_iteration = kind == "glm"  # a GLM's history has a row per IRLS iteration
    x_name = "iteration" if per_irls_iteration or solver == "lbfgs" else "epoch"  # Adam/SGD, or a table alone: epochs
    ax = _common.new_axes(ax)
    x = history["iteration"].to_numpy(dtype=np.float64)
    train = history["objective"].to_numpy(dtype=np.float64)
    marker = "o" if x.size <= 30 else None
    ax.plot(x, train, color=TRAIN_COLOR, linewidth=2.0, marker=marker, markersize=3.5, label="train", gid="train")
    values = [train]
    if "validation_deviance" in history.columns and np.isfinite(history["validation_deviance"].to_numpy(dtype=np.float64)).any():
        validation = history["validation_deviance"].to_numpy(dtype=np.float64)
        values.append(validation)
        ax.plot(x, validation, color=VALIDATION_COLOR, linewidth=2.0, marker=marker, markersize=3.5, label="validation", gid="validation")
        finite = np.isfinite(validation)
        if best is None or best not in set(x[finite].astype(int)):
            best = int(x[finite][np.argmin(validation[finite])])
        best_value = float(validation[np.flatnonzero(x == best)[0]])
        ax.axvline(best, color=_common.REFERENCE_COLOR, linestyle=":", linewidth=1.0, zorder=1, gid="best_epoch_line")
        ax.plot(
            [best],
            [best_value],
            marker="*",
            markersize=14,
            color=VALIDATION_COLOR,
            markeredgecolor="white",
            linestyle="none",
            zorder=5,
            label=f"best {x_name} ({best})",
            gid="best_epoch",
        )
    if _common.spans_decades(np.concatenate(values)):
        ax.set_yscale("log")
    scale = " (log scale)" if ax.get_yscale() == "log" else ""
    title = "Deviance per IRLS iteration" if per_irls_iteration else "Training curves"
    _common.style(ax, title, x_name.capitalize(), "Mean deviance per unit weight" + scale)
    ax.legend(fontsize=9, frameon=False)
    return ax
