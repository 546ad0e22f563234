r"""K-fold cross-validation of fitted models: held-out deviance with standard errors, paired between models.

``cross_validate`` refits every model on the same folds (``fit.refit``: each with its own
formula, family, link and settings) and scores the held-out rows as
:func:`neuralglm.heldout_deviance` does. What it reports, per model, over folds
:math:`k = 1..K` with held-out deviance :math:`D_k`, total prior × frequency weight
:math:`W_k` and null deviance :math:`D^0_k` (intercept + offset, fitted on the training
folds):

- the mean held-out deviance per observation :math:`\bar m = \sum_k D_k / \sum_k W_k`
  (per unit of weight: per row when unweighted, per trial for binomial trials, per counted
  row with frequency weights);
- its standard error across folds, from the fold means :math:`m_k = D_k / W_k` weighted by
  :math:`W_k`, :math:`\sqrt{\sum_k W_k (m_k - \bar m)^2 / \sum_k W_k / (K - 1)}` (as R's
  ``cv.glmnet``);
- the % of the null deviance explained on held-out rows, :math:`100\,(1 - \sum_k D_k / \sum_k D^0_k)`;
- the paired difference to the first model, :math:`\delta_k = m_k - m_k^{\text{first}}`
  averaged and given a standard error the same way. Pairing removes the variation shared by
  both models (a fold of hard rows is hard for both), so the difference is far more precise
  than either mean.

Fold standard errors are approximate: training folds overlap, so fold means are positively
correlated and the standard error tends to be too small (Bengio & Grandvalet 2004, *No
unbiased estimator of the variance of K-fold cross-validation*, JMLR 5). Read a difference
of one or two standard errors as "no clear difference", not as a test.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd

from neuralglm.data.frame import to_pandas
from neuralglm.errors import DataError, DataWarning, ModelFileError, SpecificationError
from neuralglm.evaluate import evaluation_design, heldout_scores
from neuralglm.results.call import no_call_error

# Arguments of ng.glm / ng.fit that may be arrays with one value per row of the data.
_ROW_ARGUMENTS = ("offset", "exposure", "weights", "freq_weights")

TABLE_COLUMNS = ("deviance per obs", "SE", "% deviance explained", "difference", "SE difference")


def fold_ids(n_rows: int, folds: int = 5, seed: int = 0) -> np.ndarray:
    """The fold (0 … ``folds`` − 1) of each of ``n_rows`` rows: a random permutation cut into near-equal parts.

    :func:`cross_validate` uses these folds for an integer ``folds``; pass the array (or your
    own labels, e.g. one fold per group) as ``folds=`` to reuse them.

    Examples
    --------
    >>> fold_ids(10, folds=3, seed=0)
    array([1, 0, 2, 1, 0, 2, 1, 0, 2, 0])
    >>> [int((fold_ids(10, folds=3, seed=0) == k).sum()) for k in range(3)]
    [4, 3, 3]
    """
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= max(n_rows, 2):
        raise SpecificationError(
            f"The 'folds' parameter of cross_validate must be an integer in [2, {n_rows}] (the rows). Got {folds!r} instead."
        )
    ids = np.empty(n_rows, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n_rows)] = np.arange(n_rows) % int(folds)
    return ids


@dataclass(frozen=True)
class _Fold:
    """One model scored on one held-out fold."""

    deviance: float
    null_deviance: float
    weight: float
    rows: int
    y: np.ndarray
    total_weights: np.ndarray


@overload
def cross_validate(models: Mapping, data, folds=..., seed: int = ..., *, return_folds: Literal[False] = ...) -> pd.DataFrame: ...
@overload
def cross_validate(
    models: Mapping, data, folds=..., seed: int = ..., *, return_folds: Literal[True]
) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def cross_validate(models: Mapping, data, folds=5, seed: int = 0, *, return_folds: bool = False):
    """K-fold cross-validated deviance of several models on the same folds, with standard errors.

    Every model is refitted on each training fold with its own settings (``model.refit``)
    and scored on the held-out fold: the same folds for all models, exposure, offsets and
    weights read as in training (columns re-read from the fold's rows; arrays given for
    ``offset``, ``exposure``, ``weights`` or ``freq_weights`` are cut to the fold's rows).
    The formulas of :mod:`neuralglm.cross_validation` say what each column is.

    Parameters
    ----------
    models : dict of str to FitResult or NetworkResult
        Fitted models (``ng.glm`` or ``ng.fit``), by name; the first is the reference of the
        paired differences. All must model the same response with the same family.
    data : DataFrame
        The rows to cross-validate on (usually the data the models were fitted to).
    folds : int or array of labels
        Number of folds (rows assigned at random by :func:`fold_ids`), or one fold label per
        row of ``data`` (e.g. a group column, for grouped cross-validation).
    seed : int
        Seed of the random fold assignment: the same seed gives the same folds.
    return_folds : bool
        Also return the per-fold numbers.

    Returns
    -------
    DataFrame
        One row per model: ``deviance per obs``, ``SE``, ``% deviance explained``,
        ``difference`` (to the first model) and ``SE difference``. With ``return_folds=True``,
        ``(table, per_fold)``, ``per_fold`` indexed by (model, fold) with the held-out rows,
        weight, deviance, null deviance, deviance per obs and difference of each fold.

    Raises
    ------
    ModelFileError
        A model loaded from a file has no call to refit.
    DataError
        A held-out fold holds a factor level its training folds lack: the model cannot
        predict it. Folds are not stratified (with several factors no split can keep every
        level in every training fold); use fewer folds, merge rare levels, or pass ``folds=``.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> full = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> small = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> table = ng.cross_validate({"full": full, "age only": small}, df, folds=4)
    >>> table.columns.tolist()
    ['deviance per obs', 'SE', '% deviance explained', 'difference', 'SE difference']
    >>> bool(table.loc["age only", "difference"] > 2 * table.loc["age only", "SE difference"])
    True
    """
    named = _check_models(models)
    frame = to_pandas(data, "data")
    arrays = {name: _row_arrays(name, model, len(frame)) for name, model in named.items()}
    labels = _fold_labels(folds, len(frame), seed)
    complete = _rows_every_model_uses(named, frame)
    if complete is not None:
        frame, labels = frame.iloc[complete], labels[complete]
        arrays = {name: {argument: values[complete] for argument, values in given.items()} for name, given in arrays.items()}
    scores = {
        name: [_score_fold(name, model, frame, arrays[name], labels == label, label) for label in np.unique(labels).tolist()]
        for name, model in named.items()
    }
    _check_comparable(named, scores)
    table, per_fold = _summarize(scores, np.unique(labels).tolist())
    return (table, per_fold) if return_folds else table


def _check_models(models) -> dict:
    if not isinstance(models, Mapping) or not models:
        raise SpecificationError(
            f"The 'models' parameter of cross_validate must be a non-empty dict of name to fitted model, e.g. {{'GLM': glm, 'network': net}}. Got {type(models).__name__} instead."
        )
    named = {str(name): model for name, model in models.items()}
    for name, model in named.items():
        if getattr(model, "kind", None) == "multinomial":
            raise SpecificationError(f"cross_validate: model {name!r} is a multinomial fit, which cross_validate does not support yet.")
        if not hasattr(model, "refit") or not hasattr(model, "family"):
            raise SpecificationError(f"cross_validate: model {name!r} is a {type(model).__name__}, not a fitted model of ng.glm or ng.fit.")
        if model.call is None:
            raise ModelFileError(f"cross_validate: model {name!r} cannot be refitted: {no_call_error()}")
        if model.call.name == "glm_fit":
            raise SpecificationError(
                f"cross_validate: model {name!r} was fitted by ng.glm_fit from a matrix, which has no formula to read the folds' rows with; fit it with ng.glm(formula, data)."
            )
    first = next(iter(named.values()))
    for name, model in named.items():
        if type(model.family) is type(first.family) and model.family != first.family:
            raise SpecificationError(
                f"cross_validate: model {name!r} has family {model.family}, the first model {first.family}: the deviance of "
                "this family depends on its parameter, so their deviances are not on one scale. Fix the parameter to one "
                "value for all models (e.g. family='negative_binomial(0.5)' instead of an estimated theta)."
            )
        if type(model.family) is not type(first.family):
            raise SpecificationError(
                f"cross_validate: model {name!r} has family {model.family}, the first model {first.family}: deviances of different families are not on one scale, so compare models of one family."
            )
    return named


def _fold_labels(folds, n_rows: int, seed: int) -> np.ndarray:
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        return fold_ids(n_rows, int(folds), seed)
    labels = np.asarray(folds)
    if labels.ndim != 1 or len(labels) != n_rows:
        raise SpecificationError(
            f"The 'folds' parameter of cross_validate must be a number of folds or one fold label per row of data ({n_rows}). Got {np.shape(labels)} labels instead."
        )
    if len(np.unique(labels)) < 2:
        raise SpecificationError("The 'folds' labels of cross_validate must name at least 2 folds. Got 1 instead.")
    return labels


def _row_arrays(name: str, model, n_rows: int) -> dict[str, np.ndarray]:
    """The per-row arrays of the model's call (offset, exposure, weights given as arrays, not column names)."""
    arrays = {}
    for argument in _ROW_ARGUMENTS:
        value = model.call.arguments.get(argument)
        if value is None or isinstance(value, str):
            continue
        values = np.asarray(value)
        if values.ndim != 1 or len(values) != n_rows:
            raise DataError(
                f"cross_validate: model {name!r} was fitted with an {argument} array of {len(values)} values, and the data have {n_rows} rows; give {argument} as a column of the data, or cross-validate on the rows it belongs to."
            )
        arrays[argument] = values
    return arrays


def _rows_every_model_uses(named: dict, frame: pd.DataFrame) -> np.ndarray | None:
    """Positions of the rows complete for every model, when some model was fitted with ``missing="drop"``.

    Such a model's refits drop its incomplete rows, but a held-out row must be scored by every
    model, or the models' deviances would sum over different rows: as R's ``na.omit`` over the
    union of the models' variables, those rows leave the data before the folds are drawn.
    """
    dropping = [model for model in named.values() if model.call.arguments.get("missing") == "drop"]
    if not dropping:
        return None
    by_position = frame.set_axis(pd.RangeIndex(len(frame)))
    keep = np.ones(len(frame), dtype=bool)
    for model in named.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # the model was fitted so; its fit already warned
            used = evaluation_design(model, by_position, missing="drop").row_labels.astype(np.int64)
        keep &= np.isin(np.arange(len(frame)), used)
    return np.flatnonzero(keep)


def _score_fold(name: str, model, frame: pd.DataFrame, arrays: dict, held_out: np.ndarray, label) -> _Fold:
    """Refit ``model`` on the rows outside the fold and score it on the fold's rows."""
    train, test = frame.iloc[np.flatnonzero(~held_out)], frame.iloc[np.flatnonzero(held_out)]
    try:
        fit = model.refit(train, **{argument: values[~held_out] for argument, values in arrays.items()})
    except DataError as error:
        raise DataError(f"cross_validate: refitting model {name!r} without fold {label!r}: {error}") from error
    try:
        scores = heldout_scores(fit, test, **{argument: values[held_out] for argument, values in arrays.items()})
    except DataError as error:
        if "not seen when fitting" not in str(error):
            raise DataError(f"cross_validate: fold {label!r}, model {name!r}: {error}") from error
        reason = str(error).split(". ")[0].rstrip(".")  # the first sentence: what is wrong; the remedy is ours
        raise DataError(
            f"cross_validate: fold {label!r} holds rows that model {name!r}, refitted on the other folds, cannot predict ({reason}); use fewer folds, merge rare levels, or pass folds= labels that keep every level in some training fold."
        ) from error
    design = scores.design
    weights = np.asarray(design.total_weights, dtype=np.float64)
    return _Fold(scores.deviance, scores.null_deviance, float(weights.sum()), int(np.sum(weights > 0)), np.asarray(design.y), weights)


def _check_comparable(models: dict, scores: dict) -> None:
    """Deviances compare only on the same response and weights: refuse models that read other ones."""
    first_name, first = next(iter(scores.items()))
    for name, folds in scores.items():
        for mine, theirs in zip(folds, first, strict=True):
            if mine.y.shape != theirs.y.shape or not (
                np.array_equal(mine.y, theirs.y) and np.array_equal(mine.total_weights, theirs.total_weights)
            ):
                raise SpecificationError(
                    f"cross_validate: models {name!r} and {first_name!r} read different responses or weights from the same rows, so their deviances are not comparable; compare models of one response and one weighting."
                )


def _weighted_mean_and_se(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(weights * values) / np.sum(weights))
    spread = float(np.sum(weights * (values - mean) ** 2) / np.sum(weights))
    return mean, float(np.sqrt(spread / (len(values) - 1)))


def _summarize(scores: dict, labels: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    first = next(iter(scores.values()))
    first_means = np.array([fold.deviance / fold.weight for fold in first])
    rows, fold_rows = {}, []
    for name, folds in scores.items():
        deviance = np.array([fold.deviance for fold in folds])
        weight = np.array([fold.weight for fold in folds])
        means = deviance / weight
        mean, se = _weighted_mean_and_se(means, weight)
        difference, difference_se = _weighted_mean_and_se(means - first_means, weight)
        explained = 100.0 * (1.0 - deviance.sum() / sum(fold.null_deviance for fold in folds))
        rows[name] = dict(zip(TABLE_COLUMNS, (mean, se, explained, difference, difference_se), strict=True))
        for label, fold, fold_mean, first_mean in zip(labels, folds, means, first_means, strict=True):
            fold_rows.append(
                {
                    "model": name,
                    "fold": label,
                    "rows": fold.rows,
                    "weight": fold.weight,
                    "deviance": fold.deviance,
                    "null deviance": fold.null_deviance,
                    "deviance per obs": fold_mean,
                    "difference": fold_mean - first_mean,
                }
            )
    per_fold = pd.DataFrame(fold_rows).set_index(["model", "fold"])
    return pd.DataFrame.from_dict(rows, orient="index"), per_fold
