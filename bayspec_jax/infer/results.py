"""Posterior samples in the layout ArviZ takes, with a summary table and diagnostics.

`Posterior` holds ``{name: array (chain, draw)}`` (optionally with leading batch axes, one per
spectrum of a batch fit), from NumPyro (`Posterior.from_numpyro`), BlackJAX
(`Posterior.from_blackjax`) or anything else. ArviZ itself is optional: `Posterior.to_arviz`
imports it only when called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from jaxtyping import ArrayLike

from .._table import Table

QUANTILES = (0.16, 0.5, 0.84)
"""The quantiles `Posterior.summary` shows: the median and the central 68% interval."""


def _as_group(group: Mapping[str, ArrayLike] | None, what: str, shape: tuple | None
              ) -> dict[str, np.ndarray] | None:
    if group is None:
        return None
    if not isinstance(group, Mapping):
        raise ValueError(f"{what} must be a dict of arrays, got {type(group).__name__}")
    out = {}
    for name, value in group.items():
        array = np.asarray(value)
        if array.ndim < 2:
            raise ValueError(f"{what}[{name!r}] must have shape (*batch, chain, draw, ...), got "
                             f"{array.shape}")
        if shape is not None and array.shape[: len(shape)] != shape:
            raise ValueError(f"{what}[{name!r}] has shape {array.shape}; the samples have "
                             f"(*batch, chain, draw) = {shape}")
        out[str(name)] = array
    return out


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Posterior draws by parameter name, in ArviZ's ``(chain, draw)`` layout.

    **Fields:**

    - `samples`: ``{name: array (*batch, chain, draw)}``; `batch` is empty for one fit and
        ``(spectrum,)`` for `batch_nuts` (index with ``posterior[i]`` for one spectrum).
    - `log_likelihood`: optional ``{name: array (*batch, chain, draw, ...)}``.
    - `sample_stats`: optional ``{name: array (*batch, chain, draw)}``, e.g. ``diverging``.

    All arrays are host-side numpy arrays; every parameter has the same leading shape.
    """

    samples: dict[str, np.ndarray]
    log_likelihood: dict[str, np.ndarray] | None = None
    sample_stats: dict[str, np.ndarray] | None = None
    batch_ndim: int = 0

    def __post_init__(self):
        if not isinstance(self.samples, Mapping) or not self.samples:
            raise ValueError("samples must be a non-empty dict {name: array (chain, draw)}")
        if isinstance(self.batch_ndim, bool) or not isinstance(self.batch_ndim, int) or \
                self.batch_ndim < 0:
            raise ValueError(f"batch_ndim must be an integer >= 0, got {self.batch_ndim!r}")
        samples = {}
        shape = None
        for name, value in self.samples.items():
            array = np.asarray(value)
            if array.ndim != self.batch_ndim + 2:
                raise ValueError(
                    f"samples[{name!r}] must have shape (*batch, chain, draw) with "
                    f"{self.batch_ndim} batch axes, got {array.shape}")
            if shape is not None and array.shape != shape:
                raise ValueError(f"samples[{name!r}] has shape {array.shape}, others {shape}")
            shape = array.shape
            samples[str(name)] = array
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "log_likelihood",
                           _as_group(self.log_likelihood, "log_likelihood", shape))
        object.__setattr__(self, "sample_stats",
                           _as_group(self.sample_stats, "sample_stats", shape))

    # -- shape ------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.samples)

    @property
    def _shape(self) -> tuple[int, ...]:
        return next(iter(self.samples.values())).shape

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self._shape[: self.batch_ndim]

    @property
    def num_chains(self) -> int:
        return self._shape[-2]

    @property
    def num_draws(self) -> int:
        return self._shape[-1]

    def __getitem__(self, index: Any) -> Posterior:
        """The posterior of one spectrum (or a sub-batch) of a batched `Posterior`."""
        if self.batch_ndim == 0:
            raise TypeError("this Posterior has no batch axis to index")

        def take(group):
            return None if group is None else {k: v[index] for k, v in group.items()}

        samples = take(self.samples)
        ndim = next(iter(samples.values())).ndim - 2
        if ndim < 0:
            raise ValueError(f"index {index!r} removes the chain or draw axis")
        return Posterior(samples, take(self.log_likelihood), take(self.sample_stats), ndim)

    # -- statistics (batched: each returns arrays of shape batch_shape) --------------------

    def flat(self, name: str) -> np.ndarray:
        """The draws of `name`, chains concatenated: ``(*batch, chain * draw)``."""
        if name not in self.samples:
            raise ValueError(f"no parameter named {name!r}; parameters are {self.names}")
        value = self.samples[name]
        return value.reshape(*self.batch_shape, -1)

    def mean(self) -> dict[str, np.ndarray]:
        return {name: self.flat(name).mean(axis=-1) for name in self.names}

    def sd(self) -> dict[str, np.ndarray]:
        """Standard deviations (``ddof=1``, as ArviZ)."""
        return {name: self.flat(name).std(axis=-1, ddof=1) for name in self.names}

    def quantile(self, q: float | Sequence[float]) -> dict[str, np.ndarray]:
        """``np.quantile`` of each parameter over all chains and draws: ``(*q, *batch)``."""
        q_array = np.asarray(q, dtype=np.float64)
        if not np.all((q_array >= 0) & (q_array <= 1)):
            raise ValueError(f"q must lie in [0, 1], got {q!r}")
        return {name: np.quantile(self.flat(name), q_array, axis=-1) for name in self.names}

    def _chain_first(self, name: str) -> np.ndarray:
        # numpyro.diagnostics takes (chain, draw, *sample_shape): batch axes go last
        return np.moveaxis(self.samples[name], (-2, -1), (0, 1))

    def r_hat(self) -> dict[str, np.ndarray]:
        """Split R-hat (`numpyro.diagnostics.split_gelman_rubin`), per parameter."""
        from numpyro.diagnostics import split_gelman_rubin

        if self.num_draws < 4:
            raise ValueError(f"r_hat needs at least 4 draws per chain, got {self.num_draws}")
        return {name: np.asarray(split_gelman_rubin(self._chain_first(name)))
                for name in self.names}

    def ess(self) -> dict[str, np.ndarray]:
        """Effective sample size (`numpyro.diagnostics.effective_sample_size`)."""
        from numpyro.diagnostics import effective_sample_size

        return {name: np.asarray(effective_sample_size(self._chain_first(name)))
                for name in self.names}

    @property
    def num_divergent(self) -> np.ndarray | int:
        """Number of divergent transitions (0 when `sample_stats` has no ``diverging``)."""
        if not self.sample_stats or "diverging" not in self.sample_stats:
            return 0
        return np.asarray(self.sample_stats["diverging"]).reshape(*self.batch_shape, -1).sum(-1)

    def summary(self) -> Table:
        """A table, one row per parameter: mean, sd, 16%, 50%, 84% quantiles, r_hat, ess.

        For a batched posterior, index one spectrum first (``posterior[i].summary()``).
        """
        if self.batch_ndim:
            raise ValueError(f"summary() is for one fit; this Posterior has batch shape "
                             f"{self.batch_shape}: use posterior[i].summary()")
        mean, sd, quantiles = self.mean(), self.sd(), self.quantile(QUANTILES)
        enough = self.num_draws >= 4
        r_hat = self.r_hat() if enough else {n: np.nan for n in self.names}
        ess = self.ess() if enough else {n: np.nan for n in self.names}
        columns: dict[str, list] = {"parameter": self.names,
                                    "mean": [mean[n] for n in self.names],
                                    "sd": [sd[n] for n in self.names]}
        for i, q in enumerate(QUANTILES):
            columns[f"{100 * q:g}%"] = [quantiles[n][i] for n in self.names]
        columns["r_hat"] = [float(r_hat[n]) for n in self.names]
        columns["ess"] = [float(ess[n]) for n in self.names]
        return Table(columns)

    def __repr__(self) -> str:
        batch = f", batch {self.batch_shape}" if self.batch_ndim else ""
        return (f"Posterior({self.names}, {self.num_chains} chain(s) x {self.num_draws} "
                f"draws{batch})")

    # -- conversions ---------------------------------------------------------------------------

    def to_arviz(self) -> Any:
        """An ``arviz.InferenceData`` (groups posterior, log_likelihood, sample_stats).

        Needs ArviZ (``pip install arviz``); raises `ImportError` otherwise.
        """
        if self.batch_ndim:
            raise ValueError(f"to_arviz() is for one fit; this Posterior has batch shape "
                             f"{self.batch_shape}: use posterior[i].to_arviz()")
        try:
            import arviz
        except ImportError as err:
            raise ImportError("Posterior.to_arviz needs ArviZ, which is not installed: "
                              "pip install arviz") from err
        groups = {"posterior": self.samples}
        if self.log_likelihood:
            groups["log_likelihood"] = self.log_likelihood
        if self.sample_stats:
            groups["sample_stats"] = self.sample_stats
        major = int(str(getattr(arviz, "__version__", "0")).split(".")[0] or 0)
        if major >= 1:  # ArviZ 1.x: from_dict({group: {var: array}})
            return arviz.from_dict(groups)
        return arviz.from_dict(**groups)

    @classmethod
    def from_numpyro(cls, mcmc: Any) -> Posterior:
        """From a run ``numpyro.infer.MCMC``: its samples by chain and, when recorded, the extra
        fields ``diverging``, ``num_steps`` (as ``n_steps``) and ``potential_energy`` (as
        ``lp = -potential_energy``, the log density in NumPyro's unconstrained space)."""
        if not hasattr(mcmc, "get_samples"):
            raise ValueError(f"mcmc must be a numpyro.infer.MCMC, got {type(mcmc).__name__}")
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = mcmc.get_extra_fields(group_by_chain=True)
        stats = {}
        if "diverging" in extra:
            stats["diverging"] = np.asarray(extra["diverging"])
        if "num_steps" in extra:
            stats["n_steps"] = np.asarray(extra["num_steps"])
        if "potential_energy" in extra:
            stats["lp"] = -np.asarray(extra["potential_energy"])
        return cls(samples, sample_stats=stats or None)

    @classmethod
    def from_blackjax(cls, positions: Mapping[str, ArrayLike] | ArrayLike,
                      names: Sequence[str] | None = None, *, sample_stats: Mapping | None = None,
                      log_likelihood: Mapping | None = None, batch_ndim: int = 0) -> Posterior:
        """From BlackJAX states' positions stacked over chains and draws.

        **Arguments:**

        - `positions`: ``{name: array (*batch, chain, draw)}`` (a dict position, as
            `blackjax_logdensity` uses), or an array ``(*batch, chain, draw, free)`` with
            `names` naming its last axis.
        - `names`: the parameter names for an array `positions`.
        - `sample_stats`, `log_likelihood`: optional dicts of ``(*batch, chain, draw)`` arrays
            (e.g. ``{"diverging": info.is_divergent}``).
        - `batch_ndim`: number of leading batch axes.
        """
        if isinstance(positions, Mapping):
            if names is not None:
                raise ValueError("names is only for an array of positions")
            samples = {k: np.asarray(v) for k, v in positions.items()}
        else:
            array = np.asarray(positions)
            if names is None:
                raise ValueError("names is required when positions is an array")
            names = list(names)
            if array.ndim < 3 or array.shape[-1] != len(names):
                raise ValueError(f"positions must have shape (*batch, chain, draw, {len(names)}) "
                                 f"for names {names}, got {array.shape}")
            samples = {name: array[..., i] for i, name in enumerate(names)}
        return cls(samples, log_likelihood=log_likelihood, sample_stats=sample_stats,
                   batch_ndim=batch_ndim)

