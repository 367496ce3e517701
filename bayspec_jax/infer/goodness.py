"""Goodness of fit by parametric bootstrap (XSPEC's ``goodness``).

`n` spectra are simulated from the best fit (`simulate.draws`: Poisson source counts,
Poisson or Gaussian background by statistic, as ``fakeit``) and each is refitted (`batch`'s
jitted `jax.vmap` of the one fit function); the p-value is the fraction of simulations whose
best-fit statistic is at least the observed one. A small p-value rejects the model; for a
correct model p is uniform on [0, 1].

Every simulated spectrum is grouped as the data are (the template's groups, see `batch`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .. import simulate
from .batch import _fit_batch
from .mle import FitResult
from .problem import Problem

__all__ = ["Goodness", "goodness"]


@dataclasses.dataclass(frozen=True)
class Goodness:
    """A bootstrap goodness of fit.

    **Fields:** `p_value` (fraction of simulations with statistic >= `observed`; its binomial
    standard error is `p_error`), `observed` (the fit's ``-2 loglike``), `simulated` ``(n,)``
    (each refit's), `converged` ``(n,)`` (each refit's).
    """

    p_value: float
    p_error: float
    observed: float
    simulated: np.ndarray
    converged: np.ndarray

    def table(self) -> str:
        return (f"goodness: p = {self.p_value:.4g} +- {self.p_error:.2g} "
                f"({self.simulated.size} simulations; observed stat {self.observed:.6g}, "
                f"simulated median {np.median(self.simulated):.6g})")

    def __str__(self) -> str:
        return self.table()


def goodness(problem: Problem, fit: FitResult, n: int = 1000, *, key: PRNGKeyArray,
             refit: bool = True, rtol: float = 1e-8, atol: float = 1e-8,
             max_steps: int = 500) -> Goodness:
    """The parametric-bootstrap p-value of the fit statistic.

    **Arguments:**

    - `problem`: the fitted `Problem` (its data-layer parameters must be frozen: the
        simulation uses the units' own factors).
    - `fit`: its `maximum_likelihood` result.
    - `n`: the number of simulated spectra.
    - `key`: a JAX random key.
    - `refit`: refit each simulation (the proper bootstrap); `False`: the statistic at the
        best fit itself (cheap, and biased towards large p: the data's own fit is optimised).
    - `rtol`, `atol`, `max_steps`: the refits' optimiser settings.

    **Returns:** a `Goodness`.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    n_model = len(problem.params)
    data_free = [name for name in problem.names if name not in problem.params]
    if data_free:
        raise ValueError(f"goodness simulates with the units' own data-layer factors; free "
                         f"data-layer parameters {data_free} are not supported yet")
    best = jnp.asarray(fit.best, dtype=jnp.result_type(float))
    params = problem.full(best)[:n_model]
    data = problem.data
    keys = jax.random.split(key, len(data))
    draws = [simulate.draws(k, problem.model, params, unit, int(n))
             for k, unit in zip(keys, data.units)]
    src = [d.src_counts for d in draws]
    bkg = [d.bkg_counts for d in draws]
    x0 = jnp.broadcast_to(best, (int(n), best.shape[0]))
    if refit:
        _, _, loglike, converged, _ = _fit_batch(
            problem.objective, data.setup, data.counts, x0, src, bkg, float(rtol), float(atol),
            int(max_steps), False, True)
    else:
        loglike = _stat_at(problem, best, src, bkg)
        converged = jnp.ones((int(n),), dtype=bool)
    simulated = -2.0 * np.asarray(loglike)
    observed = float(fit.stat)
    finite = np.isfinite(simulated)
    p = float(np.mean(simulated[finite] >= observed)) if finite.any() else np.nan
    return Goodness(p_value=p, p_error=float(np.sqrt(p * (1 - p) / max(finite.sum(), 1))),
                    observed=observed, simulated=simulated, converged=np.asarray(converged))


def _stat_at(problem: Problem, best, src, bkg):
    data = problem.data

    @jax.jit
    def one(src, bkg):
        counts = data.group_counts(src, bkg)
        return problem.objective.loglike(best, data.setup, counts)

    return jax.vmap(one)(src, bkg)
