"""NUTS with NumPyro on a `Problem`, returning a `Posterior`."""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .posterior import numpyro_model
from .problem import Problem
from .results import Posterior


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _init_params(problem: Problem, init, num_chains: int) -> dict:
    if init is None:
        free = np.asarray(problem.initial())
    elif isinstance(init, Mapping):
        missing = [n for n in problem.names if n not in init]
        if missing:
            raise ValueError(f"init lacks free parameter(s) {missing}")
        free = np.stack([np.asarray(init[n], dtype=np.float64) for n in problem.names], axis=-1)
    else:
        free = np.asarray(init, dtype=np.float64)
    if free.shape not in ((problem.n_free,), (num_chains, problem.n_free)):
        raise ValueError(f"init must have shape ({problem.n_free},) or ({num_chains}, "
                         f"{problem.n_free}) for parameters {problem.names}, got {free.shape}")
    free = np.broadcast_to(free, (num_chains, problem.n_free))
    dtype = jnp.result_type(float)
    return {name: jnp.asarray(free[:, i], dtype=dtype) for i, name in enumerate(problem.names)}


def run_nuts(problem: Problem, num_warmup: int, num_samples: int, num_chains: int,
             key: PRNGKeyArray, init: ArrayLike | Mapping | None = None,
             progress_bar: bool = False, dense_mass: bool = True) -> Posterior:
    """Sample the posterior of `problem` with NumPyro's NUTS (chains run one after the other).

    The data arrays are passed to the model as its argument (``problem.stacks``), so they are
    traced, not compiled in.

    **Arguments:**

    - `problem`: the `Problem` (its parameters' priors are the priors).
    - `num_warmup`, `num_samples`: warm-up (adaptation) and kept draws per chain.
    - `num_chains`: number of chains (``chain_method='sequential'``).
    - `key`: a JAX random key.
    - `init`: starting free values: ``(free,)`` or ``(chain, free)``, or ``{name: value}``;
        default: the parameters' values. A maximum-likelihood best fit is a good start.
    - `progress_bar`: show NumPyro's progress bar.
    - `dense_mass`: adapt a dense mass matrix (default): spectral parameters are often
        strongly correlated (a power law's index and its normalisation away from the pivot),
        and a diagonal one then mixes very slowly.

    **Returns:**

    A `Posterior` with ``(chain, draw)`` samples and the sample stats ``diverging``, ``n_steps``
    and ``lp``.
    """
    from numpyro.infer import MCMC, NUTS

    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
    num_warmup = _count(num_warmup, "num_warmup", 0)
    num_samples = _count(num_samples, "num_samples", 1)
    num_chains = _count(num_chains, "num_chains", 1)
    init_params = _init_params(problem, init, num_chains)
    if num_chains == 1:
        init_params = {k: v[0] for k, v in init_params.items()}
    mcmc = MCMC(NUTS(numpyro_model(problem), dense_mass=dense_mass), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=num_chains, chain_method="sequential", progress_bar=progress_bar)
    mcmc.run(key, problem.stacks, init_params=init_params,
             extra_fields=("diverging", "num_steps", "potential_energy"))
    post = Posterior.from_numpyro(mcmc)
    return Posterior({name: post.samples[name] for name in problem.names},
                     sample_stats=post.sample_stats)
