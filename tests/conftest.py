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
