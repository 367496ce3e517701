"""A fit problem: a photon model, its parameters, the data layer's parameters, links, a `Data`.

Every parameter of a fit has a name. A model parameter is named by its key in `params`
(``'alpha'``); a data-layer parameter by its label and unit, ``'<label>@<unit>'`` with label
one of ``sf`` (source factor), ``bf`` (background factor), ``rf`` (response factor), ``ra``,
``dec`` (``'rf@bgo'``). The free parameters (not frozen, and not following a link) form the fit
vector: model parameters first, in the order given, then data-layer ones in `Data` order.

A link ``('sf@nai', 'sf@bgo')`` makes the listed parameters one: all take the first name's
`Par` (value, prior, frozen flag, scale), and only the first name is a free parameter. `Par`s
are immutable, so links belong to the `Problem`, not to the `Par`s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._table import Table
from ..data.data import Data
from ..fold import Model
from ..likelihood import loglike
from ..params import Par

DATA_LABELS = ("sf", "bf", "rf", "ra", "dec")
"""The data-layer parameters of each unit, in the order of `DataUnit.params`."""

FACTORS = DATA_LABELS
"""The data-layer parameters the likelihood takes (``data_params`` of `likelihood.loglike`):
the factors, and the position at which location-dependent responses are evaluated."""


@dataclasses.dataclass(frozen=True)
class _Slot:
    """One parameter of the fit: where it lives and the `Par` given for it."""

    name: str          # 'alpha' or 'sf@nai'
    cls: str           # 'model' or 'data'
    component: str     # the model's name or the unit's name
    label: str         # 'alpha' or 'sf'
    par: Par           # the Par as given (before links)


def _model_name(model: Model) -> str:
    return getattr(model, "__name__", type(model).__name__)


def _check_par(name: str, par: Any) -> Par:
    if not isinstance(par, Par):
        raise ValueError(f"parameter {name!r} must be a Par, got {type(par).__name__}")
    return par


def _link_groups(links: Sequence[Sequence[str]] | None, known: Sequence[str]) -> list[tuple]:
    groups: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}
    for k, link in enumerate(links or ()):
        if isinstance(link, str) or len(link) < 2:
            raise ValueError(f"a link is a tuple of two or more parameter names, got {link!r}")
        for name in link:
            if name not in known:
                raise ValueError(f"link {tuple(link)!r}: unknown parameter {name!r}; parameters "
                                 f"are {list(known)}")
            if name in seen:
                where = "twice in this link" if seen[name] == k else f"in link {groups[seen[name]]!r} too"
                raise ValueError(f"link {tuple(link)!r}: parameter {name!r} appears {where}; "
                                 "put every parameter shared with it in one link")
            seen[name] = k
        groups.append(tuple(link))
    return groups


class Objective(eqx.Module):
    """A problem's densities as pure functions of the free vector and the data arrays: a pytree
    (parameter values as leaves, model and priors static), so one compiled fit serves every
    problem of the same structure (`maximum_likelihood`, the batch fits).

    **Fields:** `model` and `priors` (of the free parameters), static; `n_model`, `n_units`;
    `bound_slots`, `bound_free` (which slot takes which free value); `values` (every slot's
    value); `log_scale` (per slot); `passed` (the data-layer labels handed to the likelihood).
    """

    model: Model = eqx.field(static=True)
    n_model: int = eqx.field(static=True)
    n_units: int = eqx.field(static=True)
    bound_slots: Array
    bound_free: Array
    values: Array
    log_scale: tuple[bool, ...] = eqx.field(static=True)
    passed: tuple[str, ...] = eqx.field(static=True)
    priors: tuple = eqx.field(static=True)

    def _all_vals(self, free: Float[Array, " free"]) -> Float[Array, " slot"]:
        free = jnp.asarray(free)
        return self.values.at[self.bound_slots].set(free[self.bound_free])

    def full(self, free: Float[Array, " free"]) -> Float[Array, " param"]:
        """The model's whole parameter vector."""
        return self._all_vals(free)[: self.n_model]

    def data_values(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]]:
        """The data-layer parameters' physical values, ``{label: (n_units,)}`` in `Data` order."""
        vals = self._all_vals(free)[self.n_model:]
        is_log = np.array(self.log_scale[self.n_model:], dtype=bool)
        if is_log.any():  # 10 ** only where asked: no overflow (nor NaN gradient) elsewhere
            vals = jnp.where(is_log, 10.0 ** jnp.where(is_log, vals, 0.0), vals)
        table = vals.reshape(self.n_units, len(DATA_LABELS))
        return {label: table[:, j] for j, label in enumerate(DATA_LABELS)}

    def data_params(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]] | None:
        if not self.passed:
            return None
        values = self.data_values(free)
        return {label: values[label] for label in self.passed}

    def loglike(self, free: Float[Array, " free"], setup: tuple, counts: tuple
                ) -> Float[Array, ""]:
        return loglike(self.model, self.full(free), setup, counts, self.data_params(free))

    def log_prior(self, free: Float[Array, " free"]) -> Float[Array, ""]:
        total = jnp.zeros((), dtype=jnp.result_type(float))
        for i, prior in enumerate(self.priors):
            total = total + prior.log_prob(free[i])
        return total

    def log_posterior(self, free: Float[Array, " free"], setup: tuple, counts: tuple
                      ) -> Float[Array, ""]:
        return self.log_prior(free) + self.loglike(free, setup, counts)


class Problem:
    """What a fit needs: a model, named `Par`s (the model's and the data layer's), a `Data`.

    A parameter's `val` is what the fit varies and what its prior is on. The model receives
    the model parameters' `val`s (e.g. log10 Ec for `cpl`); the likelihood receives the data
    factors' physical `value`s (``10 ** val`` for ``scale='log'``).

    **Arguments:**

    - `model`: ``model(energy, params_vector)``.
    - `params`: ``{name: Par}``, in the order of the model's parameter vector.
    - `data`: the `Data` to fit.
    - `data_params`: ``{'<label>@<unit>': Par}``, replacing units' own data-layer `Par`s
        (label ``sf``, ``bf``, ``rf``, ``ra`` or ``dec``), e.g.
        ``{'rf@bgo': Par(1.0, unif(0.5, 1.5))}`` frees the BGO response factor. Parameters not
        named keep the unit's `Par` (frozen at 1 for factors unless the unit was built with
        another).
    - `links`: a sequence of tuples of parameter names; the names in one tuple share the
        first name's `Par` and appear once, as that name, among the free parameters.
    """

    def __init__(self, model: Model, params: Mapping[str, Par], data: Data,
                 data_params: Mapping[str, Par] | None = None,
                 links: Sequence[Sequence[str]] | None = None):
        if not isinstance(data, Data):
            raise ValueError(f"data must be a bayspec_jax.Data, got {type(data).__name__}")
        self.model = model
        self.params = {name: _check_par(name, par) for name, par in params.items()}
        self.data = data
        overrides = {name: _check_par(name, par) for name, par in (data_params or {}).items()}

        slots = [_Slot(name, "model", _model_name(model), name, par)
                 for name, par in self.params.items()]
        for unit_name, unit in data.items():
            for label, par in unit.params.items():
                name = f"{label}@{unit_name}"
                if name in self.params:
                    raise ValueError(f"model parameter {name!r} has the name of a data-layer "
                                     "parameter; rename it")
                slots.append(_Slot(name, "data", unit_name, label, overrides.pop(name, par)))
        if overrides:
            bad = next(iter(overrides))
            raise ValueError(
                f"unknown data-layer parameter {bad!r}: names are '<label>@<unit>' with label in "
                f"{DATA_LABELS} and unit in {list(data.names)}")
        self._slots = slots
        names = [s.name for s in slots]
        self.links = _link_groups(links, names)

        leader_of = {name: group[0] for group in self.links for name in group[1:]}
        by_name = {s.name: s for s in slots}
        self.leader = leader_of
        """``{follower: leader}`` for every linked parameter but the first of its link."""
        self.pars = {s.name: by_name[leader_of.get(s.name, s.name)].par for s in slots}
        """Every parameter's effective `Par` (a follower's is its leader's), by name."""
        self.names = [s.name for s in slots
                      if s.name not in leader_of and not self.pars[s.name].frozen]
        if not self.names:
            raise ValueError("every parameter is frozen: nothing to fit")
        constant = {unit_name: unit.rsp.constant for unit_name, unit in data.items()}
        for s in slots:
            if s.label in ("ra", "dec") and constant[s.component] and (
                    s.name in leader_of or not self.pars[s.name].frozen):
                raise ValueError(f"parameter {s.name!r} is free, but unit {s.component!r} has a "
                                 "constant response: the likelihood does not depend on its sky "
                                 "position; freeze it")

        free_index = {name: i for i, name in enumerate(self.names)}
        bound = [(k, free_index[leader_of.get(s.name, s.name)]) for k, s in enumerate(slots)
                 if leader_of.get(s.name, s.name) in free_index]
        self._n_model = len(self.params)
        # The data-layer parameters whose values differ from the setups' (free, linked or
        # replaced) are passed to the likelihood; the others are read from the setups.
        n_units, bound_set = len(data), {k for k, _ in bound}
        passed = tuple(
            label for j, label in enumerate(FACTORS)
            if any(self._n_model + u * len(DATA_LABELS) + j in bound_set
                   or self.pars[f"{label}@{data.names[u]}"] is not data.units[u].params[label]
                   for u in range(n_units)))
        self.objective = Objective(
            model=model, n_model=self._n_model, n_units=n_units,
            bound_slots=jnp.asarray([k for k, _ in bound], dtype=int),
            bound_free=jnp.asarray([i for _, i in bound], dtype=int),
            values=jnp.stack([self.pars[s.name].val for s in slots]),
            log_scale=tuple(bool(self.pars[s.name].scale == "log") for s in slots),
            passed=passed, priors=tuple(self.pars[name].prior for name in self.names))
        """The problem's densities as a pytree of pure functions (`Objective`)."""
        self._arrays = (tuple(s.for_likelihood() for s in data.setup), data.counts)
        self._loglike_jit = None

    # -- sizes ----------------------------------------------------------------------------------

    @property
    def n_free(self) -> int:
        return len(self.names)

    @property
    def npoint(self) -> int:
        return sum(self.data.npoints)

    @property
    def dof(self) -> int:
        return self.npoint - self.n_free

    @property
    def free_pars(self) -> dict[str, Par]:
        """The free parameters' `Par`s, in fit order."""
        return {name: self.pars[name] for name in self.names}

    # -- free vector <-> values ------------------------------------------------------------------

    def initial(self) -> Float[Array, " free"]:
        """The free parameters' current values."""
        return jnp.stack([self.pars[name].val for name in self.names])

    def full(self, free: Float[Array, " free"]) -> Float[Array, " param"]:
        """The model's whole parameter vector for free values `free`."""
        return self.objective.full(free)

    def data_values(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]]:
        """The data-layer parameters' physical values, ``{label: (n_units,)}`` in `Data` order."""
        return self.objective.data_values(free)

    def data_params(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]] | None:
        """The ``data_params`` handed to `likelihood.loglike`, or `None` when the setups' own
        values apply."""
        return self.objective.data_params(free)

    def to_position(self, free: Float[Array, " free"]) -> dict[str, Array]:
        """``{name: value}`` of the free parameters (a NumPyro/BlackJAX position)."""
        return {name: free[i] for i, name in enumerate(self.names)}

    def from_position(self, position: Mapping[str, Any]) -> Float[Array, " free"]:
        """The free vector of a position ``{name: value}``."""
        missing = [name for name in self.names if name not in position]
        if missing:
            raise ValueError(f"position lacks free parameter(s) {missing}")
        return jnp.stack([jnp.asarray(position[name]) for name in self.names])

    # -- densities -------------------------------------------------------------------------------

    @property
    def arrays(self) -> tuple:
        """``(setup, counts)``: the data arrays; pass them as arguments to jitted code (see
        `loglike`)."""
        return self._arrays

    stacks = arrays
    """The older name of `arrays`."""

    def loglike(self, free: Float[Array, " free"], arrays: tuple | None = None
                ) -> Float[Array, ""]:
        """Log-likelihood at free values `free` (`arrays`: ``(setup, counts)``, default
        `arrays`).

        Jitted (once per problem), so that samplers' set-up code that runs the model outside
        `jit` compiles it once rather than op by op.
        """
        if self._loglike_jit is None:
            self._loglike_jit = jax.jit(lambda free, arrays: self.objective.loglike(free, *arrays))
        return self._loglike_jit(free, self._arrays if arrays is None else arrays)

    def log_prior(self, free: Float[Array, " free"]) -> Float[Array, ""]:
        """Sum of the free parameters' prior log-densities (each link counted once)."""
        return self.objective.log_prior(free)

    def log_posterior(self, free: Float[Array, " free"],
                      arrays: tuple | None = None) -> Float[Array, ""]:
        return self.log_prior(free) + self.loglike(free, arrays)

    # -- tables ----------------------------------------------------------------------------------

    @property
    def par(self) -> dict[str, Par]:
        """Every parameter's effective `Par` by number ``'1', '2', ...`` (model, then data)."""
        return {str(i): self.pars[s.name] for i, s in enumerate(self._slots, 1)}

    @property
    def pvalues(self) -> tuple:
        return tuple(float(p.value) for p in self.par.values())

    @property
    def all_params(self) -> list[dict]:
        """One row per parameter (model, then data layer by unit): ``par#``, ``Class``
        (model/data), ``Component`` (model or unit name), ``Parameter`` (label), ``Name`` (the
        fit name), ``Value`` (`val`), ``Prior``, ``Frozen``, ``Free`` and ``Linked`` (the name
        this one follows, or None)."""
        rows = []
        for i, s in enumerate(self._slots, 1):
            par = self.pars[s.name]
            rows.append({"par#": str(i), "Class": s.cls, "Component": s.component,
                         "Parameter": s.label, "Name": s.name, "Value": float(par.val),
                         "Prior": None if par.prior is None else repr(par.prior),
                         "Frozen": par.frozen, "Free": s.name in self.names,
                         "Linked": self.leader.get(s.name)})
        return rows

    @property
    def par_info(self) -> Table:
        """All parameters as a table; free ones have ``*`` after their number, as in bayspec."""
        rows = self.all_params
        for row in rows:
            if row["Free"]:
                row["par#"] += "*"
            row["Linked"] = "" if row["Linked"] is None else f"={row['Linked']}"
        keys = ("par#", "Class", "Component", "Parameter", "Name", "Value", "Prior", "Frozen",
                "Linked")
        return Table({k: [r[k] for r in rows] for k in keys})

    @property
    def free_par_info(self) -> Table:
        """The free parameters only."""
        rows = [r for r in self.all_params if r["Free"]]
        keys = ("par#", "Class", "Component", "Parameter", "Name", "Value", "Prior")
        return Table({k: [r[k] for r in rows] for k in keys})

    def __str__(self) -> str:
        return (f"*** Problem: {_model_name(self.model)}, {len(self.data)} unit(s), "
                f"{self.n_free} free ***\n{self.par_info.text}")

    def _repr_html_(self) -> str:
        return (f"<details open><summary><b>Problem</b> ({self.n_free} free)</summary>"
                f"{self.par_info.html}</details>")
