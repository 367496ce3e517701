"""Bad files and extreme values (issue 16): the readers of `bayspec_jax.io` reject them.

Every corruption is made on a copy of a REAL example file (``shared/data/bayspec-examples``,
only read), in memory or in `tmp_path`, and must give an `OGIPError` whose message names the
file, the extension and the column or keyword and says what was expected: never another
exception, a silent NaN or a silently wrong answer. The bounds are those of `bayspec_jax.io.limits`.

1. responses: negative, all-zero or huge MATRIX / SPECRESP values;
2. energy grids: ENERG_LO/ENERG_HI and EBOUNDS bins (finite, positive width, no overlaps);
3. PHA rows out of CHANNEL order are sorted; duplicate or missing channels are errors;
4. HDUCLAS3 (COUNT / RATE) contradicting the COUNTS / RATE column;
5. extreme finite values (EXPOSURE, BACKSCAL, COUNTS, STAT_ERR, SYS_ERR);
6. a GROUPING column without any group start.

Last, a property test: random header and column corruptions of files of several missions
give a valid object whose arrays are finite, or an `OGIPError`, nothing else.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_io_errors import copy_column, edited, object_rows, quietly, to_bytes

from bayspec_jax.io import OGIPError, limits, read_arf, read_pha, read_rmf

ME_SRC = "ME/me.src"
ME_SRC2 = "ME/me.src2"
ME_BKG2 = "ME/me.bkg2"
ME_RSP = "ME/me.rsp"
ME_RSP2 = "ME/me.rsp2"
GBM_N6 = "GBM/n6.src"
HE_RSP = "HE/he.rsp"
LE_ARF = "LE/le.arf"
LE2_SRC = "LE/le2.src"
LE2_ARF = "LE/le2.arf"
PI_3C273 = "XRAY-sherpa-3c273/3c273.pi"
RMF_3C273 = "XRAY-sherpa-3c273/3c273.rmf"
ARF_3C273 = "XRAY-sherpa-3c273/3c273.arf"
BYTESIO = "<BytesIO>"


# ----------------------------------------------------------------------------------------------
# helpers (the others are test_io_errors')


def is_vla(table: fits.BinTableHDU, name: str) -> bool:
    return str(table.columns[name].format).upper().startswith(("P", "Q"))


def set_column(hdul: fits.HDUList, ext: str, name: str, array: Any, fmt: str | None = None,
               rename: str | None = None) -> None:
    """Replace (or add) column `name` of `ext` by `array` (FITS format `fmt`, default double),
    optionally under the new name `rename`; the header keywords are kept."""
    old = hdul[ext]
    if fmt is None:
        array = np.asarray(array, dtype=np.float64)
        fmt = f"{array.shape[1]}D" if array.ndim == 2 else "D"
    new = fits.Column(name=rename or name, format=fmt, array=array)
    columns = [copy_column(old, c) for c in old.columns.names]
    names = [c.upper() for c in old.columns.names]
    if name.upper() in names:
        columns[names.index(name.upper())] = new
    else:
        columns.append(new)
    hdul[hdul.index_of(ext)] = fits.BinTableHDU.from_columns(columns, header=old.header)


def floats(hdul: fits.HDUList, ext: str, name: str) -> np.ndarray:
    return np.array(hdul[ext].data[name], dtype=np.float64)


def edit_column(ext: str, name: str, change: Callable[[np.ndarray], Any]) -> Callable:
    """An edit that applies ``change`` in place to a float copy of a fixed-length column."""
    def edit(hdul):
        values = floats(hdul, ext, name)
        change(values)
        set_column(hdul, ext, name, values)
    return edit


def set_cards(ext: str, **cards) -> Callable:
    def edit(hdul):
        for key, value in cards.items():
            hdul[ext].header[key] = value
    return edit


def expect(call: Callable[[], Any], *, file: str, extension: str, column: str,
           match: str = "") -> OGIPError:
    """The call raises an `OGIPError` naming `file`, `extension` and `column`, whose message
    also matches the regular expression `match`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(OGIPError, match=match) as info:
            call()
    err, text = info.value, str(info.value)
    assert (err.file, err.extension, err.column) == (str(file), extension, column), text
    for part in (str(file), extension, column):
        assert part in text, text
    return err


# ----------------------------------------------------------------------------------------------
# 1. responses: negative, all-zero and huge values


def test_negative_matrix_value_rsp(data_dir, tmp_path):
    def spoil(values):
        values[70, 30] = -0.5

    path = tmp_path / "negative.rsp"
    path.write_bytes(edited(data_dir, ME_RSP, edit_column("SPECRESP MATRIX", "MATRIX",
                                                          spoil)).getvalue())
    err = expect(lambda: read_rmf(path), file=str(path), extension="SPECRESP MATRIX",
                 column="MATRIX", match="negative")
    assert "row 70, channel index 30" in str(err) and "-0.5" in str(err)


def test_negative_matrix_value_variable_length_rmf(data_dir):
    def spoil(hdul):
        rows = [np.array(r, dtype=np.float32) for r in hdul["MATRIX"].data["MATRIX"]]
        rows[500][0] = -1e-3
        set_column(hdul, "MATRIX", "MATRIX", object_rows(rows), "PE()")

    expect(lambda: read_rmf(edited(data_dir, RMF_3C273, spoil)), file=BYTESIO,
           extension="MATRIX", column="MATRIX", match="cannot be negative")


def test_all_zero_matrix(data_dir):
    spoil = edit_column("SPECRESP MATRIX", "MATRIX", lambda v: v.__setitem__(..., 0.0))
    expect(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO,
           extension="SPECRESP MATRIX", column="MATRIX", match="no effective area")


def test_matrix_without_any_group(data_dir):
    """Every row with N_GRP = 0: nothing is read, so there is no effective area."""
    def spoil(hdul):
        set_column(hdul, "SPECRESP MATRIX", "N_GRP", np.zeros(140, np.int16), "I")
        set_column(hdul, "SPECRESP MATRIX", "MATRIX", np.zeros((140, 128)))

    expect(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO,
           extension="SPECRESP MATRIX", column="MATRIX", match="no effective area")


@pytest.mark.parametrize("value", [1e300, 1e13, 3e38])
def test_huge_matrix_value(data_dir, value):
    spoil = edit_column("SPECRESP MATRIX", "MATRIX", lambda v: v.__setitem__((10, 20), value))
    expect(lambda: read_rmf(edited(data_dir, HE_RSP, spoil)), file=BYTESIO,
           extension="SPECRESP MATRIX", column="MATRIX", match=r"above 1e\+12.*arithmetic")


@pytest.mark.parametrize("value", [-100.0, -1e300])
def test_negative_specresp_is_an_error(data_dir, tmp_path, value):
    """Negative areas deeper than 10 % of the peak (3c273.arf peaks at 149 cm^2)."""
    path = tmp_path / "negative.arf"
    path.write_bytes(edited(data_dir, ARF_3C273, edit_column(
        "SPECRESP", "SPECRESP", lambda v: v.__setitem__(200, value))).getvalue())
    err = expect(lambda: read_arf(path), file=str(path), extension="SPECRESP",
                 column="SPECRESP", match="negative")
    assert "row 200" in str(err)


def test_slightly_negative_specresp_warns(data_dir):
    """A shallow dip below zero (an extrapolation artefact, as in the real LE/le.arf) is kept,
    with a warning."""
    buffer = edited(data_dir, ARF_3C273, edit_column("SPECRESP", "SPECRESP",
                                                     lambda v: v.__setitem__(0, -1.0)))
    with pytest.warns(UserWarning, match="negative"):
        arf = read_arf(buffer)
    assert arf.specresp[0] == -1.0
    with pytest.warns(UserWarning, match="negative"):
        real = read_arf(data_dir / LE_ARF)
    assert np.sum(real.specresp < 0) == 19


@pytest.mark.parametrize("value", [0.0, -0.5])
def test_specresp_without_effective_area(data_dir, value):
    spoil = edit_column("SPECRESP", "SPECRESP", lambda v: v.__setitem__(..., value))
    expect(lambda: read_arf(edited(data_dir, LE2_ARF, spoil)), file=BYTESIO,
           extension="SPECRESP", column="SPECRESP", match="no effective area")


@pytest.mark.parametrize("value", [1e300, 1e20])
def test_huge_specresp(data_dir, value):
    spoil = edit_column("SPECRESP", "SPECRESP", lambda v: v.__setitem__(7, value))
    expect(lambda: read_arf(edited(data_dir, ARF_3C273, spoil)), file=BYTESIO,
           extension="SPECRESP", column="SPECRESP", match="arithmetic")


# ----------------------------------------------------------------------------------------------
# 2. energy grids


GRID = "ENERG_LO/ENERG_HI"


def swap_bins(i: int) -> Callable:
    """Bins i and i+1 exchanged in ENERG_LO and ENERG_HI (the matrix rows left alone)."""
    def edit(hdul):
        for name in ("ENERG_LO", "ENERG_HI"):
            values = floats(hdul, "SPECRESP MATRIX", name)
            values[[i, i + 1]] = values[[i + 1, i]]
            set_column(hdul, "SPECRESP MATRIX", name, values, "E")
    return edit


def test_energy_bins_out_of_order(data_dir):
    expect(lambda: read_rmf(edited(data_dir, ME_RSP, swap_bins(40))), file=BYTESIO,
           extension="SPECRESP MATRIX", column=GRID, match="bins 40 and 41 overlap")


def test_energy_bins_overlap(data_dir, tmp_path):
    def spoil(values):
        values[100] = values[101] + 0.5 * (values[102] - values[101])  # HI[100] inside bin 101

    path = tmp_path / "overlap.rmf"
    path.write_bytes(edited(data_dir, RMF_3C273, edit_column("MATRIX", "ENERG_HI",
                                                             spoil)).getvalue())
    expect(lambda: read_rmf(path), file=str(path), extension="MATRIX", column=GRID,
           match=r"bins 100 and 101 overlap .*ENERG_HI\[100\]")


@pytest.mark.parametrize("width", [0.0, -0.1])
@pytest.mark.parametrize("rel, ext, reader", [(ME_RSP, "SPECRESP MATRIX", read_rmf),
                                              (ARF_3C273, "SPECRESP", read_arf)])
def test_zero_width_and_reversed_energy_bins(data_dir, rel, ext, reader, width):
    def spoil(hdul):
        lo, hi = floats(hdul, ext, "ENERG_LO"), floats(hdul, ext, "ENERG_HI")
        hi[5] = lo[5] * (1 + width)
        set_column(hdul, ext, "ENERG_HI", hi)

    expect(lambda: reader(edited(data_dir, rel, spoil)), file=BYTESIO, extension=ext,
           column=GRID, match="ENERG_LO < ENERG_HI .*positive width.*bin 5")


@pytest.mark.parametrize("name, value, match", [
    ("ENERG_LO", -1.0, "ENERG_LO >= 0"), ("ENERG_LO", np.nan, "finite"),
    ("ENERG_HI", np.inf, "finite"), ("ENERG_HI", 1e300, "above")])
def test_energy_values_invalid(data_dir, name, value, match):
    index = 0 if name == "ENERG_LO" else -1
    spoil = edit_column("SPECRESP", name, lambda v: v.__setitem__(index, value))
    expect(lambda: read_arf(edited(data_dir, LE2_ARF, spoil)), file=BYTESIO,
           extension="SPECRESP", column=GRID, match=match)


def test_energy_rounding_and_gaps_are_accepted(data_dir):
    """Edges that differ by float32 rounding, and a gap between bins, are fine."""
    reference = read_rmf(data_dir / ME_RSP)

    def nudge(hdul):
        hi = floats(hdul, "SPECRESP MATRIX", "ENERG_HI")
        hi[10] *= 1 + 3e-7  # just above ENERG_LO[11]
        hi[20] *= 1 - 1e-3  # a gap before bin 21
        set_column(hdul, "SPECRESP MATRIX", "ENERG_HI", hi)

    rmf = read_rmf(edited(data_dir, ME_RSP, nudge))
    np.testing.assert_array_equal(rmf.drm, reference.drm)
    assert rmf.phbin[10, 1] > rmf.phbin[11, 0] and rmf.phbin[20, 1] < rmf.phbin[21, 0]


@pytest.mark.parametrize("change, match", [
    (lambda lo, hi: hi.__setitem__(17, lo[17]), "E_MIN < E_MAX .*channel 17"),
    (lambda lo, hi: hi.__setitem__(17, lo[17] - 1), "E_MIN < E_MAX .*channel 17"),
    (lambda lo, hi: lo.__setitem__(3, -2.0), "E_MIN >= 0"),
    (lambda lo, hi: lo.__setitem__(3, np.nan), "finite"),
    (lambda lo, hi: hi.__setitem__(-1, 1e300), "above")])
def test_ebounds_invalid(data_dir, change, match):
    def spoil(hdul):
        lo, hi = floats(hdul, "EBOUNDS", "E_MIN"), floats(hdul, "EBOUNDS", "E_MAX")
        change(lo, hi)
        set_column(hdul, "EBOUNDS", "E_MIN", lo)
        set_column(hdul, "EBOUNDS", "E_MAX", hi)

    expect(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO, extension="EBOUNDS",
           column="E_MIN/E_MAX", match=match)


@pytest.mark.parametrize("change", [lambda c: c.__setitem__(5, c[4]),
                                    lambda c: c.__setitem__(slice(60, None), c[60:] + 1),
                                    lambda c: c.__setitem__([5, 6], c[[6, 5]])])
def test_ebounds_channel_numbers_not_consecutive(data_dir, change):
    """The matrix columns follow EBOUNDS rows: CHANNEL numbers that skip, repeat or go back
    would put the matrix in the wrong channels."""
    def spoil(hdul):
        channels = np.array(hdul["EBOUNDS"].data["CHANNEL"], dtype=np.int32)
        change(channels)
        set_column(hdul, "EBOUNDS", "CHANNEL", channels, "J")

    expect(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO, extension="EBOUNDS",
           column="CHANNEL", match="increase by 1")


def test_real_ebounds_out_of_energy_order_load(data_dir):
    """me.rsp2 (GECAM) has E_MIN/E_MAX out of energy order in its top channels, which its
    spectra flag bad: each channel's bounds are checked, not their order."""
    rmf = read_rmf(data_dir / ME_RSP2)
    assert np.any(np.diff(rmf.chbin[:, 0]) < 0)
    assert np.all(rmf.chbin[:, 1] > rmf.chbin[:, 0])


# ----------------------------------------------------------------------------------------------
# 3. channel order


PER_CHANNEL = ("counts", "stat_err", "sys_err", "quality", "grouping", "backscale", "areascale",
               "channels")


def with_extra_columns(hdul):
    """3c273.pi with per-channel SYS_ERR, BACKSCAL and AREASCAL columns added (so that the
    shuffle test sees every per-channel array permuted), and one bad-quality channel."""
    rng = np.random.default_rng(16)
    n = len(hdul["SPECTRUM"].data)
    quality = np.array(hdul["SPECTRUM"].data["QUALITY"], dtype=np.int16)
    quality[-3:] = 5
    set_column(hdul, "SPECTRUM", "QUALITY", quality, "I")
    set_column(hdul, "SPECTRUM", "SYS_ERR", rng.uniform(0.0, 0.1, n))
    set_column(hdul, "SPECTRUM", "BACKSCAL", rng.uniform(1e-6, 3e-6, n))
    set_column(hdul, "SPECTRUM", "AREASCAL", rng.uniform(0.9, 1.1, n))


def shuffled_rows(hdul, ext: str = "SPECTRUM", seed: int = 3):
    """Every row of table `ext` moved to a random place (all its columns alike)."""
    table = hdul[ext]
    order = np.random.default_rng(seed).permutation(len(table.data))
    columns = [fits.Column(name=c.name, format=str(c.format), unit=c.unit,
                           array=np.array(table.data[c.name])[order]) for c in table.columns]
    hdul[hdul.index_of(ext)] = fits.BinTableHDU.from_columns(columns, header=table.header)


def assert_same_spectrum(pha, reference):
    for name in PER_CHANNEL:
        a, b = getattr(pha, name, None), getattr(reference, name, None)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name
    np.testing.assert_array_equal(pha.errors, reference.errors)
    assert pha.exposure == reference.exposure and pha.first_channel == reference.first_channel
    if reference.ebounds is not None:
        np.testing.assert_array_equal(pha.ebounds, reference.ebounds)


@pytest.mark.parametrize("rel, extra", [(PI_3C273, with_extra_columns), (PI_3C273, None),
                                        (GBM_N6, None), (LE2_SRC, None)])
def test_shuffled_rows_read_as_the_original(data_dir, tmp_path, rel, extra):
    """A PHA whose rows are not in CHANNEL order is read sorted: every per-channel array equal
    to the original's (EBOUNDS, in its own order, stays as it is)."""
    reference = quietly(lambda: read_pha(edited(data_dir, rel, extra or (lambda h: None))))

    def shuffle(hdul):
        if extra is not None:
            extra(hdul)
        shuffled_rows(hdul)

    path = tmp_path / "shuffled.pha"
    path.write_bytes(edited(data_dir, rel, shuffle).getvalue())
    assert np.any(np.diff(fits.getdata(path, "SPECTRUM")["CHANNEL"]) != 1)
    pha = quietly(lambda: read_pha(path))
    assert_same_spectrum(pha, reference)
    assert np.all(np.diff(pha.channels) == 1)


def test_reversed_type2_channels(data_dir):
    """A PHA II row whose CHANNEL vector runs backwards, its other vectors alike."""
    reference = read_pha(data_dir / ME_BKG2, 3)

    def reverse(hdul):
        table = hdul["SPECTRUM"]
        rows, n = len(table.data), reference.n_channels
        set_column(hdul, "SPECTRUM", "CHANNEL", np.tile(np.arange(n)[::-1], (rows, 1)),
                   f"{n}J")
        for name in ("COUNTS", "STAT_ERR", "QUALITY", "GROUPING"):
            values = np.array(hdul["SPECTRUM"].data[name])[:, ::-1]
            set_column(hdul, "SPECTRUM", name, values,
                       f"{n}I" if name in ("QUALITY", "GROUPING") else f"{n}D")

    pha = read_pha(edited(data_dir, ME_BKG2, reverse), 3)
    for name in ("counts", "stat_err", "quality", "grouping"):
        np.testing.assert_array_equal(getattr(pha, name), getattr(reference, name), err_msg=name)
    np.testing.assert_array_equal(pha.channels, np.arange(reference.n_channels))


@pytest.mark.parametrize("change, match", [
    (lambda c: c.__setitem__(10, c[11]), r"duplicate channel numbers \[12\]"),
    (lambda c: c.__setitem__(slice(500, None), c[500:] + 3), "gap .*500 is followed by 504"),
    (lambda c: c.__setitem__(0, 5000), "gap")])
def test_duplicate_or_missing_channels(data_dir, tmp_path, change, match):
    def spoil(hdul):
        channels = np.array(hdul["SPECTRUM"].data["CHANNEL"], dtype=np.int32)
        change(channels)
        set_column(hdul, "SPECTRUM", "CHANNEL", channels, "J")

    path = tmp_path / "channels.pi"
    path.write_bytes(edited(data_dir, PI_3C273, spoil).getvalue())
    expect(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="CHANNEL",
           match=match)


def test_first_channel_is_exposed(data_dir):
    assert read_pha(data_dir / GBM_N6).first_channel == 0  # GBM CSPEC-style, TLMIN1 = 0
    assert read_pha(data_dir / ME_SRC).first_channel == 1
    assert read_pha(data_dir / ME_SRC2, 4).first_channel == 0  # no CHANNEL: EBOUNDS's
    rmf = read_rmf(data_dir / ME_RSP)
    assert rmf.first_channel == 1 and rmf.channels[0] == 1
    assert read_rmf(data_dir / ME_RSP2).first_channel == 0  # its EBOUNDS CHANNEL starts at 0


# ----------------------------------------------------------------------------------------------
# 4. HDUCLAS3 against COUNTS / RATE


def test_counts_renamed_rate_while_hduclas3_says_count(data_dir, tmp_path):
    with fits.open(data_dir / LE2_SRC) as hdul:
        assert hdul["SPECTRUM"].header["HDUCLAS3"] == "COUNT"

    def rename(hdul):
        hdul["SPECTRUM"].columns.change_name("COUNTS", "RATE")

    path = tmp_path / "rate.pha"
    path.write_bytes(edited(data_dir, LE2_SRC, rename).getvalue())
    expect(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="HDUCLAS3",
           match="'COUNT'.*has RATE and no COUNTS.*contradict")


def test_counts_column_while_hduclas3_says_rate(data_dir):
    expect(lambda: read_pha(edited(data_dir, LE2_SRC, set_cards("SPECTRUM", HDUCLAS3="RATE"))),
           file=BYTESIO, extension="SPECTRUM", column="HDUCLAS3",
           match="'RATE'.*has COUNTS and no RATE")


def test_hduclas3_that_agrees_or_says_neither(data_dir):
    """RATE with HDUCLAS3 = RATE is read as rate x exposure; other HDUCLAS3 values (3c273.pi
    says TYPE:I) leave the choice to the columns; with both columns, HDUCLAS3 picks."""
    reference = read_pha(data_dir / LE2_SRC)

    def to_rate(hdul):
        set_column(hdul, "SPECTRUM", "COUNTS", floats(hdul, "SPECTRUM", "COUNTS") / 70.0,
                   rename="RATE")
        hdul["SPECTRUM"].header["HDUCLAS3"] = "RATE"

    np.testing.assert_allclose(read_pha(edited(data_dir, LE2_SRC, to_rate)).counts,
                               reference.counts, rtol=1e-12)
    assert read_pha(data_dir / PI_3C273).n_channels == 1024

    def both(hdul):
        set_column(hdul, "SPECTRUM", "RATE", floats(hdul, "SPECTRUM", "COUNTS") / 35.0)
        hdul["SPECTRUM"].header["HDUCLAS3"] = "RATE"

    np.testing.assert_allclose(read_pha(edited(data_dir, LE2_SRC, both)).counts,
                               2 * reference.counts, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# 5. extreme finite values


@pytest.mark.parametrize("key, value", [("EXPOSURE", 1e300), ("EXPOSURE", 1e13),
                                        ("EXPOSURE", 1e-300), ("BACKSCAL", 1e-300),
                                        ("BACKSCAL", 1e300), ("SYS_ERR", 1e200)])
def test_extreme_header_values(data_dir, tmp_path, key, value):
    path = tmp_path / "extreme.pha"
    path.write_bytes(edited(data_dir, ME_SRC, set_cards("SPECTRUM", **{key: value})).getvalue())
    expect(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column=key,
           match=rf"must lie within \[.*got {re.escape(repr(value))}.*arithmetic")


@pytest.mark.parametrize("name, value", [("COUNTS", 1e300), ("COUNTS", -1e16),
                                         ("STAT_ERR", 1e200), ("SYS_ERR", 1e5),
                                         ("BACKSCAL", 1e-300)])
def test_extreme_column_values(data_dir, name, value):
    def spoil(hdul):
        if name in hdul["SPECTRUM"].columns.names:
            values = floats(hdul, "SPECTRUM", name)
        else:
            values = np.full(len(hdul["SPECTRUM"].data), 0.01 if name == "SYS_ERR" else 0.5)
        values[9] = value
        set_column(hdul, "SPECTRUM", name, values)

    err = expect(lambda: read_pha(edited(data_dir, ME_SRC, spoil)), file=BYTESIO,
                 extension="SPECTRUM", column=name, match="arithmetic")
    assert "channel index 9" in str(err)


def test_extreme_values_in_bad_quality_channels_are_not_read(data_dir):
    """Like NaN (me.bkg2), a huge value in a bad-quality channel is left out, not an error."""
    quality = read_pha(data_dir / ME_SRC2, 4).quality
    bad = int(np.flatnonzero(quality != 0)[0])

    def spoil(hdul):
        counts = floats(hdul, "SPECTRUM", "COUNTS")
        counts[4, bad] = 1e300
        set_column(hdul, "SPECTRUM", "COUNTS", counts)

    assert read_pha(edited(data_dir, ME_SRC2, spoil), 4).counts[bad] == 1e300


def test_rate_times_exposure_overflow(data_dir):
    def to_rate(hdul):
        rate = floats(hdul, "SPECTRUM", "COUNTS")
        rate[3] = 1e308  # x 70 s: beyond float64
        set_column(hdul, "SPECTRUM", "COUNTS", rate, rename="RATE")
        hdul["SPECTRUM"].header["HDUCLAS3"] = "RATE"

    buffer = edited(data_dir, LE2_SRC, to_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Poisson errors assumed
        warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow warning either
        with pytest.raises(OGIPError, match="non-finite") as info:
            read_pha(buffer)
    assert (info.value.file, info.value.extension, info.value.column) == (
        BYTESIO, "SPECTRUM", "RATE")


@pytest.mark.parametrize("value", [1e300, 1e-300])
def test_extreme_type2_exposure_column(data_dir, value):
    spoil = edit_column("SPECTRUM", "EXPOSURE", lambda v: v.__setitem__(4, value))
    buffer = edited(data_dir, ME_SRC2, spoil)
    expect(lambda: read_pha(buffer, 4), file=BYTESIO, extension="SPECTRUM", column="EXPOSURE",
           match="EXPOSURE must lie within")
    assert read_pha(buffer, 3).exposure > 0


def test_limits_are_arithmetic_safe():
    """The bounds leave the products a fit forms inside float32."""
    f32 = float(np.finfo(np.float32).max)
    assert limits.MAX_COUNTS**2 < f32 and limits.MAX_ENERGY**2 < f32
    assert limits.MAX_AREA * limits.MAX_EXPOSURE < f32 / 1e10
    assert limits.MAX_BACKSCAL / limits.MIN_BACKSCAL < f32
    assert (limits.MAX_COUNTS * limits.MAX_SYS_ERR) ** 2 < f32


# ----------------------------------------------------------------------------------------------
# 6. GROUPING without a group start


@pytest.mark.parametrize("flag", [-1, 0])
def test_grouping_without_group_start(data_dir, tmp_path, flag):
    def spoil(hdul):
        set_column(hdul, "SPECTRUM", "GROUPING", np.full(1024, flag, np.int16), "I")

    path = tmp_path / "grouping.pi"
    path.write_bytes(edited(data_dir, PI_3C273, spoil).getvalue())
    expect(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="GROUPING",
           match=rf"no group starts .*values present: \[{flag}\]")


def test_grouping_without_group_start_type2(data_dir):
    def spoil(hdul):
        grouping = np.array(hdul["SPECTRUM"].data["GROUPING"])
        grouping[4] = -1
        set_column(hdul, "SPECTRUM", "GROUPING", grouping, f"{grouping.shape[1]}I")

    buffer = edited(data_dir, ME_SRC2, spoil)
    expect(lambda: read_pha(buffer, 4), file=BYTESIO, extension="SPECTRUM", column="GROUPING",
           match="no group starts")
    assert np.all(read_pha(buffer, 5).grouping == 1)


def test_real_grouping_and_grouping_keyword(data_dir):
    """3c273.pi's GROUPING column (46 groups) and the GROUPING = 0 keyword of GBM files load."""
    assert np.sum(read_pha(data_dir / PI_3C273).grouping == 1) == 46
    assert np.all(read_pha(data_dir / GBM_N6).grouping == 1)


# ----------------------------------------------------------------------------------------------
# property test: random corruptions of files of several missions


TARGETS = {  # name: (file, data extension, reader, kind)
    "gbm-nai": (GBM_N6, "SPECTRUM", read_pha, "pha"),
    "gbm-bgo-rsp": (HE_RSP, "SPECRESP MATRIX", read_rmf, "rmf"),
    "gecam-bkg2": (ME_BKG2, "SPECTRUM", lambda b: read_pha(b, 3), "pha"),
    "gecam-rsp": (ME_RSP2, "SPECRESP MATRIX", read_rmf, "rmf"),
    "ep-src": (LE2_SRC, "SPECTRUM", read_pha, "pha"),
    "ep-arf": (LE2_ARF, "SPECRESP", read_arf, "arf"),
    "chandra-pi": (PI_3C273, "SPECTRUM", read_pha, "pha"),
    "chandra-rmf": (RMF_3C273, "MATRIX", read_rmf, "rmf"),
    "chandra-arf": (ARF_3C273, "SPECRESP", read_arf, "arf"),
    "ebounds": (ME_RSP, "EBOUNDS", read_rmf, "rmf"),
}

KEYS = ("EXPOSURE", "BACKSCAL", "AREASCAL", "HDUCLAS3", "POISSERR", "SYS_ERR", "STAT_ERR",
        "DETCHANS", "TLMIN1", "TLMIN4", "GROUPING", "QUALITY", "EXTNAME")
NAMES = ("COUNTS", "RATE", "CHANNEL", "STAT_ERR", "ENERG_HI", "E_MIN", "MATRIX", "SPECRESP", "X")
extreme = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-300, 1e-30, 1e15, 1e16,
                           1e30, 1e300, -1e300, 2.0**63])
numbers = st.one_of(extreme, st.floats(allow_nan=True, allow_infinity=True))
card_values = st.one_of(numbers.filter(np.isfinite), st.integers(-(2**40), 2**40),
                        st.sampled_from(["COUNT", "RATE", "TOTAL", "", "T", "abc", "1e300"]),
                        st.booleans())
OPERATIONS = ("scale", "cells", "constant", "shuffle", "reverse", "repeat_row", "negate")


def corrupt_column(hdul, ext: str, name: str, operation: str, factor: float, value: float,
                   picks: list[int]) -> None:
    """Apply one `operation` to column `name` of `ext` (variable-length columns row by row)."""
    table = hdul[ext]
    rng = np.random.default_rng(picks[0])
    vla = is_vla(table, name)
    rows = ([np.array(r, dtype=np.float64) for r in table.data[name]] if vla
            else np.array(table.data[name], dtype=np.float64))
    n = len(rows)
    with np.errstate(all="ignore"):
        if operation == "scale":
            rows = [r * factor for r in rows] if vla else rows * factor
        elif operation == "negate":
            rows = [-r for r in rows] if vla else -rows
        elif operation == "constant":
            rows = [np.full_like(r, value) for r in rows] if vla else np.full_like(rows, value)
        elif operation in ("shuffle", "reverse"):
            order = rng.permutation(n) if operation == "shuffle" else np.arange(n)[::-1]
            rows = [rows[i] for i in order] if vla else rows[order]
        elif operation == "repeat_row":
            i, j = picks[0] % n, picks[-1] % n
            rows[i] = rows[j].copy()
        else:  # cells
            for pick in picks:
                row = rows[pick % n]
                flat = row.reshape(-1) if np.ndim(row) else None
                if flat is None:
                    rows[pick % n] = value
                elif flat.size:
                    flat[(pick // n) % flat.size] = value
    if vla:
        set_column(hdul, ext, name, object_rows(rows), "PD()")
    else:
        fmt = f"{rows.shape[1]}D" if np.ndim(rows) == 2 else "D"
        set_column(hdul, ext, name, rows, fmt)


def check_valid(kind: str, record: Any) -> None:
    """What a record that the readers accept must satisfy."""
    if kind == "pha":
        good = record.quality == 0
        assert limits.MIN_EXPOSURE <= record.exposure <= limits.MAX_EXPOSURE
        assert np.all(np.isfinite(record.counts[good]))
        assert np.all(np.abs(record.counts[good]) <= limits.MAX_COUNTS)
        assert np.all(np.isfinite(record.errors[good])) and np.all(record.errors[good] >= 0)
        scale = np.asarray(record.backscale)
        assert np.all((scale >= limits.MIN_BACKSCAL) & (scale <= limits.MAX_BACKSCAL))
        assert np.all(np.diff(record.channels) == 1) and record.first_channel == record.channels[0]
        assert np.any(record.grouping == 1)
    elif kind == "rmf":
        drm, phbin, chbin = record.drm, record.phbin, record.chbin
        assert np.all(np.isfinite(drm)) and np.all(drm >= 0) and np.any(drm > 0)
        assert np.all(drm <= limits.MAX_AREA)
        assert np.all(phbin[:, 1] > phbin[:, 0]) and np.all(phbin[:, 0] >= 0)
        assert np.all(phbin[1:, 0] >= phbin[:-1, 1] * (1 - limits.ENERGY_RTOL))
        assert np.all(chbin[:, 1] > chbin[:, 0]) and np.all(chbin <= limits.MAX_ENERGY)
        assert np.all(np.diff(record.channels) == 1)
    else:
        area = record.specresp
        assert np.all(np.isfinite(area)) and area.max() > 0 and area.max() <= limits.MAX_AREA
        assert area.min() >= -limits.NEGATIVE_AREA_TOLERANCE * area.max()
        assert np.all(record.phbin[:, 1] > record.phbin[:, 0])


def read_or_reject(name: str, data: bytes) -> None:
    """The reader of target `name` gives a valid record or an `OGIPError` naming the file."""
    _, _, reader, kind = TARGETS[name]
    try:
        record = quietly(lambda: reader(io.BytesIO(data)))
    except OGIPError as err:
        assert err.file == BYTESIO, str(err)
        assert "damaged or malformed content" not in str(err), str(err)  # a specific message
    else:
        check_valid(kind, record)


PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_ORIGINALS: dict[str, bytes] = {}


def original(data_dir, name: str) -> bytes:
    if name not in _ORIGINALS:
        _ORIGINALS[name] = (data_dir / TARGETS[name][0]).read_bytes()
    return _ORIGINALS[name]


@PROPERTY
@given(name=st.sampled_from(sorted(TARGETS)), pick=st.integers(0, 10**6),
       operation=st.sampled_from(OPERATIONS), factor=numbers, value=numbers,
       picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_property_column_corruptions(data_dir, name, pick, operation, factor, value, picks):
    _, ext, _, _ = TARGETS[name]
    with fits.open(io.BytesIO(original(data_dir, name)), memmap=False) as hdul:
        numeric = [c.name for c in hdul[ext].columns if "A" not in str(c.format).upper()]
        corrupt_column(hdul, ext, numeric[pick % len(numeric)], operation, factor, value, picks)
        data = to_bytes(hdul)
    read_or_reject(name, data)


@PROPERTY
@given(name=st.sampled_from(sorted(TARGETS)),
       cards=st.lists(st.tuples(st.sampled_from(KEYS), card_values), min_size=1, max_size=3),
       rename=st.none() | st.tuples(st.integers(0, 10**6), st.sampled_from(NAMES)))
def test_property_header_corruptions(data_dir, name, cards, rename):
    _, ext, _, _ = TARGETS[name]
    with fits.open(io.BytesIO(original(data_dir, name)), memmap=False) as hdul:
        header = hdul[ext].header
        for key, value in cards:
            if key == "EXTNAME":
                continue  # renaming the extension is test_io_errors' business
            header[key] = value
        if rename is not None:
            columns = hdul[ext].columns.names
            old = columns[rename[0] % len(columns)]
            if rename[1] not in columns:
                hdul[ext].columns.change_name(old, rename[1])
        data = to_bytes(hdul)
    read_or_reject(name, data)
