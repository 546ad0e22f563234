"""Networks as plain pytrees: architecture, parameters, forward pass and objective."""

from neuralglm.model.architecture import ACTIVATIONS, Architecture
from neuralglm.model.objective import mean_half_deviance, objective, penalty
from neuralglm.model.params import Dense, Params, init_params
from neuralglm.model.predictor import hidden_features, linear_predictor

__all__ = [
    "ACTIVATIONS",
    "Architecture",
    "Dense",
    "Params",
    "hidden_features",
    "init_params",
    "linear_predictor",
    "mean_half_deviance",
    "objective",
    "penalty",
]
