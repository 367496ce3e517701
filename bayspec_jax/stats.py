"""Per-bin log-likelihoods of counts spectra, relative to the saturated model.

Every statistic takes, per group: ``S`` source counts, ``B`` background counts, ``m`` model
count rate, ``ts``/``tb`` the (corrected) source and background efficiencies (exposure times
area/backscale factors), ``sigma_S``/``sigma_B`` the count errors; and returns
``(loglike, sign)``: the log-likelihood of each bin relative to its saturated value (<= 0, 0
at a perfect fit) and the sign of data minus model. The formulas and their branches are those
of bayspec 0.4.5 (XSPEC's PGSTAT and W-statistic).

All functions are pure `jax.numpy`, broadcast over any leading axes, and are safe under
`jit`, `vmap` and `grad`: values and gradients stay finite at zero counts, zero background,
zero background error and zero model (every branch is evaluated on safe inputs and selected
with `jnp.where`). The derivatives of `pstat`, `wstat` and `pgstat` with respect to ``m``,
``ts`` and ``tb`` are written out (for the profiled statistics, the partial derivatives of the
joint likelihood at the profiled background: the envelope theorem) rather than traced through
the profile's solution, which makes `jax.grad` of a likelihood several times cheaper; where the
counts themselves are differentiated, or in the rare irregular bins, JAX's automatic derivative
is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float

Result = tuple[Float[Array, "*bins"], Float[Array, "*bins"]]


def _safe(condition: Array, value: Array, fill: float = 1.0) -> Array:
    return jnp.where(condition, value, fill)


def _sign(x: Array) -> Array:
    return jnp.sign(x).astype(jnp.result_type(x, float))


def poisson_loglike(count: ArrayLike, mean: ArrayLike) -> Float[Array, "*bins"]:
    """Poisson log-likelihood of `count` given `mean`, relative to the saturated ``mean=count``.

    ``-inf`` for negative or non-finite arguments, and for ``mean = 0 < count``; ``-mean`` for
    ``count = 0``. Computed with the same numerically careful branches as bayspec.
    """
    count, mean = jnp.broadcast_arrays(*(jnp.asarray(x, dtype=jnp.result_type(x, float))
                                         for x in (count, mean)))
    invalid = ~jnp.isfinite(count) | ~jnp.isfinite(mean) | (count < 0) | (mean < 0)
    zero_count = ~invalid & (count == 0)
    zero_mean = ~invalid & ~zero_count & (mean == 0)
    regular = ~invalid & ~zero_count & ~zero_mean
    c = _safe(regular, count)
    mu = _safe(regular, mean)
    # One logarithm per bin, of an argument chosen per branch (logarithms dominate the cost).
    # Far from saturation (mean and count differ by 2x or more): the ratio min/max <= 1/2, its
    # logarithm is at least log 2 in size; a ratio below the smallest normal number is scaled
    # by a power of two first so that it keeps its digits.
    far = (mu < 0.5 * c) | (c < 0.5 * mu)
    ratio = jnp.minimum(mu, c) / jnp.maximum(mu, c)
    finfo = jnp.finfo(ratio.dtype)
    exponent = int(0.58 * finfo.maxexp)  # 593 in float64, 74 in float32
    tiny = ratio < finfo.tiny
    scaled = jnp.where(tiny, jnp.minimum(mu, c) * 2.0**exponent / jnp.maximum(mu, c), ratio)
    # Near saturation: log1p(delta) as log(u) * delta / (u - 1) with u = 1 + delta (exact
    # rounding compensation; Goldberg 1991), the series where |delta| < 1e-4.
    delta = (mu - c) / c
    small = jnp.abs(delta) < 1e-4
    u = 1.0 + delta
    log_arg = jnp.log(jnp.where(far, scaled, jnp.where(small | (u == 1.0), 1.0, u)))
    log_small = log_arg - jnp.where(far & tiny, exponent * math.log(2.0), 0.0)
    log_ratio = jnp.where(mu > c, -log_small, log_small)
    far_value = jnp.where(mu < c, c * (log_ratio + 1.0 - ratio), c * log_ratio - mu + c)
    log1p = jnp.where(small | (u == 1.0), delta, log_arg * delta / _safe(~small & (u != 1.0), u - 1.0))
    series = -c * delta * delta * (0.5 - delta / 3.0 + delta * delta / 4.0
                                   - delta * delta * delta / 5.0)
    near_value = jnp.where(small, series, -c * (delta - log1p))
    value = jnp.where(far, far_value, near_value)
    value = jnp.where(zero_count, -_safe(zero_count, mean, 0.0), value)
    return jnp.where(regular | zero_count, value, -jnp.inf)


def _floats(*arrays) -> list[Array]:
    """The arguments as float arrays of one broadcast shape."""
    dtype = jnp.result_type(*arrays, float)
    return list(jnp.broadcast_arrays(*(jnp.asarray(x, dtype=dtype) for x in arrays)))


def _pstat_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb, irregular)`` of `pstat` (see `_with_profile_partials`)."""
    mu = m * ts
    loglike = poisson_loglike(S, mu)
    slope = jnp.where(mu > 0, S / _safe(mu > 0, mu), 0.0) - 1.0
    irregular = (S < 0) | (m < 0) | ~jnp.isfinite(loglike)
    return loglike, ts * slope, m * slope, jnp.zeros_like(mu), irregular


def _wstat_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb, irregular)`` of `wstat`."""
    aa = ts + tb
    bb = aa * m - S - B
    cc = -B * m
    disc = bb * bb - 4.0 * aa * cc
    positive = disc > 0
    dd = jnp.where(positive, jnp.sqrt(_safe(positive, disc)), 0.0)
    denominator = bb + dd
    upper = bb >= 0
    b_upper = jnp.where(denominator == 0, 0.0, -2.0 * cc / _safe(denominator != 0, denominator))
    b = jnp.where(upper, b_upper, -(bb - dd) / (2.0 * aa))
    mu_s, mu_b = ts * (b + m), tb * b
    loglike = poisson_loglike(S, mu_s) + poisson_loglike(B, mu_b)
    # The profile's partial derivatives are those of the joint likelihood at the profiled
    # background rate b (envelope theorem; its bound b >= 0 does not move with m, ts, tb).
    slope_s = jnp.where(mu_s > 0, S / _safe(mu_s > 0, mu_s), 0.0) - 1.0
    slope_b = jnp.where(mu_b > 0, B / _safe(mu_b > 0, mu_b), 0.0) - 1.0
    irregular = ((S < 0) | (B < 0) | (m < 0) | (ts <= 0) | (tb <= 0) | (b < 0)
                 | ~jnp.isfinite(loglike))
    return loglike, ts * slope_s, (b + m) * slope_s, b * slope_b, irregular


def _pgstat_branches(S, m, sigma) -> tuple[Array, Array, Array]:
    """PGSTAT's bins by branch: ``(zero, positive, general)`` (see `pgstat`)."""
    ok = (sigma > 0) & (m >= 0)
    zero = ok & (S == 0)
    positive = ok & (S > 0)
    return zero, positive, ~(zero | positive)


def _pgstat_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb, irregular)`` of `pgstat`: three branches, as bayspec."""
    sigma = sigma_B
    zero, positive, general = _pgstat_branches(S, m, sigma)
    ratio = ts / tb

    # S == 0: the profile is closed-form (the background at its bound mu = 0, or inside).
    sig_z, b_z, m_z = _safe(zero, sigma), _safe(zero, B, 0.0), _safe(zero, m, 0.0)
    expected_z = ts * m_z + ratio * b_z
    variance_z = (ratio * sig_z) ** 2
    z_z = (b_z + tb * m_z) / sig_z
    at_bound = expected_z <= variance_z
    loglike_zero = jnp.where(at_bound, -0.5 * z_z * z_z, -expected_z + 0.5 * variance_z)
    tb_z = tb * tb
    zero_partials = (
        jnp.where(at_bound, -z_z * tb / sig_z, -ts),
        jnp.where(at_bound, 0.0, -m_z - b_z / tb + ts * sig_z * sig_z / tb_z),
        jnp.where(at_bound, -z_z * m_z / sig_z,
                  ts * b_z / tb_z - ts * ts * sig_z * sig_z / (tb_z * tb)),
    )

    # S > 0: solve for the total source-region mean.
    s_p, sig_p, b_p, m_p = (_safe(positive, S), _safe(positive, sigma), _safe(positive, B, 0.0),
                            _safe(positive, m, 0.0))
    error = ratio * sig_p
    expected = ts * m_p + ratio * b_p
    variance = error * error
    coefficient = variance - expected
    discriminant = jnp.hypot(coefficient, 2.0 * jnp.sqrt(s_p) * error)
    grows = coefficient >= 0
    mu_s = jnp.where(
        grows,
        s_p * (variance / _safe(grows, 0.5 * coefficient + 0.5 * discriminant)),
        0.5 * discriminant - 0.5 * coefficient,
    )
    z_p = ((expected - s_p) / (mu_s + variance)) * error
    # Envelope theorem, with the profile's stationarity written into d/dtb.
    slope = s_p / mu_s - 1.0
    positive_partials = (ts * slope, (s_p - mu_s) / ts, -slope * (mu_s - ts * m_p) / tb)

    # The general branch is computed only when some bin needs it (rare: zero background error,
    # negative model or negative counts); one Poisson term serves it and the S > 0 branch.
    def only_positive(_):
        return s_p, mu_s, -0.5 * z_p * z_p

    def with_general(_):
        counts_g, mean_g, gaussian_g = _pgstat_general(S, B, m, ts, tb, sigma, general)
        return (jnp.where(positive, s_p, counts_g), jnp.where(positive, mu_s, mean_g),
                jnp.where(positive, -0.5 * z_p * z_p, gaussian_g))

    counts, mean, gaussian = jax.lax.cond(jnp.any(general), with_general, only_positive, None)
    loglike = jnp.where(zero, loglike_zero, poisson_loglike(counts, mean) + gaussian)
    partials = [jnp.where(zero, z, p) for z, p in zip(zero_partials, positive_partials)]
    return loglike, *partials, general


def _pgstat_general_loglike(S, B, m, ts, tb, sigma_S, sigma_B):
    """`pgstat` in the bins of its general branch (elsewhere: finite, meaningless values)."""
    counts, mean, gaussian = _pgstat_general(S, B, m, ts, tb, sigma_B,
                                             _pgstat_branches(S, m, sigma_B)[2])
    return poisson_loglike(counts, mean) + gaussian


def _with_profile_partials(parts: Callable,
                           irregular_loglike: Callable | None = None) -> Callable:
    """``loglike(S, B, m, ts, tb, sigma_S, sigma_B)`` with a JVP from the analytic partials.

    `parts` returns ``(loglike, d/dm, d/dts, d/dtb, irregular)``: the tangent is
    ``d/dm dm + d/dts dts + d/dtb dtb``, a few elementwise products (autodiff of the profiled
    solutions costs many more kernels), except in `irregular` bins and when the data (counts,
    errors) carry tangents, where it is the automatic derivative of `loglike` itself (of
    `irregular_loglike`, when given, in the irregular bins: a smaller graph valid there).
    """
    def plain(*args):
        return parts(*args)[0]

    @jax.custom_jvp
    def loglike(S, B, m, ts, tb, sigma_S, sigma_B):
        return plain(S, B, m, ts, tb, sigma_S, sigma_B)

    def rule(primals, tangents):
        def instantiated():
            return tuple(jnp.zeros_like(p) if isinstance(t, SymbolicZero) else t
                         for p, t in zip(primals, tangents))

        if any(not isinstance(tangents[i], SymbolicZero) for i in (0, 1, 5, 6)):
            return jax.jvp(plain, primals, instantiated())
        value, *partials, irregular = parts(*primals)
        fallback = plain if irregular_loglike is None else irregular_loglike

        def automatic():
            exact = []
            for i in (2, 3, 4):
                unit = [jnp.zeros_like(p) for p in primals]
                unit[i] = jnp.ones_like(primals[i])
                exact.append(jax.jvp(fallback, primals, tuple(unit))[1])
            return [jnp.where(irregular, e, p) for e, p in zip(exact, partials)]

        partials = jax.lax.cond(jnp.any(irregular), automatic, lambda: partials)
        tangent = jnp.zeros_like(value)
        for partial, t in zip(partials, tangents[2:5]):
            if not isinstance(t, SymbolicZero):
                tangent = tangent + partial * t
        return value, tangent

    loglike.defjvp(rule, symbolic_zeros=True)
    return loglike


# Jitted, so that a call outside `jit` (NumPyro's and BlackJAX's set-up run the model eagerly)
# compiles once per shape instead of re-tracing the branches at every call.
_pstat_loglike = jax.jit(_with_profile_partials(_pstat_parts))
_wstat_loglike = jax.jit(_with_profile_partials(_wstat_parts))
_pgstat_loglike = jax.jit(_with_profile_partials(_pgstat_parts, _pgstat_general_loglike))


def pstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Poisson source counts, background ignored (``B``, ``tb``, errors unused)."""
    S, B, m, ts, tb, sigma_S, sigma_B = _floats(S, B, m, ts, tb, sigma_S, sigma_B)
    return _pstat_loglike(S, B, m, ts, tb, sigma_S, sigma_B), _sign(S - m * ts)


def cash(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """The Cash statistic (XSPEC cstat without a background): the same as `pstat`."""
    return pstat(S, B, m, ts, tb, sigma_S, sigma_B)


def wstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Poisson source and Poisson background, the background rate profiled (XSPEC W-stat)."""
    S, B, m, ts, tb, sigma_S, sigma_B = _floats(S, B, m, ts, tb, sigma_S, sigma_B)
    return (_wstat_loglike(S, B, m, ts, tb, sigma_S, sigma_B),
            _sign(S / ts - B / tb - m))


def _pgstat_general(S, B, m, ts, tb, sigma, general):
    """XSPEC's general PGSTAT quadratic: ``(counts, Poisson mean, Gaussian term)`` per bin."""
    s_g, b_g, m_g, sig_g = (_safe(general, S, 0.0), _safe(general, B, 0.0),
                            _safe(general, m, 0.0), _safe(general, sigma, 0.0))
    aa = tb * tb
    var_g = sig_g * sig_g
    bb = ts * var_g - tb * b_g + tb * tb * m_g
    cc = ts * var_g * m_g - s_g * var_g - tb * b_g * m_g
    disc = bb * bb - 4.0 * aa * cc
    real = disc > 0
    dd = jnp.where(real, jnp.sqrt(_safe(real, disc)), 0.0)
    qq = -0.5 * (bb + jnp.where(bb < 0, -1.0, 1.0) * dd)
    b1 = qq / aa
    b2 = jnp.where(qq != 0, cc / _safe(qq != 0, qq), 0.0)
    b = jnp.where(b1 > 0, b1, b2)
    has_error = sig_g != 0
    z_g = (b_g - tb * b) / _safe(has_error, sig_g)
    return s_g, ts * (b + m_g), jnp.where(has_error, -0.5 * z_g * z_g, 0.0)


def pgstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Poisson source and Gaussian background, the background rate profiled (XSPEC PGSTAT).

    Three branches, as bayspec: zero source counts, positive source counts (both with a
    positive background error and a non-negative model), and XSPEC's general quadratic
    otherwise (zero background error, negative model or negative counts).
    """
    S, B, m, ts, tb, sigma_S, sigma_B = _floats(S, B, m, ts, tb, sigma_S, sigma_B)
    return (_pgstat_loglike(S, B, m, ts, tb, sigma_S, sigma_B),
            _sign(S / ts - B / tb - m))


def gstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Gaussian (chi-square) likelihood of the net counts, errors added in quadrature."""
    has_tb = tb != 0
    scale = jnp.where(has_tb, ts / _safe(has_tb, tb), 1.0)
    net = S - B * scale
    variance = sigma_S**2 + (sigma_B * scale) ** 2
    delta = net - m * ts
    has_error = variance > 0
    z = delta / jnp.sqrt(_safe(has_error, variance))
    exact = jnp.where(delta == 0, 0.0, -jnp.inf)
    return jnp.where(has_error, -0.5 * z * z, exact), _sign(delta)


chi2 = gstat

STATISTICS: dict[str, Callable[..., Result]] = {
    "pgstat": pgstat,
    "cstat": wstat,
    "ppstat": wstat,
    "pstat": pstat,
    "chi2": gstat,
    "gstat": gstat,
}
"""Statistic name -> per-bin function. ``cstat``/``ppstat`` use `cash` when a unit has no
background (see `pointwise`)."""


def pointwise(stat: str, S, B, m, ts, tb, sigma_S, sigma_B, has_background=True) -> Result:
    """``(loglike, sign)`` per bin for statistic `stat`.

    For ``cstat``/``ppstat``, a unit without a background file (`has_background` False) uses
    the Cash statistic, as XSPEC does. A non-finite model value anywhere in the bins makes every
    bin ``-inf`` (the whole unit is rejected, as in bayspec) without NaN gradients.
    """
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}; choose one of {list(STATISTICS)}")
    finite = jnp.isfinite(m)
    all_finite = jnp.all(finite, axis=-1, keepdims=True)
    m_safe = jnp.where(finite, m, 0.0)
    loglike, sign = STATISTICS[stat](S, B, m_safe, ts, tb, sigma_S, sigma_B)
    if stat in ("cstat", "ppstat"):
        cash_loglike, cash_sign = cash(S, B, m_safe, ts, tb, sigma_S, sigma_B)
        loglike = jnp.where(has_background, loglike, cash_loglike)
        sign = jnp.where(has_background, sign, cash_sign)
    return jnp.where(all_finite, loglike, -jnp.inf), jnp.where(all_finite, sign, 1.0)


def pseudo_residual(loglike: ArrayLike, sign: ArrayLike) -> Float[Array, "*bins"]:
    """``sign * sqrt(-2 loglike)``: the signed square root of each bin's statistic."""
    loglike = jnp.asarray(loglike)
    stat = -2.0 * loglike
    positive = stat > 0
    return jnp.asarray(sign) * jnp.where(positive, jnp.sqrt(_safe(positive, stat)), 0.0)


def total_statistic(loglike: ArrayLike, weight: ArrayLike = 1.0) -> Float[Array, ""]:
    """``-2 * sum(weight * loglike)``."""
    return -2.0 * jnp.sum(jnp.asarray(weight) * jnp.asarray(loglike))
