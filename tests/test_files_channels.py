"""Files and channels (issue 17): backgrounds in another extension (pha3), files named by
BACKFILE/RESPFILE/ANCRFILE, Sherpa's overlap notice rule, whole-spectrum count grouping, and
the CLI's help."""

import contextlib
import io
import os
import types

import numpy as np
import pytest
from astropy.io import fits

import bayspec_jax as bj
from bayspec_jax import cli, likelihood, models
from bayspec_jax.data.grouping import count_grouping
from bayspec_jax.io import OGIPError
from bayspec_jax.stats import STATISTICS

PL = np.array([-1.95, -3.72])


@pytest.fixture(scope="module")
def x3c(data_dir):
    x = data_dir / "XRAY-sherpa-3c273"
    return {k: str(x / f) for k, f in (("src", "3c273.pi"), ("bkg", "3c273_bg.pi"),
                                       ("rmf", "3c273.rmf"), ("arf", "3c273.arf"))}


def _copy_spectrum(path, name=None, **header):
    with fits.open(path) as hdul:
        hdu = hdul["SPECTRUM"].copy()
    if name is not None:
        hdu.name = name
    hdu.header.update(header)
    return hdu


@pytest.fixture(scope="module")
def pha3(x3c, tmp_path_factory):
    """A Chandra-catalogue-like file: the 3c273 source spectrum and, in a second extension with
    HDUCLAS2 = 'BKG', its real background; RESPFILE/ANCRFILE absolute, BACKFILE none."""
    path = str(tmp_path_factory.mktemp("pha3") / "src_pha3.fits")
    src = _copy_spectrum(x3c["src"], BACKFILE="none", RESPFILE=x3c["rmf"], ANCRFILE=x3c["arf"])
    bkg = _copy_spectrum(x3c["bkg"], name="BKG_SPECTRUM", HDUCLAS2="BKG")
    fits.HDUList([fits.PrimaryHDU(), src, bkg]).writeto(path)
    return path


def _loglike(unit):
    return float(likelihood.stat(models.pl, PL, bj.Data([("x", unit)])))


# -- 1. the background in another extension ------------------------------------------------


def test_pha3_background_is_the_bkg_extension(pha3, x3c):
    expected = fits.getdata(pha3, "BKG_SPECTRUM")["COUNTS"].astype(float)
    source = fits.getdata(pha3, "SPECTRUM")["COUNTS"].astype(float)
    assert not np.array_equal(expected, source)
    for bkg in (bj.Background.from_bkg(pha3), bj.Background.from_bkg(pha3 + "{BKG}"),
                bj.Background.from_bkg(pha3, extension="bkg_spectrum"),
                bj.Background.from_plain(pha3)):
        np.testing.assert_array_equal(np.asarray(bkg.counts), expected)
    np.testing.assert_array_equal(np.asarray(bj.Source.from_src(pha3).counts), source)
    np.testing.assert_array_equal(np.asarray(bj.Source.from_src(pha3 + "{TOTAL}").counts), source)
    # read as a background the source extension only when asked for by name
    np.testing.assert_array_equal(
        np.asarray(bj.Background.from_bkg(pha3, extension="SPECTRUM").counts), source)
    with pytest.raises(OGIPError, match="NET"):
        bj.Source.from_src(pha3 + "{NET}")
    with pytest.raises(OGIPError, match="twice"):
        bj.Source.from_src(pha3 + "{BKG}", extension="TOTAL")


def test_pha3_unit_takes_the_bkg_extension(pha3, x3c):
    unit = bj.DataUnit(src=pha3, notc=[0.5, 7.0], stat="cstat")
    explicit = bj.DataUnit(src=x3c["src"], bkg=x3c["bkg"], rmf=x3c["rmf"], arf=x3c["arf"],
                           notc=[0.5, 7.0], stat="cstat")
    assert unit.bkg_given and unit.rsp_composed
    np.testing.assert_array_equal(np.asarray(unit.bkg_counts), np.asarray(explicit.bkg_counts))
    assert _loglike(unit) == _loglike(explicit)


def test_background_of_a_file_without_one_is_not_the_source(x3c, tmp_path):
    two = str(tmp_path / "two_sources.fits")
    fits.HDUList([fits.PrimaryHDU(), _copy_spectrum(x3c["src"]),
                  _copy_spectrum(x3c["bkg"], name="OTHER")]).writeto(two)
    with pytest.raises(OGIPError, match="HDUCLAS2") as err:
        bj.Background.from_bkg(two)
    assert err.value.column == "HDUCLAS2"
    # a single source spectrum that names its own BACKFILE, read as a background: a warning
    with pytest.warns(UserWarning, match="BACKFILE"):
        bj.Background.from_bkg(x3c["src"])


# -- 2. files named by the header ----------------------------------------------------------


def test_header_keywords_give_the_same_unit_as_explicit_files(x3c):
    followed = bj.DataUnit(src=x3c["src"], notc=[0.5, 7.0], stat="cstat")
    explicit = bj.DataUnit(src=x3c["src"], bkg=x3c["bkg"], rmf=x3c["rmf"], arf=x3c["arf"],
                           notc=[0.5, 7.0], stat="cstat")
    assert (followed.bkg.name, followed.rmf.name, followed.arf.name) == (
        "3c273_bg.pi", "3c273.rmf", "3c273.arf")
    for view in ("src_counts", "bkg_counts", "rsp_drm"):
        np.testing.assert_array_equal(np.asarray(getattr(followed, view)),
                                      np.asarray(getattr(explicit, view)))
    assert _loglike(followed) == _loglike(explicit)


def test_explicit_arguments_win(x3c):
    no_bkg = bj.DataUnit(src=x3c["src"], bkg=False, notc=[0.5, 7.0], stat="cstat")
    assert not no_bkg.bkg_given and no_bkg.rsp_composed
    with pytest.warns(UserWarning, match="incomplete"):
        bare = bj.DataUnit(src=x3c["src"], bkg=False, rmf=False, arf=False, rsp=False)
    assert not bare.completeness and not bare.bkg_given
    # a Source object carries no header: nothing is followed
    with pytest.warns(UserWarning, match="incomplete"):
        assert not bj.DataUnit(src=bj.Source.from_src(x3c["src"])).bkg_given
    with pytest.raises(ValueError, match="True is not a file"):
        bj.DataUnit(src=x3c["src"], bkg=True)


def test_missing_referenced_file_names_keyword_and_path(x3c, tmp_path):
    moved = str(tmp_path / "moved.pi")
    fits.HDUList([fits.PrimaryHDU(), _copy_spectrum(x3c["src"])]).writeto(moved)
    with pytest.raises(OGIPError, match="BACKFILE") as err:
        bj.DataUnit(src=moved)
    assert err.value.column == "BACKFILE"
    assert str(tmp_path / "3c273_bg.pi") in str(err.value)
    with pytest.raises(OGIPError, match="ANCRFILE") as err:
        bj.DataUnit(src=moved, bkg=x3c["bkg"])
    assert str(tmp_path / "3c273.arf") in str(err.value) and err.value.column == "ANCRFILE"
    with pytest.raises(OGIPError, match="RESPFILE"):
        bj.DataUnit(src=moved, bkg=x3c["bkg"], arf=x3c["arf"])
    unit = bj.DataUnit(src=moved, bkg=x3c["bkg"], rmf=x3c["rmf"], arf=x3c["arf"])
    assert unit.completeness


def test_type2_backfile_row_selector(data_dir, tmp_path):
    me = data_dir / "ME"
    src, bkg = bj.io.read_pha(str(me / "me.src")), bj.io.read_pha(str(me / "me.bkg"))
    rows = [bj.io.PHA(counts=src.counts + i, exposure=src.exposure, stat_err=src.stat_err,
                      channels=src.channels,
                      keywords={"BACKFILE": f"b.pha2{{{i + 1}}}", "RESPFILE": str(me / "me.rsp")})
            for i in range(3)]
    bkg_rows = [bj.io.PHA(counts=bkg.counts * (i + 1), exposure=bkg.exposure,
                          stat_err=bkg.stat_err, channels=bkg.channels) for i in range(3)]
    bj.io.write_pha2(str(tmp_path / "s.pha2"), rows)
    bj.io.write_pha2(str(tmp_path / "b.pha2"), bkg_rows)
    unit = bj.DataUnit(src=str(tmp_path / "s.pha2:1"), notc=[8, 900])
    np.testing.assert_array_equal(np.asarray(unit.bkg.counts), bkg.counts * 2)
    explicit = bj.DataUnit(src=str(tmp_path / "s.pha2{2}"), bkg=str(tmp_path / "b.pha2:1"),
                           rsp=str(me / "me.rsp"), notc=[8, 900])
    assert _loglike_cpl(unit) == _loglike_cpl(explicit)


def _loglike_cpl(unit):
    return float(likelihood.stat(models.cpl, np.array([-1.5, 2.5, 0.0]), bj.Data([("x", unit)])))


# -- 3. the overlap notice rule ------------------------------------------------------------


def test_overlap_rule_notices_channels_that_intersect_the_band(data_dir):
    me = data_dir / "ME"
    lo, hi = 10.0, 500.0
    inside = bj.DataUnit(src=str(me / "me.src"), bkg=str(me / "me.bkg"), rsp=str(me / "me.rsp"),
                         notc=[lo, hi])
    overlap = inside.replace(notice_rule="overlap")
    with fits.open(str(me / "me.rsp")) as hdul:
        e_min, e_max = hdul["EBOUNDS"].data["E_MIN"], hdul["EBOUNDS"].data["E_MAX"]
    dtype = e_min.dtype.type
    expected = (e_min < dtype(hi)) & (e_max > dtype(lo))
    np.testing.assert_array_equal(np.asarray(overlap.noticing), expected)
    np.testing.assert_array_equal(np.asarray(inside.noticing),
                                  (e_min >= dtype(lo)) & (e_max <= dtype(hi)))
    within, over = np.asarray(inside.noticing), np.asarray(overlap.noticing)
    assert np.all(over[within]) and over.sum() == within.sum() + 2  # one channel at each edge
    assert overlap.band[0] < lo < inside.band[0] and inside.band[1] < hi < overlap.band[1]
    assert overlap.band == (float(e_min[expected][0]), float(e_max[expected][-1]))
    assert "overlap" in overlap.info.text and "keV" in str(overlap)


def test_overlap_rule_notices_whole_file_groups(x3c):
    inside = bj.DataUnit(src=x3c["src"], notc=[0.5, 7.0], stat="cstat")
    overlap = inside.replace(notice_rule="overlap")
    chbin = np.asarray(inside.rsp.chbin)
    for unit, test in ((inside, lambda a, b: a >= 0.5 and b <= 7.0),
                       (overlap, lambda a, b: a < 7.0 and b > 0.5)):
        bounds = [(chbin[s, 0], chbin[e - 1, 1]) for s, e in unit.grouping_slice]
        assert all(test(a, b) for a, b in bounds)
    assert overlap.npoint > inside.npoint
    with pytest.raises(ValueError, match="notice_rule"):
        inside.replace(notice_rule="sherpa")


# -- 4. whole-spectrum count grouping ------------------------------------------------------


def _direct_min_counts(counts, n):
    """Group starts by cumulative sums: each group ends at the first channel where the counts
    since its start reach n; the rest is the short last group."""
    total = np.concatenate([[0.0], np.cumsum(counts)])
    groups, start = [], 0
    while start < counts.size:
        end = int(np.searchsorted(total, total[start] + n, side="left"))  # total[end] >= ...
        if end > counts.size:
            return groups, (start, counts.size)
        groups.append((start, end))
        start = end
    return groups, None


@pytest.mark.parametrize("n", [1, 20, 57])
def test_count_grouping_matches_numpy(x3c, n):
    counts = np.asarray(bj.Source.from_src(x3c["src"]).counts)
    flags, quality = count_grouping(counts, n)
    groups, short = _direct_min_counts(counts, n)
    starts = np.flatnonzero(flags == 1)
    expected_starts = [a for a, _ in groups] + ([short[0]] if short else [])
    np.testing.assert_array_equal(starts, expected_starts)
    bad = np.zeros(counts.size, bool)
    if short:
        bad[short[0]:short[1]] = True
        assert counts[bad].sum() < n
    np.testing.assert_array_equal(quality == 2, bad)
    assert all(counts[a:b].sum() >= n for a, b in groups)


def test_counts_method_groups_the_whole_spectrum(x3c):
    n = 20
    unit = bj.DataUnit(src=x3c["src"], grpg={"method": "counts", "min_evt": n}, stat="cstat")
    counts = np.asarray(unit.src.counts)
    groups, short = _direct_min_counts(counts, n)
    assert unit.grouping_slice.tolist() == [list(g) for g in groups]
    assert np.all(np.asarray(unit.src_counts) >= n)
    assert short is not None and not np.any(np.asarray(unit.qualifying)[short[0]:short[1]])
    # noticing selects whole groups made before it (no regrouping inside the band)
    noticed = unit.replace(notc=[0.5, 7.0])
    assert set(map(tuple, noticed.grouping_slice.tolist())) <= set(groups)
    # the notice-first threshold grouping is unchanged and differs
    first = unit.replace(notc=[0.5, 7.0], grpg={"min_evt": n})
    assert first.grouping_slice.tolist() != noticed.grouping_slice.tolist()
    with pytest.raises(ValueError, match="min_evt"):
        unit.replace(grpg={"method": "counts", "min_sigma": 3})
    with pytest.raises(ValueError, match="method"):
        unit.replace(grpg={"method": "grppha"})


def test_notice_rule_and_counts_grouping_survive_save(x3c, tmp_path):
    unit = bj.DataUnit(src=x3c["src"], notc=[0.5, 7.0], stat="cstat", notice_rule="overlap",
                       grpg={"method": "counts", "min_evt": 15})
    unit.save(tmp_path / "u")
    back = bj.DataUnit.load(tmp_path / "u")
    assert back.notice_rule == "overlap" and back.grpg == unit.grpg
    assert _loglike(back) == _loglike(unit)


# -- 5. the CLI ------------------------------------------------------------------------------


def _help(command):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.build_parser().parse_args([command, "--help"])
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("command", ["fit", "simulate"])
def test_cli_help_names_units_choices_and_an_example(command):
    text = _help(command)
    assert "lo-hi in keV" in text and "several allowed" in text
    assert "{" + ",".join(STATISTICS) + "}" in text
    assert '\'{"min_sigma": 3, "max_bin": 10}\'' in text and '"method": "counts"' in text
    assert "--notice-rule {inside,overlap}" in text
    assert cli.STAT_CHOICES == tuple(STATISTICS)


def test_cli_result_line_and_bands_name_statistic_and_band(x3c):
    unit = bj.DataUnit(src=x3c["src"], notc=[0.5, 7.0], stat="cstat", notice_rule="overlap")
    data = bj.Data([("x", unit)])
    fit = types.SimpleNamespace(stat=123.456, dof=40)
    assert cli._result_line(data, fit) == "cstat = 123.456 for 40 degrees of freedom"
    lo, hi = unit.band
    assert cli._bands(data) == (f"x: fitted band {lo:.6g}-{hi:.6g} keV ({unit.npoint} groups, "
                                "notice rule overlap)")
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        cli.main(["fit", "--stat", "nostat"])
    assert os.path.exists(x3c["src"])
