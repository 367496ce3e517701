"""Every ``notebooks/*.ipynb``: valid nbformat 4 JSON, and its code cells run in order, in one
fresh namespace, small (``BAYSPEC_JAX_NOTEBOOK_SMALL=1``), headless (``MPLBACKEND=Agg``) and in a
temporary working directory. Each notebook ends with a code cell of asserts on its results, so
running it checks values, not only that nothing raised.

nbformat/nbclient are not needed: the JSON is read with `json` and the cells run with `exec`.
A notebook on outside data (``grb110721a_localization``: gbm-drm-gen's example data and BALROG
database) skips where that data is not found.
"""

import json
import pathlib
import re

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TYPES = {"code", "markdown", "raw"}
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _python(source: str) -> str:
    """A code cell as plain Python: IPython magics and shell lines (``%...``, ``!...``) dropped."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _missing_data(path: pathlib.Path) -> str | None:
    """Why a notebook that needs outside data cannot run here, or `None`."""
    if path.stem == "grb110721a_localization":
        from bayspec_jax.balrog import gbm_drm_gen_data_dir

        folder = gbm_drm_gen_data_dir()
        if folder is None or not (folder / "balrog_db.h5").is_file() or not (
                folder / "example_data" / "glg_cspec_n6_bn110721200_v00.pha").is_file():
            return ("gbm-drm-gen's data folder (balrog_db.h5, example_data/) not found (set "
                    "BAYSPEC_GBM_DRM_GEN_DATA)")
    return None


def _read(path: pathlib.Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_the_notebooks_are_there():
    names = {path.name for path in NOTEBOOKS}
    assert {"quickstart.ipynb", "numpyro_blackjax.ipynb"} <= names, names
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    missing = [name for name in names if name not in readme]
    assert not missing, f"notebooks/README.md does not list {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_nbformat_4(path):
    notebook = _read(path)
    assert isinstance(notebook, dict)
    assert notebook["nbformat"] == 4 and isinstance(notebook["nbformat_minor"], int)
    assert isinstance(notebook["metadata"], dict)
    cells = notebook["cells"]
    assert isinstance(cells, list) and cells
    ids = []
    for i, cell in enumerate(cells):
        where = f"{path.name} cell {i}"
        assert cell["cell_type"] in CELL_TYPES, where
        assert isinstance(cell["metadata"], dict), where
        source = cell["source"]
        assert isinstance(source, str) or all(isinstance(s, str) for s in source), where
        if notebook["nbformat_minor"] >= 5:
            assert CELL_ID.match(cell["id"]), where
            ids.append(cell["id"])
        if cell["cell_type"] == "code":
            assert isinstance(cell["outputs"], list), where
            count = cell["execution_count"]
            assert count is None or isinstance(count, int), where
            compile(_python(_source(cell)), where, "exec")  # valid Python
        else:
            assert "outputs" not in cell and "execution_count" not in cell, where
    assert len(ids) == len(set(ids)), f"{path.name}: cell ids repeat"
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and re.search(r"^assert ", _source(code[-1]), re.MULTILINE), (
        f"{path.name} must end with a code cell of asserts that check its results")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    missing = _missing_data(path)
    if missing:
        pytest.skip(missing)
    import matplotlib

    monkeypatch.setenv("BAYSPEC_JAX_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg", force=True)  # in case pyplot was imported with another backend
    monkeypatch.chdir(tmp_path)
    import matplotlib.pyplot as plt

    namespace = {"__name__": "__main__"}
    cells = [cell for cell in _read(path)["cells"] if cell["cell_type"] == "code"]
    try:
        for i, cell in enumerate(cells):
            code = compile(_python(_source(cell)), f"{path.name} code cell {i}", "exec")
            exec(code, namespace)  # noqa: S102 (running the notebook is the test)
    finally:
        plt.close("all")
