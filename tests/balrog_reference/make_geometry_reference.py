"""Record gbmgeometry's and gbm-drm-gen's spacecraft geometry into ``geometry.npz``.

Run from the repository root with the Python that has gbm-drm-gen 1.2.2 installed:

    /tmp/gbmvenv/bin/python tests/balrog_reference/make_geometry_reference.py

It reads the example trigdat of GRB 110721A shipped with gbm-drm-gen and, at a few times over
its range, records gbmgeometry's ``PositionInterpolator.from_trigdat`` quaternion, position and
MET, and the attitude, position, spacecraft axes and Earth direction of a ``DRMGen`` built with
``from_128_bin_data("n6", time, cspecfile=..., trigdat=..., mat_type=0, occult=True)``.

gbm-drm-gen ships no poshist file, so one is made: a table in poshist layout (extension
``GLAST POS HIST``; SCLK_UTC, QSJ_1..4, POS_X/Y/Z in metres, FLAGS) sampled every 4 s from the
trigdat interpolation, rows shuffled, written to a temporary folder. Its columns are stored in
the npz so that the test can write the same file again. It is read by gbmgeometry's
``from_poshist`` with ``T0`` = the trigger time and without ``T0`` (times are then MET), and by
``DRMGen.from_128_bin_data(..., poshist=..., T0=...)``.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import astropy
import gbm_drm_gen
import gbmgeometry
import numpy as np
from astropy.io import fits
from gbm_drm_gen import DRMGen
from gbmgeometry import PositionInterpolator

OUT = pathlib.Path(__file__).resolve().parent / "geometry.npz"
EXAMPLES = pathlib.Path(gbm_drm_gen.__file__).resolve().parent / "data" / "example_data"
TRIGDAT = EXAMPLES / "glg_trigdat_all_bn110721200_v01.fit"
CSPEC = EXAMPLES / "glg_cspec_n6_bn110721200_v00.pha"
DETECTOR = "n6"


def drmgen_state(time, **files):
    drm = DRMGen.from_128_bin_data(DETECTOR, time, cspecfile=str(CSPEC), mat_type=0, occult=True,
                                   **files)
    return {
        "quaternion": np.asarray(drm._quaternions, dtype=np.float64),
        "sc_pos": np.asarray(drm._sc_pos, dtype=np.float64),
        "axes": np.stack([drm._scx, drm._scy, drm._scz]).astype(np.float64),
        "geo_az": float(drm._geo_az),
        "geo_el": float(drm._geo_el),
    }


def record(prefix, interpolator, times, drm_files, out):
    """Interpolator values at `times` and, where `drm_files` is given, DRMGen's."""
    out[f"{prefix}_times"] = np.asarray(times, dtype=np.float64)
    out[f"{prefix}_quaternion"] = np.stack([interpolator.quaternion(t) for t in times])
    out[f"{prefix}_sc_pos"] = np.stack([interpolator.sc_pos(t) for t in times])
    out[f"{prefix}_met"] = np.array([interpolator.met(t) for t in times], dtype=np.float64)
    if drm_files is None:
        return
    states = [drmgen_state(t, **drm_files) for t in times]
    for key in ("quaternion", "sc_pos", "axes", "geo_az", "geo_el"):
        out[f"{prefix}_drm_{key}"] = np.array([s[key] for s in states], dtype=np.float64)


def poshist_table(interpolator, trigtime):
    """A poshist-layout table sampled from the trigdat interpolation, rows shuffled."""
    relative = np.arange(-128.0, 464.0, 4.0) + 0.125
    met = trigtime + relative
    quats = np.stack([interpolator.quaternion(t) for t in relative])
    pos_m = np.stack([interpolator.sc_pos(t) for t in relative]) * 1000.0
    order = np.random.default_rng(110721).permutation(relative.size)
    return met[order], quats[order], pos_m[order]


def write_poshist(path, met, quats, pos_m):
    columns = [fits.Column(name="SCLK_UTC", format="D", unit="s", array=met)]
    columns += [fits.Column(name=f"QSJ_{i + 1}", format="D", array=quats[:, i]) for i in range(4)]
    columns += [fits.Column(name=f"POS_{c}", format="D", unit="m", array=pos_m[:, i])
                for i, c in enumerate("XYZ")]
    columns.append(fits.Column(name="FLAGS", format="I", array=np.ones(met.size, np.int16)))
    table = fits.BinTableHDU.from_columns(columns, name="GLAST POS HIST")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)


def main():
    out = {}
    trig = PositionInterpolator.from_trigdat(str(TRIGDAT))
    tmin, tmax = (float(x) for x in trig.minmax_time())
    trigtime = float(trig._trigtime)
    out["trigdat_range"] = np.array([tmin, tmax])
    out["trigdat_trigtime"] = np.float64(trigtime)
    # the range ends, both sides of the row time -0.064 s that two rows share, the trigger, the
    # middle of a steep segment between two rows 60 ns apart (just after 0.192 s), and far off
    x = trig._quaternion_t.x
    gaps = np.diff(x)
    close = np.nonzero((gaps > 0) & (gaps < 1e-6) & (x[:-1] > 0))[0][0]
    steep = float(x[close] + 0.5 * gaps[close])
    times = [tmin, -100.0, -0.1, -0.03, 0.0, steep, 1.0, 300.0, tmax]
    record("trigdat", trig, times, {"trigdat": str(TRIGDAT)}, out)
    try:
        trig.quaternion(tmax + 1.0)
    except ValueError as err:
        out["trigdat_out_of_range_message"] = np.array(str(err))

    met, quats, pos_m = poshist_table(trig, trigtime)
    out["poshist_table_sclk_utc"] = met
    out["poshist_table_qsj"] = quats
    out["poshist_table_pos_m"] = pos_m
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "glg_poshist_all_synthetic.fit")
        write_poshist(path, met, quats, pos_m)
        with_t0 = PositionInterpolator.from_poshist(path, T0=trigtime)
        lo, hi = (float(v) for v in with_t0.minmax_time())
        relative = [lo, -60.3, 0.0, 10.7, 333.3, hi]
        record("poshist_t0", with_t0, relative, {"poshist": path, "T0": trigtime}, out)
        no_t0 = PositionInterpolator.from_poshist(path)
        record("poshist_met", no_t0, [trigtime + t for t in relative[1:-1]], None, out)

    out["versions"] = np.array(
        f"gbm-drm-gen {gbm_drm_gen.__version__}, gbmgeometry {gbmgeometry.__version__}, "
        f"numpy {np.__version__}, astropy {astropy.__version__}"
    )
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    for key in sorted(out):
        print(key, np.shape(out[key]))


if __name__ == "__main__":
    main()
