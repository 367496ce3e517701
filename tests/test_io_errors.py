"""Every way an OGIP file can be wrong is an `OGIPError` naming file, extension and column.

DESIGN principle 6: readers validate what they read and raise `OGIPError` (a `ValueError` and an
`OSError`) that names the file, the extension and the column or keyword. The example files in
``shared/data/bayspec-examples`` are only read; corrupted variants are made in memory
(`io.BytesIO`) or in pytest's `tmp_path`, with astropy.io.fits or by editing header cards.

The second half is property-based: random corruptions of real files (keywords deleted, renamed
or overwritten, columns deleted, cells overwritten with NaN/inf/negative/huge values, bytes
truncated or flipped) must give either a valid object or an `OGIPError`, never another exception.
"""

from __future__ import annotations

import dataclasses
import gc
import gzip
import io
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayspec_jax.data import Auxiliary, Background, Redistribution, Response, Source, Spectrum
from bayspec_jax.io import OGIPError, read_arf, read_pha, read_rmf

ME_SRC = "ME/me.src"
ME_SRC2 = "ME/me.src2"
ME_BKG2 = "ME/me.bkg2"
ME_RSP = "ME/me.rsp"
ME_RSP2 = "ME/me.rsp2"
LE_SRC = "LE/le.src"
RMF_3C273 = "XRAY-sherpa-3c273/3c273.rmf"
ARF_3C273 = "XRAY-sherpa-3c273/3c273.arf"
BYTESIO = "<BytesIO>"
"""The file label of a spectrum read from an `io.BytesIO`."""


# ----------------------------------------------------------------------------------------------
# helpers


def raw(data_dir, rel: str) -> bytes:
    """The bytes of an example file."""
    return (data_dir / rel).read_bytes()


def to_bytes(hdul: fits.HDUList) -> bytes:
    """An HDU list written to FITS bytes (no verification: corrupt content is the point)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul.writeto(buffer, output_verify="ignore")
    return buffer.getvalue()


def edited(data_dir, rel: str, edit: Callable[[fits.HDUList], Any]) -> io.BytesIO:
    """An example file, changed in memory by ``edit(hdul)``, as a fresh `io.BytesIO`."""
    with fits.open(io.BytesIO(raw(data_dir, rel)), memmap=False, lazy_load_hdus=False) as hdul:
        edit(hdul)
        return io.BytesIO(to_bytes(hdul))


def write(tmp_path, name: str, content: bytes | io.BytesIO):
    """Bytes written to ``tmp_path / name``; returns the path."""
    path = tmp_path / name
    path.write_bytes(content.getvalue() if isinstance(content, io.BytesIO) else content)
    return path


def copy_column(table: fits.BinTableHDU, name: str) -> fits.Column:
    """A fresh copy of a column with its data (astropy's ``from_columns`` given the columns of a
    table read from a file mixes up variable-length columns)."""
    column = table.columns[name]
    fmt, values = str(column.format), table.data[name]
    if fmt.upper().startswith(("P", "Q")):
        return fits.Column(name=column.name, format=fmt[:2] + "()", unit=column.unit,
                           array=object_rows([np.array(row) for row in values]))
    return fits.Column(name=column.name, format=fmt, unit=column.unit, dim=column.dim,
                       array=np.array(values))


def rebuild_table(hdul: fits.HDUList, ext: str, columns: list[fits.Column | str]) -> None:
    """Replace table `ext` by one with `columns` (new ones, or names of columns to keep as they
    are), keeping its other header keywords."""
    old = hdul[ext]
    columns = [copy_column(old, c) if isinstance(c, str) else c for c in columns]
    hdul[hdul.index_of(ext)] = fits.BinTableHDU.from_columns(columns, header=old.header)


def set_column(hdul: fits.HDUList, ext: str, name: str, array: Any, fmt: str | None = None) -> None:
    """Replace (or add) column `name` of `ext` with `array`, in FITS format `fmt` (default float)."""
    if fmt is None:
        array = np.asarray(array, dtype=np.float64)
        fmt = f"{array.shape[1]}D" if array.ndim == 2 else "D"
    new = fits.Column(name=name, format=fmt, array=array)
    columns: list[fits.Column | str] = list(hdul[ext].columns.names)
    names = [c.upper() for c in columns]
    if name.upper() in names:
        columns[names.index(name.upper())] = new
    else:
        columns.append(new)
    rebuild_table(hdul, ext, columns)


def drop_column(hdul: fits.HDUList, ext: str, name: str) -> None:
    rebuild_table(hdul, ext, [c for c in hdul[ext].columns.names if c.upper() != name.upper()])


def rename_column(hdul: fits.HDUList, ext: str, old: str, new: str) -> None:
    hdul[ext].columns.change_name(old, new)


def float_column(hdul: fits.HDUList, ext: str, name: str) -> np.ndarray:
    """A copy of a numeric column as float64 (to write NaN into integer columns)."""
    return np.array(hdul[ext].data[name], dtype=np.float64)


def object_rows(rows: list[np.ndarray]) -> np.ndarray:
    """A 1-d object array of rows (variable-length column content)."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def card_offsets(data: bytes, ext: str) -> list[int]:
    """Byte offsets of the header cards (before END) of extension `ext` of a FITS file."""
    with warnings.catch_warnings(), fits.open(io.BytesIO(data), memmap=False) as hdul:
        warnings.simplefilter("ignore")
        info = hdul.fileinfo(hdul.index_of(ext))
    offsets = []
    for offset in range(info["hdrLoc"], info["datLoc"], 80):
        if data[offset : offset + 8] == b"END     ":
            break
        offsets.append(offset)
    return offsets


def make_card(key: str | bytes, value: str) -> bytes:
    """An 80-byte header card ``KEY = value`` written verbatim (it may be invalid FITS)."""
    key = key.decode("ascii") if isinstance(key, bytes) else key
    return (key.ljust(8)[:8] + "= " + value.rjust(20)).ljust(80)[:80].encode("ascii")


def replace_card(data: bytes, ext: str, key: str, value: str) -> bytes:
    """`data` with the card `key` of extension `ext` rewritten as ``key = value`` verbatim."""
    for offset in card_offsets(data, ext):
        if data[offset : offset + 8].decode("ascii").strip() == key:
            return data[:offset] + make_card(key, value) + data[offset + 80 :]
    raise AssertionError(f"no card {key} in {ext}")


def expect_ogip(
    call: Callable[[], Any],
    *,
    file: str,
    extension: str | None = None,
    column: str | None = None,
    mentions: tuple[str, ...] = (),
) -> OGIPError:
    """Call and check the `OGIPError`: its attributes and its message name what is wrong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(OGIPError) as info:
            call()
    err = info.value
    text = str(err)
    assert isinstance(err, ValueError) and isinstance(err, OSError)
    assert err.file == str(file), text
    assert str(file) in text
    if extension is not None:
        assert err.extension == extension, text
        assert extension in text
    if column is not None:
        assert err.column == column, text
        assert column in text
    for word in mentions:
        assert word.lower() in text.lower(), f"{word!r} not in: {text}"
    return err


def quietly(call: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


@pytest.fixture(scope="module")
def rmf_3c273(data_dir) -> Redistribution:
    return Redistribution.from_rmf(data_dir / RMF_3C273)


@pytest.fixture(scope="module")
def arf_3c273(data_dir) -> Auxiliary:
    return Auxiliary.from_arf(data_dir / ARF_3C273)


# ----------------------------------------------------------------------------------------------
# the exception type


def test_ogip_error_is_value_and_os_error_and_pickles():
    err = OGIPError("bad", file="f.pha", extension="SPECTRUM", column="COUNTS")
    assert isinstance(err, ValueError) and isinstance(err, OSError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.extension, again.column, str(again)) == (
        "f.pha", "SPECTRUM", "COUNTS", str(err))
    assert all(word in str(err) for word in ("f.pha", "SPECTRUM", "COUNTS", "bad"))


# ----------------------------------------------------------------------------------------------
# files that are not there, not FITS, or cut short


@pytest.mark.parametrize("reader", [read_pha, read_rmf, read_arf, Source.from_src,
                                    Response.from_rsp, Auxiliary.from_arf])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "absent.fits"
    expect_ogip(lambda: reader(path), file=str(path), mentions=("no such file",))
    expect_ogip(lambda: reader(str(path)), file=str(path))


def test_missing_file_with_row_suffix(tmp_path):
    path = tmp_path / "absent.pha"
    expect_ogip(lambda: read_pha(f"{path}:3"), file=str(path), mentions=("no such file",))


def test_directory_is_not_a_file(tmp_path):
    expect_ogip(lambda: read_pha(tmp_path), file=str(tmp_path), mentions=("directory",))


def test_non_fits_text(tmp_path):
    text = b"CHANNEL COUNTS\n1 10\n2 12\n" * 200
    path = write(tmp_path, "spectrum.pha", text)
    expect_ogip(lambda: read_pha(path), file=str(path), mentions=("FITS",))
    expect_ogip(lambda: read_rmf(path), file=str(path), mentions=("FITS",))
    expect_ogip(lambda: read_pha(io.BytesIO(text)), file=BYTESIO, mentions=("FITS",))
    expect_ogip(lambda: read_arf(io.BytesIO(b"")), file=BYTESIO)


def test_text_mode_file_object(data_dir):
    with open(data_dir / ME_SRC, encoding="latin-1") as handle:
        expect_ogip(lambda: read_pha(handle), file="<TextIOWrapper>", mentions=("binary",))


@pytest.mark.parametrize("rel, reader", [(ME_SRC, read_pha), (ME_RSP, read_rmf),
                                         (RMF_3C273, read_rmf), (ARF_3C273, read_arf)])
def test_truncated_file(data_dir, tmp_path, rel, reader):
    data = raw(data_dir, rel)
    # inside the primary header, inside the first extension's header, inside the data,
    # one block short, one byte short
    for cut in (100, 2880 + 1000, len(data) // 2, len(data) - 2880, len(data) - 1):
        path = write(tmp_path, f"cut{cut}.fits", data[:cut])
        expect_ogip(lambda: reader(path), file=str(path))
        expect_ogip(lambda: reader(io.BytesIO(data[:cut])), file=BYTESIO)


def test_truncated_data_says_so(data_dir):
    data = raw(data_dir, ME_SRC)
    expect_ogip(lambda: read_pha(io.BytesIO(data[:-100])), file=BYTESIO, mentions=("truncated",))


def test_damaged_file_is_closed(data_dir, tmp_path):
    """The file handle of a file found damaged is closed (no ResourceWarning later)."""
    path = write(tmp_path, "short.pha", raw(data_dir, ME_SRC)[:-100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with pytest.raises(OGIPError):
                read_pha(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_unrelated_warnings_are_not_damage(data_dir, monkeypatch):
    """Warnings about other things that say "truncated" (a leaked file elsewhere, a long card
    comment) while a file is opened do not make it "truncated"."""
    real_open = fits.open

    def noisy_open(*args, **kwargs):
        warnings.warn("unclosed file </tmp/test_truncated/x.fits>", ResourceWarning)
        warnings.warn("Card is too long, comment will be truncated.", fits.verify.VerifyWarning)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(fits, "open", noisy_open)
    assert read_pha(data_dir / ME_SRC).n_channels == 128


@pytest.mark.parametrize("key, card", [("EXTNAME", "'SPECTRUM"), ("BACKSCAL", "1 2 3"),
                                       ("POISSERR", "maybe"), ("TLMIN1", "1.0.0")])
def test_unparsable_header_card_is_named(data_dir, key, card):
    """A card astropy cannot parse is reported with its keyword (and extension, when known)."""
    data = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", key, card)
    if key == "TLMIN1":  # only read when there is no CHANNEL column to give the channels
        data = replace_card(data, "SPECTRUM", "TTYPE1", "'CHAN_NO'")
        data = replace_card(data, "EBOUNDS", "TTYPE1", "'CHAN_NO'")
    err = expect_ogip(lambda: read_pha(io.BytesIO(data)), file=BYTESIO, column=key)
    assert err.extension == ("HDU #1" if key == "EXTNAME" else "SPECTRUM")


@pytest.mark.parametrize("card", ["'QQ'", "'-1J'", "' '"])
def test_corrupt_column_definition_names_the_extension(data_dir, card):
    data = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "TFORM2", card)
    expect_ogip(lambda: read_pha(io.BytesIO(data)), file=BYTESIO, extension="SPECTRUM",
                mentions=("column definitions",))


def test_column_without_a_name(data_dir):
    """astropy cannot give the data of a table with an unnamed column: named, not a crash."""
    data = raw(data_dir, LE_SRC)
    offset = next(o for o in card_offsets(data, "SPECTRUM") if data[o : o + 8] == b"TTYPE1  ")
    corrupted = data[:offset] + b" " * 80 + data[offset + 80 :]
    expect_ogip(lambda: read_pha(io.BytesIO(corrupted)), file=BYTESIO, extension="SPECTRUM",
                mentions=("TTYPEn",))


# ----------------------------------------------------------------------------------------------
# extensions that are missing


def test_no_spectrum_extension(data_dir, tmp_path):
    def hide(hdul):
        hdul["SPECTRUM"].header["EXTNAME"] = "COUNTS_TABLE"
        del hdul["COUNTS_TABLE"].header["HDUCLAS1"]

    path = write(tmp_path, "nospec.pha", edited(data_dir, ME_SRC, hide))
    expect_ogip(lambda: read_pha(path), file=str(path), mentions=("SPECTRUM", "COUNTS_TABLE"))
    expect_ogip(lambda: Source.from_src(path), file=str(path), mentions=("SPECTRUM",))
    rsp = data_dir / ME_RSP
    expect_ogip(lambda: read_pha(rsp), file=str(rsp), mentions=("SPECTRUM",))


def test_spectrum_found_by_hduclas1(data_dir):
    def rename(hdul):
        hdul["SPECTRUM"].header["EXTNAME"] = "PHA_DATA"

    pha = read_pha(edited(data_dir, ME_SRC, rename))
    np.testing.assert_array_equal(pha.counts, read_pha(data_dir / ME_SRC).counts)


def test_no_matrix_extension(data_dir, tmp_path):
    def drop(hdul):
        del hdul["SPECRESP MATRIX"]

    path = write(tmp_path, "nomatrix.rsp", edited(data_dir, ME_RSP, drop))
    expect_ogip(lambda: read_rmf(path), file=str(path), mentions=("matrix", "EBOUNDS"))
    expect_ogip(lambda: Response.from_rsp(path), file=str(path), mentions=("matrix",))
    src = data_dir / ME_SRC
    expect_ogip(lambda: read_rmf(src), file=str(src), mentions=("matrix",))


def test_no_ebounds_in_rsp(data_dir, tmp_path):
    def drop(hdul):
        del hdul["EBOUNDS"]

    path = write(tmp_path, "noebounds.rsp", edited(data_dir, ME_RSP, drop))
    expect_ogip(lambda: read_rmf(path), file=str(path), mentions=("EBOUNDS",))
    expect_ogip(lambda: Response.from_rsp(path), file=str(path), mentions=("EBOUNDS",))


def test_no_specresp_in_arf(data_dir, tmp_path):
    def hide(hdul):
        hdul["SPECRESP"].header["EXTNAME"] = "AREA"
        del hdul["AREA"].header["HDUCLAS2"]

    path = write(tmp_path, "noarea.arf", edited(data_dir, ARF_3C273, hide))
    expect_ogip(lambda: read_arf(path), file=str(path), mentions=("SPECRESP",))
    expect_ogip(lambda: Auxiliary.from_arf(path), file=str(path), mentions=("SPECRESP",))
    rsp = data_dir / ME_RSP
    expect_ogip(lambda: read_arf(rsp), file=str(rsp), mentions=("SPECRESP",))


@pytest.mark.parametrize("name", ["RSP_MATRIX", "SPECRESP_MATRIX", "MATRIX", "FULL_RESPONSE"])
def test_matrix_found_by_other_names_and_hduclas(data_dir, name):
    """RSP_MATRIX and friends by EXTNAME; any name with HDUCLAS1/2 = RESPONSE/RSP_MATRIX."""
    reference = read_rmf(data_dir / ME_RSP)

    def rename(hdul):
        hdul["SPECRESP MATRIX"].header["EXTNAME"] = name

    rmf = read_rmf(edited(data_dir, ME_RSP, rename))
    np.testing.assert_array_equal(rmf.drm, reference.drm)
    np.testing.assert_array_equal(rmf.chbin, reference.chbin)


def test_matrix_not_found_without_name_or_class(data_dir):
    def hide(hdul):
        hdul["SPECRESP MATRIX"].header["EXTNAME"] = "FULL_RESPONSE"
        del hdul["FULL_RESPONSE"].header["HDUCLAS2"]

    expect_ogip(lambda: read_rmf(edited(data_dir, ME_RSP, hide)), file=BYTESIO,
                mentions=("matrix", "FULL_RESPONSE"))


# ----------------------------------------------------------------------------------------------
# required columns and keywords


def test_neither_counts_nor_rate(data_dir, tmp_path):
    def rename(hdul):
        rename_column(hdul, "SPECTRUM", "COUNTS", "CTS")

    path = write(tmp_path, "nocounts.pha", edited(data_dir, ME_SRC, rename))
    err = expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM",
                      column="COUNTS", mentions=("RATE", "CTS"))
    assert "neither" in str(err)


def test_rate_column_is_counts_over_exposure(data_dir):
    reference = read_pha(data_dir / ME_SRC)

    def to_rate(hdul):
        rate = float_column(hdul, "SPECTRUM", "COUNTS") / reference.exposure
        error = float_column(hdul, "SPECTRUM", "STAT_ERR") / reference.exposure
        drop_column(hdul, "SPECTRUM", "COUNTS")
        set_column(hdul, "SPECTRUM", "RATE", rate)
        set_column(hdul, "SPECTRUM", "STAT_ERR", error)

    pha = read_pha(edited(data_dir, ME_SRC, to_rate))
    np.testing.assert_allclose(pha.counts, reference.counts, rtol=1e-12)
    np.testing.assert_allclose(pha.errors, reference.errors, rtol=1e-6)


def test_exposure_missing(data_dir, tmp_path):
    def drop(hdul):
        del hdul["SPECTRUM"].header["EXPOSURE"]

    path = write(tmp_path, "noexposure.pha", edited(data_dir, ME_SRC, drop))
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="EXPOSURE",
                mentions=("missing",))
    expect_ogip(lambda: Source.from_src(path), file=str(path), extension="SPECTRUM",
                column="EXPOSURE")


def test_exposure_missing_in_type2(data_dir):
    """Without the EXPOSURE column, a type II file falls back on a header EXPOSURE: absent here."""
    buffer = edited(data_dir, ME_SRC2, lambda hdul: drop_column(hdul, "SPECTRUM", "EXPOSURE"))
    expect_ogip(lambda: read_pha(buffer, 4), file=BYTESIO, extension="SPECTRUM",
                column="EXPOSURE")


@pytest.mark.parametrize("card", ["0", "-9.8495", "0.0", "-1E-3", "NaN", "nan", "Inf", "-INF",
                                  "1E400", "'NaN'", "'inf'", "'-1'", "T", "(1.0, 2.0)"])
def test_exposure_not_finite_or_not_positive(data_dir, tmp_path, card):
    """Header values that are zero, negative, NaN, infinite (as literals FITS does not allow, as
    strings, or overflowing), or not numbers at all."""
    data = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "EXPOSURE", card)
    path = write(tmp_path, "exposure.pha", data)
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="EXPOSURE")
    expect_ogip(lambda: Source.from_src(path), file=str(path), extension="SPECTRUM",
                column="EXPOSURE")


@pytest.mark.parametrize("value", [0.0, -5.0, np.nan, np.inf, -np.inf])
def test_exposure_column_of_type2(data_dir, value):
    def spoil(hdul):
        exposure = float_column(hdul, "SPECTRUM", "EXPOSURE")
        exposure[4] = value
        set_column(hdul, "SPECTRUM", "EXPOSURE", exposure)

    buffer = edited(data_dir, ME_SRC2, spoil)
    expect_ogip(lambda: read_pha(buffer, 4), file=BYTESIO, extension="SPECTRUM",
                column="EXPOSURE", mentions=("finite",))
    assert read_pha(buffer, 3).exposure > 0  # the other rows are fine


def test_header_values_written_as_strings(data_dir):
    reference = read_pha(data_dir / ME_SRC)

    def as_strings(hdul):
        hdul["SPECTRUM"].header["EXPOSURE"] = "9.8495"
        hdul["SPECTRUM"].header["BACKSCAL"] = " 0.25 "

    pha = read_pha(edited(data_dir, ME_SRC, as_strings))
    assert pha.exposure == 9.8495
    assert pha.backscale == 0.25
    np.testing.assert_array_equal(pha.counts, reference.counts)
    source = Source.from_src(edited(data_dir, ME_SRC, as_strings))
    assert float(source.exposure) == 9.8495


def test_header_value_not_a_number(data_dir, tmp_path):
    def spoil(hdul):
        hdul["SPECTRUM"].header["EXPOSURE"] = "abc"

    path = write(tmp_path, "abc.pha", edited(data_dir, ME_SRC, spoil))
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="EXPOSURE",
                mentions=("abc", "number"))


@pytest.mark.parametrize("value", ["0", "-1", "'abc'"])
def test_backscale_invalid(data_dir, value):
    data = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "BACKSCAL", value)
    expect_ogip(lambda: read_pha(io.BytesIO(data)), file=BYTESIO, extension="SPECTRUM",
                column="BACKSCAL")


# ----------------------------------------------------------------------------------------------
# counts and errors


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_counts_in_good_channel(data_dir, value):
    def spoil(hdul):
        counts = float_column(hdul, "SPECTRUM", "COUNTS")
        counts[7] = value
        set_column(hdul, "SPECTRUM", "COUNTS", counts)

    err = expect_ogip(lambda: read_pha(edited(data_dir, ME_SRC, spoil)), file=BYTESIO,
                      extension="SPECTRUM", column="COUNTS", mentions=("finite", "QUALITY"))
    assert "[7]" in str(err)


def test_non_finite_counts_good_and_bad_channels_of_type2(data_dir):
    quality = read_pha(data_dir / ME_SRC2, 4).quality
    good, bad = np.flatnonzero(quality == 0)[3], np.flatnonzero(quality != 0)[3]

    def spoil_at(channel):
        def spoil(hdul):
            counts = float_column(hdul, "SPECTRUM", "COUNTS")
            counts[4, channel] = np.nan
            set_column(hdul, "SPECTRUM", "COUNTS", counts)
        return spoil

    expect_ogip(lambda: read_pha(edited(data_dir, ME_SRC2, spoil_at(good)), 4), file=BYTESIO,
                extension="SPECTRUM", column="COUNTS", mentions=(f"[{good}]",))
    pha = read_pha(edited(data_dir, ME_SRC2, spoil_at(bad)), 4)
    assert np.isnan(pha.counts[bad])


def test_nan_counts_in_bad_quality_channels_are_legal(data_dir):
    """me.bkg2 has NaN COUNTS and STAT_ERR in its bad-quality channels: every row loads."""
    path = data_dir / ME_BKG2
    for row in range(10):
        pha = read_pha(path, row)
        bad = pha.quality != 0
        assert np.isnan(pha.counts[bad]).any()
        assert np.all(np.isfinite(pha.counts[~bad])) and np.all(np.isfinite(pha.errors[~bad]))
    background = Background.from_bkg2(path, 3)
    good = np.asarray(background.quality) == 0
    assert np.isnan(np.asarray(background.counts)[~good]).any()
    assert np.all(np.isfinite(np.asarray(background.counts)[good]))
    assert np.all(np.isfinite(np.asarray(background.errors)[good]))


def test_stat_err_zero_where_counts_are_not(data_dir, tmp_path):
    def spoil(hdul):
        assert hdul["SPECTRUM"].header["POISSERR"] is False
        assert hdul["SPECTRUM"].data["COUNTS"][10] != 0
        error = float_column(hdul, "SPECTRUM", "STAT_ERR")
        error[10] = 0.0
        set_column(hdul, "SPECTRUM", "STAT_ERR", error)

    path = write(tmp_path, "zeroerr.pha", edited(data_dir, ME_SRC, spoil))
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="STAT_ERR",
                mentions=("POISSERR",))


def test_stat_err_zero_where_counts_are_zero_is_fine(data_dir):
    def zero_both(hdul):
        counts, error = (float_column(hdul, "SPECTRUM", n) for n in ("COUNTS", "STAT_ERR"))
        counts[10] = error[10] = 0.0
        set_column(hdul, "SPECTRUM", "COUNTS", counts)
        set_column(hdul, "SPECTRUM", "STAT_ERR", error)

    pha = read_pha(edited(data_dir, ME_SRC, zero_both))
    assert pha.errors[10] == 0.0 and not pha.poisson_errors


@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf])
def test_stat_err_negative_or_not_finite(data_dir, value):
    def spoil(hdul):
        error = float_column(hdul, "SPECTRUM", "STAT_ERR")
        error[3] = value
        set_column(hdul, "SPECTRUM", "STAT_ERR", error)

    expect_ogip(lambda: read_pha(edited(data_dir, ME_SRC, spoil)), file=BYTESIO,
                extension="SPECTRUM", column="STAT_ERR")


def test_poisserr_true_ignores_stat_err(data_dir):
    def poisson(hdul):
        hdul["SPECTRUM"].header["POISSERR"] = True
        set_column(hdul, "SPECTRUM", "STAT_ERR", float_column(hdul, "SPECTRUM", "STAT_ERR") * 1e3)

    pha = read_pha(edited(data_dir, ME_SRC, poisson))
    assert pha.poisson_errors and pha.stat_err is None
    np.testing.assert_allclose(pha.errors, np.sqrt(pha.counts), rtol=1e-15)
    source = Source.from_src(edited(data_dir, ME_SRC, poisson))
    assert source.poisson
    np.testing.assert_allclose(np.asarray(source.errors), np.sqrt(pha.counts), rtol=1e-15)


def test_no_stat_err_and_no_poisserr_warns_and_uses_poisson(data_dir):
    def drop(hdul):
        del hdul["SPECTRUM"].header["POISSERR"]

    with pytest.warns(UserWarning, match="POISSERR"):
        pha = read_pha(edited(data_dir, LE_SRC, drop))
    assert pha.poisson_errors and pha.poisserr is None
    np.testing.assert_allclose(pha.errors, np.sqrt(pha.counts), rtol=1e-15)
    with pytest.warns(UserWarning, match="Poisson"):
        source = Source.from_src(edited(data_dir, LE_SRC, drop))
    np.testing.assert_allclose(np.asarray(source.errors), np.sqrt(pha.counts), rtol=1e-15)


def test_negative_counts_with_poisson_errors(data_dir):
    def spoil(hdul):
        counts = float_column(hdul, "SPECTRUM", "COUNTS")
        counts[5] = -3.0
        set_column(hdul, "SPECTRUM", "COUNTS", counts)

    expect_ogip(lambda: read_pha(edited(data_dir, LE_SRC, spoil)), file=BYTESIO,
                extension="SPECTRUM", column="COUNTS", mentions=("negative",))


def test_huge_systematic_errors_do_not_overflow_silently(data_dir):
    """SYS_ERR x counts in quadrature must not turn into inf errors (and a non-OGIP error later)."""
    data = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "SYS_ERR", "1E307")
    expect_ogip(lambda: read_pha(io.BytesIO(data)), file=BYTESIO, extension="SPECTRUM",
                column="SYS_ERR")
    big = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "SYS_ERR", "1E200")
    expect_ogip(lambda: read_pha(io.BytesIO(big)), file=BYTESIO, extension="SPECTRUM",
                column="SYS_ERR", mentions=("arithmetic",))  # beyond io.limits.MAX_SYS_ERR
    large = replace_card(raw(data_dir, ME_SRC), "SPECTRUM", "SYS_ERR", "50")
    pha = read_pha(io.BytesIO(large))  # 5000 %: accepted, and the errors stay finite
    assert np.all(np.isfinite(pha.errors))


def test_channels_of_spectrum_and_ebounds_do_not_line_up(data_dir, tmp_path):
    def shift(hdul):
        set_column(hdul, "EBOUNDS", "CHANNEL", hdul["EBOUNDS"].data["CHANNEL"] + 1, "J")

    path = write(tmp_path, "shifted.pha", edited(data_dir, ME_SRC, shift))
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM", column="CHANNEL",
                mentions=("EBOUNDS",))

    def shorten(hdul):
        hdul["EBOUNDS"].data = hdul["EBOUNDS"].data[:-1]

    expect_ogip(lambda: read_pha(edited(data_dir, ME_SRC, shorten)), file=BYTESIO,
                extension="SPECTRUM", column="CHANNEL")


@pytest.mark.parametrize("column, value", [("QUALITY", 0.5), ("GROUPING", 2), ("GROUPING", np.nan),
                                           ("QUALITY", 1e30)])
def test_bad_flags(data_dir, column, value):
    def spoil(hdul):
        flags = float_column(hdul, "SPECTRUM", column)
        flags[4, 20] = value
        set_column(hdul, "SPECTRUM", column, flags)

    expect_ogip(lambda: read_pha(edited(data_dir, ME_SRC2, spoil), 4), file=BYTESIO,
                extension="SPECTRUM", column=column)


# ----------------------------------------------------------------------------------------------
# PHA type II rows and EXTVER


@pytest.mark.parametrize("row", [10, 11, 1000, -1, -10])
def test_type2_row_out_of_range(data_dir, row):
    path = data_dir / ME_SRC2
    for call in (lambda: read_pha(path, row), lambda: read_pha(f"{path}:{row}"),
                 lambda: read_pha((path, row)), lambda: Source.from_src2(path, row)):
        expect_ogip(call, file=str(path), extension="SPECTRUM", mentions=("out of range",))


def test_row_of_a_type1_file(data_dir):
    path = data_dir / ME_SRC
    for call in (lambda: read_pha(path, 0), lambda: read_pha(f"{path}:0"),
                 lambda: Source.from_src2(path, 0), lambda: Source.from_plain(f"{path}:1")):
        expect_ogip(call, file=str(path), extension="SPECTRUM", mentions=("type I",))


def test_type2_without_row(data_dir):
    path = data_dir / ME_SRC2
    expect_ogip(lambda: read_pha(path), file=str(path), extension="SPECTRUM",
                mentions=("type II", "row"))
    expect_ogip(lambda: Source.from_src(path), file=str(path), extension="SPECTRUM")
    with pytest.raises(ValueError, match="row"):
        Source.from_src2(path)


def test_type2_row_that_exists(data_dir):
    pha = read_pha(f"{data_dir / ME_SRC2}:4")
    assert pha.row == 4 and pha.n_channels == 470


def test_extver_not_present(data_dir):
    path = data_dir / ME_RSP2
    for call in (lambda: read_rmf(f"{path}:0"), lambda: read_rmf(path, 2),
                 lambda: Response.from_rsp2(path, 0), lambda: Response.from_plain(f"{path}:0")):
        expect_ogip(call, file=str(path), extension="SPECRESP MATRIX", column="EXTVER",
                    mentions=("present: EXTVER [1]",))
    assert read_rmf(f"{path}:1").drm.shape == (300, 470)
    arf = data_dir / ARF_3C273
    expect_ogip(lambda: read_arf(arf, 2), file=str(arf), extension="SPECRESP", column="EXTVER")


# ----------------------------------------------------------------------------------------------
# matrices


def test_fixed_length_matrix_shorter_than_n_chan(data_dir):
    def shorten(hdul):
        matrix = hdul["SPECRESP MATRIX"].data["MATRIX"]
        set_column(hdul, "SPECRESP MATRIX", "MATRIX", matrix[:, :100])

    err = expect_ogip(lambda: read_rmf(edited(data_dir, ME_RSP, shorten)), file=BYTESIO,
                      extension="SPECRESP MATRIX", column="MATRIX", mentions=("N_CHAN",))
    assert "100" in str(err) and "128" in str(err)


def test_fixed_length_matrix_longer_than_n_chan(data_dir):
    matrix = fits.getdata(data_dir / ME_RSP, "SPECRESP MATRIX")["MATRIX"]
    row = int(np.flatnonzero(np.any(matrix[:, 100:] != 0, axis=1))[0])

    def spoil(hdul):
        n_chan = np.array(hdul["SPECRESP MATRIX"].data["N_CHAN"])
        n_chan[row] = 100
        set_column(hdul, "SPECRESP MATRIX", "N_CHAN", n_chan, "I")

    err = expect_ogip(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO,
                      extension="SPECRESP MATRIX", column="MATRIX")
    assert f"row {row}" in str(err)


@pytest.mark.parametrize("change", [-1, +1])
def test_variable_length_matrix_row_not_matching_n_chan(data_dir, change):
    def spoil(hdul):
        rows = [np.array(r, dtype=np.float32) for r in hdul["MATRIX"].data["MATRIX"]]
        rows[500] = rows[500][:-1] if change < 0 else np.append(rows[500], np.float32(0.1))
        set_column(hdul, "MATRIX", "MATRIX", object_rows(rows), "PE()")

    err = expect_ogip(lambda: read_rmf(edited(data_dir, RMF_3C273, spoil)), file=BYTESIO,
                      extension="MATRIX", column="MATRIX", mentions=("row 500", "N_CHAN"))
    assert "holds" in str(err)


@pytest.mark.parametrize("first", [0, 50, 129, -3])
def test_f_chan_outside_ebounds_fixed(data_dir, first):
    def spoil(hdul):
        f_chan = np.array(hdul["SPECRESP MATRIX"].data["F_CHAN"])
        f_chan[70] = first
        set_column(hdul, "SPECRESP MATRIX", "F_CHAN", f_chan, "I")

    err = expect_ogip(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO,
                      extension="SPECRESP MATRIX", column="F_CHAN", mentions=("EBOUNDS",))
    assert "row 70" in str(err)


def test_f_chan_outside_ebounds_variable_length(data_dir, tmp_path):
    def spoil(hdul):
        f_chan = [np.array(r, dtype=np.int16) for r in hdul["MATRIX"].data["F_CHAN"]]
        f_chan[600] = f_chan[600] + 1020
        set_column(hdul, "MATRIX", "F_CHAN", object_rows(f_chan), "PI()")

    path = write(tmp_path, "fchan.rmf", edited(data_dir, RMF_3C273, spoil))
    expect_ogip(lambda: read_rmf(path), file=str(path), extension="MATRIX", column="F_CHAN",
                mentions=("row 600", "1024"))
    expect_ogip(lambda: Redistribution.from_rmf(path), file=str(path), extension="MATRIX",
                column="F_CHAN")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_matrix_values_not_finite(data_dir, value):
    def spoil(hdul):
        matrix = float_column(hdul, "SPECRESP MATRIX", "MATRIX")
        matrix[70, 30] = value
        set_column(hdul, "SPECRESP MATRIX", "MATRIX", matrix)

    expect_ogip(lambda: read_rmf(edited(data_dir, ME_RSP, spoil)), file=BYTESIO,
                extension="SPECRESP MATRIX", column="MATRIX", mentions=("finite",))


def test_detchans_disagrees_with_ebounds(data_dir):
    for card in ("127", "NaN", "1E400", "'x'"):
        data = replace_card(raw(data_dir, ME_RSP), "SPECRESP MATRIX", "DETCHANS", card)
        expect_ogip(lambda: read_rmf(io.BytesIO(data)), file=BYTESIO,
                    extension="SPECRESP MATRIX", column="DETCHANS")


@pytest.mark.parametrize("column, value", [("ENERG_LO", np.nan), ("ENERG_HI", -1.0)])
def test_energies_invalid(data_dir, column, value):
    def spoil(hdul):
        energies = float_column(hdul, "SPECRESP", column)
        energies[10] = value
        set_column(hdul, "SPECRESP", column, energies)

    expect_ogip(lambda: read_arf(edited(data_dir, ARF_3C273, spoil)), file=BYTESIO,
                extension="SPECRESP", column="ENERG_LO/ENERG_HI")


def test_specresp_not_finite(data_dir):
    def spoil(hdul):
        area = float_column(hdul, "SPECRESP", "SPECRESP")
        area[10] = np.inf
        set_column(hdul, "SPECRESP", "SPECRESP", area)

    expect_ogip(lambda: read_arf(edited(data_dir, ARF_3C273, spoil)), file=BYTESIO,
                extension="SPECRESP", column="SPECRESP", mentions=("finite",))


# ----------------------------------------------------------------------------------------------
# RMF x ARF energy grids


def test_arf_grid_must_match_rmf(rmf_3c273, arf_3c273):
    response = rmf_3c273 * arf_3c273
    np.testing.assert_allclose(np.asarray(response.drm),
                               np.asarray(rmf_3c273.drm) * np.asarray(arf_3c273.srp)[:, None])
    phbin = np.array(arf_3c273.phbin)
    far = phbin.copy()
    far[500] *= 1 + 1e-4
    shifted = Auxiliary(far, arf_3c273.srp, name="shifted")
    for call in (lambda: rmf_3c273 * shifted, lambda: shifted * rmf_3c273,
                 lambda: Response.from_rmf_arf(rmf_3c273, shifted)):
        err = expect_ogip(call, file=f"{rmf_3c273.file} x shifted", extension="SPECRESP",
                          column="ENERG_LO/ENERG_HI", mentions=("bin 500", "rtol"))
        assert RMF_3C273 in err.file
    close = Auxiliary(phbin * (1 + 1e-6), arf_3c273.srp, name="close")
    np.testing.assert_allclose(np.asarray((rmf_3c273 * close).drm), np.asarray(response.drm))
    short = Auxiliary(phbin[:-1], np.asarray(arf_3c273.srp)[:-1], name="short")
    expect_ogip(lambda: rmf_3c273 * short, file=f"{rmf_3c273.file} x short",
                extension="SPECRESP", mentions=("1089", "1090"))


# ----------------------------------------------------------------------------------------------
# compressed files


def test_gzip_from_path_and_bytesio(data_dir, tmp_path):
    reference = read_pha(data_dir / ME_SRC)
    packed = gzip.compress(raw(data_dir, ME_SRC))
    path = write(tmp_path, "me.src.gz", packed)
    for source in (path, str(path), io.BytesIO(packed)):
        pha = read_pha(source)
        np.testing.assert_array_equal(pha.counts, reference.counts)
        np.testing.assert_array_equal(pha.errors, reference.errors)
    rmf_packed = gzip.compress(raw(data_dir, ME_RSP))
    rmf = read_rmf(io.BytesIO(rmf_packed))
    np.testing.assert_array_equal(rmf.drm, read_rmf(data_dir / ME_RSP).drm)
    assert Source.from_src(write(tmp_path, "again.pha.gz", packed)).n_channels == 128


def test_gzip_truncated(data_dir, tmp_path):
    """A cut gzip stream is an error, not a shorter file (astropy alone drops the lost HDUs)."""
    packed = gzip.compress(raw(data_dir, ME_SRC))
    for cut in (200, len(packed) // 2):
        path = write(tmp_path, f"cut{cut}.pha.gz", packed[:-cut])
        expect_ogip(lambda: read_pha(path), file=str(path), mentions=("gzip",))
        expect_ogip(lambda: read_pha(io.BytesIO(packed[:-cut])), file=BYTESIO,
                    mentions=("gzip",))


# ----------------------------------------------------------------------------------------------
# nothing the caller passes is modified


def test_bytesio_untouched_by_a_read(data_dir):
    for rel, reader in ((ME_SRC, read_pha), (ME_RSP, read_rmf), (ARF_3C273, read_arf),
                        (ME_SRC, Source.from_src), (ME_RSP, Response.from_rsp)):
        content = raw(data_dir, rel)
        buffer = io.BytesIO(content)
        buffer.seek(123)
        reader(buffer)
        assert buffer.tell() == 123 and buffer.getvalue() == content


def test_bytesio_untouched_by_a_failed_read(data_dir):
    content = raw(data_dir, ME_SRC2)
    buffer = io.BytesIO(content)
    buffer.seek(77)
    with pytest.raises(OGIPError):
        read_pha(buffer)  # type II without a row
    assert buffer.tell() == 77 and buffer.getvalue() == content


def test_file_object_keeps_its_position(data_dir):
    with open(data_dir / ME_SRC, "rb") as handle:
        handle.seek(500)
        pha = read_pha(handle)
        assert handle.tell() == 500
    np.testing.assert_array_equal(pha.counts, read_pha(data_dir / ME_SRC).counts)


def test_spectrum_constructor_copies_its_arrays():
    rng = np.random.default_rng(0)
    arrays = dict(counts=rng.poisson(5.0, 16).astype(float), errors=rng.uniform(1, 2, 16),
                  quality=np.r_[np.zeros(14, int), 1, 1], grouping=np.ones(16, int),
                  backscale=rng.uniform(0.5, 1.0, 16), channels=np.arange(16))
    arrays["counts"][15] = np.nan  # bad-quality channel
    before = {k: v.copy() for k, v in arrays.items()}
    spectrum = Spectrum(exposure=np.float64(3.0), **arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
        assert value.dtype == before[name].dtype
    for value in arrays.values():
        value[:] = 0  # changing the caller's arrays afterwards does not reach the spectrum
    np.testing.assert_array_equal(np.asarray(spectrum.errors), before["errors"])
    np.testing.assert_array_equal(np.asarray(spectrum.counts), before["counts"])
    np.testing.assert_array_equal(np.asarray(spectrum.channels), before["channels"])


def test_response_and_auxiliary_constructors_copy_their_arrays():
    chbin = np.stack([np.arange(8.0), np.arange(1.0, 9.0)], axis=1)
    phbin = np.stack([np.arange(5.0), np.arange(1.0, 6.0)], axis=1).astype(np.float32)
    drm = np.arange(40.0).reshape(5, 8)
    channels = np.arange(1, 9, dtype=np.int32)
    srp = np.linspace(1.0, 2.0, 5)
    arrays = (chbin, phbin, drm, channels, srp)
    before = [a.copy() for a in arrays]
    response = Response(chbin, phbin, drm, channels=channels)
    auxiliary = Auxiliary(phbin, srp)
    redistribution = Redistribution(chbin, phbin, drm, channels=channels)
    combined = redistribution * auxiliary
    for value, old in zip(arrays, before):
        np.testing.assert_array_equal(value, old)
        assert value.dtype == old.dtype
    drm[:] = -1.0
    srp[:] = -1.0
    np.testing.assert_array_equal(np.asarray(response.drm), before[2])
    np.testing.assert_array_equal(np.asarray(auxiliary.srp), before[4])
    np.testing.assert_allclose(np.asarray(combined.drm), before[2] * before[4][:, None])


# ----------------------------------------------------------------------------------------------
# loaders that do not apply


@pytest.mark.parametrize("cls, method", [(Auxiliary, "from_rsp"), (Auxiliary, "from_rsp2"),
                                         (Auxiliary, "from_rmf_arf"),
                                         (Redistribution, "from_rmf_arf")])
def test_loaders_that_do_not_apply(data_dir, cls, method):
    with pytest.raises(AttributeError, match=f"'{cls.__name__}' has no loader '{method}'"):
        getattr(cls, method)(data_dir / ME_RSP)


# ----------------------------------------------------------------------------------------------
# property tests: random corruptions give a valid object or an OGIPError, nothing else


@dataclasses.dataclass(frozen=True)
class Target:
    """A real file, its data extension, the reader calls to try and what a valid result is."""

    rel: str
    ext: str
    readers: tuple[Callable[[io.BytesIO], Any], ...]
    row: int | None = None  # the PHA II row read: cell corruptions aim at it


def _valid_pha(pha) -> None:
    good = pha.quality == 0
    assert pha.n_channels > 0 and np.isfinite(pha.exposure) and pha.exposure > 0
    assert np.all(np.isfinite(pha.counts[good]))
    assert np.all(np.isfinite(pha.errors[good])) and np.all(pha.errors[good] >= 0)
    assert np.all(np.isfinite(pha.backscale)) and np.all(np.asarray(pha.backscale) > 0)
    assert pha.channels.shape == pha.counts.shape == pha.grouping.shape


def _valid_spectrum(spectrum: Spectrum) -> None:
    good = np.asarray(spectrum.quality) == 0
    assert spectrum.n_channels > 0 and float(spectrum.exposure) > 0
    assert np.all(np.isfinite(np.asarray(spectrum.counts)[good]))
    assert np.all(np.isfinite(np.asarray(spectrum.errors)[good]))


def _valid_matrix(record) -> None:
    drm = np.asarray(record.drm)
    phbin, chbin = np.asarray(record.phbin), np.asarray(record.chbin)
    assert drm.shape == (phbin.shape[0], chbin.shape[0]) and drm.size > 0
    assert np.all(np.isfinite(drm)) and np.all(np.isfinite(phbin)) and np.all(np.isfinite(chbin))
    assert np.all(phbin[:, 1] >= phbin[:, 0])


def _valid_arf(record) -> None:
    area = np.asarray(record.specresp if hasattr(record, "specresp") else record.srp)
    assert area.shape == (np.asarray(record.phbin).shape[0],) and np.all(np.isfinite(area))


VALIDATORS = {"PHA": _valid_pha, "Source": _valid_spectrum, "RMF": _valid_matrix,
              "Response": _valid_matrix, "Redistribution": _valid_matrix, "ARF": _valid_arf,
              "Auxiliary": _valid_arf}

TARGETS = {
    "me.src": Target(ME_SRC, "SPECTRUM", (read_pha, Source.from_src)),
    "me.src2": Target(ME_SRC2, "SPECTRUM", (lambda b: read_pha(b, 4),
                                            lambda b: Source.from_src2(b, 4)), row=4),
    "me.rsp": Target(ME_RSP, "SPECRESP MATRIX", (read_rmf, Response.from_rsp)),
    "3c273.rmf": Target(RMF_3C273, "MATRIX", (read_rmf, Redistribution.from_rmf)),
    "3c273.arf": Target(ARF_3C273, "SPECRESP", (read_arf, Auxiliary.from_arf)),
    "le.src": Target(LE_SRC, "SPECTRUM", (read_pha, Source.from_src)),
}

_CACHE: dict[str, bytes] = {}
GENERIC = "damaged or malformed content"
"""The message of `open_fits`'s catch-all: a reader let an unexpected exception through."""


def _original(data_dir, name: str) -> bytes:
    if name not in _CACHE:
        _CACHE[name] = raw(data_dir, TARGETS[name].rel)
    return _CACHE[name]


def check_readers(name: str, data: bytes, structured: bool) -> None:
    """Every reader of target `name` gives a valid object or an `OGIPError` on `data`.

    `structured` corruptions (keywords, columns) must also get a specific message, not the
    catch-all of `open_fits` that hides an unexpected exception.
    """
    for reader in TARGETS[name].readers:
        buffer = io.BytesIO(data)
        try:
            result = quietly(lambda: reader(buffer))
        except OGIPError as err:
            assert err.file, str(err)
            assert not (structured and GENERIC in str(err)), str(err)
        else:
            VALIDATORS[type(result).__name__](result)
        assert buffer.getvalue() == data and buffer.tell() == 0


def _structural(key: bytes) -> bool:
    return key.rstrip() in {b"XTENSION", b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2", b"PCOUNT",
                            b"GCOUNT", b"TFIELDS"}


PROPERTY = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
target_names = st.sampled_from(sorted(TARGETS))
card_values = st.one_of(
    st.sampled_from(["NaN", "'NaN'", "Inf", "'-inf'", "1E400", "-1E400", "1E300", "-1", "0",
                     "0.0", "T", "F", "''", "'abc'", "'1e3'", "(1, 2)", "'", "'unclosed",
                     "99999999999999999999", "-0.5", "3"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).upper()),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(
        lambda s: "'" + s.replace("'", "''") + "'"),
)
bad_numbers = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, -1.0, -1e30, 1e30, 1e300, 0.0,
                                         0.5, 2.0**63]),
                        st.floats(allow_nan=True, allow_infinity=True))


@PROPERTY
@given(name=target_names, pick=st.integers(0, 10**6), rename=st.booleans(),
       new_key=st.sampled_from(["XXXXXXXX", "EXPOSURE", "TTYPE2", "EXTNAME", "POISSERR",
                                "TLMIN4", "HDUCLAS2", "EXTVER"]))
def test_property_keyword_deleted_or_renamed(data_dir, name, pick, rename, new_key):
    data = _original(data_dir, name)
    offsets = card_offsets(data, TARGETS[name].ext)
    offset = offsets[pick % len(offsets)]
    key = data[offset : offset + 8]
    if rename:
        card = new_key.ljust(8).encode() + data[offset + 8 : offset + 80]
    else:
        card = b" " * 80  # a blank card: the keyword is gone
    check_readers(name, data[:offset] + card + data[offset + 80 :], not _structural(key))


@PROPERTY
@given(name=target_names, pick=st.integers(0, 10**6), value=card_values)
def test_property_keyword_set_to_random_value(data_dir, name, pick, value):
    data = _original(data_dir, name)
    offsets = card_offsets(data, TARGETS[name].ext)
    offset = offsets[pick % len(offsets)]
    key = data[offset : offset + 8]
    if key.startswith((b"COMMENT", b"HISTORY", b"CONTINUE", b"        ")):
        key = b"EXPOSURE"  # give commentary cards a value card instead
    corrupted = data[:offset] + make_card(key, value) + data[offset + 80 :]
    check_readers(name, corrupted, not _structural(key))


@PROPERTY
@given(name=target_names, pick=st.integers(0, 10**6))
def test_property_column_deleted(data_dir, name, pick):
    target = TARGETS[name]

    def drop(hdul):
        names = hdul[target.ext].columns.names
        drop_column(hdul, target.ext, names[pick % len(names)])

    with fits.open(io.BytesIO(_original(data_dir, name)), memmap=False) as hdul:
        drop(hdul)
        corrupted = to_bytes(hdul)
    check_readers(name, corrupted, True)


@PROPERTY
@given(name=target_names, pick=st.integers(0, 10**6),
       cells=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), bad_numbers),
                      min_size=1, max_size=5))
def test_property_cells_overwritten(data_dir, name, pick, cells):
    target = TARGETS[name]
    with fits.open(io.BytesIO(_original(data_dir, name)), memmap=False) as hdul:
        table = hdul[target.ext]
        numeric = [c.name for c in table.columns if "A" not in c.format.upper()]
        column_name = numeric[pick % len(numeric)]
        fmt = str(table.columns[column_name].format).upper()
        if fmt.startswith(("P", "Q")):  # variable-length: rows of different lengths
            rows = [np.array(r, dtype=np.float64) for r in table.data[column_name]]
            for row, cell, value in cells:
                chosen = rows[row % len(rows)]
                if chosen.size:
                    chosen[cell % chosen.size] = value
            set_column(hdul, target.ext, column_name, object_rows(rows), "PD()")
        else:
            values = float_column(hdul, target.ext, column_name)
            flat = values.reshape(len(values), -1)
            for row, cell, value in cells:
                row = target.row if target.row is not None else row % flat.shape[0]
                flat[row, cell % flat.shape[1]] = value
            set_column(hdul, target.ext, column_name, values)
        corrupted = to_bytes(hdul)
    check_readers(name, corrupted, True)


@PROPERTY
@given(name=target_names, fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_property_truncated(data_dir, name, fraction):
    data = _original(data_dir, name)
    cut = int(fraction * len(data))
    check_readers(name, data[:cut], False)


@PROPERTY
@given(name=target_names,
       flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)),
                      min_size=1, max_size=20),
       header_only=st.booleans())
def test_property_bytes_flipped(data_dir, name, flips, header_only):
    data = bytearray(_original(data_dir, name))
    with fits.open(io.BytesIO(bytes(data)), memmap=False) as hdul:
        info = hdul.fileinfo(hdul.index_of(TARGETS[name].ext))
    start, stop = (info["hdrLoc"], info["datLoc"]) if header_only else (0, len(data))
    for where, mask in flips:
        data[start + int(where * (stop - start))] ^= mask
    check_readers(name, bytes(data), False)


def test_stat_err_keyword_zero_means_none_given(data_dir, tmp_path):
    """OGIP: STAT_ERR = 0 in the header says no errors are given (me.src carries it)."""
    with fits.open(data_dir / "ME/me.src") as hdul:
        assert hdul["SPECTRUM"].header["STAT_ERR"] == 0
        table = hdul["SPECTRUM"]
        cols = [c for c in table.columns if c.name != "STAT_ERR"]
        hdu = fits.BinTableHDU.from_columns(cols, header=table.header, name="SPECTRUM")
        path = tmp_path / "no_stat_err.pha"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spectrum = Source.from_src(str(path))
    assert any("Poisson" in str(w.message) for w in caught)
    np.testing.assert_array_equal(np.asarray(spectrum.errors), np.sqrt(np.asarray(spectrum.counts)))


def test_missing_row_or_extver_is_an_ogip_error(data_dir):
    with pytest.raises(OGIPError, match="row"):
        Source.from_src2(str(data_dir / "ME/me.src2"))
    with pytest.raises(OGIPError, match="EXTVER"):
        Response.from_rsp2(str(data_dir / "ME/me.rsp2"))


def test_mixed_precision_energy_columns_stay_float64(data_dir, tmp_path):
    """ENERG_LO single precision, ENERG_HI double: keep float64. An ENERG_HI beyond float32
    (1e300 keV) is beyond any instrument and the arithmetic of a fit: an error."""
    def mixed(path, last_hi):
        with fits.open(data_dir / "XRAY-sherpa-3c273/3c273.rmf") as hdul:
            matrix = hdul["MATRIX"]
            hi = np.array(matrix.data["ENERG_HI"], dtype=np.float64)
            hi[-1] = last_hi
            cols = [fits.Column(name="ENERG_HI", format="D", array=hi) if c.name == "ENERG_HI"
                    else copy_column(matrix, c.name) for c in matrix.columns]
            table = fits.BinTableHDU.from_columns(cols, header=matrix.header, name="MATRIX")
            fits.HDUList([fits.PrimaryHDU(), table, hdul["EBOUNDS"].copy()]).writeto(path)
        return str(path)

    response = Redistribution.from_rmf(mixed(tmp_path / "mixed.rmf", 11.0 + 1e-9))
    assert response.phbin.dtype == np.float64
    assert np.all(np.isfinite(np.asarray(response.phbin)))
    path = mixed(tmp_path / "huge.rmf", 1e300)
    expect_ogip(lambda: Redistribution.from_rmf(path), file=path, extension="MATRIX",
                column="ENERG_LO/ENERG_HI", mentions=("ENERG_HI", "above"))
