"""`bayspec_jax.balrog.drm_generator` against gbm-drm-gen 1.2.2 (numbers in
``balrog_reference/drmgen.npz``, written by ``balrog_reference/make_reference.py``), its
gradients against finite differences, and `BalrogResponse` on the generator.

The detector database is gbm-drm-gen's ``balrog_db.h5``, read where gbm-drm-gen is installed:
the tests skip when it is not found (set ``BAYSPEC_GBM_DRM_GEN_DATA``)."""

import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import likelihood
from bayspec_jax.balrog import DETECTORS, drm_generator, gbm_drm_gen_data_dir
from bayspec_jax.balrog.generator import _triangle

REFERENCE = pathlib.Path(__file__).resolve().parent / "balrog_reference" / "drmgen.npz"
TRIGDAT = "glg_trigdat_all_bn110721200_v01.fit"
RTOL = 1e-5
ATOL_OF_MAX = 1e-6  # elements below a millionth of the matrix maximum: compared absolutely


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


@pytest.fixture(scope="module")
def trigdat():
    folder = gbm_drm_gen_data_dir()
    if folder is None or not (folder / "balrog_db.h5").is_file():
        pytest.skip("gbm-drm-gen's balrog_db.h5 not found (set BAYSPEC_GBM_DRM_GEN_DATA)")
    return folder / "example_data" / TRIGDAT


@functools.lru_cache(maxsize=None)
def _generator(path: str, detector: str, time: float, edges: tuple) -> bj.balrog.DRMGenerator:
    return drm_generator(detector, trigdat=path, time=time, out_edges=np.array(edges),
                         mat_type=2)


def generator(trigdat, ref, d, t, mat_type=2):
    gen = _generator(str(trigdat), str(ref["detectors"][d]), float(ref["times"][t]),
                     tuple(ref["ebounds"][d]))
    return gen if mat_type == 2 else dataclasses.replace(gen, mat_type=mat_type)


def assert_close(actual, expected, scale, what):
    atol = ATOL_OF_MAX * scale
    bad = np.abs(actual - expected) > RTOL * np.abs(expected) + atol
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} differ, worst "
                           f"{np.max(np.abs(actual - expected) / (np.abs(expected) + atol)):.3g}")


@pytest.mark.parametrize("t", [0, 1])
@pytest.mark.parametrize("d", range(len(DETECTORS)))
def test_matrices_equal_gbm_drm_gen(trigdat, ref, d, t):
    """All 14 detectors, direct and direct + scattered, 50 positions each (occulted ones
    included), at the trigger time and 450 s later: row and column sums, 128 sampled elements
    per matrix, and whole matrices at three positions."""
    det = str(ref["detectors"][d])
    assert np.sum(ref["occulted"][d, t]) >= 5
    for m, mat_type in enumerate(ref["mat_types"]):
        gen = generator(trigdat, ref, d, t, int(mat_type))
        np.testing.assert_array_equal(np.asarray(gen.ebounds), ref["ebounds"][d])
        np.testing.assert_array_equal(np.asarray(gen.monte_carlo_energies),
                                      ref["monte_carlo_energies"][d])
        matrices = np.asarray(gen.matrices(ref["ra"][d, t], ref["dec"][d, t]))
        assert matrices.shape == (50, 128, 140)
        what = f"{det} t={ref['times'][t]} mat_type={mat_type}"
        occulted = ~matrices.any(axis=(1, 2))
        np.testing.assert_array_equal(occulted, ref["occulted"][d, t], err_msg=what)
        scale = ref["max_abs"][d, t, m][:, None]
        assert_close(matrices.sum(axis=2), ref["row_sums"][d, t, m], scale * 140, what)
        assert_close(matrices.sum(axis=1), ref["col_sums"][d, t, m], scale * 128, what)
        samples = matrices[:, ref["sample_chan"][d, t], ref["sample_phot"][d, t]]
        assert_close(samples, ref["samples"][d, t, m], scale, what)
        full = matrices[ref["full_position_index"][d, t]]
        assert_close(full, ref["full"][d, t, m], ref["max_abs"][d, t, m].max(), what)


def test_geometry_matches_gbm_drm_gen(trigdat, ref):
    """The spacecraft frame, as gbm-drm-gen computes it: source az/el at every position."""
    from bayspec_jax.balrog.generator import _az_el

    for d, t in ((6, 0), (12, 1)):
        gen = generator(trigdat, ref, d, t)
        directions = jax.vmap(gen.source_direction)(ref["ra"][d, t], ref["dec"][d, t])
        azimuth, elevation = _az_el(directions)
        np.testing.assert_allclose(np.asarray(elevation), ref["el"][d, t], atol=1e-9)
        delta = (np.asarray(azimuth) - ref["az"][d, t] + 180) % 360 - 180
        np.testing.assert_allclose(delta, 0, atol=1e-9)


def test_fold_equals_flux_times_drm(trigdat, ref):
    gen = generator(trigdat, ref, 6, 0)
    flux = jnp.asarray(np.geomspace(1.0, 1e-5, 140))
    ra, dec = ref["ra"][6, 0][:8], ref["dec"][6, 0][:8]
    folded = jax.vmap(gen.fold, in_axes=(0, 0, None))(ra, dec, flux)
    direct = jax.vmap(lambda r, d: flux @ gen.drm(r, d))(ra, dec)
    np.testing.assert_allclose(folded, direct, rtol=1e-12, atol=1e-14 * float(direct.max()))


def _stable_position(gen, ra, dec, h):
    """Whether the discrete choices (triangle vertices, nearest directions of the scattering
    cells, latitude rows) are the same over ``[ra - h, ra + h] x [dec - h, dec + h]``."""
    def choices(r, d):
        direction = gen._position(r, d)
        index, _ = _triangle(gen.grid, direction)
        nearest, upper, _, _ = gen._cells(direction)
        return np.concatenate([np.sort(np.asarray(index)), np.asarray(nearest).ravel(),
                               [int(upper)]])

    base = choices(ra, dec)
    return all(np.array_equal(base, choices(ra + a * h, dec + b * h))
               for a in (-1, 0, 1) for b in (-1, 0, 1)) and not bool(gen.occulted(ra, dec))


def test_drm_gradient_equals_finite_differences(trigdat, ref):
    """d(weights . DRM)/d(ra, dec), direct and scattered, against central differences at
    positions away from occultation and from the database triangles' edges."""
    h = 1e-5
    checked = 0
    for d, t in ((6, 0), (12, 1), (3, 1)):
        gen = generator(trigdat, ref, d, t)
        weights = jnp.asarray(np.random.default_rng(d).random((140, 128)))
        value = jax.jit(lambda r, d_: jnp.sum(weights * gen.drm(r, d_)))
        grad = jax.jit(jax.grad(lambda r, d_: jnp.sum(weights * gen.drm(r, d_)), argnums=(0, 1)))
        for ra, dec in zip(ref["ra"][d, t], ref["dec"][d, t]):
            if not _stable_position(gen, ra, dec, h):
                continue
            g_ra, g_dec = grad(ra, dec)
            fd_ra = (value(ra + h, dec) - value(ra - h, dec)) / (2 * h)
            fd_dec = (value(ra, dec + h) - value(ra, dec - h)) / (2 * h)
            np.testing.assert_allclose([g_ra, g_dec], [fd_ra, fd_dec], rtol=1e-5,
                                       atol=1e-7 * float(jnp.abs(value(ra, dec))))
            assert g_ra != 0 and g_dec != 0
            checked += 1
            if checked % 6 == 0:
                break
    assert checked >= 12


def _balrog_unit(gen, data_dir, ra=0.0, dec=0.0, free=True):
    par = (lambda v, lo, hi: bj.Par(v, bj.unif(lo, hi))) if free else (
        lambda v, lo, hi: bj.Par(v, frozen=True))
    rsp = bj.BalrogResponse(gen, ra=par(ra, 0.0, 360.0), dec=par(dec, -90.0, 90.0))
    name = "b0" if gen.detector.startswith("b") else "n6"
    src = "HE/he.src" if name == "b0" else "GBM/n6.src"
    bkg = "HE/he.bkg" if name == "b0" else "GBM/n6.bkg"
    notc = [300, 38000] if name == "b0" else [8, 900]
    return bj.DataUnit(src=str(data_dir / src), bkg=str(data_dir / bkg), rsp=rsp, notc=notc,
                       stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})


def test_balrog_response_on_the_generator(trigdat, ref, data_dir):
    """A `DataUnit` on `BalrogResponse(generator)` folds and fits as a constant response built
    from the generator's DRM at the same position; its log-likelihood's gradient in ra and dec
    equals central differences."""
    gen = generator(trigdat, ref, 6, 0)
    visible = ~ref["occulted"][6, 0]
    ra, dec = float(ref["ra"][6, 0][visible][0]), float(ref["dec"][6, 0][visible][0])
    unit = _balrog_unit(gen, data_dir, ra, dec)
    assert unit.rsp.balrog_drm is gen
    fixed = bj.Response(unit.rsp.chbin, unit.rsp.phbin, np.asarray(gen.drm(ra, dec)))
    const = unit.replace(rsp=fixed)
    params = jnp.array([-1.0, 2.5, 0.0])
    data, data_const = bj.Data([("n6", unit)]), bj.Data([("n6", const)])
    value = likelihood.loglike(bj.models.cpl, params, data)
    np.testing.assert_allclose(value, likelihood.loglike(bj.models.cpl, params, data_const),
                               rtol=1e-12)

    def at(r, d):
        return likelihood.loglike(bj.models.cpl, params, data, {"ra": jnp.array([r]),
                                                                "dec": jnp.array([d])})

    g_ra, g_dec = jax.grad(at, argnums=(0, 1))(ra, dec)
    h = 1e-5
    if _stable_position(gen, ra, dec, h):
        np.testing.assert_allclose(g_ra, (at(ra + h, dec) - at(ra - h, dec)) / (2 * h),
                                   rtol=1e-5)
        np.testing.assert_allclose(g_dec, (at(ra, dec + h) - at(ra, dec - h)) / (2 * h),
                                   rtol=1e-5)
    assert np.isfinite(g_ra) and np.isfinite(g_dec) and g_ra != 0


def test_float32(trigdat, ref):
    """In float32 the generator's DRM agrees with the float64 one to float32 rounding."""
    gen64 = generator(trigdat, ref, 6, 0)
    ra, dec = float(ref["ra"][6, 0][0]), float(ref["dec"][6, 0][0])
    expected = np.asarray(gen64.matrix(ra, dec))
    jax.config.update("jax_enable_x64", False)
    try:
        gen = drm_generator("n6", trigdat=trigdat, out_edges=ref["ebounds"][6], mat_type=2)
        matrix = gen.matrix(ra, dec)
        assert matrix.dtype == jnp.float32
        np.testing.assert_allclose(matrix, expected, rtol=1e-4, atol=1e-5 * expected.max())
        flux = jnp.asarray(np.geomspace(1.0, 1e-5, 140), jnp.float32)
        grad = jax.grad(lambda r, d: jnp.sum(gen.fold(r, d, flux)), argnums=(0, 1))(ra, dec)
        assert all(np.isfinite(g) for g in grad)
    finally:
        jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("kwargs, message", [
    (dict(detector="n12"), "unknown GBM detector"),
    (dict(mat_type=3), "mat_type must be 0"),
    (dict(out_edges=None), "out_edges is required"),
    (dict(out_edges=[10.0, 5.0, 20.0]), "out_edges must be at least 3 increasing"),
    (dict(in_edges=np.geomspace(5, 5e4, 140)), "in_edges must be an odd number"),
    (dict(trigdat=None), "neither"),
    (dict(time=1e5), "outside"),
])
def test_bad_arguments_are_named(trigdat, ref, kwargs, message):
    arguments = dict(detector="n6", trigdat=trigdat, out_edges=ref["ebounds"][6])
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        drm_generator(**arguments)


def test_database_path_errors(trigdat, ref, tmp_path):
    with pytest.raises(FileNotFoundError, match="BALROG database: no file"):
        drm_generator("n6", trigdat=trigdat, out_edges=ref["ebounds"][6],
                      database=tmp_path / "missing.h5")


def test_fetch_database_keeps_the_data_folder(tmp_path, monkeypatch):
    """`fetch_database` keeps only the database and the example files of the downloaded
    source distribution (pip replaced by a stand-in that writes a small archive)."""
    import subprocess
    import tarfile

    from bayspec_jax.balrog import fetch_database

    source = tmp_path / "src"
    files = {"gbm_drm_gen/data/balrog_db.h5": b"db", "gbm_drm_gen/data/trigdat_precalc.h5": b"x",
             "gbm_drm_gen/data/example_data/a.fit": b"a", "gbm_drm_gen/drmgen.py": b"code"}
    for name, content in files.items():
        path = source / "gbm_drm_gen-1.2.2" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        folder = pathlib.Path(command[command.index("-d") + 1])
        with tarfile.open(folder / "gbm_drm_gen-1.2.2.tar.gz", "w:gz") as archive:
            archive.add(source / "gbm_drm_gen-1.2.2", arcname="gbm_drm_gen-1.2.2")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    target = fetch_database(tmp_path / "cache" / "data")
    assert "gbm-drm-gen==1.2.2" in calls[0] and "--no-deps" in calls[0]
    kept = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert kept == ["balrog_db.h5", "example_data/a.fit"]
    assert (target / "balrog_db.h5").read_bytes() == b"db"
