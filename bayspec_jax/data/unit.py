"""`DataUnit`: one source spectrum with its background and response, resolved once.

Building a unit decides which channels count (quality and notice windows) and how they are
grouped (file GROUPING, threshold or optimal grouping), and stores the answer as integer
segment ids and masks, with the grouped response precomputed. The bayspec views (grouped
counts, rates, count spectra, grouped DRMs...) are computed on the host with numpy from those
arrays and returned as jax arrays. Fits do not read them: they fold through the stacked setup
(`Data.setup`), built on the host from the same arrays.
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
from ..io import OGIPError, background_extension, referenced_file
from ..params import Par
from ..significance import pgsig_inv, ppsig_inv
from ..stats import STATISTICS, statistic
from ._convert import int_array
from .binning import (
    Groups,
    check_notice_rule,
    extend_to_groups,
    group_sum,
    normalize_windows,
    notice_mask,
    photon_grid,
    resolve_groups,
)
from .grouping import (
    GROUPING_KEYS,
    GROUPING_METHODS,
    SPECTRUM_METHODS,
    build_grouping,
    channel_fwhm,
    count_grouping,
)
from .response import AbstractResponse, Auxiliary, Redistribution, Response, grouped_drm
from .spectrum import Background, Source
from .storage import load_unit, save_unit

NGRID = 5
"""Points per photon bin at which models are evaluated (`DataUnit.egrid`)."""

_SETTINGS = ("src", "bkg", "rmf", "arf", "rsp", "stat", "notc", "grpg", "rebn", "time",
             "weight", "name", "notice_rule")


_PARTS = {"src": "source", "bkg": "background", "net": "net (source - background)"}
_QUANTITIES = {"counts": "counts", "ctsrate": "count rate [counts/s]",
               "ctsspec": "count spectrum [counts/s/keV]"}


def _count_view_name(part: str, quantity: str, rebinned: bool, error: bool) -> str:
    """bayspec's name: ``{part}_[re_]counts`` / ``_[re_]errors``, or
    ``{part}_[re_]{ctsrate|ctsspec}[_error]``."""
    re = "re_" if rebinned else ""
    if quantity == "counts":
        return f"{part}_{re}{'errors' if error else 'counts'}"
    return f"{part}_{re}{quantity}{'_error' if error else ''}"


def _count_view_doc(part: str, quantity: str, rebinned: bool, error: bool) -> str:
    def name(part: str, quantity: str) -> str:
        return f"`{_count_view_name(part, quantity, rebinned, error)}`"

    subject = f"{_PARTS[part]} {_QUANTITIES[quantity]}"
    head = f"1-sigma error of the {subject}" if error else subject[0].upper() + subject[1:]
    grid = "rebinning group (``rebn``, for plots)" if rebinned else "fitted group"
    if part == "net":
        src, bkg = name("src", quantity), name("bkg", quantity)
        how = f"{src} and {bkg} in quadrature" if error else f"{src} - {bkg}"
    elif quantity == "counts":
        how = "its channels' errors in quadrature" if error else "the sum of its channels' counts"
    elif quantity == "ctsrate":
        how = (f"{name(part, 'counts')} over `corr_{part}_efficiency` (per channel, with a "
               "BACKSCAL or AREASCAL column: that of each group's first channel)")
    else:
        how = f"{name(part, 'ctsrate')} over `rsp_{'re_' if rebinned else ''}chbin_width`"
    return f"{head} per {grid}: {how}."


def _count_view(part: str, quantity: str, rebinned: bool = False, error: bool = False
                ) -> property:
    """The `DataUnit` property of one bayspec count view: `part` (``src``, ``bkg``, ``net``),
    `quantity` (``counts``, ``ctsrate``, ``ctsspec``), on the rebinning grid or not, value or
    1-sigma error; computed on the host by `DataUnit._count_values`."""
    def view(self: DataUnit) -> Float[Array, " group"]:
        return jnp.asarray(self._count_values(part, quantity, rebinned, error))

    view.__name__ = _count_view_name(part, quantity, rebinned, error)
    view.__qualname__ = f"DataUnit.{view.__name__}"
    view.__doc__ = _count_view_doc(part, quantity, rebinned, error)
    return property(view)


def _load(kind: str, value: Any, cls: type, accepted: type | None = None) -> Any:
    """An object of `cls` (or of `accepted`) from an object, a path, a BytesIO, ``"path:ii"``
    or ``(file, ii)``."""
    if value is None or isinstance(value, accepted or cls):
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
            if value not in GROUPING_METHODS:
                raise ValueError(f"{name}: method must be one of {list(GROUPING_METHODS)}, "
                                 f"got {value!r}")
            continue
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0
        ):
            raise ValueError(f"{name}: {key} must be a finite number >= 0 or None, got {value!r}")
    if settings.get("method") in SPECTRUM_METHODS and (
        "min_evt" not in settings or set(settings) - {"method", "min_evt", "max_bin"}
    ):
        raise ValueError(f"{name}: method={settings['method']!r} takes min_evt (required) and "
                         f"max_bin, got {sorted(k for k in settings if k != 'method')}")
    return tuple(sorted(settings.items()))


def _source_and_named_files(src: Any, given: dict) -> tuple[Source, dict]:
    """The source, and the background, RMF, ARF and response to load: those `given` (`False`
    becomes `None`), and for the parts left at `None` the files the source file names (see
    `DataUnit`)."""
    named = {key: (None if value is False else value) for key, value in given.items()}
    if isinstance(src, eqx.Module):
        return _load("src", src, Source), named
    pha = Source._read(src, None, None)
    source = Source.from_pha(pha)
    if given["bkg"] is None:
        extension = (background_extension(src)
                     if str(pha.keywords.get("HDUCLAS2", "")).strip().upper() != "BKG" else None)
        if extension is not None:
            named["bkg"] = Background.from_plain(src, extension=extension)
        else:
            named["bkg"] = _spectrum_file(referenced_file(pha, "BACKFILE"))
    if given["rsp"] is None:
        if given["arf"] is None:
            named["arf"] = referenced_file(pha, "ANCRFILE")
        if given["rmf"] is None:
            respfile = referenced_file(pha, "RESPFILE")
            if named["arf"] is not None:
                named["rmf"] = respfile
            else:
                named["rsp"] = respfile
    return source, named


def _spectrum_file(reference: tuple[str, int | None] | None) -> Any:
    """A BACKFILE reference ``(path, n)`` as a source for `Background.from_plain` (row n - 1)."""
    if reference is None:
        return None
    path, number = reference
    return path if number is None else (path, number - 1)


class DataUnit(eqx.Module):
    """A source spectrum, its background and its response, with channels selected and grouped.

    **Arguments:**

    - `src`: the source: a `Source`, a path, a `BytesIO`, ``"path:ii"``, ``"path{n}"`` (row n
        from 1), ``"path{NAME}"`` (the spectrum extension of that HDUCLAS2 or EXTNAME) or
        ``(file, ii)``.
    - `bkg`: the background, likewise; `None` means: from the source file (below), else a zero
        background with the source's exposure and backscale (alpha = 1); `False`: none (a zero
        background), whatever the source file says.
    - `rmf`, `arf`: a redistribution matrix and an ARF, composed when `rsp` is not given.
    - `rsp`: a full response (``"path:ii"`` selects EXTVER ii). Without a response the unit is
        incomplete (`completeness` is False) and has no views. `False` for any of the three:
        none, whatever the source file says.
    - `stat`: one of `STATISTICS`.
    - `notc`: notice windows [keV]: `None` (all), ``[lo, hi]`` or a list of windows.
    - `grpg`: `None` (the file's GROUPING) or a dict of `grouping.GROUPING_KEYS`
        (``min_evt``, ``min_nevt``, ``min_sigma``, ``max_bin``, ``min_bevt``, and
        ``method='optimal'`` for Kaastra & Bleeker optimal binning). These group the noticed
        channels. ``{"method": "counts", "min_evt": n}`` (``max_bin`` optional) groups the
        whole spectrum instead, as Sherpa's ``group_counts(n)`` and grppha's ``group min n``:
        groups of at least n counts from the first channel, the short last group flagged bad
        (QUALITY 2, in `qualifying`); the notice windows then select whole groups.
    - `rebn`: like `grpg`, for the rebinning grid used only by the ``_re_`` views.
    - `time`: a time tag for time-dependent models (a number or `None`).
    - `weight`: multiplies the unit's log-likelihood terms (finite, >= 0).
    - `name`: a label; default: the source's name.
    - `notice_rule`: ``'inside'`` (default, bayspec's rule): a channel is noticed when its
        whole ``[E_MIN, E_MAX]`` lies inside a window; ``'overlap'`` (Sherpa's rule): when it
        overlaps one, and a group made before noticing (the file's GROUPING, method
        'counts') is noticed whole when any of its channels is. `band` (and `info`) shows the
        energies actually fitted.

    **Files named by the source.** When `src` is a file (not a `Source`), the parts not given
    are taken from it, as Sherpa's ``load_pha`` takes them: the background from a spectrum
    extension with HDUCLAS2 = 'BKG' in the same file (a Chandra ``pha3`` file), else from
    BACKFILE; the response from RESPFILE (an RMF composed with ANCRFILE's ARF when there is
    one, else a full response) and the ARF from ANCRFILE. Names are relative to the source's
    folder; 'none', 'NONE' and '' mean absent; a trailing ``{n}`` is a type II background
    row or a response's EXTVER, counted from 1 (OGIP/XSPEC). A named file that does not exist
    is an `OGIPError` naming the keyword and the path tried. An argument given (a file, an
    object, or `False`) always wins over the header.

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
    notice_rule: str = eqx.field(static=True)
    bkg_given: bool = eqx.field(static=True)
    rsp_composed: bool = eqx.field(static=True)
    grouping_slice_items: tuple = eqx.field(static=True)
    rebining_slice_items: tuple = eqx.field(static=True)

    def __init__(self, src, bkg=None, rmf=None, arf=None, rsp=None, stat="pgstat", notc=None,
                 grpg=None, rebn=None, time=None, weight=1, name: str | None = None,
                 notice_rule: str = "inside"):
        if not isinstance(stat, str) or stat not in STATISTICS:
            raise ValueError(f"stat must be one of {list(STATISTICS)}, got {stat!r}")
        if time is not None and (isinstance(time, bool) or not isinstance(time, numbers.Real)):
            raise ValueError(f"time must be a number or None, got {type(time).__name__}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (
            math.isfinite(weight) and weight >= 0
        ):
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        notice_rule = check_notice_rule(notice_rule)
        for kind, value in (("bkg", bkg), ("rmf", rmf), ("arf", arf), ("rsp", rsp)):
            if value is True:
                raise ValueError(f"{kind}: True is not a file; give a file, an object, None "
                                 "(from the source file) or False (none)")
        if src is None:
            raise ValueError("src is required")
        source, named = _source_and_named_files(src, dict(bkg=bkg, rmf=rmf, arf=arf, rsp=rsp))
        label = name if name is not None else source.name
        background = _load("bkg", named["bkg"], Background)
        redistribution = _load("rmf", named["rmf"], Redistribution)
        auxiliary = _load("arf", named["arf"], Auxiliary)
        response = _load("rsp", named["rsp"], Response, AbstractResponse)
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
        if background is not None:
            _check_channel_numbers(label, source, background, "background")
        if response is not None:
            _check_channel_numbers(label, source, response, "response")
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
        self.notice_rule = notice_rule
        self.bkg_given = background is not None
        self.rsp_composed = composed
        self._check_efficiencies(label)
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
        self._check_used_values(label, groups, rebins)
        self.qualifying = jnp.asarray(qualifying)
        self.noticing = jnp.asarray(noticing)
        self.grouping = int_array(groups.flags)
        self.rebining = int_array(rebins.flags)
        self.group_ids = int_array(groups.ids)
        self.rebin_ids = int_array(rebins.ids)
        self.n_groups, self.n_rebins = groups.n_groups, rebins.n_groups
        # Shared with every unit of the same response grouped the same way (one copy).
        self.rsp_drm = grouped_drm(response, groups.ids, groups.n_groups)
        self.rsp_re_drm = grouped_drm(response, rebins.ids, rebins.n_groups)
        self.grouping_slice_items = tuple(map(tuple, groups.slices.tolist()))
        self.rebining_slice_items = tuple(map(tuple, rebins.slices.tolist()))
        self._check_effective_area(label)
        self._check_gaussian_errors(label)

    def _resolve(self, label: str) -> tuple[Groups, Groups, np.ndarray, np.ndarray]:
        # A channel is used only when both spectra call it good (as XSPEC and Sherpa do); the
        # zero background copies the source's QUALITY.
        qualifying = (np.asarray(self.src.quality) == 0) & (np.asarray(self.bkg.quality) == 0)
        flags = np.asarray(self.src.grouping)
        settings = None if self.grpg_items is None else dict(self.grpg_items)
        whole_spectrum = settings is None or settings.get("method") in SPECTRUM_METHODS
        if settings is not None and whole_spectrum:  # grouped before noticing
            flags, quality = count_grouping(
                np.where(qualifying, np.asarray(self.src.counts, dtype=np.float64), 0.0),
                settings["min_evt"], qualifying, settings.get("max_bin"))
            qualifying = qualifying & (quality == 0)
        noticing = notice_mask(np.asarray(self.rsp.chbin), self.notc, where=f"unit {label}",
                               rule=self.notice_rule)
        if self.notice_rule == "overlap" and whole_spectrum:
            noticing = extend_to_groups(noticing, flags)
        valid = qualifying & noticing
        if not valid.any():
            windows = [list(w) for w in self.notc] if self.notc else None
            raise ValueError(
                f"unit {label}: no channel is both of good quality (in the source and the "
                f"background) and noticed (notc={windows}); check the windows against the "
                "response's channel energies"
            )
        self._check_channel_order(label, valid)
        if settings is not None and not whole_spectrum:
            flags = self._build_flags(settings, valid)
        rebin_flags = flags if self.rebn_items is None else self._build_flags(
            dict(self.rebn_items), valid)
        groups = resolve_groups(flags, valid)
        if groups.n_groups == 0:
            raise self._no_group_error(label, flags, valid)
        return groups, resolve_groups(rebin_flags, valid), qualifying, noticing

    def _check_channel_order(self, label: str, valid: np.ndarray) -> None:
        """The channels that enter the fit increase in energy without overlapping (EBOUNDS):
        a file may disorder channels nobody uses (GECAM's top channels), not used ones."""
        used = np.asarray(self.rsp.chbin, dtype=np.float64)[valid]
        bad = np.flatnonzero(used[1:, 0] < used[:-1, 1] * (1.0 - 1e-6))
        if bad.size:
            index = np.flatnonzero(valid)[[bad[0], bad[0] + 1]]
            raise _file_error(
                f"unit {label}: channels {index[0]} and {index[1]} of the response enter the fit "
                f"but are out of energy order or overlap (E_MIN/E_MAX {used[bad[0]].tolist()} "
                f"then {used[bad[0] + 1].tolist()} keV)", self.rsp.file, "EBOUNDS E_MIN/E_MAX")

    def _no_group_error(self, label: str, flags: np.ndarray, valid: np.ndarray) -> ValueError:
        """Why the unit has no group to fit: the file's GROUPING starts none, or none lies
        wholly inside the good, noticed channels."""
        if self.grpg_items is not None:
            return ValueError(
                f"unit {label}: grpg={self.grpg} makes no group inside the good-quality, "
                "noticed channels; lower the thresholds or widen notc")
        if not np.any(flags == 1):
            message = ("GROUPING starts no group (no channel has 1; its values are all -1 or 0), "
                       "so no channel can be fitted; regroup here with grpg={...}")
        else:
            message = ("no group of GROUPING lies wholly inside the good-quality, noticed "
                       f"channels (notc={[list(w) for w in self.notc] if self.notc else None}); "
                       "widen notc or regroup here with grpg={...}")
        return _file_error(f"unit {label}: {message}", self.src.file, "GROUPING")

    def _check_used_values(self, label: str, groups: Groups, rebins: Groups) -> None:
        """Every value that enters a group (of the fit or of the rebinning grid) is finite."""
        used = (groups.ids < groups.n_groups) | (rebins.ids < rebins.n_groups)
        parts = [("source", self.src)] + ([("background", self.bkg)] if self.bkg_given else [])
        for part, spectrum in parts:
            for values, column in ((spectrum.counts, "COUNTS"), (spectrum.errors, "STAT_ERR")):
                bad = used & ~np.isfinite(np.asarray(values))
                if bad.any():
                    raise spectrum.content_error(
                        f"unit {label}: non-finite {column} of the {part} in a channel that "
                        "enters the fit (good quality in both spectra and noticed)", column, bad)

    def _check_efficiencies(self, label: str) -> None:
        """Exposures times AREASCAL (and BACKSCAL ratio) are finite and > 0, and so is alpha:
        no overflow or underflow in their products."""
        with np.errstate(all="ignore"):
            values = {"src": self.host_efficiency("src"), "bkg": self.host_efficiency("bkg")}
            values["alpha"] = values["src"] / values["bkg"]
        for what, value in values.items():
            value = np.asarray(value, dtype=np.float64)
            if not np.all(np.isfinite(value) & (value > 0)):
                files = [f for f in (self.src.file, self.bkg.file if self.bkg_given else None) if f]
                raise ValueError(
                    f"unit {label}: the {_EFFICIENCY_NAMES[what]} is not a finite number > 0 "
                    f"(got {value.ravel()[:4].tolist()}): EXPOSURE x AREASCAL and the BACKSCAL "
                    f"ratio overflow or underflow; check those keywords{' in ' if files else ''}"
                    f"{', '.join(files)}")

    def _check_effective_area(self, label: str) -> None:
        """A constant response has some effective area in the fitted channels."""
        if not self.rsp.constant or np.any(np.asarray(self.rsp_drm) != 0):
            return
        chbin = self._chbin(False)
        band = ([list(w) for w in self.notc] if self.notc is not None
                else [float(chbin[0, 0]), float(chbin[-1, 1])])
        arf = f" (ARF {self.arf.file or self.arf.name})" if self.rsp_composed else ""
        raise _file_error(
            f"unit {label}: the response {self.rsp.name}{arf} has no effective area in the "
            f"noticed band {band} keV: every matrix element of the fitted channels is 0",
            self.rsp.file, "MATRIX")

    def _build_flags(self, settings: dict, valid: np.ndarray) -> np.ndarray:
        zeroed = lambda x: np.where(valid, np.asarray(x, dtype=np.float64), 0.0)  # noqa: E731
        alpha = self._scalar_alpha()
        fwhm = None
        if settings.get("method", "threshold") == "optimal":
            if not self.rsp.constant and not (self.rsp.ra.frozen and self.rsp.dec.frozen):
                raise ValueError(
                    f"unit {self.name}: grouping method='optimal' needs a fixed response, but "
                    f"the {type(self.rsp).__name__}'s ra and dec are free; freeze both, or use "
                    "method='threshold'")
            fwhm = channel_fwhm(np.asarray(self.rsp.chbin), np.asarray(self.rsp.phbin),
                                np.asarray(self.rsp.drm))
        return build_grouping(settings, zeroed(self.src.counts), zeroed(self.bkg.counts),
                              zeroed(self.bkg.errors), alpha, valid, stat=self.stat, fwhm=fwhm)

    def _check_gaussian_errors(self, label: str) -> None:
        if not statistic(self.stat).needs_errors or self.n_groups == 0:
            return
        src, bkg = (self._count_values(part, "counts", False, True) for part in ("src", "bkg"))
        zero = np.flatnonzero((src == 0) & (bkg == 0))
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
        """The grouping settings (`None`: the file's GROUPING)."""
        return None if self.grpg_items is None else dict(self.grpg_items)

    @property
    def rebn(self) -> dict | None:
        """The rebinning settings of the ``_re_`` views (`None`: as `grpg`)."""
        return None if self.rebn_items is None else dict(self.rebn_items)

    def settings(self) -> dict:
        """The constructor arguments that rebuild this unit (objects, not files)."""
        return dict(
            src=self.src, bkg=self.bkg if self.bkg_given else None,
            rmf=self.rmf, arf=self.arf, rsp=None if self.rsp_composed else self.rsp,
            stat=self.stat, notc=None if self.notc is None else [list(w) for w in self.notc],
            grpg=self.grpg, rebn=self.rebn, time=self.time, weight=self.weight, name=self.name,
            notice_rule=self.notice_rule,
        )

    def replace(self, **changes) -> DataUnit:
        """A new unit with some constructor arguments changed, resolved anew.

        Any of ``src, bkg, rmf, arf, rsp, stat, notc, grpg, rebn, time, weight, name,
        notice_rule``.
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

    def _time_array(self, n: int) -> Float[Array, " n"]:
        return jnp.full(n, jnp.nan if self.time is None else self.time)

    def _ebin(self) -> np.ndarray:
        self._need_response()
        return np.asarray(self.rsp.phbin).astype(jnp.result_type(float))

    @property
    def ebin(self) -> Float[Array, "phot 2"]:
        """Photon energy bins [keV], in the default float precision."""
        return jnp.asarray(self._ebin())

    @property
    def ewidth(self) -> Float[Array, " phot"]:
        """Photon bin widths [keV]."""
        ebin = self._ebin()
        return jnp.asarray(ebin[:, 1] - ebin[:, 0])

    @property
    def nbin(self) -> int:
        """Number of photon bins."""
        self._need_response()
        return int(self.rsp.phbin.shape[0])

    @property
    def tarr(self) -> Float[Array, " phot"]:
        """The unit's `time` (NaN when none) per photon bin."""
        return self._time_array(self.nbin)

    @property
    def ngrid(self) -> int:
        """Points per photon bin of `egrid`."""
        return NGRID

    @property
    def egrid(self) -> Float[Array, " phot*ngrid"]:
        """`ngrid` equally spaced energies per photon bin, both edges included, flattened
        (`binning.photon_grid`, on the host as bayspec)."""
        self._need_response()
        return jnp.asarray(photon_grid(np.asarray(self.rsp.phbin), NGRID))

    @property
    def tgrid(self) -> Float[Array, " phot*ngrid"]:
        """`tarr` at every point of `egrid`."""
        return self._time_array(self.nbin * NGRID)

    # -- efficiencies -------------------------------------------------------------------------

    def host_efficiency(self, part: str, corrected: bool = False) -> np.ndarray:
        """The efficiency of `part` (scalar, or per channel with a BACKSCAL or AREASCAL
        column), times its factor (``sf``, ``bf``) when `corrected`; numpy, on the host.

        - source: ``t_s = EXPOSURE_s * AREASCAL_s``;
        - background: ``t_b = EXPOSURE_b * AREASCAL_b * BACKSCAL_b / BACKSCAL_s``.

        The model counts are ``t_s`` times the folded rate and the background is scaled into
        the source region by ``alpha = t_s / t_b = (EXPOSURE_s AREASCAL_s BACKSCAL_s) /
        (EXPOSURE_b AREASCAL_b BACKSCAL_b)``: AREASCAL scales the effective area (OGIP/92-007),
        as XSPEC and Sherpa apply it (Sherpa: the folded model times AREASCAL, and the
        background scale the product of the exposure, BACKSCAL and AREASCAL ratios). With
        AREASCAL = 1 these are bayspec's efficiencies.
        """
        spectrum = self.src if part == "src" else self.bkg
        efficiency = np.asarray(spectrum.exposure) * np.asarray(spectrum.areascale)
        if part == "bkg":
            efficiency = (efficiency * np.asarray(self.bkg.backscale)
                          / np.asarray(self.src.backscale))
        return efficiency * spectrum.factor.host_value if corrected else efficiency

    def view_efficiency(self, part: str, view: str = "group", corrected: bool = False
                        ) -> np.ndarray:
        """`host_efficiency` per group of `view` (``"group"``: the fit's groups, ``"rebin"``,
        ``"channel"``), ``(n,)``: a per-channel efficiency (BACKSCAL or AREASCAL column) is
        taken at each group's first channel, as the count-rate views take it; the fold setups
        (`Data.setup`) use these."""
        efficiency = self.host_efficiency(part, corrected)
        if view == "channel":
            return np.array(np.broadcast_to(efficiency, (self.src.n_channels,)))
        slices = self.grouping_slice if view == "group" else self.rebining_slice
        if efficiency.ndim == 0:
            return np.full(slices.shape[0], efficiency)
        return efficiency[slices[:, 0]]

    @property
    def src_efficiency(self) -> Float[Array, "*chan"]:
        """Source exposure [s] times its AREASCAL."""
        return jnp.asarray(self.host_efficiency("src"))

    @property
    def bkg_efficiency(self) -> Float[Array, "*chan"]:
        """Background exposure [s] times its AREASCAL, times its BACKSCAL over the source's."""
        return jnp.asarray(self.host_efficiency("bkg"))

    @property
    def alpha(self) -> Float[Array, "*chan"]:
        """`src_efficiency` over `bkg_efficiency`: the background's scale in the source region."""
        return jnp.asarray(self.host_efficiency("src") / self.host_efficiency("bkg"))

    @property
    def corr_src_efficiency(self) -> Float[Array, "*chan"]:
        """`src_efficiency` times the source factor ``sf``."""
        return jnp.asarray(self.host_efficiency("src", corrected=True))

    @property
    def corr_bkg_efficiency(self) -> Float[Array, "*chan"]:
        """`bkg_efficiency` times the background factor ``bf``."""
        return jnp.asarray(self.host_efficiency("bkg", corrected=True))

    # -- grouped counts, rates and count spectra ----------------------------------------------

    def _count_values(self, part: str, quantity: str, rebinned: bool, error: bool) -> np.ndarray:
        """A count view on the host (numpy): see `_count_view`."""
        if part == "net":
            src = self._count_values("src", quantity, rebinned, error)
            bkg = self._count_values("bkg", quantity, rebinned, error)
            return np.sqrt(src**2 + bkg**2) if error else src - bkg
        if quantity == "ctsspec":
            rate = self._count_values(part, "ctsrate", rebinned, error)
            return rate / self._chbin_width(rebinned)
        if quantity == "ctsrate":
            counts = self._count_values(part, "counts", rebinned, error)
            return counts / self._group_efficiency(part, rebinned)
        spectrum = self.src if part == "src" else self.bkg
        return self._grouped(spectrum.errors if error else spectrum.counts, rebinned, error)

    def _grouped(self, values: Array, rebinned: bool, squared: bool) -> np.ndarray:
        """Sum per group (root sum of squares when `squared`) of channel `values`, in their
        dtype; the discard segment (excluded channels, NaN included) is dropped."""
        self._need_response()
        ids, n = (self.rebin_ids, self.n_rebins) if rebinned else (self.group_ids, self.n_groups)
        values = np.asarray(values)
        total = group_sum(values**2 if squared else values, ids, n)
        return np.sqrt(total) if squared else total

    def _group_efficiency(self, part: str, rebinned: bool) -> np.ndarray:
        """The corrected efficiency of `part` per group; a per-channel one (BACKSCAL or
        AREASCAL column) is taken at each group's first channel (`view_efficiency`)."""
        efficiency = self.host_efficiency(part, corrected=True)
        if efficiency.ndim == 0:
            return efficiency
        return self.view_efficiency(part, "rebin" if rebinned else "group", corrected=True)

    src_counts = _count_view("src", "counts")
    src_errors = _count_view("src", "counts", error=True)
    src_re_counts = _count_view("src", "counts", rebinned=True)
    src_re_errors = _count_view("src", "counts", rebinned=True, error=True)
    bkg_counts = _count_view("bkg", "counts")
    bkg_errors = _count_view("bkg", "counts", error=True)
    bkg_re_counts = _count_view("bkg", "counts", rebinned=True)
    bkg_re_errors = _count_view("bkg", "counts", rebinned=True, error=True)
    src_ctsrate = _count_view("src", "ctsrate")
    src_ctsrate_error = _count_view("src", "ctsrate", error=True)
    src_re_ctsrate = _count_view("src", "ctsrate", rebinned=True)
    src_re_ctsrate_error = _count_view("src", "ctsrate", rebinned=True, error=True)
    src_ctsspec = _count_view("src", "ctsspec")
    src_ctsspec_error = _count_view("src", "ctsspec", error=True)
    src_re_ctsspec = _count_view("src", "ctsspec", rebinned=True)
    src_re_ctsspec_error = _count_view("src", "ctsspec", rebinned=True, error=True)
    bkg_ctsrate = _count_view("bkg", "ctsrate")
    bkg_ctsrate_error = _count_view("bkg", "ctsrate", error=True)
    bkg_re_ctsrate = _count_view("bkg", "ctsrate", rebinned=True)
    bkg_re_ctsrate_error = _count_view("bkg", "ctsrate", rebinned=True, error=True)
    bkg_ctsspec = _count_view("bkg", "ctsspec")
    bkg_ctsspec_error = _count_view("bkg", "ctsspec", error=True)
    bkg_re_ctsspec = _count_view("bkg", "ctsspec", rebinned=True)
    bkg_re_ctsspec_error = _count_view("bkg", "ctsspec", rebinned=True, error=True)
    net_ctsrate = _count_view("net", "ctsrate")
    net_ctsrate_error = _count_view("net", "ctsrate", error=True)
    net_re_ctsrate = _count_view("net", "ctsrate", rebinned=True)
    net_re_ctsrate_error = _count_view("net", "ctsrate", rebinned=True, error=True)
    net_ctsspec = _count_view("net", "ctsspec")
    net_ctsspec_error = _count_view("net", "ctsspec", error=True)
    net_re_ctsspec = _count_view("net", "ctsspec", rebinned=True)
    net_re_ctsspec_error = _count_view("net", "ctsspec", rebinned=True, error=True)

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
        """Channel ``[start, stop)`` of each rebinning group."""
        return np.asarray(self.rebining_slice_items, dtype=np.int64).reshape(-1, 2)

    def _chbin(self, rebinned: bool) -> np.ndarray:
        self._need_response()
        slices = self.rebining_slice if rebinned else self.grouping_slice
        chbin = np.asarray(self.rsp.chbin)
        return np.stack([chbin[slices[:, 0], 0], chbin[slices[:, 1] - 1, 1]], axis=1)

    def _chbin_width(self, rebinned: bool) -> np.ndarray:
        chbin = self._chbin(rebinned)
        return chbin[:, 1] - chbin[:, 0]

    @property
    def band(self) -> tuple[float, float]:
        """The energies [keV] actually fitted: the lower edge of the first fitted group and the
        upper edge of the last (they differ from `notc` by the channel edges, and between the
        notice rules)."""
        chbin = self._chbin(False)
        return float(chbin[0, 0]), float(chbin[-1, 1])

    @property
    def rsp_chbin(self) -> Float[Array, "group 2"]:
        """Energy bounds of each group [keV] (first channel's E_lo, last channel's E_hi)."""
        return jnp.asarray(self._chbin(False))

    @property
    def rsp_re_chbin(self) -> Float[Array, "rebin 2"]:
        """Energy bounds of each rebinning group [keV]."""
        return jnp.asarray(self._chbin(True))

    @property
    def rsp_chbin_mean(self) -> Float[Array, " group"]:
        """Centre of each group [keV]: the mean of its bounds."""
        return jnp.asarray(self._chbin(False).mean(axis=1))

    @property
    def rsp_re_chbin_mean(self) -> Float[Array, " rebin"]:
        """Centre of each rebinning group [keV]."""
        return jnp.asarray(self._chbin(True).mean(axis=1))

    @property
    def rsp_chbin_width(self) -> Float[Array, " group"]:
        """Width of each group [keV]."""
        return jnp.asarray(self._chbin_width(False))

    @property
    def rsp_re_chbin_width(self) -> Float[Array, " rebin"]:
        """Width of each rebinning group [keV]."""
        return jnp.asarray(self._chbin_width(True))

    @property
    def rsp_chbin_tarr(self) -> Float[Array, " group"]:
        """The unit's `time` (NaN when none) per group."""
        return self._time_array(self.n_groups)

    @property
    def rsp_re_chbin_tarr(self) -> Float[Array, " rebin"]:
        """The unit's `time` (NaN when none) per rebinning group."""
        return self._time_array(self.n_rebins)

    @property
    def corr_rsp_drm(self) -> Float[Array, "phot group"]:
        """`rsp_drm` times the response factor ``rf``."""
        return jnp.asarray(np.asarray(self.rsp_drm) * self.rsp.factor.host_value)

    @property
    def corr_rsp_re_drm(self) -> Float[Array, "phot rebin"]:
        """`rsp_re_drm` times the response factor ``rf``."""
        return jnp.asarray(np.asarray(self.rsp_re_drm) * self.rsp.factor.host_value)

    # -- flags (bayspec names) -----------------------------------------------------------------

    @property
    def valid_mask(self) -> Bool[Array, " chan"]:
        """Channels of good quality and noticed."""
        self._need_response()
        return jnp.asarray(np.asarray(self.qualifying) & np.asarray(self.noticing))

    # -- limits -------------------------------------------------------------------------------

    def _scalar_alpha(self) -> float:
        return float(np.mean(self.host_efficiency("src") / self.host_efficiency("bkg")))

    def net_counts_upperlimit(self, cl: float = 0.9) -> float:
        """Upper limit on the net counts at credibility `cl` (Poisson, known background).

        ``N`` and ``B`` are the summed source counts and scaled background of the fitted
        groups; the limit solves ``P(N+1, s+B) = cl Q(N+1, B) + P(N+1, B)`` for ``s + B``
        (Helene 1983, as bayspec).
        """
        if isinstance(cl, bool) or not isinstance(cl, numbers.Real) or not 0 < cl < 1:
            raise ValueError(f"cl must be in (0, 1), got {cl!r}")
        n = float(np.sum(self._count_values("src", "counts", False, False)))
        b = float(np.sum(self._count_values("bkg", "counts", False, False))) * self._scalar_alpha()
        from jax.scipy.special import gammainc, gammaincc

        a = n + 1.0
        with jax.ensure_compile_time_eval():  # a number, also when called while tracing
            target = cl * float(gammaincc(a, b)) + float(gammainc(a, b))
            return _gammainc_inverse(a, target) - b

    def net_ctsrate_upperlimit(self, cl: float = 0.9) -> float:
        """`net_counts_upperlimit` over `corr_src_efficiency` [counts/s]."""
        return self.net_counts_upperlimit(cl) / float(np.mean(self.host_efficiency(
            "src", corrected=True)))

    def net_counts_significance_limit(self, sigma: float = 3) -> float:
        """Net counts needed for a detection at `sigma` over this unit's background.

        pgstat: Gaussian background (`pgsig_inv`); wstat (cstat, ppstat): Poisson background
        (`ppsig_inv`, Li & Ma). Other statistics have no background significance model.
        """
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (
            math.isfinite(sigma) and sigma > 0
        ):
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}")
        alpha = self._scalar_alpha()
        background = float(np.sum(self._count_values("bkg", "counts", False, False)))
        entry = statistic(self.stat)
        if entry.profiled and entry.background == "gaussian":
            errors = self._count_values("bkg", "counts", False, True)
            error = math.sqrt(float(np.sum(errors**2)))
            return float(pgsig_inv(sigma, background * alpha, error * alpha)) - background * alpha
        if entry.profiled:
            return float(ppsig_inv(sigma, background, alpha)) - alpha * background
        raise ValueError(
            "net-count significance limits need a statistic with a background model "
            f"{[n for n, s in STATISTICS.items() if s.profiled]}), not {self.stat!r}"
        )

    def net_ctsrate_significance_limit(self, sigma: float = 3) -> float:
        """`net_counts_significance_limit` over `corr_src_efficiency` [counts/s]."""
        return (self.net_counts_significance_limit(sigma)
                / float(np.mean(self.host_efficiency("src", corrected=True))))

    # -- parameters ----------------------------------------------------------------------------

    @property
    def params(self) -> OrderedDict[str, Par]:
        """The data-layer parameters: sf, bf, rf (factors), ra, dec."""
        self._need_response()
        return OrderedDict([("sf", self.src.factor), ("bf", self.bkg.factor),
                            ("rf", self.rsp.factor), ("ra", self.rsp.ra), ("dec", self.rsp.dec)])

    @property
    def par(self) -> dict[str, Par]:
        """`params` numbered from 1."""
        return {str(i): p for i, p in enumerate(self.params.values(), 1)}

    @property
    def cfg(self) -> dict:
        """No configuration (bayspec's interface): ``{}``."""
        return {}

    @property
    def pvalues(self) -> tuple:
        """The physical values of `params`."""
        return tuple(p.host_value for p in self.params.values())

    # -- tables and files ----------------------------------------------------------------------

    def _info_dict(self) -> OrderedDict:
        return OrderedDict([
            ("src", self.src.name),
            ("bkg", self.bkg.name if self.bkg_given else None),
            ("rmf", None if self.rmf is None else self.rmf.name),
            ("arf", None if self.arf is None else self.arf.name),
            ("rsp", None if self.rsp is None or self.rsp_composed else self.rsp.name),
            ("notc", None if self.notc is None else [list(w) for w in self.notc]),
            ("notice_rule", self.notice_rule),
            ("band", None if self.rsp is None else "{:.6g}-{:.6g} keV".format(*self.band)),
            ("stat", self.stat),
            ("grpg", self.grpg),
            ("time", self.time),
            ("weight", self.weight),
        ])

    @property
    def info(self) -> Table:
        """The unit's settings as a table (bayspec's ``info``)."""
        info = self._info_dict()
        return Table({"Property": list(info), self.name: [_show(v) for v in info.values()]})

    def __str__(self) -> str:
        return f"*** DataUnit ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>DataUnit</b></summary>{self.info.html}</details>"

    def save(self, savepath: str | os.PathLike) -> None:
        """Write ``dataunit.json`` (the info table, as bayspec) and ``dataunit.npz`` (lossless).

        `DataUnit.load(savepath)` rebuilds an identical unit from the npz. A response that
        depends on the sky position (code, not arrays) cannot be saved: a `ValueError` says so.
        """
        if self.rsp is not None and not self.rsp.constant:
            raise ValueError(f"unit {self.name}: its response ({type(self.rsp).__name__}) depends "
                             "on the sky position and is code, not arrays; it cannot be saved")
        save_unit(self.settings(), self._info_dict(), savepath)

    @classmethod
    def load(cls, savepath: str | os.PathLike) -> DataUnit:
        """Rebuild a unit written by `save`; a missing, damaged or newer save is a `SaveError`
        naming the file."""
        return load_unit(savepath, build=cls)


def _show(value: Any) -> str:
    if value is None:
        return "None"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _zero_background(source: Source) -> Background:
    n = source.n_channels
    return Background(np.zeros(n), np.zeros(n), np.asarray(source.exposure),
                      quality=np.asarray(source.quality), grouping=np.asarray(source.grouping),
                      backscale=np.asarray(source.backscale), channels=np.asarray(source.channels),
                      name="zero background", areascale=np.asarray(source.areascale))


_EFFICIENCY_NAMES = {"src": "source efficiency EXPOSURE x AREASCAL",
                     "bkg": "background efficiency EXPOSURE x AREASCAL x BACKSCAL ratio",
                     "alpha": "background scale alpha"}


def _file_error(message: str, file: str | None, column: str) -> ValueError:
    """An `OGIPError` naming `file` and `column` for file content, else a `ValueError`."""
    if file is not None:
        return OGIPError(message, file=file, column=column)
    return ValueError(f"{message} ({column})")


def _check_channel_numbers(label: str, source: Source, other: Any, what: str) -> None:
    """The source's channels and those of its background or response pair by their offset
    from each one's first channel (its TLMIN), as XSPEC pairs a spectrum with its response: a
    spectrum numbered 0..N-1 goes with a response numbered 1..N (Fermi/GBM PHA and RSP files
    do this). Numbers whose offsets differ (gaps, another order) cannot be paired: an error
    names both."""
    mine, theirs = np.asarray(source.channels), np.asarray(other.channels)
    offsets, other_offsets = mine - mine[0], theirs - theirs[0]
    if np.array_equal(offsets, other_offsets):
        return
    at = int(np.flatnonzero(offsets != other_offsets)[0])
    other_file = getattr(other, "file", None)
    raise _file_error(
        f"unit {label}: the channel numbers of the source ({mine[0]}..{mine[-1]}) and of the "
        f"{what} {other_file or other.name} ({theirs[0]}..{theirs[-1]}) do not line up: "
        f"channels pair by their offset from each one's first channel, and at position {at} "
        f"the source has channel {mine[at]} where the {what} has {theirs[at]}",
        source.file or other_file, "CHANNEL")


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
