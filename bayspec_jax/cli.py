"""The ``bayspec-jax`` command."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from .examples import write_example_files
from .io import OGIPError, describe_file


def _info(args: argparse.Namespace) -> int:
    files = list(args.files)
    if not files:
        folder = args.example_dir or tempfile.mkdtemp(prefix="bayspec-jax-example-")
        paths = write_example_files(folder)
        print(f"no FILE given: wrote the built-in example observation to {folder}\n")
        files = [paths["src"], paths["bkg"], paths["rsp"]]
    status = 0
    for file in files:
        try:
            print(describe_file(file))
        except OGIPError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
        print()
    return status


MODEL_PARAMS = {
    "pl": [("alpha", -1.5, (-8.0, 4.0)), ("log_a", 0.0, (-10.0, 10.0))],
    "cpl": [("alpha", -1.0, (-8.0, 4.0)), ("log_ec", 2.3, (0.0, 4.0)),
            ("log_a", 0.0, (-10.0, 10.0))],
    "band": [("alpha", -1.0, (-2.0, 2.0)), ("beta", -3.0, (-6.0, -2.0)),
             ("log_ep", 2.5, (0.0, 4.0)), ("log_a", -1.0, (-10.0, 10.0))],
    "bb": [("log_kt", 1.0, (-2.0, 4.0)), ("log_a", 0.0, (-10.0, 10.0))],
    "sbpl": [("alpha", -1.0, (-2.0, 2.0)), ("beta", -3.0, (-6.0, -2.0)),
             ("log_ep", 2.5, (0.0, 4.0)), ("log_a", 0.0, (-10.0, 10.0))],
}
"""Fit parameters of the CLI's models: name, start value, uniform prior bounds."""


def _windows(text: str | None):
    if text is None:
        return None
    try:
        return [[float(v) for v in part.split("-")] for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"--notc: expected windows like 8-900 or 8-30,40-900, got {text!r}")


def _units(args: argparse.Namespace):
    from .data import DataUnit

    if not args.src:
        folder = args.example_dir or tempfile.mkdtemp(prefix="bayspec-jax-example-")
        paths = write_example_files(folder)
        print(f"no --src given: fitting the built-in example observation written to {folder}")
        return [("example", DataUnit(src=paths["src"], bkg=paths["bkg"], rsp=paths["rsp"],
                                     notc=[10.0, 900.0], stat="pgstat",
                                     grpg={"min_sigma": 3, "max_bin": 10}))]
    n = len(args.src)

    def pick(values, i, default=None):
        if not values:
            return default
        if len(values) not in (1, n):
            raise SystemExit(f"give each option once, or once per --src ({n}), got {len(values)}")
        return values[i] if len(values) == n else values[0]

    units = []
    for i, src in enumerate(args.src):
        grpg = pick(args.grpg, i)
        units.append((f"unit{i + 1}", DataUnit(
            src=src, bkg=pick(args.bkg, i), rsp=pick(args.rsp, i), rmf=pick(args.rmf, i),
            arf=pick(args.arf, i), notc=_windows(pick(args.notc, i)),
            stat=pick(args.stat, i, "pgstat"), grpg=None if grpg is None else json.loads(grpg))))
    return units


def _fit(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from . import models
    from .data import Data
    from .infer import Problem, maximum_likelihood
    from .params import Par, unif

    data = Data(_units(args))
    print(data)
    spec = MODEL_PARAMS[args.model]
    params = {name: Par(start, unif(*bounds)) for name, start, bounds in spec}
    problem = Problem(getattr(models, args.model), params, data)
    fit = maximum_likelihood(problem)
    for _ in range(2):  # restarts from the best fit settle BFGS on flat directions
        fit = maximum_likelihood(problem, start=fit.best)
    print("\nmaximum likelihood")
    print(fit.table())
    best_full = problem.full(fit.best)
    if args.samples > 0:
        _nuts(problem, fit, args)
    if args.plot:
        try:
            from .plot import counts_spectrum
        except ImportError:
            print("matplotlib is not installed: no plot (pip install 'bayspec_jax[plot]')")
        else:
            counts_spectrum(problem.model, best_full, data, args.plot,
                            title=f"{args.model}: stat {fit.stat:.1f} / {fit.dof} dof")
            print(f"\nwrote {args.plot}")
    return 0


def _nuts(problem, fit, args: argparse.Namespace) -> None:
    import jax
    import numpy as np
    from numpyro.diagnostics import summary
    from numpyro.infer import MCMC, NUTS

    from .infer import numpyro_model

    mcmc = MCMC(NUTS(numpyro_model(problem)), num_warmup=args.samples, num_samples=args.samples,
                num_chains=2, chain_method="sequential", progress_bar=True)
    init = {k: np.full(2, float(v)) for k, v in problem.to_position(fit.best).items()}
    mcmc.run(jax.random.PRNGKey(args.seed), problem.stacks, init_params=init)
    stats = summary(mcmc.get_samples(group_by_chain=True))
    print(f"\nNUTS, 2 chains x {args.samples} samples")
    print(f"{'parameter':<14} {'mean':>12} {'std':>10} {'r_hat':>7} {'n_eff':>7}")
    for name in problem.names:
        row = stats[name]
        print(f"{name:<14} {float(row['mean']):>12.6g} {float(row['std']):>10.3g} "
              f"{float(row['r_hat']):>7.3f} {float(row['n_eff']):>7.0f}")


def _example(args: argparse.Namespace) -> int:
    paths = write_example_files(args.folder, seed=args.seed)
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayspec-jax",
        description="OGIP spectral data in JAX: inspect files and the built-in example.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser(
        "info", help="describe OGIP files (PHA I/II, RMF/RSP, ARF); ':row' or ':extver' allowed")
    info.add_argument("files", nargs="*", metavar="FILE",
                      help="files to describe; none: the built-in example observation")
    info.add_argument("--example-dir", help="where to write the example when no FILE is given")
    info.set_defaults(run=_info)
    fit = commands.add_parser(
        "fit", help="fit a photon model (maximum likelihood, then NUTS); no --src: the example")
    for option in ("src", "bkg", "rsp", "rmf", "arf", "notc", "grpg", "stat"):
        fit.add_argument(f"--{option}", action="append",
                         help="once per unit (or once for all units)")
    fit.add_argument("--model", choices=sorted(MODEL_PARAMS), default="cpl")
    fit.add_argument("--samples", type=int, default=300,
                     help="NUTS warm-up and samples per chain (0: no sampling)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--plot", default="bayspec-jax-fit.png",
                     help="counts-spectrum plot to write ('' for none)")
    fit.add_argument("--example-dir", help="where to write the example when no --src is given")
    fit.set_defaults(run=_fit)
    example = commands.add_parser("example", help="write the built-in example as OGIP files")
    example.add_argument("folder", help="folder to write example.src, example.bkg, example.rsp")
    example.add_argument("--seed", type=int, default=20260101)
    example.set_defaults(run=_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
