"""OGIP response files (CAL/GEN/92-002): RMF/RSP matrices with EBOUNDS, and ARFs.

Reading gives dense numpy matrices of shape ``(nphot, nchan)``; writing stores the matrix
compressed, one group per run of non-zero channels, in variable-length columns.
"""

from __future__ import annotations

import dataclasses
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
    has_column,
    header_integer,
    header_value,
    open_fits,
    split_source,
)
from .limits import ENERGY_RTOL, MAX_AREA, MAX_ENERGY, NEGATIVE_AREA_TOLERANCE

_MATRIX = dict(
    names=("SPECRESP MATRIX", "MATRIX", "SPECRESP_MATRIX", "RSP_MATRIX"),
    hduclas={"HDUCLAS1": ("RESPONSE",), "HDUCLAS2": ("RSP_MATRIX",)},
)
_EBOUNDS = dict(names=("EBOUNDS",), hduclas={"HDUCLAS2": ("EBOUNDS",)})
_SPECRESP = dict(names=("SPECRESP",), hduclas={"HDUCLAS2": ("SPECRESP",)})
_KEYWORDS = ("TELESCOP", "INSTRUME", "DETNAM", "FILTER", "CHANTYPE", "HDUCLAS3")


def check_response_shapes(phbin: np.ndarray, chbin: np.ndarray, drm: np.ndarray | None = None,
                          channels: Any = None) -> np.ndarray:
    """The one shape check of a response (the reader's `RMF` and the containers of
    `bayspec_jax.data.response` call it): `phbin` ``(nphot, 2)``, `chbin` ``(nchan, 2)``, `drm`
    ``(nphot, nchan)`` (when given), `channels` ``(nchan,)``. Returns the channel numbers as
    int64 (``1..nchan`` when `channels` is `None`); a `ValueError` names what is wrong."""
    phbin, chbin = np.asarray(phbin), np.asarray(chbin)
    if phbin.ndim != 2 or phbin.shape[1] != 2:
        raise ValueError(f"phbin must have shape (nphot, 2), got {phbin.shape}")
    if chbin.ndim != 2 or chbin.shape[1] != 2:
        raise ValueError(f"chbin must have shape (nchan, 2), got {chbin.shape}")
    if drm is not None and np.shape(drm) != (phbin.shape[0], chbin.shape[0]):
        raise ValueError(
            f"drm must have shape (nphot, nchan) = ({phbin.shape[0]}, {chbin.shape[0]}), "
            f"got {np.shape(drm)}"
        )
    channels = np.arange(1, chbin.shape[0] + 1) if channels is None else channels
    channels = np.array(channels, dtype=np.int64)
    if channels.shape != (chbin.shape[0],):
        raise ValueError(f"channels must have shape ({chbin.shape[0]},), got {channels.shape}")
    return channels


@dataclasses.dataclass(frozen=True, eq=False)
class RMF:
    """A response matrix as read from an RMF or RSP file (host-side numpy).

    **Fields:**

    - `phbin`: photon energy bins ``(nphot, 2)`` [keV] (ENERG_LO, ENERG_HI).
    - `chbin`: channel energy bounds ``(nchan, 2)`` [keV] (EBOUNDS E_MIN, E_MAX).
    - `drm`: the dense matrix ``(nphot, nchan)`` (cm^2 for an RSP, probabilities for an RMF).
    - `channels`: channel numbers ``(nchan,)``.
    - `keywords`, `file`, `extver`: descriptive keywords and where it came from.
    - `chbin_dtype`, `phbin_dtype`: the precision the file stored the energies in
        (``"float32"`` for FITS E columns); bayspec computes with the energies in it.
    """

    phbin: np.ndarray
    chbin: np.ndarray
    drm: np.ndarray
    channels: np.ndarray | None = None
    chbin_dtype: str = "float64"
    phbin_dtype: str = "float64"
    keywords: dict = dataclasses.field(default_factory=dict)
    file: str | None = None
    extver: int | None = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        phbin = np.array(self.phbin, dtype=np.float64)
        chbin = np.array(self.chbin, dtype=np.float64)
        drm = np.array(self.drm, dtype=np.float64)
        channels = check_response_shapes(phbin, chbin, drm, self.channels)
        set_("phbin", phbin)
        set_("chbin", chbin)
        set_("drm", drm)
        set_("channels", channels)
        set_("keywords", dict(self.keywords))

    @property
    def first_channel(self) -> int:
        """The number of the first channel (EBOUNDS CHANNEL, else TLMIN of F_CHAN, else 1)."""
        return int(self.channels[0])


@dataclasses.dataclass(frozen=True, eq=False)
class ARF:
    """An effective-area curve as read from an ARF file (host-side numpy).

    **Fields:**

    - `phbin`: photon energy bins ``(nphot, 2)`` [keV].
    - `specresp`: effective area per bin ``(nphot,)`` [cm^2].
    - `keywords`, `file`, `extver`: descriptive keywords and where it came from.
    - `phbin_dtype`: the precision the file stored the energies in.
    """

    phbin: np.ndarray
    specresp: np.ndarray
    phbin_dtype: str = "float64"
    keywords: dict = dataclasses.field(default_factory=dict)
    file: str | None = None
    extver: int | None = None

    def __post_init__(self):
        phbin = np.array(self.phbin, dtype=np.float64)
        specresp = np.array(self.specresp, dtype=np.float64)
        if phbin.ndim != 2 or phbin.shape[1] != 2:
            raise ValueError(f"phbin must have shape (nphot, 2), got {phbin.shape}")
        if specresp.shape != (phbin.shape[0],):
            raise ValueError(f"specresp must have shape ({phbin.shape[0]},), got {specresp.shape}")
        object.__setattr__(self, "phbin", phbin)
        object.__setattr__(self, "specresp", specresp)
        object.__setattr__(self, "keywords", dict(self.keywords))


# ----------------------------------------------------------------------------------------------
# reading


def read_rmf(source: Any, extver: int | None = None) -> RMF:
    """Read the response matrix and EBOUNDS of an OGIP RMF or RSP file.

    **Arguments:**

    - `source`: a path, ``"path:extver"``, a `pathlib.Path`, a binary file object or a
        ``(file, extver)`` tuple. Gzip-compressed files are read.
    - `extver`: select the matrix extension with this EXTVER (RSP2 files; a matrix without an
        EXTVER keyword is EXTVER 1). `None` takes the first matrix.

    **Returns:**

    An `RMF` with the dense matrix. Fixed-length and variable-length (P/Q) F_CHAN, N_CHAN and
    MATRIX columns are read, with N_GRP groups per row (rows with no group are zero), and the
    channel offset is TLMIN of F_CHAN, else the first EBOUNDS CHANNEL, else 1.
    """
    target, extver, label = split_source(source, extver)
    with open_fits(target, label) as hdul:
        matrix_hdu = find_hdu(hdul, label=label, what="response matrix", extver=extver, **_MATRIX)
        ebounds_hdu = find_hdu(hdul, label=label, what="EBOUNDS", **_EBOUNDS)
        chbin, channels = _read_ebounds(ebounds_hdu, label)
        phbin = _read_energies(matrix_hdu, label)
        detchans = header_integer(matrix_hdu, "DETCHANS", label)
        if detchans is not None and detchans != chbin.shape[0]:
            raise OGIPError(
                f"DETCHANS = {detchans} but EBOUNDS has {chbin.shape[0]} channels",
                file=label, extension=matrix_hdu.name, column="DETCHANS",
            )
        offset = column_tlmin(matrix_hdu, "F_CHAN", label)
        if offset is None:
            offset = int(channels[0]) if channels is not None else 1
        drm = _dense_matrix(matrix_hdu, phbin.shape[0], chbin.shape[0], offset, label)
        keywords = {k: header_value(matrix_hdu, k, label) for k in _KEYWORDS
                    if k in matrix_hdu.header}
        if channels is None:
            channels = np.arange(offset, offset + chbin.shape[0])
        return RMF(phbin=phbin, chbin=chbin, drm=drm, channels=channels, keywords=keywords,
                   file=label, extver=extver,
                   chbin_dtype=_float_dtype(chbin, ebounds_hdu, ("E_MIN", "E_MAX"), label),
                   phbin_dtype=_float_dtype(phbin, matrix_hdu, ("ENERG_LO", "ENERG_HI"), label))


def read_arf(source: Any, extver: int | None = None) -> ARF:
    """Read an OGIP ARF (SPECRESP extension: ENERG_LO, ENERG_HI, SPECRESP).

    `source` and `extver` as for `read_rmf` (``"path:extver"`` selects an ARF2 extension).
    """
    target, extver, label = split_source(source, extver)
    with open_fits(target, label) as hdul:
        hdu = find_hdu(hdul, label=label, what="SPECRESP", extver=extver, **_SPECRESP)
        phbin = _read_energies(hdu, label)
        specresp = as_float_array(column(hdu, "SPECRESP", label), label, hdu.name,
                                  "SPECRESP").ravel()
        if specresp.shape != (phbin.shape[0],):
            raise OGIPError(f"expected one value per energy bin ({phbin.shape[0]})", file=label,
                            extension=hdu.name, column="SPECRESP")
        if not np.all(np.isfinite(specresp)):
            raise OGIPError("effective areas must be finite", file=label, extension=hdu.name,
                            column="SPECRESP")
        _check_area(specresp, label, hdu.name, "SPECRESP",
                    NEGATIVE_AREA_TOLERANCE * max(float(specresp.max()), 0.0))
        if np.any(specresp < 0):
            warnings.warn(
                f"{label} [{hdu.name}]: {int(np.sum(specresp < 0))} negative effective areas "
                f"(min {specresp.min():.4g} cm^2) kept as they are",
                stacklevel=2,
            )
        keywords = {k: header_value(hdu, k, label) for k in _KEYWORDS if k in hdu.header}
        return ARF(phbin=phbin, specresp=specresp, keywords=keywords, file=label, extver=extver,
                   phbin_dtype=_float_dtype(phbin, hdu, ("ENERG_LO", "ENERG_HI"), label))


def _float_dtype(bounds: np.ndarray, hdu: Any, names: tuple[str, str], label: str) -> str:
    """``"float32"`` when both bound columns are single precision (FITS ``E``) and the bounds
    are finite in it, else ``"float64"``."""
    single = all(
        np.asarray(column(hdu, name, label)).dtype.kind == "f"
        and np.asarray(column(hdu, name, label)).dtype.itemsize <= 4
        for name in names
    )
    if single and np.all(np.isfinite(bounds.astype(np.float32))):
        return "float32"
    return "float64"


def _read_energies(hdu: Any, label: str) -> np.ndarray:
    """ENERG_LO/ENERG_HI as ``(nphot, 2)`` [keV]: finite, 0 <= LO < HI <= `MAX_ENERGY`, and
    increasing without overlaps (HI[i] <= LO[i+1] up to `ENERGY_RTOL`; gaps are allowed)."""
    lo = as_float_array(column(hdu, "ENERG_LO", label), label, hdu.name, "ENERG_LO").ravel()
    hi = as_float_array(column(hdu, "ENERG_HI", label), label, hdu.name, "ENERG_HI").ravel()
    if lo.size == 0:
        raise OGIPError("no energy bins (the table is empty)", file=label, extension=hdu.name)
    fail = _bin_checker(label, hdu.name, "ENERG_LO/ENERG_HI")
    _check_bins(lo, hi, "ENERG_LO", "ENERG_HI", "bin", fail)
    overlap = np.flatnonzero(hi[:-1] - lo[1:] > ENERGY_RTOL * np.maximum(hi[:-1], lo[1:]))
    if overlap.size:
        i = int(overlap[0])
        fail(f"bins {i} and {i + 1} overlap or are out of order (ENERG_HI[{i}] = "
             f"{hi[i].item()!r} > ENERG_LO[{i + 1}] = {lo[i + 1].item()!r}; {overlap.size} such "
             "pairs): the photon grid must increase without overlaps")
    return np.stack([lo, hi], axis=1)


def _bin_checker(label: str, ext: str, name: str):
    """A function raising an `OGIPError` about column `name` of `ext` with a message."""
    def fail(message: str):
        raise OGIPError(message, file=label, extension=ext, column=name)
    return fail


def _check_bins(lo: np.ndarray, hi: np.ndarray, lo_name: str, hi_name: str, what: str,
                fail: Any) -> None:
    """Each bin finite, ``0 <= lo < hi <= MAX_ENERGY`` (zero-width or reversed bins fail)."""
    def first(bad: np.ndarray) -> int:
        return int(np.flatnonzero(bad)[0])

    finite = np.isfinite(lo) & np.isfinite(hi)
    if not np.all(finite):
        i = first(~finite)
        fail(f"energies must be finite ({what} {i}: {lo_name} = {lo[i].item()!r}, {hi_name} = "
             f"{hi[i].item()!r})")
    if np.any(lo < 0):
        i = first(lo < 0)
        fail(f"every {what} needs {lo_name} >= 0 ({what} {i}: {lo_name} = {lo[i].item()!r})")
    if np.any(hi <= lo):
        i = first(hi <= lo)
        fail(f"every {what} needs {lo_name} < {hi_name} (a positive width; {what} {i}: "
             f"{lo_name} = {lo[i].item()!r}, {hi_name} = {hi[i].item()!r}; "
             f"{int(np.sum(hi <= lo))} such)")
    if np.any(hi > MAX_ENERGY):
        i = first(hi > MAX_ENERGY)
        fail(f"{hi_name} = {hi[i].item()!r} keV ({what} {i}) is above {MAX_ENERGY:g} keV, "
             "beyond what the arithmetic of a fit can carry")


def _read_ebounds(hdu: Any, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    e_min = as_float_array(column(hdu, "E_MIN", label), label, hdu.name, "E_MIN").ravel()
    e_max = as_float_array(column(hdu, "E_MAX", label), label, hdu.name, "E_MAX").ravel()
    if e_min.size == 0:
        raise OGIPError("no channels (the table is empty)", file=label, extension=hdu.name)
    # Per channel only: the channel bounds need not increase (the GECAM example ME/me.rsp2
    # has out-of-order E_MIN/E_MAX in its top channels, which its spectra flag bad).
    _check_bins(e_min, e_max, "E_MIN", "E_MAX", "channel",
                _bin_checker(label, hdu.name, "E_MIN/E_MAX"))
    channels = None
    if has_column(hdu, "CHANNEL"):
        channels = as_int_array(column(hdu, "CHANNEL", label), label, hdu.name,
                                "CHANNEL").ravel()
        jumps = np.flatnonzero(np.diff(channels) != 1)
        if channels.size != e_min.size or jumps.size:
            where = f"at row {int(jumps[0]) + 1}" if jumps.size else f"{channels.size} values"
            raise OGIPError(
                f"CHANNEL numbers must increase by 1 from row to row, one per channel ({where}: "
                "the matrix columns are laid out in EBOUNDS row order)",
                file=label, extension=hdu.name, column="CHANNEL",
            )
    return np.stack([e_min, e_max], axis=1), channels


def _rows(values: Any, nrows: int) -> list[np.ndarray]:
    """A column as one 1-d array per row (scalar columns give length-1 rows)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.ndim == 1:
            return [values[i : i + 1] for i in range(nrows)]
        return [values[i] for i in range(nrows)]
    return [np.atleast_1d(np.asarray(values[i])) for i in range(nrows)]


def _dense_matrix(hdu: Any, nphot: int, nchan: int, offset: int, label: str) -> np.ndarray:
    ext = hdu.name
    data = hdu.data
    if data is None or len(data) != nphot:
        raise OGIPError("the matrix table is empty", file=label, extension=ext)
    vla = {name: _is_vla(hdu, name) for name in ("F_CHAN", "N_CHAN", "MATRIX")}
    f_chan = _rows(column(hdu, "F_CHAN", label), nphot)
    n_chan = _rows(column(hdu, "N_CHAN", label), nphot)
    matrix = _rows(column(hdu, "MATRIX", label), nphot)
    if has_column(hdu, "N_GRP"):
        n_grp = as_int_array(column(hdu, "N_GRP", label), label, ext, "N_GRP").ravel()
    else:
        n_grp = np.array([row.size for row in f_chan])
    for name, groups in (("F_CHAN", f_chan), ("N_CHAN", n_chan)):  # integers, checked at once
        as_int_array(np.concatenate([g[: max(int(k), 0)] for g, k in zip(groups, n_grp)] or [[]]),
                     label, ext, name)
    row_ids, col_ids, values = [], [], []
    for i in range(nphot):
        k = int(n_grp[i])
        if k < 0 or k > f_chan[i].size or k > n_chan[i].size:
            raise OGIPError(
                f"row {i}: N_GRP = {k} but F_CHAN/N_CHAN hold {f_chan[i].size}/{n_chan[i].size}"
                " groups", file=label, extension=ext, column="N_GRP",
            )
        starts = f_chan[i][:k].astype(np.int64) - offset
        lengths = n_chan[i][:k].astype(np.int64)
        total = int(lengths.sum())
        row = np.asarray(matrix[i], dtype=np.float64).ravel()
        if np.any(lengths < 0) or np.any(starts < 0) or np.any(starts + lengths > nchan):
            raise OGIPError(
                f"row {i}: channel groups (F_CHAN {(starts + offset).tolist()}, N_CHAN "
                f"{lengths.tolist()}, first channel {offset}) fall outside the {nchan} EBOUNDS "
                "channels", file=label, extension=ext, column="F_CHAN",
            )
        if row.size < total or (vla["MATRIX"] and row.size != total) or (
            row.size > total and np.any(row[total:] != 0)
        ):
            raise OGIPError(
                f"row {i}: MATRIX holds {row.size} values but N_CHAN adds up to {total}",
                file=label, extension=ext, column="MATRIX",
            )
        if total:
            cols = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
            row_ids.append(np.full(total, i))
            col_ids.append(cols)
            values.append(row[:total])
    drm = np.zeros((nphot, nchan), dtype=np.float64)
    if values:
        values_all = np.concatenate(values)
        if not np.all(np.isfinite(values_all)):
            raise OGIPError("matrix values must be finite", file=label, extension=ext,
                            column="MATRIX")
        drm[np.concatenate(row_ids), np.concatenate(col_ids)] = values_all
    _check_area(drm, label, ext, "MATRIX", 0.0)
    return drm


def _check_area(values: np.ndarray, label: str, ext: str, name: str, negative_ok: float) -> None:
    """Finite `values` (a matrix or an effective-area curve): some > 0, none above `MAX_AREA`,
    none below ``-negative_ok``."""
    def fail(message: str):
        raise OGIPError(message, file=label, extension=ext, column=name)

    def where(index: int) -> str:
        position = np.unravel_index(index, values.shape)
        return ", ".join(f"{axis} {i}" for axis, i in zip(("row", "channel index"), position))

    if values.size == 0 or not np.any(values > 0):
        fail(f"no effective area: every {name} value is 0 or negative")
    low = int(np.argmin(values))
    if values.flat[low] < -negative_ok:
        fail(f"{int(np.sum(values < -negative_ok))} negative values (min "
             f"{values.flat[low].item()!r} at {where(low)}"
             + (f", below -{negative_ok:.4g} = -{NEGATIVE_AREA_TOLERANCE:g} x the peak"
                if negative_ok else "")
             + "): a response cannot be negative")
    high = int(np.argmax(values))
    if values.flat[high] > MAX_AREA:
        fail(f"value {values.flat[high].item()!r} at {where(high)} is above {MAX_AREA:g} (cm^2 "
             "for an effective area), beyond any instrument and what the arithmetic of a fit can "
             "carry")


def _is_vla(hdu: Any, name: str) -> bool:
    fmt = str(hdu.columns[hdu.columns.names[[n.upper() for n in hdu.columns.names].index(
        name)]].format) if has_column(hdu, name) else ""
    return "P" in fmt.upper() or "Q" in fmt.upper()


# ----------------------------------------------------------------------------------------------
# writing


def _fits_float(dtype: str) -> str:
    """The FITS column format that keeps energies in their recorded precision."""
    return "E" if dtype == "float32" else "D"


def _matrix_hdu(rmf: RMF, name: str, hduclas3: str, extver: int) -> fits.BinTableHDU:
    f_chan, n_chan, n_grp, matrix = [], [], [], []
    first = int(rmf.channels[0])
    for row in rmf.drm:
        nonzero = np.concatenate([[False], row != 0, [False]])
        edges = np.flatnonzero(np.diff(nonzero.astype(np.int8)))
        starts, stops = edges[0::2], edges[1::2]
        f_chan.append((starts + first).astype(np.int32))
        n_chan.append((stops - starts).astype(np.int32))
        n_grp.append(starts.size)
        matrix.append(np.concatenate([row[a:b] for a, b in zip(starts, stops)]) if starts.size
                      else np.zeros(0))
    energy = _fits_float(rmf.phbin_dtype)
    cols = [
        fits.Column(name="ENERG_LO", format=energy, unit="keV", array=rmf.phbin[:, 0]),
        fits.Column(name="ENERG_HI", format=energy, unit="keV", array=rmf.phbin[:, 1]),
        fits.Column(name="N_GRP", format="J", array=np.array(n_grp, dtype=np.int32)),
        fits.Column(name="F_CHAN", format="PJ()", array=np.array(f_chan, dtype=object)),
        fits.Column(name="N_CHAN", format="PJ()", array=np.array(n_chan, dtype=object)),
        fits.Column(name="MATRIX", format="PD()", array=np.array(matrix, dtype=object)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name=name)
    h = hdu.header
    for key, value in rmf.keywords.items():
        if key != "HDUCLAS3" and isinstance(value, (str, int, float, bool)):
            h[key] = value
    h.update(HDUCLASS="OGIP", HDUCLAS1="RESPONSE", HDUCLAS2="RSP_MATRIX", HDUCLAS3=hduclas3,
             HDUVERS="1.3.0", DETCHANS=rmf.chbin.shape[0], EXTVER=extver, TLMIN4=first,
             TLMAX4=int(rmf.channels[-1]))
    h.setdefault("CHANTYPE", "PI")
    return hdu


def _ebounds_hdu(rmf: RMF) -> fits.BinTableHDU:
    energy = _fits_float(rmf.chbin_dtype)
    cols = [
        fits.Column(name="CHANNEL", format="J", array=rmf.channels),
        fits.Column(name="E_MIN", format=energy, unit="keV", array=rmf.chbin[:, 0]),
        fits.Column(name="E_MAX", format=energy, unit="keV", array=rmf.chbin[:, 1]),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="RESPONSE", HDUCLAS2="EBOUNDS",
                      HDUVERS="1.2.0", DETCHANS=rmf.chbin.shape[0], TLMIN1=int(rmf.channels[0]),
                      TLMAX1=int(rmf.channels[-1]))
    return hdu


def write_rmf(target: Any, rmf: RMF | list[RMF], kind: str = "rmf", overwrite: bool = False) -> None:
    """Write one matrix (or several, as EXTVER 1, 2... of an RSP2 file) with its EBOUNDS.

    **Arguments:**

    - `target`: a path or a writable binary file object.
    - `rmf`: an `RMF`, or a list of them sharing one EBOUNDS.
    - `kind`: ``"rmf"`` (extension MATRIX, HDUCLAS3 REDIST) or ``"rsp"`` (SPECRESP MATRIX, FULL).
    """
    matrices = rmf if isinstance(rmf, (list, tuple)) else [rmf]
    if kind not in ("rmf", "rsp"):
        raise ValueError(f"kind must be 'rmf' or 'rsp', got {kind!r}")
    name, hduclas3 = ("MATRIX", "REDIST") if kind == "rmf" else ("SPECRESP MATRIX", "FULL")
    hdus = [fits.PrimaryHDU()]
    hdus += [_matrix_hdu(m, name, hduclas3, i + 1) for i, m in enumerate(matrices)]
    hdus.append(_ebounds_hdu(matrices[0]))
    fits.HDUList(hdus).writeto(target, overwrite=overwrite)


def write_arf(target: Any, arf: ARF | list[ARF], overwrite: bool = False) -> None:
    """Write one ARF (or several, as EXTVER 1, 2... of an ARF2 file)."""
    curves = arf if isinstance(arf, (list, tuple)) else [arf]
    hdus = [fits.PrimaryHDU()]
    for i, curve in enumerate(curves):
        energy = _fits_float(curve.phbin_dtype)
        cols = [
            fits.Column(name="ENERG_LO", format=energy, unit="keV", array=curve.phbin[:, 0]),
            fits.Column(name="ENERG_HI", format=energy, unit="keV", array=curve.phbin[:, 1]),
            fits.Column(name="SPECRESP", format="D", unit="cm**2", array=curve.specresp),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
        for key, value in curve.keywords.items():
            if isinstance(value, (str, int, float, bool)):
                hdu.header[key] = value
        hdu.header.update(HDUCLASS="OGIP", HDUCLAS1="RESPONSE", HDUCLAS2="SPECRESP",
                          HDUVERS="1.1.0", EXTVER=i + 1)
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(target, overwrite=overwrite)
