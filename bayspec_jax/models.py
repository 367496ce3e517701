"""Photon models, pure `jax.numpy`: bayspec's parameterisations and a few XSPEC models.

Each model is ``model(energy, params)`` with `params` a sequence (or array) of the model's
parameters in the order documented, so that ``fold.integrate_bins(model, params, ...)`` and
`likelihood.loglike` accept it. Energies in keV; flux densities in ph/cm^2/s/keV; multiplicative
models (absorption) return a dimensionless transmission. Write your own model the same way: any
elementwise `jnp` function of energy and a parameter pytree. Models are evaluated at points (the
photon bins' trapezoid nodes, see `fold.integrate_bins`), not integrated over bins as XSPEC does:
a feature narrower than the grid (a Gaussian line with ``sigma`` below the node spacing, an
absorption edge) is only as well resolved as that grid.

Extreme parameters (``log10 A = 1e300``, a cutoff energy of ``10**-1e300``) give a flux of
``+inf`` or 0, which the likelihood rejects or uses, with finite derivatives: every exponential
that can overflow is guarded the double-`where` way (`_exp`, `_pow10`), since ``exp`` past the
float range has an infinite derivative and a rejected point's zero cotangent times it is NaN.
A model of your own needs the same guard to keep its gradients finite there.

Parameter conventions (bayspec's models take ``log10`` normalisations and a slope ``alpha`` in
``E^alpha``; the XSPEC-named models take XSPEC's linear ``norm`` and photon index ``Gamma`` in
``E^-Gamma``):

=============  ==========================================  ======================================
model          params                                      normalisation, pivot
=============  ==========================================  ======================================
`pl`           ``(alpha, log10 A)``                        ``A``: ph/cm^2/s/keV at 1 keV
`cpl`          ``(alpha, log10 Ec, log10 A)``              ``A`` at 1 keV
`cpl_peak`     ``(alpha, log10 Ep, log10 A)``              ``A`` at 1 keV
`band`         ``(alpha, beta, log10 Ep, log10 A)``        ``A`` at 100 keV
`sbpl`         ``(alpha, beta, log10 Ep, log10 A)``        ``A`` at 1 keV
`bb`           ``(log10 kT, log10 A)``                     ``A``: L39 / D10^2 (XSPEC bbody)
`powerlaw`     ``(PhoIndex, norm)``                        XSPEC: ``norm E^-PhoIndex``, at 1 keV;
                                                           ``pl(E, (-PhoIndex, log10 norm))``
`zpowerlw`     ``(PhoIndex, z, norm)``                     XSPEC: ``norm (E (1+z))^-PhoIndex``
`gauss`        ``(LineE keV, Sigma keV, norm)``            ``norm``: ph/cm^2/s in the line
`bremss`       ``(kT keV, norm)``                          XSPEC: 3.02e-15/(4 pi D^2) int ne nH dV
`diskbb`       ``(Tin keV, norm)``                         XSPEC: (Rin/km / (D/10 kpc))^2 cos i
`tbabs` ...    ``(nH,)``; z forms ``(nH, z)``              nH in 1e22 cm^-2 (a transmission)
`cflux(m,..)`  ``(log10 F, *m's params)``                  F: erg/cm^2/s in ``[emin, emax]``
=============  ==========================================  ======================================
"""

from __future__ import annotations

import functools
import importlib.resources
import math

import jax.numpy as jnp
import numpy as np
from jax.scipy import special
from jaxtyping import Array, ArrayLike, Float

_LN10 = math.log(10.0)
PIVOT_ENERGY = 1.0
"""Pivot energy [keV] of the power-law normalisations (bayspec's default)."""


def _overflow_guarded(function, x: Array, log_max: float) -> Array:
    """``function(x)`` (an exponential) where it is finite; ``+inf`` past the float range
    (``x >= log_max``), NaN for NaN, with a zero derivative there.

    The double `where`: the exponential only ever sees a safe argument, so its derivative is
    finite everywhere (``exp(x) dx`` past the range is ``inf``, and the ``0`` cotangent that a
    rejected point gets would make it ``inf * 0 = NaN``).
    """
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    # a few units in the last place below the true limit, so that the exponential of any
    # admitted argument is finite after rounding
    limit = log_max * (1.0 - 8.0 * float(jnp.finfo(x.dtype).eps))
    fits = x < limit
    return jnp.where(fits, function(jnp.where(fits, x, 0.0)),
                     jnp.where(jnp.isnan(x), jnp.nan, jnp.inf))


def _exp(x: ArrayLike) -> Array:
    """``exp(x)``, overflow-guarded (see `_overflow_guarded`)."""
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    return _overflow_guarded(jnp.exp, x, math.log(float(jnp.finfo(x.dtype).max)))


def _pow10(x: ArrayLike) -> Array:
    """``10 ** x``, overflow-guarded (see `_overflow_guarded`)."""
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    return _overflow_guarded(lambda y: 10.0**y, x, math.log10(float(jnp.finfo(x.dtype).max)))


def pl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Power law ``A (E / 1 keV)^alpha``; params ``(alpha, log10 A)``."""
    alpha, log_a = params[0], params[1]
    return _exp(log_a * _LN10 + alpha * jnp.log(jnp.asarray(energy) / PIVOT_ENERGY))


def cpl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law ``A (E / 1 keV)^alpha exp(-E / Ec)``; params ``(alpha, log10 Ec, log10 A)``."""
    alpha, log_ec, log_a = params[0], params[1], params[2]
    energy = jnp.asarray(energy)
    # One exponential of the summed logarithms (fewer transcendental functions per energy).
    # Both exponentials are overflow-guarded: a huge log_a or alpha gives +inf (the likelihood
    # rejects it), a hugely negative log_ec an infinite cutoff (0), with finite derivatives.
    return _exp(log_a * _LN10 + alpha * jnp.log(energy / PIVOT_ENERGY)
                - energy * _pow10(-log_ec))


def cpl_peak(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law with the nuFnu peak energy; params ``(alpha, log10 Ep, log10 A)``.

    ``Ec = Ep / (2 + alpha)``; NaN for ``alpha <= -2`` (no peak), as bayspec.
    """
    alpha, log_ep, log_a = params[0], params[1], params[2]
    # log10 Ec = log10 Ep - log10(2 + alpha), without forming 10**log_ep (which overflows); an
    # alpha without a peak is replaced by a harmless one in the unused evaluation.
    has_peak = alpha > -2.0
    alpha = jnp.where(has_peak, alpha, -1.0)
    value = cpl(energy, (alpha, log_ep - jnp.log10(2.0 + alpha), log_a))
    return jnp.where(has_peak, value, jnp.nan)


def band(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Band function (Band et al. 1993), pivot 100 keV; params ``(alpha, beta, log10 Ep, log10 A)``.

    NaN unless ``alpha > -2`` (a peak) and ``alpha > beta`` (a break), as bayspec's formula.
    """
    alpha, beta, log_ep, log_a = params[0], params[1], params[2], params[3]
    energy = jnp.asarray(energy)
    pivot = 100.0
    valid = (alpha > -2.0) & (alpha > beta) & jnp.isfinite(alpha - beta)
    alpha, beta = jnp.where(valid, alpha, -1.0), jnp.where(valid, beta, -3.0)
    # In logarithms (Ec = Ep / (2 + alpha), Eb = (alpha - beta) Ec), so that no parameter's
    # power of ten is formed: 10**log_ep overflows, and inf in a derivative is NaN.
    log_ec = log_ep * _LN10 - jnp.log(2.0 + alpha)
    # held finite (at +-sqrt(finfo.max), where the shape is already its limit) so that no
    # infinite break reaches a derivative
    bound = math.sqrt(float(jnp.finfo(jnp.result_type(log_ec)).max))
    log_ec = jnp.clip(log_ec, -bound, bound)
    log_eb = jnp.log(alpha - beta) + log_ec
    log_energy = jnp.log(energy / pivot)
    below = energy <= _exp(log_eb)
    low = alpha * log_energy - energy * _exp(-log_ec)
    # the high-energy branch on a harmless break where it is not used (an infinite one: NaN)
    log_eb = jnp.where(below, math.log(pivot), log_eb)
    high = (alpha - beta) * (log_eb - math.log(pivot)) + beta - alpha + beta * log_energy
    value = _exp(log_a * _LN10 + jnp.where(below, low, high))
    return jnp.where(valid, value, jnp.nan)


def bb(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Blackbody photon spectrum ``A 8.0525 E^2 / kT^4 / (exp(E/kT) - 1)``; params
    ``(log10 kT, log10 A)``."""
    log_kt, log_a = params[0], params[1]
    energy = jnp.asarray(energy)
    log_energy = jnp.log(energy)
    log_x = log_energy - log_kt * _LN10
    x = _exp(log_x)  # E / kT
    # log(1 / (exp(x) - 1)): -x - log(1 - exp(-x)), or -log(x) - x / 2 where x is so small that
    # the next term (x^2 / 24) is below rounding (and x itself may underflow to 0).
    small = x < math.sqrt(float(jnp.finfo(x.dtype).eps))
    x_large = jnp.where(small, 1.0, x)
    log_occupation = jnp.where(small, -log_x - 0.5 * x,
                               -x_large - jnp.log(-jnp.expm1(-x_large)))
    return _exp(log_a * _LN10 + math.log(8.0525) + 2.0 * log_energy - 4.0 * _LN10 * log_kt
                + log_occupation)


def sbpl(energy: ArrayLike, params, smoothness: float = 0.3) -> Float[Array, "..."]:
    """Smoothly broken power law with the nuFnu peak, pivot 1 keV; params
    ``(alpha, beta, log10 Ep, log10 A)``; NaN unless ``alpha > -2 > beta`` (as bayspec), and
    NaN for slopes so far apart (``|alpha| / |beta|`` or its inverse beyond ~1e16) that the
    break energy is not representable."""
    alpha1, alpha2, log_ep, log_a = params[0], params[1], params[2], params[3]
    energy = jnp.asarray(energy)
    ratio = (alpha1 + alpha2 + 4.0) / (alpha1 - alpha2)
    valid = ((alpha1 > -2.0) & (alpha2 < -2.0) & (jnp.abs(ratio) < 1.0)
             & jnp.isfinite(alpha1 + alpha2) & jnp.isfinite(alpha1 - alpha2))
    alpha1, alpha2 = jnp.where(valid, alpha1, -1.0), jnp.where(valid, alpha2, -3.0)
    ratio = (alpha1 + alpha2 + 4.0) / (alpha1 - alpha2)
    log_eb = log_ep - smoothness * jnp.arctanh(ratio)  # log10 of the break energy
    mid, half = (alpha1 + alpha2) / 2.0, (alpha2 - alpha1) / 2.0

    def log_cosh(q):
        return jnp.logaddexp(q, -q) - jnp.log(2.0)

    # A break beyond every float energy (|log10 Eb| > 1e4): the curvature term is then
    # +-log10(E) / smoothness exactly (a power law of slope beta or alpha); the formula there
    # would subtract two huge numbers.
    far = jnp.abs(log_eb) > 1e4
    log_energy = jnp.log10(energy / PIVOT_ENERGY)
    near_eb = jnp.where(far, 0.0, log_eb)
    q = (jnp.log10(energy) - near_eb) / smoothness
    q_pivot = (math.log10(PIVOT_ENERGY) - near_eb) / smoothness
    curvature = jnp.where(far, -jnp.sign(log_eb) * log_energy / smoothness,
                          log_cosh(q) - log_cosh(q_pivot))
    value = _pow10(log_a + mid * log_energy + half * smoothness * curvature)
    return jnp.where(valid, value, jnp.nan)


def add(*components):
    """The sum of models; params is a tuple with one entry per component."""
    return lambda energy, params: sum(f(energy, p) for f, p in zip(components, params))


def multiply(*components):
    """The product of models (e.g. an absorption times a continuum); params one per component."""
    def product(energy, params):
        value = 1.0
        for f, p in zip(components, params):
            value = value * f(energy, p)
        return value

    return product


# --------------------------------------------------------------------------------------------
# XSPEC models: absorption
# --------------------------------------------------------------------------------------------

_KEV_TO_ERG = 1.602176634e-9
"""One keV in erg (exact, SI 2019)."""


@functools.lru_cache(maxsize=1)
def _absorption_table() -> dict[str, np.ndarray]:
    """The committed cross-section table (``data_files/absorption.npz``, see its README): log
    energy and log cross section per H atom [1e-22 cm^2] per column, float64."""
    path = importlib.resources.files("bayspec_jax") / "data_files" / "absorption.npz"
    with importlib.resources.as_file(path) as file, np.load(file) as table:
        energy = np.asarray(table["energy"], dtype=np.float64)
        columns = {name: np.log(np.asarray(table[name], dtype=np.float64))
                   for name in table.files if name not in ("energy", "meta")}
    return {"log_energy": np.log(energy), **columns}


def _tabulated_cross_section(energy: ArrayLike, column: str) -> Array:
    """Cross section per H atom [1e-22 cm^2] at `energy` [keV] from the committed table: linear
    interpolation of log sigma in log E between the table's nodes (0.1 to 20 keV) and the end
    intervals' log-log slopes extrapolated outside it; ``+inf`` at ``E <= 0``."""
    table = _absorption_table()
    energy = jnp.asarray(energy, dtype=jnp.result_type(energy, float))
    positive = energy > 0
    log_energy = jnp.log(jnp.where(positive, energy, 1.0))
    log_sigma = jnp.interp(log_energy, table["log_energy"], table[column],
                           left="extrapolate", right="extrapolate")
    return jnp.where(positive, jnp.exp(log_sigma), jnp.inf)


def _transmission(n_h: ArrayLike, sigma: Array) -> Array:
    """``exp(-nH sigma)``, overflow-guarded (a negative nH), with an infinite sigma (``E <= 0``)
    giving 0 (1 at ``nH = 0``) and finite derivatives."""
    finite = jnp.isfinite(sigma)
    inside = _exp(-n_h * jnp.where(finite, sigma, 0.0))
    return jnp.where(finite, inside, jnp.where(n_h == 0, 1.0, jnp.where(n_h > 0, 0.0, jnp.inf)))


def tbabs(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Tuebingen-Boulder ISM absorption, XSPEC ``tbabs`` (Wilms, Allen & McCray 2000):
    ``exp(-nH sigma(E))``; params ``(nH,)``, nH in 1e22 cm^-2.

    ``sigma(E)`` is XSPEC's tbabs cross section per H atom with ``abund wilm`` (and tbabs' own
    Verner et al. 1996 cross sections, H2, grains and the Yan et al. 1998 He), tabulated at
    10276 energies from 0.1 to 20 keV (`data_files/README.md`) and interpolated linearly in
    log-log. Outside 0.1-20 keV the end slopes are extrapolated (a power law: good above 20 keV,
    where no edge of tbabs' elements lies; below 0.1 keV it misses the edges there).
    """
    return _transmission(params[0], _tabulated_cross_section(energy, "tbabs_wilm_vern"))


def phabs(energy: ArrayLike, params, xsect: str = "bcmc") -> Float[Array, "..."]:
    """Photoelectric absorption, XSPEC ``phabs`` with ``abund angr`` (Anders & Grevesse 1989):
    ``exp(-nH sigma(E))``; params ``(nH,)``, nH in 1e22 cm^-2.

    `xsect` picks the cross sections as XSPEC's ``xsect`` command: ``"bcmc"`` (the default here:
    Balucinska-Church & McCammon 1992 with the Yan et al. 1998 He cross section) or ``"vern"``
    (Verner et al. 1996; XSPEC's own default, so ``phabs(E, p, xsect="vern")`` is what an XSPEC
    session with default settings computes). Tabulated and interpolated as `tbabs`.
    """
    if xsect not in ("bcmc", "vern"):
        raise ValueError(f"phabs: xsect must be 'bcmc' or 'vern', not {xsect!r}")
    return _transmission(params[0], _tabulated_cross_section(energy, f"phabs_angr_{xsect}"))


# Morrison & McCammon (1983, ApJ 270, 119), Table 2: sigma(E) = (c0 + c1 E + c2 E^2) E^-3
# 1e-24 cm^2 per H atom, E in keV, in 14 ranges from 0.03 to 10 keV (solar abundances of
# Anders & Ebihara 1982, no grains); XSPEC ``wabs``.
_WABS_BOUNDS = (0.030, 0.100, 0.284, 0.400, 0.532, 0.707, 0.867, 1.303, 1.840, 2.471, 3.210,
                4.038, 7.111, 8.331, 10.000)
_WABS_COEFFICIENTS = (  # (c0, c1, c2) per range
    (17.3, 608.1, -2150.0), (34.6, 267.9, -476.1), (78.1, 18.8, 4.3), (71.4, 66.8, -51.4),
    (95.5, 145.8, -61.1), (308.9, -380.6, 294.0), (120.6, 169.3, -47.7), (141.3, 146.8, -31.5),
    (202.7, 104.7, -17.0), (342.7, 18.7, 0.0), (352.2, 18.7, 0.0), (433.9, -2.4, 0.75),
    (629.0, 30.9, 0.0), (701.2, 25.2, 0.0),
)


def wabs_cross_section(energy: ArrayLike) -> Float[Array, "..."]:
    """Morrison & McCammon (1983) cross section per H atom [1e-22 cm^2]: the range of each energy
    picked by its upper bound (an edge energy belongs to the range below it); above 10 keV the
    10 keV value times ``(E / 10 keV)^-3`` (the polynomial held at its 10 keV value, as XSPEC's
    wabs: checked against XSPEC's numbers to 20 keV); below 0.03 keV the first range's
    polynomial (not checked against XSPEC); ``+inf`` at ``E <= 0``."""
    energy = jnp.asarray(energy, dtype=jnp.result_type(energy, float))
    positive = energy > 0
    safe = jnp.where(positive, energy, 1.0)
    coefficients = jnp.asarray(_WABS_COEFFICIENTS, dtype=safe.dtype)
    index = jnp.searchsorted(jnp.asarray(_WABS_BOUNDS[1:-1], dtype=safe.dtype), safe, side="left")
    c0, c1, c2 = coefficients[index, 0], coefficients[index, 1], coefficients[index, 2]
    held = jnp.minimum(safe, _WABS_BOUNDS[-1])
    sigma = (c0 + held * (c1 + held * c2)) / safe**3 * 1e-2
    return jnp.where(positive, sigma, jnp.inf)


def wabs(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Wisconsin absorption, XSPEC ``wabs``: ``exp(-nH sigma_MM83(E))``; params ``(nH,)``, nH in
    1e22 cm^-2; ``sigma_MM83`` the Morrison & McCammon (1983) polynomials (`wabs_cross_section`),
    computed, not tabulated. Obsolete in XSPEC (kept for comparison with old results)."""
    return _transmission(params[0], wabs_cross_section(energy))


def _redshifted(absorption):
    def model(energy, params):
        return absorption(jnp.asarray(energy) * (1.0 + params[1]), (params[0],))

    model.__name__ = "z" + absorption.__name__
    model.__doc__ = (f"Redshifted `{absorption.__name__}`, XSPEC ``z{absorption.__name__}``: "
                     f"``exp(-nH sigma(E (1 + z)))``; params ``(nH, z)``, nH in 1e22 cm^-2.")
    return model


ztbabs = _redshifted(tbabs)
zphabs = _redshifted(phabs)
zwabs = _redshifted(wabs)


# --------------------------------------------------------------------------------------------
# XSPEC models: continua and lines
# --------------------------------------------------------------------------------------------

def powerlaw(energy: ArrayLike, params) -> Float[Array, "..."]:
    """XSPEC ``powerlaw``: ``norm E^-PhoIndex`` (norm in ph/cm^2/s/keV at 1 keV); params
    ``(PhoIndex, norm)``. The same as ``pl(E, (-PhoIndex, log10 norm))``; note the signs: our
    `pl` takes the slope ``alpha = -PhoIndex`` and a log10 normalisation."""
    index, norm = params[0], params[1]
    return norm * _exp(-index * jnp.log(jnp.asarray(energy) / PIVOT_ENERGY))


def zpowerlw(energy: ArrayLike, params) -> Float[Array, "..."]:
    """XSPEC ``zpowerlw``: ``norm (E (1 + z))^-PhoIndex``; params ``(PhoIndex, z, norm)``
    (norm at 1 keV in the source frame)."""
    index, z, norm = params[0], params[1], params[2]
    return norm * _exp(-index * jnp.log(jnp.asarray(energy) * (1.0 + z) / PIVOT_ENERGY))


def gauss(energy: ArrayLike, params) -> Float[Array, "..."]:
    """XSPEC ``gaussian``: ``norm / (Sigma sqrt(2 pi)) exp(-(E - LineE)^2 / (2 Sigma^2))``; params
    ``(LineE keV, Sigma keV, norm ph/cm^2/s)``; its integral over all energies is ``norm``.

    NaN for ``Sigma <= 0`` (XSPEC's delta function has no value at a point). The line is
    evaluated at points: resolve ``Sigma`` with the photon grid's nodes.
    """
    line, width, norm = params[0], params[1], params[2]
    energy = jnp.asarray(energy)
    valid = width > 0
    width = jnp.where(valid, width, 1.0)
    z = (energy - line) / width
    value = norm / (width * math.sqrt(2.0 * math.pi)) * jnp.exp(-0.5 * z * z)
    return jnp.where(valid, value, jnp.nan)


gaussian = gauss
"""XSPEC's name for `gauss`."""


def _bessel_k0e(x: Array) -> Array:
    """``exp(x) K0(x)`` for ``x > 0``: the polynomial approximations of Abramowitz & Stegun
    9.8.5 (``x <= 2``, error below 1e-8 in K0) and 9.8.6 (``x > 2``, below 1.9e-7 in
    ``sqrt(x) exp(x) K0(x)``)."""
    small = x <= 2.0
    xs = jnp.where(small, x, 1.0)
    t = (xs / 2.0) ** 2
    k0_small = (-jnp.log(xs / 2.0) * special.i0(xs) - 0.57721566
                + t * (0.42278420 + t * (0.23069756 + t * (0.03488590 + t * (0.00262698
                + t * (0.00010750 + t * 0.00000740))))))
    xl = jnp.where(small, 2.0, x)
    y = 2.0 / xl
    k0e_large = (1.25331414 + y * (-0.07832358 + y * (0.02189568 + y * (-0.01062446
                 + y * (0.00587872 + y * (-0.00251540 + y * 0.00053208)))))) / jnp.sqrt(xl)
    return jnp.where(small, k0_small * jnp.exp(xs), k0e_large)


BREMSS_HE_TO_H = 0.085
"""n(He)/n(H) that XSPEC's ``bremss`` assumes."""


def bremss(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Thermal bremsstrahlung, XSPEC ``bremss``'s formula with a stated Gaunt factor; params
    ``(kT keV, norm)``.

    ``N(E) = norm (g(E, kT) + 4 n_He/n_H g(E, kT)) exp(-E / kT) / (E sqrt(kT))`` with
    ``n_He/n_H = 0.085``, norm ``= 3.02e-15 / (4 pi D^2) int n_e n_H dV`` (XSPEC's). XSPEC uses
    the Kellogg, Baldwin & Koch (1975) fit to the Karzas & Latter Gaunt factor; here ``g`` is
    its high-temperature (Born) limit, the thermally averaged non-relativistic Born Gaunt factor
    ``g = sqrt(3) / pi exp(u / 2) K0(u / 2)``, ``u = E / kT`` (the same for H and He). It
    departs from XSPEC's by the Coulomb (Elwert) correction: up to several per cent at
    ``E >~ kT`` for ``kT`` of a few keV and below, less at higher kT. XSPEC also sets the flux
    to 0 at ``E > 50 kT``; here it is the formula's (tiny) value. NaN for ``kT <= 0``.
    """
    kt, norm = params[0], params[1]
    energy = jnp.asarray(energy)
    valid = kt > 0
    kt = jnp.where(valid, kt, 1.0)
    u = energy / kt
    gaunt_e_u = math.sqrt(3.0) / math.pi * _bessel_k0e(u / 2.0) * jnp.exp(-u)  # g exp(-u)
    value = norm * (1.0 + 4.0 * BREMSS_HE_TO_H) * gaunt_e_u / (energy * jnp.sqrt(kt))
    return jnp.where(valid, value, jnp.nan)


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return nodes, weights


# pi * 2 / (h^3 c^2) (photons/cm^2/s/keV per keV^2) times (1 km / 10 kpc)^2: the blackbody
# photon flux constant of XSPEC's bbodyrad / diskbb normalisations (CODATA 2018 values).
_H_KEV_S = 4.135667696e-18
_C_CM_S = 2.99792458e10
_KM_PER_10KPC = 1e5 / (1e4 * 3.0856775814913673e18)
DISKBB_CONSTANT = math.pi * 2.0 / (_H_KEV_S**3 * _C_CM_S**2) * _KM_PER_10KPC**2
_DISKBB_NODES, _DISKBB_WEIGHTS = _gauss_legendre(64)


def _disk_integral(x: Array) -> tuple[Array, Array]:
    """``I(x) = int_x^inf u^(5/3) / (exp(u) - 1) du`` for ``x > 0``, as ``(log of the
    quadrature part, the analytic part)``: ``I = exp(first) + second``.

    The part from ``max(x, 0.1)`` to that plus 45 (beyond, the integrand is below 1e-16 of the
    whole) by 64-point Gauss-Legendre in ``log u`` (the integrand ``u^(8/3) / (e^u - 1)`` is
    smooth there), written relative to ``exp(-max(x, 0.1))`` so that a large ``x`` does not
    underflow; below 0.1 the series ``int_x^0.1 u^(2/3) (1 - u/2 + u^2/12 - u^4/720) du``.
    """
    lo = jnp.maximum(x, 0.1)
    a, b = jnp.log(lo), jnp.log(lo + 45.0)
    half = 0.5 * (b - a)
    v = a[..., None] + half[..., None] * (jnp.asarray(_DISKBB_NODES) + 1.0)
    u = jnp.exp(v)
    # u^(8/3) exp(-(u - lo)) / (1 - exp(-u)): the integrand in log u times exp(lo)
    integrand = jnp.exp((8.0 / 3.0) * v - (u - lo[..., None])) / -jnp.expm1(-u)
    quadrature = half * jnp.sum(jnp.asarray(_DISKBB_WEIGHTS) * integrand, axis=-1)
    log_part = jnp.log(quadrature) - lo

    def series(w):
        return w ** (5.0 / 3.0) * (3.0 / 5.0 - w * (3.0 / 16.0 - w * (1.0 / 44.0
                                   - w**3 * (3.0 / 12240.0))))

    below = jnp.where(x < 0.1, series(0.1) - series(jnp.minimum(x, 0.1)), 0.0)
    return log_part, below


def diskbb(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Multicolour disc blackbody, XSPEC ``diskbb`` (Mitsuda et al. 1984, Makishima et al. 1986);
    params ``(Tin keV, norm)``, norm ``= (Rin / km)^2 / (D / 10 kpc)^2 cos(theta)``.

    ``N(E) = (8/3) C norm E^2 int_0^1 x^(-11/3) / (exp(E / (Tin x)) - 1) dx``, the disc with
    ``T(r) = Tin (r / Rin)^(-3/4)`` out to infinity, ``C = 2 pi / (h^3 c^2) (1 km / 10 kpc)^2``
    (`DISKBB_CONSTANT`, 1.0381e-3); written as
    ``(8/3) C norm Tin^2 (E/Tin)^(-2/3) int_{E/Tin}^inf u^(5/3) / (e^u - 1) du`` and integrated
    by a fixed quadrature (`_disk_integral`, relative error below 1e-10). XSPEC evaluates the
    same integral through Mitsuda's interpolation formula, stated good to 1e-4; its low-energy
    limit agrees with this one to about 1e-3 (XSPEC's constant 1/361 against ``(8/3) C
    Gamma(8/3) zeta(8/3) / 193.2``). NaN for ``Tin <= 0``.
    """
    tin, norm = params[0], params[1]
    energy = jnp.asarray(energy, dtype=jnp.result_type(energy, float))
    valid = tin > 0
    tin = jnp.where(valid, tin, 1.0)
    positive = energy > 0
    x = jnp.where(positive, energy, 1.0) / tin
    log_part, below = _disk_integral(x)
    log_x = jnp.log(x)
    value = (8.0 / 3.0) * DISKBB_CONSTANT * norm * tin * tin * (
        _exp(log_part - (2.0 / 3.0) * log_x) + below * _exp(-(2.0 / 3.0) * log_x))
    value = jnp.where(positive, value, jnp.nan)
    return jnp.where(valid, value, jnp.nan)


# --------------------------------------------------------------------------------------------
# XSPEC convolution: cflux
# --------------------------------------------------------------------------------------------

def band_energy_flux(model, params, emin: float, emax: float, panels: int = 32,
                     order: int = 8) -> Array:
    """Energy flux of `model` in ``[emin, emax]`` keV [erg/cm^2/s]: ``int E N(E) dE`` by
    composite Gauss-Legendre in ``log E`` (`panels` equal panels of `order` nodes)."""
    if not 0 < emin < emax:
        raise ValueError(f"band_energy_flux: need 0 < emin < emax, got {emin}, {emax}")
    nodes, weights = _gauss_legendre(order)
    edges = np.linspace(math.log(emin), math.log(emax), panels + 1)
    half = 0.5 * np.diff(edges)
    log_energy = (edges[:-1, None] + half[:, None] * (nodes + 1.0)).ravel()
    weight = (half[:, None] * weights).ravel()
    energy = jnp.exp(jnp.asarray(log_energy))
    flux = model(energy, params)
    return jnp.sum(jnp.asarray(weight) * energy * energy * flux) * _KEV_TO_ERG


def cflux(model, emin: float, emax: float, panels: int = 32, order: int = 8):
    """XSPEC's ``cflux`` convolution: `model` rescaled so that its energy flux in
    ``[emin, emax]`` keV is ``10**log10F`` erg/cm^2/s.

    Returns ``new(energy, params)`` with ``params = (log10F, *model's params)`` (the model gets
    ``params[1:]``). The band flux is `band_energy_flux` (a fixed quadrature on its own energies,
    not the data's grid as XSPEC's, which needs the energies to cover the band). As in XSPEC,
    freeze the model's own normalisation: it cancels. NaN where the model's band flux is not
    positive and finite.
    """
    if not 0 < emin < emax:
        raise ValueError(f"cflux: need 0 < emin < emax, got {emin}, {emax}")

    def scaled(energy, params):
        log_flux, inner = params[0], params[1:]
        band = band_energy_flux(model, inner, emin, emax, panels, order)
        good = (band > 0) & jnp.isfinite(band)
        band = jnp.where(good, band, 1.0)
        value = model(energy, inner) * (_pow10(log_flux) / band)
        return jnp.where(good, value, jnp.nan)

    return scaled
