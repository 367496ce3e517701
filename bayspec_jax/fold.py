"""From a photon model to expected count rates: integrate over photon bins, fold through DRMs.

`model_rate` is the one path from a model to a setup's count rates; `group_factors` the one
place where the data-layer parameters are resolved.

A model is any function ``model(energy, params) -> photon flux density`` [ph/cm^2/s/keV]
written with `jax.numpy`, elementwise in `energy` (any shape) for a `params` pytree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .data.stack import BandedBlock, Block, DynamicBlock, FoldSetup

Model = Callable[[Array, Any], Array]

DataParams = Mapping[str, Any] | None
"""Optional data-layer parameters by name, each an array ``(n_units,)`` in `Data` order:
``sf`` (source factor), ``bf`` (background factor), ``rf`` (response factor), ``ra``, ``dec``
(the position at which location-dependent responses are evaluated); absent names use the
units' own `Par` values."""


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


def stack_fluxes(model: Model, params: Any, setup: FoldSetup) -> list[Float[Array, "row nphot"]]:
    """The photon flux on each row's grid, one ``(row, nphot)`` array per block of `setup`: the
    model runs once on the setup's energies."""
    if setup.joined:
        bins, spacer = integrate_joined(model, params, setup.energies, setup.ngrid), 1
    else:
        bins, spacer = integrate_bins(model, params, setup.energies, setup.ngrid), 0
    fluxes = []
    for block in setup.blocks:
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


def fold_block(block: Block, row_flux: Float[Array, "row nphot"],
               location: tuple[Array, Array] | None = None) -> Float[Array, " group"]:
    """Count rate per group of one block from the photon flux on each row's grid.

    `location` is the ``(ra, dec)`` of a `DynamicBlock`'s unit (its response is evaluated
    there); constant blocks ignore it.
    """
    if isinstance(block, DynamicBlock):
        return block.fold(*location, row_flux[0])
    if isinstance(block, BandedBlock):
        flux = row_flux[0]
        rates = [flux[lo:hi] @ band for band, (lo, hi) in zip(block.bands, block.windows)]
        return jnp.concatenate(rates)[block.take]
    flux = row_flux
    if block.photon_mask is not None:
        flux = jnp.where(block.photon_mask, flux, 0.0)
    rate = fold(flux, block.drm).ravel()
    return rate if block.take is None else rate[block.take]


class GroupFactors(NamedTuple):
    """The data-layer factors of a setup's groups: `ts`, `tb` (efficiencies times `sf`, `bf`)
    and `rf` ``(group,)``; `ra`, `dec` ``(unit,)``, the setup's order."""

    ts: Float[Array, " group"]
    tb: Float[Array, " group"]
    rf: Float[Array, " group"]
    ra: Float[Array, " unit"]
    dec: Float[Array, " unit"]


def data_value(data_params: DataParams, label: str, index: Any, own: Any = None) -> Any:
    """Data-layer parameter `label` of the units at `index` (`Data` order): from `data_params`
    where it names `label`, else `own` (the units' own values). The one rule every caller
    (`group_factors`, `views`) applies."""
    if data_params is None or label not in data_params:
        return own
    return jnp.asarray(data_params[label])[index]


def group_factors(setup: FoldSetup, data_params: DataParams = None) -> GroupFactors:
    """The data-layer factors every caller uses: from `data_params` where named there (arrays
    ``(n_units,)`` in `Data` order), else the setup's own (the units' `Par` values)."""
    positions = jnp.asarray(setup.positions) if data_params else None
    sf, bf, rf = (data_value(data_params, label, positions) for label in ("sf", "bf", "rf"))
    ra, dec = (data_value(data_params, label, positions, getattr(setup, label))
               for label in ("ra", "dec"))
    unit = setup.group_unit
    return GroupFactors(
        ts=setup.ts if sf is None else setup.group_src_efficiency * sf[unit],
        tb=setup.tb if bf is None else setup.group_bkg_efficiency * bf[unit],
        rf=setup.group_rf if rf is None else rf[unit], ra=ra, dec=dec)


def model_rate(model: Model, params: Any, setup: FoldSetup,
               factors: GroupFactors | None = None) -> Float[Array, " group"]:
    """The model's count rate per group of `setup` [counts/s], the response factor applied:
    the one fold path (likelihood, views, simulation and batch fits call it).

    **Arguments:**

    - `model`, `params`: the photon model and its parameters.
    - `setup`: a `FoldSetup` (for the fit's groups, the rebinning grid or single channels).
    - `factors`: `group_factors(setup, data_params)`; default: the setup's own.
    """
    factors = group_factors(setup) if factors is None else factors
    rates = [fold_block(block, rows, _location(block, factors))
             for block, rows in zip(setup.blocks, stack_fluxes(model, params, setup))]
    rate = rates[0] if len(rates) == 1 else jnp.concatenate(rates)
    return rate * factors.rf


def _location(block: Block, factors: GroupFactors) -> tuple[Array, Array] | None:
    if not isinstance(block, DynamicBlock):
        return None
    member = block.members[0]
    return factors.ra[member], factors.dec[member]
