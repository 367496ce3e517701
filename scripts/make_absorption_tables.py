"""Build ``bayspec_jax/data_files/absorption.npz``: photoelectric cross sections per H atom.

Run with a Python that has ``astro-elisa==0.3.1`` and ``h5py`` installed (ELISA's own venv)::

    python3 -m venv /tmp/elisavenv && /tmp/elisavenv/bin/pip install astro-elisa==0.3.1
    /tmp/elisavenv/bin/python scripts/make_absorption_tables.py

Input: the table ``elisa/models/tables/xsect.hdf5`` shipped in the astro-elisa 0.3.1 wheel.
ELISA generated it with its ``generate_xsect_table.py`` (shipped next to it) by calling XSPEC's
own model functions (``tbabs``, ``phabs``, ``wabs`` through ``mxspec.callModelFunction``, with
``Xset.abund``/``Xset.xsect`` set) at 10363 energies, 0.1 to 20 keV (10000 log-spaced, refined
near the Fe L edges), and stored float32 cross sections in units of 1e-22 cm^2 per H atom (the
unit in which nH is 1e22 cm^-2). So the numbers are XSPEC's: tbabs with the Wilms, Allen &
McCray (2000) abundances and Verner et al. (1996) cross sections; phabs with the Anders &
Grevesse (1989) abundances and the Balucinska-Church & McCammon (1992) cross sections (XSPEC's
``bcmc``, with the Yan et al. 1998 He cross section) or Verner et al. (1996) (``vern``, XSPEC's
default ``xsect``).

This script only selects and copies: the float32 values are written unchanged (no rounding, no
resampling), and the SHA-256 of the input file is recorded in the output.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib

import numpy as np

COLUMNS = {
    # name in our table: dataset in ELISA's hdf5
    "tbabs_wilm_vern": "tbabs/vern/wilm",
    "phabs_angr_bcmc": "phabs/bcmc/angr",
    "phabs_angr_vern": "phabs/vern/angr",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, default=None,
                        help="ELISA's xsect.hdf5 (default: the installed elisa package's)")
    parser.add_argument("--output", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[1]
                        / "bayspec_jax" / "data_files" / "absorption.npz")
    args = parser.parse_args()

    import h5py

    source = args.source
    elisa_version = "unknown"
    if source is None:
        import importlib.util

        spec = importlib.util.find_spec("elisa")
        if spec is None or spec.origin is None:
            raise SystemExit("elisa is not installed here; pass --source path/to/xsect.hdf5")
        source = pathlib.Path(spec.origin).parent / "models" / "tables" / "xsect.hdf5"
        elisa_version = importlib.metadata.version("astro-elisa")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    with h5py.File(source, "r") as f:
        energy = np.asarray(f["energy"][:])
        arrays = {name: np.asarray(f[path][:]) for name, path in COLUMNS.items()}
    # The refined energies were made unique in float64 and then stored in float32, which made 87
    # of them equal to a neighbour; the cross sections at each such pair are equal too (checked),
    # so one of each pair is dropped.
    repeated = np.concatenate([[False], np.diff(energy) == 0])
    for name, sigma in arrays.items():
        assert np.array_equal(sigma[repeated], sigma[np.flatnonzero(repeated) - 1]), name
    energy = energy[~repeated]
    arrays = {name: sigma[~repeated] for name, sigma in arrays.items()}
    assert energy.dtype == np.float32 and np.all(np.diff(energy) > 0)
    for name, sigma in arrays.items():
        assert sigma.dtype == np.float32 and sigma.shape == energy.shape, name
        assert np.all(np.isfinite(sigma)) and np.all(sigma > 0), name

    meta = (f"source=astro-elisa {elisa_version} elisa/models/tables/xsect.hdf5 "
            f"sha256={digest}; datasets " + ", ".join(f"{k}<-{v}" for k, v in COLUMNS.items())
            + f"; {int(repeated.sum())} repeated float32 energies dropped"
            + "; units: energy keV, sigma 1e-22 cm^2 per H atom; values XSPEC's (see README)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, energy=energy, meta=np.array(meta), **arrays)
    print(f"wrote {args.output} ({energy.size} energies, {len(arrays)} columns)")
    print(meta)


if __name__ == "__main__":
    main()
