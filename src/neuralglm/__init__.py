"""neuralglm: neural networks as generalized linear models with learned features.

>>> import neuralglm as ng
>>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
...              family="poisson", exposure="holders")
>>> fit.coef.index[0]
'Intercept'

The public names below are imported on first use (PEP 562), so ``import neuralglm`` and the
command line's ``--help`` stay instant; JAX, pandas and matplotlib load only when needed, and
scikit-learn (optional) only for the estimators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from neuralglm._version import __version__ as __version__

# The solver subpackage `neuralglm.fit` shares its name with the public function `ng.fit`.
# Python binds a subpackage as an attribute of its parent when it is first imported, which
# would shadow the function; so load the (empty) subpackage now and drop the binding, and
# `ng.fit` resolves to the function through __getattr__ below.
importlib.import_module("neuralglm.fit")
del globals()["fit"]

# public name -> (module, attribute); attribute None means the module itself.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "FitResult": ("neuralglm.results.result", "FitResult"),
    "MultinomialResult": ("neuralglm.results.multinomial", "MultinomialResult"),
    "MultinomialNetworkResult": ("neuralglm.results.multinomial_network", "MultinomialNetworkResult"),
    "NetworkResult": ("neuralglm.results.network", "NetworkResult"),
    "NeuralGLMClassifier": ("neuralglm.sklearn", "NeuralGLMClassifier"),
    "NeuralGLMRegressor": ("neuralglm.sklearn", "NeuralGLMRegressor"),
    "add1": ("neuralglm.inference.deviance_tables", "add1"),
    "anova": ("neuralglm.inference.significance", "anova"),
    "bootstrap": ("neuralglm.bootstrapping", "bootstrap"),
    "conformal": ("neuralglm.conformal_prediction", "conformal"),
    "cross_validate": ("neuralglm.cross_validation", "cross_validate"),
    "datasets": ("neuralglm.datasets", None),
    "drop1": ("neuralglm.inference.deviance_tables", "drop1"),
    "effects": ("neuralglm.effects", None),
    "enable_compilation_cache": ("neuralglm.compilation_cache", "enable_compilation_cache"),
    "errors": ("neuralglm.errors", None),
    "families": ("neuralglm.family.family", None),
    "fit": ("neuralglm.network", "fit"),
    "get_family": ("neuralglm.family.registry", "get_family"),
    "get_link": ("neuralglm.family.registry", "get_link"),
    "glm": ("neuralglm.api", "glm"),
    "glm_fit": ("neuralglm.api", "glm_fit"),
    "heldout_deviance": ("neuralglm.evaluate", "heldout_deviance"),
    "heldout_deviance_explained": ("neuralglm.evaluate", "heldout_deviance_explained"),
    "influence": ("neuralglm.inference.influence", "influence"),
    "links": ("neuralglm.family.link", None),
    "localglmnet_selection": ("neuralglm.local_selection", "localglmnet_selection"),
    "load": ("neuralglm.results.serialize", "load"),
    "save": ("neuralglm.results.serialize", "save"),
    "step": ("neuralglm.selection", "step"),
    "plots": ("neuralglm.plots", None),
    "report": ("neuralglm.reporting", "report"),
}

# The scikit-learn estimators (ng.NeuralGLMRegressor, ng.NeuralGLMClassifier) resolve through
# __getattr__ but stay out of __all__, so `from neuralglm import *` works without scikit-learn.
__all__ = [
    "FitResult",
    "MultinomialNetworkResult",
    "MultinomialResult",
    "NetworkResult",
    "__version__",
    "add1",
    "anova",
    "bootstrap",
    "conformal",
    "cross_validate",
    "datasets",
    "drop1",
    "effects",
    "enable_compilation_cache",
    "errors",
    "families",
    "fit",
    "get_family",
    "get_link",
    "glm",
    "glm_fit",
    "heldout_deviance",
    "heldout_deviance_explained",
    "influence",
    "links",
    "load",
    "localglmnet_selection",
    "plots",
    "report",
    "save",
    "step",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'neuralglm' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from neuralglm import datasets as datasets
    from neuralglm import effects as effects
    from neuralglm import errors as errors
    from neuralglm import plots as plots
    from neuralglm.api import glm as glm
    from neuralglm.api import glm_fit as glm_fit
    from neuralglm.bootstrapping import bootstrap as bootstrap
    from neuralglm.compilation_cache import enable_compilation_cache as enable_compilation_cache
    from neuralglm.conformal_prediction import conformal as conformal
    from neuralglm.cross_validation import cross_validate as cross_validate
    from neuralglm.evaluate import heldout_deviance as heldout_deviance
    from neuralglm.evaluate import heldout_deviance_explained as heldout_deviance_explained
    from neuralglm.family import family as families
    from neuralglm.family import link as links
    from neuralglm.family.registry import get_family as get_family
    from neuralglm.family.registry import get_link as get_link
    from neuralglm.inference.deviance_tables import add1 as add1
    from neuralglm.inference.deviance_tables import drop1 as drop1
    from neuralglm.inference.influence import influence as influence
    from neuralglm.inference.significance import anova as anova
    from neuralglm.local_selection import localglmnet_selection as localglmnet_selection
    from neuralglm.network import fit as fit
    from neuralglm.reporting import report as report
    from neuralglm.results.multinomial import MultinomialResult as MultinomialResult
    from neuralglm.results.multinomial_network import MultinomialNetworkResult as MultinomialNetworkResult
    from neuralglm.results.network import NetworkResult as NetworkResult
    from neuralglm.results.result import FitResult as FitResult
    from neuralglm.results.serialize import load as load
    from neuralglm.results.serialize import save as save
    from neuralglm.selection import step as step
    from neuralglm.sklearn import NeuralGLMClassifier as NeuralGLMClassifier
    from neuralglm.sklearn import NeuralGLMRegressor as NeuralGLMRegressor
