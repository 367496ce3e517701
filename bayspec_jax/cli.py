"""The ``bayspec-jax`` command."""

from __future__ import annotations

import argparse
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
