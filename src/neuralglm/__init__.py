"""neuralglm: neural networks as generalized linear models with learned features.

>>> import neuralglm as ng
>>> fit = ng.glm("claims ~ C(district) + group + age", ng.datasets.load_insurance(),
...              family="poisson", exposure="holders")
>>> fit.coef.index[0]
'Intercept'
"""

from neuralglm import datasets as datasets, errors as errors
from neuralglm.api import glm as glm, glm_fit as glm_fit
from neuralglm.family import family as families, link as links
from neuralglm.family.registry import get_family as get_family, get_link as get_link
from neuralglm.inference.significance import anova as anova
from neuralglm.network import fit as fit
from neuralglm.results.network import NetworkResult as NetworkResult
from neuralglm.results.result import FitResult as FitResult
from neuralglm.results.serialize import load as load

__version__ = "0.1.0"

__all__ = [
    "FitResult",
    "NetworkResult",
    "__version__",
    "anova",
    "datasets",
    "errors",
    "families",
    "fit",
    "get_family",
    "get_link",
    "glm",
    "glm_fit",
    "links",
    "load",
]
