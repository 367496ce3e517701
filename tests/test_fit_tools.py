"""Fitting tools: bounded maximum likelihood, profile-likelihood intervals, fluxes with errors,
and the bootstrap goodness of fit."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import infer
from bayspec_jax.infer import bounds
from bayspec_jax.infer.flux import KEV_TO_ERG, MPC_TO_CM


def _cpl_params(alpha_prior=None):
    alpha_prior = bj.unif(-8, 4) if alpha_prior is None else alpha_prior
    return {"alpha": bj.Par(-1.0, alpha_prior), "log_ec": bj.Par(2.0, bj.unif(0, 4)),
            "log_a": bj.Par(0.0, bj.unif(-10, 10))}


@pytest.fixture(scope="module")
def example(example_unit):
    return bj.Data([("u", example_unit)])


@pytest.fixture(scope="module")
def cpl_fit(example):
    problem = infer.Problem(bj.models.cpl, _cpl_params(), example)
    return problem, infer.maximum_likelihood(problem)


# ----------------------------------------------------------------------------------------------
# bounded maximum likelihood


def test_transform_round_trip_and_bounds():
    priors = (bj.unif(-1.5, 0), bj.logunif(0.1, 1000.0), bj.norm(0.0, 2.0))
    x = jnp.array([-0.7, 3.0, 5.0])
    round_trip = bounds.from_unconstrained(priors, bounds.to_unconstrained(priors, x))
    np.testing.assert_allclose(round_trip, x, rtol=1e-13)
    u = jnp.linspace(-20, 20, 101)[:, None] * jnp.ones(3)
    x = bounds.from_unconstrained(priors, u)
    assert np.all((x[:, 0] >= -1.5) & (x[:, 0] <= 0))
    assert np.all((x[:, 1] >= 0.1) & (x[:, 1] <= 1000))
    np.testing.assert_array_equal(x[:, 2], u[:, 2])
    # a start at (or beyond) a bound is moved inside it
    start = bounds.from_unconstrained(
        priors, bounds.to_unconstrained(priors, jnp.array([0.0, 0.1, 0.0])))
    assert -1.5 < start[0] < 0 and 0.1 < start[1]
    np.testing.assert_array_equal(bounds.at_bound(priors, jnp.array([0.0, 1000.0, 1e9])),
                                  [True, True, False])


def test_interior_optimum_equals_the_unbounded_fit(cpl_fit):
    problem, fit = cpl_fit
    free = infer.maximum_likelihood(problem, bounded=False)
    np.testing.assert_allclose(fit.best, free.best, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.stat, free.stat, rtol=1e-10)
    np.testing.assert_allclose(fit.errors, free.errors, rtol=1e-5)
    assert fit.at_bound == [] and fit.converged


@pytest.mark.parametrize("prior, bound", [(bj.unif(-0.5, 4), -0.5), (bj.logunif(0.2, 0.7), 0.2)])
def test_bounded_fit_stays_inside_the_prior(example, cpl_fit, prior, bound):
    """The unbounded optimum (alpha = -0.998) lies below the prior: the fit stops at the bound,
    where it equals the fit with alpha frozen there, and the error there is NaN."""
    _, reference = cpl_fit
    assert reference.best[0] < bound
    params = _cpl_params(alpha_prior=prior)
    params["alpha"] = bj.Par(0.5 if isinstance(prior, bj.logunif) else 0.0, prior)
    problem = infer.Problem(bj.models.cpl, params, example)
    fit = infer.maximum_likelihood(problem)
    assert fit.converged and fit.at_bound == ["alpha"]
    np.testing.assert_allclose(fit.best[0], bound, rtol=0, atol=1e-6)
    assert np.isnan(fit.errors[0]) and np.all(np.isfinite(fit.errors[1:]))
    assert np.all(fit.covariance[0] == 0) and "at bound" in fit.table()
    unbounded = infer.maximum_likelihood(problem, bounded=False)
    assert unbounded.best[0] < bound - 0.1
    pinned = dict(params, alpha=params["alpha"].frozen_at(bound))
    profile = infer.maximum_likelihood(infer.Problem(bj.models.cpl, pinned, example))
    np.testing.assert_allclose(fit.stat, profile.stat, rtol=1e-9)
    np.testing.assert_allclose(fit.best[1:], profile.best, rtol=0, atol=1e-5)
    # the others' errors: conditional on alpha at its bound
    np.testing.assert_allclose(fit.errors[1:], profile.errors, rtol=1e-4)


def test_batch_fit_respects_the_prior(example_unit, cpl_fit):
    params = _cpl_params(alpha_prior=bj.unif(-0.5, 4))
    params["alpha"] = bj.Par(0.0, bj.unif(-0.5, 4))
    sims = bj.simulate.draws(jax.random.PRNGKey(3), bj.models.cpl, [-1.0, 2.477, 0.699],
                             example_unit, 2)
    fit = infer.batch_maximum_likelihood(bj.models.cpl, params, example_unit, sims.src_counts,
                                         sims.bkg_counts)
    assert np.all(fit.best[:, 0] >= -0.5) and np.all(fit.at_bound[:, 0])
    assert np.all(np.isnan(fit.errors[:, 0])) and fit[0].at_bound == ["alpha"]


# ----------------------------------------------------------------------------------------------
# profile-likelihood intervals


def _linear(energy, p):
    """Linear in its parameters: with chi2, -2 loglike is exactly quadratic."""
    return 0.05 * (p[0] * (energy / 100.0) ** -1.0 + p[1] * (energy / 100.0) ** -2.5)


@pytest.fixture(scope="module")
def gaussian(example_unit):
    data = bj.Data([("u", example_unit.replace(stat="chi2"))])
    params = {"a": bj.Par(1.0, bj.unif(-100, 100)), "b": bj.Par(0.1, bj.norm(0, 10))}
    problem = infer.Problem(_linear, params, data)
    return problem, infer.maximum_likelihood(problem)


@pytest.mark.parametrize("delta", [1.0, 2.706])
def test_profile_interval_of_a_gaussian_likelihood_is_exact(gaussian, delta):
    problem, fit = gaussian
    ci = infer.confidence_intervals(problem, fit, delta=delta)
    half = math.sqrt(delta) * fit.errors
    np.testing.assert_allclose(ci.lower, fit.best - half, rtol=0, atol=1e-6 * fit.errors.min())
    np.testing.assert_allclose(ci.upper, fit.best + half, rtol=0, atol=1e-6 * fit.errors.min())
    assert ci.converged.all() and not ci.lower_at_bound.any() and not ci.upper_at_bound.any()
    assert not ci.new_minimum and "a" in ci.table()


def test_profile_interval_stops_at_the_prior_bound(example_unit, gaussian):
    problem, fit = gaussian
    top = float(fit.best[0] + 0.5 * fit.errors[0])
    params = {"a": bj.Par(fit.best[0], bj.unif(-100, top)), "b": bj.Par(0.1, bj.norm(0, 10))}
    bounded = infer.Problem(_linear, params, problem.data)
    ci = infer.confidence_intervals(bounded, infer.maximum_likelihood(bounded), names=["a"])
    assert ci.upper_at_bound.tolist() == [True] and ci.lower_at_bound.tolist() == [False]
    assert ci.upper[0] == top
    np.testing.assert_allclose(ci.lower, fit.best[0] - fit.errors[0], atol=1e-6 * fit.errors[0])
    assert "*" in ci.table()


def test_profile_intervals_on_the_example_match_a_scan(example, cpl_fit):
    """At each returned end, an independent fit with that parameter frozen there rises by delta
    (to 1e-4); half-way to the end it rises by less."""
    problem, fit = cpl_fit
    delta = 2.706
    ci = infer.confidence_intervals(problem, fit, delta=delta)
    assert ci.converged.all() and not ci.new_minimum
    params = _cpl_params()
    for k, name in enumerate(problem.names):
        for end in (ci.lower[k], ci.upper[k]):
            pinned = dict(params, **{name: params[name].frozen_at(end)})
            refit = infer.maximum_likelihood(infer.Problem(bj.models.cpl, pinned, example),
                                             start=np.delete(fit.best, k))
            assert abs(refit.stat - fit.stat - delta) < 1e-4, (name, end)
            _, stat, _ = infer.profile_stat(problem.objective, problem.arrays, k,
                                                0.5 * (end + fit.best[k]), jnp.asarray(fit.best))
            assert 0 < float(stat) - fit.stat < delta
    # not symmetric, but close to the Hessian's errors for this well-measured spectrum
    np.testing.assert_allclose(ci.upper - ci.best, math.sqrt(delta) * fit.errors, rtol=0.1)


# ----------------------------------------------------------------------------------------------
# fluxes


@pytest.mark.parametrize("alpha", [-1.5, -2.0, -1.0])
def test_power_law_flux_equals_the_integral(alpha):
    log_a, (e1, e2) = 0.3, (0.5, 7.0)
    amp = 10.0**log_a

    def integral(p):
        return amp * (math.log(e2 / e1) if p == -1 else (e2 ** (p + 1) - e1 ** (p + 1)) / (p + 1))

    params = jnp.array([alpha, log_a])
    photon = infer.band_flux(bj.models.pl, params, (e1, e2), "photon")
    energy = infer.band_flux(bj.models.pl, params, (e1, e2), "energy")
    np.testing.assert_allclose(float(photon), integral(alpha), rtol=1e-8)
    np.testing.assert_allclose(float(energy), integral(alpha + 1) * KEV_TO_ERG, rtol=1e-8)
    z, distance = 0.5, 1000 * MPC_TO_CM
    lum = infer.band_flux(bj.models.pl, params, (e1, e2), "luminosity", distance_cm=distance,
                          redshift=z)
    shifted = amp * (((e2 / (1 + z)) ** (alpha + 2) - (e1 / (1 + z)) ** (alpha + 2)) / (alpha + 2)
                     if alpha != -2 else math.log(e2 / e1))
    np.testing.assert_allclose(float(lum), 4 * math.pi * distance**2 * shifted * KEV_TO_ERG,
                               rtol=1e-8)
    result = infer.flux(bj.models.pl, params, (e1, e2), "photon")
    assert result.value == pytest.approx(integral(alpha), rel=1e-8) and result.units == "ph/cm^2/s"
    many = infer.flux(bj.models.pl, jnp.stack([params, params]), (e1, e2), "photon")
    np.testing.assert_allclose(many.samples, integral(alpha), rtol=1e-8)
    with pytest.raises(ValueError, match="distance_cm"):
        infer.band_flux(bj.models.pl, params, (e1, e2), "luminosity")
    with pytest.raises(ValueError, match="kind"):
        infer.band_flux(bj.models.pl, params, (e1, e2), "counts")


def test_flux_errors_from_covariance_draws_match_the_delta_method(cpl_fit):
    problem, fit = cpl_fit
    band = (10.0, 1000.0)
    result = infer.flux(problem.model, fit, band, problem=problem, key=jax.random.PRNGKey(0),
                        n_draws=4000)
    best = infer.band_flux(problem.model, problem.full(jnp.asarray(fit.best)), band)
    assert result.value == pytest.approx(float(best), rel=1e-12)
    assert result.lower < result.value < result.upper and result.n_dropped == 0
    # sampling noise of a 68% half-width from 4000 draws: ~1.5%
    np.testing.assert_allclose(0.5 * (result.upper - result.lower), result.delta_error, rtol=0.05)
    gradient = jax.grad(lambda x: infer.band_flux(problem.model, problem.full(x), band))(
        jnp.asarray(fit.best))
    g = np.asarray(gradient)
    np.testing.assert_allclose(result.delta_error, np.sqrt(g @ fit.covariance @ g), rtol=1e-10)
    # the same draws as a Posterior give the same interval
    draws = np.asarray(jax.random.multivariate_normal(
        jax.random.PRNGKey(0), jnp.asarray(fit.best), jnp.asarray(fit.covariance), (4000,),
        method="eigh"))
    posterior = infer.Posterior({n: draws[None, :, k] for k, n in enumerate(problem.names)})
    from_posterior = infer.flux(problem.model, posterior, band, problem=problem)
    np.testing.assert_allclose([from_posterior.lower, from_posterior.upper],
                               [result.lower, result.upper], rtol=1e-10)
    # a component of the model (here: the power law without its cutoff) is any callable
    no_cutoff = infer.flux(lambda e, p: bj.models.pl(e, jnp.stack([p[0], p[2]])), fit, band,
                           problem=problem, key=jax.random.PRNGKey(0))
    assert no_cutoff.value > result.value


# ----------------------------------------------------------------------------------------------
# goodness of fit


def test_goodness_p_value(example, cpl_fit):
    """The example spectrum was simulated from a cutoff power law: p is not extreme; a plain
    power law is rejected."""
    problem, fit = cpl_fit
    good = infer.goodness(problem, fit, 60, key=jax.random.PRNGKey(1))
    assert good.simulated.shape == (60,) and good.converged.all()
    assert 0.05 < good.p_value < 0.995
    wrong = infer.Problem(bj.models.pl, {"alpha": bj.Par(-1.0, bj.unif(-8, 4)),
                                         "log_a": bj.Par(0.0, bj.unif(-10, 10))}, example)
    wrong_fit = infer.maximum_likelihood(wrong)
    bad = infer.goodness(wrong, wrong_fit, 60, key=jax.random.PRNGKey(1))
    assert bad.p_value == 0.0 and "p = 0" in bad.table()


# ----------------------------------------------------------------------------------------------
# plots


@pytest.mark.parametrize("residuals", ["pseudo", "sigma", "ratio"])
def test_counts_spectrum_takes_data_params(example, cpl_fit, tmp_path, residuals):
    pyplot = pytest.importorskip("matplotlib.pyplot")
    from bayspec_jax import plot

    problem, fit = cpl_fit
    full = problem.full(jnp.asarray(fit.best))

    def model_line(figure):
        top = figure.axes[0]
        line = next(c for c in top.collections if c.get_label() == "model")
        return np.array([segment[0, 1] for segment in line.get_segments()])

    plain = plot.counts_spectrum(problem.model, full, example, residuals=residuals)
    scaled = plot.counts_spectrum(problem.model, full, example, residuals=residuals,
                                  data_params={"rf": jnp.array([1.25])},
                                  path=str(tmp_path / "counts.png"))
    np.testing.assert_allclose(model_line(scaled), 1.25 * model_line(plain), rtol=1e-10)
    assert (tmp_path / "counts.png").stat().st_size > 10_000
    plain.canvas.draw()
    labels = [t.get_text() for t in plain.axes[1].get_xticklabels() if t.get_text()]
    assert "100" in labels and not any("^" in label for label in labels)
    pyplot.close("all")
    with pytest.raises(ValueError, match="residuals"):
        plot.counts_spectrum(problem.model, full, example, residuals="chi")
