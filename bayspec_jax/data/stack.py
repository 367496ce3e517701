"""Stacked units: one `Stack` per statistic, its groups end to end on one flat axis.

A `Stack` holds every unit of one statistic. Counts, errors, efficiencies and weights are
``(group,)`` arrays over the units' groups, unit after unit (no padding), so the statistic is
one elementwise pass. The responses are folded in blocks:

- units that share one photon energy grid form a *wide* block: one DRM ``(1, nphot, column)``
  whose columns are their groups, folded by one vector-matrix product of the flux on that grid
  (units with identical responses share their columns);
- when a statistic has many distinct grids (more than `MAX_WIDE_BLOCKS`), the units with a grid
  of their own go to *padded* blocks: one row per unit, grids and DRMs padded to ``(row, nphot,
  column)`` with no unit padded beyond `MAX_PADDING` times its size, folded by one batched
  product;
- a wide block whose DRM is mostly zeros in a band structure (X-ray RMFs: each channel sees a
  narrow range of photon energies) is folded as a `BandedBlock` instead: its columns, ordered
  by their first non-zero photon bin, are cut into at most `MAX_BANDS` bands, each a dense
  product over its own photon window only. `band_plan` picks the number of bands from a cost
  model (stored elements plus a per-product overhead, `BAND_OVERHEAD`) and keeps the plain
  product unless banding saves at least `MIN_BAND_SAVING` of it. `benchmarks/bench_fold.py`
  measures the plain product, the bands and two general sparse forms (COO, BCOO) on the real
  responses: the sparse forms were slower than the plain product on every one, so there are
  none here.

Padded photon bins have zero response and are masked before folding; padded columns are
dropped by the block's `take` gather, so padding changes no result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..stats import statistic
from ._convert import float_array, int_array
from .binning import photon_grid

MAX_PADDING = 2.0
"""No unit of a padded block is padded to more than this factor of its own size (photon bins x
groups)."""

MAX_WIDE_BLOCKS = 8
"""A statistic with at most this many distinct photon grids is folded in wide blocks only; with
more, the units whose grid is their own are folded in padded blocks."""

MAX_BANDS = 4
"""A banded block has at most this many bands (dense products). 8 bands stored less than 4 on
16 ungrouped ACIS spectra but were slower (value+grad) in every run of `bench_fold.py`."""

BAND_OVERHEAD = 24_000
"""The cost of one more product in the band plan, in DRM elements: about the time one product
call takes on a 2-core CPU, in the time it streams that many float64 elements (measured by
`benchmarks/bench_fold.py`)."""

MIN_BAND_SAVING = 0.25
"""Banding is used only when its estimated cost is at least this fraction below the plain
product's."""


class FoldBlock(eqx.Module):
    """Units of a `Stack` folded together: ``rate[take] = flux @ drm`` row by row, each row on
    its own photon grid (a wide block: one row).

    **Fields:** `photon_mask` ``(row, nphot)``, or `None` without padded photon bins; `drm`
    ``(row, nphot, column)``; `take` ``(group,)``: the block's groups in the raveled
    ``(row * column)`` rates, or `None` when they are the same; static: `members` (the stack's
    units in this block, in order), `grid_start` (the block's first photon bin among the stack's
    integrated bins, `fold.stack_fluxes`) and `nphot`.
    """

    photon_mask: Bool[Array, "row nphot"] | None
    drm: Float[Array, "row nphot column"]
    take: Int[Array, " group"] | None
    members: tuple[int, ...] = eqx.field(static=True)
    grid_start: int = eqx.field(static=True)
    nphot: int = eqx.field(static=True)

    @property
    def n_rows(self) -> int:
        return self.drm.shape[0]


class BandedBlock(eqx.Module):
    """A wide block folded band by band: ``rate[take] = concat_b(flux[lo_b:hi_b] @ bands[b])``.

    **Fields:** `bands`, each ``(hi - lo, column)``: the DRM's columns of one band restricted to
    the band's photon window (outside it they are zero); `take` ``(group,)``: the block's groups
    in the concatenated band columns; static: `windows` (each band's ``(lo, hi)`` photon bins),
    `members`, `grid_start` and `nphot` (as for `FoldBlock`).
    """

    bands: tuple[Float[Array, "window column"], ...]
    take: Int[Array, " group"]
    windows: tuple[tuple[int, int], ...] = eqx.field(static=True)
    members: tuple[int, ...] = eqx.field(static=True)
    grid_start: int = eqx.field(static=True)
    nphot: int = eqx.field(static=True)

    @property
    def n_rows(self) -> int:
        return 1

    @property
    def n_stored(self) -> int:
        """DRM elements stored (and read per fold)."""
        return sum(int(np.prod(band.shape)) for band in self.bands)

    def dense(self) -> Float[Array, "1 nphot group"]:
        """The DRM as one ``(1, nphot, group)`` matrix, columns in group order."""
        columns = [jnp.zeros((self.nphot, band.shape[1]), band.dtype).at[lo:hi].set(band)
                   for band, (lo, hi) in zip(self.bands, self.windows)]
        return jnp.concatenate(columns, axis=1)[:, self.take][None]


class DynamicBlock(eqx.Module):
    """One unit whose response depends on parameters (its sky position): the DRM is evaluated
    inside the traced graph, its channels summed into groups (a segment sum) and folded.

    **Fields:** `response` (an `AbstractResponse` whose `fold_at(ra, dec, flux)` is traced);
    `group_ids` ``(chan,)``: each channel's group, ``n_groups`` for excluded channels;
    static: `members` (the unit's index in the setup, alone), `n_groups`, `grid_start` and
    `nphot` (as for `FoldBlock`).
    """

    response: Any
    group_ids: Int[Array, " chan"]
    members: tuple[int, ...] = eqx.field(static=True)
    n_groups: int = eqx.field(static=True)
    grid_start: int = eqx.field(static=True)
    nphot: int = eqx.field(static=True)

    @property
    def n_rows(self) -> int:
        return 1

    def fold(self, ra: Float[Array, ""], dec: Float[Array, ""],
             photon_flux: Float[Array, " nphot"]) -> Float[Array, " group"]:
        """The count rate per group for `photon_flux` from a source at ``(ra, dec)``."""
        rate = self.response.fold_at(ra, dec, photon_flux)
        summed = jax.ops.segment_sum(rate, self.group_ids, num_segments=self.n_groups + 1)
        return summed[: self.n_groups]


Block = FoldBlock | BandedBlock | DynamicBlock


class GroupedCounts(eqx.Module):
    """What was observed, per group of a `FoldSetup` (``(*batch, group)``, the setup's order).

    **Fields:** `src_counts`, `bkg_counts`, `src_errors`, `bkg_errors`.
    """

    src_counts: Float[Array, "*batch group"]
    bkg_counts: Float[Array, "*batch group"]
    src_errors: Float[Array, "*batch group"]
    bkg_errors: Float[Array, "*batch group"]


class FoldSetup(eqx.Module):
    """What the instrument does for the units of one statistic: groups on one flat axis,
    responses in fold blocks. The observed counts are apart (`GroupedCounts`), so many
    observations of one setup are a `jax.vmap` over counts.

    **Fields:** `energies` ``(point,)``: where the model is evaluated, every block's distinct
    photon grids end to end (the model runs once per setup): `join_grids`'s layout when `joined`,
    else `ngrid` points per bin (`DataUnit.egrid`'s); `blocks` (`FoldBlock`s, `BandedBlock`s and
    `DynamicBlock`s); per group (``(group,)``, unit after unit in setup order): `group_unit` (the
    group's unit, an index into the setup's units), `group_src_efficiency` and
    `group_bkg_efficiency` (`DataUnit.view_efficiency`: per channel with a BACKSCAL or AREASCAL
    column, taken at each group's first channel), `ts` and `tb` (those times the units' `sf`
    and `bf`), `group_rf` and `group_weight`; per unit (``(unit,)``): `weight`, and the
    data-layer parameters' values `sf`, `bf`, `rf`, `ra`, `dec`; `channel_group`
    ``(channel,)``: each channel's group on the flat axis (units' channels end to end), the total
    number of groups for channels left out (`group_counts`); static: `stat`, `ngrid`, `joined`
    (whether every grid's bins share their edges), `positions` (each unit's index in its
    `Data`), `n_groups` and `n_channels` (per unit) and `has_background` (whether each unit has
    a background file).
    """

    energies: Float[Array, " point"]
    blocks: tuple[Block, ...]
    group_unit: Int[Array, " group"]
    ts: Float[Array, " group"]
    tb: Float[Array, " group"]
    group_rf: Float[Array, " group"]
    group_weight: Float[Array, " group"]
    group_src_efficiency: Float[Array, " group"]
    group_bkg_efficiency: Float[Array, " group"]
    weight: Float[Array, " unit"]
    sf: Float[Array, " unit"]
    bf: Float[Array, " unit"]
    rf: Float[Array, " unit"]
    ra: Float[Array, " unit"]
    dec: Float[Array, " unit"]
    channel_group: Int[Array, " channel"]
    stat: str = eqx.field(static=True)
    ngrid: int = eqx.field(static=True)
    joined: bool = eqx.field(static=True)
    positions: tuple[int, ...] = eqx.field(static=True)
    n_groups: tuple[int, ...] = eqx.field(static=True)
    n_channels: tuple[int, ...] = eqx.field(static=True)
    has_background: tuple[bool, ...] = eqx.field(static=True)

    @property
    def n_units(self) -> int:
        return len(self.positions)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Each unit's first group on the flat axis."""
        return tuple(int(x) for x in np.cumsum((0,) + self.n_groups[:-1]))

    @property
    def total_groups(self) -> int:
        return int(sum(self.n_groups))

    @property
    def dynamic(self) -> bool:
        """Whether a response of this setup depends on parameters."""
        return any(isinstance(block, DynamicBlock) for block in self.blocks)

    def for_likelihood(self) -> FoldSetup:
        """This setup without the arrays the likelihood does not read (`channel_group`, and
        `ra`, `dec` unless a response depends on them): fewer arguments per jitted call."""
        unread = ("channel_group",) if self.dynamic else ("channel_group", "ra", "dec")
        return eqx.tree_at(lambda s: tuple(getattr(s, name) for name in unread), self,
                           (None,) * len(unread))


class Stack(eqx.Module):
    """A `FoldSetup` and its `GroupedCounts` together (the form before they were split; kept so
    that ``data.stacked`` and code written for it work). Attributes of either are read through.
    """

    setup: FoldSetup
    counts: GroupedCounts

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for part in (self.setup, self.counts):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(f"'Stack' object has no attribute {name!r}")


@dataclass(frozen=True)
class _Host:
    """One unit's photon grid, grouped DRM and channel-to-group ids on the host, read once;
    `response` is the unit's response when it depends on parameters (else `None`)."""

    egrid: np.ndarray
    drm: np.ndarray
    group_ids: np.ndarray
    response: Any = None

    @property
    def nbin(self) -> int:
        return self.drm.shape[0]

    @property
    def n_groups(self) -> int:
        return self.drm.shape[1]


def _pack_by_size(indices: list[int], hosts: Sequence[_Host]) -> list[list[int]]:
    """Padded blocks: units sorted by decreasing size join the open block while the padded size
    stays within `MAX_PADDING` of the newcomer's (the smallest so far)."""
    ordered = sorted(indices, key=lambda i: (-hosts[i].nbin * hosts[i].n_groups, i))
    blocks: list[list[int]] = []
    current: list[int] = []
    max_p = max_g = 0
    for i in ordered:
        p, g = hosts[i].nbin, hosts[i].n_groups
        new_p, new_g = max(max_p, p), max(max_g, g)
        if current and new_p * new_g > MAX_PADDING * p * g:
            blocks.append(sorted(current))
            current, new_p, new_g = [], p, g
        current.append(i)
        max_p, max_g = new_p, new_g
    if current:
        blocks.append(sorted(current))
    return blocks


def plan_blocks(hosts: Sequence[_Host]) -> list[tuple[str, list[int]]]:
    """``(kind, unit indices)`` per block, kind ``"wide"``, ``"padded"`` or ``"dynamic"`` (a unit
    whose response depends on parameters, alone), in order of each block's first unit."""
    by_grid: dict[bytes, list[int]] = {}
    dynamic = [("dynamic", [i]) for i, host in enumerate(hosts) if host.response is not None]
    for i, host in enumerate(hosts):
        if host.response is None:
            by_grid.setdefault(host.egrid.tobytes(), []).append(i)
    groups = list(by_grid.values())
    if len(groups) <= MAX_WIDE_BLOCKS:
        plans = [("wide", members) for members in groups]
    else:
        plans = [("wide", members) for members in groups if len(members) > 1]
        alone = [members[0] for members in groups if len(members) == 1]
        plans += [("padded", members) for members in _pack_by_size(alone, hosts)]
    return sorted(plans + dynamic, key=lambda plan: plan[1][0])


def _wide_block(hosts: Sequence[_Host], members: list[int], start: int, grid_start: int):
    """A wide block and its one grid; identical responses share their columns."""
    columns: list[np.ndarray] = []
    first_column: dict[bytes, int] = {}
    take: list[np.ndarray] = []
    for i in members:
        drm = hosts[i].drm
        key = drm.tobytes() + np.asarray(drm.shape).tobytes()
        if key not in first_column:
            first_column[key] = sum(c.shape[1] for c in columns)
            columns.append(drm)
        take.append(first_column[key] + np.arange(drm.shape[1]))
    take_all = np.concatenate(take)
    drm = np.concatenate(columns, axis=1)
    block_members = tuple(range(start, start + len(members)))
    bands = band_plan(drm)
    if bands is not None:
        return (_banded_block(drm, bands, take_all, block_members, grid_start),
                [hosts[members[0]].egrid])
    identity = take_all.shape[0] == drm.shape[1]
    block = FoldBlock(photon_mask=None, drm=float_array(drm[None]),
                      take=None if identity else int_array(take_all),
                      members=block_members, grid_start=grid_start, nphot=drm.shape[0])
    return block, [hosts[members[0]].egrid]


def band_plan(drm: np.ndarray) -> list[np.ndarray] | None:
    """Column indices of each band for a ``(nphot, column)`` DRM, or `None` for one plain
    product.

    The columns are ordered by their first and last non-zero photon bin and cut into 2, 4, ...
    (at most `MAX_BANDS`) bands of equal width; each band's window runs from its first to its
    last non-zero photon bin. The cheapest plan by stored elements plus `BAND_OVERHEAD`
    per band wins if it saves at least `MIN_BAND_SAVING` of the plain product's cost.
    """
    nphot, n_columns = drm.shape
    nonzero = drm != 0
    if n_columns < 2:
        return None
    first = np.where(nonzero.any(axis=0), np.argmax(nonzero, axis=0), nphot)
    last = np.where(nonzero.any(axis=0), nphot - np.argmax(nonzero[::-1], axis=0), 0)
    order = np.lexsort((last, first))
    plain = drm.size + BAND_OVERHEAD
    best, best_cost = None, plain
    n_bands = 2
    while n_bands <= min(MAX_BANDS, n_columns):
        bands = np.array_split(order, n_bands)
        stored = sum(max(0, int(last[b].max()) - int(first[b].min())) * b.size for b in bands)
        cost = stored + n_bands * BAND_OVERHEAD
        if cost < best_cost:
            best, best_cost = bands, cost
        n_bands *= 2
    return best if best_cost <= (1.0 - MIN_BAND_SAVING) * plain else None


def _banded_block(drm: np.ndarray, bands: list[np.ndarray], take: np.ndarray,
                  members: tuple[int, ...], grid_start: int) -> BandedBlock:
    """A `BandedBlock` of a wide block's ``(nphot, column)`` DRM; `take` indexes its columns."""
    nonzero = drm != 0
    windows, parts = [], []
    for columns in bands:
        rows = np.flatnonzero(nonzero[:, columns].any(axis=1))
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
        windows.append((lo, hi))
        parts.append(float_array(drm[lo:hi][:, columns]))
    position = np.empty(drm.shape[1], dtype=np.int64)
    position[np.concatenate(bands)] = np.arange(drm.shape[1])
    return BandedBlock(bands=tuple(parts), take=int_array(position[take]),
                       windows=tuple(windows), members=members, grid_start=grid_start,
                       nphot=drm.shape[0])


def _padded_block(hosts: Sequence[_Host], members: list[int], start: int, grid_start: int,
                  ngrid: int):
    """A padded block (one row per unit, each on its own grid) and its grids, padded to a
    common length."""
    chosen = [hosts[i] for i in members]
    n_phot = max(h.nbin for h in chosen)
    n_column = max(h.n_groups for h in chosen)
    rows = len(chosen)
    egrid = np.ones((rows, n_phot * ngrid))
    photon_mask = np.zeros((rows, n_phot), bool)
    drm = np.zeros((rows, n_phot, n_column))
    take = []
    for row, host in enumerate(chosen):
        egrid[row, : host.nbin * ngrid] = host.egrid
        egrid[row, host.nbin * ngrid:] = host.egrid[-1]
        photon_mask[row, : host.nbin] = True
        drm[row, : host.nbin, : host.n_groups] = host.drm
        take.append(row * n_column + np.arange(host.n_groups))
    take_all = np.concatenate(take)
    block = FoldBlock(
        photon_mask=None if photon_mask.all() else jnp.asarray(photon_mask),
        drm=float_array(drm),
        take=None if take_all.shape[0] == rows * n_column else int_array(take_all),
        members=tuple(range(start, start + rows)), grid_start=grid_start, nphot=n_phot)
    return block, list(egrid)


def shares_edges(egrid: np.ndarray, ngrid: int) -> bool:
    """Whether each photon bin of `egrid` (`ngrid` points per bin) begins where the previous
    one ends."""
    points = egrid.reshape(-1, ngrid)
    return bool(np.array_equal(points[1:, 0], points[:-1, -1]))


def join_grids(grids: Sequence[np.ndarray], ngrid: int) -> np.ndarray:
    """One array of model energies for photon grids whose bins share their edges.

    Each grid (`ngrid` points per bin) gives its distinct points and then its last energy
    ``ngrid - 1`` times, the next grid's first point ending a spacer bin, so that bin ``b`` of the
    sequence is the points ``b (ngrid - 1)`` to ``(b + 1) (ngrid - 1)``: a grid of ``n`` bins
    spans ``n + 1`` bins, and each shared edge is evaluated once (`fold.integrate_joined`).
    """
    parts = []
    for grid in grids:
        points = grid.reshape(-1, ngrid)
        parts += [points[:, :-1].ravel(), np.repeat(points[-1, -1], ngrid - 1)]
    return np.concatenate([*parts, grids[-1][-1:]])


VIEWS = ("group", "rebin", "channel")
"""The groupings a setup can be built for: the fit's groups, the rebinning grid of the ``_re_``
views, or every channel alone (`simulate`)."""


def _host(unit, view: str) -> _Host:
    """`unit`'s grid, DRM columns and channel ids for `view` (see `VIEWS`), read with numpy
    from the unit's stored arrays (so a setup can be built while tracing code that closes over
    the unit)."""
    egrid = photon_grid(np.asarray(unit.rsp.phbin), unit.ngrid).astype(np.float64)
    response = None if unit.rsp.constant else unit.rsp
    if view == "group":
        drm, ids = unit.rsp_drm, unit.group_ids
    elif view == "rebin":
        drm, ids = unit.rsp_re_drm, unit.rebin_ids
    else:
        drm, ids = unit.rsp.drm, np.arange(unit.rsp.n_channels)
    return _Host(egrid=egrid, drm=np.asarray(drm, dtype=np.float64),
                 group_ids=np.asarray(ids, dtype=np.int64), response=response)


def _dynamic_block(host: _Host, start: int, grid_start: int) -> DynamicBlock:
    return DynamicBlock(response=host.response, group_ids=int_array(host.group_ids),
                        members=(start,), n_groups=host.n_groups, grid_start=grid_start,
                        nphot=host.nbin)


def build_setup(units: Sequence, positions: Sequence[int], view: str = "group") -> FoldSetup:
    """The `FoldSetup` of the units at `positions` (all of one statistic), for `view`.

    Units are reordered so that each block's units are adjacent; `FoldSetup.positions` says
    where each came from.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
    chosen = [units[i] for i in positions]
    ngrid = chosen[0].ngrid
    hosts = [_host(u, view) for u in chosen]
    joined = ngrid > 1 and all(shares_edges(host.egrid, ngrid) for host in hosts)
    blocks, grids, order = [], [], []
    for kind, members in plan_blocks(hosts):
        # Bins before this block's grids (with `joined`, each earlier grid's spacer bin too).
        grid_start = sum(g.shape[0] for g in grids) // ngrid + (len(grids) if joined else 0)
        if kind == "wide":
            block, block_grids = _wide_block(hosts, members, len(order), grid_start)
        elif kind == "padded":
            block, block_grids = _padded_block(hosts, members, len(order), grid_start, ngrid)
        else:
            host = hosts[members[0]]
            block, block_grids = _dynamic_block(host, len(order), grid_start), [host.egrid]
        blocks.append(block)
        grids.extend(block_grids)
        order.extend(members)
    ordered = [chosen[i] for i in order]
    ordered_hosts = [hosts[i] for i in order]
    n_groups = [host.n_groups for host in ordered_hosts]

    def per_group(values):
        return np.concatenate([np.broadcast_to(v, (n,)) for n, v in zip(n_groups, values)])

    values = {label: np.array([u.params[label].host_value for u in ordered])
              for label in ("sf", "bf", "rf", "ra", "dec")}
    # Per group of `view`: a per-channel efficiency (BACKSCAL or AREASCAL column) flows
    # through the same arrays as a scalar one.
    src_eff, bkg_eff = (np.concatenate([np.asarray(u.view_efficiency(part, view), np.float64)
                                        for u in ordered]) for part in ("src", "bkg"))
    weight = np.array([float(u.weight) for u in ordered])
    return FoldSetup(
        energies=float_array(join_grids(grids, ngrid) if joined else np.concatenate(grids)),
        blocks=tuple(blocks),
        group_unit=int_array(per_group(range(len(ordered)))),
        ts=float_array(src_eff * per_group(values["sf"])),
        tb=float_array(bkg_eff * per_group(values["bf"])),
        group_rf=float_array(per_group(values["rf"])), group_weight=float_array(per_group(weight)),
        group_src_efficiency=float_array(src_eff), group_bkg_efficiency=float_array(bkg_eff),
        weight=float_array(weight), **{k: float_array(v) for k, v in values.items()},
        channel_group=int_array(_channel_groups(ordered_hosts)),
        stat=chosen[0].stat, ngrid=ngrid, joined=joined,
        positions=tuple(int(positions[i]) for i in order),
        n_groups=tuple(n_groups),
        n_channels=tuple(int(host.group_ids.shape[0]) for host in ordered_hosts),
        has_background=tuple(bool(u.bkg_given) for u in ordered),
    )


def _channel_groups(hosts: Sequence[_Host]) -> np.ndarray:
    """Each channel's group on the flat axis (units end to end); the total for the discarded."""
    total = sum(host.n_groups for host in hosts)
    parts, offset = [], 0
    for host in hosts:
        ids = host.group_ids
        parts.append(np.where(ids < host.n_groups, ids + offset, total))
        offset += host.n_groups
    return np.concatenate(parts)


def grouped_counts(units: Sequence, setup: FoldSetup) -> GroupedCounts:
    """The units' grouped counts and errors in `setup`'s order (`units` in `Data` order)."""
    ordered = [units[i] for i in setup.positions]
    return GroupedCounts(**{
        name: float_array(np.concatenate([np.asarray(getattr(u, name), dtype=np.float64)
                                          for u in ordered]))
        for name in ("src_counts", "bkg_counts", "src_errors", "bkg_errors")})


def _sum_channels(values: Float[Array, "*batch channel"], setup: FoldSetup
                  ) -> Float[Array, "*batch group"]:
    moved = jnp.moveaxis(values, -1, 0)
    summed = jax.ops.segment_sum(moved, setup.channel_group, num_segments=setup.total_groups + 1)
    return jnp.moveaxis(summed[: setup.total_groups], 0, -1)


def group_counts(setup: FoldSetup, src_counts: Float[Array, "*batch channel"],
                 bkg_counts: Float[Array, "*batch channel"] | None = None,
                 template: GroupedCounts | None = None) -> GroupedCounts:
    """Channel counts grouped as `setup` groups them: pure JAX (use under `jit` and `vmap`).

    **Arguments:**

    - `setup`: the `FoldSetup`.
    - `src_counts`: source counts per channel, the setup's units end to end in its order
        (``setup.n_channels`` each).
    - `bkg_counts`: likewise, or `None` to keep `template`'s background counts and errors.
    - `template`: the counts whose background errors a Gaussian-background statistic keeps.

    The source errors are ``sqrt(counts)`` (Poisson); the background's are ``sqrt(counts)`` for
    a Poisson-background statistic and `template`'s for a Gaussian one (the file's errors).

    **Returns:** a `GroupedCounts` ``(*batch, group)``.
    """
    src = _sum_channels(jnp.asarray(src_counts), setup)
    src_errors = jnp.sqrt(jnp.maximum(src, 0.0))
    if bkg_counts is None:
        if template is None:
            raise ValueError("group_counts: give bkg_counts or a template with the background")
        shape = src.shape
        return GroupedCounts(src, jnp.broadcast_to(template.bkg_counts, shape), src_errors,
                             jnp.broadcast_to(template.bkg_errors, shape))
    bkg = _sum_channels(jnp.asarray(bkg_counts), setup)
    if statistic(setup.stat).background == "gaussian":
        if template is None:
            raise ValueError(f"group_counts: stat {setup.stat!r} keeps the background errors "
                             "of a template; give template")
        bkg_errors = jnp.broadcast_to(template.bkg_errors, bkg.shape)
    else:
        bkg_errors = jnp.sqrt(jnp.maximum(bkg, 0.0))
    return GroupedCounts(src, bkg, src_errors, bkg_errors)


def group_unit_counts(setups: Sequence[FoldSetup], templates: Sequence[GroupedCounts],
                      src_counts: Sequence[Any], bkg_counts: Sequence[Any] | None = None
                      ) -> tuple[GroupedCounts, ...]:
    """`group_counts` for every setup of a `Data`: `src_counts` (and `bkg_counts`, or `None`)
    one ``(*batch, chan)`` array per unit in `Data` order; `templates` the `Data`'s counts."""
    out = []
    for setup, template in zip(setups, templates):
        src = jnp.concatenate([jnp.asarray(src_counts[i]) for i in setup.positions], -1)
        bkg = None if bkg_counts is None else jnp.concatenate(
            [jnp.asarray(bkg_counts[i]) for i in setup.positions], -1)
        out.append(group_counts(setup, src, bkg, template))
    return tuple(out)


def build_stack(units: Sequence, positions: Sequence[int]) -> Stack:
    """The `Stack` (setup and counts) of the units at `positions` (all of one statistic)."""
    setup = build_setup(units, positions)
    return Stack(setup, grouped_counts(units, setup))


def plan_stacks(units: Sequence) -> list[list[int]]:
    """Indices of `units` per stack: one stack per statistic, in order of first appearance."""
    by_stat: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        by_stat.setdefault(unit.stat, []).append(i)
    return list(by_stat.values())
