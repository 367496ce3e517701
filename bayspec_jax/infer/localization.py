"""Localization maps: the log-likelihood of a source's sky position on a grid of positions.

A `Problem` whose data has a location-dependent response (`BalrogResponse`) has the source's
position among its free parameters (``'ra@n6'``, ``'dec@n6'``, or one linked pair for several
detectors). `localization_map` evaluates the log-likelihood at every position of a grid, in one
jitted call (`jax.vmap` over chunks of positions), either

- ``"profile"``: maximised over the other free parameters (the spectrum's, and any free data
    factor) at each position: a BFGS fit (optimistix) per position, in coordinates whitened by
    the Hessian at the reference fit and started there; or
- ``"conditional"``: with the other free parameters fixed at the reference values.

`sky_grid` gives near-equal-area positions (a Fibonacci sphere), so that with a uniform prior on
the sphere the posterior probability of a grid point is proportional to ``exp(loglike)``, and
`credible_regions` gives the smallest sets of points holding given probabilities.
`bayspec_jax.plot.plot_sky_map` draws the map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ..likelihood import loglike
from .mle import FitResult, difference_hessian
from .problem import Objective, Problem

METHODS = ("profile", "conditional")
"""What `localization_map` does with the parameters other than the position."""

GOLDEN_ANGLE_DEG = 180.0 * (3.0 - np.sqrt(5.0))
"""The azimuth step between successive points of the Fibonacci sphere [deg]."""

FULL_SKY_DEG2 = 4.0 * np.pi * (180.0 / np.pi) ** 2
"""The area of the sphere [deg^2] (about 41253)."""


def sky_grid(n: int) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    """`n` near-equal-area positions on the sky (a Fibonacci sphere).

    Point ``i`` has ``sin(dec) = 1 - (2 i + 1) / n`` and ``ra = i * 137.5...`` deg (the golden
    angle) modulo 360: each stands for the same area, ``4 pi / n`` sr, with neighbours about
    ``sqrt(41253 / n)`` deg apart (2 deg for ``n = 10^4``).

    **Arguments:** `n`: the number of positions (at least 1).

    **Returns:** ``(ra, dec)`` [deg], each ``(n,)`` (numpy, float64); ra in [0, 360).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"sky_grid: n must be an integer >= 1, got {n!r}")
    index = np.arange(int(n), dtype=np.float64)
    dec = np.degrees(np.arcsin(1.0 - (2.0 * index + 1.0) / n))
    ra = np.mod(index * GOLDEN_ANGLE_DEG, 360.0)
    return ra, dec


def credible_regions(loglike: Float[ArrayLike, " n"], levels: Sequence[float] = (0.68, 0.95)
                     ) -> Bool[Array, "level n"]:
    """The smallest sets of grid points holding the posterior probabilities `levels`.

    The points are taken to stand for equal areas (as `sky_grid`'s) under a uniform prior on
    the sphere, so point ``i`` has posterior probability ``exp(loglike_i - max) / sum(...)``.
    For each level the region is the most probable points, in decreasing order, up to and
    including the first at which their cumulative probability reaches the level. Points with a
    non-finite `loglike` have probability 0. Pure `jnp` (`jit` it with `levels` static).

    **Arguments:**

    - `loglike`: the log-likelihood per point ``(n,)`` (e.g. `LocalizationMap.loglike`).
    - `levels`: probabilities in (0, 1].

    **Returns:** boolean masks ``(level, n)``, one row per level, in the order given.
    """
    levels = tuple(float(level) for level in levels)
    if not levels or not all(0.0 < level <= 1.0 for level in levels):
        raise ValueError(f"credible_regions: levels must be probabilities in (0, 1], got "
                         f"{levels!r}")
    loglike = jnp.asarray(loglike)
    if loglike.ndim != 1 or loglike.shape[0] < 1:
        raise ValueError(f"credible_regions: loglike must have shape (n,), got {loglike.shape}")
    mass = enclosed_probability(loglike)
    return jnp.stack([mass - _own_probability(loglike) < level for level in levels])


def _own_probability(loglike: Array) -> Array:
    finite = jnp.isfinite(loglike)
    peak = jnp.max(jnp.where(finite, loglike, -jnp.inf))
    weight = jnp.where(finite, jnp.exp(jnp.where(finite, loglike, peak) - peak), 0.0)
    return weight / jnp.sum(weight)


def enclosed_probability(loglike: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
    """For each grid point, the posterior probability of the points at least as probable as it
    (itself included; ties broken by order): the smallest credible region containing the point
    holds this probability (``credible_regions`` thresholds it). Equal-area points, uniform
    prior; non-finite `loglike` has probability 0 (and 1 here)."""
    loglike = jnp.asarray(loglike)
    probability = _own_probability(loglike)
    order = jnp.argsort(-probability, stable=True)
    cumulative = jnp.cumsum(probability[order])
    return jnp.zeros_like(cumulative).at[order].set(cumulative)


@dataclasses.dataclass(frozen=True)
class LocalizationMap:
    """The log-likelihood of the source position on a grid (host-side numpy arrays).

    **Fields:**

    - `ra`, `dec`: the positions [deg] ``(n,)``.
    - `loglike`: the log-likelihood at each ``(n,)``: ``-inf`` where it is not finite.
    - `method`: ``"profile"`` or ``"conditional"``.
    - `names`: the problem's free parameters other than the position.
    - `params`: their values at each position ``(n, k)`` (the best ones for ``"profile"``, the
        reference ones for ``"conditional"``).
    - `converged`: whether the fit at each position converged ``(n,)`` (all `True` for
        ``"conditional"``); `num_steps`: its BFGS steps (0 for ``"conditional"``).
    """

    ra: np.ndarray
    dec: np.ndarray
    loglike: np.ndarray
    method: str
    names: list[str]
    params: np.ndarray
    converged: np.ndarray
    num_steps: np.ndarray

    def __len__(self) -> int:
        return self.loglike.shape[0]

    @property
    def best_index(self) -> int:
        """The grid point of the highest log-likelihood."""
        return int(np.argmax(self.loglike))

    @property
    def best(self) -> tuple[float, float]:
        """``(ra, dec)`` [deg] of the grid point of the highest log-likelihood."""
        i = self.best_index
        return float(self.ra[i]), float(self.dec[i])

    def regions(self, levels: Sequence[float] = (0.68, 0.95)) -> np.ndarray:
        """`credible_regions` of the map: boolean masks ``(level, n)``."""
        return np.asarray(credible_regions(self.loglike, levels))

    def areas(self, levels: Sequence[float] = (0.68, 0.95),
              point_area: float | None = None) -> np.ndarray:
        """The areas [deg^2] of the credible regions: their numbers of points times
        `point_area` [deg^2], by default ``41253 / n`` (a whole-sky equal-area grid such as
        `sky_grid(n)`; for part of one, ``41253 / N`` of the whole grid's ``N``)."""
        area = FULL_SKY_DEG2 / len(self) if point_area is None else float(point_area)
        return self.regions(levels).sum(axis=1) * area


def _position_parameters(problem: Problem) -> tuple[int, int]:
    """The indices in the free vector of the free ra and dec."""
    found: dict[str, list[str]] = {"ra": [], "dec": []}
    for row in problem.all_params:
        if row["Free"] and row["Class"] == "data" and row["Parameter"] in found:
            found[row["Parameter"]].append(row["Name"])
    if len(found["ra"]) != 1 or len(found["dec"]) != 1:
        raise ValueError(
            f"localization_map needs exactly one free ra and one free dec (a unit with a "
            f"location-dependent response, or several units whose ra and dec are linked: "
            f"links=[('ra@a', 'ra@b'), ('dec@a', 'dec@b')]); free ones: ra {found['ra']}, dec "
            f"{found['dec']}")
    for name in (found["ra"][0], found["dec"][0]):
        if problem.pars[name].scale != "linear":
            raise ValueError(f"localization_map: {name!r} must have a linear scale (degrees)")
    return problem.names.index(found["ra"][0]), problem.names.index(found["dec"][0])


def _reference(problem: Problem, reference: Any) -> Array:
    dtype = jnp.result_type(float)
    if reference is None:
        return problem.initial().astype(dtype)
    if isinstance(reference, FitResult):
        if list(reference.names) != list(problem.names):
            raise ValueError(f"localization_map: the reference fit's parameters "
                             f"{reference.names} are not the problem's {problem.names}")
        reference = reference.best
    value = jnp.asarray(reference, dtype=dtype)
    if value.shape != (problem.n_free,):
        raise ValueError(f"localization_map: reference must have shape ({problem.n_free},) "
                         f"(free parameters {problem.names}), got {tuple(value.shape)}")
    if not bool(jnp.all(jnp.isfinite(value))):
        raise ValueError("localization_map: reference must be finite")
    return value


def _whitening(negative, start: Float[Array, " k"]) -> Float[Array, "k k"]:
    """``T`` with ``T^T H T ~ I`` for the Hessian ``H`` of `negative` at `start` (by central
    differences of its gradient, `mle.difference_hessian`, which compiles faster than
    `jax.hessian`; eigenvalues taken in absolute value and floored; the identity where the
    Hessian vanishes or is not finite), so that BFGS starts well scaled."""
    hessian = difference_hessian(jax.grad(negative), start)
    good = jnp.all(jnp.isfinite(hessian))
    values, vectors = jnp.linalg.eigh(jnp.where(good, hessian, jnp.eye(start.shape[0])))
    values = jnp.abs(values)
    top = jnp.max(values)
    floor = jnp.maximum(top * 1e-10, jnp.finfo(values.dtype).tiny)
    transform = vectors / jnp.sqrt(jnp.maximum(values, floor))
    return jnp.where(good & (top > 0), transform, jnp.eye(start.shape[0], dtype=start.dtype))


def _map_core(objective: Objective, setup: tuple, counts: tuple, reference: Array,
              ra: Array, dec: Array, position: tuple[int, int], method: str,
              batch_size: int | None, rtol: float, atol: float, max_steps: int):
    """The map as one pure function: ``(loglike, params, converged, num_steps)`` at every
    position (`jax.lax.map` over chunks of `batch_size` positions, each chunk a `jax.vmap`)."""
    n_free = reference.shape[0]
    others = np.array([i for i in range(n_free) if i not in position], dtype=int)
    place = np.asarray(position, dtype=int)
    start = reference[others]

    def free_vector(values: Array, ra_: Array, dec_: Array) -> Array:
        x = reference.at[others].set(values) if others.size else reference
        return x.at[place].set(jnp.stack([ra_, dec_]).astype(reference.dtype))

    def raw_loglike(values: Array, ra_: Array, dec_: Array) -> Array:
        x = free_vector(values, ra_, dec_)
        data_params = dict(objective.data_params(x))
        # the position is held, not fitted: cut its derivatives, or the gradient in `values`
        # would also run through the response's geometry (ra and dec sit in one vector with
        # them), which costs several times the rest of a step
        for label in ("ra", "dec"):
            data_params[label] = jax.lax.stop_gradient(data_params[label])
        return loglike(objective.model, objective.full(x), setup, counts, data_params)

    def loglike_at(values: Array, ra_: Array, dec_: Array) -> Array:
        value = raw_loglike(values, ra_, dec_)
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    if method == "conditional" or others.size == 0:
        def one(position_):
            ra_, dec_ = position_
            return loglike_at(start, ra_, dec_), start, jnp.array(True), jnp.array(0)
    else:
        import optimistix as optx

        reference_ra, reference_dec = reference[place[0]], reference[place[1]]
        transform = _whitening(lambda v: -loglike_at(v, reference_ra, reference_dec), start)

        def one(position_):
            ra_, dec_ = position_

            def negative(z, _):
                value = -2.0 * raw_loglike(start + transform @ z, ra_, dec_)
                return jnp.where(jnp.isnan(value), jnp.inf, value)

            solution = optx.minimise(negative, optx.BFGS(rtol=rtol, atol=atol),
                                     jnp.zeros_like(start), args=None, max_steps=max_steps,
                                     throw=False)
            values = start + transform @ solution.value
            fitted, initial = loglike_at(values, ra_, dec_), loglike_at(start, ra_, dec_)
            # never worse than the start: an unfinished line search may end above it
            better = fitted >= initial
            return (jnp.where(better, fitted, initial), jnp.where(better, values, start),
                    solution.result == optx.RESULTS.successful, solution.stats["num_steps"])

    if batch_size is None or batch_size >= ra.shape[0]:
        return jax.vmap(one)((ra, dec))
    # padded to whole chunks (with the last position): one compiled chunk, no remainder
    n = ra.shape[0]
    padded = -(-n // batch_size) * batch_size
    ra, dec = (jnp.concatenate([a, jnp.broadcast_to(a[-1], (padded - n,))]) for a in (ra, dec))
    chunks = (ra.reshape(-1, batch_size), dec.reshape(-1, batch_size))
    out = jax.lax.map(jax.vmap(one), chunks)
    return jax.tree.map(lambda a: a.reshape(padded, *a.shape[2:])[:n], out)


_map_jit = eqx.filter_jit(_map_core)


def localization_map(problem: Problem, ra: Float[ArrayLike, " n"], dec: Float[ArrayLike, " n"],
                     *, method: str = "profile",
                     reference: FitResult | Float[ArrayLike, " free"] | None = None,
                     batch_size: int | None = 1024, rtol: float = 1e-6, atol: float = 1e-4,
                     max_steps: int = 100) -> LocalizationMap:
    """The log-likelihood of the source position at every `(ra, dec)`, in one jitted call.

    The position is the problem's free ra and dec (one unit's, or one linked pair for several
    units; a unit whose ra and dec are frozen keeps its own); the other free parameters (the
    spectrum's, free data factors) are

    - ``method="profile"``: maximised at each position: BFGS (optimistix) on ``-2 loglike`` from
        the `reference` values, in coordinates whitened by the Hessian of ``-loglike`` at the
        reference (so that a well-scaled problem converges in a few tens of steps); never
        below the conditional value;
    - ``method="conditional"``: fixed at the `reference` values.

    All positions are evaluated by one compiled program: `jax.lax.map` over chunks of
    `batch_size` positions, each chunk a `jax.vmap` (under `vmap` a BFGS loop runs until the
    slowest position of its chunk is done). Chunks bound the memory (a BALROG response with
    atmospheric scattering needs megabytes per position) and are faster on a CPU than one
    `vmap` over 10^4 positions; on a GPU take larger ones.

    **Arguments:**

    - `problem`: the `Problem` (model, parameters, data with a location-dependent response).
    - `ra`, `dec`: the positions [deg] ``(n,)``, e.g. `sky_grid`.
    - `method`: ``"profile"`` or ``"conditional"``.
    - `reference`: the free values (position included) to start from or to hold: a `FitResult`
        of the problem (its `best`) or an array ``(free,)``; default: the `Par` values. Use
        the best fit.
    - `batch_size`: positions per `vmap` chunk; `None`: all at once.
    - `rtol`, `atol`, `max_steps`: the BFGS settings (``"profile"``); the tolerances apply
        to ``-2 loglike`` and to the whitened coordinates.

    **Returns:** a `LocalizationMap`; `credible_regions(map.loglike)` gives the 68/95%
    regions, `bayspec_jax.plot.plot_sky_map` draws it.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"localization_map: problem must be an infer.Problem, got "
                         f"{type(problem).__name__}")
    if method not in METHODS:
        raise ValueError(f"localization_map: method must be one of {METHODS}, got {method!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"localization_map: batch_size must be None or an integer >= 1, got "
                         f"{batch_size!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or \
            max_steps < 1:
        raise ValueError(f"localization_map: max_steps must be an integer >= 1, got "
                         f"{max_steps!r}")
    position = _position_parameters(problem)
    x0 = _reference(problem, reference)
    dtype = jnp.result_type(float)
    ra_np = np.asarray(ra, dtype=np.float64)
    dec_np = np.asarray(dec, dtype=np.float64)
    if ra_np.ndim != 1 or ra_np.shape != dec_np.shape or ra_np.size < 1:
        raise ValueError(f"localization_map: ra and dec must be 1-d arrays of one length, got "
                         f"shapes {ra_np.shape} and {dec_np.shape}")
    if not (np.all(np.isfinite(ra_np)) and np.all(np.isfinite(dec_np))):
        raise ValueError("localization_map: ra and dec must be finite")
    if np.any(np.abs(dec_np) > 90.0):
        raise ValueError("localization_map: dec must be within [-90, 90] deg")
    setup, counts = problem.arrays
    batch = None if batch_size is None else int(min(batch_size, ra_np.size))
    loglike, params, converged, steps = _map_jit(
        problem.objective, setup, counts, x0, jnp.asarray(ra_np, dtype),
        jnp.asarray(dec_np, dtype), position, method, batch, float(rtol), float(atol),
        int(max_steps))
    names = [name for i, name in enumerate(problem.names) if i not in position]
    return LocalizationMap(
        ra=ra_np, dec=dec_np, loglike=np.asarray(loglike, dtype=np.float64), method=method,
        names=names, params=np.asarray(params), converged=np.asarray(converged, dtype=bool),
        num_steps=np.asarray(steps))
