"""Model + parameters + `Data` -> log-likelihood: folding and statistics, one pure function.

Everything here works on the stacked form of a `Data`, split in two: its fold setups
(``data.setup``: one `FoldSetup` per statistic, what the instrument does) and its grouped counts
(``data.counts``: what was observed). A whole `Data` is a few matrix products and one
elementwise statistic per setup, whatever the number of units. The functions are pure:
`jax.jit`, `jax.grad` and `jax.vmap` apply directly, with the model parameters, the data-layer
parameters and the counts as inputs: many observations of one setup are a `vmap` over counts,
many sources with setups of one shape a `vmap` over both.
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
from .data.stack import FoldSetup, GroupedCounts, Stack
from .fold import DataParams, GroupFactors, Model, group_factors, model_rate

Setups = Sequence[FoldSetup]
Counts = Sequence[GroupedCounts]


def _resolve(setup: Any, counts: Any, data_params: DataParams
             ) -> tuple[tuple[FoldSetup, ...], tuple[GroupedCounts, ...], DataParams]:
    """``(setups, counts, data_params)`` from any accepted form of the data arguments.

    Forms: ``(setups, counts)``; a `Data` (its own counts unless `counts` is given); a sequence
    of `Stack`s (the older combined form). For the last two, a mapping in the `counts` position
    is taken as `data_params` (the older ``loglike(model, params, data, data_params)``).
    """
    if isinstance(setup, FoldSetup):
        setup = (setup,)
    if isinstance(counts, GroupedCounts):
        counts = (counts,)
    if isinstance(setup, Data) or (isinstance(setup, (list, tuple)) and setup
                                   and isinstance(setup[0], Stack)):
        if isinstance(counts, Mapping):
            if data_params is not None:
                raise TypeError("data_params given twice")
            counts, data_params = None, counts
        if isinstance(setup, Data):
            setups, own = setup.setup, setup.counts
        else:
            setups, own = tuple(s.setup for s in setup), tuple(s.counts for s in setup)
        return tuple(setups), tuple(own if counts is None else counts), data_params
    if counts is None:
        raise TypeError("loglike(model, params, setup, counts): counts are required with a "
                        "fold setup (a Data carries its own)")
    setups, counts = tuple(setup), tuple(counts)
    if len(setups) != len(counts):
        raise ValueError(f"{len(setups)} setup(s) but {len(counts)} counts")
    return setups, counts, data_params


def _per_bin(setup: FoldSetup, counts: GroupedCounts, rate: Array,
             factors: GroupFactors) -> tuple[Array, Array]:
    """The statistic's ``(loglike, sign)`` per group for a finite `rate`."""
    has_background = (True if all(setup.has_background)
                      else jnp.asarray(np.repeat(setup.has_background, setup.n_groups)))
    return stats.per_bin(setup.stat, counts.src_counts, counts.bkg_counts, rate, factors.ts,
                         factors.tb, counts.src_errors, counts.bkg_errors,
                         has_background=has_background)


def _weighted(loglike: Array, weight: Array) -> Array:
    """``weight * loglike``, with a weight of 0 giving 0 (a unit left out), not ``0 * -inf``."""
    return jnp.where(weight > 0, weight * loglike, 0.0)


def stack_pointwise(model: Model, params: Any, setup: FoldSetup, counts: GroupedCounts,
                    data_params: DataParams = None):
    """``(loglike, sign, ctsrate)`` per group of one setup, each ``(group,)``.

    `loglike` is unweighted, and ``-inf`` in every group of a unit with a non-finite model
    rate; `ctsrate` is the model count rate.
    """
    factors = group_factors(setup, data_params)
    rate = model_rate(model, params, setup, factors)
    finite = jnp.isfinite(rate)
    loglike, sign = _per_bin(setup, counts, jnp.where(finite, rate, 0.0), factors)
    bad_units = jax.ops.segment_sum((~finite).astype(rate.dtype), setup.group_unit,
                                    num_segments=setup.n_units) > 0
    bad = bad_units[setup.group_unit]
    return jnp.where(bad, -jnp.inf, loglike), jnp.where(bad, 1.0, sign), rate


def unit_loglike(model: Model, params: Any, setup: Any, counts: Any = None,
                 data_params: DataParams = None) -> Float[Array, " unit"]:
    """Unweighted log-likelihood of each unit, in `Data` order (arguments as `loglike`)."""
    setups, counts, data_params = _resolve(setup, counts, data_params)
    n_units = sum(s.n_units for s in setups)
    out = jnp.zeros(n_units, dtype=jnp.result_type(float))
    for one_setup, one_counts in zip(setups, counts):
        loglike, _, _ = stack_pointwise(model, params, one_setup, one_counts, data_params)
        per_unit = jax.ops.segment_sum(loglike, one_setup.group_unit,
                                       num_segments=one_setup.n_units)
        out = out.at[jnp.asarray(one_setup.positions)].set(per_unit)
    return out


def loglike(model: Model, params: Any, setup: Any, counts: Any = None,
            data_params: DataParams = None) -> Float[Array, ""]:
    """Total log-likelihood ``sum(weight * unit loglike)`` under ``model(E, params)``.

    **Arguments:**

    - `model`, `params`: the photon model and its parameters.
    - `setup`: the fold setups (``data.setup``: what the instrument does), or a `Data`.
    - `counts`: the grouped counts (``data.counts``: what was observed); a `Data` brings its own.
        Many observations of one setup: `jax.vmap` over `counts`.
    - `data_params`: data-layer parameters by name (see `fold.DataParams`).

    Each setup (one per statistic) is one elementwise pass over its groups; a non-finite model
    rate anywhere gives ``-inf``.
    """
    setups, counts, data_params = _resolve(setup, counts, data_params)
    total = jnp.zeros((), dtype=jnp.result_type(float))
    for one_setup, one_counts in zip(setups, counts):
        factors = group_factors(one_setup, data_params)
        rate = model_rate(model, params, one_setup, factors)
        finite = jnp.isfinite(rate)
        loglike_groups, _ = _per_bin(one_setup, one_counts, jnp.where(finite, rate, 0.0),
                                     factors)
        total = total + jnp.sum(jnp.where(finite, _weighted(loglike_groups,
                                                            one_setup.group_weight), -jnp.inf))
    return total


def stat(model: Model, params: Any, setup: Any, counts: Any = None,
         data_params: DataParams = None):
    """The fit statistic ``-2 * loglike``."""
    return -2.0 * loglike(model, params, setup, counts, data_params)


_stack_pointwise_jit = jax.jit(stack_pointwise, static_argnums=0)


def _per_unit(data: Data, model: Model, params: Any, data_params: DataParams, pick: Callable):
    results: list = [None] * len(data)
    for setup, counts in zip(data.setup, data.counts):
        loglike, sign, rate = _stack_pointwise_jit(model, params, setup, counts, data_params)
        for i, (position, start, n) in enumerate(zip(setup.positions, setup.offsets,
                                                      setup.n_groups)):
            part = slice(start, start + n)
            results[position] = pick(loglike[part], sign[part], rate[part], setup.weight[i])
    return results

def _setup_rates(model: Model, params: Any, setup: FoldSetup, data_params: DataParams):
    return model_rate(model, params, setup, group_factors(setup, data_params))


_setup_rates_jit = jax.jit(_setup_rates, static_argnums=0)


def unit_rates(model: Model, params: Any, data: Data, data_params: DataParams = None,
               view: str = "group") -> list[Array]:
    """The model's count rate per group of `view` (``"group"``, ``"rebin"`` or ``"channel"``,
    see `Data.setup_for`), one array per unit, through `fold.model_rate`."""
    results: list = [None] * len(data)
    for setup in data.setup_for(view):
        rate = _setup_rates_jit(model, params, setup, data_params)
        for position, start, n in zip(setup.positions, setup.offsets, setup.n_groups):
            results[position] = rate[start:start + n]
    return results


def pointwise_loglike(model: Model, params: Any, data: Data,
                      data_params: DataParams = None) -> list[Array]:
    """Weighted log-likelihood of each group, one array per unit (as bayspec's Pair)."""
    return _per_unit(data, model, params, data_params, lambda ll, s, r, w: _weighted(ll, w))


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
    setups = tuple(setup.for_likelihood() for setup in data.setup)
    leaves, treedef = jax.tree.flatten((setups, data.counts))

    def evaluate(params, arrays, data_params=None):
        setups, counts = jax.tree.unflatten(treedef, arrays)
        return loglike(model, params, setups, counts, data_params)

    function = jax.value_and_grad(evaluate) if grad else evaluate
    compiled = jax.jit(function) if jit else function
    return lambda params, data_params=None: compiled(params, leaves, data_params)
