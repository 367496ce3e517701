"""Inference: a fit `Problem`, maximum likelihood, and posteriors for NumPyro and BlackJAX.

Needs the optional extra ``bayspec_jax[infer]`` (numpyro, blackjax, optimistix).
"""

from . import bounds
from .batch import BatchFitResult, batch_maximum_likelihood, batch_nuts, spectrum_stacks
from .flux import Flux, band_flux, flux, parameter_draws
from .goodness import Goodness, goodness
from .intervals import ConfidenceIntervals, confidence_intervals, profile_stat
from .localization import (
    LocalizationMap,
    credible_regions,
    enclosed_probability,
    localization_map,
    sky_grid,
)
from .mle import FitResult, maximum_likelihood
from .posterior import blackjax_logdensity, numpyro_model
from .problem import Problem
from .results import Posterior
from .sample import run_nuts

__all__ = ["FitResult", "Problem", "blackjax_logdensity", "maximum_likelihood", "numpyro_model"]
__all__ += ["BatchFitResult", "Posterior", "batch_maximum_likelihood", "batch_nuts", "run_nuts",
            "spectrum_stacks"]
__all__ += ["LocalizationMap", "credible_regions", "enclosed_probability", "localization_map",
            "sky_grid"]
__all__ += ["ConfidenceIntervals", "Flux", "Goodness", "band_flux", "bounds",
            "confidence_intervals", "flux", "goodness", "parameter_draws", "profile_stat"]
