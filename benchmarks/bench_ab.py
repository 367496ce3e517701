"""A/B of the library at two commits on the JOINT workload, in interleaved fresh processes.

For a change that should cost nothing (a refactor), this measures, for the library at `--base`
(a commit) and at `--code` (``worktree`` or a commit), each in its own fresh process per round,
rounds alternating which goes first:

* value and value+grad per call from Python (``likelihood.make_loglike``) at each K of `--ks`;
* value+grad inside one jitted `lax.fori_loop` of 64 evaluations, per evaluation (as
  `bench_inloop.py`; how samplers and jitted optimisers call a likelihood);
* `jax.vmap` of value+grad over `--vmap` parameter sets at K = 16, per set;
* `infer.batch_maximum_likelihood` of `--batch` simulated JOINT spectra: the first call (with
  compilation) and the second (steady), per spectrum.

The table gives medians over rounds, the ratio new / base (> 1: slower), and the median of the
ratios taken within each round (paired). Both sides use only
the public API that both commits have (``Data.stacked`` is kept as an alias after the split).
Writes `AB.md` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import bench_inloop
import harness
import workloads

LOOP_N = 64


def export_code(rev: str, dest: str) -> str:
    """`bayspec_jax` at commit `rev` (or the working tree for ``worktree``) copied to `dest`."""
    if rev == "worktree":
        harness.snapshot_code("worktree", dest)
    else:
        os.makedirs(dest, exist_ok=True)
        archive = subprocess.run(["git", "-C", harness.REPO, "archive", rev, "bayspec_jax"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


# -- worker --------------------------------------------------------------------------------


def _joint(k: int):
    import bayspec_jax as bj

    return bj.Data(workloads.joint_copies(workloads.joint_units(), k))


def per_call(data, thetas, budget: float) -> dict:
    from bayspec_jax import likelihood, models

    value = likelihood.make_loglike(models.cpl, data)
    value_grad = likelihood.make_loglike(models.cpl, data, grad=True)
    out = {}
    for name, fn in (("value", value), ("vg", value_grad)):
        fn(thetas[0])
        med, _, _, _ = harness.time_steady(fn, [(t,) for t in thetas], budget_s=budget)
        out[f"{name}_us"] = med * 1e6
    return out


def in_loop(data, budget: float) -> float:
    """Value+grad per evaluation inside a jitted fori_loop (`bench_inloop`'s timing)."""
    import jax
    import jax.numpy as jnp
    from bayspec_jax import likelihood, models

    def vg(theta, *rest):
        return jax.value_and_grad(lambda p: likelihood.loglike(models.cpl, p, *rest))(theta)

    timings = bench_inloop._timings(vg, workloads.loglike_arrays(data),
                                    jnp.asarray(workloads.THETA0), LOOP_N, budget)
    return timings["loop_us"]


def vmapped(data, n_sets: int, budget: float) -> float:
    import jax
    import jax.numpy as jnp
    from bayspec_jax import likelihood, models

    arrays = workloads.loglike_arrays(data)
    batch = harness.batch_around(jnp.asarray(workloads.THETA0), n_sets)
    fn = jax.jit(jax.vmap(jax.value_and_grad(
        lambda p, *rest: likelihood.loglike(models.cpl, p, *rest)), in_axes=(0,) + (None,) *
        len(arrays)))
    med, _, _, _ = harness.time_steady(fn, [(batch, *arrays)], min_calls=5, budget_s=budget,
                                       warmup=2)
    return med * 1e6 / n_sets


def batch_fit(n: int) -> dict:
    import jax
    import bayspec_jax as bj
    from bayspec_jax import infer, models, simulate

    data = _joint(1)
    truth = workloads.THETA0
    keys = jax.random.split(jax.random.PRNGKey(0), len(data))
    sims = [simulate.draws(k, models.cpl, truth, unit, n) for k, unit in zip(keys, data.units)]
    params = {"alpha": bj.Par(truth[0], bj.unif(-3, 1)),
              "log_ec": bj.Par(truth[1], bj.unif(1, 4)),
              "log_a": bj.Par(truth[2], bj.unif(-2, 6))}
    src = [s.src_counts for s in sims]
    bkg = [s.bkg_counts for s in sims]
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        fit = infer.batch_maximum_likelihood(models.cpl, params, data, src, bkg)
        times.append(time.perf_counter() - t0)
    return {"fit_first_ms": times[0] * 1e3 / n, "fit_steady_ms": times[1] * 1e3 / n,
            "fit_converged": float(fit.converged.mean()), "fit_stat_sum": float(fit.stat.sum())}


def worker(args) -> dict:
    sys.path.insert(0, args.code_dir)
    import jax

    jax.config.update("jax_enable_x64", True)
    import bayspec_jax
    import jax.numpy as jnp
    import numpy as np

    if not bayspec_jax.__file__.startswith(os.path.abspath(args.code_dir)):
        raise SystemExit(f"imported {bayspec_jax.__file__}, not the code in {args.code_dir}")
    rng = np.random.default_rng(0)
    thetas = [jnp.asarray(t) for t in harness.parameter_cycle(workloads.THETA0, rng)]
    out = {"label": args.label}
    for k in args.ks:
        data = _joint(k)
        calls = per_call(data, thetas, args.budget)
        out[f"K{k}_value_us"], out[f"K{k}_vg_us"] = calls["value_us"], calls["vg_us"]
        out[f"K{k}_loop_us"] = in_loop(data, args.budget)
        if k == 16 and args.vmap:
            out[f"K16_vmap{args.vmap}_us"] = vmapped(data, args.vmap, args.budget)
    if args.batch:
        out.update(batch_fit(args.batch))
    return out


# -- driver --------------------------------------------------------------------------------


def rows(results: dict, labels: tuple) -> list:
    """Per measurement: each side's median, their ratio, and the median of the ratios within
    rounds (paired: the machine's drift between rounds cancels)."""
    keys = [k for k in results[labels[0]][0] if k != "label"]
    table = []
    for key in keys:
        medians = [statistics.median(r[key] for r in results[label]) for label in labels]
        ratio = medians[1] / medians[0] if medians[0] else float("nan")
        paired = statistics.median(
            new[key] / base[key] if base[key] else float("nan")
            for base, new in zip(results[labels[0]], results[labels[1]]))
        table.append([key, *(f"{m:.4g}" for m in medians), f"{ratio:.3f}", f"{paired:.3f}"])
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="commit measured as the baseline")
    parser.add_argument("--code", default="worktree", help="'worktree' or a commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ks", default="1,16,64")
    parser.add_argument("--vmap", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--budget", type=float, default=1.5)
    parser.add_argument("--out", default=os.path.join(harness.HERE, "AB.md"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code-dir", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.ks = [int(k) for k in str(args.ks).split(",")]
    if args.worker:
        harness.emit(worker(args))
        return
    scratch = tempfile.mkdtemp(prefix="bench_ab_")
    labels = ("base", "new")
    dirs = {"base": export_code(args.base, os.path.join(scratch, "base")),
            "new": export_code(args.code, os.path.join(scratch, "new"))}
    results = {label: [] for label in labels}
    for round_ in range(args.rounds):
        order = labels if round_ % 2 == 0 else labels[::-1]
        for label in order:
            harness.log(f"round {round_ + 1}: {label}")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--code-dir",
                   dirs[label], "--label", label, "--ks", ",".join(map(str, args.ks)),
                   "--vmap", str(args.vmap), "--batch", str(args.batch),
                   "--budget", str(args.budget), "--base", args.base]
            run = harness.run_worker(cmd)
            if run.rc != 0 or not run.results:
                raise SystemExit(f"{label} worker failed (rc {run.rc}):\n{run.stderr[-3000:]}")
            results[label].append(run.results[-1])
    header = ["measurement", f"base ({args.base})", f"new ({args.code})", "new / base",
              "paired"]
    lines = harness.report_header("A/B of two commits on JOINT", "bench_ab.py")
    lines += [f"Rounds: {args.rounds} (fresh process each, alternating order); medians.", "",
              *harness.table_lines(header, rows(results, labels)), "",
              "us: microseconds per call (`_loop_` per evaluation inside a jitted fori_loop of "
              f"{LOOP_N}; `vmap` per parameter set); ms: per spectrum of the batch fit.", "",
              "Raw: " + json.dumps(results)]
    harness.write_report(args.out, lines)
    print("\n".join(lines[:-1]))


if __name__ == "__main__":
    main()
