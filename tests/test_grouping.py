"""Tests for bayspec_jax.data.grouping: threshold and optimal grouping, flags -> segment ids.

Expected flags come from the original bayspec 0.4.5 (``bayspec.util.group``), run once by hand
in a separate environment and pasted here as literals: the tests do not import bayspec.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from bayspec_jax.data import grouping
from bayspec_jax.data.grouping import (
    GROUPING_KEYS,
    build_grouping,
    channel_fwhm,
    flags_to_group_ids,
    group_bounds,
    optimal_bin_widths,
    optimal_grouping,
    threshold_grouping,
)


def _drop_orphans(flags):
    """The original's flags with every -1 that does not continue a group set to 0.

    bayspec 0.4.5 can flag an unfinished lone group of a later valid run as -1 right after
    a 0; its ``_get_grouping_slice`` then ignores those channels. Here they are flagged 0,
    which leaves the groups used in a fit unchanged.
    """
    out, open_group = list(flags), False
    for i, flag in enumerate(out):
        if flag == 1:
            open_group = True
        elif flag == -1 and not open_group:
            out[i] = 0
        elif flag != -1:
            open_group = False
    return out


def _original_slices(flags, valid):
    """bayspec 0.4.5's ``DataUnit._get_grouping_slice``: [start, stop) of valid groups."""
    slices, i = [], 0
    while i < len(flags):
        if flags[i] != 1:
            i += 1
            continue
        stop = i + 1
        while stop < len(flags) and flags[stop] == -1:
            stop += 1
        if all(valid[i:stop]):
            slices.append([i, stop])
        i = stop
    return slices


# ---------------------------------------------------------------------------------------------
# Reference file
# ---------------------------------------------------------------------------------------------


def test_grouping_synth_reference(reference):
    case = reference["GROUPING_SYNTH"]
    bkg = np.asarray(case["bkg"])
    # make_reference.py: build_grouping(src, bkg, sqrt(bkg), 10.0, 10.0, 1.0, 1.0, min_evt=3,
    # valid=valid); alpha = 10 * 1 / (10 * 1).
    flags = build_grouping(
        {"min_evt": case["min_evt"]}, case["src"], bkg, np.sqrt(bkg), 1.0, case["valid"]
    )
    assert flags.tolist() == case["grouping"]
    assert threshold_grouping(
        case["src"], bkg, np.sqrt(bkg), 1.0, case["valid"], min_evt=3
    ).tolist() == case["grouping"]


def _read_spectrum(path):
    with fits.open(path) as hdul:
        spectrum = hdul["SPECTRUM"]
        data = spectrum.data
        counts = np.asarray(data["COUNTS"], dtype=float)
        errors = np.asarray(data["STAT_ERR"], dtype=float)
        quality = np.asarray(data["QUALITY"]) if "QUALITY" in data.names else np.zeros(len(data))
        return counts, errors, float(spectrum.header["EXPOSURE"]), float(
            spectrum.header.get("BACKSCAL", 1.0)
        ), quality


def _read_rsp(path):
    """Channel bounds and photon bins as stored (float32), and the dense DRM (photon, channel)."""
    with fits.open(path) as hdul:
        ebounds = hdul["EBOUNDS"].data
        matrix = hdul["SPECRESP MATRIX"]
        chbin = np.stack([ebounds["E_MIN"], ebounds["E_MAX"]], axis=1)
        phbin = np.stack([matrix.data["ENERG_LO"], matrix.data["ENERG_HI"]], axis=1)
        tlmin = int(matrix.header.get("TLMIN4", 1))
        drm = np.zeros((len(matrix.data), len(ebounds)))
        for i, row in enumerate(matrix.data):
            assert int(row["N_GRP"]) == 1
            first = int(np.ravel(row["F_CHAN"])[0]) - tlmin
            n_chan = int(np.ravel(row["N_CHAN"])[0])
            drm[i, first : first + n_chan] = np.asarray(row["MATRIX"])[:n_chan]
    return chbin, phbin, drm


@pytest.fixture(scope="module")
def me_inputs(data_dir):
    """The ME unit of the reference: me.src, me.bkg, me.rsp, notice [8, 900] keV."""
    src, _, src_exposure, src_backscale, quality = _read_spectrum(data_dir / "ME" / "me.src")
    bkg, bkg_errors, bkg_exposure, bkg_backscale, _ = _read_spectrum(data_dir / "ME" / "me.bkg")
    chbin, phbin, drm = _read_rsp(data_dir / "ME" / "me.rsp")
    # The original compares the float32 channel bounds with the notice window.
    low, high = np.float32(8), np.float32(900)
    valid = (quality == 0) & (chbin[:, 0] >= low) & (chbin[:, 1] <= high)
    alpha = src_exposure * src_backscale / (bkg_exposure * bkg_backscale)
    return dict(src=src, bkg=bkg, bkg_errors=bkg_errors, alpha=alpha, valid=valid,
                chbin=chbin, phbin=phbin, drm=drm)


def test_me_threshold_reference(reference, me_inputs):
    m = me_inputs
    flags = build_grouping({"min_sigma": 3, "max_bin": 10}, m["src"], m["bkg"], m["bkg_errors"],
                           m["alpha"], m["valid"], stat="pgstat")
    assert flags.tolist() == reference["ME"]["grouping_flags"]
    first, last = group_bounds(flags, m["valid"])
    assert np.stack([first, last + 1], 1).tolist() == reference["ME"]["grouping_slice"]


def test_me_optimal_reference(reference, me_inputs):
    m = me_inputs
    fwhm = channel_fwhm(m["chbin"], m["phbin"], m["drm"])
    flags = build_grouping({"method": "optimal"}, m["src"], m["bkg"], m["bkg_errors"],
                           m["alpha"], m["valid"], stat="pgstat", fwhm=fwhm)
    assert flags.tolist() == reference["ME_optimal"]["grouping_flags"]
    first, last = group_bounds(flags, m["valid"])
    assert np.stack([first, last + 1], 1).tolist() == reference["ME_optimal"]["grouping_slice"]
    assert len(first) == reference["ME_optimal"]["npoint"]


# ---------------------------------------------------------------------------------------------
# Random cases against the original
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _OracleCase:
    method: str
    stat: str
    settings: dict
    # (src_exposure, bkg_exposure, src_backscale, bkg_backscale) as passed to the original.
    scaling: tuple
    src: list
    bkg: list
    bkg_errors: list
    valid: list
    expected: object
    fwhm: list | None = None


# Drawn with numpy (Poisson counts, random validity); ``expected`` is the original's
#   bayspec.util.group.build_grouping(src, bkg, bkg_errors, *scaling, method=method,
#                                     rsp_fwhm=fwhm, stat=stat, valid=valid, **settings)
# (ValueError: the original raised it).
ORACLE_CASES = [
    _OracleCase(
        'threshold', 'pgstat', {'min_sigma': 3, 'max_bin': 10}, (10.0, 10.0, 1.0, 1.0),
        src=[5, 8, 11, 7, 5, 6, 6, 4, 6, 5, 10, 4, 11],
        bkg=[4, 3, 4, 3, 1, 5, 4, 7, 5, 3, 5, 7, 4],
        bkg_errors=[2, 1.7321, 2, 1.7321, 1, 2.2361, 2, 2.6458, 2.2361, 1.7321, 2.2361, 2.6458, 2],
        valid=[1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        expected=[1, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1],
    ),
    _OracleCase(
        'threshold', 'cstat', {'min_evt': 10}, (10.0, 20.0, 1.0, 0.5),
        src=[7, 6, 2, 4, 4, 3, 1, 1, 3, 3, 4, 3, 2],
        bkg=[0, 1, 2, 0, 3, 4, 0, 1, 4, 5, 1, 2, 3],
        bkg_errors=[0, 1, 1.4142, 0, 1.7321, 2, 0, 1, 2, 2.2361, 1, 1.4142, 1.7321],
        valid=[1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1],
        expected=[1, 0, 1, -1, -1, 0, -1, -1, 0, 0, -1, -1, -1],
    ),
    _OracleCase(
        'threshold', 'pstat', {'min_sigma': 2}, (10.0, 8.0, 1.0, 1.0),
        src=[4, 1, 2, 3, 1, 0, 3, 1, 0, 2, 0, 1, 3, 1, 1, 1, 4, 2],
        bkg=[5, 0, 0, 1, 1, 1, 1, 0, 2, 0, 1, 0, 0, 0, 1, 1, 1, 1],
        bkg_errors=[2.2361, 0, 0, 1, 1, 1, 1, 0, 1.4142, 0, 1, 0, 0, 0, 1, 1, 1, 1],
        valid=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        expected=[1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1],
    ),
    _OracleCase(
        'threshold', 'chi2', {'min_nevt': 5, 'max_bin': 4}, (10.0, 20.0, 1.0, 0.5),
        src=[5, 5, 7, 5, 5, 5, 5, 6, 7, 1, 7, 2, 1, 1, 6, 2, 4, 1, 0, 5, 5, 2, 8],
        bkg=[4, 6, 4, 4, 1, 3, 3, 2, 1, 2, 3, 2, 7, 3, 0, 0, 5, 3, 0, 3, 0, 2, 1],
        bkg_errors=[2, 2.4495, 2, 2, 1, 1.7321, 1.7321, 1.4142, 1, 1.4142, 1.7321, 1.4142, 2.6458, 1.7321, 0, 0, 2.2361, 1.7321, 0, 1.7321, 0, 1.4142, 1],
        valid=[1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1],
        expected=[1, -1, -1, -1, 1, -1, -1, 0, 1, -1, -1, 0, 1, -1, -1, -1, -1, -1, 0, 1, -1, 1, -1],
    ),
    _OracleCase(
        'threshold', 'gstat', {'max_bin': 3}, (10.0, 10.0, 1.0, 0.5),
        src=[0, 0, 1, 1, 0, 2, 1, 0, 1, 4, 0, 1, 0],
        bkg=[0, 0, 2, 0, 0, 0, 1, 2, 1, 0, 0, 0, 0],
        bkg_errors=[0, 0, 1.4142, 0, 0, 0, 1, 1.4142, 1, 0, 0, 0, 0],
        valid=[1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0],
        expected=[1, 1, 1, -1, -1, 0, 0, 1, -1, -1, 1, 1, 0],
    ),
    _OracleCase(
        'threshold', 'ppstat', {'min_evt': 5, 'min_sigma': 1}, (10.0, 8.0, 1.0, 0.5),
        src=[3, 2, 2, 0, 2, 3, 1, 2, 3, 5, 4, 2, 2, 1, 2],
        bkg=[1.3, 0, 2.6, 0, 3.9, 1.3, 0, 0, 0, 0, 0, 2.6, 1.3, 1.3, 1.3],
        bkg_errors=[1.1402, 0, 1.6125, 0, 1.9748, 1.1402, 0, 0, 0, 0, 0, 1.6125, 1.1402, 1.1402, 1.1402],
        valid=[0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        expected=[0, 1, -1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, 0, -1],
    ),
    _OracleCase(
        'threshold', 'pgstat', {'min_evt': 15}, (10.0, 20.0, 1.0, 0.5),
        src=[0, 2, 4, 3, 2, 0, 2, 2, 1, 1, 1, 1, 2, 1, 1, 3, 1, 1, 2],
        bkg=[0, 1, 2, 0, 2, 1, 1, 0, 1, 2, 1, 1, 0, 2, 1, 1, 0, 1, 1],
        bkg_errors=[0, 1, 1.4142, 0, 1.4142, 1, 1, 0, 1, 1.4142, 1, 1, 0, 1.4142, 1, 1, 0, 1, 1],
        valid=[1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1],
        expected=[1, 0, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1],
    ),
    _OracleCase(
        'optimal', 'pgstat', {}, (10.0, 8.0, 1.0, 1.0),
        src=[14, 24, 17, 17, 9, 21, 21, 23, 16, 21, 22, 18, 26, 22, 18, 18, 18, 14, 19, 16, 26, 18, 19],
        bkg=[12, 15, 10, 11, 18, 10, 18, 14, 14, 13, 13, 12, 11, 14, 15, 6, 10, 10, 15, 17, 14, 16, 14],
        bkg_errors=[3.4641, 3.873, 3.1623, 3.3166, 4.2426, 3.1623, 4.2426, 3.7417, 3.7417, 3.6056, 3.6056, 3.4641, 3.3166, 3.7417, 3.873, 2.4495, 3.1623, 3.1623, 3.873, 4.1231, 3.7417, 4, 3.7417],
        valid=[1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        fwhm=[3, 4, 3, 3, 2, 3, 4, 2, 5, 3, 1, 3, 1, 2, 1, 3, 1, 4, 5, 5, 1, 3, 3],
        expected=[1, -1, 1, -1, 0, 0, 1, -1, 1, -1, -1, 0, 0, 1, 1, 1, -1, 1, -1, 1, -1, 1, -1],
    ),
    _OracleCase(
        'optimal', 'cstat', {'min_evt': 20}, (10.0, 8.0, 1.0, 1.0),
        src=[4, 4, 4, 7, 3, 7, 5, 2, 3, 4, 2, 2, 6, 6, 7, 4],
        bkg=[2, 7, 1, 3, 1, 6, 4, 4, 3, 10, 2, 3, 1, 5, 4, 2],
        bkg_errors=[1.4142, 2.6458, 1, 1.7321, 1, 2.4495, 2, 2, 1.7321, 3.1623, 1.4142, 1.7321, 1, 2.2361, 2, 1.4142],
        valid=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        fwhm=[1, 2, 5, 2, 3, 4, 4, 5, 5, 2, 5, 3, 2, 2, 2, 1],
        expected=[1, -1, -1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1, -1, -1, -1],
    ),
    _OracleCase(
        'optimal', 'pgstat', {'min_sigma': 3, 'max_bin': 8}, (10.0, 20.0, 1.0, 1.0),
        src=[6, 12, 11, 13, 12, 11, 14, 13, 9, 8, 9, 9],
        bkg=[13, 6, 8, 4, 7, 7, 6, 3, 6, 6, 2, 5],
        bkg_errors=[3.6056, 2.4495, 2.8284, 2, 2.6458, 2.6458, 2.4495, 1.7321, 2.4495, 2.4495, 1.4142, 2.2361],
        valid=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        fwhm=[4, 5, 3, 1, 1, 5, 5, 2, 5, 4, 2, 2],
        expected=[1, -1, -1, -1, 1, -1, 1, -1, 1, -1, -1, -1],
    ),
    _OracleCase(
        'optimal', 'pstat', {'min_nevt': 3, 'min_sigma': 1}, (10.0, 20.0, 1.0, 0.5),
        src=[5, 6, 2, 2, 3, 7, 4, 5, 1, 3, 2, 3, 2, 4, 1, 2, 2, 3, 2, 1, 3, 2],
        bkg=[1, 2, 0, 0, 1, 6, 2, 2, 2, 1, 5, 2, 0, 1, 4, 3, 2, 3, 1, 4, 1, 5],
        bkg_errors=[1, 1.4142, 0, 0, 1, 2.4495, 1.4142, 1.4142, 1.4142, 1, 2.2361, 1.4142, 0, 1, 2, 1.7321, 1.4142, 1.7321, 1, 2, 1, 2.2361],
        valid=[0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0],
        fwhm=[3, 3, 3, 2, 5, 4, 5, 5, 5, 5, 3, 2, 2, 4, 2, 2, 4, 5, 4, 4, 5, 4],
        expected=[0, 1, -1, 0, 1, -1, -1, 0, 1, -1, -1, 0, 0, 1, -1, -1, 0, 1, -1, -1, -1, 0],
    ),
    _OracleCase(
        'optimal', 'pstat', {'max_bin': 2}, (10.0, 8.0, 1.0, 1.0),
        src=[30, 24, 26, 32, 31, 32, 31, 23, 27, 29, 36, 41, 29],
        bkg=[17, 20, 18, 19, 18, 17, 14, 22, 14, 12, 25, 22, 25],
        bkg_errors=[4.1231, 4.4721, 4.2426, 4.3589, 4.2426, 4.1231, 3.7417, 4.6904, 3.7417, 3.4641, 5, 4.6904, 5],
        valid=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        fwhm=[3, 5, 5, 5, 1, 5, 3, 4, 3, 5, 2, 2, 3],
        expected=ValueError,
    ),
]


@pytest.mark.parametrize("case", ORACLE_CASES, ids=lambda c: f"{c.method}-{c.stat}-{c.settings}")
def test_matches_original(case):
    src_exposure, bkg_exposure, src_backscale, bkg_backscale = case.scaling
    alpha = src_exposure * src_backscale / (bkg_exposure * bkg_backscale)
    settings_ = dict(case.settings, method=case.method)
    args = (case.src, case.bkg, case.bkg_errors, alpha, case.valid)
    if case.expected is ValueError:
        with pytest.raises(ValueError, match="max_bin"):
            build_grouping(settings_, *args, stat=case.stat, fwhm=case.fwhm)
        return
    flags = build_grouping(settings_, *args, stat=case.stat, fwhm=case.fwhm)
    assert flags.tolist() == _drop_orphans(case.expected)
    first, last = group_bounds(flags, case.valid)
    assert np.stack([first, last + 1], 1).tolist() == _original_slices(case.expected, case.valid)
    # The same through the per-method functions.
    if case.method == "threshold":
        direct = threshold_grouping(*args, stat=case.stat, **case.settings)
    else:
        direct = optimal_grouping(*args, fwhm=case.fwhm, stat=case.stat, **case.settings)
    assert direct.tolist() == flags.tolist()


def test_orphan_run_is_dropped_like_the_original():
    # Original: build_grouping([5, 1, 0, 1], zeros, zeros, 1, 1, 1, 1, min_evt=3,
    # valid=[1, 0, 1, 1]) -> [1, 0, -1, -1]: the second run never reaches 3 counts and is
    # marked as continuing a group across the gap, which its fit then ignores.
    flags = threshold_grouping([5, 1, 0, 1], np.zeros(4), np.zeros(4), 1.0, [1, 0, 1, 1], min_evt=3)
    assert flags.tolist() == [1, 0, 0, 0] == _drop_orphans([1, 0, -1, -1])
    # The first valid run keeps its unfinished group (nothing to merge it into).
    flags = threshold_grouping([1, 1, 0, 9], None, None, 1.0, [1, 1, 0, 1], min_evt=3)
    assert flags.tolist() == [1, -1, 0, 1]


def test_rounding_zero_significance_is_zero_not_nan():
    # src 6 over 9 background counts at alpha = 10 / (7.5 * 2): the likelihood ratio is 0
    # and rounds below it. The original's significance is then NaN, which its threshold
    # grouping reads as "not met" even with min_sigma unset, and its optimal grouping as
    # "met" with min_sigma=3:
    #   build_grouping(src, bkg, sqrt(bkg), 10.0, 7.5, 1.0, 2.0, stat='pstat') -> [1, -1, 1]
    #   ... method='optimal', rsp_fwhm=ones(3), min_sigma=3 -> [1, 1, -1]
    # Here it is 0: no threshold is asked in the first case, and 0 < 3 in the second.
    src, bkg = np.array([6.0, 3.0, 4.0]), np.array([9.0, 0.0, 0.0])
    alpha = 10.0 * 1.0 / (7.5 * 2.0)
    assert grouping._group_significance(6.0, 9.0, 3.0, alpha, "pstat") == 0.0
    flags = threshold_grouping(src, bkg, np.sqrt(bkg), alpha, stat="pstat")
    assert flags.tolist() == [1, 1, 1]
    flags = optimal_grouping(src, bkg, np.sqrt(bkg), alpha, fwhm=np.ones(3), stat="pstat",
                             min_sigma=3)
    assert flags.tolist() == [1, -1, -1]


# The original's estimate_channel_fwhm(chbin, phbin, drm) on small made-up responses, with
# float32 bounds as read from files: a Gaussian-like response on an increasing grid, the same
# on a decreasing grid with gaps between photon bins, and rows that never fall to half maximum
# on one or both sides.
def _gaussian_drm(centres, widths, n_channels):
    channels = np.arange(n_channels)
    return np.exp(-0.5 * ((channels[None] - np.asarray(centres)[:, None])
                          / np.asarray(widths)[:, None]) ** 2)


_FWHM_EDGES = np.linspace(10, 100, 10, dtype=np.float32)
_PHBIN = np.stack([_FWHM_EDGES[:-1], _FWHM_EDGES[1:]], axis=1)
_CHBIN_EDGES = np.linspace(5, 105, 9, dtype=np.float32)
_CHBIN = np.stack([_CHBIN_EDGES[:-1], _CHBIN_EDGES[1:]], axis=1)
_PHBIN_GAPS_DECREASING = np.stack([_PHBIN[:, 0], _PHBIN[:, 0] + np.float32(6)], axis=1)[::-1]


@pytest.mark.parametrize(
    "phbin, drm, expected",
    [
        (_PHBIN, _gaussian_drm(np.linspace(-0.5, 8.5, 9), np.linspace(0.6, 2.5, 9), 8),
         [2.0, 2.0, 4.0, 4.0, 4.0, 6.0, 6.0, 4.0]),
        (_PHBIN_GAPS_DECREASING, _gaussian_drm(np.linspace(8, 0, 9), np.full(9, 1.3), 8),
         [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 2.0]),
        (_PHBIN,
         _gaussian_drm([0, 7, 3.5, 3.5, -2, 9, 1, 6, 3], [20, 20, 40, 1, 3, 3, 5, 5, 0.1], 8),
         [-1.0, -1.0, -1.0, 3.0, 6.0, 12.0, 12.0, 2.0]),
    ],
    ids=["increasing", "decreasing-with-gaps", "open-sides"],
)
def test_channel_fwhm_matches_original(phbin, drm, expected):
    fwhm = channel_fwhm(_CHBIN, phbin, drm)
    assert fwhm.dtype == np.float64
    assert fwhm.tolist() == expected


def test_channel_fwhm_shape_errors():
    with pytest.raises(ValueError, match="drm"):
        channel_fwhm(_CHBIN, _PHBIN, np.ones((9, 7)))
    with pytest.raises(ValueError, match="chbin"):
        channel_fwhm(_CHBIN[:, 0], _PHBIN, np.ones((9, 8)))


def test_optimal_bin_widths_match_original():
    # The original's calculate_optimal_bin_widths(fwhm, counts[, valid=...]).
    fwhm = np.array([4, 4, 6, 6, 6, 8, 8, 8, 10, 10.5])
    counts = np.array([100, 2000, 5000, 8000, 100, 0, 30, 1e5, 7.5, 2.5])
    assert optimal_bin_widths(fwhm, counts).tolist() == [2, 2, 2, 2, 2, 3, 3, 3, 4, 4]
    valid = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert optimal_bin_widths(fwhm, counts, valid).tolist() == [2, 2, 3, 3, 1, 3, 3, 3, 4, 4]


def test_optimal_ignores_channels_outside_valid():
    # NaN counts and a -1 FWHM outside the valid mask do not matter (the original rejects
    # them anywhere); inside it they are errors.
    counts = np.array([np.nan, 50.0, 60.0, 70.0])
    fwhm = np.array([-1.0, 4.0, 4.0, 4.0])
    valid = [0, 1, 1, 1]
    flags = optimal_grouping(counts, valid=valid, fwhm=fwhm)
    assert flags.tolist() == [0] + optimal_grouping(counts[1:], fwhm=fwhm[1:]).tolist()
    with pytest.raises(ValueError, match="fwhm"):
        optimal_grouping(counts[1:], fwhm=np.array([2.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="src_counts"):
        optimal_grouping(counts, fwhm=np.full(4, 2.0))


# ---------------------------------------------------------------------------------------------
# Settings and errors
# ---------------------------------------------------------------------------------------------


def test_unknown_setting_lists_allowed_keys():
    with pytest.raises(ValueError) as info:
        build_grouping({"min_evts": 3}, [1.0, 2.0])
    for key in GROUPING_KEYS:
        assert key in str(info.value)
    assert "min_evts" in str(info.value)


@pytest.mark.parametrize("key", ["min_evt", "min_nevt", "min_sigma", "min_bevt", "max_bin"])
@pytest.mark.parametrize("method", ["threshold", "optimal"])
def test_negative_thresholds_rejected(key, method):
    with pytest.raises(ValueError, match=key):
        build_grouping({key: -1, "method": method}, [1.0, 2.0], fwhm=[1.0, 1.0])


@pytest.mark.parametrize(
    "settings_, kwargs, match",
    [
        ({"max_bin": 0}, {}, "max_bin"),
        ({"max_bin": 2.5}, {}, "max_bin"),
        ({"min_sigma": math.nan}, {}, "min_sigma"),
        ({"min_evt": True}, {}, "min_evt"),
        ({"method": "optimal"}, {}, "FWHM"),
        ({"method": "adaptive"}, {}, "method"),
        ({"min_evt": 1}, {"stat": "cash"}, "stat"),
    ],
)
def test_bad_settings_rejected(settings_, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_grouping(settings_, [1.0, 2.0], **kwargs)


def test_bad_inputs_rejected():
    with pytest.raises(ValueError, match="dict"):
        build_grouping([("min_evt", 3)], [1.0, 2.0])
    with pytest.raises(ValueError, match="bkg_counts"):
        threshold_grouping([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="valid"):
        threshold_grouping([1.0, 2.0], valid=[1, 2])
    with pytest.raises(ValueError, match="alpha"):
        threshold_grouping([1.0, 2.0], alpha=0.0)
    with pytest.raises(ValueError, match="finite"):
        threshold_grouping([1.0, np.nan])
    # ... but non-finite values outside the valid mask are ignored.
    assert threshold_grouping([1.0, np.nan], valid=[True, False]).tolist() == [1, 0]


def test_max_bin_float_with_integer_value_accepted():
    counts = np.zeros(5)
    expected = threshold_grouping(counts, min_evt=1, max_bin=2)
    assert build_grouping({"min_evt": 1, "max_bin": 2.0}, counts).tolist() == expected.tolist()
    assert expected.tolist() == [1, -1, 1, -1, -1]  # the unfinished tail merged


def test_min_bevt_threshold():
    src = np.full(6, 5.0)
    bkg = np.array([1.0, 0.0, 2.0, 3.0, 0.0, 2.0])
    flags = threshold_grouping(src, bkg, np.sqrt(bkg), min_bevt=2)
    assert flags.tolist() == [1, -1, -1, 1, 1, -1]
    # An unfinished tail (1 background count < 2) is merged into the group before it.
    flags = threshold_grouping(src, bkg - [0, 0, 0, 0, 0, 1], np.sqrt(bkg), min_bevt=2)
    assert flags.tolist() == [1, -1, -1, 1, -1, -1]
    # Optimal grouping widens a group until it has the background counts too.
    flags = optimal_grouping(src, bkg, np.sqrt(bkg), fwhm=np.ones(6), min_bevt=2)
    assert flags.tolist() == [1, -1, -1, 1, 1, -1]
    # Without min_bevt, none of this is asked.
    assert threshold_grouping(src, bkg, np.sqrt(bkg), min_evt=5).tolist() == [1] * 6


def test_threshold_defaults_ask_for_non_negative_net_counts():
    # As in the original: min_evt and min_nevt left unset still ask for sums >= 0.
    src = np.array([0.0, 1.0, 3.0, 0.0])
    bkg = np.array([2.0, 0.0, 0.0, 0.0])
    assert threshold_grouping(src, bkg, np.sqrt(bkg)).tolist() == [1, -1, -1, 1]


# ---------------------------------------------------------------------------------------------
# Flags -> segment ids
# ---------------------------------------------------------------------------------------------


def test_flags_to_group_ids_examples():
    flags = [0, 1, -1, -1, 0, 1, 1, -1, 0, -1]
    group_ids, n_groups = flags_to_group_ids(flags)
    assert n_groups == 3
    assert group_ids.tolist() == [3, 0, 0, 0, 3, 1, 2, 2, 3, 3]
    assert [b.tolist() for b in group_bounds(flags)] == [[1, 5, 6], [3, 5, 7]]
    # A group not wholly valid is dropped whole.
    valid = [1, 1, 1, 1, 1, 1, 0, 1, 1, 1]
    group_ids, n_groups = flags_to_group_ids(flags, valid)
    assert n_groups == 2
    assert group_ids.tolist() == [2, 0, 0, 0, 2, 1, 2, 2, 2, 2]
    assert [b.tolist() for b in group_bounds(flags, valid)] == [[1, 5], [3, 5]]


def test_flags_to_group_ids_edge_cases():
    group_ids, n_groups = flags_to_group_ids([0, 0, -1])
    assert n_groups == 0 and group_ids.tolist() == [0, 0, 0]
    first, last = group_bounds(np.zeros(3, dtype=int))
    assert first.shape == last.shape == (0,)
    assert flags_to_group_ids(np.ones(4, dtype=int))[0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="flags"):
        flags_to_group_ids([1, 2])


def test_segment_sum_with_group_ids():
    import jax

    flags = np.array([1, -1, 0, 1, -1, -1, 1])
    counts = np.arange(7.0)
    group_ids, n_groups = flags_to_group_ids(flags)
    sums = jax.ops.segment_sum(counts, group_ids, num_segments=n_groups + 1)[:n_groups]
    np.testing.assert_array_equal(np.asarray(sums), [1.0, 12.0, 6.0])


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

_STATS = ["pgstat", "cstat", "pstat", "ppstat", "chi2", "gstat"]


@st.composite
def _spectra(draw, max_channels=40):
    n = draw(st.integers(1, max_channels))
    counts = st.lists(st.integers(0, 30), min_size=n, max_size=n)
    src = np.array(draw(counts), dtype=float)
    bkg = np.array(draw(counts), dtype=float)
    bkg_errors = np.sqrt(bkg) if draw(st.booleans()) else bkg * 0.1
    valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    alpha = draw(st.sampled_from([1.0, 0.5, 0.25, 1.5, 2.0]))
    return src, bkg, bkg_errors, alpha, valid


@st.composite
def _thresholds(draw):
    def maybe(strategy):
        return draw(st.one_of(st.none(), strategy))

    return dict(
        min_evt=maybe(st.sampled_from([1, 5, 20, 60])),
        min_nevt=maybe(st.sampled_from([0, 2.5, 10])),
        min_sigma=maybe(st.sampled_from([0.5, 2, 3])),
        max_bin=maybe(st.integers(1, 8)),
        min_bevt=maybe(st.sampled_from([1, 10, 40])),
    )


def _runs(valid):
    runs, i = [], 0
    while i < len(valid):
        if valid[i]:
            j = i
            while j + 1 < len(valid) and valid[j + 1]:
                j += 1
            runs.append((i, j))
            i = j + 1
        else:
            i += 1
    return runs


def _groups(flags):
    first, last = group_bounds(flags)
    return list(zip(first.tolist(), last.tolist()))


def _meets(src, bkg, bkg_errors, alpha, first, last, thresholds, stat):
    """Whether channels first..last meet the (threshold-grouping) minima."""
    s, b = src[first : last + 1].sum(), bkg[first : last + 1].sum()
    checks = [
        s >= (thresholds["min_evt"] or 0),
        s - b * alpha >= (thresholds["min_nevt"] or 0),
        thresholds["min_bevt"] is None or b >= thresholds["min_bevt"],
    ]
    if thresholds["min_sigma"] is not None:
        error = np.sqrt(np.sum(bkg_errors[first : last + 1] ** 2))
        sigma = grouping._group_significance(s, b, error, alpha, stat)
        checks.append(sigma >= thresholds["min_sigma"] - 1e-9)
    return all(checks)


def _check_well_formed(flags, valid):
    assert flags.dtype == np.int64 and flags.shape == valid.shape
    assert set(np.unique(flags).tolist()) <= {-1, 0, 1}
    assert flags[0] != -1 if len(flags) else True
    assert not np.any((flags[1:] == -1) & (flags[:-1] == 0)), "a -1 follows a 0"
    assert np.all(flags[~valid] == 0)
    # Every group lies wholly inside the valid channels: none is dropped by the mask.
    unmasked, masked = group_bounds(flags), group_bounds(flags, valid)
    assert [b.tolist() for b in unmasked] == [b.tolist() for b in masked]


@settings(max_examples=150, deadline=None)
@given(_spectra(), _thresholds(), st.sampled_from(_STATS))
def test_threshold_grouping_properties(spectrum, thresholds, stat):
    src, bkg, bkg_errors, alpha, valid = spectrum
    flags = threshold_grouping(src, bkg, bkg_errors, alpha, valid, stat=stat, **thresholds)
    _check_well_formed(flags, valid)
    groups = _groups(flags)
    max_bin = thresholds["max_bin"]
    for run_index, (run_first, run_last) in enumerate(_runs(valid)):
        in_run = [g for g in groups if run_first <= g[0] <= run_last]
        if not in_run:
            # A run left out: never reaches the thresholds, and not the first run.
            assert run_index > 0
            assert not _meets(src, bkg, bkg_errors, alpha, run_first, run_last, thresholds, stat)
            assert max_bin is None or run_last - run_first + 1 < max_bin
            continue
        # Groups tile the run.
        assert in_run[0][0] == run_first and in_run[-1][1] == run_last
        assert all(a[1] + 1 == b[0] for a, b in zip(in_run, in_run[1:]))
        # All but the run's last group close at the first channel that meets the thresholds
        # or fills max_bin.
        for first, last in in_run[:-1]:
            width = last - first + 1
            assert width == max_bin or _meets(src, bkg, bkg_errors, alpha, first, last,
                                              thresholds, stat)
            for shorter in range(first, last):
                assert not _meets(src, bkg, bkg_errors, alpha, first, shorter, thresholds, stat)
        if max_bin is not None:
            assert all(last - first + 1 <= max_bin for first, last in in_run[:-1])


@settings(max_examples=150, deadline=None)
@given(_spectra(), _thresholds(), st.sampled_from(_STATS), st.data())
def test_optimal_grouping_properties(spectrum, thresholds, stat, data):
    src, bkg, bkg_errors, alpha, valid = spectrum
    n = len(src)
    fwhm = np.array(data.draw(st.lists(st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0, 7.0]),
                                        min_size=n, max_size=n)))
    use_thresholds = data.draw(st.booleans())
    kwargs = thresholds if use_thresholds else {}
    try:
        flags = optimal_grouping(src, bkg, bkg_errors, alpha, valid, fwhm=fwhm, stat=stat,
                                 **kwargs)
    except ValueError as error:
        assert "max_bin" in str(error)
        return
    _check_well_formed(flags, valid)
    groups = _groups(flags)
    # Every valid channel is in a group.
    assert sum(last - first + 1 for first, last in groups) == int(valid.sum())
    widths = optimal_bin_widths(fwhm, src, valid)
    max_bin = kwargs.get("max_bin")
    for run_first, run_last in _runs(valid):
        in_run = [g for g in groups if run_first <= g[0] <= run_last]
        assert in_run[0][0] == run_first and in_run[-1][1] == run_last
        for first, last in in_run:
            assert max_bin is None or last - first + 1 <= max_bin
        if not any(value is not None for value in kwargs.values()):
            # Pure optimal: no channel sees past its own width, and no group could grow.
            for first, last in in_run:
                assert all(last <= i + widths[i] - 1 for i in range(first, last + 1))
                assert last == run_last or any(
                    last == i + widths[i] - 1 for i in range(first, last + 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 1]), max_size=30), st.data())
def test_group_ids_and_bounds_agree(flags, data):
    flags = np.array(flags, dtype=int)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=len(flags), max_size=len(flags))))
    for mask in (None, valid):
        group_ids, n_groups = flags_to_group_ids(flags, mask)
        first, last = group_bounds(flags, mask)
        assert group_ids.shape == flags.shape and len(first) == len(last) == n_groups
        expected = np.full(len(flags), n_groups)
        for g, (a, b) in enumerate(zip(first, last)):
            assert flags[a] == 1 and np.all(flags[a + 1 : b + 1] == -1)
            assert b + 1 == len(flags) or flags[b + 1] != -1
            if mask is not None:
                assert np.all(mask[a : b + 1])
            expected[a : b + 1] = g
        assert group_ids.tolist() == expected.tolist()
        # Matches the original's slicing of (valid) groups.
        full_mask = np.ones(len(flags), bool) if mask is None else mask
        slices = _original_slices(flags.tolist(), full_mask)
        assert np.stack([first, last + 1], 1).tolist() == slices


def test_group_sum_on_the_host_equals_the_traced_sum():
    """The host sum that builds units equals the segment sum traced code uses."""
    from bayspec_jax.data.binning import group_sum

    rng = np.random.default_rng(3)
    values = rng.uniform(0, 50, 64)
    values[[5, 9]] = np.nan  # excluded channels may hold anything
    ids = np.sort(rng.integers(0, 12, 64))
    ids[[5, 9]] = 12  # the discard segment
    host = group_sum(values, ids, 12)
    traced = jax.jit(lambda v, i: jax.ops.segment_sum(v, i, num_segments=13)[:12])(
        jnp.asarray(values), jnp.asarray(ids))
    np.testing.assert_array_equal(host, np.asarray(traced))
    assert host.dtype == traced.dtype and np.all(np.isfinite(host))
