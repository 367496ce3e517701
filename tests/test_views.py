"""Model-dependent views (folded, deconvolved, residuals) and the deconvolved/corner plots."""

import json
import os
import subprocess
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import likelihood, models, views

JOINT_PARAMS = np.array([-1.563, 2.691, 2.354])  # cpl: alpha, log10 Ec, log10 A
KEV = 1.60218e-9  # erg per keV, bayspec's constant
KINDS = ("phtspec", "flxspec", "ergspec")


def _unit(data_dir, **settings):
    d = data_dir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bj.DataUnit(src=str(d / "ME/me.src"), bkg=str(d / "ME/me.bkg"),
                           rsp=str(d / "ME/me.rsp"), notc=[8, 900], stat="pgstat", **settings)


@pytest.fixture(scope="module")
def me_rebinned(data_dir):
    """The NaI unit fitted on 3-sigma groups and shown on a finer 2-sigma rebinning grid."""
    unit = _unit(data_dir, grpg={"min_sigma": 3, "max_bin": 10},
                 rebn={"min_sigma": 2, "max_bin": 10})
    return bj.Data([("ME", unit)])


# -- an independent, numpy-only version of bayspec's formulas ----------------------------------


def _cpl(energy, params):
    alpha, log_ec, log_a = params
    return 10.0**log_a * energy**alpha * np.exp(-energy / 10.0**log_ec)


def _expected(unit, params, rebinned=False, sf=None, bf=None, rf=None):
    """Per group: model rate, net rate and error, and the three deconvolved spectra (+errors)."""
    re = "re_" if rebinned else ""
    grid = np.asarray(unit.egrid, dtype=float).reshape(unit.nbin, unit.ngrid)
    values = _cpl(grid, params)
    flux = np.sum(0.5 * (values[:, 1:] + values[:, :-1]) * np.diff(grid, axis=1), axis=1)
    rf = float(unit.rsp.factor.value) if rf is None else rf
    rate = flux @ np.asarray(unit.rsp_re_drm if rebinned else unit.rsp_drm) * rf
    # centres and widths in the bounds' own precision (float32 EBOUNDS here), as bayspec; the
    # model is then evaluated in float64
    chbin = np.asarray(getattr(unit, f"rsp_{re}chbin"))
    width = np.diff(chbin, axis=1)[:, 0].astype(np.float64)
    energy = chbin.mean(axis=1).astype(np.float64)
    src_scale = 1.0 if sf is None else float(unit.src.factor.value) / sf
    bkg_scale = 1.0 if bf is None else float(unit.bkg.factor.value) / bf
    src, bkg = (np.asarray(getattr(unit, f"{part}_{re}ctsrate")) * scale
                for part, scale in (("src", src_scale), ("bkg", bkg_scale)))
    src_err, bkg_err = (np.asarray(getattr(unit, f"{part}_{re}ctsrate_error")) * scale
                        for part, scale in (("src", src_scale), ("bkg", bkg_scale)))
    net, net_err = src - bkg, np.hypot(src_err, bkg_err)
    photons_per_count = _cpl(energy, params) / (rate / width)
    out = {"rate": rate, "residual": (net - rate) / net_err}
    for kind, power in zip(KINDS, (0, 1, 2)):
        factor = photons_per_count * (KEV * energy**power if power else 1.0)
        out[kind] = factor * net / width
        out[kind + "_error"] = factor * net_err / width
    return out


# -- folded model -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["ME", "HE"])
def test_conv_ctsrate_matches_bayspec_reference(data_dir, reference, case):
    from test_unit_reference import _as_str, _cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = bj.DataUnit(**_as_str(_cases(data_dir)[case]))
    data = bj.Data([(case, unit)])
    params = np.array([-1.88, 2.80])  # the reference's pl parameters for these cases
    ref = reference[case]
    rate = np.asarray(views.conv_ctsrate(models.pl, params, data)[0])
    np.testing.assert_allclose(rate, ref["model_conv_ctsrate"], rtol=1e-10)
    spec = np.asarray(views.conv_ctsspec(models.pl, params, data)[0])
    np.testing.assert_allclose(spec, np.asarray(ref["model_conv_ctsrate"])
                               / np.asarray(ref["rsp_chbin_width"]), rtol=1e-10)
    # with a single grid (no rebn) the rebinned model rate is the grouped one
    np.testing.assert_allclose(np.asarray(views.conv_re_ctsrate(models.pl, params, data)[0]),
                               ref["model_conv_ctsrate"], rtol=1e-10)


def test_conv_views_of_joint_match_numpy(joint):
    rates = views.conv_ctsrate(models.cpl, JOINT_PARAMS, joint)
    specs = views.conv_ctsspec(models.cpl, JOINT_PARAMS, joint)
    assert [r.shape for r in rates] == [(n,) for n in joint.npoints]
    for unit, rate, spec in zip(joint.units, rates, specs):
        expected = _expected(unit, JOINT_PARAMS)["rate"]
        np.testing.assert_allclose(np.asarray(rate), expected, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(spec), expected / np.asarray(unit.rsp_chbin_width),
                                   rtol=1e-12)


# -- deconvolved spectra and residuals ----------------------------------------------------------


def test_deconvolved_views_match_independent_formula(joint):
    for kind in KINDS:
        for error in (False, True):
            name = f"deconv_{kind}" + ("_error" if error else "")
            got = getattr(views, name)(models.cpl, JOINT_PARAMS, joint)
            assert len(got) == len(joint)
            for unit, value in zip(joint.units, got):
                expected = _expected(unit, JOINT_PARAMS)[kind + ("_error" if error else "")]
                assert value.shape == (unit.n_groups,)
                np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-12, err_msg=name)
    # the definitions tie the three together: flx = keV E pht, erg = keV E^2 pht
    energy = np.asarray(joint["nai"].rsp_chbin_mean, dtype=float)
    pht = np.asarray(views.deconv_phtspec(models.cpl, JOINT_PARAMS, joint)[0])
    erg = np.asarray(views.deconv_ergspec(models.cpl, JOINT_PARAMS, joint)[0])
    np.testing.assert_allclose(erg, KEV * energy**2 * pht, rtol=1e-13)


def test_deconvolved_model_at_centre_is_the_model_when_data_equal_model(joint):
    """Where the net counts equal the model counts, the deconvolved spectrum is the model."""
    nai = joint["nai"]
    rate = np.asarray(views.conv_ctsspec(models.cpl, JOINT_PARAMS, joint)[0])
    ratio = rate / np.asarray(nai.net_ctsspec)
    deconv = np.asarray(views.deconv_phtspec(models.cpl, JOINT_PARAMS, joint)[0])
    at_rsp = np.asarray(views.spectrum_at_rsp(models.cpl, JOINT_PARAMS, joint)[0])
    np.testing.assert_allclose(deconv * ratio, at_rsp, rtol=1e-12)


def test_rebinned_views_match_independent_formula(me_rebinned):
    unit = me_rebinned["ME"]
    assert unit.n_rebins != unit.n_groups
    expected = _expected(unit, JOINT_PARAMS, rebinned=True)
    np.testing.assert_allclose(
        np.asarray(views.conv_re_ctsrate(models.cpl, JOINT_PARAMS, me_rebinned)[0]),
        expected["rate"], rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(views.conv_re_ctsspec(models.cpl, JOINT_PARAMS, me_rebinned)[0]),
        expected["rate"] / np.asarray(unit.rsp_re_chbin_width), rtol=1e-12)
    for kind in KINDS:
        for suffix in ("", "_error"):
            got = getattr(views, f"deconv_re_{kind}{suffix}")(models.cpl, JOINT_PARAMS,
                                                             me_rebinned)[0]
            assert got.shape == (unit.n_rebins,)
            np.testing.assert_allclose(np.asarray(got), expected[kind + suffix], rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(views.re_residual(models.cpl, JOINT_PARAMS, me_rebinned)[0]),
        expected["residual"], rtol=1e-10, atol=1e-12)


def test_rebinned_equals_grouped_without_rebn(joint):
    for kind in KINDS:
        grouped = views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind)
        rebinned = views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind, rebinned=True)
        for a, b in zip(grouped, rebinned):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_residual_is_sigma_residual(joint):
    got = views.residual(models.cpl, JOINT_PARAMS, joint)
    for unit, value in zip(joint.units, got):
        np.testing.assert_allclose(np.asarray(value), _expected(unit, JOINT_PARAMS)["residual"],
                                   rtol=1e-10, atol=1e-12)
    # it differs from the statistic's pseudo-residual but agrees with it in sign
    pseudo = likelihood.pseudo_residual(models.cpl, JOINT_PARAMS, joint)
    for a, b in zip(got, pseudo):
        a, b = np.asarray(a), np.asarray(b)
        big = np.abs(a) > 0.5
        assert np.all(np.sign(a[big]) == np.sign(b[big]))


def test_data_params_rescale_source_background_and_response(joint):
    data_params = {"sf": jnp.array([2.0, 1.0]), "bf": jnp.array([1.0, 0.5]),
                   "rf": jnp.array([1.1, 0.9])}
    for i, unit in enumerate(joint.units):
        factors = {k: float(v[i]) for k, v in data_params.items()}
        expected = _expected(unit, JOINT_PARAMS, **factors)
        np.testing.assert_allclose(
            np.asarray(views.conv_ctsrate(models.cpl, JOINT_PARAMS, joint, data_params)[i]),
            expected["rate"], rtol=1e-12)
        for kind in KINDS:
            np.testing.assert_allclose(
                np.asarray(views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind,
                                            data_params=data_params)[i]),
                expected[kind], rtol=1e-12)
            np.testing.assert_allclose(
                np.asarray(views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind, error=True,
                                            data_params=data_params)[i]),
                expected[kind + "_error"], rtol=1e-12)
        np.testing.assert_allclose(
            np.asarray(views.residual(models.cpl, JOINT_PARAMS, joint, data_params)[i]),
            expected["residual"], rtol=1e-10, atol=1e-12)
    # the units' own factors given explicitly change nothing
    own = {"sf": jnp.ones(2), "bf": jnp.ones(2), "rf": jnp.ones(2)}
    for a, b in zip(views.deconv_ergspec(models.cpl, JOINT_PARAMS, joint, own),
                    views.deconv_ergspec(models.cpl, JOINT_PARAMS, joint)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_zero_model_counts_give_nan_not_inf(joint):
    def dark(energy, params):
        return 0.0 * energy * params[0]

    for value in views.deconv_phtspec(dark, jnp.array([1.0]), joint):
        assert np.all(np.isnan(np.asarray(value)))
    for value in views.conv_ctsrate(dark, jnp.array([1.0]), joint):
        np.testing.assert_array_equal(np.asarray(value), 0.0)


def test_views_jit_and_grad(joint):
    eager = views.deconv_ergspec(models.cpl, JOINT_PARAMS, joint)
    jitted = jax.jit(lambda p: views.deconv_ergspec(models.cpl, p, joint))(JOINT_PARAMS)
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
    grad = jax.grad(lambda p: jnp.sum(views.residual(models.cpl, p, joint)[0] ** 2))(
        jnp.asarray(JOINT_PARAMS))
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_model_spectrum_units():
    energy = np.array([10.0, 100.0, 1000.0])
    pht = np.asarray(views.model_spectrum(models.cpl, JOINT_PARAMS, energy))
    np.testing.assert_allclose(pht, _cpl(energy, JOINT_PARAMS), rtol=1e-14)
    np.testing.assert_allclose(
        np.asarray(views.model_spectrum(models.cpl, JOINT_PARAMS, energy, "flxspec")),
        KEV * energy * pht, rtol=1e-14)
    np.testing.assert_allclose(
        np.asarray(views.model_spectrum(models.cpl, JOINT_PARAMS, energy, "ergspec")),
        KEV * energy**2 * pht, rtol=1e-14)


def test_bad_arguments_raise_clear_value_errors(joint):
    with pytest.raises(ValueError, match="data must be a bayspec_jax.Data"):
        views.deconv_phtspec(models.cpl, JOINT_PARAMS, joint.units[0])
    with pytest.raises(ValueError, match="model must be a callable"):
        views.conv_ctsrate("cpl", JOINT_PARAMS, joint)
    with pytest.raises(ValueError, match="kind must be one of"):
        views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind="nufnu")
    with pytest.raises(ValueError, match="kind must be one of"):
        views.model_spectrum(models.cpl, JOINT_PARAMS, 1.0, kind="Fv")
    with pytest.raises(ValueError, match=r"data_params has unknown name\(s\) \['sff'\]"):
        views.deconv_ergspec(models.cpl, JOINT_PARAMS, joint, {"sff": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"data_params\['rf'\] must have shape \(2,\)"):
        views.residual(models.cpl, JOINT_PARAMS, joint, {"rf": jnp.ones(3)})
    with pytest.raises(ValueError, match="data_params must be a mapping"):
        views.conv_re_ctsrate(models.cpl, JOINT_PARAMS, joint, [1.0, 1.0])


# -- the original, when it is installed -------------------------------------------------------

ORACLE_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
from bayspec import Data, DataUnit, Pair
from bayspec.model.local import cpl

d, alpha, log_ec, log_a = sys.argv[1], *map(float, sys.argv[2:5])
unit = DataUnit(src=f"{d}/ME/me.src", bkg=f"{d}/ME/me.bkg", rsp=f"{d}/ME/me.rsp", notc=[8, 900],
                stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10},
                rebn={"min_sigma": 2, "max_bin": 10})
data = Data([("ME", unit)])
model = cpl()
model.cfg[3].val = False  # vfv_peak off: (alpha, log10 Ec, log10 A)
model.par[1].val, model.par[2].val, model.par[3].val = alpha, log_ec, log_a
pair = Pair(data, model)
names = json.loads(sys.argv[5])
views = lambda: {n: np.asarray(getattr(pair, n)[0], dtype=float).tolist() for n in names}
out = {"float32_centres": views()}
# bayspec evaluates the model at the float32 group centres (EBOUNDS dtype) in float32; give its
# Data the same centres as float64 so that its own formulas run in double precision.
for name in ("rsp_chbin_mean", "rsp_re_chbin_mean"):
    centres = getattr(data, name)
    setattr(data, f"_cached_{name}", [np.asarray(c, dtype=np.float64) for c in centres])
    assert getattr(data, name)[0].dtype == np.float64
out["float64_centres"] = views()
json.dump(out, sys.stdout)
"""

ORACLE_VIEWS = (["conv_ctsrate", "conv_ctsspec", "conv_re_ctsrate", "conv_re_ctsspec",
                 "residual", "re_residual"]
                + [f"deconv_{re}{kind}{error}" for kind in KINDS for re in ("", "re_")
                   for error in ("", "_error")])


@pytest.mark.skipif(not os.environ.get("BAYSPEC_ORACLE_PYTHON"),
                    reason="set BAYSPEC_ORACLE_PYTHON to a python with bayspec 0.4.5")
def test_views_match_bayspec_pair(data_dir, me_rebinned):
    result = subprocess.run(
        [os.environ["BAYSPEC_ORACLE_PYTHON"], "-c", ORACLE_SCRIPT, str(data_dir),
         *map(repr, JOINT_PARAMS.tolist()), json.dumps(ORACLE_VIEWS)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    oracle = json.loads(result.stdout)
    for name in ORACLE_VIEWS:
        ours = np.asarray(getattr(views, name)(models.cpl, JOINT_PARAMS, me_rebinned)[0])
        theirs = np.asarray(oracle["float64_centres"][name], dtype=float)
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10 if "residual" in name
                                   else 0.0, err_msg=name)
        # bayspec as is: its float32 model evaluation at the centres costs ~3e-7 relative
        raw = np.asarray(oracle["float32_centres"][name], dtype=float)
        np.testing.assert_allclose(ours, raw, rtol=1e-6 if name.startswith("deconv") else 1e-10,
                                   atol=1e-10 if "residual" in name else 0.0, err_msg=name)


# -- plots ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib import pyplot

    yield pyplot
    pyplot.close("all")


def _is_png(path):
    with open(path, "rb") as f:
        return path.stat().st_size > 1000 and f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", KINDS)
def test_deconvolved_spectrum_plot(plt, joint, tmp_path, kind):
    from bayspec_jax import plot

    path = tmp_path / f"deconv_{kind}.png"
    figure = plot.deconvolved_spectrum(models.cpl, JOINT_PARAMS, joint, kind=kind, path=str(path))
    assert _is_png(path)
    top, bottom = figure.axes
    assert top.get_xscale() == top.get_yscale() == "log"
    assert views.SPECTRUM_UNITS[kind] in top.get_ylabel()
    assert bottom.get_xlabel() == "energy [keV]"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["model", "nai (pgstat)", "bgo (pgstat)"]
    (curve,) = [line for line in top.get_lines() if line.get_label() == "model"]
    energy, model = curve.get_data()
    assert len(energy) == 400 and energy.min() < 9 and energy.max() > 30000
    np.testing.assert_allclose(
        model, np.asarray(views.model_spectrum(models.cpl, JOINT_PARAMS, energy, kind)),
        rtol=1e-12)
    # one error-bar set per unit, plus upper limits for the BGO groups with negative net counts
    assert len(top.containers) >= len(joint)
    nai_bars = top.containers[0]  # (data line, caps, (x bars, y bars))
    assert nai_bars.get_label() == "nai (pgstat)"
    deconv = np.asarray(views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind)[0])
    error = np.asarray(views.deconvolve(models.cpl, JOINT_PARAMS, joint, kind, error=True)[0])
    shown = deconv > 0
    y_bars = np.array(nai_bars[2][1].get_segments())
    assert y_bars.shape == (int(shown.sum()), 2, 2)
    np.testing.assert_allclose(y_bars[:, 1, 1] - y_bars[:, 0, 1], 2 * error[shown], rtol=1e-12)
    assert len(bottom.containers) == len(joint)
    plt.close(figure)


def test_deconvolved_spectrum_rejects_bad_kind(plt, joint):
    from bayspec_jax import plot

    with pytest.raises(ValueError, match="kind must be one of"):
        plot.deconvolved_spectrum(models.cpl, JOINT_PARAMS, joint, kind="vFv")


def _fake_samples(seed=0):
    rng = np.random.default_rng(seed)
    cov = np.array([[0.01, 0.006, 0.002], [0.006, 0.02, -0.004], [0.002, -0.004, 0.005]])
    draws = rng.multivariate_normal(JOINT_PARAMS, cov, size=(4, 1000))
    return {"alpha": draws[..., 0], "log Ec": draws[..., 1], "log A": draws[..., 2].ravel()}


def test_corner_plot(plt, tmp_path):
    from bayspec_jax import plot

    samples = _fake_samples()
    path = tmp_path / "corner.png"
    figure = plot.corner(samples, truths=dict(zip(samples, JOINT_PARAMS)), path=str(path))
    assert _is_png(path)
    assert len(figure.axes) == 6  # lower triangle and diagonal of 3 x 3
    diagonal = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title().split(" = ")[0] for ax in diagonal] == list(samples)
    median = float(np.median(samples["alpha"]))
    assert f"{median:.3f}" in diagonal[0].get_title()
    bottom_row = [ax.get_xlabel() for ax in figure.axes if ax.get_xlabel()]
    assert bottom_row == list(samples)
    # every off-diagonal panel has a 2-D histogram and the two mass contours
    from matplotlib.contour import ContourSet

    off_diagonal = [ax for ax in figure.axes if not ax.get_title()]
    assert len(off_diagonal) == 3
    for ax in off_diagonal:
        contours = [c for c in ax.collections if isinstance(c, ContourSet)]
        assert len(contours) == 1 and len(contours[0].levels) == 2
    plt.close(figure)
    # truths as a sequence, and no truths at all
    assert len(plot.corner(samples, truths=list(JOINT_PARAMS)).axes) == 6
    assert len(plot.corner({"x": samples["alpha"]}).axes) == 1
    plt.close("all")


def test_corner_mass_levels_hold_the_mass():
    from bayspec_jax.plot import _mass_levels

    rng = np.random.default_rng(1)
    histogram, _, _ = np.histogram2d(*rng.normal(size=(2, 200_000)), bins=60,
                                     range=[[-5, 5], [-5, 5]])
    for mass, level in zip((0.68, 0.95), _mass_levels(histogram, (0.68, 0.95))):
        inside = histogram[histogram >= level].sum() / histogram.sum()
        assert abs(inside - mass) < 0.01
    # for a 2-D Gaussian the 68% region is the circle of radius sqrt(-2 ln 0.32)
    level68 = _mass_levels(histogram, (0.68,))[0]
    centres = np.linspace(-5, 5, 61)[:-1] + 5 / 60
    r = np.hypot(*np.meshgrid(centres, centres, indexing="ij"))
    assert abs(r[histogram >= level68].max() - np.sqrt(-2 * np.log(0.32))) < 0.25


def test_corner_rejects_bad_samples(plt):
    from bayspec_jax import plot

    samples = _fake_samples()
    with pytest.raises(ValueError, match="samples must be a non-empty dict"):
        plot.corner({})
    with pytest.raises(ValueError, match="same number of draws"):
        plot.corner({"a": np.zeros(10), "b": np.zeros(11)})
    with pytest.raises(ValueError, match=r"samples\['a'\] must be a 1-d or \(chain, draw\)"):
        plot.corner({"a": np.zeros((2, 2, 2))})
    with pytest.raises(ValueError, match=r"truths has unknown name\(s\) \['beta'\]"):
        plot.corner(samples, truths={"beta": 1.0})
    with pytest.raises(ValueError, match="one value per parameter"):
        plot.corner(samples, truths=[1.0])
