"""The Fermi/GBM BALROG response generator in JAX: a detector's DRM as a differentiable
function of the sky position (gbm-drm-gen's method), and what it reads (the detector database,
the spacecraft attitude and position).

`drm_generator(detector, trigdat=..., time=..., out_edges=...)` returns a `DRMGenerator` whose
`matrix(ra, dec)` is gbm-drm-gen's matrix; pass it to `bayspec_jax.BalrogResponse` to fit the
position with the spectrum.
"""

from .database import (DETECTORS, DetectorDatabase, fetch_database, gbm_drm_gen_data_dir,
                       load_database)
from .edges import BGO_TTE_EDGES, NAI_TTE_EDGES
from .generator import DRMGenerator, drm_generator
from .geometry import SpacecraftState, spacecraft_state

__all__ = [
    "BGO_TTE_EDGES",
    "DETECTORS",
    "DRMGenerator",
    "DetectorDatabase",
    "NAI_TTE_EDGES",
    "SpacecraftState",
    "drm_generator",
    "fetch_database",
    "gbm_drm_gen_data_dir",
    "load_database",
    "spacecraft_state",
]
