"""Exponential families, links and the quantities derived from them."""

from neuralglm.family.family import (
    Binomial as Binomial,
)
from neuralglm.family.family import (
    Family as Family,
)
from neuralglm.family.family import (
    Gamma as Gamma,
)
from neuralglm.family.family import (
    Gaussian as Gaussian,
)
from neuralglm.family.family import (
    InverseGaussian as InverseGaussian,
)
from neuralglm.family.family import (
    NegativeBinomial as NegativeBinomial,
)
from neuralglm.family.family import (
    Poisson as Poisson,
)
from neuralglm.family.family import (
    Tweedie as Tweedie,
)
from neuralglm.family.quasi import Quasi as Quasi
from neuralglm.family.quasi import QuasiBinomial as QuasiBinomial
from neuralglm.family.quasi import QuasiPoisson as QuasiPoisson
from neuralglm.family.registry import get_family as get_family
from neuralglm.family.registry import get_link as get_link
