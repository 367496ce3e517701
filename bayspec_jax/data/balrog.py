"""`BalrogResponse`: a Fermi/GBM response that follows the source's sky position, computed by a
BALROG DRM provider (Burgess et al. 2018, MNRAS 476, 1427).

The provider is our JAX generator (`bayspec_jax.balrog.drm_generator`), whose DRM is traced
with the likelihood (gradients in ra and dec included), or any object with gbm-drm-gen's
interface: `set_location(ra, dec)`, then `matrix` ``(chan, phot)``, and the edges `ebounds`
``(chan + 1,)`` and `monte_carlo_energies` ``(phot + 1,)`` [keV]; such a host provider is called
through `jax.pure_callback` (value only: no derivative flows through it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..balrog.generator import DRMGenerator
from ..params import Par
from .response import AbstractLocationResponse, _disabled_loader

_FROM_PROVIDER = "its DRM comes from the BALROG provider"


def _edges(provider: Any, attribute: str) -> np.ndarray:
    """The provider's energy edges `attribute`, checked: 1-D, at least two, increasing."""
    try:
        edges = np.asarray(getattr(provider, attribute), dtype=np.float64)
    except AttributeError:
        raise ValueError(f"BalrogResponse: the provider {type(provider).__name__} has no "
                         f"{attribute!r} (gbm-drm-gen's DRM interface)") from None
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(
            np.diff(edges) <= 0):
        raise ValueError(f"BalrogResponse: the provider's {attribute} must be increasing finite "
                         f"energy edges, got shape {edges.shape}")
    return edges


@dataclasses.dataclass(frozen=True, eq=False)
class _HostDRM:
    """The provider called on the host: ``(ra, dec) -> DRM (phot, chan)``, NaN taken as 0
    (hashable by identity, as `jax.pure_callback` needs)."""

    provider: Any
    n_channels: int
    n_photon_bins: int

    def __call__(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        self.provider.set_location(float(ra), float(dec))
        matrix = np.array(self.provider.matrix, dtype=np.float64)
        expected = (self.n_channels, self.n_photon_bins)
        if matrix.shape != expected:
            raise ValueError(f"BalrogResponse: the provider's matrix has shape {matrix.shape}, "
                             f"expected (chan, phot) = {expected}")
        matrix[np.isnan(matrix)] = 0.0
        return matrix.T.astype(jnp.result_type(float))


class BalrogResponse(AbstractLocationResponse):
    """A location-dependent response from a BALROG DRM provider, as bayspec's.

    **Arguments:**

    - `balrog_drm`: the provider: a `bayspec_jax.balrog.DRMGenerator` (the DRM is then a `jnp`
        function of ra and dec: jitted, vmapped and differentiable), or any object with
        gbm-drm-gen's interface (its `DRMGen` or `BALROG_DRM`: `set_location`, `matrix`,
        `ebounds`, `monte_carlo_energies`), called on the host.
    - `ra`, `dec`: `Par`s of the sky position [deg]; default free, uniform on [0, 360) and
        [-90, 90].
    - `factor`: a multiplicative `Par` (default frozen at 1).
    - `name`: a label.

    Channel bins come from `ebounds`, photon bins from the Monte Carlo energies; NaN in the
    provider's matrix is taken as 0. The file loaders of `Response` do not apply.
    """

    generator: DRMGenerator | None = eqx.field(kw_only=True)
    host_drm: _HostDRM | None = eqx.field(static=True, kw_only=True)

    def __init__(self, balrog_drm: Any, ra: Par | None = None, dec: Par | None = None,
                 factor: Par | None = None, name: str = "balrog"):
        is_generator = isinstance(balrog_drm, DRMGenerator)
        if not is_generator and not callable(getattr(balrog_drm, "set_location", None)):
            raise ValueError(f"BalrogResponse: the provider {type(balrog_drm).__name__} has no "
                             "set_location(ra, dec) (gbm-drm-gen's DRM interface)")
        ebounds = _edges(balrog_drm, "ebounds")
        energies = _edges(balrog_drm, "monte_carlo_energies")
        self.generator = balrog_drm if is_generator else None
        self.host_drm = None if is_generator else _HostDRM(balrog_drm, ebounds.size - 1,
                                                           energies.size - 1)
        self.chbin = np.stack([ebounds[:-1], ebounds[1:]], axis=1)
        self.phbin = np.stack([energies[:-1], energies[1:]], axis=1)
        self.ra, self.dec, self.factor = ra, dec, factor
        self.name, self.file = name, None

    @property
    def balrog_drm(self) -> Any:
        """The provider (bayspec's name)."""
        return self.generator if self.host_drm is None else self.host_drm.provider

    def drm_at(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
               ) -> Float[Array, "phot chan"]:
        """The provider's DRM at ``(ra, dec)`` [deg], ``(phot, chan)``: the generator's `jnp`
        function, or a host call (`jax.pure_callback`, one position at a time under `vmap`)."""
        dtype = jnp.result_type(float)
        if self.host_drm is None:
            return self.generator.drm(jnp.asarray(ra, dtype), jnp.asarray(dec, dtype))
        shape = jax.ShapeDtypeStruct((self.n_photon_bins, self.n_channels), dtype)
        return jax.pure_callback(self.host_drm, shape, jnp.asarray(ra, dtype),
                                 jnp.asarray(dec, dtype), vmap_method="sequential")

    def fold_at(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""],
                photon_flux: Float[Array, " phot"]) -> Float[Array, " chan"]:
        """The count rate per channel at ``(ra, dec)``: the generator's `fold` (which does not
        form the scattered DRM), or the host DRM times the flux."""
        if self.host_drm is None:
            dtype = jnp.result_type(float)
            return self.generator.fold(jnp.asarray(ra, dtype), jnp.asarray(dec, dtype),
                                       photon_flux)
        return photon_flux @ self.drm_at(ra, dec)

    from_rsp = _disabled_loader("from_rsp", _FROM_PROVIDER)
    from_rsp2 = _disabled_loader("from_rsp2", _FROM_PROVIDER)
    from_plain = _disabled_loader("from_plain", _FROM_PROVIDER)
    from_rmf_arf = _disabled_loader("from_rmf_arf", _FROM_PROVIDER)
