"""The stacked log-likelihood: bayspec's numbers, padding, jit/grad/vmap, float32."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import fold, likelihood, models
from bayspec_jax.data import stack as stack_module

JOINT_PARAMS = np.array([-1.563, 2.691, 2.354])
_pointwise = jax.jit(bj.stats.pointwise, static_argnums=0)


def test_joint_matches_bayspec(joint, reference):
    ref = reference["JOINT"]
    value = float(likelihood.loglike(models.cpl, JOINT_PARAMS, joint))
    np.testing.assert_allclose(value, ref["loglike"], rtol=1e-10)
    np.testing.assert_allclose(value, -209.82250450302072, rtol=1e-10)
    np.testing.assert_allclose(float(likelihood.stat(models.cpl, JOINT_PARAMS, joint)),
                               ref["stat"], rtol=1e-10)
    per_unit = likelihood.unit_loglike(models.cpl, JOINT_PARAMS, joint)
    np.testing.assert_allclose(-2 * np.asarray(per_unit), ref["stat_list"], rtol=1e-10)
    assert joint.npoints == ref["npoints"] and sum(joint.npoints) == ref["npoint"]
    weighted = joint.set("nai", joint["nai"].replace(weight=2.0))
    np.testing.assert_allclose(float(likelihood.loglike(models.cpl, JOINT_PARAMS, weighted)),
                               ref["weighted_loglike_nai_w2"], rtol=1e-10)


def _reference_data(data_dir):
    from test_unit_reference import _as_str, _cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: bj.DataUnit(**_as_str(spec)) for name, spec in _cases(data_dir).items()
                if name != "ME_PHA2_row4"}


PL = {"ME": (-1.88, 2.80), "HE": (-1.88, 2.80), "ME_rebn": (-1.88, 2.80),
      "ME_optimal": (-1.88, 2.80), "X3C273_cstat": (-1.95, -3.72),
      "X3C273_pgstat_minevt10": (-1.95, -3.72)}


def test_unit_statistics_match_bayspec(data_dir, reference):
    units = _reference_data(data_dir)
    for case, unit in units.items():
        ref = reference[case]
        data = bj.Data([(case, unit)])
        params = np.array(PL[case])
        rate = likelihood.model_ctsrate(models.pl, params, data)[0]
        np.testing.assert_allclose(np.asarray(rate), ref["model_conv_ctsrate"], rtol=1e-10,
                                   err_msg=case)
        pointwise = likelihood.pointwise_loglike(models.pl, params, data)[0]
        np.testing.assert_allclose(np.asarray(pointwise), ref["pair_pointwise_loglike"],
                                   rtol=1e-10, atol=1e-13, err_msg=case)
        np.testing.assert_allclose(float(likelihood.stat(models.pl, params, data)),
                                   ref[f"pair_{unit.stat}_stat"], rtol=1e-10, err_msg=case)
        residual = likelihood.pseudo_residual(models.pl, params, data)[0]
        np.testing.assert_allclose(np.asarray(residual), ref["pair_pseudo_residual"], rtol=1e-9,
                                   atol=1e-12, err_msg=case)
        # every statistic on the same grouped arrays
        arrays = (unit.src_counts, unit.bkg_counts, rate, unit.corr_src_efficiency,
                  unit.corr_bkg_efficiency, unit.src_errors, unit.bkg_errors)
        for name in ("pgstat", "cstat", "pstat", "chi2"):
            loglike, _ = _pointwise(name, *arrays)
            expected = np.array([float(v) for v in ref[f"{name}_pointwise_loglike"]])
            np.testing.assert_allclose(np.asarray(loglike), expected, rtol=1e-10, atol=1e-13,
                                       err_msg=f"{case} {name}")


def test_cstat_without_background_is_cash_as_xspec(data_dir, reference):
    """bayspec substitutes B = 0 into W-stat; XSPEC uses Cash, which equals bayspec's pstat."""
    x = data_dir / "XRAY-sherpa-3c273"
    unit = bj.DataUnit(src=str(x / "3c273.pi"), bkg=False, rmf=str(x / "3c273.rmf"),
                       arf=str(x / "3c273.arf"), notc=[0.5, 7.0], stat="cstat")
    data = bj.Data([("x", unit)])
    params = np.array(PL["X3C273_cstat"])
    pstat_data = bj.Data([("x", unit.replace(stat="pstat"))])
    np.testing.assert_array_equal(
        np.asarray(likelihood.pointwise_loglike(models.pl, params, data)[0]),
        np.asarray(likelihood.pointwise_loglike(models.pl, params, pstat_data)[0]))
    # with the background, pstat ignores it and equals bayspec's pstat on the reference case
    with_bkg = bj.Data([("x", unit.replace(bkg=str(x / "3c273_bg.pi"), stat="pstat"))])
    np.testing.assert_allclose(float(likelihood.stat(models.pl, params, with_bkg)),
                               reference["X3C273_cstat"]["pstat_stat"], rtol=1e-10)


@pytest.mark.parametrize("joined", [True, False], ids=["joined-grids", "per-bin-grids"])
def test_padding_changes_nothing(joint, data_dir, monkeypatch, joined):
    if not joined:  # the layout of grids whose bins do not share their edges
        monkeypatch.setattr(stack_module, "shares_edges", lambda egrid, ngrid: False)
    x = data_dir / "XRAY-sherpa-3c273"
    big = bj.DataUnit(src=str(x / "3c273.pi"), bkg=str(x / "3c273_bg.pi"),
                      rmf=str(x / "3c273.rmf"), arf=str(x / "3c273.arf"), notc=[0.3, 9.0],
                      stat="pgstat")
    alone = bj.Data([("nai", joint["nai"])])
    a = float(likelihood.unit_loglike(models.cpl, JOINT_PARAMS, alone)[0])
    pairs = [("nai", joint["nai"]), ("big", big), ("bgo", joint["bgo"])]
    together = bj.Data(pairs)
    # three grids: three wide blocks, nothing padded
    (stack,) = together.stacked
    assert [b.drm.shape[0] for b in stack.blocks] == [1, 1, 1]
    b = float(likelihood.unit_loglike(models.cpl, JOINT_PARAMS, together)[0])
    np.testing.assert_allclose(b, a, rtol=1e-12)
    # with many distinct grids, units with a grid of their own go to padded blocks; units of
    # very different sizes are padded apart: no unit is padded beyond 2x its size
    nai = joint["nai"]
    shifted = bj.Response(np.asarray(nai.rsp.chbin), np.asarray(nai.rsp.phbin) * 1.001,
                          np.asarray(nai.rsp.drm))
    pairs.append(("nai_b", nai.replace(rsp=shifted, notc=[9, 900])))
    monkeypatch.setattr(stack_module, "MAX_WIDE_BLOCKS", 0)
    padded = bj.Data(pairs)
    (stack,) = padded.stacked
    assert stack.joined == joined
    assert sorted(b.n_rows for b in stack.blocks) == [1, 1, 2]
    for block in stack.blocks:
        for member in block.members:
            unit = padded.units[stack.positions[member]]
            assert np.prod(block.drm.shape[1:]) <= 2 * unit.nbin * unit.n_groups
    (two,) = [b for b in stack.blocks if b.n_rows == 2]
    assert two.take is not None and two.take.shape[0] < two.drm.shape[0] * two.drm.shape[2]
    c = likelihood.unit_loglike(models.cpl, JOINT_PARAMS, padded)
    wide = likelihood.unit_loglike(models.cpl, JOINT_PARAMS, bj.Data(pairs[:3]))
    np.testing.assert_allclose(np.asarray(c[:3]), np.asarray(wide), rtol=1e-12)
    np.testing.assert_allclose(float(c[0]), a, rtol=1e-12)
    monkeypatch.undo()
    np.testing.assert_allclose(float(likelihood.loglike(models.cpl, JOINT_PARAMS, bj.Data(pairs))),
                               float(jnp.sum(c)), rtol=1e-12)


def test_joined_grids_integrate_as_the_per_bin_grid(joint, monkeypatch):
    # Bins that share their edges are evaluated once per edge (`Stack.joined`); each block's rows
    # hold its units' per-bin trapezoids, as `integrate_bins` on the unit's own grid.
    data = _copies(joint, 2)
    (stack,) = data.stacked
    assert stack.joined
    for block, rows in zip(stack.blocks, fold.stack_fluxes(models.cpl, JOINT_PARAMS, stack)):
        unit = data.units[stack.positions[block.members[0]]]
        per_bin = fold.integrate_bins(models.cpl, JOINT_PARAMS, unit.egrid, unit.ngrid)
        assert rows.shape == (1, unit.nbin)
        np.testing.assert_allclose(np.asarray(rows[0]), np.asarray(per_bin), rtol=1e-15)
    # A photon grid with a gap between two bins keeps `ngrid` points per bin.
    nai = joint["nai"]
    phbin = np.array(nai.rsp.phbin)
    phbin[10, 0] = 0.5 * (phbin[10, 0] + phbin[10, 1])
    gapped = nai.replace(rsp=bj.Response(np.asarray(nai.rsp.chbin), phbin,
                                         np.asarray(nai.rsp.drm)))
    (gapped_stack,) = bj.Data([("gap", gapped), ("bgo", joint["bgo"])]).stacked
    assert not gapped_stack.joined
    assert gapped_stack.energies.shape == (gapped.nbin * gapped.ngrid * 2,)
    # Both layouts: the same log-likelihood and gradient.
    grad = jax.value_and_grad(lambda p, d: likelihood.loglike(models.cpl, p, d))
    joined_value, joined_grad = grad(jnp.asarray(JOINT_PARAMS), data)
    monkeypatch.setattr(stack_module, "shares_edges", lambda egrid, ngrid: False)
    per_bin = _copies(joint, 2)
    assert not per_bin.stacked[0].joined
    value, gradient = grad(jnp.asarray(JOINT_PARAMS), per_bin)
    np.testing.assert_allclose(float(value), float(joined_value), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(gradient), np.asarray(joined_grad), rtol=1e-12)


def _copies(joint, k):
    pairs = []
    for i in range(k):
        for name in ("nai", "bgo"):
            unit = joint[name]
            scaled = bj.Response(np.asarray(unit.rsp.chbin), np.asarray(unit.rsp.phbin),
                                 np.asarray(unit.rsp.drm) * (1 + 1e-3 * i))
            pairs.append((f"{name}{i}", unit.replace(rsp=scaled)))
    return bj.Data(pairs)


def test_compiles_once_per_data_and_grad_matches_finite_differences(joint):
    traces = []

    def value(params, stacks):
        traces.append(1)
        return likelihood.loglike(models.cpl, params, stacks)

    value_and_grad = jax.jit(jax.value_and_grad(value))
    for k in (1, 4, 64):
        data = joint if k == 1 else _copies(joint, k)
        traces.clear()
        for shift in (0.0, 0.01, 0.02):
            v, g = value_and_grad(jnp.asarray(JOINT_PARAMS) + shift, data.stacked)
            assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g)))
        assert len(traces) == 1, (k, len(traces))
        assert len(data.stacked) == 1  # one statistic: one stack
    v, g = value_and_grad(jnp.asarray(JOINT_PARAMS), joint.stacked)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        f = lambda p: float(likelihood.loglike(models.cpl, p, joint))  # noqa: E731
        numeric = (f(JOINT_PARAMS + step) - f(JOINT_PARAMS - step)) / 2e-6
        np.testing.assert_allclose(float(g[i]), numeric, rtol=1e-6)


def test_data_factors_are_differentiable(joint):
    sf = jnp.ones(2)
    grad = jax.grad(lambda s: likelihood.loglike(models.cpl, JOINT_PARAMS, joint,
                                                 {"sf": s, "rf": jnp.ones(2)}))(sf)
    assert np.all(np.isfinite(np.asarray(grad))) and np.all(np.asarray(grad) != 0)
    same = likelihood.loglike(models.cpl, JOINT_PARAMS, joint, {"sf": sf, "bf": sf, "rf": sf})
    np.testing.assert_allclose(float(same), -209.82250450302072, rtol=1e-10)
    moved = likelihood.loglike(models.cpl, JOINT_PARAMS, joint, {"rf": jnp.array([1.1, 1.0])})
    assert float(moved) != float(same)


def test_vmap_over_parameter_sets(joint):
    batch = jnp.asarray(JOINT_PARAMS) + jnp.linspace(-0.05, 0.05, 7)[:, None]
    f = likelihood.make_loglike(models.cpl, joint)
    batched = jax.vmap(lambda p: likelihood.loglike(models.cpl, p, joint))(batch)
    for i in range(batch.shape[0]):
        np.testing.assert_allclose(float(batched[i]), float(f(batch[i])), rtol=1e-12)


def test_make_loglike_equals_loglike_and_its_gradient(joint):
    # make_loglike flattens the stacks once and passes the arrays: the same numbers as loglike.
    params = jnp.asarray(JOINT_PARAMS)
    factors = {"rf": jnp.array([1.05, 0.97]), "sf": jnp.array([1.0, 1.02])}
    value, grad = likelihood.make_loglike(models.cpl, joint, grad=True)(params, factors)
    expected, expected_grad = jax.value_and_grad(
        lambda p: likelihood.loglike(models.cpl, p, joint, factors))(params)
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(expected_grad), rtol=1e-12)
    plain = likelihood.make_loglike(models.cpl, joint, jit=False)(params)
    np.testing.assert_allclose(float(plain), -209.82250450302072, rtol=1e-10)


def test_invalid_model_gives_minus_infinity(joint):
    value = likelihood.loglike(models.cpl_peak, jnp.array([-2.5, 2.5, 2.0]), joint)
    assert np.isneginf(float(value))
    grad = jax.grad(lambda p: likelihood.unit_loglike(models.cpl, p, joint)[0])(
        jnp.asarray(JOINT_PARAMS))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_float32(data_dir):
    d = data_dir
    with jax.enable_x64(False):
        nai = bj.DataUnit(src=str(d / "ME/me.src"), bkg=str(d / "ME/me.bkg"),
                          rsp=str(d / "ME/me.rsp"), notc=[8, 900], stat="pgstat",
                          grpg={"min_sigma": 2, "max_bin": 10})
        bgo = bj.DataUnit(src=str(d / "HE/he.src"), bkg=str(d / "HE/he.bkg"),
                          rsp=str(d / "HE/he.rsp"), notc=[300, 38000], stat="pgstat",
                          grpg={"min_sigma": 2, "max_bin": 10})
        data = bj.Data([("nai", nai), ("bgo", bgo)])
        value = likelihood.loglike(models.cpl, jnp.asarray(JOINT_PARAMS, jnp.float32), data)
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(float(value), -209.82250450302072, rtol=1e-4)


def test_identical_responses_are_stored_once(joint):
    same = bj.Data([(f"n{i}", joint["nai"]) for i in range(3)])
    (stack,) = same.stacked
    (block,) = stack.blocks
    n = joint["nai"].n_groups
    assert block.drm.shape == (1, joint["nai"].nbin, n) and block.take.shape == (3 * n,)
    single = float(likelihood.loglike(models.cpl, JOINT_PARAMS, bj.Data([("n", joint["nai"])])))
    np.testing.assert_allclose(float(likelihood.loglike(models.cpl, JOINT_PARAMS, same)),
                               3 * single, rtol=1e-12)
    distinct = _copies(joint, 2)
    (stack,) = distinct.stacked
    assert [b.drm.shape[2] for b in stack.blocks] == [2 * joint["nai"].n_groups,
                                                       2 * joint["bgo"].n_groups]
    assert all(b.take is None for b in stack.blocks)


def test_shared_energy_grids_run_the_model_once_and_isolate_bad_units(joint):
    data = _copies(joint, 3)
    (stack,) = data.stacked  # NaI and BGO: one grid each, one wide block each
    # Two grids of 140 bins sharing their edges: 4 points per bin and a spacer bin each, + 1.
    assert stack.joined and len(stack.blocks) == 2
    assert stack.energies.shape[0] == 2 * (140 + 1) * 4 + 1
    assert [b.members for b in stack.blocks] == [(0, 1, 2), (3, 4, 5)]
    assert stack.positions == (0, 2, 4, 1, 3, 5)
    mixed = bj.Data([("nai", joint["nai"]), ("nai_b", joint["nai"].replace(notc=[9, 900]))])
    (stack,) = mixed.stacked
    assert len(stack.blocks) == 1 and stack.blocks[0].drm.shape[0] == 1
    per_unit = likelihood.unit_loglike(models.cpl, JOINT_PARAMS, data)
    alone = likelihood.unit_loglike(models.cpl, JOINT_PARAMS, bj.Data([("n", data["nai1"])]))
    np.testing.assert_allclose(float(per_unit[2]), float(alone[0]), rtol=1e-12)

    def only_bgo_is_nan(energy, params):
        value = models.cpl(energy, params)
        return jnp.where(energy > 60000.0, jnp.nan, value)  # only the BGO grid reaches 200 MeV

    values = likelihood.unit_loglike(only_bgo_is_nan, JOINT_PARAMS, data)
    assert np.all(np.isneginf(np.asarray(values)[1::2]))
    np.testing.assert_allclose(np.asarray(values)[0::2], np.asarray(per_unit)[0::2], rtol=1e-12)
