"""OGIP FITS in and out: host-side numpy, every file validated.

Readers return small frozen records (`PHA`, `RMF`, `ARF`) of numpy arrays; the containers of
`bayspec_jax.data` are built from them. Every problem with a file is an `OGIPError` that names
the file, the extension and the column.
"""

from .errors import OGIPError
from .fitsfile import split_selector, split_source
from .pha import (PHA, background_extension, count_pha_rows, locate_spectrum, read_ebounds,
                  read_pha, referenced_file, write_pha, write_pha2)
from .response import ARF, RMF, read_arf, read_rmf, write_arf, write_rmf
from .summary import describe_file

__all__ = [
    "ARF",
    "OGIPError",
    "PHA",
    "background_extension",
    "RMF",
    "count_pha_rows",
    "locate_spectrum",
    "describe_file",
    "read_arf",
    "read_ebounds",
    "read_pha",
    "read_rmf",
    "referenced_file",
    "split_selector",
    "split_source",
    "write_arf",
    "write_pha",
    "write_pha2",
    "write_rmf",
]
