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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared"))
PEERS_DIR = os.path.join(SHARED, "peers-bench")
VENVS = os.environ.get("VENVS", os.path.expanduser("~/.cache/bayspec-peers"))
TOOLS = ("bayspec_jax", "elisa")


def _timings(vg, args: tuple, theta0, n: int, budget: float) -> dict:
    """Per call and per in-loop evaluation (microseconds) of ``vg(theta, *args)``."""
    import jax
    import numpy as np
    import peers_bench_common as common

    rng = np.random.default_rng(0)
    thetas = [theta0] + [theta0 + rng.normal(0, 1e-4, theta0.shape) for _ in range(3)]

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
    med, calls, _, _ = common.time_steady(call, [(t, *args) for t in thetas], budget_s=budget)
    out.update(call_us=med * 1e6, call_n=calls)
    med, calls, _, _ = common.time_steady(loop, [(t, *args) for t in thetas], min_calls=5,
                                          budget_s=budget, warmup=2)
    out.update(loop_us=med * 1e6 / n, loop_n=calls)
    return out


def worker_ours(args) -> dict:
    import jax
    import peers_bench_common  # noqa: F401  float64, no compilation cache (as the peers)

    sys.path[:0] = [REPO, HERE]
    from bench_loglike import THETA0, joint_copies, joint_units

    import bayspec_jax as bj
    from bayspec_jax.likelihood import loglike
    from bayspec_jax.models import cpl

    units = joint_units(os.path.join(SHARED, "data", "bayspec-examples"))
    data = bj.Data(units if args.k == 1 else joint_copies(units, args.k))
    leaves, treedef = jax.tree.flatten(tuple(data.stacked))

    def f(theta, arrays):
        return loglike(cpl, theta, jax.tree.unflatten(treedef, arrays))

    theta0 = jax.numpy.asarray(THETA0)
    out = _timings(jax.value_and_grad(f), (leaves,), theta0, args.n, args.budget)
    out["versions"] = {"jax": jax.__version__, "bayspec_jax": bj.__version__}
    return out


def worker_elisa(args) -> dict:
    import shutil

    import jax
    import numpy as np
    import peers_bench_elisa as harness
    from bench_loglike import _version  # stdlib only: importable in ELISA's venv
    from elisa import MaxLikeFit
    from elisa.models import CutoffPL

    ref = json.load(open(args.ref))
    if args.k == 1:
        datasets = [harness.load("nai", ref), harness.load("bgo", ref)]
    else:
        datasets = [harness.load(name, ref, f"{name}{k}", 1.0 + 1e-3 * k)
                    for k in range(args.k) for name in ("nai", "bgo")]
    helper = MaxLikeFit(datasets, CutoffPL(), stat="pgstat")._helper

    def f(u):
        return -0.5 * helper.deviance_total(u)

    u0 = helper.constr_arr_to_unconstr_arr(harness.theta_bs_to_elisa(np.asarray(ref["theta0"])))
    out = _timings(jax.value_and_grad(f), (), u0, args.n, args.budget)
    out["versions"] = {"jax": jax.__version__, "astro-elisa": _version("astro-elisa")}
    shutil.rmtree(harness.TMP, ignore_errors=True)
    return out


def python_of(tool: str) -> str:
    return sys.executable if tool == "bayspec_jax" else os.path.join(VENVS, tool, "bin", "python")


def run_worker(tool: str, k: int, args) -> dict:
    cmd = [python_of(tool), os.path.abspath(__file__), "--worker", tool, "--k", str(k),
           "--n", str(args.n), "--budget", str(args.budget), "--ref", args.ref]
    env = dict(os.environ, PYTHONPATH=PEERS_DIR)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=args.worker_timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{tool} K={k} failed (rc {proc.returncode}): {shlex.join(cmd)}\n"
                         + "\n".join(tail))
    return json.loads(lines[-1][len("RESULT "):])


def export_reference(path: str) -> None:
    """The grouping and reference values ELISA's loader needs, from bayspec 0.4.5's venv."""
    if os.path.exists(path):
        return
    cmd = [python_of("bsref"), os.path.join(PEERS_DIR, "peers_bench_bayspec.py"),
           "--export", path]
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ,
                                                                  PYTHONPATH=PEERS_DIR))


def table(results: dict, ks: list[int]) -> list[str]:
    lines = ["| K | ours: call us | ours: in loop us/eval | ELISA: call us | "
             "ELISA: in loop us/eval | ELISA / ours, call | ELISA / ours, in loop |",
             "|---|---|---|---|---|---|---|"]
    for k in ks:
        ours, elisa = ({key: median([r[key] for r in results[(tool, k)]])
                        for key in ("call_us", "loop_us")} for tool in TOOLS)
        lines.append(f"| {k} | {ours['call_us']:.1f} | {ours['loop_us']:.1f} | "
                     f"{elisa['call_us']:.1f} | {elisa['loop_us']:.1f} | "
                     f"{elisa['call_us'] / ours['call_us']:.2f}x | "
                     f"{elisa['loop_us'] / ours['loop_us']:.2f}x |")
    return lines


def write_markdown(path: str, argv: list[str], results: dict, ks: list[int], args,
                   wall_s: float) -> None:
    from bench_loglike import checkout_commit, machine_info

    machine = machine_info()
    first = {tool: results[(tool, ks[0])][0] for tool in TOOLS}
    values = ", ".join(f"{tool} {first[tool]['value']:.9f}" for tool in TOOLS)
    text = [
        "# Value+grad per call and per evaluation inside a compiled loop: ours and ELISA",
        "",
        "Written by `benchmarks/bench_inloop.py`; rerun it to refresh this file.",
        "",
        f"Command: `{shlex.join(['python3', 'benchmarks/bench_inloop.py', *argv])}`",
        "",
        f"{args.rounds} round(s), tools interleaved, each tool and K in a fresh process; "
        f"{wall_s / 60:.1f} min. Code: bayspec_jax at {checkout_commit()}.",
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
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(text))


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
        print("RESULT " + json.dumps(result), flush=True)
        return
    ks = [int(k) for k in args.ks.split(",")]
    export_reference(args.ref)
    start = time.perf_counter()
    results: dict = {}
    for round_ in range(args.rounds):
        for k in ks:
            for tool in TOOLS:
                r = run_worker(tool, k, args)
                results.setdefault((tool, k), []).append(r)
                print(f"round {round_ + 1} K={k} {tool}: call {r['call_us']:.1f} us, "
                      f"in loop {r['loop_us']:.1f} us/eval", file=sys.stderr, flush=True)
    print("\n".join(table(results, ks)))
    if args.out:
        write_markdown(args.out, argv, results, ks, args, time.perf_counter() - start)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
