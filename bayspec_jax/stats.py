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
with `jnp.where`). At extreme models the contract is: a value is finite or ``-inf``, never NaN;
where it is finite its partial derivatives are finite (capped far beyond any ordinary fit's, see
`_bounded_partial`, so that the chain rule through a vanishing model cannot form ``inf * 0``);
where it is ``-inf`` they are finite or 0. The derivatives of `pstat`, `wstat`, `pgstat` and
`gstat` with respect to ``m``, ``ts`` and ``tb`` are written out (for the profiled statistics,
the partial derivatives of the joint likelihood at the profiled background: the envelope
theorem) rather than traced through the profile's solution, which makes `jax.grad` of a
likelihood several times cheaper; where the counts themselves are differentiated, or in the rare
irregular bins, JAX's automatic derivative is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float

Result = tuple[Float[Array, "*bins"], Float[Array, "*bins"]]


def _safe(condition: Array, value: Array, fill: float = 1.0) -> Array:
    return jnp.where(condition, value, fill)


def _sign(x: Array) -> Array:
    return jnp.sign(x).astype(jnp.result_type(x, float))


_ATANH_SERIES = tuple(1.0 / (2 * k + 3) for k in range(11))
"""``1/3, 1/5, ..., 1/23``: ``atanh(t) = t + t^3 (1/3 + t^2/5 + ...)``, enough terms for
``|t| <= 1/7`` to the last bit of float64."""


def poisson_loglike(count: ArrayLike, mean: ArrayLike) -> Float[Array, "*bins"]:
    """Poisson log-likelihood of `count` given `mean`, relative to the saturated ``mean=count``:
    ``count * log(mean / count) + count - mean``.

    ``-inf`` for negative or non-finite arguments, and for ``mean = 0 < count``; ``-mean`` for
    ``count = 0``. Accurate to a few units in the last place everywhere, saturation included.
    """
    count, mean = jnp.broadcast_arrays(*(jnp.asarray(x, dtype=jnp.result_type(x, float))
                                         for x in (count, mean)))
    invalid = ~jnp.isfinite(count) | ~jnp.isfinite(mean) | (count < 0) | (mean < 0)
    regular = ~invalid & (count > 0) & (mean > 0)
    # Near saturation (|mean - count| <= count / 4): with t = (mean - count) / (mean + count),
    # log(mean / count) = 2 atanh(t), so the value is -count * (delta t - 2 t^3 (1/3 + t^2/5 +
    # ...)), delta = (mean - count) / count: no cancellation, and no logarithm. Each branch
    # computes on inputs that are safe for it (finite gradients in the other bins).
    near = regular & (jnp.abs(mean - count) <= 0.25 * count)
    c, mu = _safe(near, count), _safe(near, mean)
    delta = (mu - c) / c
    t = (mu - c) / (mu + c)
    t2 = t * t
    series = _ATANH_SERIES[-1]
    for coefficient in _ATANH_SERIES[-2::-1]:
        series = coefficient + t2 * series
    near_value = -c * (delta * t - 2.0 * t * t2 * series)
    # Elsewhere one logarithm; a ratio beyond the exponent range is scaled by a power of two.
    far = regular & ~near
    c, mu = _safe(far, count), _safe(far, mean)
    finfo = jnp.finfo(c.dtype)
    exponent = int(0.58 * finfo.maxexp)  # 593 in float64, 74 in float32
    big = 2.0**exponent
    tiny_ratio = mu < c * (1.0 / big)
    huge_ratio = mu > c * big
    scale = jnp.where(tiny_ratio, big, jnp.where(huge_ratio, 1.0 / big, 1.0))
    log_scale = jnp.where(tiny_ratio, exponent * math.log(2.0),
                          jnp.where(huge_ratio, -exponent * math.log(2.0), 0.0))
    far_value = c * (jnp.log(mu * scale / c) - log_scale) - (mu - c)
    value = jnp.where(near, near_value, far_value)
    value = jnp.where(count == 0, -_safe(count == 0, mean, 0.0), value)
    return jnp.where(regular | (~invalid & (count == 0)), value, -jnp.inf)


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
    # A huge model (bb beyond sqrt(finfo.max) / 16, where bb^2 overflows): the same upper root
    # written with bb factored out of the square root, 2 B (m / bb) / (1 + sqrt(1 + 4 aa B m /
    # bb^2)), so that the value stays finite (a huge negative number, not -inf).
    huge = bb > 2.0 ** (jnp.finfo(bb.dtype).maxexp // 2 - 4)
    bb_h, m_h, b_h = _safe(huge, bb), _safe(huge, m, 0.0), _safe(huge, B, 0.0)
    ratio = m_h / bb_h
    b = jnp.where(huge, 2.0 * b_h * ratio / (1.0 + jnp.sqrt(1.0 + 4.0 * aa * (b_h / bb_h) * ratio)),
                  b)
    mu_s, mu_b = ts * (b + m), tb * b
    loglike = poisson_loglike(S, mu_s) + poisson_loglike(B, mu_b)
    # The profile's partial derivatives are those of the joint likelihood at the profiled
    # background rate b (envelope theorem; its bound b >= 0 does not move with m, ts, tb).
    slope_s = jnp.where(mu_s > 0, S / _safe(mu_s > 0, mu_s), 0.0) - 1.0
    slope_b = jnp.where(mu_b > 0, B / _safe(mu_b > 0, mu_b), 0.0) - 1.0
    irregular = ((S < 0) | (B < 0) | (m < 0) | (ts <= 0) | (tb <= 0) | (b < 0)
                 | ~jnp.isfinite(loglike))
    return loglike, ts * slope_s, (b + m) * slope_s, b * slope_b, irregular


def _pgstat_branches(S, B, m, sigma) -> tuple[Array, Array, Array, Array]:
    """PGSTAT's bins by branch: ``(zero, positive, no_background, general)`` (see `pgstat`)."""
    ok = (sigma > 0) & (m >= 0)
    zero = ok & (S == 0)
    positive = ok & (S > 0)
    # No background (B = 0 with zero error: a unit without a background file, or an empty
    # background group): XSPEC's quadratic has the root b = 0, so the value is Cash's; solving
    # it would square the model rate, which underflows (and NaNs the derivative) below ~1e-154.
    no_background = (sigma == 0) & (B == 0) & (m >= 0) & (S >= 0)
    return zero, positive, no_background, ~(zero | positive | no_background)


def _pgstat_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb, irregular)`` of `pgstat`'s first two branches, as bayspec
    (the bins of the third, `irregular`, hold finite placeholders)."""
    sigma = sigma_B
    zero, positive, no_background, general = _pgstat_branches(S, B, m, sigma)
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

    # No background: Cash's statistic on the source counts (the profiled background is 0, and
    # its derivative with respect to tb, -B / tb^2, is 0 too). One Poisson term serves both this
    # branch and the positive one.
    s_n, m_n = _safe(no_background, S, 0.0), _safe(no_background, m, 0.0)
    mean_n = ts * m_n
    slope_n = jnp.where(mean_n > 0, s_n / _safe(mean_n > 0, mean_n), 0.0) - 1.0
    no_background_partials = (ts * slope_n, m_n * slope_n, jnp.zeros_like(slope_n))

    # The general branch (rare: zero background error with a background, negative model or
    # negative counts) is left to `_pgstat_general_parts`, run only when some bin needs it.
    poisson = poisson_loglike(jnp.where(no_background, s_n, s_p),
                              jnp.where(no_background, mean_n, mu_s))
    loglike = jnp.where(zero, loglike_zero,
                        poisson - jnp.where(no_background, 0.0, 0.5 * z_p * z_p))
    partials = [jnp.where(zero, z, jnp.where(no_background, n, p))
                for z, n, p in zip(zero_partials, no_background_partials, positive_partials)]
    return loglike, *partials, general


def _pgstat_general_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb)`` of `pgstat` in the bins of its general branch
    (elsewhere: finite, meaningless values)."""
    counts, mean, gaussian, partials = _pgstat_general(S, B, m, ts, tb, sigma_B,
                                                       _pgstat_branches(S, B, m, sigma_B)[3])
    return poisson_loglike(counts, mean) + gaussian, *partials


_PARTIAL_LIMIT = 2.0**-32
"""The largest partial derivative, as a fraction of ``finfo.max`` (~4e298 in float64, ~8e28 in
float32); see `_bounded_partial`."""


def _bounded_partial(partial: Array, value: Array) -> Array:
    """A partial derivative that cannot turn a gradient into ``inf`` or NaN.

    A model rate that underflows towards 0 in a bin with counts has ``d/dm = S / m`` near or
    beyond the float range; the chain rule then sums it through the response (overflowing to
    ``inf``) and multiplies it by the model's vanishing derivative (``exp`` of a large negative
    number, exactly 0 in some photon bins): ``inf * 0 = NaN``. Where the value is finite, the
    partial is therefore capped at ``_PARTIAL_LIMIT * finfo.max``, which leaves ``2^32`` of
    headroom for those sums; the cap keeps the sign, and changes nothing but such extreme
    partials (an ordinary fit's are many orders of magnitude below it). Where the value is
    ``-inf`` a non-finite partial is 0: the point is rejected anyway.
    """
    limit = _PARTIAL_LIMIT * float(jnp.finfo(partial.dtype).max)
    return jnp.where(jnp.isfinite(value), jnp.clip(partial, -limit, limit),
                     jnp.where(jnp.isfinite(partial), partial, 0.0))


def _complete_value(parts: Callable, irregular_parts: Callable | None = None) -> Callable:
    """``loglike(S, B, m, ts, tb, sigma_S, sigma_B)`` from `parts`, with `irregular_parts`'s
    value in the irregular bins when given (evaluated only when some bin is irregular)."""
    def value(*args):
        loglike, *_, irregular = parts(*args)
        if irregular_parts is None:
            return loglike
        return jax.lax.cond(jnp.any(irregular),
                            lambda: jnp.where(irregular, irregular_parts(*args)[0], loglike),
                            lambda: loglike)

    return value


def _with_profile_partials(parts: Callable, irregular_parts: Callable | None = None) -> Callable:
    """``loglike(S, B, m, ts, tb, sigma_S, sigma_B)`` with a JVP from the analytic partials.

    `parts` returns ``(loglike, d/dm, d/dts, d/dtb, irregular)`` (`irregular` `None` where
    the partials hold in every bin): the tangent is
    ``d/dm dm + d/dts dts + d/dtb dtb``, a few elementwise products (autodiff of the profiled
    solutions costs many more kernels). In `irregular` bins the value and the partials are
    `irregular_parts`'s ``(loglike, d/dm, d/dts, d/dtb)`` when given, else `parts`' value and
    its automatic derivatives, all computed under one `lax.cond` that runs only when some bin
    is irregular; when the data (counts, errors) carry tangents, the tangent is the automatic
    derivative of the whole value.
    """
    value_of = _complete_value(parts, irregular_parts)

    @jax.custom_jvp
    def loglike(S, B, m, ts, tb, sigma_S, sigma_B):
        return value_of(S, B, m, ts, tb, sigma_S, sigma_B)

    def rule(primals, tangents):
        if any(not isinstance(tangents[i], SymbolicZero) for i in (0, 1, 5, 6)):
            return jax.jvp(value_of, primals,
                           tuple(jnp.zeros_like(p) if isinstance(t, SymbolicZero) else t
                                 for p, t in zip(primals, tangents)))
        value, *partials, irregular = parts(*primals)

        def with_irregular():
            if irregular_parts is not None:
                fixed, *exact = irregular_parts(*primals)
            else:
                fixed, exact = value, []
                for i in (2, 3, 4):
                    unit = [jnp.zeros_like(p) for p in primals]
                    unit[i] = jnp.ones_like(primals[i])
                    exact.append(jax.jvp(value_of, primals, tuple(unit))[1])
            return (jnp.where(irregular, fixed, value),
                    [jnp.where(irregular, e, p) for e, p in zip(exact, partials)])

        if irregular is not None:
            value, partials = jax.lax.cond(jnp.any(irregular), with_irregular,
                                           lambda: (value, partials))
        partials = [_bounded_partial(partial, value) for partial in partials]
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
_pgstat_loglike = jax.jit(_with_profile_partials(_pgstat_parts, _pgstat_general_parts))
_pgstat_value = _complete_value(_pgstat_parts, _pgstat_general_parts)
"""`pgstat`'s value without the custom derivative (autodiff reference in the tests)."""


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
    """XSPEC's general PGSTAT quadratic: ``(counts, Poisson mean, Gaussian term, (d/dm, d/dts,
    d/dtb))`` per bin, the log-likelihood's derivatives taken through the background rate too."""
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
    divides = qq != 0
    b2 = jnp.where(divides, cc / _safe(divides, qq), 0.0)
    first = b1 > 0
    b = jnp.where(first, b1, b2)
    has_error = sig_g != 0
    z_g = (b_g - tb * b) / _safe(has_error, sig_g)
    mean = ts * (b + m_g)

    # d(loglike) = (partial at fixed b) + (d loglike / db) db. With a real root, db follows from
    # the quadratic (implicit derivative, its denominator +-dd != 0); without one, from b1 = -bb /
    # 2aa or b2 = -2cc / bb. (d loglike / db vanishes at a root when sigma > 0.)
    slope = jnp.where(mean > 0, s_g / _safe(mean > 0, mean), 0.0) - 1.0
    gaussian_db = jnp.where(has_error, z_g / _safe(has_error, sig_g), 0.0)
    loglike_db = ts * slope + tb * gaussian_db
    at_fixed_b = (ts * slope, (b + m_g) * slope, b * gaussian_db)
    d_aa = (0.0, 0.0, 2.0 * tb)
    d_bb = (tb * tb, var_g, 2.0 * tb * m_g - b_g)
    d_cc = (ts * var_g - tb * b_g, var_g * m_g, -b_g * m_g)
    root_slope = 2.0 * aa * b + bb
    root_slope = _safe(real & (root_slope != 0), root_slope)
    bb_safe = _safe(~real & divides, bb)
    partials = []
    for fixed, a_, b_, c_ in zip(at_fixed_b, d_aa, d_bb, d_cc):
        db_root = -(b * b * a_ + b * b_ + c_) / root_slope
        db_vertex = -(b_ * aa - bb * a_) / (2.0 * aa * aa)
        db_ratio = jnp.where(divides, -2.0 * (c_ * bb_safe - cc * b_) / (bb_safe * bb_safe), 0.0)
        db = jnp.where(real, db_root, jnp.where(first, db_vertex, db_ratio))
        partials.append(fixed + loglike_db * db)
    return s_g, mean, jnp.where(has_error, -0.5 * z_g * z_g, 0.0), tuple(partials)


def pgstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Poisson source and Gaussian background, the background rate profiled (XSPEC PGSTAT).

    Three branches, as bayspec: zero source counts, positive source counts (both with a
    positive background error and a non-negative model), and XSPEC's general quadratic
    otherwise (zero background error, negative model or negative counts).
    """
    S, B, m, ts, tb, sigma_S, sigma_B = _floats(S, B, m, ts, tb, sigma_S, sigma_B)
    return (_pgstat_loglike(S, B, m, ts, tb, sigma_S, sigma_B),
            _sign(S / ts - B / tb - m))


def _gstat_net(S, B, m, ts, tb):
    """``(delta, scale, has_tb, safe tb)``: the net counts minus the model's, ``S - B ts / tb -
    m ts`` (the background unscaled where ``tb = 0``, as bayspec)."""
    has_tb = tb != 0
    tb_safe = _safe(has_tb, tb)
    scale = jnp.where(has_tb, ts / tb_safe, 1.0)
    return S - B * scale - m * ts, scale, has_tb, tb_safe


def _gstat_parts(S, B, m, ts, tb, sigma_S, sigma_B):
    """``(loglike, d/dm, d/dts, d/dtb, None)`` of `gstat`: its partials are exact everywhere
    (no irregular bins)."""
    delta, scale, has_tb, tb_safe = _gstat_net(S, B, m, ts, tb)
    variance = sigma_S**2 + (sigma_B * scale) ** 2
    has_error = variance > 0
    error = jnp.sqrt(_safe(has_error, variance))
    z = delta / error
    exact = jnp.where(delta == 0, 0.0, -jnp.inf)
    # z^2 overflows beyond sqrt(finfo.max) (a huge model): the value is -inf there, with zero
    # partials (not -z dz, which overflows to -inf or meets a zero as NaN).
    limit = math.sqrt(float(jnp.finfo(z.dtype).max))
    regular = has_error & (jnp.abs(z) < limit)
    z = _safe(regular, z, 0.0)
    loglike = jnp.where(regular, -0.5 * z * z, jnp.where(has_error, -jnp.inf, exact))
    # d(-z^2 / 2) = -z d(delta) / error + z^2 d(variance) / (2 variance), written with the
    # background's share of the error (|u| <= |z|, v = u / ts) so that no intermediate
    # overflows where the result does not (autodiff forms delta / error^3).
    u = jnp.where(has_tb, z * sigma_B * scale / error, 0.0)
    v = jnp.where(has_tb, z * sigma_B / (tb_safe * error), 0.0)
    background_rate = jnp.where(has_tb, B / tb_safe, 0.0)
    d_m = z * ts / error
    d_ts = z * (background_rate + m) / error + u * v
    d_tb = jnp.where(has_tb, -z * background_rate * scale / error - u * u / tb_safe, 0.0)
    return loglike, d_m, d_ts, d_tb, None


_gstat_loglike = jax.jit(_with_profile_partials(_gstat_parts))


def gstat(S, B, m, ts, tb, sigma_S, sigma_B) -> Result:
    """Gaussian (chi-square) likelihood of the net counts, errors added in quadrature."""
    S, B, m, ts, tb, sigma_S, sigma_B = _floats(S, B, m, ts, tb, sigma_S, sigma_B)
    return (_gstat_loglike(S, B, m, ts, tb, sigma_S, sigma_B),
            _sign(_gstat_net(S, B, m, ts, tb)[0]))


chi2 = gstat

class Statistic(NamedTuple):
    """One entry of the registry of statistics (the model: optax's ``GradientTransformation``,
    a named tuple of functions and facts).

    **Fields:**

    - `name`: the name a unit is given (``stat="pgstat"``).
    - `per_bin`: ``(S, B, m, ts, tb, sigma_S, sigma_B) -> (loglike, sign)`` per bin.
    - `background`: how the background counts are distributed, ``"poisson"`` or
        ``"gaussian"``: grouping measures significance with Li & Ma or with a Gaussian
        background, `simulate` draws backgrounds so, and a Gaussian background keeps its file's
        errors.
    - `uses_background`: whether the likelihood reads the background at all (`pstat` does not).
    - `profiled`: whether the background rate is a profiled nuisance parameter (PGSTAT,
        W-stat); only these give significance-based upper limits.
    - `needs_errors`: whether every group needs a non-zero error (the Gaussian statistics).
    - `without_background`: the per-bin function for a unit with no background file, or `None`
        for `per_bin` itself (W-stat falls back to Cash, as XSPEC does).
    """

    name: str
    per_bin: Callable[..., Result]
    background: str
    uses_background: bool = True
    profiled: bool = False
    needs_errors: bool = False
    without_background: Callable[..., Result] | None = None


def _registry(*entries: Statistic) -> dict[str, Statistic]:
    return {entry.name: entry for entry in entries}


STATISTICS: dict[str, Statistic] = _registry(
    Statistic("pgstat", pgstat, "gaussian", profiled=True),
    Statistic("wstat", wstat, "poisson", profiled=True, without_background=cash),
    Statistic("cstat", wstat, "poisson", profiled=True, without_background=cash),
    Statistic("ppstat", wstat, "poisson", profiled=True, without_background=cash),
    Statistic("pstat", pstat, "poisson", uses_background=False),
    Statistic("chi2", gstat, "gaussian", needs_errors=True),
    Statistic("gstat", gstat, "gaussian", needs_errors=True),
)
"""Every statistic by name. ``wstat`` is XSPEC's name for the W-statistic; ``cstat`` and
``ppstat`` are bayspec's names for the same. Adding a statistic is one entry here."""


def statistic(name: str) -> Statistic:
    """The registry entry of statistic `name` (a clear `ValueError` for an unknown name)."""
    if not isinstance(name, str) or name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; choose one of {list(STATISTICS)}")
    return STATISTICS[name]


def per_bin(stat: str, S, B, m, ts, tb, sigma_S, sigma_B, has_background=True) -> Result:
    """``(loglike, sign)`` per bin for statistic `stat`, for a finite model `m`.

    Bins without a background file (`has_background` False: a bool or a per-bin mask) use the
    entry's `without_background` function where it has one (Cash for W-stat, as XSPEC).
    """
    entry = statistic(stat)
    loglike, sign = entry.per_bin(S, B, m, ts, tb, sigma_S, sigma_B)
    if entry.without_background is not None and has_background is not True:
        alone_loglike, alone_sign = entry.without_background(S, B, m, ts, tb, sigma_S, sigma_B)
        loglike = jnp.where(has_background, loglike, alone_loglike)
        sign = jnp.where(has_background, sign, alone_sign)
    return loglike, sign


def pointwise(stat: str, S, B, m, ts, tb, sigma_S, sigma_B, has_background=True) -> Result:
    """``(loglike, sign)`` per bin for statistic `stat` (see `per_bin`).

    A non-finite model value anywhere in the bins (the last axis) makes every bin ``-inf`` (the
    whole unit is rejected, as in bayspec) without NaN gradients.
    """
    finite = jnp.isfinite(m)
    all_finite = jnp.all(finite, axis=-1, keepdims=True)
    loglike, sign = per_bin(stat, S, B, jnp.where(finite, m, 0.0), ts, tb, sigma_S, sigma_B,
                            has_background)
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
