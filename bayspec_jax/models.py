"""A few photon models, pure `jax.numpy`, with bayspec's parameterisations.

Each model is ``model(energy, params)`` with `params` a sequence (or array) of the model's
parameters in the order documented, so that ``fold.integrate_bins(model, params, ...)`` and
`likelihood.loglike` accept it. Energies in keV; flux densities in ph/cm^2/s/keV. Write your
own model the same way: any elementwise `jnp` function of energy and a parameter pytree.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

_LN10 = math.log(10.0)
PIVOT_ENERGY = 1.0
"""Pivot energy [keV] of the power-law normalisations (bayspec's default)."""


def pl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Power law ``A (E / 1 keV)^alpha``; params ``(alpha, log10 A)``."""
    alpha, log_a = params[0], params[1]
    return jnp.exp(log_a * _LN10 + alpha * jnp.log(jnp.asarray(energy) / PIVOT_ENERGY))


def cpl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law ``A (E / 1 keV)^alpha exp(-E / Ec)``; params ``(alpha, log10 Ec, log10 A)``."""
    alpha, log_ec, log_a = params[0], params[1], params[2]
    energy = jnp.asarray(energy)
    # One exponential of the summed logarithms (fewer transcendental functions per energy).
    return jnp.exp(log_a * _LN10 + alpha * jnp.log(energy / PIVOT_ENERGY)
                   - energy * 10.0**-log_ec)


def cpl_peak(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law with the nuFnu peak energy; params ``(alpha, log10 Ep, log10 A)``.

    ``Ec = Ep / (2 + alpha)``; NaN for ``alpha <= -2`` (no peak), as bayspec.
    """
    alpha, log_ep, log_a = params[0], params[1], params[2]
    ec = 10.0**log_ep / (2.0 + alpha)
    value = cpl(energy, (alpha, jnp.log10(jnp.abs(ec)), log_a))
    return jnp.where(alpha > -2.0, value, jnp.nan)


def band(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Band function (Band et al. 1993), pivot 100 keV; params ``(alpha, beta, log10 Ep, log10 A)``."""
    alpha, beta, log_ep, log_a = params[0], params[1], params[2], params[3]
    energy = jnp.asarray(energy)
    pivot = 100.0
    ec = 10.0**log_ep / (2.0 + alpha)
    eb = (alpha - beta) * ec
    log_energy = jnp.log(energy / pivot)
    low = alpha * log_energy - energy / ec
    high = (alpha - beta) * jnp.log(eb / pivot) + beta - alpha + beta * log_energy
    return jnp.exp(log_a * _LN10 + jnp.where(energy <= eb, low, high))


def bb(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Blackbody photon spectrum ``A 8.0525 E^2 / kT^4 / (exp(E/kT) - 1)``; params
    ``(log10 kT, log10 A)``."""
    log_kt, log_a = params[0], params[1]
    energy = jnp.asarray(energy)
    kt = 10.0**log_kt
    x = energy / kt
    return 10.0**log_a * 8.0525 * energy**2 / kt**4 * jnp.exp(-x) / (-jnp.expm1(-x))


def sbpl(energy: ArrayLike, params, smoothness: float = 0.3) -> Float[Array, "..."]:
    """Smoothly broken power law with the nuFnu peak, pivot 1 keV; params
    ``(alpha, beta, log10 Ep, log10 A)``; NaN unless ``alpha > -2 > beta`` (as bayspec)."""
    alpha1, alpha2, log_ep, log_a = params[0], params[1], params[2], params[3]
    energy = jnp.asarray(energy)
    valid = (alpha1 > -2.0) & (alpha2 < -2.0)
    ratio = jnp.where(valid, (alpha1 + alpha2 + 4.0) / (alpha1 - alpha2), 0.0)
    eb = 10.0**log_ep / 10.0 ** (smoothness * jnp.arctanh(ratio))
    mid, half = (alpha1 + alpha2) / 2.0, (alpha2 - alpha1) / 2.0

    def log_cosh(q):
        return jnp.logaddexp(q, -q) - jnp.log(2.0)

    q = jnp.log10(energy / eb) / smoothness
    q_pivot = jnp.log10(PIVOT_ENERGY / eb) / smoothness
    shape = half * smoothness * (log_cosh(q) - log_cosh(q_pivot))
    value = 10.0**log_a * (energy / PIVOT_ENERGY) ** mid * 10.0**shape
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
