"""Maximum-likelihood fits with optimistix, with a covariance from the Hessian."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .problem import Objective, Problem


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The best fit: `best` (free values), `errors` (1-sigma from the Hessian; NaN where it is
    not positive definite), `covariance`, `stat` (-2 loglike), `loglike`, `dof`, `names`, and
    whether the optimiser `converged`.

    `names` are the problem's free names, data-layer ones (``'rf@bgo'``) included. `others`
    maps the parameters that are not free but worth showing (frozen model parameters, linked
    ones) to a note (``'frozen'``, ``'= sf@nai'``) and their value.
    """

    names: list[str]
    best: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    loglike: float
    stat: float
    dof: int
    converged: bool
    others: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)

    def table(self) -> str:
        """The free parameters with their errors, then the frozen and linked ones, and the stat."""
        width = max([14] + [len(n) for n in self.names] + [len(n) for n in self.others])
        lines = [f"{'parameter':<{width}} {'value':>14} {'error':>12}"]
        for name, value, error in zip(self.names, self.best, self.errors):
            lines.append(f"{name:<{width}} {value:>14.6g} {error:>12.3g}")
        for name, (note, value) in self.others.items():
            lines.append(f"{name:<{width}} {value:>14.6g} {note:>12}")
        lines.append(f"stat = {self.stat:.6g} for {self.dof} degrees of freedom")
        return "\n".join(lines)


def _others(problem: Problem, best: np.ndarray) -> dict[str, tuple[str, float]]:
    """Frozen model parameters and linked parameters, with their values at `best`."""
    free = dict(zip(problem.names, np.asarray(best, dtype=float)))
    others = {}
    for row in problem.all_params:
        name, leader = row["Name"], row["Linked"]
        if row["Free"]:
            continue
        if leader is not None:
            others[name] = (f"= {leader}", free.get(leader, row["Value"]))
        elif row["Class"] == "model":
            others[name] = ("frozen", row["Value"])
    return others


def fit_objective(objective: Objective, x0: Float[Array, " free"], setup: tuple, counts: tuple,
                  rtol: float, atol: float, max_steps: int, exact_hessian: bool = True):
    """One maximum-likelihood fit, pure (the one fit function: `maximum_likelihood` jits it,
    the batch fits `vmap` it over starts and counts).

    BFGS (optimistix) on ``-2 loglike``; the covariance is the inverse Hessian of ``-loglike``
    at the best fit, by autodiff, or with ``exact_hessian=False`` by central differences of
    the gradient (`difference_hessian`).

    **Returns:** ``(best, covariance, loglike, converged, num_steps)``.
    """
    import optimistix as optx

    def negative(x, arrays):
        return -objective.loglike(x, *arrays)

    solution = optx.minimise(lambda x, arrays: 2.0 * negative(x, arrays),
                             optx.BFGS(rtol=rtol, atol=atol), x0, args=(setup, counts),
                             max_steps=max_steps, throw=False)
    best = solution.value
    arrays = (setup, counts)
    if exact_hessian:
        hessian = jax.hessian(negative)(best, arrays)
    else:
        hessian = difference_hessian(jax.grad(lambda x: negative(x, arrays)), best)
    return (best, jnp.linalg.inv(hessian), objective.loglike(best, setup, counts),
            solution.result == optx.RESULTS.successful, solution.stats["num_steps"])


def difference_hessian(grad, x: Float[Array, " free"]) -> Float[Array, "free free"]:
    """The Hessian by central differences of `grad` (steps ``1e-5 * max(1, |x|)``, relative
    accuracy ~1e-8), symmetrised."""
    step = 1e-5 * jnp.maximum(1.0, jnp.abs(x))
    shifts = jnp.diag(step)
    grads = jax.vmap(grad)(jnp.concatenate([x + shifts, x - shifts]))
    k = x.shape[0]
    hessian = (grads[:k] - grads[k:]) / (2.0 * step[:, None])
    return 0.5 * (hessian + hessian.T)


_fit_jit = eqx.filter_jit(fit_objective)


def maximum_likelihood(problem: Problem, start: Float[ArrayLike, " free"] | None = None,
                       rtol: float = 1e-10, atol: float = 1e-10,
                       max_steps: int = 2000, exact_hessian: bool = True) -> FitResult:
    """Minimise ``-2 loglike`` over the free parameters (BFGS, optimistix), the data layer's
    free factors (``'rf@bgo'``...) included.

    **Arguments:**

    - `problem`: the `Problem`.
    - `start`: initial free values; default: the parameters' current values.
    - `rtol`, `atol`, `max_steps`: optimiser settings.
    - `exact_hessian`: the covariance from the Hessian by autodiff; `False`: by central
        differences of the gradient (`difference_hessian`), which needs first derivatives
        only (and compiles faster).
    """
    x0 = problem.initial() if start is None else jnp.asarray(start, dtype=jnp.result_type(float))
    best, covariance, loglike, converged, _ = _fit_jit(
        problem.objective, x0, *problem.arrays, float(rtol), float(atol), int(max_steps),
        bool(exact_hessian))
    covariance = np.asarray(covariance)
    loglike = float(loglike)
    variance = np.diag(covariance)
    # NaN, not 0, where the Hessian is not positive definite in that direction
    errors = np.where(variance > 0, np.sqrt(np.abs(variance)), np.nan)
    return FitResult(
        names=list(problem.names), best=np.asarray(best),
        errors=errors, covariance=covariance,
        loglike=loglike, stat=-2.0 * loglike, dof=problem.dof, converged=bool(converged),
        others=_others(problem, np.asarray(best)),
    )
