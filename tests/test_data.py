"""Data: an ordered immutable collection of units, per-unit views, save/load."""

import numpy as np
import pytest

import bayspec_jax as bj


@pytest.fixture(scope="module")
def data(data_dir):
    d = data_dir
    nai = bj.DataUnit(src=str(d / "ME/me.src"), bkg=str(d / "ME/me.bkg"), rsp=str(d / "ME/me.rsp"),
                      notc=[8, 900], grpg={"min_sigma": 2, "max_bin": 10})
    bgo = bj.DataUnit(src=str(d / "HE/he.src"), bkg=str(d / "HE/he.bkg"), rsp=str(d / "HE/he.rsp"),
                      notc=[300, 38000], grpg={"min_sigma": 2, "max_bin": 10}, time=1.5)
    return bj.Data([("nai", nai), ("bgo", bgo)])


def test_mapping_access(data):
    assert list(data) == ["nai", "bgo"] and len(data) == 2 and "bgo" in data
    assert data["nai"] is data[0] and data[1].name == "bgo"
    assert data["nai"].name == "nai"
    with pytest.raises(KeyError, match="units are"):
        data["gbm"]
    with pytest.raises(TypeError, match="set"):
        data["x"] = data["nai"]


def test_set_and_remove_return_new_data(data):
    smaller = data.remove("bgo")
    assert list(smaller) == ["nai"] and list(data) == ["nai", "bgo"]
    renamed = data.set("copy", data["nai"])
    assert list(renamed) == ["nai", "bgo", "copy"] and renamed["copy"].name == "copy"
    replaced = data.set("nai", data["nai"].replace(weight=3.0))
    assert list(replaced.weights) == [3.0, 1.0] and list(data.weights) == [1.0, 1.0]
    assert bj.Data({"a": data["nai"]}).names == ("a",)


def test_refuses_bad_units(data, me_unit_incomplete=None):
    with pytest.warns(UserWarning):
        incomplete = bj.DataUnit(src=data["nai"].src)
    with pytest.raises(ValueError, match="incomplete"):
        bj.Data([("x", incomplete)])
    with pytest.raises(ValueError, match="DataUnit"):
        bj.Data([("x", data["nai"].src)])
    with pytest.raises(ValueError, match="twice"):
        bj.Data([("x", data["nai"]), ("x", data["bgo"])])
    with pytest.raises(ValueError, match="pairs"):
        bj.Data([data["nai"]])


def test_per_unit_views_are_lists(data):
    for view in ("src_counts", "net_ctsspec", "rsp_drm", "rsp_chbin_mean", "corr_src_efficiency"):
        values = getattr(data, view)
        assert len(values) == 2
        np.testing.assert_array_equal(np.asarray(values[1]), np.asarray(getattr(data["bgo"], view)))
    assert data.stats == ["pgstat", "pgstat"] and data.times == [None, 1.5]
    assert data.npoints == [109, 28]
    assert data.egrid.shape == (5 * (140 + 140),)
    assert list(data.bin_start) == [0, 140] and list(data.bin_stop) == [140, 280]
    assert len(data.net_counts_upperlimit(0.9)) == 2
    assert len(data.par) == 10 and data.pvalues[:3] == (1.0, 1.0, 1.0)
    assert data.all_params[5]["Component"] == "bgo"
    assert "bgo" in str(data.par_info) and "Statistic" in str(data)
    with pytest.raises(AttributeError):
        data.no_such_view


def test_per_unit_views_are_real_attributes(data):
    """Every per-unit name is a documented property or method of `Data` itself: `dir`, `help`
    and IDEs see them, and nothing is forwarded by reflection."""
    from bayspec_jax.data.data import UNIT_METHODS, UNIT_VIEWS

    assert not hasattr(bj.Data, "__getattr__")
    names = dir(data)
    for name in UNIT_VIEWS + UNIT_METHODS:
        assert name in names, name
        assert getattr(bj.Data, name).__doc__, name
    assert "rebinning group" in bj.Data.src_re_ctsrate.__doc__
    assert isinstance(vars(bj.Data)["bkg_ctsspec_error"], property)
    assert data.net_ctsrate_upperlimit(cl=0.9) == [u.net_ctsrate_upperlimit(0.9) for u in data.units]
    assert data.net_counts_significance_limit(3) == [
        u.net_counts_significance_limit(3) for u in data.units]
    assert data.grpg == [u.grpg for u in data.units] and data.n_groups == [109, 28]
    # Data's own joined views win over the per-unit lists of the same name
    assert data.ebin.shape == (280, 2) and data.info.columns["Name"] == ["nai", "bgo"]


def test_save_load(data, tmp_path):
    data.save(tmp_path / "d")
    back = bj.Data.load(tmp_path / "d")
    assert back.names == data.names
    for a, b in zip(back.units, data.units):
        np.testing.assert_array_equal(np.asarray(a.src_counts), np.asarray(b.src_counts))
        np.testing.assert_array_equal(np.asarray(a.rsp_drm), np.asarray(b.rsp_drm))
        assert a.time == b.time and a.grpg == b.grpg
