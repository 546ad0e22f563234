"""Plots of fitted models (matplotlib, imported only when a plot is drawn).

Every function takes ``ax=None`` (``axes=None`` for multi-panel figures), draws without
needing a display, and returns the Axes. They read only what a
:class:`~neuralglm.FitResult` and a :class:`~neuralglm.NetworkResult` share
(``predict``, ``residuals``, ``design``, ``history``), so a GLM and a network plot alike.

Plots of fitted values take ``data`` second: data with the response (e.g. a test set),
the training rows when omitted. A model saved without its training data
(``save(path, include_data=False)``) raises :class:`~neuralglm.errors.ModelFileError`
asking for them when ``data`` is omitted.

Every public name of ``neuralglm.plots`` is a plotting function; the modules that hold
them are private (``_diagnostics``, ``_fit``, ``_effects``, ``_features``, ``_calibration``, ``_architectures``,
``_effect_tables``, ``_lift``) or, for ``training``, named
unlike any function.
"""

from neuralglm.plots._architectures import embeddings as embeddings
from neuralglm.plots._architectures import local_coefficients as local_coefficients
from neuralglm.plots._architectures import shape_functions as shape_functions
from neuralglm.plots._bands import prediction_bands as prediction_bands
from neuralglm.plots._calibration import calibration_comparison as calibration_comparison
from neuralglm.plots._diagnostics import diagnostic_panel as diagnostic_panel
from neuralglm.plots._diagnostics import leverage_plot as leverage_plot
from neuralglm.plots._diagnostics import qq_plot as qq_plot
from neuralglm.plots._diagnostics import residuals_vs_fitted as residuals_vs_fitted
from neuralglm.plots._diagnostics import scale_location as scale_location
from neuralglm.plots._effect_tables import effect_plot as effect_plot
from neuralglm.plots._effect_tables import importance_plot as importance_plot
from neuralglm.plots._effect_tables import interaction_plot as interaction_plot
from neuralglm.plots._effects import effect_comparison as effect_comparison
from neuralglm.plots._effects import partial_dependence as partial_dependence
from neuralglm.plots._features import feature_curves as feature_curves
from neuralglm.plots._fit import calibration as calibration
from neuralglm.plots._fit import decision_surface as decision_surface
from neuralglm.plots._fit import observed_vs_fitted as observed_vs_fitted
from neuralglm.plots._lift import double_lift_plot as double_lift_plot
from neuralglm.plots._lift import lift_plot as lift_plot
from neuralglm.plots._lift import lorenz_plot as lorenz_plot
from neuralglm.plots.training import training_curves as training_curves

__all__ = [
    "calibration",
    "calibration_comparison",
    "decision_surface",
    "diagnostic_panel",
    "double_lift_plot",
    "effect_comparison",
    "effect_plot",
    "embeddings",
    "feature_curves",
    "importance_plot",
    "interaction_plot",
    "leverage_plot",
    "lift_plot",
    "local_coefficients",
    "lorenz_plot",
    "observed_vs_fitted",
    "partial_dependence",
    "prediction_bands",
    "qq_plot",
    "residuals_vs_fitted",
    "scale_location",
    "shape_functions",
    "training_curves",
]
