"""Effects a statistician can read: partial dependence, ICE, ALE, permutation importance, H statistics, lift and Gini.

Every function takes a fitted model (:class:`~neuralglm.FitResult`, :class:`~neuralglm.NetworkResult`:
anything with ``predict``) and a DataFrame, and returns a tidy DataFrame; ``ng.plots`` draws
them (``effect_plot``, ``importance_plot``, ``interaction_plot``, ``lift_plot``,
``double_lift_plot``, ``lorenz_plot``). Averages weight each row by its prior × frequency
weights × exposure (the columns the model was fitted with), and values are per unit of
exposure: a claim frequency model's partial dependence is a claim rate.

>>> import neuralglm as ng
>>> df = ng.datasets.load_insurance()
>>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
>>> ng.effects.partial_dependence(fit, df, "group").columns.tolist()
['variable', 'value', 'estimate']

The modules are private; every public name here is a function.
"""

from neuralglm.effects._ale import ale as ale
from neuralglm.effects._dependence import ice as ice
from neuralglm.effects._dependence import partial_dependence as partial_dependence
from neuralglm.effects._importance import h_statistic as h_statistic
from neuralglm.effects._importance import permutation_importance as permutation_importance
from neuralglm.effects._lift import calibration_table as calibration_table
from neuralglm.effects._lift import double_lift as double_lift
from neuralglm.effects._lift import gini as gini
from neuralglm.effects._lift import lift as lift
from neuralglm.effects._lift import lorenz_curve as lorenz_curve

__all__ = [
    "ale",
    "calibration_table",
    "double_lift",
    "gini",
    "h_statistic",
    "ice",
    "lift",
    "lorenz_curve",
    "partial_dependence",
    "permutation_importance",
]
