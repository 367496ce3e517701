"""Memory held per data unit: distinct array buffers reachable from the units and their `Data`.

Each case builds N units from the same example files, the way a user does in a loop (every unit
reads its files by path), and counts the bytes of every distinct array buffer reachable from
them: the pytree leaves (`jax.tree_util.tree_leaves`) of the units alone, and of the `Data`
built from them (units + stacked setup + grouped counts). Buffers are deduplicated by address
(``unsafe_buffer_pointer`` for jax arrays, the data pointer for numpy arrays), so arrays that
units share are counted once. It also counts the buffers of DRM shape (photon bins x channels),
which is what the sharing is about.

Cases: JOINT (GBM NaI ``ME/me.{src,bkg,rsp}`` + BGO ``HE/he.{src,bkg,rsp}``, pgstat, grouped
{min_sigma 2, max_bin 10}, as in bayspec's pair example and `benchmarks/workloads.py`) as its
2 units and as 100 copies of the pair (200 units); Chandra ACIS 3C 273
(``XRAY-sherpa-3c273/3c273.{pi,rmf,arf}`` with ``3c273_bg.pi``, file grouping, cstat, 0.5-7 keV)
as 1 unit and as 200 units.

    python3 benchmarks/bench_memory.py              # about 1 minute; prints a markdown table
    python3 benchmarks/bench_memory.py --no-data    # units only (skip building Data)

Only public API is used, so the script measures older commits too:

    mkdir /tmp/base && git archive <commit> | tar -x -C /tmp/base
    python3 benchmarks/bench_memory.py --repo /tmp/base
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "bayspec-examples"))
# `--repo PATH` measures the bayspec_jax of another checkout (e.g. `git archive` of the base).
_REPO = sys.argv[sys.argv.index("--repo") + 1] if "--repo" in sys.argv else os.path.dirname(HERE)
sys.path.insert(0, os.path.abspath(_REPO))
import bayspec_jax as bj


def _address(leaf) -> tuple[int, int] | None:
    """``(address, nbytes)`` of an array leaf's buffer, or `None` for a non-array."""
    if isinstance(leaf, jax.Array):
        try:
            return leaf.unsafe_buffer_pointer(), leaf.nbytes
        except (RuntimeError, ValueError):  # several buffers: count it once by identity
            return id(leaf), leaf.nbytes
    if isinstance(leaf, np.ndarray):
        return leaf.__array_interface__["data"][0], leaf.nbytes
    return None


def distinct_buffers(tree) -> dict[int, int]:
    """Every distinct array buffer among `tree`'s leaves: ``{address: nbytes}``."""
    buffers: dict[int, int] = {}
    for leaf in jax.tree_util.tree_leaves(tree):
        found = _address(leaf)
        if found is not None:
            address, nbytes = found
            buffers[address] = max(nbytes, buffers.get(address, 0))
    return buffers


def drm_buffers(tree, shape: tuple[int, int]) -> int:
    """How many distinct buffers of `tree` have the DRM's shape (photon bins x channels)."""
    seen = set()
    for leaf in jax.tree_util.tree_leaves(tree):
        if getattr(leaf, "shape", None) == shape:
            seen.add(_address(leaf)[0])
    return len(seen)


def joint(copies: int) -> list:
    d = DATA_DIR
    grpg = {"min_sigma": 2, "max_bin": 10}
    units = []
    for k in range(copies):
        units.append((f"nai{k}", bj.DataUnit(
            src=f"{d}/ME/me.src", bkg=f"{d}/ME/me.bkg", rsp=f"{d}/ME/me.rsp", notc=[8, 900],
            stat="pgstat", grpg=dict(grpg))))
        units.append((f"bgo{k}", bj.DataUnit(
            src=f"{d}/HE/he.src", bkg=f"{d}/HE/he.bkg", rsp=f"{d}/HE/he.rsp",
            notc=[300, 38000], stat="pgstat", grpg=dict(grpg))))
    return units


def acis(copies: int) -> list:
    x = f"{DATA_DIR}/XRAY-sherpa-3c273"
    return [(f"x{k}", bj.DataUnit(src=f"{x}/3c273.pi", bkg=f"{x}/3c273_bg.pi",
                                  rmf=f"{x}/3c273.rmf", arf=f"{x}/3c273.arf", notc=[0.5, 7.0],
                                  stat="cstat"))
            for k in range(copies)]


CASES = [("JOINT", 1, joint, (140, 128)), ("JOINT", 100, joint, (140, 128)),
         ("3C 273", 1, acis, (1090, 1024)), ("3C 273", 200, acis, (1090, 1024))]


def measure(label: str, copies: int, build, shape: tuple[int, int], with_data: bool) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = build(copies)
    built = time.perf_counter() - start
    units = [unit for _, unit in pairs]
    unit_bytes = sum(distinct_buffers(units).values())
    row = {"case": label, "units": len(units), "build_s": built,
           "unit_bytes": unit_bytes / len(units), "unit_drms": drm_buffers(units, shape)}
    if with_data:
        start = time.perf_counter()
        data = bj.Data(pairs)
        row["data_s"] = time.perf_counter() - start
        row["data_bytes"] = sum(distinct_buffers(data).values()) / len(units)
        row["setup_bytes"] = sum(distinct_buffers(data.setup).values()) / len(units)
    return row


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-data", action="store_true", help="units only, no Data")
    parser.add_argument("--repo", default=None, help="checkout whose bayspec_jax to measure")
    args = parser.parse_args()
    rows = [measure(*case, with_data=not args.no_data) for case in CASES]
    head = ("| case | units | MB per unit (units) | DRM-shaped buffers | MB per unit (Data) "
            "| of which setup | build s | Data s |")
    print(f"bayspec_jax from {os.path.dirname(bj.__file__)}")
    print(head)
    print("|" + "---|" * 8)
    for r in rows:
        print(f"| {r['case']} | {r['units']} | {_mb(r['unit_bytes'])} | {r['unit_drms']} | "
              f"{_mb(r.get('data_bytes', float('nan')))} | "
              f"{_mb(r.get('setup_bytes', float('nan')))} | {r['build_s']:.2f} | "
              f"{r.get('data_s', float('nan')):.2f} |")


if __name__ == "__main__":
    main()
