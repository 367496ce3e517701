"""Fold operators on real responses: the plain product, banded products and sparse forms.

`data.stack.band_plan` decides, per wide block, between one plain ``flux @ drm`` product and a
few *banded* products (columns cut into bands, each folded over its own photon window). This
script measures that choice on the example responses, in one process, variants interleaved:

* the whole log-likelihood (value and value+grad, jitted, arrays as arguments) with the block
  `Data` builds (``plan``), with the plain product forced (``plain``), and with 2, 4 and 8
  bands forced (``bands N``);
* the fold alone (value+grad of ``0.5 |flux @ drm|^2``) with the dense matrix, the plan's
  bands, and two general sparse forms over the non-zeros: a COO gather + `segment_sum`, and
  `jax.experimental.sparse.BCOO`.

Cases: GBM NaI and BGO grouped as in JOINT (PGSTAT), and 16 copies of the pair; Chandra ACIS
3C 273 with its file grouping and ungrouped (C-stat, 0.5-7 keV), and 16 ungrouped copies with
slightly scaled ARFs. It prints a table and writes ``benchmarks/FOLD.md``.

    python3 benchmarks/bench_fold.py            # about 3 minutes
    python3 benchmarks/bench_fold.py --quick    # smoke run
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
from workloads import DATA_DIR, PERTURBATION, THETA0, joint_copies, joint_units

harness.peer_timing()  # float64, no compilation cache
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402

sys.path.insert(0, REPO)
import bayspec_jax as bj  # noqa: E402
from bayspec_jax import models  # noqa: E402
from bayspec_jax.data import stack as stack_module  # noqa: E402
from bayspec_jax.fold import fold_block  # noqa: E402
from bayspec_jax.likelihood import make_loglike  # noqa: E402

XRAY_PARAMS = (-1.6, 2.0, -2.0)  # cpl for 3C 273
BUILDS = {"plan": None, "plain": None, "bands 2": 2, "bands 4": 4, "bands 8": 8}


def cases(data_dir: str, copies: int) -> dict[str, tuple[list, tuple]]:
    """``name -> (pairs for Data, model parameters)``."""
    def path(*parts):
        return os.path.join(data_dir, *parts)

    gbm = joint_units(data_dir)
    x = "XRAY-sherpa-3c273"
    acis = bj.DataUnit(src=path(x, "3c273.pi"), bkg=path(x, "3c273_bg.pi"),
                       rmf=path(x, "3c273.rmf"), arf=path(x, "3c273.arf"), notc=[0.5, 7.0],
                       stat="cstat")
    ungrouped = acis.replace(grpg={"max_bin": 1})

    def scaled_arf(unit, k):
        arf = unit.arf
        return unit.replace(arf=bj.Auxiliary(arf.phbin,
                                             np.asarray(arf.srp) * (1 + PERTURBATION * k)))

    return {
        "GBM NaI + BGO (JOINT)": (gbm, THETA0),
        f"GBM NaI + BGO x {copies}": (joint_copies(gbm, copies), THETA0),
        "ACIS 3C 273, file grouping": ([("acis", acis)], XRAY_PARAMS),
        "ACIS 3C 273, ungrouped": ([("acis", ungrouped)], XRAY_PARAMS),
        f"ACIS 3C 273, ungrouped x {copies}": (
            [(f"acis{k}", scaled_arf(ungrouped, k)) for k in range(copies)], XRAY_PARAMS),
    }


@contextlib.contextmanager
def forced(n_bands: int | None):
    """Build `Data` with the plain product (`None`) or exactly `n_bands` bands (the band plan's
    knobs in `data.stack`)."""
    saved = (stack_module.MAX_BANDS, stack_module.BAND_OVERHEAD, stack_module.MIN_BAND_SAVING)
    if n_bands is None:
        stack_module.MIN_BAND_SAVING = np.inf
    else:
        stack_module.MAX_BANDS, stack_module.BAND_OVERHEAD = n_bands, 0
        stack_module.MIN_BAND_SAVING = -np.inf
    try:
        yield
    finally:
        stack_module.MAX_BANDS, stack_module.BAND_OVERHEAD, stack_module.MIN_BAND_SAVING = saved


def fold_blocks(data) -> list[tuple[str, np.ndarray, object]]:
    """Each fold block of `data`: ``(description, DRM (nphot, column) as the plain product
    would store it, the block if banded else None)``. The one function here that reads the
    stacked form (`data.stacked` and its blocks' fields)."""
    out = []
    for stack in data.stacked:
        for block in stack.blocks:
            if isinstance(block, stack_module.BandedBlock):
                columns = block.take.shape[0]
                stored = block.n_stored / (block.nphot * columns)
                out.append((f"{len(block.bands)} bands ({stored:.0%} of {block.nphot}x{columns})",
                            np.asarray(block.dense()[0]), block))
            else:
                drm = block.drm[0] if block.take is None else block.drm[0][:, block.take]
                out.append(("plain " + "x".join(str(d) for d in block.drm.shape[1:]),
                            np.asarray(drm), None))
    return out


def describe(data) -> str:
    return "; ".join(text for text, _, _ in fold_blocks(data))


def fold_variants(drms: list[np.ndarray], banded: list) -> dict:
    """``name -> (function of flux list, operand)``: the fold alone, value+grad."""
    def loss(rates):
        return 0.5 * sum(jnp.sum(r * r) for r in rates)

    coo_ops, sizes = [], []  # sizes: static, out of the pytree
    for drm in drms:
        rows, cols = np.nonzero(drm)
        coo_ops.append((jnp.asarray(rows), jnp.asarray(cols), jnp.asarray(drm[rows, cols])))
        sizes.append(drm.shape[1])

    def coo_fold(fluxes, ops):
        return loss([jax.ops.segment_sum(f[r] * v, c, num_segments=n)
                     for f, (r, c, v), n in zip(fluxes, ops, sizes)])

    variants = {
        "dense": (lambda fluxes, ops: loss([f @ m for f, m in zip(fluxes, ops)]),
                  [jnp.asarray(d) for d in drms]),
        "COO gather + segment_sum": (coo_fold, coo_ops),
        "BCOO (jax.experimental.sparse)": (
            lambda fluxes, ops: loss([m @ f for f, m in zip(fluxes, ops)]),
            [jsparse.BCOO.fromdense(d.T) for d in drms]),
    }
    if any(b is not None for b in banded):
        def banded_fold(fluxes, ops):  # the library's own fold of each block
            return loss([f @ op if b is None else fold_block(op, f[None])
                         for f, op, b in zip(fluxes, ops, banded)])
        ops = [jnp.asarray(d) if b is None else b for d, b in zip(drms, banded)]
        variants["bands (the plan's)"] = (banded_fold, ops)
    return variants


def build_datas(pairs: list) -> dict:
    """``label -> Data`` for every entry of `BUILDS`."""
    datas = {}
    for label, n in BUILDS.items():
        if label == "plan":
            datas[label] = bj.Data(pairs)
        else:
            with forced(n):
                datas[label] = bj.Data(pairs)
    return datas


def time_rounds(functions: dict, fold_fns: dict, thetas: list, fluxes: list, args) -> dict:
    """``label -> [(value us or None, value+grad us) per round]``, variants interleaved."""
    def steady_us(fn, arg_list):
        return harness.steady_s(fn, arg_list, args.budget, min_calls=20, warmup=3) * 1e6

    timings: dict[str, list] = {}
    for _ in range(args.rounds):
        for label, (f_value, f_vg) in functions.items():
            timings.setdefault(label, []).append(
                (steady_us(f_value, thetas), steady_us(f_vg, thetas)))
        for label, (fn, op) in fold_fns.items():
            timings.setdefault("fold: " + label, []).append(
                (None, steady_us(fn, [(f, op) for f in fluxes])))
    return timings


def case_lines(name: str, shapes: dict, value: float, spread: float, timings: dict) -> list:
    """The case's section of the report: what `Data` builds and the table."""
    rows = []
    for label, per_round in timings.items():
        value_us = ("-" if per_round[0][0] is None
                    else f"{np.median([r[0] for r in per_round]):.1f}")
        vg_us = np.median([r[1] for r in per_round])
        rows.append([label, shapes.get(label, "fold only"), value_us, f"{vg_us:.1f}"])
    return [f"\n### {name}\n",
            f"`Data` builds: {shapes['plan']}. Log-likelihood {value:.10g}; "
            f"largest relative difference between the variants {spread:.1e}.\n",
            *harness.table_lines(("variant", "blocks", "value us", "value+grad us"), rows)]


def summary_line(name: str, shapes: dict, timings: dict) -> str:
    plan_vg, plain_vg = (np.median([r[1] for r in timings[k]]) for k in ("plan", "plain"))
    same = ("; the same blocks as plain: the ratio is run-to-run noise"
            if shapes["plan"] == shapes["plain"] else "")
    return (f"- {name}: {shapes['plan']}; value+grad plain {plain_vg:.0f} us, plan "
            f"{plan_vg:.0f} us ({plain_vg / plan_vg:.2f}x{same})")


def measure_case(name: str, pairs: list, params: tuple, args, rng) -> tuple[list, str]:
    """Every variant of one case, timed; its report lines and its summary line."""
    theta0 = jnp.asarray(params)
    thetas = [(theta0 + jnp.asarray(rng.normal(0, 1e-4, 3)),) for _ in range(4)]
    datas = build_datas(pairs)
    functions = {label: (make_loglike(models.cpl, d), make_loglike(models.cpl, d, grad=True))
                 for label, d in datas.items()}
    values = {label: float(f(theta0)) for label, (f, _) in functions.items()}
    spread = max(abs(v - values["plain"]) for v in values.values()) / abs(values["plain"])

    drms = [drm for _, drm, _ in fold_blocks(datas["plain"])]
    banded = [block for _, _, block in fold_blocks(datas["plan"])]
    fold_fns = {label: (jax.jit(jax.value_and_grad(fn)), op)
                for label, (fn, op) in fold_variants(drms, banded).items()}
    fluxes = [[jnp.asarray(rng.random(d.shape[0])) for d in drms] for _ in range(2)]

    timings = time_rounds(functions, fold_fns, thetas, fluxes, args)
    shapes = {label: describe(d) for label, d in datas.items()}
    return (case_lines(name, shapes, values["plan"], spread, timings),
            summary_line(name, shapes, timings))


def header_lines(argv: list, args, wall: float, summary: list) -> list:
    m = harness.machine_info()
    return [
        *harness.report_header("Fold operators: plain product, bands, sparse forms",
                               "bench_fold.py"),
        f"Command: `{harness.command_line('bench_fold.py', argv)}` "
        f"({args.rounds} interleaved rounds, {args.budget} s per timing, median over rounds; "
        f"{wall / 60:.1f} min). Code: bayspec_jax at commit {harness.checkout_commit()}.",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['processor']}, "
        f"{m['platform']}; python {platform.python_version()}, jax {jax.__version__}, "
        f"numpy {np.__version__}; CPU, float64.",
        "",
        "`plan` is what `Data` builds (`data.stack.band_plan`); `plain` forces one product per "
        "wide block, `bands N` forces N bands. The `fold:` rows time the fold alone "
        "(value+grad of 0.5 |flux @ drm|^2 over the same matrices).",
        "",
        "## The plan against the plain product (log-likelihood, value+grad)",
        "",
        *summary,
        "",
        "## By case",
    ]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--copies", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per timing")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 0.05 s budgets")
    parser.add_argument("--out", default=os.path.join(HERE, "FOLD.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.budget = 2, 0.05
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    lines, summary = [], []
    for name, (pairs, params) in cases(args.data_dir, args.copies).items():
        case, line = measure_case(name, pairs, params, args, rng)
        print("\n".join(case), flush=True)
        lines += case
        summary.append(line)
    wall = time.perf_counter() - t_start
    harness.write_report(args.out, header_lines(argv, args, wall, summary) + lines)
    print(f"\nwrote {args.out} ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
