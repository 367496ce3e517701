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
from ._shared import IdentitySet, WeakCache, content_key, is_concrete, precision_key

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
    - `area`: an effective area per photon bin ``(nphot,)`` [cm^2], or `None`. When it is
        given, the DRM is ``drm * area[:, None]``, formed only when it is asked for. This is
        how ``rmf * arf`` is stored.

    **Storage.** `matrix` holds the `drm` argument. With JAX in float64, a matrix is stored in
    float32 when every value survives a round trip through float32; otherwise it is stored
    in JAX's precision. Most FITS matrices are written in float32 (``E``). float32 to float64
    is exact, so the `drm` property returns exactly the values bayspec computes with. The arrays are not
    copied when they are already jax arrays: jax arrays are immutable, so the loaders hand
    the same arrays to every response read from the same file, and ``rmf * arf`` keeps the
    RMF's matrix and the ARF's areas. One copy of a matrix therefore serves every unit that
    uses it. Arrays passed in as numpy are copied, so later edits to them change nothing.

    `chbin` and `phbin` keep the precision the file stored them in (float32 for FITS ``E``
    columns, as bayspec computes with them); `drm` follows JAX's precision.
    """

    chbin: Float[Array, "chan 2"]
    phbin: Float[Array, "phot 2"]
    matrix: Float[Array, "phot chan"]
    area: Float[Array, " phot"] | None
    ra: Par
    dec: Par
    factor: Par
    channels: Int[Array, " chan"]
    name: str = eqx.field(static=True)
    file: str | None = eqx.field(static=True)
    constant: ClassVar[bool] = True

    def __init__(self, chbin, phbin, drm, ra: Par | None = None, dec: Par | None = None,
                 factor: Par | None = None, channels=None, name: str | None = None,
                 file: str | None = None, area=None):
        if area is not None and isinstance(self, Redistribution):
            raise ValueError("a Redistribution has no effective area: compose it with an "
                             "Auxiliary (`rmf * arf`), which gives a Response")
        chbin_kept, phbin_kept = _kept_float(chbin), _kept_float(phbin)
        chbin_np = _host(chbin_kept, chbin)
        phbin_np = _host(phbin_kept, phbin)
        matrix_kept = _kept_float(drm)
        # A kept jax matrix is read back to the host only if it was never checked (on a GPU
        # that is a transfer); its shape is checked without reading it.
        drm_np = None if matrix_kept is not None else np.array(drm, dtype=np.float64)
        channels_np = check_response_shapes(phbin_np, chbin_np,
                                            matrix_kept if drm_np is None else drm_np, channels)
        if drm_np is None and matrix_kept not in _VALIDATED:
            drm_np = np.asarray(matrix_kept)
        if drm_np is not None and not np.all(np.isfinite(drm_np)):
            raise ValueError("drm must be finite")
        self.chbin = chbin_kept if chbin_kept is not None else bins_array(
            chbin_np, _bins_dtype(chbin))
        self.phbin = phbin_kept if phbin_kept is not None else bins_array(
            phbin_np, _bins_dtype(phbin))
        self.matrix = matrix_kept if matrix_kept is not None else _stored_matrix(drm_np)
        _VALIDATED.add(self.matrix)
        self.area = None if area is None else _area_array(area, phbin_np.shape[0])
        self.ra = _par(0.0, "right ascension [deg]") if ra is None else ra
        self.dec = _par(0.0, "declination [deg]") if dec is None else dec
        self.factor = _par(1.0, "multiplicative factor") if factor is None else factor
        kept_channels = _kept_ints(channels)
        self.channels = kept_channels if kept_channels is not None else int_array(channels_np)
        self.name = name if name is not None else type(self).__name__.lower()
        self.file = file

    @property
    def drm(self) -> Float[Array, "phot chan"]:
        """The DRM ``(phot, chan)`` in JAX's precision: `matrix`, times `area` per photon bin
        when there is one.

        The product (and the upcast of a float32 `matrix`) is formed when it is asked for. It
        is not stored, but while anything holds the result, every response with the same
        `matrix` and `area` returns that same array.
        """
        return _derived_drm(self.matrix, self.area)

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
        chbin, phbin, matrix, channels = _read_matrix(target, extver)
        return cls(chbin, phbin, matrix, channels=channels, name=source_name(label, extver),
                   file=_reader_label(target))

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
        """The full response ``rmf.drm * arf.srp[:, None]``; the energy grids must agree.

        The product is not formed here: the new response keeps the RMF's `matrix` and the
        ARF's `srp` (as its `area`), and `drm` multiplies them when it is asked for.
        """
        if not isinstance(rmf, Redistribution) or not isinstance(arf, Auxiliary):
            raise ValueError(
                "from_rmf_arf needs a Redistribution and an Auxiliary, got "
                f"{type(rmf).__name__} and {type(arf).__name__}"
            )
        check_energy_grids(rmf, arf)
        return Response(rmf.chbin, rmf.phbin, rmf.matrix, channels=rmf.channels,
                        name=f"{rmf.name}*{arf.name}", file=rmf.file, area=arf.srp)

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
        phbin_kept = _kept_float(phbin)
        phbin_np = _host(phbin_kept, phbin)
        if phbin_np.ndim != 2 or phbin_np.shape[1] != 2:
            raise ValueError(f"phbin must have shape (nphot, 2), got {phbin_np.shape}")
        self.phbin = phbin_kept if phbin_kept is not None else bins_array(
            phbin_np, _bins_dtype(phbin))
        self.srp = _area_array(srp, phbin_np.shape[0], "srp")
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
        phbin, srp = _read_arf(target, extver)
        return cls(phbin, srp, name=source_name(label, extver), file=_reader_label(target))

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


# -- storage and sharing ------------------------------------------------------------------------

_VALIDATED = IdentitySet()
"""Jax arrays already checked finite (matrices and areas), so a shared one is checked once."""

_FILES = WeakCache()
"""Arrays read from response files, keyed by the file's content: ``("matrix" | "arf",
content_key, extver, precision)``. Each entry holds the matrix (or ARF areas) weakly, so it
lasts while a container holds that array. The small energy and channel arrays are held with
it."""

_DERIVED = WeakCache()
"""Arrays derived from a `matrix` and an `area`: the DRM in JAX's precision, and the grouped
DRM columns of a channel grouping. An entry lasts while something holds the derived array."""


def _reader_label(target: Any) -> str:
    """The file label that the io readers give `target`: its path, or ``"<bytes>"``."""
    return split_source(target)[2]


def _kept(value: Any, dtypes: tuple) -> Any:
    """`value` itself when it is a concrete jax array of one of `dtypes` (immutable, so it can
    be kept as it is), else `None`."""
    if is_concrete(value) and value.dtype in dtypes:
        return value
    return None


def _kept_float(value: Any) -> Any:
    """A float32 or default-precision jax array, kept (energy bins keep float32 as the file
    stored them; a float32 matrix is stored as it is)."""
    return _kept(value, (np.dtype(np.float32), np.dtype(jnp.result_type(float))))


def _kept_ints(value: Any) -> Any:
    return _kept(value, (np.dtype(jnp.result_type(int)),))


def _host(kept: Any, value: Any) -> np.ndarray:
    """A numpy array to validate: a (read-only) view of `kept`, else a float64 copy of
    `value` (a copy, so that later changes to the caller's array do not reach us)."""
    return np.asarray(kept) if kept is not None else np.array(value, dtype=np.float64)


def _stored_matrix(drm: np.ndarray) -> Array:
    """A float64 host matrix as it is stored. It is float32 when JAX runs in float64 and every
    value round-trips through float32 exactly (the upcast in `Response.drm` then gives the
    same numbers back); otherwise it is in JAX's precision."""
    if jnp.result_type(float) == jnp.float64:
        single = drm.astype(np.float32)
        if np.array_equal(single.astype(np.float64), drm):
            return jnp.asarray(single)
    return float_array(drm)


def _area_array(area: Any, nphot: int, label: str = "area") -> Array:
    """An effective area per photon bin ``(nphot,)``, finite; kept as it is when it is a jax
    array (immutable), else copied into JAX's precision."""
    kept = _kept_float(area)
    area_np = None if kept is not None else np.array(area, dtype=np.float64)
    shape = np.shape(kept if area_np is None else area_np)
    if shape != (nphot,):
        raise ValueError(f"{label} must have shape ({nphot},), got {shape}")
    if area_np is None and kept not in _VALIDATED:
        area_np = np.asarray(kept)
    if area_np is not None and not np.all(np.isfinite(area_np)):
        raise ValueError(f"{label} must be finite")
    stored = kept if kept is not None else float_array(area_np)
    _VALIDATED.add(stored)
    return stored


def _derived_drm(matrix: Array, area: Array | None) -> Array:
    """``matrix * area[:, None]`` in JAX's precision (`matrix` alone when `area` is `None`).
    For concrete arrays, the result is shared while it is held (`_DERIVED`)."""
    dtype = jnp.result_type(float)
    if area is None and matrix.dtype == dtype:
        return matrix

    def make() -> Array:
        full = matrix.astype(dtype)
        return full if area is None else full * area.astype(dtype)[:, None]

    if not (is_concrete(matrix) and (area is None or is_concrete(area))):
        return make()  # traced: nothing to share
    key = ("drm", id(matrix), None if area is None else id(area), np.dtype(dtype).name)
    return _DERIVED.get_or_make(key, make, sources=(matrix, area))


def grouped_drm(response: AbstractResponse, group_ids: Any, n_groups: int
                ) -> Float[Array, "phot group"]:
    """The DRM's channel columns summed per group ``(nphot, n_groups)``, in JAX's precision.

    **Arguments:** `response`; `group_ids` ``(chan,)``: each channel's group, ``n_groups`` for
    channels left out; `n_groups`.

    The sums are taken in float64 on the host, channel after channel. For a constant
    `Response` the result is shared: responses with the same `matrix` and `area`, grouped
    the same way, get the same array while anything holds it. A response that depends on
    the sky position is grouped at its current `ra`, `dec` and not shared.
    """
    ids = np.asarray(group_ids, dtype=np.int64)

    def make() -> Array:
        return float_array(_sum_columns(np.asarray(response.drm, dtype=np.float64), ids,
                                        n_groups))

    if not (isinstance(response, Response) and is_concrete(response.matrix)
            and (response.area is None or is_concrete(response.area))):
        return make()
    area = response.area
    key = ("grouped", id(response.matrix), None if area is None else id(area), ids.tobytes(),
           int(n_groups), precision_key())
    return _DERIVED.get_or_make(key, make, sources=(response.matrix, area))


def _sum_columns(drm: np.ndarray, ids: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum `drm`'s channel columns per group id, in channel order; the discard segment
    (id `n_groups`) is dropped."""
    grouped = np.zeros((drm.shape[0], n_groups + 1))
    np.add.at(grouped.T, ids, drm.T)
    return grouped[:, :n_groups]


def _read_matrix(target: Any, extver: int | None) -> tuple[Array, Array, Array, Array]:
    """``(chbin, phbin, matrix, channels)`` of a response file's matrix (`read_rmf`), as the
    containers store them. A file whose content was read before, and whose matrix is still
    held somewhere, gives the same arrays again without being parsed."""
    content = content_key(target)
    key = None if content is None else ("matrix", content, extver, precision_key())
    hit = None if key is None else _FILES.get(key)
    if hit is not None:
        matrix, (chbin, phbin, channels) = hit
        return chbin, phbin, matrix, channels
    record = read_rmf((target, extver) if extver is not None else target)
    built = Response.from_record(record)
    if key is not None:
        _FILES.put(key, built.matrix, (built.chbin, built.phbin, built.channels))
    return built.chbin, built.phbin, built.matrix, built.channels


def _read_arf(target: Any, extver: int | None) -> tuple[Array, Array]:
    """``(phbin, srp)`` of an ARF file (`read_arf`), shared as `_read_matrix` shares them."""
    content = content_key(target)
    key = None if content is None else ("arf", content, extver, precision_key())
    hit = None if key is None else _FILES.get(key)
    if hit is not None:
        srp, phbin = hit
        return phbin, srp
    built = Auxiliary.from_record(read_arf((target, extver) if extver is not None else target))
    if key is not None:
        _FILES.put(key, built.srp, built.phbin)
    return built.phbin, built.srp


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
