"""Lossless save and load of a data unit's constructor arguments (``.npz`` arrays + JSON).

Works on settings and containers, not on `DataUnit` itself: `DataUnit.save` passes its
`settings()` and info rows in, and `DataUnit.load` builds a unit from what `load_unit` returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..params import Par
from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source

_FORMAT = "bayspec_jax.DataUnit/1"

_PLAIN_SETTINGS = ("stat", "notc", "grpg", "rebn", "time", "weight", "name")
_SPECTRUM_ARRAYS = ("counts", "errors", "exposure", "quality", "grouping", "backscale",
                    "channels")
_RESPONSE_ARRAYS = ("chbin", "phbin", "drm", "channels")


def _par_state(par: Par) -> dict:
    return {"val": float(par.val), "frozen": par.frozen, "scale": par.scale, "unit": par.unit,
            "comment": par.comment, "prior": None if par.prior is None else
            [type(par.prior).__name__, *[float(getattr(par.prior, f)) for f in
                                          par.prior.__dataclass_fields__]]}


def _par_from_state(state: dict) -> Par:
    from .. import params

    prior = None
    if state["prior"] is not None:
        kind, *args = state["prior"]
        prior = getattr(params, kind)(*args)
    return Par(state["val"], prior=prior, frozen=state["frozen"], scale=state["scale"],
               unit=state["unit"], comment=state["comment"])


def _spectrum_state(prefix: str, spectrum: Any, arrays: dict) -> dict:
    for field in _SPECTRUM_ARRAYS:
        arrays[f"{prefix}.{field}"] = np.asarray(getattr(spectrum, field))
    return {"name": spectrum.name, "poisson": spectrum.poisson, "file": spectrum.file,
            "factor": _par_state(spectrum.factor)}


def _response_state(prefix: str, response: Any, arrays: dict) -> dict:
    for field in _RESPONSE_ARRAYS:
        arrays[f"{prefix}.{field}"] = np.asarray(getattr(response, field))
    return {"name": response.name, "file": response.file, "ra": _par_state(response.ra),
            "dec": _par_state(response.dec), "factor": _par_state(response.factor)}


def save_unit(settings: Mapping[str, Any], info: Mapping[str, Any],
              savepath: str | os.PathLike) -> None:
    """Write ``dataunit.json`` (the info table) and ``dataunit.npz`` (everything) into `savepath`.

    **Arguments:**

    - `settings`: a unit's constructor arguments as objects (`DataUnit.settings()`): `src`,
        `bkg`, `rmf`, `arf`, `rsp` (`None` where absent), and `stat`, `notc`, `grpg`, `rebn`,
        `time`, `weight`, `name` as plain values.
    - `info`: the unit's info rows, ``{property: value}``, written as bayspec writes them.
    - `savepath`: a folder, created if missing.
    """
    os.makedirs(savepath, exist_ok=True)
    with open(os.path.join(savepath, "dataunit.json"), "w") as f:
        json.dump({"Property": list(info), settings["name"]: list(info.values())}, f, indent=1)
    arrays: dict[str, np.ndarray] = {}
    state = {"format": _FORMAT, "settings": {key: settings[key] for key in _PLAIN_SETTINGS}}
    state["src"] = _spectrum_state("src", settings["src"], arrays)
    if settings["bkg"] is not None:
        state["bkg"] = _spectrum_state("bkg", settings["bkg"], arrays)
    for key in ("rmf", "arf", "rsp"):
        obj = settings[key]
        if obj is None:
            continue
        if key == "arf":
            arrays["arf.phbin"], arrays["arf.srp"] = np.asarray(obj.phbin), np.asarray(obj.srp)
            state["arf"] = {"name": obj.name, "file": obj.file}
        else:
            state[key] = _response_state(key, obj, arrays)
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(os.path.join(savepath, "dataunit.npz"), **arrays)


def load_unit(savepath: str | os.PathLike) -> dict[str, Any]:
    """The constructor arguments written by `save_unit`: ``DataUnit(**load_unit(savepath))``
    rebuilds the unit."""
    path = os.path.join(savepath, "dataunit.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no saved data unit (expected dataunit.npz)")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(arrays.pop("__state__").tobytes().decode())
    if state.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a saved bayspec_jax data unit")

    def spectrum(cls, prefix):
        if prefix not in state:
            return None
        meta = state[prefix]
        return cls(*(arrays[f"{prefix}.{f}"] for f in ("counts", "errors", "exposure")),
                   quality=arrays[f"{prefix}.quality"], grouping=arrays[f"{prefix}.grouping"],
                   backscale=arrays[f"{prefix}.backscale"], channels=arrays[f"{prefix}.channels"],
                   factor=_par_from_state(meta["factor"]), name=meta["name"],
                   poisson=meta["poisson"], file=meta["file"])

    def response(cls, prefix):
        if prefix not in state:
            return None
        meta = state[prefix]
        return cls(arrays[f"{prefix}.chbin"], arrays[f"{prefix}.phbin"], arrays[f"{prefix}.drm"],
                   ra=_par_from_state(meta["ra"]), dec=_par_from_state(meta["dec"]),
                   factor=_par_from_state(meta["factor"]), channels=arrays[f"{prefix}.channels"],
                   name=meta["name"], file=meta["file"])

    arf = None
    if "arf" in state:
        arf = Auxiliary(arrays["arf.phbin"], arrays["arf.srp"], name=state["arf"]["name"],
                        file=state["arf"]["file"])
    return dict(src=spectrum(Source, "src"), bkg=spectrum(Background, "bkg"),
                rmf=response(Redistribution, "rmf"), arf=arf, rsp=response(Response, "rsp"),
                **state["settings"])
