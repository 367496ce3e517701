"""`Data`: an ordered, immutable collection of complete `DataUnit`s, and its stacked form."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._table import Table
from .stack import (FoldSetup, GroupedCounts, Stack, build_setup, group_unit_counts,
                    grouped_counts, plan_stacks)
from .storage import load_data_index, save_data_index, unit_folder
from .unit import DataUnit

UNIT_VIEWS = tuple(sorted(
    [name for name, value in vars(DataUnit).items() if isinstance(value, property)]
    + ["qualifying", "noticing", "grouping", "rebining", "group_ids", "rebin_ids", "rsp_drm",
       "rsp_re_drm", "n_groups", "n_rebins"]
))
"""Every `DataUnit` property and resolved field; ``data.<name>`` is the list of it over the
units (a property of `Data`, generated from this table, unless `Data` has its own: `ebin`,
`egrid`, `info`, `par`... are joined or `Data`-wide)."""

UNIT_METHODS = ("net_counts_upperlimit", "net_ctsrate_upperlimit",
                "net_counts_significance_limit", "net_ctsrate_significance_limit")
"""The `DataUnit` methods that `Data` has too, returning the list over units."""


def _per_unit_view(name: str) -> property:
    """The `Data` property ``name``: `DataUnit`'s ``name`` of each unit, as a list."""
    def view(self: Data) -> list:
        return [getattr(unit, name) for unit in self.units]

    unit_view = vars(DataUnit).get(name)
    detail = unit_view.__doc__ if isinstance(unit_view, property) and unit_view.__doc__ else ""
    view.__name__, view.__qualname__ = name, f"Data.{name}"
    view.__doc__ = f"`DataUnit.{name}` of each unit, in order.\n\n{detail}".rstrip()
    return property(view)


def _renamed(unit: DataUnit, name: str) -> DataUnit:
    if unit.name == name:
        return unit
    renamed = copy.copy(unit)
    object.__setattr__(renamed, "name", name)
    return renamed


def _as_pairs(data: Any) -> list[tuple[str, DataUnit]]:
    if data is None:
        return []
    if isinstance(data, Mapping):
        return list(data.items())
    if isinstance(data, (list, tuple)):
        pairs = []
        for item in data:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(f"Data takes (name, DataUnit) pairs, got {item!r}")
            pairs.append(item)
        return pairs
    raise ValueError(f"Data takes a list of (name, DataUnit) pairs or a dict, got "
                     f"{type(data).__name__}")


class Data(eqx.Module):
    """Data units in order, by name; per-unit views as lists; a stacked form for fits.

    **Arguments:**

    - `data`: a list of ``(name, unit)`` pairs or a dict ``{name: unit}``. Every unit must be
        complete (have a response); each is renamed to its key.

    ``data[name]`` and ``data[i]`` give units; `set` and `remove` return a new `Data`.
    ``data.src_counts`` (and every other name of `UNIT_VIEWS` and `UNIT_METHODS`) is a list
    over units. The likelihood
    uses the stacked form (see `bayspec_jax.data.stack`), one entry per statistic: `setup`
    (`FoldSetup`s: grids, fold blocks, efficiencies) and `counts` (`GroupedCounts`).
    """

    units: tuple[DataUnit, ...]
    setup: tuple[FoldSetup, ...]
    counts: tuple[GroupedCounts, ...]
    names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, data: Any = None):
        pairs = _as_pairs(data)
        names = []
        units = []
        for name, unit in pairs:
            if not isinstance(name, str) or not name:
                raise ValueError(f"unit names must be non-empty strings, got {name!r}")
            if name in names:
                raise ValueError(f"unit name {name!r} appears twice")
            if not isinstance(unit, DataUnit):
                raise ValueError(f"{name!r}: expected a DataUnit, got {type(unit).__name__}")
            if not unit.completeness:
                raise ValueError(f"{name!r}: the unit is incomplete (no response); give rsp, or "
                                 "rmf and arf, before adding it to a Data")
            if unit.n_groups == 0:
                raise ValueError(f"{name!r}: the unit has no group to fit")
            names.append(name)
            units.append(_renamed(unit, name))
        self.names = tuple(names)
        self.units = tuple(units)
        self.setup = tuple(build_setup(units, plan) for plan in plan_stacks(units))
        self.counts = tuple(grouped_counts(units, setup) for setup in self.setup)

    # -- stacked form -----------------------------------------------------------------------

    @property
    def stacked(self) -> tuple[Stack, ...]:
        """`setup` and `counts` paired per statistic (the older combined form)."""
        return tuple(Stack(setup, counts) for setup, counts in zip(self.setup, self.counts))

    def setup_for(self, view: str = "group") -> tuple[FoldSetup, ...]:
        """Fold setups for another grouping: ``"group"`` (`setup`), ``"rebin"`` (the ``_re_``
        views' grid) or ``"channel"`` (every channel alone, as `simulate` draws them)."""
        if view == "group":
            return self.setup
        return tuple(build_setup(self.units, setup.positions, view) for setup in self.setup)

    def group_counts(self, src_counts: Sequence[Any], bkg_counts: Sequence[Any] | None = None
                     ) -> tuple[GroupedCounts, ...]:
        """Channel counts grouped as this `Data` groups them (pure JAX: `jit`, `vmap`).

        **Arguments:**

        - `src_counts`: one ``(*batch, chan)`` array per unit, in `Data` order.
        - `bkg_counts`: likewise, or `None` to keep the units' background counts.

        Errors as `stack.group_counts` makes them (Poisson source; Poisson or the file's
        background errors by statistic). **Returns:** one `GroupedCounts` per setup, for
        ``likelihood.loglike(model, params, data.setup, counts)``.
        """
        return group_unit_counts(self.setup, self.counts, src_counts, bkg_counts)

    # -- mapping ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.units)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, key: str | int) -> DataUnit:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no unit named {key!r}; units are {list(self.names)}")
            return self.units[self.names.index(key)]
        if isinstance(key, (int, np.integer)):
            return self.units[key]
        raise TypeError(f"index a Data by unit name or position, not {type(key).__name__}")

    def __setitem__(self, key, value):
        raise TypeError("Data is immutable: use data.set(name, unit), which returns a new Data")

    def items(self) -> list[tuple[str, DataUnit]]:
        return list(zip(self.names, self.units))

    @property
    def data(self) -> OrderedDict[str, DataUnit]:
        """The units by name, in order."""
        return OrderedDict(self.items())

    def set(self, name: str, unit: DataUnit) -> Data:
        """A new `Data` with `unit` under `name` (replacing a unit of that name in place)."""
        pairs = self.items()
        if name in self.names:
            pairs[self.names.index(name)] = (name, unit)
        else:
            pairs.append((name, unit))
        return Data(pairs)

    def remove(self, name: str) -> Data:
        """A new `Data` without the unit `name`."""
        if name not in self.names:
            raise KeyError(f"no unit named {name!r}; units are {list(self.names)}")
        return Data([(n, u) for n, u in self.items() if n != name])

    # -- per-unit views ------------------------------------------------------------------------

    # Every other name of `UNIT_VIEWS` is a property added after the class (`_per_unit_view`).

    def net_counts_upperlimit(self, cl: float = 0.9) -> list[float]:
        """`DataUnit.net_counts_upperlimit` of each unit, in order."""
        return [unit.net_counts_upperlimit(cl) for unit in self.units]

    def net_ctsrate_upperlimit(self, cl: float = 0.9) -> list[float]:
        """`DataUnit.net_ctsrate_upperlimit` of each unit, in order."""
        return [unit.net_ctsrate_upperlimit(cl) for unit in self.units]

    def net_counts_significance_limit(self, sigma: float = 3) -> list[float]:
        """`DataUnit.net_counts_significance_limit` of each unit, in order."""
        return [unit.net_counts_significance_limit(sigma) for unit in self.units]

    def net_ctsrate_significance_limit(self, sigma: float = 3) -> list[float]:
        """`DataUnit.net_ctsrate_significance_limit` of each unit, in order."""
        return [unit.net_ctsrate_significance_limit(sigma) for unit in self.units]

    @property
    def srcs(self) -> list:
        """Each unit's source spectrum."""
        return [u.src for u in self.units]

    @property
    def bkgs(self) -> list:
        """Each unit's background spectrum (the zero background where none was given)."""
        return [u.bkg for u in self.units]

    @property
    def rsps(self) -> list:
        """Each unit's response."""
        return [u.rsp for u in self.units]

    @property
    def stats(self) -> list[str]:
        """Each unit's statistic."""
        return [u.stat for u in self.units]

    @property
    def notcs(self) -> list:
        """Each unit's notice windows (`None`: all channels)."""
        return [u.notc for u in self.units]

    @property
    def grpgs(self) -> list:
        """Each unit's grouping settings (`None`: the file's GROUPING)."""
        return [u.grpg for u in self.units]

    @property
    def rebns(self) -> list:
        """Each unit's rebinning settings (`None`: as `grpgs`)."""
        return [u.rebn for u in self.units]

    @property
    def times(self) -> list:
        """Each unit's time tag."""
        return [u.time for u in self.units]

    @property
    def weights(self) -> np.ndarray:
        """Each unit's weight, ``(unit,)``."""
        return np.array([u.weight for u in self.units])

    @property
    def npoints(self) -> list[int]:
        """Each unit's number of fitted groups."""
        return [u.npoint for u in self.units]

    @property
    def nbin(self) -> list[int]:
        """Each unit's number of photon bins."""
        return [u.nbin for u in self.units]

    @property
    def bin_start(self) -> np.ndarray:
        """Where each unit's photon bins start in `ebin`."""
        return np.cumsum([0, *self.nbin])[:-1]

    @property
    def bin_stop(self) -> np.ndarray:
        """Where each unit's photon bins stop in `ebin`."""
        return np.cumsum([0, *self.nbin])[1:]

    @property
    def ebin(self):
        """The units' photon bins [keV], end to end, ``(sum nbin, 2)``."""
        return jnp.concatenate([u.ebin for u in self.units])

    @property
    def ewidth(self):
        """The units' photon bin widths [keV], end to end."""
        return jnp.concatenate([u.ewidth for u in self.units])

    @property
    def ngrid(self) -> int:
        """Points per photon bin of `egrid`."""
        return 5

    @property
    def egrid(self):
        """The units' model energy grids [keV], end to end."""
        return jnp.concatenate([u.egrid for u in self.units])

    @property
    def tarr(self):
        """Each photon bin's unit time, end to end."""
        return jnp.concatenate([u.tarr for u in self.units])

    @property
    def tgrid(self):
        """Each `egrid` point's unit time, end to end."""
        return jnp.concatenate([u.tgrid for u in self.units])

    # -- parameters -------------------------------------------------------------------------------

    @property
    def pdicts(self) -> OrderedDict:
        """Each unit's data-layer parameters, by unit name."""
        return OrderedDict((name, unit.params) for name, unit in self.items())

    @property
    def par(self) -> dict:
        """The data-layer parameters of all units, numbered from 1."""
        pars = [p for params in self.pdicts.values() for p in params.values()]
        return {str(i): p for i, p in enumerate(pars, 1)}

    @property
    def cfg(self) -> dict:
        """No configuration (bayspec's interface): ``{}``."""
        return {}

    @property
    def pvalues(self) -> tuple:
        """The physical values of `par`."""
        return tuple(float(p.value) for p in self.par.values())

    @property
    def all_params(self) -> list[dict]:
        """One row per data-layer parameter: number, unit, name, value, prior, frozen."""
        rows, pid = [], 0
        for name, params in self.pdicts.items():
            for label, par in params.items():
                pid += 1
                rows.append({"par#": str(pid), "Component": name, "Parameter": label,
                             "Value": float(par.val), "Prior": repr(par.prior),
                             "Frozen": par.frozen})
        return rows

    @property
    def all_config(self) -> list[dict]:
        """No configuration rows (bayspec's interface): ``[]``."""
        return []

    @property
    def par_info(self) -> Table:
        """`all_params` as a table."""
        rows = self.all_params
        keys = ("par#", "Component", "Parameter", "Value", "Prior", "Frozen")
        return Table({k: [r[k] for r in rows] for k in keys})

    @property
    def cfg_info(self) -> Table:
        """An empty configuration table (bayspec's interface)."""
        return Table({"cfg#": [], "Component": [], "Parameter": [], "Value": []})

    # -- tables and files -------------------------------------------------------------------------

    @property
    def info(self) -> Table:
        """One row per unit: name, notice windows, statistic, grouping, time, weight, groups."""
        return Table({
            "Name": list(self.names),
            "Noticing": [None if u.notc is None else [list(w) for w in u.notc] for u in self.units],
            "Statistic": self.stats,
            "Grouping": self.grpgs,
            "Time": self.times,
            "Weight": list(self.weights),
            "Groups": self.npoints,
        })

    def __str__(self) -> str:
        return f"*** Data ***\n{self.info.text}"

    def _repr_html_(self) -> str:
        return f"<details open><summary><b>Data</b></summary>{self.info.html}</details>"

    def save(self, savepath: str | os.PathLike) -> None:
        """Write ``data.json`` (the info table, as bayspec) and each unit losslessly.

        `Data.load(savepath)` rebuilds an identical `Data`.
        """
        save_data_index(list(self.names), self.info.columns, savepath)
        for i, unit in enumerate(self.units):
            unit.save(unit_folder(savepath, i))

    @classmethod
    def load(cls, savepath: str | os.PathLike) -> Data:
        """Rebuild a `Data` written by `save`; a missing, damaged or newer save is a
        `SaveError` naming the file."""
        names = load_data_index(savepath)
        return cls([(name, DataUnit.load(unit_folder(savepath, i)))
                    for i, name in enumerate(names)])


for _name in UNIT_VIEWS:
    if not hasattr(Data, _name):
        setattr(Data, _name, _per_unit_view(_name))
del _name
