"""Spectra, responses and (later) data units: immutable equinox pytrees."""

from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source, Spectrum

__all__ = ["Auxiliary", "Background", "Redistribution", "Response", "Source", "Spectrum"]
