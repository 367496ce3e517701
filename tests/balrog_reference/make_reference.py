"""Generate reference response matrices with gbm-drm-gen 1.2.2 (the original).

Run from the repository root with the interpreter of a virtual environment
that has gbm-drm-gen installed (it is NOT a dependency of bayspec_jax):

    python3 -m venv /tmp/gbmvenv
    /tmp/gbmvenv/bin/pip install "gbm-drm-gen==1.2.2" "astropy<7" "numpy<2.4" ipython_genutils
    /tmp/gbmvenv/bin/python tests/balrog_reference/make_reference.py

The script only *calls* gbm-drm-gen; it writes ``tests/balrog_reference/drmgen.npz``
(plain arrays, loadable with ``np.load(..., allow_pickle=False)``).  See
``tests/balrog_reference/README.md`` (section "drmgen.npz") for the layout.

For each detector (n0..nb, b0, b1), two times (0 and a late time inside the
trigdat range) and matrix types 0 (direct) and 2 (direct + atmospheric
scattering), with ``occult=True``, 50 sky positions are drawn uniformly on the
sphere from a fixed seed (same positions for both matrix types).  For every
matrix we store row/column sums, the max |value| and a fixed set of sampled
elements; the full matrix is stored for 3 positions per (det, time, mat).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time as _time

import numpy as np

DETECTORS = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7",
             "n8", "n9", "na", "nb", "b0", "b1"]
MAT_TYPES = [0, 2]
N_POS = 50
MIN_OCCULTED = 5
MIN_VISIBLE = 20
N_FULL = 3  # first 2 unocculted + first occulted

_PKG_DATA = os.path.join(
    "/tmp/gbmvenv/lib/python3.11/site-packages/gbm_drm_gen/data/example_data")
DEFAULT_TRIGDAT = os.path.join(_PKG_DATA, "glg_trigdat_all_bn110721200_v01.fit")
DEFAULT_NAI_CSPEC = os.path.join(_PKG_DATA, "glg_cspec_n6_bn110721200_v00.pha")
DEFAULT_BGO_CSPEC = "/work/shared/data/bayspec-examples/HE/he.rsp"
DEFAULT_OUT = "tests/balrog_reference/drmgen.npz"


def _default_data_paths():
    """Locate the example data inside the installed gbm_drm_gen, if importable."""
    try:
        import gbm_drm_gen
        d = os.path.join(os.path.dirname(gbm_drm_gen.__file__), "data", "example_data")
        return (os.path.join(d, "glg_trigdat_all_bn110721200_v01.fit"),
                os.path.join(d, "glg_cspec_n6_bn110721200_v00.pha"))
    except ImportError:  # pragma: no cover - only for --help without the venv
        return DEFAULT_TRIGDAT, DEFAULT_NAI_CSPEC


def parse_args(argv=None):
    trig, nai = _default_data_paths()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trigdat", default=trig, help="trigdat FITS file (geometry)")
    p.add_argument("--nai-cspec", default=nai,
                   help="file with NaI EBOUNDS (128 channels) for n0..nb")
    p.add_argument("--bgo-cspec", default=DEFAULT_BGO_CSPEC,
                   help="file with BGO EBOUNDS (128 channels) for b0, b1")
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=20250721)
    p.add_argument("--n-samples", type=int, default=128,
                   help="sampled matrix elements per (det, time); half among "
                        "nonzero direct elements, half uniform")
    p.add_argument("--time2", type=float, default=None,
                   help="second time (s from trigger); default: floor(last "
                        "trigdat time - margin)")
    p.add_argument("--margin", type=float, default=16.0,
                   help="margin (s) before the last trigdat time for the default --time2")
    return p.parse_args(argv)


def trigdat_time_range(trigdat):
    """Relative time range of the trigdat, read like gbmgeometry.from_trigdat does."""
    from astropy.io import fits
    with fits.open(trigdat) as f:
        trigtime = float(f["EVNTRATE"].header["TRIGTIME"])
        t = np.asarray(f["EVNTRATE"].data["TIME"], dtype=np.float64) - trigtime
    return trigtime, float(t.min()), float(t.max())


def uniform_sphere(rng, n):
    """(ra, dec) in degrees, uniform on the sphere."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def draw_positions(rng, sc_pos, is_occulted):
    """N_POS uniform positions with >= MIN_OCCULTED occulted and >= MIN_VISIBLE not.

    Candidates are drawn in a stream; a candidate is kept unless keeping it
    would make one of the two quotas unreachable (so at most
    N_POS - MIN_VISIBLE occulted and N_POS - MIN_OCCULTED visible ones).
    """
    ras, decs = [], []
    n_occ = n_vis = 0
    while len(ras) < N_POS:
        cra, cdec = uniform_sphere(rng, 64)
        for a, d in zip(cra, cdec):
            if len(ras) == N_POS:
                break
            occ = bool(is_occulted(a, d, sc_pos))
            if occ and n_occ >= N_POS - MIN_VISIBLE:
                continue
            if not occ and n_vis >= N_POS - MIN_OCCULTED:
                continue
            ras.append(float(a))
            decs.append(float(d))
            n_occ += occ
            n_vis += not occ
    return np.array(ras), np.array(decs)


def main(argv=None):
    args = parse_args(argv)

    from gbm_drm_gen.drmgen import DRMGen
    from gbm_drm_gen.utils.geometry import is_occulted

    versions = {}
    for pkg in ("gbm-drm-gen", "gbmgeometry", "numba", "numpy", "astropy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "unknown"

    trigtime, tmin, tmax = trigdat_time_range(args.trigdat)
    time2 = args.time2 if args.time2 is not None else float(np.floor(tmax - args.margin))
    if not (tmin <= time2 <= tmax):
        sys.exit(f"--time2 {time2} outside the trigdat range [{tmin}, {tmax}]")
    args.time2 = time2  # record the value actually used
    times = np.array([0.0, time2])
    print(f"trigdat TRIGTIME={trigtime:.6f}, relative time range [{tmin:.3f}, {tmax:.3f}] s;"
          f" times used: {times.tolist()}")

    nd, nt, nm, S = len(DETECTORS), len(times), len(MAT_TYPES), args.n_samples
    n_chan, n_phot = 128, 140

    # per (det, time) geometry
    ra = np.zeros((nd, nt, N_POS))
    dec = np.zeros((nd, nt, N_POS))
    az = np.zeros((nd, nt, N_POS))
    el = np.zeros((nd, nt, N_POS))
    occulted = np.zeros((nd, nt, N_POS), dtype=bool)
    quaternions = np.zeros((nd, nt, 4))
    sc_pos = np.zeros((nd, nt, 3))
    geo_az = np.zeros((nd, nt))
    geo_el = np.zeros((nd, nt))
    met = np.full((nd, nt), np.nan)
    ebounds = np.zeros((nd, n_chan + 1))
    mc_energies = np.zeros((nd, n_phot + 1))
    # per matrix
    row_sums = np.zeros((nd, nt, nm, N_POS, n_chan), dtype=np.float32)
    col_sums = np.zeros((nd, nt, nm, N_POS, n_phot), dtype=np.float32)
    max_abs = np.zeros((nd, nt, nm, N_POS), dtype=np.float32)
    nan_count = np.zeros((nd, nt, nm, N_POS), dtype=np.int32)
    sample_chan = np.zeros((nd, nt, S), dtype=np.int16)
    sample_phot = np.zeros((nd, nt, S), dtype=np.int16)
    samples = np.zeros((nd, nt, nm, N_POS, S), dtype=np.float32)
    full = np.zeros((nd, nt, nm, N_FULL, n_chan, n_phot), dtype=np.float32)
    full_idx = np.zeros((nd, nt, N_FULL), dtype=np.int16)
    # diagnostics: min over elements of (mat2 - mat0) (negative => mat2 < mat0)
    m2_minus_m0_min = np.full((nd, nt, N_POS), np.nan, dtype=np.float32)
    # same-process determinism: recompute full-matrix positions at the end
    redo_max_abs_diff = np.zeros((nd, nt, nm, N_FULL), dtype=np.float32)

    det_time = np.zeros(nd)
    t_start = _time.time()
    for d, det in enumerate(DETECTORS):
        cspec = args.bgo_cspec if det.startswith("b") else args.nai_cspec
        t_det = _time.time()
        for k, t in enumerate(times):
            # one independent, fixed random stream per (det, time)
            rng = np.random.default_rng([args.seed, d, k])
            mats = np.zeros((nm, N_POS, n_chan, n_phot))
            gens = []
            for im, mat in enumerate(MAT_TYPES):
                gen = DRMGen.from_128_bin_data(
                    det, time=float(t), cspecfile=cspec, trigdat=args.trigdat,
                    mat_type=mat, occult=True)
                gens.append(gen)
                if im == 0:
                    quaternions[d, k] = np.asarray(gen._quaternions, dtype=np.float64)
                    sc_pos[d, k] = np.asarray(gen._sc_pos, dtype=np.float64)
                    geo_az[d, k] = float(gen._geo_az)
                    geo_el[d, k] = float(gen._geo_el)
                    try:
                        met[d, k] = float(gen.current_met)
                    except (AttributeError, TypeError, ValueError) as exc:  # pragma: no cover
                        print(f"  current_met failed: {exc!r}")
                    ebounds[d] = np.asarray(gen.ebounds, dtype=np.float64)
                    mc_energies[d] = np.asarray(gen.monte_carlo_energies, dtype=np.float64)
                    ra[d, k], dec[d, k] = draw_positions(rng, gen._sc_pos, is_occulted)
                    for p in range(N_POS):
                        a, e = gen._get_coords(ra[d, k, p], dec[d, k, p])
                        az[d, k, p], el[d, k, p] = float(a), float(e)
                else:
                    # the geometry must not depend on the matrix type
                    assert np.array_equal(np.asarray(gen._sc_pos), sc_pos[d, k])
                    assert np.array_equal(np.asarray(gen._quaternions), quaternions[d, k])
                for p in range(N_POS):
                    gen.set_location(float(ra[d, k, p]), float(dec[d, k, p]))
                    m = np.array(gen.matrix, dtype=np.float64)
                    assert m.shape == (n_chan, n_phot), m.shape
                    mats[im, p] = m

            zero = np.all(mats == 0.0, axis=(2, 3))  # (nm, N_POS); NaN != 0
            if not np.array_equal(zero[0], zero[1]):
                print(f"  WARNING {det} t={t}: occultation differs between mat types")
            occulted[d, k] = zero[0]
            row_sums[d, k] = mats.sum(axis=3)
            col_sums[d, k] = mats.sum(axis=2)
            max_abs[d, k] = np.max(np.abs(mats), axis=(2, 3))
            nan_count[d, k] = np.isnan(mats).sum(axis=(2, 3))
            vis = ~zero[0]
            m2_minus_m0_min[d, k, vis] = np.min(mats[1, vis] - mats[0, vis], axis=(1, 2))

            # full matrices: first 2 unocculted positions and the first occulted one
            iv = np.flatnonzero(~occulted[d, k])
            io = np.flatnonzero(occulted[d, k])
            full_idx[d, k] = [iv[0], iv[1], io[0]]
            full[d, k] = mats[:, full_idx[d, k]]

            # sampled elements: half among the nonzero elements of the direct
            # matrix of the first unocculted position, half uniform
            nz = np.flatnonzero(mats[0, iv[0]].ravel() != 0.0)
            h = S // 2
            pick_nz = np.sort(rng.choice(nz, size=h, replace=False))
            pick_un = np.sort(rng.choice(n_chan * n_phot, size=S - h, replace=False))
            ic, ip = np.unravel_index(np.concatenate([pick_nz, pick_un]), (n_chan, n_phot))
            sample_chan[d, k], sample_phot[d, k] = ic, ip
            samples[d, k] = mats[:, :, ic, ip]

            # same-process determinism: recompute the full-matrix positions
            for im, gen in enumerate(gens):
                for j, p in enumerate(full_idx[d, k]):
                    gen.set_location(float(ra[d, k, p]), float(dec[d, k, p]))
                    m = np.array(gen.matrix, dtype=np.float64)
                    diff = np.abs(m - mats[im, p])
                    diff[np.isnan(m) & np.isnan(mats[im, p])] = 0.0
                    redo_max_abs_diff[d, k, im, j] = np.max(diff)

        det_time[d] = _time.time() - t_det
        n_occ = occulted[d].sum(axis=1)
        print(f"{det}: occulted {n_occ.tolist()} of {N_POS} at t={times.tolist()}; "
              f"max |M| mat0 {np.nanmax(max_abs[d, :, 0]):.4g}, mat2 "
              f"{np.nanmax(max_abs[d, :, 1]):.4g}; NaN elements {int(nan_count[d].sum())}; "
              f"{det_time[d]:.1f} s", flush=True)

    any_nan = bool(nan_count.sum() > 0)
    out = {
        "detectors": np.array(DETECTORS),
        "times": times,
        "mat_types": np.array(MAT_TYPES, dtype=np.int64),
        "trigtime": np.float64(trigtime),
        "trigdat_time_range": np.array([tmin, tmax]),
        "ra": ra, "dec": dec, "az": az, "el": el, "occulted": occulted,
        "quaternions": quaternions, "sc_pos": sc_pos, "geo_az": geo_az, "geo_el": geo_el,
        "met": met,
        "ebounds": ebounds, "monte_carlo_energies": mc_energies,
        "row_sums": row_sums, "col_sums": col_sums, "max_abs": max_abs, "nan_count": nan_count,
        "any_nan": np.bool_(any_nan),
        "sample_chan": sample_chan, "sample_phot": sample_phot, "samples": samples,
        "full": full, "full_position_index": full_idx,
        "mat2_minus_mat0_min": m2_minus_m0_min,
        "redo_max_abs_diff": redo_max_abs_diff,
        "seconds_per_detector": det_time,
        "seed": np.int64(args.seed),
        "gbm_drm_gen_version": np.array(versions["gbm-drm-gen"]),
        "versions": np.array([f"{k}=={v}" for k, v in versions.items()]),
        "args": np.array([f"{k}={v}" for k, v in sorted(vars(args).items())]),
        "command": np.array(" ".join([os.path.basename(sys.executable)] + sys.argv)),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **out)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size} bytes ({size / 2**20:.2f} MiB); any NaN: {any_nan}; "
          f"total {_time.time() - t_start:.1f} s")
    neg = m2_minus_m0_min[np.isfinite(m2_minus_m0_min)]
    print(f"min over visible positions of min(mat2 - mat0): {neg.min():.4g} "
          f"({int((neg < 0).sum())} of {neg.size} matrices have an element with mat2 < mat0)")
    print(f"same-process recomputation max |diff|: {np.nanmax(redo_max_abs_diff):.4g}")


if __name__ == "__main__":
    main()
