"""Spectra, responses and data units: immutable equinox pytrees."""

from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source, Spectrum
from .unit import STATISTICS, DataUnit

__all__ = ["STATISTICS", "Auxiliary", "Background", "DataUnit", "Redistribution", "Response",
           "Source", "Spectrum"]
