"""Par and priors, the built-in example observation, and the bayspec-jax command."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax.cli import main
from bayspec_jax.examples import EXAMPLE_TRUTH, example_response, write_example_files
from bayspec_jax.io import read_pha, read_rmf


def test_par_is_a_pytree_with_one_leaf():
    par = bj.Par(2.0, prior=bj.unif(0.0, 5.0), scale="log", unit="keV")
    assert jax.tree.leaves(par) == [par.val]
    assert float(par.value) == 100.0
    grad = jax.grad(lambda p: p.value)(par)
    np.testing.assert_allclose(float(grad.val), 100.0 * math.log(10.0), rtol=1e-12)
    frozen = par.frozen_at(1.0)
    assert frozen.frozen and float(frozen.val) == 1.0 and float(par.val) == 2.0
    with pytest.raises(ValueError, match="prior"):
        bj.Par(1.0)  # free without a prior
    with pytest.raises(ValueError, match="scale"):
        bj.Par(1.0, frozen=True, scale="ln")
    with pytest.raises(TypeError, match="no field"):
        par.replace(value=3.0)


def test_priors_log_prob():
    np.testing.assert_allclose(float(bj.unif(-1.0, 3.0).log_prob(0.5)), -math.log(4.0))
    assert float(bj.unif(-1.0, 3.0).log_prob(3.5)) == -math.inf
    np.testing.assert_allclose(float(bj.norm(1.0, 2.0).log_prob(2.0)),
                               -0.125 - math.log(2.0) - 0.5 * math.log(2 * math.pi), rtol=1e-14)
    np.testing.assert_allclose(float(bj.logunif(1.0, math.e).log_prob(2.0)), -math.log(2.0))
    assert bj.unif(0, 10).interval(0.5) == (2.5, 7.5)
    lo, hi = bj.norm(0.0, 1.0).interval(0.6826894921370859)
    np.testing.assert_allclose([lo, hi], [-1.0, 1.0], rtol=1e-9)
    grad = jax.grad(lambda x: bj.logunif(1.0, 10.0).log_prob(x))(jnp.asarray(2.0))
    assert float(grad) == -0.5


def test_example_response_is_a_proper_redistribution():
    rmf = example_response()
    assert rmf.drm.shape == (140, 128)
    centres = np.sqrt(rmf.phbin[:, 0] * rmf.phbin[:, 1])
    area = 120.0 * (1 - np.exp(-((centres / 12.0) ** 3))) / (1 + (centres / 600.0) ** 1.5)
    inside = (centres > 30) & (centres < 700)  # photopeak wholly within 8 keV - 1 MeV
    np.testing.assert_allclose(rmf.drm[inside].sum(1), area[inside], rtol=1e-6)
    peak_channel = np.argmax(rmf.drm[inside], axis=1)
    chan_centres = np.sqrt(rmf.chbin[:, 0] * rmf.chbin[:, 1])
    assert np.all(np.abs(np.log(chan_centres[peak_channel] / centres[inside])) < 0.1)


def test_example_files_round_trip_through_the_loaders(tmp_path):
    paths = write_example_files(tmp_path)
    src = bj.Source.from_src(paths["src"])
    bkg = bj.Background.from_bkg(paths["bkg"])
    rsp = bj.Response.from_rsp(paths["rsp"])
    assert src.poisson and not bkg.poisson
    np.testing.assert_array_equal(np.asarray(src.errors), np.sqrt(np.asarray(src.counts)))
    np.testing.assert_array_equal(np.asarray(rsp.drm), example_response().drm)
    # The counts are a Poisson draw around the folded model: within a few sigma in total.
    expected_bkg = float(np.asarray(bkg.counts).sum())
    pha = read_pha(paths["src"])
    assert pha.keywords["RESPFILE"] == "example.rsp"
    rmf = read_rmf(paths["rsp"])
    from bayspec_jax.examples import _photon_flux_per_bin

    expected_src = float(_photon_flux_per_bin(rmf.phbin) @ rmf.drm.sum(1)) * 10.0
    total = float(np.asarray(src.counts).sum())
    assert abs(total - expected_src - expected_bkg) < 5 * math.sqrt(total) + 0.05 * expected_bkg
    assert EXAMPLE_TRUTH["alpha"] == -1.0
    # the same seed gives the same files
    again = write_example_files(tmp_path / "again")
    np.testing.assert_array_equal(np.asarray(bj.Source.from_src(again["src"]).counts),
                                  np.asarray(src.counts))


def test_cli_info_on_example_and_on_files(tmp_path, capsys, data_dir):
    assert main(["info", "--example-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "example.src" in out and "128 channels" in out and "response: 140 photon bins" in out
    assert main(["info", f"{data_dir / 'ME/me.src2'}:4", str(data_dir / "ME/me.rsp2")]) == 0
    out = capsys.readouterr().out
    assert "row 4: 470 channels" in out and "300 photon bins" in out
    assert main(["info", str(tmp_path / "missing.pha")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cli_fit_on_the_example(tmp_path, capsys):
    from bayspec_jax.examples import EXAMPLE_TRUTH

    plot = tmp_path / "fit.png"
    assert main(["fit", "--example-dir", str(tmp_path), "--samples", "40", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "maximum likelihood" in out and "NUTS, 2 chains x 40 samples" in out
    assert plot.exists() and plot.stat().st_size > 10_000
    ml_table = out.split("maximum likelihood")[1].split("NUTS")[0]
    rows = {line.split()[0]: line.split() for line in ml_table.splitlines() if line[:6] in
            ("alpha ", "log_ec", "log_a ")}
    value, error = float(rows["alpha"][1]), float(rows["alpha"][2])
    assert abs(value - EXAMPLE_TRUTH["alpha"]) < 4 * error
    value, error = float(rows["log_ec"][1]), float(rows["log_ec"][2])
    assert abs(value - EXAMPLE_TRUTH["log_ec"]) < 4 * error
