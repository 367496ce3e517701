"""Fermi's attitude and position at a time, read from a trigdat or poshist file.

gbm-drm-gen builds a response for one spacecraft state: the attitude quaternion and the
Earth-centred position at the time asked for, interpolated in the trigdat or poshist file by
gbmgeometry's `PositionInterpolator`. This module does the same with numpy and
astropy.io.fits, to the last bits of gbmgeometry's numbers:

- trigdat: extension ``EVNTRATE``, columns ``TIME`` (start of each accumulation, MET),
    ``SCATTITD`` (quaternion) and ``EIC`` (position, km), header ``TRIGTIME``; the time axis
    is ``TIME - TRIGTIME``.
- poshist: extension ``GLAST POS HIST``, columns ``SCLK_UTC`` (MET), ``QSJ_1`` to ``QSJ_4``
    and ``POS_X``, ``POS_Y``, ``POS_Z`` (metres); the time axis is ``SCLK_UTC - T0`` when a
    `T0` is given, the MET itself otherwise.
- Rows are put in time order with a stable sort (rows at equal times keep their file order)
    and every component is interpolated linearly between the two rows around the time, with
    no normalisation of the quaternion. Times outside the rows' range are an error, as
    gbmgeometry's interpolator raises there too.

The host-side functions `spacecraft_axes` and `earth_direction` then give the spacecraft axes
and the direction of the Earth's centre in spacecraft coordinates, as gbm-drm-gen's
`DRMGen._compute_spacecraft_coordinates` does.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np
from astropy.io import fits

from ..io.errors import OGIPError

__all__ = [
    "POSHIST_EXTENSION",
    "SpacecraftState",
    "TRIGDAT_EXTENSION",
    "earth_direction",
    "spacecraft_axes",
    "spacecraft_state",
]

TRIGDAT_EXTENSION = "EVNTRATE"
"""The trigdat extension holding the time-tagged attitude and position."""

POSHIST_EXTENSION = "GLAST POS HIST"
"""The poshist extension holding the time-tagged attitude and position."""

_METRES_TO_KM = 0.001  # the factor gbmgeometry applies to poshist positions (metres)



class SpacecraftState(NamedTuple):
    """Fermi's attitude and position at one time.

    **Fields:**

    - `quaternion`: shape ``(4,)``, float64: the attitude quaternion in the file's order,
        ``(q1, q2, q3, q4)`` with the scalar part last, linearly interpolated and not
        renormalised (as gbmgeometry returns it).
    - `position`: shape ``(3,)``, float64: the spacecraft position in km, Earth-centred J2000
        (X, Y, Z). Trigdat files hold km; poshist files hold metres, converted here (gbmgeometry
        scales them by 0.001 too, so gbm-drm-gen's occultation test sees km in both cases).
    - `met`: the mission elapsed time of the state [s].
    """

    quaternion: np.ndarray
    position: np.ndarray
    met: float


class _StateTable(NamedTuple):
    """The time-ordered rows of a trigdat or poshist file."""

    label: str  # the file and extension, for messages
    time: np.ndarray  # (n,) float64, on the axis `time` is given in
    quaternions: np.ndarray  # (n, 4), the file's precision
    positions: np.ndarray  # (n, 3), the file's unit and precision
    reference_met: float | None  # MET of time 0, or None when the axis is MET itself
    axis_name: str  # what the time axis is, for messages


def spacecraft_state(
    trigdat: str | os.PathLike | None = None,
    poshist: str | os.PathLike | None = None,
    time: float = 0.0,
    T0: float | None = None,
) -> SpacecraftState:
    """The attitude and position at `time`, interpolated in a trigdat or a poshist file.

    **Arguments:**

    - `trigdat`: path to a trigdat FITS file; `time` is then relative to its trigger time
        (``TRIGTIME``). Give this or `poshist`, not both.
    - `poshist`: path to a poshist FITS file; `time` is then relative to `T0` when `T0` is
        given, the MET itself otherwise (gbmgeometry's ``from_poshist(file, T0)``).
    - `time`: the time of the state [s].
    - `T0`: the MET that poshist times are relative to; only with `poshist`.

    **Returns:**

    A `SpacecraftState`; its `met` is ``TRIGTIME + time``, ``T0 + time`` or `time`.

    **Raises:**

    `ValueError` for neither or both files, `T0` with a trigdat, a time that is not finite or
    outside the file's time range (the message gives the range); `FileNotFoundError` for a
    missing file; `OGIPError` (a `ValueError`) naming the file, extension and column for a file
    without the extension, columns or keyword expected.
    """
    if (trigdat is None) == (poshist is None):
        raise ValueError(
            "spacecraft_state needs exactly one of trigdat= and poshist=, got "
            + ("neither" if trigdat is None else "both")
        )
    if trigdat is not None and T0 is not None:
        raise ValueError(
            "T0 applies to poshist files only: trigdat times are relative to the file's TRIGTIME"
        )
    time = _as_time(time, "time")
    if trigdat is not None:
        table = _read_trigdat(trigdat)
        scale = None  # trigdat positions are in km already
    else:
        table = _read_poshist(poshist, None if T0 is None else _as_time(T0, "T0"))
        scale = _METRES_TO_KM
    start, stop = float(table.time[0]), float(table.time[-1])
    if not start <= time <= stop:
        raise ValueError(
            f"{table.label}: time {time!r} s is outside the file's range "
            f"[{start!r}, {stop!r}] s ({table.axis_name}); gbmgeometry does not extrapolate"
        )
    quaternion = _interpolate_linear(table.time, table.quaternions, time)
    position = _interpolate_linear(table.time, table.positions, time)
    if scale is not None:
        position = position * scale
    met = time if table.reference_met is None else table.reference_met + time
    return SpacecraftState(quaternion=quaternion, position=position, met=float(met))


def spacecraft_axes(quaternion) -> np.ndarray:
    """The spacecraft axes in the sky (J2000) frame, from the attitude quaternion.

    **Arguments:**

    - `quaternion`: shape ``(4,)``, ``(q1, q2, q3, q4)`` with the scalar part last, as in
        `SpacecraftState.quaternion`. It is used as given, not renormalised (gbm-drm-gen does
        not either, so each axis has length ``|q|**2``).

    **Returns:**

    Shape ``(3, 3)``, float64: rows are the spacecraft x, y and z axes (gbm-drm-gen's
    ``_scx``, ``_scy``, ``_scz``).
    """
    q = np.asarray(quaternion, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(f"quaternion must have shape (4,), got {q.shape}")
    v1, v2, v3, s = q
    v1v1, v2v2, v3v3, ss = v1 * v1, v2 * v2, v3 * v3, s * s
    return np.array(
        [
            [v1v1 - v2v2 - v3v3 + ss, 2.0 * (v1 * v2 + s * v3), 2.0 * (v1 * v3 - s * v2)],
            [2.0 * (v1 * v2 - s * v3), -v1v1 + v2v2 - v3v3 + ss, 2.0 * (v2 * v3 + s * v1)],
            [2.0 * (v1 * v3 + s * v2), 2.0 * (v2 * v3 - s * v1), -v1v1 - v2v2 + v3v3 + ss],
        ]
    )


def earth_direction(axes, position) -> tuple[float, float]:
    """The direction of the Earth's centre seen from the spacecraft, in spacecraft coordinates.

    **Arguments:**

    - `axes`: shape ``(3, 3)``, the spacecraft axes as rows (`spacecraft_axes`).
    - `position`: shape ``(3,)``, the spacecraft position (any unit; only its direction counts).

    **Returns:**

    ``(geo_az, geo_el)`` in degrees, gbm-drm-gen's ``_geo_az`` and ``_geo_el``: the azimuth from
    the spacecraft x axis towards y, in [0, 360) (a negative angle gets 360 added, as there,
    which can round to exactly 360 for an angle a hair below zero), and the elevation above the
    x-y plane, ``90 - zenith angle``.
    """
    axes = np.asarray(axes, dtype=np.float64)
    position = np.asarray(position, dtype=np.float64)
    if axes.shape != (3, 3):
        raise ValueError(f"axes must have shape (3, 3), got {axes.shape}")
    if position.shape != (3,):
        raise ValueError(f"position must have shape (3,), got {position.shape}")
    towards_earth = -(axes @ position)
    length = math.sqrt(float(towards_earth @ towards_earth))
    if not length > 0.0 or not math.isfinite(length):
        raise ValueError(f"the Earth direction is undefined for position {position} and these axes")
    x, y, z = towards_earth / length
    azimuth = math.atan2(y, x)
    if azimuth < 0.0:
        azimuth += 2.0 * math.pi
    zenith = math.atan2(math.sqrt(x * x + y * y), z)
    return math.degrees(azimuth), 90.0 - math.degrees(zenith)


# --- reading ------------------------------------------------------------------------------


def _as_time(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _open(path, kind: str):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{kind} must be a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file {path!r} not found")
    try:
        return path, fits.open(path, memmap=False)
    except OSError as err:
        raise OGIPError(f"not a readable FITS file ({err})", file=path) from err


def _extension(hdul, path: str, name: str):
    if name not in hdul:
        found = [hdu.name for hdu in hdul]
        raise OGIPError(f"no {name!r} extension (extensions: {found})", file=path)
    hdu = hdul[name]
    if not isinstance(hdu, fits.BinTableHDU):
        raise OGIPError("expected a binary table", file=path, extension=name)
    return hdu


def _column(hdu, path: str, name: str, width: int | None) -> np.ndarray:
    """A numeric column as a native-byte-order copy in its stored precision."""
    extension = hdu.name
    if name not in hdu.columns.names:
        raise OGIPError(
            f"column missing (columns: {hdu.columns.names})", file=path, extension=extension,
            column=name,
        )
    values = np.asarray(hdu.data[name])
    if values.dtype.kind not in "fiu":
        raise OGIPError(f"expected numbers, got dtype {values.dtype}", file=path,
                        extension=extension, column=name)
    expected = (len(hdu.data),) if width is None else (len(hdu.data), width)
    if values.shape != expected:
        raise OGIPError(f"expected shape {expected}, got {values.shape}", file=path,
                        extension=extension, column=name)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    values = values.astype(values.dtype.newbyteorder("="), copy=True)
    if not np.all(np.isfinite(values)):
        raise OGIPError("non-finite values", file=path, extension=extension, column=name)
    return values


def _ordered(kind, path, extension, time, quaternions, positions, reference_met,
             axis_name) -> _StateTable:
    if time.shape[0] < 2:
        raise OGIPError(f"expected at least 2 rows to interpolate between, got {time.shape[0]}",
                        file=path, extension=extension)
    order = np.argsort(time, kind="stable")
    return _StateTable(f"{kind} file {path!r}", time[order], quaternions[order], positions[order],
                       reference_met, axis_name)


def _read_trigdat(path) -> _StateTable:
    path, hdul = _open(path, "trigdat")
    with hdul:
        hdu = _extension(hdul, path, TRIGDAT_EXTENSION)
        if "TRIGTIME" not in hdu.header:
            raise OGIPError("header keyword missing: the trigger time (MET) is expected",
                            file=path, extension=TRIGDAT_EXTENSION, column="TRIGTIME")
        trigger_time = _as_time(hdu.header["TRIGTIME"], f"{path}: TRIGTIME")
        met = _column(hdu, path, "TIME", None).astype(np.float64)
        quaternions = _column(hdu, path, "SCATTITD", 4)
        positions = _column(hdu, path, "EIC", 3)
    return _ordered("trigdat", path, TRIGDAT_EXTENSION, met - trigger_time, quaternions,
                    positions, trigger_time, f"relative to TRIGTIME {trigger_time!r}")


def _read_poshist(path, T0: float | None) -> _StateTable:
    path, hdul = _open(path, "poshist")
    with hdul:
        hdu = _extension(hdul, path, POSHIST_EXTENSION)
        met = _column(hdu, path, "SCLK_UTC", None).astype(np.float64)
        quaternions = np.stack([_column(hdu, path, f"QSJ_{i}", None) for i in (1, 2, 3, 4)],
                               axis=1)
        positions = np.stack([_column(hdu, path, f"POS_{c}", None) for c in "XYZ"], axis=1)
    if T0 is None:
        time, axis_name = met, "MET"
    else:
        time, axis_name = met - T0, f"relative to T0 {T0!r}"
    return _ordered("poshist", path, POSHIST_EXTENSION, time, quaternions, positions, T0,
                    axis_name)


def _interpolate_linear(time: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    """Each column of `values` (rows at the sorted `time`) linearly interpolated at `t`.

    The interval is the one whose right end is the first row at or after `t` (the first row's
    interval for `t` at the start), so rows at equal times never form an interval. The step
    between the two rows is taken in the stored precision (float32 for trigdat), the rest in
    float64: the arithmetic of scipy's ``interp1d`` on gbmgeometry's arrays, so that results
    agree to the last bit also where the step is not exact in float32.
    """
    right = int(np.clip(np.searchsorted(time, t, side="left"), 1, time.shape[0] - 1))
    left = right - 1
    step = (values[right] - values[left]).astype(np.float64)
    slope = step / (time[right] - time[left])
    return slope * (t - time[left]) + values[left].astype(np.float64)
