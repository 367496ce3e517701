"""Tests of bayspec_jax.significance: pgsig, ppsig and their inverses.

Reference numbers marked "bayspec 0.4.5" were produced by the original package
(`bayspec.util.significance`, version 0.4.5) with the call quoted beside each, e.g.
`/tmp/venv-ref/bin/python -c "from bayspec.util.significance import *; print(pgsig(10, 5, 1))"`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayspec_jax.significance import (
    pgsig,
    pgsig_host,
    pgsig_inv,
    ppsig,
    ppsig_host,
    ppsig_inv,
)

RTOL = 1e-10
ATOL = 1e-12


# ---------------------------------------------------------------------------------------------
# Independent formulas (written out here, not taken from the module).
# ---------------------------------------------------------------------------------------------


def li_ma_eq17(n, b, alpha):
    """Li & Ma (1983) eq. 17, signed by n - alpha b."""
    n, b, alpha = (np.asarray(v, dtype=float) for v in (n, b, alpha))
    with np.errstate(all="ignore"):
        on = np.where(n > 0, n * np.log((1 + alpha) / alpha * (n / (n + b))), 0.0)
        off = np.where(b > 0, b * np.log((1 + alpha) * (b / (n + b))), 0.0)
    return np.where(n >= alpha * b, 1.0, -1.0) * np.sqrt(2 * np.maximum(on + off, 0.0))


def gaussian_background_significance(n, b, sigma):
    """Profile likelihood of Poisson(n | B) x Normal(b | B, sigma) over B, signed by n - b."""
    n, b, sigma = (np.asarray(v, dtype=float) for v in (n, b, sigma))
    # dlogL/dB = 0  <=>  B^2 - (b - sigma^2) B - n sigma^2 = 0, positive root.
    B = 0.5 * (b - sigma**2 + np.sqrt((b - sigma**2) ** 2 + 4 * n * sigma**2))
    with np.errstate(all="ignore"):
        poisson = np.where(n > 0, n * np.log(n / B), 0.0) - n + B
    ts = 2 * (poisson + (b - B) ** 2 / (2 * sigma**2))
    return np.where(n >= b, 1.0, -1.0) * np.sqrt(np.maximum(ts, 0.0))


def systematic_brute_force(n, b, alpha, sigma):
    """Vianello (2018) eq. 9 by brute force: minimise over the systematic scale x = 1 + k on
    a dense grid, refined twice around the best point."""

    def ts(x):
        alpha_x = alpha * x
        with np.errstate(all="ignore"):
            on = np.where(n > 0, n * np.log((1 + alpha_x) * n / (alpha_x * (n + b))), 0.0)
            off = np.where(b > 0, b * np.log((1 + alpha_x) * b / (n + b)), 0.0)
        return np.where(np.isnan(on + off), np.inf, 2 * (on + off) + (x - 1) ** 2 / sigma**2)

    x = np.unique(np.concatenate([np.linspace(0.0, 3.0, 30_001), np.geomspace(1e-9, 1e4, 30_001)]))
    for _ in range(3):
        values = ts(x)
        i = int(np.argmin(values))
        best = values[i]
        x = np.linspace(x[max(i - 1, 0)], x[min(i + 1, len(x) - 1)], 2001)
    return (1.0 if n >= alpha * b else -1.0) * math.sqrt(max(best, 0.0))


def at_each(f, *args):
    """`f` called element by element with Python floats (the calls share one compilation)."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    values = [float(f(*map(float, v))) for v in zip(*(a.ravel() for a in arrays))]
    return np.reshape(values, arrays[0].shape)


# ---------------------------------------------------------------------------------------------
# Forward functions against bayspec 0.4.5.
# ---------------------------------------------------------------------------------------------

# (arguments, value from bayspec 0.4.5 `pgsig(*arguments)`)
PGSIG_ORACLE = [
    ((10, 5, 1), 1.769212839913333),  # pgsig(10, 5, 1)
    ((0, 5, 1), -3.0),  # pgsig(0, 5, 1)
    ((0, 0.5, 1), -0.5000000000000001),  # pgsig(0, 0.5, 1)
    ((3, 0, 1), 1.8186442213490799),  # pgsig(3, 0, 1)
    ((2.5, 7.2, 3.1), -1.3072361772732823),  # pgsig(2.5, 7.2, 3.1)
    ((1234, 1100, 25), 3.1579102333583013),  # pgsig(1234, 1100, 25)
    ((0, 0, 1), 0.0),  # pgsig(0, 0, 1)
    ((5, 5, 1), 0.0),  # pgsig(5, 5, 1)
]

# (arguments (n, b, alpha, sigma, k), value from bayspec 0.4.5 `ppsig(n, b, alpha, sigma=, k=)`)
PPSIG_ORACLE = [
    ((10, 5, 1, 0, 0), 1.303453247321887),  # ppsig(10, 5, 1)
    ((0, 5, 0.5, 0, 0), -2.013616418556832),  # ppsig(0, 5, 0.5)
    ((7, 0, 0.3, 0, 0), 4.530862938018317),  # ppsig(7, 0, 0.3)
    ((123, 456, 0.2, 0, 0), 2.8587783921448744),  # ppsig(123, 456, 0.2)
    ((3, 40, 0.05, 0, 0), 0.6396623104203483),  # ppsig(3, 40, 0.05)
    ((10, 5, 1, 0, 0.1), 1.1209334043333854),  # ppsig(10, 5, 1, k=0.1)
    ((5.2, 5, 1, 0, 0.1), 0.08952820250343503),  # ppsig(5.2, 5, 1, k=0.1): in the eq. 7 gap
    ((2, 5, 1, 0, 0.1), -1.2767567766808139),  # ppsig(2, 5, 1, k=0.1)
]

# Vianello eq. 9 (sigma > 0): bayspec 0.4.5 minimises with scipy.optimize.minimize(tol=1e-3),
# so its values are only good to ~1e-5; ours is the exact profile (checked below by brute force).
PPSIG_SYSTEMATIC_ORACLE = [
    ((20, 5, 1, 0.1), 3.0231822595099933),  # ppsig(20, 5, 1, sigma=0.1)
    ((2, 5, 1, 0.1), -1.142735730345087),  # ppsig(2, 5, 1, sigma=0.1)
    ((50, 100, 0.3, 0.2), 2.050896679103356),  # ppsig(50, 100, 0.3, sigma=0.2)
]


@pytest.mark.parametrize("args, expected", PGSIG_ORACLE)
def test_pgsig_matches_bayspec(args, expected):
    np.testing.assert_allclose(float(pgsig(*args)), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("args, expected", PPSIG_ORACLE)
def test_ppsig_matches_bayspec(args, expected):
    n, b, alpha, sigma, k = args
    np.testing.assert_allclose(float(ppsig(n, b, alpha, sigma, k)), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("args, expected", PPSIG_SYSTEMATIC_ORACLE)
def test_ppsig_systematic_matches_bayspec_and_brute_force(args, expected):
    value = float(ppsig(*args))
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    # Ours is the global profile: never a larger |significance| than bayspec's local optimum.
    assert abs(value) <= abs(expected) * (1 + 1e-12)
    np.testing.assert_allclose(value, systematic_brute_force(*args), rtol=1e-8)


@pytest.mark.parametrize("args, expected", PGSIG_ORACLE)
def test_pgsig_host_is_bayspec_bit_for_bit(args, expected):
    assert pgsig_host(*map(float, args)) == expected


@pytest.mark.parametrize("args, expected", [c for c in PPSIG_ORACLE if c[0][3:] == (0, 0)])
def test_ppsig_host_is_bayspec_bit_for_bit(args, expected):
    assert ppsig_host(*map(float, args[:3])) == expected


def test_host_rounding_below_zero_gives_zero():
    # 6 over 9 off counts at alpha = 2/3: the ratio is 0 and rounds below it (bayspec: NaN).
    assert ppsig_host(6.0, 9.0, 10.0 / 15.0) == 0.0


# ---------------------------------------------------------------------------------------------
# Forward functions against independent formulas.
#
# Array calls use one grid shape, and other checks call with scalars, so that the tests
# compile each kernel only a few times.
# ---------------------------------------------------------------------------------------------

COUNTS = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 7.0, 10.0, 25.0, 100.0, 1234.0, 1e5])
N_GRID, B_GRID = np.meshgrid(COUNTS, COUNTS, indexing="ij")  # shape (11, 11)


def test_ppsig_is_li_ma_eq17():
    for alpha in (0.05, 0.3, 1.0, 2.5):
        np.testing.assert_allclose(
            np.asarray(ppsig(N_GRID, B_GRID, alpha)),
            li_ma_eq17(N_GRID, B_GRID, alpha),
            rtol=1e-9,
            atol=1e-7,
        )


def test_ppsig_bounded_systematic_is_li_ma_at_scaled_alpha():
    """Vianello eq. 7: Li & Ma with alpha (1 + k), but the sign stays that of n - alpha b."""
    alpha, k = 0.7, 0.25
    magnitude = np.abs(li_ma_eq17(N_GRID, B_GRID, alpha * (1 + k)))
    expected = np.where(N_GRID >= alpha * B_GRID, magnitude, -magnitude)
    np.testing.assert_allclose(
        np.asarray(ppsig(N_GRID, B_GRID, alpha, 0.0, k)), expected, rtol=1e-9, atol=1e-7
    )
    # In the gap alpha b <= n < alpha (1 + k) b the significance is positive and decreasing.
    values = at_each(ppsig, np.linspace(7.0, 8.7, 5), 10.0, alpha, 0.0, k)
    assert np.all(values > 0) and np.all(np.diff(values) < 0)


def test_pgsig_is_profile_likelihood():
    for sigma in (0.3, 1.0, 4.0, 40.0):
        np.testing.assert_allclose(
            np.asarray(pgsig(N_GRID, B_GRID, sigma)),
            gaussian_background_significance(N_GRID, B_GRID, sigma),
            rtol=1e-8,
            atol=1e-6,
        )


def test_closed_forms_at_zero_counts():
    b = np.array([0.1, 0.5, 1.0, 3.0, 20.0])
    # n = 0: the background fits at max(b - sigma^2, 0), sigma = 1 here.
    expected = np.where(b <= 1.0, -b, -np.sqrt(np.maximum(2 * b - 1.0, 0.0)))
    np.testing.assert_allclose(at_each(pgsig, 0.0, b, 1.0), expected, rtol=RTOL)
    alpha = 0.4
    np.testing.assert_allclose(
        at_each(ppsig, 0.0, b, alpha), -np.sqrt(2 * b * np.log1p(alpha)), rtol=RTOL
    )
    np.testing.assert_allclose(
        at_each(ppsig, b, 0.0, alpha), np.sqrt(2 * b * np.log((1 + alpha) / alpha)), rtol=RTOL
    )
    for value in (pgsig(0, 0, 1), ppsig(0, 0, 1), ppsig(0, 0, 1, 0.5), ppsig(0, 0, 1, 0, 0.5)):
        assert float(value) == 0.0


def test_pgsig_without_background_error_is_known_background_limit():
    """sigma = 0 (NaN in bayspec 0.4.5): Poisson counts over a known background."""
    n = np.array([0.0, 1.0, 4.0, 9.0, 30.0])
    b = 4.0
    ts = 2 * (np.where(n > 0, n * np.log(np.where(n > 0, n, 1) / b), 0.0) - n + b)
    expected = np.where(n >= b, 1.0, -1.0) * np.sqrt(ts)
    np.testing.assert_allclose(at_each(pgsig, n, b, 0.0), expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(at_each(pgsig, n, b, 1e-7), expected, rtol=1e-6, atol=1e-6)
    assert float(pgsig(3.0, 0.0, 0.0)) == np.inf


@pytest.mark.parametrize(
    "n, b, alpha, sigma",
    [
        # Two local minima over the systematic (three stationary points): a local descent
        # from k = 0 can miss the global one.
        (0.1, 1.0, 10.0, 0.5),
        (0.05, 1.0, 10.0, 0.5),
        # bayspec 0.4.5's descent stalls at k = 0 here (it returns -2.63), and returns 44.72
        # for n = b = 0.
        (0.0, 5.0, 1.0, 2.0),
        (0.0, 0.0, 1.0, 0.3),
        (3.0, 0.0, 2.0, 1.0),
        (10.0, 1000.0, 3.0, 0.5),
        (300.0, 20.0, 0.5, 0.05),
        (2e4, 30.0, 1.5, 0.3),
    ],
)
def test_ppsig_systematic_global_profile(n, b, alpha, sigma):
    np.testing.assert_allclose(
        float(ppsig(n, b, alpha, sigma)),
        systematic_brute_force(n, b, alpha, sigma),
        rtol=1e-9,
        atol=1e-7,
    )


def test_ppsig_systematic_limits():
    n, b = N_GRID[:-1, 1:-1], B_GRID[:-1, 1:-1]
    alpha = 0.8
    lima = at_each(ppsig, n, b, alpha)
    # sigma -> 0 is Li & Ma; any sigma > 0 lowers |significance|, keeping its sign.
    np.testing.assert_allclose(at_each(ppsig, n, b, alpha, 1e-9), lima, rtol=1e-6, atol=1e-6)
    wide = at_each(ppsig, n, b, alpha, 0.5)
    assert np.all(np.abs(wide) <= np.abs(lima) * (1 + 1e-12) + 1e-12)
    assert np.all((wide >= 0) == (lima >= 0))


def test_ppsig_dispatch_and_invalid_parameters():
    # sigma > 0 takes precedence over k (as in bayspec 0.4.5).
    assert float(ppsig(20, 5, 1, 0.1, 0.3)) == float(ppsig(20, 5, 1, 0.1, 0.0))
    # Invalid parameters give NaN (bayspec 0.4.5 returned 0 for negative sigma or k).
    for args in [(10, 5, 0.0), (10, 5, -1.0), (10, 5, 1, -0.1), (10, 5, 1, 0.0, -0.2)]:
        assert np.isnan(float(ppsig(*args)))


def test_broadcasting_and_dtype():
    out = pgsig(np.arange(121.0).reshape(11, 11), COUNTS[:, None], 1.0)
    assert out.shape == (11, 11) and out.dtype == jnp.float64
    assert ppsig(np.arange(11)[:, None], np.arange(11), 0.5, 0.0, 0.1).shape == (11, 11)
    assert ppsig(10, 5, 1).dtype == jnp.float64  # integers and Python numbers: default float


# ---------------------------------------------------------------------------------------------
# jit, vmap and gradients (one compilation per function).
# ---------------------------------------------------------------------------------------------

# Points (n, b, alpha, sigma, k) covering the three formulas, n = alpha b, and zeros.
PPSIG_POINTS = np.array(
    [
        (7.0, 3.0, 1.2, 0.0, 0.0),
        (7.0, 3.0, 1.2, 0.0, 0.3),
        (7.0, 3.0, 1.2, 0.3, 0.0),
        (1.0, 30.0, 1.2, 0.3, 0.0),
        (3.0, 3.0, 1.0, 0.0, 0.0),  # n = alpha b: the gradient is the slope through 0
        (3.0, 3.0, 1.0, 0.4, 0.0),
        (0.0, 3.0, 1.0, 0.0, 0.0),
        (4.0, 0.0, 1.0, 0.0, 0.0),
        (0.0, 0.0, 1.0, 0.0, 0.0),
        (0.0, 0.0, 1.0, 0.0, 0.2),
        (0.0, 4.0, 1.0, 0.0, 0.2),
        (0.0, 3.0, 1.0, 0.4, 0.0),
        (4.0, 0.0, 1.0, 0.4, 0.0),
        (0.0, 0.0, 1.0, 0.4, 0.0),
        (0.0, 3.0, 1.0, 4.0, 0.0),
    ]
)
PPSIG_SMOOTH = 6  # the first points are away from n = 0 and b = 0

PGSIG_POINTS = np.array(
    [
        (7.0, 3.0, 1.5),
        (2.0, 5.0, 0.7),
        (2.0, 0.3, 0.1),
        (3.0, 3.0, 1.5),  # n = b
        (0.0, 3.0, 1.5),
        (0.0, 0.0, 1.5),
        (4.0, 0.0, 1.5),
        (4.0, 3.0, 0.0),
        (0.0, 3.0, 0.0),
        (0.0, 0.0, 0.0),
    ]
)
PGSIG_SMOOTH = 4


@pytest.fixture(scope="module")
def ppsig_jit_vmap_grad():
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(ppsig, argnums=(0, 1, 2, 3, 4))))
    return value_and_grad(*(jnp.asarray(c) for c in PPSIG_POINTS.T))


@pytest.fixture(scope="module")
def pgsig_jit_vmap_grad():
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(pgsig, argnums=(0, 1, 2))))
    return value_and_grad(*(jnp.asarray(c) for c in PGSIG_POINTS.T))


def _finite_differences(f, point, h=1e-6):
    """Central differences; second-order forward ones at a boundary 0 (sigma, k)."""
    grads = []
    for i in range(len(point)):
        up, down = list(point), list(point)
        up[i] += h
        if point[i] == 0:
            twice = list(up)
            twice[i] += h
            values = [float(f(*x)) for x in (down, up, twice)]
            grads.append((-3 * values[0] + 4 * values[1] - values[2]) / (2 * h))
        else:
            down[i] -= h
            grads.append((float(f(*up)) - float(f(*down))) / (2 * h))
    return grads


@pytest.mark.parametrize(
    "f, points, smooth, fixture",
    [
        (ppsig, PPSIG_POINTS, PPSIG_SMOOTH, "ppsig_jit_vmap_grad"),
        (pgsig, PGSIG_POINTS, PGSIG_SMOOTH, "pgsig_jit_vmap_grad"),
    ],
)
def test_jit_vmap_grad(request, f, points, smooth, fixture):
    values, grads = request.getfixturevalue(fixture)
    grads = np.stack([np.asarray(g) for g in grads], axis=-1)
    # jit + vmap (sigma traced, so every formula is compiled) agree with eager scalar calls.
    np.testing.assert_allclose(np.asarray(values), at_each(f, *points.T), rtol=1e-13, atol=1e-15)
    # Finite, NaN-free gradients everywhere, including n = 0, b = 0 and sigma = 0 ...
    assert np.all(np.isfinite(grads))
    # ... and equal to finite differences where the significance is smooth.
    for point, grad in zip(points[:smooth], grads[:smooth]):
        expected = _finite_differences(f, point)
        if f is ppsig:
            # No derivative: in sigma at sigma = 0 when k > 0 (sigma > 0 switches eq. 7 to
            # eq. 9), nor in k at n = alpha b (eq. 7 keeps the sign of n - alpha b, so the
            # significance has a kink |n - alpha (1 + k) b| there).
            skip = [3] if point[4] > 0 else []
            skip += [4] if point[0] == point[1] * point[2] else []
            grad, expected = np.delete(grad, skip), np.delete(expected, skip)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def test_float32():
    """Without x64 everything computes in float32, to ~1e-5 of the float64 values."""
    # One call of each function; the columns of the ppsig call cycle through Li & Ma,
    # eq. 7 (k > 0) and eq. 9 (sigma > 0).
    column = np.arange(COUNTS.size)[None, :] % 3
    sigma = np.where(column == 2, 0.3, 0.0) + 0 * N_GRID
    k = np.where(column == 1, 0.2, 0.0) + 0 * N_GRID
    cases = [(pgsig, (N_GRID, B_GRID, 1.3)), (ppsig, (N_GRID, B_GRID, 0.7, sigma, k))]
    counts = COUNTS <= 1e4  # float32 keeps ~7 digits: leave out the 1e5 counts
    mask = counts[:, None] & counts[None, :]
    expected = [at_each(f, *args)[mask] for f, args in cases]
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:
        enable_x64 = getattr(jax.experimental, "enable_x64")
    with enable_x64(False):
        values = [f(*args) for f, args in cases]
        assert all(v.dtype == jnp.float32 for v in values)
    for value, reference in zip(values, expected):
        np.testing.assert_allclose(np.asarray(value)[mask], reference, rtol=2e-5, atol=2e-5)
    # float32 inputs stay float32 with x64 on.
    assert pgsig(np.float32(10), np.float32(5), np.float32(1)).dtype == jnp.float32


# ---------------------------------------------------------------------------------------------
# Inverses.
# ---------------------------------------------------------------------------------------------

# (function, arguments, keyword arguments, value from bayspec 0.4.5 with the same call)
INVERSE_ORACLE = [
    (pgsig_inv, (3, 57.3, 1.5), {}, 82.02249026092143),  # pgsig_inv(3, 57.3, 1.5)
    (pgsig_inv, (-1, 10, 0.2), {}, 7.004168081576711),  # pgsig_inv(-1, 10, 0.2)
    (pgsig_inv, (2, 0, 1), {}, 3.4037712728509564),  # pgsig_inv(2, 0, 1)
    (pgsig_inv, (3, 57.3, 1.5), {"integer": True}, 83),  # pgsig_inv(3, 57.3, 1.5, integer=True)
    (pgsig_inv, (-1, 10, 0.2), {"integer": True}, 8),  # pgsig_inv(-1, 10, 0.2, integer=True)
    (pgsig_inv, (0, 4.5, 1), {"integer": True}, 5),  # pgsig_inv(0, 4.5, 1, integer=True)
    (ppsig_inv, (3, 57.3, 0.15), {}, 19.92461638662194),  # ppsig_inv(3, 57.3, 0.15)
    (ppsig_inv, (-1, 10, 1), {}, 6.018635643703669),  # ppsig_inv(-1, 10, 1)
    (ppsig_inv, (5, 0, 0.4), {}, 9.977945001849104),  # ppsig_inv(5, 0, 0.4)
    (ppsig_inv, (-1, 10, 1), {"integer": True}, 7),  # ppsig_inv(-1, 10, 1, integer=True)
    (ppsig_inv, (3, 57.3, 0.15), {"integer": True}, 20),  # ppsig_inv(3, 57.3, 0.15, integer=True)
    (ppsig_inv, (2, 10, 1), {"k": 0.3}, 26.432732543109104),  # ppsig_inv(2, 10, 1, k=0.3)
    (ppsig_inv, (-1, 10, 1), {"k": 0.3}, 8.119103658377306),  # ppsig_inv(-1, 10, 1, k=0.3)
    (ppsig_inv, (2, 10, 1), {"k": 0.3, "integer": True}, 27),  # same, integer=True
]


@pytest.mark.parametrize("f, args, kwargs, expected", INVERSE_ORACLE)
def test_inverses_match_bayspec(f, args, kwargs, expected):
    value = f(*args, **kwargs)
    assert type(value) is type(expected)
    np.testing.assert_allclose(value, expected, rtol=RTOL)


def test_inverse_systematic_matches_bayspec():
    # bayspec 0.4.5: ppsig_inv(3, 20, 1, sigma=0.1) -> 45.654450769730886,
    # ppsig_inv(-1, 20, 1, sigma=0.1) -> 13.942571593412628 (its eq. 9 is approximate).
    np.testing.assert_allclose(ppsig_inv(3, 20, 1, sigma=0.1), 45.654450769730886, rtol=1e-6)
    np.testing.assert_allclose(ppsig_inv(-1, 20, 1, sigma=0.1), 13.942571593412628, rtol=1e-6)


def test_inverse_arrays_match_bayspec():
    # bayspec 0.4.5: pgsig_inv([[1, 2, 3]], [[5], [10]], 1)
    expected = [
        [7.666048277415983, 10.746424988377424, 14.218994616874191],
        [13.509936646373948, 17.39395269654718, 21.636742111095877],
    ]
    value = pgsig_inv([[1, 2, 3]], [[5], [10]], 1)
    assert isinstance(value, np.ndarray) and value.shape == (2, 3)
    np.testing.assert_allclose(value, expected, rtol=RTOL)
    # bayspec 0.4.5: ppsig_inv([0.5, 2, 4], 12, 0.5, integer=True) -> [8, 14, 24]
    counts = ppsig_inv([0.5, 2, 4], 12, 0.5, integer=True)
    assert counts.dtype.kind == "i"
    np.testing.assert_array_equal(counts, [8, 14, 24])


@pytest.mark.parametrize(
    "call, message",
    [
        # Messages as raised by bayspec 0.4.5 for the same calls.
        (lambda: ppsig_inv(-0.05, 10, 1, k=0.3), "not reachable on the low-count branch"),
        (lambda: pgsig_inv(-1, 0, 1), "not reachable for non-negative counts"),
        (lambda: ppsig_inv(-10, 3, 1), "not reachable on the low-count branch"),
        (lambda: ppsig_inv(-0.01, 2.5, 1, integer=True), "not reachable at an integer count"),
        (lambda: pgsig_inv(1, 3, 0), "sigma must be positive"),
        (lambda: pgsig_inv(1, -3, 1), "b must be non-negative"),
        (lambda: ppsig_inv(1, 3, 0), "alpha must be positive"),
        (lambda: ppsig_inv(1, 3, 1, sigma=-1), "sigma must be non-negative"),
        (lambda: ppsig_inv(1, 3, 1, k=-1), "k must be non-negative"),
        (lambda: ppsig_inv(1, 3, 1, integer=1), "integer must be a boolean"),
        (lambda: ppsig_inv(float("nan"), 3, 1), "must be finite"),
        (lambda: pgsig_inv([1, 2], [3, np.inf], 1), "must be finite"),
    ],
)
def test_inverse_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


ROUND_TRIP_COUNTS = np.array([0.0, 0.3, 1.0, 2.0, 4.5, 9.0, 11.0, 17.0, 40.0, 250.0, 3e4])


@pytest.mark.parametrize(
    "forward, inverse, params, zero_point",
    [
        # zero_point: where the non-negative branch starts (b for pgsig, alpha b for ppsig,
        # alpha (1 + k) b under eq. 7).
        (pgsig, pgsig_inv, (10.0, 1.5), 10.0),
        (pgsig, pgsig_inv, (10.0, 7.0), 10.0),
        (pgsig, pgsig_inv, (0.0, 2.0), 0.0),
        (ppsig, ppsig_inv, (10.0, 0.9), 9.0),
        (ppsig, ppsig_inv, (0.0, 0.4), 0.0),
        (ppsig, ppsig_inv, (10.0, 0.9, 0.2), 9.0),
        (ppsig, ppsig_inv, (10.0, 0.9, 0.0, 0.3), 11.7),
    ],
)
def test_inverse_of_forward_is_identity(forward, inverse, params, zero_point):
    # Leave out counts on neither branch: below the start of the positive branch but not
    # below the background expectation (only under eq. 7).
    expected_background = params[0] * (params[1] if forward is ppsig else 1.0)

    def on_a_branch(n):
        return n[(n < expected_background) | (n >= zero_point)]

    n = on_a_branch(ROUND_TRIP_COUNTS)
    sig = at_each(forward, n, *params)
    np.testing.assert_allclose(inverse(sig, *params), n, rtol=1e-9, atol=1e-9)
    # The integer inverse is the smallest count on that branch reaching sig (targets taken
    # between integers, where float64 rounding cannot decide).
    n = on_a_branch(ROUND_TRIP_COUNTS + 0.37)
    sig = at_each(forward, n, *params)
    counts = inverse(sig, *params, integer=True)
    assert counts.dtype.kind == "i"
    assert np.all(at_each(forward, counts, *params) >= sig)
    below = counts - 1.0
    on_branch = below >= np.where(sig >= 0, math.ceil(zero_point), 0.0)
    assert np.all(at_each(forward, below[on_branch], *params) < sig[on_branch])


@settings(max_examples=25, deadline=None)
@given(
    sig=st.floats(-2.5, 8.0),
    b=st.floats(0.5, 500.0),
    alpha=st.floats(0.05, 5.0),
)
def test_forward_of_inverse_is_identity(sig, b, alpha):
    cases = [(ppsig, ppsig_inv, (b, alpha)), (pgsig, pgsig_inv, (b, math.sqrt(b)))]
    for forward, inverse, params in cases:
        try:
            n = inverse(sig, *params)
        except ValueError:
            # Only negative targets below the significance of no counts are unreachable.
            assert sig < float(forward(0.0, *params))
            continue
        np.testing.assert_allclose(float(forward(n, *params)), sig, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# DataUnit.net_counts_significance_limit(3) of bayspec 0.4.5, from the grouped arrays.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, stat",
    [
        ("ME", "pgstat"),
        ("HE", "pgstat"),
        ("ME_rebn", "pgstat"),
        ("ME_optimal", "pgstat"),
        ("X3C273_pgstat_minevt10", "pgstat"),
        ("X3C273_cstat", "cstat"),
    ],
)
def test_net_counts_significance_limit_reference(reference, case, stat):
    """bayspec's DataUnit: pgstat inverts pgsig on the alpha-scaled background sum and its
    quadrature error; cstat/ppstat invert ppsig on the raw background sum; the background
    expected in the source region is then subtracted."""
    unit = reference[case]
    alpha = unit["alpha"]
    np.testing.assert_allclose(alpha, unit["src_efficiency"] / unit["bkg_efficiency"], rtol=1e-14)
    background = float(np.sum(unit["bkg_counts"]))
    if stat == "pgstat":
        expected = background * alpha
        error = math.sqrt(float(np.sum(np.square(unit["bkg_errors"])))) * alpha
        limit = pgsig_inv(3, expected, error) - expected
    else:
        limit = ppsig_inv(3, background, alpha) - alpha * background
    np.testing.assert_allclose(limit, unit["net_counts_significance_limit_3"], rtol=RTOL)
