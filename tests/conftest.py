"""Test configuration: float64 everywhere, and where the shared references live."""

import json
import pathlib

import jax
import pytest

jax.config.update("jax_enable_x64", True)

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data" / "bayspec-examples"
REFERENCE = SHARED / "reference" / "bayspec-0.4.5.json"


def _require(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.fail(f"shared reference material not found at {path}: tests read ../shared beside the checkout")
    return path


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The folder of real OGIP example files (``../shared/data/bayspec-examples``)."""
    return _require(DATA)


@pytest.fixture(scope="session")
def reference() -> dict:
    """Numbers computed by the original bayspec 0.4.5 on the example files."""
    with open(_require(REFERENCE)) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def joint(data_dir):
    """bayspec's JOINT case: Fermi/GBM NaI + BGO, PGSTAT, grouped to 2 sigma (10 channels max)."""
    import bayspec_jax as bj

    d = data_dir
    grpg = {"min_sigma": 2, "max_bin": 10}
    nai = bj.DataUnit(src=str(d / "ME/me.src"), bkg=str(d / "ME/me.bkg"), rsp=str(d / "ME/me.rsp"),
                      notc=[8, 900], stat="pgstat", grpg=grpg)
    bgo = bj.DataUnit(src=str(d / "HE/he.src"), bkg=str(d / "HE/he.bkg"), rsp=str(d / "HE/he.rsp"),
                      notc=[300, 38000], stat="pgstat", grpg=grpg)
    return bj.Data([("nai", nai), ("bgo", bgo)])


@pytest.fixture(scope="session")
def example_unit(tmp_path_factory):
    """The package's built-in example spectrum (written to files), noticed 10-900 keV, PGSTAT."""
    import bayspec_jax as bj

    paths = bj.examples.write_example_files(tmp_path_factory.mktemp("example"))
    return bj.DataUnit(src=paths["src"], bkg=paths["bkg"], rsp=paths["rsp"], notc=[10.0, 900.0],
                       stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})


@pytest.fixture(scope="session", autouse=True)
def gbm_drm_gen_data():
    """gbm-drm-gen's data folder (the BALROG database and the GRB 110721A example files): an
    installed gbm-drm-gen's, else downloaded once into ~/.cache/bayspec-gbm by
    `balrog.fetch_database`. Offline, the tests that need it skip."""
    from bayspec_jax import balrog

    folder = balrog.gbm_drm_gen_data_dir()
    if folder is None or not (folder / "balrog_db.h5").is_file():
        try:
            folder = balrog.fetch_database()
        except Exception as error:  # offline or no index: those tests skip with their reason
            print(f"\nBALROG database not available ({error}); its tests skip")
            return None
    return folder


@pytest.fixture(scope="module", autouse=True)
def release_compiled_programs():
    """Drop JAX's compiled programs after each test module. One process compiles thousands of
    programs over the suite; each keeps code mappings alive, and past the kernel's limit on a
    process's memory mappings (vm.max_map_count, 65530 by default) LLVM fails to allocate
    ("Cannot allocate memory") and XLA's compiler crashes."""
    yield
    jax.clear_caches()
