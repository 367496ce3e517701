"""Detector responses behind one interface (`AbstractResponse`): the constant `Response` (full
DRM), `Redistribution` (RMF) and `Auxiliary` (ARF); `AbstractLocationResponse` for responses
whose DRM is a function of the sky position."""

import abc
from typing import Any, ClassVar, NoReturn

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, ArrayLike, Float, Int

from .._table import Table
from ..io import ARF, RMF, OGIPError, read_arf, read_rmf, split_source
from ..io.response import check_response_shapes
from ..params import Par, unif
from ._convert import bins_array, float_array, int_array, source_name

_ARF_LOADERS = "an ARF is loaded with from_arf, from_arf2 or from_plain"
_COMPOSE = "compose with `rmf * arf` or Response.from_rmf_arf"

ENERGY_GRID_RTOL = 1e-5
"""Relative tolerance within which an ARF's energy grid must match the RMF's."""


def _par(val: float, comment: str) -> Par:
    return Par(val, frozen=True, comment=comment)


def _disabled_loader(method: str, instead: str) -> classmethod:
    """A classmethod `method` that raises `AttributeError`: this class has no such loader, and
    `instead` says what to use."""
    def loader(cls, *args, **kwargs) -> NoReturn:
        raise AttributeError(f"'{cls.__name__}' has no loader '{method}': {instead}")

    loader.__name__ = loader.__qualname__ = method
    return classmethod(loader)


class AbstractResponse(eqx.Module):
    """The response interface: channel and photon energy bins, and a DRM that may depend on
    the sky position.

    A constant response (`Response`: an RSP, or RMF x ARF) has ``constant = True``; its DRM is
    grouped and folded by the fast precomputed blocks of `bayspec_jax.data.stack`. Any other
    response is evaluated inside the traced likelihood at the unit's ``(ra, dec)``
    (`drm_at`), grouped by segment sums and folded by a `DynamicBlock`.

    **Interface:** `chbin` ``(chan, 2)`` and `phbin` ``(phot, 2)`` [keV]; `drm` ``(phot, chan)``
    (at the `ra`, `dec` parameters' values); `ra`, `dec` and `factor` (`Par`s); `channels`;
    `name`, `file`; `drm_at(ra, dec)`.
    """

    chbin: AbstractVar[Float[Array, "chan 2"]]
    phbin: AbstractVar[Float[Array, "phot 2"]]
    ra: AbstractVar[Par]
    dec: AbstractVar[Par]
    factor: AbstractVar[Par]
    channels: AbstractVar[Int[Array, " chan"]]
    name: AbstractVar[str]
    file: AbstractVar[str | None]
    constant: AbstractClassVar[bool]

    def __check_init__(self):
        for label in ("ra", "dec", "factor"):
            if not isinstance(getattr(self, label), Par):
                raise ValueError(f"{label} must be a bayspec_jax.Par, got "
                                 f"{type(getattr(self, label)).__name__}")

    @abc.abstractmethod
    def drm_at(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
               ) -> Float[Array, "phot chan"]:
        """The DRM ``(phot, chan)`` [cm^2] for a source at ``(ra, dec)`` [deg]; pure `jnp`
        (traced under `jit`, `vmap` and `grad`)."""

    def fold_at(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""],
                photon_flux: Float[Array, " phot"]) -> Float[Array, " chan"]:
        """The count rate per channel ``photon_flux @ drm_at(ra, dec)``; a response that can
        fold without forming its DRM overrides it."""
        return photon_flux @ self.drm_at(ra, dec)

    # -- views -----------------------------------------------------------------------------

    @property
    def chbin_mean(self) -> Float[Array, " chan"]:
        """Channel centres ``(E_lo + E_hi) / 2`` [keV]."""
        return self.chbin.mean(axis=1)

    @property
    def chbin_width(self) -> Float[Array, " chan"]:
        """Channel widths ``E_hi - E_lo`` [keV]."""
        return self.chbin[:, 1] - self.chbin[:, 0]

    @property
    def n_channels(self) -> int:
        return int(self.chbin.shape[0])

    @property
    def n_photon_bins(self) -> int:
        return int(self.phbin.shape[0])

    @property
    def info(self) -> Table:
        """A one-row table: name, channel bins, photon bins and their energy ranges."""
        ch, ph = np.asarray(self.chbin), np.asarray(self.phbin)
        return Table({
            "Name": [self.name],
            "Channel bins": [self.n_channels],
            "Channel range [keV]": [f"{ch[0, 0]:.4g}-{ch[-1, 1]:.4g}"],
            "Photon bins": [self.n_photon_bins],
            "Photon range [keV]": [f"{ph[0, 0]:.4g}-{ph[-1, 1]:.4g}"],
        })

    def __str__(self) -> str:
        return f"*** {type(self).__name__} ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>{type(self).__name__}</b></summary>{self.info.html}</details>"




class Response(AbstractResponse):
    """A detector response matrix with its channel and photon energy bins (immutable pytree).

    **Arguments:**

    - `chbin`: channel energy bounds ``(nchan, 2)`` [keV].
    - `phbin`: photon energy bins ``(nphot, 2)`` [keV].
    - `drm`: the response ``(nphot, nchan)`` [cm^2 for a full response].
    - `ra`, `dec`: sky position `Par`s (frozen at 0; used by location-dependent responses).
    - `factor`: a multiplicative `Par` (frozen at 1).
    - `channels`: channel numbers ``(nchan,)``; default ``1..nchan``.
    - `name`, `file`: labels.

    `chbin` and `phbin` keep the precision the file stored them in (float32 for FITS ``E``
    columns, as bayspec computes with them); `drm` follows JAX's precision.
    """

    chbin: Float[Array, "chan 2"]
    phbin: Float[Array, "phot 2"]
    drm: Float[Array, "phot chan"]
    ra: Par
    dec: Par
    factor: Par
    channels: Int[Array, " chan"]
    name: str = eqx.field(static=True)
    file: str | None = eqx.field(static=True)
    constant: ClassVar[bool] = True

    def __init__(self, chbin, phbin, drm, ra: Par | None = None, dec: Par | None = None,
                 factor: Par | None = None, channels=None, name: str | None = None,
                 file: str | None = None):
        chbin_dtype, phbin_dtype = _bins_dtype(chbin), _bins_dtype(phbin)
        chbin_np = np.array(chbin, dtype=np.float64)
        phbin_np = np.array(phbin, dtype=np.float64)
        drm_np = np.array(drm, dtype=np.float64)
        channels_np = check_response_shapes(phbin_np, chbin_np, drm_np, channels)
        if not np.all(np.isfinite(drm_np)):
            raise ValueError("drm must be finite")
        self.chbin = bins_array(chbin_np, chbin_dtype)
        self.phbin = bins_array(phbin_np, phbin_dtype)
        self.drm = float_array(drm_np)
        self.ra = _par(0.0, "right ascension [deg]") if ra is None else ra
        self.dec = _par(0.0, "declination [deg]") if dec is None else dec
        self.factor = _par(1.0, "multiplicative factor") if factor is None else factor
        self.channels = int_array(channels_np)
        self.name = name if name is not None else type(self).__name__.lower()
        self.file = file

    def drm_at(self, ra: Float[ArrayLike, ""], dec: Float[ArrayLike, ""]
               ) -> Float[Array, "phot chan"]:
        """The DRM (the same at every position)."""
        return self.drm

    # -- loaders ---------------------------------------------------------------------------

    @classmethod
    def from_record(cls, rmf: RMF, name: str | None = None) -> "Response":
        """Build from a `bayspec_jax.io.RMF` record."""
        return cls(rmf.chbin.astype(rmf.chbin_dtype), rmf.phbin.astype(rmf.phbin_dtype), rmf.drm,
                   channels=rmf.channels,
                   name=name if name is not None else source_name(rmf.file, rmf.extver),
                   file=rmf.file)

    @classmethod
    def _load(cls, file: Any, ii: int | None, need_extver: bool | None):
        target, extver, label = split_source(file, ii)
        if need_extver and extver is None:
            raise OGIPError(
                f"{cls.__name__}: the EXTVER of the matrix is needed: pass ii= or 'path:ii'",
                file=label,
            )
        record = read_rmf((target, extver) if extver is not None else target)
        return cls.from_record(record, name=source_name(label, extver))

    @classmethod
    def from_rsp(cls, rsp_file: Any) -> "Response":
        """Load the (first) matrix of an RSP/RMF file with its EBOUNDS."""
        return cls._load(rsp_file, None, need_extver=False)

    @classmethod
    def from_rsp2(cls, rsp_file: Any, ii: int | None = None) -> "Response":
        """Load the matrix extension with EXTVER `ii` (``"path:ii"`` also works), as bayspec."""
        return cls._load(rsp_file, ii, need_extver=True)

    @classmethod
    def from_plain(cls, rsp_file: Any, ii: int | None = None) -> "Response":
        """`from_rsp`, or `from_rsp2` when `ii` or ``"path:ii"`` is given."""
        return cls._load(rsp_file, ii, need_extver=None)

    @classmethod
    def from_rmf_arf(cls, rmf: "Redistribution", arf: "Auxiliary") -> "Response":
        """The full response ``rmf.drm * arf.srp[:, None]``; the energy grids must agree."""
        if not isinstance(rmf, Redistribution) or not isinstance(arf, Auxiliary):
            raise ValueError(
                "from_rmf_arf needs a Redistribution and an Auxiliary, got "
                f"{type(rmf).__name__} and {type(arf).__name__}"
            )
        check_energy_grids(rmf, arf)
        drm = np.asarray(rmf.drm, dtype=np.float64) * np.asarray(arf.srp, dtype=np.float64)[:, None]
        return Response(rmf.chbin, rmf.phbin, drm, channels=rmf.channels,
                        name=f"{rmf.name}*{arf.name}", file=rmf.file)

class Redistribution(Response):
    """A redistribution matrix (RMF: probabilities, no area); ``rmf * arf`` is a `Response`."""

    @classmethod
    def from_rmf(cls, rmf_file: Any) -> "Redistribution":
        """Load the (first) matrix of an RMF file with its EBOUNDS."""
        return cls._load(rmf_file, None, need_extver=False)

    @classmethod
    def from_rmf2(cls, rmf_file: Any, ii: int | None = None) -> "Redistribution":
        """Load the matrix extension with EXTVER `ii` (``"path:ii"`` also works)."""
        return cls._load(rmf_file, ii, need_extver=True)

    @classmethod
    def from_plain(cls, rmf_file: Any, ii: int | None = None) -> "Redistribution":
        """`from_rmf`, or `from_rmf2` when `ii` or ``"path:ii"`` is given."""
        return cls._load(rmf_file, ii, need_extver=None)

    from_rmf_arf = _disabled_loader("from_rmf_arf", _COMPOSE)

    def __mul__(self, arf: "Auxiliary") -> "Response":
        if not isinstance(arf, Auxiliary):
            return NotImplemented
        return Response.from_rmf_arf(self, arf)

    def __rmul__(self, arf: "Auxiliary") -> "Response":
        return self.__mul__(arf)


def _location_bins(values: Any) -> Array:
    return bins_array(np.asarray(values), _bins_dtype(values))


def _default(par: Par | None, make) -> Par:
    return make() if par is None else par


class AbstractLocationResponse(AbstractResponse):
    """A response whose DRM depends on the source's sky position: subclass it with the fields
    the DRM needs and a `drm_at(ra, dec)` in `jnp`.

    **Arguments:** `chbin` ``(chan, 2)``, `phbin` ``(phot, 2)`` [keV]; keyword-only: `ra` and
    `dec` (`Par`s; default free, uniform on [0, 360) and [-90, 90]), `factor` (default frozen at
    1), `name`, `file`. Channels are numbered ``1..nchan``.
    """

    chbin: Float[Array, "chan 2"] = eqx.field(converter=_location_bins)
    phbin: Float[Array, "phot 2"] = eqx.field(converter=_location_bins)
    ra: Par = eqx.field(default=None, kw_only=True, converter=lambda par: _default(
        par, lambda: Par(0.0, unif(0.0, 360.0), comment="right ascension [deg]")))
    dec: Par = eqx.field(default=None, kw_only=True, converter=lambda par: _default(
        par, lambda: Par(0.0, unif(-90.0, 90.0), comment="declination [deg]")))
    factor: Par = eqx.field(default=None, kw_only=True, converter=lambda par: _default(
        par, lambda: _par(1.0, "multiplicative factor")))
    name: str = eqx.field(static=True, default="location response", kw_only=True)
    file: str | None = eqx.field(static=True, default=None, kw_only=True)
    constant: ClassVar[bool] = False

    def __check_init__(self):
        check_response_shapes(self.phbin, self.chbin)

    @property
    def channels(self) -> Int[Array, " chan"]:
        return int_array(np.arange(1, self.n_channels + 1))

    @property
    def drm(self) -> Float[Array, "phot chan"]:
        """The DRM at the `ra`, `dec` parameters' values."""
        dtype = jnp.result_type(float)
        return self.drm_at(jnp.asarray(self.ra.value, dtype), jnp.asarray(self.dec.value, dtype))


class Auxiliary(eqx.Module):
    """An ancillary response (ARF): effective area per photon bin; ``arf * rmf`` is a `Response`.

    **Arguments:**

    - `phbin`: photon energy bins ``(nphot, 2)`` [keV].
    - `srp`: effective area per bin ``(nphot,)`` [cm^2].
    - `name`, `file`: labels.
    """

    phbin: Float[Array, "phot 2"]
    srp: Float[Array, " phot"]
    name: str = eqx.field(static=True)
    file: str | None = eqx.field(static=True)

    def __init__(self, phbin, srp, name: str | None = None, file: str | None = None):
        phbin_dtype = _bins_dtype(phbin)
        phbin_np = np.array(phbin, dtype=np.float64)
        srp_np = np.array(srp, dtype=np.float64)
        if phbin_np.ndim != 2 or phbin_np.shape[1] != 2:
            raise ValueError(f"phbin must have shape (nphot, 2), got {phbin_np.shape}")
        if srp_np.shape != (phbin_np.shape[0],):
            raise ValueError(f"srp must have shape ({phbin_np.shape[0]},), got {srp_np.shape}")
        if not np.all(np.isfinite(srp_np)):
            raise ValueError("srp must be finite")
        self.phbin = bins_array(phbin_np, phbin_dtype)
        self.srp = float_array(srp_np)
        self.name = name if name is not None else "auxiliary"
        self.file = file

    @classmethod
    def from_record(cls, arf: ARF, name: str | None = None) -> "Auxiliary":
        """Build from a `bayspec_jax.io.ARF` record."""
        return cls(arf.phbin.astype(arf.phbin_dtype), arf.specresp,
                   name=name if name is not None else source_name(arf.file, arf.extver),
                   file=arf.file)

    @classmethod
    def _load(cls, file: Any, ii: int | None, need_extver: bool | None) -> "Auxiliary":
        target, extver, label = split_source(file, ii)
        if need_extver and extver is None:
            raise OGIPError("Auxiliary: the EXTVER of the ARF is needed: pass ii= or 'path:ii'",
                            file=label)
        record = read_arf((target, extver) if extver is not None else target)
        return cls.from_record(record, name=source_name(label, extver))

    @classmethod
    def from_arf(cls, arf_file: Any) -> "Auxiliary":
        """Load an ARF file (SPECRESP extension)."""
        return cls._load(arf_file, None, need_extver=False)

    @classmethod
    def from_arf2(cls, arf_file: Any, ii: int | None = None) -> "Auxiliary":
        """Load the SPECRESP extension with EXTVER `ii` (``"path:ii"`` also works)."""
        return cls._load(arf_file, ii, need_extver=True)

    @classmethod
    def from_plain(cls, arf_file: Any, ii: int | None = None) -> "Auxiliary":
        """`from_arf`, or `from_arf2` when `ii` or ``"path:ii"`` is given."""
        return cls._load(arf_file, ii, need_extver=None)

    from_rsp = _disabled_loader("from_rsp", _ARF_LOADERS)
    from_rsp2 = _disabled_loader("from_rsp2", _ARF_LOADERS)

    from_rmf_arf = _disabled_loader("from_rmf_arf", _COMPOSE)

    def __mul__(self, rmf: "Redistribution") -> "Response":
        if not isinstance(rmf, Redistribution):
            return NotImplemented
        return Response.from_rmf_arf(rmf, self)

    def __rmul__(self, rmf: "Redistribution") -> "Response":
        return self.__mul__(rmf)

    @property
    def info(self) -> Table:
        ph = np.asarray(self.phbin)
        return Table({
            "Name": [self.name],
            "Photon bins": [int(ph.shape[0])],
            "Photon range [keV]": [f"{ph[0, 0]:.4g}-{ph[-1, 1]:.4g}"],
            "Max area [cm2]": [float(np.max(np.asarray(self.srp)))],
        })

    def __str__(self) -> str:
        return f"*** Auxiliary ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>Auxiliary</b></summary>{self.info.html}</details>"


def _bins_dtype(values: Any) -> str:
    dtype = getattr(values, "dtype", None)
    return "float32" if dtype is not None and np.dtype(dtype) == np.float32 else "float64"


def check_energy_grids(rmf: "Redistribution", arf: "Auxiliary") -> None:
    """Raise `OGIPError` unless the ARF's photon bins equal the RMF's within `ENERGY_GRID_RTOL`."""
    rmf_bins = np.asarray(rmf.phbin, dtype=np.float64)
    arf_bins = np.asarray(arf.phbin, dtype=np.float64)
    where = f"{rmf.file or rmf.name} x {arf.file or arf.name}"
    if rmf_bins.shape != arf_bins.shape:
        raise OGIPError(
            f"the ARF has {arf_bins.shape[0]} energy bins but the RMF has {rmf_bins.shape[0]}",
            file=where, extension="SPECRESP", column="ENERG_LO/ENERG_HI",
        )
    if not np.allclose(arf_bins, rmf_bins, rtol=ENERGY_GRID_RTOL, atol=0.0):
        worst = int(np.argmax(np.max(np.abs(arf_bins - rmf_bins), axis=1)))
        raise OGIPError(
            f"the ARF energy grid differs from the RMF's beyond rtol {ENERGY_GRID_RTOL} "
            f"(bin {worst}: ARF {arf_bins[worst].tolist()} vs RMF {rmf_bins[worst].tolist()})",
            file=where, extension="SPECRESP", column="ENERG_LO/ENERG_HI",
        )
