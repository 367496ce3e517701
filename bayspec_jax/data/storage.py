"""Lossless save and load of data units (``.npz`` arrays + JSON settings)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..params import Par
from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source

_FORMAT = "bayspec_jax.DataUnit/1"


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


def _spectrum_arrays(prefix: str, spectrum: Any, arrays: dict) -> dict:
    for field in ("counts", "errors", "exposure", "quality", "grouping", "backscale", "channels"):
        arrays[f"{prefix}.{field}"] = np.asarray(getattr(spectrum, field))
    return {"name": spectrum.name, "poisson": spectrum.poisson, "file": spectrum.file,
            "factor": _par_state(spectrum.factor)}


def _response_arrays(prefix: str, response: Any, arrays: dict) -> dict:
    for field in ("chbin", "phbin", "drm", "channels"):
        arrays[f"{prefix}.{field}"] = np.asarray(getattr(response, field))
    return {"name": response.name, "file": response.file, "ra": _par_state(response.ra),
            "dec": _par_state(response.dec), "factor": _par_state(response.factor)}


def save_unit(unit: Any, savepath: str | os.PathLike) -> None:
    """Write ``dataunit.json`` (info table) and ``dataunit.npz`` (everything) into `savepath`."""
    os.makedirs(savepath, exist_ok=True)
    info = unit._info_dict()
    with open(os.path.join(savepath, "dataunit.json"), "w") as f:
        json.dump({"Property": list(info), unit.name: list(info.values())}, f, indent=1)
    arrays: dict[str, np.ndarray] = {}
    state = {"format": _FORMAT, "settings": {
        "stat": unit.stat, "notc": None if unit.notc is None else [list(w) for w in unit.notc],
        "grpg": unit.grpg, "rebn": unit.rebn, "time": unit.time, "weight": unit.weight,
        "name": unit.name}}
    state["src"] = _spectrum_arrays("src", unit.src, arrays)
    if unit.bkg_given:
        state["bkg"] = _spectrum_arrays("bkg", unit.bkg, arrays)
    for key in ("rmf", "arf", "rsp"):
        obj = getattr(unit, key)
        if obj is None or (key == "rsp" and unit.rsp_composed):
            continue
        if key == "arf":
            arrays["arf.phbin"], arrays["arf.srp"] = np.asarray(obj.phbin), np.asarray(obj.srp)
            state["arf"] = {"name": obj.name, "file": obj.file}
        else:
            state[key] = _response_arrays(key, obj, arrays)
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(os.path.join(savepath, "dataunit.npz"), **arrays)


def load_unit(savepath: str | os.PathLike) -> Any:
    """Rebuild the unit written by `save_unit`."""
    from .unit import DataUnit

    path = os.path.join(savepath, "dataunit.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no saved data unit (expected dataunit.npz)")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(arrays.pop("__state__").tobytes().decode())
    if state.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a saved bayspec_jax data unit")

    def spectrum(cls, prefix):
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
    return DataUnit(
        src=spectrum(Source, "src"),
        bkg=spectrum(Background, "bkg") if "bkg" in state else None,
        rmf=response(Redistribution, "rmf"), arf=arf, rsp=response(Response, "rsp"),
        **state["settings"],
    )
