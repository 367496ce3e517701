"""Maximum-likelihood fits with optimistix, with a covariance from the Hessian."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .problem import Problem


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The best fit: `best` (free values), `errors` (1-sigma from the Hessian), `covariance`,
    `stat` (-2 loglike), `loglike`, `dof`, `names`, and whether the optimiser `converged`.

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


def _objective(problem: Problem):
    """One objective function per problem, so that restarts reuse the compiled optimiser."""
    if problem._objective is None:
        problem._objective = lambda x, stacks: -2.0 * problem.loglike(x, stacks)
        # The log-likelihood and its Hessian at the optimum in one compiled function.
        problem._hessian = jax.jit(lambda x, s: (problem.loglike(x, s),
                                                 jax.hessian(lambda y: -problem.loglike(y, s))(x)))
    return problem._objective


def maximum_likelihood(problem: Problem, start: Float[ArrayLike, " free"] | None = None,
                       rtol: float = 1e-10, atol: float = 1e-10,
                       max_steps: int = 2000) -> FitResult:
    """Minimise ``-2 loglike`` over the free parameters (BFGS, optimistix), the data layer's
    free factors (``'rf@bgo'``...) included.

    **Arguments:**

    - `problem`: the `Problem`.
    - `start`: initial free values; default: the parameters' current values.
    - `rtol`, `atol`, `max_steps`: optimiser settings.
    """
    import optimistix as optx

    x0 = problem.initial() if start is None else jnp.asarray(start, dtype=jnp.result_type(float))

    objective = _objective(problem)
    solution = optx.minimise(objective, optx.BFGS(rtol=rtol, atol=atol), x0,
                             args=problem.stacks, max_steps=max_steps, throw=False)
    best = solution.value
    loglike, hessian = problem._hessian(best, problem.stacks)
    covariance = np.linalg.inv(np.asarray(hessian))
    loglike = float(loglike)
    return FitResult(
        names=list(problem.names), best=np.asarray(best),
        errors=np.sqrt(np.clip(np.diag(covariance), 0, None)), covariance=covariance,
        loglike=loglike, stat=-2.0 * loglike, dof=problem.dof,
        converged=bool(solution.result == optx.RESULTS.successful),
        others=_others(problem, np.asarray(best)),
    )
