"""Damaged saves (issue 16): a truncated, empty, edited or foreign ``dataunit.npz`` raises one
error type, `SaveError`, naming the file and what is wrong; the format carries its version; a
prior's text survives the round trip as written."""

import dataclasses
import json
import os
import pathlib
import shutil
import zipfile

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax.data import storage
from bayspec_jax.data.storage import SaveError
from bayspec_jax.params import Par, logunif, norm, unif

NPZ = "dataunit.npz"


@pytest.fixture(scope="module")
def unit(data_dir):
    d = data_dir / "ME"
    return bj.DataUnit(src=str(d / "me.src"), bkg=str(d / "me.bkg"), rsp=str(d / "me.rsp"),
                       notc=[8, 900], stat="pgstat", grpg={"min_sigma": 2, "max_bin": 10})


@pytest.fixture(scope="module")
def saved(unit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "unit"
    unit.save(folder)
    return folder


@pytest.fixture
def copy(saved, tmp_path):
    """A fresh copy of the good save; returns ``(folder, path of its npz)``."""
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    return folder, str(folder / NPZ)


def _fails(folder, *fragments):
    """Loading `folder` raises `SaveError` whose message names its npz and holds `fragments`."""
    with pytest.raises(SaveError) as caught:
        bj.DataUnit.load(folder)
    message = str(caught.value)
    assert os.path.join(str(folder), NPZ) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _members(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _rewrite(path, drop=(), replace=None):
    """Write the archive again without the members `drop`, with the members `replace`."""
    arrays = _members(path)
    for name in drop:
        del arrays[name]
    arrays.update(replace or {})
    np.savez(path, **arrays)


def _edit_state(path, edit):
    arrays = _members(path)
    state = json.loads(arrays["__state__"].tobytes().decode())
    edit(state)
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_save_error_is_a_value_error_and_an_os_error():
    assert issubclass(SaveError, ValueError) and issubclass(SaveError, OSError)


def test_the_good_save_loads(saved, unit):
    loaded = bj.DataUnit.load(saved)
    np.testing.assert_array_equal(np.asarray(loaded.src_counts), np.asarray(unit.src_counts))
    assert loaded.grpg == unit.grpg and loaded.notc == unit.notc
    assert isinstance(storage.load_unit(saved, build=bj.DataUnit), bj.DataUnit)


# -- truncated, empty, missing -----------------------------------------------------------------


@pytest.mark.parametrize("keep", [1, 3, 4, 30, 100, 1000, 0.5, -200, -22, -1])
def test_truncated(copy, keep):
    folder, path = copy
    data = pathlib.Path(path).read_bytes()
    n = keep if isinstance(keep, int) and keep > 0 else (
        int(len(data) * keep) if isinstance(keep, float) else len(data) + keep)
    pathlib.Path(path).write_bytes(data[:n])
    _fails(folder, "truncated")


def test_empty(copy):
    folder, path = copy
    pathlib.Path(path).write_bytes(b"")
    _fails(folder, "empty")


def test_missing_archive(copy):
    folder, path = copy
    os.remove(path)
    _fails(folder, "no saved data unit")


# -- members deleted or edited -----------------------------------------------------------------


@pytest.mark.parametrize("member", ["src.counts", "bkg.errors", "rsp.drm", "src.exposure"])
def test_member_deleted(copy, member):
    folder, path = copy
    _rewrite(path, drop=[member])
    _fails(folder, repr(member), "missing")


def test_state_deleted(copy):
    folder, path = copy
    _rewrite(path, drop=["__state__"])
    _fails(folder, "'__state__'", "missing")


def test_member_bytes_edited(copy):
    """A byte changed inside a member: the zip's CRC catches it."""
    folder, path = copy
    data = bytearray(pathlib.Path(path).read_bytes())
    data[data.find(b"src.counts") + 300] ^= 0xFF
    pathlib.Path(path).write_bytes(bytes(data))
    _fails(folder, "damaged")


@pytest.mark.parametrize("edit, fragments", [
    ({"src.counts": np.arange(5.0)}, ("src", "shape")),
    ({"src.counts": np.array(["a", "b"])}, ("'src.counts'", "numbers")),
    ({"src.exposure": np.array(-1.0)}, ("src", "exposure")),
    ({"rsp.drm": np.ones((3, 3))}, ("rsp",)),
    ({"bkg.channels": np.arange(7)}, ("bkg",)),
    ({"__state__": np.frombuffer(b"{not json", dtype=np.uint8)}, ("'__state__'", "JSON")),
    ({"__state__": np.arange(4.0)}, ("'__state__'",)),
    ({"extra": np.zeros(3)}, ("unexpected member", "'extra'")),
    ({"src.counts": np.array([{"a": 1}], dtype=object)}, ("damaged",)),
])
def test_member_replaced(copy, edit, fragments):
    folder, path = copy
    _rewrite(path, replace=edit)
    _fails(folder, *fragments)


@pytest.mark.parametrize("edit, fragments", [
    (lambda s: s["src"].pop("name"), ("src", "'name'", "missing")),
    (lambda s: s.pop("src"), ("'src'", "missing")),
    (lambda s: s["settings"].update(stat="nostat"), ("settings.stat", "'nostat'")),
    (lambda s: s["settings"].update(weight=-1), ("settings.weight",)),
    (lambda s: s["settings"].update(weight="1"), ("settings", "weight")),
    (lambda s: s["settings"].update(notc=[[900, 8]]), ("settings.notc",)),
    (lambda s: s["settings"].update(notc="8-900"), ("settings", "notc")),
    (lambda s: s["settings"].update(grpg={"min_sigmas": 2}), ("settings.grpg", "'min_sigmas'")),
    (lambda s: s["settings"].update(grpg={"min_sigma": -2}), ("settings.grpg.min_sigma",)),
    (lambda s: s["settings"].pop("name"), ("settings", "'name'")),
    (lambda s: s["settings"].update(colour="red"), ("settings", "unknown")),
    (lambda s: s.update(extra=1), ("state", "unknown")),
    (lambda s: s["rsp"]["ra"].update(prior=["Par", 0, 1]), ("rsp.ra.prior", "'Par'")),
    (lambda s: s["rsp"]["ra"].update(prior=["unif", 5, 1]), ("rsp.ra.prior",)),
    (lambda s: s["rsp"]["ra"].update(prior=["unif", "0", 1]), ("rsp.ra.prior",)),
    (lambda s: s["rsp"]["ra"].update(frozen=False, prior=None), ("rsp.ra",)),
    (lambda s: s["src"]["factor"].update(val="one"), ("src.factor.val",)),
    (lambda s: s["src"].update(poisson="yes"), ("src.poisson",)),
    (lambda s: s.update(src=[1, 2]), ("src",)),
])
def test_state_edited(copy, edit, fragments):
    folder, path = copy
    _edit_state(path, edit)
    _fails(folder, *fragments)


def test_a_settings_value_only_the_unit_rejects(copy):
    """What the storage cannot judge (a grouping method) is a `SaveError` with ``build``."""
    folder, path = copy
    _edit_state(path, lambda s: s["settings"].update(grpg={"method": "no-such-method"}))
    with pytest.raises(SaveError, match="settings") as caught:
        storage.load_unit(folder, build=bj.DataUnit)
    assert os.path.join(str(folder), NPZ) in str(caught.value)


def test_the_channel_counts_disagree(copy, unit):
    folder, path = copy
    n = unit.src.n_channels - 2
    _rewrite(path, replace={f: v[:n] for f, v in _members(path).items()
                            if f.startswith("bkg.") and v.ndim == 1 and v.shape[0] == n + 2})
    _fails(folder, "channel counts disagree")


# -- versions ------------------------------------------------------------------------------


def test_the_format_carries_its_version(saved):
    state = json.loads(_members(os.path.join(saved, NPZ))["__state__"].tobytes())
    assert state["format"] == f"bayspec_jax.DataUnit/{storage.FORMAT_VERSION}" == (
        "bayspec_jax.DataUnit/1")


@pytest.mark.parametrize("fmt, fragments", [
    ("bayspec_jax.DataUnit/2", ("newer", "version 2")),
    ("bayspec_jax.DataUnit/99", ("newer", "version 99")),
    ("bayspec_jax.DataUnit/x", ("no valid version",)),
    ("bayspec_jax.DataUnit/0", ("no valid version",)),
    ("bayspec_jax.DataUnit", ("not a saved",)),
    ("somebody.else/1", ("not a saved",)),
    (None, ("not a saved",)),
])
def test_wrong_version(copy, fmt, fragments):
    folder, path = copy
    _edit_state(path, lambda s: s.update(format=fmt))
    _fails(folder, *fragments)


def test_no_version(copy):
    folder, path = copy
    _edit_state(path, lambda s: s.pop("format"))
    _fails(folder, "no format version")


def test_a_save_from_before_the_prior_text(copy):
    """Saves written before this change stored a prior's arguments as floats (and carry version
    1 already): they load, with the float text."""
    folder, path = copy

    def as_floats(state):
        for prefix in ("src", "bkg", "rsp"):
            for key in ("factor", "ra", "dec"):
                par = state[prefix].get(key)
                if par is not None and par["prior"] is not None:
                    par["prior"] = [par["prior"][0], *map(float, par["prior"][1:])]
        state["rsp"]["ra"]["prior"] = ["unif", 0.0, 360.0]
    _edit_state(path, as_floats)
    loaded = bj.DataUnit.load(folder)
    assert repr(loaded.rsp.ra.prior) == "unif(0.0, 360.0)"


# -- not a save ---------------------------------------------------------------------------------


def test_not_a_save(copy):
    folder, path = copy
    with open(path, "w") as f:
        f.write("SIMPLE  =                    T / a FITS file, not a save\n")
    _fails(folder, "not a saved data unit")
    with open(path, "wb") as f:
        np.save(f, np.arange(5.0))  # an .npy, not an .npz
    _fails(folder, "not a saved data unit")
    with zipfile.ZipFile(path, "w") as archive:  # a zip, not an npz
        archive.writestr("readme.txt", "hello")
    _fails(folder)
    np.savez(path, counts=np.arange(5.0))  # another program's npz
    _fails(folder, "'__state__'", "missing")


# -- the prior's text ------------------------------------------------------------------------


@pytest.mark.parametrize("prior, text", [
    (unif(0.5, 2), "unif(0.5, 2)"),
    (logunif(1, 1e3), "logunif(1, 1000.0)"),
    (norm(np.float64(1.0), 0.1), "norm(1.0, 0.1)"),
    (unif(-3, 2), "unif(-3, 2)"),
])
def test_prior_text_round_trip(unit, tmp_path, prior, text):
    assert repr(prior) == text
    src = eqx.tree_at(lambda s: s.factor, unit.src, Par(1.0, prior=prior))
    rsp = eqx.tree_at(lambda r: r.ra, unit.rsp, Par(10.0, prior=prior, frozen=True))
    unit.replace(src=src, rsp=rsp).save(tmp_path / "u")
    loaded = bj.DataUnit.load(tmp_path / "u")
    assert repr(loaded.src.factor.prior) == text and loaded.src.factor.prior == prior
    assert not loaded.src.factor.frozen
    assert repr(loaded.rsp.ra.prior) == text and loaded.rsp.ra.frozen
    assert loaded.src.factor.todict()["prior"] == text


def test_a_prior_from_elsewhere_is_refused_before_writing(unit, tmp_path):
    @dataclasses.dataclass(frozen=True, repr=False)
    class halfnorm(bj.params.Prior):
        scale: float

    src = eqx.tree_at(lambda s: s.factor, unit.src, Par(1.0, prior=halfnorm(1.0)))
    with pytest.raises(ValueError, match="cannot be saved"):
        unit.replace(src=src).save(tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_areascale_round_trip(unit, tmp_path):
    """AREASCAL (when the spectra carry it) is saved when it is not 1, and read back."""
    if "areascale" not in {f.name for f in dataclasses.fields(bj.Source)}:
        pytest.skip("this Source has no areascale")
    scale = np.full(unit.src.n_channels, 0.75)
    src = eqx.tree_at(lambda s: s.areascale, unit.src, jnp.asarray(scale))
    unit.replace(src=src).save(tmp_path / "u")
    np.testing.assert_array_equal(np.asarray(bj.DataUnit.load(tmp_path / "u").src.areascale),
                                  scale)
    unit.save(tmp_path / "plain")
    assert "src.areascale" not in _members(tmp_path / "plain" / NPZ)


# -- Data ---------------------------------------------------------------------------------------


def test_data_index(unit, tmp_path):
    data = bj.Data([("a", unit), ("b", unit)])
    data.save(tmp_path / "d")
    # a data.json from before the format key (as Data.save writes it today) is version 1
    assert storage.load_data_index(tmp_path / "d") == ["a", "b"]
    storage.save_data_index(["a", "b"], {}, tmp_path / "d")
    index = json.loads((tmp_path / "d" / "data.json").read_text())
    assert index["format"] == "bayspec_jax.Data/1"
    assert storage.load_data_index(tmp_path / "d") == ["a", "b"]
    path = str(tmp_path / "d" / "data.json")
    for text, fragment in [("", "not a readable"), ('{"names": ["a"', "not a readable"),
                           ('{"info": {}}', "no 'names'"), ('{"names": "ab"}', "names"),
                           ('{"format": "bayspec_jax.Data/7", "names": ["a"]}', "newer")]:
        with open(path, "w") as f:
            f.write(text)
        with pytest.raises(SaveError, match=fragment) as caught:
            storage.load_data_index(tmp_path / "d")
        assert path in str(caught.value)
    with open(path, "w") as f:
        json.dump({"names": ["a", "b", "c"]}, f)
    with pytest.raises(SaveError, match="unit 2"):
        storage.load_data_index(tmp_path / "d")


def test_data_with_a_damaged_unit(unit, tmp_path):
    bj.Data([("a", unit), ("b", unit)]).save(tmp_path / "d")
    npz = tmp_path / "d" / "unit0001" / NPZ
    npz.write_bytes(npz.read_bytes()[:500])
    with pytest.raises(SaveError, match="truncated") as caught:
        bj.Data.load(tmp_path / "d")
    assert str(npz) in str(caught.value)
