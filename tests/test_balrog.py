"""`BalrogResponse`: a location-dependent GBM response from a BALROG DRM provider (gbm-drm-gen's
interface), called on the host through `jax.pure_callback`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import infer, likelihood, models

JOINT_PARAMS = np.array([-1.563, 2.691, 2.354])


class FakeProvider:
    """gbm-drm-gen's interface on a real response: `set_location`, then `matrix` (chan, phot),
    `ebounds`, `monte_carlo_energies`; the DRM tilted smoothly with the position, one NaN."""

    def __init__(self, rsp):
        self.ebounds = np.r_[np.asarray(rsp.chbin[:, 0], float), float(rsp.chbin[-1, 1])]
        self.monte_carlo_energies = np.r_[np.asarray(rsp.phbin[:, 0], float),
                                          float(rsp.phbin[-1, 1])]
        self.base = np.asarray(rsp.drm, float)
        centre = np.log(np.asarray(rsp.phbin, float).mean(axis=1))
        self.tilt = (centre - centre.mean()) / np.ptp(centre)
        self.calls = 0

    def set_location(self, ra, dec):
        self.ra, self.dec = ra, dec

    @property
    def matrix(self):
        self.calls += 1
        scale = 1.0 + 0.3 * np.sin(np.deg2rad(self.ra)) * np.cos(np.deg2rad(self.dec)) * self.tilt
        matrix = (self.base * scale[:, None]).T.copy()
        matrix[0, 0] = np.nan  # gbm-drm-gen leaves NaN in some elements
        return matrix


@pytest.fixture(scope="module")
def nai_rsp(data_dir):
    return bj.Response.from_rsp(str(data_dir / "ME/me.rsp"))


def test_the_response_is_the_providers_matrix(nai_rsp):
    provider = FakeProvider(nai_rsp)
    rsp = bj.BalrogResponse(provider)
    assert not rsp.constant and rsp.balrog_drm is provider
    np.testing.assert_allclose(rsp.chbin, nai_rsp.chbin, rtol=1e-7)
    np.testing.assert_allclose(rsp.phbin, nai_rsp.phbin, rtol=1e-7)
    assert rsp.ra.prior == bj.unif(0.0, 360.0) and not rsp.ra.frozen
    assert rsp.dec.prior == bj.unif(-90.0, 90.0) and not rsp.dec.frozen
    assert rsp.factor.frozen and float(rsp.factor.value) == 1.0
    provider.set_location(120.0, -30.0)
    expected = provider.matrix.T
    expected[np.isnan(expected)] = 0.0
    np.testing.assert_array_equal(rsp.drm_at(120.0, -30.0), expected)
    traced = jax.jit(lambda ra, dec: rsp.drm_at(ra, dec))(120.0, -30.0)
    np.testing.assert_array_equal(traced, expected)
    at_default = rsp.drm  # at the Par values (0, 0): no tilt
    np.testing.assert_allclose(at_default[1:], np.asarray(nai_rsp.drm)[1:], rtol=1e-15)


@pytest.mark.parametrize("loader", ["from_rsp", "from_rsp2", "from_plain", "from_rmf_arf"])
def test_file_loaders_are_disabled(loader):
    with pytest.raises(AttributeError, match="BALROG provider"):
        getattr(bj.BalrogResponse, loader)("me.rsp")


def test_a_provider_without_the_interface_is_refused(nai_rsp):
    with pytest.raises(ValueError, match="set_location"):
        bj.BalrogResponse(object())
    provider = FakeProvider(nai_rsp)
    provider.ebounds = provider.ebounds[::-1]
    with pytest.raises(ValueError, match="ebounds"):
        bj.BalrogResponse(provider)


def test_a_unit_on_it_folds_and_fits_as_the_constant_response(data_dir, nai_rsp, joint):
    provider = FakeProvider(nai_rsp)
    position = dict(ra=bj.Par(75.0, frozen=True), dec=bj.Par(20.0, frozen=True))
    unit = bj.DataUnit(src=str(data_dir / "ME/me.src"), bkg=str(data_dir / "ME/me.bkg"),
                       rsp=bj.BalrogResponse(provider, **position), notc=[8, 900],
                       grpg={"min_sigma": 2, "max_bin": 10})
    frozen = bj.Response(nai_rsp.chbin, nai_rsp.phbin, unit.rsp.drm_at(75.0, 20.0))
    data = bj.Data([("nai", unit), ("bgo", joint["bgo"])])
    constant = bj.Data([("nai", unit.replace(rsp=frozen)), ("bgo", joint["bgo"])])
    value = jax.jit(lambda p: likelihood.loglike(models.cpl, p, data))(jnp.asarray(JOINT_PARAMS))
    np.testing.assert_allclose(float(value), float(likelihood.loglike(
        models.cpl, JOINT_PARAMS, constant)), rtol=1e-12)
    params = {"alpha": bj.Par(-1.5, bj.unif(-3, 1)), "log_ec": bj.Par(2.5, bj.unif(1, 4)),
              "log_a": bj.Par(2.0, bj.unif(-2, 6))}
    fit = infer.maximum_likelihood(infer.Problem(models.cpl, params, data))
    reference = infer.maximum_likelihood(infer.Problem(models.cpl, params, constant))
    np.testing.assert_allclose(fit.best, reference.best, rtol=1e-8)
    np.testing.assert_allclose(fit.stat, reference.stat, rtol=1e-10)
    # a free position: values at many positions in one vmapped call
    free = bj.Data([("nai", unit.replace(rsp=bj.BalrogResponse(provider))),
                    ("bgo", joint["bgo"])])
    problem = infer.Problem(models.cpl, params, free)
    assert problem.names[-2:] == ["ra@nai", "dec@nai"]
    positions = jnp.array([[*JOINT_PARAMS, ra, 20.0] for ra in (0.0, 75.0, 200.0)])
    values = jax.vmap(problem.loglike)(positions)
    np.testing.assert_allclose(values[1], value, rtol=1e-12)
    assert values[0] != values[1]


def test_optimal_grouping_needs_a_fixed_position(data_dir, nai_rsp):
    files = dict(src=str(data_dir / "ME/me.src"), bkg=str(data_dir / "ME/me.bkg"),
                 notc=[8, 900], grpg={"method": "optimal", "min_sigma": 2})
    with pytest.raises(ValueError, match="optimal.*freeze"):
        bj.DataUnit(rsp=bj.BalrogResponse(FakeProvider(nai_rsp)), **files)
    fixed = bj.BalrogResponse(FakeProvider(nai_rsp), ra=bj.Par(75.0, frozen=True),
                              dec=bj.Par(20.0, frozen=True))
    assert bj.DataUnit(rsp=fixed, **files).n_groups > 0
