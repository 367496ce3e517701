"""DataUnit behaviour: construction, replace, bad input, properties, save/load."""

import io
import warnings

import equinox as eqx
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayspec_jax as bj
from bayspec_jax.data.binning import photon_grid


@pytest.fixture(scope="module")
def me_files(data_dir):
    return {k: str(data_dir / f"ME/me.{k}") for k in ("src", "bkg", "rsp")}


@pytest.fixture(scope="module")
def me_unit(me_files):
    return bj.DataUnit(**me_files, notc=[8, 900], grpg={"min_sigma": 3, "max_bin": 10})


def test_inputs_can_be_objects_paths_bytes_and_tuples(me_files, me_unit, data_dir):
    raw = {k: open(v, "rb").read() for k, v in me_files.items()}
    from_bytes = bj.DataUnit(src=io.BytesIO(raw["src"]), bkg=io.BytesIO(raw["bkg"]),
                             rsp=io.BytesIO(raw["rsp"]), notc=(8, 900),
                             grpg={"min_sigma": 3, "max_bin": 10})
    from_objects = bj.DataUnit(src=bj.Source.from_src(me_files["src"]),
                               bkg=bj.Background.from_bkg(me_files["bkg"]),
                               rsp=bj.Response.from_rsp(me_files["rsp"]), notc=np.array([8, 900]),
                               grpg={"min_sigma": 3, "max_bin": 10})
    for other in (from_bytes, from_objects):
        np.testing.assert_array_equal(np.asarray(other.src_counts), np.asarray(me_unit.src_counts))
        np.testing.assert_array_equal(np.asarray(other.rsp_drm), np.asarray(me_unit.rsp_drm))
    rows = bj.DataUnit(src=(str(data_dir / "ME/me.src2"), 4), bkg=(str(data_dir / "ME/me.bkg2"), 4),
                       rsp=(str(data_dir / "ME/me.rsp2"), 1), notc=[[15, 35], [42, 100]])
    assert rows.npoint == int(np.sum(np.asarray(rows.qualifying) & np.asarray(rows.noticing)))


def test_no_background_is_zero_background_with_source_exposure(me_files):
    unit = bj.DataUnit(src=me_files["src"], rsp=me_files["rsp"], notc=[8, 900])
    assert float(unit.alpha) == 1.0
    assert float(unit.bkg.exposure) == float(unit.src.exposure)
    assert not np.any(np.asarray(unit.bkg_counts)) and not np.any(np.asarray(unit.bkg_errors))
    np.testing.assert_array_equal(np.asarray(unit.net_ctsrate), np.asarray(unit.src_ctsrate))
    assert unit.info.columns[unit.name][1] == "None"


def test_missing_response_makes_an_incomplete_unit(me_files):
    with pytest.warns(UserWarning, match="incomplete"):
        unit = bj.DataUnit(src=me_files["src"], bkg=me_files["bkg"])
    assert not unit.completeness
    with pytest.raises(ValueError, match="no response"):
        unit.src_counts


def test_replace_returns_a_new_resolved_unit(me_unit):
    before = np.asarray(me_unit.src_counts).copy()
    wider = me_unit.replace(notc=[[8, 30], [40, 900]], grpg=None)
    assert wider.npoint != me_unit.npoint
    assert me_unit.notc == ((8.0, 900.0),) and me_unit.grpg == {"min_sigma": 3, "max_bin": 10}
    np.testing.assert_array_equal(np.asarray(me_unit.src_counts), before)
    same = me_unit.replace()
    np.testing.assert_array_equal(np.asarray(same.src_counts), before)
    assert me_unit.replace(weight=2.0).weight == 2.0 and me_unit.weight == 1.0
    with pytest.raises(TypeError, match="unknown"):
        me_unit.replace(notice=[1, 2])
    with pytest.raises(AttributeError):
        me_unit.notc = None


def test_rmf_arf_replace_recomposes(data_dir):
    x = data_dir / "XRAY-sherpa-3c273"
    unit = bj.DataUnit(src=str(x / "3c273.pi"), rmf=str(x / "3c273.rmf"),
                       arf=str(x / "3c273.arf"), notc=[0.5, 7.0], stat="cstat")
    arf = bj.Auxiliary.from_arf(str(x / "3c273.arf"))
    halved = unit.replace(arf=bj.Auxiliary(np.asarray(arf.phbin), np.asarray(arf.srp) / 2))
    np.testing.assert_allclose(np.asarray(halved.rsp_drm), np.asarray(unit.rsp_drm) / 2,
                               rtol=1e-14)


def test_notice_windows_are_merged_and_compared_in_file_precision(me_unit, me_files):
    merged = me_unit.replace(notc=[[100, 900], [8, 50], [40, 120]])
    assert merged.notc == ((8.0, 900.0),)
    np.testing.assert_array_equal(np.asarray(merged.noticing), np.asarray(me_unit.noticing))
    chbin = np.asarray(me_unit.rsp.chbin)
    # a window edge equal to a float32 channel bound given as a Python float notices it
    edge = float(chbin[10, 0])
    unit = me_unit.replace(notc=[edge + 1e-9, 900], grpg=None)
    assert bool(unit.noticing[10])


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(stat="chisq"), "stat must be one of"),
        (dict(weight=-1), "weight"),
        (dict(weight=float("nan")), "weight"),
        (dict(time="t0"), "time"),
        (dict(notc=[900, 8]), "lo < hi"),
        (dict(notc=[8, float("inf")]), "finite"),
        (dict(notc=[[8, 20], [30]]), "window"),
        (dict(grpg={"min_sigma": -1}), "min_sigma"),
        (dict(grpg={"min_counts": 3}), "allowed keys"),
        (dict(rebn={"max_bin": -2}), "max_bin"),
        (dict(notc=[3000, 4000]), "no channel"),
    ],
)
def test_bad_settings_raise_clear_errors(me_unit, changes, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message):
            me_unit.replace(**changes)


def test_window_outside_the_response_warns(me_unit):
    with pytest.warns(UserWarning, match="outside"):
        me_unit.replace(notc=[[1, 20], [500, 5000]])


def test_channel_count_mismatch(me_files, data_dir):
    with pytest.raises(ValueError, match="response has 470 channels"):
        bj.DataUnit(src=me_files["src"], rsp=str(data_dir / "ME/me.rsp2") + ":1")
    with pytest.raises(ValueError, match="background has 1024 channels"):
        bj.DataUnit(src=me_files["src"], bkg=str(data_dir / "LE/le.bkg"), rsp=me_files["rsp"])


def test_gaussian_statistic_refuses_zero_error_groups():
    counts = np.array([4.0, 0.0, 9.0, 7.0])
    edges = np.arange(1.0, 6.0)
    bins = np.stack([edges[:-1], edges[1:]], 1)
    rsp = bj.Response(bins, bins, np.eye(4))
    src = bj.Source(counts, np.sqrt(counts), 10.0)
    with pytest.raises(ValueError, match=r"non-zero error.*group\(s\) \[1\]"):
        bj.DataUnit(src, rsp=rsp, stat="chi2")
    unit = bj.DataUnit(src, rsp=rsp, stat="chi2", grpg={"min_evt": 3})
    assert unit.grouping_slice.tolist() == [[0, 1], [1, 3], [3, 4]]
    assert bj.DataUnit(src, rsp=rsp, stat="pgstat").npoint == 4


def test_min_bevt_reaches_background_counts(data_dir):
    x = data_dir / "XRAY-sherpa-3c273"
    unit = bj.DataUnit(src=str(x / "3c273.pi"), bkg=str(x / "3c273_bg.pi"),
                       rmf=str(x / "3c273.rmf"), arf=str(x / "3c273.arf"), notc=[0.5, 7.0],
                       stat="cstat", grpg={"min_evt": 1, "min_bevt": 5})
    bkg = np.asarray(unit.bkg_counts)
    assert np.all(bkg[:-1] >= 5) and unit.npoint > 3


def test_views_are_jax_arrays_and_unit_is_a_pytree(me_unit):
    for view in ("src_counts", "bkg_errors", "net_ctsspec", "rsp_chbin", "rsp_drm",
                 "corr_rsp_re_drm", "egrid", "tgrid", "src_re_ctsspec_error"):
        assert isinstance(getattr(me_unit, view), jax.Array), view
    assert me_unit.egrid.shape == (me_unit.nbin * me_unit.ngrid,)
    assert list(me_unit.params) == ["sf", "bf", "rf", "ra", "dec"]
    assert me_unit.pvalues == (1.0, 1.0, 1.0, 0.0, 0.0)
    assert list(me_unit.par) == ["1", "2", "3", "4", "5"]
    # a unit passes through jit as a pytree; traced code reads its array fields directly
    total = eqx.filter_jit(lambda u: u.rsp_drm.sum() * u.src.factor.value)(me_unit)
    np.testing.assert_allclose(float(total), float(np.asarray(me_unit.rsp_drm).sum()), rtol=1e-12)
    doubled = jax.tree.map(lambda x: 2 * x if x.dtype.kind == "f" else x, me_unit)
    assert isinstance(doubled, bj.DataUnit) and doubled.n_groups == me_unit.n_groups
    np.testing.assert_array_equal(np.asarray(doubled.src_counts),
                                  2 * np.asarray(me_unit.src_counts))
    np.testing.assert_allclose(
        float(me_unit.net_ctsrate_upperlimit(0.9)),
        me_unit.net_counts_upperlimit(0.9) / float(me_unit.src.exposure), rtol=1e-14)


def test_info_and_save_load_roundtrip(me_unit, tmp_path):
    text = str(me_unit)
    assert "pgstat" in text and "me.src" in text and "min_sigma" in text
    assert "<table>" in me_unit._repr_html_()
    me_unit.save(tmp_path / "unit")
    import json

    saved = json.loads((tmp_path / "unit" / "dataunit.json").read_text())
    assert saved["Property"][0] == "src" and saved[me_unit.name][0] == "me.src"
    loaded = bj.DataUnit.load(tmp_path / "unit")
    for view in ("src_counts", "bkg_errors", "rsp_drm", "net_ctsspec", "egrid", "rsp_chbin"):
        np.testing.assert_array_equal(np.asarray(getattr(loaded, view)),
                                      np.asarray(getattr(me_unit, view)), err_msg=view)
        assert getattr(loaded, view).dtype == getattr(me_unit, view).dtype
    assert loaded.grpg == me_unit.grpg and loaded.notc == me_unit.notc
    assert loaded.name == me_unit.name and loaded.stat == me_unit.stat


def test_storage_works_on_settings_not_on_units(me_unit, tmp_path):
    """`storage` saves constructor arguments and returns them; it does not import the unit."""
    import ast
    import inspect
    import json

    from bayspec_jax.data import storage

    imported = [node.module for node in ast.walk(ast.parse(inspect.getsource(storage)))
                if isinstance(node, ast.ImportFrom)]
    assert not any(module and module.endswith("unit") for module in imported), imported
    storage.save_unit(me_unit.settings(), me_unit._info_dict(), tmp_path / "unit")
    arguments = storage.load_unit(tmp_path / "unit")
    assert set(arguments) == set(me_unit.settings()) and arguments["bkg"].name == "me.bkg"
    with np.load(tmp_path / "unit" / "dataunit.npz") as saved:  # the format of saves so far
        state = json.loads(saved["__state__"].tobytes().decode())
        assert sorted(saved.files) == sorted(
            ["__state__"] + [f"{p}.{f}" for p in ("src", "bkg") for f in (
                "counts", "errors", "exposure", "quality", "grouping", "backscale", "channels")]
            + [f"rsp.{f}" for f in ("chbin", "phbin", "drm", "channels")])
    assert list(state) == ["format", "settings", "src", "bkg", "rsp"]
    assert state["format"] == "bayspec_jax.DataUnit/1" and list(state["settings"]) == [
        "stat", "notc", "grpg", "rebn", "time", "weight", "name"]
    rebuilt = bj.DataUnit(**arguments)
    assert jax.tree.structure(rebuilt) == jax.tree.structure(me_unit)
    for a, b in zip(jax.tree.leaves(rebuilt), jax.tree.leaves(me_unit)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.dtype == b.dtype


# -- properties --------------------------------------------------------------------------------


@st.composite
def spectra(draw):
    n = draw(st.integers(8, 40))
    counts = np.array(draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)), float)
    quality = np.array(draw(st.lists(st.sampled_from([0, 0, 0, 1, 5]), min_size=n, max_size=n)))
    lo, hi = sorted(draw(st.lists(st.floats(1.0, float(n + 1)), min_size=2, max_size=2,
                                  unique=True)))
    return counts, quality, (lo, hi)


def _unit(counts, quality, window, grpg, bkg_counts=None):
    n = counts.size
    edges = np.arange(1.0, n + 2.0)
    rsp = bj.Response(np.stack([edges[:-1], edges[1:]], 1),
                      np.stack([edges[:-1], edges[1:]], 1), np.eye(n) * 10.0)
    src = bj.Source(counts, np.sqrt(counts), 10.0, quality=quality)
    bkg = None
    if bkg_counts is not None:
        bkg = bj.Background(bkg_counts, np.sqrt(np.abs(np.nan_to_num(bkg_counts))), 20.0,
                            quality=quality)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bj.DataUnit(src, bkg=bkg, rsp=rsp, notc=list(window), grpg=grpg, stat="cstat")


@settings(max_examples=40, deadline=None)
@given(spectra(), st.sampled_from([None, {"min_evt": 5}, {"min_evt": 3, "max_bin": 3}]))
def test_grouped_counts_are_the_counts_of_grouped_valid_channels(spec, grpg):
    counts, quality, window = spec
    try:
        unit = _unit(counts, quality, window, grpg)
    except ValueError as err:
        assert "no channel" in str(err)
        return
    valid = np.asarray(unit.qualifying) & np.asarray(unit.noticing)
    in_group = np.zeros(counts.size, bool)
    for a, b in unit.grouping_slice:
        assert valid[a:b].all()
        in_group[a:b] = True
    np.testing.assert_array_equal(float(np.asarray(unit.src_counts).sum()), counts[in_group].sum())
    if grpg is None:  # the file grouping puts every valid channel in a group of its own
        np.testing.assert_array_equal(in_group, valid)


@settings(max_examples=40, deadline=None)
@given(spectra(), st.randoms(use_true_random=False),
       st.sampled_from([None, {"min_evt": 4}, {"min_sigma": 1, "max_bin": 4}]))
def test_invalid_channels_values_change_nothing(spec, rng, grpg):
    counts, quality, window = spec
    bkg = np.round(counts / 3)
    try:
        unit = _unit(counts, quality, window, grpg, bkg)
    except ValueError:
        return
    valid = np.asarray(unit.qualifying) & np.asarray(unit.noticing)
    bad = np.flatnonzero(~valid & (quality != 0))
    if bad.size == 0:
        return
    counts2, bkg2 = counts.copy(), bkg.copy()
    permuted = list(bad)
    rng.shuffle(permuted)
    counts2[bad] = counts[permuted] + 1000.0
    bkg2[bad] = np.nan
    other = _unit(counts2, quality, window, grpg, bkg2)
    np.testing.assert_array_equal(np.asarray(other.grouping), np.asarray(unit.grouping))
    for view in ("src_counts", "bkg_counts", "bkg_errors", "net_ctsspec", "rsp_drm"):
        np.testing.assert_array_equal(np.asarray(getattr(other, view)),
                                      np.asarray(getattr(unit, view)), err_msg=view)


COUNT_VIEWS = [f"{part}_{re}{what}" for part in ("src", "bkg") for re in ("", "re_")
               for what in ("counts", "errors")] + [
    f"{part}_{re}{what}{error}" for part in ("src", "bkg", "net") for re in ("", "re_")
    for what in ("ctsrate", "ctsspec") for error in ("", "_error")]


def test_count_views_are_generated_properties_with_their_names_and_docstrings():
    assert len(COUNT_VIEWS) == 32
    for name in COUNT_VIEWS:
        view = vars(bj.DataUnit)[name]
        assert isinstance(view, property) and view.fget.__name__ == name, name
        assert view.__doc__ and ("rebinning group" in view.__doc__) == ("_re_" in name), name
    assert "`src_ctsrate_error` and `bkg_ctsrate_error` in quadrature" in (
        bj.DataUnit.net_ctsrate_error.__doc__)


def _numpy_views(unit, rebinned):
    """The count views of `unit`, written out with numpy from its stored arrays."""
    ids, n = (unit.rebin_ids, unit.n_rebins) if rebinned else (unit.group_ids, unit.n_groups)
    slices = unit.rebining_slice if rebinned else unit.grouping_slice
    ids = np.asarray(ids)

    def total(values):
        return np.bincount(ids, weights=np.asarray(values), minlength=n + 1)[:n]

    chbin = np.asarray(unit.rsp.chbin)  # in the file's precision, as bayspec
    width = chbin[slices[:, 1] - 1, 1] - chbin[slices[:, 0], 0]
    src_eff = float(unit.src.exposure) * float(unit.src.factor.value)
    bkg_eff = (float(unit.bkg.exposure) * np.asarray(unit.bkg.backscale)
               / np.asarray(unit.src.backscale) * float(unit.bkg.factor.value))
    bkg_eff = bkg_eff[slices[:, 0]] if np.ndim(bkg_eff) else bkg_eff
    views = {}
    for part, spectrum, eff in (("src", unit.src, src_eff), ("bkg", unit.bkg, bkg_eff)):
        counts = total(spectrum.counts)
        errors = np.sqrt(total(np.asarray(spectrum.errors) ** 2))
        views[part] = (counts, errors, counts / eff, errors / eff, counts / eff / width,
                       errors / eff / width)
    src, bkg = views["src"], views["bkg"]
    views["net"] = (None, None, src[2] - bkg[2], np.sqrt(src[3] ** 2 + bkg[3] ** 2),
                    src[4] - bkg[4], np.sqrt(src[5] ** 2 + bkg[5] ** 2))
    re = "re_" if rebinned else ""
    out = {}
    for part, values in views.items():
        names = [f"{part}_{re}counts", f"{part}_{re}errors", f"{part}_{re}ctsrate",
                 f"{part}_{re}ctsrate_error", f"{part}_{re}ctsspec", f"{part}_{re}ctsspec_error"]
        out.update({k: v for k, v in zip(names, values) if v is not None})
    return out


@pytest.mark.parametrize("rebinned", [False, True])
def test_views_are_host_arrays_equal_to_numpy_formulas(me_unit, rebinned):
    """Views are computed on the host from the stored arrays, returned as concrete jax arrays
    of the default float precision (tracing goes through `Data.setup`, not through views)."""
    rng = np.random.default_rng(3)
    n = me_unit.src.n_channels
    per_channel = me_unit.replace(  # per-channel BACKSCAL: each group takes its first channel's
        bkg=bj.Background(np.asarray(me_unit.bkg.counts), np.asarray(me_unit.bkg.errors),
                          float(me_unit.bkg.exposure), quality=np.asarray(me_unit.bkg.quality),
                          backscale=rng.uniform(0.5, 2.0, n)),
        rebn={"min_sigma": 2, "max_bin": 10})
    for unit in (me_unit, per_channel):
        for name, want in _numpy_views(unit, rebinned).items():
            got = getattr(unit, name)
            assert isinstance(got, jax.Array) and not isinstance(got, jax.core.Tracer), name
            assert got.dtype == np.float64, name
            np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)
    np.testing.assert_array_equal(np.asarray(me_unit.egrid), photon_grid(
        np.asarray(me_unit.rsp.phbin), me_unit.ngrid))
    ebin = np.asarray(me_unit.rsp.phbin, dtype=np.float64)
    np.testing.assert_array_equal(np.asarray(me_unit.ebin), ebin)
    np.testing.assert_array_equal(np.asarray(me_unit.ewidth), ebin[:, 1] - ebin[:, 0])


def test_views_of_a_closed_over_unit_are_constants_while_tracing(me_unit):
    """A function that closes over a unit may read its views while being traced (as
    `views.deconvolve` does under `jax.jit`): they are computed on the host all the same."""
    scaled = jax.jit(lambda x: me_unit.net_re_ctsspec_error * x + me_unit.corr_bkg_efficiency)(2.0)
    np.testing.assert_array_equal(
        np.asarray(scaled),
        2.0 * np.asarray(me_unit.net_re_ctsspec_error) + np.asarray(me_unit.corr_bkg_efficiency))
    limit = jax.jit(lambda x: me_unit.net_counts_upperlimit(0.9) * x)(1.0)
    assert float(limit) == me_unit.net_counts_upperlimit(0.9)
