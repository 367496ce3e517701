"""The one exception type of the I/O layer."""

from __future__ import annotations


class OGIPError(ValueError, OSError):
    """A file is not a valid OGIP spectrum, response or ARF for the use asked of it.

    The message names the file, the extension and the column (where they apply) and says
    what was expected. Subclasses both `ValueError` and `OSError`, so existing
    ``except ValueError`` and ``except OSError`` handlers catch it.

    **Attributes:**

    - `file`: what was read (a path, ``"<BytesIO>"``...), or `None`.
    - `extension`: the FITS extension concerned, or `None`.
    - `column`: the column or header keyword concerned, or `None`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        extension: str | None = None,
        column: str | None = None,
    ):
        self.file = file
        self.extension = extension
        self.column = column
        where = []
        if file is not None:
            where.append(f"file {file!s}")
        if extension is not None:
            where.append(f"extension {extension!r}")
        if column is not None:
            where.append(f"column/keyword {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return (_rebuild, (self.args[0], self.file, self.extension, self.column))


def _rebuild(text, file, extension, column):
    err = OGIPError(text)  # no location given: the text, which already names it, is kept as is
    err.file, err.extension, err.column = file, extension, column
    return err
