"""The ``bayspec-jax`` command."""

from __future__ import annotations

import argparse
import json
import math
import os
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


STAT_CHOICES = ("pgstat", "wstat", "cstat", "ppstat", "pstat", "chi2", "gstat")
"""The statistics `--stat` accepts (`stats.STATISTICS`, listed here so that ``--help`` does not
import JAX)."""

_UNIT_HELP = {
    "src": "source spectrum (PHA I, or a PHA II row as FILE:ROW); its BACKFILE, RESPFILE and "
           "ANCRFILE keywords supply the files not given",
    "bkg": "background spectrum (default: from the source file)",
    "rsp": "full response (RSP)",
    "rmf": "redistribution matrix (RMF), composed with --arf",
    "arf": "ancillary response (ARF)",
    "notc": "energy window(s) lo-hi in keV; several allowed, comma-separated: 0.5-2,3-7",
    "grpg": "grouping as JSON, e.g. '{\"min_sigma\": 3, \"max_bin\": 10}' (noticed channels) or "
            "'{\"method\": \"counts\", \"min_evt\": 20}' (whole spectrum, as grppha min 20)",
    "stat": "fit statistic",
    "notice-rule": "inside: channels wholly inside the windows (default); overlap: channels "
                   "or file groups that overlap them (Sherpa's rule)",
}


class UsageError(ValueError):
    """A bad command-line value: `main` reports it as the subcommand's usage error (exit 2)."""


def _windows(text: str | None):
    if text is None:
        return None
    try:
        return [[float(v) for v in part.split("-")] for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--notc: expected windows like 8-900 or 8-30,40-900 (lo-hi in keV), "
                         f"got {text!r}")


def _units(args: argparse.Namespace):
    from .data import DataUnit

    if not args.src:
        folder = args.example_dir or tempfile.mkdtemp(prefix="bayspec-jax-example-")
        paths = write_example_files(folder)
        print(f"no --src given: using the built-in example observation written to {folder}")
        return [("example", DataUnit(src=paths["src"], bkg=paths["bkg"], rsp=paths["rsp"],
                                     notc=[10.0, 900.0], stat="pgstat",
                                     grpg={"min_sigma": 3, "max_bin": 10}))]
    n = len(args.src)

    def pick(values, i, default=None):
        if not values:
            return default
        if len(values) not in (1, n):
            raise UsageError(f"give each option once, or once per --src ({n}), got {len(values)}")
        return values[i] if len(values) == n else values[0]

    units = []
    for i, src in enumerate(args.src):
        grpg = pick(args.grpg, i)
        try:
            grpg = None if grpg is None else json.loads(grpg)
        except json.JSONDecodeError as err:
            raise UsageError(f"--grpg: expected JSON like '{{\"min_sigma\": 3}}', got {grpg!r} "
                             f"({err})")
        units.append((f"unit{i + 1}", DataUnit(
            src=src, bkg=pick(args.bkg, i), rsp=pick(args.rsp, i), rmf=pick(args.rmf, i),
            arf=pick(args.arf, i), notc=_windows(pick(args.notc, i)),
            stat=pick(args.stat, i, "pgstat"), grpg=grpg,
            notice_rule=pick(args.notice_rule, i, "inside"))))
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
    print(_bands(data))
    spec = MODEL_PARAMS[args.model]
    params = {name: Par(start, unif(*bounds)) for name, start, bounds in spec}
    problem = Problem(getattr(models, args.model), params, data)
    fit = maximum_likelihood(problem)
    for _ in range(2):  # restarts from the best fit settle BFGS on flat directions
        fit = maximum_likelihood(problem, start=fit.best)
    print("\nmaximum likelihood")
    print(fit.table())
    print(_result_line(data, fit))
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


def _bands(data) -> str:
    """One line per unit: the energies fitted (first and last group edges), its notice rule."""
    lines = []
    for name, unit in data.items():
        lo, hi = unit.band
        lines.append(f"{name}: fitted band {lo:.6g}-{hi:.6g} keV ({unit.npoint} groups, "
                     f"notice rule {unit.notice_rule})")
    return "\n".join(lines)


def _result_line(data, fit) -> str:
    """The best fit's statistic, named: ``cstat = 123.4 for 56 degrees of freedom``."""
    names = "+".join(dict.fromkeys(data.stats))
    return f"{names} = {float(fit.stat):.6g} for {fit.dof} degrees of freedom"


def _nuts(problem, fit, args: argparse.Namespace) -> None:
    import jax

    from .infer import run_nuts

    posterior = run_nuts(problem, args.samples, args.samples, 2, jax.random.PRNGKey(args.seed),
                         init=fit.best, progress_bar=True)
    print(f"\nNUTS, 2 chains x {args.samples} samples (dense mass matrix, "
          f"{int(posterior.num_divergent)} divergent)")
    print(posterior.summary())


def _default_params(model: str) -> list[float]:
    """Simulation parameters when `--params` is not given: the example truth for ``cpl`` (its
    normalisation moved from the example's 100 keV pivot to `models.PIVOT_ENERGY`), the fit's
    start values for the other models."""
    from .examples import EXAMPLE_TRUTH
    from .models import PIVOT_ENERGY

    if model == "cpl":
        alpha = EXAMPLE_TRUTH["alpha"]
        log_a = EXAMPLE_TRUTH["log_k"] - alpha * math.log10(100.0 / PIVOT_ENERGY)
        return [alpha, EXAMPLE_TRUTH["log_ec"], log_a]
    return [start for _, start, _ in MODEL_PARAMS[model]]


def _model_params(text: str | None, model: str) -> list[float]:
    """`--params` as floats, one per parameter of `model` (default `_default_params`)."""
    if text is None:
        return _default_params(model)
    names = [name for name, _, _ in MODEL_PARAMS[model]]
    expected = f"{len(names)} comma-separated numbers ({', '.join(names)}) for {model}"
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--params: expected {expected}, got {text!r}")
    if len(values) != len(names) or not all(math.isfinite(v) for v in values):
        raise UsageError(f"--params: expected {expected}, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**32 - 1, got {text!r}")
    return value


def _write_simulation(prefix: str, fake, names: list[str], overwrite: bool) -> dict[str, dict]:
    """Write `fakeit`'s result; returns ``{unit name: paths}`` (`write_fakeit`'s dicts)."""
    from .data import Data
    from .simulate import _safe_name, write_fakeit

    if len(names) == 1:  # a DataUnit, or a list of n of them (PHA type II)
        return {names[0]: write_fakeit(prefix, fake, overwrite=overwrite)}
    if isinstance(fake, Data):
        return write_fakeit(prefix, fake, overwrite=overwrite)
    return {name: write_fakeit(f"{prefix}_{_safe_name(name)}", [copy[name] for copy in fake],
                               overwrite=overwrite) for name in names}


def _output_paths(prefix: str, units: list, n: int) -> list[str]:
    """The files `_write_simulation` will write (named as `simulate.write_fakeit` names them)."""
    from .simulate import _safe_name

    paths = []
    for name, unit in units:
        base = prefix if len(units) == 1 else f"{prefix}_{_safe_name(name)}"
        suffix = "" if n == 1 else "2"
        paths += [f"{base}.src{suffix}", f"{base}.rsp"]
        if unit.bkg_given:
            paths.append(f"{base}.bkg{suffix}")
    return paths


def _source_totals(fake, names: list[str]) -> dict[str, list[float]]:
    """Total simulated source counts of each unit, one per spectrum."""
    import numpy as np

    copies = fake if isinstance(fake, list) else [fake]
    if len(names) == 1:
        return {names[0]: [float(np.sum(c.src.counts)) for c in copies]}
    return {name: [float(np.sum(c[name].src.counts)) for c in copies] for name in names}


def _simulate(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from . import models
    from .data import Data
    from .simulate import fakeit

    values = _model_params(args.params, args.model)
    try:
        units = _units(args)
    except (OGIPError, ValueError) as err:
        raise UsageError(str(err)) from err
    for name, unit in units:
        if not unit.completeness:
            raise UsageError(f"{name} ({unit.src.name}) has no response: give --rsp, or --rmf "
                             "and --arf")
    existing = [path for path in _output_paths(args.out, units, args.n) if os.path.exists(path)]
    if existing and not args.overwrite:
        raise UsageError(f"{', '.join(existing)} already exist(s): give --overwrite to replace, "
                         "or another --out")
    names = [name for name, _ in units]
    target = units[0][1] if len(units) == 1 else Data(units)
    try:
        fake = fakeit(jax.random.key(args.seed), getattr(models, args.model), np.asarray(values),
                      target, n=None if args.n == 1 else args.n)
        written = _write_simulation(args.out, fake, names, args.overwrite)
    except ValueError as err:  # e.g. a model that is not finite for these parameters
        raise UsageError(str(err)) from err
    shown = ", ".join(f"{name}={value:.6g}" for (name, _, _), value in
                      zip(MODEL_PARAMS[args.model], values))
    kind = "1 spectrum" if args.n == 1 else f"{args.n} spectra (PHA type II rows)"
    print(f"simulated {kind} per unit from {args.model} ({shown}), seed {args.seed}")
    totals = _source_totals(fake, names)
    for name, paths in written.items():
        shown_totals = ", ".join(f"{t:.0f}" for t in totals[name][:10])
        more = ", ..." if len(totals[name]) > 10 else ""
        print(f"{name}: source counts {shown_totals}{more}")
        for key in ("src", "bkg", "rsp"):
            if key in paths:
                print(f"  {key}: {paths[key]}")
        row = ":0" if "rows" in paths else ""
        bkg = f", bkg={paths['bkg'] + row!r}" if "bkg" in paths else ""
        print(f"  load: bayspec_jax.DataUnit(src={paths['src'] + row!r}{bkg}, "
              f"rsp={paths['rsp']!r})")
    return 0


def _example(args: argparse.Namespace) -> int:
    paths = write_example_files(args.folder, seed=args.seed)
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


def _add_unit_options(parser: argparse.ArgumentParser) -> None:
    """The files and settings of the units (`_units`), and the photon model."""
    for option in ("src", "bkg", "rsp", "rmf", "arf", "notc", "grpg", "stat", "notice-rule"):
        extra = {"stat": dict(choices=STAT_CHOICES),
                 "notice-rule": dict(choices=("inside", "overlap"))}.get(option, {})
        metavar = {"notc": "LO-HI[,LO-HI...]", "grpg": "JSON"}.get(option)
        parser.add_argument(f"--{option}", action="append", metavar=metavar, **extra,
                            help=f"{_UNIT_HELP[option]}; once per unit (or once for all units)")
    parser.add_argument("--model", choices=sorted(MODEL_PARAMS), default="cpl")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayspec-jax",
        description="OGIP spectral data in JAX: inspect, fit and simulate spectra; the "
        "built-in example.",
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
    _add_unit_options(fit)
    fit.add_argument("--samples", type=int, default=300,
                     help="NUTS warm-up and samples per chain (0: no sampling)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--plot", default="bayspec-jax-fit.png",
                     help="counts-spectrum plot to write ('' for none)")
    fit.add_argument("--example-dir", help="where to write the example when no --src is given")
    fit.set_defaults(run=_fit, parser=fit)
    simulate = commands.add_parser(
        "simulate", help="simulate spectra from a folded model (fakeit) and write them as OGIP "
        "files; no --src: the example")
    _add_unit_options(simulate)
    simulate.add_argument(
        "--params", help="comma-separated parameter values in the model's order (write "
        "--params=-1,2.5,0.7 when the first is negative); default: the example truth for cpl, "
        "the fit's start values otherwise")
    simulate.add_argument("--n", type=_positive_int, default=1,
                          help="number of simulated spectra; more than 1: PHA type II files")
    simulate.add_argument("--seed", type=_seed, default=0,
                          help="the JAX random key is jax.random.key(SEED)")
    simulate.add_argument("--out", default="bayspec-jax-sim",
                          help="path prefix of the files written (PREFIX.src, PREFIX.bkg, "
                          "PREFIX.rsp; .src2/.bkg2 for --n > 1; PREFIX_UNIT.* for several units)")
    simulate.add_argument("--overwrite", action="store_true", help="replace existing files")
    simulate.add_argument("--example-dir",
                          help="where to write the example when no --src is given")
    simulate.set_defaults(run=_simulate, parser=simulate)
    example = commands.add_parser("example", help="write the built-in example as OGIP files")
    example.add_argument("folder", help="folder to write example.src, example.bkg, example.rsp")
    example.add_argument("--seed", type=int, default=20260101)
    example.set_defaults(run=_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as err:  # exits with status 2, as argparse does
        getattr(args, "parser", parser).error(str(err))


if __name__ == "__main__":
    sys.exit(main())
