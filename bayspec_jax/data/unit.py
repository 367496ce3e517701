"""`DataUnit`: one source spectrum with its background and response, resolved once.

Building a unit decides which channels count (quality and notice windows) and how they are
grouped (file GROUPING, threshold or optimal grouping), and stores the answer as integer
segment ids and masks, with the grouped response precomputed. Every view (grouped counts,
rates, count spectra, grouped DRMs...) is then a `segment_sum` or an elementwise expression:
no Python loop runs at fit time.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections import OrderedDict
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._table import Table
from ..params import Par
from ..significance import pgsig_inv, ppsig_inv
from ._convert import float_array, int_array
from .binning import Groups, group_sum, normalize_windows, notice_mask, resolve_groups
from .grouping import GROUPING_KEYS, build_grouping, channel_fwhm
from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source

STATISTICS = ("pgstat", "cstat", "ppstat", "pstat", "chi2", "gstat")
"""The statistics a unit may use."""

NGRID = 5
"""Points per photon bin at which models are evaluated (`DataUnit.egrid`)."""

_SETTINGS = ("src", "bkg", "rmf", "arf", "rsp", "stat", "notc", "grpg", "rebn", "time",
             "weight", "name")


def _xp(*arrays: Any) -> Any:
    """`numpy` for concrete arrays (building units then compiles nothing), `jax.numpy` when any
    is traced."""
    return jnp if any(isinstance(a, jax.core.Tracer) for a in arrays) else np


def _load(kind: str, value: Any, cls: type) -> Any:
    """An object of `cls` from an object, a path, a BytesIO, ``"path:ii"`` or ``(file, ii)``."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, eqx.Module):
        raise ValueError(f"{kind}: expected a {cls.__name__} or a file, got {type(value).__name__}")
    return cls.from_plain(value)


def _frozen_settings(settings: Any, name: str) -> tuple | None:
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise ValueError(f"{name} must be None or a dict, got {type(settings).__name__}")
    unknown = sorted(str(k) for k in settings if k not in GROUPING_KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; allowed keys are {list(GROUPING_KEYS)}")
    for key, value in settings.items():
        if key == "method":
            continue
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0
        ):
            raise ValueError(f"{name}: {key} must be a finite number >= 0 or None, got {value!r}")
    return tuple(sorted(settings.items()))


class DataUnit(eqx.Module):
    """A source spectrum, its background and its response, with channels selected and grouped.

    **Arguments:**

    - `src`: the source: a `Source`, a path, a `BytesIO`, ``"path:ii"`` or ``(file, ii)``.
    - `bkg`: the background, likewise; `None` means a zero background with the source's
        exposure and backscale (alpha = 1).
    - `rmf`, `arf`: a redistribution matrix and an ARF, composed when `rsp` is not given.
    - `rsp`: a full response (``"path:ii"`` selects EXTVER ii). Without a response the unit is
        incomplete (`completeness` is False) and has no views.
    - `stat`: one of `STATISTICS`.
    - `notc`: notice windows [keV]: `None` (all), ``[lo, hi]`` or a list of windows.
    - `grpg`: `None` (the file's GROUPING) or a dict of `grouping.GROUPING_KEYS`
        (``min_evt``, ``min_nevt``, ``min_sigma``, ``max_bin``, ``min_bevt``, and
        ``method='optimal'`` for Kaastra & Bleeker optimal binning).
    - `rebn`: like `grpg`, for the rebinning grid used only by the ``_re_`` views.
    - `time`: a time tag for time-dependent models (a number or `None`).
    - `weight`: multiplies the unit's log-likelihood terms (finite, >= 0).
    - `name`: a label; default: the source's name.

    The unit is immutable: `replace` returns a new, re-resolved unit.
    """

    src: Source
    bkg: Background
    rmf: Redistribution | None
    arf: Auxiliary | None
    rsp: Response | None
    qualifying: Bool[Array, " chan"] | None
    noticing: Bool[Array, " chan"] | None
    grouping: Int[Array, " chan"] | None
    rebining: Int[Array, " chan"] | None
    group_ids: Int[Array, " chan"] | None
    rebin_ids: Int[Array, " chan"] | None
    rsp_drm: Float[Array, "phot group"] | None
    rsp_re_drm: Float[Array, "phot rebin"] | None
    n_groups: int = eqx.field(static=True)
    n_rebins: int = eqx.field(static=True)
    stat: str = eqx.field(static=True)
    notc: tuple | None = eqx.field(static=True)
    grpg_items: tuple | None = eqx.field(static=True)
    rebn_items: tuple | None = eqx.field(static=True)
    time: float | None = eqx.field(static=True)
    weight: float = eqx.field(static=True)
    name: str = eqx.field(static=True)
    bkg_given: bool = eqx.field(static=True)
    rsp_composed: bool = eqx.field(static=True)
    grouping_slice_items: tuple = eqx.field(static=True)
    rebining_slice_items: tuple = eqx.field(static=True)

    def __init__(self, src, bkg=None, rmf=None, arf=None, rsp=None, stat="pgstat", notc=None,
                 grpg=None, rebn=None, time=None, weight=1, name: str | None = None):
        if not isinstance(stat, str) or stat not in STATISTICS:
            raise ValueError(f"stat must be one of {list(STATISTICS)}, got {stat!r}")
        if time is not None and (isinstance(time, bool) or not isinstance(time, numbers.Real)):
            raise ValueError(f"time must be a number or None, got {type(time).__name__}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (
            math.isfinite(weight) and weight >= 0
        ):
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        source = _load("src", src, Source)
        if source is None:
            raise ValueError("src is required")
        label = name if name is not None else source.name
        background = _load("bkg", bkg, Background)
        redistribution = _load("rmf", rmf, Redistribution)
        auxiliary = _load("arf", arf, Auxiliary)
        response = _load("rsp", rsp, Response)
        composed = False
        if response is None and redistribution is not None and auxiliary is not None:
            response = redistribution * auxiliary
            composed = True
        if background is not None and background.n_channels != source.n_channels:
            raise ValueError(
                f"unit {label}: the background has {background.n_channels} channels but the "
                f"source has {source.n_channels}"
            )
        if response is not None and response.n_channels != source.n_channels:
            raise ValueError(
                f"unit {label}: the response has {response.n_channels} channels but the "
                f"source has {source.n_channels}"
            )
        self.src = source
        self.bkg = background if background is not None else _zero_background(source)
        self.rmf, self.arf, self.rsp = redistribution, auxiliary, response
        self.stat = stat
        self.notc = normalize_windows(notc, where=f"unit {label}: notc")
        self.grpg_items = _frozen_settings(grpg, "grpg")
        self.rebn_items = _frozen_settings(rebn, "rebn")
        self.time = None if time is None else float(time)
        self.weight = float(weight)
        self.name = label
        self.bkg_given = background is not None
        self.rsp_composed = composed
        if response is None:
            warnings.warn(f"unit {label}: no response (rsp, or rmf and arf); the unit is "
                          "incomplete", stacklevel=2)
            for field in ("qualifying", "noticing", "grouping", "rebining", "group_ids",
                          "rebin_ids", "rsp_drm", "rsp_re_drm"):
                setattr(self, field, None)
            self.n_groups = self.n_rebins = 0
            self.grouping_slice_items = self.rebining_slice_items = ()
            return
        groups, rebins, qualifying, noticing = self._resolve(label)
        drm = np.asarray(response.drm, dtype=np.float64)
        self.qualifying = jnp.asarray(qualifying)
        self.noticing = jnp.asarray(noticing)
        self.grouping = int_array(groups.flags)
        self.rebining = int_array(rebins.flags)
        self.group_ids = int_array(groups.ids)
        self.rebin_ids = int_array(rebins.ids)
        self.n_groups, self.n_rebins = groups.n_groups, rebins.n_groups
        self.rsp_drm = float_array(_grouped_columns(drm, groups))
        self.rsp_re_drm = float_array(_grouped_columns(drm, rebins))
        self.grouping_slice_items = tuple(map(tuple, groups.slices.tolist()))
        self.rebining_slice_items = tuple(map(tuple, rebins.slices.tolist()))
        self._check_gaussian_errors(label)

    def _resolve(self, label: str) -> tuple[Groups, Groups, np.ndarray, np.ndarray]:
        qualifying = np.asarray(self.src.quality) == 0
        noticing = notice_mask(np.asarray(self.rsp.chbin), self.notc, where=f"unit {label}")
        valid = qualifying & noticing
        if not valid.any():
            raise ValueError(
                f"unit {label}: no channel is both of good quality and noticed "
                f"(notc={[list(w) for w in self.notc] if self.notc else None}); check the "
                "windows against the response's channel energies"
            )
        flags = np.asarray(self.src.grouping)
        if self.grpg_items is not None:
            flags = self._build_flags(dict(self.grpg_items), valid)
        rebin_flags = flags if self.rebn_items is None else self._build_flags(
            dict(self.rebn_items), valid)
        return resolve_groups(flags, valid), resolve_groups(rebin_flags, valid), qualifying, noticing

    def _build_flags(self, settings: dict, valid: np.ndarray) -> np.ndarray:
        zeroed = lambda x: np.where(valid, np.asarray(x, dtype=np.float64), 0.0)  # noqa: E731
        alpha = float(np.mean(np.asarray(self.alpha)))
        fwhm = None
        if settings.get("method", "threshold") == "optimal":
            fwhm = channel_fwhm(np.asarray(self.rsp.chbin), np.asarray(self.rsp.phbin),
                                np.asarray(self.rsp.drm))
        return build_grouping(settings, zeroed(self.src.counts), zeroed(self.bkg.counts),
                              zeroed(self.bkg.errors), alpha, valid, stat=self.stat, fwhm=fwhm)

    def _check_gaussian_errors(self, label: str) -> None:
        if self.stat not in ("chi2", "gstat") or self.n_groups == 0:
            return
        zero = np.flatnonzero((np.asarray(self.src_errors) == 0) & (np.asarray(self.bkg_errors) == 0))
        if zero.size:
            raise ValueError(
                f"unit {label}: stat={self.stat!r} needs a non-zero error in every group, but "
                f"group(s) {zero.tolist()} (channels "
                f"{[list(self.grouping_slice_items[i]) for i in zero[:5]]}) have zero source and "
                "background error; group them with grpg, narrow notc, or use a Poisson statistic"
            )

    # -- identity and changes ----------------------------------------------------------------

    @property
    def completeness(self) -> bool:
        """Whether the unit has a response (and so can be fitted)."""
        return self.rsp is not None

    @property
    def grpg(self) -> dict | None:
        return None if self.grpg_items is None else dict(self.grpg_items)

    @property
    def rebn(self) -> dict | None:
        return None if self.rebn_items is None else dict(self.rebn_items)

    def settings(self) -> dict:
        """The constructor arguments that rebuild this unit (objects, not files)."""
        return dict(
            src=self.src, bkg=self.bkg if self.bkg_given else None,
            rmf=self.rmf, arf=self.arf, rsp=None if self.rsp_composed else self.rsp,
            stat=self.stat, notc=None if self.notc is None else [list(w) for w in self.notc],
            grpg=self.grpg, rebn=self.rebn, time=self.time, weight=self.weight, name=self.name,
        )

    def replace(self, **changes) -> DataUnit:
        """A new unit with some constructor arguments changed, resolved anew.

        Any of ``src, bkg, rmf, arf, rsp, stat, notc, grpg, rebn, time, weight, name``.
        This unit is left unchanged.
        """
        unknown = sorted(set(changes) - set(_SETTINGS))
        if unknown:
            raise TypeError(f"DataUnit.replace: unknown argument(s) {unknown}; allowed "
                            f"{list(_SETTINGS)}")
        settings = self.settings()
        if ("rmf" in changes or "arf" in changes) and "rsp" not in changes and self.rsp_composed:
            settings["rsp"] = None
        settings.update(changes)
        return DataUnit(**settings)

    # -- grids ------------------------------------------------------------------------------

    def _need_response(self) -> None:
        if self.rsp is None:
            raise ValueError(f"unit {self.name} has no response: give rsp, or rmf and arf")

    @property
    def ebin(self) -> Float[Array, "phot 2"]:
        """Photon energy bins [keV]."""
        self._need_response()
        phbin = self.rsp.phbin
        xp = _xp(phbin)
        return jnp.asarray(xp.asarray(phbin).astype(jnp.result_type(float)))

    @property
    def ewidth(self) -> Float[Array, " phot"]:
        return self.ebin[:, 1] - self.ebin[:, 0]

    @property
    def nbin(self) -> int:
        self._need_response()
        return int(self.rsp.phbin.shape[0])

    @property
    def tarr(self) -> Float[Array, " phot"]:
        return jnp.full(self.nbin, jnp.nan if self.time is None else self.time)

    @property
    def ngrid(self) -> int:
        return NGRID

    @property
    def egrid(self) -> Float[Array, " phot*ngrid"]:
        """`ngrid` equally spaced energies per photon bin, both edges included, flattened.

        Computed on the host (numpy, as bayspec) unless the bins are traced: building units
        then compiles nothing.
        """
        ebin = self.ebin
        xp = _xp(ebin)
        ebin = xp.asarray(ebin)
        scale = xp.linspace(0.0, 1.0, NGRID, dtype=ebin.dtype)
        grid = ebin[:, :1] + (ebin[:, 1:] - ebin[:, :1]) * scale
        return jnp.asarray(xp.maximum(grid, 1e-10).ravel())

    @property
    def tgrid(self) -> Float[Array, " phot*ngrid"]:
        return jnp.repeat(self.tarr, NGRID)

    # -- efficiencies -------------------------------------------------------------------------

    @property
    def src_efficiency(self) -> Float[Array, ""]:
        return self.src.exposure

    @property
    def bkg_efficiency(self) -> Float[Array, "*chan"]:
        return self.bkg.exposure * self.bkg.backscale / self.src.backscale

    @property
    def alpha(self) -> Float[Array, "*chan"]:
        return self.src_efficiency / self.bkg_efficiency

    @property
    def corr_src_efficiency(self) -> Float[Array, ""]:
        return self.src_efficiency * self.src.factor.value

    @property
    def corr_bkg_efficiency(self) -> Float[Array, "*chan"]:
        return self.bkg_efficiency * self.bkg.factor.value

    # -- grouped counts -------------------------------------------------------------------------

    def _grouped(self, values: Array, rebinned: bool, squared: bool = False) -> Array:
        self._need_response()
        ids, n = (self.rebin_ids, self.n_rebins) if rebinned else (self.group_ids, self.n_groups)
        xp = _xp(values)
        values = xp.asarray(values)
        total = group_sum(values**2 if squared else values, ids, n)
        return jnp.asarray(xp.sqrt(xp.asarray(total))) if squared else total

    @property
    def src_counts(self) -> Float[Array, " group"]:
        return self._grouped(self.src.counts, False)

    @property
    def src_re_counts(self) -> Float[Array, " rebin"]:
        return self._grouped(self.src.counts, True)

    @property
    def src_errors(self) -> Float[Array, " group"]:
        return self._grouped(self.src.errors, False, squared=True)

    @property
    def src_re_errors(self) -> Float[Array, " rebin"]:
        return self._grouped(self.src.errors, True, squared=True)

    @property
    def bkg_counts(self) -> Float[Array, " group"]:
        return self._grouped(self.bkg.counts, False)

    @property
    def bkg_re_counts(self) -> Float[Array, " rebin"]:
        return self._grouped(self.bkg.counts, True)

    @property
    def bkg_errors(self) -> Float[Array, " group"]:
        return self._grouped(self.bkg.errors, False, squared=True)

    @property
    def bkg_re_errors(self) -> Float[Array, " rebin"]:
        return self._grouped(self.bkg.errors, True, squared=True)

    @property
    def npoint(self) -> int:
        """Number of groups that enter the fit."""
        return self.n_groups

    # -- grouped channels and responses --------------------------------------------------------

    @property
    def grouping_slice(self) -> Int[np.ndarray, "group 2"]:
        """Channel ``[start, stop)`` of each fitted group."""
        return np.asarray(self.grouping_slice_items, dtype=np.int64).reshape(-1, 2)

    @property
    def rebining_slice(self) -> Int[np.ndarray, "rebin 2"]:
        return np.asarray(self.rebining_slice_items, dtype=np.int64).reshape(-1, 2)

    def _chbin(self, slices: np.ndarray) -> Array:
        self._need_response()
        chbin = self.rsp.chbin
        return jnp.stack([chbin[slices[:, 0], 0], chbin[slices[:, 1] - 1, 1]], axis=1)

    @property
    def rsp_chbin(self) -> Float[Array, "group 2"]:
        """Energy bounds of each group [keV] (first channel's E_lo, last channel's E_hi)."""
        return self._chbin(self.grouping_slice)

    @property
    def rsp_re_chbin(self) -> Float[Array, "rebin 2"]:
        return self._chbin(self.rebining_slice)

    @property
    def rsp_chbin_mean(self) -> Float[Array, " group"]:
        return self.rsp_chbin.mean(axis=1)

    @property
    def rsp_re_chbin_mean(self) -> Float[Array, " rebin"]:
        return self.rsp_re_chbin.mean(axis=1)

    @property
    def rsp_chbin_width(self) -> Float[Array, " group"]:
        chbin = self.rsp_chbin
        return chbin[:, 1] - chbin[:, 0]

    @property
    def rsp_re_chbin_width(self) -> Float[Array, " rebin"]:
        chbin = self.rsp_re_chbin
        return chbin[:, 1] - chbin[:, 0]

    @property
    def rsp_chbin_tarr(self) -> Float[Array, " group"]:
        return jnp.full(self.n_groups, jnp.nan if self.time is None else self.time)

    @property
    def rsp_re_chbin_tarr(self) -> Float[Array, " rebin"]:
        return jnp.full(self.n_rebins, jnp.nan if self.time is None else self.time)

    @property
    def corr_rsp_drm(self) -> Float[Array, "phot group"]:
        return self.rsp_drm * self.rsp.factor.value

    @property
    def corr_rsp_re_drm(self) -> Float[Array, "phot rebin"]:
        return self.rsp_re_drm * self.rsp.factor.value

    # -- rates and count spectra -----------------------------------------------------------------

    @property
    def src_ctsrate(self):
        return self.src_counts / self.corr_src_efficiency

    @property
    def src_re_ctsrate(self):
        return self.src_re_counts / self.corr_src_efficiency

    @property
    def src_ctsrate_error(self):
        return self.src_errors / self.corr_src_efficiency

    @property
    def src_re_ctsrate_error(self):
        return self.src_re_errors / self.corr_src_efficiency

    @property
    def src_ctsspec(self):
        return self.src_ctsrate / self.rsp_chbin_width

    @property
    def src_re_ctsspec(self):
        return self.src_re_ctsrate / self.rsp_re_chbin_width

    @property
    def src_ctsspec_error(self):
        return self.src_ctsrate_error / self.rsp_chbin_width

    @property
    def src_re_ctsspec_error(self):
        return self.src_re_ctsrate_error / self.rsp_re_chbin_width

    @property
    def bkg_ctsrate(self):
        return self.bkg_counts / self._grouped_bkg_efficiency(False)

    @property
    def bkg_re_ctsrate(self):
        return self.bkg_re_counts / self._grouped_bkg_efficiency(True)

    @property
    def bkg_ctsrate_error(self):
        return self.bkg_errors / self._grouped_bkg_efficiency(False)

    @property
    def bkg_re_ctsrate_error(self):
        return self.bkg_re_errors / self._grouped_bkg_efficiency(True)

    def _grouped_bkg_efficiency(self, rebinned: bool) -> Array:
        efficiency = self.corr_bkg_efficiency
        if jnp.ndim(efficiency) == 0:
            return efficiency
        # per-channel BACKSCAL: the efficiency of a group is taken at its first channel
        slices = self.rebining_slice if rebinned else self.grouping_slice
        return efficiency[slices[:, 0]]

    @property
    def bkg_ctsspec(self):
        return self.bkg_ctsrate / self.rsp_chbin_width

    @property
    def bkg_re_ctsspec(self):
        return self.bkg_re_ctsrate / self.rsp_re_chbin_width

    @property
    def bkg_ctsspec_error(self):
        return self.bkg_ctsrate_error / self.rsp_chbin_width

    @property
    def bkg_re_ctsspec_error(self):
        return self.bkg_re_ctsrate_error / self.rsp_re_chbin_width

    @property
    def net_ctsrate(self):
        return self.src_ctsrate - self.bkg_ctsrate

    @property
    def net_re_ctsrate(self):
        return self.src_re_ctsrate - self.bkg_re_ctsrate

    @property
    def net_ctsrate_error(self):
        return jnp.sqrt(self.src_ctsrate_error**2 + self.bkg_ctsrate_error**2)

    @property
    def net_re_ctsrate_error(self):
        return jnp.sqrt(self.src_re_ctsrate_error**2 + self.bkg_re_ctsrate_error**2)

    @property
    def net_ctsspec(self):
        return self.src_ctsspec - self.bkg_ctsspec

    @property
    def net_re_ctsspec(self):
        return self.src_re_ctsspec - self.bkg_re_ctsspec

    @property
    def net_ctsspec_error(self):
        return jnp.sqrt(self.src_ctsspec_error**2 + self.bkg_ctsspec_error**2)

    @property
    def net_re_ctsspec_error(self):
        return jnp.sqrt(self.src_re_ctsspec_error**2 + self.bkg_re_ctsspec_error**2)

    # -- flags (bayspec names) -----------------------------------------------------------------

    @property
    def valid_mask(self) -> Bool[Array, " chan"]:
        """Channels of good quality and noticed."""
        self._need_response()
        return self.qualifying & self.noticing

    # -- limits -------------------------------------------------------------------------------

    def _scalar_alpha(self) -> float:
        return float(np.mean(np.asarray(self.alpha)))

    def net_counts_upperlimit(self, cl: float = 0.9) -> float:
        """Upper limit on the net counts at credibility `cl` (Poisson, known background).

        ``N`` and ``B`` are the summed source counts and scaled background of the fitted
        groups; the limit solves ``P(N+1, s+B) = cl Q(N+1, B) + P(N+1, B)`` for ``s + B``
        (Helene 1983, as bayspec).
        """
        if isinstance(cl, bool) or not isinstance(cl, numbers.Real) or not 0 < cl < 1:
            raise ValueError(f"cl must be in (0, 1), got {cl!r}")
        n = float(np.sum(np.asarray(self.src_counts)))
        b = float(np.sum(np.asarray(self.bkg_counts))) * self._scalar_alpha()
        from jax.scipy.special import gammainc, gammaincc

        a = n + 1.0
        target = cl * float(gammaincc(a, b)) + float(gammainc(a, b))
        return _gammainc_inverse(a, target) - b

    def net_ctsrate_upperlimit(self, cl: float = 0.9) -> float:
        return self.net_counts_upperlimit(cl) / float(self.corr_src_efficiency)

    def net_counts_significance_limit(self, sigma: float = 3) -> float:
        """Net counts needed for a detection at `sigma` over this unit's background.

        pgstat: Gaussian background (`pgsig_inv`); cstat/ppstat: Poisson background
        (`ppsig_inv`, Li & Ma). Other statistics have no background significance model.
        """
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (
            math.isfinite(sigma) and sigma > 0
        ):
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}")
        alpha = self._scalar_alpha()
        background = float(np.sum(np.asarray(self.bkg_counts)))
        if self.stat == "pgstat":
            error = math.sqrt(float(np.sum(np.asarray(self.bkg_errors) ** 2)))
            return float(pgsig_inv(sigma, background * alpha, error * alpha)) - background * alpha
        if self.stat in ("cstat", "ppstat"):
            return float(ppsig_inv(sigma, background, alpha)) - alpha * background
        raise ValueError(
            "net-count significance limits need a statistic with a background model "
            f"('pgstat', 'cstat' or 'ppstat'), not {self.stat!r}"
        )

    def net_ctsrate_significance_limit(self, sigma: float = 3) -> float:
        return self.net_counts_significance_limit(sigma) / float(self.corr_src_efficiency)

    # -- parameters ----------------------------------------------------------------------------

    @property
    def params(self) -> OrderedDict[str, Par]:
        """The data-layer parameters: sf, bf, rf (factors), ra, dec."""
        self._need_response()
        return OrderedDict([("sf", self.src.factor), ("bf", self.bkg.factor),
                            ("rf", self.rsp.factor), ("ra", self.rsp.ra), ("dec", self.rsp.dec)])

    @property
    def par(self) -> dict[str, Par]:
        return {str(i): p for i, p in enumerate(self.params.values(), 1)}

    @property
    def cfg(self) -> dict:
        return {}

    @property
    def pvalues(self) -> tuple:
        return tuple(float(p.value) for p in self.params.values())

    # -- tables and files ----------------------------------------------------------------------

    def _info_dict(self) -> OrderedDict:
        return OrderedDict([
            ("src", self.src.name),
            ("bkg", self.bkg.name if self.bkg_given else None),
            ("rmf", None if self.rmf is None else self.rmf.name),
            ("arf", None if self.arf is None else self.arf.name),
            ("rsp", None if self.rsp is None or self.rsp_composed else self.rsp.name),
            ("notc", None if self.notc is None else [list(w) for w in self.notc]),
            ("stat", self.stat),
            ("grpg", self.grpg),
            ("time", self.time),
            ("weight", self.weight),
        ])

    @property
    def info(self) -> Table:
        info = self._info_dict()
        return Table({"Property": list(info), self.name: [_show(v) for v in info.values()]})

    def __str__(self) -> str:
        return f"*** DataUnit ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>DataUnit</b></summary>{self.info.html}</details>"

    def save(self, savepath: str | os.PathLike) -> None:
        """Write ``dataunit.json`` (the info table, as bayspec) and ``dataunit.npz`` (lossless).

        `DataUnit.load(savepath)` rebuilds an identical unit from the npz.
        """
        from .storage import save_unit

        save_unit(self, savepath)

    @classmethod
    def load(cls, savepath: str | os.PathLike) -> DataUnit:
        """Rebuild a unit written by `save`."""
        from .storage import load_unit

        return load_unit(savepath)


def _show(value: Any) -> str:
    if value is None:
        return "None"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _zero_background(source: Source) -> Background:
    n = source.n_channels
    return Background(np.zeros(n), np.zeros(n), np.asarray(source.exposure),
                      quality=np.asarray(source.quality), grouping=np.asarray(source.grouping),
                      backscale=np.asarray(source.backscale), channels=np.asarray(source.channels),
                      name="zero background")


def _grouped_columns(drm: np.ndarray, groups: Groups) -> np.ndarray:
    """Sum the DRM's channel columns of each group: ``(nphot, n_groups)``."""
    grouped = np.zeros((drm.shape[0], groups.n_groups + 1))
    np.add.at(grouped.T, groups.ids, drm.T)
    return grouped[:, : groups.n_groups]


@jax.jit
def _gammainc_inverse_jit(a, target):
    from jax.scipy.special import gammainc

    hi = jax.lax.while_loop(lambda h: gammainc(a, h) < target, lambda h: 2.0 * h,
                            jnp.maximum(1.0, a))

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = gammainc(a, mid) < target
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 128, halve, (jnp.zeros_like(hi), hi))
    return 0.5 * (lo + hi)


def _gammainc_inverse(a: float, target: float) -> float:
    """``x`` with ``P(a, x) = target`` (regularized lower incomplete gamma), by bisection."""
    dtype = jnp.result_type(float)
    return float(_gammainc_inverse_jit(jnp.asarray(a, dtype), jnp.asarray(target, dtype)))
