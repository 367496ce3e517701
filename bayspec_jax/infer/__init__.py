"""Inference: a fit `Problem`, maximum likelihood, and posteriors for NumPyro and BlackJAX.

Needs the optional extra ``bayspec_jax[infer]`` (numpyro, blackjax, optimistix).
"""

from .mle import FitResult, maximum_likelihood
from .posterior import blackjax_logdensity, numpyro_model
from .problem import Problem

__all__ = ["FitResult", "Problem", "blackjax_logdensity", "maximum_likelihood", "numpyro_model"]
