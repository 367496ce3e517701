"""Fake spectra (XSPEC ``fakeit``): counts drawn from a folded model, written as OGIP files.

Three layers, each usable on its own:

- `expected_counts` and `draw` are pure JAX: per-channel expected counts of a model folded
    through a unit's (ungrouped) response, and one random draw of source and background counts.
    Both work under `jax.jit`, and `draw` under `jax.vmap` over keys (many draws at once);
    `draws` is that `vmap`, compiled once per model and array shapes.
- `fakeit` turns draws into new `DataUnit`s (or a `Data`): same response, notice windows,
    statistic, grouping settings, exposure and backscale, with the simulated counts.
- `write_fakeit` writes units as OGIP PHA files (and the response as an RSP) that
    `Source.from_src`, `Background.from_bkg` and `Response.from_rsp` load back exactly.

How counts are drawn, per channel (as XSPEC ``fakeit``):

- source: ``Poisson(model counts + alpha * B)``, ``B`` the unit's background counts taken as
    the background truth and ``alpha`` the source-to-background efficiency ratio;
- background, for a statistic that treats it as Poisson (``cstat``, ``ppstat``, ``pstat``):
    ``Poisson(B)``; for one that treats it as Gaussian (``pgstat``, ``chi2``, ``gstat``):
    ``Normal(B, sigma_B)`` with the unit's background errors (which may go negative, as a
    Gaussian background may). A unit without a background file gets none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .data.data import Data
from .data.spectrum import Background, Source
from .data.unit import DataUnit
from .data.stack import FoldSetup, build_setup
from .fold import Model, model_rate
from .io import PHA, RMF, write_pha, write_pha2, write_rmf
from .stats import STATISTICS, statistic

__all__ = [
    "GAUSSIAN_BACKGROUND_STATS",
    "POISSON_BACKGROUND_STATS",
    "Draw",
    "background_truth",
    "draw",
    "draws",
    "expected_background",
    "expected_counts",
    "fakeit",
    "write_fakeit",
]

POISSON_BACKGROUND_STATS = tuple(n for n, s in STATISTICS.items() if s.background == "poisson")
"""Statistics whose background is simulated with Poisson draws (written with POISSERR = T);
from the registry `stats.STATISTICS`."""

GAUSSIAN_BACKGROUND_STATS = tuple(n for n, s in STATISTICS.items() if s.background == "gaussian")
"""Statistics whose background is simulated with Gaussian draws (written with STAT_ERR)."""

CREATOR = "bayspec_jax.simulate.fakeit"


class Draw(NamedTuple):
    """Simulated counts per channel (a pytree: `jax.vmap` over keys adds a leading axis).

    **Fields:**

    - `src_counts`: source-region counts ``(*draw, chan)`` (model plus scaled background).
    - `bkg_counts`: background counts ``(*draw, chan)`` (zeros for a unit without background).
    """

    src_counts: Float[Array, "*draw chan"]
    bkg_counts: Float[Array, "*draw chan"]


def _check_unit(unit: Any) -> None:
    if not isinstance(unit, DataUnit):
        raise TypeError(f"expected a DataUnit, got {type(unit).__name__}")
    if not unit.completeness:
        raise ValueError(f"unit {unit.name} has no response: give rsp, or rmf and arf, to "
                         "simulate it")


def channel_setup(unit: DataUnit) -> FoldSetup:
    """`unit`'s fold setup with every channel its own group (what `simulate` folds through)."""
    return build_setup([unit], [0], view="channel")


def _expected(model: Model, params: Any, setup: FoldSetup, efficiency: Array) -> Array:
    return model_rate(model, params, setup) * efficiency


def expected_counts(model: Model, params: Any, unit: DataUnit) -> Float[Array, " chan"]:
    """Expected source-model counts in every channel of `unit` (no grouping, no notice).

    The model's count rate per channel comes from the likelihood's own path (`fold.model_rate`
    on `channel_setup`: the response ``unit.rsp.drm * rf``), times the source exposure and
    ``sf`` (`DataUnit.corr_src_efficiency`; ``sf`` and ``rf`` are the data-layer factors,
    frozen at 1 by default).

    **Arguments:**

    - `model`: ``model(energy, params)`` -> photon flux density [ph/cm^2/s/keV].
    - `params`: the model's parameters (any pytree).
    - `unit`: a complete `DataUnit`.

    **Returns:**

    Counts per channel, shape ``(chan,)``, for all of the response's channels.
    """
    _check_unit(unit)
    return _expected(model, params, channel_setup(unit), unit.corr_src_efficiency)


def background_truth(unit: DataUnit) -> Float[Array, " chan"]:
    """The background counts taken as the truth of a simulation: `unit.bkg.counts`.

    Non-finite values (allowed in bad-quality channels) are taken as 0. Shape ``(chan,)``.
    """
    _check_unit(unit)
    counts = unit.bkg.counts
    return jnp.where(jnp.isfinite(counts), counts, 0.0)


def _source_region_scale(unit: DataUnit) -> Float[Array, " chan"]:
    # alpha with the data-layer factors, as the likelihood scales the background; per channel
    scale = unit.corr_src_efficiency / unit.corr_bkg_efficiency
    return jnp.broadcast_to(scale, unit.bkg.counts.shape)


def expected_background(unit: DataUnit) -> Float[Array, " chan"]:
    """Expected background counts in the source region: ``alpha * background_truth(unit)``.

    ``alpha`` is `DataUnit.alpha` with the data-layer factors (``sf / bf``, both 1 by default):
    ``src exposure * sf / (bkg exposure * bf * bkg backscale / src backscale)``. Shape
    ``(chan,)``.
    """
    return background_truth(unit) * _source_region_scale(unit)


_KIND_CODES = {"none": 0, "poisson": 1, "gaussian": 2}

DRAW_CHUNK = 64
"""`draws` computes this many draws per compiled call (one compilation serves every `n`)."""


def _background_kind(unit: DataUnit) -> int:
    if not unit.bkg_given:
        return _KIND_CODES["none"]
    return _KIND_CODES[statistic(unit.stat).background]


def _unit_inputs(unit: DataUnit) -> dict:
    """The arrays a draw needs: shapes, not the unit's settings, decide compilation."""
    return dict(setup=channel_setup(unit), efficiency=unit.corr_src_efficiency,
                truth=background_truth(unit), scale=_source_region_scale(unit),
                errors=unit.bkg.errors)


def _means(model: Model, params: Any, setup: FoldSetup, efficiency: Array,
           truth: Array, scale: Array, errors: Array) -> tuple[Array, Array, Array]:
    """Source-region mean, background truth and background errors per channel."""
    dtype = jnp.result_type(float)
    truth = truth.astype(dtype)
    mean = _expected(model, params, setup, efficiency) + truth * scale
    errors = errors.astype(dtype)
    return mean.astype(dtype), truth, jnp.where(jnp.isfinite(errors), errors, 0.0)


def _sample(key: PRNGKeyArray, mean: Array, truth: Array, errors: Array, kind: Any) -> Draw:
    """One draw from per-channel means. `kind` (0 none, 1 Poisson, 2 Gaussian) may be traced:
    every branch is computed and selected, so one compilation serves every statistic."""
    dtype = mean.dtype
    src_key, bkg_key = jax.random.split(key)
    finite = jnp.isfinite(mean)
    safe_mean = jnp.where(finite, jnp.maximum(mean, 0.0), 0.0)
    n = safe_mean.shape[-1]
    # one Poisson call for source and background: the sampler is costly to compile
    both = jnp.concatenate([safe_mean, jnp.maximum(truth, 0.0)])
    counts = jax.random.poisson(src_key, both, shape=both.shape).astype(dtype)
    gaussian = truth + errors * jax.random.normal(bkg_key, truth.shape, dtype)
    bkg = jnp.where(kind == 2, gaussian, jnp.where(kind == 1, counts[n:], 0.0))
    return Draw(src_counts=jnp.where(finite, counts[:n], jnp.nan), bkg_counts=bkg)


def draw(key: PRNGKeyArray, model: Model, params: Any, unit: DataUnit) -> Draw:
    """One simulated spectrum of `unit`: source and background counts per channel.

    Pure JAX: wrap in `jax.jit`, and `jax.vmap` over `key` for many draws, e.g.
    ``jax.vmap(lambda k: draw(k, model, params, unit))(jax.random.split(key, 1000))``
    (`draws` does this, compiled once per model and array shapes).

    **Arguments:**

    - `key`: a JAX random key.
    - `model`, `params`: the photon model and its parameters (see `expected_counts`).
    - `unit`: a complete `DataUnit`; its statistic decides how the background is drawn.

    **Returns:**

    A `Draw` of two ``(chan,)`` float arrays:

    - `src_counts`: ``Poisson(expected_counts + expected_background)`` (the mean clipped at 0,
        as a Gaussian background truth may be negative). NaN where the mean is not finite
        (a model that is NaN or infinite there).
    - `bkg_counts`: ``Poisson(B)`` for ``cstat``/``ppstat``/``pstat``, ``B + sigma_B * N(0, 1)``
        for ``pgstat``/``chi2``/``gstat``, with ``B = background_truth(unit)`` and ``sigma_B``
        the background errors (non-finite errors taken as 0); zeros without a background file.
    """
    _check_unit(unit)
    means = _means(model, params, **_unit_inputs(unit))
    return _sample(key, *means, _background_kind(unit))


@eqx.filter_jit
def _draw_chunk(keys, model, params, inputs, kind):
    mean, truth, errors = _means(model, params, **inputs)
    return jax.vmap(lambda k: _sample(k, mean, truth, errors, kind))(keys)


def draws(key: PRNGKeyArray, model: Model, params: Any, unit: DataUnit, n: int) -> Draw:
    """`n` draws at once: `draw` mapped over ``jax.random.split(key, n)``.

    Row ``i`` equals ``draw(jax.random.split(key, n)[i], model, params, unit)``. Runs as a
    compiled `jax.vmap` in chunks of `DRAW_CHUNK` keys; the compilation depends on the model and
    the unit's array shapes, not on `n`, the unit's settings or its statistic.

    **Returns:** a `Draw` of ``(n, chan)`` arrays.
    """
    _check_unit(unit)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return _draws_from_keys(jax.random.split(key, int(n)), model, params, unit)


def _draws_from_keys(keys: Array, model: Model, params: Any, unit: DataUnit) -> Draw:
    n = keys.shape[0]
    pad = -n % DRAW_CHUNK
    padded = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, axis=0)]) if pad else keys
    inputs, kind = _unit_inputs(unit), jnp.asarray(_background_kind(unit))
    params = _as_arrays(params)
    chunks = [_draw_chunk(padded[i:i + DRAW_CHUNK], model, params, inputs, kind)
              for i in range(0, padded.shape[0], DRAW_CHUNK)]
    return Draw(*(jnp.concatenate([c[j] for c in chunks])[:n] for j in range(2)))


def _as_arrays(params: Any) -> Any:
    # Python numbers would be static under filter_jit (a recompile per value); arrays are traced.
    return jax.tree.map(jnp.asarray, params)


def fakeit(key: PRNGKeyArray, model: Model, params: Any, unit_or_data: DataUnit | Data,
           n: int | None = None, regroup: bool = True) -> Any:
    """Simulated copies of a unit (or of every unit of a `Data`) under ``model(E, params)``.

    Each copy keeps the original's response(s), notice windows, statistic, weight, time, name,
    exposures, backscales, quality flags and data-layer factors; only the counts change (drawn
    as in `draw`). The source is Poisson (POISSERR = T, errors ``sqrt(counts)``); the background
    is Poisson with ``sqrt(counts)`` errors, or, for a Gaussian-background statistic, Gaussian
    and keeps the original background errors.

    **Grouping.** With ``regroup=True`` (default) the copy has the original's grouping *settings*
    and they are resolved anew on the simulated counts: the source file's GROUPING flags
    (``grpg=None``) give the same groups, but threshold or optimal grouping (``grpg={...}``) is
    rebuilt from the new counts, so its groups (and `n_groups`) may differ from the original's,
    as they would for a newly observed spectrum. With ``regroup=False`` the copy keeps the
    original's resolved groups exactly: their flags become the simulated source's GROUPING and
    ``grpg`` is dropped (set to `None`). The ``_re_`` rebinning (``rebn``) is always re-resolved.

    **Arguments:**

    - `key`: a JAX random key.
    - `model`, `params`: the photon model and its parameters.
    - `unit_or_data`: a complete `DataUnit`, or a `Data` (its units get independent keys,
        ``jax.random.split(key, len(data))``; the same `params` serve every unit).
    - `n`: `None` for one copy (drawn with `key` itself: its counts are ``draw(key, ...)``), or
        the number of copies (their counts are ``draws(key, ..., n)``, a compiled `vmap`).
    - `regroup`: see above.

    **Returns:**

    A `DataUnit` (or `Data`) for ``n=None``; a list of `n` of them otherwise. Raises
    `ValueError` when the model is not finite in a good-quality channel, and whatever
    `DataUnit` raises for the new counts (e.g. ``chi2`` with a zero-count, zero-error group).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be None or an integer >= 1, got {n!r}")
    if isinstance(unit_or_data, Data):
        data = unit_or_data
        keys = jax.random.split(key, len(data))
        copies = [fakeit(k, model, params, unit, n=n, regroup=regroup)
                  for k, unit in zip(keys, data.units)]
        if n is None:
            return Data(list(zip(data.names, copies)))
        return [Data([(name, copies[u][i]) for u, name in enumerate(data.names)])
                for i in range(n)]
    unit = unit_or_data
    _check_unit(unit)
    keys = key[None] if n is None else jax.random.split(key, int(n))
    result = _draws_from_keys(keys, model, params, unit)
    src, bkg = np.asarray(result.src_counts), np.asarray(result.bkg_counts)
    copies = [_fake_unit(unit, src[i], bkg[i], regroup) for i in range(keys.shape[0])]
    return copies[0] if n is None else copies


def _fake_unit(unit: DataUnit, src_counts: np.ndarray, bkg_counts: np.ndarray,
               regroup: bool) -> DataUnit:
    """A copy of `unit` with the simulated counts (host side)."""
    src_counts = np.asarray(src_counts, dtype=np.float64)
    good = np.asarray(unit.src.quality) == 0
    if not np.all(np.isfinite(src_counts[good])):
        bad = np.flatnonzero(~np.isfinite(src_counts) & good)
        raise ValueError(
            f"unit {unit.name}: the model's expected counts are not finite in good-quality "
            f"channel(s) {bad[:10].tolist()}{'...' if bad.size > 10 else ''}; check the "
            "parameters"
        )
    src = unit.src
    grouping = np.asarray(src.grouping) if regroup else np.asarray(unit.grouping)
    source = Source(src_counts, np.sqrt(src_counts), src.exposure, quality=src.quality,
                    grouping=grouping, backscale=src.backscale, factor=src.factor,
                    channels=src.channels, name=f"fakeit {src.name}", poisson=True,
                    areascale=src.areascale)
    background = None
    if unit.bkg_given:
        bkg = unit.bkg
        bkg_counts = np.asarray(bkg_counts, dtype=np.float64)
        gaussian = statistic(unit.stat).background == "gaussian"
        errors = np.asarray(bkg.errors, dtype=np.float64) if gaussian else np.sqrt(bkg_counts)
        background = Background(bkg_counts, errors, bkg.exposure, quality=bkg.quality,
                                grouping=bkg.grouping, backscale=bkg.backscale,
                                factor=bkg.factor, channels=bkg.channels,
                                name=f"fakeit {bkg.name}", poisson=not gaussian,
                                areascale=bkg.areascale)
    changes = dict(src=source, bkg=background)
    if not regroup:
        changes["grpg"] = None
    return unit.replace(**changes)


# ----------------------------------------------------------------------------------------------
# writing


def _response_record(unit: DataUnit) -> RMF:
    rsp = unit.rsp

    def file_dtype(values: Array) -> str:
        return "float32" if values.dtype == jnp.float32 else "float64"

    return RMF(phbin=np.asarray(rsp.phbin, dtype=np.float64),
               chbin=np.asarray(rsp.chbin, dtype=np.float64),
               drm=np.asarray(rsp.drm, dtype=np.float64), channels=np.asarray(rsp.channels),
               chbin_dtype=file_dtype(rsp.chbin), phbin_dtype=file_dtype(rsp.phbin),
               keywords={"CREATOR": CREATOR})


def _spectrum_record(spectrum: Any, unit: DataUnit, hduclas2: str, keywords: dict) -> PHA:
    pha = spectrum.to_pha()
    return PHA(counts=pha.counts, exposure=pha.exposure, stat_err=pha.stat_err,
               quality=pha.quality, grouping=pha.grouping, backscale=pha.backscale,
               areascale=pha.areascale, channels=pha.channels, poisserr=pha.poisserr,
               ebounds=np.asarray(unit.rsp.chbin, dtype=np.float64),
               keywords=dict(keywords, HDUCLAS2=hduclas2, CREATOR=CREATOR))


def _records(unit: DataUnit, names: dict) -> tuple[PHA, PHA | None]:
    keywords = {"RESPFILE": names["rsp"], "BACKFILE": names.get("bkg", "none"),
                "OBJECT": unit.name}
    src = _spectrum_record(unit.src, unit, "TOTAL", keywords)
    bkg = None
    if unit.bkg_given:
        bkg = _spectrum_record(unit.bkg, unit, "BKG", dict(keywords, BACKFILE="none"))
    return src, bkg


def _same_response(a: DataUnit, b: DataUnit) -> bool:
    return all(np.array_equal(np.asarray(getattr(a.rsp, f)), np.asarray(getattr(b.rsp, f)))
               for f in ("chbin", "phbin", "drm", "channels"))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "unit"


def write_fakeit(path_prefix: str | os.PathLike, fake: DataUnit | Data | Sequence[DataUnit],
                 overwrite: bool = False) -> Any:
    """Write simulated (or any complete) units as OGIP PHA and RSP files.

    The source is written with POISSERR = T when its errors are Poisson (always, for `fakeit`
    copies), the background with POISSERR = F and STAT_ERR when they are Gaussian, POISSERR = T
    otherwise; both carry EBOUNDS and point at each other and at the response through
    RESPFILE/BACKFILE. The full response ``rsp.drm`` goes to an RSP file (SPECRESP MATRIX,
    `io.write_rmf` with ``kind='rsp'``), its energies in the precision they were read in. The
    data-layer factors (``sf``, ``bf``, ``rf``, ra, dec) have no place in OGIP files and are not
    written. Reading the files back (``DataUnit(**paths, stat=..., notc=..., grpg=...)``) gives
    the same counts, errors, flags, exposures, backscales and response.

    **Arguments:**

    - `path_prefix`: a path without extension, e.g. ``"out/grb_fake"``.
    - `fake`: a `DataUnit`, a `Data`, or a sequence of `DataUnit`s sharing one response (the
        draws of `fakeit(..., n=...)`), written as rows of PHA type II files.
    - `overwrite`: replace existing files.

    **Returns:**

    - a `DataUnit`: ``{"src": prefix.src, "bkg": prefix.bkg, "rsp": prefix.rsp}`` (no ``"bkg"``
        without a background);
    - a `Data`: ``{name: {...}}`` with one such dict per unit, files
        ``prefix_<name>.src`` etc. (characters other than letters, digits, ``._+-`` in the name
        become ``_``);
    - a sequence: ``{"src": prefix.src2, "bkg": prefix.bkg2, "rsp": prefix.rsp, "rows": n}``;
        row ``i`` is draw ``i`` (``Source.from_src2(path, i)``), its BACKFILE ``prefix.bkg2{i+1}``
        in XSPEC's (1-based) row notation.
    """
    prefix = os.fspath(path_prefix)
    if isinstance(fake, Data):
        prefixes = {name: f"{prefix}_{_safe_name(name)}" for name in fake.names}
        if len(set(prefixes.values())) != len(prefixes):
            raise ValueError(f"unit names {list(fake.names)} map to the same file names; rename "
                             "the units")
        return {name: write_fakeit(prefixes[name], unit, overwrite) for name, unit in fake.items()}
    if isinstance(fake, DataUnit):
        _check_unit(fake)
        paths = {"src": f"{prefix}.src", "rsp": f"{prefix}.rsp"}
        if fake.bkg_given:
            paths["bkg"] = f"{prefix}.bkg"
        names = {key: os.path.basename(path) for key, path in paths.items()}
        src, bkg = _records(fake, names)
        write_pha(paths["src"], src, overwrite=overwrite)
        if bkg is not None:
            write_pha(paths["bkg"], bkg, overwrite=overwrite)
        write_rmf(paths["rsp"], _response_record(fake), kind="rsp", overwrite=overwrite)
        return {key: paths[key] for key in ("src", "bkg", "rsp") if key in paths}
    if isinstance(fake, Sequence) and fake and all(isinstance(u, DataUnit) for u in fake):
        units = list(fake)
        for unit in units:
            _check_unit(unit)
        first = units[0]
        if any(not _same_response(first, u) or u.bkg_given != first.bkg_given
               or u.stat != first.stat for u in units[1:]):
            raise ValueError("write_fakeit writes a sequence of units as PHA type II rows: they "
                             "must share one response, statistic and background presence (the "
                             "draws of one unit); write other units one by one")
        paths = {"src": f"{prefix}.src2", "rsp": f"{prefix}.rsp"}
        if first.bkg_given:
            paths["bkg"] = f"{prefix}.bkg2"
        srcs, bkgs = [], []
        for row, unit in enumerate(units):
            names = {"rsp": os.path.basename(paths["rsp"])}
            if "bkg" in paths:
                names["bkg"] = f"{os.path.basename(paths['bkg'])}{{{row + 1}}}"
            src, bkg = _records(unit, names)
            srcs.append(src)
            bkgs.append(bkg)
        write_pha2(paths["src"], srcs, overwrite=overwrite)
        if "bkg" in paths:
            write_pha2(paths["bkg"], bkgs, overwrite=overwrite)
        write_rmf(paths["rsp"], _response_record(first), kind="rsp", overwrite=overwrite)
        return {**{key: paths[key] for key in ("src", "bkg", "rsp") if key in paths},
                "rows": len(units)}
    raise TypeError("write_fakeit takes a DataUnit, a Data or a non-empty sequence of DataUnits, "
                    f"got {type(fake).__name__}")
