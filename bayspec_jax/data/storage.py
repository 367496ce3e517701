"""Lossless save and load of a data unit's constructor arguments (``.npz`` arrays + JSON).

Works on settings and containers, not on `DataUnit` itself: `DataUnit.save` passes its
`settings()` and info rows in, and `DataUnit.load` builds a unit from what `load_unit` returns.

**The format.** A unit is a folder with ``dataunit.json`` (bayspec's info table, for people:
never read back) and ``dataunit.npz``: one member per array (``src.counts``, ``rsp.drm``, ...)
and ``__state__``, the UTF-8 JSON of everything else. The state's ``"format"`` is
``"bayspec_jax.DataUnit/<version>"``; the version is 1, and every save written so far carries
it. A `Data` is a folder with ``data.json`` (its unit names, and the same ``"format"`` key,
``"bayspec_jax.Data/1"``; a ``data.json`` without it is from before the key and is read as
version 1) and one unit folder per unit.

**Damage.** Anything wrong with a save (missing, empty, truncated, a member deleted or edited,
not a save at all, or written by a newer version) raises one error type, `SaveError`, naming the
file and what is wrong.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import params as _params
from ..params import Par, Prior
from ..stats import STATISTICS
from .binning import normalize_windows
from .grouping import GROUPING_KEYS
from .response import Auxiliary, Redistribution, Response
from .spectrum import Background, Source


class SaveError(ValueError, OSError):
    """A saved unit or `Data` cannot be read back: the file is missing, empty, truncated or
    edited, is not a bayspec_jax save, or was written by a newer version.

    The message names the file and says what is wrong. Subclasses both `ValueError` and
    `OSError` (as `OGIPError`), so existing handlers of either catch it.
    """


FORMAT_VERSION = 1
"""The version of the save format this code writes, and the newest it reads."""

_UNIT_FORMAT = "bayspec_jax.DataUnit"
_DATA_FORMAT = "bayspec_jax.Data"
_FORMAT = f"{_UNIT_FORMAT}/{FORMAT_VERSION}"
_UNIT_FILE = "dataunit.npz"
_DATA_FILE = "data.json"
_STATE = "__state__"

_PLAIN_SETTINGS = ("stat", "notc", "grpg", "rebn", "time", "weight", "name")
_SPECTRUM_ARRAYS = ("counts", "errors", "exposure", "quality", "grouping", "backscale",
                    "channels")
_OPTIONAL_SPECTRUM_ARRAYS = ("areascale",)
"""Written only when they differ from their default (1): saves stay as they were otherwise."""
_RESPONSE_ARRAYS = ("chbin", "phbin", "drm", "channels")
_ARF_ARRAYS = ("phbin", "srp")
_RESPONSES = {"rmf": Redistribution, "rsp": Response}


# -- priors and parameters ------------------------------------------------------------------


def _prior_state(prior: Prior | None) -> list | None:
    """``[kind, *arguments]``, the arguments as the prior holds them (an int stays an int, so
    that ``unif(0.5, 2)`` reads back as ``unif(0.5, 2)``)."""
    if prior is None:
        return None
    kind = type(prior).__name__
    if getattr(_params, kind, None) is not type(prior):
        raise ValueError(f"a prior of type {type(prior).__qualname__} cannot be saved: only the "
                         "priors of bayspec_jax.params (unif, logunif, norm) can")
    return [kind, *prior.arguments]


def _par_state(par: Par) -> dict:
    return {"val": float(par.val), "frozen": par.frozen, "scale": par.scale, "unit": par.unit,
            "comment": par.comment, "prior": _prior_state(par.prior)}


# -- writing ----------------------------------------------------------------------------------


def _is_default_one(value: Any) -> bool:
    return value is None or bool(np.all(np.asarray(value) == 1.0))


def _spectrum_state(prefix: str, spectrum: Any, arrays: dict) -> dict:
    for field in _SPECTRUM_ARRAYS:
        arrays[f"{prefix}.{field}"] = np.asarray(getattr(spectrum, field))
    for field in _OPTIONAL_SPECTRUM_ARRAYS:
        value = getattr(spectrum, field, None)
        if not _is_default_one(value):
            arrays[f"{prefix}.{field}"] = np.asarray(value)
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

    A prior that is not one of `bayspec_jax.params`' is refused (`ValueError`) before anything
    is written.
    """
    arrays: dict[str, np.ndarray] = {}
    state = {"format": _FORMAT, "settings": {key: settings[key] for key in _PLAIN_SETTINGS}}
    if settings.get("notice_rule", "inside") != "inside":  # written only when not the default
        state["settings"]["notice_rule"] = settings["notice_rule"]
    state["src"] = _spectrum_state("src", settings["src"], arrays)
    if settings["bkg"] is not None:
        state["bkg"] = _spectrum_state("bkg", settings["bkg"], arrays)
    for key in ("rmf", "arf", "rsp"):
        obj = settings[key]
        if obj is None:
            continue
        if key == "arf":
            for field in _ARF_ARRAYS:
                arrays[f"arf.{field}"] = np.asarray(getattr(obj, field))
            state["arf"] = {"name": obj.name, "file": obj.file}
        else:
            state[key] = _response_state(key, obj, arrays)
    arrays[_STATE] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    os.makedirs(savepath, exist_ok=True)
    with open(os.path.join(savepath, "dataunit.json"), "w") as f:
        json.dump({"Property": list(info), settings["name"]: list(info.values())}, f, indent=1)
    np.savez(os.path.join(savepath, _UNIT_FILE), **arrays)


# -- reading ----------------------------------------------------------------------------------


def _version(path: str, fmt: Any, expected: str) -> int:
    """The version in a ``"<expected>/<version>"`` format string; a `SaveError` otherwise."""
    if not isinstance(fmt, str) or not fmt.startswith(expected + "/"):
        raise SaveError(f"{path}: not a saved {expected} (format {fmt!r}, expected "
                        f"'{expected}/<version>')")
    match = re.fullmatch(r"[1-9][0-9]*", fmt[len(expected) + 1:])
    if match is None:
        raise SaveError(f"{path}: format {fmt!r} carries no valid version number")
    version = int(match.group())
    if version > FORMAT_VERSION:
        raise SaveError(f"{path}: saved by a newer bayspec_jax (format version {version}); this "
                        f"version reads format versions up to {FORMAT_VERSION}: upgrade "
                        "bayspec_jax to load it")
    return version


def _read_members(path: str) -> dict[str, np.ndarray]:
    """Every member of the npz at `path`, read in full (so that damage shows here)."""
    if not os.path.isfile(path):
        raise SaveError(f"{path}: no saved data unit here (expected {_UNIT_FILE})")
    if os.path.getsize(path) == 0:
        raise SaveError(f"{path}: the file is empty")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if b"PK\x03\x04".startswith(head):  # an npz's first bytes, or a part of them
            raise SaveError(f"{path}: the archive is truncated or damaged (no zip directory at "
                            "its end)")
        raise SaveError(f"{path}: not a saved data unit (not an npz archive)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.files:
                arrays[name] = archive[name]
    except Exception as error:  # zipfile, zlib, npy-header and pickle errors alike: damage
        raise SaveError(f"{path}: the archive is damaged ({type(error).__name__}: {error})"
                        ) from error
    return arrays


def _state(path: str, arrays: dict[str, np.ndarray]) -> dict:
    if _STATE not in arrays:
        raise SaveError(f"{path}: member {_STATE!r} (the unit's settings) is missing: not a "
                        "saved data unit, or an edited one")
    raw = arrays.pop(_STATE)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected bytes, got {raw.dtype} of shape {raw.shape}")
        state = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as error:
        raise SaveError(f"{path}: member {_STATE!r} is not valid JSON ({error})") from error
    if not isinstance(state, dict):
        raise SaveError(f"{path}: member {_STATE!r} is not a JSON object")
    if "format" not in state:
        raise SaveError(f"{path}: member {_STATE!r} has no format version: not a saved "
                        "bayspec_jax data unit")
    _version(path, state["format"], _UNIT_FORMAT)
    return state


class _Reader:
    """Checked access to a save's state and arrays; every complaint is a `SaveError` naming
    the file and the entry."""

    def __init__(self, path: str, state: dict, arrays: dict[str, np.ndarray]):
        self.path, self.state, self.arrays = path, state, arrays
        self.used: set[str] = set()

    def fail(self, where: str, message: str) -> SaveError:
        return SaveError(f"{self.path}: {where}: {message}")

    def entry(self, mapping: Any, key: str, where: str, kinds: tuple, optional: bool = False):
        if not isinstance(mapping, dict):
            raise self.fail(where, f"expected a JSON object, got {type(mapping).__name__}")
        if key not in mapping:
            if optional:
                return None
            raise self.fail(where, f"entry {key!r} is missing")
        value = mapping[key]
        if (value is None and type(None) in kinds) or (
            isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        ):
            return value
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise self.fail(f"{where}.{key}", f"expected {names}, got {value!r}")

    def array(self, name: str, optional: bool = False) -> np.ndarray | None:
        if name not in self.arrays:
            if optional:
                return None
            raise self.fail(f"member {name!r}", "missing (deleted or never written)")
        value = self.arrays[name]
        if value.dtype.kind not in "biuf":
            raise self.fail(f"member {name!r}", f"expected numbers, got dtype {value.dtype}")
        self.used.add(name)
        return value

    def prior(self, state: Any, where: str) -> Prior | None:
        if state is None:
            return None
        if not isinstance(state, list) or not state or not isinstance(state[0], str):
            raise self.fail(where, f"expected [kind, *arguments], got {state!r}")
        kind, *arguments = state
        cls = getattr(_params, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, Prior) and cls is not Prior):
            raise self.fail(where, f"unknown prior {kind!r}")
        for argument in arguments:
            if isinstance(argument, bool) or not isinstance(argument, numbers.Real):
                raise self.fail(where, f"prior arguments must be numbers, got {state!r}")
        try:
            return cls(*arguments)
        except (TypeError, ValueError) as error:
            raise self.fail(where, f"invalid prior {state!r} ({error})") from error

    def par(self, state: Any, where: str) -> Par:
        return self.build(
            Par, where, val=self.entry(state, "val", where, (int, float)),
            frozen=self.entry(state, "frozen", where, (bool,)),
            scale=self.entry(state, "scale", where, (str,)),
            unit=self.entry(state, "unit", where, (str,)),
            comment=self.entry(state, "comment", where, (str,)),
            prior=self.prior(self.entry(state, "prior", where, (list, type(None))),
                             f"{where}.prior"))

    def build(self, cls: Callable, where: str, *args, **kwargs):
        """``cls(*args, **kwargs)``, its complaints (the containers validate their arrays) as
        `SaveError`s."""
        try:
            return cls(*args, **kwargs)
        except (TypeError, ValueError, IndexError) as error:
            raise self.fail(where, f"{type(error).__name__}: {error}") from error


def _settings(reader: _Reader, state: dict) -> dict:
    where = "settings"
    settings = reader.entry(state, "settings", "state", (dict,))
    stat = reader.entry(settings, "stat", where, (str,))
    if stat not in STATISTICS:
        raise reader.fail(f"{where}.stat", f"unknown statistic {stat!r}")
    notc = reader.entry(settings, "notc", where, (list, type(None)))
    for key in ("grpg", "rebn"):
        grouping = reader.entry(settings, key, where, (dict, type(None)))
        for name, value in (grouping or {}).items():
            if name not in GROUPING_KEYS:
                raise reader.fail(f"{where}.{key}", f"unknown key {name!r}")
            value = reader.entry(grouping, name, f"{where}.{key}",
                                 (str, type(None)) if name == "method" else
                                 (int, float, type(None)))
            if name != "method" and value is not None and not (math.isfinite(value)
                                                                and value >= 0):
                raise reader.fail(f"{where}.{key}.{name}",
                                  f"expected a finite number >= 0, got {value!r}")
    reader.entry(settings, "time", where, (int, float, type(None)))
    weight = reader.entry(settings, "weight", where, (int, float))
    if not (math.isfinite(weight) and weight >= 0):
        raise reader.fail(f"{where}.weight", f"expected a finite number >= 0, got {weight!r}")
    reader.entry(settings, "name", where, (str,))
    if notc is not None and not all(
        isinstance(w, list) and len(w) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)
        for w in notc
    ):
        raise reader.fail(f"{where}.notc", f"expected a list of [lo, hi] windows, got {notc!r}")
    reader.build(normalize_windows, f"{where}.notc", notc)
    unknown = sorted(set(settings) - set(_PLAIN_SETTINGS) - {"notice_rule"})
    if unknown:
        raise reader.fail(where, f"unknown entries {unknown}")
    plain = {key: settings[key] for key in _PLAIN_SETTINGS}
    plain["notice_rule"] = "inside"  # the default, not written
    if "notice_rule" in settings:
        plain["notice_rule"] = reader.entry(settings, "notice_rule", where, (str,))
    return plain


def _spectrum(reader: _Reader, cls: type, prefix: str):
    meta = reader.entry(reader.state, prefix, "state", (dict,), optional=(prefix == "bkg"))
    if meta is None:
        return None
    arrays = {field: reader.array(f"{prefix}.{field}") for field in _SPECTRUM_ARRAYS}
    for field in _OPTIONAL_SPECTRUM_ARRAYS:
        value = reader.array(f"{prefix}.{field}", optional=True)
        if value is not None:
            arrays[field] = value
    factor = reader.par(reader.entry(meta, "factor", prefix, (dict,)), f"{prefix}.factor")
    return reader.build(
        cls, prefix, arrays.pop("counts"), arrays.pop("errors"), arrays.pop("exposure"),
        factor=factor, name=reader.entry(meta, "name", prefix, (str,)),
        poisson=reader.entry(meta, "poisson", prefix, (bool,)),
        file=reader.entry(meta, "file", prefix, (str, type(None))), **arrays)


def _response(reader: _Reader, cls: type, prefix: str):
    meta = reader.entry(reader.state, prefix, "state", (dict,), optional=True)
    if meta is None:
        return None
    chbin, phbin, drm, channels = (reader.array(f"{prefix}.{f}") for f in _RESPONSE_ARRAYS)
    pars = {key: reader.par(reader.entry(meta, key, prefix, (dict,)), f"{prefix}.{key}")
            for key in ("ra", "dec", "factor")}
    return reader.build(cls, prefix, chbin, phbin, drm, channels=channels,
                        name=reader.entry(meta, "name", prefix, (str,)),
                        file=reader.entry(meta, "file", prefix, (str, type(None))), **pars)


def _auxiliary(reader: _Reader):
    meta = reader.entry(reader.state, "arf", "state", (dict,), optional=True)
    if meta is None:
        return None
    phbin, srp = (reader.array(f"arf.{f}") for f in _ARF_ARRAYS)
    return reader.build(Auxiliary, "arf", phbin, srp,
                        name=reader.entry(meta, "name", "arf", (str,)),
                        file=reader.entry(meta, "file", "arf", (str, type(None))))


def load_unit(savepath: str | os.PathLike, build: Callable[..., Any] | None = None) -> Any:
    """The constructor arguments written by `save_unit`: ``DataUnit(**load_unit(savepath))``
    rebuilds the unit.

    With `build` (the unit class), returns ``build(**arguments)`` instead, a complaint of the
    constructor about the saved settings turned into a `SaveError` too.

    Raises `SaveError` (naming ``dataunit.npz`` and what is wrong) for a missing, empty,
    truncated or edited save, for a file that is not a save, and for a save of a newer format
    version.
    """
    path = os.path.join(os.fspath(savepath), _UNIT_FILE)
    arrays = _read_members(path)
    state = _state(path, arrays)
    reader = _Reader(path, state, arrays)
    unknown = sorted(set(state) - {"format", "settings", "src", "bkg", "rmf", "arf", "rsp"})
    if unknown:
        raise reader.fail("state", f"unknown entries {unknown}")
    arguments = dict(src=_spectrum(reader, Source, "src"),
                     bkg=_spectrum(reader, Background, "bkg"),
                     rmf=_response(reader, Redistribution, "rmf"), arf=_auxiliary(reader),
                     rsp=_response(reader, Response, "rsp"), **_settings(reader, state))
    n_channels = {key: value.n_channels for key, value in arguments.items()
                  if key in ("src", "bkg", "rmf", "rsp") and value is not None}
    if len(set(n_channels.values())) > 1:
        raise reader.fail("arrays", f"the channel counts disagree: {n_channels}")
    extra = sorted(set(arrays) - reader.used)
    if extra:
        raise reader.fail("archive", f"unexpected member(s) {extra}: an edited save")
    if build is None:
        return arguments
    return reader.build(build, "settings", **arguments)


# -- Data: the index of units -----------------------------------------------------------------


def save_data_index(names: list[str], info: Mapping[str, Any],
                    savepath: str | os.PathLike) -> None:
    """Write ``data.json`` (the unit names, the info table and the format version) into
    `savepath`, created if missing; the units go in ``unit0000``, ... (see `unit_folder`)."""
    os.makedirs(savepath, exist_ok=True)
    with open(os.path.join(savepath, _DATA_FILE), "w") as f:
        json.dump({"format": f"{_DATA_FORMAT}/{FORMAT_VERSION}", "names": list(names),
                   "info": info}, f, indent=1)


def unit_folder(savepath: str | os.PathLike, index: int) -> str:
    """The folder of the `index`-th unit of a saved `Data`."""
    return os.path.join(os.fspath(savepath), f"unit{index:04d}")


def load_data_index(savepath: str | os.PathLike) -> list[str]:
    """The unit names of a `Data` saved in `savepath` (``data.json``), checked; a `SaveError`
    naming the file for a missing, damaged or newer one. A ``data.json`` without a format
    version is from before it was written, and is read as version 1."""
    path = os.path.join(os.fspath(savepath), _DATA_FILE)
    if not os.path.isfile(path):
        raise SaveError(f"{path}: no saved Data here (expected {_DATA_FILE})")
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as error:
        raise SaveError(f"{path}: not a readable saved Data index ({error})") from error
    if not isinstance(index, dict) or "names" not in index:
        raise SaveError(f"{path}: not a saved Data index (no 'names' entry)")
    if "format" in index:
        _version(path, index["format"], _DATA_FORMAT)
    names = index["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SaveError(f"{path}: 'names' must be a list of unit names, got {names!r}")
    for i in range(len(names)):
        if not os.path.isfile(os.path.join(unit_folder(savepath, i), _UNIT_FILE)):
            raise SaveError(f"{path}: unit {i} ({names[i]!r}) is missing: no "
                            f"{os.path.join(unit_folder(savepath, i), _UNIT_FILE)}")
    return names
