"""Per-bin statistics: bayspec's EDGE cases, XSPEC's formulas written out, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayspec_jax import stats

NAMES = ("pgstat", "cstat", "pstat", "chi2")
_wstat = jax.jit(stats.wstat)
_pgstat = jax.jit(stats.pgstat)


def _edge(reference):
    edge = reference["EDGE"]
    inputs = {k: (np.asarray(v, float) if isinstance(v, list) else v)
              for k, v in edge["inputs"].items()}
    return inputs, edge["results"]


@pytest.mark.parametrize("name", NAMES)
def test_edge_cases_match_bayspec(name, reference):
    inputs, results = _edge(reference)
    loglike, sign = stats.pointwise(name, inputs["S"], inputs["B"], inputs["m"], inputs["ts"],
                                    inputs["tb"], inputs["sigma_S"], inputs["sigma_B"])
    expected = np.array([float(x) for x in results[name]["pointwise_loglike"]])
    np.testing.assert_array_equal(np.isinf(np.asarray(loglike)), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(np.asarray(loglike)[finite], expected[finite], rtol=1e-12, atol=0)
    # Signs agree except at an exact tie (data == model): bayspec's numba fastmath turns
    # 10/10 - 0/20 - 1 into a tiny positive number there; the bin's loglike is 0 either way.
    tie = (inputs["S"] / inputs["ts"] - inputs["B"] / inputs["tb"] - inputs["m"] == 0)
    if name in ("pstat", "chi2"):
        tie[:] = False
    expected_sign = np.asarray(results[name]["pointwise_sign"])
    np.testing.assert_array_equal(np.asarray(sign)[~tie], expected_sign[~tie])
    assert np.all(np.asarray(loglike)[tie] == 0)


def _wstat_xspec(S, B, m, ts, tb):
    """XSPEC manual, appendix B (W statistic), written out per bin: -2 log L relative."""
    if S == 0:
        return ts * m - B * math.log(tb / (ts + tb))
    if B == 0:
        if m <= S / (ts + tb):
            return -tb * m - S * math.log(ts / (ts + tb))
        return ts * m + S * (math.log(S) - math.log(ts * m) - 1)
    d = math.sqrt(((ts + tb) * m - S - B) ** 2 + 4 * (ts + tb) * B * m)
    f = (S + B - (ts + tb) * m + d) / (2 * (ts + tb))
    return 2 * (ts * m + (ts + tb) * f - S * math.log(ts * m + ts * f) - B * math.log(tb * f)
                - S * (1 - math.log(S)) - B * (1 - math.log(B))) / 2


def _pgstat_xspec(S, B, m, ts, tb, sigma):
    """XSPEC manual, appendix B (PG statistic), profile over the background, per bin."""
    d = math.sqrt((ts * sigma**2 - tb * B + tb**2 * m) ** 2
                  - 4 * tb**2 * (ts * sigma**2 * m - S * sigma**2 - tb * B * m))
    f = (-(ts * sigma**2 - tb * B + tb**2 * m) + d) / (2 * tb**2)
    value = ts * (m + f) + (B - tb * f) ** 2 / (2 * sigma**2)
    if S > 0:
        value += S * (math.log(S) - math.log(ts * (m + f)) - 1)
    return value


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.floats(0.01, 20.0), st.floats(0.5, 50.0),
       st.floats(0.5, 50.0))
def test_wstat_equals_the_xspec_formula(S, B, m, ts, tb):
    loglike, _ = _wstat(float(S), float(B), m, ts, tb, 0.0, 0.0)
    expected = _wstat_xspec(float(S), float(B), m, ts, tb)
    # XSPEC's bayspec-style relative form: -2 loglike equals 2 * (XSPEC's W contribution).
    np.testing.assert_allclose(-float(loglike), expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.floats(0.0, 100.0), st.floats(0.01, 20.0),
       st.floats(0.5, 20.0), st.floats(0.5, 20.0), st.floats(0.5, 20.0))
def test_pgstat_equals_the_xspec_formula(S, B, m, ts, tb, sigma):
    loglike, _ = _pgstat(float(S), B, m, ts, tb, 0.0, sigma)
    expected = _pgstat_xspec(float(S), B, m, ts, tb, sigma)
    np.testing.assert_allclose(-float(loglike), expected, rtol=1e-8, atol=1e-8)


def test_pstat_and_chi2_formulas():
    S, m, ts = 7.0, 0.4, 10.0
    loglike, _ = stats.pstat(S, 0.0, m, ts, 1.0, 0.0, 0.0)
    np.testing.assert_allclose(float(loglike), S * math.log(m * ts / S) - m * ts + S, rtol=1e-14)
    loglike, _ = stats.gstat(20.0, 8.0, 1.0, 10.0, 20.0, 4.0, 2.0)
    net, var = 20.0 - 8.0 * 0.5, 16.0 + 1.0
    np.testing.assert_allclose(float(loglike), -0.5 * (net - 10.0) ** 2 / var, rtol=1e-14)


def _grad_inputs():
    # S = 0, B = 0, sigma_B = 0, m = 0, one at a time and together.
    return [
        (0.0, 3.0, 0.2, 1.0), (5.0, 0.0, 0.2, 1.0), (5.0, 3.0, 0.2, 0.0), (5.0, 3.0, 0.0, 1.0),
        (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.3, 0.0), (4.0, 0.0, 0.0, 0.0),
    ]


@pytest.mark.parametrize("name", ["pgstat", "cstat", "pstat", "chi2"])
@pytest.mark.parametrize("S, B, m, sigma_B", _grad_inputs())
def test_gradients_are_finite_at_zeros(name, S, B, m, sigma_B):
    def total(m_, S_, B_, sB_):
        ll, _ = stats.pointwise(name, S_, B_, m_, 10.0, 20.0, jnp.sqrt(S_ + 1.0), sB_)
        return jnp.where(jnp.isfinite(ll), ll, 0.0).sum()

    grads = jax.jit(jax.grad(total, argnums=(0, 1, 2, 3)))(
        *(jnp.asarray([v]) for v in (m, S, B, sigma_B)))
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g))), (name, grads)


def test_invalid_model_rejects_only_its_unit():
    S = jnp.array([[3.0, 4.0], [3.0, 4.0]])
    m = jnp.array([[0.3, jnp.nan], [0.3, 0.4]])

    def total(rates):
        ll, _ = stats.pointwise("pgstat", S, S, rates, 10.0, 10.0, jnp.sqrt(S), jnp.sqrt(S))
        per_unit = ll.sum(-1)
        return per_unit[1], per_unit

    (value, per_unit), grad = jax.value_and_grad(total, has_aux=True)(m)
    assert np.isneginf(float(per_unit[0])) and np.isfinite(float(per_unit[1]))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_cstat_without_background_is_cash():
    # W-stat with B = 0 differs from Cash where m < S / (ts + tb)
    S, m = jnp.array([0.0, 3.0, 10.0]), jnp.array([0.1, 0.05, 0.2])
    with_bkg, _ = stats.pointwise("cstat", S, 0 * S, m, 10.0, 10.0, S, S, has_background=True)
    cash, _ = stats.pointwise("cstat", S, 0 * S, m, 10.0, 10.0, S, S, has_background=False)
    pstat, _ = stats.pstat(S, 0 * S, m, 10.0, 10.0, S, S)
    np.testing.assert_array_equal(np.asarray(cash), np.asarray(pstat))
    assert not np.allclose(np.asarray(with_bkg), np.asarray(cash))


def test_pseudo_residual_and_total():
    loglike = jnp.array([-2.0, -0.5, 0.0])
    sign = jnp.array([1.0, -1.0, 0.0])
    np.testing.assert_allclose(np.asarray(stats.pseudo_residual(loglike, sign)), [2.0, -1.0, 0.0])
    assert float(stats.total_statistic(loglike, 2.0)) == 10.0
    assert np.all(np.isfinite(np.asarray(jax.grad(
        lambda x: stats.pseudo_residual(x, sign).sum())(loglike))))


def test_float32_close_to_float64(reference):
    inputs, _ = _edge(reference)
    with jax.enable_x64(False):
        for name in NAMES:
            args = [jnp.asarray(inputs[k], jnp.float32) for k in ("S", "B", "m")]
            loglike32, _ = stats.pointwise(name, *args, 10.0, 20.0,
                                           jnp.asarray(inputs["sigma_S"], jnp.float32),
                                           jnp.asarray(inputs["sigma_B"], jnp.float32))
            assert loglike32.dtype == jnp.float32
            loglike64, _ = stats.pointwise(name, inputs["S"], inputs["B"], inputs["m"], 10.0, 20.0,
                                           inputs["sigma_S"], inputs["sigma_B"])
            finite = np.isfinite(np.asarray(loglike64))
            np.testing.assert_allclose(np.asarray(loglike32)[finite],
                                       np.asarray(loglike64)[finite], rtol=1e-5, atol=1e-6)


def _random_bins(seed, n=400):
    """Counts, errors, model and efficiencies with the edge values mixed in."""
    rng = np.random.default_rng(seed)
    S = rng.poisson(rng.choice([0.3, 5.0, 80.0], n)).astype(float)
    B = rng.poisson(rng.choice([0.5, 20.0, 500.0], n)).astype(float)
    m = 10 ** rng.uniform(-3, 2, n)
    m[::17] = 0.0
    m[5::23] = -0.1
    sigma_B = np.sqrt(B) + rng.uniform(0, 2, n)
    sigma_B[::13] = 0.0
    ts = 10 ** rng.uniform(-1, 2, n)
    tb = ts * 10 ** rng.uniform(-1, 1, n)
    return S, B, m, ts, tb, np.sqrt(S), sigma_B


@pytest.mark.parametrize("name", ["pgstat", "wstat", "pstat"])
def test_analytic_partials_equal_automatic_derivatives(name):
    """The statistics' JVP (profile partials, envelope theorem) equals autodiff of the value."""
    S, B, m, ts, tb, sigma_S, sigma_B = (jnp.asarray(x) for x in _random_bins(0))
    value_of = {"pgstat": stats._pgstat_value,
                "wstat": lambda *a: stats._wstat_parts(*a)[0],
                "pstat": lambda *a: stats._pstat_parts(*a)[0]}[name]
    function = getattr(stats, name)

    def plain(m, ts, tb):
        return value_of(S, B, m, ts, tb, sigma_S, sigma_B)

    def fast(m, ts, tb):
        return function(S, B, m, ts, tb, sigma_S, sigma_B)[0]

    value = jax.jit(plain)(m, ts, tb)
    np.testing.assert_array_equal(jax.jit(fast)(m, ts, tb), value)
    finite = np.isfinite(np.asarray(value))
    assert finite.mean() > 0.8

    @jax.jit
    def gradients(m, ts, tb):
        def total(f):
            return lambda *a: jnp.sum(jnp.where(finite, f(*a), 0.0))
        return (jax.grad(total(plain), (0, 1, 2))(m, ts, tb),
                jax.grad(total(fast), (0, 1, 2))(m, ts, tb))

    for auto, analytic in zip(*gradients(m, ts, tb)):
        np.testing.assert_allclose(analytic, auto, rtol=1e-8,
                                   atol=1e-12 * float(np.max(np.abs(auto))))

    @jax.jit
    def data_tangents(S):
        # Data tangents (counts perturbed) fall back to automatic differentiation.
        return (jax.jvp(lambda s: function(s, B, m, ts, tb, sigma_S, sigma_B)[0], (S,),
                        (jnp.ones_like(S),))[1],
                jax.jvp(lambda s: value_of(s, B, m, ts, tb, sigma_S, sigma_B), (S,),
                        (jnp.ones_like(S),))[1])

    fast_jvp, auto_jvp = data_tangents(S)
    np.testing.assert_allclose(fast_jvp, auto_jvp, rtol=1e-12, atol=1e-12 * float(
        np.max(np.abs(auto_jvp))))

    @jax.jit
    def hessians(x):
        # Second derivatives (the Hessian of a fit) follow the first ones.
        def total(f):
            return lambda x: jnp.sum(jnp.where(finite, f(m * x, ts, tb), 0.0))
        return jax.hessian(total(fast))(x), jax.hessian(total(plain))(x)

    h_fast, h_auto = hessians(1.0)
    np.testing.assert_allclose(h_fast, h_auto, rtol=1e-7)


@pytest.mark.parametrize("S, B, m, ts, tb, sigma_B", [
    (0.0, 6.0, -2.0, 1.0, 1.0, 2.0),   # general branch at a double root (no real pair): vertex
    (3.0, 6.0, -0.5, 2.0, 1.5, 2.0),   # negative model: a root of XSPEC's quadratic
    (3.0, 6.0, 0.7, 2.0, 1.5, 0.0),    # zero background error
])
def test_pgstat_general_branch_partials_equal_automatic_derivatives(S, B, m, ts, tb, sigma_B):
    inputs = [jnp.asarray([x]) for x in (S, B, m, ts, tb, np.sqrt(S), sigma_B)]

    def fast(m, ts, tb):
        return stats.pgstat(inputs[0], inputs[1], m, ts, tb, inputs[5], inputs[6])[0][0]

    def plain(m, ts, tb):
        return stats._pgstat_value(inputs[0], inputs[1], m, ts, tb, inputs[5], inputs[6])[0]

    args = inputs[2:5]
    assert np.isfinite(float(fast(*args))) and float(fast(*args)) == float(plain(*args))
    np.testing.assert_allclose(jnp.stack(jax.grad(fast, (0, 1, 2))(*args)),
                               jnp.stack(jax.grad(plain, (0, 1, 2))(*args)), rtol=1e-12)


def test_poisson_loglike_is_accurate_to_the_last_digits():
    """Against 50-digit decimal arithmetic, near saturation (where count log(mean / count) and
    count - mean cancel) and far from it."""
    import decimal

    rng = np.random.default_rng(7)
    count = np.concatenate([rng.poisson(20, 400) + 1.0, rng.uniform(0.01, 1e4, 400)])
    ratio = np.concatenate([1 + rng.normal(0, 1e-4, 200), 1 + rng.normal(0, 0.1, 200),
                            np.exp(rng.uniform(-5, 5, 400))])
    mean = count * ratio
    value = np.asarray(jax.jit(stats.poisson_loglike)(count, mean))
    with decimal.localcontext() as context:
        context.prec = 50
        exact = np.array([float(decimal.Decimal(c) * (decimal.Decimal(m) / decimal.Decimal(c)).ln()
                                + decimal.Decimal(c) - decimal.Decimal(m))
                          for c, m in zip(count, mean)])
    np.testing.assert_allclose(value, exact, rtol=1e-14, atol=0)
    assert float(stats.poisson_loglike(5.0, 5.0)) == 0.0
    assert float(stats.poisson_loglike(0.0, 2.5)) == -2.5
    assert np.isneginf(float(stats.poisson_loglike(3.0, 0.0)))
