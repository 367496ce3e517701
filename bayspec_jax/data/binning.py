"""Channel selection: notice windows, quality and the valid mask; resolved group index arrays.

Host-side numpy, run once when a unit is built. The algorithms that choose groups live in
`grouping`; this module turns a unit's settings and flags into the arrays a fit uses.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool, Float, Int

from .grouping import flags_to_group_ids, group_bounds

Window = tuple[float, float]


def normalize_windows(notc: Any, where: str = "notc") -> tuple[Window, ...] | None:
    """Notice windows as a sorted tuple of disjoint ``(lo, hi)`` pairs [keV], or `None` (all).

    **Arguments:**

    - `notc`: `None`; one window ``[lo, hi]``; or a list of windows. Lists, tuples and numpy
        arrays are accepted. Overlapping or touching windows are merged.
    - `where`: a label for error messages.
    """
    if notc is None:
        return None
    if isinstance(notc, (str, bytes, dict)) or not hasattr(notc, "__len__"):
        raise ValueError(f"{where}: expected [lo, hi] or a list of [lo, hi] windows, got {notc!r}")
    if len(notc) == 0:
        raise ValueError(f"{where}: an empty list of windows notices nothing; use None for all")
    first = notc[0]
    windows = [notc] if np.ndim(first) == 0 else list(notc)
    pairs = []
    for window in windows:
        if np.ndim(window) != 1 or len(window) != 2:
            raise ValueError(f"{where}: each window must be [lo, hi], got {window!r}")
        try:
            lo, hi = float(window[0]), float(window[1])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: window bounds must be numbers, got {window!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{where}: window bounds must be finite, got [{lo}, {hi}]")
        if not lo < hi:
            raise ValueError(f"{where}: a window needs lo < hi, got [{lo}, {hi}]")
        pairs.append((lo, hi))
    pairs.sort()
    merged: list[list[float]] = []
    for lo, hi in pairs:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


NOTICE_RULES = ("inside", "overlap")
"""How notice windows select channels: ``'inside'`` (bayspec's rule, the default): a channel
whose whole ``[E_lo, E_hi]`` lies inside a window; ``'overlap'`` (Sherpa's rule): a channel whose
``[E_lo, E_hi]`` overlaps a window (``E_lo < hi`` and ``E_hi > lo``), and with a grouping made
before noticing (the file's GROUPING, ``method='counts'``) every channel of a group that has
such a channel (`extend_to_groups`)."""


def check_notice_rule(rule: Any) -> str:
    """`rule` when it is one of `NOTICE_RULES`; else a `ValueError` naming ``notice_rule``."""
    if not isinstance(rule, str) or rule not in NOTICE_RULES:
        raise ValueError(f"notice_rule must be one of {list(NOTICE_RULES)}, got {rule!r}")
    return rule


def notice_mask(
    chbin: Float[np.ndarray, "chan 2"], windows: tuple[Window, ...] | None, where: str = "unit",
    rule: str = "inside",
) -> Bool[np.ndarray, " chan"]:
    """Channels whose whole ``[E_lo, E_hi]`` lies inside a window (`rule` ``'inside'``), or
    overlaps one (``'overlap'``: ``E_lo < hi`` and ``E_hi > lo``); see `NOTICE_RULES`.

    Bounds are compared in the precision of `chbin` (float32 for EBOUNDS stored as FITS ``E``),
    as bayspec does, so that the same channels are selected. Windows reaching outside the
    channels' range give a warning naming them.
    """
    rule = check_notice_rule(rule)
    chbin = np.asarray(chbin)
    if windows is None:
        return np.ones(chbin.shape[0], dtype=bool)
    lo_edge, hi_edge = float(np.min(chbin[:, 0])), float(np.max(chbin[:, 1]))
    outside = [w for w in windows if w[0] < lo_edge or w[1] > hi_edge]
    if outside:
        warnings.warn(
            f"{where}: notice window(s) {[list(w) for w in outside]} reach outside the "
            f"response's channel range [{lo_edge:.6g}, {hi_edge:.6g}] keV",
            stacklevel=3,
        )
    dtype = chbin.dtype
    mask = np.zeros(chbin.shape[0], dtype=bool)
    for lo, hi in windows:
        lo, hi = dtype.type(lo), dtype.type(hi)
        if rule == "inside":
            mask |= (lo <= chbin[:, 0]) & (chbin[:, 1] <= hi)
        else:
            mask |= (chbin[:, 0] < hi) & (chbin[:, 1] > lo)
    return mask


def extend_to_groups(mask: Bool[np.ndarray, " chan"], flags: Any) -> Bool[np.ndarray, " chan"]:
    """`mask` with every channel of a group of `flags` set when one of its channels is (a
    group is noticed when it overlaps the band, as Sherpa notices grouped data); channels in no
    group keep their value."""
    mask = np.asarray(mask, dtype=bool)
    ids, n_groups = flags_to_group_ids(flags)
    hit = np.bincount(ids, weights=mask.astype(np.float64), minlength=n_groups + 1) > 0
    in_group = ids < n_groups
    return np.where(in_group, hit[ids], mask)


@dataclasses.dataclass(frozen=True, eq=False)
class Groups:
    """Groups resolved from flags and a valid mask (host-side numpy).

    **Fields:**

    - `flags`: the OGIP grouping flags ``(chan,)`` they came from.
    - `ids`: segment id per channel ``(chan,)``; channels in no kept group hold `n_groups`.
    - `n_groups`: number of kept groups.
    - `slices`: ``(n_groups, 2)`` channel ``[start, stop)`` of each group (bayspec's
        ``grouping_slice``).
    """

    flags: Int[np.ndarray, " chan"]
    ids: Int[np.ndarray, " chan"]
    n_groups: int
    slices: Int[np.ndarray, "group 2"]


def resolve_groups(flags: Any, valid: Bool[np.ndarray, " chan"]) -> Groups:
    """Keep the groups of `flags` that lie wholly inside `valid`, as segment ids and slices."""
    flags = np.asarray(flags, dtype=np.int64)
    ids, n_groups = flags_to_group_ids(flags, valid)
    first, last = group_bounds(flags, valid)
    slices = np.stack([first, last + 1], axis=1).astype(np.int64).reshape(-1, 2)
    return Groups(flags=flags, ids=np.asarray(ids, dtype=np.int64), n_groups=int(n_groups),
                  slices=slices)


def photon_grid(phbin: Float[np.ndarray, "phot 2"], ngrid: int) -> Float[np.ndarray, " point"]:
    """`ngrid` equally spaced energies per photon bin, both edges included, flattened, on the
    host in JAX's default float precision (energies floored at 1e-10 keV)."""
    ebin = np.asarray(phbin).astype(np.dtype(jnp.result_type(float)))
    scale = np.linspace(0.0, 1.0, ngrid, dtype=ebin.dtype)
    grid = ebin[:, :1] + (ebin[:, 1:] - ebin[:, :1]) * scale
    return np.maximum(grid, 1e-10).ravel()


def group_sum(values: Float[np.ndarray, " chan"], ids: Int[np.ndarray, " chan"],
              n_groups: int) -> Float[np.ndarray, " group"]:
    """Sum of `values` per group on the host, in their dtype: channel ``c`` goes to group
    ``ids[c]``; the discard segment ``n_groups`` (excluded channels, whatever they hold, NaN
    included) is dropped. (Traced code groups channels through a fold setup:
    `stack.group_counts`.)"""
    values = np.asarray(values)
    total = np.bincount(np.asarray(ids), weights=values, minlength=n_groups + 1)
    return total[:n_groups].astype(values.dtype)
