"""Stacked units: per-unit arrays padded to a common shape, with masks, for one `vmap`-like pass.

Units are sorted into a few stacks, one statistic each, so that no unit is padded to more than
twice its own size (`plan_stacks`). Padded photon bins have zero
response rows and are masked before folding; padded groups carry harmless counts and are
masked out of the likelihood, so padding changes no result.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ._convert import float_array

MAX_PADDING = 2.0
"""No unit of a stack is padded to more than this factor of its own size (photon bins x
groups)."""


class Stack(eqx.Module):
    """Units of one statistic, padded to ``(nphot, ngroup)`` with masks (leading axis: unit).

    **Fields:** `egrid` ``(grid, nphot * ngrid)``: the distinct energy grids of the stack's units
    (the model is evaluated once per distinct grid); `grid_weights` ``(unit, grid)``: one-hot,
    each unit's grid (a matrix product, which XLA does not fuse into the model evaluation);
    `photon_mask` ``(unit, nphot)``; `drm` the
    grouped DRM ``(unit, nphot, ngroup)``, or ``(1, nphot, ngroup)`` when every unit of the stack
    has the same one (stored once, folded with one matrix product); `group_mask` ``(unit, ngroup)``; `src_counts`,
    `bkg_counts`, `src_errors`, `bkg_errors` ``(unit, ngroup)``; `src_efficiency`,
    `bkg_efficiency`, `weight` ``(unit,)``; `sf`, `bf`, `rf` the data-layer factors ``(unit,)``;
    `has_background` ``(unit,)``; static: `stat`, `ngrid` and `positions` (each unit's index in
    its `Data`).
    """

    egrid: Float[Array, "grid nphot_ngrid"]
    grid_weights: Float[Array, "unit grid"]
    photon_mask: Bool[Array, "unit nphot"]
    drm: Float[Array, "unit_or_1 nphot ngroup"]
    group_mask: Bool[Array, "unit ngroup"]
    src_counts: Float[Array, "unit ngroup"]
    bkg_counts: Float[Array, "unit ngroup"]
    src_errors: Float[Array, "unit ngroup"]
    bkg_errors: Float[Array, "unit ngroup"]
    src_efficiency: Float[Array, " unit"]
    bkg_efficiency: Float[Array, " unit"]
    weight: Float[Array, " unit"]
    sf: Float[Array, " unit"]
    bf: Float[Array, " unit"]
    rf: Float[Array, " unit"]
    has_background: Bool[Array, " unit"]
    stat: str = eqx.field(static=True)
    ngrid: int = eqx.field(static=True)
    positions: tuple[int, ...] = eqx.field(static=True)

    @property
    def n_units(self) -> int:
        return len(self.positions)


def _size(unit) -> tuple[int, int]:
    return unit.nbin, unit.n_groups


def plan_stacks(units: Sequence) -> list[list[int]]:
    """Indices of `units` per stack: one statistic per stack, and no unit padded to more than
    `MAX_PADDING` times its own size.

    Greedy: units sorted by decreasing size join the open stack of their statistic while the
    padded size stays within `MAX_PADDING` of the newcomer's (the smallest so far).
    """
    plans: list[list[int]] = []
    by_stat: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        by_stat.setdefault(unit.stat, []).append(i)
    for indices in by_stat.values():
        ordered = sorted(indices, key=lambda i: (-_size(units[i])[0] * _size(units[i])[1], i))
        current: list[int] = []
        max_p = max_g = 0
        for i in ordered:
            p, g = _size(units[i])
            new_p, new_g = max(max_p, p), max(max_g, g)
            if current and new_p * new_g > MAX_PADDING * p * g:
                plans.append(sorted(current))
                current, new_p, new_g = [], p, g
            current.append(i)
            max_p, max_g = new_p, new_g
        if current:
            plans.append(sorted(current))
    return sorted(plans, key=lambda plan: plan[0])


def _scalar(value, what: str, unit_name: str) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim and not np.allclose(array, array.flat[0], rtol=0, atol=0):
        raise NotImplementedError(
            f"unit {unit_name}: {what} varies per channel (BACKSCAL column); stacked likelihoods "
            "need one value per unit"
        )
    return float(array.flat[0]) if array.ndim else float(array)


def build_stack(units: Sequence, positions: Sequence[int]) -> Stack:
    """Pad the units at `positions` into one `Stack`."""
    chosen = [units[i] for i in positions]
    n_phot = max(u.nbin for u in chosen)
    n_group = max(u.n_groups for u in chosen)
    ngrid = chosen[0].ngrid
    k = len(chosen)
    egrid = np.ones((k, n_phot * ngrid))
    photon_mask = np.zeros((k, n_phot), bool)
    drm = np.zeros((k, n_phot, n_group))
    group_mask = np.zeros((k, n_group), bool)
    pads = {name: np.ones((k, n_group)) for name in
            ("src_counts", "bkg_counts", "src_errors", "bkg_errors")}
    per_unit = {name: np.zeros(k) for name in
                ("src_efficiency", "bkg_efficiency", "weight", "sf", "bf", "rf")}
    has_background = np.zeros(k, bool)
    for row, unit in enumerate(chosen):
        p, g = unit.nbin, unit.n_groups
        grid = np.asarray(unit.egrid, dtype=np.float64)
        egrid[row, : p * ngrid] = grid
        egrid[row, p * ngrid :] = grid[-1]
        photon_mask[row, :p] = True
        drm[row, :p, :g] = np.asarray(unit.rsp_drm, dtype=np.float64)
        group_mask[row, :g] = True
        for name in pads:
            pads[name][row, :g] = np.asarray(getattr(unit, name), dtype=np.float64)
        per_unit["src_efficiency"][row] = _scalar(unit.src_efficiency, "src efficiency", unit.name)
        per_unit["bkg_efficiency"][row] = _scalar(unit.bkg_efficiency, "bkg efficiency", unit.name)
        per_unit["weight"][row] = unit.weight
        per_unit["sf"][row] = float(unit.src.factor.value)
        per_unit["bf"][row] = float(unit.bkg.factor.value)
        per_unit["rf"][row] = float(unit.rsp.factor.value)
        has_background[row] = unit.bkg_given
    if k > 1 and all(np.array_equal(drm[0], drm[i]) for i in range(1, k)):
        drm = drm[:1]  # one shared response: stored once
    grids, grid_index = np.unique(egrid, axis=0, return_inverse=True)
    return Stack(
        egrid=float_array(grids),
        grid_weights=float_array(np.eye(grids.shape[0])[np.ravel(grid_index)]),
        photon_mask=jnp.asarray(photon_mask), drm=float_array(drm),
        group_mask=jnp.asarray(group_mask),
        **{name: float_array(value) for name, value in pads.items()},
        **{name: float_array(value) for name, value in per_unit.items()},
        has_background=jnp.asarray(has_background), stat=chosen[0].stat, ngrid=ngrid,
        positions=tuple(int(i) for i in positions),
    )
