"""The position-independent linear maps of the BALROG response, built once on the host (numpy).

A database response is given at 70 photon energies, each spread over 64 sub-bins of deposited
energy. gbm-drm-gen's method turns it into a DRM by (1) interpolating it to the photon grid (the
input edges and their logarithmic midpoints), in log energy, scaling the sub-bin edges with the
photon energy; (2) integrating each row's deposited-energy density over the output channels by
sampling it at evenly spaced points per channel (linear interpolation between sub-bin centres,
a cosine ramp above the last one, a linear ramp below the first); (3) averaging the grid rows
over each photon bin (trapezoid of left edge, midpoint and right edge). All three steps are
linear in the database response and independent of the source position, so they are built here
as arrays, once per detector and edge set, and the position-dependent part only mixes them.
"""

from __future__ import annotations

import math

import numpy as np


def photon_grid(in_edges: np.ndarray) -> np.ndarray:
    """The photon energies a DRM row is evaluated at: each bin's lower edge and its logarithmic
    midpoint, ``(2 * phot,)`` [keV] (the midpoints in float32, as the edges)."""
    low, high = in_edges[:-1], in_edges[1:]
    grid = np.zeros(2 * low.size)
    grid[::2] = low
    grid[1::2] = 10 ** ((np.log10(low) + np.log10(high)) / 2.0)
    return grid


def _log_position(energy: float, lower: np.float32, upper: np.float32) -> float:
    # the float32 database energies' logarithms rounded to float32, as gbm-drm-gen's compiled
    # code takes them (numpy's float32 log is sometimes one unit off the rounded value)
    log_lower = float(np.float32(math.log(float(lower))))
    log_upper = float(np.float32(math.log(float(upper))))
    mu = (math.log(energy) - log_lower) / (log_upper - log_lower)
    if -1e-5 < mu < 0.0:
        return 0.0
    if 1.0 < mu < 1.00001:
        return 1.0
    return mu


def direct_interpolation(grid: np.ndarray, energies: np.ndarray, epx_lo: np.ndarray,
                         epx_hi: np.ndarray):
    """Interpolate the database to the photon `grid` for the direct response.

    A grid energy in ``[energies[j-1], energies[j])``, ``1 <= j < 70``, takes rows ``j-1`` and
    ``j`` with log-energy weights; its sub-bin edges are the rows' edges scaled to the energy.
    Energies outside give zero rows (no edges).

    **Returns:** `weights` ``(grid, 70)`` (the row mix), `edge_lo`, `edge_hi` ``(grid, 64)``.
    """
    n_rows = epx_lo.shape[0]
    weights = np.zeros((grid.size, n_rows))
    edge_lo = np.zeros((grid.size, epx_lo.shape[1]))
    edge_hi = np.zeros_like(edge_lo)
    # the edges over the energy in float32, as the database holds them; then float64
    scaled_lo = (epx_lo / energies[:n_rows, None]).astype(np.float64)
    scaled_hi = (epx_hi / energies[:n_rows, None]).astype(np.float64)
    for i, energy in enumerate(grid):
        j = int(np.searchsorted(energies[:n_rows], energy, side="right"))
        if not 1 <= j < n_rows:
            continue
        mu = _log_position(energy, energies[j - 1], energies[j])
        weights[i, j - 1], weights[i, j] = 1 - mu, mu
        edge_lo[i] = (scaled_lo[j - 1] * (1 - mu) + scaled_lo[j] * mu) * energy
        edge_hi[i] = (scaled_hi[j - 1] * (1 - mu) + scaled_hi[j] * mu) * energy
    return weights, edge_lo, edge_hi


def scattered_interpolation(grid: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """The row mix ``(grid, 70)`` taking the scattered response (given at the 70 database
    energies) to the photon `grid`: log-energy weights between the energies around each grid
    energy, up to the last upper edge; above the last database energy the upper neighbour is
    taken as zero."""
    n_rows = energies.size - 1
    weights = np.zeros((grid.size, n_rows))
    for i, energy in enumerate(grid):
        j = int(np.searchsorted(energies, energy, side="right")) - 1
        if not 0 <= j < n_rows:
            continue
        mu = _log_position(energy, energies[j], energies[j + 1])
        weights[i, j] = 1 - mu
        if j + 1 < n_rows:
            weights[i, j + 1] = mu
    return weights


def photon_bin_average(n_phot: int) -> np.ndarray:
    """``(phot, 2 * phot)``: each photon bin's response as the trapezoid average of the grid
    rows at its lower edge, midpoint and upper edge; the last bin (whose upper edge is not on
    the grid) is zero, as in gbm-drm-gen."""
    average = np.zeros((n_phot, 2 * n_phot))
    for b in range(n_phot - 1):
        average[b, 2 * b: 2 * b + 3] = (0.25, 0.5, 0.25)
    return average


def _lerp(coef, k, position):
    coef[k - 1] += 1.0 - position
    coef[k] += position


def _row_channel_weights(edge_lo, edge_hi, out_edges):
    """One row's ``(chan, 64)`` map from the sub-bin contents to channel contents."""
    n_sub = edge_lo.size
    n_chan = out_edges.size - 1
    weights = np.zeros((n_chan, n_sub))
    centre = ((edge_lo + edge_hi) / 2).astype(np.float64)
    if centre.sum() == 0:
        return weights
    if np.any(centre <= 0):
        raise ValueError("BALROG database: a deposited-energy sub-bin centre is not positive")
    density = 1.0 / (edge_hi - edge_lo).astype(np.float64)
    top = float(edge_hi[-1] + (edge_hi[-1] - edge_hi[-2]))
    centres = centre.tolist()
    first, last = centres[0], centres[-1]
    low_index = 0
    for c in range(n_chan):
        low, high = out_edges[c], out_edges[c + 1]
        width = float(high - low)
        mid = float((low + high) / 2)
        low, high = float(low), float(high)
        coef = np.zeros(n_sub)
        if low_index == 0:
            low_index = int(np.searchsorted(centre, low))
        if low <= first:
            if high > first:
                high_index = int(np.searchsorted(centre, high))
                n_points = high_index + 2
                step = width / (n_points - 1)
                for s in range(n_points):
                    energy = low + step * s
                    if energy <= first:
                        coef[0] += energy / first
                    else:
                        k = int(np.searchsorted(centre, energy))
                        if k < min(high_index + 1, n_sub):
                            _lerp(coef, k, (energy - centres[k - 1]) / (centres[k]
                                                                       - centres[k - 1]))
                coef *= width / n_points
            else:
                coef[0] = mid / first * width
        if low_index >= n_sub:
            if low > top:
                break  # above the response: this and the later channels stay zero
            if high <= top:
                coef[-1] = (top - mid) / (top - last) * width
            else:
                coef[-1] = (top - low) ** 2 / (2.0 * (top - last))
        elif low_index >= 1:
            if high > top:
                span = top - low
                n_points = n_sub - low_index + 2
                step = span / (n_points - 1)
                for s in range(n_points):
                    energy = low + step * s
                    k = int(np.searchsorted(centre[low_index:], energy)) + low_index
                    if k < n_sub:
                        mu = (energy - centres[k - 1]) / (centres[k] - centres[k - 1])
                        _lerp(coef, k, (1 - math.cos(mu * math.pi)) / 2.0)
                coef *= span / n_points
                low_index = n_sub
            else:
                if high > last:
                    high_index = n_sub
                else:
                    high_index = int(np.searchsorted(centre[low_index:], high)) + low_index
                n_points = max(high_index - low_index + 2, 9)
                step = width / (n_points - 1)
                for s in range(n_points):
                    energy = low + step * s
                    for k in range(low_index, high_index + 1):
                        if k <= n_sub - 1:
                            if centres[k - 1] < energy <= centres[k]:
                                _lerp(coef, k, (energy - centres[k - 1]) / (centres[k]
                                                                           - centres[k - 1]))
                                break
                        else:
                            coef[-1] += (high - last) / (last - centres[-2])
                coef *= width / n_points
                low_index = high_index
        weights[c] = coef * density
    return weights


def channel_weights(edge_lo: np.ndarray, edge_hi: np.ndarray, out_edges: np.ndarray
                    ) -> np.ndarray:
    """The linear maps ``(rows, chan, 64)`` that integrate each row's deposited-energy density
    (sub-bin contents over `edge_lo`, `edge_hi` ``(rows, 64)``) over the channels `out_edges`
    ``(chan + 1,)``, as gbm-drm-gen's channel integrator; rows without edges map to zero."""
    return np.stack([_row_channel_weights(lo, hi, out_edges)
                     for lo, hi in zip(edge_lo, edge_hi)])
