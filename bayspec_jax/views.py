"""Model-dependent views of a `Data`: folded model spectra, deconvolved (unfolded) spectra,
residuals. One array per unit, in `Data` order, as bayspec's ``Pair`` properties.

A deconvolved spectrum is the observed net count spectrum times the model's photons-per-count
factor of each group: the model spectrum at the group's centre (the arithmetic mean of its
energy bounds) divided by the model count spectrum of the group. It depends on the model, and
is for display; fits use `bayspec_jax.likelihood`.

Each view takes ``(model, params, data, data_params=None)``: the photon model, its parameters,
a `Data`, and optional data-layer factors ``sf``, ``bf``, ``rf`` (arrays ``(n_units,)``, as in
`bayspec_jax.likelihood`). The ``_re_`` views use each unit's rebinning grid (``rebn``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import likelihood
from .data.data import Data
from .data.unit import DataUnit
from .fold import Model, data_value

ERG_PER_KEV = 1.60218e-9
"""keV -> erg, the constant bayspec uses in ``flxspec`` and ``ergspec``."""

SPECTRUM_KINDS = ("phtspec", "flxspec", "ergspec")
"""``phtspec``: N(E) [ph/cm^2/s/keV]; ``flxspec``: E N(E) [erg/cm^2/s/keV];
``ergspec``: E^2 N(E) (nuFnu) [erg/cm^2/s]."""

SPECTRUM_UNITS = {"phtspec": "ph cm$^{-2}$ s$^{-1}$ keV$^{-1}$",
                  "flxspec": "erg cm$^{-2}$ s$^{-1}$ keV$^{-1}$",
                  "ergspec": "erg cm$^{-2}$ s$^{-1}$"}
"""The unit of each spectrum kind (matplotlib mathtext)."""

_FACTORS = ("sf", "bf", "rf")


# -- checks ------------------------------------------------------------------------------------


def _check(model: Any, data: Any, data_params: Any) -> None:
    if not callable(model):
        raise ValueError(f"model must be a callable model(energy, params), got "
                         f"{type(model).__name__}")
    if not isinstance(data, Data):
        raise ValueError(f"data must be a bayspec_jax.Data, got {type(data).__name__}")
    if data_params is None:
        return
    if not isinstance(data_params, Mapping):
        raise ValueError(f"data_params must be a mapping of {list(_FACTORS)} or None, got "
                         f"{type(data_params).__name__}")
    unknown = sorted(set(data_params) - set(_FACTORS))
    if unknown:
        raise ValueError(f"data_params has unknown name(s) {unknown}; allowed: {list(_FACTORS)}")
    for name, value in data_params.items():
        if jnp.shape(value) != (len(data),):
            raise ValueError(f"data_params[{name!r}] must have shape ({len(data)},) (one value "
                             f"per unit), got {jnp.shape(value)}")


def _check_kind(kind: Any) -> str:
    if kind not in SPECTRUM_KINDS:
        raise ValueError(f"kind must be one of {list(SPECTRUM_KINDS)}, got {kind!r}")
    return kind


def _own_factor(unit: DataUnit, name: str) -> Array:
    part = {"sf": unit.src, "bf": unit.bkg, "rf": unit.rsp}[name]
    return jnp.asarray(part.factor.value)


def _factor(unit: DataUnit, position: int, data_params, name: str) -> Array:
    return data_value(data_params, name, position, _own_factor(unit, name))


# -- the model spectrum ------------------------------------------------------------------------


def model_spectrum(model: Model, params: Any, energy: ArrayLike,
                   kind: str = "phtspec") -> Float[Array, "*energy"]:
    """The model spectrum at `energy` [keV]: N(E), E N(E) or E^2 N(E) (see `SPECTRUM_KINDS`).

    `flxspec` and `ergspec` convert keV to erg with `ERG_PER_KEV`, as bayspec.
    """
    kind = _check_kind(kind)
    energy = jnp.asarray(energy, dtype=jnp.result_type(float))
    photons = model(energy, params)
    if kind == "phtspec":
        return photons
    if kind == "flxspec":
        return ERG_PER_KEV * energy * photons
    return ERG_PER_KEV * energy * energy * photons


def spectrum_at_rsp(model: Model, params: Any, data: Data, kind: str = "phtspec",
                    rebinned: bool = False) -> list[Float[Array, " group"]]:
    """The model spectrum at each group's centre (mean of its energy bounds), one array per unit.

    bayspec's ``phtspec_at_rsp``, ``flxspec_at_rsp``, ``ergspec_at_rsp`` (``re_`` with
    `rebinned`). bayspec evaluates the model at float32 centres in float32 when the response's
    energies are float32; here the centres are promoted to the default float first.
    """
    _check(model, data, None)
    return [model_spectrum(model, params, _centre(unit, rebinned), kind) for unit in data.units]


def _centre(unit: DataUnit, rebinned: bool) -> Array:
    return unit.rsp_re_chbin_mean if rebinned else unit.rsp_chbin_mean


def _width(unit: DataUnit, rebinned: bool) -> Array:
    return unit.rsp_re_chbin_width if rebinned else unit.rsp_chbin_width


# -- folded model ------------------------------------------------------------------------------


def conv_ctsrate(model: Model, params: Any, data: Data,
                 data_params: likelihood.DataParams = None) -> list[Float[Array, " group"]]:
    """The model count rate of each fitted group [counts/s], one array per unit."""
    _check(model, data, data_params)
    return likelihood.model_ctsrate(model, params, data, data_params)


def conv_ctsspec(model: Model, params: Any, data: Data,
                 data_params: likelihood.DataParams = None) -> list[Float[Array, " group"]]:
    """The model count spectrum [counts/s/keV]: `conv_ctsrate` over each group's width."""
    rates = conv_ctsrate(model, params, data, data_params)
    return [rate / unit.rsp_chbin_width for rate, unit in zip(rates, data.units)]


def conv_re_ctsrate(model: Model, params: Any, data: Data,
                    data_params: likelihood.DataParams = None) -> list[Float[Array, " rebin"]]:
    """The model count rate of each rebinning group [counts/s], one array per unit."""
    _check(model, data, data_params)
    return likelihood.unit_rates(model, params, data, data_params, view="rebin")


def conv_re_ctsspec(model: Model, params: Any, data: Data,
                    data_params: likelihood.DataParams = None) -> list[Float[Array, " rebin"]]:
    """The model count spectrum on the rebinning grid [counts/s/keV]."""
    rates = conv_re_ctsrate(model, params, data, data_params)
    return [rate / unit.rsp_re_chbin_width for rate, unit in zip(rates, data.units)]


# -- observed net spectra, with the data-layer factors -------------------------------------------


def _net(unit: DataUnit, position: int, data_params, rebinned: bool, per_kev: bool,
         error: bool) -> Array:
    """The unit's net rate/spectrum (or its error) with `sf`, `bf` from `data_params`."""
    re = "re_" if rebinned else ""
    what = "ctsspec" if per_kev else "ctsrate"
    suffix = "_error" if error else ""
    src = getattr(unit, f"src_{re}{what}{suffix}")
    bkg = getattr(unit, f"bkg_{re}{what}{suffix}")
    if data_params is not None:
        # the unit's views divide by its own factors; rescale to the given ones
        src = src * (_own_factor(unit, "sf") / _factor(unit, position, data_params, "sf"))
        bkg = bkg * (_own_factor(unit, "bf") / _factor(unit, position, data_params, "bf"))
    return jnp.sqrt(src**2 + bkg**2) if error else src - bkg


def _divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, NaN where the denominator is 0 (as bayspec)."""
    nonzero = denominator != 0
    return jnp.where(nonzero, numerator / jnp.where(nonzero, denominator, 1.0), jnp.nan)


# -- deconvolved spectra -----------------------------------------------------------------------


def deconvolve(model: Model, params: Any, data: Data, kind: str = "phtspec",
               rebinned: bool = False, error: bool = False,
               data_params: likelihood.DataParams = None) -> list[Float[Array, " group"]]:
    """The deconvolved spectrum of each unit (or its error), one array per group.

    **Arguments:**

    - `model`, `params`: the photon model and its parameters.
    - `data`: the `Data`.
    - `kind`: ``"phtspec"``, ``"flxspec"`` or ``"ergspec"`` (see `SPECTRUM_KINDS`).
    - `rebinned`: on each unit's rebinning grid instead of its fitted groups.
    - `error`: the 1-sigma error instead of the value.
    - `data_params`: optional ``sf``, ``bf``, ``rf`` per unit.

    **Returns:** per unit, ``net count spectrum * model spectrum at the group centre / model
    count spectrum`` (NaN where the model count spectrum is 0); shape ``(group,)`` or
    ``(rebin,)``.
    """
    _check(model, data, data_params)
    kind = _check_kind(kind)
    model_counts = (conv_re_ctsspec if rebinned else conv_ctsspec)(model, params, data,
                                                                   data_params)
    out = []
    for position, (unit, counts) in enumerate(zip(data.units, model_counts)):
        photons = model_spectrum(model, params, _centre(unit, rebinned), kind)
        net = _net(unit, position, data_params, rebinned, per_kev=True, error=error)
        out.append(_divide(photons, counts) * net)
    return out


def _deconvolve_view(kind: str, rebinned: bool, error: bool) -> Callable:
    re = "re_" if rebinned else ""
    suffix = "_error" if error else ""
    name = f"deconv_{re}{kind}{suffix}"
    grid = "rebinning group" if rebinned else "fitted group"
    what = "The 1-sigma error of the" if error else "The"

    def view(model: Model, params: Any, data: Data,
             data_params: likelihood.DataParams = None) -> list[Float[Array, " group"]]:
        return deconvolve(model, params, data, kind, rebinned, error, data_params)

    view.__name__ = view.__qualname__ = name
    view.__doc__ = (f"{what} deconvolved {kind} [{SPECTRUM_UNITS[kind]}] per {grid}, one array "
                    f"per unit (bayspec's ``{name}``); see `deconvolve`.")
    return view


deconv_phtspec = _deconvolve_view("phtspec", False, False)
deconv_phtspec_error = _deconvolve_view("phtspec", False, True)
deconv_re_phtspec = _deconvolve_view("phtspec", True, False)
deconv_re_phtspec_error = _deconvolve_view("phtspec", True, True)
deconv_flxspec = _deconvolve_view("flxspec", False, False)
deconv_flxspec_error = _deconvolve_view("flxspec", False, True)
deconv_re_flxspec = _deconvolve_view("flxspec", True, False)
deconv_re_flxspec_error = _deconvolve_view("flxspec", True, True)
deconv_ergspec = _deconvolve_view("ergspec", False, False)
deconv_ergspec_error = _deconvolve_view("ergspec", False, True)
deconv_re_ergspec = _deconvolve_view("ergspec", True, False)
deconv_re_ergspec_error = _deconvolve_view("ergspec", True, True)


# -- residuals ---------------------------------------------------------------------------------


def residual(model: Model, params: Any, data: Data,
             data_params: likelihood.DataParams = None) -> list[Float[Array, " group"]]:
    """``(net rate - model rate) / net rate error`` per fitted group, one array per unit.

    bayspec's ``Pair.residual`` (Gaussian sigma residuals; weights play no part). For the
    statistic's own residual, ``sign * sqrt(-2 loglike)``, see `likelihood.pseudo_residual`.
    """
    rates = conv_ctsrate(model, params, data, data_params)
    return [(_net(unit, i, data_params, False, False, False) - rate)
            / _net(unit, i, data_params, False, False, True)
            for i, (unit, rate) in enumerate(zip(data.units, rates))]


def re_residual(model: Model, params: Any, data: Data,
                data_params: likelihood.DataParams = None) -> list[Float[Array, " rebin"]]:
    """`residual` on each unit's rebinning grid (bayspec's ``Pair.re_residual``)."""
    rates = conv_re_ctsrate(model, params, data, data_params)
    return [(_net(unit, i, data_params, True, False, False) - rate)
            / _net(unit, i, data_params, True, False, True)
            for i, (unit, rate) in enumerate(zip(data.units, rates))]


__all__ = [
    "ERG_PER_KEV",
    "SPECTRUM_KINDS",
    "SPECTRUM_UNITS",
    "conv_ctsrate",
    "conv_ctsspec",
    "conv_re_ctsrate",
    "conv_re_ctsspec",
    "deconv_ergspec",
    "deconv_ergspec_error",
    "deconv_flxspec",
    "deconv_flxspec_error",
    "deconv_phtspec",
    "deconv_phtspec_error",
    "deconv_re_ergspec",
    "deconv_re_ergspec_error",
    "deconv_re_flxspec",
    "deconv_re_flxspec_error",
    "deconv_re_phtspec",
    "deconv_re_phtspec_error",
    "deconvolve",
    "model_spectrum",
    "re_residual",
    "residual",
    "spectrum_at_rsp",
]
