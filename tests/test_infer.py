"""Fitting: maximum likelihood on JOINT, NumPyro and BlackJAX posteriors agree."""

import jax
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import infer


@pytest.fixture(scope="module")
def problem(joint):
    params = {"alpha": bj.Par(-1.0, bj.unif(-8, 4)), "log_ec": bj.Par(2.0, bj.unif(0, 4)),
              "log_a": bj.Par(0.0, bj.unif(-10, 10))}
    return infer.Problem(bj.models.cpl, params, joint)


def test_maximum_likelihood_reaches_the_reference_and_is_stable(problem, reference):
    fit = infer.maximum_likelihood(problem)
    assert fit.converged
    assert fit.stat <= reference["JOINT"]["stat"]
    assert fit.dof == sum(reference["JOINT"]["npoints"]) - 3
    restart = infer.maximum_likelihood(problem, start=[-1.4, 2.4, 2.0])
    np.testing.assert_allclose(restart.best, fit.best, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(restart.stat, fit.stat, rtol=1e-10)
    assert np.all(fit.errors > 0) and np.all(fit.errors < 0.1)
    np.testing.assert_allclose(fit.covariance, fit.covariance.T, rtol=1e-8)
    assert "alpha" in fit.table()


def test_numpyro_and_blackjax_log_densities_agree(problem):
    from numpyro.infer.util import log_density

    logdensity = infer.blackjax_logdensity(problem)
    for free in ([-1.56, 2.69, 2.35], [-1.2, 2.2, 1.9], [-1.7, 3.1, 2.6]):
        position = problem.to_position(np.asarray(free))
        numpyro_value, _ = log_density(infer.numpyro_model(problem), (), {}, position)
        np.testing.assert_allclose(float(numpyro_value), float(logdensity(position)), rtol=1e-10)
    grad = jax.grad(logdensity)(problem.to_position(np.array([-1.56, 2.69, 2.35])))
    assert all(np.isfinite(float(v)) for v in grad.values())
