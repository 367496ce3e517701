"""Conversions shared by the containers: host values to jnp arrays of the caller's precision."""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import numpy as np


def float_array(values: Any) -> jnp.ndarray:
    """A floating jnp array in the precision JAX is set to (float64 with x64, else float32)."""
    return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=jnp.result_type(float))


def int_array(values: Any) -> jnp.ndarray:
    return jnp.asarray(np.asarray(values, dtype=np.int64), dtype=jnp.result_type(int))


def source_name(label: str | None, index: int | None = None) -> str:
    """A short name for a file label (its base name) with the row or EXTVER, if any."""
    if label is None:
        return "unnamed"
    name = os.path.basename(label) if not label.startswith("<") else label
    return f"{name}:{index}" if index is not None else name


def bins_array(values: Any, file_dtype: str | None = None) -> jnp.ndarray:
    """Energy bounds in the precision the file stored them in (float32 for FITS E columns).

    bayspec computes channel widths, centres and the energy grid from the bounds in that
    precision, so keeping it makes those numbers agree to the last digit.
    """
    array = np.asarray(values)
    dtype = file_dtype if file_dtype is not None else array.dtype.name
    if dtype == "float32":
        return jnp.asarray(array.astype(np.float32))
    return float_array(array)
