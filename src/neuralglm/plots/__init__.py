"""Plots of fitted models (matplotlib, imported only when a plot is drawn).

Every function takes ``ax=None`` (``axes=None`` for multi-panel figures), draws without
needing a display, and returns the Axes. They read only what a
:class:`~neuralglm.FitResult` and a :class:`~neuralglm.NetworkResult` share
(``predict``, ``residuals``, fitted values, ``design``, ``history``).
"""

from neuralglm.plots.diagnostics import diagnostic_panel as diagnostic_panel
from neuralglm.plots.diagnostics import leverage_plot as leverage_plot
from neuralglm.plots.diagnostics import qq_plot as qq_plot
from neuralglm.plots.diagnostics import residuals_vs_fitted as residuals_vs_fitted
from neuralglm.plots.diagnostics import scale_location as scale_location
from neuralglm.plots.effects import effect_comparison as effect_comparison
from neuralglm.plots.effects import partial_dependence as partial_dependence
from neuralglm.plots.fit import calibration as calibration
from neuralglm.plots.fit import decision_surface as decision_surface
from neuralglm.plots.fit import observed_vs_fitted as observed_vs_fitted
from neuralglm.plots.training import training_curves as training_curves

__all__ = [
    "calibration",
    "decision_surface",
    "diagnostic_panel",
    "effect_comparison",
    "leverage_plot",
    "observed_vs_fitted",
    "partial_dependence",
    "qq_plot",
    "residuals_vs_fitted",
    "scale_location",
    "training_curves",
]
