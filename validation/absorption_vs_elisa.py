"""tbabs / phabs / wabs against ELISA 0.3.1 (astro-elisa) at 320 energies and 6 column densities.

Two steps, two Pythons:

1. In ELISA's venv (``python3 -m venv /tmp/elisavenv && /tmp/elisavenv/bin/pip install
   astro-elisa==0.3.1``), dump ELISA's transmissions::

       /tmp/elisavenv/bin/python validation/absorption_vs_elisa.py --dump

   which writes ``tests/xray_reference/elisa_absorption.npz`` (the file the tests compare to).
2. Here, compare ours with that file and write ``validation/ABSORPTION_VS_ELISA.md``::

       python3 validation/absorption_vs_elisa.py

ELISA's models are called through their ``continuum`` (the transmission at points, the same
quantity as ours; ELISA then integrates over bins, which we leave to `fold`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DUMP = ROOT / "tests" / "xray_reference" / "elisa_absorption.npz"
REPORT = ROOT / "validation" / "ABSORPTION_VS_ELISA.md"
N_H = np.array([1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0])
# (our name, ELISA class name, ELISA abs_model, abund, xsect)
CASES = [
    ("tbabs", "TBAbs", "tbabs", "wilm", "vern"),
    ("phabs_bcmc", "PhAbs", "phabs", "angr", "bcmc"),
    ("phabs_vern", "PhAbs", "phabs", "angr", "vern"),
    ("wabs", "WAbs", "wabs", "aneb", "wabs"),
]


def energies() -> np.ndarray:
    rng = np.random.default_rng(17)
    grid = np.geomspace(0.1, 20.0, 256)
    scattered = np.exp(rng.uniform(np.log(0.1), np.log(20.0), 64))
    return np.sort(np.concatenate([grid, scattered]))


def dump() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import importlib.metadata

    import jax.numpy as jnp
    from elisa.models import mul

    energy = energies()
    out = {"energy": energy, "n_h": N_H,
           "elisa_version": np.array(importlib.metadata.version("astro-elisa"))}
    for name, cls, abs_model, abund, xsect in CASES:
        continuum = getattr(mul, cls).continuum
        out[name] = np.stack([
            np.asarray(continuum(jnp.asarray(energy), {"nH": jnp.asarray(n_h)}, abs_model,
                                 abund, xsect)) for n_h in N_H])
    DUMP.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DUMP, **out)
    print(f"wrote {DUMP}")


def ours() -> dict[str, np.ndarray]:
    import jax

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(ROOT))
    from bayspec_jax import models

    energy = np.load(DUMP)["energy"]
    functions = {
        "tbabs": models.tbabs,
        "phabs_bcmc": lambda e, p: models.phabs(e, p, xsect="bcmc"),
        "phabs_vern": lambda e, p: models.phabs(e, p, xsect="vern"),
        "wabs": models.wabs,
    }
    return {name: np.stack([np.asarray(f(energy, (n_h,))) for n_h in N_H])
            for name, f in functions.items()}


def elisa_arithmetic(name: str) -> np.ndarray | None:
    """Our table interpolated with ELISA's arithmetic: the logarithms of the float32 energies
    and cross sections taken in float32 (as ``np.log`` of its float32 hdf5 arrays does), the
    interpolation then in float64; the transmissions at `N_H`."""
    columns = {"tbabs": "tbabs_wilm_vern", "phabs_bcmc": "phabs_angr_bcmc",
               "phabs_vern": "phabs_angr_vern"}
    if name not in columns:
        return None
    table = np.load(ROOT / "bayspec_jax" / "data_files" / "absorption.npz")
    xp = np.log(table["energy"]).astype(np.float64)  # float32 logs
    fp = np.log(table[columns[name]]).astype(np.float64)
    energy = np.load(DUMP)["energy"]
    sigma = np.exp(np.interp(np.log(energy), xp, fp))
    return np.exp(-N_H[:, None] * sigma[None, :])


def compare() -> str:
    ref = np.load(DUMP)
    energy, mine = ref["energy"], ours()
    lines = [
        "# Absorption models against ELISA 0.3.1",
        "",
        f"`python3 validation/absorption_vs_elisa.py` (ELISA {ref['elisa_version']} values in "
        f"`tests/xray_reference/elisa_absorption.npz`, made with `--dump` in ELISA's venv), "
        f"float64. "
        f"{energy.size} energies from 0.1 to 20 keV (256 log-spaced, 64 log-uniform at random), "
        f"nH = {', '.join(f'{v:g}' for v in N_H)} (1e22 cm^-2).",
        "",
        "Columns: the largest relative difference of the transmission T where T >= 1e-4 "
        "(optical depth nH sigma <= 9.2); the largest relative difference of the cross section "
        "sigma = -ln T / nH over all points where T > 1e-300 (the transmission's relative "
        "difference is nH sigma times it); the same with our table interpolated in ELISA's "
        "float32 arithmetic (logs of the float32 table taken in float32), which isolates "
        "the cause of the difference.",
        "",
        "| model | nH | max rel. diff. T (T >= 1e-4) | max rel. diff. sigma | same, ELISA's "
        "arithmetic | points T >= 1e-4 |",
        "|---|---|---|---|---|---|",
    ]
    worst = {}
    for name, *_ in CASES:
        for i, n_h in enumerate(N_H):
            a, b = mine[name][i], ref[name][i]
            seen = b >= 1e-4
            rel_t = np.max(np.abs(a[seen] / b[seen] - 1.0)) if seen.any() else float("nan")

            def rel_sigma(x):
                both = (x > 1e-300) & (b > 1e-300)
                return np.max(np.abs(np.log(x[both]) / np.log(b[both]) - 1.0))

            emulated = elisa_arithmetic(name)
            emulated_text = "-" if emulated is None else f"{rel_sigma(emulated[i]):.2e}"
            worst[name] = max(worst.get(name, 0.0), rel_t)
            lines.append(f"| {name} | {n_h:g} | {rel_t:.2e} | {rel_sigma(a):.2e} | "
                         f"{emulated_text} | {int(seen.sum())}/{energy.size} |")
    lines += [
        "",
        "## Reading",
        "",
        "tbabs and phabs: both sides interpolate the same XSPEC-made numbers (ELISA's "
        "`xsect.hdf5`, which `scripts/make_absorption_tables.py` copies unchanged into "
        "`bayspec_jax/data_files/absorption.npz`) linearly in log-log. The whole difference is "
        "ELISA's arithmetic: it takes the logarithms of its float32 table in float32, which "
        "rounds log E (and so the interpolation slopes, most in the refined Fe L / O K region "
        "where nodes are 1e-4 apart in log E) and log sigma; ours takes them in float64. "
        "Interpolating our table with ELISA's float32 logarithms reproduces ELISA to 1e-14 "
        "(the 'ELISA's arithmetic' column). The transmission's relative difference is nH sigma "
        "times the cross section's, so it stays below 2e-5 wherever T >= 1e-4; where T is "
        "smaller it grows with the optical depth (at T = 1e-300, nH sigma = 690) while both "
        "are negligible. The 87 nodes that ELISA's table repeats (equal float32 energies, "
        "equal values) are dropped in ours, which changes nothing.",
        "",
        "wabs is the independent check: ours evaluates the Morrison & McCammon (1983) "
        "polynomials (above 10 keV held at the 10 keV value times (E/10)^-3, which is what "
        "XSPEC's numbers show), ELISA interpolates a table that XSPEC's wabs produced. They "
        "agree to 5e-7 in sigma at 318 of the 320 energies: the published coefficients here "
        "are XSPEC's. The two others: 4.0384 keV, 0.4 eV above the Ca K edge at 4.038 keV, "
        "where ELISA's table interval straddles the edge (6e-3), and 0.1 keV, a range "
        "boundary, where ELISA's generator averaged XSPEC over a 2e-6 keV bin that straddles "
        "it (1.7e-4). The transmission's differences at large nH in the wabs rows come from "
        "those two points.",
    ]
    text = "\n".join(lines) + "\n"
    REPORT.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", action="store_true", help="run in ELISA's venv: write the dump")
    if parser.parse_args().dump:
        dump()
    else:
        compare()
