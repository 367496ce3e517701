"""The JOINT workload the benchmarks share: GBM NaI + BGO, PGSTAT, cutoff power law.

NaI = ME/me.{src,bkg,rsp} noticed [8, 900] keV, BGO = HE/he.{src,bkg,rsp} noticed
[300, 38000] keV, both pgstat, grouping {'min_sigma': 2, 'max_bin': 10}; ``models.cpl`` at
`THETA0`, where bayspec 0.4.5 gives `REF_LOGLIKE`. K copies of JOINT are 2K units, copy k's
responses scaled by ``1 + PERTURBATION * k`` as the peer harness perturbs its copies.

Imports only the standard library at module level: bayspec_jax is imported when a builder
runs, so that a worker can put its code snapshot on `sys.path` first.
"""

from __future__ import annotations

import os

from harness import SHARED

DATA_DIR = os.path.join(SHARED, "data", "bayspec-examples")
REF_LOGLIKE = -209.82250450302072
REF_RTOL = 1e-10
THETA0 = (-1.563, 2.691, 2.354)  # alpha, log10 Ec, log10 A
GRPG = {"min_sigma": 2, "max_bin": 10}
UNITS = (("nai", "ME", "me", [8, 900]), ("bgo", "HE", "he", [300, 38000]))
PERTURBATION = 1e-3


def joint_units(data_dir: str = DATA_DIR) -> list:
    """JOINT's ``(name, DataUnit)`` pairs, NaI then BGO, read from the example files."""
    import bayspec_jax as bj

    def path(d, p, suffix):
        return os.path.join(data_dir, d, f"{p}.{suffix}")

    return [(name, bj.DataUnit(src=path(d, p, "src"), bkg=path(d, p, "bkg"),
                               rsp=path(d, p, "rsp"), notc=notc, stat="pgstat", grpg=dict(GRPG)))
            for name, d, p, notc in UNITS]


def joint_copies(units: list, copies: int) -> list:
    """`copies` copies of the ``(name, unit)`` pairs `units`, named ``name{k}``, copy k's
    responses scaled by ``1 + PERTURBATION * k``; `units` themselves for one copy."""
    if copies == 1:
        return units
    import bayspec_jax as bj
    import numpy as np

    return [(f"{name}{k}", unit.replace(rsp=bj.Response(
                unit.rsp.chbin, unit.rsp.phbin,
                np.asarray(unit.rsp.drm) * (1.0 + PERTURBATION * k))))
            for k in range(copies) for name, unit in units]


def loglike_arrays(data) -> tuple:
    """What `likelihood.loglike` takes after the parameters, to pass as arguments:
    ``(data.stacked,)``. The one place here that hands the library's stacked form to
    `loglike` (``(data.setup, data.counts)`` once that form is split)."""
    return (data.stacked,)
