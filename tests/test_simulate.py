"""fakeit: expected counts, Poisson/Gaussian draws (statistics checked over many draws), new
units and Data, and OGIP files that the readers load back exactly.

The draws are compiled once (`simulate.draws`, shared by every unit of the ME shapes) plus once
for the user pattern ``jax.jit(jax.vmap(draw))``; the Poisson sampler dominates the runtime.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.io import fits

import bayspec_jax as bj
from bayspec_jax import fold, models, simulate
from bayspec_jax.io import read_pha

MODEL = models.cpl
PARAMS = (-1.563, 2.691, 2.354)
N_DRAWS = 2000
GROUPING = {"min_sigma": 2, "max_bin": 10}


@pytest.fixture(scope="module")
def me_files(data_dir):
    return {key: str(data_dir / "ME" / f"me.{key}") for key in ("src", "bkg", "rsp")}


@pytest.fixture(scope="module")
def pg_unit(me_files):
    return bj.DataUnit(**me_files, notc=[8, 900], stat="pgstat")


@pytest.fixture(scope="module")
def cs_unit(pg_unit):
    return pg_unit.replace(stat="cstat")


@pytest.fixture(scope="module")
def pg_draws(pg_unit):
    return simulate.draws(jax.random.key(0), MODEL, PARAMS, pg_unit, N_DRAWS)


@pytest.fixture(scope="module")
def cs_draws(cs_unit):
    return simulate.draws(jax.random.key(1), MODEL, PARAMS, cs_unit, N_DRAWS)


def _assert_chi2(z, what):
    """The sum of squared standard scores is chi-square with len(z) degrees of freedom: accept
    within 5 standard deviations of its mean (a statistical check, not a fixed number)."""
    z = np.asarray(z)
    dof = z.size
    statistic = float(np.sum(z**2))
    assert abs(statistic - dof) < 5 * math.sqrt(2 * dof), f"{what}: chi2 {statistic:.1f} / {dof}"


def _mean_scores(samples, mean, variance):
    n = samples.shape[0]
    return (samples.mean(axis=0) - mean) / np.sqrt(variance / n)


def _poisson_variance_scores(samples, mu):
    """Standard scores of the sample variances under Poisson(mu): Var(s^2) from the central
    moments mu2 = mu, mu4 = mu (1 + 3 mu)."""
    n = samples.shape[0]
    var_s2 = mu * (1 + 3 * mu) / n - mu**2 * (n - 3) / (n * (n - 1))
    return (samples.var(axis=0, ddof=1) - mu) / np.sqrt(var_s2)


def _truth(unit):
    mu = simulate.expected_counts(MODEL, PARAMS, unit) + simulate.expected_background(unit)
    mu = np.asarray(mu)
    return np.maximum(mu, 0.0)


# -- expected counts ---------------------------------------------------------------------------


def test_expected_counts_fold_the_ungrouped_response(pg_unit):
    mu = simulate.expected_counts(MODEL, PARAMS, pg_unit)
    assert mu.shape == (pg_unit.rsp.n_channels,)
    grouped = jax.ops.segment_sum(mu, pg_unit.group_ids, pg_unit.n_groups + 1)[:pg_unit.n_groups]
    rate = fold.fold(fold.integrate_bins(MODEL, jnp.asarray(PARAMS), pg_unit.egrid, pg_unit.ngrid),
                     pg_unit.corr_rsp_drm)  # the likelihood's fold
    np.testing.assert_allclose(np.asarray(grouped), np.asarray(rate) * float(pg_unit.src.exposure),
                               rtol=1e-10)
    # traced code goes through the setup (built on the host once), not the unit
    setup = simulate.channel_setup(pg_unit)
    jitted = jax.jit(lambda p, s: fold.model_rate(MODEL, p, s))(jnp.asarray(PARAMS), setup)
    np.testing.assert_allclose(np.asarray(jitted) * float(pg_unit.corr_src_efficiency),
                               np.asarray(mu), rtol=1e-12)
    background = simulate.expected_background(pg_unit)
    np.testing.assert_allclose(np.asarray(background),
                               np.asarray(pg_unit.bkg.counts * pg_unit.alpha), rtol=1e-15)


# -- draws: statistics over many draws -----------------------------------------------------------


def test_source_mean_and_variance_are_poisson(pg_unit, pg_draws, cs_unit, cs_draws):
    for unit, result, what in ((pg_unit, pg_draws, "pgstat"), (cs_unit, cs_draws, "cstat")):
        src = np.asarray(result.src_counts)
        assert src.shape == (N_DRAWS, pg_unit.rsp.n_channels)
        assert np.all(src == np.round(src)) and np.all(src >= 0)
        mu = _truth(unit)
        assert np.all(mu > 0)
        _assert_chi2(_mean_scores(src, mu, mu), f"{what} source mean")
        _assert_chi2(_poisson_variance_scores(src, mu), f"{what} source variance")
    # the check has power: a 2% error in the expected counts is rejected
    with pytest.raises(AssertionError):
        _assert_chi2(_mean_scores(np.asarray(pg_draws.src_counts), 1.02 * mu, mu), "biased")


def test_gaussian_background_has_the_errors_as_std(pg_unit, pg_draws):
    bkg = np.asarray(pg_draws.bkg_counts)
    truth = np.asarray(pg_unit.bkg.counts)
    sigma = np.asarray(pg_unit.bkg.errors)
    assert np.all(sigma > 0) and np.any(bkg != np.round(bkg))  # continuous, not counts
    _assert_chi2(_mean_scores(bkg, truth, sigma**2), "gaussian background mean")
    # sample variance of a normal: Var(s^2) = 2 sigma^4 / (n - 1)
    z = (bkg.var(axis=0, ddof=1) - sigma**2) / (sigma**2 * math.sqrt(2 / (N_DRAWS - 1)))
    _assert_chi2(z, "gaussian background variance")


def test_poisson_background_for_poisson_statistics(cs_unit, cs_draws):
    bkg = np.asarray(cs_draws.bkg_counts)
    assert np.all(bkg == np.round(bkg)) and np.all(bkg >= 0)
    truth = np.asarray(cs_unit.bkg.counts)
    _assert_chi2(_mean_scores(bkg, truth, truth), "poisson background mean")
    _assert_chi2(_poisson_variance_scores(bkg, truth), "poisson background variance")


def test_no_background_file_draws_the_model_alone(me_files):
    unit = bj.DataUnit(src=me_files["src"], rsp=me_files["rsp"], notc=[8, 900], stat="cstat")
    result = simulate.draws(jax.random.key(2), MODEL, PARAMS, unit, 500)
    assert np.all(np.asarray(result.bkg_counts) == 0)
    mu = np.asarray(simulate.expected_counts(MODEL, PARAMS, unit))
    _assert_chi2(_mean_scores(np.asarray(result.src_counts), mu, mu), "no-background mean")


# -- draws: keys, jit and vmap -------------------------------------------------------------------


def test_jit_vmap_of_draw_matches_draws_and_keys_decide(pg_unit, pg_draws):
    keys = jax.random.split(jax.random.key(0), N_DRAWS)[:16]
    batch = jax.jit(jax.vmap(lambda k: simulate.draw(k, MODEL, PARAMS, pg_unit)))
    first = batch(keys)
    np.testing.assert_array_equal(np.asarray(first.src_counts),
                                  np.asarray(pg_draws.src_counts[:16]))
    # Gaussian draws: equal up to fused multiply-add rounding
    np.testing.assert_allclose(np.asarray(first.bkg_counts), np.asarray(pg_draws.bkg_counts[:16]),
                               rtol=1e-13)
    again = batch(keys)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # different keys, different draws
    assert not np.array_equal(np.asarray(first.src_counts[0]), np.asarray(first.src_counts[1]))
    repeat = simulate.draws(jax.random.key(0), MODEL, PARAMS, pg_unit, 16)
    np.testing.assert_array_equal(np.asarray(repeat.src_counts),
                                  np.asarray(pg_draws.src_counts[:16]))


# -- fakeit ------------------------------------------------------------------------------------


def _assert_same_setup(fake, unit):
    assert fake.rsp is unit.rsp and fake.stat == unit.stat and fake.notc == unit.notc
    assert fake.grpg == unit.grpg and fake.name == unit.name and fake.weight == unit.weight
    for spectrum in ("src", "bkg"):
        a, b = getattr(fake, spectrum), getattr(unit, spectrum)
        for field in ("exposure", "quality", "backscale", "channels"):
            np.testing.assert_array_equal(np.asarray(getattr(a, field)),
                                          np.asarray(getattr(b, field)), err_msg=field)


def test_fakeit_unit_keeps_the_setup_and_uses_the_draws(pg_unit, cs_unit, pg_draws):
    keys = jax.random.split(jax.random.key(0), N_DRAWS)
    fake = simulate.fakeit(keys[3], MODEL, PARAMS, pg_unit)
    _assert_same_setup(fake, pg_unit)
    np.testing.assert_array_equal(np.asarray(fake.src.counts), np.asarray(pg_draws.src_counts[3]))
    assert fake.src.poisson and not fake.bkg.poisson
    np.testing.assert_array_equal(np.asarray(fake.src.errors), np.sqrt(np.asarray(fake.src.counts)))
    np.testing.assert_array_equal(np.asarray(fake.bkg.errors), np.asarray(pg_unit.bkg.errors))
    same = simulate.fakeit(keys[3], MODEL, PARAMS, pg_unit)
    np.testing.assert_array_equal(np.asarray(same.bkg.counts), np.asarray(fake.bkg.counts))

    poisson = simulate.fakeit(jax.random.key(5), MODEL, PARAMS, cs_unit)
    _assert_same_setup(poisson, cs_unit)
    assert poisson.bkg.poisson
    np.testing.assert_array_equal(np.asarray(poisson.bkg.errors),
                                  np.sqrt(np.asarray(poisson.bkg.counts)))


def test_fakeit_many_and_grouping(pg_unit):
    grouped = pg_unit.replace(grpg=GROUPING)
    fakes = simulate.fakeit(jax.random.key(7), MODEL, PARAMS, grouped, n=3)
    result = simulate.draws(jax.random.key(7), MODEL, PARAMS, grouped, 3)
    assert isinstance(fakes, list) and len(fakes) == 3
    for i, fake in enumerate(fakes):
        _assert_same_setup(fake, grouped)
        np.testing.assert_array_equal(np.asarray(fake.src.counts),
                                      np.asarray(result.src_counts[i]))
        # regrouped on the new counts: the same as grouping those counts afresh
        fresh = bj.DataUnit(src=fake.src, bkg=fake.bkg, rsp=grouped.rsp, notc=grouped.notc,
                            stat=grouped.stat, grpg=GROUPING)
        np.testing.assert_array_equal(np.asarray(fake.group_ids), np.asarray(fresh.group_ids))
    kept = simulate.fakeit(jax.random.key(7), MODEL, PARAMS, grouped, n=2, regroup=False)
    for fake in kept:
        assert fake.grpg is None and fake.n_groups == grouped.n_groups
        np.testing.assert_array_equal(np.asarray(fake.group_ids), np.asarray(grouped.group_ids))
        np.testing.assert_array_equal(np.asarray(fake.rsp_drm), np.asarray(grouped.rsp_drm))


def test_fakeit_data(pg_unit, cs_unit):
    data = bj.Data([("a", pg_unit), ("b", cs_unit.replace(notc=[20, 500]))])
    fake = simulate.fakeit(jax.random.key(9), MODEL, PARAMS, data)
    assert isinstance(fake, bj.Data) and fake.names == data.names
    for name in data.names:
        _assert_same_setup(fake[name], data[name])
    many = simulate.fakeit(jax.random.key(9), MODEL, PARAMS, data, n=2)
    assert len(many) == 2 and all(d.names == data.names for d in many)
    assert not np.array_equal(np.asarray(many[0]["a"].src.counts),
                              np.asarray(many[1]["a"].src.counts))


def test_fakeit_bad_input(pg_unit, me_files):
    with pytest.raises(ValueError, match="n must be"):
        simulate.fakeit(jax.random.key(0), MODEL, PARAMS, pg_unit, n=0)
    with pytest.raises(ValueError, match="not finite"):  # 10**400 overflows: infinite model
        simulate.fakeit(jax.random.key(0), MODEL, (-1.5, 2.5, 400.0), pg_unit)
    with pytest.warns(UserWarning, match="incomplete"):
        incomplete = bj.DataUnit(src=me_files["src"])
    with pytest.raises(ValueError, match="no response"):
        simulate.draw(jax.random.key(0), MODEL, PARAMS, incomplete)
    with pytest.raises(TypeError, match="DataUnit"):
        simulate.expected_counts(MODEL, PARAMS, "me.src")


# -- OGIP files --------------------------------------------------------------------------------

SPECTRUM_FIELDS = ("counts", "errors", "exposure", "quality", "grouping", "backscale", "channels")
UNIT_VIEWS = ("src_counts", "src_errors", "bkg_counts", "bkg_errors", "alpha", "group_ids",
              "rsp_drm", "rsp_chbin", "egrid", "net_ctsspec")


def _assert_same_spectrum(a, b):
    for field in SPECTRUM_FIELDS:
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        np.testing.assert_array_equal(x, y, err_msg=field)
        assert x.dtype == y.dtype, field
    assert a.poisson == b.poisson


def _assert_same_response(a, b):
    for field in ("chbin", "phbin", "drm", "channels"):
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        np.testing.assert_array_equal(x, y, err_msg=field)
        assert x.dtype == y.dtype, field


def _assert_same_unit(loaded, fake):
    assert loaded.n_groups == fake.n_groups
    for view in UNIT_VIEWS:
        np.testing.assert_array_equal(np.asarray(getattr(loaded, view)),
                                      np.asarray(getattr(fake, view)), err_msg=view)
    assert (loaded.stat, loaded.notc, loaded.grpg) == (fake.stat, fake.notc, fake.grpg)


@pytest.mark.parametrize("stat", ["pgstat", "cstat"])
def test_written_files_load_back_exactly(pg_unit, tmp_path, stat):
    unit = pg_unit.replace(stat=stat, grpg=GROUPING)
    fake = simulate.fakeit(jax.random.key(11), MODEL, PARAMS, unit)
    paths = simulate.write_fakeit(tmp_path / "grb", fake)
    assert paths == {key: str(tmp_path / f"grb.{key}") for key in ("src", "bkg", "rsp")}
    _assert_same_spectrum(bj.Source.from_src(paths["src"]), fake.src)
    _assert_same_spectrum(bj.Background.from_bkg(paths["bkg"]), fake.bkg)
    _assert_same_response(bj.Response.from_rsp(paths["rsp"]), fake.rsp)
    src, bkg = read_pha(paths["src"]), read_pha(paths["bkg"])
    assert src.poisserr is True and src.stat_err is None
    if stat == "pgstat":
        assert bkg.poisserr is False
        np.testing.assert_array_equal(bkg.stat_err, np.asarray(fake.bkg.errors))
    else:
        assert bkg.poisserr is True and bkg.stat_err is None
    assert src.keywords["BACKFILE"] == "grb.bkg" and src.keywords["RESPFILE"] == "grb.rsp"
    with fits.open(paths["bkg"]) as hdul:
        assert hdul["SPECTRUM"].header["HDUCLAS2"] == "BKG"
    with fits.open(paths["rsp"]) as hdul:
        assert hdul["SPECRESP MATRIX"].header["HDUCLAS3"] == "FULL"
    loaded = bj.DataUnit(**paths, stat=stat, notc=[8, 900], grpg=GROUPING)
    _assert_same_unit(loaded, fake)
    with pytest.raises(OSError):
        simulate.write_fakeit(tmp_path / "grb", fake)
    simulate.write_fakeit(tmp_path / "grb", fake, overwrite=True)


def test_write_data_and_draws_as_type2(pg_unit, me_files, tmp_path):
    no_bkg = bj.DataUnit(src=me_files["src"], rsp=me_files["rsp"], notc=[8, 900], stat="cstat")
    data = bj.Data([("nai/1", pg_unit), ("nobkg", no_bkg)])
    fake = simulate.fakeit(jax.random.key(13), MODEL, PARAMS, data)
    written = simulate.write_fakeit(tmp_path / "run", fake)
    assert set(written) == {"nai/1", "nobkg"}
    assert written["nai/1"]["src"] == str(tmp_path / "run_nai_1.src")
    assert "bkg" not in written["nobkg"]
    for name, paths in written.items():
        loaded = bj.DataUnit(**paths, stat=fake[name].stat, notc=[8, 900])
        _assert_same_unit(loaded, fake[name])

    draws = simulate.fakeit(jax.random.key(17), MODEL, PARAMS, pg_unit, n=3)
    paths = simulate.write_fakeit(tmp_path / "draws", draws)
    assert paths["rows"] == 3 and paths["src"].endswith("draws.src2")
    for i, fake_unit in enumerate(draws):
        _assert_same_spectrum(bj.Source.from_src2(paths["src"], i), fake_unit.src)
        _assert_same_spectrum(bj.Background.from_bkg2(paths["bkg"], i), fake_unit.bkg)
        assert read_pha(paths["src"], i).keywords["BACKFILE"] == f"draws.bkg2{{{i + 1}}}"
        loaded = bj.DataUnit(src=f"{paths['src']}:{i}", bkg=f"{paths['bkg']}:{i}",
                             rsp=paths["rsp"], stat="pgstat", notc=[8, 900])
        _assert_same_unit(loaded, fake_unit)
    with pytest.raises(ValueError, match="share one response"):
        simulate.write_fakeit(tmp_path / "mixed", [draws[0], fake["nobkg"]])
    with pytest.raises(TypeError, match="write_fakeit takes"):
        simulate.write_fakeit(tmp_path / "bad", "me.src")
