"""Channel grouping: threshold grouping, optimal grouping and grouping flags -> segment ids.

Everything here is host-side numpy (float64) and runs once, when a unit is built; a fit only
ever sees the integer segment ids that `flags_to_group_ids` returns.

Grouping flags follow OGIP, per channel: ``1`` starts a group, ``-1`` continues the group
started before it, ``0`` puts the channel in no group (excluded). The builders here never
return a ``-1`` right after a ``0``, and a group never spans a channel outside ``valid``.

The algorithms are those of bayspec 0.4.5 (``bayspec.util.group``), which for optimal
grouping follow Kaastra & Bleeker (2016) as implemented in HEASoft's HEASP/ftgrouppha.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from numpy.typing import ArrayLike

from ..significance import pgsig_host, ppsig_host
from ..stats import STATISTICS, statistic

__all__ = [
    "GROUPING_KEYS",
    "GROUPING_METHODS",
    "build_grouping",
    "channel_fwhm",
    "count_grouping",
    "flags_to_group_ids",
    "group_bounds",
    "optimal_bin_widths",
    "optimal_grouping",
    "threshold_grouping",
]

GROUPING_KEYS = ("method", "min_evt", "min_nevt", "min_sigma", "max_bin", "min_bevt")
"""Keys accepted in the settings dict of `build_grouping`."""

GROUPING_METHODS = ("threshold", "optimal", "counts")
"""Values accepted for ``settings['method']``: ``'threshold'`` and ``'optimal'`` group the
noticed channels (notice first, then group); ``'counts'`` groups the whole spectrum from its
first channel, as Sherpa's ``group_counts(n)`` and grppha's ``group min n`` (`count_grouping`),
and notice windows then select whole groups."""

SPECTRUM_METHODS = ("counts",)
"""Methods that group the whole spectrum before channels are noticed."""


# ---------------------------------------------------------------------------------------------
# Significance of one group (scalars, float64)
# ---------------------------------------------------------------------------------------------


def _group_significance(
    src_sum: float, bkg_sum: float, bkg_error_sum: float, alpha: float, stat: str
) -> float:
    """Significance of one group's source counts over its scaled background, as for ``stat``.

    Poisson-background statistics use `ppsig_host` (Li & Ma) on the raw counts (0 where
    either sum is negative, unless both are equal); Gaussian-background statistics use
    `pgsig_host` with background and error scaled by ``alpha`` (0 where the source sum is not
    positive or the background error is zero).
    """
    if statistic(stat).background == "poisson":
        if (src_sum < 0 or bkg_sum < 0) and src_sum != bkg_sum:
            return 0.0
        return ppsig_host(src_sum, bkg_sum, alpha)
    if src_sum <= 0 or bkg_error_sum == 0:
        return 0.0
    return pgsig_host(src_sum, bkg_sum * alpha, bkg_error_sum * alpha)


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Thresholds:
    """What a group must reach; ``None`` means not required.

    ``min_evt``: source counts; ``min_nevt``: net counts (source - alpha * background);
    ``min_sigma``: significance; ``min_bevt``: raw background counts; ``max_bin``: the most
    channels in a group.
    """

    min_evt: float | None = None
    min_nevt: float | None = None
    min_sigma: float | None = None
    max_bin: int | None = None
    min_bevt: float | None = None

    def met(
        self, src_sum: float, bkg_sum: float, bkg_error_sum: float, alpha: float, stat: str
    ) -> bool:
        """Whether a group with these sums reaches every minimum (``max_bin`` is not a minimum)."""
        if self.min_evt is not None and not src_sum >= self.min_evt:
            return False
        if self.min_nevt is not None and not src_sum - bkg_sum * alpha >= self.min_nevt:
            return False
        if self.min_bevt is not None and not bkg_sum >= self.min_bevt:
            return False
        if self.min_sigma is not None:
            sigma = _group_significance(src_sum, bkg_sum, bkg_error_sum, alpha, stat)
            if not sigma >= self.min_sigma:
                return False
        return True


def _check_thresholds(
    min_evt: Any, min_nevt: Any, min_sigma: Any, max_bin: Any, min_bevt: Any
) -> _Thresholds:
    """Validate threshold settings: finite and non-negative; ``max_bin`` an integer >= 1."""
    values = {}
    for name, value in (
        ("min_evt", min_evt),
        ("min_nevt", min_nevt),
        ("min_sigma", min_sigma),
        ("min_bevt", min_bevt),
    ):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"grouping {name} must be a number or None, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"grouping {name} must be finite and >= 0, got {value!r}")
            value = float(value)
        values[name] = value
    if max_bin is not None:
        if (
            isinstance(max_bin, bool)
            or not isinstance(max_bin, (int, float, np.number))
            or not math.isfinite(max_bin)
            or max_bin < 1
            or max_bin != int(max_bin)
        ):
            raise ValueError(f"grouping max_bin must be an integer >= 1 or None, got {max_bin!r}")
        max_bin = int(max_bin)
    return _Thresholds(max_bin=max_bin, **values)


def _check_stat(stat: str) -> str:
    if not isinstance(stat, str) or stat not in STATISTICS:
        raise ValueError(f"grouping stat must be one of {list(STATISTICS)}, got {stat!r}")
    return stat


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _as_valid_mask(valid: ArrayLike | None, n_channels: int) -> np.ndarray:
    """``valid`` as a boolean mask ``(channel,)``; None means every channel."""
    if valid is None:
        return np.ones(n_channels, dtype=bool)
    valid = np.asarray(valid)
    if valid.shape != (n_channels,):
        raise ValueError(f"valid must have shape ({n_channels},), got {valid.shape}")
    if valid.dtype != bool:
        if not np.all((valid == 0) | (valid == 1)):
            raise ValueError("valid must be boolean or hold only 0 and 1")
        valid = valid.astype(bool)
    return valid


def _as_channel_array(values: ArrayLike | None, n_channels: int, name: str) -> np.ndarray:
    """``values`` as float64 ``(channel,)``; None means zeros."""
    if values is None:
        return np.zeros(n_channels)
    values = np.asarray(values, dtype=float)
    if values.shape != (n_channels,):
        raise ValueError(f"{name} must have shape ({n_channels},), got {values.shape}")
    return values


def _check_alpha(alpha: Any) -> float:
    if np.ndim(alpha) != 0:
        raise ValueError(f"alpha must be a scalar, got shape {np.shape(alpha)}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be finite and > 0, got {alpha!r}")
    return alpha


def _group_inputs(src_counts, bkg_counts, bkg_errors, alpha, valid):
    """Validated float64 counts ``(channel,)``, scalar alpha and boolean valid mask."""
    src_counts = np.asarray(src_counts, dtype=float)
    if src_counts.ndim != 1:
        raise ValueError(f"src_counts must be one-dimensional, got shape {src_counts.shape}")
    n_channels = src_counts.shape[0]
    bkg_counts = _as_channel_array(bkg_counts, n_channels, "bkg_counts")
    bkg_errors = _as_channel_array(bkg_errors, n_channels, "bkg_errors")
    valid = _as_valid_mask(valid, n_channels)
    for name, values in (
        ("src_counts", src_counts),
        ("bkg_counts", bkg_counts),
        ("bkg_errors", bkg_errors),
    ):
        if not np.all(np.isfinite(values[valid])):
            raise ValueError(f"{name} must be finite in every valid channel")
    return src_counts, bkg_counts, bkg_errors, _check_alpha(alpha), valid


def _valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """First and last channel (inclusive) of each maximal run of valid channels."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], valid, [False]]).astype(np.int8)))
    return [(int(first), int(end) - 1) for first, end in edges.reshape(-1, 2)]


def _groups_to_flags(groups: list[tuple[int, int]], n_channels: int) -> np.ndarray:
    """OGIP flags ``(channel,)`` from groups given as (first, last) channel pairs."""
    flags = np.zeros(n_channels, dtype=np.int64)
    for first, last in groups:
        flags[first] = 1
        flags[first + 1 : last + 1] = -1
    return flags


# ---------------------------------------------------------------------------------------------
# Threshold grouping
# ---------------------------------------------------------------------------------------------


def threshold_grouping(
    src_counts: ArrayLike,
    bkg_counts: ArrayLike | None = None,
    bkg_errors: ArrayLike | None = None,
    alpha: float = 1.0,
    valid: ArrayLike | None = None,
    *,
    min_evt: float | None = None,
    min_nevt: float | None = None,
    min_sigma: float | None = None,
    max_bin: int | None = None,
    min_bevt: float | None = None,
    stat: str = "pgstat",
) -> Int[np.ndarray, " channel"]:
    """Group channels left to right until each group reaches the thresholds.

    Within each run of valid channels, channels are added to the open group until it has
    at least ``min_evt`` source counts, ``min_nevt`` net counts, ``min_sigma`` significance
    and ``min_bevt`` background counts, or until it holds ``max_bin`` channels; then the
    next group starts. As in bayspec 0.4.5, a ``min_evt`` or ``min_nevt`` left at None
    still asks for a non-negative sum (0), while ``min_sigma`` and ``min_bevt`` left at
    None ask for nothing.

    An unfinished group at the end of a valid run is merged into the run's previous group
    (which may then exceed ``max_bin``). A run with no finished group is one group if it is
    the first valid run, and is left out (flags 0) otherwise: bayspec 0.4.5 marks such a run
    as continuing a group across the gap and then drops it, so its channels never reach a
    fit.

    **Arguments:**

    - `src_counts`: source counts per channel, ``(channel,)``.
    - `bkg_counts`: background counts per channel, ``(channel,)``; None means zeros.
    - `bkg_errors`: background count errors per channel, ``(channel,)``; None means zeros.
    - `alpha`: background scaling, ``src_exposure * src_backscale / (bkg_exposure *
      bkg_backscale)`` (a scalar).
    - `valid`: boolean (or 0/1) mask ``(channel,)`` of channels that may be grouped
      (quality good and noticed); None means all.
    - `min_evt`, `min_nevt`, `min_sigma`, `min_bevt`: minimum source counts, net counts
      ``src - alpha * bkg``, significance and background counts per group (>= 0).
    - `max_bin`: the most channels in one group (an integer >= 1), or None.
    - `stat`: the fit statistic; ``min_sigma`` is measured with Li & Ma for ``pstat``,
      ``cstat``, ``ppstat`` and with a Gaussian background for ``pgstat``, ``chi2``, ``gstat``.

    **Returns:**

    OGIP grouping flags ``(channel,)`` (int64): 1 start, -1 continue, 0 in no group.
    """
    src, bkg, bkg_err, alpha, valid = _group_inputs(
        src_counts, bkg_counts, bkg_errors, alpha, valid
    )
    stat = _check_stat(stat)
    thresholds = _check_thresholds(min_evt, min_nevt, min_sigma, max_bin, min_bevt)
    thresholds = dataclasses.replace(
        thresholds,
        min_evt=0.0 if thresholds.min_evt is None else thresholds.min_evt,
        min_nevt=0.0 if thresholds.min_nevt is None else thresholds.min_nevt,
    )

    groups: list[tuple[int, int]] = []
    for run_index, (run_first, run_last) in enumerate(_valid_runs(valid)):
        run_groups: list[tuple[int, int]] = []
        first = run_first
        src_sum = bkg_sum = bkg_error_sum = 0.0
        for channel in range(run_first, run_last + 1):
            src_sum += src[channel]
            bkg_sum += bkg[channel]
            bkg_error_sum = np.sqrt(bkg_error_sum**2 + bkg_err[channel] ** 2)
            full = channel - first + 1 == thresholds.max_bin
            if full or thresholds.met(src_sum, bkg_sum, bkg_error_sum, alpha, stat):
                run_groups.append((first, channel))
                first = channel + 1
                src_sum = bkg_sum = bkg_error_sum = 0.0
        if first <= run_last:  # an unfinished group ends the run
            if run_groups:
                run_groups[-1] = (run_groups[-1][0], run_last)
            elif run_index == 0:
                run_groups.append((first, run_last))
        groups.extend(run_groups)
    return _groups_to_flags(groups, src.shape[0])


# ---------------------------------------------------------------------------------------------
# Whole-spectrum grouping by counts (grppha "group min n", Sherpa group_counts(n))
# ---------------------------------------------------------------------------------------------


def count_grouping(
    src_counts: ArrayLike,
    min_counts: float,
    valid: ArrayLike | None = None,
    max_bin: int | None = None,
) -> tuple[Int[np.ndarray, " channel"], Int[np.ndarray, " channel"]]:
    """Groups of at least `min_counts` source counts from the first channel, as grppha's
    ``group min n`` and Sherpa's ``group_counts(n)``.

    Channels are added left to right until the group holds `min_counts` counts (or
    `max_bin` channels); then the next group starts. The last group, when it falls short,
    stays a group but is flagged bad (QUALITY 2), as grppha flags it. `valid` marks the
    channels that may be grouped (good quality): the others are in no group (flag 0, their
    quality untouched) and each run of valid channels is grouped on its own.

    **Arguments:**

    - `src_counts`: source counts per channel ``(channel,)``; finite in valid channels.
    - `min_counts`: the least counts in a group (finite, >= 0).
    - `valid`: boolean mask ``(channel,)``; None means all.
    - `max_bin`: the most channels in a group, or None.

    **Returns:**

    ``(flags, quality)``, each ``(channel,)`` int64: OGIP grouping flags, and 2 in the channels
    of the unfinished last group of each run (0 elsewhere).
    """
    src, _, _, _, valid = _group_inputs(src_counts, None, None, 1.0, valid)
    limits = _check_thresholds(min_counts, None, None, max_bin, None)
    if limits.min_evt is None:
        raise ValueError("count grouping needs min_counts (min_evt), a number >= 0")
    groups, short = [], []
    for run_first, run_last in _valid_runs(valid):
        first, total = run_first, 0.0
        for channel in range(run_first, run_last + 1):
            total += src[channel]
            if total >= limits.min_evt or channel - first + 1 == limits.max_bin:
                groups.append((first, channel))
                first, total = channel + 1, 0.0
        if first <= run_last:
            groups.append((first, run_last))
            short.append((first, run_last))
    quality = np.zeros(src.shape[0], dtype=np.int64)
    for first, last in short:
        quality[first : last + 1] = 2
    return _groups_to_flags(groups, src.shape[0]), quality


# ---------------------------------------------------------------------------------------------
# Optimal grouping (Kaastra & Bleeker 2016)
# ---------------------------------------------------------------------------------------------


def _round_half_away_from_zero(values: ArrayLike) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (as C's ``round``); int64."""
    values = np.asarray(values, dtype=float)
    return np.where(values >= 0, np.floor(values + 0.5), np.ceil(values - 0.5)).astype(np.int64)


def _heasp_energy_index(
    energy: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Photon bin of each ``energy``, by HEASP's lookup (bisection on the lower edges).

    ``low`` and ``high`` are the photon bin edges ``(photon,)``, increasing or decreasing.
    Energies off the grid go to the first or last bin; an energy that bisection places
    between bins goes to the upper neighbour. Returns indices ``energy.shape`` (int64).
    """
    n_bins = low.shape[0]
    if n_bins == 1:
        return np.zeros(energy.shape, dtype=np.int64)
    if low[1] > low[0]:
        n_before = np.searchsorted(low, energy, side="left")  # how many low < energy
        off_low, off_high = energy < low[0], energy > high[-1]
    else:
        n_before = np.searchsorted(-low, -energy, side="left")  # how many low > energy
        off_low, off_high = energy > low[0], energy < high[-1]
    lower = np.clip(n_before - 1, 0, n_bins - 2)
    inside = (low[lower] < energy) & (energy <= high[lower])
    index = np.where(inside, lower, lower + 1)
    return np.where(off_low, 0, np.where(off_high, n_bins - 1, index)).astype(np.int64)


def channel_fwhm(
    chbin: ArrayLike, phbin: ArrayLike, drm: ArrayLike
) -> Float[np.ndarray, " channel"]:
    """Response FWHM, in channels, at each detector channel (as HEASP and bayspec estimate it).

    For each photon bin the half-maximum crossings of its DRM row are found by walking out
    from the peak; if only one side falls to half maximum before the matrix edge, the width
    is twice that side's; if neither does, it is -1. Each channel then takes the width of
    the photon bin holding the channel's mean energy.

    **Arguments:**

    - `chbin`: channel energy bounds ``(channel, 2)``. Pass them in the file's precision
      (float32 for most files) to reproduce the original exactly: the mean is taken in it.
    - `phbin`: photon energy bins ``(photon, 2)``.
    - `drm`: the response matrix ``(photon, channel)``.

    **Returns:**

    FWHM per channel ``(channel,)`` in channels (float64; -1 where undetermined).
    """
    chbin = np.asarray(chbin)
    phbin = np.asarray(phbin)
    drm = np.asarray(drm, dtype=float)
    if chbin.ndim != 2 or chbin.shape[1] != 2:
        raise ValueError(f"chbin must have shape (channel, 2), got {chbin.shape}")
    if phbin.ndim != 2 or phbin.shape[1] != 2:
        raise ValueError(f"phbin must have shape (photon, 2), got {phbin.shape}")
    if drm.shape != (phbin.shape[0], chbin.shape[0]):
        raise ValueError(
            f"drm must have shape (photon, channel) = {(phbin.shape[0], chbin.shape[0])}, "
            f"got {drm.shape}"
        )

    n_channels = drm.shape[1]
    columns = np.arange(n_channels)
    peak = np.argmax(drm, axis=1)
    half_max = drm[np.arange(drm.shape[0]), peak] / 2.0
    at_or_below_half = drm <= half_max[:, None]

    # First channel above the peak at or below half maximum (else the last channel), and the
    # last one below the peak (else channel 0).
    above = at_or_below_half & (columns > peak[:, None])
    high = np.where(above.any(axis=1), np.argmax(above, axis=1), n_channels - 1)
    below = at_or_below_half & (columns < peak[:, None])
    low = np.where(below.any(axis=1), n_channels - 1 - np.argmax(below[:, ::-1], axis=1), 0)

    high_side_closed = drm[:, -1] <= half_max
    low_side_closed = drm[:, 0] <= half_max
    width = np.where(high_side_closed, high - peak, 0) + np.where(low_side_closed, peak - low, 0)
    width = np.where(high_side_closed != low_side_closed, 2 * width, width).astype(float)
    width = np.where(high_side_closed | low_side_closed, width, -1.0)

    channel_energy = np.mean(chbin, axis=1)
    return width[_heasp_energy_index(channel_energy, phbin[:, 0], phbin[:, 1])]


def optimal_bin_widths(
    fwhm: ArrayLike, src_counts: ArrayLike, valid: ArrayLike | None = None
) -> Int[np.ndarray, " channel"]:
    """Kaastra & Bleeker (2016) optimal bin width, in channels, at each channel.

    The width starts at the response FWHM and shrinks with the source counts per
    resolution element (the rounded counts within one FWHM of the channel, times 1.314) and
    with the number of resolution elements (``1 + sum(1 / fwhm)`` over valid channels).
    Only valid channels count, and the FWHM window of a channel stays inside its run of
    valid channels; with every channel valid this is HEASP's calculation.

    **Arguments:**

    - `fwhm`: response FWHM per channel ``(channel,)`` in channels (see `channel_fwhm`);
      finite and > 0 in valid channels.
    - `src_counts`: source counts per channel ``(channel,)``; finite in valid channels.
    - `valid`: boolean mask ``(channel,)``; None means all channels.

    **Returns:**

    Widths ``(channel,)`` (int64, >= 1; 1 in channels that are not valid).
    """
    fwhm = np.asarray(fwhm, dtype=float)
    src_counts = np.asarray(src_counts, dtype=float)
    if fwhm.ndim != 1 or fwhm.shape != src_counts.shape:
        raise ValueError(
            f"fwhm and src_counts must be (channel,) of one length, got {fwhm.shape} "
            f"and {src_counts.shape}"
        )
    valid = _as_valid_mask(valid, fwhm.shape[0])
    if not np.all(np.isfinite(fwhm[valid])) or np.any(fwhm[valid] <= 0):
        raise ValueError("fwhm must be finite and > 0 in every valid channel for optimal grouping")
    if not np.all(np.isfinite(src_counts[valid])):
        raise ValueError("src_counts must be finite in every valid channel for optimal grouping")

    n_resolution_elements = 1.0 + np.sum(1.0 / fwhm[valid])
    rounded_counts = np.where(valid, _round_half_away_from_zero(np.where(valid, src_counts, 0)), 0)
    cumulative = np.concatenate([[0], np.cumsum(rounded_counts)])

    # The FWHM window around each valid channel, clipped to the channel's valid run.
    runs = _valid_runs(valid)
    run_first = np.zeros(fwhm.shape[0], dtype=np.int64)
    run_last = np.zeros(fwhm.shape[0], dtype=np.int64)
    for first, last in runs:
        run_first[first : last + 1] = first
        run_last[first : last + 1] = last
    channels = np.arange(fwhm.shape[0])
    safe_fwhm = np.where(valid, fwhm, 1.0)
    window_first = np.maximum(run_first, _round_half_away_from_zero(channels - safe_fwhm / 2.0))
    window_last = np.minimum(run_last, _round_half_away_from_zero(channels + safe_fwhm / 2.0))
    window_counts = np.where(valid, cumulative[window_last + 1] - cumulative[window_first], 0)

    counts_per_resolution = 1.314 * window_counts
    log_argument = counts_per_resolution * (1.0 + 0.2 * np.log(n_resolution_elements))
    x = np.log(np.where(log_argument > 0, log_argument, 1.0))
    shrink = (log_argument > 0) & (x > 2.119)
    factor = (0.08 * x + 7.0 + 1.8 / np.where(shrink, x, 1.0)) / (x + 5.9)
    widths = np.where(shrink, safe_fwhm * factor, safe_fwhm)
    return np.maximum(widths.astype(np.int64), 1)


def _optimal_group_last(widths: np.ndarray, first: int, run_last: int) -> int:
    """Last channel of the optimal group starting at ``first``: no channel in the group may
    reach past its own optimal width, and the group stays inside its run."""
    last = min(run_last, first + int(widths[first]) - 1)
    channel = first + 1
    while channel <= last:
        last = min(last, channel + int(widths[channel]) - 1)
        channel += 1
    return last


def optimal_grouping(
    src_counts: ArrayLike,
    bkg_counts: ArrayLike | None = None,
    bkg_errors: ArrayLike | None = None,
    alpha: float = 1.0,
    valid: ArrayLike | None = None,
    *,
    fwhm: ArrayLike,
    min_evt: float | None = None,
    min_nevt: float | None = None,
    min_sigma: float | None = None,
    max_bin: int | None = None,
    min_bevt: float | None = None,
    stat: str = "pgstat",
) -> Int[np.ndarray, " channel"]:
    """Optimal grouping (Kaastra & Bleeker 2016) inside each run of valid channels.

    Each group starts at the first free channel and is as wide as the optimal widths of
    its channels allow (see `optimal_bin_widths`). With any threshold set, a group is then
    widened one channel at a time until it meets every threshold that is set (here None
    means "not required"), holds ``max_bin`` channels or reaches the end of its run; an
    unfinished last group of a run is merged into the previous ones while that keeps it
    within ``max_bin``. Every valid channel ends up in a group.

    **Arguments:**

    - `src_counts`, `bkg_counts`, `bkg_errors`, `alpha`, `valid`, `stat`: as in
      `threshold_grouping` (the background is only used by the thresholds).
    - `fwhm`: response FWHM per channel ``(channel,)`` in channels (see `channel_fwhm`).
    - `min_evt`, `min_nevt`, `min_sigma`, `min_bevt`, `max_bin`: as in `threshold_grouping`.

    **Returns:**

    OGIP grouping flags ``(channel,)`` (int64): 1 start, -1 continue, 0 not valid.

    **Raises:**

    `ValueError` if ``max_bin`` is smaller than an optimal group.
    """
    src, bkg, bkg_err, alpha, valid = _group_inputs(
        src_counts, bkg_counts, bkg_errors, alpha, valid
    )
    stat = _check_stat(stat)
    thresholds = _check_thresholds(min_evt, min_nevt, min_sigma, max_bin, min_bevt)
    widths = optimal_bin_widths(fwhm, src, valid)
    max_width = math.inf if thresholds.max_bin is None else thresholds.max_bin

    def met(first: int, last: int) -> bool:
        group = slice(first, last + 1)
        return thresholds.met(
            np.sum(src[group]),
            np.sum(bkg[group]),
            np.sqrt(np.sum(bkg_err[group] ** 2)),
            alpha,
            stat,
        )

    groups: list[tuple[int, int]] = []
    for run_first, run_last in _valid_runs(valid):
        run_groups: list[tuple[int, int]] = []
        first = run_first
        while first <= run_last:
            last = _optimal_group_last(widths, first, run_last)
            if last - first + 1 > max_width:
                raise ValueError(
                    f"max_bin={thresholds.max_bin} is smaller than the optimal group of "
                    f"{last - first + 1} channels starting at channel {first}"
                )
            while not met(first, last) and last < run_last and last - first + 1 < max_width:
                last += 1
            run_groups.append((first, last))
            first = last + 1
        while len(run_groups) >= 2 and not met(*run_groups[-1]):
            merged = (run_groups[-2][0], run_groups[-1][1])
            if merged[1] - merged[0] + 1 > max_width:
                break
            run_groups[-2:] = [merged]
        groups.extend(run_groups)
    return _groups_to_flags(groups, src.shape[0])


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def build_grouping(
    settings: Mapping[str, Any],
    src_counts: ArrayLike,
    bkg_counts: ArrayLike | None = None,
    bkg_errors: ArrayLike | None = None,
    alpha: float = 1.0,
    valid: ArrayLike | None = None,
    *,
    stat: str = "pgstat",
    fwhm: ArrayLike | None = None,
) -> Int[np.ndarray, " channel"]:
    """Grouping flags from a settings dict, as a unit's ``grpg`` (or ``rebn``) asks.

    **Arguments:**

    - `settings`: a dict with keys from `GROUPING_KEYS`: ``method`` (``'threshold'``, the
      default, ``'optimal'``, or ``'counts'``: `count_grouping` with ``min_evt`` counts and
      ``max_bin``, its short last group left out of every group here) and the thresholds
      ``min_evt``, ``min_nevt``, ``min_sigma``, ``max_bin``, ``min_bevt`` (see
      `threshold_grouping`).
    - `src_counts`, `bkg_counts`, `bkg_errors`, `alpha`, `valid`, `stat`: as in
      `threshold_grouping`.
    - `fwhm`: response FWHM per channel ``(channel,)``, required by ``method='optimal'``
      (see `channel_fwhm`).

    **Returns:**

    OGIP grouping flags ``(channel,)`` (int64): 1 start, -1 continue, 0 in no group.

    **Raises:**

    `ValueError` for a settings object that is not a dict, unknown keys or method,
    negative thresholds, or an optimal grouping without `fwhm`.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"grouping settings must be a dict, got {type(settings).__name__}")
    unknown = sorted(str(key) for key in settings if key not in GROUPING_KEYS)
    if unknown:
        raise ValueError(
            f"unknown grouping setting(s) {unknown}; allowed keys are {list(GROUPING_KEYS)}"
        )
    thresholds = {key: value for key, value in settings.items() if key != "method"}
    method = settings.get("method", "threshold")
    if method == "threshold":
        return threshold_grouping(
            src_counts, bkg_counts, bkg_errors, alpha, valid, stat=stat, **thresholds
        )
    if method == "counts":
        extra = sorted(set(thresholds) - {"min_evt", "max_bin"})
        if extra or "min_evt" not in thresholds:
            raise ValueError("grouping method 'counts' takes min_evt (required) and max_bin, "
                             f"got {sorted(thresholds)}")
        flags, quality = count_grouping(src_counts, thresholds["min_evt"], valid,
                                        thresholds.get("max_bin"))
        return np.where(quality == 0, flags, 0)  # the short last group: in no group
    if method == "optimal":
        if fwhm is None:
            raise ValueError("grouping method 'optimal' needs the response FWHM per channel")
        return optimal_grouping(
            src_counts, bkg_counts, bkg_errors, alpha, valid, fwhm=fwhm, stat=stat, **thresholds
        )
    raise ValueError(f"grouping method must be one of {list(GROUPING_METHODS)}, got {method!r}")


# ---------------------------------------------------------------------------------------------
# Flags -> segment ids
# ---------------------------------------------------------------------------------------------


def _group_membership(flags: ArrayLike, valid: ArrayLike | None):
    """Per channel, the index of its group among the kept groups, or -1; and how many kept.

    A group is a 1 followed by the -1s right after it; any other channel (a 0, or a -1
    that does not follow a group) is in no group. With ``valid``, groups not wholly inside
    it are dropped.
    """
    flags = np.asarray(flags)
    if flags.ndim != 1:
        raise ValueError(f"grouping flags must be one-dimensional, got shape {flags.shape}")
    if not np.all((flags == 1) | (flags == -1) | (flags == 0)):
        raise ValueError("grouping flags must be 1 (start), -1 (continue) or 0 (none)")
    n_channels = flags.shape[0]
    valid = None if valid is None else _as_valid_mask(valid, n_channels)
    n_raw = int(np.sum(flags == 1))
    if n_raw == 0:
        return np.full(n_channels, -1, dtype=np.int64), 0
    channels = np.arange(n_channels)
    # The nearest channel at or before each channel whose flag is not -1 opens its group
    # if that flag is 1.
    opener = np.maximum.accumulate(np.where(flags != -1, channels, -1))
    in_group = (opener >= 0) & (flags[np.maximum(opener, 0)] == 1)
    raw_index = np.maximum(np.cumsum(flags == 1) - 1, 0)

    keep = np.ones(n_raw, dtype=bool)
    if valid is not None:
        keep = np.bincount(raw_index[in_group & ~valid], minlength=n_raw) == 0
    kept_index = np.cumsum(keep) - 1
    member = in_group & keep[raw_index]
    return np.where(member, kept_index[raw_index], -1).astype(np.int64), int(np.sum(keep))


def flags_to_group_ids(
    flags: ArrayLike, valid: ArrayLike | None = None
) -> tuple[Int[np.ndarray, " channel"], int]:
    """Segment id of each channel, for ``jax.ops.segment_sum(..., num_segments=n_groups + 1)``.

    **Arguments:**

    - `flags`: OGIP grouping flags ``(channel,)`` (1 start, -1 continue, 0 none). A -1 that
      does not continue a group (after a 0, or first) is in no group.
    - `valid`: optional boolean mask ``(channel,)``; a group with any channel outside it is
      dropped whole, as the original drops groups not wholly quality-good and noticed.

    **Returns:**

    ``(group_ids, n_groups)``: ``group_ids`` ``(channel,)`` int64 holds each channel's
    0-based group, in channel order; channels in no (kept) group hold the discard id
    ``n_groups``.
    """
    group_index, n_groups = _group_membership(flags, valid)
    return np.where(group_index >= 0, group_index, n_groups), n_groups


def group_bounds(
    flags: ArrayLike, valid: ArrayLike | None = None
) -> tuple[Int[np.ndarray, " group"], Int[np.ndarray, " group"]]:
    """First and last channel of each group (the groups of `flags_to_group_ids`).

    **Arguments:**

    - `flags`, `valid`: as in `flags_to_group_ids`.

    **Returns:**

    ``(first_channel, last_channel)``, each ``(group,)`` int64, inclusive; the original's
    ``grouping_slice`` is ``[first_channel, last_channel + 1]``.
    """
    group_index, n_groups = _group_membership(flags, valid)
    channels = np.flatnonzero(group_index >= 0)
    members = group_index[channels]  # non-decreasing: groups are contiguous and in order
    ids = np.arange(n_groups)
    first = channels[np.searchsorted(members, ids, side="left")]
    last = channels[np.searchsorted(members, ids, side="right") - 1]
    return first.astype(np.int64), last.astype(np.int64)
