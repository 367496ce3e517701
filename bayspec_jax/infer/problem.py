"""A fit problem: a photon model, its parameters (`Par`s with priors) and a `Data`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..data.data import Data
from ..fold import Model
from ..likelihood import loglike
from ..params import Par


class Problem:
    """What a fit needs: ``model(energy, params)``, named `Par`s in the model's order, a `Data`.

    The free parameters (not `frozen`) form the fit vector, in the order given; frozen ones keep
    their values. A parameter's `val` is what the model receives (e.g. log10 Ec for `cpl`).

    **Arguments:**

    - `model`: ``model(energy, params_vector)``.
    - `params`: ``{name: Par}``, in the order of the model's parameter vector.
    - `data`: the `Data` to fit.
    """

    def __init__(self, model: Model, params: Mapping[str, Par], data: Data):
        if not isinstance(data, Data):
            raise ValueError(f"data must be a bayspec_jax.Data, got {type(data).__name__}")
        for name, par in params.items():
            if not isinstance(par, Par):
                raise ValueError(f"parameter {name!r} must be a Par, got {type(par).__name__}")
        self.model = model
        self.params = dict(params)
        self.data = data
        self.names = [name for name, par in self.params.items() if not par.frozen]
        if not self.names:
            raise ValueError("every parameter is frozen: nothing to fit")
        self._free_positions = jnp.asarray(
            [i for i, par in enumerate(self.params.values()) if not par.frozen])
        self._values = jnp.stack([par.val for par in self.params.values()])
        self._stacks = data.stacked
        self._objective = self._hessian = self._loglike_jit = None

    @property
    def n_free(self) -> int:
        return len(self.names)

    @property
    def npoint(self) -> int:
        return sum(self.data.npoints)

    @property
    def dof(self) -> int:
        return self.npoint - self.n_free

    def initial(self) -> Float[Array, " free"]:
        """The free parameters' current values."""
        return self._values[self._free_positions]

    def full(self, free: Float[Array, " free"]) -> Float[Array, " param"]:
        """The model's whole parameter vector for free values `free`."""
        return self._values.at[self._free_positions].set(jnp.asarray(free))

    def to_position(self, free: Float[Array, " free"]) -> dict[str, Array]:
        return {name: free[i] for i, name in enumerate(self.names)}

    def from_position(self, position: Mapping[str, Any]) -> Float[Array, " free"]:
        return jnp.stack([jnp.asarray(position[name]) for name in self.names])

    @property
    def stacks(self) -> tuple:
        """The stacked data arrays; pass them as arguments to jitted code (see `loglike`)."""
        return self._stacks

    def loglike(self, free: Float[Array, " free"], stacks: tuple | None = None) -> Float[Array, ""]:
        """Log-likelihood at free values `free` (`stacks`: the data arrays, default `stacks`)."""
        return loglike(self.model, self.full(free), self._stacks if stacks is None else stacks)

    def log_prior(self, free: Float[Array, " free"]) -> Float[Array, ""]:
        total = jnp.zeros((), dtype=jnp.result_type(float))
        for i, name in enumerate(self.names):
            total = total + self.params[name].prior.log_prob(free[i])
        return total

    def log_posterior(self, free: Float[Array, " free"],
                      stacks: tuple | None = None) -> Float[Array, ""]:
        return self.log_prior(free) + self.loglike(free, stacks)
