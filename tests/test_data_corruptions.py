"""Bad files and extreme values at the data layer (issue 16): background QUALITY, GROUPING
with no group start, AREASCAL, per-channel BACKSCAL, a response without effective area in the
noticed band, and channel numbers that do not line up.

Each case writes a corrupted (or edited) copy of a real example file into `tmp_path` with
astropy.io.fits and checks the exception (type, file, column) or the numbers.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.io import fits

import bayspec_jax as bj
from bayspec_jax import likelihood, models, simulate
from bayspec_jax.io import OGIPError

CPL = np.array([-1.563, 2.691, 2.354])
PL = np.array([-1.8, -2.0])
K = 40  # a channel inside ME's [8, 900] keV band


def _copy(source, target, edit=None):
    """Write `source` to `target` after `edit(hdul)`; returns the path as a string."""
    with fits.open(source) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        if edit is not None:
            edit(hdul)
        hdul.writeto(target)
    return str(target)


def _set_column(hdul, ext, name, values, fmt):
    """Replace or add column `name` of extension `ext`."""
    hdu = hdul[ext]
    column = fits.Column(name=name, format=fmt, array=np.asarray(values))
    columns = [column if c.name == name else c for c in hdu.columns]
    if name not in hdu.columns.names:
        columns.append(column)
    new = fits.BinTableHDU.from_columns(columns, header=hdu.header, name=hdu.name)
    for key in list(new.header):
        if key == name:  # a keyword of the same name would shadow the column
            del new.header[key]
    hdul[ext] = new


def _drop(hdul, ext):
    if ext in hdul:
        del hdul[ext]


def _loglike(unit, model=models.cpl, params=CPL):
    return float(likelihood.loglike(model, jnp.asarray(params), bj.Data([("u", unit)])))


@pytest.fixture(scope="module")
def me(data_dir):
    return {k: str(data_dir / f"ME/me.{k}") for k in ("src", "bkg", "rsp")}


@pytest.fixture(scope="module")
def x3c(data_dir):
    x = data_dir / "XRAY-sherpa-3c273"
    return dict(src=str(x / "3c273.pi"), bkg=str(x / "3c273_bg.pi"), rmf=str(x / "3c273.rmf"),
                arf=str(x / "3c273.arf"))


# -- 1. background QUALITY ----------------------------------------------------------------------


def _bad_channel(values, k=K):
    quality = np.zeros(len(values), np.int16)
    quality[k] = 1
    return quality


@pytest.mark.parametrize("grpg", [None, {"min_sigma": 3, "max_bin": 10}])
def test_a_channel_the_background_marks_bad_is_not_used(me, tmp_path, grpg):
    """The background marks channel K bad (and holds NaN there); the source calls it good. The
    channel is used only when both call it good, so the unit equals the one whose source marks
    K bad."""
    def corrupt_bkg(hdul):
        data = hdul["SPECTRUM"].data
        counts = np.array(data["COUNTS"], np.float64)
        errors = np.array(data["STAT_ERR"], np.float64)
        counts[K] = errors[K] = np.nan
        _set_column(hdul, "SPECTRUM", "COUNTS", counts, "D")
        _set_column(hdul, "SPECTRUM", "STAT_ERR", errors, "D")
        _set_column(hdul, "SPECTRUM", "QUALITY", _bad_channel(counts), "I")

    def bad_src(hdul):
        _set_column(hdul, "SPECTRUM", "QUALITY", _bad_channel(hdul["SPECTRUM"].data["COUNTS"]), "I")

    bkg = _copy(me["bkg"], tmp_path / "bad_quality.bkg", corrupt_bkg)
    src = _copy(me["src"], tmp_path / "bad_quality.src", bad_src)
    unit = bj.DataUnit(src=me["src"], bkg=bkg, rsp=me["rsp"], notc=[8, 900], grpg=grpg)
    want = bj.DataUnit(src=src, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900], grpg=grpg)
    assert not bool(unit.qualifying[K])
    assert int(unit.group_ids[K]) == unit.n_groups  # in no group
    assert unit.n_groups == want.n_groups
    np.testing.assert_array_equal(np.asarray(unit.group_ids), np.asarray(want.group_ids))
    for view in ("src_counts", "bkg_counts", "bkg_errors", "net_ctsspec", "rsp_drm"):
        got = np.asarray(getattr(unit, view))
        assert np.all(np.isfinite(got)), view
        np.testing.assert_array_equal(got, np.asarray(getattr(want, view)), err_msg=view)
    value = _loglike(unit)
    assert np.isfinite(value) and value == _loglike(want)


def test_a_non_finite_value_in_a_used_channel_names_file_column_and_channel(me, tmp_path):
    def corrupt(hdul):
        counts = np.array(hdul["SPECTRUM"].data["COUNTS"], np.float64)
        counts[K] = np.nan
        _set_column(hdul, "SPECTRUM", "COUNTS", counts, "D")
        _set_column(hdul, "SPECTRUM", "QUALITY", _bad_channel(counts), "I")

    path = _copy(me["bkg"], tmp_path / "nan.bkg", corrupt)
    # A file that calls the channel good is refused by the reader ...
    good = _copy(path, tmp_path / "nan_good.bkg",
                 lambda h: _set_column(h, "SPECTRUM", "QUALITY", np.zeros(128, np.int16), "I"))
    with pytest.raises(OGIPError, match="COUNTS") as info:
        bj.DataUnit(src=me["src"], bkg=good, rsp=me["rsp"], notc=[8, 900])
    assert good in str(info.value)
    # ... and a spectrum whose flags were changed afterwards (no validation) by the unit.
    bkg = bj.Background.from_bkg(path)
    bkg = eqx.tree_at(lambda b: b.quality, bkg, jnp.zeros_like(bkg.quality))
    with pytest.raises(OGIPError) as info:
        bj.DataUnit(src=me["src"], bkg=bkg, rsp=me["rsp"], notc=[8, 900])
    message = str(info.value)
    channel = int(np.asarray(bkg.channels)[K])
    assert path in message and "'COUNTS'" in message and f"[{channel}]" in message
    assert info.value.file == path and info.value.column == "COUNTS"


# -- 2. GROUPING with no group start ---------------------------------------------------------


@pytest.mark.parametrize("flag", [-1, 0])
def test_grouping_without_a_group_start_fails_at_the_unit(me, tmp_path, flag):
    flags = np.full(128, flag, np.int16)
    path = _copy(me["src"], tmp_path / f"grouping{flag}.src",
                 lambda h: _set_column(h, "SPECTRUM", "GROUPING", flags, "I"))
    with pytest.raises(OGIPError, match="GROUPING") as info:  # by the reader or the unit
        bj.DataUnit(src=path, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert path in str(info.value) and info.value.column == "GROUPING"
    # Flags changed after reading: the unit says it, naming the file it came from ...
    source = bj.Source.from_src(me["src"])
    regrouped = eqx.tree_at(lambda s: s.grouping, source, jnp.full_like(source.grouping, flag))
    with pytest.raises(OGIPError, match="starts no group") as info:
        bj.DataUnit(src=regrouped, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert me["src"] in str(info.value) and info.value.column == "GROUPING"
    # ... and grouping built here ignores the file's flags.
    unit = bj.DataUnit(src=regrouped, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900],
                       grpg={"min_sigma": 3, "max_bin": 10})
    assert unit.n_groups > 0


def test_file_groups_outside_the_noticed_channels_fail_at_the_unit(me, tmp_path):
    flags = -np.ones(128, np.int16)
    flags[0] = 1  # one group of all channels: never wholly inside [8, 900] keV
    path = _copy(me["src"], tmp_path / "one_group.src",
                 lambda h: _set_column(h, "SPECTRUM", "GROUPING", flags, "I"))
    with pytest.raises(OGIPError, match="wholly inside") as info:
        bj.DataUnit(src=path, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert path in str(info.value) and info.value.column == "GROUPING"


# -- 3. AREASCAL -------------------------------------------------------------------------------


def _keyword(name, value):
    def edit(hdul):
        hdul["SPECTRUM"].header[name] = value
    return edit


def test_areascal_scales_the_source_efficiency_and_alpha(x3c, tmp_path):
    """alpha = (EXPOSURE_s AREASCAL_s BACKSCAL_s) / (EXPOSURE_b AREASCAL_b BACKSCAL_b); the
    model counts are EXPOSURE_s AREASCAL_s times the folded rate. So AREASCAL_s = 0.5 and
    AREASCAL_b = 0.8 give the same likelihood as exposures scaled by 0.5 and 0.8."""
    src = _copy(x3c["src"], tmp_path / "areascal.pi", _keyword("AREASCAL", 0.5))
    bkg = _copy(x3c["bkg"], tmp_path / "areascal_bg.pi", _keyword("AREASCAL", 0.8))
    with fits.open(x3c["src"]) as s, fits.open(x3c["bkg"]) as b:
        es, eb = s["SPECTRUM"].header["EXPOSURE"], b["SPECTRUM"].header["EXPOSURE"]
        bs, bb = s["SPECTRUM"].header["BACKSCAL"], b["SPECTRUM"].header["BACKSCAL"]
    src_exp = _copy(x3c["src"], tmp_path / "exposure.pi", _keyword("EXPOSURE", es * 0.5))
    bkg_exp = _copy(x3c["bkg"], tmp_path / "exposure_bg.pi", _keyword("EXPOSURE", eb * 0.8))
    settings = dict(rmf=x3c["rmf"], arf=x3c["arf"], notc=[[0.5, 2.0], [2.5, 7.0]])
    plain = bj.DataUnit(src=x3c["src"], bkg=x3c["bkg"], stat="cstat", **settings)
    scaled = bj.DataUnit(src=src, bkg=bkg, stat="cstat", **settings)
    by_exposure = bj.DataUnit(src=src_exp, bkg=bkg_exp, stat="cstat", **settings)
    assert float(scaled.src.areascale) == 0.5 and float(scaled.bkg.areascale) == 0.8
    assert float(scaled.src_efficiency) == es * 0.5
    assert float(scaled.bkg_efficiency) == eb * 0.8 * bb / bs
    np.testing.assert_allclose(float(scaled.alpha), (es * 0.5 * bs) / (eb * 0.8 * bb), rtol=1e-15)
    np.testing.assert_allclose(float(scaled.alpha), float(plain.alpha) * 0.5 / 0.8, rtol=1e-15)
    setup = bj.Data([("u", scaled)]).setup[0]
    np.testing.assert_array_equal(np.asarray(setup.ts), es * 0.5)
    np.testing.assert_array_equal(np.asarray(setup.tb), eb * 0.8 * bb / bs)
    for stat in ("cstat", "pgstat"):
        a, b = scaled.replace(stat=stat), by_exposure.replace(stat=stat)
        value = _loglike(a, models.pl, PL)
        np.testing.assert_allclose(value, _loglike(b, models.pl, PL), rtol=1e-13)
        assert value != _loglike(plain.replace(stat=stat), models.pl, PL)


def test_an_areascal_column_of_equal_values_equals_the_keyword(x3c, tmp_path):
    src = _copy(x3c["src"], tmp_path / "key.pi", _keyword("AREASCAL", 0.5))
    column = _copy(x3c["src"], tmp_path / "column.pi",
                   lambda h: _set_column(h, "SPECTRUM", "AREASCAL", np.full(1024, 0.5), "D"))
    settings = dict(bkg=x3c["bkg"], rmf=x3c["rmf"], arf=x3c["arf"], notc=[0.5, 7.0],
                    stat="cstat")
    key_unit, column_unit = (bj.DataUnit(src=s, **settings) for s in (src, column))
    assert np.asarray(column_unit.src.areascale).shape == (1024,)
    assert _loglike(column_unit, models.pl, PL) == _loglike(key_unit, models.pl, PL)
    np.testing.assert_array_equal(np.asarray(column_unit.src_ctsrate),
                                  np.asarray(key_unit.src_ctsrate))


def test_areascal_survives_fakeit_and_the_written_files(x3c, tmp_path):
    values = np.linspace(0.5, 1.5, 1024)
    src = _copy(x3c["src"], tmp_path / "varying.pi",
                lambda h: _set_column(h, "SPECTRUM", "AREASCAL", values, "D"))
    unit = bj.DataUnit(src=src, bkg=x3c["bkg"], rmf=x3c["rmf"], arf=x3c["arf"], notc=[0.5, 7.0],
                       stat="cstat")
    plain = unit.replace(src=x3c["src"])
    # per channel, the model counts are EXPOSURE * AREASCAL times the folded rate
    np.testing.assert_allclose(np.asarray(simulate.expected_counts(models.pl, PL, unit)),
                               np.asarray(simulate.expected_counts(models.pl, PL, plain)) * values,
                               rtol=1e-13)
    fake = simulate.fakeit(jax.random.PRNGKey(0), models.pl, PL, unit)
    np.testing.assert_array_equal(np.asarray(fake.src.areascale), values)
    paths = simulate.write_fakeit(tmp_path / "fake", fake)
    back = bj.Source.from_src(paths["src"])
    np.testing.assert_array_equal(np.asarray(back.areascale), values)
    scalar = bj.io.PHA(counts=np.ones(4), exposure=2.0, areascale=0.25)
    bj.io.write_pha(tmp_path / "scalar.pha", scalar)
    assert bj.io.read_pha(tmp_path / "scalar.pha").areascale == 0.25


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_bad_areascal_is_refused_naming_file_and_keyword(me, tmp_path, value):
    if np.isfinite(value):
        edit = _keyword("AREASCAL", value)
    else:  # a header cannot hold NaN or inf: a column can
        values = np.ones(128)
        values[K] = value
        edit = lambda h: _set_column(h, "SPECTRUM", "AREASCAL", values, "D")  # noqa: E731
    path = _copy(me["src"], tmp_path / "bad_areascal.src", edit)
    with pytest.raises(OGIPError, match="AREASCAL") as info:
        bj.DataUnit(src=path, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert path in str(info.value)


def test_areascal_values_whose_ratio_underflows_are_refused(me, tmp_path):
    path = _copy(me["src"], tmp_path / "tiny.src", _keyword("AREASCAL", 1e-300))
    with pytest.raises(OGIPError, match="AREASCAL") as info:  # beyond the reader's bounds
        bj.DataUnit(src=path, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert path in str(info.value)
    # Values set afterwards: each is finite and > 0, but alpha underflows to 0.
    src, bkg = bj.Source.from_src(me["src"]), bj.Background.from_bkg(me["bkg"])
    src = eqx.tree_at(lambda s: s.areascale, src, jnp.asarray(1e-200))
    bkg = eqx.tree_at(lambda s: s.areascale, bkg, jnp.asarray(1e200))
    with pytest.raises(ValueError, match="AREASCAL") as info:
        bj.DataUnit(src=src, bkg=bkg, rsp=me["rsp"], notc=[8, 900])
    message = str(info.value)
    assert "alpha" in message and me["src"] in message and me["bkg"] in message


# -- 4. per-channel BACKSCAL -----------------------------------------------------------------


def _backscal_column(values):
    def edit(hdul):
        _set_column(hdul, "SPECTRUM", "BACKSCAL", values, "D")
    return edit


@pytest.mark.parametrize("stat", ["cstat", "pgstat"])
def test_a_backscal_column_of_equal_values_equals_the_keyword(x3c, tmp_path, stat):
    with fits.open(x3c["src"]) as s, fits.open(x3c["bkg"]) as b:
        bs, bb = s["SPECTRUM"].header["BACKSCAL"], b["SPECTRUM"].header["BACKSCAL"]
    src = _copy(x3c["src"], tmp_path / "bs.pi", _backscal_column(np.full(1024, bs)))
    bkg = _copy(x3c["bkg"], tmp_path / "bs_bg.pi", _backscal_column(np.full(1024, bb)))
    settings = dict(rmf=x3c["rmf"], arf=x3c["arf"], notc=[[0.5, 2.0], [2.5, 7.0]], stat=stat)
    plain = bj.DataUnit(src=x3c["src"], bkg=x3c["bkg"], **settings)
    per_channel = bj.DataUnit(src=src, bkg=bkg, **settings)
    assert np.asarray(per_channel.bkg.backscale).shape == (1024,)
    assert _loglike(per_channel, models.pl, PL) == _loglike(plain, models.pl, PL)
    # without a background the source's BACKSCAL column is simply ignored
    alone = bj.DataUnit(src=src, bkg=False, **settings)
    assert _loglike(alone, models.pl, PL) == _loglike(
        bj.DataUnit(src=x3c["src"], bkg=False, **settings), models.pl, PL)


def test_a_varying_backscal_column_scales_each_group_by_its_first_channel(me, tmp_path):
    rng = np.random.default_rng(16)
    values = rng.uniform(0.5, 2.0, 128)
    bkg = _copy(me["bkg"], tmp_path / "varying.bkg", _backscal_column(values))
    unit = bj.DataUnit(src=me["src"], bkg=bkg, rsp=me["rsp"], notc=[8, 900],
                       grpg={"min_sigma": 3, "max_bin": 10})
    data = bj.Data([("u", unit)])
    first = unit.grouping_slice[:, 0]
    exposure = float(unit.bkg.exposure)
    np.testing.assert_array_equal(np.asarray(data.setup[0].tb), exposure * values[first])
    np.testing.assert_array_equal(np.asarray(unit.bkg_ctsrate),
                                  np.asarray(unit.bkg_counts) / (exposure * values[first]))
    assert np.isfinite(_loglike(unit))
    # sf/bf given per call go through the same per-group efficiencies
    params = {"bf": jnp.asarray([2.0])}
    value = float(likelihood.loglike(models.cpl, jnp.asarray(CPL), data, params))
    doubled = unit.replace(bkg=eqx.tree_at(lambda b: b.factor, unit.bkg,
                                           bj.Par(2.0, frozen=True)))
    np.testing.assert_allclose(value, _loglike(doubled), rtol=1e-13)


def test_a_bad_backscal_column_is_refused_naming_file_and_column(me, tmp_path):
    values = np.ones(128)
    values[K] = 0.0
    path = _copy(me["bkg"], tmp_path / "zero_backscal.bkg", _backscal_column(values))
    with pytest.raises(OGIPError, match="BACKSCAL") as info:
        bj.DataUnit(src=me["src"], bkg=path, rsp=me["rsp"], notc=[8, 900])
    assert path in str(info.value)


# -- 5. no effective area in the noticed band ---------------------------------------------------


def test_a_response_without_area_in_the_band_fails_at_the_unit(me, tmp_path):
    with fits.open(me["rsp"]) as hdul:
        chbin = np.stack([hdul["EBOUNDS"].data["E_MIN"], hdul["EBOUNDS"].data["E_MAX"]], 1)
    band = (chbin[:, 0] >= 20) & (chbin[:, 1] <= 60)

    def corrupt(hdul):
        matrix = np.array(hdul["SPECRESP MATRIX"].data["MATRIX"])  # F_CHAN 1, N_CHAN 128
        matrix[:, band] = 0.0
        hdul["SPECRESP MATRIX"].data["MATRIX"][:] = matrix

    path = _copy(me["rsp"], tmp_path / "no_area.rsp", corrupt)
    with pytest.raises(OGIPError, match="no effective area") as info:
        bj.DataUnit(src=me["src"], bkg=me["bkg"], rsp=path, notc=[20, 60])
    message = str(info.value)
    assert path in message and "MATRIX" in message and "[[20.0, 60.0]]" in message
    assert bj.DataUnit(src=me["src"], bkg=me["bkg"], rsp=path, notc=[8, 900]).n_groups > 0


# -- 6. channel numbers -----------------------------------------------------------------------


def test_channels_pair_by_offset_from_the_first_channel(data_dir, tmp_path):
    """me2.src is numbered 0..127 and me2.rsp 1..128 (its own EBOUNDS agree with the
    response's row by row): they pair by position from each first channel, as before."""
    me2 = {k: str(data_dir / f"ME/me2.{k}") for k in ("src", "bkg", "rsp")}
    renumbered = _copy(me2["src"], tmp_path / "renumbered.src", lambda h: (
        _set_column(h, "SPECTRUM", "CHANNEL", np.arange(1, 129, dtype=np.int16), "I"),
        _drop(h, "EBOUNDS")))
    unit = bj.DataUnit(**me2, notc=[8, 900], grpg={"min_sigma": 3, "max_bin": 10})
    same = bj.DataUnit(src=renumbered, bkg=me2["bkg"], rsp=me2["rsp"], notc=[8, 900],
                       grpg={"min_sigma": 3, "max_bin": 10})
    assert int(unit.src.channels[0]) == 0 and int(unit.rsp.channels[0]) == 1
    assert _loglike(unit) == _loglike(same)


def test_channel_numbers_that_do_not_line_up_are_refused(me, tmp_path):
    gap = np.r_[np.arange(1, 65), np.arange(66, 130)].astype(np.int16)  # no channel 65

    def renumber(hdul):
        _set_column(hdul, "SPECTRUM", "CHANNEL", gap, "I")
        _drop(hdul, "EBOUNDS")  # its own EBOUNDS would be refused first

    # A file with a gap in CHANNEL is refused (by the reader, or else by the unit) ...
    src = _copy(me["src"], tmp_path / "gap.src", renumber)
    with pytest.raises(OGIPError, match="CHANNEL") as info:
        bj.DataUnit(src=src, rsp=me["rsp"], notc=[8, 900])
    assert src in str(info.value)
    # ... and so are spectra whose numbers were changed afterwards, against the response ...
    source = bj.Source.from_src(me["src"])
    gapped = eqx.tree_at(lambda s: s.channels, source, jnp.asarray(gap, source.channels.dtype))
    with pytest.raises(OGIPError, match="do not line up") as info:
        bj.DataUnit(src=gapped, rsp=me["rsp"], notc=[8, 900])
    message = str(info.value)
    assert me["src"] in message and me["rsp"] in message and "'CHANNEL'" in message
    assert "response" in message and info.value.column == "CHANNEL"
    # ... and against the background.
    with pytest.raises(OGIPError, match="background") as info:
        bj.DataUnit(src=gapped, bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert me["bkg"] in str(info.value) and info.value.column == "CHANNEL"


def test_used_channels_out_of_energy_order_fail_at_the_unit(me, tmp_path):
    """Two swapped EBOUNDS rows inside the noticed band: an error naming the response and
    EBOUNDS; the same swap in channels the unit leaves out is accepted (as GECAM's files
    disorder unused top channels)."""
    def swap(rows):
        def edit(hdul):
            bounds = hdul["EBOUNDS"].data
            for column in ("E_MIN", "E_MAX"):
                values = np.array(bounds[column])
                values[list(rows)] = values[list(rows[::-1])]
                bounds[column] = values
        return edit

    inside = _copy(me["rsp"], tmp_path / "inside.rsp", swap((40, 41)))
    with pytest.raises(OGIPError, match=r"inside\.rsp.*EBOUNDS.*out of energy order"):
        bj.DataUnit(src=me["src"], bkg=me["bkg"], rsp=inside, notc=[8, 900])
    outside = _copy(me["rsp"], tmp_path / "outside.rsp", swap((126, 127)))
    unit = bj.DataUnit(src=me["src"], bkg=me["bkg"], rsp=outside, notc=[8, 900])
    reference = bj.DataUnit(src=me["src"], bkg=me["bkg"], rsp=me["rsp"], notc=[8, 900])
    assert float(_loglike(unit)) == float(_loglike(reference))
