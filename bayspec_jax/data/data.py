"""`Data`: an ordered, immutable collection of complete `DataUnit`s, and its stacked form."""

from __future__ import annotations

import copy
import json
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._table import Table
from .stack import Stack, build_stack, plan_stacks
from .unit import DataUnit

UNIT_VIEWS = tuple(sorted(
    [name for name, value in vars(DataUnit).items() if isinstance(value, property)]
    + ["qualifying", "noticing", "grouping", "rebining", "group_ids", "rebin_ids", "rsp_drm",
       "rsp_re_drm", "n_groups", "n_rebins"]
))
"""Every `DataUnit` property; ``data.<name>`` is the list of it over the units."""

UNIT_METHODS = ("net_counts_upperlimit", "net_ctsrate_upperlimit",
                "net_counts_significance_limit", "net_ctsrate_significance_limit")


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
    ``data.src_counts`` (and every other `DataUnit` view) is a list over units. `stacked` holds
    the arrays the likelihood uses, one `Stack` per statistic (see `bayspec_jax.data.stack`).
    """

    units: tuple[DataUnit, ...]
    stacked: tuple[Stack, ...]
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
        self.stacked = tuple(build_stack(units, plan) for plan in plan_stacks(units))

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

    def __getattr__(self, name: str) -> Any:
        if name in UNIT_VIEWS:
            return [getattr(unit, name) for unit in self.units]
        if name in UNIT_METHODS:
            return lambda *args, **kwargs: [getattr(u, name)(*args, **kwargs) for u in self.units]
        raise AttributeError(f"'Data' object has no attribute {name!r}")

    @property
    def srcs(self) -> list:
        return [u.src for u in self.units]

    @property
    def bkgs(self) -> list:
        return [u.bkg for u in self.units]

    @property
    def rsps(self) -> list:
        return [u.rsp for u in self.units]

    @property
    def stats(self) -> list[str]:
        return [u.stat for u in self.units]

    @property
    def notcs(self) -> list:
        return [u.notc for u in self.units]

    @property
    def grpgs(self) -> list:
        return [u.grpg for u in self.units]

    @property
    def rebns(self) -> list:
        return [u.rebn for u in self.units]

    @property
    def times(self) -> list:
        return [u.time for u in self.units]

    @property
    def weights(self) -> np.ndarray:
        return np.array([u.weight for u in self.units])

    @property
    def npoints(self) -> list[int]:
        return [u.npoint for u in self.units]

    @property
    def nbin(self) -> list[int]:
        return [u.nbin for u in self.units]

    @property
    def bin_start(self) -> np.ndarray:
        return np.cumsum([0, *self.nbin])[:-1]

    @property
    def bin_stop(self) -> np.ndarray:
        return np.cumsum([0, *self.nbin])[1:]

    @property
    def ebin(self):
        return jnp.concatenate([u.ebin for u in self.units])

    @property
    def ewidth(self):
        return jnp.concatenate([u.ewidth for u in self.units])

    @property
    def ngrid(self) -> int:
        return 5

    @property
    def egrid(self):
        return jnp.concatenate([u.egrid for u in self.units])

    @property
    def tarr(self):
        return jnp.concatenate([u.tarr for u in self.units])

    @property
    def tgrid(self):
        return jnp.concatenate([u.tgrid for u in self.units])

    # -- parameters -------------------------------------------------------------------------------

    @property
    def pdicts(self) -> OrderedDict:
        return OrderedDict((name, unit.params) for name, unit in self.items())

    @property
    def par(self) -> dict:
        pars = [p for params in self.pdicts.values() for p in params.values()]
        return {str(i): p for i, p in enumerate(pars, 1)}

    @property
    def cfg(self) -> dict:
        return {}

    @property
    def pvalues(self) -> tuple:
        return tuple(float(p.value) for p in self.par.values())

    @property
    def all_params(self) -> list[dict]:
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
        return []

    @property
    def par_info(self) -> Table:
        rows = self.all_params
        keys = ("par#", "Component", "Parameter", "Value", "Prior", "Frozen")
        return Table({k: [r[k] for r in rows] for k in keys})

    @property
    def cfg_info(self) -> Table:
        return Table({"cfg#": [], "Component": [], "Parameter": [], "Value": []})

    # -- tables and files -------------------------------------------------------------------------

    @property
    def info(self) -> Table:
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
        os.makedirs(savepath, exist_ok=True)
        info = self.info.columns
        with open(os.path.join(savepath, "data.json"), "w") as f:
            json.dump({"names": list(self.names), "info": info}, f, indent=1)
        for i, unit in enumerate(self.units):
            unit.save(os.path.join(savepath, f"unit{i:04d}"))

    @classmethod
    def load(cls, savepath: str | os.PathLike) -> Data:
        """Rebuild a `Data` written by `save`."""
        with open(os.path.join(savepath, "data.json")) as f:
            names = json.load(f)["names"]
        return cls([(name, DataUnit.load(os.path.join(savepath, f"unit{i:04d}")))
                    for i, name in enumerate(names)])
