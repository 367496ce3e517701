"""A few photon models, pure `jax.numpy`, with bayspec's parameterisations.

Each model is ``model(energy, params)`` with `params` a sequence (or array) of the model's
parameters in the order documented, so that ``fold.integrate_bins(model, params, ...)`` and
`likelihood.loglike` accept it. Energies in keV; flux densities in ph/cm^2/s/keV. Write your
own model the same way: any elementwise `jnp` function of energy and a parameter pytree.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

PIVOT_ENERGY = 1.0
"""Pivot energy [keV] of the power-law normalisations (bayspec's default)."""


def pl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Power law ``A (E / 1 keV)^alpha``; params ``(alpha, log10 A)``."""
    alpha, log_a = params[0], params[1]
    return 10.0**log_a * (jnp.asarray(energy) / PIVOT_ENERGY) ** alpha


def cpl(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law ``A (E / 1 keV)^alpha exp(-E / Ec)``; params ``(alpha, log10 Ec, log10 A)``."""
    alpha, log_ec, log_a = params[0], params[1], params[2]
    energy = jnp.asarray(energy)
    return 10.0**log_a * (energy / PIVOT_ENERGY) ** alpha * jnp.exp(-energy / 10.0**log_ec)


def cpl_peak(energy: ArrayLike, params) -> Float[Array, "..."]:
    """Cutoff power law with the nuFnu peak energy; params ``(alpha, log10 Ep, log10 A)``.

    ``Ec = Ep / (2 + alpha)``; NaN for ``alpha <= -2`` (no peak), as bayspec.
    """
    alpha, log_ep, log_a = params[0], params[1], params[2]
    ec = 10.0**log_ep / (2.0 + alpha)
    value = cpl(energy, (alpha, jnp.log10(jnp.abs(ec)), log_a))
    return jnp.where(alpha > -2.0, value, jnp.nan)
