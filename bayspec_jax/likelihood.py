"""Model + parameters + `Data` -> log-likelihood: folding and statistics, one pure function.

Everything here works on the stacked form of a `Data` (`data.stacked`, a few padded stacks),
so a whole `Data` is a handful of batched einsums and elementwise statistics, whatever the
number of units. The functions are pure: `jax.jit`, `jax.grad` and `jax.vmap` apply directly,
with the model parameters and the data-layer factors as differentiable inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import stats
from .data.data import Data
from .data.stack import Stack
from .fold import Model, fold, integrate_bins

DataLike = Data | Sequence[Stack]
DataParams = Mapping[str, Any] | None
"""Optional data-layer factors by name: ``sf`` (source), ``bf`` (background), ``rf``
(response), each an array ``(n_units,)`` in `Data` order; absent names use the units' own
`Par` values."""


def _stacks(data: DataLike) -> tuple[Stack, ...]:
    return data.stacked if isinstance(data, Data) else tuple(data)


def _factor(stack: Stack, data_params: DataParams, name: str) -> Array:
    if data_params is None or name not in data_params:
        return getattr(stack, name)
    values = jnp.asarray(data_params[name])
    return values[jnp.asarray(stack.positions)]


def stack_pointwise(model: Model, params: Any, stack: Stack, data_params: DataParams = None):
    """``(loglike, sign, ctsrate)`` per padded group of one stack, each ``(unit, ngroup)``.

    `loglike` is unweighted and 0 in padded groups; `ctsrate` is the model count rate.
    """
    flux = integrate_bins(model, params, stack.egrid, stack.ngrid)
    if stack.egrid.shape[0] != stack.n_units:
        # The model ran once per distinct energy grid; hand each unit its grid's fluxes. A grid
        # with a non-finite flux marks its units NaN (rejected by the statistic), not others.
        finite = jnp.isfinite(flux)
        bad_grid = (~jnp.all(finite, axis=-1)).astype(flux.dtype)
        flux = stack.grid_weights @ jnp.where(finite, flux, 0.0)
        flux = jnp.where((stack.grid_weights @ bad_grid)[:, None] > 0, jnp.nan, flux)
    flux = jnp.where(stack.photon_mask, flux, 0.0)
    rf = _factor(stack, data_params, "rf")
    rate = fold(flux, stack.drm) * rf[:, None]
    rate = jnp.where(stack.group_mask, rate, 0.0)
    ts = (stack.src_efficiency * _factor(stack, data_params, "sf"))[:, None]
    tb = (stack.bkg_efficiency * _factor(stack, data_params, "bf"))[:, None]
    loglike, sign = stats.pointwise(
        stack.stat, stack.src_counts, stack.bkg_counts, rate, ts, tb, stack.src_errors,
        stack.bkg_errors, has_background=stack.has_background[:, None],
    )
    return jnp.where(stack.group_mask, loglike, 0.0), sign, rate


def unit_loglike(model: Model, params: Any, data: DataLike,
                 data_params: DataParams = None) -> Float[Array, " unit"]:
    """Unweighted log-likelihood of each unit, in `Data` order."""
    stacks = _stacks(data)
    n_units = sum(s.n_units for s in stacks)
    out = jnp.zeros(n_units, dtype=jnp.result_type(float))
    for stack in stacks:
        loglike, _, _ = stack_pointwise(model, params, stack, data_params)
        out = out.at[jnp.asarray(stack.positions)].set(loglike.sum(axis=-1))
    return out


def loglike(model: Model, params: Any, data: DataLike,
            data_params: DataParams = None) -> Float[Array, ""]:
    """Total log-likelihood ``sum(weight * unit loglike)`` of `data` under ``model(E, params)``."""
    total = jnp.zeros((), dtype=jnp.result_type(float))
    for stack in _stacks(data):
        unit_ll, _, _ = stack_pointwise(model, params, stack, data_params)
        total = total + jnp.sum(stack.weight * unit_ll.sum(axis=-1))
    return total


def stat(model: Model, params: Any, data: DataLike, data_params: DataParams = None):
    """The fit statistic ``-2 * loglike``."""
    return -2.0 * loglike(model, params, data, data_params)


_stack_pointwise_jit = jax.jit(stack_pointwise, static_argnums=0)


def _per_unit(data: Data, model: Model, params: Any, data_params: DataParams, pick: Callable):
    results: list = [None] * len(data)
    for stack in data.stacked:
        loglike, sign, rate = _stack_pointwise_jit(model, params, stack, data_params)
        for row, position in enumerate(stack.positions):
            n = data.units[position].n_groups
            results[position] = pick(loglike[row, :n], sign[row, :n], rate[row, :n],
                                     stack.weight[row])
    return results


def pointwise_loglike(model: Model, params: Any, data: Data,
                      data_params: DataParams = None) -> list[Array]:
    """Weighted log-likelihood of each group, one array per unit (as bayspec's Pair)."""
    return _per_unit(data, model, params, data_params, lambda ll, s, r, w: ll * w)


def pseudo_residual(model: Model, params: Any, data: Data,
                    data_params: DataParams = None) -> list[Array]:
    """``sign * sqrt(-2 loglike) * sqrt(weight)`` per group, one array per unit."""
    return _per_unit(data, model, params, data_params,
                     lambda ll, s, r, w: stats.pseudo_residual(ll, s) * jnp.sqrt(w))


def model_ctsrate(model: Model, params: Any, data: Data,
                  data_params: DataParams = None) -> list[Array]:
    """The model's count rate per group, one array per unit (bayspec's ``conv_ctsrate``)."""
    return _per_unit(data, model, params, data_params, lambda ll, s, r, w: r)


def make_loglike(model: Model, data: Data, jit: bool = True) -> Callable[..., Array]:
    """``f(params, data_params=None) -> loglike``, with the stacked arrays passed as arguments.

    Passing the arrays (rather than closing over them) keeps compilation fast and independent of
    their values; the function compiles once per `Data` shape.
    """
    def evaluate(params, stacks, data_params=None):
        return loglike(model, params, stacks, data_params)

    compiled = jax.jit(evaluate) if jit else evaluate
    stacks = data.stacked
    return lambda params, data_params=None: compiled(params, stacks, data_params)
