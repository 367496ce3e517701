"""One copy of a response per distinct file (issue 16): units that read the same files share
their matrices, RMF x ARF is composed when it is asked for, and a float32 file matrix is
stored in float32 without changing any number."""

import gc
import warnings

import jax
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import likelihood, models
from bayspec_jax.data import response as response_module
from bayspec_jax.io import read_arf, read_rmf, write_rmf

X = "XRAY-sherpa-3c273"
N_UNITS = 200
PL = np.array([-1.95, -3.72])  # the reference point of the 3C 273 cases


def _buffers(tree) -> dict[int, jax.Array]:
    """Distinct array buffers among `tree`'s leaves, by address."""
    return {leaf.unsafe_buffer_pointer(): leaf for leaf in jax.tree_util.tree_leaves(tree)
            if isinstance(leaf, jax.Array)}


def _acis_unit(d, **kwargs):
    x = d / X
    return bj.DataUnit(src=str(x / "3c273.pi"), bkg=str(x / "3c273_bg.pi"),
                       rmf=str(x / "3c273.rmf"), arf=str(x / "3c273.arf"), notc=[0.5, 7.0],
                       stat="cstat", **kwargs)


@pytest.fixture(scope="module")
def acis_units(data_dir):
    """200 units, each reading the 3C 273 files by path."""
    return [_acis_unit(data_dir) for _ in range(N_UNITS)]


def test_200_units_of_one_rmf_and_arf_hold_one_matrix(acis_units):
    shape = (1090, 1024)
    responses = [(u.rmf, u.arf, u.rsp) for u in acis_units]
    matrices = [b for b in _buffers(acis_units).values() if b.shape == shape]
    assert len(matrices) == 1
    matrix_bytes = 1090 * 1024 * 4  # float32, as the file stores it
    assert matrices[0].nbytes == matrix_bytes
    total = sum(b.nbytes for b in _buffers(responses).values())
    # besides the matrix: the energy bins, channels and areas (once) and each response's
    # scalar ra, dec and factor
    assert matrix_bytes <= total < 1.02 * matrix_bytes
    # the grouped DRM of one grouping is shared too
    grouped = _buffers([u.rsp_drm for u in acis_units])
    assert len(grouped) == 1
    # everything the 200 units hold: under 0.2 MB a unit (its own spectra, masks and group
    # ids; 18.7 MB a unit when each held a float64 RMF and RSP)
    assert sum(b.nbytes for b in _buffers(acis_units).values()) < N_UNITS * 200_000


def test_200_units_of_one_rsp_file_hold_one_matrix(data_dir):
    d = data_dir
    units = [bj.DataUnit(src=str(d / "ME/me.src"), bkg=str(d / "ME/me.bkg"),
                         rsp=str(d / "ME/me.rsp"), notc=[8, 900], stat="pgstat",
                         grpg={"min_sigma": 2, "max_bin": 10}) for _ in range(N_UNITS)]
    matrices = [b for b in _buffers(units).values() if b.shape == (140, 128)]
    assert len(matrices) == 1 and matrices[0].dtype == np.float64  # not float32-exact
    total = sum(b.nbytes for b in _buffers([u.rsp for u in units]).values())
    assert matrices[0].nbytes <= total < 1.1 * matrices[0].nbytes


def test_stacking_keeps_one_copy(acis_units):
    data = bj.Data([(f"x{i}", u) for i, u in enumerate(acis_units)])
    (setup,) = data.setup
    assert len(setup.blocks) == 1
    grouped = acis_units[0].rsp_drm
    block_bytes = sum(b.nbytes for b in _buffers(setup.blocks).values()
                      if b.dtype.kind == "f")
    assert block_bytes <= grouped.nbytes
    # the channel setup (the full DRM, as `simulate` folds) holds one copy as well
    (channel,) = data.setup_for("channel")
    channel_bytes = sum(b.nbytes for b in _buffers(channel.blocks).values()
                        if b.dtype.kind == "f")
    assert channel_bytes <= 1090 * 1024 * 8


def test_values_equal_the_unshared_dense_computation(data_dir, acis_units, reference):
    x = data_dir / X
    rmf, arf = read_rmf(str(x / "3c273.rmf")), read_arf(str(x / "3c273.arf"))
    dense = bj.Response(rmf.chbin.astype(rmf.chbin_dtype), rmf.phbin.astype(rmf.phbin_dtype),
                        rmf.drm * arf.specresp[:, None], channels=rmf.channels)
    assert dense.matrix.dtype == np.float64 and dense.area is None
    shared = acis_units[0]
    unshared = shared.replace(rsp=dense, rmf=None, arf=None)
    np.testing.assert_array_equal(np.asarray(shared.rsp.drm), np.asarray(dense.drm))
    np.testing.assert_array_equal(np.asarray(shared.rsp_drm), np.asarray(unshared.rsp_drm))
    np.testing.assert_array_equal(np.asarray(shared.rsp_re_drm), np.asarray(unshared.rsp_re_drm))
    values = [float(likelihood.loglike(models.pl, PL, bj.Data([("x", u)])))
              for u in (shared, unshared)]
    assert values[0] == values[1]
    np.testing.assert_allclose(values[0], reference["X3C273_cstat"]["pair_cstat_loglike"],
                               rtol=1e-10)
    many = bj.Data([(f"x{i}", u) for i, u in enumerate(acis_units[:8])])
    assert float(likelihood.loglike(models.pl, PL, many)) == pytest.approx(8 * values[0],
                                                                            rel=1e-13)


def test_float32_file_matrix_is_stored_in_float32_losslessly(data_dir):
    x = data_dir / X
    rmf = bj.Redistribution.from_rmf(str(x / "3c273.rmf"))
    record = read_rmf(str(x / "3c273.rmf"))
    assert rmf.matrix.dtype == np.float32 and rmf.drm.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(rmf.drm), record.drm)
    arf = bj.Auxiliary.from_arf(str(x / "3c273.arf"))
    composed = rmf * arf
    assert composed.matrix is rmf.matrix and composed.area is arf.srp
    np.testing.assert_array_equal(np.asarray(composed.drm),
                                  record.drm * read_arf(str(x / "3c273.arf")).specresp[:, None])
    # a float64 matrix that float32 cannot hold exactly stays float64
    me = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
    assert me.matrix.dtype == np.float64 and me.drm is me.matrix


def test_float32_mode_does_not_get_float64_arrays_from_the_cache(data_dir):
    path = str(data_dir / "ME/me.rsp")
    in_float64 = bj.Response.from_rsp(path)
    with jax.enable_x64(False):
        in_float32 = bj.Response.from_rsp(path)
        assert in_float32.matrix.dtype == np.float32 and in_float32.drm.dtype == np.float32
    assert in_float64.matrix.dtype == np.float64


def test_what_the_user_passes_is_copied_and_cached_arrays_are_read_only(data_dir, tmp_path):
    x = data_dir / X
    record = read_rmf(str(x / "3c273.rmf"))
    chbin, phbin = record.chbin.copy(), record.phbin.copy()
    matrix = record.drm.copy()
    rmf = bj.Redistribution(chbin, phbin, matrix, channels=record.channels)
    srp = read_arf(str(x / "3c273.arf")).specresp.copy()
    arf = bj.Auxiliary(phbin, srp)
    unit = _acis_unit(data_dir).replace(rmf=rmf, arf=arf)
    before = np.asarray(unit.rsp.drm).copy(), np.asarray(unit.rsp_drm).copy()
    for array in (chbin, phbin, matrix, srp):
        array *= 2.0  # the caller edits its own arrays afterwards
    np.testing.assert_array_equal(np.asarray(unit.rsp.drm), before[0])
    np.testing.assert_array_equal(np.asarray(unit.rsp_drm), before[1])
    # editing what a reader returned does not reach a later load of that file
    fresh = read_rmf(str(x / "3c273.rmf"))
    fresh.drm[:] = -1.0
    loaded = bj.Redistribution.from_rmf(str(x / "3c273.rmf"))
    assert float(np.asarray(loaded.drm).min()) >= 0.0
    # the shared arrays cannot be written through numpy
    for shared in (loaded.matrix, loaded.chbin, unit.rsp_drm, unit.rsp.drm, unit.arf.srp):
        view = np.asarray(shared)
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[...] = 0.0


def _rewrite(path, record, scale):
    write_rmf(str(path), record.__class__(
        phbin=record.phbin, chbin=record.chbin, drm=record.drm * scale, channels=record.channels,
        chbin_dtype=record.chbin_dtype, phbin_dtype=record.phbin_dtype), kind="rsp",
        overwrite=True)


def test_a_rewritten_file_is_read_again_and_the_cache_lets_go(data_dir, tmp_path):
    record = read_rmf(str(data_dir / "ME/me.rsp"))
    path = tmp_path / "copy.rsp"
    _rewrite(path, record, 1.0 + 1e-9)  # content no other test reads
    first = bj.Response.from_rsp(str(path))
    again = bj.Response.from_rsp(str(path))
    assert again.matrix is first.matrix
    _rewrite(path, record, 2.0)  # same size, same name, new content
    rewritten = bj.Response.from_rsp(str(path))
    assert rewritten.matrix is not first.matrix
    np.testing.assert_allclose(np.asarray(rewritten.drm), 2.0 * record.drm, rtol=1e-15)
    # the cache holds its arrays weakly: once no response holds them, they go
    entries = len(response_module._FILES)
    del first, again, rewritten
    gc.collect()
    assert len(response_module._FILES) == entries - 2


def test_bytes_and_paths_of_the_same_content_share(data_dir):
    import io

    path = data_dir / X / "3c273.arf"
    by_path = bj.Auxiliary.from_arf(str(path))
    by_bytes = bj.Auxiliary.from_arf(io.BytesIO(path.read_bytes()))
    assert by_bytes.srp is by_path.srp
    assert by_path.file == str(path) and by_bytes.file == "<bytes>"


def test_redistribution_takes_no_area_and_area_is_checked():
    chbin = np.stack([np.arange(4.0), np.arange(1.0, 5.0)], axis=1)
    phbin = np.stack([np.arange(3.0), np.arange(1.0, 4.0)], axis=1)
    drm = np.ones((3, 4))
    with pytest.raises(ValueError, match="no effective area"):
        bj.Redistribution(chbin, phbin, drm, area=np.ones(3))
    with pytest.raises(ValueError, match=r"area must have shape \(3,\)"):
        bj.Response(chbin, phbin, drm, area=np.ones(4))
    with pytest.raises(ValueError, match="area must be finite"):
        bj.Response(chbin, phbin, drm, area=np.array([1.0, np.nan, 1.0]))
    response = bj.Response(chbin, phbin, drm, area=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(response.drm), drm * np.array([[1.0], [2.0], [3.0]]))


def test_a_traced_response_still_folds(data_dir):
    x = data_dir / X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        composed = (bj.Redistribution.from_rmf(str(x / "3c273.rmf"))
                    * bj.Auxiliary.from_arf(str(x / "3c273.arf")))
    flux = np.linspace(1.0, 2.0, composed.n_photon_bins)
    traced = jax.jit(lambda r, f: f @ r.drm)(composed, flux)
    np.testing.assert_allclose(np.asarray(traced), flux @ np.asarray(composed.drm), rtol=1e-12)
