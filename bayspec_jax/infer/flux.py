"""Fluxes in an energy band, with errors (XSPEC's ``flux err`` and ``lumin``).

`band_flux` integrates a photon model over a band, pure JAX. `flux` gives a value with errors:

- from a `FitResult`: the free parameters are drawn from the multivariate normal of the fit's
    covariance (draws outside the priors' supports are dropped), each draw's flux computed,
    and the interval is the draws' central percentiles (XSPEC ``flux err``); the delta-method
    error ``sqrt(g^T C g)`` (``g`` the flux's gradient) is given alongside;
- from a `Posterior`: each posterior draw's flux, and the posterior's percentiles;
- from model parameter vectors ``(draw, param)``: their fluxes' percentiles.

The model is any ``model(energy, params)`` taking the problem's whole model vector
(`Problem.full`): for an absorbed model, pass a function of the same vector that leaves the
absorption out to get the unabsorbed flux, e.g. ``lambda e, p: models.pl(e, p[1:])`` for
``lambda e, p: phabs(e, p[:1]) * models.pl(e, p[1:])``.

Units: energies in keV, the model in ph/cm^2/s/keV; energy flux in erg/cm^2/s, photon flux in
ph/cm^2/s, luminosity in erg/s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import bounds
from .mle import FitResult
from .problem import Problem
from .results import Posterior

__all__ = ["KEV_TO_ERG", "MPC_TO_CM", "Flux", "band_flux", "flux", "parameter_draws"]

KEV_TO_ERG = 1.602176634e-9
"""One keV in erg."""

MPC_TO_CM = 3.0856775814913673e24
"""One megaparsec in cm."""

KINDS = ("energy", "photon", "luminosity")
UNITS = {"energy": "erg/cm^2/s", "photon": "ph/cm^2/s", "luminosity": "erg/s"}


def _nodes(band: tuple[float, float], n_intervals: int, order: int) -> tuple[np.ndarray, ...]:
    """Composite Gauss-Legendre nodes and weights in ``log E`` over `band` (energies, and the
    weights of ``dE`` = ``E d(log E)``)."""
    low, high = float(band[0]), float(band[1])
    if not (0 < low < high < math.inf):
        raise ValueError(f"band must be (low, high) with 0 < low < high [keV], got {band!r}")
    x, w = np.polynomial.legendre.leggauss(int(order))
    edges = np.linspace(math.log(low), math.log(high), int(n_intervals) + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    log_e = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    energy = np.exp(log_e)
    weight = (half[:, None] * w[None, :]).ravel() * energy
    return energy, weight


def band_flux(model: Callable, params, band: tuple[float, float] = (0.5, 7.0),
              kind: str = "energy", *, distance_cm: float | None = None, redshift: float = 0.0,
              n_intervals: int = 256, order: int = 8) -> Float[Array, ""]:
    """The flux of ``model(energy, params)`` in `band`, pure JAX (`jit`, `vmap`, `grad`).

    **Arguments:**

    - `model`: ``model(energy [keV], params)`` -> ph/cm^2/s/keV.
    - `params`: its parameters (one vector: `vmap` for many).
    - `band`: ``(low, high)`` [keV]; with a `redshift`, in the source's rest frame.
    - `kind`: ``'energy'`` (``∫ E N(E) dE`` in erg/cm^2/s), ``'photon'`` (``∫ N(E) dE`` in
        ph/cm^2/s) or ``'luminosity'`` (``4 pi d_L^2`` times the energy flux, erg/s).
    - `distance_cm`: the luminosity distance [cm] (`MPC_TO_CM` converts), for ``'luminosity'``.
    - `redshift`: the source's; the observed band integrated is ``band / (1 + z)``, so that
        the luminosity is the rest-frame band's (as XSPEC ``lumin``).
    - `n_intervals`, `order`: the quadrature: `n_intervals` equal steps in ``log E``, each with
        `order` Gauss-Legendre nodes (exact to rounding for smooth spectra; raise
        `n_intervals` for sharp edges and lines).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "luminosity" and not (distance_cm is not None and distance_cm > 0):
        raise ValueError("kind='luminosity' needs distance_cm > 0 (the luminosity distance in cm)")
    if not redshift > -1:
        raise ValueError(f"redshift must be > -1, got {redshift!r}")
    scale = 1.0 + float(redshift)
    energy, weight = _nodes((band[0] / scale, band[1] / scale), n_intervals, order)
    density = model(jnp.asarray(energy), params)
    if kind == "photon":
        return jnp.sum(weight * density)
    energy_flux = jnp.sum(weight * energy * density) * KEV_TO_ERG
    if kind == "energy":
        return energy_flux
    return 4.0 * math.pi * float(distance_cm) ** 2 * energy_flux


@dataclasses.dataclass(frozen=True)
class Flux:
    """A flux with its interval.

    **Fields:** `kind`, `band`, `units`; `value` (at the best fit, or the draws' median);
    `lower`, `upper` (the draws' central percentiles holding `mass`); `delta_error` (the
    delta method's 1-sigma error, from a `FitResult`; else NaN); `samples` (each draw's flux,
    ``(draw,)``); `mass`; `n_dropped` (covariance draws outside the priors' supports).
    """

    kind: str
    band: tuple[float, float]
    units: str
    value: float
    lower: float
    upper: float
    delta_error: float
    samples: np.ndarray
    mass: float
    n_dropped: int = 0

    @property
    def errors(self) -> tuple[float, float]:
        """``(lower - value, upper - value)``."""
        return self.lower - self.value, self.upper - self.value

    def table(self) -> str:
        minus, plus = self.errors
        return (f"{self.kind} flux {self.band[0]:g}-{self.band[1]:g} keV: {self.value:.6g} "
                f"({minus:+.3g}, {plus:+.3g}) {self.units} [{100 * self.mass:.4g}%, "
                f"{self.samples.shape[0]} draws]")

    def __str__(self) -> str:
        return self.table()


def parameter_draws(problem: Problem, source: FitResult | Posterior, n_draws: int = 2000,
                    key: PRNGKeyArray | None = None
                    ) -> tuple[Float[Array, "draw free"], int]:
    """Free-parameter draws: from a fit's multivariate normal (those outside the priors'
    supports dropped), or a posterior's samples (chains concatenated).

    **Returns:** ``(draws, n_dropped)``.
    """
    dtype = jnp.result_type(float)
    if isinstance(source, Posterior):
        if source.batch_ndim:
            raise ValueError("pass one spectrum's posterior: posterior[i]")
        return jnp.stack([jnp.asarray(source.flat(n), dtype) for n in problem.names], -1), 0
    if not isinstance(source, FitResult):
        raise ValueError(f"expected a FitResult or a Posterior, got {type(source).__name__}")
    if key is None:
        raise ValueError("drawing from a fit's covariance needs a key (jax.random.PRNGKey)")
    covariance = np.nan_to_num(np.asarray(source.covariance, dtype=np.float64))
    draws = jax.random.multivariate_normal(key, jnp.asarray(source.best, dtype),
                                           jnp.asarray(covariance, dtype), (int(n_draws),),
                                           method="eigh")
    low, high, log = bounds.limits(problem.objective.priors)
    low, high = np.where(log, np.exp(low), low), np.where(log, np.exp(high), high)
    draws = np.asarray(draws)
    inside = np.all((draws >= low) & (draws <= high), axis=-1)
    return jnp.asarray(draws[inside]), int((~inside).sum())


def flux(model: Callable, params_or_samples, band: tuple[float, float] = (0.5, 7.0),
         kind: str = "energy", *, problem: Problem | None = None,
         key: PRNGKeyArray | None = None, n_draws: int = 2000, mass: float = 0.6827,
         distance_cm: float | None = None, redshift: float = 0.0, n_intervals: int = 256,
         order: int = 8) -> Flux:
    """A band flux with its interval (see the module docstring).

    **Arguments:**

    - `model`: ``model(energy, params)`` on the whole model vector (for a `Problem`,
        ``problem.model``, or a component of it such as the unabsorbed continuum).
    - `params_or_samples`: a model vector ``(param,)`` (no errors); model vectors
        ``(draw, param)``; a `FitResult` or a `Posterior` (with `problem`).
    - `band`, `kind`, `distance_cm`, `redshift`, `n_intervals`, `order`: as `band_flux`.
    - `problem`: the fitted `Problem` (maps free values to the model vector, `Problem.full`).
    - `key`, `n_draws`: the random key and number of draws from a fit's covariance.
    - `mass`: the central probability of the interval (0.6827: 1 sigma; 0.9).

    **Returns:** a `Flux`.
    """
    if not 0 < mass < 1:
        raise ValueError(f"mass must lie in (0, 1), got {mass!r}")
    options = {"band": band, "kind": kind, "distance_cm": distance_cm, "redshift": redshift,
               "n_intervals": n_intervals, "order": order}

    def one(params):
        return band_flux(model, params, **options)

    value, delta_error, n_dropped = math.nan, math.nan, 0
    if isinstance(params_or_samples, (FitResult, Posterior)):
        if problem is None:
            raise ValueError("a FitResult or Posterior needs the problem= it was fitted with")
        free, n_dropped = parameter_draws(problem, params_or_samples, n_draws, key)
        full = jax.jit(jax.vmap(problem.full))(free)
        if isinstance(params_or_samples, FitResult):
            best = jnp.asarray(params_or_samples.best)
            of_free = jax.jit(jax.value_and_grad(lambda x: one(problem.full(x))))
            value, gradient = of_free(best)
            value, gradient = float(value), np.asarray(gradient)
            covariance = np.nan_to_num(np.asarray(params_or_samples.covariance))
            delta_error = float(np.sqrt(max(gradient @ covariance @ gradient, 0.0)))
    else:
        full = jnp.asarray(params_or_samples, dtype=jnp.result_type(float))
        if full.ndim == 1:
            value = float(jax.jit(one)(full))
            return Flux(kind, tuple(band), UNITS[kind], value, value, value, math.nan,
                        np.asarray([value]), float(mass))
        if full.ndim != 2:
            raise ValueError(f"params must have shape (param,) or (draw, param), got "
                             f"{full.shape}")
    samples = np.asarray(jax.jit(jax.vmap(one))(full))
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        raise ValueError("no draw gave a finite flux")
    tail = 0.5 * (1.0 - mass)
    lower, median, upper = np.quantile(finite, [tail, 0.5, 1.0 - tail])
    if math.isnan(value):
        value = float(median)
    return Flux(kind, (float(band[0]), float(band[1])), UNITS[kind], value, float(lower),
                float(upper), delta_error, samples, float(mass), n_dropped)
