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


def _grid_fluxes(model: Model, params: Any, stacks: Sequence[Stack]) -> list[Array]:
    """Photon flux per bin on each stack's distinct grids ``(grid, nphot)``: one model call.

    Stacks with the same points per bin share one evaluation of the model and of the
    integration (fewer, larger kernels).
    """
    fluxes: dict[int, Array] = {}
    by_ngrid: dict[int, list[int]] = {}
    for i, stack in enumerate(stacks):
        by_ngrid.setdefault(stack.ngrid, []).append(i)
    for ngrid, members in by_ngrid.items():
        energies = jnp.concatenate([jnp.ravel(stacks[i].egrid) for i in members])
        flux = integrate_bins(model, params, energies, ngrid)
        start = 0
        for i in members:
            grid, size = stacks[i].egrid.shape
            fluxes[i] = flux[start:start + grid * size // ngrid].reshape(grid, size // ngrid)
            start += grid * size // ngrid
    return [fluxes[i] for i in range(len(stacks))]


def _stack_rate(stack: Stack, flux: Array, data_params: DataParams) -> Array:
    """The model's count rate per padded group of one stack ``(unit, ngroup)``, 0 in padding,
    from the flux on its distinct grids."""
    if stack.egrid.shape[0] == 1:  # one grid for the whole stack
        flux = jnp.broadcast_to(flux, (stack.n_units, flux.shape[-1]))
    elif stack.egrid.shape[0] != stack.n_units:
        # The model ran once per distinct energy grid; hand each unit its grid's fluxes. A grid
        # with a non-finite flux marks its units NaN (rejected by the statistic), not others.
        finite = jnp.isfinite(flux)
        bad_grid = (~jnp.all(finite, axis=-1)).astype(flux.dtype)
        flux = stack.grid_weights @ jnp.where(finite, flux, 0.0)
        flux = jnp.where((stack.grid_weights @ bad_grid)[:, None] > 0, jnp.nan, flux)
    flux = jnp.where(stack.photon_mask, flux, 0.0)
    rate = fold(flux, stack.drm) * _factor(stack, data_params, "rf")[:, None]
    return jnp.where(stack.group_mask, rate, 0.0)


def _statistic_inputs(stack: Stack, data_params: DataParams) -> tuple[Array, ...]:
    """``(S, B, ts, tb, sigma_S, sigma_B)`` of one stack, each ``(unit, ngroup)``."""
    shape = stack.src_counts.shape
    ts = stack.src_efficiency * _factor(stack, data_params, "sf")
    tb = stack.bkg_efficiency * _factor(stack, data_params, "bf")
    return (stack.src_counts, stack.bkg_counts, jnp.broadcast_to(ts[:, None], shape),
            jnp.broadcast_to(tb[:, None], shape), stack.src_errors, stack.bkg_errors)


def stack_pointwise(model: Model, params: Any, stack: Stack, data_params: DataParams = None):
    """``(loglike, sign, ctsrate)`` per padded group of one stack, each ``(unit, ngroup)``.

    `loglike` is unweighted and 0 in padded groups; `ctsrate` is the model count rate.
    """
    rate = _stack_rate(stack, _grid_fluxes(model, params, [stack])[0], data_params)
    S, B, ts, tb, sigma_s, sigma_b = _statistic_inputs(stack, data_params)
    loglike, sign = stats.pointwise(stack.stat, S, B, rate, ts, tb, sigma_s, sigma_b,
                                    has_background=stack.has_background[:, None])
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


def _flat(arrays) -> Array:
    """The arrays raveled and concatenated."""
    return jnp.concatenate([jnp.ravel(a) for a in arrays])


def loglike(model: Model, params: Any, data: DataLike,
            data_params: DataParams = None) -> Float[Array, ""]:
    """Total log-likelihood ``sum(weight * unit loglike)`` of `data` under ``model(E, params)``.

    The stacks of one statistic are evaluated as one flat array of groups (one elementwise
    pass however many stacks); a non-finite model rate anywhere gives ``-inf``.
    """
    stacks = _stacks(data)
    by_stat: dict[str, list[tuple[Stack, Array]]] = {}
    for stack, flux in zip(stacks, _grid_fluxes(model, params, stacks)):
        by_stat.setdefault(stack.stat, []).append((stack, _stack_rate(stack, flux, data_params)))
    total = jnp.zeros((), dtype=jnp.result_type(float))
    for stat_name, items in by_stat.items():
        columns = zip(*(_statistic_inputs(stack, data_params) for stack, _ in items))
        S, B, ts, tb, sigma_s, sigma_b = (_flat(column) for column in columns)
        rate = _flat(rate for _, rate in items)
        mask = _flat(stack.group_mask for stack, _ in items)
        weight = _flat(jnp.broadcast_to(stack.weight[:, None], stack.group_mask.shape)
                      for stack, _ in items)
        has_background = _flat(jnp.broadcast_to(stack.has_background[:, None],
                                               stack.group_mask.shape) for stack, _ in items)
        finite = jnp.isfinite(rate)
        loglike_flat, _ = stats.pointwise(stat_name, S, B, jnp.where(finite, rate, 0.0), ts, tb,
                                          sigma_s, sigma_b, has_background=has_background)
        partial = jnp.sum(jnp.where(mask, weight * loglike_flat, 0.0))
        total = total + jnp.where(jnp.all(finite), partial, -jnp.inf)
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


def make_loglike(model: Model, data: Data, jit: bool = True,
                 grad: bool = False) -> Callable[..., Any]:
    """``f(params, data_params=None) -> loglike`` (``(loglike, gradient)`` with `grad`), the
    stacked arrays passed as arguments.

    Passing the arrays (rather than closing over them) keeps compilation fast and independent of
    their values; the function compiles once per `Data` shape. The arrays are flattened once
    here, so a call only hands over a list of arrays. With `grad`, the gradient is with respect
    to `params` (use `jax.grad` on `loglike` for the data-layer factors).
    """
    leaves, treedef = jax.tree.flatten(tuple(data.stacked))

    def evaluate(params, arrays, data_params=None):
        return loglike(model, params, jax.tree.unflatten(treedef, arrays), data_params)

    function = jax.value_and_grad(evaluate) if grad else evaluate
    compiled = jax.jit(function) if jit else function
    return lambda params, data_params=None: compiled(params, leaves, data_params)
