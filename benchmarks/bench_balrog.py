#!/usr/bin/env python3
"""Benchmark: the BALROG response generator in JAX (`bayspec_jax.balrog`) side by side with
gbm-drm-gen 1.2.2 (the original, numba) in one process, on the trigdat of GRB 110721A.

    /tmp/gbmvenv/bin/python benchmarks/bench_balrog.py                  # full run, float64
    /tmp/gbmvenv/bin/python benchmarks/bench_balrog.py --quick          # smoke run, ~3 min
    /tmp/gbmvenv/bin/python benchmarks/bench_balrog.py --no-x64         # float32
    /tmp/gbmvenv/bin/python benchmarks/bench_balrog.py --out benchmarks/BALROG.md
    /tmp/gbmvenv/bin/python benchmarks/bench_balrog.py --agreement-only --json --quick
    python3 benchmarks/bench_balrog.py --quick      # our columns only (no gbm-drm-gen here)

gbm-drm-gen pins numpy<2.4 and astropy<7, so it lives in its own venv (/tmp/gbmvenv) with
bayspec_jax installed there too (README_balrog.md says how). In a python without gbm_drm_gen
the gbm-drm-gen columns are skipped and the output says so. The detector database
(``balrog_db.h5``) is gbm-drm-gen's, found by `bayspec_jax.balrog.gbm_drm_gen_data_dir`.

Parts (all on the JAX default device, CPU here; `time.perf_counter`, every call blocked with
`jax.block_until_ready`; the timing helpers are the peer harness's `time_first` and
`time_steady`, through `harness.py`):

a. DRM per position, detectors n6 (NaI, the burst's CSPEC EBOUNDS) and b0 (BGO, EBOUNDS of
   ../shared/data/bayspec-examples/HE/he.rsp), mat_type 0 (direct) and 2 (direct +
   atmospheric scattering), occult=True. Positions are drawn uniformly on the sphere and those
   behind the Earth dropped (gbm-drm-gen returns a stored zero matrix for them at no cost).
   gbm-drm-gen: ``set_location(ra, dec)`` then ``matrix``, the median over `--gbm-positions`
   positions after a first call that pays numba's compile (the first row's first call pays
   nearly all of it; reported separately). Ours: ``gen.matrices(ra, dec)`` (`jax.lax.map`)
   over `--positions` positions under `jax.jit`, the generator passed as an argument; first
   call (trace + compile + one run) and steady time per position (median of `--repeat` calls
   divided by the batch). Also ``jax.vmap(gen.matrix)`` over `--vmap-positions` of them.
b. The log-likelihood of a 5-detector problem (n6, n7, n8, n9 with n6's CSPEC EBOUNDS, b0
   with he.rsp's), each unit a `DataUnit` on `BalrogResponse(drm_generator(...))`, counts
   simulated (`simulate.fakeit`) from a cutoff power law at the burst's position, backgrounds
   and exposures from the bayspec examples ME/me.bkg (NaI) and HE/he.bkg (BGO), PGSTAT,
   grouped to 2 sigma, the five positions linked into one (ra, dec). Free vector
   (alpha, log10 Ec, log10 A, ra, dec): value and value+grad under `jax.jit`
   (`infer.Problem(...).objective.loglike`, data arrays as arguments). The same Data on
   `BalrogResponse(DRMGen)` (gbm-drm-gen called through `jax.pure_callback`): value only, as
   a host callback has no derivative.
c. A sky map: the log-likelihood at `--skymap` positions of a Fibonacci sphere in one jitted
   call (`jax.lax.map` over chunks of `--skymap-chunk` positions, each chunk `jax.vmap`ed; a
   chunk of 0 is one plain `vmap` over all of them: at 10^4 positions that materialises the
   gathered direct DRMs of every position, ~0.4 MB per detector each), the spectral
   parameters fixed (closed over: the flux and its product with the scattering table are
   computed once per call), and (on `--skymap-batched` positions) with the spectral parameters
   batched too (one set per position). gbm-drm-gen's time for the same map is estimated from
   part b (positions x its time per evaluation), not measured.
d. Agreement: the log-likelihood of part b's data at `--agreement-positions` positions (the
   burst's, two within a few degrees of the Earth's limb but not behind it, the others drawn
   at random among the visible) with `BalrogResponse(DRMGen)` and with
   `BalrogResponse(drm_generator(...))`, and their largest relative difference.

With `--agreement-only` only part d runs (and, with `--json`, its result is printed as a
``RESULT {json}`` line; tests/test_balrog_drmgen.py reads it). Performance work in the package
is not done here: this script only measures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time

import harness
from harness import SHARED, log

DATA_DIR = os.path.join(SHARED, "data", "bayspec-examples")
BGO_EBOUNDS = os.path.join(DATA_DIR, "HE", "he.rsp")
TRIGDAT = "glg_trigdat_all_bn110721200_v01.fit"
NAI_CSPEC = "glg_cspec_n6_bn110721200_v00.pha"
SOURCE = (333.66, -38.59)  # GRB 110721A (ra, dec) [deg]
THETA0 = (-1.563, 2.691, 2.354)  # alpha, log10 Ec, log10 A: bayspec's JOINT fit
GRPG = {"min_sigma": 2, "max_bin": 10}
NOTICE = {"nai": [8, 900], "bgo": [300, 38000]}
LIMB_MARGINS_DEG = (1.0, 3.0)  # of the agreement positions near the Earth's limb
MAT_NAMES = {0: "direct", 1: "scattered", 2: "direct + scattered"}
TARGET_SPEEDUP = 30.0  # per position, direct + scattered, CPU (our issue's target)
MISSING_GBM = ("gbm-drm-gen not importable in this python: its columns are skipped (run with "
               "/tmp/gbmvenv/bin/python, see benchmarks/README_balrog.md)")


# ------------------------------------------------------------------------------- set-up --

def gbm_drm_gen_module():
    """gbm_drm_gen's `DRMGen`, or None where the package cannot be imported."""
    try:
        from gbm_drm_gen.drmgen import DRMGen
    except Exception as exc:  # noqa: BLE001 - any import failure means: not here
        log(f"(gbm_drm_gen: {type(exc).__name__}: {exc})")
        return None
    return DRMGen


def example_paths() -> dict:
    """The trigdat, the NaI CSPEC and the BGO EBOUNDS files."""
    from bayspec_jax.balrog import gbm_drm_gen_data_dir

    folder = gbm_drm_gen_data_dir()
    if folder is None:
        sys.exit("gbm-drm-gen's data folder (balrog_db.h5, example_data/) not found: install "
                 "gbm-drm-gen (README_balrog.md) or set BAYSPEC_GBM_DRM_GEN_DATA")
    example = os.path.join(str(folder), "example_data")
    return {"trigdat": os.path.join(example, TRIGDAT), "nai": os.path.join(example, NAI_CSPEC),
            "bgo": BGO_EBOUNDS}


def ebounds_file(paths: dict, detector: str) -> str:
    return paths["bgo"] if detector.startswith("b") else paths["nai"]


def ours(paths: dict, detector: str, mat_type: int = 2):
    """Our generator for `detector` at the trigger time."""
    from bayspec_jax.balrog import drm_generator

    return drm_generator(detector, trigdat=paths["trigdat"], time=0.0,
                         out_edges=ebounds_file(paths, detector), mat_type=mat_type, occult=True)


def theirs(DRMGen, paths: dict, detector: str, mat_type: int = 2):
    """gbm-drm-gen's generator for `detector` at the trigger time."""
    return DRMGen.from_128_bin_data(detector, time=0.0, cspecfile=ebounds_file(paths, detector),
                                    trigdat=paths["trigdat"], mat_type=mat_type, occult=True)


def sphere_positions(n: int, seed: int):
    """`n` positions ``(ra, dec)`` [deg] drawn uniformly on the sphere."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def fibonacci_sphere(n: int):
    """`n` nearly evenly spaced positions ``(ra, dec)`` [deg] (a Fibonacci lattice)."""
    import numpy as np

    i = np.arange(n)
    z = 1.0 - (2.0 * i + 1.0) / n
    ra = np.degrees(i * np.pi * (3.0 - np.sqrt(5.0))) % 360.0
    return ra, np.degrees(np.arcsin(z))


def limb_margin(gen, ra, dec):
    """Degrees between ``(ra, dec)`` and the Earth's limb seen from the spacecraft (negative:
    behind the Earth), by the test `DRMGenerator.occulted` makes."""
    import numpy as np

    position = np.asarray(gen.position, dtype=np.float64)
    distance = np.linalg.norm(position)
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    sky = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
    from_nadir = np.degrees(np.arccos(np.clip(sky @ (-position / distance), -1.0, 1.0)))
    return from_nadir - (90.0 - np.degrees(np.arccos(6371.0 / distance)))


def near_limb(gen, margin_deg: float, azimuth_deg: float):
    """A position ``(ra, dec)`` [deg] `margin_deg` above the Earth's limb."""
    import numpy as np

    position = np.asarray(gen.position, dtype=np.float64)
    distance = np.linalg.norm(position)
    nadir = -position / distance
    u = np.cross(nadir, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(nadir, u)
    angle = np.radians(90.0 - np.degrees(np.arccos(6371.0 / distance)) + margin_deg)
    phi = np.radians(azimuth_deg)
    sky = np.cos(angle) * nadir + np.sin(angle) * (np.cos(phi) * u + np.sin(phi) * v)
    return float(np.degrees(np.arctan2(sky[1], sky[0])) % 360.0), float(
        np.degrees(np.arcsin(sky[2])))


def visible(gen, ra, dec):
    import numpy as np

    return np.asarray(limb_margin(gen, ra, dec)) > 0.0


# ----------------------------------------------------------------------- a. DRM per position --

def numba_thread_counts() -> list[int]:
    """The numba thread counts gbm-drm-gen is timed with: numba's default (one per CPU; its
    scattering loop is `prange`d) and 1 (on a loaded machine a parallel region waits for its
    slowest thread). The faster one is compared with ours."""
    import numba

    default = int(numba.config.NUMBA_NUM_THREADS)
    return [default, 1] if default > 1 else [default]


def set_numba_threads(threads: int | None) -> None:
    """numba's thread count for the next parallel regions (None: its default)."""
    import numba

    numba.set_num_threads(int(numba.config.NUMBA_NUM_THREADS) if threads is None else threads)


def steady(fn, arg_list, calls: int, cpu: bool = False):
    """Median seconds of `calls` calls of `fn` cycling through `arg_list` (for calls of
    seconds, where the harness's `time_steady` would add a sizing call); with `cpu`, also the
    median CPU seconds of the process (all threads) per call: ``(wall, cpu)``."""
    import jax
    import numpy as np

    wall, cpu_s = [], []
    for i in range(calls):
        c0, t0 = time.process_time(), time.perf_counter()
        jax.block_until_ready(fn(*arg_list[i % len(arg_list)]))
        wall.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - c0)
    if cpu:
        return float(np.median(wall)), float(np.median(cpu_s))
    return float(np.median(wall))


def drm_rows(args, paths, DRMGen) -> list[dict]:
    """Part a: one row per (detector, mat_type)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rows = []
    for detector in args.drm_detectors:
        for mat_type in (0, 2):
            row = {"detector": detector, "mat_type": mat_type}
            t0 = time.perf_counter()
            gen = ours(paths, detector, mat_type)
            row["ours_build_s"] = time.perf_counter() - t0
            ra, dec = sphere_positions(4 * args.positions + 64, seed=1)
            keep = visible(gen, ra, dec)
            ra, dec = ra[keep][: args.positions], dec[keep][: args.positions]
            shifted = [(gen, jnp.asarray(ra), jnp.asarray(dec)),
                       (gen, jnp.asarray((ra + 0.5) % 360.0), jnp.asarray(dec))]
            mapped = jax.jit(lambda g, r, d: g.matrices(r, d))
            row["ours_first_s"], _ = harness.time_first(mapped, *shifted[0])
            wall, cpu = steady(mapped, shifted, args.repeat, cpu=True)
            row["ours_per_position_ms"] = wall / ra.size * 1e3
            row["ours_cpu_per_position_ms"] = cpu / ra.size * 1e3
            row["positions"] = int(ra.size)
            n_vmap = min(args.vmap_positions, ra.size)
            vmapped = jax.jit(lambda g, r, d: jax.vmap(g.matrix)(r, d))
            vm_args = [(g, r[:n_vmap], d[:n_vmap]) for g, r, d in shifted]
            row["vmap_first_s"], _ = harness.time_first(vmapped, *vm_args[0])
            row["vmap_per_position_ms"] = steady(vmapped, vm_args, args.repeat) / n_vmap * 1e3
            row["vmap_positions"] = int(n_vmap)
            log(f"  ours {detector} mat_type {mat_type}: first {row['ours_first_s']:.1f} s, "
                f"{row['ours_per_position_ms']:.3f} ms/position (lax.map, {ra.size}), "
                f"vmap {row['vmap_per_position_ms']:.3f} ms/position ({n_vmap})")
            if DRMGen is not None:
                t0 = time.perf_counter()
                drmgen = theirs(DRMGen, paths, detector, mat_type)
                row["gbm_build_s"] = time.perf_counter() - t0
                n_gbm = min(args.gbm_positions, ra.size)
                t0 = time.perf_counter()
                drmgen.set_location(float(ra[-1]), float(dec[-1]))
                np.asarray(drmgen.matrix)
                row["gbm_first_s"] = time.perf_counter() - t0
                by_threads = {}
                for threads in numba_thread_counts():
                    set_numba_threads(threads)
                    times, cpu = [], []
                    for r, d in zip(ra[:n_gbm], dec[:n_gbm]):
                        c0, t0 = time.process_time(), time.perf_counter()
                        drmgen.set_location(float(r), float(d))
                        np.asarray(drmgen.matrix)
                        times.append(time.perf_counter() - t0)
                        cpu.append(time.process_time() - c0)
                    by_threads[threads] = [float(np.median(times)) * 1e3] + [
                        float(np.percentile(times, q)) * 1e3 for q in (10, 90)] + [
                        float(np.median(cpu)) * 1e3]
                set_numba_threads(None)
                best = min(by_threads, key=lambda t: by_threads[t][0])
                row["gbm_by_threads_ms"] = {str(t): v for t, v in by_threads.items()}
                row["gbm_threads"] = best
                row["gbm_per_position_ms"] = by_threads[best][0]
                row["gbm_p10_p90_ms"] = by_threads[best][1:3]
                row["gbm_cpu_per_position_ms"] = by_threads[best][3]
                row["ratio_cpu"] = (row["gbm_cpu_per_position_ms"]
                                    / row["ours_cpu_per_position_ms"])
                row["gbm_positions"] = int(n_gbm)
                row["ratio"] = row["gbm_per_position_ms"] / row["ours_per_position_ms"]
                row["ratio_vmap"] = row["gbm_per_position_ms"] / row["vmap_per_position_ms"]
                log(f"  gbm-drm-gen {detector} mat_type {mat_type}: first "
                    f"{row['gbm_first_s']:.1f} s, ms/position by numba threads "
                    f"{ {t: round(v[0], 2) for t, v in by_threads.items()} } ({n_gbm} positions); "
                    f"ratio {row['ratio']:.1f}x")
            rows.append(row)
    return rows


# --------------------------------------------------------------------- b. the likelihood --

def unit_name(detector: str) -> str:
    return detector


def build_problem(paths, detectors, DRMGen=None):
    """Part b's problem on our generators, and (with `DRMGen`) the same Data on gbm-drm-gen's
    providers: ``(problem, gbm_problem or None, generators)``."""
    import jax
    import numpy as np

    import bayspec_jax as bj
    from bayspec_jax import infer, models, simulate

    ra0, dec0 = SOURCE
    units, gbm_units, gens = [], [], {}
    key = jax.random.PRNGKey(2011)
    for k, detector in enumerate(detectors):
        kind = "bgo" if detector.startswith("b") else "nai"
        folder, prefix = ("HE", "he") if kind == "bgo" else ("ME", "me")
        gen = ours(paths, detector)
        gens[detector] = gen

        def position():
            return {"ra": bj.Par(ra0, bj.unif(0.0, 360.0)),
                    "dec": bj.Par(dec0, bj.unif(-90.0, 90.0))}

        files = {"src": os.path.join(DATA_DIR, folder, f"{prefix}.src"),
                 "bkg": os.path.join(DATA_DIR, folder, f"{prefix}.bkg"),
                 "notc": NOTICE[kind], "stat": "pgstat", "grpg": dict(GRPG),
                 "name": unit_name(detector)}
        template = bj.DataUnit(rsp=bj.BalrogResponse(gen, **position()), **files)
        unit = simulate.fakeit(jax.random.fold_in(key, k), models.cpl, np.asarray(THETA0),
                               template)
        units.append((unit_name(detector), unit))
        if DRMGen is not None:
            provider = theirs(DRMGen, paths, detector)
            gbm_units.append((unit_name(detector),
                              unit.replace(rsp=bj.BalrogResponse(provider, **position()))))
    params = {"alpha": bj.Par(-1.5, bj.unif(-3.0, 1.0)),
              "log_ec": bj.Par(2.5, bj.unif(1.0, 4.0)),
              "log_a": bj.Par(2.0, bj.unif(-2.0, 6.0))}
    names = [name for name, _ in units]
    links = [tuple(f"ra@{n}" for n in names), tuple(f"dec@{n}" for n in names)]
    problem = infer.Problem(models.cpl, params, bj.Data(units), links=links)
    gbm_problem = (infer.Problem(models.cpl, params, bj.Data(gbm_units), links=links)
                   if DRMGen is not None else None)
    return problem, gbm_problem, gens


def free_vector(theta, ra, dec):
    import jax.numpy as jnp

    return jnp.asarray([*theta, ra, dec], dtype=jnp.result_type(float))


def likelihood_rows(args, problem, gbm_problem) -> list[dict]:
    """Part b: value and value+grad (ours), value (gbm-drm-gen through pure_callback)."""
    import jax
    import numpy as np

    assert problem.names[3:] == [f"ra@{args.detectors[0]}", f"dec@{args.detectors[0]}"], \
        problem.names
    rng = np.random.default_rng(3)
    points = [free_vector(THETA0, *SOURCE)] + [
        free_vector(np.asarray(THETA0) + rng.normal(0, 0.01, 3),
                    SOURCE[0] + rng.normal(0, 1.0), SOURCE[1] + rng.normal(0, 1.0))
        for _ in range(3)]
    rows = []

    def objective_of(p):
        objective = p.objective
        return lambda free, arrays: objective.loglike(free, *arrays)

    value = jax.jit(objective_of(problem))
    value_grad = jax.jit(jax.value_and_grad(objective_of(problem)))
    for what, fn in (("value", value), ("value+grad", value_grad)):
        first, out = harness.time_first(fn, points[0], problem.arrays)
        med, calls, p10, p90 = harness.time_steady(
            fn, [(p, problem.arrays) for p in points], min_calls=10, budget_s=args.budget,
            warmup=2)
        row = {"provider": "ours (drm_generator, traced)", "what": what, "first_s": first,
               "steady_ms": med * 1e3, "p10_p90_ms": [p10 * 1e3, p90 * 1e3], "calls": calls}
        if what == "value":
            row["value"] = float(out)
        else:
            row["value"] = float(out[0])
            row["grad"] = [float(x) for x in np.asarray(out[1])]
            row["grad_finite"] = bool(np.all(np.isfinite(out[1])))
        rows.append(row)
        log(f"  ours {what}: first {first:.1f} s, {med * 1e3:.2f} ms/evaluation ({calls} calls)")
    if gbm_problem is not None:
        host = jax.jit(objective_of(gbm_problem))
        first, out = harness.time_first(host, points[0], gbm_problem.arrays)
        host_args = [(p, gbm_problem.arrays) for p in points]
        times = []
        for i in range(max(args.repeat, 3)):
            t0 = time.perf_counter()
            jax.block_until_ready(host(*host_args[i % len(host_args)]))
            times.append(time.perf_counter() - t0)
        med, calls = float(np.median(times)), len(times)
        p10, p90 = (float(np.percentile(times, q)) for q in (10, 90))
        rows.append({"provider": "gbm-drm-gen DRMGen (jax.pure_callback)", "what": "value",
                     "first_s": first, "steady_ms": med * 1e3,
                     "p10_p90_ms": [p10 * 1e3, p90 * 1e3], "calls": calls,
                     "value": float(out)})
        try:
            jax.grad(objective_of(gbm_problem))(points[0], gbm_problem.arrays)
            grad_note = "a gradient was returned (unexpected)"
        except Exception as exc:  # noqa: BLE001 - pure_callback has no JVP rule
            grad_note = f"no gradient: {type(exc).__name__}"
        rows[-1]["grad_note"] = grad_note
        log(f"  gbm-drm-gen value: first {first:.1f} s, {med * 1e3:.1f} ms/evaluation "
            f"({calls} calls); {grad_note}")
    return rows


# --------------------------------------------------------------------------- c. sky map --

def skymap_rows(args, problem, gbm_rows) -> list[dict]:
    """Part c: the log-likelihood on a Fibonacci sphere, spectral parameters fixed and
    batched.

    Fixed: `likelihood.loglike` with the spectral parameters closed over and only the
    position (``data_params`` ra, dec of every unit) mapped, so that what depends on the
    spectrum alone (the photon flux, its product with the scattering table) is computed once
    per call, not per position. (`Problem.objective.loglike` takes one free vector: mapped over
    free vectors, the spectral parameters would be batched too.) Batched: the problem's
    objective mapped over free vectors ``(alpha, log10 Ec, log10 A, ra, dec)``.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bayspec_jax import likelihood, models

    objective, n_units = problem.objective, len(problem.data)
    dtype = jnp.result_type(float)
    theta0 = jnp.asarray(THETA0, dtype)

    def over(one, inputs, chunk):
        if not chunk:
            return jax.vmap(one)(inputs)
        return jax.lax.map(one, inputs, batch_size=min(chunk, inputs.shape[0]))

    def fixed_map(positions, arrays, chunk):
        setups, counts = arrays

        def one(position):
            where = {"ra": jnp.full(n_units, position[0]), "dec": jnp.full(n_units, position[1])}
            return likelihood.loglike(models.cpl, theta0, setups, counts, where)
        return over(one, positions, chunk)

    def batched_map(free, arrays, chunk):
        return over(lambda f: objective.loglike(f, *arrays), free, chunk)

    single = jax.jit(lambda free, arrays: objective.loglike(free, *arrays))
    rows = []
    rng = np.random.default_rng(4)
    for label, n, batched in (("spectral parameters fixed", args.skymap, False),
                              ("spectral parameters batched", args.skymap_batched, True)):
        if n <= 0:
            continue
        ra, dec = fibonacci_sphere(n)
        positions = jnp.asarray(np.stack([ra, dec], axis=1), dtype)
        if batched:
            thetas = jnp.asarray(np.asarray(THETA0) + rng.normal(0, 0.05, (n, 3)), dtype)
            inputs = jnp.concatenate([thetas, positions], axis=1)
            fn = jax.jit(batched_map, static_argnums=2)
            column = 3
        else:
            inputs, fn, column = positions, jax.jit(fixed_map, static_argnums=2), 0
        t0 = time.perf_counter()
        chunk, tries = args.skymap_chunk, []
        while True:  # a chunk too large for the memory: a quarter of it, and again
            try:
                first, values = harness.time_first(fn, inputs, problem.arrays, chunk)
                break
            except Exception as exc:  # XLA raises RESOURCE_EXHAUSTED
                if "RESOURCE_EXHAUSTED" not in str(exc) or chunk in (0, 1):
                    raise
                tries.append(chunk)
                log(f"  chunk {chunk}: out of memory ({str(exc).splitlines()[0][:120]}); "
                    f"trying {max(chunk // 4, 1)}")
                chunk = max(chunk // 4, 1)
        other = inputs.at[:, column].add(0.25)
        med = steady(fn, [(other, problem.arrays, chunk), (inputs, problem.arrays, chunk)],
                     args.skymap_repeat)
        wall = time.perf_counter() - t0
        values = np.asarray(values)
        # the map's values are the problem's log-likelihood at those points
        check = [0, n // 2, n - 1]
        expected = [float(single(jnp.concatenate([theta0, positions[i]]) if not batched
                                 else inputs[i], problem.arrays)) for i in check]
        rel = max(abs(values[i] - e) / max(abs(e), 1e-300) for i, e in zip(check, expected))
        best = int(np.nanargmax(values))
        row = {"what": label, "positions": n, "chunk": chunk, "chunks_out_of_memory": tries,
               "first_s": first,
               "steady_s": med, "per_position_us": med / n * 1e6, "wall_s": wall,
               "finite": int(np.isfinite(values).sum()), "check_rel_diff": float(rel),
               "best": [float(ra[best]), float(dec[best])]}
        if not batched:
            cosine = (np.sin(np.radians(dec[best])) * np.sin(np.radians(SOURCE[1]))
                      + np.cos(np.radians(dec[best])) * np.cos(np.radians(SOURCE[1]))
                      * np.cos(np.radians(ra[best] - SOURCE[0])))
            row["best_offset_deg"] = float(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
            gbm_value = next((r for r in gbm_rows if r["provider"].startswith("gbm")), None)
            if gbm_value is not None:
                row["gbm_estimate_s"] = gbm_value["steady_ms"] * 1e-3 * n
        rows.append(row)
        log(f"  sky map ({label}, {n}): first {first:.1f} s, steady {med:.2f} s "
            f"({row['per_position_us']:.0f} us/position); against single calls {rel:.1e}")
    return rows


# ------------------------------------------------------------------------- d. agreement --

def agreement_positions(gen, n: int) -> list[tuple[float, float, str]]:
    """The burst's position, two near the Earth's limb, the rest random visible ones."""

    out = [(*SOURCE, "source")]
    for margin, azimuth in zip(LIMB_MARGINS_DEG, (40.0, 220.0)):
        if len(out) < n:
            out.append((*near_limb(gen, margin, azimuth), f"limb +{margin:g} deg"))
    ra, dec = sphere_positions(200, seed=5)
    far = limb_margin(gen, ra, dec) > 10.0
    for r, d in zip(ra[far], dec[far]):
        if len(out) >= n:
            break
        out.append((float(r), float(d), "random"))
    return out[:n]


def agreement(args, problem, gbm_problem, gens) -> dict:
    """Part d: the log-likelihood with both providers at a few positions."""
    import jax

    gen = gens[args.detectors[0]]
    positions = agreement_positions(gen, args.agreement_positions)
    ours_fn = jax.jit(lambda free, arrays: problem.objective.loglike(free, *arrays))
    if gbm_problem is not None:
        gbm_fn = jax.jit(lambda free, arrays: gbm_problem.objective.loglike(free, *arrays))
    rows = []
    for ra, dec, label in positions:
        free = free_vector(THETA0, ra, dec)
        row = {"ra": ra, "dec": dec, "label": label,
               "limb_margin_deg": float(limb_margin(gen, ra, dec)),
               "ours": float(ours_fn(free, problem.arrays))}
        if gbm_problem is not None:
            row["gbm"] = float(gbm_fn(free, gbm_problem.arrays))
            row["rel_diff"] = abs(row["ours"] - row["gbm"]) / abs(row["gbm"])
        rows.append(row)
        log(f"  agreement at ({ra:.3f}, {dec:.3f}) {label}: ours {row['ours']!r}"
            + (f", gbm-drm-gen {row['gbm']!r}, rel diff {row['rel_diff']:.2e}"
               if "gbm" in row else ""))
    result = {"detectors": list(args.detectors), "x64": args.x64, "positions": rows}
    if gbm_problem is not None:
        result["max_rel_diff"] = max(r["rel_diff"] for r in rows)
    return result


# ------------------------------------------------------------------------------ report --

def source_digest() -> str:
    """sha1 (12 hex digits) of the bayspec_jax sources as imported (the package may be edited
    while this runs: the digest says which state was measured)."""
    import hashlib

    import bayspec_jax

    root = os.path.dirname(bayspec_jax.__file__)
    digest = hashlib.sha1()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:12]


def environment(DRMGen) -> dict:
    import jax

    env = {"python": sys.executable, "jax": harness.version("jax"),
           "jaxlib": harness.version("jaxlib"), "numpy": harness.version("numpy"),
           "astropy": harness.version("astropy"), "equinox": harness.version("equinox"),
           "devices": [str(d) for d in jax.devices()]}
    if DRMGen is not None:
        env.update({"gbm-drm-gen": harness.version("gbm-drm-gen"),
                    "gbmgeometry": harness.version("gbmgeometry"),
                    "numba": harness.version("numba"),
                    "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "default")})
    return env


DRM_TEXT = (
    "gbm-drm-gen: `set_location` + `matrix`, median over the positions shown (first call "
    "separately: the first row's pays numba's compile), with numba's default thread count and "
    "with 1 thread (`numba.set_num_threads`); the faster is shown first and used for the "
    "ratio. Ours: `jax.jit` of `gen.matrices` (`lax.map`) over a batch, and of "
    "`jax.vmap(gen.matrix)`; first call = trace + compile + one run of the whole batch "
    "(compile ~ first call less one steady call); steady = median of the calls / batch size. "
    "Positions uniform on the sphere, those behind the Earth dropped. Ratio = gbm-drm-gen / "
    "ours per position (wall time); the last column compares CPU time of the process (all "
    "threads, `time.process_time`), which a shared machine's load moves less.")
LIKELIHOOD_TEXT = (
    "Cutoff power law, PGSTAT, one linked (ra, dec); free vector (alpha, log10 Ec, log10 A, "
    "ra, dec); `jax.jit`, data arrays as arguments; steady = median over calls cycling through "
    "4 points.")
SKYMAP_TEXT = (
    "The log-likelihood of part b at every position of a Fibonacci sphere in one jitted call "
    "(`lax.map` over chunks, each chunk `vmap`ed; chunk 0 = one plain `vmap`); first call = "
    "trace + compile + one run. Fixed: the spectral parameters closed over, only (ra, dec) "
    "mapped (`likelihood.loglike` with `data_params`); batched: one free vector per position "
    "(`Problem.objective.loglike`). Three map values are checked against single calls.")
AGREEMENT_TEXT = ("Log-likelihood of part b's data (detectors {}) at the spectral parameters "
                  "of the simulation, both providers.")


def header_lines(args, argv, results, wall_s) -> list[str]:
    """The command, date, machine, code and versions."""
    m, env = harness.machine_info(), results["env"]
    python = sys.executable if sys.executable.startswith("/tmp/") else "python3"
    load = results["load"]
    machine = (f"- machine: nproc {m['nproc']} (os.cpu_count {m['cpu_count']}), CPU "
               f"`{m['cpu_model']}`, memory {m['memory']}, {m['platform']}; JAX devices "
               f"{', '.join(env['devices'])}; 1-minute load average {load[0]:.1f} (start) .. "
               f"{load[1]:.1f} (end)")
    versions = ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("python", "devices"))
    date = (f"- date {results['date']}, total wall time {wall_s / 60:.1f} min, "
            f"{'float64' if args.x64 else 'float32'}")
    code = (f"- code: bayspec_jax {harness.checkout_commit()}, the working tree as imported at "
            f"the start (sha1 of its .py files {results['source_sha1']}), python {env['python']}")
    return ["## Command", "", "```", shlex.join([python, "benchmarks/bench_balrog.py", *argv]),
            "```", "", date, machine, code, f"- versions: {versions}", ""]


def drm_lines(results) -> list[str]:
    header = ["detector", "mat_type", "gbm-drm-gen first call s (build s)",
              "gbm-drm-gen ms/position",
              "ours build s", "ours matrices first call s", "ours matrices ms/position",
              "ours vmap first call s", "ours vmap ms/position", "ratio (matrices)",
              "ratio (vmap)", "CPU ms/position gbm-drm-gen / ours matrices (ratio)"]
    rows = []
    for r in results["drm"]:
        has_ratio = "ratio" in r
        rows.append([r["detector"], f"{r['mat_type']} ({MAT_NAMES[r['mat_type']]})",
                     (f"{r['gbm_first_s']:.3g} ({r['gbm_build_s']:.1f})" if "gbm_first_s" in r
                      else "n/a"), gbm_cell(r), f"{r['ours_build_s']:.1f}",
                     first_cell(r, "ours", "positions"),
                     f"{r['ours_per_position_ms']:.3g} (N={r['positions']})",
                     first_cell(r, "vmap", "vmap_positions"),
                     f"{r['vmap_per_position_ms']:.3g} (N={r['vmap_positions']})",
                     f"{r['ratio']:.1f}x" if has_ratio else "n/a",
                     f"{r['ratio_vmap']:.1f}x" if has_ratio else "n/a", cpu_cell(r)])
    return ["## a. DRM per position", "", DRM_TEXT, "",
            *harness.table_lines(header, rows), ""]


def likelihood_lines(args, results) -> list[str]:
    threads = results.get("numba_threads_bcd")
    text = (f"Detectors {', '.join(args.detectors)}. {LIKELIHOOD_TEXT}"
            + (f" gbm-drm-gen with {threads} numba thread(s) (its faster setting in part a)."
               if threads else ""))
    header = ["provider", "what", "first call s", "steady ms/evaluation", "p10-p90 ms",
              "calls", "value at the source"]
    rows = [[r["provider"], r["what"] + (f" ({r['grad_note']})" if "grad_note" in r else ""),
             f"{r['first_s']:.2f}", f"{r['steady_ms']:.3g}",
             f"{r['p10_p90_ms'][0]:.3g}-{r['p10_p90_ms'][1]:.3g}", r["calls"],
             f"{r['value']:.10g}"] for r in results["likelihood"]]
    out = [f"## b. Log-likelihood, {len(args.detectors)} detectors", "", text, "",
           *harness.table_lines(header, rows), ""]
    by = {(r["provider"][:4], r["what"]): r["steady_ms"] for r in results["likelihood"]}
    if ("gbm-", "value") in by:
        theirs_ms = by[("gbm-", "value")]
        ratios = (f"Per evaluation, gbm-drm-gen's value / our value: "
                  f"{theirs_ms / by[('ours', 'value')]:.0f}x; / our value+grad: "
                  f"{theirs_ms / by[('ours', 'value+grad')]:.0f}x.")
        out += [ratios, ""]
    return out


def skymap_lines(results) -> list[str]:
    header = ["what", "positions", "chunk", "first call s", "steady s", "us/position",
              "wall s (first + steady calls)", "best grid point (offset from source)",
              "max rel. diff. vs single calls", "gbm-drm-gen estimate s"]
    rows = []
    for r in results["skymap"]:
        best = f"({r['best'][0]:.1f}, {r['best'][1]:.1f})"
        if "best_offset_deg" in r:
            best += f", {r['best_offset_deg']:.1f} deg"
        estimate = (f"{r['gbm_estimate_s']:.0f} (= positions x part b's value time)"
                    if "gbm_estimate_s" in r else "n/a")
        chunk = str(r["chunk"] or "one vmap")
        if r.get("chunks_out_of_memory"):
            chunk += f" ({', '.join(map(str, r['chunks_out_of_memory']))}: out of memory)"
        rows.append([r["what"], r["positions"], chunk, f"{r['first_s']:.1f}",
                     f"{r['steady_s']:.2f}", f"{r['per_position_us']:.0f}", f"{r['wall_s']:.1f}",
                     best, f"{r['check_rel_diff']:.1e}", estimate])
    return ["## c. Sky map", "", SKYMAP_TEXT, "", *harness.table_lines(header, rows), ""]


def agreement_lines(results) -> list[str]:
    ag = results["agreement"]
    header = ["ra", "dec", "position", "above the limb deg", "ours", "gbm-drm-gen",
              "relative difference"]
    rows = [[f"{r['ra']:.3f}", f"{r['dec']:.3f}", r["label"], f"{r['limb_margin_deg']:.2f}",
             repr(r["ours"]), repr(r["gbm"]) if "gbm" in r else "n/a",
             f"{r['rel_diff']:.2e}" if "rel_diff" in r else "n/a"] for r in ag["positions"]]
    out = ["## d. Agreement", "", AGREEMENT_TEXT.format(", ".join(ag["detectors"])), "",
           *harness.table_lines(header, rows), ""]
    if "max_rel_diff" in ag:
        out += [f"Largest relative difference: {ag['max_rel_diff']:.2e}.", ""]
    return out


def report_lines(args, argv, results, wall_s) -> list[str]:
    lines = header_lines(args, argv, results, wall_s)
    if not results["gbm"]:
        lines += [f"**{MISSING_GBM}.**", ""]
    if results.get("drm"):
        lines += drm_lines(results)
    if results.get("likelihood"):
        lines += likelihood_lines(args, results)
    if results.get("skymap"):
        lines += skymap_lines(results)
    if results.get("agreement"):
        lines += agreement_lines(results)
    return lines + reading(results)


def first_cell(r, key: str, size: str) -> str:
    """A first call's seconds and the compile in it (the first call less one steady call)."""
    first = r[f"{key}_first_s"]
    compile_s = first - r[f"{key}_per_position_ms"] * r[size] * 1e-3
    return f"{first:.2f} (compile ~{compile_s:.2f})"


def cpu_cell(r) -> str:
    """CPU seconds (all threads of the process) per position: gbm-drm-gen's, ours, ratio."""
    ours_cpu = f"{r['ours_cpu_per_position_ms']:.3g}"
    if "ratio_cpu" not in r:
        return f"n/a / {ours_cpu}"
    return f"{r['gbm_cpu_per_position_ms']:.3g} / {ours_cpu} ({r['ratio_cpu']:.1f}x)"


def gbm_cell(r) -> str:
    """gbm-drm-gen's time per position: the faster thread count first, then the others."""
    if "gbm_per_position_ms" not in r:
        return "n/a"
    best = str(r["gbm_threads"])
    cell = (f"{r['gbm_per_position_ms']:.3g} ({best} thread{'s' * (best != '1')}, "
            f"N={r['gbm_positions']}, p10-p90 {r['gbm_p10_p90_ms'][0]:.3g}-"
            f"{r['gbm_p10_p90_ms'][1]:.3g})")
    others = [f"{v[0]:.3g} with {t}" for t, v in r["gbm_by_threads_ms"].items() if t != best]
    return cell + (f"; {', '.join(others)}" if others else "")


def reading(results) -> list[str]:
    out = ["## Reading", ""]
    drm = [r for r in results.get("drm", []) if "ratio" in r]
    if drm:
        for mat_type in (0, 2):
            rs = [r for r in drm if r["mat_type"] == mat_type]
            if rs:
                out.append(f"- mat_type {mat_type}: ours is " + ", ".join(
                    f"{r['ratio']:.1f}x ({r['detector']}; vmap {r['ratio_vmap']:.1f}x, CPU "
                    f"time {r['ratio_cpu']:.1f}x)" for r in rs)
                    + " faster per position than gbm-drm-gen.")
        target = [r for r in drm if r["mat_type"] == 2]
        if target:
            worst = min(r["ratio"] for r in target)
            worst_cpu = min(r["ratio_cpu"] for r in target)
            met = "met" if min(worst, worst_cpu) >= TARGET_SPEEDUP else "NOT met"
            out.append(f"- Target (>= {TARGET_SPEEDUP:g}x faster per position, direct + "
                       f"scattered, CPU): {met} (smallest ratio {worst:.1f}x in wall time, "
                       f"{worst_cpu:.1f}x in CPU time, `matrices`).")
    else:
        out.append("- Ratios: not measured (gbm-drm-gen not in this python, or part a not "
                   "run).")
    out.append("- Timings on a shared 2-core machine move by tens of percent between runs; "
               "compare rows of one run.")
    return out + [""]


# -------------------------------------------------------------------------------- main --

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=None,
                    help="batch of random positions for our matrices (default 1024; quick 128)")
    ap.add_argument("--vmap-positions", type=int, default=256,
                    help="batch for jax.vmap(gen.matrix) (default 256: a vmap materialises "
                         "the scattering intermediates of every position, ~8 MB each)")
    ap.add_argument("--gbm-positions", type=int, default=None,
                    help="positions timed with gbm-drm-gen (default 16; quick 4)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="steady calls of the batched timings (default 3; quick 1)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds per steady likelihood timing (default 2; quick 0.5)")
    ap.add_argument("--x64", action=argparse.BooleanOptionalAction, default=True,
                    help="float64 (default) or float32 (--no-x64)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 128 positions, 1 repeat, 2 detectors (n6, b0), small maps")
    ap.add_argument("--detectors", default=None,
                    help="likelihood detectors (default n6,n7,n8,n9,b0; quick n6,b0)")
    ap.add_argument("--drm-detectors", default="n6,b0", help="part a's detectors")
    ap.add_argument("--skymap", type=int, default=None,
                    help="sky-map positions (default 10000; quick 500)")
    ap.add_argument("--skymap-batched", type=int, default=None,
                    help="sky-map positions with batched spectral parameters (default 1000; "
                         "quick 100; 0 skips): each position then takes the flux through every "
                         "scattering table row, ~3x a fixed-spectrum position")
    ap.add_argument("--skymap-repeat", type=int, default=1,
                    help="steady calls of each sky map (default 1: a call takes tens of s)")
    ap.add_argument("--skymap-chunk", type=int, default=500,
                    help="positions per vmapped chunk of the sky map (default 500; 0 = one "
                         "vmap over all)")
    ap.add_argument("--agreement-positions", type=int, default=None,
                    help="part d's positions (default 5; quick 3)")
    ap.add_argument("--agreement-only", action="store_true", help="run part d only")
    ap.add_argument("--parts", default="abcd", help="which parts to run (default abcd)")
    ap.add_argument("--json", action="store_true",
                    help="print the results as one 'RESULT {json}' line")
    ap.add_argument("--out", default=None, help="write the markdown report here")
    args = ap.parse_args(argv)
    quick = args.quick

    def default(name, full, small):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)

    default("positions", 1024, 128)
    default("gbm_positions", 16, 4)
    default("repeat", 3, 1)
    default("budget", 2.0, 0.5)
    default("detectors", "n6,n7,n8,n9,b0", "n6,b0")
    default("skymap", 10000, 500)
    default("skymap_batched", 1000, 100)
    default("agreement_positions", 5, 3)
    args.detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    args.drm_detectors = [d.strip() for d in args.drm_detectors.split(",") if d.strip()]
    if args.agreement_only:
        args.parts = "d"
    return args


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    harness.peer_timing()  # imports jax and switches x64 on; set the precision asked after it
    import jax

    jax.config.update("jax_enable_x64", bool(args.x64))
    t_start = time.perf_counter()
    DRMGen = gbm_drm_gen_module()
    if DRMGen is None:
        log(MISSING_GBM)
    paths = example_paths()
    results = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "env": environment(DRMGen), "gbm": DRMGen is not None,
               "argv": argv, "x64": args.x64, "source_sha1": source_digest()}
    load0 = os.getloadavg()[0]
    if "a" in args.parts:
        log("## a. DRM per position")
        results["drm"] = drm_rows(args, paths, DRMGen)
        scattered = [r for r in results["drm"] if r["mat_type"] == 2 and "gbm_threads" in r]
        if scattered:  # gbm-drm-gen's faster thread count for direct + scattered, from now on
            results["numba_threads_bcd"] = scattered[0]["gbm_threads"]
            set_numba_threads(results["numba_threads_bcd"])
    if set("bcd") & set(args.parts):
        log(f"## building the {len(args.detectors)}-detector problem")
        t0 = time.perf_counter()
        problem, gbm_problem, gens = build_problem(paths, args.detectors, DRMGen)
        results["build_s"] = time.perf_counter() - t0
        log(f"  built in {results['build_s']:.1f} s; free parameters {problem.names}")
        if "d" in args.parts:
            log("## d. agreement")
            results["agreement"] = agreement(args, problem, gbm_problem, gens)
        if "b" in args.parts:
            log("## b. likelihood")
            results["likelihood"] = likelihood_rows(args, problem, gbm_problem)
        if "c" in args.parts:
            log("## c. sky map")
            results["skymap"] = skymap_rows(args, problem, results.get("likelihood", []))
    results["load"] = [load0, os.getloadavg()[0]]
    wall = time.perf_counter() - t_start
    results["wall_s"] = wall
    if args.json:
        harness.emit(results)
    lines = report_lines(args, argv, results, wall)
    if not args.json:
        print("\n".join(lines))
    if args.out:
        harness.write_report(args.out, harness.report_header(
            "BALROG DRM generator: bayspec_jax.balrog vs gbm-drm-gen 1.2.2",
            "bench_balrog.py") + lines)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
