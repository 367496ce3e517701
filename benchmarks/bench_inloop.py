#!/usr/bin/env python3
"""Value+grad of the JOINT log-likelihood called from Python and inside one compiled loop, for
bayspec_jax and ELISA 0.3.1 (the best peer of `bench_loglike.py`), side by side in one run.

    python3 benchmarks/bench_inloop.py            # K = 1, 4, 16, 64, 3 rounds; writes INLOOP.md
    python3 benchmarks/bench_inloop.py --quick    # K = 1, 16, 1 round; prints only

A sampler (NumPyro's NUTS, BlackJAX) or a jitted optimiser evaluates the likelihood inside one
XLA program (a `lax.while_loop`), not as one Python call per evaluation. Two timings per tool
and K (JOINT copies as in `bench_loglike.py`: responses scaled by 1 + 1e-3 k):

* **call**: ``jax.jit(jax.value_and_grad(f))`` called from Python, median per call over calls
  cycling through four parameter vectors (what `bench_loglike.py` reports as steady v+g);
* **in loop**: one jitted `lax.fori_loop` of `--n` evaluations, each at the previous parameters
  moved by 1e-9 times the gradient (no two evaluations alike), median per call divided by
  `--n`: the cost of an evaluation without the dispatch of a call.

Ours is `likelihood.loglike` with the stacked arrays passed as arguments; ELISA's is the peer
harness's function (``-deviance_total / 2`` of ELISA's `MaxLikeFit` helper over its
unconstrained parameters), built by the harness's own `load` in ELISA's virtual environment
(``~/.cache/bayspec-peers/elisa``, made by ``../shared/peers-bench/peers_bench.sh``;
`bayspec`'s environment exports the grouping it needs). Each tool and K runs in a fresh
process; rounds interleave the tools and the table gives medians over rounds. Timing helpers
are the harness's `time_steady`.

This file, `harness.py` and `workloads.py` import only the standard library at module level:
ELISA's venv runs this file's worker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from statistics import median

import harness
from harness import HERE, PEERS_DIR, REPO
from workloads import DATA_DIR, THETA0, joint_copies, joint_units, loglike_arrays

TOOLS = ("bayspec_jax", "elisa")


def _timings(vg, args: tuple, theta0, n: int, budget: float) -> dict:
    """Per call and per in-loop evaluation (microseconds) of ``vg(theta, *args)``."""
    import jax
    import numpy as np

    thetas = [jax.numpy.asarray(t)
              for t in harness.parameter_cycle(theta0, np.random.default_rng(0))]

    @jax.jit
    def loop(theta, *rest):
        def step(_, carry):
            theta, total = carry
            value, grad = vg(theta, *rest)
            return theta + 1e-9 * grad, total + value

        return jax.lax.fori_loop(0, n, step, (theta, 0.0))

    call = jax.jit(vg)
    value, grad = call(theta0, *args)
    out = {"value": float(value), "grad": [float(g) for g in np.ravel(grad)]}
    med, calls, _, _ = harness.time_steady(call, [(t, *args) for t in thetas], budget_s=budget)
    out.update(call_us=med * 1e6, call_n=calls)
    med, calls, _, _ = harness.time_steady(loop, [(t, *args) for t in thetas], min_calls=5,
                                           budget_s=budget, warmup=2)
    out.update(loop_us=med * 1e6 / n, loop_n=calls)
    return out


def worker_ours(args) -> dict:
    import jax

    harness.peer_timing()  # float64, no compilation cache (as the peers)
    sys.path.insert(0, REPO)
    import bayspec_jax as bj
    from bayspec_jax.likelihood import loglike
    from bayspec_jax.models import cpl

    data = bj.Data(joint_copies(joint_units(DATA_DIR), args.k))
    leaves, treedef = jax.tree.flatten(loglike_arrays(data))

    def f(theta, arrays):
        return loglike(cpl, theta, *jax.tree.unflatten(treedef, arrays))

    theta0 = jax.numpy.asarray(THETA0)
    out = _timings(jax.value_and_grad(f), (leaves,), theta0, args.n, args.budget)
    out["versions"] = {"jax": jax.__version__, "bayspec_jax": bj.__version__}
    return out


def worker_elisa(args) -> dict:
    import shutil

    import jax
    import numpy as np
    import peers_bench_elisa as peer
    from elisa import MaxLikeFit
    from elisa.models import CutoffPL

    ref = json.load(open(args.ref))
    if args.k == 1:
        datasets = [peer.load("nai", ref), peer.load("bgo", ref)]
    else:
        datasets = [peer.load(name, ref, f"{name}{k}", 1.0 + 1e-3 * k)
                    for k in range(args.k) for name in ("nai", "bgo")]
    helper = MaxLikeFit(datasets, CutoffPL(), stat="pgstat")._helper

    def f(u):
        return -0.5 * helper.deviance_total(u)

    u0 = helper.constr_arr_to_unconstr_arr(peer.theta_bs_to_elisa(np.asarray(ref["theta0"])))
    out = _timings(jax.value_and_grad(f), (), u0, args.n, args.budget)
    out["versions"] = {"jax": jax.__version__, "astro-elisa": harness.version("astro-elisa")}
    shutil.rmtree(peer.TMP, ignore_errors=True)
    return out


def python_of(tool: str) -> str:
    return sys.executable if tool == "bayspec_jax" else harness.venv_python(tool)


def run_worker(tool: str, k: int, args) -> dict:
    cmd = [python_of(tool), os.path.abspath(__file__), "--worker", tool, "--k", str(k),
           "--n", str(args.n), "--budget", str(args.budget), "--ref", args.ref]
    run = harness.run_worker(cmd, timeout=args.worker_timeout,
                             env=dict(os.environ, PYTHONPATH=PEERS_DIR))
    if run.rc or not run.results:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{tool} K={k} failed (rc {run.rc}): {shlex.join(cmd)}\n"
                         + "\n".join(tail))
    return run.results[-1]


def table(results: dict, ks: list[int]) -> list[str]:
    rows = []
    for k in ks:
        ours, elisa = ({key: median([r[key] for r in results[(tool, k)]])
                        for key in ("call_us", "loop_us")} for tool in TOOLS)
        rows.append([k, f"{ours['call_us']:.1f}", f"{ours['loop_us']:.1f}",
                     f"{elisa['call_us']:.1f}", f"{elisa['loop_us']:.1f}",
                     f"{elisa['call_us'] / ours['call_us']:.2f}x",
                     f"{elisa['loop_us'] / ours['loop_us']:.2f}x"])
    return harness.table_lines(("K", "ours: call us", "ours: in loop us/eval", "ELISA: call us",
                                "ELISA: in loop us/eval", "ELISA / ours, call",
                                "ELISA / ours, in loop"), rows)


def write_markdown(path: str, argv: list[str], results: dict, ks: list[int], args,
                   wall_s: float) -> None:
    machine = harness.machine_info()
    first = {tool: results[(tool, ks[0])][0] for tool in TOOLS}
    values = ", ".join(f"{tool} {first[tool]['value']:.9f}" for tool in TOOLS)
    harness.write_report(path, [
        *harness.report_header(
            "Value+grad per call and per evaluation inside a compiled loop: ours and ELISA",
            "bench_inloop.py"),
        f"Command: `{harness.command_line('bench_inloop.py', argv)}`",
        "",
        f"{args.rounds} round(s), tools interleaved, each tool and K in a fresh process; "
        f"{wall_s / 60:.1f} min. Code: bayspec_jax at {harness.checkout_commit()}.",
        "",
        f"Machine: nproc {machine['nproc']}, CPU `{machine['cpu_model']}`, {machine['memory']}, "
        f"{machine['platform']}; CPU only, float64. Versions: ours "
        f"{first['bayspec_jax']['versions']}, python {platform.python_version()}; ELISA "
        f"{first['elisa']['versions']}.",
        "",
        f"Log-likelihood at the reference point (K = {ks[0]}): {values} (ELISA integrates the "
        "model with one trapezoid per photon bin, bayspec and ours with four).",
        "",
        *table(results, ks),
        "",
        "(medians over rounds; us = microseconds; `in loop` = one jitted `lax.fori_loop` of "
        f"{args.n} value+grad evaluations, per evaluation)",
    ])


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", default="1,4,16,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=64, help="evaluations per loop (default 64)")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per timing")
    ap.add_argument("--quick", action="store_true", help="K = 1, 16, one round; no file")
    ap.add_argument("--out", default=os.path.join(HERE, "INLOOP.md"))
    ap.add_argument("--ref", default=os.path.join("/tmp", "bayspec_jax_inloop_ref.json"))
    ap.add_argument("--worker-timeout", type=float, default=900.0)
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.ks, args.rounds, args.out = "1,16", 1, None
    return args


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        result = (worker_ours if args.worker == "bayspec_jax" else worker_elisa)(args)
        result.update(tool=args.worker, k=args.k, n=args.n)
        harness.emit(result)
        return
    ks = [int(k) for k in args.ks.split(",")]
    harness.export_peer_reference(args.ref)
    start = time.perf_counter()
    results: dict = {}
    for round_ in range(args.rounds):
        for k in ks:
            for tool in TOOLS:
                r = run_worker(tool, k, args)
                results.setdefault((tool, k), []).append(r)
                harness.log(f"round {round_ + 1} K={k} {tool}: call {r['call_us']:.1f} us, "
                            f"in loop {r['loop_us']:.1f} us/eval")
    print("\n".join(table(results, ks)))
    if args.out:
        write_markdown(args.out, argv, results, ks, args, time.perf_counter() - start)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
