"""Maximum-likelihood fits with optimistix, with a covariance from the Hessian."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .problem import Problem


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The best fit: `best` (free values), `errors` (1-sigma from the Hessian), `covariance`,
    `stat` (-2 loglike), `loglike`, `dof`, `names`, and whether the optimiser `converged`."""

    names: list[str]
    best: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    loglike: float
    stat: float
    dof: int
    converged: bool

    def table(self) -> str:
        lines = [f"{'parameter':<14} {'value':>14} {'error':>12}"]
        for name, value, error in zip(self.names, self.best, self.errors):
            lines.append(f"{name:<14} {value:>14.6g} {error:>12.3g}")
        lines.append(f"stat = {self.stat:.6g} for {self.dof} degrees of freedom")
        return "\n".join(lines)


def _objective(problem: Problem):
    """One objective function per problem, so that restarts reuse the compiled optimiser."""
    if problem._objective is None:
        problem._objective = lambda x, stacks: -2.0 * problem.loglike(x, stacks)
        problem._hessian = jax.jit(jax.hessian(lambda x, s: -problem.loglike(x, s)))
        problem._loglike_jit = jax.jit(problem.loglike)
    return problem._objective


def maximum_likelihood(problem: Problem, start=None, rtol: float = 1e-10,
                       atol: float = 1e-10, max_steps: int = 2000) -> FitResult:
    """Minimise ``-2 loglike`` over the free parameters (BFGS, optimistix).

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
    hessian = problem._hessian(best, problem.stacks)
    covariance = np.linalg.inv(np.asarray(hessian))
    loglike = float(problem._loglike_jit(best, problem.stacks))
    return FitResult(
        names=list(problem.names), best=np.asarray(best),
        errors=np.sqrt(np.clip(np.diag(covariance), 0, None)), covariance=covariance,
        loglike=loglike, stat=-2.0 * loglike, dof=problem.dof,
        converged=bool(solution.result == optx.RESULTS.successful),
    )
