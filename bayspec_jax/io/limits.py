"""Bounds on the values the readers accept: physically generous, arithmetic-safe.

A finite value can still be corrupt: an EXPOSURE of 1e300 s or a SPECRESP of 1e300 cm^2 is
finite, but its products (rate x exposure, flux x area x exposure, squares in chi^2) overflow,
and the library also runs in float32 (largest value about 3.4e38). Each bound is far beyond any
real instrument and keeps the products a fit forms (a few of these quantities multiplied, or
squared) inside float32, so that a value outside it can only be a damaged or mistaken file.
"""

from __future__ import annotations

MIN_EXPOSURE = 1e-9
"""Shortest EXPOSURE [s]: a nanosecond, below any detector's time resolution or dead time."""

MAX_EXPOSURE = 1e12
"""Longest EXPOSURE [s]: about 30 000 years; summed real exposures stay below 1e9 s."""

MIN_BACKSCAL = 1e-15
"""Smallest BACKSCAL: a (0.1 arcsec)^2 region is 2e-13 sr, a pixel fraction is > 1e-9."""

MAX_BACKSCAL = 1e15
"""Largest BACKSCAL: pixel counts of the largest detectors are < 1e9. The ratio of two
BACKSCALs then stays within 1e30, inside float32."""

MAX_COUNTS = 1e15
"""Largest |COUNTS| and STAT_ERR per channel [counts] (RATE x EXPOSURE for rate files): no
detector records 1e15 counts in one channel, and squares (chi^2) stay below 1e30."""

MAX_SYS_ERR = 100.0
"""Largest SYS_ERR (a fraction: 100 is 10 000 %, far beyond any calibration uncertainty)."""

MAX_ENERGY = 1e15
"""Largest energy bound [keV] (ENERG_HI, E_MAX): 1e18 eV, above every photon ever detected
(about 1e15 eV); E^2 stays below 1e30."""

MAX_AREA = 1e12
"""Largest matrix or effective-area value [cm^2]: 100 km^2, above any detector (the largest
neutrino telescopes have about 1 km^2 = 1e10 cm^2). Area x exposure stays below 1e24,
leaving float32 room for the photon flux."""

ENERGY_RTOL = 1e-6
"""Relative tolerance on bin edges that should meet (ENERG_HI[i] and ENERG_LO[i+1]): a few
float32 roundings (float32 has a relative precision of 6e-8)."""

NEGATIVE_AREA_TOLERANCE = 0.1
"""ARFs extrapolated below an instrument's band may dip slightly below zero (the example
LE/le.arf: 19 values down to -7 % of its peak). Negative SPECRESP values down to this fraction
of the peak are kept with a warning; deeper ones are an error. A matrix allows none."""
