"""A readable account of what an OGIP file holds (used by ``bayspec-jax info``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OGIPError
from .fitsfile import find_hdus, is_table, open_fits, split_source
from .pha import count_pha_rows, read_pha
from .response import read_arf, read_rmf


def describe_file(source: Any) -> str:
    """Describe a PHA, RMF/RSP or ARF file: extensions, channels, exposure, counts, quality.

    Raises `OGIPError` when the file cannot be read or holds none of these.
    """
    target, index, label = split_source(source)
    lines = [f"{label}"]
    with open_fits(target, label) as hdul:
        for i, hdu in enumerate(hdul):
            shape = f"{len(hdu.data)} rows" if is_table(hdu) and hdu.data is not None else ""
            kind = "/".join(
                str(hdu.header[k]) for k in ("HDUCLAS1", "HDUCLAS2") if k in hdu.header
            )
            extver = f" EXTVER {hdu.header['EXTVER']}" if "EXTVER" in hdu.header else ""
            lines.append(f"  [{i}] {hdu.name}{extver}  {kind}  {shape}".rstrip())
        has_spectrum = bool(find_hdus(hdul, ("SPECTRUM",), {"HDUCLAS1": ("SPECTRUM",)}))
        has_matrix = bool(
            find_hdus(hdul, ("SPECRESP MATRIX", "MATRIX", "SPECRESP_MATRIX", "RSP_MATRIX"),
                      {"HDUCLAS2": ("RSP_MATRIX",)})
        )
        has_arf = bool(find_hdus(hdul, ("SPECRESP",), {"HDUCLAS2": ("SPECRESP",)}))
    if has_spectrum:
        rows = count_pha_rows(source)
        picks = [index] if index is not None else ([None] if rows == 1 else list(range(rows)))
        if rows > 1:
            lines.append(f"  PHA type II: {rows} spectra")
        for row in picks[:12]:
            pha = read_pha(target if row is None else (target, row))
            good = pha.quality == 0
            where = "" if row is None else f"row {row}: "
            errors = "Poisson" if pha.poisson_errors else "STAT_ERR"
            lines.append(
                f"  {where}{pha.n_channels} channels ({pha.channels[0]}..{pha.channels[-1]}), "
                f"exposure {pha.exposure:.6g} s, counts {np.nansum(pha.counts[good]):.6g} in "
                f"{int(good.sum())} good channels ({int((~good).sum())} bad), "
                f"{int(np.sum(pha.grouping == 1))} group starts, errors {errors}, "
                f"backscale {np.mean(pha.backscale):.6g}"
            )
        if len(picks) > 12:
            lines.append(f"  ... {len(picks) - 12} more rows")
    if has_matrix:
        rmf = read_rmf((target, index) if index is not None else target)
        lines.append(
            f"  response: {rmf.drm.shape[0]} photon bins ({rmf.phbin[0, 0]:.4g}-"
            f"{rmf.phbin[-1, 1]:.4g} keV) x {rmf.drm.shape[1]} channels "
            f"({rmf.chbin[0, 0]:.4g}-{rmf.chbin[-1, 1]:.4g} keV), sum {rmf.drm.sum():.6g}"
        )
    if has_arf:
        arf = read_arf((target, index) if index is not None else target)
        lines.append(
            f"  ARF: {arf.phbin.shape[0]} photon bins ({arf.phbin[0, 0]:.4g}-"
            f"{arf.phbin[-1, 1]:.4g} keV), max area {arf.specresp.max():.6g} cm^2"
        )
    if not (has_spectrum or has_matrix or has_arf):
        raise OGIPError("holds no SPECTRUM, response matrix or SPECRESP extension", file=label)
    return "\n".join(lines)
