"""Calibration of batch fits: 68% intervals of many simulated spectra contain the truth 68% of
the time.

Setup: the built-in example observation (`bayspec_jax.examples`: GBM-like NaI unit, pgstat,
10-900 keV, grouped to 3 sigma with at most 10 channels per group) and the `cpl` model (pivot
1 keV). Each of `N_SPECTRA` spectra has its own truth, drawn from a normal prior centred on
the example's source (`examples.EXAMPLE_TRUTH` converted to the 1 keV pivot); its counts are
`simulate.draw` (Poisson source plus background, Gaussian background), all drawn in one vmap,
and all spectra are fitted in ONE jitted vmapped call (`infer.batch_maximum_likelihood`,
BFGS). Two kinds of 68% interval are checked: maximum likelihood +- 1 sigma Hessian errors over
256 spectra, and the posterior's 16-84% quantiles from BlackJAX NUTS over 200 spectra (all in
one vmapped run, `infer.batch_nuts` with the ML covariance as a fixed dense mass matrix; the
truths are drawn from the very prior the posterior uses, so this is simulation-based
calibration proper). With 200-256 spectra a coverage of 0.68 has a binomial sd of 0.03; the
tests ask for 0.60-0.76 for each parameter.
"""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import bayspec_jax as bj
from bayspec_jax import examples, infer, simulate

N_SPECTRA = 256
CENTRE = {"alpha": -1.0, "log_ec": math.log10(300.0),
          "log_a": examples.EXAMPLE_TRUTH["log_k"] + 2.0 * -examples.EXAMPLE_TRUTH["alpha"]}
"""The example source in `models.cpl`'s parameters: ``A = K (1 keV / 100 keV)^alpha``."""
PRIOR_SD = {"alpha": 0.15, "log_ec": 0.12, "log_a": 0.1}


def test_ml_intervals_cover_the_truth_68_percent(example_unit):
    start = time.perf_counter()
    unit = example_unit
    names = list(CENTRE)
    prior_key, draw_key = jax.random.split(jax.random.PRNGKey(20260214))
    centre = jnp.array([CENTRE[n] for n in names])
    sd = jnp.array([PRIOR_SD[n] for n in names])
    truths = centre + sd * jax.random.normal(prior_key, (N_SPECTRA, 3))
    keys = jax.random.split(draw_key, N_SPECTRA)
    sims = jax.jit(jax.vmap(lambda k, p: simulate.draw(k, bj.models.cpl, p, unit)))(keys, truths)
    params = {n: bj.Par(CENTRE[n], bj.norm(CENTRE[n], PRIOR_SD[n])) for n in names}

    fit = infer.batch_maximum_likelihood(bj.models.cpl, params, unit, sims.src_counts,
                                         sims.bkg_counts)

    assert fit.best.shape == (N_SPECTRA, 3) and fit.covariance.shape == (N_SPECTRA, 3, 3)
    assert np.all(fit.converged)
    assert np.all(np.isfinite(fit.errors)) and np.all(fit.errors > 0)
    coverage = fit.covers(np.asarray(truths)).mean(axis=0)
    print(f"\ncoverage of best +- 1 sigma over {N_SPECTRA} spectra: "
          + ", ".join(f"{n} {c:.3f}" for n, c in zip(names, coverage))
          + f" ({time.perf_counter() - start:.1f} s)")
    for name, value in zip(names, coverage):
        assert 0.60 <= value <= 0.76, f"{name}: coverage {value:.3f} outside [0.60, 0.76]"
    # pulls are standard normal: mean ~ 0, sd ~ 1 (a mixed-up batch would break these)
    pulls = (fit.best - np.asarray(truths)) / fit.errors
    assert np.all(np.abs(pulls.mean(axis=0)) < 0.25)
    assert np.all(np.abs(pulls.std(axis=0) - 1.0) < 0.15)


def test_nuts_posterior_intervals_cover_the_truth_68_percent(example_unit):
    """Simulation-based calibration proper: truths drawn from the prior the posterior uses, so
    the posterior's central 68% intervals (16-84% quantiles of BlackJAX NUTS draws, all spectra
    in one vmapped run, the ML covariance as the mass matrix) contain the truth 68% of the
    time."""
    unit = example_unit
    names = list(CENTRE)
    prior_key, draw_key, nuts_key = jax.random.split(jax.random.PRNGKey(20261125), 3)
    centre = jnp.array([CENTRE[n] for n in names])
    sd = jnp.array([PRIOR_SD[n] for n in names])
    n_spectra = 200
    truths = centre + sd * jax.random.normal(prior_key, (n_spectra, 3))
    keys = jax.random.split(draw_key, n_spectra)
    sims = jax.jit(jax.vmap(lambda k, p: simulate.draw(k, bj.models.cpl, p, unit)))(keys, truths)
    params = {n: bj.Par(CENTRE[n], bj.norm(CENTRE[n], PRIOR_SD[n])) for n in names}
    fit = infer.batch_maximum_likelihood(bj.models.cpl, params, unit, sims.src_counts,
                                         sims.bkg_counts, exact_hessian=False)

    posterior = infer.batch_nuts(
        bj.models.cpl, params, unit, sims.src_counts, sims.bkg_counts, key=nuts_key,
        num_warmup=0, num_samples=300, init=fit.best, step_size=0.7, dense_mass=True,
        inverse_mass_matrix=fit.covariance)

    assert float(np.mean(np.asarray(posterior.sample_stats["diverging"]))) < 0.01
    coverage = []
    for i, name in enumerate(names):
        draws = np.asarray(posterior.samples[name]).reshape(n_spectra, -1)
        low, high = np.quantile(draws, [0.16, 0.84], axis=1)
        truth = np.asarray(truths[:, i])
        coverage.append(float(np.mean((low <= truth) & (truth <= high))))
        # the posterior means scatter about the truth by about the posterior width
        pull = (draws.mean(axis=1) - truth) / draws.std(axis=1)
        assert abs(pull.mean()) < 0.3 and abs(pull.std() - 1.0) < 0.2, name
    print("\nNUTS 68% interval coverage over", n_spectra, "spectra:",
          dict(zip(names, np.round(coverage, 3))))
    for name, value in zip(names, coverage):
        assert 0.60 <= value <= 0.76, f"{name}: coverage {value:.3f} outside [0.60, 0.76]"
