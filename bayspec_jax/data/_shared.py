"""Sharing response arrays between containers.

A response matrix is the largest array a unit holds. When many units read the same file, or
compose the same RMF with the same ARF, they should all hold one copy. This module has what
that needs:

- `content_key`: a key for a file's content (its size and a BLAKE2b digest), so that a file
    read twice maps to the same key. A rewritten file gets a new key, because the content is
    hashed and modification times are not used.
- `WeakCache`: ``key -> array``, kept only while something else holds the array. An entry
    can carry small companion arrays, and can name the arrays it was derived from, so that it
    is never returned for other arrays that happen to have the same `id`.
- `is_concrete`: whether a value is a jax array with a buffer (not a tracer).

The cached arrays are jax arrays. They are immutable, and `numpy.asarray` of one is a
read-only view. So no holder can change what another holder sees, and no cached array is
ever one that a caller passed in as numpy.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer


def is_concrete(value: Any) -> bool:
    """Whether `value` is a jax array with a buffer: not a tracer and not a numpy array."""
    return isinstance(value, jax.Array) and not isinstance(value, Tracer)


def precision_key() -> tuple[str, str]:
    """The default float and int dtypes that JAX is set to. Arrays built under one setting
    are not handed out under the other."""
    return jnp.result_type(float).name, jnp.result_type(int).name


def content_key(target: Any) -> tuple | None:
    """``(size, digest)`` of a file's bytes: `target` is a path or the bytes themselves.
    Returns `None` when the file cannot be read; the caller's reader then raises its own,
    clearer error."""
    if isinstance(target, (bytes, bytearray)):
        return len(target), hashlib.blake2b(target, digest_size=20).hexdigest()
    if not isinstance(target, str):
        return None
    try:
        with open(target, "rb") as f:
            digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=20))
            return f.tell(), digest.hexdigest()
    except OSError:
        return None


def _same(ref: weakref.ref | None, value: Any) -> bool:
    return value is None if ref is None else ref() is value


class WeakCache:
    """``key -> (array, extras)``. An entry lives while its array is alive elsewhere.

    `put` keeps a weak reference to the array. When the array is collected, the entry is
    dropped, and so are its `extras`, which are held strongly (small companion arrays).
    `sources` are the arrays the value was derived from. They are held weakly, and `get`
    returns the entry only while the same objects are alive, so a key made from `id`s never
    matches a later object that reuses an id.
    """

    def __init__(self):
        self._entries: dict[Any, tuple] = {}

    def __len__(self) -> int:
        return sum(1 for ref, _, _ in list(self._entries.values()) if ref() is not None)

    def get(self, key: Any, sources: tuple = ()) -> tuple[Any, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        ref, extras, source_refs = entry
        value = ref()
        if value is None or not all(_same(r, s) for r, s in zip(source_refs, sources)):
            return None
        return value, extras

    def put(self, key: Any, value: Any, extras: Any = None, sources: tuple = ()) -> Any:
        entries = self._entries

        def drop(dead: weakref.ref, key: Any = key) -> None:
            entry = entries.get(key)
            if entry is not None and entry[0] is dead:
                del entries[key]

        source_refs = tuple(None if s is None else weakref.ref(s) for s in sources)
        entries[key] = (weakref.ref(value, drop), extras, source_refs)
        return value

    def get_or_make(self, key: Any, make: Callable[[], Any], sources: tuple = ()) -> Any:
        """The cached array for `key` (derived from `sources`), or ``make()``, then cached."""
        hit = self.get(key, sources)
        if hit is not None:
            return hit[0]
        return self.put(key, make(), sources=sources)


class IdentitySet:
    """Arrays seen before, by identity, held weakly. The containers record here the arrays
    they have already validated, so that an array shared by many containers is checked once."""

    def __init__(self):
        self._cache = WeakCache()

    def __contains__(self, array: Any) -> bool:
        return self._cache.get(id(array), (array,)) is not None

    def add(self, array: Any) -> None:
        if array not in self:
            self._cache.put(id(array), array, sources=(array,))
