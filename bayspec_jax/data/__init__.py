"""Spectra, responses and data units: immutable equinox pytrees."""

from .response import (AbstractLocationResponse, AbstractResponse, Auxiliary, Redistribution,
                       Response)
from .balrog import BalrogResponse
from .spectrum import Background, Source, Spectrum
from .data import Data
from .stack import FoldSetup, GroupedCounts
from .storage import SaveError
from .unit import STATISTICS, DataUnit

__all__ = ["STATISTICS", "AbstractLocationResponse", "AbstractResponse", "Auxiliary",
           "Background", "BalrogResponse", "Data", "DataUnit", "FoldSetup", "GroupedCounts",
           "Redistribution", "Response", "SaveError", "Source", "Spectrum"]
