"""`BalrogResponse` on gbm-drm-gen 1.2.2's `DRMGen` (the original, called on the host) and on
our `drm_generator` give the same log-likelihood for the same data.

gbm-drm-gen pins numpy<2.4 and astropy<7, so it is not installed next to bayspec_jax: the
comparison runs ``benchmarks/bench_balrog.py --agreement-only --json --quick`` (part d: one NaI
and one BGO unit, 3 positions: the burst's and two near the Earth's limb) in a python that
imports both, ``$BAYSPEC_GBM_PYTHON`` or else ``/tmp/gbmvenv/bin/python``
(benchmarks/README_balrog.md says how to make it). Skipped where there is none.
"""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "bench_balrog.py"
DEFAULT_PYTHON = "/tmp/gbmvenv/bin/python"
RTOL = 1e-8  # measured: <= 5e-15 in float64 (the matrices agree to rounding)


def _env() -> dict:
    """This checkout's bayspec_jax first on the path of the other python."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + path if path else ""))


def _gbm_python() -> str | None:
    """A python that imports gbm_drm_gen and bayspec_jax, or None."""
    python = os.environ.get("BAYSPEC_GBM_PYTHON") or DEFAULT_PYTHON
    if not os.path.exists(python):
        return None
    check = subprocess.run([python, "-c", "import gbm_drm_gen, bayspec_jax"], env=_env(),
                           capture_output=True, timeout=300, check=False)
    return python if check.returncode == 0 else None


@pytest.fixture(scope="module")
def gbm_python():
    python = _gbm_python()
    if python is None:
        pytest.skip("no python importing both gbm_drm_gen and bayspec_jax (set "
                    "BAYSPEC_GBM_PYTHON; see benchmarks/README_balrog.md)")
    return python


def test_loglike_on_gbm_drm_gen_equals_ours(gbm_python):
    run = subprocess.run([gbm_python, str(SCRIPT), "--agreement-only", "--json", "--quick"],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1500,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line[7:]) for line in run.stdout.splitlines()
               if line.startswith("RESULT ")]
    assert len(results) == 1, run.stdout[-3000:]
    result = results[0]
    assert result["gbm"] and result["x64"]
    agreement = result["agreement"]
    assert agreement["detectors"] == ["n6", "b0"]
    rows = agreement["positions"]
    assert [r["label"] for r in rows] == ["source", "limb +1 deg", "limb +3 deg"]
    for row in rows:
        assert row["limb_margin_deg"] > 0.0  # none behind the Earth
        assert row["ours"] == pytest.approx(row["gbm"], rel=RTOL, abs=0.0), row
    assert agreement["max_rel_diff"] <= RTOL
