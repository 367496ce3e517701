"""The BALROG detector database of Fermi/GBM: responses on a grid of directions, read from
gbm-drm-gen's ``balrog_db.h5`` on the host (numpy, h5py).

The file ships inside the gbm-drm-gen package (85-105 MB); it is read where that package is
installed, found without importing it (its import chain needs an old astropy), or from a path
the user gives. Nothing of it is copied into this repository.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import pathlib
import re
from typing import NamedTuple

import numpy as np

DETECTORS = ("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "na", "nb", "b0",
             "b1")
_LONG_NAMES = {f"NAI_{i:02d}": name for i, name in enumerate(DETECTORS[:12])}
_LONG_NAMES.update(BGO_00="b0", BGO_01="b1")
DATABASE_FILE = "balrog_db.h5"
DATA_DIR_ENV = "BAYSPEC_GBM_DRM_GEN_DATA"
"""Environment variable naming an installed gbm-drm-gen's ``gbm_drm_gen/data`` folder."""
_VENV_ROOTS = (pathlib.Path("/tmp/gbmvenv"), pathlib.Path("~/.cache/bayspec-gbm/venv"))
CACHE_DATA_DIR = pathlib.Path("~/.cache/bayspec-gbm/gbm_drm_gen/data")
"""Where `fetch_database` puts gbm-drm-gen's data folder."""
GBM_DRM_GEN_VERSION = "1.2.2"


class DetectorDatabase(NamedTuple):
    """One detector's part of the database (host arrays, dtypes as gbm-drm-gen reads them).

    - `detector`: the short name (``"n0"`` ... ``"nb"``, ``"b0"``, ``"b1"``).
    - `grid`: ``(272, 3)`` unit vectors of the database directions in spacecraft coordinates
        (computed in float32 from the azimuth and zenith, as gbm-drm-gen does).
    - `responses`: ``(272, 70, 64)`` the response at each direction: 70 photon energies by 64
        sub-bins of the deposited energy (their edges `epx_lo`, `epx_hi` ``(70, 64)`` [keV]).
    - `photon_energies`: ``(71,)`` the 70 database photon energies and the last upper edge
        [keV] (float32).
    - `at_scat`: ``(12, 12, 6, 70, 70)`` the atmospheric-scattering matrices by (source
        latitude from the zenith, scattering polar angle, azimuth, incident energy, scattered
        energy); `lat_edge` ``(13,)``, `lat_cent`, `theta_cent` ``(12,)`` and `phi_cent`
        ``(6, 2)`` (the azimuth centres with both signs) [deg].
    """

    detector: str
    grid: np.ndarray
    responses: np.ndarray
    photon_energies: np.ndarray
    epx_lo: np.ndarray
    epx_hi: np.ndarray
    at_scat: np.ndarray
    lat_edge: np.ndarray
    lat_cent: np.ndarray
    theta_cent: np.ndarray
    phi_cent: np.ndarray


def detector_name(detector: str) -> str:
    """The short name (``"n6"``) of a GBM detector given as ``"n6"`` or ``"NAI_06"``."""
    name = _LONG_NAMES.get(str(detector).upper(), str(detector).lower())
    if name not in DETECTORS:
        raise ValueError(f"unknown GBM detector {detector!r}: expected one of "
                         f"{', '.join(DETECTORS)} (or NAI_00..NAI_11, BGO_00, BGO_01)")
    return name


def gbm_drm_gen_data_dir() -> pathlib.Path | None:
    """An installed gbm-drm-gen's ``gbm_drm_gen/data`` folder, found without importing it.

    Looked for, in order: the folder named by the environment variable
    ``BAYSPEC_GBM_DRM_GEN_DATA``; beside the ``gbm_drm_gen`` package this Python would import
    (located with `importlib.util.find_spec`, which does not run the package); in the
    site-packages of the virtual environments ``/tmp/gbmvenv`` and
    ``~/.cache/bayspec-gbm/venv``; the copy `fetch_database` makes
    (``~/.cache/bayspec-gbm/gbm_drm_gen/data``).

    **Returns:**

    The folder, or `None` where none is found.

    **Raises:**

    `FileNotFoundError` when the environment variable is set to something that is not a folder.
    """
    named = os.environ.get(DATA_DIR_ENV)
    if named:
        path = pathlib.Path(named).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_DIR_ENV}={named!r} is not a folder")
        return path
    try:
        spec = importlib.util.find_spec("gbm_drm_gen")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin is not None:
        path = pathlib.Path(spec.origin).parent / "data"
        if path.is_dir():
            return path
    for root in _VENV_ROOTS:
        site_packages = root.expanduser() / "lib" / "python3*" / "site-packages"
        pattern = str(site_packages / "gbm_drm_gen" / "data")
        found = sorted(p for p in glob.glob(pattern) if os.path.isdir(p))
        if found:
            return pathlib.Path(found[-1])
    cached = CACHE_DATA_DIR.expanduser()
    if (cached / DATABASE_FILE).is_file():
        return cached
    return None


def fetch_database(folder: str | os.PathLike | None = None,
                   version: str = GBM_DRM_GEN_VERSION) -> pathlib.Path:
    """Download gbm-drm-gen's source distribution from the package index (``pip download
    --no-deps``) and keep only its data folder (``balrog_db.h5`` and the GRB 110721A example
    files): the database without installing the package and its pinned dependencies.

    **Arguments:** `folder` (default ``~/.cache/bayspec-gbm/gbm_drm_gen/data``); `version`.

    **Returns:** the data folder (found afterwards by `gbm_drm_gen_data_dir` when default).
    """
    import subprocess
    import sys
    import tarfile
    import tempfile

    target = pathlib.Path(folder or CACHE_DATA_DIR).expanduser()
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--quiet", "-d", scratch, f"gbm-drm-gen=={version}"]
        result = subprocess.run(command, capture_output=True, text=True)
        archives = sorted(pathlib.Path(scratch).glob("gbm_drm_gen-*.tar.gz"))
        if result.returncode != 0 or not archives:
            raise RuntimeError(f"fetch_database: {' '.join(command)} failed: "
                               f"{result.stderr.strip()[-500:]}")
        wanted = re.compile(r"[^/]+/gbm_drm_gen/data/(balrog_db\.h5|example_data/[^/]+)$")
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                match = wanted.match(member.name)
                if member.isfile() and match:
                    destination = partial / match[1]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as source, open(destination, "wb") as out:
                        out.write(source.read())
        if not (partial / DATABASE_FILE).is_file():
            raise RuntimeError(f"fetch_database: no gbm_drm_gen/data/{DATABASE_FILE} in "
                               f"{archives[0].name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            import shutil
            shutil.rmtree(target)
        partial.rename(target)
    return target


def database_path(path: str | os.PathLike | None = None) -> pathlib.Path:
    """The database file: `path` (the ``.h5`` file or the folder holding it), or the one of an
    installed gbm-drm-gen."""
    if path is not None:
        found = pathlib.Path(path).expanduser()
        if found.is_dir():
            found = found / DATABASE_FILE
        if not found.is_file():
            raise FileNotFoundError(f"BALROG database: no file {str(found)!r}")
        return found
    folder = gbm_drm_gen_data_dir()
    if folder is None:
        raise FileNotFoundError(
            "BALROG database: balrog_db.h5 not found. Run bayspec_jax.balrog.fetch_database() "
            "(downloads gbm-drm-gen's data folder into ~/.cache/bayspec-gbm), or install "
            "gbm-drm-gen in any virtual environment and point BAYSPEC_GBM_DRM_GEN_DATA at its "
            "gbm_drm_gen/data folder, or pass database=<path to balrog_db.h5>")
    return folder / DATABASE_FILE


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading the BALROG database needs h5py: "
                          "pip install 'bayspec-jax[balrog]'") from None
    return h5py


def _read(group, key: str, where: str) -> np.ndarray:
    if key not in group:
        raise ValueError(f"{where}: no dataset {key!r} (a gbm-drm-gen balrog_db.h5 has it)")
    return np.asarray(group[key][()])


@functools.lru_cache(maxsize=16)
def _load(path: str, detector: str) -> DetectorDatabase:
    h5py = _h5py()
    with h5py.File(path, "r") as h5:
        if detector not in h5:
            raise ValueError(f"BALROG database {path!r}: no group {detector!r}")
        group = h5[detector]
        where = f"BALROG database {path!r}, group {detector!r}"
        azimuth = _read(group, "Azimuth", where).astype(np.float32)
        zenith = _read(group, "Zenith", where).astype(np.float32)
        milli_az = _read(group, "milliaz", where).astype(np.int64)
        milli_zen = _read(group, "millizen", where).astype(np.int64)
        by_direction = {}
        for key in group:
            match = re.fullmatch(r"z0*(\d+)_az0*(\d+)", key)
            if match:
                by_direction[(int(match[2]), int(match[1]))] = key
        try:
            keys = [by_direction[(int(a), int(z))] for a, z in zip(milli_az, milli_zen)]
        except KeyError as error:
            raise ValueError(f"{where}: no response for the direction (milliaz, millizen) = "
                             f"{error.args[0]}") from None
        responses = np.stack([np.asarray(group[key][()], dtype=np.float64) for key in keys])
        energ_lo = _read(group, "energ_lo", where)
        energ_hi = _read(group, "energ_hi", where)
        at_scat = _read(group, "at_scat_data", where).astype(np.float32)
        tables = {name: _read(group, name, where) for name in (
            "epx_lo", "epx_hi", "lat_edge", "lat_cent", "theta_cent", "double_phi_cent")}
    n_energies, n_sub = responses.shape[1:]
    if energ_lo.shape != (n_energies,) or tables["epx_lo"].shape != (n_energies, n_sub):
        raise ValueError(f"{where}: the responses {responses.shape[1:]} do not match energ_lo "
                         f"{energ_lo.shape} and epx_lo {tables['epx_lo'].shape}")
    if at_scat.shape[:2] != (n_energies, n_energies):
        raise ValueError(f"{where}: at_scat_data has shape {at_scat.shape}, expected "
                         f"({n_energies}, {n_energies}, lat, theta, phi)")
    # directions as gbm-drm-gen computes them: float32 trigonometry of the float32 angles
    elevation = np.deg2rad(90 - zenith)
    azimuth_rad = np.deg2rad(azimuth)
    grid = np.stack([np.cos(elevation) * np.cos(azimuth_rad),
                     np.cos(elevation) * np.sin(azimuth_rad), np.sin(elevation)], axis=1)
    photon_energies = np.append(energ_lo, energ_hi[-1]).astype(np.float32)
    return DetectorDatabase(
        detector=detector, grid=grid, responses=responses, photon_energies=photon_energies,
        epx_lo=tables["epx_lo"].astype(np.float32), epx_hi=tables["epx_hi"].astype(np.float32),
        at_scat=np.ascontiguousarray(np.transpose(at_scat, (2, 3, 4, 0, 1))),
        lat_edge=tables["lat_edge"].astype(np.float32),
        lat_cent=tables["lat_cent"].astype(np.float64),
        theta_cent=tables["theta_cent"].astype(np.float64),
        phi_cent=tables["double_phi_cent"].astype(np.float64))


def load_database(detector: str, path: str | os.PathLike | None = None) -> DetectorDatabase:
    """One detector's database (cached per file and detector).

    **Arguments:** `detector` (``"n6"`` or ``"NAI_06"``); `path`: ``balrog_db.h5`` or its folder
    (default: the installed gbm-drm-gen's).
    """
    return _load(str(database_path(path).resolve()), detector_name(detector))
