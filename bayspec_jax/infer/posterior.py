"""The posterior for samplers: a NumPyro model function and a BlackJAX log-density."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..params import logunif, norm, unif
from .problem import Problem


def _distribution(prior):
    import numpyro.distributions as dist

    if isinstance(prior, unif):
        return dist.Uniform(prior.low, prior.high)
    if isinstance(prior, logunif):
        return dist.LogUniform(prior.low, prior.high)
    if isinstance(prior, norm):
        return dist.Normal(prior.loc, prior.scale)
    raise ValueError(f"no NumPyro distribution for prior {prior!r}")


def numpyro_model(problem: Problem) -> Callable[[], None]:
    """A NumPyro model: samples each free parameter from its prior and adds the log-likelihood.

    The sites are the problem's free `names` (model parameters and data-layer ones such as
    ``'rf@bgo'``; a link is one site, under its first name).

    Use it with any NumPyro kernel. The model takes the data arrays as its one argument; pass
    them to ``run`` so they are traced rather than compiled in as constants:
    ``MCMC(NUTS(numpyro_model(problem)), ...).run(key, problem.stacks)``.
    """
    import jax.numpy as jnp
    import numpyro

    def model(stacks=None):
        values = [numpyro.sample(name, _distribution(problem.pars[name].prior))
                  for name in problem.names]
        numpyro.factor("loglike", problem.loglike(jnp.stack(values), stacks))

    return model


def blackjax_logdensity(problem: Problem) -> Callable[[dict[str, Any]], Any]:
    """``logdensity(position) -> log posterior`` for BlackJAX; `position` maps names to values."""
    return lambda position: problem.log_posterior(problem.from_position(position))
