"""Exponential families, links and the quantities derived from them."""

from neuralglm.family.family import (
    Binomial as Binomial,
    Family as Family,
    Gamma as Gamma,
    Gaussian as Gaussian,
    InverseGaussian as InverseGaussian,
    NegativeBinomial as NegativeBinomial,
    Poisson as Poisson,
    Tweedie as Tweedie,
)
from neuralglm.family.registry import get_family as get_family, get_link as get_link
