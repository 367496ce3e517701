"""Detection significance of source counts over a noisy background, and its inverse.

Two likelihood-ratio significances, as in bayspec 0.4.5 (which follows Vianello 2018,
ApJS 236, 17, and Li & Ma 1983, ApJ 272, 317):

- `pgsig`: Poisson source counts over a background known up to a Gaussian error (the model
  behind XSPEC's PGSTAT);
- `ppsig`: Poisson source counts over a Poisson background measured in an "off" region and
  scaled by `alpha` (Li & Ma eq. 17), optionally with a systematic uncertainty on `alpha`
  (Vianello eq. 7: a bound `k`; Vianello eq. 9: a Gaussian of width `sigma`, profiled out).

Both return a signed significance: the square root of the likelihood-ratio test statistic,
negative when the counts fall below the background expectation.

The forward functions are written with `jax.numpy`: they broadcast, `jit`, `vmap` and `grad`,
and compute in the caller's precision (float64 under `jax_enable_x64`, float32 otherwise).
The inverses `pgsig_inv` and `ppsig_inv` are host-side numpy (float64), for use when
containers are built; they bisect the same formulas, evaluated with numpy.

`pgsig_host` and `ppsig_host` take and return Python floats, with bayspec 0.4.5's own
arithmetic (no systematics), for grouping: it calls them once per candidate group in Python
loops, and reproduces bayspec's grouping flags bit for bit. They agree with `pgsig` and
`ppsig` except where bayspec's form cancels: near a significance of 0 (`pgsig_host` is off by
up to ~1e-7 there), and in `pgsig_host` at `b == sigma^2` with tiny `n` (-inf).

Internally each formula is written once against an array namespace `xp` (`jax.numpy` or
`numpy`) so that the differentiable forward and the host-side root finder agree.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = ["pgsig", "pgsig_host", "pgsig_inv", "ppsig", "ppsig_host", "ppsig_inv"]

# Newton steps polishing the closed-form roots of the cubic of Vianello eq. 9.
_NEWTON_STEPS = 2

# Host-side bisection: stop when no float lies between the bracket ends (at most ~1100
# halvings from any float64 bracket down to the subnormals).
_MAX_BISECTIONS = 2200
_MAX_DOUBLINGS = 100
_MAX_INTEGER_STEPS = 64

# Terms of the series for the Poisson deviance near its zero (|v| < 0.1: 1e-2 per term).
_SERIES_TERMS = 9


# ---------------------------------------------------------------------------------------------
# Formulas, written once for an array namespace `xp` (jax.numpy or numpy).
# ---------------------------------------------------------------------------------------------


def _stop_gradient(xp: types.ModuleType, x):
    return jax.lax.stop_gradient(x) if xp is jnp else x


def _xlogy(xp: types.ModuleType, x, y):
    """`x * log(y)`, 0 where `x == 0` (value and derivative), whatever `y` is there."""
    nonzero = x != 0
    safe_y = xp.where(nonzero, y, 1.0)
    return xp.where(nonzero, x * xp.log(safe_y), 0.0)


def _positive_or_one(xp: types.ModuleType, x):
    return xp.where(x > 0, x, 1.0)


def _signed_root(xp: types.ModuleType, ts, nonnegative, zero_excess, variance):
    """Signed square root of a test statistic, with a finite derivative where it is zero.

    `nonnegative` selects the sign. Where `ts` is 0 the value is replaced by its first-order
    expansion `zero_excess / sqrt(variance)` (which is 0 there), so that derivatives are the
    slope of the significance instead of `0 * inf`.
    """
    positive = ts > 0
    root = xp.sqrt(xp.where(positive, ts, 1.0))
    signed = xp.where(nonnegative, root, -root)
    linear = zero_excess / xp.sqrt(_positive_or_one(xp, variance))
    return xp.where(positive, signed, linear)


def _poisson_deviance(xp: types.ModuleType, x, mean):
    """`x log(x / mean) - x + mean` (>= 0), accurate also where `x` is close to `mean`.

    Near `mean` (within 10% of `x + mean`) it is summed as the series of Loader's `bd0`,
    `(x - mean) v + 2 x (v^3 / 3 + v^5 / 5 + ...)` with `v = (x - mean) / (x + mean)`, which
    avoids the cancellation of the direct form. `0` at `x = mean = 0`, `mean` at `x = 0`,
    `inf` at `mean = 0 < x`.
    """
    difference = x - mean
    near = xp.abs(difference) < 0.1 * (x + mean)
    v = difference / xp.where(near, x + mean, 1.0)
    v2 = v * v
    power = v
    tail = xp.zeros_like(v)
    for j in range(1, _SERIES_TERMS + 1):
        power = power * v2
        tail = tail + power / (2 * j + 1)
    series = difference * v + 2.0 * x * tail

    has_mean = mean > 0
    ratio = xp.where(has_mean, x / _positive_or_one(xp, mean), xp.inf)
    direct = _xlogy(xp, x, ratio) - difference
    return xp.where(near, series, xp.maximum(direct, 0.0))


def _gaussian_background_ts(xp: types.ModuleType, n, b, sigma):
    """Test statistic of `n` Poisson counts over a background `b +- sigma` (Gaussian)."""
    s2 = sigma * sigma
    # Null-hypothesis background: the non-negative root of B^2 - (b - s2) B - n s2 = 0,
    # taken in the form free of cancellation on each side of b = s2.
    c = b - s2
    disc = c * c + 4.0 * n * s2
    has_disc = disc > 0
    sqrt_disc = xp.where(has_disc, xp.sqrt(xp.where(has_disc, disc, 1.0)), 0.0)
    upper_form = c >= 0
    denominator = xp.where(upper_form, 1.0, sqrt_disc - c)
    background = xp.where(upper_form, 0.5 * (c + sqrt_disc), 2.0 * n * s2 / denominator)

    has_sigma = s2 > 0
    gaussian = xp.where(has_sigma, (b - background) ** 2 / (2.0 * _positive_or_one(xp, s2)), 0.0)
    return 2.0 * (_poisson_deviance(xp, n, background) + gaussian)


def _pgsig(xp: types.ModuleType, n, b, sigma):
    ts = _gaussian_background_ts(xp, n, b, sigma)
    variance = xp.maximum(b, 0.0) + sigma * sigma
    return _signed_root(xp, ts, n >= b, n - b, variance)


def _li_ma_ts(xp: types.ModuleType, n, b, alpha):
    """Li & Ma (1983) eq. 17 squared: the Poisson on/off likelihood-ratio test statistic.

    Written as `2 [d(n, alpha m) + d(b, m)]`, `d` the Poisson deviance and
    `m = (n + b) / (1 + alpha)` the null-hypothesis off-region mean; the `- x + mean` parts
    cancel, leaving `2 [n log((1 + alpha) n / (alpha (n + b))) + b log((1 + alpha) b / (n + b))]`.
    """
    off_mean = (n + b) / (1.0 + alpha)
    return 2.0 * (_poisson_deviance(xp, n, alpha * off_mean) + _poisson_deviance(xp, b, off_mean))


def _cubic_real_roots(xp: types.ModuleType, c2, c1, c0):
    """The real roots of `x^3 + c2 x^2 + c1 x + c0`, stacked on a new last axis of size 3.

    Closed form (trigonometric for three real roots, Cardano's in its cancellation-free form
    for one, then repeated), each root polished by Newton steps on the cubic itself.
    """
    shift = c2 / 3.0
    p = c1 - c2 * shift
    q = (2.0 * shift * shift - c1) * shift + c0
    half_q = 0.5 * q
    disc = half_q * half_q + (p / 3.0) ** 3
    three = disc < 0

    # Three real roots: t_j = 2 r cos((acos(-q / (2 r^3)) - 2 pi j) / 3), r = sqrt(-p / 3).
    r = xp.sqrt(xp.where(three, -p / 3.0, 1.0))
    angle = xp.arccos(xp.clip(xp.where(three, -half_q / r**3, 0.0), -1.0, 1.0)) / 3.0
    trig = [2.0 * r * xp.cos(angle - 2.0 * np.pi * j / 3.0) for j in range(3)]

    # One real root: w = cbrt(-q/2 -+ sqrt(disc)) of the larger modulus, t = w - p / (3 w).
    sqrt_disc = xp.sqrt(xp.where(three, 0.0, disc))
    w = xp.cbrt(-half_q - xp.where(q >= 0, sqrt_disc, -sqrt_disc))
    has_w = w != 0
    single = xp.where(has_w, w - p / (3.0 * xp.where(has_w, w, 1.0)), 0.0)

    x = xp.where(three[..., None], xp.stack(trig, axis=-1), single[..., None]) - shift[..., None]
    c2, c1, c0 = c2[..., None], c1[..., None], c0[..., None]
    for _ in range(_NEWTON_STEPS):
        value = ((x + c2) * x + c1) * x + c0
        slope = (3.0 * x + 2.0 * c2) * x + c1
        has_slope = slope != 0
        step = xp.where(has_slope, value / xp.where(has_slope, slope, 1.0), 0.0)
        x = xp.where(xp.isfinite(step), x - step, x)
    return x


def _systematic_scale(xp: types.ModuleType, n, b, alpha, s2):
    """Vianello (2018) eq. 9: the scale `x = 1 + k >= 0` of `alpha` that the null fits.

    A Gaussian systematic `k ~ N(0, sigma)` on `alpha` adds `(x - 1)^2 / sigma^2` to the test
    statistic of Li & Ma at `alpha x` (the Poisson background profiles out in closed form).
    The stationary points of that objective are the roots of the cubic
    `alpha x^3 + (1 - alpha) x^2 + (sigma^2 alpha b - 1) x - sigma^2 n`, and its minimum lies
    between 1 and `x0 = n / (alpha b)` (where the on/off ratio is matched), and when
    `n > alpha b` also below `1 + sigma^2 (n - alpha b) / (1 + alpha)`. The global minimum is
    the best of the real roots in that bracket and the bracket's ends (unlike bayspec's local
    descent from x = 1, which can stall). Not differentiated: the caller re-evaluates the
    objective at this fixed point, which gives exact derivatives (envelope theorem).
    """
    n, b, alpha, s2 = (_stop_gradient(xp, v) for v in (n, b, alpha, s2))
    expected = alpha * b
    has_expected = expected > 0
    matched = xp.where(has_expected, n / _positive_or_one(xp, expected), xp.inf)
    excess = n > expected
    cap = 1.0 + s2 * (n - expected) / (1.0 + alpha)
    lower = xp.where(excess, 1.0, xp.where(has_expected, matched, 1.0))
    upper = xp.where(excess, xp.minimum(matched, cap), 1.0)

    safe_alpha = _positive_or_one(xp, alpha)
    roots = _cubic_real_roots(
        xp, (1.0 - alpha) / safe_alpha, (s2 * expected - 1.0) / safe_alpha, -s2 * n / safe_alpha
    )
    lower, upper = lower[..., None], upper[..., None]
    candidates = xp.concatenate(
        [lower, upper, xp.clip(xp.where(xp.isnan(roots), lower, roots), lower, upper)], axis=-1
    )
    n, b, alpha, s2 = n[..., None], b[..., None], alpha[..., None], s2[..., None]
    # Choosing among candidates does not need the deviance's accurate form near its zero.
    alpha = alpha * candidates
    total = _positive_or_one(xp, n + b)
    on_ratio = (1.0 + alpha) * n / (_positive_or_one(xp, alpha) * total)
    on_term = _xlogy(xp, n, xp.where(alpha > 0, on_ratio, xp.inf))
    off_term = _xlogy(xp, b, (1.0 + alpha) * b / total)
    objective = 2.0 * (on_term + off_term) + (candidates - 1.0) ** 2 / s2
    objective = xp.where(xp.isnan(objective), xp.inf, objective)
    index = xp.argmin(objective, axis=-1)[..., None]
    return _stop_gradient(xp, xp.take_along_axis(candidates, index, axis=-1)[..., 0])


def _ppsig(xp: types.ModuleType, n, b, alpha, sigma, k, with_systematic: bool):
    """Li & Ma at an effective `alpha` (Vianello eq. 7 and 9 only change that `alpha` and,
    for eq. 9, add a penalty); the sign is always that of `n - alpha b`."""
    expected = alpha * b
    nonnegative = n >= expected
    # Li & Ma is eq. 7 with k = 0 (which also makes d/dk at k = 0 the one-sided derivative).
    effective_alpha = alpha * (1.0 + k)
    penalty = xp.zeros_like(n)
    variance = effective_alpha * (n + b)
    if with_systematic:
        gaussian = sigma > 0
        s2 = _positive_or_one(xp, sigma * sigma)
        scale = _systematic_scale(xp, n, b, alpha, s2)
        effective_alpha = xp.where(gaussian, alpha * scale, effective_alpha)
        penalty = xp.where(gaussian, (scale - 1.0) ** 2 / s2, penalty)
        # Near n = alpha b the scale is ~1, and sigma adds (alpha b sigma)^2 to the variance.
        variance = xp.where(gaussian, alpha * (n + b) + (expected * sigma) ** 2, variance)
        zero_expected = xp.where(gaussian, expected, effective_alpha * b)
    else:
        zero_expected = effective_alpha * b

    ts = xp.maximum(_li_ma_ts(xp, n, b, effective_alpha) + penalty, 0.0)
    result = _signed_root(xp, ts, nonnegative, n - zero_expected, variance)
    invalid = ~(alpha > 0) | ~(sigma >= 0) | ~(k >= 0)
    return xp.where(invalid, xp.nan, result)


# ---------------------------------------------------------------------------------------------
# Public forward functions (jax).
# ---------------------------------------------------------------------------------------------


def _as_float_arrays(*values):
    dtype = jnp.result_type(*values, float)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return jnp.broadcast_arrays(*(jnp.asarray(v, dtype=dtype) for v in values))


def _any_positive(value) -> bool:
    """Whether `value` may hold a positive entry (True for traced values)."""
    try:
        return bool(np.any(np.asarray(value) > 0))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return True


_pgsig_jit = jax.jit(lambda n, b, sigma: _pgsig(jnp, n, b, sigma))
_ppsig_jit = jax.jit(
    lambda n, b, alpha, sigma, k, with_systematic: _ppsig(
        jnp, n, b, alpha, sigma, k, with_systematic
    ),
    static_argnums=5,
)


def pgsig(n: ArrayLike, b: ArrayLike, sigma: ArrayLike) -> Float[Array, "*batch"]:
    """Significance of `n` counts over a background estimate `b` with Gaussian error `sigma`.

    The counts are Poisson with mean `B` under the null hypothesis, and `b` is a Gaussian
    measurement of `B` with standard deviation `sigma` (the model of XSPEC's PGSTAT). `B` is
    profiled out, and the result is the signed square root of the likelihood-ratio test
    statistic: positive when `n >= b`, negative when `n < b`, 0 when `n == b`.

    `sigma == 0` gives the limit of a known background, `sqrt(2 (n log(n / b) - n + b))` with
    its sign (`+inf` for `n > 0` over `b == 0`); bayspec 0.4.5 returns NaN there.

    Finite, NaN-free gradients wherever the value is finite with `n >= 0` (including
    `n == 0`, `b == 0`, `n == b` and `sigma == 0`). The derivative in `n` at `n == 0`
    diverges logarithmically; the returned one takes `0 log 0` as constant.

    **Arguments:**

    - `n`: observed counts in the source region (`>= 0`).
    - `b`: background estimate, in counts in the source region.
    - `sigma`: standard deviation of `b` (its sign is irrelevant).

    All three broadcast together.

    **Returns:**

    The signed significance, shape the broadcast shape of the arguments, in the floating
    dtype of the arguments (the default float dtype for integers and Python numbers).
    """
    return _pgsig_jit(*_as_float_arrays(n, b, sigma))


def ppsig(
    n: ArrayLike,
    b: ArrayLike,
    alpha: ArrayLike,
    sigma: ArrayLike = 0.0,
    k: ArrayLike = 0.0,
) -> Float[Array, "*batch"]:
    """Significance of `n` on-region counts over `b` off-region counts scaled by `alpha`.

    Both counts are Poisson; the background expected in the source region is `alpha * b`.
    Which formula applies is chosen element by element, as in bayspec 0.4.5:

    - `sigma == 0` and `k == 0`: Li & Ma (1983) eq. 17,
      `sqrt(2 [n log((1 + alpha) n / (alpha (n + b))) + b log((1 + alpha) b / (n + b))])`;
    - `sigma == 0` and `k > 0`: Vianello (2018) eq. 7, the same with `alpha (1 + k)` in
      place of `alpha` (`k` bounds the fractional systematic error of `alpha`);
    - `sigma > 0`: Vianello (2018) eq. 9, a Gaussian systematic error of width `sigma` on the
      scale of `alpha`, profiled out numerically (`k` is then ignored).

    The sign is that of `n - alpha * b` (`+` when equal) in every case, so under eq. 7 counts
    between `alpha b` and `alpha (1 + k) b` get a positive significance that decreases with
    `n`, as in the original. `alpha <= 0`, `sigma < 0` or `k < 0` give NaN (the original
    returned 0 for negative `sigma` or `k`).

    Eq. 9 is solved exactly (the scale factor of `alpha` at the global optimum, from the real
    roots of a cubic); the original's local descent (`scipy.optimize.minimize`, tol 1e-3)
    agrees to ~1e-5 where it converges, and stalls in places (e.g. `n == 0` with large
    `sigma`, or `n == b == 0` where it returns 44.7). Its search is compiled only when
    `sigma` may be positive: always for a traced `sigma`, never for a concrete 0.

    Finite, NaN-free gradients everywhere with `n, b >= 0` and valid parameters (including
    `n == alpha b`, where the gradient is the slope through 0). The derivatives in `n` at
    `n == 0` and in `b` at `b == 0` diverge logarithmically; the returned ones take `0 log 0`
    as constant. `ppsig` jumps where `sigma` becomes positive with `k > 0` (eq. 7 to eq. 9):
    it has no derivative in `sigma` there.

    **Arguments:**

    - `n`: counts in the source (on) region (`>= 0`).
    - `b`: counts in the background (off) region (`>= 0`).
    - `alpha`: ratio of source to background exposure (efficiency), `> 0`.
    - `sigma`: Gaussian systematic error on the scale of `alpha` (eq. 9); 0 for none.
    - `k`: bound on the fractional systematic error of `alpha` (eq. 7); 0 for none.

    All five broadcast together.

    **Returns:**

    The signed significance, shape the broadcast shape of the arguments, in the floating
    dtype of the arguments (the default float dtype for integers and Python numbers).
    """
    with_systematic = _any_positive(sigma)
    return _ppsig_jit(*_as_float_arrays(n, b, alpha, sigma, k), with_systematic)


# ---------------------------------------------------------------------------------------------
# Host-side scalars with bayspec 0.4.5's arithmetic (for grouping).
# ---------------------------------------------------------------------------------------------


def _clip_rounding(log_ratio: float) -> float:
    """A log-likelihood ratio is >= 0; clip values that rounding pushed below (keeps NaN)."""
    return 0.0 if log_ratio < 0 else log_ratio


def ppsig_host(n: float, b: float, alpha: float) -> float:
    """Li & Ma (1983) eq. 17 significance of `n` counts over `alpha * b`, as bayspec computes it.

    bayspec 0.4.5's `ppsig` without systematics, operation for operation (both counts nudged
    by 1e-25), except that a likelihood ratio rounding below zero gives 0 instead of NaN.

    **Arguments:**

    - `n`: counts in the source (on) region.
    - `b`: counts in the background (off) region.
    - `alpha`: ratio of source to background exposure (`> 0`).

    **Returns:**

    The signed significance (a Python float; positive when `n >= alpha * b`).
    """
    sign = 1.0 if n >= alpha * b else -1.0
    on = np.float64(n) + 1e-25
    off = np.float64(b) + 1e-25
    total = on + off
    alpha_plus_one = alpha + 1
    log_ratio = on * np.log(alpha_plus_one / alpha * (on / total))
    log_ratio += off * np.log(alpha_plus_one * (off / total))
    return sign * float(np.sqrt(2 * _clip_rounding(log_ratio)))


def pgsig_host(n: float, b: float, sigma: float) -> float:
    """Significance of `n` Poisson counts over a background `b +- sigma`, as bayspec computes it.

    bayspec 0.4.5's `pgsig` operation for operation (the background profiled at its maximum
    likelihood under the null hypothesis), except that a likelihood ratio rounding below zero
    gives 0 instead of NaN.

    **Arguments:**

    - `n`: observed counts in the source region.
    - `b`: background estimate, in counts in the source region.
    - `sigma`: standard deviation of `b` (`!= 0`).

    **Returns:**

    The signed significance (a Python float; positive when `n >= b`).
    """
    n, b, s = np.float64(n), np.float64(b), np.float64(sigma)
    sign = 1.0 if n >= b else -1.0
    root = np.sqrt(b**2 - 2 * b * s**2 + 4 * n * s**2 + s**4)
    b_null = max(0.5 * (b - s**2 + root), 0.0)
    n_log_term = 0.0 if n == 0 else n * np.log(n / b_null)
    log_ratio = n_log_term + (b - b_null) ** 2 / (2 * s**2) + b_null - n
    return float(np.sqrt(2) * np.sqrt(_clip_rounding(log_ratio)) * sign)


# ---------------------------------------------------------------------------------------------
# Inverses (host-side numpy, float64).
# ---------------------------------------------------------------------------------------------


def _pgsig_numpy(n, b, sigma):
    with np.errstate(all="ignore"):
        return _pgsig(np, n, b, sigma)


def _ppsig_numpy(n, b, alpha, sigma, k):
    with np.errstate(all="ignore"):
        return _ppsig(np, n, b, alpha, sigma, k, with_systematic=bool(np.any(sigma > 0)))


def _inverse_inputs(sig, params, integer):
    if not isinstance(integer, (bool, np.bool_)):
        raise ValueError(f"integer must be a boolean, got {integer!r}")
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (sig, *params)))
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("inverse-significance inputs must be finite")
    return arrays[0].shape, [np.array(a.ravel(), dtype=np.float64) for a in arrays]


def _first(values, mask):
    return float(values[np.flatnonzero(mask)[0]])


def _bisect(forward, target, low, high, active):
    """Smallest float bracket end `high` with `forward(high) >= target`, where
    `forward(low) < target <= forward(high)` and `forward` increases on `[low, high]`."""
    low, high = low.copy(), high.copy()
    for _ in range(_MAX_BISECTIONS):
        middle = 0.5 * (low + high)
        open_ = active & (middle > low) & (middle < high)
        if not np.any(open_):
            break
        below = forward(middle) < target
        low = np.where(open_ & below, middle, low)
        high = np.where(open_ & ~below, middle, high)
    return high


def _invert(forward, sig, zero_point, negative_upper, upper_is_zero, integer):
    """Counts `n >= 0` at which the increasing branch of `forward` reaches `sig`.

    `sig >= 0` is solved on `[zero_point, inf)` (with `forward(zero_point)` taken as 0),
    `sig < 0` on `[0, negative_upper]` (where `forward(negative_upper)` is taken as 0 when
    `upper_is_zero`). With `integer`, the smallest integer count on that branch whose
    significance reaches `sig`.
    """
    negative = sig < 0
    positive = sig > 0

    unreachable = negative & (negative_upper <= 0)
    if np.any(unreachable):
        raise ValueError(
            f"sig={_first(sig, unreachable)} is not reachable for non-negative counts"
        )
    at_zero = forward(np.zeros_like(sig))
    at_upper = np.where(upper_is_zero, 0.0, forward(np.maximum(negative_upper, 0.0)))
    unreachable = negative & ((sig < at_zero) | (sig > at_upper))
    if np.any(unreachable):
        raise ValueError(
            f"sig={_first(sig, unreachable)} is not reachable on the low-count branch"
        )

    # Bracket the positive targets by doubling above the zero point.
    high = np.maximum(zero_point + 1.0, 2.0 * zero_point)
    for _ in range(_MAX_DOUBLINGS):
        short = positive & (forward(high) < sig)
        if not np.any(short):
            break
        high = np.where(short, np.maximum(high + 1.0, 2.0 * high), high)
    else:
        raise ValueError(f"could not bracket sig={_first(sig, short)} on the high-count branch")

    low = np.where(negative, 0.0, zero_point)
    high = np.where(negative, negative_upper, high)
    hit_low = negative & (sig == at_zero)
    hit_high = negative & (sig == at_upper)
    root = _bisect(forward, sig, low, high, (positive | negative) & ~hit_low & ~hit_high)
    root = np.where(sig == 0, zero_point, root)
    root = np.where(hit_high, negative_upper, root)
    root = np.where(hit_low, 0.0, root)
    if not integer:
        return root

    # Branch in integers: [ceil(zero_point), inf) or [0, floor(negative_upper)].
    first = np.where(negative, 0.0, np.maximum(np.ceil(zero_point), 0.0))
    last = np.where(negative, np.floor(negative_upper), np.inf)

    def reached(count):
        value = np.where(~negative & (count == zero_point), 0.0, forward(count))
        return value >= sig

    # The root is accurate, so these loops take a step or two.
    count = np.maximum(first, np.floor(root))
    for _ in range(_MAX_INTEGER_STEPS):
        short = ~reached(count)
        if not np.any(short):
            break
        count = np.where(short, count + 1.0, count)
        beyond = short & (count > last)
        if np.any(beyond):
            raise ValueError(
                f"sig={_first(sig, beyond)} is not reachable at an integer count on this branch"
            )
    else:
        raise ValueError(f"no integer count found for sig={_first(sig, short)}")
    for _ in range(_MAX_INTEGER_STEPS):
        lower = (count > first) & reached(np.maximum(count - 1.0, first))
        if not np.any(lower):
            break
        count = np.where(lower, count - 1.0, count)
    return count.astype(np.int64)


def _shape_result(values, shape):
    values = values.reshape(shape)
    return values.item() if values.ndim == 0 else values


def pgsig_inv(
    sig: ArrayLike, b: ArrayLike, sigma: ArrayLike, integer: bool = False
) -> float | int | Float[np.ndarray, "*batch"] | Int[np.ndarray, "*batch"]:
    """Source counts `n` at which `pgsig(n, b, sigma)` equals `sig`.

    `sig >= 0` is solved on `n >= b`, `sig < 0` on `0 <= n < b`. Host-side numpy in float64,
    by bisection to full float64 resolution (not differentiable).

    **Arguments:**

    - `sig`: target signed significance.
    - `b`: background estimate (`>= 0`).
    - `sigma`: its Gaussian standard deviation (`> 0`).
    - `integer`: if `True`, return the smallest non-negative integer count on that branch
      whose significance reaches `sig`; otherwise the real-valued root.

    `sig`, `b` and `sigma` broadcast together; they must be finite.

    **Returns:**

    The counts, a Python `float` (`int` with `integer=True`) for scalar arguments, otherwise
    a numpy array of the broadcast shape, float64 (int64 with `integer=True`).

    **Raises:**

    `ValueError` for invalid arguments, or a negative `sig` that no count reaches (below
    `pgsig(0, b, sigma)`, or any negative `sig` over `b == 0`).
    """
    shape, (sig_, b_, sigma_) = _inverse_inputs(sig, (b, sigma), integer)
    if np.any(b_ < 0):
        raise ValueError("b must be non-negative")
    if np.any(sigma_ <= 0):
        raise ValueError("sigma must be positive")

    def forward(n):
        return _pgsig_numpy(n, b_, sigma_)

    counts = _invert(forward, sig_, b_, b_, np.ones_like(b_, dtype=bool), integer)
    return _shape_result(counts, shape)


def ppsig_inv(
    sig: ArrayLike,
    b: ArrayLike,
    alpha: ArrayLike,
    sigma: ArrayLike = 0.0,
    k: ArrayLike = 0.0,
    integer: bool = False,
) -> float | int | Float[np.ndarray, "*batch"] | Int[np.ndarray, "*batch"]:
    """Source counts `n` at which `ppsig(n, b, alpha, sigma, k)` equals `sig`.

    `sig >= 0` is solved on `n >= alpha b`, `sig < 0` on `0 <= n < alpha b`. Under Vianello
    eq. 7 (`sigma == 0`, `k > 0`) the positive branch starts at `alpha (1 + k) b`, and
    negative targets between `ppsig` just below `alpha b` and 0 are unreachable (as in
    bayspec 0.4.5). Host-side numpy in float64, by bisection to full float64 resolution.

    **Arguments:**

    - `sig`: target signed significance.
    - `b`: background (off-region) counts (`>= 0`).
    - `alpha`: ratio of source to background exposure (`> 0`).
    - `sigma`: Gaussian systematic error on the scale of `alpha` (`>= 0`).
    - `k`: bound on the fractional systematic error of `alpha` (`>= 0`).
    - `integer`: if `True`, return the smallest non-negative integer count on that branch
      whose significance reaches `sig`; otherwise the real-valued root.

    `sig`, `b`, `alpha`, `sigma` and `k` broadcast together; they must be finite.

    **Returns:**

    The counts, a Python `float` (`int` with `integer=True`) for scalar arguments, otherwise
    a numpy array of the broadcast shape, float64 (int64 with `integer=True`).

    **Raises:**

    `ValueError` for invalid arguments or a target that its branch cannot reach.
    """
    shape, (sig_, b_, alpha_, sigma_, k_) = _inverse_inputs(sig, (b, alpha, sigma, k), integer)
    if np.any(b_ < 0):
        raise ValueError("b must be non-negative")
    if np.any(alpha_ <= 0):
        raise ValueError("alpha must be positive")
    if np.any(sigma_ < 0):
        raise ValueError("sigma must be non-negative")
    if np.any(k_ < 0):
        raise ValueError("k must be non-negative")

    def forward(n):
        return _ppsig_numpy(n, b_, alpha_, sigma_, k_)

    bounded = (sigma_ == 0) & (k_ > 0)
    expected = alpha_ * b_
    zero_point = np.where(bounded, expected * (1.0 + k_), expected)
    negative_upper = np.where(bounded, np.nextafter(expected, 0.0), expected)
    counts = _invert(forward, sig_, zero_point, negative_upper, ~bounded, integer)
    return _shape_result(counts, shape)
