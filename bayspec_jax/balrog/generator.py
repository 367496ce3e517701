"""The BALROG response generator of Fermi/GBM in JAX: the DRM as a pure function of the sky
position, under `jit`, `vmap` and `grad`.

The method is gbm-drm-gen's (Burgess et al. 2018, MNRAS 476, 1427), whose numbers it
reproduces. The direct response at a direction mixes the database responses of the three
nearest database directions with weights from the spherical triangle they span (the largest
weight to the nearest). The atmospheric-scattering response sums, over 144 cells of directions
around the Earth's centre (12 polar angles by 6 azimuths, both signs), the scattering matrix of
the cell (interpolated in the source's angle from the zenith) times the response of the
database direction nearest the cell; it is scaled by ``|cos(lat)|`` and vanishes for sources
more than 115 deg from the zenith. A source behind the Earth gets a zero DRM. Everything that
does not depend on the position (the interpolation to the photon grid, the channel integration,
the photon-bin average) is applied to the database once, at construction (`channels`).
"""

from __future__ import annotations

import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float, Int

from ..io import read_ebounds
from . import channels
from .database import DetectorDatabase, detector_name, load_database
from .edges import BGO_TTE_EDGES, NAI_TTE_EDGES
from .geometry import earth_direction, spacecraft_axes, spacecraft_state

EARTH_RADIUS_KM = 6371.0
_MANY = 128  # positions of one flux from which `_shared_flux` pays
MAT_TYPES = {0: "direct", 1: "scattered", 2: "direct + scattered"}


def _float(values) -> Array:
    return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=jnp.result_type(float))


def _unit_vector(longitude: Array, latitude: Array) -> Float[Array, "... 3"]:
    """Unit vectors from a longitude and a latitude [rad]."""
    return jnp.stack([jnp.cos(latitude) * jnp.cos(longitude),
                      jnp.cos(latitude) * jnp.sin(longitude), jnp.sin(latitude)], axis=-1)


def _az_el(vector: Float[Array, "... 3"]) -> tuple[Array, Array]:
    """Azimuth in [0, 360) and elevation [deg] of unit vectors."""
    azimuth = jnp.degrees(jnp.arctan2(vector[..., 1], vector[..., 0])) % 360.0
    elevation = 90.0 - jnp.degrees(jnp.arccos(jnp.clip(vector[..., 2], -1.0, 1.0)))
    return azimuth, elevation


def _normalize(vector: Array) -> Array:
    return vector / jnp.sqrt(jnp.sum(vector * vector, axis=-1, keepdims=True))


def _triangle(grid: Float[Array, "dir 3"], direction: Float[Array, " 3"]
              ) -> tuple[Int[Array, " 3"], Float[Array, " 3"]]:
    """The three database directions nearest `direction`, nearest first, and their weights:
    the spherical-triangle (triple-product) weights sorted in decreasing order, normalized."""
    # three argmax passes (first on ties, as top_k), cheaper than top_k's sort on a CPU
    scores = grid @ direction
    slot = jnp.arange(grid.shape[0])
    index = []
    for _ in range(3):
        index.append(jnp.argmax(scores))
        scores = jnp.where(slot == index[-1], -jnp.inf, scores)
    index = jnp.stack(index)
    # the database directions are float32 numbers, and gbm-drm-gen takes their cross products
    # in float32: near a vertex the small weights depend on that rounding at the 1e-5 level
    p1, p2, p3 = (grid[i].astype(jnp.float32) for i in index)
    sides = jnp.stack([jnp.cross(p1, p2), jnp.cross(p2, p3), jnp.cross(p3, p1)])
    a, b, c = jnp.abs(sides.astype(direction.dtype) @ direction)
    # sorted in decreasing order by comparisons (a sort of three is an XLA sort call)
    weights = jnp.stack([jnp.maximum(jnp.maximum(a, b), c),
                         jnp.maximum(jnp.minimum(a, b), jnp.minimum(jnp.maximum(a, b), c)),
                         jnp.minimum(jnp.minimum(a, b), c)])
    return index, weights / jnp.sum(weights)


def _ring_candidates(grid: np.ndarray, nadir: np.ndarray, polar: np.ndarray) -> np.ndarray:
    """``(ring, k)``: for each ring of scattering cells (the directions at `polar` [deg] from
    the nadir, whatever the source's azimuth), the database directions that can be nearest to
    a point of it, ascending and padded with the first: those within the grid's covering
    radius of the ring (bounded by sampling the sphere) plus a margin."""
    unit = grid / np.linalg.norm(grid, axis=1, keepdims=True)
    n = 65536
    k = np.arange(n) + 0.5
    z, phi = 1.0 - 2.0 * k / n, np.pi * (1.0 + 5.0 ** 0.5) * k
    samples = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z],
                       axis=1)
    cosine = np.max(samples @ unit.T, axis=1)
    # a point of the sphere is within ~sqrt(4 pi / n) of a sample: twice that, and 1 deg
    cover = np.degrees(np.arccos(np.clip(cosine.min(), -1, 1)) + 2 * np.sqrt(4 * np.pi / n))
    from_nadir = np.degrees(np.arccos(np.clip(unit @ nadir, -1.0, 1.0)))
    rings = [np.flatnonzero(np.abs(from_nadir - angle) <= cover + 1.0) for angle in polar]
    width = max(ring.size for ring in rings)
    return np.stack([np.pad(ring, (0, width - ring.size), mode="edge") for ring in rings])


class DRMGenerator(eqx.Module):
    """A GBM detector's BALROG DRM as a function of the sky position, at one spacecraft
    attitude and position. Build it with `drm_generator`.

    `matrix(ra, dec)` ``(chan, phot)`` is gbm-drm-gen's `matrix` after `set_location(ra, dec)`;
    `drm(ra, dec)` is its transpose ``(phot, chan)``, the layout of a `Response`. Both are pure
    `jnp` functions of ``(ra, dec)`` [deg]: `jit`, `vmap` and differentiate them. The object is
    also a provider for `BalrogResponse` (which then folds it in the traced graph, with
    gradients in ra and dec). `ebounds` ``(chan + 1,)`` and `monte_carlo_energies`
    ``(phot + 1,)`` are the channel and photon edges [keV].

    The scattering table and the channel rows are held in blocks of scattered energy
    (`_split_energies`), each cut to its nonzero triangle of incident energies and channels:
    `at_scat` ``(lat, incident, cell * scattered)``, the same per latitude row in
    `at_scat_by_lat` ``(cell * scattered, incident)`` (for `fold`), `channel_rows` ``(dir,
    scattered, chan)``; `direct` is ``(dir, chan, phot)``.
    """

    ebounds: Float[Array, " chan_edges"]
    monte_carlo_energies: Float[Array, " phot_edges"]
    axes: Float[Array, "3 3"]
    position: Float[Array, " 3"]
    earth: Float[Array, " 3"]
    grid: Float[Array, "dir 3"]
    direct: Float[Array, "dir chan phot"] | None
    scatter_photons: Float[Array, "phot energy"] | None
    lat_cent: Float[Array, " lat"]
    cell_directions: Float[Array, "theta phi 2 3"]
    ring_index: Int[Array, "theta k"]
    ring_grid: Float[Array, "theta k 3"]
    at_scat: tuple[Float[Array, "lat incident cell_energy"], ...] | None
    at_scat_by_lat: tuple[tuple[Float[Array, "cell_energy incident"], ...], ...] | None
    channel_rows: tuple[Float[Array, "dir energy chan"], ...] | None
    detector: str = eqx.field(static=True)
    mat_type: int = eqx.field(static=True)
    occult: bool = eqx.field(static=True)
    time: float = eqx.field(static=True)
    met: float = eqx.field(static=True)
    blocks: tuple[tuple[int, int, int, int], ...] = eqx.field(static=True, default=())

    @property
    def n_channels(self) -> int:
        return self.ebounds.shape[0] - 1

    @property
    def n_photon_bins(self) -> int:
        return self.monte_carlo_energies.shape[0] - 1

    def source_direction(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
                         ) -> Float[Array, " 3"]:
        """The unit vector of the sky position ``(ra, dec)`` [deg] in spacecraft coordinates."""
        sky = _unit_vector(jnp.radians(ra), jnp.radians(dec))
        return self.axes @ sky

    def occulted(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]) -> Array:
        """Whether ``(ra, dec)`` is behind the Earth (closer to the Earth's centre, seen from
        the spacecraft, than the horizon)."""
        sky = _unit_vector(jnp.radians(ra), jnp.radians(dec))
        distance = jnp.sqrt(jnp.sum(self.position ** 2))
        horizon = jnp.radians(90.0 - jnp.degrees(jnp.arccos(EARTH_RADIUS_KM / distance)))
        cosine = jnp.dot(sky, -self.position) / distance
        return jnp.arccos(jnp.clip(cosine, -1.0, 1.0)) < horizon

    def _position(self, ra, dec) -> Float[Array, " 3"]:
        # the direction as gbm-drm-gen rebuilds it from its azimuth and elevation
        azimuth, elevation = _az_el(self.source_direction(ra, dec))
        return _unit_vector(jnp.radians(azimuth), jnp.radians(elevation))

    def _cells(self, direction: Float[Array, " 3"]):
        """The scattering cells for a source in `direction`: the database directions nearest
        each cell's two mirror directions ``(cell, 2)``; the two latitude rows of the
        scattering table around the source's angle from the zenith (`upper - 1`, `upper`) and
        the weight of the first; the overall scale (zero beyond the table)."""
        nadir = self.earth
        lat = 180.0 - jnp.degrees(jnp.arccos(jnp.clip(jnp.dot(direction, nadir), -1.0, 1.0)))
        # the frame of the cells: z to the Earth's centre, the x-z plane through the source
        y_axis = _normalize(jnp.cross(nadir, direction))
        x_axis = _normalize(jnp.cross(y_axis, nadir))
        cells = _normalize(self.cell_directions @ jnp.stack([x_axis, y_axis, nadir]))
        azimuth, elevation = _az_el(cells)
        rebuilt = _unit_vector(jnp.radians(azimuth), jnp.radians(elevation))
        # the nearest database direction (first on ties) among the candidates of each ring
        scores = jnp.einsum("tpmc,tkc->tpmk", rebuilt, self.ring_grid)
        nearest = jnp.take_along_axis(self.ring_index[:, None, None, :],
                                      jnp.argmax(scores, axis=-1)[..., None], axis=-1)
        centres = self.lat_cent
        upper = jnp.clip(jnp.sum(centres < lat), 1, centres.shape[0] - 1)
        fraction = 1.0 - (lat - centres[upper - 1]) / (centres[upper] - centres[upper - 1])
        fraction = jnp.where(lat <= centres[0], 1.0, fraction)
        scale = jnp.where(lat < centres[-1], jnp.abs(jnp.cos(jnp.radians(lat))), 0.0)
        return nearest.reshape(-1, 2), upper, fraction, scale

    def _geometry(self, ra, dec) -> tuple:
        """What `fold` takes from the position: the triangle (`_triangle`) and the cells
        (`_cells`), placeholders for the parts of `mat_type` without them."""
        direction = self._position(ra, dec)
        index, weights = jnp.zeros(3, int), jnp.zeros(3, direction.dtype)
        nearest = jnp.zeros((self.cell_directions[..., 0].size // 2, 2), int)
        upper, fraction, scale = jnp.ones((), int), jnp.ones_like(ra), jnp.zeros_like(ra)
        if self.mat_type in (0, 2):
            index, weights = _triangle(self.grid, direction)
        if self.mat_type in (1, 2):
            nearest, upper, fraction, scale = self._cells(direction)
        return index, weights, nearest, upper, fraction, scale

    def drm(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
            ) -> Float[Array, "phot chan"]:
        """The DRM ``(phot, chan)`` [cm^2] at the sky position ``(ra, dec)`` [deg]."""
        dtype = self.grid.dtype
        ra, dec = jnp.asarray(ra, dtype), jnp.asarray(dec, dtype)
        drm = _drm(self, self._geometry(ra, dec))
        if self.occult:
            drm = jnp.where(self.occulted(ra, dec), 0.0, drm)
        return drm

    def matrix(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
               ) -> Float[Array, "chan phot"]:
        """gbm-drm-gen's `matrix` ``(chan, phot)`` at ``(ra, dec)`` [deg]."""
        return self.drm(ra, dec).T

    def matrices(self, ra: Float[ArrayLike, " n"], dec: Float[ArrayLike, " n"],
                 batch_size: int | None = None) -> Float[Array, "n chan phot"]:
        """`matrix` at many positions, `batch_size` at a time (`jax.lax.map`): on a CPU one at
        a time (the default) is fastest; on a GPU take hundreds."""
        ra, dec = jnp.broadcast_arrays(jnp.asarray(ra), jnp.asarray(dec))
        return jax.lax.map(lambda position: self.matrix(*position), (ra, dec),
                           batch_size=batch_size)

    def fold(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""],
             photon_flux: Float[ArrayLike, " phot"]) -> Float[Array, " chan"]:
        """``photon_flux @ drm(ra, dec)`` without forming the scattered DRM: the flux is taken
        through the scattering cells first (a few million operations a position instead of
        tens of millions), the way a likelihood needs it.

        **Arguments:** the position [deg]; `photon_flux` ``(phot,)`` [photons/cm^2/s per bin].

        **Returns:** the count rate per channel ``(chan,)``.
        """
        dtype = self.grid.dtype
        ra, dec = jnp.asarray(ra, dtype), jnp.asarray(dec, dtype)
        rate = _fold_rate(self, self._geometry(ra, dec), jnp.asarray(photon_flux, dtype))
        if self.occult:
            rate = jnp.where(self.occulted(ra, dec), 0.0, rate)
        return rate


def _zero(tangent) -> bool:
    return type(tangent) is SymbolicZero


def _dense(tangent, like) -> Array:
    return jnp.zeros(jnp.shape(like), jnp.result_type(like)) if _zero(tangent) else tangent


def _through_rows(by_lat: tuple, blocks: tuple, lat: Array):
    """``x -> ((by_lat[lat] @ x[a0:], by_lat[lat + 1] @ x[a0:]) per block)``: a switch over the
    latitude rows, whose products read the separate arrays in place (a dynamic slice of one
    array would copy them)."""

    def rows_pair(row):
        def through(x):
            return tuple((per_lat[row] @ x[a0:], per_lat[row + 1] @ x[a0:])
                         for per_lat, (_, _, a0, _) in zip(by_lat, blocks))
        return through

    def product(x):
        return jax.lax.switch(lat, [rows_pair(row) for row in range(len(by_lat[0]) - 1)], x)

    return product


def _fold_parts(gen: DRMGenerator, geometry: tuple, flux: Array, mix: bool,
                tangent: bool = False):
    """`fold` at one position from its geometry (`DRMGenerator._geometry`), linear in `flux`.

    `mix`: the count rate ``(chan,)``; else its parts: the flux through the direct responses
    of the triangle's vertices ``(3, chan)`` and the unscaled scattered rate of each of the two
    latitude rows ``(2, chan)`` (what the rate's derivatives in the position need).
    `tangent`: as a tangent, to be transposed and batched: the latitude rows indexed rather
    than switched (a batched switch selects with `stop_gradient`, which has no transpose).
    """
    index, weights, nearest, upper, fraction, scale = geometry
    direct = jnp.zeros((3, gen.n_channels), flux.dtype)
    scattered = jnp.zeros((1 if mix else 2, gen.n_channels), flux.dtype)
    if gen.mat_type in (0, 2):
        direct = jnp.stack([gen.direct[index[k]] @ flux for k in range(3)])
    if gen.mat_type in (1, 2):
        incident = flux @ gen.scatter_photons  # (energy,)

        if tangent:
            pairs = tuple((incident[a0:] @ table[upper - 1], incident[a0:] @ table[upper])
                          for table, (_, _, a0, _) in zip(gen.at_scat, gen.blocks))
        else:
            pairs = _through_rows(gen.at_scat_by_lat, gen.blocks, upper - 1)(incident)
        for (_, _, _, n1), rows, (low, high) in zip(gen.blocks, gen.channel_rows, pairs):
            per_cell = (fraction * low + (1.0 - fraction) * high)[None] if mix else jnp.stack(
                [low, high])
            # the channel rows of each cell's two nearest directions (cell * scattered, chan)
            rows = rows[nearest[:, 0]] + rows[nearest[:, 1]]
            scattered = scattered.at[:, :n1].add(per_cell @ rows.reshape(-1, n1))
    if mix:
        return weights @ direct + scale * scattered[0]
    return direct, scattered


def _sequential(gen, geometry, flux, mix):
    return jax.lax.map(lambda args: _fold_parts(gen, *args, mix), (geometry, flux))


def _shared_flux(gen, geometry, flux, mix):
    """`_fold_parts` at many positions of one flux (at least `_MANY` of them): what depends
    only on the flux once, then per position a few hundred rows gathered and summed.

    That is: the flux through every direct response ``(dir, chan)``; and through every
    latitude row and cell, into the channel rows of every direction that can be nearest to the
    cell (the candidates of its ring, `_ring_candidates`): a table ``(lat, cell, candidate,
    chan)`` (tens of MB, built with batched GEMMs), of which a position sums two latitude rows
    of its cells' two nearest directions.
    """
    index, weights, nearest, upper, fraction, scale = geometry
    n, n_chan = index.shape[0], gen.n_channels
    direct = jnp.zeros((n, 3, n_chan), flux.dtype)
    scattered = jnp.zeros((n, 1 if mix else 2, n_chan), flux.dtype)
    if gen.mat_type in (0, 2):
        direct = (gen.direct @ flux)[index]  # (position, 3, chan)
    if gen.mat_type in (1, 2):
        incident = flux @ gen.scatter_photons
        n_lat = len(gen.at_scat_by_lat[0])
        n_ring, n_phi = gen.cell_directions.shape[:2]
        n_cand = gen.ring_index.shape[1]
        table = jnp.zeros((n_lat, n_ring, n_phi, n_cand, n_chan), flux.dtype)
        for (r0, r1, a0, n1), by_lat, rows in zip(gen.blocks, gen.at_scat_by_lat,
                                                   gen.channel_rows):
            through = jnp.stack([per_lat @ incident[a0:] for per_lat in by_lat])
            through = through.reshape(n_lat, n_ring, n_phi, r1 - r0)
            table = table.at[..., :n1].add(jnp.einsum(
                "ltfr,tsrn->ltfsn", through, rows[gen.ring_index]))
        table = table.reshape(-1, n_chan)
        rings = jnp.arange(n_ring)[:, None, None]
        phis = jnp.arange(n_phi)[None, :, None]

        def per_position(args):
            nearest, upper, fraction = args
            nearest = nearest.reshape(n_ring, n_phi, 2)
            # the slot of each cell's nearest direction among its ring's candidates
            slot = jnp.argmax(gen.ring_index[:, None, None, :] == nearest[..., None], axis=-1)
            cell = (rings * n_phi + phis) * n_cand + slot  # (ring, phi, 2)
            lat = jnp.stack([upper - 1, upper])[:, None, None, None]
            low, high = jnp.sum(table[lat * (n_ring * n_phi * n_cand) + cell], axis=(1, 2, 3))
            if mix:
                return (fraction * low + (1.0 - fraction) * high)[None]
            return jnp.stack([low, high])

        scattered = jax.lax.map(per_position, (nearest, upper, fraction), batch_size=64)
    if mix:
        return jnp.einsum("nk,nkc->nc", weights, direct) + scale[:, None] * scattered[:, 0]
    return direct, scattered


def _batchable(mix: bool):
    """`_fold_parts` with a batching rule: under `vmap`, one position at a time (a loop), and
    with an unbatched flux what depends only on the flux once."""

    @jax.custom_batching.custom_vmap
    def kernel(gen, geometry, flux):
        return _fold_parts(gen, geometry, flux, mix)

    @kernel.def_vmap
    def rule(axis_size, in_batched, gen, geometry, flux):
        gen_batched, geometry_batched, flux_batched = in_batched
        if not any(jax.tree_util.tree_leaves(in_batched)):
            out = _fold_parts(gen, geometry, flux, mix)
            return out, jax.tree_util.tree_map(lambda _: False, out)
        if any(jax.tree_util.tree_leaves(gen_batched)):
            out = jax.vmap(lambda *args: _fold_parts(*args, mix), in_axes=(
                jax.tree_util.tree_map(lambda b: 0 if b else None, gen_batched),
                tuple(0 if b else None for b in geometry_batched),
                0 if flux_batched else None))(gen, geometry, flux)
        else:
            geometry = tuple(g if b else jnp.broadcast_to(g, (axis_size,) + jnp.shape(g))
                             for g, b in zip(geometry, geometry_batched))
            if flux_batched or axis_size < _MANY:
                flux = flux if flux_batched else jnp.broadcast_to(flux, (axis_size,) + flux.shape)
                out = _sequential(gen, geometry, flux, mix)
            else:
                out = _shared_flux(gen, geometry, flux, mix)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return kernel


_fold_rate_kernel = _batchable(True)
_fold_parts_kernel = _batchable(False)


@jax.custom_jvp
def _fold_rate(gen: DRMGenerator, geometry: tuple, flux: Array) -> Array:
    """The count rate from the geometry: `_fold_parts` (batched by its own rule), with a JVP
    in plain `jnp` (so also transposable)."""
    return _fold_rate_kernel(gen, geometry, flux)


@functools.partial(_fold_rate.defjvp, symbolic_zeros=True)
def _fold_rate_jvp(primals, tangents):
    gen, geometry, flux = primals
    gen_dot, geometry_dot, flux_dot = tangents
    _check_tables(gen_dot)
    _, weights, _, _, fraction, scale = geometry
    _, weights_dot, _, _, fraction_dot, scale_dot = geometry_dot
    if all(map(_zero, (weights_dot, fraction_dot, scale_dot))):
        rate = _fold_rate_kernel(gen, geometry, flux)
        tangent = jnp.zeros_like(rate)
    else:
        # the rate's derivatives in the weights, the latitude mix and the scale: from the
        # parts (the flux through each vertex and each latitude row)
        direct, (low, high) = _fold_parts_kernel(gen, geometry, flux)
        mixed = fraction * low + (1.0 - fraction) * high
        rate = weights @ direct + scale * mixed
        tangent = (_dense(weights_dot, weights) @ direct + _dense(scale_dot, scale) * mixed
                   + scale * _dense(fraction_dot, fraction) * (low - high))
    if not _zero(flux_dot):
        tangent = tangent + _fold_parts(gen, geometry, flux_dot, True, tangent=True)
    return rate, tangent


def _drm_parts(gen: DRMGenerator, geometry: tuple, mix: bool):
    """`drm` at one position from its geometry, before the occultation.

    `mix`: the DRM ``(phot, chan)``; else its parts: the direct responses of the triangle's
    vertices ``(3, chan, phot)`` and the unscaled scattered DRM mixed between the two latitude
    rows and their difference ``(2, phot, chan)`` (what its derivatives need).
    """
    index, weights, nearest, upper, fraction, scale = geometry
    n_phot, n_chan = gen.monte_carlo_energies.shape[0] - 1, gen.n_channels
    direct = jnp.zeros((3, n_chan, n_phot), fraction.dtype)
    if gen.mat_type in (0, 2):
        direct = jnp.stack([gen.direct[index[k]] for k in range(3)])
    drm = jnp.einsum("k,kcp->pc", weights, direct)
    scattered = jnp.zeros((1 if mix else 2, n_phot, n_chan), fraction.dtype)
    if gen.mat_type in (1, 2):
        incident = jnp.zeros((scattered.shape[0], gen.scatter_photons.shape[1], n_chan),
                             fraction.dtype)
        for (_, _, a0, n1), table, rows in zip(gen.blocks, gen.at_scat, gen.channel_rows):
            low, high = table[upper - 1], table[upper]
            # the cells' scattering matrices (incident, cell * scattered), mixed (and for the
            # derivatives differenced) between the latitude rows, times the channel rows of
            # their nearest directions (cell * scattered, chan): one GEMM
            matrices = fraction * low + (1.0 - fraction) * high
            if not mix:
                matrices = jnp.concatenate([matrices, low - high])
            rows = rows[nearest[:, 0]] + rows[nearest[:, 1]]
            part = (matrices @ rows.reshape(-1, n1)).reshape(incident.shape[0], -1, n1)
            incident = incident.at[:, a0:, :n1].add(part)
        scattered = jnp.einsum("pa,man->mpn", gen.scatter_photons, incident)
    if mix:
        return drm + scale * scattered[0]
    return direct, scattered


def _drm_batchable(mix: bool):
    """`_drm_parts` with a batching rule: under `vmap`, one position at a time (a loop of
    GEMMs rather than batched small products and gathers)."""

    @jax.custom_batching.custom_vmap
    def kernel(gen, geometry):
        return _drm_parts(gen, geometry, mix)

    @kernel.def_vmap
    def rule(axis_size, in_batched, gen, geometry):
        gen_batched, geometry_batched = in_batched
        if not any(jax.tree_util.tree_leaves(in_batched)):
            out = _drm_parts(gen, geometry, mix)
            return out, jax.tree_util.tree_map(lambda _: False, out)
        if any(jax.tree_util.tree_leaves(gen_batched)):
            out = jax.vmap(lambda *args: _drm_parts(*args, mix), in_axes=(
                jax.tree_util.tree_map(lambda b: 0 if b else None, gen_batched),
                tuple(0 if b else None for b in geometry_batched)))(gen, geometry)
        else:
            geometry = tuple(g if b else jnp.broadcast_to(g, (axis_size,) + jnp.shape(g))
                             for g, b in zip(geometry, geometry_batched))
            out = jax.lax.map(lambda geometry: _drm_parts(gen, geometry, mix), geometry)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return kernel


_drm_kernel = _drm_batchable(True)
_drm_parts_kernel = _drm_batchable(False)


@jax.custom_jvp
def _drm(gen: DRMGenerator, geometry: tuple) -> Array:
    """The DRM from the geometry: `_drm_parts` (batched by its own rule), with a JVP in the
    triangle weights, the latitude mix and the scale."""
    return _drm_kernel(gen, geometry)


@functools.partial(_drm.defjvp, symbolic_zeros=True)
def _drm_jvp(primals, tangents):
    gen, geometry = primals
    gen_dot, geometry_dot = tangents
    _check_tables(gen_dot)
    _, weights, _, _, fraction, scale = geometry
    _, weights_dot, _, _, fraction_dot, scale_dot = geometry_dot
    if all(map(_zero, (weights_dot, fraction_dot, scale_dot))):
        drm = _drm_kernel(gen, geometry)
        return drm, jnp.zeros_like(drm)
    direct, (mixed, difference) = _drm_parts_kernel(gen, geometry)
    drm = jnp.einsum("k,kcp->pc", weights, direct) + scale * mixed
    tangent = (jnp.einsum("k,kcp->pc", _dense(weights_dot, weights), direct)
               + _dense(scale_dot, scale) * mixed
               + scale * _dense(fraction_dot, fraction) * difference)
    return drm, tangent


def _check_tables(gen_dot):
    if not all(map(_zero, jax.tree_util.tree_leaves(gen_dot, is_leaf=_zero))):
        raise ValueError("DRMGenerator: differentiating with respect to the generator's tables "
                         "is not supported")


def _out_edges(out_edges) -> np.ndarray:
    if out_edges is None:
        raise ValueError("drm_generator: out_edges is required: the channel edges [keV] (as a "
                         "CSPEC file's EBOUNDS give them), or the path of a file with EBOUNDS")
    if isinstance(out_edges, (str, os.PathLike)):
        bounds = read_ebounds(out_edges)
        out_edges = np.append(bounds[:, 0], bounds[-1, 1])
    edges = np.asarray(out_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 3 or not np.all(np.isfinite(edges)) or np.any(
            np.diff(edges) <= 0) or edges[0] <= 0:
        raise ValueError(f"drm_generator: out_edges must be at least 3 increasing positive "
                         f"energies [keV], got shape {edges.shape}")
    return edges.astype(np.float32)


def _in_edges(in_edges, detector: str) -> np.ndarray:
    if in_edges is None:
        return (BGO_TTE_EDGES if detector.startswith("b") else NAI_TTE_EDGES).copy()
    edges = np.asarray(in_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 5 or edges.size % 2 == 0 or not np.all(
            np.isfinite(edges)) or np.any(np.diff(edges) <= 0) or edges[0] <= 0:
        raise ValueError(f"drm_generator: in_edges must be an odd number (at least 5) of "
                         f"increasing positive energies [keV] (an even number of photon bins, "
                         f"as gbm-drm-gen's method needs), got shape {edges.shape}")
    return edges.astype(np.float32)


def _table_by_incident_energy(at_scat: np.ndarray) -> np.ndarray:
    """The scattering table ``(lat, theta, phi, incident, scattered)`` as ``(lat, incident,
    cell, scattered)``."""
    n_lat, n_theta, n_phi, n_in, n_out = at_scat.shape
    table = at_scat.reshape(n_lat, n_theta * n_phi, n_in, n_out)
    return np.transpose(table, (0, 2, 1, 3))


def _split_energies(table_nz: np.ndarray, rows_nz: np.ndarray, cost) -> tuple:
    """Blocks ``(r0, r1, a0, n1)`` of scattered energies ``[r0, r1)``: the scattering table is
    zero there below incident energy `a0` (it is below the diagonal) and the channel rows
    beyond channel `n1`. The scattered energies without both are left out; the split
    minimizes the sum of ``cost(r1 - r0, n_incident - a0, n1)`` (dynamic programming)."""
    n_in, n_out = table_nz.shape
    used = np.flatnonzero(table_nz.any(axis=0) & rows_nz.any(axis=1))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    a_min = [int(np.argmax(column)) if column.any() else n_in - 1 for column in table_nz.T]
    n_max = [int(np.flatnonzero(row)[-1]) + 1 if row.any() else 1 for row in rows_nz]

    def block(i, k):
        return i, k, min(a_min[i:k]), max(n_max[i:k])

    best = {lo: (0.0, lo)}
    for k in range(lo + 1, hi + 1):
        best[k] = min((best[i][0] + cost(k - i, n_in - block(i, k)[2], block(i, k)[3]), i)
                      for i in range(lo, k))
    edges = [hi]
    while edges[-1] > lo:
        edges.append(best[edges[-1]][1])
    edges = edges[::-1]
    return tuple(block(i, k) for i, k in zip(edges[:-1], edges[1:]))


def _scatter_tables(at_scat: np.ndarray, channel_rows: np.ndarray):
    """The scattering table ``(lat, incident, cell, scattered)`` and the channel rows ``(dir,
    scattered, chan)`` in blocks (`_split_energies`): the blocks, the tables ``(lat, incident,
    cell * scattered)``, the same per latitude row ``(cell * scattered, incident)`` and the
    rows."""
    n_lat, n_in, n_cell, _ = at_scat.shape
    # cost: the GEMM of `drm` (multiply-adds) and the elements `fold` reads (two table rows,
    # two channel rows a cell), with ~20 us a block
    blocks = _split_energies(
        np.any(at_scat != 0, axis=(0, 2)), np.any(channel_rows != 0, axis=0),
        lambda nr, na, n1: n_cell * nr * (na * n1 / 4 + 2 * na + 2 * n1) + 200000)
    tables = tuple(np.ascontiguousarray(at_scat[:, a0:, :, r0:r1]).reshape(n_lat, n_in - a0, -1)
                   for r0, r1, a0, _ in blocks)
    by_lat = tuple(tuple(np.ascontiguousarray(table[lat].T) for lat in range(n_lat))
                   for table in tables)
    rows = tuple(np.ascontiguousarray(channel_rows[:, r0:r1, :n1]) for r0, r1, _, n1 in blocks)
    return blocks, tables, by_lat, rows


def _tables(db: DetectorDatabase, in_edges: np.ndarray, out_edges: np.ndarray, mat_type: int):
    """The position-independent arrays (host, float64): the direct DRM at every database
    direction ``(dir, chan, phot)``, and for scattering the channel rows ``(dir, energy, chan)``
    and the map from database energies to photon bins ``(phot, energy)``."""
    grid = channels.photon_grid(in_edges)
    average = channels.photon_bin_average(in_edges.size - 1)
    direct = channel_rows = scatter_photons = None
    if mat_type in (0, 2):
        mix, edge_lo, edge_hi = channels.direct_interpolation(
            grid, db.photon_energies, db.epx_lo, db.epx_hi)
        weights = channels.channel_weights(edge_lo, edge_hi, out_edges)  # (grid, chan, sub)
        rows = np.einsum("ge,des->gds", mix, db.responses)  # (grid, dir, sub)
        binned = np.matmul(rows, np.transpose(weights, (0, 2, 1)))  # (grid, dir, chan)
        direct = np.matmul(np.transpose(binned, (1, 2, 0)), average.T)  # (dir, chan, phot)
    if mat_type in (1, 2):
        weights = channels.channel_weights(db.epx_lo, db.epx_hi, out_edges)  # (energy, ...)
        rows = np.transpose(db.responses, (1, 0, 2))  # (energy, dir, sub)
        channel_rows = np.transpose(np.matmul(rows, np.transpose(weights, (0, 2, 1))),
                                    (1, 0, 2))
        mix = channels.scattered_interpolation(grid[:-1], db.photon_energies)
        scatter_photons = average[:, :-1] @ mix
    return direct, channel_rows, scatter_photons


def drm_generator(detector: str, trigdat=None, poshist=None, time: float = 0.0,
                  out_edges=None, in_edges=None, mat_type: int = 2, occult: bool = True,
                  database=None, T0: float | None = None) -> DRMGenerator:
    """A JAX BALROG response generator for one GBM detector at one time.

    **Arguments:**

    - `detector`: ``"n0"`` ... ``"nb"``, ``"b0"``, ``"b1"`` (or ``"NAI_06"``, ``"BGO_00"``).
    - `trigdat` or `poshist`: the file giving the spacecraft attitude and position; `time`
        relative to the trigger (trigdat) or as gbm-drm-gen takes it with `T0` (poshist).
    - `out_edges`: the channel edges [keV] ``(chan + 1,)`` (a CSPEC file's EBOUNDS: pass the
        edges or the file's path).
    - `in_edges`: the photon edges [keV], an odd number; default the standard GBM TTE edges
        of the detector type (140 bins, 5 keV-50 MeV NaI, 100 keV-200 MeV BGO).
    - `mat_type`: 0 direct, 1 atmospheric scattering, 2 both (gbm-drm-gen's numbering).
    - `occult`: zero DRM for sources behind the Earth.
    - `database`: the ``balrog_db.h5`` file or folder (default: the installed gbm-drm-gen's).

    **Returns:** a `DRMGenerator`.
    """
    name = detector_name(detector)
    if mat_type not in MAT_TYPES:
        raise ValueError(f"drm_generator: mat_type must be 0 (direct), 1 (scattered) or 2 "
                         f"(direct + scattered), got {mat_type!r}")
    out_np = _out_edges(out_edges)
    in_np = _in_edges(in_edges, name)
    state = spacecraft_state(trigdat=trigdat, poshist=poshist, time=time, T0=T0)
    axes = spacecraft_axes(state.quaternion)
    geo_az, geo_el = earth_direction(axes, state.position)
    theta_geo, phi_geo = np.radians(90.0 - geo_el), np.radians(geo_az)
    earth = np.array([np.sin(theta_geo) * np.cos(phi_geo), np.sin(theta_geo) * np.sin(phi_geo),
                      np.cos(theta_geo)])
    db = load_database(name, database)
    direct, channel_rows, scatter_photons = _tables(db, in_np, out_np, mat_type)
    theta = np.radians(db.theta_cent)[:, None, None]
    phi = np.radians(db.phi_cent)[None, :, :]
    cell_directions = np.stack(np.broadcast_arrays(
        np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)), axis=-1)
    optional = (lambda a: None if a is None else _float(a))
    ring_index = _ring_candidates(db.grid.astype(np.float64), earth / np.linalg.norm(earth),
                                  db.theta_cent)
    blocks, tables, by_lat, rows = (), None, None, None
    if channel_rows is not None:
        blocks, tables, by_lat, rows = _scatter_tables(_table_by_incident_energy(db.at_scat),
                                                       channel_rows)
        tables, rows = tuple(map(_float, tables)), tuple(map(_float, rows))
        by_lat = tuple(tuple(map(_float, per_lat)) for per_lat in by_lat)
    return DRMGenerator(
        ebounds=_float(out_np), monte_carlo_energies=_float(in_np), axes=_float(axes),
        position=_float(state.position), earth=_float(earth / np.linalg.norm(earth)),
        grid=_float(db.grid), direct=optional(direct),
        scatter_photons=optional(scatter_photons), lat_cent=_float(db.lat_cent),
        cell_directions=_float(cell_directions), ring_index=jnp.asarray(ring_index),
        ring_grid=_float(db.grid[ring_index]), at_scat=tables, at_scat_by_lat=by_lat,
        channel_rows=rows, detector=name, mat_type=int(mat_type), occult=bool(occult),
        time=float(time), met=float(state.met), blocks=blocks)
