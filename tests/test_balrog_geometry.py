"""`bayspec_jax.balrog.geometry`: spacecraft attitude, position and Earth direction against
gbmgeometry 1.0.7 / gbm-drm-gen 1.2.2 (numbers in ``balrog_reference/geometry.npz``, written by
``balrog_reference/make_geometry_reference.py``)."""

import hashlib
import pathlib

import numpy as np
import pytest
from astropy.io import fits

from bayspec_jax.balrog import database
from bayspec_jax.balrog.database import gbm_drm_gen_data_dir
from bayspec_jax.balrog.geometry import earth_direction, spacecraft_axes, spacecraft_state

REFERENCE = pathlib.Path(__file__).resolve().parent / "balrog_reference" / "geometry.npz"
TRIGDAT_NAME = "glg_trigdat_all_bn110721200_v01.fit"
TOL = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as f:
        return {key: f[key] for key in f.files}


@pytest.fixture(scope="module")
def trigdat():
    data = gbm_drm_gen_data_dir()
    if data is None:
        pytest.skip("gbm-drm-gen's data folder not found (set BAYSPEC_GBM_DRM_GEN_DATA to it)")
    path = data / "example_data" / TRIGDAT_NAME
    if not path.is_file():
        pytest.skip(f"{path} not found in gbm-drm-gen's data folder")
    return path


def write_poshist(path, met, quats, pos_m, drop=()):
    """The reference script's poshist layout, optionally without some columns."""
    columns = [fits.Column(name="SCLK_UTC", format="D", unit="s", array=met)]
    columns += [fits.Column(name=f"QSJ_{i + 1}", format="D", array=quats[:, i]) for i in range(4)]
    columns += [fits.Column(name=f"POS_{c}", format="D", unit="m", array=pos_m[:, i])
                for i, c in enumerate("XYZ")]
    columns.append(fits.Column(name="FLAGS", format="I", array=np.ones(met.size, np.int16)))
    columns = [c for c in columns if c.name not in drop]
    table = fits.BinTableHDU.from_columns(columns, name="GLAST POS HIST")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


@pytest.fixture(scope="module")
def poshist(ref, tmp_path_factory):
    path = tmp_path_factory.mktemp("poshist") / "glg_poshist_all_synthetic.fit"
    return write_poshist(path, ref["poshist_table_sclk_utc"], ref["poshist_table_qsj"],
                         ref["poshist_table_pos_m"])


def check_states(ref, prefix, **files):
    for i, t in enumerate(ref[f"{prefix}_times"]):
        state = spacecraft_state(time=float(t), **files)
        assert state.quaternion.shape == (4,) and state.quaternion.dtype == np.float64
        assert state.position.shape == (3,) and state.position.dtype == np.float64
        assert isinstance(state.met, float)
        np.testing.assert_allclose(state.quaternion, ref[f"{prefix}_quaternion"][i], **TOL)
        np.testing.assert_allclose(state.position, ref[f"{prefix}_sc_pos"][i], rtol=1e-12)
        np.testing.assert_allclose(state.met, ref[f"{prefix}_met"][i], rtol=1e-15)
        if f"{prefix}_drm_axes" not in ref:
            continue
        np.testing.assert_allclose(state.quaternion, ref[f"{prefix}_drm_quaternion"][i], **TOL)
        np.testing.assert_allclose(state.position, ref[f"{prefix}_drm_sc_pos"][i], rtol=1e-12)
        axes = spacecraft_axes(state.quaternion)
        np.testing.assert_allclose(axes, ref[f"{prefix}_drm_axes"][i], **TOL)
        geo_az, geo_el = earth_direction(axes, state.position)
        np.testing.assert_allclose(geo_az, ref[f"{prefix}_drm_geo_az"][i], rtol=1e-12)
        np.testing.assert_allclose(geo_el, ref[f"{prefix}_drm_geo_el"][i], rtol=1e-12)


def test_trigdat_states_match_gbmgeometry_and_drmgen(ref, trigdat):
    check_states(ref, "trigdat", trigdat=trigdat)


def test_trigdat_accepts_str_path_and_int_time(ref, trigdat):
    state = spacecraft_state(trigdat=str(trigdat), time=0)
    i = int(np.nonzero(ref["trigdat_times"] == 0.0)[0][0])
    np.testing.assert_allclose(state.quaternion, ref["trigdat_quaternion"][i], **TOL)
    assert state.met == float(ref["trigdat_trigtime"])


def test_poshist_with_t0_matches_gbmgeometry_and_drmgen(ref, poshist):
    check_states(ref, "poshist_t0", poshist=poshist, T0=float(ref["trigdat_trigtime"]))


def test_poshist_without_t0_is_on_met(ref, poshist):
    check_states(ref, "poshist_met", poshist=poshist)


def test_poshist_position_is_km_like_drmgen(ref, poshist):
    """gbmgeometry scales poshist metres by 0.001, so DRMGen's occultation test gets km."""
    state = spacecraft_state(poshist=poshist, time=0.0, T0=float(ref["trigdat_trigtime"]))
    radius = np.linalg.norm(state.position)
    assert 6800.0 < radius < 7100.0


@pytest.mark.parametrize("end", [0, 1])
def test_trigdat_time_outside_range_is_an_error(ref, trigdat, end):
    start, stop = ref["trigdat_range"]
    time = start - 0.5 if end == 0 else stop + 1e-6
    with pytest.raises(ValueError, match=r"outside the file's range \[-131\.39.*, 466\.63.*\] s "
                       r"\(relative to TRIGTIME 332916465\.760476\)") as info:
        spacecraft_state(trigdat=trigdat, time=time)
    assert TRIGDAT_NAME in str(info.value)
    assert "trigdat file" in str(info.value)


def test_poshist_time_outside_range_is_an_error(ref, poshist):
    met = ref["poshist_table_sclk_utc"]
    with pytest.raises(ValueError, match=r"poshist file .*outside the file's range .* \(MET\)"):
        spacecraft_state(poshist=poshist, time=float(met.max()) + 10.0)
    with pytest.raises(ValueError, match=r"outside the file's range .*\(relative to T0 "):
        spacecraft_state(poshist=poshist, time=-1000.0, T0=float(ref["trigdat_trigtime"]))


@pytest.mark.parametrize("time", [float("nan"), float("inf"), "soon"])
def test_bad_time_is_an_error(trigdat, time):
    with pytest.raises(ValueError, match="time must be"):
        spacecraft_state(trigdat=trigdat, time=time)


def test_neither_or_both_files_is_an_error(trigdat, poshist):
    with pytest.raises(ValueError, match="exactly one of trigdat= and poshist=, got neither"):
        spacecraft_state(time=0.0)
    with pytest.raises(ValueError, match="exactly one of trigdat= and poshist=, got both"):
        spacecraft_state(trigdat=trigdat, poshist=poshist, time=0.0)


def test_t0_with_trigdat_is_an_error(trigdat):
    with pytest.raises(ValueError, match="T0 applies to poshist files only"):
        spacecraft_state(trigdat=trigdat, time=0.0, T0=332916465.760476)


def test_missing_file_is_an_error(tmp_path):
    missing = tmp_path / "glg_trigdat_all_bn000000000_v00.fit"
    with pytest.raises(FileNotFoundError, match=r"trigdat file .*bn000000000_v00\.fit.* not found"):
        spacecraft_state(trigdat=missing)
    with pytest.raises(FileNotFoundError, match="poshist file .* not found"):
        spacecraft_state(poshist=tmp_path / "nothing.fit")


def test_missing_extension_is_an_error(tmp_path, poshist):
    with pytest.raises(ValueError, match=r"no 'EVNTRATE' extension \(extensions: \['PRIMARY', "
                       r"'GLAST POS HIST'\]\)"):
        spacecraft_state(trigdat=poshist)
    not_fits = tmp_path / "notes.fit"
    not_fits.write_text("not a FITS file")
    with pytest.raises(ValueError, match="notes.fit"):
        spacecraft_state(trigdat=not_fits)


def test_missing_poshist_column_is_an_error(ref, tmp_path):
    path = write_poshist(tmp_path / "poshist.fit", ref["poshist_table_sclk_utc"],
                         ref["poshist_table_qsj"], ref["poshist_table_pos_m"], drop=("POS_Z",))
    with pytest.raises(ValueError, match=r"poshist\.fit, extension 'GLAST POS HIST', "
                       r"column/keyword 'POS_Z': column missing"):
        spacecraft_state(poshist=path, time=float(ref["poshist_table_sclk_utc"][0]))


def trigdat_like(path, rows=3, trigtime=100.0, drop=(), quat_width=4):
    columns = [
        fits.Column(name="TIME", format="D", array=100.0 + np.arange(rows, dtype=float)),
        fits.Column(name="SCATTITD", format=f"{quat_width}E",
                    array=np.tile([0.0, 0.0, 0.0, 1.0][:quat_width], (rows, 1))),
        fits.Column(name="EIC", format="3E", array=np.tile([7000.0, 0.0, 0.0], (rows, 1))),
    ]
    hdu = fits.BinTableHDU.from_columns([c for c in columns if c.name not in drop],
                                        name="EVNTRATE")
    if trigtime is not None:
        hdu.header["TRIGTIME"] = trigtime
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_small_trigdat_like_file(tmp_path):
    """An attitude with the spacecraft axes on the sky axes, the Earth along -x."""
    state = spacecraft_state(trigdat=trigdat_like(tmp_path / "t.fit"), time=0.5)
    np.testing.assert_array_equal(state.quaternion, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(state.position, [7000.0, 0.0, 0.0])
    assert state.met == 100.5
    axes = spacecraft_axes(state.quaternion)
    np.testing.assert_array_equal(axes, np.eye(3))
    assert earth_direction(axes, state.position) == (180.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"drop": ("EIC",)}, r", column/keyword 'EIC': column missing"),
        ({"drop": ("TIME",)}, r", column/keyword 'TIME': column missing"),
        ({"trigtime": None}, r", column/keyword 'TRIGTIME': header keyword missing"),
        ({"quat_width": 3}, r", column/keyword 'SCATTITD': expected shape \(3, 4\), got \(3, 3\)"),
        ({"rows": 1}, r": expected at least 2 rows to interpolate between, got 1"),
    ],
)
def test_malformed_trigdat_is_an_error(tmp_path, kwargs, message):
    path = trigdat_like(tmp_path / "bad_trigdat.fit", **kwargs)
    where = r"file .*bad_trigdat\.fit, extension 'EVNTRATE'"
    with pytest.raises(ValueError, match=where + message):
        spacecraft_state(trigdat=path, time=0.0)


def test_inputs_are_not_modified(ref, trigdat, poshist):
    def digest(path):
        return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()

    digests = {p: digest(p) for p in (trigdat, poshist)}
    spacecraft_state(trigdat=trigdat, time=1.0)
    spacecraft_state(poshist=poshist, time=1.0, T0=float(ref["trigdat_trigtime"]))
    for p, before in digests.items():
        assert digest(p) == before
    quaternion = np.array([0.1, -0.2, 0.3, 0.9])
    position = np.array([1.0, 2.0, 3.0])
    axes = spacecraft_axes(quaternion)
    axes_before = axes.copy()
    earth_direction(axes, position)
    np.testing.assert_array_equal(quaternion, [0.1, -0.2, 0.3, 0.9])
    np.testing.assert_array_equal(position, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(axes, axes_before)


def test_axes_are_a_rotation_for_a_unit_quaternion():
    q = np.array([0.3, -0.5, 0.1, 0.8])
    q /= np.linalg.norm(q)
    axes = spacecraft_axes(q)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(np.linalg.det(axes), 1.0, rtol=1e-15)


def test_earth_direction_range_and_shapes():
    axes = np.eye(3)
    az, el = earth_direction(axes, [0.0, 7000.0, 0.0])  # Earth along -y
    assert (az, el) == (270.0, 0.0)
    az, el = earth_direction(axes, [0.0, 0.0, -7000.0])  # Earth along +z
    assert el == 90.0
    with pytest.raises(ValueError, match=r"axes must have shape \(3, 3\)"):
        earth_direction(np.eye(2), [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"position must have shape \(3,\)"):
        earth_direction(axes, [1.0, 0.0])
    with pytest.raises(ValueError, match="Earth direction is undefined"):
        earth_direction(axes, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"quaternion must have shape \(4,\)"):
        spacecraft_axes([1.0, 0.0, 0.0])


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(database.DATA_DIR_ENV, str(tmp_path))
    assert gbm_drm_gen_data_dir() == tmp_path
    monkeypatch.setenv(database.DATA_DIR_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError,
                       match="BAYSPEC_GBM_DRM_GEN_DATA=.*absent.* is not a folder"):
        gbm_drm_gen_data_dir()
