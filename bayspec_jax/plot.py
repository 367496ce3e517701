"""Plots for a fitted `Data` (matplotlib, optional extra ``bayspec_jax[plot]``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import likelihood
from .data.data import Data
from .fold import Model


def counts_spectrum(model: Model, params: Any, data: Data, path: str | None = None,
                    title: str | None = None):
    """Net count spectrum of each unit with the folded model, and pseudo-residuals below.

    **Arguments:**

    - `model`, `params`: the photon model and its parameter vector.
    - `data`: the `Data` (its fitted groups are shown).
    - `path`: write the figure there (PNG, PDF... by extension) when given.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rates = likelihood.model_ctsrate(model, params, data)
    residuals = likelihood.pseudo_residual(model, params, data)
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6),
                                         gridspec_kw={"height_ratios": [3, 1], "hspace": 0})
    lowest = np.inf
    for i, ((name, unit), rate, residual) in enumerate(zip(data.items(), rates, residuals)):
        color = f"C{i}"
        chbin = np.asarray(unit.rsp_chbin, dtype=float)
        centre = np.sqrt(chbin[:, 0] * chbin[:, 1])
        half = [centre - chbin[:, 0], chbin[:, 1] - centre]
        width = chbin[:, 1] - chbin[:, 0]
        spectrum = np.asarray(unit.net_ctsspec)
        top.errorbar(centre, spectrum, xerr=half, yerr=np.asarray(unit.net_ctsspec_error),
                     fmt="none", lw=1, color=color, label=f"{name} ({unit.stat})")
        top.hlines(np.asarray(rate) / width, chbin[:, 0], chbin[:, 1], color="k", lw=1.2,
                   label="model" if i == 0 else None)
        bottom.errorbar(centre, np.asarray(residual), xerr=half, fmt="none", color=color, lw=1)
        positive = spectrum[spectrum > 0]
        if positive.size:
            lowest = min(lowest, float(positive.min()))
    bottom.axhline(0.0, color="k", lw=0.8)
    top.set_xscale("log")
    top.set_yscale("log")
    if np.isfinite(lowest):
        top.set_ylim(bottom=0.3 * lowest)
    top.set_ylabel("counts / s / keV")
    bottom.set_ylabel("pseudo-residual")
    bottom.set_xlabel("energy [keV]")
    top.legend(frameon=False)
    if title:
        top.set_title(title)
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure
