"""The fit space of bounded parameters: maximum likelihood inside the priors' supports.

A free parameter with a bounded prior (`unif`, `logunif`) is fitted through a smooth map from
an unconstrained coordinate ``u`` onto its support (MINUIT's transform for two-sided limits):

- `unif(low, high)`: ``x = low + (high - low) (sin u + 1) / 2``;
- `logunif(low, high)`: the same on ``log x`` (``log low`` to ``log high``), so that a range of
    decades is explored evenly;
- `norm` (or any prior without finite bounds): ``x = u``.

Every ``u`` maps inside the support, and the map reaches a bound at a finite ``u`` where its
derivative vanishes: an optimum pinned at a bound is a proper, quadratic minimum in ``u``, which
BFGS converges to (a logit would push ``u`` to infinity). At an interior optimum the fit in
``u`` has the same optimum as the fit in ``x``, and the inverse Hessian in ``x`` is the delta
method's covariance ``J H_u^-1 J^T`` (equal there, since the gradient vanishes).

A parameter whose best value lies within `AT_BOUND` (a fraction of its range, on the
transform's scale) of a bound is *at the bound*: its error is not meaningful (NaN), and the
covariance of the others is conditional on it (its row and column are 0), as XSPEC does with a
parameter "pegged at a hard limit".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ..params import Prior, logunif, unif

AT_BOUND = 1e-6
"""A parameter within this fraction of its range (``(x - low) / (high - low)``, in ``log x`` for
`logunif`) of a bound counts as at the bound."""

START_MARGIN = 1e-3
"""A start at (or outside) a bound is moved this fraction of the range inside: the transform's
derivative vanishes at the bound, where the optimiser would not move the parameter."""


def limits(priors: Sequence[Prior]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low, high, logarithmic)`` per parameter, on the transform's scale (``log`` of the
    bounds for `logunif`); ``(-inf, inf, False)`` for an unbounded prior."""
    low, high, log = [], [], []
    for prior in priors:
        if isinstance(prior, logunif):
            low.append(math.log(prior.low)), high.append(math.log(prior.high)), log.append(True)
        elif isinstance(prior, unif):
            low.append(prior.low), high.append(prior.high), log.append(False)
        else:
            low.append(-math.inf), high.append(math.inf), log.append(False)
    return (np.asarray(low, dtype=float), np.asarray(high, dtype=float),
            np.asarray(log, dtype=bool))


def _parts(priors: Sequence[Prior]):
    low, high, log = limits(priors)
    bounded = np.isfinite(low)
    # harmless finite stand-ins where unbounded (never selected)
    low_safe, high_safe = np.where(bounded, low, 0.0), np.where(bounded, high, 1.0)
    return bounded, log, low_safe, high_safe


def from_unconstrained(priors: Sequence[Prior], u: Float[Array, "*batch free"]
                       ) -> Float[Array, "*batch free"]:
    """The parameters ``x`` of unconstrained coordinates `u` (see the module docstring)."""
    bounded, log, low, high = _parts(priors)
    u = jnp.asarray(u)
    y = low + (high - low) * 0.5 * (jnp.sin(u) + 1.0)
    x = jnp.where(log, jnp.exp(jnp.where(log, y, 0.0)), y)
    return jnp.where(bounded, x, u)


def _fraction(priors: Sequence[Prior], x: Array) -> Array:
    """``(y - low) / (high - low)`` (``y`` = ``x`` or ``log x``); 0.5 where unbounded."""
    bounded, log, low, high = _parts(priors)
    x = jnp.asarray(x)
    y = jnp.where(log, jnp.log(jnp.where(log & (x > 0), x, 1.0)), x)
    y = jnp.where(log & (x <= 0), -jnp.inf, y)
    return jnp.where(bounded, (y - low) / (high - low), 0.5)


def to_unconstrained(priors: Sequence[Prior], x: Float[Array, "*batch free"],
                     margin: float = START_MARGIN) -> Float[Array, "*batch free"]:
    """Unconstrained coordinates of `x`, a start: values at or beyond a bound are first moved
    `margin` of the range inside it."""
    bounded, _, _, _ = _parts(priors)
    fraction = jnp.clip(_fraction(priors, x), margin, 1.0 - margin)
    u = jnp.arcsin(2.0 * fraction - 1.0)
    return jnp.where(bounded, u, jnp.asarray(x))


def at_bound(priors: Sequence[Prior], x: Float[Array, "*batch free"]
             ) -> Bool[Array, "*batch free"]:
    """Whether each parameter lies within `AT_BOUND` of its range from a bound."""
    bounded, _, _, _ = _parts(priors)
    fraction = _fraction(priors, x)
    return jnp.asarray(bounded) & ((fraction <= AT_BOUND) | (fraction >= 1.0 - AT_BOUND))


def conditional_covariance(hessian: Float[Array, "free free"], pinned: Bool[Array, " free"]
                           ) -> Float[Array, "free free"]:
    """The inverse of `hessian` over the parameters not `pinned`, with zero rows and columns for
    the pinned ones (the covariance of the others with those held at their bounds)."""
    keep = ~pinned
    both = keep[:, None] & keep[None, :]
    eye = jnp.eye(hessian.shape[-1], dtype=hessian.dtype)
    inverse = jnp.linalg.inv(jnp.where(both, hessian, eye))
    return jnp.where(both, inverse, 0.0)
