"""Calibration of batch fits: 68% intervals of many simulated spectra contain the truth 68% of
the time.

Setup: the built-in example observation (`bayspec_jax.examples`: GBM-like NaI unit, pgstat,
10-900 keV, grouped to 3 sigma with at most 10 channels per group) and the `cpl` model (pivot
1 keV). Each of `N_SPECTRA` spectra has its own truth, drawn from a normal prior centred on
the example's source (`examples.EXAMPLE_TRUTH` converted to the 1 keV pivot); its counts are
`simulate.draw` (Poisson source plus background, Gaussian background), all drawn in one vmap,
and all spectra are fitted in ONE jitted vmapped call (`infer.batch_maximum_likelihood`,
BFGS). The intervals are maximum likelihood +- 1 sigma Hessian errors (`best +- errors`):
vmapped NUTS (`batch_nuts`) on this many spectra takes minutes on a 2-core CPU, so it is not
used here. With 256 spectra, a coverage of 0.68 has a binomial sd of 0.029; the test asks for
0.60-0.76 for each parameter.
"""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import examples, infer, simulate

N_SPECTRA = 256
CENTRE = {"alpha": -1.0, "log_ec": math.log10(300.0),
          "log_a": examples.EXAMPLE_TRUTH["log_k"] + 2.0 * -examples.EXAMPLE_TRUTH["alpha"]}
"""The example source in `models.cpl`'s parameters: ``A = K (1 keV / 100 keV)^alpha``."""
PRIOR_SD = {"alpha": 0.15, "log_ec": 0.12, "log_a": 0.1}


@pytest.fixture(scope="module")
def example_unit(tmp_path_factory):
    paths = examples.write_example_files(tmp_path_factory.mktemp("example"))
    return bj.DataUnit(src=paths["src"], bkg=paths["bkg"], rsp=paths["rsp"], notc=[10.0, 900.0],
                       stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})


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
