"""A few photon models, pure `jax.numpy`, with bayspec's parameterisations.

Each model is ``model(energy, params)`` with `params` a sequence (or array) of the model's
parameters in the order documented, so that ``fold.integrate_bins(model, params, ...)`` and
`likelihood.loglike` accept it. Energies in keV; flux densities in ph/cm^2/s/keV. Write your
own model the same way: any elementwise `jnp` function of energy and a parameter pytree.

Extreme parameters (``log10 A = 1e300``, a cutoff energy of ``10**-1e300``) give a flux of
``+inf`` or 0, which the likelihood rejects or uses, with finite derivatives: every exponential
that can overflow is guarded the double-`where` way (`_exp`, `_pow10`), since ``exp`` past the
float range has an infinite derivative and a rejected point's zero cotangent times it is NaN.
A model of your own needs the same guard to keep its gradients finite there.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
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
