"""Every example file loads, and the loaders reproduce bayspec 0.4.5's LOADER numbers."""

import contextlib
import io

import jax
import numpy as np
import pytest
from astropy.io import fits

import bayspec_jax as bj
from bayspec_jax.io import read_arf, read_pha, read_rmf

RTOL = 1e-10

LOADER_CASES = {
    "GBM_n6_src": (bj.Source.from_src, "GBM/n6.src"),
    "GBM_n6_bkg": (bj.Background.from_bkg, "GBM/n6.bkg"),
    "LE_src_poisserr": (bj.Source.from_src, "LE/le.src"),
    "LE2_src": (bj.Source.from_src, "LE/le2.src"),
    "LE2_bkg": (bj.Background.from_bkg, "LE/le2.bkg"),
    "ME_src2_row0": (lambda p: bj.Source.from_src2(p, 0), "ME/me.src2"),
}


@pytest.mark.parametrize("case", sorted(LOADER_CASES))
def test_loader_numbers_match_reference(case, data_dir, reference):
    loader, relpath = LOADER_CASES[case]
    expected = reference["LOADERS"][case]
    spectrum = loader(str(data_dir / relpath))
    counts = np.asarray(spectrum.counts)
    errors = np.asarray(spectrum.errors)
    assert counts.size == expected["n"]
    np.testing.assert_allclose(np.nansum(counts), expected["counts_sum"], rtol=RTOL)
    np.testing.assert_allclose(np.nansum(errors**2), expected["errors_sq_sum"], rtol=RTOL)
    np.testing.assert_allclose(float(spectrum.exposure), expected["exposure"], rtol=RTOL)
    np.testing.assert_allclose(np.asarray(spectrum.backscale), expected["backscale"], rtol=RTOL)
    if case.endswith("bkg"):
        # bayspec 0.4.5 ignores a background's QUALITY; these files have none, so 0 either way.
        assert int(np.sum(np.asarray(spectrum.quality) != 0)) == 0
    assert int(np.sum(np.asarray(spectrum.quality) != 0)) == expected["n_bad_quality"]
    assert int(np.sum(np.asarray(spectrum.grouping) == 1)) == expected["n_grp_start"]


def test_rsp2_extver1_matches_reference(data_dir, reference):
    expected = reference["LOADERS"]["ME_rsp2_extver1"]
    for response in (
        bj.Response.from_plain(str(data_dir / "ME/me.rsp2") + ":1"),
        bj.Response.from_rsp2(str(data_dir / "ME/me.rsp2"), 1),
        bj.Response.from_plain((str(data_dir / "ME/me.rsp2"), 1)),
    ):
        assert list(response.drm.shape) == expected["drm_shape"]
        np.testing.assert_allclose(float(response.drm.sum()), expected["drm_sum"], rtol=RTOL)


def test_pha2_rows_agree_with_direct_fits_read(data_dir):
    path = data_dir / "ME/me.bkg2"
    with fits.open(path) as hdul:
        table = hdul["SPECTRUM"].data
        for row in range(len(table)):
            spectrum = bj.Background.from_plain(f"{path}:{row}")
            np.testing.assert_array_equal(np.asarray(spectrum.counts), table["COUNTS"][row])
            np.testing.assert_array_equal(np.asarray(spectrum.errors), table["STAT_ERR"][row])
            np.testing.assert_array_equal(np.asarray(spectrum.quality), table["QUALITY"][row])
            assert float(spectrum.exposure) == float(table["EXPOSURE"][row])
    good = np.asarray(spectrum.quality) == 0
    assert np.all(np.isfinite(np.asarray(spectrum.counts)[good]))
    assert np.isnan(np.asarray(spectrum.counts)[~good]).all()


def test_every_example_file_loads(data_dir):
    loaded = 0
    for path in sorted(data_dir.glob("*/*")):
        name = path.name
        if name.endswith((".src", ".bkg", ".pi")):
            spectrum = bj.Source.from_plain(str(path))
            assert spectrum.n_channels > 0
        elif name.endswith((".src2", ".bkg2")):
            for row in range(bj.io.count_pha_rows(str(path))):
                assert bj.Source.from_src2(str(path), row).n_channels == 470
        elif name.endswith((".rsp", ".rsp2", ".rmf")):
            response = bj.Response.from_plain(str(path))
            assert np.all(np.isfinite(np.asarray(response.drm)))
        elif name.endswith(".arf"):
            negative_areas = name == "le.arf"  # 19 negative SPECRESP values: a warning
            with pytest.warns(UserWarning, match="negative") if negative_areas else (
                    contextlib.nullcontext()):
                arf = bj.Auxiliary.from_arf(str(path))
            assert arf.srp.shape[0] == arf.phbin.shape[0]
        else:
            continue
        loaded += 1
    assert loaded == 36



def _dense_from_fits(rmf_path):
    """An independent reconstruction of an OGIP matrix: one row at a time, group by group."""
    with fits.open(rmf_path) as hdul:
        matrix = hdul["MATRIX"]
        nchan = len(hdul["EBOUNDS"].data)
        first = int(matrix.header["TLMIN4"])
        dense = np.zeros((len(matrix.data), nchan))
        for i, row in enumerate(matrix.data):
            values = np.asarray(row["MATRIX"], dtype=float)
            position = 0
            for g in range(int(row["N_GRP"])):
                start = int(row["F_CHAN"][g]) - first
                width = int(row["N_CHAN"][g])
                dense[i, start : start + width] = values[position : position + width]
                position += width
        return dense


def test_3c273_rmf_times_arf_equals_dense_reconstruction(data_dir):
    rmf_path = data_dir / "XRAY-sherpa-3c273/3c273.rmf"
    arf_path = data_dir / "XRAY-sherpa-3c273/3c273.arf"
    rmf = bj.Redistribution.from_rmf(str(rmf_path))
    arf = bj.Auxiliary.from_arf(str(arf_path))
    response = rmf * arf
    assert type(response) is bj.Response
    with fits.open(arf_path) as hdul:
        area = np.asarray(hdul["SPECRESP"].data["SPECRESP"], dtype=float)
    expected = _dense_from_fits(rmf_path) * area[:, None]
    np.testing.assert_array_equal(np.asarray(response.drm), expected)
    np.testing.assert_array_equal(np.asarray((arf * rmf).drm), expected)
    # groups with N_GRP = 2 exist in this file, and the matrix is not trivially diagonal
    with fits.open(rmf_path) as hdul:
        assert np.max(hdul["MATRIX"].data["N_GRP"]) == 2
    assert np.count_nonzero(np.asarray(rmf.drm)) > 10 * rmf.drm.shape[0]


def test_fixed_length_rsp_equals_dense_columns(data_dir):
    path = data_dir / "ME/me.rsp"
    response = bj.Response.from_rsp(str(path))
    with fits.open(path) as hdul:
        table = hdul["SPECRESP MATRIX"].data
        expected = np.zeros((len(table), 128))
        for i, row in enumerate(table):
            f, n = int(np.atleast_1d(row["F_CHAN"])[0]), int(np.atleast_1d(row["N_CHAN"])[0])
            expected[i, f - 1 : f - 1 + n] = row["MATRIX"][:n]
        chbin = np.stack([hdul["EBOUNDS"].data["E_MIN"], hdul["EBOUNDS"].data["E_MAX"]], 1)
        chbin = chbin.astype(np.float64)
    np.testing.assert_array_equal(np.asarray(response.drm), expected)
    np.testing.assert_array_equal(np.asarray(response.chbin), chbin)
    # EBOUNDS are float32 in the file; widths and centres are computed in float32, as bayspec.
    assert response.chbin.dtype == np.float32
    f32 = chbin.astype(np.float32)
    np.testing.assert_array_equal(np.asarray(response.chbin_width), f32[:, 1] - f32[:, 0])
    np.testing.assert_allclose(np.asarray(response.chbin_mean), f32.mean(1), rtol=1e-7)


def test_bytesio_and_tuple_sources(data_dir):
    raw = (data_dir / "ME/me.src2").read_bytes()
    stream = io.BytesIO(raw)
    stream.seek(17)
    from_stream = bj.Source.from_src2(stream, 4)
    from_path = bj.Source.from_plain(f"{data_dir / 'ME/me.src2'}:4")
    from_tuple = bj.Source.from_plain((str(data_dir / "ME/me.src2"), 4))
    assert stream.tell() == 17 and stream.getvalue() == raw
    for other in (from_path, from_tuple):
        np.testing.assert_array_equal(np.asarray(from_stream.counts), np.asarray(other.counts))
        assert float(from_stream.exposure) == float(other.exposure)


def test_rate_columns_are_scaled_by_exposure(tmp_path, data_dir):
    pha = read_pha(str(data_dir / "ME/me.src"))
    columns = [
        fits.Column(name="CHANNEL", format="J", array=pha.channels),
        fits.Column(name="RATE", format="D", array=pha.counts / pha.exposure),
        fits.Column(name="STAT_ERR", format="D", array=pha.stat_err / pha.exposure),
        fits.Column(name="SYS_ERR", format="D", array=np.full(pha.n_channels, 0.03)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="SPECTRUM")
    hdu.header.update(EXPOSURE=pha.exposure, POISSERR=False, HDUCLAS1="SPECTRUM")
    path = tmp_path / "rate.pha"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    spectrum = bj.Source.from_src(str(path))
    np.testing.assert_allclose(np.asarray(spectrum.counts), pha.counts, rtol=1e-13)
    expected = np.sqrt(pha.stat_err**2 + (0.03 * pha.counts) ** 2)
    np.testing.assert_allclose(np.asarray(spectrum.errors), expected, rtol=1e-13)


def test_containers_are_immutable_pytrees_accepted_by_jit(data_dir):
    source = bj.Source.from_src(str(data_dir / "ME/me.src"))
    response = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
    leaves = jax.tree.leaves(source)
    assert any(leaf is source.counts for leaf in leaves)
    assert any(leaf is response.drm for leaf in jax.tree.leaves(response))
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)

    @jax.jit
    def folded_total(spec, rsp):
        return (spec.counts.sum() * spec.factor.value, rsp.drm.sum(0) @ spec.counts)

    total, dot = folded_total(source, response)
    assert float(total) == float(np.asarray(source.counts).sum())
    np.testing.assert_allclose(
        float(dot), np.asarray(response.drm).sum(0) @ np.asarray(source.counts), rtol=1e-12)
    with pytest.raises(AttributeError):
        source.counts = source.counts * 2  # frozen dataclass
    doubled = jax.tree.map(lambda x: x * 2 if x.dtype.kind == "f" else x, source)
    assert float(doubled.exposure) == 2 * float(source.exposure)
    assert float(source.exposure) == pytest.approx(9.8495)


def test_default_parameters(data_dir):
    response = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
    source = bj.Source.from_src(str(data_dir / "ME/me.src"))
    for par, value in ((response.ra, 0.0), (response.dec, 0.0), (response.factor, 1.0),
                       (source.factor, 1.0)):
        assert par.frozen and float(par.value) == value


def test_info_tables(data_dir):
    source = bj.Source.from_src(str(data_dir / "ME/me.src"))
    text = str(source)
    assert "me.src" in text and "57295" in text and "9.8495" in text
    assert "<table>" in source._repr_html_() and "57295" in source._repr_html_()
    rsp = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
    assert "140" in str(rsp) and "128" in str(rsp)
    arf = bj.Auxiliary.from_arf(str(data_dir / "XRAY-sherpa-3c273/3c273.arf"))
    assert "1090" in str(arf) and "<table>" in arf._repr_html_()


def test_float32_mode_gives_float32_arrays(data_dir):
    with jax.enable_x64(False):
        source = bj.Source.from_src(str(data_dir / "ME/me.src"))
        response = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
        assert source.counts.dtype == np.float32 and response.drm.dtype == np.float32
        np.testing.assert_allclose(float(response.drm.sum()),
                                   float(read_rmf(str(data_dir / "ME/me.rsp")).drm.sum()),
                                   rtol=1e-5)


def test_arf_reader_matches_file(data_dir):
    arf = read_arf(str(data_dir / "XRAY-sherpa-3c273/3c273.arf"))
    with fits.open(data_dir / "XRAY-sherpa-3c273/3c273.arf") as hdul:
        np.testing.assert_array_equal(arf.specresp, hdul["SPECRESP"].data["SPECRESP"])
        np.testing.assert_array_equal(arf.phbin[:, 0], hdul["SPECRESP"].data["ENERG_LO"])
