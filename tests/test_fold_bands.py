"""Banded folding: which blocks `band_plan` bands, and that bands change no number."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import fold, likelihood, models
from bayspec_jax.data import stack as stack_module

XRAY_PARAMS = np.array([-1.6, 2.0, -2.0])  # cpl: alpha, log10 Ec, log10 A


@pytest.fixture(scope="module")
def acis(data_dir):
    x = data_dir / "XRAY-sherpa-3c273"
    return bj.DataUnit(src=str(x / "3c273.pi"), bkg=str(x / "3c273_bg.pi"),
                       rmf=str(x / "3c273.rmf"), arf=str(x / "3c273.arf"), notc=[0.5, 7.0],
                       stat="cstat")


def _force_bands(monkeypatch, n_bands):
    monkeypatch.setattr(stack_module, "MAX_BANDS", n_bands)
    monkeypatch.setattr(stack_module, "BAND_OVERHEAD", 0)
    monkeypatch.setattr(stack_module, "MIN_BAND_SAVING", -np.inf)


def _kinds(data):
    return [type(block).__name__ for stack in data.stacked for block in stack.blocks]


def test_plan_keeps_dense_responses_plain_and_bands_sparse_ones(joint, acis):
    assert _kinds(joint) == ["FoldBlock", "FoldBlock"]  # GBM: 69% non-zero
    assert _kinds(bj.Data([("acis", acis)])) == ["FoldBlock"]  # 40 groups: too small to pay
    ungrouped = bj.Data([("acis", acis.replace(grpg={"max_bin": 1}))])
    (block,) = ungrouped.stacked[0].blocks
    assert isinstance(block, stack_module.BandedBlock)
    assert 2 <= len(block.bands) <= stack_module.MAX_BANDS
    assert block.n_stored < 0.5 * block.nphot * block.take.shape[0]
    # every non-zero of the response is inside its band
    drm = np.asarray(acis.replace(grpg={"max_bin": 1}).rsp_drm)
    np.testing.assert_array_equal(np.asarray(block.dense()[0]), drm)


def test_bands_change_nothing_against_bayspec(data_dir, reference, monkeypatch):
    """The reference cases folded in 8 bands still give bayspec's numbers."""
    from test_likelihood import PL, _reference_data

    _force_bands(monkeypatch, 8)
    units = _reference_data(data_dir)
    for case, unit in units.items():
        data = bj.Data([(case, unit)])
        assert _kinds(data) == ["BandedBlock"], case
        params = np.array(PL[case])
        rate = likelihood.model_ctsrate(models.pl, params, data)[0]
        np.testing.assert_allclose(np.asarray(rate), reference[case]["model_conv_ctsrate"],
                                   rtol=1e-10, err_msg=case)
        np.testing.assert_allclose(float(likelihood.stat(models.pl, params, data)),
                                   reference[case][f"pair_{unit.stat}_stat"], rtol=1e-10,
                                   err_msg=case)


def test_banded_and_plain_agree_in_value_gradient_and_vmap(acis, monkeypatch):
    ungrouped = acis.replace(grpg={"max_bin": 1})
    pairs = [("a", ungrouped), ("b", ungrouped.replace(notc=[1.0, 6.0])),
             ("a_again", ungrouped)]  # identical responses share their columns
    banded = bj.Data(pairs)
    assert _kinds(banded) == ["BandedBlock"]
    monkeypatch.setattr(stack_module, "MIN_BAND_SAVING", np.inf)
    plain = bj.Data(pairs)
    monkeypatch.undo()
    assert _kinds(plain) == ["FoldBlock"]
    factors = {"sf": jnp.array([1.0, 1.1, 0.9]), "bf": jnp.array([1.0, 0.8, 1.2]),
               "rf": jnp.array([1.05, 1.0, 0.95])}

    def total(params, data_params, data):
        return likelihood.loglike(models.cpl, params, data, data_params)

    value_and_grad = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))
    (value_b, grads_b), (value_p, grads_p) = (value_and_grad(XRAY_PARAMS, factors, d)
                                              for d in (banded, plain))
    np.testing.assert_allclose(float(value_b), float(value_p), rtol=1e-12)
    for got, want in zip(jax.tree.leaves(grads_b), jax.tree.leaves(grads_p)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10)
    per_unit = likelihood.unit_loglike(models.cpl, XRAY_PARAMS, banded)
    # Identical units, identical values up to the order of the per-unit sum (a GPU's
    # segment_sum adds in no fixed order: 9e-16 apart on an H200).
    np.testing.assert_allclose(float(per_unit[0]), float(per_unit[2]), rtol=1e-14)
    batch = XRAY_PARAMS + np.linspace(-0.01, 0.01, 5)[:, None]
    vmapped = jax.vmap(lambda p: likelihood.loglike(models.cpl, p, banded))(batch)
    looped = [float(likelihood.loglike(models.cpl, p, plain)) for p in batch]
    np.testing.assert_allclose(np.asarray(vmapped), looped, rtol=1e-12)


def test_banded_block_folds_like_its_matrix_on_random_band_structures():
    rng = np.random.default_rng(7)
    for trial in range(4):
        nphot, n_columns = rng.integers(5, 60), rng.integers(2, 50)
        centre = np.sort(rng.integers(0, nphot, n_columns))
        width = rng.integers(0, 6, n_columns)
        rows = np.arange(nphot)[:, None]
        drm = rng.random((nphot, n_columns)) * (np.abs(rows - centre) <= width)
        drm[:, rng.random(n_columns) < 0.1] = 0.0  # some empty columns
        order = rng.permutation(n_columns)
        drm = drm[:, order]
        for n_bands in (2, 4, 8):
            bands = [b for b in np.array_split(rng.permutation(n_columns), n_bands) if b.size]
            take = rng.integers(0, n_columns, n_columns + 3)
            block = stack_module._banded_block(drm, bands, take, (0,), 0)
            np.testing.assert_array_equal(np.asarray(block.dense()[0]), drm[:, take])
            flux = rng.random(nphot)
            np.testing.assert_allclose(np.asarray(fold.fold_block(block, jnp.asarray(flux)[None])),
                                       flux @ drm[:, take], rtol=1e-12, atol=1e-300,
                                       err_msg=f"trial {trial}, {n_bands} bands")


def test_band_plan_cost_model():
    nphot = 1000
    rows = np.arange(nphot)[:, None]
    narrow = (np.abs(rows - np.linspace(0, nphot - 1, 400)) <= 20).astype(float)
    bands = stack_module.band_plan(narrow)
    assert bands is not None
    np.testing.assert_array_equal(np.sort(np.concatenate(bands)), np.arange(400))
    assert stack_module.band_plan(np.ones((140, 109))) is None  # full: nothing to save
    assert stack_module.band_plan(np.tril(np.ones((140, 109)))) is None  # GBM-like staircase
    assert stack_module.band_plan(narrow[:, :1]) is None  # one column
    tiny = narrow[::20, ::20]  # 50 x 20: the products' overhead outweighs the saving
    assert stack_module.band_plan(tiny) is None


def test_banded_float32(acis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jax.config.update("jax_enable_x64", False)
        try:
            data = bj.Data([("acis", acis.replace(grpg={"max_bin": 1}))])
            assert _kinds(data) == ["BandedBlock"]
            assert data.stacked[0].blocks[0].bands[0].dtype == jnp.float32
            value = likelihood.loglike(models.cpl, jnp.asarray(XRAY_PARAMS, jnp.float32), data)
            assert value.dtype == jnp.float32
        finally:
            jax.config.update("jax_enable_x64", True)
    reference = likelihood.loglike(models.cpl, XRAY_PARAMS,
                                   bj.Data([("acis", acis.replace(grpg={"max_bin": 1}))]))
    np.testing.assert_allclose(float(value), float(reference), rtol=1e-4)


def test_fit_and_its_hessian_through_bands(acis, monkeypatch):
    from bayspec_jax import infer

    ungrouped = acis.replace(grpg={"max_bin": 1})
    params = {"alpha": bj.Par(-1.5, bj.unif(-4, 2)), "log_a": bj.Par(-3.0, bj.unif(-8, 2))}
    banded = bj.Data([("acis", ungrouped)])
    monkeypatch.setattr(stack_module, "MIN_BAND_SAVING", np.inf)
    plain = bj.Data([("acis", ungrouped)])
    monkeypatch.undo()
    assert _kinds(banded) == ["BandedBlock"] and _kinds(plain) == ["FoldBlock"]
    fits = [infer.maximum_likelihood(infer.Problem(models.pl, params, d)) for d in (banded, plain)]
    assert all(fit.converged for fit in fits)
    np.testing.assert_allclose(fits[0].best, fits[1].best, rtol=1e-8)
    np.testing.assert_allclose(fits[0].stat, fits[1].stat, rtol=1e-12)
    np.testing.assert_allclose(fits[0].covariance, fits[1].covariance, rtol=1e-7)
    assert np.all(fits[0].errors > 0)
