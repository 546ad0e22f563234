"""Training curves of a fitted network (or the deviance per iteration of IRLS)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralglm.errors import SpecificationError
from neuralglm.plots import _common

TRAIN_COLOR = _common.PALETTE[0]
VALIDATION_COLOR = _common.PALETTE[1]


def _history(result_or_history) -> tuple[pd.DataFrame, int | None]:
    """The history table and the epoch whose weights were kept (if the result says)."""
    if isinstance(result_or_history, pd.DataFrame):
        return result_or_history, None
    history = getattr(result_or_history, "history", None)
    if history is None:
        info = getattr(result_or_history, "info", None)
        history = getattr(info, "history", None)
    if not isinstance(history, pd.DataFrame):
        raise SpecificationError(
            "training_curves needs a fitted model with a training history, or the history DataFrame itself "
            f"(columns epoch, train_deviance, validation_deviance); got {type(result_or_history).__name__}."
        )
    best = getattr(result_or_history, "best_epoch", None)
    return history, None if best is None else int(best)


def _column(history: pd.DataFrame, *names: str) -> str | None:
    return next((name for name in names if name in history.columns), None)


def training_curves(result_or_history, ax=None):
    """Train and validation deviance per epoch, with the best validation epoch marked.

    Parameters
    ----------
    result_or_history : NetworkResult, FitResult or DataFrame
        A fitted model (its ``history``, or ``info.history`` for IRLS) or the history itself,
        with columns ``epoch`` (or ``iteration``), ``train_deviance`` (or ``deviance``) and
        optionally ``validation_deviance``.
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
    >>> history = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_deviance": [2.0, 1.2, 0.9, 0.8],
    ...                         "validation_deviance": [2.1, 1.4, 1.3, 1.35]})
    >>> ax = training_curves(history)
    >>> [line.get_label() for line in ax.lines][:2]
    ['train', 'validation']
    """
    history, best = _history(result_or_history)
    x_name = _column(history, "epoch", "iteration")
    train_name = _column(history, "train_deviance", "deviance")
    if x_name is None or train_name is None:
        raise SpecificationError(
            f"training_curves needs columns 'epoch' and 'train_deviance' in the history; it has {', '.join(map(str, history.columns))}."
        )
    validation_name = _column(history, "validation_deviance")
    ax = _common.new_axes(ax)
    x = history[x_name].to_numpy(dtype=np.float64)
    train = history[train_name].to_numpy(dtype=np.float64)
    marker = "o" if x.size <= 30 else None
    ax.plot(x, train, color=TRAIN_COLOR, linewidth=2.0, marker=marker, markersize=3.5, label="train", gid="train")
    values = [train]
    if validation_name is not None and np.isfinite(history[validation_name].to_numpy(dtype=np.float64)).any():
        validation = history[validation_name].to_numpy(dtype=np.float64)
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
    per_unit = train_name == "train_deviance"
    ylabel = "Mean deviance per unit weight" if per_unit else "Deviance"
    scale = " (log scale)" if ax.get_yscale() == "log" else ""
    _common.style(ax, "Training curves" if per_unit else "Deviance per IRLS iteration", x_name.capitalize(), ylabel + scale)
    ax.legend(fontsize=9, frameon=False)
    return ax
