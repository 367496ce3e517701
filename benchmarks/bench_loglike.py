#!/usr/bin/env python3
"""Benchmark: the JOINT log-likelihood (GBM NaI + BGO, PGSTAT, cutoff power law) in bayspec_jax,
side by side with the peers (bayspec 0.4.5, jaxspec 0.4.1, ELISA 0.3.1) measured in the same run.

    python3 benchmarks/bench_loglike.py                 # full run: K = 1,4,16,64, 3 repetitions
    python3 benchmarks/bench_loglike.py --quick         # smoke run: K = 1,4, 1 repetition
    python3 benchmarks/bench_loglike.py --quick --no-peers

Workload JOINT and its K copies (2K units, copy k's responses scaled by 1 + 1e-3 k as the peer
harness perturbs its copies): `workloads.py`. At K=1 our value is checked against bayspec
0.4.5's -209.82250450302072 to rtol 1e-10.

What is timed (CPU, float64, `time.perf_counter`, every call blocked with
`jax.block_until_ready`; the timing helpers ARE the peer harness's own `time_first`,
`time_steady` and `batch_around` from ../shared/peers-bench/peers_bench_common.py, through
`harness.py`):

* ``compile``: the first call of a fresh `jax.jit` wrapper (trace + lower + XLA compile + one
  run). Each K runs in a fresh Python process (persistent compilation cache off) that first
  compiles the likelihood once on a Data of another shape (the BGO unit alone; recorded as
  ``cold_first_compile_s``), so that one-time process costs do not land on K=1 alone and every
  K's number is the compile of the likelihood for new shapes.
* ``steady``: median over repeated calls (budget seconds, 30..3000 calls) cycling through four
  parameter vectors near the reference point.
* ``vmap256``: `jax.vmap` over 256 parameter sets around the reference point, microseconds per
  set (the median batched call divided by 256), value and value+grad; at K <= 16 by default
  (--vmap-ks), the harness does it at K=1 only.

Rows of ours (tool ``bayspec_jax``):

* ``args``: the library's API with the stacked arrays passed as arguments:
  value = ``likelihood.make_loglike(cpl, data)``; value+grad =
  ``likelihood.make_loglike(cpl, data, grad=True)`` (the arrays flattened once, then passed).
* ``closure``: ``jax.jit(lambda th: loglike(cpl, th, data))`` with the `Data` closed over, as a
  NumPyro/BlackJAX potential is usually written (the arrays become compile-time constants).
* ``floor`` (tool ``bayspec_jax_floor``, variant ``as-stacked``): the bare fold (one
  vector-matrix product per wide block of `data.stacked`, a batched einsum per padded block)
  plus `stats.pgstat` over the same flat arrays, the model flux computed the same way
  (`fold.integrate_joined` or `integrate_bins` on `stack.energies`); jitted, arrays as
  arguments. No factors, weights,
  finiteness checks or pytree flattening: the minimum our layout can cost.
* a second floor, ``padded-units``: the layout the library used before, one padded
  ``(unit, nphot, ngroup)`` DRM stack per unit size (NaI, BGO), the model once per grid
  broadcast to the units, with a batched einsum; what the wide blocks are worth.

* two bounds (tool ``bayspec_jax_bound``), what any value+grad of this workload pays here:
  ``dispatch``, a jitted call handing over the same arrays as ``args`` and doing nothing; and
  ``fold-only``, the forward and transposed products over the same DRMs and nothing else (a
  value+grad of ``0.5 |flux @ drm|^2`` in the flux), with numpy/BLAS's time for the same two
  passes beside it.

Every worker also checks that the floors and the closure give our value to rtol 1e-10.
Performance work in the package is not done here: this script only measures.

Re-rendering: ``--from-results WORKDIR`` prints the table and rewrites RESULTS.md from the raw
results of a finished run without measuring anything.

The peers come from ``bash ../shared/peers-bench/peers_bench.sh`` (env KS, BUDGET, REPEAT=1,
OUT; PEERS_SETUP=1 creates their venvs under ~/.cache/bayspec-peers on first use), run once per
repetition, interleaved with ours so that both see the same machine load. Their RESULT lines
and ours are merged (median over repetitions of per-run medians, the harness's own `merge`)
into ONE table, followed by the target ratios (value+grad at K=16: >= 3x faster than the best
peer and within 1.5x of the floor; compile time at K=64 <= 2x that at K=1). A full run writes
benchmarks/RESULTS.md; raw results go to --workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import harness
from harness import HERE, PEERS_DIR, REPO, log
from workloads import (DATA_DIR, REF_LOGLIKE, REF_RTOL, THETA0, joint_copies, joint_units,
                       loglike_arrays)

TARGET_SPEEDUP_VS_PEER = 3.0
TARGET_RATIO_VS_FLOOR = 1.5
TARGET_COMPILE_RATIO = 2.0


# ===================================================================================== worker ==

def stacked_form(data) -> tuple[tuple, tuple]:
    """The library's stacked form (`data.stacked`) as the floors and bounds read it: per stack,
    arrays ``(energies, blocks, S, B, sS, sB, ts, tb)`` with blocks ``(drm, photon_mask, take)``,
    and a static layout ``(ngrid, joined, rows)`` with rows ``(grid_start, n_rows, nphot)`` per
    block. The one function here that reads the stacked form's fields."""
    arrays = tuple((s.energies, tuple((b.drm, b.photon_mask, b.take) for b in s.blocks),
                    s.src_counts, s.bkg_counts, s.src_errors, s.bkg_errors, s.ts, s.tb)
                   for s in data.stacked)
    layout = tuple((s.ngrid, s.joined, tuple((b.grid_start, b.n_rows, b.nphot)
                                             for b in s.blocks))
                   for s in data.stacked)
    return arrays, layout


def block_drms(arrays: tuple) -> tuple:
    """The DRM of every fold block in `stacked_form`'s arrays."""
    return tuple(drm for stack in arrays for drm, _, _ in stack[1])


class Worker:
    """One K measured in this process: the parameter points, the timings, the RESULT lines."""

    def __init__(self, args, build: dict, env: dict):
        import jax.numpy as jnp
        import numpy as np

        self.k, self.budget, self.build, self.env = args.k, args.budget, build, env
        self.theta0 = jnp.asarray(THETA0)
        self.batch = jnp.asarray(harness.batch_around(THETA0, args.batch))
        cycle = harness.parameter_cycle(THETA0, np.random.default_rng(0))
        self.thetas = [jnp.asarray(theta) for theta in cycle]

    def timed(self, res: dict, key: str, fn, extra: tuple = ()):
        """Compile (first call) and steady time of ``fn(theta, *extra)`` into `res`; returns
        the first call's output."""
        cpu0 = time.process_time()
        first, out = harness.time_first(fn, self.theta0, *extra)
        res[f"{key}_first_cpu_s"] = time.process_time() - cpu0  # CPU seconds, all threads
        med, n, p10, p90 = harness.time_steady(fn, [(t, *extra) for t in self.thetas],
                                               budget_s=self.budget)
        res[f"{key}_first_s"] = first
        res[f"{key}_steady_us"] = med * 1e6
        res[f"{key}_steady_us_p10_p90"] = [p10 * 1e6, p90 * 1e6]
        res[f"{key}_n"] = n
        return out

    def timed_batch(self, res: dict, key: str, fn, extra: tuple = ()):
        """As `timed` over the vmap batch of parameter sets, microseconds per set."""
        cpu0 = time.process_time()
        first, out = harness.time_first(fn, self.batch, *extra)
        res[f"{key}_first_cpu_s"] = time.process_time() - cpu0
        calls = [(self.batch, *extra), (self.batch * (1 + 1e-9), *extra)]
        med, n, _, _ = harness.time_steady(fn, calls, min_calls=10, budget_s=self.budget,
                                           warmup=3)
        res[f"{key}_first_s"] = first
        res[f"{key}_steady_us_per_eval"] = med * 1e6 / self.batch.shape[0]
        res[f"{key}_n"] = n
        return out

    def emit(self, res: dict) -> None:
        res.update(self.build)
        res["K"] = self.k
        res["env"] = self.env
        harness.emit(res)


def warm_up_backend() -> None:
    """One tiny jitted call, not timed: the backend starts here."""
    import jax
    import jax.numpy as jnp

    jax.block_until_ready(jax.jit(lambda x: x + 1.0)(jnp.ones(3)))


def build_joint(k: int, data_dir: str) -> tuple:
    """``(data, base units by name, build record)``: K copies of JOINT, each step timed."""
    import bayspec_jax as bj

    t0 = time.perf_counter()
    base = joint_units(data_dir)
    files_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = joint_copies(base, k)
    copies_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = bj.Data(pairs)
    data_s = time.perf_counter() - t0
    arrays, _ = stacked_form(data)
    build = {"build_files_s": files_s, "build_copies_s": copies_s, "build_data_s": data_s,
             "build_s": (files_s if k == 1 else 0.0) + copies_s + data_s,
             "stack_shapes": [[list(drm.shape) for drm, _, _ in s[1]] for s in arrays],
             "npoints": [int(n) for n in data.npoints[:2]], "n_units": len(data)}
    return data, dict(base), build


def environment() -> dict:
    """Versions, devices and XLA flags of this worker."""
    import platform

    import jax
    import numpy as np

    import bayspec_jax as bj

    return {"python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": harness.version("jaxlib"), "numpy": np.__version__,
            "equinox": harness.version("equinox"), "bayspec_jax": bj.__version__,
            "bayspec_jax_file": bj.__file__, "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(), "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def loglike_of_arrays(theta, *arrays):
    """``likelihood.loglike`` of ``models.cpl`` on arrays passed as arguments."""
    from bayspec_jax.likelihood import loglike
    from bayspec_jax.models import cpl

    return loglike(cpl, theta, *arrays)


def cold_compile(w: Worker, base: dict) -> dict:
    """The process's first compiles, on a Data of another shape (the BGO unit alone): they pay
    the one-time costs (JAX's tracing caches, XLA/LLVM start-up) that do not depend on K, so
    that every K's measured compile is the same "new shapes in a warm process" compile."""
    import jax

    import bayspec_jax as bj
    from bayspec_jax.likelihood import make_loglike
    from bayspec_jax.models import cpl

    warm = bj.Data([("bgo", base["bgo"])])
    value_s, _ = harness.time_first(make_loglike(cpl, warm), w.theta0)
    vg_s, _ = harness.time_first(jax.jit(jax.value_and_grad(loglike_of_arrays)), w.theta0,
                                 *loglike_arrays(warm))
    return {"value": value_s, "vg": vg_s, "on": "Data([bgo]) before any timing"}


def check_reference(res: dict) -> None:
    """At K=1 our value and value+grad's value must be bayspec 0.4.5's to `REF_RTOL`."""
    value = res["value"]
    res["loglike_ref"] = REF_LOGLIKE
    res["loglike_rel_err"] = abs(value - REF_LOGLIKE) / abs(REF_LOGLIKE)
    if not (res["loglike_rel_err"] <= REF_RTOL and abs(res["vg_value"] - REF_LOGLIKE)
            <= REF_RTOL * abs(REF_LOGLIKE)):
        raise SystemExit(f"JOINT loglike {value!r} / {res['vg_value']!r} differs from the "
                         f"reference {REF_LOGLIKE!r} beyond rtol {REF_RTOL}")


def measure_vmap(w: Worker, res: dict, data) -> None:
    """Ours under `jax.vmap` over the batch, value and value+grad, arrays as arguments."""
    import jax
    import numpy as np

    arrays = loglike_arrays(data)
    in_axes = (0,) + (None,) * len(arrays)
    values = w.timed_batch(res, "vmap", jax.jit(jax.vmap(loglike_of_arrays, in_axes=in_axes)),
                           arrays)
    res["vmap_finite_frac"] = float(np.mean(np.isfinite(np.asarray(values))))
    res["vmap_batch"] = int(w.batch.shape[0])
    vg = jax.vmap(jax.value_and_grad(loglike_of_arrays), in_axes=in_axes)
    w.timed_batch(res, "vmap_vg", jax.jit(vg), arrays)


def measure_args(w: Worker, data, vmap: bool, load0: float) -> float:
    """Ours with the arrays as arguments (`make_loglike`); returns our value."""
    import numpy as np

    from bayspec_jax.likelihood import make_loglike
    from bayspec_jax.models import cpl

    res = {"tool": "bayspec_jax", "variant": "args"}
    value = float(w.timed(res, "value", make_loglike(cpl, data)))
    vg = w.timed(res, "vg", make_loglike(cpl, data, grad=True))
    res["value"] = value
    res["vg_value"] = float(vg[0])
    res["grad_at_theta0"] = [float(x) for x in np.ravel(vg[1])]
    res["grad_finite"] = bool(np.all(np.isfinite(np.asarray(vg[1]))))
    if w.k == 1:
        check_reference(res)
    if vmap:
        measure_vmap(w, res, data)
    res["loadavg_1min"] = [load0, os.getloadavg()[0]]
    w.emit(res)
    return value


def floor_as_stacked(layout: tuple):
    """The bare fold and `stats.pgstat` over `stacked_form`'s arrays, laid out by `layout`: one
    vector-matrix product per wide block, a batched einsum per padded block; none of the
    library's factors, weights, finiteness checks or pytree flattening."""
    import jax.numpy as jnp

    from bayspec_jax import stats
    from bayspec_jax.fold import integrate_bins, integrate_joined
    from bayspec_jax.models import cpl

    def block_rates(flux, blocks, rows, joined):
        for (drm, mask, take), (start, n_rows, nphot) in zip(blocks, rows):
            width = nphot + int(joined)  # a spacer bin after each joined grid
            f = flux[start:start + n_rows * width].reshape(n_rows, width)[:, :nphot]
            if n_rows == 1:
                rate = f[0] @ drm[0]
            else:
                rate = jnp.einsum("up,upg->ug", f if mask is None else f * mask, drm).ravel()
            yield rate if take is None else rate[take]

    def floor(theta, arrays):
        total = 0.0
        for (energies, blocks, S, B, sS, sB, ts, tb), (ngrid, joined, rows) in zip(arrays,
                                                                                  layout):
            integrate = integrate_joined if joined else integrate_bins
            flux = integrate(cpl, theta, energies, ngrid)
            rates = list(block_rates(flux, blocks, rows, joined))
            rate = jnp.concatenate(rates) if len(rates) > 1 else rates[0]
            ll, _ = stats.pgstat(S, B, rate, ts, tb, sS, sB)
            total = total + jnp.sum(ll)
        return total

    return floor


def padded_arrays(data) -> tuple:
    """The units' arrays padded per size class (NaI, BGO), one grid per class (the layout the
    library used before the wide blocks)."""
    import jax.numpy as jnp
    import numpy as np

    classes = {}
    for unit in data.units:
        classes.setdefault((unit.nbin, unit.n_groups), []).append(unit)
    out = []
    for units in classes.values():
        if len({np.asarray(u.egrid).tobytes() for u in units}) != 1:
            raise SystemExit("padded-units floor: the units of a size class differ in grid")
        out.append((jnp.asarray(units[0].egrid),
                    jnp.stack([jnp.asarray(u.rsp_drm) for u in units]),
                    *(jnp.stack([jnp.asarray(getattr(u, n)) for u in units])
                      for n in ("src_counts", "bkg_counts", "src_errors", "bkg_errors")),
                    jnp.asarray([float(u.src_efficiency) for u in units])[:, None],
                    jnp.asarray([float(u.bkg_efficiency) for u in units])[:, None]))
    return tuple(out)


def floor_padded(ngrid: int):
    """The floor on `padded_arrays`: the model once per grid broadcast to the units, a batched
    einsum over the padded DRMs, `stats.pgstat`."""
    import jax.numpy as jnp

    from bayspec_jax import stats
    from bayspec_jax.fold import integrate_bins
    from bayspec_jax.models import cpl

    def floor(theta, arrays):
        total = 0.0
        for egrid, drm, S, B, sS, sB, ts, tb in arrays:
            flux = integrate_bins(cpl, theta, egrid, ngrid)
            rate = jnp.einsum("up,upg->ug", jnp.broadcast_to(flux, drm.shape[:2]), drm)
            ll, _ = stats.pgstat(S, B, rate, ts, tb, sS, sB)
            total = total + jnp.sum(ll)
        return total

    return floor


def measure_floors(w: Worker, data, value: float, vmap: bool) -> None:
    """The two floors ("as-stacked", "padded-units"), checked against our value."""
    import jax

    arrays, layout = stacked_form(data)
    variants = [("as-stacked", floor_as_stacked(layout), arrays),
                ("padded-units", floor_padded(data.units[0].ngrid), padded_arrays(data))]
    for variant, fn, operand in variants:
        res = {"tool": "bayspec_jax_floor", "variant": variant}
        v = float(w.timed(res, "value", jax.jit(fn), (operand,)))
        w.timed(res, "vg", jax.jit(jax.value_and_grad(fn)), (operand,))
        res["value"] = v
        res["value_minus_ours"] = v - value
        if abs(v - value) > REF_RTOL * abs(value):
            raise SystemExit(f"floor {variant} value {v!r} differs from ours {value!r}")
        if vmap:
            w.timed_batch(res, "vmap", jax.jit(jax.vmap(fn, in_axes=(0, None))), (operand,))
            w.timed_batch(res, "vmap_vg", jax.jit(jax.vmap(jax.value_and_grad(fn),
                                                           in_axes=(0, None))), (operand,))
        w.emit(res)


def measure_dispatch(w: Worker, data) -> None:
    """Bound "dispatch": a jitted call handing over the same arrays as ours, doing nothing."""
    import jax

    res = {"tool": "bayspec_jax_bound", "variant": "dispatch", "value": float("nan")}
    leaves = jax.tree.leaves(loglike_arrays(data))
    w.timed(res, "value", jax.jit(lambda theta, leaves: theta[0]), (leaves,))
    w.emit(res)


def measure_fold_only(w: Worker, data) -> None:
    """Bound "fold-only": the forward and transposed products over the same DRMs (value+grad
    of 0.5 |rate|^2 in the flux), and numpy/BLAS's time for the same two passes."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    drms = block_drms(stacked_form(data)[0])
    flux_rng = np.random.default_rng(1)
    fluxes = tuple(jnp.asarray(flux_rng.uniform(0.5, 1.5, d.shape[:2])) for d in drms)

    def fold_only(fluxes, drms):
        total = 0.0
        for f, d in zip(fluxes, drms):
            rate = jnp.einsum("up,upg->ug", f, d)
            total = total + 0.5 * jnp.sum(rate * rate)
        return total

    res = {"tool": "bayspec_jax_bound", "variant": "fold-only", "value": float("nan")}
    fold_vg = jax.jit(jax.value_and_grad(fold_only))
    first, _ = harness.time_first(fold_vg, fluxes, drms)
    med, n, _, _ = harness.time_steady(fold_vg, [(fluxes, drms)], budget_s=w.budget)
    res.update(vg_first_s=first, vg_steady_us=med * 1e6, vg_n=n,
               drm_mbytes=sum(d.size * d.dtype.itemsize for d in drms) / 1e6)
    np_drms = [np.asarray(d) for d in drms]
    np_flux = [np.asarray(f) for f in fluxes]

    def blas_passes():
        for f, d in zip(np_flux, np_drms):
            for row in range(d.shape[0]):
                rate = f[row] @ d[row]
                d[row] @ rate

    res["blas_two_passes_us"] = harness.time_steady(blas_passes, [()],
                                                    budget_s=w.budget)[0] * 1e6
    w.emit(res)


def measure_closure(w: Worker, data, value: float) -> None:
    """Ours with the `Data` closed over (its arrays become compile-time constants)."""
    import jax

    from bayspec_jax.likelihood import loglike
    from bayspec_jax.models import cpl

    def ll_closed(theta):
        return loglike(cpl, theta, data)

    res = {"tool": "bayspec_jax", "variant": "closure"}
    res["value"] = float(w.timed(res, "value", jax.jit(ll_closed)))
    w.timed(res, "vg", jax.jit(jax.value_and_grad(ll_closed)))
    if abs(res["value"] - value) > REF_RTOL * abs(value):
        raise SystemExit(f"closure value {res['value']!r} differs from {value!r}")
    w.emit(res)


def worker(args) -> None:
    """Measure one K in this (fresh) process; print 'RESULT {json}' lines."""
    harness.peer_timing(args.peers_dir)  # float64, no compilation cache, as the peers' processes
    sys.path.insert(0, args.src)  # the code snapshot taken by the orchestrator (default: REPO)
    load0 = os.getloadavg()[0]
    warm_up_backend()
    data, base, build = build_joint(args.k, args.data_dir)
    w = Worker(args, build, environment())
    build["cold_first_compile_s"] = cold_compile(w, base)
    value = measure_args(w, data, args.vmap, load0)
    measure_floors(w, data, value, args.vmap)
    measure_dispatch(w, data)
    measure_fold_only(w, data)
    measure_closure(w, data, value)


# ============================================================================== orchestration ==

def worker_command(args, k: int) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--k", str(k),
           "--src", args.src, "--budget", str(args.budget), "--batch", str(args.batch),
           "--peers-dir", args.peers_dir, "--data-dir", args.data_dir]
    return cmd + (["--vmap"] if k in args.vmap_ks else [])


def run_ours(args, ks, rep, logf) -> list[dict]:
    """Each K of ours in a fresh worker process; their rows, an error row per failed K."""
    rows = []
    for k in ks:
        run = harness.run_logged(worker_command(args, k), f"ours K={k} rep={rep}", logf,
                                 timeout=args.worker_timeout)
        rows.extend(run.results)
        if run.rc != 0:
            rows.append({"tool": "bayspec_jax", "K": k, "error": f"exit {run.rc}: {run.tail}"})
    return rows


def run_peers(args, ks, rep, logf) -> list[dict]:
    out = os.path.join(args.workdir, f"peers_rep{rep}.jsonl")
    return harness.run_peer_suite(args.peers_dir, args.workdir, out, ks, args.budget,
                                  args.peers_setup, f"peers rep={rep}", logf)


# ---------------------------------------------------------------------------------- the table --

TABLE_HEADER = ("tool / variant", "K", "groups (NaI,BGO)", "loglike at ref point", "build s",
                "compile value s", "compile v+g s", "steady value us", "steady v+g us",
                "vmap256 value us/eval", "vmap256 v+g us/eval")


def fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def row_label(r) -> str:
    tool, variant = r.get("tool"), r.get("variant")
    if tool == "bayspec_jax":
        return {"args": "**bayspec_jax, pgstat** (make_loglike; arrays as args)",
                "closure": "bayspec_jax, pgstat (Data closed over)",
                }.get(variant, f"bayspec_jax {variant}")
    if tool == "bayspec_jax_bound":
        return {"dispatch": "bound: a jitted call handing over our arrays, no work",
                "fold-only": "bound: the DRM products alone (forward and transposed)",
                }.get(variant, variant)
    if tool == "bayspec_jax_floor":
        return {"as-stacked": "floor: fold + stats.pgstat on data.stacked",
                "padded-units": "floor, padded per-unit DRM stacks (the previous layout)",
                }.get(variant, variant)
    if tool == "bayspec":
        return "bayspec 0.4.5 (numpy+numba), pgstat"
    if tool == "jaxspec":
        return ("jaxspec 0.4.1, Poisson + SubtractedBackground" if variant == "sub"
                else f"jaxspec 0.4.1, Poisson + BackgroundWithError ({r.get('n_free_dims')} dims)")
    if tool == "elisa":
        return "ELISA 0.3.1, pgstat (trapz, 1 interval/bin)"
    if tool == "floor":
        return "floor: bare JAX pgstat on ELISA arrays (harness)"
    return f"{tool} {variant or ''}"


def build_and_value(r) -> tuple:
    """A row's build seconds and its loglike as printed."""
    tool = r["tool"]
    if tool == "jaxspec":
        build = r["build_obsconf_s"] + r["build_bayesianmodel_s"] if r["K"] > 1 else \
            (r.get("build_obsconf_warm_s") or r["build_obsconf_s"]) + r["build_bayesianmodel_s"]
        ll = (f"{r['value']:.4f} (rel. conv. {r['value_relative_convention']:.6f})"
              if r["K"] == 1 else f"{r['value']:.4f}")
    elif tool == "elisa":
        build = r["build_data_s"] + r["build_fit_s"] + r["build_helper_s"]
        ll = f"{r['value']:.6f}"
    elif tool == "bayspec_jax":
        build = r.get("build_s")
        ll = f"{r['value']:.9f}" if r["K"] == 1 else f"{r['value']:.4f}"
    else:
        build = None
        ll = ("-" if r["value"] != r["value"]
              else f"{r['value']:.6f}" if r["K"] == 1 else f"{r['value']:.4f}")
    return build, ll


def table_cells(r) -> list:
    if "error" in r:
        return [r.get("tool"), r.get("K", "-"), "-", f"ERROR: {r['error']}"] + [""] * 7
    npts = tuple(r["npoints"]) if "npoints" in r else "(109, 28)"
    if r["tool"] == "bayspec":
        return [row_label(r), 1, npts, f"{r['loglike']:.6f}",
                f"{fmt(r['build_units_s_median'], 3)} (units) + "
                f"{fmt(r['build_data_s_median'] * 1e6, 0)}us (Data)", "n/a", "n/a",
                fmt(r["loglike_after_param_change_us_median"]), "no grad", "-", "-"]
    build, ll = build_and_value(r)
    return [row_label(r), r["K"], npts, ll, fmt(build, 2), fmt(r.get("value_first_s"), 2),
            fmt(r.get("vg_first_s"), 2), fmt(r.get("value_steady_us")),
            fmt(r.get("vg_steady_us")), fmt(r.get("vmap_steady_us_per_eval")),
            fmt(r.get("vmap_vg_steady_us_per_eval"))]


TOOL_ORDER = {"bayspec_jax": 0, "bayspec_jax_floor": 1, "bayspec_jax_bound": 2, "bayspec": 3,
              "jaxspec": 4, "elisa": 5, "floor": 6}
VARIANT_ORDER = {"args": 0, "closure": 1, "as-stacked": 0, "padded-units": 1, "dispatch": 0,
                 "fold-only": 1, "sub": 0, "bwe": 1}


def make_table(rows) -> str:
    good = [r for r in rows if "error" not in r]
    bad = [r for r in rows if "error" in r]
    good.sort(key=lambda r: (r.get("K", 1), TOOL_ORDER.get(r["tool"], 9),
                             VARIANT_ORDER.get(r.get("variant"), 9)))
    lines = harness.table_lines(TABLE_HEADER, [table_cells(r) for r in good + bad])
    reps = sorted({r.get("n_reps", 1) for r in good})
    lines.append(f"\n(median over {reps} repetition(s) of per-run medians; us = microseconds per "
                 "call; build s of ours = file reading (K=1 only) + copies + Data)")
    return "\n".join(lines)


def find(rows, tool, K, variant=None):
    for r in rows:
        if r.get("tool") == tool and r.get("K") == K and "error" not in r and (
                variant is None or r.get("variant") == variant):
            return r
    return None


def peer_ratios(rows, k_mid, tag, ours) -> tuple[list[str], list[str]]:
    """Ours against the best peer's value+grad, and what the 3x target leaves."""
    peers = [r for r in rows if r.get("tool") in ("jaxspec", "elisa") and r.get("K") == k_mid
             and "error" not in r and r.get("vg_steady_us")]
    if not (ours and peers):
        return [f"- value+grad vs best peer at K={k_mid}: n/a (no peer value+grad result)"], []
    best = min(peers, key=lambda r: r["vg_steady_us"])
    speed = best["vg_steady_us"] / ours["vg_steady_us"]
    ok = speed >= TARGET_SPEEDUP_VS_PEER
    out = [f"- value+grad at K={k_mid}{tag}: ours {ours['vg_steady_us']:.1f} us, best peer "
           f"{row_label(best)} {best['vg_steady_us']:.1f} us -> speed-up of ours over the "
           f"best peer **{speed:.2f}x**"
           + (f" (ours is {1 / speed:.2f}x slower)" if speed < 1 else "")
           + f" (target >= {TARGET_SPEEDUP_VS_PEER:g}x: {'MET' if ok else 'NOT MET'})"]
    for r in sorted(peers, key=lambda r: r["vg_steady_us"]):
        out.append(f"  - {row_label(r)}: {r['vg_steady_us']:.1f} us "
                   f"(speed-up of ours {r['vg_steady_us'] / ours['vg_steady_us']:.2f}x)")
    verdicts = [f"speed vs best peer at K={k_mid}: {speed:.2f}x "
                f"({'met' if ok else 'not met'}, target >= 3x)"]
    dispatch = find(rows, "bayspec_jax_bound", k_mid, "dispatch")
    fold = find(rows, "bayspec_jax_bound", k_mid, "fold-only")
    if dispatch and fold:
        needed = best["vg_steady_us"] / TARGET_SPEEDUP_VS_PEER
        out.append(f"  - what the target leaves: {needed:.1f} us per value+grad. On this "
                   f"machine the DRM products alone take {fold['vg_steady_us']:.1f} us "
                   f"({fold['drm_mbytes']:.2f} MB of float64 DRM read twice; numpy/BLAS "
                   f"does the same two passes in {fold['blas_two_passes_us']:.1f} us without "
                   f"any call overhead), and a jitted call that hands over our arrays and "
                   f"does nothing takes {dispatch['value_steady_us']:.1f} us")
    return out, verdicts


def floor_ratios(rows, k_mid, tag, ours) -> tuple[list[str], list[str]]:
    """Ours against the as-stacked floor, with the other floors beside it."""
    floor = find(rows, "bayspec_jax_floor", k_mid, "as-stacked")
    if not (ours and floor):
        return [], []
    rf = ours["vg_steady_us"] / floor["vg_steady_us"]
    ok = rf <= TARGET_RATIO_VS_FLOOR
    out = [f"- value+grad at K={k_mid}{tag}: ours / floor = {ours['vg_steady_us']:.1f} / "
           f"{floor['vg_steady_us']:.1f} us = **{rf:.2f}x** (target <= "
           f"{TARGET_RATIO_VS_FLOOR:g}x: {'MET' if ok else 'NOT MET'}); value only: "
           f"{ours['value_steady_us'] / floor['value_steady_us']:.2f}x"]
    verdicts = [f"ours/floor at K={k_mid}: {rf:.2f}x ({'met' if ok else 'not met'}, "
                "target <= 1.5x)"]
    padded = find(rows, "bayspec_jax_floor", k_mid, "padded-units")
    if padded:
        out.append(f"  - floor on padded per-unit DRM stacks (the previous layout): "
                   f"{padded['vg_steady_us']:.1f} us")
    hf = find(rows, "floor", k_mid)
    if hf:
        out.append(f"  - the harness's own floor (bare JAX on ELISA's unpadded arrays, one "
                   f"trapezoid per bin): {hf['vg_steady_us']:.1f} us "
                   f"(ours {ours['vg_steady_us'] / hf['vg_steady_us']:.2f}x of it)")
    return out, verdicts


def compile_ratios(rows, k_big) -> tuple[list[str], list[str]]:
    """Compile time at the largest K against K=1, ours and the peers."""
    c1 = find(rows, "bayspec_jax", 1, "args")
    cb = find(rows, "bayspec_jax", k_big, "args")
    if not (c1 and cb and k_big != 1):
        return [], []
    rv = cb["value_first_s"] / c1["value_first_s"]
    rg = cb["vg_first_s"] / c1["vg_first_s"]
    ok = max(rv, rg) <= TARGET_COMPILE_RATIO
    out = [f"- compile time K={k_big} / K=1: value {cb['value_first_s']:.2f} / "
           f"{c1['value_first_s']:.2f} s = **{rv:.2f}x**, value+grad "
           f"{cb['vg_first_s']:.2f} / {c1['vg_first_s']:.2f} s = **{rg:.2f}x** "
           f"(target <= {TARGET_COMPILE_RATIO:g}x: {'MET' if ok else 'NOT MET'})"]
    verdicts = [f"compile K={k_big}/K=1: value {rv:.2f}x, v+g {rg:.2f}x "
                f"({'met' if ok else 'not met'}, target <= 2x)"]
    if cb.get("vg_first_cpu_s") and c1.get("vg_first_cpu_s"):
        out.append(f"  - the same in CPU seconds of the process (less sensitive to other "
                   f"processes on the machine): value {cb['value_first_cpu_s']:.2f} / "
                   f"{c1['value_first_cpu_s']:.2f} s = "
                   f"{cb['value_first_cpu_s'] / c1['value_first_cpu_s']:.2f}x, value+grad "
                   f"{cb['vg_first_cpu_s']:.2f} / {c1['vg_first_cpu_s']:.2f} s = "
                   f"{cb['vg_first_cpu_s'] / c1['vg_first_cpu_s']:.2f}x")
    for tool, variant in (("bayspec_jax", "closure"), ("jaxspec", "sub"), ("elisa", None)):
        a, b = find(rows, tool, 1, variant), find(rows, tool, k_big, variant)
        if a and b:
            out.append(f"  - {row_label(a)}: v+g compile {b['vg_first_s']:.2f} / "
                       f"{a['vg_first_s']:.2f} s = {b['vg_first_s'] / a['vg_first_s']:.2f}x")
    return out, verdicts


def ratios(rows, ks) -> tuple[list[str], list[str]]:
    """Lines of ratio text and a list of verdict lines."""
    k_mid = 16 if 16 in ks else max(ks)
    k_big = 64 if 64 in ks else max(ks)
    ours = find(rows, "bayspec_jax", k_mid, "args")
    tag = "" if k_mid == 16 else f" (K=16 not run; using K={k_mid})"
    out, verdicts = [], []
    for lines, verdict in (peer_ratios(rows, k_mid, tag, ours),
                           floor_ratios(rows, k_mid, tag, ours), compile_ratios(rows, k_big)):
        out += lines
        verdicts += verdict
    return out, verdicts


# ------------------------------------------------------------------------------- RESULTS.md --

def versions(rows) -> dict:
    ours = next((r["env"] for r in rows if r.get("tool") == "bayspec_jax" and "env" in r), {})
    v = {"ours": {k: ours.get(k) for k in ("python", "jax", "jaxlib", "numpy", "equinox",
                                           "bayspec_jax")}}
    for tool, key in (("bayspec", "versions"), ("jaxspec", "env"), ("elisa", "env")):
        r = next((r for r in rows if r.get("tool") == tool and key in r), None)
        if r:
            v[tool] = {k: val for k, val in r[key].items()
                       if k in ("bayspec", "numba", "numpy", "python", "jax", "jaxlib", "numpyro",
                                "jaxspec", "astro-elisa", "equinox", "flax")}
    return v


def run_lines(args, argv, wall_s) -> list[str]:
    """The command, the run's settings and the code measured."""
    unmeasured = args.code_info.get("uncommitted_changes_not_measured", [])
    return ["## Command", "", "```", harness.command_line("bench_loglike.py", argv), "```", "",
            *([f"(This file was rendered again from that run's raw results with "
               f"`--from-results {args.from_results}`; nothing was re-measured.)", ""]
              if args.from_results else []),
            f"Ks {','.join(map(str, args.ks))}, {args.repeat} repetition(s) (ours and the peers "
            f"interleaved, each K of ours in a fresh process), steady budget {args.budget} s per "
            f"timing, vmap batch {args.batch} at K in {sorted(args.vmap_ks)}; total wall time "
            f"{wall_s / 60:.1f} min.", "",
            "## Code measured", "", f"- {args.code_info['description']} (`--code {args.code}`)"
            + ("; uncommitted changes present in the checkout but not measured: "
               + ", ".join(x[3:] for x in unmeasured) if unmeasured else ""), ""]


def machine_lines(m, ours_args, loads) -> list[str]:
    devices = sorted({d for r in ours_args for d in r.get("env", {}).get("devices", [])})
    placement = ("CPU only" if all("cpu" in d.lower() for d in devices)
                 else f"ours on JAX devices {', '.join(devices)} (the peers on the CPU)")
    return ["## Machine", "",
            f"- nproc {m['nproc']} (os.cpu_count {m['cpu_count']}), CPU `{m['cpu_model']}`, "
            f"memory {m['memory']}, {m['platform']}",
            f"- {placement}, float64."
            + (f" 1-minute load average seen by our workers: {min(loads):.1f} .. "
               f"{max(loads):.1f}" if loads else ""), ""]


def write_results(path, args, argv, rows, table, ratio_lines, verdicts, wall_s, loads) -> None:
    m = harness.machine_info()
    ours_args = [r for r in rows if r.get("tool") == "bayspec_jax" and r.get("variant") == "args"
                 and "error" not in r]
    k1 = find(rows, "bayspec_jax", 1, "args")
    lines = [*harness.report_header(
                "Likelihood benchmark: JOINT (GBM NaI + BGO, PGSTAT, cutoff power law)",
                "bench_loglike.py"),
             *run_lines(args, argv, wall_s), *machine_lines(m, ours_args, loads),
             "## Versions", ""]
    for tool, vals in versions(rows).items():
        lines.append(f"- {tool}: " + ", ".join(f"{k} {val}" for k, val in vals.items() if val))
    lines += ["", "## Results", "", table, "", "## Ratios against the targets", "",
              *ratio_lines, "", "## Reading", ""]
    lines += reading(rows, verdicts, k1, ours_args, loads, m)
    harness.write_report(path, lines)


def reading_closure(rows, ours_args) -> list[str]:
    cl = {r["K"]: r for r in rows if r.get("tool") == "bayspec_jax"
          and r.get("variant") == "closure" and "error" not in r}
    ar = {r["K"]: r for r in ours_args}
    both = sorted(set(cl) & set(ar))
    if not both:
        return []
    parts = [f"K={k}: value {cl[k]['value_steady_us']:.0f} vs "
             f"{ar[k]['value_steady_us']:.0f} us, "
             f"v+g {cl[k]['vg_steady_us']:.0f} vs {ar[k]['vg_steady_us']:.0f} us"
             for k in both]
    rv = [ar[k]["value_steady_us"] / cl[k]["value_steady_us"] for k in both]
    rg = [ar[k]["vg_steady_us"] / cl[k]["vg_steady_us"] for k in both]
    return ["- `Data` closed over (arrays become XLA constants, as in a typical NumPyro "
            "potential) vs arrays as arguments: " + "; ".join(parts) + f". Arguments / "
            f"closure: value {min(rv):.2f}..{max(rv):.2f}x, value+grad "
            f"{min(rg):.2f}..{max(rg):.2f}x. A closure that is faster gains from the "
            "per-call flattening of the `Stack` pytrees it avoids and from XLA folding "
            "data-only sub-expressions of the statistic at compile time."]


def reading_layout(rows) -> list[str]:
    def by_k(variant):
        return {r["K"]: r for r in rows if r.get("tool") == "bayspec_jax_floor"
                and r.get("variant") == variant and "error" not in r}

    padded, p = by_k("padded-units"), by_k("as-stacked")
    if not (padded and p):
        return []
    parts = ", ".join(f"K={k} {p[k]['vg_steady_us']:.0f} vs {padded[k]['vg_steady_us']:.0f} us"
                      for k in sorted(set(padded) & set(p)))
    return ["- Layout: the floor's value+grad on the library's layout (groups on one flat "
            "axis, one vector-matrix product per photon grid) vs padded per-unit DRM "
            f"stacks: {parts}."]


def reading_setup(ours_args) -> list[str]:
    builds = sorted((r["K"], r) for r in ours_args if "build_data_s" in r)
    if not builds:
        return []
    parts = [f"K={k}: " + (f"files {r['build_files_s']:.1f} s + " if k == 1 else
                           f"{2 * k} units {r['build_copies_s']:.1f} s + ")
             + f"Data {r['build_data_s']:.1f} s" for k, r in builds]
    out = ["- Setup of ours (median): " + "; ".join(parts) + ". `Data(...)` reads each "
           "unit's grouped arrays (group sums on the host) and lays out the stacks."]
    cold = [r["cold_first_compile_s"] for _, r in builds if isinstance(
        r.get("cold_first_compile_s"), dict)]
    if cold:
        out.append(f"- The first compile in a fresh process (the warm-up, on a Data holding "
                   f"the BGO unit alone; not in the table) took {cold[0]['value']:.1f} s "
                   f"(value) and {cold[0]['vg']:.1f} s (value+grad).")
    comp = ", ".join(f"K={k} {r['value_first_s']:.2f} / {r['vg_first_s']:.2f} s"
                     for k, r in builds)
    out.append(f"- Compile (value / value+grad) by K: {comp}. The program has the same "
               "shape at every K (one stack, one fold block per photon grid), only the "
               "array sizes grow. Compile times also move with the machine's load (see the "
               "CPU-seconds line under the ratios, when present).")
    return out


PEERS_NOTE = ("- The peers do not compute the same thing: jaxspec has no PGSTAT (its rows use "
              "a Poisson likelihood with the background fixed, or one free background rate "
              "per group), ELISA's PGSTAT integrates the model with one trapezoid per "
              "response bin (bayspec and we use 4); bayspec 0.4.5 has no gradient. Peer "
              "compile times for K>1 are measured in the same process after K=1 (ours in a "
              "fresh process per K).")


def reading(rows, verdicts, k1, ours_args, loads, m) -> list[str]:
    out = []
    if k1:
        out.append(f"- Correctness: JOINT loglike {k1['value']!r} vs bayspec 0.4.5's "
                   f"{REF_LOGLIKE!r} (relative error {k1['loglike_rel_err']:.1e}, required <= "
                   f"{REF_RTOL:g}); gradient finite: {k1['grad_finite']}. The floors agree with "
                   "ours to 1e-10 at every K.")
    if verdicts:
        out.append("- Targets: " + "; ".join(verdicts) + ".")
    else:
        out.append("- Targets: not evaluated (K=16/64 or the peers were not run).")
    out += reading_closure(rows, ours_args) + reading_layout(rows) + reading_setup(ours_args)
    out.append(PEERS_NOTE)
    if loads and max(loads) > m["nproc"]:
        out.append(f"- Caveat: the machine was shared (1-minute load up to {max(loads):.1f} on "
                   f"{m['nproc']} CPUs during our workers), so single numbers carry noise of tens "
                   "of percent; the medians over repetitions and the interleaving of ours with "
                   "the peers make the comparisons fairer, not exact.")
    return out


# ----------------------------------------------------------------------------------------- main --

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="1,4,16,64", help="numbers of JOINT copies (default 1,4,16,64)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="repetitions of the whole suite (default 3)")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="seconds per steady timing (default 2)")
    ap.add_argument("--batch", type=int, default=256, help="vmap batch size (default 256)")
    ap.add_argument("--vmap-ks", default=None,
                    help="Ks with vmap timings (default: those <= 16; at K=64 one batched call "
                         "of 256 sets takes seconds, and the peer harness times vmap at K=1 only)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: K=1,4, 1 repetition, budget 0.3 s; results not written to "
                         "benchmarks/RESULTS.md unless --results is given")
    ap.add_argument("--no-peers", action="store_true", help="skip peers_bench.sh")
    ap.add_argument("--no-peers-setup", dest="peers_setup", action="store_false",
                    help="do not create missing peer venvs (PEERS_SETUP=0)")
    ap.add_argument("--peers-dir", default=PEERS_DIR)
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bayspec_jax_bench"),
                    help="raw results and logs (default $TMPDIR/bayspec_jax_bench)")
    ap.add_argument("--results", default=None,
                    help="markdown report (default benchmarks/RESULTS.md; --quick: none)")
    ap.add_argument("--worker-timeout", type=float, default=1800.0)
    ap.add_argument("--from-results", default=None, metavar="WORKDIR",
                    help="measure nothing: print the table and write RESULTS.md again from the "
                         "raw results of a finished run in WORKDIR")
    ap.add_argument("--code", choices=("head", "worktree"), default="head",
                    help="which bayspec_jax to measure: 'head' (default) = the committed HEAD "
                         "(git archive), 'worktree' = the working tree as it is; either is copied "
                         "once into --workdir so that every repetition measures the same code "
                         "while others edit the checkout")
    # internal: one K measured in a fresh process
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--vmap", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=REPO, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        if args.ks == "1,4,16,64":
            args.ks = "1,4"
        if "--repeat" not in " ".join(argv):
            args.repeat = 1
        if "--budget" not in " ".join(argv):
            args.budget = 0.3
    args.ks = [int(k) for k in str(args.ks).split(",") if k]
    args.vmap_ks = set([k for k in args.ks if k <= 16] if args.vmap_ks is None
                       else [int(k) for k in args.vmap_ks.split(",") if k])
    if args.results is None and not args.quick:
        args.results = os.path.join(HERE, "RESULTS.md")
    return args


RUN_FIELDS = ("ks", "repeat", "budget", "batch", "vmap_ks", "code", "code_info", "no_peers")


def report(args, argv, all_ours, all_peers, wall) -> None:
    table_mod = harness.import_path("peers_bench_table",
                                    os.path.join(args.peers_dir, "peers_bench_table.py"))
    loads = [x for r in all_ours for x in r.get("loadavg_1min", [])]
    rows = table_mod.merge(all_ours + all_peers)  # median over repetitions (the harness's merge)
    for row in rows:  # the merge takes medians of every number, K and n_units included
        for key in ("K", "n_units"):
            if isinstance(row.get(key), float) and row[key].is_integer():
                row[key] = int(row[key])
    table = make_table(rows)
    ratio_lines, verdicts = ratios(rows, args.ks)
    print()
    print(table)
    print()
    print("\n".join(ratio_lines))
    print(f"\nraw results and logs: {args.workdir}  (wall {wall / 60:.1f} min)")
    if args.results:
        write_results(args.results, args, argv, rows, table, ratio_lines, verdicts, wall, loads)
        print(f"wrote {args.results}")


def read_jsonl(path: str) -> list[dict]:
    return [json.loads(x) for x in open(path) if x.strip()] if os.path.exists(path) else []


def write_jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def rerender(args) -> None:
    """The table and RESULTS.md again from a finished run's raw results in `args.from_results`."""
    args.workdir = args.from_results
    with open(os.path.join(args.workdir, "run_info.json")) as f:
        info = json.load(f)
    for name in RUN_FIELDS:
        setattr(args, name, info[name])
    args.vmap_ks = set(args.vmap_ks)
    if args.results is None:
        args.results = os.path.join(HERE, "RESULTS.md")
    report(args, info["argv"], read_jsonl(os.path.join(args.workdir, "ours_results.jsonl")),
           read_jsonl(os.path.join(args.workdir, "peers_results.jsonl")), info["wall_s"])


def measure(args, argv) -> None:
    """Every repetition (ours, then the peers), the raw results, the report."""
    os.makedirs(args.workdir, exist_ok=True)
    args.src = os.path.join(args.workdir, "code")
    args.code_info = harness.snapshot_code(args.code, args.src)
    log(f"measuring {args.code_info['description']}")
    t_start = time.perf_counter()
    all_ours, all_peers = [], []
    with open(os.path.join(args.workdir, "bench_loglike.log"), "w") as logf:
        for rep in range(1, args.repeat + 1):
            log(f"### repetition {rep} / {args.repeat}")
            all_ours += run_ours(args, args.ks, rep, logf)
            if not args.no_peers:
                all_peers += run_peers(args, args.ks, rep, logf)
    wall = time.perf_counter() - t_start
    write_jsonl(os.path.join(args.workdir, "ours_results.jsonl"), all_ours)
    if not args.no_peers:
        write_jsonl(os.path.join(args.workdir, "peers_results.jsonl"), all_peers)
    info = {name: getattr(args, name) for name in RUN_FIELDS}
    info.update(vmap_ks=sorted(args.vmap_ks), argv=argv, wall_s=wall)
    with open(os.path.join(args.workdir, "run_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    report(args, argv, all_ours, all_peers, wall)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker(args)
    elif args.from_results:
        rerender(args)
    else:
        measure(args, argv)


if __name__ == "__main__":
    main()
