"""Built-in example observation: a GBM-like instrument, a GRB spectrum and its background.

Everything is made here, from documented analytic forms, so the examples, the CLI and the
notebooks run anywhere without downloading data:

- Channels: 128 channels with bounds log-spaced from 8 keV to 1 MeV.
- Photon bins: 140 bins log-spaced from 5 keV to 50 MeV.
- Effective area: ``A(E) = 120 cm^2 * (1 - exp(-(E / 12 keV)^3)) / (1 + (E / 600 keV)^1.5)``
  (window absorption at low energy, loss of stopping power at high energy).
- Redistribution: a Gaussian photopeak of width ``sigma(E) = 0.028 E (E / 662 keV)^-0.5``
  (about 6.6% FWHM at 662 keV, NaI-like), integrated exactly over each channel.
- Source: a cutoff power law ``N(E) = K (E / 100 keV)^alpha exp(-E / Ec)`` with
  ``K = 0.05 ph/cm^2/s/keV``, ``alpha = -1``, ``Ec = 300 keV``, 10 s exposure.
- Background: ``b(E) = 4 (E / 50 keV)^-1.2`` counts/s/keV, estimated (as from a polynomial fit
  to a longer interval) with Gaussian errors ``sqrt(b / 10)``, the draw clipped at zero.

The source counts are Poisson draws (POISSERR = T); the background is written with STAT_ERR.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .io import PHA, RMF, write_pha, write_rmf

EXAMPLE_TRUTH = {"alpha": -1.0, "log_ec": math.log10(300.0), "log_k": math.log10(0.05)}
"""The true parameters of the example source (cpl: alpha, log10 Ec [keV], log10 K)."""

EXPOSURE = 10.0


def example_response() -> RMF:
    """The GBM-like response described in the module docstring, as an `io.RMF` record."""
    chan_edges = np.geomspace(8.0, 1000.0, 129)
    phot_edges = np.geomspace(5.0, 50000.0, 141)
    centres = np.sqrt(phot_edges[:-1] * phot_edges[1:])
    area = 120.0 * (1.0 - np.exp(-((centres / 12.0) ** 3))) / (1.0 + (centres / 600.0) ** 1.5)
    sigma = 0.028 * centres * (centres / 662.0) ** -0.5
    erf = np.vectorize(math.erf)
    z = (chan_edges[None, :] - centres[:, None]) / (math.sqrt(2.0) * sigma[:, None])
    cdf = 0.5 * (1.0 + erf(z))
    redistribution = np.diff(cdf, axis=1)
    redistribution[redistribution < 1e-12] = 0.0
    drm = redistribution * area[:, None]
    return RMF(
        phbin=np.stack([phot_edges[:-1], phot_edges[1:]], axis=1),
        chbin=np.stack([chan_edges[:-1], chan_edges[1:]], axis=1),
        drm=drm,
        channels=np.arange(1, 129),
        keywords={"TELESCOP": "EXAMPLE", "INSTRUME": "GBM-LIKE", "DETNAM": "NAI_EXAMPLE"},
    )


def cutoff_powerlaw(energy: np.ndarray, alpha: float, log_ec: float, log_k: float) -> np.ndarray:
    """Photon flux density [ph/cm^2/s/keV] of the example source."""
    return 10.0**log_k * (energy / 100.0) ** alpha * np.exp(-energy / 10.0**log_ec)


def _photon_flux_per_bin(phbin: np.ndarray, n_points: int = 33) -> np.ndarray:
    """Integrate the source over each photon bin (Simpson's rule in log energy)."""
    lo, hi = np.log(phbin[:, 0]), np.log(phbin[:, 1])
    t = np.linspace(0.0, 1.0, n_points)
    log_e = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    energy = np.exp(log_e)
    integrand = cutoff_powerlaw(energy, **EXAMPLE_TRUTH) * energy  # dE = E dlnE
    weights = np.ones(n_points)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return (integrand * weights).sum(axis=1) * (hi - lo) / (3.0 * (n_points - 1))


def example_spectra(seed: int = 20260101) -> tuple[PHA, PHA, RMF]:
    """The example source, background and response as `io` records (reproducible for a seed)."""
    rng = np.random.default_rng(seed)
    response = example_response()
    source_rate = _photon_flux_per_bin(response.phbin) @ response.drm
    widths = response.chbin[:, 1] - response.chbin[:, 0]
    centres = np.sqrt(response.chbin[:, 0] * response.chbin[:, 1])
    background_rate = 4.0 * (centres / 50.0) ** -1.2 * widths
    background_true = background_rate * EXPOSURE
    background_error = np.sqrt(background_true / 10.0)
    background = np.maximum(background_true + rng.normal(0.0, background_error), 0.0)
    counts = rng.poisson(source_rate * EXPOSURE + background_true).astype(float)
    keywords = dict(response.keywords, OBJECT="GRB EXAMPLE", RESPFILE="example.rsp",
                    BACKFILE="example.bkg")
    source = PHA(counts=counts, exposure=EXPOSURE, poisserr=True, channels=response.channels,
                 ebounds=response.chbin, keywords=keywords)
    bkg = PHA(counts=background, exposure=EXPOSURE, stat_err=background_error, poisserr=False,
              channels=response.channels, ebounds=response.chbin,
              keywords=dict(response.keywords, OBJECT="GRB EXAMPLE BACKGROUND", HDUCLAS2="BKG"))
    return source, bkg, response


def write_example_files(folder: str | os.PathLike, seed: int = 20260101,
                        overwrite: bool = True) -> dict[str, Any]:
    """Write the example as OGIP files ``example.src``, ``example.bkg``, ``example.rsp``.

    **Returns:** a dict with the paths under keys ``src``, ``bkg``, ``rsp``.
    """
    os.makedirs(folder, exist_ok=True)
    source, background, response = example_spectra(seed)
    paths = {key: os.path.join(os.fspath(folder), f"example.{key}") for key in ("src", "bkg", "rsp")}
    write_pha(paths["src"], source, overwrite=overwrite)
    write_pha(paths["bkg"], background, overwrite=overwrite)
    write_rmf(paths["rsp"], response, kind="rsp", overwrite=overwrite)
    return paths
