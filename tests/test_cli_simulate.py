"""`bayspec-jax simulate`: counts equal a re-draw with the same seed, files load back through
`DataUnit`, PHA type II for ``--n > 1``, several units, and usage errors (exit status 2).

Every simulation of the example shapes shares one compiled draw (`simulate.draws`), so the
compilation is paid once per test session.
"""

import math

import jax
import numpy as np
import pytest
from astropy.io import fits

import bayspec_jax as bj
from bayspec_jax import models, simulate
from bayspec_jax.cli import main
from bayspec_jax.examples import EXAMPLE_TRUTH, cutoff_powerlaw, example_response

TRUTH = [-1.0, math.log10(300.0), math.log10(5.0)]  # the example truth, 1 keV pivot


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example files, and the unit `simulate` builds from them when no --src is given."""
    folder = tmp_path_factory.mktemp("example")
    paths = bj.examples.write_example_files(folder)
    unit = bj.DataUnit(src=paths["src"], bkg=paths["bkg"], rsp=paths["rsp"], notc=[10.0, 900.0],
                       stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})
    return folder, paths, unit


def _counts(spectrum):
    return np.asarray(spectrum.counts, dtype=np.float64)


def test_default_parameters_are_the_example_truth():
    from bayspec_jax.cli import _default_params

    np.testing.assert_allclose(_default_params("cpl"), TRUTH, rtol=1e-14)
    energy = np.geomspace(10.0, 1000.0, 7)
    np.testing.assert_allclose(np.asarray(models.cpl(energy, np.asarray(TRUTH))),
                               cutoff_powerlaw(energy, **EXAMPLE_TRUTH), rtol=1e-12)
    assert _default_params("band") == [-1.0, -3.0, 2.5, -1.0]  # the fit's start values


def test_simulate_example_writes_a_redraw_that_loads_back(example, tmp_path, capsys):
    folder, _, unit = example
    out = tmp_path / "sim"
    assert main(["simulate", "--example-dir", str(folder), "--seed", "7", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "simulated 1 spectrum per unit from cpl (alpha=-1, log_ec=2.47712, log_a=0.69897)" in text
    for ext in ("src", "bkg", "rsp"):
        assert f"{ext}: {out}.{ext}" in text
    again = simulate.draw(jax.random.key(7), models.cpl, np.asarray(TRUTH), unit)
    loaded = bj.DataUnit(src=f"{out}.src", bkg=f"{out}.bkg", rsp=f"{out}.rsp", notc=[10, 900],
                         stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})
    np.testing.assert_array_equal(_counts(loaded.src), np.asarray(again.src_counts))
    # Gaussian background: the compiled draw and the eager `draw` may differ in the last bit
    np.testing.assert_allclose(_counts(loaded.bkg), np.asarray(again.bkg_counts), rtol=1e-13)
    assert loaded.src.poisson and not loaded.bkg.poisson  # pgstat: Gaussian background
    np.testing.assert_array_equal(np.asarray(loaded.bkg.errors), np.asarray(unit.bkg.errors))
    np.testing.assert_array_equal(np.asarray(loaded.rsp.drm), example_response().drm)
    assert float(loaded.src.exposure) == 10.0 and loaded.n_groups > 10
    # the total is a Poisson draw around model + background
    mean = float(np.sum(simulate.expected_counts(models.cpl, np.asarray(TRUTH), unit)
                        + simulate.expected_background(unit)))
    total = float(np.sum(again.src_counts))
    assert abs(total - mean) < 5 * math.sqrt(mean)
    assert f"source counts {total:.0f}" in text


def test_simulate_n_writes_pha2_rows(example, tmp_path, capsys):
    _, paths, unit = example
    out = tmp_path / "many"
    params = [-1.2, 2.5, 0.5]
    argv = ["simulate", "--src", paths["src"], "--bkg", paths["bkg"], "--rsp", paths["rsp"],
            "--stat", "cstat", "--params=-1.2,2.5,0.5", "--n", "3", "--seed", "11",
            "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 spectra (PHA type II rows)" in text and f"src: {out}.src2" in text
    with fits.open(f"{out}.src2") as hdul:
        assert len(hdul["SPECTRUM"].data) == 3
    with fits.open(f"{out}.bkg2") as hdul:
        assert len(hdul["SPECTRUM"].data) == 3
    again = simulate.draws(jax.random.key(11), models.cpl, np.asarray(params),
                           unit.replace(stat="cstat"), 3)
    for row in range(3):
        loaded = bj.DataUnit(src=f"{out}.src2:{row}", bkg=f"{out}.bkg2:{row}", rsp=f"{out}.rsp",
                             stat="cstat")
        np.testing.assert_array_equal(_counts(loaded.src), np.asarray(again.src_counts[row]))
        np.testing.assert_array_equal(_counts(loaded.bkg), np.asarray(again.bkg_counts[row]))
        assert loaded.bkg.poisson  # cstat: Poisson background
    bkg = np.asarray(again.bkg_counts)
    np.testing.assert_array_equal(bkg, np.round(bkg))
    assert not np.array_equal(again.src_counts[0], again.src_counts[1])
    with pytest.raises(bj.OGIPError):
        bj.Source.from_src2(f"{out}.src2", 3)


def test_simulate_several_units(example, tmp_path, capsys):
    _, paths, unit = example
    files = ["--src", paths["src"], "--src", paths["src"], "--rsp", paths["rsp"],
             "--bkg", paths["bkg"], "--bkg", paths["bkg"]]
    out = tmp_path / "two"
    assert main(["simulate", *files, "--seed", "3", "--out", str(out)]) == 0
    data = bj.Data([("unit1", unit.replace(notc=None, grpg=None)),
                    ("unit2", unit.replace(notc=None, grpg=None))])
    fake = simulate.fakeit(jax.random.key(3), models.cpl, np.asarray(TRUTH), data)
    for name in ("unit1", "unit2"):
        loaded = bj.DataUnit(src=f"{out}_{name}.src", bkg=f"{out}_{name}.bkg",
                             rsp=f"{out}_{name}.rsp")
        np.testing.assert_array_equal(_counts(loaded.src), _counts(fake[name].src))
    assert not np.array_equal(_counts(fake["unit1"].src), _counts(fake["unit2"].src))

    out = tmp_path / "two_rows"
    assert main(["simulate", *files, "--seed", "3", "--n", "2", "--out", str(out)]) == 0
    assert "unit2: source counts" in capsys.readouterr().out
    fakes = simulate.fakeit(jax.random.key(3), models.cpl, np.asarray(TRUTH), data, n=2)
    for row in range(2):
        loaded = bj.DataUnit(src=f"{out}_unit2.src2:{row}", bkg=f"{out}_unit2.bkg2:{row}",
                             rsp=f"{out}_unit2.rsp")
        np.testing.assert_array_equal(_counts(loaded.src), _counts(fakes[row]["unit2"].src))


@pytest.mark.parametrize("argv, message", [
    (["--params=1,2"], "--params: expected 3 comma-separated numbers (alpha, log_ec, log_a)"),
    (["--params", "a,b,c"], "--params: expected 3"),
    (["--params=1,2,nan"], "--params: expected 3"),
    (["--model", "band", "--params=1,2,3"], "4 comma-separated numbers"),
    (["--n", "0"], "argument --n: expected an integer >= 1"),
    (["--n", "two"], "argument --n: expected an integer >= 1"),
    (["--seed", "-1"], "argument --seed: expected an integer from 0"),
    (["--model", "nope"], "argument --model: invalid choice"),
    (["--src", "missing.pha"], "missing.pha"),
    (["--stat", "nope"], "argument --stat: invalid choice"),
    (["--notc", "8-x"], "--notc: expected windows like 8-900"),
    (["--grpg", "{min_sigma: 3}"], "--grpg: expected JSON"),
])
def test_simulate_bad_arguments(argv, message, example, tmp_path, capsys):
    _, paths, _ = example
    if "--stat" in argv or "--notc" in argv or "--grpg" in argv:
        argv = ["--src", paths["src"], "--rsp", paths["rsp"], *argv]
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--out", str(tmp_path / "bad"), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "bayspec-jax simulate: error:" in err and message in err
    assert not list(tmp_path.glob("bad*"))


def test_simulate_refuses_incomplete_units_and_existing_files(example, tmp_path, capsys):
    _, paths, _ = example
    alone = tmp_path / "alone.src"  # the example source without the files it names
    with fits.open(paths["src"]) as hdul:
        hdul["SPECTRUM"].header.update(RESPFILE="none", BACKFILE="none")
        hdul.writeto(alone)
    with pytest.raises(SystemExit) as info, pytest.warns(UserWarning, match="no response"):
        main(["simulate", "--src", str(alone), "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "has no response: give --rsp, or --rmf and --arf" in capsys.readouterr().err
    (tmp_path / "x.rsp").write_text("keep me")
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--src", paths["src"], "--rsp", paths["rsp"], "--out",
              str(tmp_path / "x")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'x.rsp'} already exist(s): give --overwrite" in err
    assert (tmp_path / "x.rsp").read_text() == "keep me" and not (tmp_path / "x.src").exists()
