"""Fit problems with the data layer's parameters: naming, links, scales, priors, tables, fits.

On JOINT one compile costs more than many eager evaluations: the tests compile twice (the
value and gradient of `linked`, and one maximum-likelihood fit) and evaluate eagerly otherwise.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import infer, likelihood, models

JOINT_PARAMS = np.array([-1.563, 2.691, 2.354])
JOINT_LOGLIKE = -209.82250450302072


def _model_params():
    return {"alpha": bj.Par(-1.0, bj.unif(-8, 4)), "log_ec": bj.Par(2.0, bj.unif(0, 4)),
            "log_a": bj.Par(0.0, bj.unif(-10, 10))}


@pytest.fixture(scope="module")
def rf_free(joint):
    """cpl on JOINT with the BGO response factor free."""
    return infer.Problem(models.cpl, _model_params(), joint,
                         data_params={"rf@bgo": bj.Par(1.0, bj.unif(0.5, 1.5))})


@pytest.fixture(scope="module")
def linked(joint):
    """cpl on JOINT with one source factor shared by both units and the BGO response free."""
    return infer.Problem(models.cpl, _model_params(), joint,
                         data_params={"sf@nai": bj.Par(1.0, bj.norm(1.0, 0.1)),
                                      "sf@bgo": bj.Par(0.7, frozen=True),
                                      "rf@bgo": bj.Par(1.0, bj.unif(0.5, 1.5))},
                         links=[("sf@nai", "sf@bgo")])


@pytest.fixture(scope="module")
def linked_value_and_grad(linked):
    """``free -> (loglike, gradient)`` of `linked`, compiled once."""
    compiled = jax.jit(jax.value_and_grad(linked.loglike))
    return lambda free: compiled(jnp.asarray(free, dtype=float), linked.stacks)


def test_data_parameters_are_named_and_ordered_after_the_model(rf_free, linked, joint):
    assert rf_free.names == ["alpha", "log_ec", "log_a", "rf@bgo"]
    assert rf_free.n_free == 4 and rf_free.dof == sum(joint.npoints) - 4
    np.testing.assert_array_equal(np.asarray(rf_free.initial()), [-1.0, 2.0, 0.0, 1.0])
    assert linked.names == ["alpha", "log_ec", "log_a", "sf@nai", "rf@bgo"]
    assert linked.leader == {"sf@bgo": "sf@nai"}
    free = np.r_[JOINT_PARAMS, 1.1]
    np.testing.assert_array_equal(np.asarray(rf_free.full(free)), JOINT_PARAMS)
    assert rf_free.to_position(free)["rf@bgo"] == 1.1
    np.testing.assert_array_equal(np.asarray(rf_free.from_position(rf_free.to_position(free))),
                                  free)
    values = rf_free.data_values(free)
    np.testing.assert_array_equal(np.asarray(values["rf"]), [1.0, 1.1])
    np.testing.assert_array_equal(np.asarray(values["sf"]), [1.0, 1.0])
    np.testing.assert_array_equal(np.asarray(values["ra"]), [0.0, 0.0])
    # A problem with no data parameter free passes no factors: the stacks' own apply.
    assert infer.Problem(models.cpl, _model_params(), joint).data_params(JOINT_PARAMS) is None


def test_loglike_with_a_free_response_factor(rf_free, linked_value_and_grad, joint):
    at_one = float(rf_free.loglike(np.r_[JOINT_PARAMS, 1.0]))
    np.testing.assert_allclose(at_one, JOINT_LOGLIKE, rtol=1e-10)
    expected = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                        data_params={"rf": jnp.array([1.0, 1.1])}))
    np.testing.assert_allclose(float(rf_free.loglike(np.r_[JOINT_PARAMS, 1.1])), expected,
                               rtol=1e-12)
    assert abs(expected - at_one) > 1.0
    # Compiled, through the linked problem (sf@nai = sf@bgo = 1): the same numbers.
    np.testing.assert_allclose(float(linked_value_and_grad(np.r_[JOINT_PARAMS, 1.0, 1.0])[0]),
                               JOINT_LOGLIKE, rtol=1e-10)
    np.testing.assert_allclose(float(linked_value_and_grad(np.r_[JOINT_PARAMS, 1.0, 1.1])[0]),
                               expected, rtol=1e-12)
    # The prior is on val, the free parameter itself; outside its support the density is -inf.
    prior = float(rf_free.log_prior(np.r_[JOINT_PARAMS, 1.1]))
    np.testing.assert_allclose(prior, -math.log(12) - math.log(4) - math.log(20) - math.log(1.0))
    assert float(rf_free.log_prior(np.r_[JOINT_PARAMS, 1.6])) == -np.inf
    np.testing.assert_allclose(float(rf_free.log_posterior(np.r_[JOINT_PARAMS, 1.1])),
                               prior + expected, rtol=1e-12)


def test_gradients_match_central_differences(linked_value_and_grad):
    free = np.r_[JOINT_PARAMS, 1.05, 0.95]
    grad = np.asarray(linked_value_and_grad(free)[1])
    assert np.all(np.isfinite(grad))
    f = lambda x: float(linked_value_and_grad(x)[0])
    for i in (3, 4):  # sf@nai (shared by both units) and rf@bgo
        h = 1e-6
        step = np.zeros_like(free)
        step[i] = h
        numeric = (f(free + step) - f(free - step)) / (2 * h)
        assert abs(grad[i]) > 1.0
        np.testing.assert_allclose(grad[i], numeric, rtol=1e-6)


def test_a_link_moves_both_units_together(linked, linked_value_and_grad, joint):
    free = np.r_[JOINT_PARAMS, 1.2, 1.0]
    values = linked.data_values(free)
    np.testing.assert_array_equal(np.asarray(values["sf"]), [1.2, 1.2])
    value = float(linked_value_and_grad(free)[0])
    expected = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                        data_params={"sf": jnp.array([1.2, 1.2])}))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    only_nai = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                        data_params={"sf": jnp.array([1.2, 1.0])}))
    assert abs(value - only_nai) > 1e-3
    # The follower's own Par (frozen at 0.7) is replaced by its leader's; one prior term.
    assert linked.pars["sf@bgo"] is linked.pars["sf@nai"]
    np.testing.assert_allclose(float(linked.log_prior(free)),
                               float(bj.norm(1.0, 0.1).log_prob(1.2)) - math.log(12)
                               - math.log(4) - math.log(20) - math.log(1.0), rtol=1e-12)


def test_log_scale_data_parameter(joint):
    problem = infer.Problem(models.cpl, _model_params(), joint,
                            data_params={"rf@nai": bj.Par(0.0, bj.unif(-0.3, 0.3), scale="log")})
    free = np.r_[JOINT_PARAMS, math.log10(1.1)]
    np.testing.assert_allclose(np.asarray(problem.data_values(free)["rf"]), [1.1, 1.0],
                               rtol=1e-15)
    expected = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                        data_params={"rf": jnp.array([1.1, 1.0])}))
    np.testing.assert_allclose(float(problem.loglike(free)), expected, rtol=1e-12)
    np.testing.assert_allclose(float(problem.log_prior(free)),
                               -math.log(12) - math.log(4) - math.log(20) - math.log(0.6))
    # A frozen replacement is passed on too, at its physical value.
    frozen = infer.Problem(models.cpl, _model_params(), joint,
                           data_params={"bf@nai": bj.Par(math.log10(0.9), frozen=True,
                                                         scale="log")})
    assert frozen.names == ["alpha", "log_ec", "log_a"]
    expected = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                        data_params={"bf": jnp.array([0.9, 1.0])}))
    np.testing.assert_allclose(float(frozen.loglike(JOINT_PARAMS)), expected, rtol=1e-12)


def test_clear_errors(joint):
    params = _model_params()
    free_rf = bj.Par(1.0, bj.unif(0.5, 1.5))
    with pytest.raises(ValueError, match="'rf@cosi'"):
        infer.Problem(models.cpl, params, joint, data_params={"rf@cosi": free_rf})
    with pytest.raises(ValueError, match="'xf@nai'"):
        infer.Problem(models.cpl, params, joint, data_params={"xf@nai": free_rf})
    with pytest.raises(ValueError, match="'sf@gbm'"):
        infer.Problem(models.cpl, params, joint, links=[("sf@nai", "sf@gbm")])
    with pytest.raises(ValueError, match="'sf@nai'"):
        infer.Problem(models.cpl, params, joint, links=[("sf@nai", "sf@bgo"), ("bf@nai", "sf@nai")])
    with pytest.raises(ValueError, match="two or more"):
        infer.Problem(models.cpl, params, joint, links=[("sf@nai",)])
    with pytest.raises(ValueError, match="'ra@bgo'"):
        infer.Problem(models.cpl, params, joint, data_params={"ra@bgo": bj.Par(10.0, bj.unif(0, 360))})
    with pytest.raises(ValueError, match="'rf@bgo' must be a Par"):
        infer.Problem(models.cpl, params, joint, data_params={"rf@bgo": 1.0})
    with pytest.raises(ValueError, match="free parameter"):
        infer.Problem(models.cpl, params, joint).from_position({"alpha": 1.0})


def test_tables_list_every_parameter(linked):
    rows = linked.all_params
    assert [r["Name"] for r in rows] == (
        ["alpha", "log_ec", "log_a"]
        + [f"{label}@{unit}" for unit in ("nai", "bgo") for label in ("sf", "bf", "rf", "ra", "dec")])
    assert [r["par#"] for r in rows] == [str(i) for i in range(1, 14)]
    by_name = {r["Name"]: r for r in rows}
    assert [r["Name"] for r in rows if r["Free"]] == linked.names
    assert by_name["alpha"]["Class"] == "model" and by_name["alpha"]["Component"] == "cpl"
    assert by_name["rf@bgo"]["Class"] == "data" and by_name["rf@bgo"]["Component"] == "bgo"
    assert by_name["rf@bgo"]["Parameter"] == "rf" and not by_name["rf@bgo"]["Frozen"]
    assert by_name["rf@nai"]["Frozen"] and not by_name["rf@nai"]["Free"]
    assert by_name["sf@bgo"]["Linked"] == "sf@nai" and not by_name["sf@bgo"]["Free"]
    assert by_name["sf@bgo"]["Prior"] == repr(bj.norm(1.0, 0.1))
    assert by_name["sf@nai"]["Linked"] is None
    table = linked.par_info
    assert table.nrows == 13
    assert table.columns["par#"][:4] == ["1*", "2*", "3*", "4*"]
    assert table.columns["par#"][4] == "5"
    assert table.columns["Linked"][8] == "=sf@nai"
    assert "rf@bgo" in table.text and "rf@bgo" in table.html
    assert "rf@bgo" in str(linked) and "<table>" in linked._repr_html_()
    assert linked.free_par_info.columns["Name"] == linked.names


def test_numpyro_and_blackjax_agree_with_data_parameters(linked):
    from numpyro.infer.util import log_density

    logdensity = infer.blackjax_logdensity(linked)
    free = np.array([-1.5, 2.6, 2.3, 1.1, 1.2])  # every parameter away from its start
    position = linked.to_position(free)
    assert set(position) == {"alpha", "log_ec", "log_a", "sf@nai", "rf@bgo"}
    numpyro_value, _ = log_density(infer.numpyro_model(linked), (), {}, position)
    blackjax_value = float(logdensity(position))
    np.testing.assert_allclose(float(numpyro_value), blackjax_value, rtol=1e-10)
    np.testing.assert_allclose(blackjax_value, float(linked.log_posterior(free)), rtol=1e-12)


def test_freeing_the_response_factor_fits_better(rf_free, reference):
    fit = infer.maximum_likelihood(rf_free)
    assert fit.converged and fit.names == rf_free.names
    # The fit with rf@bgo frozen at 1 reaches the reference statistic (tests/test_infer.py);
    # freeing it can only do better, and here does much better.
    assert fit.stat <= reference["JOINT"]["stat"] - 10
    assert 0.5 < fit.best[3] < 1.5 and 0 < fit.errors[3] < 0.2
    np.testing.assert_allclose(fit.stat, -2 * float(rf_free.loglike(fit.best)), rtol=1e-10)
    assert "rf@bgo" in fit.table()
