"""Write-then-read is exact for every example file (PHA I/II, RMF/RSP, ARF)."""

import contextlib
import io

import numpy as np
import pytest

from bayspec_jax.io import (
    count_pha_rows,
    read_arf,
    read_pha,
    read_rmf,
    write_arf,
    write_pha,
    write_pha2,
    write_rmf,
)

PHA_FIELDS = ("counts", "quality", "grouping", "channels", "errors")


def _assert_same_pha(a, b):
    for field in PHA_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    for field in ("stat_err", "sys_err", "ebounds"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=field)
    assert a.exposure == b.exposure
    np.testing.assert_array_equal(np.asarray(a.backscale), np.asarray(b.backscale))
    assert a.poisson_errors == b.poisson_errors
    for key in ("TELESCOP", "INSTRUME", "BACKFILE", "RESPFILE"):
        if key in a.keywords and isinstance(a.keywords[key], str):
            assert b.keywords.get(key) == a.keywords[key]


def _pha_files(data_dir):
    return [p for p in sorted(data_dir.glob("*/*")) if p.suffix in (".src", ".bkg", ".pi")]


def test_pha_type1_roundtrip(data_dir, tmp_path):
    files = _pha_files(data_dir)
    assert len(files) == 26
    for path in files:
        original = read_pha(str(path))
        target = tmp_path / (path.name + ".out")
        write_pha(str(target), original)
        _assert_same_pha(original, read_pha(str(target)))


@pytest.mark.parametrize("name", ["me.src2", "me.bkg2"])
def test_pha_type2_roundtrip(data_dir, name):
    path = str(data_dir / "ME" / name)
    rows = [read_pha(path, row) for row in range(count_pha_rows(path))]
    buffer = io.BytesIO()
    write_pha2(buffer, rows)
    assert count_pha_rows(io.BytesIO(buffer.getvalue())) == len(rows) == 10
    for row, original in enumerate(rows):
        _assert_same_pha(original, read_pha((io.BytesIO(buffer.getvalue()), row)))


@pytest.mark.parametrize(
    "relpath", ["ME/me.rsp", "ME/me2.rsp", "ME/me.rsp2", "HE/he.rsp",
                "XRAY-sherpa-3c273/3c273.rmf"])
def test_response_roundtrip(data_dir, relpath):
    original = read_rmf(str(data_dir / relpath))
    for kind in ("rmf", "rsp"):
        buffer = io.BytesIO()
        write_rmf(buffer, original, kind=kind)
        back = read_rmf(io.BytesIO(buffer.getvalue()))
        np.testing.assert_array_equal(back.drm, original.drm)
        np.testing.assert_array_equal(back.chbin, original.chbin)
        np.testing.assert_array_equal(back.phbin, original.phbin)
        np.testing.assert_array_equal(back.channels, original.channels)
        assert (back.chbin_dtype, back.phbin_dtype) == (original.chbin_dtype, original.phbin_dtype)


def test_rsp2_roundtrip_selects_by_extver(data_dir):
    first = read_rmf(str(data_dir / "ME/me.rsp"))
    second = read_rmf(str(data_dir / "ME/me2.rsp"))
    buffer = io.BytesIO()
    write_rmf(buffer, [first, second], kind="rsp")
    raw = buffer.getvalue()
    np.testing.assert_array_equal(read_rmf((io.BytesIO(raw), 1)).drm, first.drm)
    np.testing.assert_array_equal(read_rmf((io.BytesIO(raw), 2)).drm, second.drm)
    np.testing.assert_array_equal(read_rmf(io.BytesIO(raw)).drm, first.drm)


@pytest.mark.parametrize("relpath", ["LE/le.arf", "LE/le2.arf", "XRAY-sherpa-3c273/3c273.arf"])
def test_arf_roundtrip(data_dir, relpath):
    with pytest.warns(UserWarning) if relpath == "LE/le.arf" else contextlib.nullcontext():
        original = read_arf(str(data_dir / relpath))
    buffer = io.BytesIO()
    write_arf(buffer, [original, original])
    for extver in (1, 2):
        with pytest.warns(UserWarning) if relpath == "LE/le.arf" else contextlib.nullcontext():
            back = read_arf((io.BytesIO(buffer.getvalue()), extver))
        np.testing.assert_array_equal(back.specresp, original.specresp)
        np.testing.assert_array_equal(back.phbin, original.phbin)



def test_written_rmf_is_compressed(data_dir):
    """Rows are stored as runs of non-zero channels, not as dense rows."""
    from astropy.io import fits

    original = read_rmf(str(data_dir / "XRAY-sherpa-3c273/3c273.rmf"))
    buffer = io.BytesIO()
    write_rmf(buffer, original)
    with fits.open(io.BytesIO(buffer.getvalue())) as hdul:
        table = hdul["MATRIX"].data
        stored = sum(len(row) for row in table["MATRIX"])
        assert "P" in hdul["MATRIX"].columns["MATRIX"].format
    assert stored == np.count_nonzero(original.drm)
