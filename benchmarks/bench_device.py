#!/usr/bin/env python3
"""The JOINT log-likelihood and batch fits on each JAX device of the machine (CPU, GPU), side
by side in one process.

    python3 benchmarks/bench_device.py            # every device JAX sees
    python3 benchmarks/bench_device.py --quick    # smoke run

What runs, on each device (the accelerator first, then the host CPU through XLA's CPU backend):

* **check**: the JOINT log-likelihood (GBM NaI + BGO, PGSTAT, cutoff power law; the workload
  of `bench_loglike.py`) in float64 against bayspec 0.4.5's -209.82250450302072 (relative
  error), and in float32;
* **K copies** of JOINT (K = 1, 4, 16, 64; copy k's responses scaled by 1 + 1e-3 k): compile
  time (first call of a fresh `jax.jit`) and steady time of value and value+grad, float64 and
  float32 (the float64 stacks cast on the host), the stacked arrays passed as arguments;
* **vmap**: value+grad over B parameter sets (B = 256, 4096) at K = 1 and 16, per set;
* **batch fits**: `infer.batch_maximum_likelihood` (BFGS + Hessian, one jitted `vmap`) of N
  simulated JOINT spectra (N = 256, 4096): the first call (compile + fit) and a second call on
  other spectra of the same shape, per spectrum. A CPU row is skipped when the smaller N
  predicts more than `--max-fit-s` seconds.

On a machine without an accelerator only the CPU rows are measured. Timing uses the peer
harness's helpers (../shared/peers-bench/peers_bench_common.py, through `harness.py`): steady
times are medians over calls cycling through four parameter vectors (every call blocked until
ready), as many calls as fit in about `--budget` seconds, after two warm-up calls. It prints
the tables and writes ``benchmarks/DEVICE.md`` (or `--out`) with the command, the machine and
the versions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time

import harness
from harness import HERE, REPO
from workloads import DATA_DIR, REF_LOGLIKE, THETA0, joint_copies, joint_units, loglike_arrays

harness.peer_timing()  # float64, no compilation cache
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, REPO)
import bayspec_jax as bj  # noqa: E402
from bayspec_jax import infer, models, simulate  # noqa: E402
from bayspec_jax.likelihood import loglike  # noqa: E402

FIT_PARAMS = {"alpha": bj.Par(-1.0, bj.unif(-8, 4)), "log_ec": bj.Par(2.0, bj.unif(0, 4)),
              "log_a": bj.Par(0.0, bj.unif(-10, 10))}


def steady_s(fn, arg_list, budget: float, min_calls: int = 5) -> float:
    """Median seconds per call, cycling through `arg_list`, after two warm-up calls."""
    return harness.steady_s(fn, arg_list, budget, min_calls=min_calls, warmup=2)


def precision(dtype: str):
    return contextlib.nullcontext() if dtype == "float64" else jax.enable_x64(False)


def device_label(device) -> str:
    kind = getattr(device, "device_kind", "") or ""
    return f"{device.platform}" + (f" ({kind})" if kind and kind.lower() != "cpu" else "")


def as_dtype(tree, dtype: str):
    """`tree`'s floating arrays in `dtype` (integers in int32 with float32), on the host."""
    def cast(leaf):
        leaf = np.asarray(leaf)
        if dtype == "float64":
            return leaf
        if np.issubdtype(leaf.dtype, np.floating):
            return leaf.astype(np.float32)
        return leaf.astype(np.int32) if np.issubdtype(leaf.dtype, np.integer) else leaf
    return jax.tree.map(cast, tree)


def ll(theta, *arrays):
    return loglike(models.cpl, theta, *arrays)


def time_copies(rows: dict, label: str, dtype: str, k: int, thetas: list,
                budget: float) -> None:
    """Compile and steady time of value and value+grad at K copies; the check at K=1."""
    f_value = jax.jit(ll)
    f_vg = jax.jit(jax.value_and_grad(ll))
    value_first, value = harness.time_first(f_value, *thetas[0])
    vg_first, (_, grad) = harness.time_first(f_vg, *thetas[0])
    if k == 1:
        rows["check"].append(
            (label, dtype, float(value), abs(float(value) - REF_LOGLIKE) / abs(REF_LOGLIKE),
             bool(np.all(np.isfinite(np.asarray(grad))))))
    rows["copies"].append((label, dtype, k, value_first, steady_s(f_value, thetas, budget),
                           vg_first, steady_s(f_vg, thetas, budget)))
    print(f"{label} {dtype} K={k}: {rows['copies'][-1][3:]}", flush=True)


def time_vmap(rows: dict, label: str, k: int, arrays: tuple, args, rng) -> None:
    """Value+grad under `jax.vmap` over each batch size, per parameter set."""
    in_axes = (0,) + (None,) * len(arrays)
    f_batch = jax.jit(jax.vmap(jax.value_and_grad(ll), in_axes=in_axes))
    for b in args.batches:
        batch = np.asarray(THETA0) + rng.normal(0, 0.01, (b, 3))
        batch_args = [(jnp.asarray(batch * s), *arrays) for s in (1, 1 + 1e-9)]
        first, _ = harness.time_first(f_batch, *batch_args[0])
        rows["vmap"].append((label, k, b, first, steady_s(
            f_batch, batch_args, args.budget, min_calls=3) / b))
        print(f"{label} vmap K={k} B={b}: {rows['vmap'][-1][3:]}", flush=True)


def time_fits(rows: dict, device, label: str, args, template, spectra) -> None:
    """Batch fits of each number of spectra: first call, second call, convergence."""
    per_spectrum = None
    for n in args.spectra:
        if (device.platform == "cpu" and per_spectrum is not None
                and per_spectrum * n > args.max_fit_s):
            rows["fit"].append((label, n, None, None, None, per_spectrum * n))
            continue
        src_a, bkg_a, src_b, bkg_b = spectra[n]
        first, _ = harness.time_first(lambda s, b: infer.batch_maximum_likelihood(
            models.cpl, FIT_PARAMS, template, s, b).best, src_a, bkg_a)
        t0 = time.perf_counter()
        result = infer.batch_maximum_likelihood(models.cpl, FIT_PARAMS, template, src_b, bkg_b)
        second = time.perf_counter() - t0
        per_spectrum = second / n
        rows["fit"].append((label, n, first, second, float(np.mean(result.converged)), None))
        print(f"{label} fit N={n}: first {first:.2f} s, second {second:.2f} s", flush=True)


def run_device(device, args, arrays_by_k, template, spectra, rng) -> dict:
    """Every measurement on one device; returns rows of the tables."""
    label = device_label(device)
    rows = {"check": [], "copies": [], "vmap": [], "fit": []}
    thetas64 = harness.parameter_cycle(THETA0, rng)
    with jax.default_device(device):
        for dtype in ("float64", "float32"):
            with precision(dtype):
                for k, host_arrays in arrays_by_k.items():
                    arrays = jax.device_put(as_dtype(host_arrays, dtype), device)
                    thetas = [(jnp.asarray(t, dtype=dtype), *arrays) for t in thetas64]
                    time_copies(rows, label, dtype, k, thetas, args.budget)
                    if dtype == "float64" and k in args.vmap_ks:
                        time_vmap(rows, label, k, arrays, args, rng)
        time_fits(rows, device, label, args, template, spectra)
    return rows


def simulated(n: int, pairs: list, seed: int) -> tuple:
    """Source and background counts of `n` JOINT spectra, per unit, twice (two seeds)."""
    out = []
    for s in (seed, seed + 1):
        keys = jax.random.split(jax.random.PRNGKey(s), len(pairs))
        draws = [simulate.draws(key, models.cpl, THETA0, unit, n)
                 for key, (_, unit) in zip(keys, pairs)]
        out += [[np.asarray(d.src_counts) for d in draws],
                [np.asarray(d.bkg_counts) for d in draws]]
    return tuple(out)


def fit_cells(d, n, first, second, conv, predicted) -> list:
    if first is None:
        return [d, n, f"skipped (predicted {predicted:.0f} s)", "", "", ""]
    return [d, n, f"{first:.2f}", f"{second:.2f}", f"{second / n * 1e3:.3f}", f"{conv:.3f}"]


def render(rows: dict, args, wall: float) -> str:
    m = harness.machine_info()
    devices = ", ".join(f"{d.platform}: {getattr(d, 'device_kind', '?')}" for d in jax.devices())
    lines = [
        *harness.report_header("The JOINT log-likelihood and batch fits, per device",
                               "bench_device.py"),
        f"Command: `{harness.command_line('bench_device.py', args.argv)}` "
        f"({wall / 60:.1f} min; steady times are medians over about {args.budget} s of calls). "
        f"Code: bayspec_jax at commit {harness.checkout_commit()}.",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['platform']}; devices {devices}; python "
        f"{platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}.",
        "",
        "## Check: JOINT at bayspec's parameters",
        "",
        *harness.table_lines(
            ("device", "dtype", "loglike", "relative error vs -209.82250450302072",
             "gradient finite"),
            ([d, t, f"{v:.14g}", f"{e:.1e}", g] for d, t, v, e, g in rows["check"])),
        "",
        "## K copies of JOINT (2K units): compile and steady time",
        "",
        *harness.table_lines(
            ("device", "dtype", "K", "value compile s", "value us", "value+grad compile s",
             "value+grad us"),
            ([d, t, k, f"{vf:.2f}", f"{vs * 1e6:.1f}", f"{gf:.2f}", f"{gs * 1e6:.1f}"]
             for d, t, k, vf, vs, gf, gs in rows["copies"])),
        "",
        "## vmap: value+grad over B parameter sets (float64)",
        "",
        *harness.table_lines(("device", "K", "B", "compile s", "us per set"),
                             ([d, k, b, f"{f:.2f}", f"{s * 1e6:.2f}"]
                              for d, k, b, f, s in rows["vmap"])),
        "",
        "## Batch maximum-likelihood fits of N simulated JOINT spectra (float64)",
        "",
        "`infer.batch_maximum_likelihood` (optimistix BFGS, autodiff Hessian, one jitted vmap). "
        "`first`: compile + fit; `second`: other spectra of the same shape, no compile.",
        "",
        *harness.table_lines(("device", "N", "first s", "second s", "ms per spectrum",
                              "converged"), (fit_cells(*row) for row in rows["fit"])),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--ks", default="1,4,16,64")
    parser.add_argument("--vmap-ks", default="1,16")
    parser.add_argument("--batches", default="256,4096")
    parser.add_argument("--spectra", default="256,4096")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per steady timing")
    parser.add_argument("--max-fit-s", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="K = 1, 4; small batches")
    parser.add_argument("--out", default=os.path.join(HERE, "DEVICE.md"))
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.ks, args.vmap_ks, args.batches, args.spectra, args.budget = "1,4", "1", "64", "32", 0.1
    args.ks, args.vmap_ks, args.batches, args.spectra = (
        [int(x) for x in s.split(",")] for s in (args.ks, args.vmap_ks, args.batches, args.spectra))
    return args


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    base = joint_units(args.data_dir)
    arrays_by_k = {k: loglike_arrays(bj.Data(joint_copies(base, k))) for k in args.ks}
    template = bj.Data(base)
    spectra = {n: simulated(n, base, seed=n) for n in args.spectra}
    print(f"built in {time.perf_counter() - t_start:.1f} s", flush=True)
    cpu = jax.devices("cpu")[0]
    devices = [d for d in jax.devices() if d.platform != "cpu"] + [cpu]
    rows = {"check": [], "copies": [], "vmap": [], "fit": []}
    for device in devices:
        for key, value in run_device(device, args, arrays_by_k, template, spectra, rng).items():
            rows[key] += value
        text = render(rows, args, time.perf_counter() - t_start)
        with open(args.out, "w") as handle:  # after each device, in case a later one fails
            handle.write(text)
    print(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
