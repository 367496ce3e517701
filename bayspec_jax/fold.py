"""From a photon model to expected count rates: integrate over photon bins, fold through DRMs.

A model is any function ``model(energy, params) -> photon flux density`` [ph/cm^2/s/keV]
written with `jax.numpy`, elementwise in `energy` (any shape) for a `params` pytree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .data.stack import BandedBlock, FoldBlock, Stack

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


def integrate_joined(
    model: Model, params: Any, energies: Float[Array, " point"], ngrid: int
) -> Float[Array, " bin"]:
    """Photon flux per bin [ph/cm^2/s] on grids joined by `data.stack.join_grids`: bin ``b``
    spans ``energies[b (ngrid - 1)]`` to ``energies[(b + 1) (ngrid - 1)]``.

    The same trapezoids as `integrate_bins`, with each edge that two bins share evaluated once
    (a quarter fewer model evaluations for ``ngrid = 5``) on one flat array. The model's values
    are kept apart from the sums (an optimization barrier): XLA would otherwise compute them
    again in each of the two trapezoids that use a point.
    """
    flux = jax.lax.optimization_barrier(model(energies, params))
    trapezoids = 0.5 * (flux[1:] + flux[:-1]) * jnp.diff(energies)
    return jnp.sum(trapezoids.reshape(-1, ngrid - 1), axis=-1)


def stack_fluxes(model: Model, params: Any, stack: Stack) -> list[Float[Array, "row nphot"]]:
    """The photon flux on each row's grid, one ``(row, nphot)`` array per block of `stack`: the
    model runs once on the stack's energies."""
    if stack.joined:
        bins, spacer = integrate_joined(model, params, stack.energies, stack.ngrid), 1
    else:
        bins, spacer = integrate_bins(model, params, stack.energies, stack.ngrid), 0
    fluxes = []
    for block in stack.blocks:
        width = block.nphot + spacer
        rows = bins[block.grid_start:block.grid_start + block.n_rows * width]
        fluxes.append(rows.reshape(block.n_rows, width)[:, :block.nphot])
    return fluxes


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
