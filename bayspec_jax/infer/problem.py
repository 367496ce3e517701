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

FACTORS = ("sf", "bf", "rf")
"""The data-layer parameters the likelihood takes (``data_params`` of `likelihood.loglike`)."""


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
        for s in slots:
            if s.label in ("ra", "dec") and not self.pars[s.name].frozen:
                raise ValueError(f"parameter {s.name!r} is free, but the likelihood does not "
                                 "depend on the sky position of these responses; freeze it")

        free_index = {name: i for i, name in enumerate(self.names)}
        bound = [(k, free_index[leader_of.get(s.name, s.name)]) for k, s in enumerate(slots)
                 if leader_of.get(s.name, s.name) in free_index]
        self._bound_slots = jnp.asarray([k for k, _ in bound], dtype=int)
        self._bound_free = jnp.asarray([i for _, i in bound], dtype=int)
        self._values = jnp.stack([self.pars[s.name].val for s in slots])
        self._log_scale = np.array([self.pars[s.name].scale == "log" for s in slots])
        self._n_model = len(self.params)
        # The factors whose values differ from the stacks' (free, linked or replaced) are passed
        # to the likelihood; the others are read from the stacks.
        n_units, bound_set = len(data), {k for k, _ in bound}
        self._factors = tuple(
            label for j, label in enumerate(FACTORS)
            if any(self._n_model + u * len(DATA_LABELS) + j in bound_set
                   or self.pars[f"{label}@{data.names[u]}"] is not data.units[u].params[label]
                   for u in range(n_units)))
        self._stacks = data.stacked
        self._objective = self._hessian = self._loglike_jit = None

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

    def _all_vals(self, free: Float[Array, " free"]) -> Float[Array, " slot"]:
        free = jnp.asarray(free)
        return self._values.at[self._bound_slots].set(free[self._bound_free])

    def full(self, free: Float[Array, " free"]) -> Float[Array, " param"]:
        """The model's whole parameter vector for free values `free`."""
        return self._all_vals(free)[: self._n_model]

    def data_values(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]]:
        """The data-layer parameters' physical values, ``{label: (n_units,)}`` in `Data` order."""
        vals = self._all_vals(free)[self._n_model:]
        is_log = self._log_scale[self._n_model:]
        if is_log.any():  # 10 ** only where asked: no overflow (nor NaN gradient) elsewhere
            vals = jnp.where(is_log, 10.0 ** jnp.where(is_log, vals, 0.0), vals)
        table = vals.reshape(len(self.data), len(DATA_LABELS))
        return {label: table[:, j] for j, label in enumerate(DATA_LABELS)}

    def data_params(self, free: Float[Array, " free"]) -> dict[str, Float[Array, " unit"]] | None:
        """The ``data_params`` handed to `likelihood.loglike`, or `None` when the stacks' own
        factors apply."""
        if not self._factors:
            return None
        values = self.data_values(free)
        return {label: values[label] for label in self._factors}

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
    def stacks(self) -> tuple:
        """The stacked data arrays; pass them as arguments to jitted code (see `loglike`)."""
        return self._stacks

    def loglike(self, free: Float[Array, " free"], stacks: tuple | None = None) -> Float[Array, ""]:
        """Log-likelihood at free values `free` (`stacks`: the data arrays, default `stacks`).

        Jitted (once per problem), so that samplers' set-up code that runs the model outside
        `jit` compiles it once rather than op by op.
        """
        if self._loglike_jit is None:
            self._loglike_jit = jax.jit(lambda free, stacks: loglike(
                self.model, self.full(free), stacks, self.data_params(free)))
        return self._loglike_jit(free, self._stacks if stacks is None else stacks)

    def log_prior(self, free: Float[Array, " free"]) -> Float[Array, ""]:
        """Sum of the free parameters' prior log-densities (each link counted once)."""
        total = jnp.zeros((), dtype=jnp.result_type(float))
        for i, name in enumerate(self.names):
            total = total + self.pars[name].prior.log_prob(free[i])
        return total

    def log_posterior(self, free: Float[Array, " free"],
                      stacks: tuple | None = None) -> Float[Array, ""]:
        return self.log_prior(free) + self.loglike(free, stacks)

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
