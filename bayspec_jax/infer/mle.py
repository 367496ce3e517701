"""Maximum-likelihood fits with optimistix, with a covariance from the Hessian."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from . import bounds
from .problem import Objective, Problem


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The best fit: `best` (free values), `errors` (1-sigma from the Hessian; NaN where it is
    not positive definite), `covariance`, `stat` (-2 loglike), `loglike`, `dof`, `names`, and
    whether the optimiser `converged`.

    `names` are the problem's free names, data-layer ones (``'rf@bgo'``) included. `others`
    maps the parameters that are not free but worth showing (frozen model parameters, linked
    ones) to a note (``'frozen'``, ``'= sf@nai'``) and their value. `at_bound` names the free
    parameters that ended at a bound of their prior's support (error NaN, see `bounds`).
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
    at_bound: list[str] = dataclasses.field(default_factory=list)

    def table(self) -> str:
        """The free parameters with their errors, then the frozen and linked ones, and the stat."""
        width = max([14] + [len(n) for n in self.names] + [len(n) for n in self.others])
        lines = [f"{'parameter':<{width}} {'value':>14} {'error':>12}"]
        for name, value, error in zip(self.names, self.best, self.errors):
            note = "  at bound" if name in self.at_bound else ""
            lines.append(f"{name:<{width}} {value:>14.6g} {error:>12.3g}{note}")
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


def minimise(stat, priors: tuple, x0: Float[Array, " free"], args, rtol: float, atol: float,
             max_steps: int, bounded: bool = True):
    """Minimise ``stat(x, args)`` over `x` with optimistix BFGS, pure.

    With `bounded`, in the unconstrained coordinates of `bounds` (the `priors`' supports are
    respected; a start at a bound is moved inside); otherwise on `x` itself.

    **Returns:** ``(best, converged, num_steps)``.
    """
    import optimistix as optx

    if bounded:
        u0 = bounds.to_unconstrained(priors, x0)

        def in_u(u, args):
            return stat(bounds.from_unconstrained(priors, u), args)
    else:
        u0, in_u = x0, stat
    solution = optx.minimise(in_u, optx.BFGS(rtol=rtol, atol=atol), u0, args=args,
                             max_steps=max_steps, throw=False)
    best = bounds.from_unconstrained(priors, solution.value) if bounded else solution.value
    return best, solution.result == optx.RESULTS.successful, solution.stats["num_steps"]


def fit_objective(objective: Objective, x0: Float[Array, " free"], setup: tuple, counts: tuple,
                  rtol: float, atol: float, max_steps: int, exact_hessian: bool = True,
                  bounded: bool = True):
    """One maximum-likelihood fit, pure (the one fit function: `maximum_likelihood` jits it,
    the batch fits `vmap` it over starts and counts).

    BFGS (optimistix) on ``-2 loglike``, with `bounded` inside the priors' supports (in the
    unconstrained coordinates of `bounds`); the covariance is the inverse Hessian of
    ``-loglike`` at the best fit, in the parameters' own space, by autodiff, or with
    ``exact_hessian=False`` by central differences of the gradient (`difference_hessian`). A
    parameter at a bound (`bounds.at_bound`) has zero rows and columns, and the others'
    covariance is conditional on it (`bounds.conditional_covariance`).

    **Returns:** ``(best, covariance, loglike, converged, num_steps)``.
    """
    def negative(x, arrays):
        return -objective.loglike(x, *arrays)

    arrays = (setup, counts)
    best, converged, steps = minimise(lambda x, arrays: 2.0 * negative(x, arrays),
                                      objective.priors, x0, arrays, rtol, atol, max_steps,
                                      bounded)
    if exact_hessian:
        hessian = jax.hessian(negative)(best, arrays)
    else:
        hessian = difference_hessian(jax.grad(lambda x: negative(x, arrays)), best)
    if bounded:
        covariance = bounds.conditional_covariance(hessian, bounds.at_bound(objective.priors,
                                                                            best))
    else:
        covariance = jnp.linalg.inv(hessian)
    return best, covariance, objective.loglike(best, setup, counts), converged, steps


def fit_errors(covariance: Float[ArrayLike, "*batch free free"],
               pinned: Bool[ArrayLike, "*batch free"]) -> np.ndarray:
    """1-sigma errors: the square roots of the covariance's diagonal; NaN where it is not
    positive (a Hessian not positive definite in that direction) or the parameter is at a
    bound (`pinned`)."""
    variance = np.diagonal(np.asarray(covariance), axis1=-2, axis2=-1)
    return np.where((variance > 0) & ~np.asarray(pinned), np.sqrt(np.abs(variance)), np.nan)


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
                       max_steps: int = 2000, exact_hessian: bool = True,
                       bounded: bool = True) -> FitResult:
    """Minimise ``-2 loglike`` over the free parameters (BFGS, optimistix), the data layer's
    free factors (``'rf@bgo'``...) included, inside the priors' supports.

    **Arguments:**

    - `problem`: the `Problem`.
    - `start`: initial free values; default: the parameters' current values.
    - `rtol`, `atol`, `max_steps`: optimiser settings.
    - `exact_hessian`: the covariance from the Hessian by autodiff; `False`: by central
        differences of the gradient (`difference_hessian`), which needs first derivatives
        only (and compiles faster).
    - `bounded`: keep each parameter inside its prior's support (`unif`, `logunif` bounds; see
        `bounds`); a parameter that ends at a bound is listed in `FitResult.at_bound`, with a
        NaN error. `False`: the unconstrained fit (priors ignored).
    """
    x0 = problem.initial() if start is None else jnp.asarray(start, dtype=jnp.result_type(float))
    best, covariance, loglike, converged, _ = _fit_jit(
        problem.objective, x0, *problem.arrays, float(rtol), float(atol), int(max_steps),
        bool(exact_hessian), bool(bounded))
    best = np.asarray(best)
    pinned = (np.asarray(bounds.at_bound(problem.objective.priors, best)) if bounded
              else np.zeros(best.shape, dtype=bool))
    covariance = np.asarray(covariance)
    loglike = float(loglike)
    return FitResult(
        names=list(problem.names), best=best,
        errors=fit_errors(covariance, pinned), covariance=covariance,
        loglike=loglike, stat=-2.0 * loglike, dof=problem.dof, converged=bool(converged),
        others=_others(problem, best),
        at_bound=[n for n, p in zip(problem.names, pinned) if p],
    )
