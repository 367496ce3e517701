"""XSPEC-style models: absorption tables and formulas, lines, continua, cflux."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from bayspec_jax import models

jax.config.update("jax_enable_x64", True)

TABLE = pathlib.Path(models.__file__).parent / "data_files" / "absorption.npz"
ELISA = pathlib.Path(__file__).parent / "xray_reference" / "elisa_absorption.npz"
COLUMNS = {"tbabs": ("tbabs_wilm_vern", models.tbabs),
           "phabs_bcmc": ("phabs_angr_bcmc", lambda e, p: models.phabs(e, p, xsect="bcmc")),
           "phabs_vern": ("phabs_angr_vern", lambda e, p: models.phabs(e, p, xsect="vern"))}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_absorption_at_table_nodes(name):
    column, model = COLUMNS[name]
    with np.load(TABLE) as table:
        energy, sigma = table["energy"].astype(float), table[column].astype(float)
    # the cross section at the nodes is the table's (exp of log: a few ulp)
    np.testing.assert_allclose(np.asarray(models._tabulated_cross_section(energy, column)),
                               sigma, rtol=1e-14)
    # the transmission: exp(-nH sigma) amplifies that by nH sigma (up to ~600 here)
    np.testing.assert_allclose(np.asarray(model(energy, (1.0,))), np.exp(-sigma), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(model(energy, (0.37,))), np.exp(-0.37 * sigma),
                               rtol=1e-12)


def test_table_provenance_recorded():
    with np.load(TABLE) as table:
        meta = str(table["meta"])
        assert "astro-elisa 0.3.1" in meta and "sha256=" in meta
        assert table["energy"][0] == np.float32(0.1) and table["energy"][-1] == np.float32(20.0)
    assert (TABLE.parent / "README.md").is_file()


def test_wabs_by_hand():
    # Morrison & McCammon (1983) Table 2, by hand: sigma = (c0 + c1 E + c2 E^2) E^-3 1e-24 cm^2
    cases = {0.05: (17.3, 608.1, -2150.0), 0.2: (34.6, 267.9, -476.1),
             0.6: (95.5, 145.8, -61.1), 1.0: (120.6, 169.3, -47.7),
             3.0: (342.7, 18.7, 0.0), 6.4: (433.9, -2.4, 0.75), 9.0: (701.2, 25.2, 0.0)}
    for energy, (c0, c1, c2) in cases.items():
        sigma = (c0 + c1 * energy + c2 * energy**2) / energy**3 * 1e-24 / 1e-22
        np.testing.assert_allclose(float(models.wabs_cross_section(energy)), sigma, rtol=1e-14)
        np.testing.assert_allclose(float(models.wabs(energy, (2.5,))), np.exp(-2.5 * sigma),
                                   rtol=1e-13)
    # above 10 keV: the 10 keV value scaled as E^-3 (XSPEC's)
    at_10 = (701.2 + 25.2 * 10.0) / 1000.0 * 1e-2
    np.testing.assert_allclose(float(models.wabs_cross_section(20.0)), at_10 / 8.0, rtol=1e-14)


@pytest.mark.parametrize("model", [models.tbabs, models.phabs, models.wabs])
def test_absorption_monotone_and_gradients(model):
    energy = np.geomspace(0.05, 100.0, 400)
    n_h = np.array([0.0, 1e-3, 0.1, 1.0, 10.0])
    values = np.stack([np.asarray(model(energy, (v,))) for v in n_h])
    assert np.all(values[0] == 1.0)
    assert np.all(np.diff(values, axis=0) <= 0) and np.all((values >= 0) & (values <= 1))
    for v in (0.0, 0.5, 50.0, -1e6, 1e6):
        grad = jax.grad(lambda p: model(jnp.asarray(energy), (p,)).sum())(jnp.asarray(v))
        assert np.isfinite(float(grad)), v
    # energies at and below 0 (a grid starting at 0): transmission 0, gradient finite
    grad = jax.grad(lambda p: model(jnp.array([0.0, 1.0]), (p,)).sum())(jnp.asarray(1.0))
    assert np.isfinite(float(grad)) and float(model(0.0, (1.0,))) == 0.0


def test_redshifted_absorption():
    energy = np.geomspace(0.2, 10.0, 50)
    for z_model, model in [(models.ztbabs, models.tbabs), (models.zphabs, models.phabs),
                           (models.zwabs, models.wabs)]:
        np.testing.assert_allclose(np.asarray(z_model(energy, (0.8, 0.7))),
                                   np.asarray(model(energy * 1.7, (0.8,))), rtol=1e-14)
        np.testing.assert_allclose(np.asarray(z_model(energy, (0.8, 0.0))),
                                   np.asarray(model(energy, (0.8,))), rtol=1e-14)


@pytest.mark.skipif(not ELISA.is_file(), reason="no stored ELISA comparison")
def test_absorption_against_stored_elisa():
    ref = np.load(ELISA)
    energy = ref["energy"]
    functions = {"tbabs": models.tbabs, "phabs_bcmc": COLUMNS["phabs_bcmc"][1],
                 "phabs_vern": COLUMNS["phabs_vern"][1], "wabs": models.wabs}
    for name, model in functions.items():
        for i, n_h in enumerate(ref["n_h"]):
            ours, theirs = np.asarray(model(energy, (n_h,))), ref[name][i]
            seen = theirs >= 1e-4
            rel = np.abs(ours[seen] / theirs[seen] - 1.0)
            if name == "wabs":  # two points straddle an edge in ELISA's table (see validation/)
                assert np.sum(rel > 1e-4) <= 2, (name, n_h)
            else:
                assert rel.max() < 1e-4, (name, n_h, rel.max())


def test_gauss_integrates_to_norm_and_aliases():
    energy = np.linspace(4.0, 9.0, 200001)
    flux = np.asarray(models.gauss(energy, (6.4, 0.12, 3.5e-3)))
    np.testing.assert_allclose(np.trapezoid(flux, energy), 3.5e-3, rtol=1e-9)
    assert models.gaussian is models.gauss
    assert np.isnan(float(models.gauss(6.4, (6.4, 0.0, 1.0))))
    grad = jax.grad(lambda p: models.gauss(jnp.asarray(energy), p).sum())(
        jnp.array([6.4, 0.12, 1.0]))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_powerlaw_aliases():
    energy = np.geomspace(0.3, 300.0, 40)
    np.testing.assert_allclose(np.asarray(models.powerlaw(energy, (1.7, 0.02))),
                               np.asarray(models.pl(energy, (-1.7, np.log10(0.02)))), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(models.powerlaw(energy, (1.7, 0.02))),
                               0.02 * energy**-1.7, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(models.zpowerlw(energy, (1.7, 0.0, 0.02))),
                               np.asarray(models.powerlaw(energy, (1.7, 0.02))), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(models.zpowerlw(energy, (1.7, 1.5, 0.02))),
                               0.02 * (2.5 * energy) ** -1.7, rtol=1e-13)


def test_bremss_formula():
    # norm (1 + 4 * 0.085) g exp(-u) / (E sqrt(kT)), g the Born Gaunt factor
    for kt in (0.5, 3.0, 40.0):
        for energy in (0.05, 0.8, 5.0, 30.0, 150.0):
            u = energy / kt
            gaunt = np.sqrt(3.0) / np.pi * np.exp(u / 2) * special.k0(u / 2)
            expected = 2.0 * 1.34 * gaunt * np.exp(-u) / (energy * np.sqrt(kt))
            np.testing.assert_allclose(float(models.bremss(energy, (kt, 2.0))), expected,
                                       rtol=1e-6)
    grad = jax.grad(lambda p: models.bremss(jnp.geomspace(0.1, 500.0, 50), p).sum())(
        jnp.array([2.0, 1.0]))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_diskbb_against_its_integral():
    # (8/3) C norm E^2 int_0^1 x^(-11/3) / (exp(E / (Tin x)) - 1) dx, by scipy's quad
    def direct(energy, tin, norm):
        def f(x):
            arg = energy / (tin * x) if x > 0 else np.inf
            return x ** (-11.0 / 3.0) / np.expm1(arg) if arg < 700 else 0.0

        value, _ = integrate.quad(f, 0.0, 1.0, epsabs=0, epsrel=1e-12, limit=500,
                                  points=[min(1.0, energy / tin / 10.0)])
        return 8.0 / 3.0 * models.DISKBB_CONSTANT * norm * energy**2 * value

    for tin in (0.3, 1.5):
        for energy in (0.01, 0.1, 0.5, 2.0, 8.0):
            np.testing.assert_allclose(float(models.diskbb(energy, (tin, 50.0))),
                                       direct(energy, tin, 50.0), rtol=1e-6)
    # the low-energy limit: (8/3) C norm Tin^2 (E/Tin)^(-2/3) Gamma(8/3) zeta(8/3)
    limit = (8 / 3 * models.DISKBB_CONSTANT * 2.0 * (1e-6) ** (-2 / 3)
             * special.gamma(8 / 3) * special.zeta(8 / 3))
    np.testing.assert_allclose(float(models.diskbb(1e-6, (1.0, 2.0))), limit, rtol=1e-5)
    grad = jax.grad(lambda p: models.diskbb(jnp.geomspace(1e-3, 300.0, 60), p).sum())(
        jnp.array([1.2, 10.0]))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_cflux_band_flux_is_the_parameter():
    for inner, params in [(models.powerlaw, (1.9, 1.0)), (models.bb, (0.2, 0.0)),
                          (models.cpl, (-1.1, 2.3, 0.0))]:
        model = models.cflux(inner, 2.0, 10.0)
        full = (-9.3, *params)

        def integrand(energy, model=model, full=full):
            return energy * float(model(energy, full)) * 1.602176634e-9

        flux, _ = integrate.quad(integrand, 2.0, 10.0, epsabs=0, epsrel=1e-13)
        np.testing.assert_allclose(flux, 10**-9.3, rtol=1e-8, err_msg=inner.__name__)
        grad = jax.grad(lambda p, model=model: model(jnp.geomspace(1.0, 20.0, 30), p).sum())(
            jnp.asarray(full))
        assert np.all(np.isfinite(np.asarray(grad)))
    # composes with products: params (log10 F, (inner params...))
    absorbed = models.cflux(models.multiply(models.tbabs, models.powerlaw), 0.5, 10.0)
    value = absorbed(jnp.geomspace(0.3, 20.0, 10), (-10.0, (0.3,), (2.0, 1.0)))
    assert np.all(np.isfinite(np.asarray(value)))
    with pytest.raises(ValueError):
        models.cflux(models.powerlaw, 10.0, 2.0)


def test_models_jit_vmap():
    energy = jnp.geomspace(0.2, 50.0, 64)
    batch = jnp.array([[0.1], [1.0], [3.0]])
    out = jax.jit(jax.vmap(lambda p: models.tbabs(energy, p)))(batch)
    assert out.shape == (3, 64)
    disks = jax.jit(jax.vmap(lambda p: models.diskbb(energy, p)))(jnp.array([[0.5, 1.0],
                                                                              [1.5, 2.0]]))
    assert disks.shape == (2, 64) and np.all(np.isfinite(np.asarray(disks)))
