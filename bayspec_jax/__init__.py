"""bayspec_jax: OGIP spectral data for differentiable, batched fitting in JAX.

The library never changes global JAX settings: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` when you need it.
"""

from . import examples, fold, io, likelihood, models, simulate, stats, views
from .data import (
    AbstractLocationResponse,
    AbstractResponse,
    Auxiliary,
    Background,
    BalrogResponse,
    Data,
    DataUnit,
    Redistribution,
    Response,
    SaveError,
    Source,
    Spectrum,
)
from .io import OGIPError
from .params import Par, logunif, norm, unif

__version__ = "0.1.0"

__all__ = [
    "AbstractLocationResponse",
    "AbstractResponse",
    "Auxiliary",
    "Background",
    "BalrogResponse",
    "Data",
    "DataUnit",
    "OGIPError",
    "Par",
    "Redistribution",
    "Response",
    "SaveError",
    "Source",
    "Spectrum",
    "examples",
    "fold",
    "io",
    "likelihood",
    "logunif",
    "models",
    "norm",
    "simulate",
    "stats",
    "unif",
    "views",
]
