"""Many spectra of one setup, fitted in one jitted `jax.vmap`: maximum likelihood and NUTS.

A *template* (a `DataUnit` or a `Data`) fixes everything but the counts: its fold setup
(responses, exposures, notice windows, quality and the resolved groups). A batch of counts,
``(spectrum, chan)`` per unit (e.g. ``simulate.draws(...).src_counts``), is grouped as the
template groups (`Data.group_counts`: segment sums, excluded channels dropped), and the fit
(`mle.fit_objective`, the one `maximum_likelihood` runs) is a `jax.vmap` over starts and
counts: one compilation fits them all.

**Grouping.** bayspec groups by counts (``min_sigma``, ``min_evt``...), so a newly observed
spectrum would get its own groups; here every spectrum gets the *template's* groups (as
``simulate.fakeit(..., regroup=False)``). With many faint draws, group the template generously.

**Errors.** As `simulate.fakeit` makes them: the source is Poisson, its grouped errors
``sqrt(grouped counts)``; the background, for a Gaussian-background statistic (``pgstat``,
``chi2``, ``gstat``), keeps the template's grouped errors (the errors a file's STAT_ERR gave),
and for the others is Poisson, ``sqrt(grouped counts)``. Systematic errors are not added.
Without `bkg_counts` every spectrum keeps the template's background counts and errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from ..data.data import Data
from ..data.stack import Stack, group_unit_counts
from ..data.unit import DataUnit
from ..fold import Model
from ..params import Par
from . import bounds
from .mle import FitResult, fit_errors, fit_objective
from .problem import Objective, Problem
from .results import Posterior
from .sample import _count


def _template(template: Any) -> Data:
    if isinstance(template, Data):
        return template
    if isinstance(template, DataUnit):
        return Data([(template.name or "unit", template)])
    raise ValueError(f"template must be a DataUnit or a Data, got {type(template).__name__}")


def _counts_list(data: Data, counts: Any, what: str) -> list[np.ndarray] | None:
    """Validated ``(spectrum, chan)`` float arrays, one per unit of `data`."""
    if counts is None:
        return None
    if len(data) == 1 and not isinstance(counts, (list, tuple)):
        counts = [counts]
    if not isinstance(counts, (list, tuple)) or len(counts) != len(data):
        raise ValueError(f"{what} must be an array (spectrum, chan) for one unit, or a list of "
                         f"{len(data)} such arrays (one per unit of the template, in order)")
    out = []
    for unit, value in zip(data.units, counts):
        array = np.asarray(value, dtype=np.float64)
        n_chan = int(unit.src.counts.shape[0])
        if array.ndim != 2 or array.shape[1] != n_chan or array.shape[0] < 1:
            raise ValueError(f"{what} for unit {unit.name!r} must have shape (spectrum, "
                             f"{n_chan}), got {array.shape}")
        used = np.asarray(unit.group_ids) < unit.n_groups
        if not np.all(np.isfinite(array[:, used])):
            raise ValueError(f"{what} for unit {unit.name!r} is not finite in a fitted channel")
        out.append(array)
    sizes = {a.shape[0] for a in out}
    if len(sizes) > 1:
        raise ValueError(f"{what}: the units have different numbers of spectra {sorted(sizes)}")
    return out


def _inputs(data: Data, src_counts: Any, bkg_counts: Any) -> tuple[list, list | None, int]:
    src = _counts_list(data, src_counts, "src_counts")
    if src is None:
        raise ValueError("src_counts is required")
    bkg = _counts_list(data, bkg_counts, "bkg_counts")
    if bkg is not None:
        if bkg[0].shape[0] != src[0].shape[0]:
            raise ValueError(f"src_counts has {src[0].shape[0]} spectra but bkg_counts has "
                             f"{bkg[0].shape[0]}")
        for unit in data.units:
            if not unit.bkg_given:
                raise ValueError(f"bkg_counts given but unit {unit.name!r} has no background; "
                                 "give bkg_counts=None")
    dtype = jnp.result_type(float)
    src = [jnp.asarray(a, dtype=dtype) for a in src]
    bkg = None if bkg is None else [jnp.asarray(a, dtype=dtype) for a in bkg]
    return src, bkg, int(src[0].shape[0])


def _as_list(counts: Any) -> list | None:
    if counts is None or isinstance(counts, (list, tuple)):
        return counts
    return [counts]


def spectrum_stacks(template: DataUnit | Data, src_counts: Sequence[Array],
                    bkg_counts: Sequence[Array] | None = None) -> tuple[Stack, ...]:
    """The template's setups with one spectrum's grouped counts (and errors): `Stack`s.

    Pure JAX (use under `jax.vmap` over spectra); `Data.group_counts` groups them.

    **Arguments:**

    - `template`: the `DataUnit` or `Data`.
    - `src_counts`: one ``(chan,)`` array per unit, in `Data` order (or one array for a unit).
    - `bkg_counts`: likewise, or `None` to keep the template's backgrounds.

    **Returns:** the stacks, for ``likelihood.loglike(model, params, stacks)``.
    """
    data = _template(template)
    counts = data.group_counts(_as_list(src_counts), _as_list(bkg_counts))
    return tuple(Stack(setup, c) for setup, c in zip(data.setup, counts))


def _problem(model: Model, params: Mapping[str, Par], template: Any) -> tuple[Data, Problem]:
    data = _template(template)
    return data, Problem(model, params, data)


def _starts(problem: Problem, start: Any, shape: tuple[int, ...], what: str) -> Array:
    """`start` broadcast to ``(*shape, free)``; it may have any leading part of `shape`."""
    dtype = jnp.result_type(float)
    x0 = problem.initial() if start is None else jnp.asarray(start, dtype=dtype)
    n_free = problem.n_free
    lead = tuple(x0.shape[:-1])
    if x0.ndim < 1 or x0.shape[-1] != n_free or lead != shape[: len(lead)]:
        allowed = " or ".join(str((*shape[:k], n_free)) for k in range(len(shape) + 1))
        raise ValueError(f"{what} must have shape {allowed} for free parameters "
                         f"{problem.names}, got {tuple(x0.shape)}")
    x0 = x0.reshape(*lead, *(1,) * (len(shape) - len(lead)), n_free)
    return jnp.broadcast_to(x0, (*shape, n_free)).astype(dtype)


# ----------------------------------------------------------------------------------------------
# maximum likelihood


@dataclasses.dataclass(frozen=True)
class BatchFitResult:
    """Best fits of a batch of spectra (leading axis: spectrum).

    **Fields:** `names` (free parameters), `best` ``(spectrum, free)``, `errors` ``(spectrum,
    free)`` (1-sigma, from the Hessian), `covariance` ``(spectrum, free, free)``, `loglike` and
    `stat` (``-2 loglike``) ``(spectrum,)``, `dof`, `converged` ``(spectrum,)``, `num_steps`
    ``(spectrum,)`` (BFGS iterations), `at_bound` ``(spectrum, free)`` (a parameter at a bound
    of its prior's support: error NaN, see `bounds`).
    """

    names: list[str]
    best: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    loglike: np.ndarray
    stat: np.ndarray
    dof: int
    converged: np.ndarray
    num_steps: np.ndarray
    at_bound: np.ndarray | None = None

    def __len__(self) -> int:
        return self.best.shape[0]

    def __getitem__(self, i: int) -> FitResult:
        """Spectrum `i`'s fit as a `FitResult`."""
        return FitResult(names=list(self.names), best=self.best[i], errors=self.errors[i],
                         covariance=self.covariance[i], loglike=float(self.loglike[i]),
                         stat=float(self.stat[i]), dof=self.dof,
                         converged=bool(self.converged[i]),
                         at_bound=[] if self.at_bound is None else
                         [n for n, p in zip(self.names, self.at_bound[i]) if p])

    def covers(self, truth: Mapping[str, Any] | ArrayLike, width: float = 1.0
               ) -> Bool[np.ndarray, "spectrum free"]:
        """Whether ``best ± width * errors`` contains `truth` (``{name: value}`` or an array
        ``(free,)`` or ``(spectrum, free)``), per spectrum and parameter."""
        if isinstance(truth, Mapping):
            missing = [n for n in self.names if n not in truth]
            if missing:
                raise ValueError(f"truth lacks parameter(s) {missing}")
            truth = np.stack([np.asarray(truth[n], dtype=np.float64) for n in self.names], -1)
        truth = np.asarray(truth, dtype=np.float64)
        return np.abs(self.best - truth) <= width * self.errors


def batch_maximum_likelihood(
    model: Model, params: Mapping[str, Par], template: DataUnit | Data,
    src_counts: Float[ArrayLike, "spectrum chan"] | Sequence[Float[ArrayLike, "spectrum chan"]],
    bkg_counts: Any = None, *, start: Float[ArrayLike, "*spectrum free"] | None = None,
    rtol: float = 1e-10, atol: float = 1e-10, max_steps: int = 2000,
    exact_hessian: bool = True, bounded: bool = True,
) -> BatchFitResult:
    """Maximum-likelihood fits of many spectra of one setup, in one jitted `jax.vmap`.

    Each spectrum is minimised with optimistix BFGS (``-2 loglike``), as `maximum_likelihood`
    does for one; its covariance is the inverse Hessian of ``-loglike`` at the best fit.

    **Arguments:**

    - `model`: ``model(energy, params_vector)``.
    - `params`: ``{name: Par}`` in the model's order (frozen ones stay fixed).
    - `template`: the `DataUnit` (or `Data`) whose setup every spectrum shares.
    - `src_counts`: source counts ``(spectrum, chan)`` (a list of them, one per unit, for a
        `Data`); ungrouped, all channels of the unit.
    - `bkg_counts`: background counts likewise, or `None` to keep the template's background.
    - `start`: initial free values ``(free,)`` or ``(spectrum, free)``; default: the `Par`
        values.
    - `rtol`, `atol`, `max_steps`: optimiser settings.
    - `exact_hessian`: the Hessian by autodiff (`jax.hessian`); `False`: by central differences
        of the autodiff gradient (steps ``1e-5 * max(1, |x|)``, relative accuracy ~1e-8),
        which compiles about 40% faster (compilation dominates for a few hundred spectra on a
        CPU).
    - `bounded`: fit inside the priors' supports, as `maximum_likelihood`.

    **Returns:** a `BatchFitResult`.
    """
    data, problem = _problem(model, params, template)
    src, bkg, n = _inputs(data, src_counts, bkg_counts)
    x0 = _starts(problem, start, (n,), "start")
    best, covariance, loglike, converged, steps = _fit_batch(
        problem.objective, data.setup, data.counts, x0, src, bkg, float(rtol), float(atol),
        int(max_steps), bool(exact_hessian), bool(bounded))
    best = np.asarray(best)
    covariance = np.asarray(covariance)
    loglike = np.asarray(loglike)
    pinned = (np.asarray(bounds.at_bound(problem.objective.priors, best)) if bounded
              else np.zeros(best.shape, dtype=bool))
    return BatchFitResult(
        names=list(problem.names), best=best, errors=fit_errors(covariance, pinned),
        covariance=covariance, loglike=loglike, stat=-2.0 * loglike, dof=problem.dof,
        converged=np.asarray(converged), num_steps=np.asarray(steps), at_bound=pinned)


@eqx.filter_jit
def _fit_batch(objective: Objective, setup: tuple, template: tuple, x0, src, bkg, rtol: float,
               atol: float, max_steps: int, exact_hessian: bool, bounded: bool = True):
    def one(x0, src, bkg):
        counts = group_unit_counts(setup, template, src, bkg)
        return fit_objective(objective, x0, setup, counts, rtol, atol, max_steps, exact_hessian,
                             bounded)

    return jax.vmap(one)(x0, src, bkg)


# ----------------------------------------------------------------------------------------------
# NUTS


def batch_nuts(
    model: Model, params: Mapping[str, Par], template: DataUnit | Data,
    src_counts: Float[ArrayLike, "spectrum chan"] | Sequence[Float[ArrayLike, "spectrum chan"]],
    bkg_counts: Any = None, *, key: PRNGKeyArray, num_warmup: int = 500,
    num_samples: int = 500, num_chains: int = 1,
    init: Float[ArrayLike, "*spectrum free"] | None = None, target_acceptance_rate: float = 0.8,
    step_size: float | Float[ArrayLike, " spectrum"] | None = None,
    inverse_mass_matrix: Float[ArrayLike, "*spectrum free"] | None = None,
    dense_mass: bool = False,
) -> Posterior:
    """BlackJAX NUTS on many spectra of one setup, in one jitted `jax.vmap` (spectra x chains).

    The log density is the `Par` priors plus the log-likelihood, on the parameters themselves
    (no change of variables, as `blackjax_logdensity`): start inside the priors' supports, e.g.
    at the `batch_maximum_likelihood` best fits.

    - ``num_warmup > 0``: each chain of each spectrum runs its own Stan-style window adaptation
        (step size and mass matrix, diagonal or with ``dense_mass=True`` dense) inside the
        `vmap`; an `inverse_mass_matrix` only seeds its first window.
    - ``num_warmup = 0`` (the fixed-step alternative): no adaptation; `step_size` and
        `inverse_mass_matrix` are used as given. With the ML covariance as a dense inverse mass
        matrix (``dense_mass=True, inverse_mass_matrix=fit.covariance``) the posterior is
        nearly white and a step size of about 0.5-0.8 works; this skips the costly warm-up.

    Under `vmap` every NUTS step costs as much as the longest trajectory of the batch, so a
    well-conditioned mass matrix matters more than for one chain.

    **Arguments:**

    - `model`, `params`, `template`, `src_counts`, `bkg_counts`: as `batch_maximum_likelihood`.
    - `key`: a JAX random key.
    - `num_warmup`, `num_samples`: adaptation steps and kept draws per chain.
    - `num_chains`: chains per spectrum.
    - `init`: starting free values ``(free,)``, ``(spectrum, free)`` or ``(spectrum, chain,
        free)``; default: the `Par` values.
    - `target_acceptance_rate`: of the step-size adaptation.
    - `step_size`: ``()`` or ``(spectrum,)``, only (and required) with ``num_warmup=0``.
    - `inverse_mass_matrix`: ``(free,)``/``(spectrum, free)``, or with ``dense_mass=True``
        ``(free, free)``/``(spectrum, free, free)``; default: identity.
    - `dense_mass`: use (and adapt) a dense mass matrix.

    **Returns:** a `Posterior` with a batch axis: samples ``{name: (spectrum, chain, draw)}``,
    sample stats ``diverging``, ``lp`` (log posterior) and ``n_steps``; ``posterior[i]`` is
    spectrum `i`'s.
    """
    num_warmup = _count(num_warmup, "num_warmup", 0)
    num_samples = _count(num_samples, "num_samples", 1)
    num_chains = _count(num_chains, "num_chains", 1)
    adapt = num_warmup > 0
    if adapt and step_size is not None:
        raise ValueError("step_size is for num_warmup=0 (no adaptation); with a warm-up it is "
                         "adapted")
    if not adapt and step_size is None:
        raise ValueError("num_warmup=0 needs a step_size (and optionally inverse_mass_matrix)")
    data, problem = _problem(model, params, template)
    src, bkg, n = _inputs(data, src_counts, bkg_counts)
    dtype = jnp.result_type(float)
    x0 = _starts(problem, init, (n, num_chains), "init")
    k = problem.n_free
    if inverse_mass_matrix is None:
        imm = jnp.ones((n, k, k) if dense_mass else (n, k), dtype)
        imm = imm * jnp.eye(k, dtype=dtype) if dense_mass else imm
    else:
        imm = jnp.asarray(inverse_mass_matrix, dtype)
        want = (k, k) if dense_mass else (k,)
        if imm.shape not in (want, (n, *want)):
            raise ValueError(f"inverse_mass_matrix must have shape {want} or {(n, *want)} "
                             f"(dense_mass={dense_mass}), got {tuple(imm.shape)}")
        imm = jnp.broadcast_to(imm, (n, *want))
    if adapt:
        steps = jnp.ones((n,), dtype)
    else:
        steps = jnp.broadcast_to(jnp.asarray(step_size, dtype), (n,))
        if not np.all(np.asarray(steps) > 0):
            raise ValueError(f"step_size must be > 0, got {step_size!r}")
    keys = jax.random.split(key, (n, num_chains))
    positions, diverging, lp, n_steps = _nuts_batch(
        problem.objective, data.setup, data.counts, keys, x0, src, bkg, steps, imm,
        int(num_warmup), int(num_samples), float(target_acceptance_rate), bool(dense_mass), inverse_mass_matrix is not None)
    return Posterior.from_blackjax(
        np.asarray(positions), problem.names, batch_ndim=1,
        sample_stats={"diverging": np.asarray(diverging), "lp": np.asarray(lp),
                      "n_steps": np.asarray(n_steps)})


@eqx.filter_jit
def _nuts_batch(objective: Objective, setup: tuple, template: tuple, keys, x0, src, bkg, steps,
                imm, num_warmup: int, num_samples: int, target: float, dense: bool,
                seeded: bool):
    import blackjax
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    def chain(key, x0, counts, step, imm):
        def logdensity(x):
            value = objective.log_posterior(x, setup, counts)
            return jnp.where(jnp.isnan(value), -jnp.inf, value)

        warm_key, sample_key = jax.random.split(key)
        if num_warmup:
            warmup = blackjax.window_adaptation(
                blackjax.nuts, logdensity, is_mass_matrix_diagonal=not dense,
                initial_inverse_mass_matrix=imm if seeded else None,
                target_acceptance_rate=target, adaptation_info_fn=get_filter_adapt_info_fn())
            (state, parameters), _ = warmup.run(warm_key, x0, num_steps=num_warmup)
        else:
            state = blackjax.nuts.init(x0, logdensity)
            parameters = {"step_size": step, "inverse_mass_matrix": imm}
        kernel = blackjax.nuts(logdensity, **parameters)

        def step_fn(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_divergent, state.logdensity,
                           info.num_integration_steps)

        _, out = jax.lax.scan(step_fn, state, jax.random.split(sample_key, num_samples))
        return out

    def spectrum(keys, x0, src, bkg, step, imm):
        counts = group_unit_counts(setup, template, src, bkg)
        return jax.vmap(lambda k, x: chain(k, x, counts, step, imm))(keys, x0)

    return jax.vmap(spectrum)(keys, x0, src, bkg, steps, imm)
