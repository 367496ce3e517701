"""Opening FITS files from every kind of source, finding OGIP extensions, reading columns.

Everything here is host-side: astropy.io.fits in, numpy out, and every failure an
`OGIPError` that names the file, the extension and the column.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.utils.exceptions import AstropyWarning

from .errors import OGIPError

FileSource = Union[str, os.PathLike, io.IOBase, bytes]
"""A path, a ``"path:ii"`` string, a `pathlib.Path`, a binary file object or raw bytes."""

_GZIP_MAGIC = b"\x1f\x8b"
_INDEX_SUFFIX = re.compile(r"^(?P<path>.*\S)\s*:\s*(?P<index>[+-]?\d+)\s*$")


def split_source(source: Any, index: int | None = None) -> tuple[Any, int | None, str]:
    """Separate a source from its row/extension-version index.

    **Arguments:**

    - `source`: a path, ``"path:ii"``, a `pathlib.Path`, a binary file object, raw bytes, or a
        ``(file, ii)`` tuple.
    - `index`: an explicit index; it wins over one embedded in `source`, and must agree with it.

    **Returns:**

    ``(target, index, label)``: what to open (a path string or bytes), the index or `None`, and
    a label naming the file in messages.
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise OGIPError(f"a (file, index) tuple has two items, got {len(source)}")
        source, tuple_index = source
        index = _merge_index(index, _as_index(tuple_index, "tuple index"), str(source))
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, bytes):
        return source, _as_index(index, "index", "<bytes>"), "<bytes>"
    if isinstance(source, str):
        if not os.path.exists(source):
            match = _INDEX_SUFFIX.match(source)
            if match is not None:
                embedded = int(match.group("index"))
                source = match.group("path")
                index = _merge_index(index, embedded, source)
        return source, _as_index(index, "index", source), source
    if hasattr(source, "read"):
        label = f"<{type(source).__name__}>"
        return _read_bytes(source, label), _as_index(index, "index", label), label
    raise OGIPError(
        "expected a path, a 'path:index' string, a binary file object such as io.BytesIO, "
        f"or a (file, index) tuple; got {type(source).__name__}"
    )


_SELECTOR = re.compile(
    r"^(?P<path>.*?\S)\s*\{\s*(?P<selector>[^{}]*?)\s*\}(?P<rest>\s*:\s*[+-]?\d+\s*)?$")


def split_selector(source: Any) -> tuple[Any, int | str | None]:
    """Separate a trailing ``{...}`` selector from a path string (OGIP/XSPEC notation).

    - ``"file{3}"``: the number 3, counted from 1 as XSPEC and OGIP type II BACKFILE/RESPFILE
        columns count (row 3 of a PHA type II file is ``"file:2"``; EXTVER 3 of a response);
    - ``"file{BKG}"``: a name, upper-cased: the spectrum extension whose HDUCLAS2 or EXTNAME
        it is (a Chandra ``pha3`` file holds its background in an HDUCLAS2 = 'BKG' one).

    A ``:ii`` may follow (``"file{BKG}:2"``). Other sources, and a path that exists as written,
    are returned unchanged with `None`.

    **Returns:** ``(source without the selector, selector or None)``.
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or os.path.exists(source):
        return source, None
    match = _SELECTOR.match(source)
    if match is None:
        return source, None
    text, path = match.group("selector"), match.group("path") + (match.group("rest") or "")
    if not text:
        raise OGIPError("an empty {} selector: write {n} (from 1) or {EXTNAME}", file=path)
    if re.fullmatch(r"[+-]?\d+", text):
        if int(text) < 1:
            raise OGIPError(f"the selector {{{text}}} counts from 1 (OGIP/XSPEC notation)",
                            file=path)
        return path, int(text)
    return path, text.upper()


def _as_index(index: Any, what: str, label: str | None = None) -> int | None:
    if index is None:
        return None
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise OGIPError(f"the {what} must be an integer, got {index!r}", file=label)
    return int(index)


def _merge_index(explicit: int | None, embedded: int | None, label: str) -> int | None:
    if explicit is None:
        return embedded
    if embedded is None or int(explicit) == int(embedded):
        return explicit
    raise OGIPError(
        f"index given twice and differently: {embedded} in the source and {explicit} as argument",
        file=label,
    )


def _read_bytes(stream: Any, label: str) -> bytes:
    """Read a file object whole without moving its position (the caller's object is theirs)."""
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    try:
        position = stream.tell()
    except (OSError, AttributeError):
        position = None
    try:
        if position is not None:
            stream.seek(0)
        data = stream.read()
    finally:
        if position is not None:
            stream.seek(position)
    if isinstance(data, str):
        raise OGIPError("the file object is opened in text mode; open it in binary mode ('rb')",
                        file=label)
    return bytes(data)


@contextlib.contextmanager
def open_fits(target: str | bytes, label: str) -> Iterator[fits.HDUList]:
    """Open a FITS file (plain or gzip-compressed, from a path or bytes) for reading.

    Raises `OGIPError` for a missing, unreadable, non-FITS or truncated file. Any other
    failure while the block reads the file is also reported as an `OGIPError`.
    """
    if isinstance(target, bytes):
        opener: Any = io.BytesIO(_gunzip(target, label))
    else:
        if not os.path.exists(target):
            raise OGIPError("no such file", file=label)
        if os.path.isdir(target):
            raise OGIPError("is a directory, expected a FITS file", file=label)
        opener = target
        try:
            with open(target, "rb") as handle:
                if handle.read(2) == _GZIP_MAGIC:
                    # astropy silently stops at the end of a truncated gzip stream (dropping the
                    # HDUs after it): decompress here, where a cut stream is an error.
                    handle.seek(0)
                    opener = io.BytesIO(_gunzip(handle.read(), label))
        except OGIPError:
            raise
        except OSError as err:
            raise OGIPError(f"cannot be read ({err})", file=label) from err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(opener, memmap=False, lazy_load_hdus=False)
        except OGIPError:
            raise
        except Exception as err:  # astropy raises OSError, ValueError, TypeError...
            raise OGIPError(f"not a readable FITS file ({err})", file=label) from err
    try:
        _raise_on_damage(caught, label)
    except OGIPError:
        hdul.close()  # do not leak the file handle of a damaged file
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            yield hdul
    except OGIPError:
        raise
    except Exception as err:
        raise OGIPError(
            f"damaged or malformed content ({type(err).__name__}: {err})", file=label
        ) from err
    finally:
        hdul.close()


def _gunzip(data: bytes, label: str) -> bytes:
    """`data`, decompressed when it is gzip-compressed; a corrupt or cut stream is an error."""
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as err:
        raise OGIPError(f"corrupt gzip data: {err}", file=label) from err


def _raise_on_damage(caught: Sequence[warnings.WarningMessage], label: str) -> None:
    for record in caught:
        # Only astropy's own reports on this file: a ResourceWarning about another, leaked file
        # (whose path may say "truncated") or "comment will be truncated" are not damage.
        if not issubclass(record.category, AstropyWarning):
            continue
        text = str(record.message)
        if text.startswith("File may have been truncated"):
            raise OGIPError("the file is truncated (shorter than its headers declare)", file=label)
        if "Error validating header" in text:
            raise OGIPError(f"a header is corrupt ({text.splitlines()[0]})", file=label)


def _upper(value: Any) -> str:
    return str(value).strip().upper() if value is not None else ""


def is_table(hdu: Any) -> bool:
    return isinstance(hdu, (fits.BinTableHDU, fits.TableHDU))


def find_hdus(
    hdul: fits.HDUList,
    names: Sequence[str],
    hduclas: dict[str, Sequence[str]] | None = None,
    label: str | None = None,
) -> list[Any]:
    """All table extensions whose EXTNAME is one of `names` or whose HDUCLASn keywords match.

    `hduclas` maps a keyword (``"HDUCLAS1"``...) to the accepted values; every keyword given must
    match. Extensions found by EXTNAME come first, in file order. The tables found are checked
    to be readable (`readable_table`); `label` names the file in errors.
    """
    wanted = {n.upper() for n in names}
    by_name, by_class = [], []
    for position, hdu in enumerate(hdul):
        if position == 0 or not is_table(hdu):
            continue
        where = f"HDU #{position}"
        if _upper(header_value(hdu, "EXTNAME", label, extension=where)) in wanted:
            by_name.append(hdu)
        elif hduclas and all(
            _upper(header_value(hdu, key, label, extension=where)) in {v.upper() for v in values}
            for key, values in hduclas.items()
        ):
            by_class.append(hdu)
    return [readable_table(hdu, label) for hdu in by_name + by_class]


def readable_table(hdu: Any, label: str | None) -> Any:
    """`hdu`, once its column definitions and table data are known to parse.

    A corrupt TFORMn/TTYPEn/TDIMn card or a damaged table otherwise surfaces later as an astropy
    `KeyError`/`VerifyError`...; here it is an `OGIPError` naming the extension.
    """
    try:
        hdu.columns.names  # noqa: B018 -- parses the column definitions
        data = hdu.data
        if data is not None:
            len(data)
    except Exception as err:
        raise OGIPError(
            "the table cannot be read: its column definitions (TTYPEn, TFORMn, TDIMn...) or its "
            f"data are corrupt ({type(err).__name__}: {err})",
            file=label, extension=hdu_name(hdu),
        ) from err
    return hdu


def hdu_name(hdu: Any, position: int | None = None) -> str:
    """The EXTNAME of `hdu`, or a placeholder when its EXTNAME card cannot be parsed."""
    try:
        return hdu.name
    except VerifyError:
        return f"HDU #{position}" if position is not None else "<unparsable EXTNAME>"


def header_value(
    hdu: Any, key: str, label: str | None, default: Any = None, extension: str | None = None
) -> Any:
    """The value of header keyword `key` of `hdu` (`default` when absent).

    An unparsable card (``EXPOSURE = NaN``, a broken quote...) is an `OGIPError` naming it.
    """
    try:
        if key not in hdu.header:
            return default
        return hdu.header[key]
    except VerifyError as err:
        raise OGIPError(
            f"the header card cannot be parsed ({err})", file=label,
            extension=extension if extension is not None else hdu_name(hdu), column=key,
        ) from None


def find_hdu(
    hdul: fits.HDUList,
    names: Sequence[str],
    label: str,
    what: str,
    hduclas: dict[str, Sequence[str]] | None = None,
    extver: int | None = None,
) -> Any:
    """The one extension `what` (see `find_hdus`), of version EXTVER `extver` when given."""
    found = find_hdus(hdul, names, hduclas, label=label)
    if not found:
        raise OGIPError(
            f"no {what} extension (looked for EXTNAME {' / '.join(names)}"
            + (f" or {_describe_classes(hduclas)}" if hduclas else "")
            + f"; the file has {[hdu_name(hdu, i) for i, hdu in enumerate(hdul)]})",
            file=label,
        )
    if extver is None:
        return found[0]
    for hdu in found:
        if _extver(hdu, label) == extver:
            return hdu
    versions = sorted({_extver(hdu, label) for hdu in found})
    raise OGIPError(
        f"no {what} extension with EXTVER {extver} (present: EXTVER {versions})",
        file=label,
        extension=found[0].name,
        column="EXTVER",
    )


def _describe_classes(hduclas: dict[str, Sequence[str]]) -> str:
    return " and ".join(f"{k} = {'/'.join(v)}" for k, v in hduclas.items())


def _extver(hdu: Any, label: str) -> int:
    value = header_value(hdu, "EXTVER", label, default=1)
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return 1


def header_number(
    hdu: Any,
    key: str,
    label: str,
    default: Any = None,
    required: bool = False,
    headers: Sequence[Any] = (),
) -> float | None:
    """A numeric header keyword of `hdu` (or of the fallback `headers`), as a float.

    Values written as strings (``EXPOSURE = '9.8'``) are accepted. Returns `default` when absent
    and not `required`.
    """
    for owner in (hdu, *headers):
        value = header_value(owner, key, label) if hasattr(owner, "header") else owner.get(key)
        if value is not None and not _is_undefined(value):
            try:
                if isinstance(value, (bool, np.bool_)):
                    raise TypeError("a logical is not a number")
                return float(value.strip() if isinstance(value, str) else value)
            except (TypeError, ValueError):
                raise OGIPError(
                    f"expected a number, got {value!r}", file=label, extension=hdu.name, column=key
                ) from None
    if required:
        raise OGIPError("required keyword is missing", file=label, extension=hdu.name, column=key)
    return default


def _is_undefined(value: Any) -> bool:
    return isinstance(value, fits.card.Undefined)


def header_flag(hdu: Any, key: str, label: str) -> bool | None:
    """A logical header keyword (``T``/``F``, or a string spelling of it), or `None` when absent."""
    value = header_value(hdu, key, label)
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().upper()
    if text in {"T", "TRUE", "1", "Y", "YES"}:
        return True
    if text in {"F", "FALSE", "0", "N", "NO"}:
        return False
    raise OGIPError(f"expected T or F, got {value!r}", file=label, extension=hdu.name, column=key)


def column_names(hdu: Any) -> list[str]:
    """Upper-case column names; a column without a TTYPEn name is ``""`` (never asked for)."""
    return [name.strip().upper() if isinstance(name, str) else "" for name in hdu.columns.names]


def has_column(hdu: Any, name: str) -> bool:
    return name.upper() in column_names(hdu)


def column(hdu: Any, name: str, label: str) -> np.ndarray:
    """The column `name` (case-insensitive) of a table extension, as a numpy array."""
    if not has_column(hdu, name):
        raise OGIPError(
            f"required column is missing (columns present: {hdu.columns.names})",
            file=label,
            extension=hdu.name,
            column=name,
        )
    try:
        return hdu.data[hdu.columns.names[column_names(hdu).index(name.upper())]]
    except Exception as err:  # astropy failing to convert a damaged column (TSCALn, heap...)
        raise OGIPError(
            f"the column cannot be read ({type(err).__name__}: {err})",
            file=label, extension=hdu.name, column=name,
        ) from err


def column_tlmin(hdu: Any, name: str, label: str | None = None) -> int | None:
    """The TLMINn keyword of column `name`, or `None` when absent or unreadable."""
    if not has_column(hdu, name):
        return None
    position = column_names(hdu).index(name.upper()) + 1
    value = header_value(hdu, f"TLMIN{position}", label)
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not np.isfinite(number) or abs(number) >= 2**31:
        raise OGIPError(f"a first channel number must be a modest integer, got {value!r}",
                        file=label, extension=hdu.name, column=f"TLMIN{position}")
    return int(number)


def header_integer(hdu: Any, key: str, label: str, default: int | None = None) -> int | None:
    """An integer-valued header keyword (see `header_number`); non-integers are an error."""
    value = header_number(hdu, key, label)
    if value is None:
        return default
    if not np.isfinite(value) or value != round(value) or abs(value) >= 2**62:
        raise OGIPError(f"expected an integer, got {value!r}", file=label, extension=hdu.name,
                        column=key)
    return int(value)


def as_float_array(values: Any, label: str, extension: str, name: str) -> np.ndarray:
    """A numeric column as float64, with a clear error for non-numeric content."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise OGIPError(
            f"expected numbers ({err})", file=label, extension=extension, column=name
        ) from err


def as_int_array(values: Any, label: str, extension: str, name: str) -> np.ndarray:
    """An integer-valued column as int64; non-integer or non-finite values are an error."""
    as_float = as_float_array(values, label, extension, name)
    if (
        not np.all(np.isfinite(as_float))
        or np.any(as_float != np.round(as_float))
        or np.any(np.abs(as_float) >= 2.0**62)
    ):
        raise OGIPError("expected integer values", file=label, extension=extension, column=name)
    return as_float.astype(np.int64)
