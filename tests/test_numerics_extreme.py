"""Extreme values (issue 16, numerics): wherever the log-likelihood is finite its gradient is
finite; where it is -inf the gradient is finite (0 or a number), never NaN; every statistic keeps
value and gradient finite at zero counts, zero background and zero model.

The units are the GBM example's NaI (``ME``), with and without its background file, and the
points are those of the issue: a model rate that underflows (``cpl`` at log_ec = 0.2), huge
parameters (log_a or alpha = 1e300, log_ec = -1e300), and chi2 at log_a = 300.
"""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import likelihood, models, stats

BASE = (-1.563, 2.691, 2.354)  # cpl: alpha, log10 Ec, log10 A
POINTS = {
    "fit": BASE,
    "underflow log_ec=0.2": (-1.563, 0.2, 2.354),
    "log_a=1e300": (-1.563, 2.691, 1e300),
    "alpha=1e300": (1e300, 2.691, 2.354),
    "log_ec=-1e300": (-1.563, -1e300, 2.354),
    "log_a=300": (-1.563, 2.691, 300.0),
    "log_a=-300": (-1.563, 2.691, -300.0),
    "log_a=-305": (-1.563, 2.691, -305.0),
    "log_a=-1e300": (-1.563, 2.691, -1e300),
    "alpha=-1e300": (-1e300, 2.691, 2.354),
    "log_ec=1e300": (-1.563, 1e300, 2.354),
    "inf - inf": (-1.563, -1e300, 1e308),
}
STATS = tuple(stats.STATISTICS)


def _unit(data_dir, stat, background, **kw):
    d = data_dir / "ME"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bj.DataUnit(src=str(d / "me.src"), bkg=str(d / "me.bkg") if background else None,
                           rsp=str(d / "me.rsp"), notc=[8, 900], stat=stat, **kw)


def _value_and_grad(data, model=models.cpl):
    return jax.jit(jax.vmap(jax.value_and_grad(lambda p: likelihood.loglike(model, p, data))))


def _assert_contract(values, grads, labels):
    """Finite value: finite gradient; -inf: finite gradient (0 or a number); never NaN/+inf."""
    values, grads = np.asarray(values), np.asarray(grads)
    for label, value, grad in zip(labels, values, grads):
        assert not np.isnan(value) and value != np.inf, (label, value)
        assert np.all(np.isfinite(grad)), (label, value, grad)


@pytest.fixture(scope="module")
def units(data_dir):
    return {(stat, background): bj.Data([("nai", _unit(data_dir, stat, background))])
            for stat in STATS for background in (True, False)}


@pytest.mark.parametrize("background", [True, False], ids=["background", "no-background"])
@pytest.mark.parametrize("stat", STATS)
def test_value_and_gradient_at_extreme_parameters(units, stat, background):
    values, grads = _value_and_grad(units[stat, background])(jnp.asarray(list(POINTS.values())))
    _assert_contract(values, grads, list(POINTS))
    by_name = dict(zip(POINTS, np.asarray(values)))
    assert np.isfinite(by_name["fit"]) and np.isfinite(by_name["underflow log_ec=0.2"])
    # an infinite model rate is rejected; a vanishing cutoff energy is a zero model
    assert by_name["log_a=1e300"] == by_name["alpha=1e300"] == -np.inf
    grad = dict(zip(POINTS, np.asarray(grads)))
    for rejected in ("log_a=1e300", "alpha=1e300", "inf - inf"):
        np.testing.assert_array_equal(grad[rejected], 0.0, err_msg=rejected)


def test_pgstat_without_background_is_cash_where_the_model_underflows(units):
    """The issue's case: PGSTAT with sigma_B = 0 (no background file) gave a NaN gradient at a
    finite value once the model rate fell below ~1e-155 (XSPEC's quadratic squared it)."""
    points = jnp.asarray([POINTS["underflow log_ec=0.2"], BASE, POINTS["log_a=-300"]])
    pg_values, pg_grads = _value_and_grad(units["pgstat", False])(points)
    cash_values, cash_grads = _value_and_grad(units["pstat", False])(points)
    assert np.all(np.isfinite(np.asarray(pg_values))) and np.all(np.isfinite(pg_grads))
    np.testing.assert_allclose(pg_values, cash_values, rtol=1e-13)
    np.testing.assert_allclose(pg_grads, cash_grads, rtol=1e-10)
    rate = likelihood.model_ctsrate(models.cpl, points[0], units["pgstat", False])[0]
    assert float(jnp.min(rate)) < 1e-155  # the case is the one of the issue


def test_chi2_at_a_huge_normalisation(units):
    """chi2 at log_a = 300: z^2 overflows, the value is -inf with a zero (not -inf) gradient."""
    for background in (True, False):
        data = units["chi2", background]
        value, grad = jax.value_and_grad(
            lambda p, data=data: likelihood.loglike(models.cpl, p, data))(
                jnp.asarray(POINTS["log_a=300"]))
        assert float(value) == -np.inf
        np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_wstat_at_a_huge_model_is_finite(units):
    """A model near 1e302 counts: W-stat's profile no longer squares it (the value stays a huge
    finite number, as Cash's), and the gradient is finite."""
    point = jnp.asarray(POINTS["log_a=300"])
    value, grad = jax.value_and_grad(
        lambda p: likelihood.loglike(models.cpl, p, units["cstat", True]))(point)
    cash = likelihood.loglike(models.cpl, point, units["pstat", True])
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(float(value), float(cash), rtol=1e-6)


def test_a_unit_of_weight_zero_is_left_out(data_dir):
    """0 * -inf would be NaN: a zero weight gives 0 whatever the unit's value."""
    unit = _unit(data_dir, "pstat", False)
    cutoff = jnp.asarray(POINTS["log_ec=-1e300"])  # a zero model under counts: -inf
    alone = bj.Data([("u", unit)])
    assert float(likelihood.loglike(models.cpl, cutoff, alone)) == -np.inf
    data = bj.Data([("u", unit.replace(weight=0.0)), ("v", _unit(data_dir, "pgstat", True))])
    other = bj.Data([("v", _unit(data_dir, "pgstat", True))])
    value, grad = jax.value_and_grad(lambda p: likelihood.loglike(models.cpl, p, data))(cutoff)
    assert float(value) == float(likelihood.loglike(models.cpl, cutoff, other))
    assert np.all(np.isfinite(np.asarray(grad)))


# -- per bin: every statistic at zero counts, zero background, zero and extreme models ---------


def _grid():
    values = {"S": [0.0, 3.0], "B": [0.0, 4.0],
              "m": [0.0, 5e-324, 1e-310, 1e-200, 1e-160, 1.5, 1e150, 1e300, 1e306],
              "sigma_B": [0.0, 2.0], "ts": [10.0, 1e-3], "tb": [20.0]}
    return np.array(list(itertools.product(*values.values()))).T


@pytest.mark.parametrize("has_background", [True, False])
@pytest.mark.parametrize("stat", STATS)
def test_every_statistic_per_bin(stat, has_background):
    S, B, m, sigma_B, ts, tb = (jnp.asarray(x) for x in _grid())
    sigma_S = jnp.sqrt(S)

    def loglike(m, ts, tb):
        return stats.pointwise(stat, S, B, m, ts, tb, sigma_S, sigma_B,
                               has_background=has_background)[0]

    value, pullback = jax.vjp(loglike, m, ts, tb)
    # each bin's partials (the bins are independent, so one pullback of ones gives them all)
    partials = np.stack([np.asarray(p) for p in pullback(jnp.ones_like(m))], 1)
    value = np.asarray(value)
    assert not np.any(np.isnan(value)) and not np.any(value == np.inf)
    assert np.all(np.isfinite(partials)), np.argwhere(~np.isfinite(partials))
    # zero counts, zero background, zero model (ordinary efficiencies): finite, except where the
    # data rule the model out (counts under a zero source mean; a Gaussian bin without error)
    S, B, m, sigma_S, sigma_B, ts, tb = (np.asarray(x) for x in (S, B, m, sigma_S, sigma_B, ts,
                                                                  tb))
    ordinary = np.isin(m, [0.0, 1.5]) & (ts == 10.0)
    if stat in ("chi2", "gstat"):
        possible = (sigma_S > 0) | (sigma_B > 0) | (S - B * ts / tb - m * ts == 0)
    else:
        background_explains = {"pgstat": (sigma_B > 0) | (B > 0),
                               "pstat": np.zeros_like(S, bool)}.get(stat, np.ones_like(S, bool))
        if not has_background and stat != "pgstat":
            background_explains = np.zeros_like(S, bool)  # Cash, as XSPEC
        possible = (m > 0) | (S == 0) | background_explains
    assert np.all(np.isfinite(value[ordinary & possible])), np.argwhere(
        ordinary & possible & ~np.isfinite(value))
    assert np.all(value[ordinary & ~possible] == -np.inf)


def test_gstat_partials_equal_automatic_derivatives():
    """gstat's written-out partials (they avoid the overflow of autodiff's delta / error^3)."""
    rng = np.random.default_rng(3)
    n = 300
    S = rng.poisson(rng.choice([0.3, 5.0, 80.0], n)).astype(float)
    B = rng.poisson(rng.choice([0.5, 20.0, 500.0], n)).astype(float)
    m = 10 ** rng.uniform(-3, 2, n)
    ts = 10 ** rng.uniform(-1, 2, n)
    tb = ts * 10 ** rng.uniform(-1, 1, n)
    tb[::29] = 0.0  # bayspec's unscaled background
    sigma_S, sigma_B = np.sqrt(S) + 0.5, np.sqrt(B) + rng.uniform(0, 2, n)
    args = [jnp.asarray(x) for x in (S, B, m, ts, tb, sigma_S, sigma_B)]

    def plain(m, ts, tb):
        return jnp.sum(stats._gstat_parts(args[0], args[1], m, ts, tb, args[5], args[6])[0])

    def fast(m, ts, tb):
        return jnp.sum(stats.gstat(args[0], args[1], m, ts, tb, args[5], args[6])[0])

    for auto, analytic in zip(jax.grad(plain, (0, 1, 2))(*args[2:5]),
                              jax.grad(fast, (0, 1, 2))(*args[2:5])):
        np.testing.assert_allclose(analytic, auto, rtol=1e-9,
                                   atol=1e-12 * float(np.max(np.abs(auto))))
    hessian = jax.hessian(lambda x: fast(args[2] * x, args[3], args[4]))(1.0)
    np.testing.assert_allclose(hessian, jax.hessian(
        lambda x: plain(args[2] * x, args[3], args[4]))(1.0), rtol=1e-10)


# -- models -------------------------------------------------------------------------------------

MODEL_POINTS = {
    "pl": (-1.5, 0.5), "cpl": BASE, "cpl_peak": (-1.1, 2.6, 0.2),
    "band": (-0.8, -2.4, 2.5, -1.2), "bb": (1.3, -0.5), "sbpl": (-0.9, -2.6, 2.4, 0.3),
}


@pytest.mark.parametrize("name", list(MODEL_POINTS))
def test_every_model_at_extreme_parameters(units, name):
    base = np.asarray(MODEL_POINTS[name], float)
    points = []
    for i in range(base.size):
        for x in (1e300, -1e300, 300.0, -300.0, 1e308, -1e308):
            point = base.copy()
            point[i] = x
            points.append(point)
    values, grads = _value_and_grad(units["pgstat", True], getattr(models, name))(
        jnp.asarray(np.array(points)))
    _assert_contract(values, grads, [f"{name} {p}" for p in points])


def test_models_keep_their_values():
    """The guards change nothing in the ordinary range (bayspec's numbers are in test_models)."""
    energy = np.geomspace(1.0, 1e4, 50)
    np.testing.assert_allclose(np.asarray(models.cpl(energy, BASE)),
                               10**2.354 * energy**-1.563 * np.exp(-energy / 10**2.691),
                               rtol=1e-13)
    assert np.all(np.isnan(np.asarray(models.band(energy, (-2.5, -3.0, 2.0, 0.0)))))
    assert np.all(np.isnan(np.asarray(models.cpl_peak(energy, (-2.0, 2.0, 0.0)))))
    assert np.all(np.asarray(models.cpl(energy, (-1.0, 2.0, 1e300))) == np.inf)
    assert np.all(np.asarray(models.cpl(energy, (-1.0, -1e300, 0.0))) == 0.0)


def test_float32(data_dir):
    """float32: the same contract at float32's own extremes (1e30 for a huge parameter, and
    a model rate that underflows far sooner, below ~1e-38)."""
    points = {"fit": BASE, "underflow log_ec=0.2": (-1.563, 0.2, 2.354),
              "log_ec=0.5": (-1.563, 0.5, 2.354), "log_a=1e30": (-1.563, 2.691, 1e30),
              "alpha=1e30": (1e30, 2.691, 2.354), "log_ec=-1e30": (-1.563, -1e30, 2.354),
              "log_a=30": (-1.563, 2.691, 30.0), "log_a=-40": (-1.563, 2.691, -40.0)}
    with jax.enable_x64(False):
        for stat in ("pgstat", "cstat", "chi2"):
            for background in (True, False):
                data = bj.Data([("nai", _unit(data_dir, stat, background))])
                values, grads = _value_and_grad(data)(
                    jnp.asarray(list(points.values()), jnp.float32))
                assert values.dtype == grads.dtype == jnp.float32
                _assert_contract(values, grads, [f"{stat} {background} {p}" for p in points])
                assert np.isfinite(float(values[0]))
