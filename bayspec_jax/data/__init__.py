"""Spectra, responses and data units: immutable equinox pytrees."""

from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source, Spectrum
from .data import Data
from .unit import STATISTICS, DataUnit

__all__ = ["STATISTICS", "Auxiliary", "Background", "Data", "DataUnit", "Redistribution", "Response",
           "Source", "Spectrum"]
