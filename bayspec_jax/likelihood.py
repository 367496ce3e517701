"""Model + parameters + `Data` -> log-likelihood: folding and statistics, one pure function.

Everything here works on the stacked form of a `Data` (`data.stacked`: one `Stack` per
statistic, its groups on one flat axis), so a whole `Data` is a few matrix products and one
elementwise statistic per stack, whatever the number of units. The functions are pure:
`jax.jit`, `jax.grad` and `jax.vmap` apply directly, with the model parameters and the
data-layer factors as differentiable inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import stats
from .data.data import Data
from .data.stack import Stack
from .fold import Model, fold_block, stack_fluxes

DataLike = Data | Sequence[Stack]
DataParams = Mapping[str, Any] | None
"""Optional data-layer factors by name: ``sf`` (source), ``bf`` (background), ``rf``
(response), each an array ``(n_units,)`` in `Data` order; absent names use the units' own
`Par` values."""


def _stacks(data: DataLike) -> tuple[Stack, ...]:
    return data.stacked if isinstance(data, Data) else tuple(data)


def _group_factor(stack: Stack, data_params: DataParams, name: str) -> Array | None:
    """Data-layer factor `name` per group from `data_params` (`None`: the stack's own)."""
    if data_params is None or name not in data_params:
        return None
    values = jnp.asarray(data_params[name])[jnp.asarray(stack.positions)]
    return values[stack.group_unit]


def _rate(model: Model, params: Any, stack: Stack, data_params: DataParams) -> Array:
    """The model's count rate per group of `stack` ``(group,)``: the model runs once on the
    stack's grids, each block folds its part."""
    rates = [fold_block(block, rows)
             for block, rows in zip(stack.blocks, stack_fluxes(model, params, stack))]
    rate = rates[0] if len(rates) == 1 else jnp.concatenate(rates)
    rf = _group_factor(stack, data_params, "rf")
    return rate * (stack.group_rf if rf is None else rf)


def _efficiencies(stack: Stack, data_params: DataParams) -> tuple[Array, Array]:
    """``(ts, tb)`` per group: the efficiencies times the source and background factors."""
    sf, bf = (_group_factor(stack, data_params, name) for name in ("sf", "bf"))
    ts = stack.ts if sf is None else stack.src_efficiency[stack.group_unit] * sf
    tb = stack.tb if bf is None else stack.bkg_efficiency[stack.group_unit] * bf
    return ts, tb


def _per_bin(stack: Stack, rate: Array, data_params: DataParams) -> tuple[Array, Array]:
    """The statistic's ``(loglike, sign)`` per group for a finite `rate`."""
    ts, tb = _efficiencies(stack, data_params)
    has_background = (True if all(stack.has_background)
                      else jnp.asarray(np.repeat(stack.has_background, stack.n_groups)))
    return stats.per_bin(stack.stat, stack.src_counts, stack.bkg_counts, rate, ts, tb,
                         stack.src_errors, stack.bkg_errors, has_background=has_background)


def stack_pointwise(model: Model, params: Any, stack: Stack, data_params: DataParams = None):
    """``(loglike, sign, ctsrate)`` per group of one stack, each ``(group,)``.

    `loglike` is unweighted, and ``-inf`` in every group of a unit with a non-finite model
    rate; `ctsrate` is the model count rate.
    """
    rate = _rate(model, params, stack, data_params)
    finite = jnp.isfinite(rate)
    loglike, sign = _per_bin(stack, jnp.where(finite, rate, 0.0), data_params)
    bad_units = jax.ops.segment_sum((~finite).astype(rate.dtype), stack.group_unit,
                                    num_segments=stack.n_units) > 0
    bad = bad_units[stack.group_unit]
    return jnp.where(bad, -jnp.inf, loglike), jnp.where(bad, 1.0, sign), rate


def unit_loglike(model: Model, params: Any, data: DataLike,
                 data_params: DataParams = None) -> Float[Array, " unit"]:
    """Unweighted log-likelihood of each unit, in `Data` order."""
    stacks = _stacks(data)
    n_units = sum(s.n_units for s in stacks)
    out = jnp.zeros(n_units, dtype=jnp.result_type(float))
    for stack in stacks:
        loglike, _, _ = stack_pointwise(model, params, stack, data_params)
        per_unit = jax.ops.segment_sum(loglike, stack.group_unit, num_segments=stack.n_units)
        out = out.at[jnp.asarray(stack.positions)].set(per_unit)
    return out


def loglike(model: Model, params: Any, data: DataLike,
            data_params: DataParams = None) -> Float[Array, ""]:
    """Total log-likelihood ``sum(weight * unit loglike)`` of `data` under ``model(E, params)``.

    Each stack (one per statistic) is one elementwise pass over its groups; a non-finite model
    rate anywhere gives ``-inf``.
    """
    total = jnp.zeros((), dtype=jnp.result_type(float))
    for stack in _stacks(data):
        rate = _rate(model, params, stack, data_params)
        finite = jnp.isfinite(rate)
        loglike_groups, _ = _per_bin(stack, jnp.where(finite, rate, 0.0), data_params)
        total = total + jnp.sum(jnp.where(finite, stack.group_weight * loglike_groups, -jnp.inf))
    return total


def stat(model: Model, params: Any, data: DataLike, data_params: DataParams = None):
    """The fit statistic ``-2 * loglike``."""
    return -2.0 * loglike(model, params, data, data_params)


_stack_pointwise_jit = jax.jit(stack_pointwise, static_argnums=0)


def _per_unit(data: Data, model: Model, params: Any, data_params: DataParams, pick: Callable):
    results: list = [None] * len(data)
    for stack in data.stacked:
        loglike, sign, rate = _stack_pointwise_jit(model, params, stack, data_params)
        for i, (position, start, n) in enumerate(zip(stack.positions, stack.offsets,
                                                      stack.n_groups)):
            part = slice(start, start + n)
            results[position] = pick(loglike[part], sign[part], rate[part], stack.weight[i])
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

    Passing the arrays (rather than closing over them) keeps the compiled program independent
    of their values (it is not specialised to, nor embeds, the data). Closing over all but the
    DRMs was measured too: the data-only terms are then computed once, while tracing, and
    compiled in as constants; value+grad went 130 -> 85 us for one NaI + BGO pair but
    160 -> 180 us for 4 copies (not explained; not the statistic's `lax.cond`) and was
    unchanged for 16 and 64, so it was not kept. The arrays are flattened once here, so a call
    only hands over a list of arrays. With `grad`, the gradient is with respect to `params`
    (use `jax.grad` on `loglike` for the data-layer factors).
    """
    leaves, treedef = jax.tree.flatten(tuple(data.stacked))

    def evaluate(params, arrays, data_params=None):
        return loglike(model, params, jax.tree.unflatten(treedef, arrays), data_params)

    function = jax.value_and_grad(evaluate) if grad else evaluate
    compiled = jax.jit(function) if jit else function
    return lambda params, data_params=None: compiled(params, leaves, data_params)
