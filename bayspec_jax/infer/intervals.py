"""Confidence intervals by profile likelihood (Sherpa's ``conf``, XSPEC's ``error``).

For a free parameter ``x_i`` and a side (lower, upper), the interval's end is where the profile
statistic ``min over the others of -2 loglike(x_i = t, others)`` has risen by `delta` above the
best fit's (1.0 for 1 sigma of one parameter, 2.706 for 90%). Each end is a root-find on
``g(t) = sqrt(rise(t)) - sqrt(delta)``, which is linear in ``t`` for a Gaussian likelihood, so
the false-position steps below converge at once there and fast elsewhere:

1. bracket: the first trial is ``best ± sqrt(delta) * error`` (the Hessian's error), then
    steps outward, extrapolating ``g`` linearly, up to the prior's bound;
2. refine: Illinois false position on ``g`` within the bracket, until ``|rise - delta|`` is
    below `tol`.

Every profile evaluation is one BFGS fit of the other parameters (inside their priors'
supports, `bounds`), warm-started from the previous evaluation of the same end; all ends
(parameters x sides) are evaluated together in one jitted `jax.vmap` per step.

An end whose prior bound is reached before the rise is the bound itself, flagged
(`ConfidenceIntervals.lower_at_bound` / `upper_at_bound`): the interval is open on that side
within the prior. A profile point below the best fit (by more than `tol`) means the fit was not
at the minimum: it is flagged in `new_minimum` (refit from `ConfidenceIntervals.better`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._table import Table
from . import bounds
from .mle import FitResult, minimise
from .problem import Objective, Problem

__all__ = ["ConfidenceIntervals", "confidence_intervals", "profile_stat"]


def profile_stat(objective: Objective, arrays: tuple, index: Int[Array, ""],
                 value: Float[Array, ""], start: Float[Array, " free"], rtol: float = 1e-10,
                 atol: float = 1e-10, max_steps: int = 2000
                 ) -> tuple[Float[Array, " free"], Float[Array, ""], Array]:
    """The profile statistic at ``x[index] = value``: ``-2 loglike`` minimised over the other
    free parameters (BFGS inside their priors' supports, from `start`), pure.

    **Returns:** ``(x, stat, converged)``: the profile's free vector (``x[index] = value``), its
    ``-2 loglike``, and whether the fit converged.
    """
    def pinned(x):
        return x.at[index].set(value)

    def stat(x, arrays):
        return -2.0 * objective.loglike(pinned(x), *arrays)

    x, converged, _ = minimise(stat, objective.priors, start, arrays, rtol, atol, max_steps)
    x = pinned(x)
    return x, -2.0 * objective.loglike(x, *arrays), converged


@eqx.filter_jit
def _profiles(objective, arrays, index, value, start, rtol, atol, max_steps):
    return jax.vmap(lambda i, v, s: profile_stat(objective, arrays, i, v, s, rtol, atol,
                                                 max_steps))(index, value, start)


@dataclasses.dataclass(frozen=True)
class ConfidenceIntervals:
    """Profile-likelihood intervals of free parameters.

    **Fields:** `names`; `best`, `lower`, `upper` ``(name,)`` (the ends, in the parameters'
    own units); `delta` (the rise of ``-2 loglike`` that defines them); `stat` (the best fit's);
    `lower_at_bound`, `upper_at_bound` (the prior's bound was reached before the rise: the end
    is that bound); `converged` ``(name, 2)`` (each end's root-find reached `tol`, lower then
    upper); `new_minimum` (a profile point had a lower statistic than the fit) and `better`
    (the free vector of the lowest statistic seen, to refit from).
    """

    names: list[str]
    best: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    delta: float
    stat: float
    lower_at_bound: np.ndarray
    upper_at_bound: np.ndarray
    converged: np.ndarray
    new_minimum: bool = False
    better: np.ndarray | None = None

    @property
    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower - best, upper - best)``: the negative and positive errors."""
        return self.lower - self.best, self.upper - self.best

    def table(self) -> str:
        """The ends with their errors; ``*`` marks an end at the prior's bound."""
        width = max([14] + [len(n) for n in self.names])
        lines = [(f"{'parameter':<{width}} {'value':>14} {'lower':>14} {'upper':>14} "
                  f"{'-error':>11} {'+error':>11}")]
        minus, plus = self.errors
        for k, name in enumerate(self.names):
            lo = f"{self.lower[k]:.6g}{'*' if self.lower_at_bound[k] else ''}"
            hi = f"{self.upper[k]:.6g}{'*' if self.upper_at_bound[k] else ''}"
            lines.append(f"{name:<{width}} {self.best[k]:>14.6g} {lo:>14} {hi:>14} "
                         f"{minus[k]:>11.3g} {plus[k]:>11.3g}")
        lines.append(f"delta stat = {self.delta:g} (stat {self.stat:.6g}); * at the prior's bound")
        if self.new_minimum:
            lines.append("a lower statistic was found while profiling: refit from `better`")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def as_table(self) -> Table:
        minus, plus = self.errors
        return Table({"parameter": list(self.names), "value": list(self.best),
                      "lower": list(self.lower), "upper": list(self.upper),
                      "-error": list(minus), "+error": list(plus)})


def _prior_limits(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Each free parameter's support ``(low, high)`` in its own units (``±inf`` if none)."""
    low, high, log = bounds.limits(problem.objective.priors)
    return np.where(log, np.exp(low), low), np.where(log, np.exp(high), high)


def confidence_intervals(problem: Problem, fit: FitResult, names: Sequence[str] | None = None,
                         delta: float = 1.0, *, tol: float = 1e-7, max_iterations: int = 60,
                         rtol: float = 1e-10, atol: float = 1e-10,
                         max_steps: int = 2000) -> ConfidenceIntervals:
    """Profile-likelihood confidence intervals of free parameters (see the module docstring).

    **Arguments:**

    - `problem`: the `Problem` that was fitted.
    - `fit`: its `maximum_likelihood` result (the best fit and Hessian errors).
    - `names`: the free parameters to profile; default: all.
    - `delta`: the rise of ``-2 loglike`` (1.0: 68.3% for one parameter; 2.706: 90%; 4.0: 2
        sigma).
    - `tol`: the root-find stops when ``|rise - delta| < tol``.
    - `max_iterations`: profile evaluations per end at most.
    - `rtol`, `atol`, `max_steps`: the inner fits' optimiser settings.

    **Returns:** `ConfidenceIntervals`.
    """
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    names = list(problem.names) if names is None else list(names)
    unknown = [n for n in names if n not in problem.names]
    if unknown or not names:
        raise ValueError(f"unknown free parameter(s) {unknown}; free parameters are "
                         f"{problem.names}")
    if list(fit.names) != list(problem.names):
        raise ValueError(f"fit is of parameters {fit.names}, the problem's are {problem.names}")
    dtype = jnp.result_type(float)
    best = np.asarray(fit.best, dtype=np.float64)
    stat0 = float(fit.stat)
    low, high = _prior_limits(problem)
    index = np.array([problem.names.index(n) for n in names] * 2)
    side = np.repeat([-1.0, 1.0], len(names))
    n_jobs = index.size
    centre = best[index]
    limit = np.where(side < 0, low[index], high[index])
    d_max = np.abs(limit - centre)
    errors = np.asarray(fit.errors, dtype=np.float64)[index]
    width = np.where(np.isfinite(d_max), 0.1 * (high[index] - low[index]),
                     0.1 * np.maximum(np.abs(centre), 1.0))
    first = np.where(np.isfinite(errors) & (errors > 0), math.sqrt(delta) * errors, width)
    root = math.sqrt(delta)

    # per end: bracket [d_lo, d_hi] of the distance from best, g = sqrt(rise) - sqrt(delta)
    d_lo, g_lo = np.zeros(n_jobs), np.full(n_jobs, -root)
    d_hi, g_hi = np.full(n_jobs, np.nan), np.full(n_jobs, np.nan)
    d = np.minimum(first, d_max)
    done = d_max <= 0
    at_bound = done.copy()
    converged = done.copy()
    result = np.where(done, 0.0, np.nan)
    last_side = np.zeros(n_jobs)  # Illinois: which end was kept last (-1 lo, +1 hi)
    starts = np.tile(best, (n_jobs, 1))
    lowest, lowest_x = stat0, None
    args = (problem.objective, problem.arrays, jnp.asarray(index))
    for _ in range(int(max_iterations)):
        if done.all():
            break
        value = centre + side * d
        x, stat, _ = _profiles(*args, jnp.asarray(value, dtype), jnp.asarray(starts, dtype),
                               float(rtol), float(atol), int(max_steps))
        x, stat = np.asarray(x), np.asarray(stat)
        active = ~done
        if np.any(active & (stat < lowest - tol)):
            k = int(np.argmin(np.where(active, stat, np.inf)))
            lowest, lowest_x = float(stat[k]), x[k]
        rise = stat - stat0
        g = np.sqrt(np.maximum(rise, 0.0)) - root
        starts = np.where(active[:, None], x, starts)
        hit = active & (np.abs(rise - delta) < tol)
        result = np.where(hit, d, result)
        converged |= hit
        done |= hit
        above = active & ~hit & (g > 0)
        below = active & ~hit & (g <= 0)
        # a point below the rise at the prior's bound: the end is the bound
        peg = below & (d >= d_max)
        result, at_bound, converged = (np.where(peg, d_max, result), at_bound | peg,
                                       converged | peg)
        done |= peg
        below &= ~peg
        # outward slope of g from the last point below (before the brackets move)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (g - g_lo) / (d - d_lo)
        # update brackets (Illinois: halve the kept end's g when the same end moves twice)
        was_bracketed = np.isfinite(d_hi)
        g_lo = np.where(above & (last_side == 1), 0.5 * g_lo, g_lo)
        g_hi = np.where(below & was_bracketed & (last_side == -1), 0.5 * g_hi, g_hi)
        last_side = np.where(above, 1, np.where(below & was_bracketed, -1, last_side))
        d_lo, g_lo = np.where(below, d, d_lo), np.where(below, g, g_lo)
        d_hi, g_hi = np.where(above, d, d_hi), np.where(above, g, g_hi)
        bracketed = np.isfinite(d_hi)
        # next trial: false position inside a bracket; outward extrapolation before one
        with np.errstate(divide="ignore", invalid="ignore"):
            false_position = d_lo - g_lo * (d_hi - d_lo) / (g_hi - g_lo)
            outward = np.where(np.isfinite(slope) & (slope > 0),
                               d_lo - g_lo / np.where(slope > 0, slope, 1.0), 2.0 * d)
        outward = np.minimum(np.clip(1.1 * outward, 1.2 * d_lo, 10.0 * np.maximum(d_lo, first)),
                             d_max)
        inside = np.clip(false_position, d_lo + 1e-3 * (d_hi - d_lo),
                         d_hi - 1e-3 * (d_hi - d_lo))
        new_d = np.where(bracketed, inside, outward)
        # a collapsed bracket: stop at its middle (flagged unconverged)
        tiny = bracketed & ~done & (d_hi - d_lo <= 1e-14 * np.maximum(1.0, d_hi))
        result = np.where(tiny, 0.5 * (d_lo + d_hi), result)
        done |= tiny
        d = np.where(done, d, new_d)
    result = np.where(done, result, np.where(np.isfinite(d_hi), 0.5 * (d_lo + d_hi), d_lo))
    ends = np.where(at_bound, limit, centre + side * result)
    n = len(names)
    chosen = [problem.names.index(name) for name in names]
    return ConfidenceIntervals(
        names=names, best=best[chosen], lower=ends[:n], upper=ends[n:], delta=float(delta),
        stat=stat0, lower_at_bound=at_bound[:n], upper_at_bound=at_bound[n:],
        converged=np.stack([converged[:n], converged[n:]], -1),
        new_minimum=lowest_x is not None, better=lowest_x)
