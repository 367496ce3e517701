"""Posterior results (summary, diagnostics, conversions), NumPyro NUTS on JOINT, and batch
maximum likelihood against single-spectrum fits."""

import sys
import types

import jax
import numpy as np
import pytest
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

import bayspec_jax as bj
from bayspec_jax import infer, simulate
from bayspec_jax.infer import Posterior

CPL_PARAMS = {"alpha": bj.Par(-1.0, bj.unif(-8, 4)), "log_ec": bj.Par(2.0, bj.unif(0, 4)),
              "log_a": bj.Par(0.0, bj.unif(-10, 10))}


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(7)
    return {"a": rng.normal(1.0, 2.0, (2, 300)), "b": rng.gamma(2.0, 1.0, (2, 300))}


def _column(table, title):
    return np.array([float(v) for v in table.columns[title]])


def test_summary_equals_numpy(samples):
    post = Posterior(samples, sample_stats={"diverging": np.zeros((2, 300), bool)})
    assert post.names == ["a", "b"] and post.num_chains == 2 and post.num_draws == 300
    table = post.summary()
    assert list(table.columns) == ["parameter", "mean", "sd", "16%", "50%", "84%", "r_hat", "ess"]
    assert table.columns["parameter"] == ["a", "b"]
    for name in ("mean", "sd", "16%", "50%", "84%", "r_hat", "ess"):
        assert _column(table, name).shape == (2,)
    for i, (key, x) in enumerate(samples.items()):
        flat = x.reshape(-1)
        np.testing.assert_allclose(post.mean()[key], flat.mean(), rtol=1e-14)
        np.testing.assert_allclose(post.sd()[key], flat.std(ddof=1), rtol=1e-14)
        np.testing.assert_allclose(post.quantile([0.16, 0.5, 0.84])[key],
                                   np.quantile(flat, [0.16, 0.5, 0.84]), rtol=1e-14)
        np.testing.assert_allclose(post.r_hat()[key], split_gelman_rubin(x), rtol=1e-12)
        np.testing.assert_allclose(post.ess()[key], effective_sample_size(x), rtol=1e-12)
        # the table shows the same numbers (6 significant digits)
        np.testing.assert_allclose(_column(table, "mean")[i], flat.mean(), rtol=1e-5)
        np.testing.assert_allclose(_column(table, "sd")[i], flat.std(ddof=1), rtol=1e-5)
        np.testing.assert_allclose([_column(table, c)[i] for c in ("16%", "50%", "84%")],
                                   np.quantile(flat, [0.16, 0.5, 0.84]), rtol=1e-5)
        np.testing.assert_allclose(_column(table, "r_hat")[i], split_gelman_rubin(x), rtol=1e-5)
    assert post.num_divergent == 0
    assert "a" in str(table) and "<table>" in table._repr_html_()


def test_batched_posterior_and_blackjax_layout(samples):
    array = np.stack([np.stack([samples["a"], samples["b"]], -1)] * 3)  # (3, chain, draw, 2)
    array[1] += 1.0
    post = Posterior.from_blackjax(array, ["a", "b"], batch_ndim=1,
                                   sample_stats={"diverging": np.zeros((3, 2, 300), bool)})
    assert post.batch_shape == (3,) and post.samples["a"].shape == (3, 2, 300)
    np.testing.assert_allclose(post.mean()["a"], [samples["a"].mean(), samples["a"].mean() + 1,
                                                  samples["a"].mean()])
    np.testing.assert_allclose(post.r_hat()["b"], [split_gelman_rubin(samples["b"])] * 3,
                               rtol=1e-12)
    np.testing.assert_array_equal(post.num_divergent, [0, 0, 0])
    one = post[1]
    assert one.batch_ndim == 0
    np.testing.assert_allclose(one.samples["b"], samples["b"] + 1.0)
    with pytest.raises(ValueError, match="posterior\\[i\\]"):
        post.summary()
    same = Posterior.from_blackjax(samples)
    np.testing.assert_array_equal(same.samples["a"], samples["a"])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="samples"):
        Posterior({})
    with pytest.raises(ValueError, match="samples\\['a'\\]"):
        Posterior({"a": np.zeros(10)})
    with pytest.raises(ValueError, match="samples\\['b'\\]"):
        Posterior({"a": np.zeros((2, 10)), "b": np.zeros((2, 11))})
    with pytest.raises(ValueError, match="sample_stats"):
        Posterior({"a": np.zeros((2, 10))}, sample_stats={"diverging": np.zeros((3, 10))})
    with pytest.raises(ValueError, match="names"):
        Posterior.from_blackjax(np.zeros((2, 10, 3)))
    with pytest.raises(ValueError, match="positions"):
        Posterior.from_blackjax(np.zeros((2, 10, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="no parameter named"):
        Posterior({"a": np.zeros((2, 10))}).flat("z")
    with pytest.raises(ValueError, match="q must"):
        Posterior({"a": np.zeros((2, 10))}).quantile(1.5)


def test_to_arviz_needs_arviz_and_passes_the_groups(samples, monkeypatch):
    post = Posterior(samples, sample_stats={"diverging": np.zeros((2, 300), bool)})
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match="pip install arviz"):
        post.to_arviz()
    calls = []
    for version in ("0.20.0", "1.0.0"):
        stub = types.ModuleType("arviz")
        stub.__version__ = version
        stub.from_dict = lambda *args, **kwargs: calls.append((args, kwargs)) or "idata"
        monkeypatch.setitem(sys.modules, "arviz", stub)
        assert post.to_arviz() == "idata"
    (old_args, old_kwargs), (new_args, new_kwargs) = calls
    assert old_args == () and set(old_kwargs) == {"posterior", "sample_stats"}
    assert new_kwargs == {} and set(new_args[0]) == {"posterior", "sample_stats"}
    np.testing.assert_array_equal(old_kwargs["posterior"]["a"], samples["a"])


@pytest.fixture(scope="module")
def problem(joint):
    return infer.Problem(bj.models.cpl, CPL_PARAMS, joint)


def test_numpyro_nuts_on_joint_converges(problem):
    near_best = np.array([-1.56, 2.69, 2.35])  # JOINT's best fit (test_infer), to 2 decimals
    post = infer.run_nuts(problem, num_warmup=300, num_samples=400, num_chains=2,
                          key=jax.random.PRNGKey(3), init=near_best)
    assert post.names == problem.names and post.samples["alpha"].shape == (2, 400)
    assert set(post.sample_stats) == {"diverging", "n_steps", "lp"}
    r_hat = post.r_hat()
    print("\nJOINT NUTS r_hat", r_hat, "ess", post.ess())
    assert all(r_hat[name] < 1.01 for name in problem.names), r_hat
    assert post.num_divergent == 0
    mean, sd = post.mean(), post.sd()
    for i, name in enumerate(problem.names):  # the posterior sits on the best fit
        assert abs(mean[name] - near_best[i]) < 0.01 + 0.5 * sd[name]
    assert "r_hat" in str(post.summary())
    with pytest.raises(ValueError, match="init"):
        infer.run_nuts(problem, 10, 10, 2, jax.random.PRNGKey(0), init=[0.0, 1.0])
    with pytest.raises(ValueError, match="num_chains"):
        infer.run_nuts(problem, 10, 10, 0, jax.random.PRNGKey(0))


def test_batch_ml_equals_single_fits(example_unit):
    truth = [-1.0, 2.477, 0.699]
    key = jax.random.PRNGKey(11)
    n = 2
    sims = simulate.draws(key, bj.models.cpl, truth, example_unit, n)
    fit = infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, example_unit,
                                         sims.src_counts, sims.bkg_counts)
    assert len(fit) == n and np.all(fit.converged)
    # the same spectra as DataUnits (fakeit with the template's groups): ordinary fits agree
    fakes = simulate.fakeit(key, bj.models.cpl, truth, example_unit, n=n, regroup=False)
    for i, fake in enumerate(fakes):
        np.testing.assert_array_equal(fake.src.counts, sims.src_counts[i])
        assert fake.n_groups == example_unit.n_groups
        stacks = infer.spectrum_stacks(example_unit, sims.src_counts[i], sims.bkg_counts[i])
        for field in ("src_counts", "bkg_counts", "src_errors", "bkg_errors"):
            np.testing.assert_allclose(getattr(stacks[0], field),
                                       getattr(fake, field), rtol=1e-12, err_msg=field)
        single = infer.maximum_likelihood(
            infer.Problem(bj.models.cpl, CPL_PARAMS, bj.Data([("u", fake)])))
        np.testing.assert_allclose(fit.best[i], single.best, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(fit.stat[i], single.stat, rtol=1e-9)
        np.testing.assert_allclose(fit.errors[i], single.errors, rtol=1e-5)
        assert fit[i].dof == single.dof
    np.testing.assert_array_equal(fit.covers(truth).shape, (n, 3))


def test_batch_input_errors(example_unit):
    counts = np.zeros((2, 128))
    with pytest.raises(ValueError, match="src_counts"):
        infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, example_unit, counts[:, :10])
    with pytest.raises(ValueError, match="bkg_counts has"):
        infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, example_unit, counts,
                                       np.zeros((3, 128)))
    with pytest.raises(ValueError, match="start"):
        infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, example_unit, counts,
                                       start=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="template"):
        infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, "x.pha", counts)
    nan = counts.copy()
    nan[0, 40] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        infer.batch_maximum_likelihood(bj.models.cpl, CPL_PARAMS, example_unit, nan)
    with pytest.raises(ValueError, match="step_size"):
        infer.batch_nuts(bj.models.cpl, CPL_PARAMS, example_unit, counts,
                         key=jax.random.PRNGKey(0), num_warmup=0)
    with pytest.raises(ValueError, match="num_samples"):
        infer.batch_nuts(bj.models.cpl, CPL_PARAMS, example_unit, counts,
                         key=jax.random.PRNGKey(0), num_samples=0)


def test_difference_hessian_matches_autodiff():
    from bayspec_jax.infer.mle import difference_hessian

    def f(x):
        return jax.numpy.sum(jax.numpy.exp(0.3 * x) * x[::-1]) + x[0] ** 2 * x[1]

    x = jax.numpy.array([0.4, -1.2, 2.5])
    np.testing.assert_allclose(difference_hessian(jax.grad(f), x), jax.hessian(f)(x),
                               rtol=1e-7, atol=1e-8)


def test_maximum_likelihood_with_a_difference_hessian(example_unit):
    """``exact_hessian=False``: the same best fit, the covariance from central differences of
    the gradient equal to the autodiff one to the differences' accuracy."""
    problem = infer.Problem(bj.models.cpl, CPL_PARAMS, bj.Data([("u", example_unit)]))
    exact = infer.maximum_likelihood(problem)
    differenced = infer.maximum_likelihood(problem, exact_hessian=False)
    np.testing.assert_allclose(differenced.best, exact.best, rtol=1e-12)
    assert differenced.loglike == exact.loglike
    np.testing.assert_allclose(differenced.covariance, exact.covariance, rtol=1e-5)
    assert not np.allclose(differenced.covariance, exact.covariance, rtol=1e-13, atol=0)
