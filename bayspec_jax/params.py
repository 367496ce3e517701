"""Fit parameters held by the data layer and by models: `Par` and a few priors.

`Par` is an `equinox.Module` whose only leaf is `val`; prior, frozen flag, scale, unit and
comment are static metadata. ``scale='log'`` means `val` is log10 of the physical `value`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


def _plain_number(x):
    """`x` as a Python number: an integer stays an ``int`` (``2``, not ``2.0``), anything else
    becomes a ``float`` (numpy and JAX scalars included)."""
    if isinstance(x, bool):
        raise TypeError(f"a prior's arguments are numbers, got {x!r}")
    if isinstance(x, numbers.Integral):
        return int(x)
    return float(x)


@dataclasses.dataclass(frozen=True, repr=False)
class Prior:
    """Base of the priors: a named distribution with `log_prob` and a `support`.

    The arguments are kept as given (an integer stays an integer), and `repr` is the call that
    makes the prior, as written: ``unif(0.5, 2)``. Saves store the arguments, so the text
    survives a round trip.
    """

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _plain_number(getattr(self, field.name)))

    @property
    def arguments(self) -> tuple:
        """The arguments, in the order of the constructor: ``unif(0.5, 2).arguments == (0.5, 2)``."""
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(a) for a in self.arguments)})"

    def log_prob(self, x: ArrayLike) -> Float[Array, "..."]:
        raise NotImplementedError

    @property
    def support(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def interval(self, mass: float) -> tuple[float, float]:
        """Central interval holding probability `mass`."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, repr=False)
class unif(Prior):  # noqa: N801 - the original's name
    """Uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"unif needs finite low < high, got ({self.low}, {self.high})")

    def log_prob(self, x):
        x = jnp.asarray(x)
        inside = (x >= self.low) & (x <= self.high)
        return jnp.where(inside, -math.log(self.high - self.low), -jnp.inf)

    @property
    def support(self):
        return (self.low, self.high)

    def interval(self, mass):
        half = 0.5 * (1 - mass) * (self.high - self.low)
        return (self.low + half, self.high - half)


@dataclasses.dataclass(frozen=True, repr=False)
class logunif(Prior):  # noqa: N801 - the original's name
    """Log-uniform (density proportional to 1/x) on ``[low, high]``, ``0 < low < high``."""

    low: float
    high: float

    def __post_init__(self):
        super().__post_init__()
        if not (0 < self.low < self.high < math.inf):
            raise ValueError(f"logunif needs 0 < low < high < inf, got ({self.low}, {self.high})")

    def log_prob(self, x):
        x = jnp.asarray(x)
        inside = (x >= self.low) & (x <= self.high)
        safe = jnp.where(inside, x, self.low)
        norm = math.log(math.log(self.high / self.low))
        return jnp.where(inside, -jnp.log(safe) - norm, -jnp.inf)

    @property
    def support(self):
        return (self.low, self.high)

    def interval(self, mass):
        ratio = math.log(self.high / self.low)
        return (self.low * math.exp(0.5 * (1 - mass) * ratio),
                self.high * math.exp(-0.5 * (1 - mass) * ratio))


@dataclasses.dataclass(frozen=True, repr=False)
class norm(Prior):  # noqa: N801 - the original's name
    """Normal with mean `loc` and standard deviation `scale`."""

    loc: float
    scale: float

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.loc) and self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"norm needs a finite loc and scale > 0, got ({self.loc}, {self.scale})")

    def log_prob(self, x):
        z = (jnp.asarray(x) - self.loc) / self.scale
        return -0.5 * z**2 - math.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def interval(self, mass):
        from statistics import NormalDist

        half = NormalDist().inv_cdf(0.5 + 0.5 * mass) * self.scale
        return (self.loc - half, self.loc + half)


class Par(eqx.Module):
    """A parameter: a value with its prior and how it is treated in a fit.

    **Arguments:**

    - `val`: the value in the parameter's own scale (log10 of the physical value when
        ``scale='log'``). The one array leaf of the module.
    - `prior`: a `Prior` (`unif`, `logunif`, `norm`), or `None` for a parameter never sampled.
    - `frozen`: held fixed in fits (the data-layer factors are frozen by default).
    - `scale`: ``'linear'`` or ``'log'``.
    - `unit`, `comment`: free text shown in tables.
    """

    val: Float[Array, ""]
    prior: Prior | None = eqx.field(static=True, default=None)
    frozen: bool = eqx.field(static=True, default=False)
    scale: str = eqx.field(static=True, default="linear")
    unit: str = eqx.field(static=True, default="")
    comment: str = eqx.field(static=True, default="")

    def __init__(self, val, prior=None, frozen=False, scale="linear", unit="", comment=""):
        self.val = jnp.asarray(val, dtype=jnp.result_type(float))
        self.prior = prior
        self.frozen = bool(frozen)
        self.scale = scale
        self.unit = "" if unit is None else str(unit)
        self.comment = "" if comment is None else str(comment)

    def __check_init__(self):
        if self.scale not in ("linear", "log"):
            raise ValueError(f"Par scale must be 'linear' or 'log', got {self.scale!r}")
        if self.prior is not None and not isinstance(self.prior, Prior):
            raise ValueError(f"Par prior must be a bayspec_jax.params.Prior, got {self.prior!r}")
        if jnp.ndim(self.val) != 0:
            raise ValueError(f"Par value must be a scalar, got shape {jnp.shape(self.val)}")
        if not self.frozen and self.prior is None:
            raise ValueError("a free Par needs a prior; pass prior=unif(...) or frozen=True")

    @property
    def value(self) -> Float[Array, ""]:
        """The physical value: `val`, or ``10 ** val`` for ``scale='log'``."""
        return 10.0**self.val if self.scale == "log" else self.val

    @property
    def host_value(self) -> float:
        """`value` computed on the host with numpy (usable while tracing code that closes over
        the `Par`)."""
        val = float(np.asarray(self.val))
        return 10.0**val if self.scale == "log" else val

    def replace(self, **changes) -> Par:
        """A copy with some of `val`, `prior`, `frozen`, `scale`, `unit`, `comment` changed."""
        fields = dict(val=self.val, prior=self.prior, frozen=self.frozen, scale=self.scale,
                      unit=self.unit, comment=self.comment)
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Par has no field(s) {sorted(unknown)}; fields are {list(fields)}")
        fields.update(changes)
        return Par(**fields)

    def frozen_at(self, val) -> Par:
        """A frozen copy with value `val`."""
        return self.replace(val=val, frozen=True)

    def todict(self) -> dict:
        return {"val": float(self.val), "prior": None if self.prior is None else repr(self.prior),
                "frozen": self.frozen, "scale": self.scale, "unit": self.unit,
                "comment": self.comment}
