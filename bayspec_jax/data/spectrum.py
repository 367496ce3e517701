"""Counts spectra: `Spectrum` and its file-backed kinds `Source` and `Background`."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float, Int

from .._table import Table
from ..io import PHA, OGIPError, locate_spectrum, read_pha
from ..params import Par
from ._convert import float_array, int_array, source_name


def _unit_factor() -> Par:
    return Par(1.0, frozen=True, comment="multiplicative factor")


class Spectrum(eqx.Module):
    """A counts spectrum over detector channels (immutable pytree).

    **Arguments:**

    - `counts`: counts per channel, shape ``(nchan,)``. Channels of bad quality may hold NaN.
    - `errors`: 1-sigma error per channel in counts, ``(nchan,)``.
    - `exposure`: exposure time [s], finite and > 0.
    - `quality`: OGIP QUALITY per channel (0 good); default all good.
    - `grouping`: OGIP GROUPING per channel (1 start, -1 continue, 0 none); default all 1.
    - `backscale`: BACKSCAL, a scalar or ``(nchan,)``; default 1.
    - `areascale`: AREASCAL, a scalar or ``(nchan,)``; default 1. It scales the effective
        area: the model counts are ``exposure * areascale * rate`` (see
        `DataUnit.host_efficiency`).
    - `factor`: a multiplicative `Par` (frozen at 1 by default).
    - `channels`: channel numbers ``(nchan,)``; default ``1..nchan``.
    - `name`: a label for tables and messages.
    - `poisson`: whether `errors` are Poisson (sqrt(counts)) rather than given.
    - `file`: where the spectrum was read from, if anywhere.

    Arrays are leaves (`jax.tree.leaves` returns them); names are static. Nothing passed in is
    modified: the arrays are copied. `__check_init__` validates the converted fields (the
    readers in `bayspec_jax.io` have checked file input already, naming file and column).
    """

    counts: Float[Array, " chan"]
    errors: Float[Array, " chan"]
    exposure: Float[Array, ""]
    quality: Int[Array, " chan"]
    grouping: Int[Array, " chan"]
    backscale: Float[Array, "*chan"]
    areascale: Float[Array, "*chan"]
    factor: Par
    channels: Int[Array, " chan"]
    name: str = eqx.field(static=True)
    poisson: bool = eqx.field(static=True)
    file: str | None = eqx.field(static=True)

    def __init__(
        self,
        counts,
        errors,
        exposure,
        quality=None,
        grouping=None,
        backscale=1.0,
        factor: Par | None = None,
        channels=None,
        name: str | None = None,
        poisson: bool = False,
        file: str | None = None,
        areascale=1.0,
    ):
        counts_np = np.array(counts, dtype=np.float64)
        n = counts_np.size
        self.counts = float_array(counts_np)
        self.errors = float_array(np.array(errors, dtype=np.float64))
        self.exposure = float_array(np.array(exposure, dtype=np.float64))
        self.quality = int_array(_flags(quality, 0, n, "quality"))
        self.grouping = int_array(_flags(grouping, 1, n, "grouping"))
        self.backscale = float_array(np.array(backscale, dtype=np.float64))
        self.areascale = float_array(np.array(areascale, dtype=np.float64))
        self.factor = _unit_factor() if factor is None else factor
        self.channels = int_array(np.arange(1, n + 1) if channels is None else np.array(channels))
        self.name = name if name is not None else type(self).__name__.lower()
        self.poisson = bool(poisson)
        self.file = file

    def __check_init__(self):
        counts, errors = np.asarray(self.counts), np.asarray(self.errors)
        if counts.ndim != 1 or errors.shape != counts.shape:
            raise ValueError(
                "counts and errors must be one-dimensional with the same shape, got "
                f"{counts.shape} and {errors.shape}"
            )
        n = counts.size
        exposure = np.asarray(self.exposure)
        if exposure.ndim != 0 or not np.isfinite(exposure) or exposure <= 0:
            raise ValueError(f"exposure must be a finite number > 0, got {exposure.tolist()!r}")
        for name in ("quality", "grouping", "channels"):
            shape = getattr(self, name).shape
            if shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {shape}")
        if not np.all(np.isin(np.asarray(self.grouping), (-1, 0, 1))):
            raise ValueError("grouping flags must be 1 (start), -1 (continue) or 0 (none)")
        for name, keyword in (("backscale", "BACKSCAL"), ("areascale", "AREASCAL")):
            scale = np.asarray(getattr(self, name))
            if scale.ndim not in (0, 1) or (scale.ndim == 1 and scale.shape != (n,)):
                raise ValueError(f"{name} must be a scalar or have shape ({n},), got "
                                 f"{scale.shape}")
            bad = ~np.isfinite(scale) | (scale <= 0)
            if np.any(bad):
                raise self.content_error(f"{name} must be finite and > 0", keyword,
                                         np.broadcast_to(bad, (n,)))
        good = np.asarray(self.quality) == 0
        if not np.all(np.isfinite(counts[good])):
            raise self.content_error("counts must be finite in good-quality channels "
                                     "(quality == 0)", "COUNTS", good & ~np.isfinite(counts))
        bad_errors = good & (~np.isfinite(errors) | (errors < 0))
        if np.any(bad_errors):
            raise self.content_error("errors must be finite and >= 0 in good-quality channels",
                                     "STAT_ERR", bad_errors)
        if not isinstance(self.factor, Par):
            raise ValueError(f"factor must be a bayspec_jax.Par, got {type(self.factor).__name__}")

    def content_error(self, message: str, column: str, channels: np.ndarray) -> ValueError:
        """The error for bad values of `column` in the channels of the mask `channels`: an
        `OGIPError` naming the file when the spectrum was read from one, else a `ValueError`
        naming the spectrum; both name the first channel numbers."""
        numbers = np.asarray(self.channels)[np.flatnonzero(channels)]
        where = (f" (channel{'s' if numbers.size > 1 else ''} {numbers[:10].tolist()}"
                 f"{'...' if numbers.size > 10 else ''})")
        if self.file is not None:
            return OGIPError(f"{type(self).__name__} {self.name}: {message}{where}",
                             file=self.file, column=column)
        return ValueError(f"{type(self).__name__} {self.name}: {message}{where}")

    # -- loaders ---------------------------------------------------------------------------

    @classmethod
    def from_pha(cls, pha: PHA, name: str | None = None) -> Spectrum:
        """Build from a `bayspec_jax.io.PHA` record."""
        return cls(
            counts=pha.counts, errors=pha.errors, exposure=pha.exposure, quality=pha.quality,
            grouping=pha.grouping, backscale=pha.backscale, channels=pha.channels,
            name=name if name is not None else source_name(pha.file, pha.row),
            poisson=pha.poisson_errors, file=pha.file, areascale=pha.areascale,
        )

    _part = "source"
    """Which spectrum of a file holding several this kind reads (`io.read_pha`'s `part`)."""

    @classmethod
    def _read(cls, file: Any, ii: int | None, need_row: bool | None,
              extension: str | None = None) -> PHA:
        """The `PHA` record this kind loads from `file` (see `_load`)."""
        target, row, label, extension = locate_spectrum(file, ii, extension)
        if need_row and row is None:
            raise OGIPError(
                f"{cls.__name__}: a row of the PHA type II file is needed: pass ii= or 'path:ii'",
                file=label,
            )
        return read_pha((target, row) if row is not None else target, extension=extension,
                        part=cls._part)

    @classmethod
    def _load(cls, file: Any, ii: int | None, need_row: bool | None,
              extension: str | None = None) -> Spectrum:
        pha = cls._read(file, ii, need_row, extension)
        return cls.from_pha(pha, name=source_name(pha.file, pha.row))

    def to_pha(self) -> PHA:
        """This spectrum as a `bayspec_jax.io.PHA` record, ready for `io.write_pha`."""
        return PHA(
            counts=np.asarray(self.counts), exposure=float(self.exposure),
            stat_err=None if self.poisson else np.asarray(self.errors),
            quality=np.asarray(self.quality), grouping=np.asarray(self.grouping),
            backscale=np.asarray(self.backscale), channels=np.asarray(self.channels),
            poisserr=self.poisson, areascale=np.asarray(self.areascale),
        )

    # -- views -----------------------------------------------------------------------------

    @property
    def n_channels(self) -> int:
        return int(self.counts.shape[0])

    @property
    def info(self) -> Table:
        """A one-row table: name, channels, counts (good channels), exposure, backscale."""
        good = np.asarray(self.quality) == 0
        return Table({
            "Name": [self.name],
            "Channels": [self.n_channels],
            "Counts": [float(np.nansum(np.asarray(self.counts)[good]))],
            "Exposure": [float(self.exposure)],
            "Backscale": [float(np.mean(np.asarray(self.backscale)))],
        })

    def __str__(self) -> str:
        return f"*** {type(self).__name__} ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>{type(self).__name__}</b></summary>{self.info.html}</details>"


def _flags(values: Any, default: int, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.int64)
    array = np.array(values)
    if array.ndim == 0:
        array = np.full(n, array)
    if not np.all(np.isfinite(array.astype(np.float64))) or np.any(array != np.round(array)):
        raise ValueError(f"{name} flags must be integers")
    return array.astype(np.int64)


class Source(Spectrum):
    """The spectrum of the source region (or time interval), read from OGIP PHA files."""

    @classmethod
    def from_src(cls, src_file: Any, extension: str | None = None) -> Source:
        """Load a PHA type I file (path, `pathlib.Path` or binary file object).

        In a file holding several spectra, the first that is not a background (HDUCLAS2 =
        'BKG'), or the one `extension` (or ``"path{NAME}"``) names by HDUCLAS2 or EXTNAME."""
        return cls._load(src_file, None, need_row=False, extension=extension)

    @classmethod
    def from_src2(cls, src_file: Any, ii: int | None = None,
                  extension: str | None = None) -> Source:
        """Load row `ii` (0-based) of a PHA type II file; ``"path:ii"`` also works."""
        return cls._load(src_file, ii, need_row=True, extension=extension)

    @classmethod
    def from_plain(cls, src_file: Any, ii: int | None = None,
                   extension: str | None = None) -> Source:
        """Load a PHA type I file, or a row of a type II file when `ii` or ``"path:ii"`` is given."""
        return cls._load(src_file, ii, need_row=None, extension=extension)


class Background(Spectrum):
    """The background spectrum, read from OGIP PHA files.

    A file that holds several spectra (a Chandra ``pha3`` file: the source, and its background
    in an extension with HDUCLAS2 = 'BKG') gives its HDUCLAS2 = 'BKG' spectrum; one holding
    several and none of them 'BKG' is an `OGIPError` (choose with `extension` or
    ``"path{EXTNAME}"``). A file's only spectrum is read whatever its HDUCLAS2, with a warning
    when it names a background file of its own (BACKFILE): then it is likely a source.
    """

    _part = "background"

    @classmethod
    def from_bkg(cls, bkg_file: Any, extension: str | None = None) -> Background:
        """Load a PHA type I file (path, `pathlib.Path` or binary file object)."""
        return cls._load(bkg_file, None, need_row=False, extension=extension)

    @classmethod
    def from_bkg2(cls, bkg_file: Any, ii: int | None = None,
                  extension: str | None = None) -> Background:
        """Load row `ii` (0-based) of a PHA type II file; ``"path:ii"`` also works."""
        return cls._load(bkg_file, ii, need_row=True, extension=extension)

    @classmethod
    def from_plain(cls, bkg_file: Any, ii: int | None = None,
                   extension: str | None = None) -> Background:
        """Load a PHA type I file, or a row of a type II file when `ii` or ``"path:ii"`` is given."""
        return cls._load(bkg_file, ii, need_row=None, extension=extension)
