"""The rows a plot draws: response, predictions and weights, from the model's training data or from given data.

Every plot that shows fitted values reads them here, so that the training rows, new data
(with the response) and a model saved without its training data behave the same way in all
of them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from neuralglm.errors import ModelFileError, SpecificationError
from neuralglm.family import derived
from neuralglm.plots import _common


@dataclass(frozen=True)
class Rows:
    """One entry per row: ``y`` (binomial: proportion), ``mu``, ``eta``, prior ``weights``,
    ``total_weights`` (× frequency weights), ``exposure`` (ones without one) and ``labels``;
    ``design`` is the :class:`~neuralglm.data.design.Design` they were read from."""

    y: np.ndarray
    mu: np.ndarray
    eta: np.ndarray
    weights: np.ndarray
    total_weights: np.ndarray
    exposure: np.ndarray
    labels: np.ndarray
    design: Any

    def deviance_residuals(self, fit) -> np.ndarray:
        """Signed deviance residuals of these rows, as ``fit.residuals("deviance")`` on the training rows."""
        with jax.enable_x64(True):
            values = derived.residuals(fit.family, fit.link, self.y, self.mu, self.weights, kind="deviance")
        return np.asarray(values, dtype=np.float64)


def no_training_data(caller: str) -> ModelFileError:
    """The error of a plot asked to draw the training rows of a model saved without them."""
    return ModelFileError(
        f"{caller}(fit) draws the model's training rows, which this model was saved without (include_data=False). "
        f"Pass data with the response, {caller}(fit, data), or save the model with include_data=True."
    )


def model_rows(fit, data, caller: str) -> Rows:
    """The training rows of ``fit`` (``data=None``) or the rows of ``data``, read as ``fit`` read its training data.

    For ``data``, the response, prior weights and offset/exposure columns are taken by the
    names used when fitting (as :func:`neuralglm.heldout_deviance` does), and the predictions
    come from ``fit.predict(data)``.
    """
    if data is None:
        try:
            mu = fit.predict().to_numpy(dtype=np.float64)
        except ModelFileError as error:
            raise no_training_data(caller) from error
        eta = fit.predict(type="link").to_numpy(dtype=np.float64)
        design = fit.design
    else:
        from neuralglm.evaluate import evaluation_design

        design = evaluation_design(fit, data)
        mu = fit.predict(data).to_numpy(dtype=np.float64)
        eta = fit.predict(data, type="link").to_numpy(dtype=np.float64)
    offset = np.asarray(design.offset, dtype=np.float64)
    return Rows(
        y=np.asarray(design.y, dtype=np.float64),
        mu=mu,
        eta=eta,
        weights=np.asarray(design.weights, dtype=np.float64),
        total_weights=np.asarray(design.total_weights, dtype=np.float64),
        exposure=np.exp(offset) if _common.exposure_name(fit) is not None else np.ones_like(mu),
        labels=np.asarray([str(label) for label in design.row_labels], dtype=object),
        design=design,
    )


def _is_axes(value) -> bool:
    if "matplotlib" not in sys.modules:  # nothing can be an Axes before matplotlib is imported
        return False
    from matplotlib.axes import Axes

    if isinstance(value, Axes):
        return True
    if isinstance(value, (list, tuple, np.ndarray)) and np.size(value) > 0:
        return all(isinstance(item, Axes) for item in np.asarray(value, dtype=object).ravel())
    return False


def data_and_axes(data, ax, caller: str):
    """``(data, ax)``: an Axes given second, where ``ax`` stood before ``data`` was added, still means ``ax``."""
    if _is_axes(data):
        if ax is not None:
            raise SpecificationError(f"The 'data' parameter of {caller} must be a DataFrame with the response; got matplotlib Axes.")
        return None, data
    return data, ax
