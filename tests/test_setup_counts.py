"""The stacked form split in two: fold setups (the instrument) and grouped counts (the
observation); one fold path for every caller; responses behind one interface, including one
whose DRM depends on a parameter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import fold, infer, likelihood, models, simulate, views

JOINT_PARAMS = np.array([-1.563, 2.691, 2.354])


# -- many observations of one setup ---------------------------------------------------------


def test_vmap_over_counts_equals_the_loop_and_the_units(joint):
    n = 6
    keys = jax.random.split(jax.random.PRNGKey(3), len(joint))
    sims = [simulate.draws(k, models.cpl, JOINT_PARAMS, unit, n)
            for k, unit in zip(keys, joint.units)]
    src = [s.src_counts for s in sims]
    bkg = [s.bkg_counts for s in sims]
    counts = joint.group_counts(src, bkg)  # (spectrum, group) per setup
    assert counts[0].src_counts.shape == (n, sum(joint.setup[0].n_groups))

    def value(p, c):
        return likelihood.loglike(models.cpl, p, joint.setup, c)

    batched = jax.jit(jax.vmap(value, in_axes=(None, 0)))(jnp.asarray(JOINT_PARAMS), counts)
    # the same spectra as DataUnits with the template's groups: an independent path
    fakes = [simulate.fakeit(k, models.cpl, JOINT_PARAMS, unit, n=n, regroup=False)
             for k, unit in zip(keys, joint.units)]
    for i in range(n):
        one = joint.group_counts([s[i] for s in src], [b[i] for b in bkg])
        looped = float(value(jnp.asarray(JOINT_PARAMS), one))
        np.testing.assert_allclose(float(batched[i]), looped, rtol=1e-12)
        units = bj.Data([(name, fake[i]) for name, fake in zip(joint.names, fakes)])
        np.testing.assert_array_equal(units.units[0].src.counts, src[0][i])
        np.testing.assert_allclose(float(batched[i]),
                                   float(likelihood.loglike(models.cpl, JOINT_PARAMS, units)),
                                   rtol=1e-12)


def test_vmap_over_setups_and_counts(joint):
    """Sources with setups of one shape: `vmap` over both (here two scaled copies of JOINT)."""
    scaled = bj.Data([(name, unit.replace(rsp=bj.Response(
        unit.rsp.chbin, unit.rsp.phbin, np.asarray(unit.rsp.drm) * 1.1)))
        for name, unit in joint.items()])
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), (joint.setup, joint.counts),
                           (scaled.setup, scaled.counts))
    values = jax.vmap(lambda s, c: likelihood.loglike(models.cpl, JOINT_PARAMS, s, c))(*stacked)
    np.testing.assert_allclose(values, [likelihood.loglike(models.cpl, JOINT_PARAMS, d)
                                        for d in (joint, scaled)], rtol=1e-12)


def test_the_data_form_and_the_split_form_agree(joint, reference):
    split = likelihood.loglike(models.cpl, JOINT_PARAMS, joint.setup, joint.counts)
    whole = likelihood.loglike(models.cpl, JOINT_PARAMS, joint)
    older = likelihood.loglike(models.cpl, JOINT_PARAMS, joint.stacked)
    assert float(split) == float(whole) == float(older)
    with pytest.raises(TypeError, match="counts are required"):
        likelihood.loglike(models.cpl, JOINT_PARAMS, joint.setup)


# -- one fold path ----------------------------------------------------------------------------


def test_likelihood_views_and_fakeit_share_the_model_rate(joint):
    params = jnp.asarray(JOINT_PARAMS)
    from_likelihood = likelihood.model_ctsrate(models.cpl, params, joint)
    from_views = views.conv_ctsrate(models.cpl, params, joint)
    rebinned = views.conv_re_ctsrate(models.cpl, params, joint)
    for u, unit in enumerate(joint.units):
        per_channel = simulate.expected_counts(models.cpl, params, unit) / float(
            unit.corr_src_efficiency)
        grouped = jax.ops.segment_sum(per_channel, unit.group_ids, unit.n_groups + 1)
        np.testing.assert_allclose(from_likelihood[u], from_views[u], rtol=0)
        np.testing.assert_allclose(grouped[:unit.n_groups], from_likelihood[u], rtol=1e-12)
        regrouped = jax.ops.segment_sum(per_channel, unit.rebin_ids, unit.n_rebins + 1)
        np.testing.assert_allclose(regrouped[:unit.n_rebins], rebinned[u], rtol=1e-12)


def test_data_parameters_are_resolved_in_one_place(joint):
    setup = joint.setup[0]
    own = fold.group_factors(setup)
    given = fold.group_factors(setup, {"sf": jnp.array([2.0, 3.0]), "rf": jnp.array([1.0, 0.5])})
    unit = np.asarray(setup.group_unit)
    position = np.asarray(setup.positions)[unit]
    np.testing.assert_allclose(given.ts, np.asarray(own.ts) * np.array([2.0, 3.0])[position])
    np.testing.assert_allclose(given.tb, own.tb)
    np.testing.assert_allclose(given.rf, np.array([1.0, 0.5])[position])


# -- a response that depends on a parameter ---------------------------------------------------


class TiltedResponse(bj.AbstractLocationResponse):
    """A test response: a constant DRM tilted in photon energy by ``sin(ra)``, damped by
    ``cos(dec)`` (smooth in both)."""

    base: jax.Array
    tilt: jax.Array

    def drm_at(self, ra, dec):
        scale = 1.0 + 0.3 * jnp.sin(jnp.deg2rad(ra)) * jnp.cos(jnp.deg2rad(dec)) * self.tilt
        return self.base * scale[:, None]


@pytest.fixture(scope="module")
def tilted(data_dir):
    rsp = bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))
    centre = np.log(np.asarray(rsp.phbin, dtype=float).mean(axis=1))
    tilt = (centre - centre.mean()) / np.ptp(centre)
    response = TiltedResponse(rsp.chbin, rsp.phbin, base=jnp.asarray(rsp.drm),
                              tilt=jnp.asarray(tilt), ra=bj.Par(40.0, bj.unif(0, 360)),
                              dec=bj.Par(10.0, bj.unif(-90, 90)), name="tilted")
    unit = bj.DataUnit(src=str(data_dir / "ME/me.src"), bkg=str(data_dir / "ME/me.bkg"),
                       rsp=response, notc=[8, 900], grpg={"min_sigma": 2, "max_bin": 10})
    return unit, rsp


def test_a_location_response_folds_as_the_constant_one_at_its_position(tilted, joint):
    unit, rsp = tilted
    assert not unit.rsp.constant and rsp.constant
    data = bj.Data([("tilted", unit), ("bgo", joint["bgo"])])
    assert data.setup[0].dynamic
    for ra, dec in ((40.0, 10.0), (250.0, -60.0)):
        frozen = bj.Response(rsp.chbin, rsp.phbin, unit.rsp.drm_at(ra, dec))
        constant = bj.Data([("tilted", unit.replace(rsp=frozen)), ("bgo", joint["bgo"])])
        given = {"ra": jnp.array([ra, 0.0]), "dec": jnp.array([dec, 0.0])}
        np.testing.assert_allclose(
            float(likelihood.loglike(models.cpl, JOINT_PARAMS, data, data_params=given)),
            float(likelihood.loglike(models.cpl, JOINT_PARAMS, constant)), rtol=1e-12)
    with pytest.raises(ValueError, match="cannot be saved"):
        unit.save("/nonexistent/never-written")
    # the unit's own views use the DRM at its parameters' values
    at_own = bj.Response(rsp.chbin, rsp.phbin, unit.rsp.drm_at(40.0, 10.0))
    np.testing.assert_allclose(unit.rsp_drm, unit.replace(rsp=at_own).rsp_drm, rtol=1e-15)


def test_location_gradients_equal_central_differences_under_jit_and_vmap(tilted, joint):
    unit, _ = tilted
    data = bj.Data([("tilted", unit), ("bgo", joint["bgo"])])
    params = {"alpha": bj.Par(-1.5, bj.unif(-3, 1)), "log_ec": bj.Par(2.5, bj.unif(1, 4)),
              "log_a": bj.Par(2.0, bj.unif(-2, 6))}
    problem = infer.Problem(models.cpl, params, data)
    assert problem.names == ["alpha", "log_ec", "log_a", "ra@tilted", "dec@tilted"]
    free = jnp.array([-1.563, 2.691, 2.354, 40.0, 10.0])
    value_and_grad = jax.jit(jax.value_and_grad(problem.loglike))
    value, grad = value_and_grad(free, problem.arrays)
    for i, step in ((3, 1e-3), (4, 1e-3)):
        shift = jnp.zeros(5).at[i].set(step)
        difference = (problem.loglike(free + shift) - problem.loglike(free - shift)) / (2 * step)
        np.testing.assert_allclose(float(grad[i]), float(difference), rtol=1e-6)
    assert abs(float(grad[3])) > 1e-3  # the position matters
    positions = jnp.stack([free.at[3].set(ra) for ra in (10.0, 40.0, 200.0)])
    batched = jax.vmap(value_and_grad, in_axes=(0, None))(positions, problem.arrays)
    np.testing.assert_allclose(batched[0][1], value, rtol=1e-12)
    for k in range(3):
        one = value_and_grad(positions[k], problem.arrays)
        np.testing.assert_allclose(batched[0][k], one[0], rtol=1e-12)
        np.testing.assert_allclose(batched[1][k], one[1], rtol=1e-10)


def test_a_free_position_needs_a_location_response(joint):
    params = {"alpha": bj.Par(-1.5, bj.unif(-3, 1)), "log_ec": bj.Par(2.5, bj.unif(1, 4)),
              "log_a": bj.Par(2.0, bj.unif(-2, 6))}
    with pytest.raises(ValueError, match="constant response"):
        infer.Problem(models.cpl, params, joint,
                      data_params={"ra@nai": bj.Par(10.0, bj.unif(0, 360))})
