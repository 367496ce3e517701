"""OGIP PHA type I and type II spectra (OGIP/92-007): reading and writing."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import numpy as np
from astropy.io import fits

from .errors import OGIPError
from .fitsfile import (
    as_float_array,
    as_int_array,
    column,
    column_tlmin,
    find_hdu,
    find_hdus,
    has_column,
    hdu_name,
    header_flag,
    header_integer,
    header_number,
    header_value,
    open_fits,
    split_selector,
    split_source,
)
from .limits import (
    MAX_BACKSCAL,
    MAX_COUNTS,
    MAX_EXPOSURE,
    MAX_SYS_ERR,
    MIN_BACKSCAL,
    MIN_EXPOSURE,
)

_SPECTRUM = dict(names=("SPECTRUM",), hduclas={"HDUCLAS1": ("SPECTRUM",)})
_EBOUNDS = dict(names=("EBOUNDS",), hduclas={"HDUCLAS2": ("EBOUNDS",)})
_ROW_FILE_KEYS = ("BACKFILE", "RESPFILE", "ANCRFILE", "CORRFILE")
_KEYWORDS = (
    "TELESCOP", "INSTRUME", "DETNAM", "FILTER", "OBJECT", "DATE-OBS", "TSTART", "TSTOP",
    "BACKFILE", "RESPFILE", "ANCRFILE", "CORRFILE", "HDUCLAS2", "CHANTYPE",
)


@dataclasses.dataclass(frozen=True, eq=False)
class PHA:
    """One counts spectrum as read from (or to be written to) an OGIP PHA file.

    Host-side numpy. `errors` combines the statistical error and the fractional systematic
    error in quadrature, as XSPEC and bayspec do.

    **Fields:**

    - `counts`: counts per channel, shape ``(nchan,)`` (RATE x EXPOSURE for rate files).
    - `stat_err`: statistical error in counts, ``(nchan,)``; `None` for Poisson errors.
    - `sys_err`: fractional systematic error, ``(nchan,)``; `None` when absent.
    - `quality`: OGIP quality flags (0 good), ``(nchan,)``.
    - `grouping`: OGIP grouping flags (1 start, -1 continue, 0 none), ``(nchan,)``.
    - `exposure`: exposure time in seconds.
    - `backscale`: BACKSCAL, a float or a ``(nchan,)`` array.
    - `areascale`: AREASCAL, a float or a ``(nchan,)`` array (default 1).
    - `channels`: channel numbers, ``(nchan,)``.
    - `poisserr`: the POISSERR keyword (`None` when absent).
    - `ebounds`: ``(nchan, 2)`` channel energy bounds when the file carries EBOUNDS, else `None`.
    - `keywords`: descriptive header keywords (TELESCOP, INSTRUME, BACKFILE, RESPFILE...).
    - `file`, `row`: where it was read from (label and PHA II row), for messages.
    """

    counts: np.ndarray
    exposure: float
    stat_err: np.ndarray | None = None
    sys_err: np.ndarray | None = None
    quality: np.ndarray | None = None
    grouping: np.ndarray | None = None
    backscale: float | np.ndarray = 1.0
    areascale: float | np.ndarray = 1.0
    channels: np.ndarray | None = None
    poisserr: bool | None = None
    ebounds: np.ndarray | None = None
    keywords: dict = dataclasses.field(default_factory=dict)
    file: str | None = None
    row: int | None = None

    def __post_init__(self):
        counts = np.array(self.counts, dtype=np.float64)
        if counts.ndim != 1:
            raise ValueError(f"counts must be one-dimensional, got shape {counts.shape}")
        n = counts.size
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("counts", counts)
        set_("exposure", float(self.exposure))
        for name in ("stat_err", "sys_err"):
            value = getattr(self, name)
            if value is not None:
                set_(name, _per_channel(value, n, name, np.float64))
        set_("quality", _per_channel(0 if self.quality is None else self.quality, n, "quality",
                                     np.int64))
        set_("grouping", _per_channel(1 if self.grouping is None else self.grouping, n,
                                      "grouping", np.int64))
        if np.ndim(self.backscale) == 0:
            set_("backscale", float(self.backscale))
        else:
            set_("backscale", _per_channel(self.backscale, n, "backscale", np.float64))
        if np.ndim(self.areascale) == 0:
            set_("areascale", float(self.areascale))
        else:
            set_("areascale", _per_channel(self.areascale, n, "areascale", np.float64))
        channels = np.arange(1, n + 1) if self.channels is None else self.channels
        set_("channels", _per_channel(channels, n, "channels", np.int64))
        if self.ebounds is not None:
            ebounds = np.array(self.ebounds, dtype=np.float64)
            if ebounds.shape != (n, 2):
                raise ValueError(f"ebounds must have shape ({n}, 2), got {ebounds.shape}")
            set_("ebounds", ebounds)
        set_("keywords", dict(self.keywords))

    @property
    def n_channels(self) -> int:
        return self.counts.size

    @property
    def first_channel(self) -> int:
        """The number of the first channel (CHANNEL, else EBOUNDS CHANNEL, else TLMIN, else 1),
        to check against the response's EBOUNDS channel numbers."""
        return int(self.channels[0])

    @property
    def poisson_errors(self) -> bool:
        """Whether the statistical errors are Poisson (sqrt(counts))."""
        return bool(self.poisserr) or self.stat_err is None

    @property
    def errors(self) -> np.ndarray:
        """Total error per channel: statistical and fractional systematic in quadrature."""
        if self.poisson_errors:
            with np.errstate(invalid="ignore"):
                stat = np.sqrt(self.counts)
        else:
            stat = self.stat_err
        if self.sys_err is None:
            return np.array(stat, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.hypot(stat, self.counts * self.sys_err)  # hypot: no overflow of squares


def _per_channel(value: Any, n: int, name: str, dtype: Any) -> np.ndarray:
    array = np.array(value, dtype=dtype)
    if array.ndim == 0:
        return np.full(n, array, dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {array.shape}")
    return array


# ----------------------------------------------------------------------------------------------
# reading


def read_pha(source: Any, row: int | None = None, extension: str | None = None,
             part: str = "source") -> PHA:
    """Read one spectrum from an OGIP PHA type I file, or row `row` of a type II file.

    **Arguments:**

    - `source`: a path, ``"path:row"``, ``"path{n}"`` (row n counted from 1, OGIP/XSPEC),
        ``"path{NAME}"`` (see `extension`), a `pathlib.Path`, a binary file object (e.g.
        `io.BytesIO`, left untouched) or a ``(file, row)`` tuple. Gzip-compressed files are read.
    - `row`: 0-based row of a PHA type II file (required for type II, refused for type I).
    - `extension`: the spectrum extension to read when a file holds several: an HDUCLAS2 value
        (``"TOTAL"``, ``"NET"``, ``"BKG"``) or an EXTNAME, case-insensitive.
    - `part`: ``"source"`` or ``"background"``: which spectrum of a file that holds several
        (a Chandra ``pha3`` file: source and HDUCLAS2 = 'BKG' background) is wanted when
        `extension` is not given. A background is the one HDUCLAS2 = 'BKG' extension, or the
        file's only spectrum; a source is the first spectrum that is not a background.

    **Returns:**

    A `PHA`. Raises `OGIPError` naming file, extension and column for anything invalid.
    """
    target, row, label, extension = locate_spectrum(source, row, extension)
    if part not in ("source", "background"):
        raise ValueError(f"part must be 'source' or 'background', got {part!r}")
    with open_fits(target, label) as hdul:
        hdu = spectrum_extension(hdul, label, extension, part)
        ebounds_hdus = find_hdus(hdul, **_EBOUNDS, label=label)
        return _read_spectrum_hdu(hdu, ebounds_hdus[0] if ebounds_hdus else None, row, label)


def locate_spectrum(source: Any, row: int | None = None, extension: str | None = None
                    ) -> tuple[Any, int | None, str, str | None]:
    """``(target, row, label, extension)`` of a spectrum source: a ``{n}`` selector is row
    ``n - 1``, a ``{NAME}`` one the extension; each must agree with the argument if both given."""
    source, selector = split_selector(source)
    if isinstance(selector, int):
        if row is not None and row != selector - 1:
            raise OGIPError(f"row given twice and differently: {{{selector}}} (row "
                            f"{selector - 1} from 0) in the source and row={row}",
                            file=str(source))
        row = selector - 1
    elif selector is not None:
        if extension is not None and extension.strip().upper() != selector:
            raise OGIPError(f"extension given twice and differently: {{{selector}}} in the "
                            f"source and extension={extension!r}", file=str(source))
        extension = selector
    if extension is not None and (not isinstance(extension, str) or not extension.strip()):
        raise ValueError(f"extension must be an HDUCLAS2 value or an EXTNAME, got {extension!r}")
    target, row, label = split_source(source, row)
    return target, row, label, None if extension is None else extension.strip().upper()


def _hduclas2(hdu: Any, label: str) -> str:
    return str(header_value(hdu, "HDUCLAS2", label, default="")).strip().upper()


def _describe_spectra(hdus: list, label: str) -> str:
    return ", ".join(f"{hdu_name(h)} (HDUCLAS2 {_hduclas2(h, label) or 'absent'})" for h in hdus)


def spectrum_extension(hdul: fits.HDUList, label: str, extension: str | None = None,
                       part: str = "source") -> Any:
    """The spectrum extension to read (see `read_pha`); ambiguity is an `OGIPError`."""
    found = find_hdus(hdul, label=label, **_SPECTRUM)
    if not found:
        return find_hdu(hdul, label=label, what="SPECTRUM", **_SPECTRUM)  # raises, naming all
    if extension is not None:
        chosen = [h for h in found
                  if extension in (_hduclas2(h, label), str(hdu_name(h)).strip().upper())]
        if len(chosen) == 1:
            return chosen[0]
        how = "no" if not chosen else f"{len(chosen)}"
        raise OGIPError(f"{how} spectrum extension(s) with HDUCLAS2 or EXTNAME {extension!r}; "
                        f"the file's spectra: {_describe_spectra(found, label)}", file=label,
                        column="HDUCLAS2")
    backgrounds = [h for h in found if _hduclas2(h, label) == "BKG"]
    if part == "background":
        if len(backgrounds) == 1:
            return backgrounds[0]
        if len(found) == 1:
            _warn_if_source(found[0], label)
            return found[0]
        raise OGIPError(
            f"the file holds {len(found)} spectra and {len(backgrounds) or 'none'} of them "
            f"HDUCLAS2 = 'BKG' ({_describe_spectra(found, label)}): choose the background with "
            "'file{EXTNAME}' or extension=", file=label, column="HDUCLAS2")
    sources = [h for h in found if _hduclas2(h, label) != "BKG"]
    return (sources or found)[0]


def _warn_if_source(hdu: Any, label: str) -> None:
    """Warn when the only spectrum of a file read as a background names a background file of
    its own (BACKFILE): it is most likely a source spectrum."""
    backfile = str(header_value(hdu, "BACKFILE", label, default="") or "").strip()
    if _hduclas2(hdu, label) != "BKG" and backfile.upper() not in _ABSENT:
        warnings.warn(f"{label}: read as a background, but its spectrum (HDUCLAS2 "
                      f"{_hduclas2(hdu, label) or 'absent'}) names its own background "
                      f"BACKFILE = {backfile!r}: is it a source spectrum?", stacklevel=5)


def background_extension(source: Any) -> str | None:
    """The EXTNAME of the background spectrum (HDUCLAS2 = 'BKG') that a source spectrum file
    carries beside its source spectrum (a Chandra ``pha3`` file), or `None`."""
    target, _, label, extension = locate_spectrum(source)
    with open_fits(target, label) as hdul:
        found = find_hdus(hdul, label=label, **_SPECTRUM)
        backgrounds = [h for h in found if _hduclas2(h, label) == "BKG"]
        if len(backgrounds) != 1 or len(found) < 2:
            return None
        if extension is not None and extension in ("BKG", str(hdu_name(backgrounds[0])).upper()):
            return None  # the source asked for is the background extension itself
        return str(hdu_name(backgrounds[0])).strip()


_ABSENT = ("", "NONE", "NULL")


def referenced_file(pha: PHA, keyword: str) -> tuple[str, int | None] | None:
    """The file that `pha`'s BACKFILE, RESPFILE or ANCRFILE names, as ``(path, n)``.

    The path is taken relative to the spectrum's folder (as Sherpa's load_pha does); ``n`` is
    a trailing ``{n}`` (OGIP/XSPEC notation, from 1: a type II background row, a response's
    EXTVER) or `None`. Values 'none', 'NONE', '' (and a spectrum read from bytes, which has no
    folder) give `None`; so does a '%...%' placeholder such as '%match%', with a warning.
    A file that does not exist is an `OGIPError` naming the keyword and the path tried.
    """
    value = str(pha.keywords.get(keyword, "") or "").strip()
    if value.upper() in _ABSENT or pha.file is None or pha.file.startswith("<"):
        return None
    if value.startswith("%"):
        warnings.warn(f"{pha.file}: {keyword} = {value!r} is a placeholder this reader does not "
                      "interpret; pass the file explicitly", stacklevel=3)
        return None
    path, selector = split_selector(os.path.join(os.path.dirname(pha.file), value))
    if isinstance(selector, str):
        raise OGIPError(f"{keyword} = {value!r}: only a number {{n}} may follow the file name",
                        file=pha.file, column=keyword)
    if not os.path.exists(path):
        raise OGIPError(f"{keyword} = {value!r} names a file that does not exist: tried "
                        f"{path} (relative to the spectrum's folder)", file=pha.file,
                        column=keyword)
    return path, selector


def read_ebounds(source: Any) -> np.ndarray:
    """The channel energy bounds ``(nchan, 2)`` [keV] of a file's EBOUNDS extension (a PHA, a
    CSPEC or a response file). Raises `OGIPError` when there is none."""
    target, _, label = split_source(source, None)
    with open_fits(target, label) as hdul:
        hdu = find_hdu(hdul, label=label, what="EBOUNDS", **_EBOUNDS)
        return _read_ebounds(hdu, label)[0]


def count_pha_rows(source: Any) -> int:
    """Number of spectra in a PHA file: the rows of a type II file, 1 for type I."""
    target, _, label = split_source(source)
    with open_fits(target, label) as hdul:
        hdu = find_hdu(hdul, label=label, what="SPECTRUM", **_SPECTRUM)
        counts_name = _counts_column(hdu, label)
        return len(hdu.data) if _is_type2(hdu, counts_name, label) else 1


def _counts_column(hdu: Any, label: str) -> str:
    """COUNTS or RATE: the one HDUCLAS3 (COUNT / RATE) names, else the one present (COUNTS
    first). HDUCLAS3 naming a column the table lacks, while it has the other, is an error."""
    present = [name for name in ("COUNTS", "RATE") if has_column(hdu, name)]
    if not present:
        raise OGIPError(
            f"neither a COUNTS nor a RATE column (columns present: {hdu.columns.names})",
            file=label, extension=hdu.name, column="COUNTS",
        )
    kind = str(header_value(hdu, "HDUCLAS3", label, default="")).strip().upper()
    wanted = {"COUNT": "COUNTS", "COUNTS": "COUNTS", "RATE": "RATE"}.get(kind)
    if wanted is None:
        return present[0]
    if wanted not in present:
        raise OGIPError(
            f"HDUCLAS3 = {kind!r} says the spectrum is a {wanted} column, but the table has "
            f"{present[0]} and no {wanted}: the header and the column contradict each other",
            file=label, extension=hdu.name, column="HDUCLAS3",
        )
    return wanted


def _is_type2(hdu: Any, counts_name: str, label: str) -> bool:
    data = column(hdu, counts_name, label)
    return np.ndim(data) == 2


def _read_spectrum_hdu(hdu: Any, ebounds_hdu: Any, row: int | None, label: str) -> PHA:
    ext = hdu.name
    counts_name = _counts_column(hdu, label)
    type2 = _is_type2(hdu, counts_name, label)
    nrows = len(hdu.data) if hdu.data is not None else 0
    if type2:
        if row is None:
            raise OGIPError(
                f"a PHA type II file with {nrows} spectra: choose one with 'path:row' or row=",
                file=label, extension=ext,
            )
        if not 0 <= row < nrows:
            raise OGIPError(
                f"row {row} is out of range: the file has {nrows} rows (0 to {nrows - 1})",
                file=label, extension=ext,
            )
    elif row is not None:
        raise OGIPError(
            f"row {row} asked of a PHA type I file (one spectrum); drop the row index",
            file=label, extension=ext,
        )

    def cell(name: str) -> Any:
        values = column(hdu, name, label)
        return values[row] if type2 else values

    def optional(name: str, caster: Any) -> np.ndarray | None:
        if has_column(hdu, name):
            return caster(cell(name), label, ext, name)
        if name in hdu.header:
            value = header_number(hdu, name, label)
            # OGIP: a STAT_ERR or SYS_ERR keyword of 0 means "none given", not "zero error".
            if value is None or (value == 0 and name in ("STAT_ERR", "SYS_ERR")):
                return None
            return np.asarray(value)
        return None

    if type2 and has_column(hdu, "EXPOSURE"):
        exposure = as_float_array(cell("EXPOSURE"), label, ext, "EXPOSURE")
        if exposure.ndim != 0:
            raise OGIPError(f"expected one value per row, got shape {exposure.shape}",
                            file=label, extension=ext, column="EXPOSURE")
        exposure = float(exposure)
    else:
        exposure = header_number(hdu, "EXPOSURE", label, required=True)
    if not np.isfinite(exposure) or exposure <= 0:
        raise OGIPError(
            f"EXPOSURE must be finite and > 0, got {exposure!r}", file=label, extension=ext,
            column="EXPOSURE",
        )
    _check_within(exposure, MIN_EXPOSURE, MAX_EXPOSURE, label, ext, "EXPOSURE", " s")

    values = as_float_array(cell(counts_name), label, ext, counts_name)
    if values.ndim != 1:
        raise OGIPError(f"expected one value per channel, got shape {values.shape}", file=label,
                        extension=ext, column=counts_name)
    n = values.size
    if n == 0:
        raise OGIPError("no channels (the spectrum is empty)", file=label, extension=ext,
                        column=counts_name)
    is_rate = counts_name == "RATE"
    with np.errstate(over="ignore"):  # an overflow is a non-finite count, reported below
        counts = values * exposure if is_rate else values

    quality = optional("QUALITY", as_int_array)
    if quality is not None:  # a QUALITY keyword is a flag too: an integer
        quality = as_int_array(quality, label, ext, "QUALITY")
    # A GROUPING keyword (rather than column) only says the file carries no grouping.
    grouping = as_int_array(cell("GROUPING"), label, ext, "GROUPING") if has_column(
        hdu, "GROUPING") else None
    quality = np.zeros(n, np.int64) if quality is None else _broadcast(quality, n, label, ext,
                                                                       "QUALITY").astype(np.int64)
    grouping = np.ones(n, np.int64) if grouping is None else _broadcast(grouping, n, label, ext,
                                                                        "GROUPING").astype(np.int64)
    if not np.all(np.isin(grouping, (-1, 0, 1))):
        raise OGIPError("GROUPING values must be 1, -1 or 0", file=label, extension=ext,
                        column="GROUPING")
    if not np.any(grouping == 1):
        raise OGIPError(
            f"no group starts (no GROUPING value 1; values present: {np.unique(grouping).tolist()}"
            "): every channel would be in no group. Grouping flags are 1 (start), -1 (continue), "
            "0 (none); an ungrouped spectrum has no GROUPING column, or all 1",
            file=label, extension=ext, column="GROUPING",
        )
    good = quality == 0

    poisserr = header_flag(hdu, "POISSERR", label)
    stat_err = optional("STAT_ERR", as_float_array)
    sys_err = optional("SYS_ERR", as_float_array)
    if stat_err is not None:
        stat_err = _broadcast(stat_err, n, label, ext, "STAT_ERR") * (exposure if is_rate else 1)
    if sys_err is not None:
        sys_err = _broadcast(sys_err, n, label, ext, "SYS_ERR")

    if not np.all(np.isfinite(counts[good])):
        bad = np.flatnonzero(~np.isfinite(counts) & good)
        raise OGIPError(
            f"non-finite values in good-quality channels (indices {bad[:10].tolist()}"
            f"{'...' if bad.size > 10 else ''}); mark them with QUALITY > 0",
            file=label, extension=ext, column=counts_name,
        )
    _check_within(np.where(good, np.abs(counts), 0.0), 0.0, MAX_COUNTS, label, ext,
                  counts_name, " counts", "|counts| in good-quality channels")
    if poisserr:
        stat_err = None
    elif stat_err is None:
        warnings.warn(
            f"{label} [{ext}]: no STAT_ERR column and POISSERR is not T; using Poisson errors "
            "sqrt(counts)",
            stacklevel=3,
        )
    if stat_err is None:
        if np.any(counts[good] < 0):
            raise OGIPError("negative counts in good-quality channels with Poisson errors",
                            file=label, extension=ext, column=counts_name)
    else:
        err_good, counts_good = stat_err[good], counts[good]
        if not np.all(np.isfinite(err_good)) or np.any(err_good < 0):
            raise OGIPError("STAT_ERR must be finite and >= 0 in good-quality channels",
                            file=label, extension=ext, column="STAT_ERR")
        _check_within(np.where(good, stat_err, 0.0), 0.0, MAX_COUNTS, label, ext, "STAT_ERR",
                      " counts", "STAT_ERR in good-quality channels")
        if np.any((err_good == 0) & (counts_good != 0)):
            raise OGIPError(
                "STAT_ERR is 0 in good-quality channels whose counts are not "
                "(with POISSERR = F the errors must be given)",
                file=label, extension=ext, column="STAT_ERR",
            )
    if sys_err is not None and (not np.all(np.isfinite(sys_err[good])) or np.any(sys_err[good] < 0)):
        raise OGIPError("SYS_ERR must be finite and >= 0 in good-quality channels", file=label,
                        extension=ext, column="SYS_ERR")
    if sys_err is not None:
        _check_within(np.where(good, sys_err, 0.0), 0.0, MAX_SYS_ERR, label, ext, "SYS_ERR",
                      " (a fraction)", "SYS_ERR in good-quality channels")

    if has_column(hdu, "BACKSCAL"):
        backscale = as_float_array(cell("BACKSCAL"), label, ext, "BACKSCAL")
        backscale = float(backscale) if backscale.ndim == 0 else _broadcast(backscale, n, label,
                                                                            ext, "BACKSCAL")
    else:
        backscale = header_number(hdu, "BACKSCAL", label, default=1.0)
    if not np.all(np.isfinite(backscale)) or np.any(np.asarray(backscale) <= 0):
        raise OGIPError(f"BACKSCAL must be finite and > 0, got {backscale!r}", file=label,
                        extension=ext, column="BACKSCAL")
    _check_within(backscale, MIN_BACKSCAL, MAX_BACKSCAL, label, ext, "BACKSCAL")
    # AREASCAL (OGIP/92-007): keyword or per-channel column, default 1, checked as BACKSCAL.
    if has_column(hdu, "AREASCAL"):
        areascale = as_float_array(cell("AREASCAL"), label, ext, "AREASCAL")
        areascale = float(areascale) if areascale.ndim == 0 else _broadcast(
            areascale, n, label, ext, "AREASCAL")
    else:
        areascale = header_number(hdu, "AREASCAL", label, default=1.0)
    if not np.all(np.isfinite(areascale)) or np.any(np.asarray(areascale) <= 0):
        raise OGIPError(f"AREASCAL must be finite and > 0, got {areascale!r}", file=label,
                        extension=ext, column="AREASCAL")
    _check_within(areascale, MIN_BACKSCAL, MAX_BACKSCAL, label, ext, "AREASCAL")  # as BACKSCAL

    ebounds, ebounds_channels = _read_ebounds(ebounds_hdu, label) if ebounds_hdu is not None \
        else (None, None)
    order = None
    if has_column(hdu, "CHANNEL"):
        channels = _broadcast(as_int_array(cell("CHANNEL"), label, ext, "CHANNEL"), n, label, ext,
                              "CHANNEL")
        order = _channel_order(channels, label, ext, "CHANNEL")
        if order is not None:  # rows out of channel order: sorted below, every column alike
            channels = channels[order]
        if ebounds_channels is not None and (
            ebounds_channels.size != n or np.any(ebounds_channels != channels)
        ):
            raise OGIPError(
                f"the CHANNEL numbers of SPECTRUM ({channels[0]}..{channels[-1]}, {n}) and of "
                f"EBOUNDS ({ebounds_channels[0]}..{ebounds_channels[-1]}, "
                f"{ebounds_channels.size}) do not line up",
                file=label, extension=ext, column="CHANNEL",
            )
    elif ebounds_channels is not None and ebounds_channels.size == n:
        channels = ebounds_channels
        if _channel_order(channels, label, ebounds_hdu.name, "CHANNEL") is not None:
            raise OGIPError("the EBOUNDS CHANNEL numbers, which number the SPECTRUM rows (it has "
                            "no CHANNEL column), are not in increasing order", file=label,
                            extension=ebounds_hdu.name, column="CHANNEL")
    else:
        first = column_tlmin(hdu, "CHANNEL", label)
        first = header_integer(hdu, "TLMIN1", label, default=1) if first is None else first
        channels = np.arange(first, first + n)
    if ebounds is not None and ebounds.shape[0] != n:
        ebounds = None

    keywords = {}
    for key in _KEYWORDS:
        if type2 and has_column(hdu, key):
            keywords[key] = str(np.asarray(cell(key))).strip()
        elif key in hdu.header:
            keywords[key] = header_value(hdu, key, label)
    pha = PHA(
        counts=counts, exposure=exposure, stat_err=stat_err, sys_err=sys_err, quality=quality,
        grouping=grouping, backscale=backscale, areascale=areascale, channels=channels,
        poisserr=poisserr,
        ebounds=ebounds, keywords=keywords, file=label, row=row,
    )
    if not np.all(np.isfinite(pha.errors[good])):
        raise OGIPError("the total errors (STAT_ERR and SYS_ERR x counts in quadrature) overflow "
                        "in good-quality channels", file=label, extension=ext,
                        column="SYS_ERR" if sys_err is not None else "STAT_ERR")
    return _in_channel_order(pha, order)


def _check_within(values: Any, low: float, high: float, label: str, ext: str, name: str,
                  unit: str = "", what: str | None = None) -> None:
    """Every (finite) value in ``[low, high]`` (bounds of `limits`); else an `OGIPError`."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    outside = (values < low) | (values > high)
    if np.any(outside):
        i = int(np.flatnonzero(outside)[0])
        at = f" at channel index {i} ({int(np.sum(outside))} such)" if values.size > 1 else ""
        raise OGIPError(
            f"{what or name} must lie within [{low:g}, {high:g}]{unit}, got "
            f"{values[i].item()!r}{at}: beyond any real data and what the arithmetic of a fit "
            "can carry", file=label, extension=ext, column=name,
        )


def _channel_order(channels: np.ndarray, label: str, ext: str, name: str) -> np.ndarray | None:
    """The permutation that sorts `channels` (`None` when they are in order). Duplicate channel
    numbers, or gaps between them, are an error."""
    order = np.argsort(channels, kind="stable")
    ordered = channels[order]
    steps = np.diff(ordered)
    if np.any(steps == 0):
        twice = np.unique(ordered[1:][steps == 0])
        raise OGIPError(f"duplicate channel numbers {twice[:10].tolist()}: each channel must "
                        "appear once", file=label, extension=ext, column=name)
    if np.any(steps != 1):
        i = int(np.flatnonzero(steps != 1)[0])
        raise OGIPError(f"channel numbers have a gap ({ordered[i]} is followed by "
                        f"{ordered[i + 1]}): expected every channel from {ordered[0]} to "
                        f"{ordered[-1]}", file=label, extension=ext, column=name)
    return None if np.all(order == np.arange(order.size)) else order


def _in_channel_order(pha: PHA, order: np.ndarray | None) -> PHA:
    """`pha` with every per-channel array (counts, errors, flags, per-channel scales...)
    permuted by `order`; `channels` is already sorted. EBOUNDS rows keep their own order."""
    if order is None:
        return pha
    n = pha.n_channels
    permuted = {
        field.name: getattr(pha, field.name)[order]
        for field in dataclasses.fields(pha)
        if field.name != "channels" and isinstance(getattr(pha, field.name), np.ndarray)
        and getattr(pha, field.name).shape == (n,)
    }
    return dataclasses.replace(pha, **permuted)


def _broadcast(values: np.ndarray, n: int, label: str, ext: str, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 0:
        return np.full(n, values)
    if values.shape != (n,):
        raise OGIPError(f"expected {n} values (one per channel), got shape {values.shape}",
                        file=label, extension=ext, column=name)
    return values


def _read_ebounds(hdu: Any, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    """EBOUNDS as ``(nchan, 2)`` bounds and the channel numbers (or `None`)."""
    ext = hdu.name
    e_min = as_float_array(column(hdu, "E_MIN", label), label, ext, "E_MIN")
    e_max = as_float_array(column(hdu, "E_MAX", label), label, ext, "E_MAX")
    channels = None
    if has_column(hdu, "CHANNEL"):
        channels = as_int_array(column(hdu, "CHANNEL", label), label, ext, "CHANNEL").ravel()
    return np.stack([e_min.ravel(), e_max.ravel()], axis=1), channels


# ----------------------------------------------------------------------------------------------
# writing


def _spectrum_columns(rows: list[PHA], type2: bool) -> list[fits.Column]:
    n = rows[0].n_channels

    def stack(values: list[np.ndarray]) -> np.ndarray:
        return np.stack(values) if type2 else values[0]

    def fmt(code: str) -> str:
        return f"{n}{code}" if type2 else code

    counts = stack([r.counts for r in rows])
    integer = np.all(np.isfinite(counts)) and np.all(counts == np.round(counts)) and np.all(
        np.abs(counts) < 2**31)
    cols = [
        fits.Column(name="CHANNEL", format=fmt("J"), array=stack([r.channels for r in rows])),
        fits.Column(name="COUNTS", format=fmt("J" if integer else "D"),
                    array=counts.astype(np.int64 if integer else np.float64)),
    ]
    if not rows[0].poisson_errors:
        cols.append(fits.Column(name="STAT_ERR", format=fmt("D"),
                                array=stack([r.stat_err for r in rows])))
    if rows[0].sys_err is not None:
        cols.append(fits.Column(name="SYS_ERR", format=fmt("D"),
                                array=stack([r.sys_err for r in rows])))
    cols.append(fits.Column(name="QUALITY", format=fmt("I"), array=stack([r.quality for r in rows])))
    cols.append(fits.Column(name="GROUPING", format=fmt("I"),
                            array=stack([r.grouping for r in rows])))
    if type2:
        for key in _ROW_FILE_KEYS:
            names = [str(r.keywords.get(key, "none")) for r in rows]
            if any(key in r.keywords for r in rows) and len(set(names)) > 1:
                width = max(len(name) for name in names)
                cols.append(fits.Column(name=key, format=f"{width}A", array=np.array(names)))
        cols.append(fits.Column(name="EXPOSURE", format="D",
                                array=np.array([r.exposure for r in rows])))
        if any(np.ndim(r.backscale) for r in rows):
            cols.append(fits.Column(name="BACKSCAL", format=fmt("D"),
                                    array=stack([_per_channel(r.backscale, n, "backscale",
                                                              np.float64) for r in rows])))
        else:
            cols.append(fits.Column(name="BACKSCAL", format="D",
                                    array=np.array([r.backscale for r in rows])))
    elif np.ndim(rows[0].backscale):
        cols.append(fits.Column(name="BACKSCAL", format="D", array=rows[0].backscale))
    if any(np.ndim(r.areascale) for r in rows) or len({float(np.mean(r.areascale))
                                                          for r in rows}) > 1:
        cols.append(fits.Column(name="AREASCAL", format=fmt("D"), array=stack(
            [_per_channel(r.areascale, n, "areascale", np.float64) for r in rows])))
    return cols


def _spectrum_hdu(rows: list[PHA], type2: bool) -> fits.BinTableHDU:
    first = rows[0]
    n = first.n_channels
    if any(r.n_channels != n for r in rows):
        raise ValueError("all rows of a PHA type II file must have the same number of channels")
    if any(r.poisson_errors != first.poisson_errors for r in rows) or any(
        (r.sys_err is None) != (first.sys_err is None) for r in rows
    ):
        raise ValueError("all rows of a PHA type II file must have the same kind of errors")
    hdu = fits.BinTableHDU.from_columns(_spectrum_columns(rows, type2), name="SPECTRUM")
    h = hdu.header
    per_row = {c.name for c in hdu.columns}
    for key, value in first.keywords.items():
        if key not in per_row and key != "HDUCLAS2" and isinstance(value, (str, int, float, bool)):
            h[key] = value
    h["HDUCLASS"] = "OGIP"
    h["HDUCLAS1"] = "SPECTRUM"
    h["HDUCLAS2"] = first.keywords.get("HDUCLAS2", "TOTAL")
    h["HDUCLAS3"] = "COUNT"
    h["HDUCLAS4"] = "TYPE:II" if type2 else "TYPE:I"
    h["HDUVERS"] = "1.2.1"
    h["POISSERR"] = bool(first.poisson_errors)
    h["DETCHANS"] = n
    h["TLMIN1"] = int(np.min(first.channels))
    h["TLMAX1"] = int(np.max(first.channels))
    if not type2:
        h["EXPOSURE"] = first.exposure
        if np.ndim(first.backscale) == 0:
            h["BACKSCAL"] = first.backscale
    if "AREASCAL" not in per_row:
        h["AREASCAL"] = float(first.areascale)
    h.setdefault("CORRSCAL", 1.0)
    for key in ("BACKFILE", "RESPFILE", "ANCRFILE", "CORRFILE"):
        h.setdefault(key, "none")
    h.setdefault("CHANTYPE", "PI")
    return hdu


def _ebounds_hdu(pha: PHA) -> fits.BinTableHDU:
    cols = [
        fits.Column(name="CHANNEL", format="J", array=pha.channels),
        fits.Column(name="E_MIN", format="D", array=pha.ebounds[:, 0]),
        fits.Column(name="E_MAX", format="D", array=pha.ebounds[:, 1]),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="RESPONSE", HDUCLAS2="EBOUNDS", DETCHANS=pha.n_channels)
    return hdu


def write_pha(target: Any, pha: PHA, overwrite: bool = False) -> None:
    """Write one spectrum as an OGIP PHA type I file (with EBOUNDS when `pha.ebounds` is set).

    `target` is a path or a writable binary file object. Reading the file back with `read_pha`
    gives the same counts, errors, flags, exposure, backscale and channel numbers.
    """
    hdus = [fits.PrimaryHDU(), _spectrum_hdu([pha], type2=False)]
    if pha.ebounds is not None:
        hdus.append(_ebounds_hdu(pha))
    fits.HDUList(hdus).writeto(target, overwrite=overwrite)


def write_pha2(target: Any, rows: list[PHA], overwrite: bool = False) -> None:
    """Write several spectra of one instrument as the rows of an OGIP PHA type II file."""
    rows = list(rows)
    if not rows:
        raise ValueError("write_pha2 needs at least one spectrum")
    hdus = [fits.PrimaryHDU(), _spectrum_hdu(rows, type2=True)]
    if rows[0].ebounds is not None:
        hdus.append(_ebounds_hdu(rows[0]))
    fits.HDUList(hdus).writeto(target, overwrite=overwrite)
