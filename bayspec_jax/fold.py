"""From a photon model to expected count rates: integrate over photon bins, fold through DRMs.

A model is any function ``model(energy, params) -> photon flux density`` [ph/cm^2/s/keV]
written with `jax.numpy`, elementwise in `energy` (any shape) for a `params` pytree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

from .data.stack import BandedBlock, FoldBlock

Model = Callable[[Array, Any], Array]


def integrate_bins(
    model: Model, params: Any, egrid: Float[Array, "*batch nbin_ngrid"], ngrid: int
) -> Float[Array, "*batch nbin"]:
    """Photon flux per photon bin [ph/cm^2/s]: the trapezoidal rule on `ngrid` points per bin.

    **Arguments:**

    - `model`: ``model(energy, params)``, elementwise in energy.
    - `params`: the model's parameters (any pytree).
    - `egrid`: ``ngrid`` energies per bin, edges included, flattened (`DataUnit.egrid`).
    - `ngrid`: points per bin.
    """
    energy = egrid.reshape(*egrid.shape[:-1], -1, ngrid)
    flux = model(energy, params)
    return jnp.sum(0.5 * (flux[..., 1:] + flux[..., :-1]) * jnp.diff(energy, axis=-1), axis=-1)


def fold(
    photon_flux: Float[Array, "*batch nphot"], drm: Float[Array, "*batch nphot ngroup"]
) -> Float[Array, "*batch ngroup"]:
    """Expected count rate per group [counts/s]: ``photon_flux @ drm`` (batched).

    A `drm` with a leading axis of 1 is shared by every row of `photon_flux`: one matrix product.
    """
    if drm.ndim == 3 and drm.shape[0] == 1:
        return photon_flux @ drm[0]
    return jnp.einsum("...p,...pg->...g", photon_flux, drm)


def fold_block(
    block: FoldBlock | BandedBlock, row_flux: Float[Array, "row nphot"]
) -> Float[Array, " group"]:
    """Count rate per group of one block from the photon flux on each row's grid."""
    if isinstance(block, BandedBlock):
        flux = row_flux[0]
        rates = [flux[lo:hi] @ band for band, (lo, hi) in zip(block.bands, block.windows)]
        return jnp.concatenate(rates)[block.take]
    flux = row_flux
    if block.photon_mask is not None:
        flux = jnp.where(block.photon_mask, flux, 0.0)
    rate = fold(flux, block.drm).ravel()
    return rate if block.take is None else rate[block.take]
