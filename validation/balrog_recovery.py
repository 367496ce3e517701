"""Position recovery with the BALROG response: simulated GBM bursts, NUTS over (ra, dec) and the
spectrum, the truth inside the 95% credible region?

The issue's check: "Simulated bursts (fakeit with the JAX response, NaI + BGO, cutoff power
law, realistic GBM backgrounds) at 10 known positions: NUTS over (ra, dec) and the spectral
parameters recovers each position inside its 95% credible region in at least 9 of 10, with
r_hat < 1.01."

What one burst is (`recover_burst`):

1. **Position.** Drawn uniformly on the sphere (seeded) and kept when it is at least
   `LIMB_MARGIN_DEG` above the Earth's limb at the GBM trigger of GRB 110721A (trigdat from
   gbm-drm-gen's example data, `time=0`): the posterior then stays clear of the occultation
   cliff, where the DRM drops to zero.
2. **Detectors.** The `N_NAI` NaI detectors with the most expected source counts at the true
   position (the DRM-weighted sum, which is what "smallest angle to the source" means for the
   counts), and the BGO with the more counts (the one on that side), as GBM analyses pick them.
3. **Units.** One `DataUnit` per detector on `BalrogResponse(drm_generator(det, trigdat=...,
   time=0.0, out_edges=<the background file>, mat_type=M))`, PGSTAT, NaI noticed 8-900 keV, BGO
   300-38000 keV, grouped to 3 sigma with at most 10 channels a group. The background is a
   real GBM background spectrum (`BACKGROUND_FILES`, read from ../shared/data/bayspec-examples):
   its counts and errors are the background truth fakeit draws the simulated background from
   (Gaussian, as PGSTAT has it), its exposure the exposure of source and background. The
   response's channel edges are the background file's own EBOUNDS (`out_edges` accepts the
   path of a file with EBOUNDS): the two then describe the same 128 channels exactly, where
   the example CSPEC's edges (GRB 110721A's n6) would differ by up to 32% in the low channels
   from another detector's background file.
4. **Source.** `simulate.fakeit` with the cutoff power law `models.cpl` (alpha in
   [-1.2, -0.6], Ec in [200, 630] keV, drawn per burst), normalised so that the chosen NaI get
   `NAI_COUNTS` expected source counts on average (a bright, ordinary GRB; the BGO gets what
   the spectrum gives).
5. **Start.** A coarse sky grid (`GRID_POINTS` Fibonacci points, the occulted ones dropped):
   at each point, three generic spectral shapes, each with its amplitude set so that the model's
   total counts equal the observed net counts; the best points (at least 20 deg apart) seed
   maximum-likelihood fits over all five parameters; the best fit is the start. The chains
   start there, each jittered by a fraction of the fit's errors. The prior of ra is uniform
   over 360 deg centred on the start (the same periodic prior as [0, 360), with its cut moved
   180 deg from the posterior), dec uniform on [-90, 90] (the data layer's default).
   For mat_type 2 the start may be searched with the direct response on the same counts
   (`start_mat_type`), the warm-up taking the chains on to the mat_type 2 posterior.
6. **NUTS.** NumPyro, 4 chains vectorized (`chain_method='vectorized'`), dense mass matrix,
   target acceptance `TARGET_ACCEPT` (0.75: see there why not 0.8), float64. The truth is
   not used anywhere in 5-6.
7. **Test.** The 95% highest-posterior-density region of the sky position (the marginal of
   (ra, dec), its density taken per solid angle, the way sky maps are) contains the truth
   when fewer than 95% of the draws lie where the density is higher than at the truth:
   ``q = mean(f(draw) > f(truth)) < 0.95``, ``q`` the credible level of the smallest HPD
   region reaching the truth. ``f`` is a Gaussian kernel density estimate in the gnomonic
   (tangent-plane) projection around the posterior mean direction, with a full bandwidth matrix
   (Scott's rule, ``n^(-1/6)`` times the draws' covariance square root), evaluated
   leave-one-out at the draws, and divided by ``cos^3`` of the angle from the centre (the
   gnomonic area element), so that it is a density per solid angle. The Gaussian
   approximation (the truth's Mahalanobis distance in the tangent plane, chi^2 with 2 degrees
   of freedom) is recorded beside it.

Run (writes BALROG_RECOVERY.md beside this file):

    python3 validation/balrog_recovery.py --bursts 10 --mat-type 0 --mat2-bursts 2

The database and the trigdat come from an installed gbm-drm-gen
(`bayspec_jax.balrog.gbm_drm_gen_data_dir`); nothing of them is copied here.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import os
import pathlib
import platform
import subprocess
import sys
import time
from typing import Any, NamedTuple

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "bayspec-examples"
TRIGDAT_NAME = "glg_trigdat_all_bn110721200_v01.fit"
TRIGGER_TIME = 0.0

NAI = ("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "na", "nb")
BGO = ("b0", "b1")
BACKGROUND_FILES = {
    # n6-nb and b1: their own backgrounds (GBM/, TSTART 2013-03-05); n0-n5: the background of
    # the detector six numbers on (a real NaI background of the same instant), b0: HE/he.bkg
    # (a BGO background of another burst): only a realistic level and shape matter here
    **{det: f"GBM/{NAI[(i % 6) + 6]}.bkg" for i, det in enumerate(NAI)},
    "b0": "HE/he.bkg", "b1": "GBM/b1.bkg",
}
NOTICE = {"nai": [8.0, 900.0], "bgo": [300.0, 38000.0]}
GROUPING = {"min_sigma": 3, "max_bin": 10}
STAT = "pgstat"
N_NAI = 4
NAI_COUNTS = 3000.0
LIMB_MARGIN_DEG = 10.0
GRID_POINTS = 1000
GRID_SHAPES = ((-1.0, 2.5), (-0.5, 2.2), (-1.5, 2.9))  # (alpha, log10 Ec) tried on the grid
N_STARTS = 3
START_SEPARATION_DEG = 20.0
PARAM_NAMES = ("alpha", "log_ec", "log_a")
CREDIBLE = 0.95
TARGET_ACCEPT = 0.75
"""NUTS's target acceptance. The direct response mixes the three database directions nearest
the source (gbm-drm-gen's method), so the DRM, and the log-likelihood, jump where that set
changes (by 0.5-1 in log-likelihood for these bursts, measured along ra and dec in 0.01 deg
steps). A jump costs acceptance whatever the step size, so NumPyro's default 0.8 (0.85 tried)
drives the step size down (0.004-0.04 after 60 warm-up draws) and the trees to 200-1000 steps;
at 0.75 the steps settle at 0.13-0.16 and about 25 leapfrog steps a draw."""
R_HAT_TARGET = 1.01
MAX_EXTENSIONS = 2
"""Chains whose largest split r_hat is not below `R_HAT_TARGET` after the planned draws run on
for as many draws again, at most `MAX_EXTENSIONS` times (the ordinary answer to slow mixing:
longer chains; the draws before are kept)."""
MAX_TREE_DEPTH = 7
"""At most 127 leapfrog steps a draw (NumPyro's default 10: 1023): the early warm-up, before
the step size and the mass matrix settle, otherwise spends most of the time in 1023-step
trees; sampling needs 20-60."""


# --------------------------------------------------------------------------------- inputs --

def data_paths() -> tuple[pathlib.Path, pathlib.Path] | None:
    """``(trigdat file, example data folder)``, or `None` when gbm-drm-gen's database or the
    shared example files are not found."""
    from bayspec_jax.balrog import gbm_drm_gen_data_dir

    folder = gbm_drm_gen_data_dir()
    if folder is None or not (folder / "balrog_db.h5").is_file():
        return None
    trigdat = folder / "example_data" / TRIGDAT_NAME
    if not trigdat.is_file() or not (SHARED_DATA / "GBM" / "n6.bkg").is_file():
        return None
    return trigdat, SHARED_DATA


@functools.lru_cache(maxsize=None)
def generator(detector: str, mat_type: int, trigdat: str, data_dir: str):
    """The detector's `DRMGenerator` at the trigger, channel edges from its background file."""
    from bayspec_jax.balrog import drm_generator

    return drm_generator(detector, trigdat=trigdat, time=TRIGGER_TIME,
                         out_edges=os.path.join(data_dir, BACKGROUND_FILES[detector]),
                         mat_type=mat_type)


def unit_vector(ra, dec) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def ra_dec(vector) -> tuple[np.ndarray, np.ndarray]:
    vector = np.asarray(vector, dtype=np.float64)
    vector = vector / np.linalg.norm(vector, axis=-1, keepdims=True)
    return (np.degrees(np.arctan2(vector[..., 1], vector[..., 0])) % 360.0,
            np.degrees(np.arcsin(np.clip(vector[..., 2], -1.0, 1.0))))


def angle_deg(a, b) -> np.ndarray:
    """Angle between unit vectors [deg] (atan2 form: accurate at small angles)."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(a * b, axis=-1)))


def limb_elevation_deg(gen, ra, dec) -> np.ndarray:
    """How far above the Earth's limb, seen from the spacecraft, ``(ra, dec)`` lies [deg]
    (negative: occulted; the generator's `occulted` is ``< 0``)."""
    from bayspec_jax.balrog.generator import EARTH_RADIUS_KM

    position = np.asarray(gen.position, dtype=np.float64)
    distance = np.linalg.norm(position)
    earth_radius_deg = 90.0 - np.degrees(np.arccos(EARTH_RADIUS_KM / distance))
    from_nadir = angle_deg(unit_vector(ra, dec), -position / distance)
    return from_nadir - earth_radius_deg


def fibonacci_sphere(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` nearly uniform sky positions ``(ra, dec)`` [deg] (a Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    dec = np.degrees(np.arcsin(1.0 - 2.0 * k / n))
    ra = (k * 180.0 * (3.0 - math.sqrt(5.0))) % 360.0
    return ra, dec


# -------------------------------------------------------------------------------- a burst --

def draw_bursts(seed: int, n: int, gen) -> list[dict]:
    """`n` bursts: positions uniform on the sphere, at least `LIMB_MARGIN_DEG` above the limb,
    and cutoff-power-law shapes; each with its own integer seed for the simulation and NUTS."""
    rng = np.random.default_rng(seed)
    bursts = []
    while len(bursts) < n:
        ra = rng.uniform(0.0, 360.0)
        dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        alpha = rng.uniform(-1.2, -0.6)
        log_ec = rng.uniform(math.log10(200.0), math.log10(630.0))
        burst_seed = int(rng.integers(2**31))
        if limb_elevation_deg(gen, ra, dec) < LIMB_MARGIN_DEG:
            continue
        bursts.append(dict(index=len(bursts), ra=ra, dec=dec, alpha=alpha, log_ec=log_ec,
                           seed=burst_seed))
    return bursts


def photon_flux(model, params, edges, ngrid: int = 9):
    """The model's photon flux per bin of `edges` [ph/cm^2/s] (trapezoids, `ngrid` points)."""
    import jax.numpy as jnp

    edges = jnp.asarray(edges)
    t = jnp.linspace(0.0, 1.0, ngrid)
    energy = jnp.exp(jnp.log(edges[:-1])[:, None]
                     + t * (jnp.log(edges[1:]) - jnp.log(edges[:-1]))[:, None])
    flux = model(energy, params)
    return jnp.sum(0.5 * (flux[:, 1:] + flux[:, :-1]) * jnp.diff(energy, axis=1), axis=1)


def expected_counts_by_detector(gens: dict, ra: float, dec: float, spectrum,
                                exposure: float = 1.0) -> dict[str, float]:
    """Expected source counts in the noticed channels of each detector at ``(ra, dec)``."""
    from bayspec_jax import models

    out = {}
    for det, gen in gens.items():
        flux = photon_flux(models.cpl, spectrum, gen.monte_carlo_energies)
        rate = np.asarray(gen.fold(ra, dec, flux))
        edges = np.asarray(gen.ebounds)
        lo, hi = NOTICE["bgo" if det in BGO else "nai"]
        inside = (edges[:-1] >= lo) & (edges[1:] <= hi)
        out[det] = float(np.sum(rate[inside]) * exposure)
    return out


def select_detectors(counts: dict[str, float], n_nai: int = N_NAI) -> list[str]:
    """The `n_nai` NaI with the most counts, brightest first, then the brighter BGO."""
    nai = sorted((d for d in counts if d in NAI), key=lambda d: -counts[d])[:n_nai]
    bgo = max((d for d in counts if d in BGO), key=lambda d: counts[d])
    return nai + [bgo]


def build_data(detectors, mat_type: int, trigdat, data_dir, ra: float, dec: float):
    """A `Data` of one unit per detector on its `BalrogResponse`, the position `Par`s at
    ``(ra, dec)`` (free, uniform); the background file's spectrum as background, its counts
    also as the placeholder source (fakeit replaces it)."""
    import bayspec_jax as bj

    units = []
    for det in detectors:
        gen = generator(det, mat_type, str(trigdat), str(data_dir))
        background = bj.Background.from_bkg(str(pathlib.Path(data_dir) / BACKGROUND_FILES[det]))
        source = bj.Source(background.counts, background.errors, background.exposure,
                           name=f"placeholder {det}")
        rsp = bj.BalrogResponse(gen, ra=bj.Par(ra, bj.unif(0.0, 360.0)),
                                dec=bj.Par(dec, bj.unif(-90.0, 90.0)), name=det)
        notc = NOTICE["bgo" if det in BGO else "nai"]
        units.append((det, bj.DataUnit(src=source, bkg=background, rsp=rsp, notc=notc,
                                       stat=STAT, grpg=dict(GROUPING), name=det)))
    return bj.Data(units)


def normalisation(data, alpha: float, log_ec: float) -> float:
    """log10 A such that the NaI units get `NAI_COUNTS` expected source counts on average."""
    from bayspec_jax import models, simulate

    counts = []
    for name, unit in data.items():
        if name in NAI:
            expected = np.asarray(simulate.expected_counts(models.cpl, [alpha, log_ec, 0.0],
                                                           unit))
            counts.append(float(np.sum(expected[np.asarray(unit.noticing)])))
    return math.log10(NAI_COUNTS / np.mean(counts))


def make_problem(fake, ra_centre: float):
    """The fit: `cpl` with broad uniform priors, one (ra, dec) for all units (links), ra uniform
    over 360 deg centred on `ra_centre`."""
    import bayspec_jax as bj
    from bayspec_jax import infer

    params = {"alpha": bj.Par(-1.0, bj.unif(-3.0, 1.0)),
              "log_ec": bj.Par(2.5, bj.unif(1.0, 4.0)),
              "log_a": bj.Par(0.0, bj.unif(-4.0, 4.0))}
    first = fake.names[0]
    position = {f"ra@{first}": bj.Par(ra_centre, bj.unif(ra_centre - 180.0, ra_centre + 180.0)),
                f"dec@{first}": bj.Par(0.0, bj.unif(-90.0, 90.0))}
    links = [tuple(f"{label}@{name}" for name in fake.names) for label in ("ra", "dec")]
    return infer.Problem(bj.models.cpl, params, fake, data_params=position, links=links)


# -------------------------------------------------------------------------------- the start --

def _moment_loglike(objective, free, setups, counts):
    """Log-likelihood at `free` with log A replaced by the value whose total expected source
    counts equal the observed net counts (all units)."""
    import jax.numpy as jnp

    from bayspec_jax.fold import group_factors, model_rate

    expected = net = jnp.zeros((), free.dtype)
    for setup, observed in zip(setups, counts):
        factors = group_factors(setup, objective.data_params(free))
        rate = model_rate(objective.model, objective.full(free), setup, factors)
        expected = expected + jnp.sum(rate * factors.ts)
        net = net + jnp.sum(observed.src_counts - factors.ts / factors.tb * observed.bkg_counts)
    log_a = free[2] + jnp.log10(jnp.maximum(net, 1.0) / expected)
    log_a = jnp.where(jnp.isfinite(log_a), log_a, free[2])
    moved = free.at[2].set(log_a)
    return objective.loglike(moved, setups, counts), log_a


def coarse_grid(problem, n_points: int = GRID_POINTS, shapes=GRID_SHAPES):
    """The grid's log-likelihoods: ``(ra, dec, best loglike over shapes, free vector)`` per
    visible grid point (the amplitude set by the counts, see `_moment_loglike`)."""
    import jax
    import jax.numpy as jnp

    gen = problem.data.units[0].rsp.generator
    ra, dec = fibonacci_sphere(n_points)
    keep = ~np.asarray(jax.vmap(gen.occulted)(jnp.asarray(ra), jnp.asarray(dec)))
    ra, dec = ra[keep], dec[keep]
    lo = float(problem.pars[problem.names[3]].prior.low)
    ra_window = lo + (ra - lo) % 360.0
    setups, counts = problem.arrays
    best_ll = np.full(ra.size, -np.inf)
    best_free = np.zeros((ra.size, 5))
    function = jax.jit(lambda x, arrays: jax.lax.map(
        lambda f: _moment_loglike(problem.objective, f, *arrays), x, batch_size=32))
    for alpha, log_ec in shapes:
        free = np.stack([np.full(ra.size, alpha), np.full(ra.size, log_ec),
                         np.zeros(ra.size), ra_window, dec], axis=1)
        ll, log_a = (np.asarray(v) for v in function(jnp.asarray(free), (setups, counts)))
        free[:, 2] = log_a
        better = np.isfinite(ll) & (ll > best_ll)
        best_ll[better], best_free[better] = ll[better], free[better]
    return ra, dec, best_ll, best_free


def find_start(problem, n_points: int = GRID_POINTS, n_starts: int = N_STARTS):
    """The maximum-likelihood fit started from the best grid points that are at least
    `START_SEPARATION_DEG` apart; returns ``(best Fit, grid seconds, fits seconds, the fits'
    loglikes)``."""
    start = time.perf_counter()
    ra, dec, ll, free = coarse_grid(problem, n_points)
    grid_s = time.perf_counter() - start
    chosen: list[int] = []
    for i in np.argsort(-ll):
        if not np.isfinite(ll[i]):
            break
        if all(angle_deg(unit_vector(ra[i], dec[i]), unit_vector(ra[j], dec[j]))
               > START_SEPARATION_DEG for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n_starts:
            break
    start = time.perf_counter()
    fits = [fit_from(problem, free[i]) for i in chosen]
    fits_s = time.perf_counter() - start
    usable = [f for f in fits if np.all(np.isfinite(f.best)) and np.isfinite(f.loglike)]
    best = max(usable, key=lambda f: f.loglike)
    return best, grid_s, fits_s, [f.loglike for f in fits]


@functools.lru_cache(maxsize=None)
def _jitted_fit():
    import equinox as eqx

    from bayspec_jax.infer.mle import fit_objective

    return eqx.filter_jit(fit_objective)


class Fit(NamedTuple):
    best: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    loglike: float


def fit_from(problem, start, max_steps: int = 500) -> Fit:
    """A maximum-likelihood fit from `start`: `infer.mle.fit_objective` (the fit of
    `infer.maximum_likelihood`), BFGS, with the covariance from central differences of the
    gradient rather than the exact Hessian (forward-over-reverse through the BALROG fold compiles
    slowly, and only the scale of the errors is used here)."""
    import jax.numpy as jnp

    best, covariance, loglike, _, _ = _jitted_fit()(
        problem.objective, jnp.asarray(start), *problem.arrays, 1e-8, 1e-8, max_steps, False)
    covariance = np.asarray(covariance)
    return Fit(np.asarray(best), np.sqrt(np.clip(np.diag(covariance), 0.0, None)), covariance,
               float(loglike))


# -------------------------------------------------------------------------------- NUTS --

def chain_starts(problem, fit, num_chains: int, rng: np.random.Generator,
                 jitter: float = 0.5) -> np.ndarray:
    """``(chain, free)``: the fit's best values plus `jitter` times its errors times N(0, 1),
    ra wrapped into the prior's window, everything kept inside the priors."""
    best = np.asarray(fit.best, dtype=np.float64).copy()
    errors = np.where(np.isfinite(fit.errors) & (fit.errors > 0), fit.errors, 0.01)
    errors = np.minimum(errors, [0.1, 0.1, 0.1, 2.0, 2.0])
    starts = best + jitter * errors * rng.standard_normal((num_chains, best.size))
    for i, name in enumerate(problem.names):
        prior = problem.pars[name].prior
        lo, hi = float(prior.low), float(prior.high)
        if i == 3:
            starts[:, i] = lo + (starts[:, i] - lo) % 360.0
        margin = 1e-6 * (hi - lo)
        starts[:, i] = np.clip(starts[:, i], lo + margin, hi - margin)
    return starts


def unconstrained_covariance(problem, best: np.ndarray, covariance: np.ndarray
                             ) -> dict | None:
    """The fit's covariance in NumPyro's unconstrained space (uniform priors: ``z =
    logit((x - low) / (high - low))``), as NUTS's initial dense inverse mass matrix, keyed by
    the sites in NumPyro's order (sorted names); `None` when it is not positive definite."""
    import jax.numpy as jnp

    jacobian = np.empty(len(problem.names))
    for i, name in enumerate(problem.names):
        prior = problem.pars[name].prior
        lo, hi = float(prior.low), float(prior.high)
        u = np.clip((best[i] - lo) / (hi - lo), 1e-6, 1.0 - 1e-6)
        jacobian[i] = 1.0 / ((hi - lo) * u * (1.0 - u))
    matrix = jacobian[:, None] * np.asarray(covariance) * jacobian[None, :]
    matrix = 0.5 * (matrix + matrix.T)
    if not np.all(np.isfinite(matrix)) or np.any(np.linalg.eigvalsh(matrix) <= 0.0):
        return None
    order = sorted(range(len(problem.names)), key=lambda i: problem.names[i])
    sites = tuple(problem.names[i] for i in order)
    return {sites: jnp.asarray(matrix[np.ix_(order, order)])}


def run_chains(problem, starts: np.ndarray, key, num_warmup: int, num_samples: int,
               target_accept: float = TARGET_ACCEPT, inverse_mass: dict | None = None):
    """NumPyro NUTS, `len(starts)` chains vectorized, dense mass, from `starts` ``(chain,
    free)`` (constrained values, converted to NumPyro's unconstrained space here: NumPyro takes
    `init_params` there); `inverse_mass`: the initial inverse mass matrix
    (`unconstrained_covariance`), adapted further in the warm-up. While the largest r_hat is
    not below `R_HAT_TARGET`, the chains go on for `num_samples` more draws (at most
    `MAX_EXTENSIONS` times). Returns ``(posterior, extensions)``."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.util import unconstrain_fn

    from bayspec_jax import infer

    model = infer.numpyro_model(problem)
    arrays = problem.arrays
    unconstrained = [unconstrain_fn(model, (arrays,), {}, {name: jnp.asarray(row[i]) for i, name
                                                          in enumerate(problem.names)})
                     for row in starts]
    init = {name: jnp.stack([u[name] for u in unconstrained]) for name in problem.names}
    mcmc = MCMC(NUTS(model, dense_mass=True, target_accept_prob=target_accept,
                     inverse_mass_matrix=inverse_mass, max_tree_depth=MAX_TREE_DEPTH),
                num_warmup=num_warmup, num_samples=num_samples, num_chains=len(starts),
                chain_method="vectorized", progress_bar=False)
    fields = ("diverging", "num_steps", "potential_energy")
    mcmc.run(key, arrays, init_params=init, extra_fields=fields)
    posterior = infer.Posterior.from_numpyro(mcmc)
    extensions = 0
    while max(posterior.r_hat().values()) >= R_HAT_TARGET and extensions < MAX_EXTENSIONS:
        # not converged by the target: go on from where the chains are (no new warm-up, the
        # same step size and mass matrix) for as many draws again, and keep all the draws
        extensions += 1
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(jax.random.fold_in(key, extensions), arrays, extra_fields=fields)
        more = infer.Posterior.from_numpyro(mcmc)
        posterior = infer.Posterior(
            {k: np.concatenate([v, more.samples[k]], axis=1)
             for k, v in posterior.samples.items()},
            sample_stats={k: np.concatenate([v, more.sample_stats[k]], axis=1)
                          for k, v in posterior.sample_stats.items()})
    return posterior, extensions


# -------------------------------------------------------------------------------- the test --

def _tangent_basis(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pole = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    east = np.cross(pole, centre)
    east /= np.linalg.norm(east)
    return east, np.cross(centre, east)


def _gnomonic(vectors: np.ndarray, centre: np.ndarray, basis) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane coordinates [rad] and ``cos`` of the angle from `centre`."""
    cosine = vectors @ centre
    plane = np.stack([vectors @ basis[0], vectors @ basis[1]], axis=-1) / cosine[..., None]
    return plane, cosine


def _kde(points: np.ndarray, at: np.ndarray, bandwidth: np.ndarray,
         leave_one_out: bool) -> np.ndarray:
    """Gaussian KDE of `points` ``(n, 2)`` at `at` ``(m, 2)``, bandwidth matrix ``(2, 2)``
    (unnormalised: only ratios are used)."""
    whiten = np.linalg.inv(np.linalg.cholesky(bandwidth))
    points, at = points @ whiten.T, at @ whiten.T
    squared = np.sum(points**2, axis=1)
    out = np.empty(at.shape[0])
    for start in range(0, at.shape[0], 1024):
        block = at[start:start + 1024]
        distance2 = np.sum(block**2, axis=1)[:, None] + squared[None, :] - 2.0 * block @ points.T
        kernel = np.exp(-0.5 * np.maximum(distance2, 0.0))
        if leave_one_out:
            rows = np.arange(start, start + block.shape[0])
            kernel[rows - start, rows] = 0.0
        out[start:start + 1024] = kernel.sum(axis=1) / (points.shape[0] - leave_one_out)
    return out


def credible_test(ra_draws, dec_draws, ra_true: float, dec_true: float,
                  credible: float = CREDIBLE) -> dict[str, Any]:
    """Is the truth inside the `credible` highest-posterior-density region of the position?

    **Returns:** ``{"q": the fraction of draws where the density (per solid angle) is higher
    than at the truth, "inside": q < credible, "mean_ra", "mean_dec": the posterior mean
    direction, "offset_deg": its angle to the truth, "radius68_deg": sqrt of the tangent-plane
    covariance's determinant^(1/2) times 1.515 (the 68% radius of a circular Gaussian of the
    same area), "chi2": the truth's squared Mahalanobis distance in the tangent plane,
    "inside_gauss": chi2 below the 2-dof quantile}``.
    """
    draws = unit_vector(np.ravel(ra_draws), np.ravel(dec_draws))
    truth = unit_vector(ra_true, dec_true)
    centre = draws.mean(axis=0)
    centre /= np.linalg.norm(centre)
    basis = _tangent_basis(centre)
    plane, cosine = _gnomonic(draws, centre, basis)
    n = plane.shape[0]
    covariance = np.cov(plane.T)
    bandwidth = covariance * n ** (-1.0 / 3.0)  # Scott: (n^(-1/6))^2 times the covariance
    density = _kde(plane, plane, bandwidth, True) / cosine**3
    if truth @ centre <= 0.0:
        q = 1.0
    else:
        truth_plane, truth_cos = _gnomonic(truth[None], centre, basis)
        at_truth = _kde(plane, truth_plane, bandwidth, False)[0] / truth_cos[0] ** 3
        q = float(np.mean(density > at_truth))
    mean_ra, mean_dec = ra_dec(centre)
    offset = float(angle_deg(centre, truth))
    if truth @ centre > 0.0:
        t_plane = _gnomonic(truth[None], centre, basis)[0][0] - plane.mean(axis=0)
        chi2 = float(t_plane @ np.linalg.solve(covariance, t_plane))
    else:
        chi2 = math.inf
    chi2_level = -2.0 * math.log(1.0 - credible)  # the chi^2(2 dof) quantile
    radius68 = math.degrees(math.sqrt(math.sqrt(np.linalg.det(covariance)))) * math.sqrt(
        -2.0 * math.log(1.0 - 0.68))
    return dict(q=q, inside=bool(q < credible), mean_ra=float(mean_ra), mean_dec=float(mean_dec),
                offset_deg=offset, radius68_deg=radius68, chi2=chi2,
                inside_gauss=bool(chi2 < chi2_level))


# -------------------------------------------------------------------------------- recover --

def with_mat_type(fake, mat_type: int, trigdat, data_dir):
    """The simulated units on responses of another `mat_type` (same counts, same groups)."""
    import bayspec_jax as bj

    units = []
    for name, unit in fake.items():
        rsp = unit.rsp
        gen = generator(name, mat_type, str(trigdat), str(data_dir))
        units.append((name, unit.replace(rsp=bj.BalrogResponse(gen, ra=rsp.ra, dec=rsp.dec,
                                                               name=rsp.name))))
    return bj.Data(units)


def recover_burst(burst: dict, mat_type: int, trigdat, data_dir, num_warmup: int,
                  num_samples: int, num_chains: int = 4, n_grid: int = GRID_POINTS,
                  n_starts: int = N_STARTS, detectors: list[str] | None = None,
                  start_mat_type: int | None = None, log: Any = None) -> dict[str, Any]:
    """Simulate one burst and sample its posterior; returns the record of the table.

    `burst`: ``{ra, dec, alpha, log_ec, seed}`` (`draw_bursts`); `detectors`: the units (by
    default chosen by `select_detectors` from the direct responses of all 14 detectors);
    `start_mat_type`: the response the start is searched with (grid and fits, on the same
    simulated counts; default `mat_type`): 0 for a mat_type 2 burst saves the slow compiles
    and evaluations of the scattered response there, and the warm-up moves the chains from
    that start to the mat_type 2 posterior.
    """
    import jax

    from bayspec_jax import models, simulate

    start_mat_type = mat_type if start_mat_type is None else start_mat_type

    log = log or (lambda message: None)
    ra, dec = burst["ra"], burst["dec"]
    spectrum = [burst["alpha"], burst["log_ec"], 0.0]
    if detectors is None:
        gens = {d: generator(d, 0, str(trigdat), str(data_dir)) for d in NAI + BGO}
        detectors = select_detectors(expected_counts_by_detector(gens, ra, dec, spectrum))
    data = build_data(detectors, mat_type, trigdat, data_dir, ra, dec)
    log_a = normalisation(data, burst["alpha"], burst["log_ec"])
    truth = np.array([burst["alpha"], burst["log_ec"], log_a])
    sim_key, nuts_key = jax.random.split(jax.random.PRNGKey(burst["seed"]))
    fake = simulate.fakeit(sim_key, models.cpl, truth, data)
    source_counts = {name: float(np.sum(np.asarray(simulate.expected_counts(
        models.cpl, truth, unit))[np.asarray(unit.noticing)])) for name, unit in fake.items()}

    t0 = time.perf_counter()
    searched = fake if start_mat_type == mat_type else with_mat_type(
        fake, start_mat_type, trigdat, data_dir)
    fit, grid_s, fits_s, starts_ll = find_start(make_problem(searched, 180.0), n_grid, n_starts)
    problem = make_problem(fake, float(fit.best[3]) % 360.0)
    start_s = time.perf_counter() - t0
    log(f"  start: grid {grid_s:.1f} s, fits {fits_s:.1f} s, fit loglikes "
        f"{np.round(starts_ll, 2).tolist()}; best ra {fit.best[3] % 360:.2f} dec "
        f"{fit.best[4]:.2f} (truth {ra:.2f}, {dec:.2f})")
    starts = chain_starts(problem, fit, num_chains, np.random.default_rng(burst["seed"]))
    t0 = time.perf_counter()
    best = np.asarray(fit.best, dtype=np.float64).copy()
    best[3] = float(problem.pars[problem.names[3]].prior.low) + (best[3] - float(
        problem.pars[problem.names[3]].prior.low)) % 360.0
    inverse_mass = unconstrained_covariance(problem, best, fit.covariance)
    posterior, extensions = run_chains(problem, starts, nuts_key, num_warmup, num_samples,
                                       inverse_mass=inverse_mass)
    nuts_s = time.perf_counter() - t0
    ra_name, dec_name = problem.names[3], problem.names[4]
    test = credible_test(posterior.samples[ra_name], posterior.samples[dec_name], ra, dec)
    r_hat, ess = posterior.r_hat(), posterior.ess()
    steps = np.asarray(posterior.sample_stats["n_steps"])
    return dict(
        index=burst["index"], ra=ra, dec=dec, truth=truth.tolist(), detectors=detectors,
        source_counts=source_counts, mat_type=mat_type, start_mat_type=start_mat_type,
        fit_ra=float(fit.best[3] % 360.0),
        fit_dec=float(fit.best[4]),
        offset_fit_deg=float(angle_deg(unit_vector(fit.best[3], fit.best[4]),
                                       unit_vector(ra, dec))),
        **test, r_hat_max=float(max(r_hat.values())),
        r_hat=dict((k.split("@")[0], float(v)) for k, v in r_hat.items()),
        ess_min=float(min(ess.values())), divergences=int(posterior.num_divergent),
        mean_steps=float(steps.mean()), start_s=start_s, nuts_s=nuts_s,
        num_warmup=num_warmup, num_samples=num_samples * (1 + extensions),
        extensions=extensions, num_chains=num_chains)


# -------------------------------------------------------------------------------- cost --

def loglike_cost(mat_type: int, trigdat, data_dir, burst: dict, detectors: list[str],
                 repeats: int = 30) -> dict[str, float]:
    """Seconds per value+grad of the burst's log-likelihood (jitted, called from Python, and
    per evaluation inside a jitted loop of `repeats`), and the compile time."""
    import jax
    import jax.numpy as jnp

    from bayspec_jax import models, simulate

    data = build_data(detectors, mat_type, trigdat, data_dir, burst["ra"], burst["dec"])
    log_a = normalisation(data, burst["alpha"], burst["log_ec"])
    truth = np.array([burst["alpha"], burst["log_ec"], log_a])
    fake = simulate.fakeit(jax.random.PRNGKey(0), models.cpl, truth, data)
    problem = make_problem(fake, burst["ra"])
    x = jnp.array([*truth, burst["ra"], burst["dec"]])
    value_grad = jax.jit(jax.value_and_grad(lambda f, a: problem.objective.loglike(f, *a)))
    arrays = problem.arrays
    t0 = time.perf_counter()
    jax.block_until_ready(value_grad(x, arrays))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(repeats):
        out = value_grad(x + 1e-6 * i, arrays)
    jax.block_until_ready(out)
    call_s = (time.perf_counter() - t0) / repeats

    @jax.jit
    def loop(x, arrays):
        def body(i, carry):
            value, grad = jax.value_and_grad(
                lambda f: problem.objective.loglike(f, *arrays))(x + 1e-6 * carry)
            return carry + value * 1e-30 + jnp.sum(grad) * 1e-30
        return jax.lax.fori_loop(0, repeats, body, jnp.zeros((), x.dtype))

    jax.block_until_ready(loop(x, arrays))
    t0 = time.perf_counter()
    jax.block_until_ready(loop(x, arrays))
    loop_s = (time.perf_counter() - t0) / repeats
    return dict(compile_s=compile_s, call_s=call_s, loop_s=loop_s)


# -------------------------------------------------------------------------------- report --

def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores ({platform.system()}), load average {load:.1f} "
            "when written (the machine is shared)")


def _versions() -> str:
    import importlib.metadata as md

    parts = []
    for name in ("jax", "numpyro", "equinox"):
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
        parts.append(f"bayspec_jax at {commit}{' + working tree' if dirty else ''}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(parts)


def _row(r: dict) -> str:
    dets = "+".join(r["detectors"])
    nai_counts = np.mean([c for d, c in r["source_counts"].items() if d in NAI])
    alpha, log_ec, _ = r["truth"]
    mat = str(r["mat_type"])
    if r["start_mat_type"] != r["mat_type"]:
        mat += f" (start {r['start_mat_type']})"
    return (f"| {r['index']} | {mat} | {r['ra']:.2f}, {r['dec']:+.2f} | {dets} | "
            f"{alpha:.2f}, {10 ** log_ec:.0f} | {nai_counts:.0f} | "
            f"{r['mean_ra']:.2f}, {r['mean_dec']:+.2f} | {r['offset_deg']:.2f} | "
            f"{r['radius68_deg']:.2f} | {r['q']:.3f} | {'yes' if r['inside'] else '**no**'} | "
            f"{r['chi2']:.2f} | {r['r_hat_max']:.4f} | {r['ess_min']:.0f} | "
            f"{r['divergences']} | {r['num_samples']} | {r['mean_steps']:.1f} | "
            f"{r['start_s']:.0f} | {r['nuts_s']:.0f} |")


HEADER = ("| # | mat | truth ra, dec | detectors | alpha, Ec [keV] | NaI counts | "
          "posterior mean ra, dec | offset [deg] | r68 [deg] | q | in 95% HPD | chi2 | "
          "max r_hat | min ESS | div | draws | steps | start [s] | NUTS [s] |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def summary_line(records: list[dict], mat_type: int) -> str:
    rows = [r for r in records if r["mat_type"] == mat_type]
    if not rows:
        return ""
    inside = sum(r["inside"] for r in rows)
    gauss = sum(r["inside_gauss"] for r in rows)
    good = sum(r["r_hat_max"] < R_HAT_TARGET for r in rows)
    return (f"- mat_type {mat_type}: **{inside} of {len(rows)}** true positions inside the 95% "
            f"HPD region (Gaussian approximation: {gauss} of {len(rows)}); r_hat < 1.01 in "
            f"{good} of {len(rows)} (largest {max(r['r_hat_max'] for r in rows):.4f}); "
            f"smallest ESS {min(r['ess_min'] for r in rows):.0f}; divergences "
            f"{sum(r['divergences'] for r in rows)}; NUTS {sum(r['nuts_s'] for r in rows):.0f} s"
            f" in all.")


def write_report(path: pathlib.Path, command: str, records: list[dict], costs: dict,
                 settings: dict, started: str, wall_s: float) -> None:
    lines = [
        "# BALROG position recovery",
        "",
        "Written by `validation/balrog_recovery.py` (its docstring says what is simulated, how "
        "the chains start and how the 95% region is tested). Do not edit by hand.",
        "",
        f"- command: `{command}`",
        f"- date: {started} (wall time {wall_s / 60:.1f} min)",
        f"- machine: {_machine()}",
        f"- versions: {_versions()}",
        f"- settings: {settings}",
        "",
        "## The check",
        "",
    ]
    for mat_type in sorted({r["mat_type"] for r in records}):
        lines.append(summary_line(records, mat_type))
    lines += ["", "## Cost of the log-likelihood (5 units, value + grad, float64)", "",
              "| mat_type | compile [s] | per call from Python [ms] | per evaluation in a jitted "
              "loop [ms] |", "|---|---|---|---|"]
    for mat_type, cost in sorted(costs.items()):
        lines.append(f"| {mat_type} | {cost['compile_s']:.1f} | {1e3 * cost['call_s']:.2f} | "
                     f"{1e3 * cost['loop_s']:.2f} |")
    lines += ["", "## Bursts", "", HEADER]
    lines += [_row(r) for r in records]
    lines += ["",
              "Columns: `mat` the response (0 direct, 2 direct + atmospheric scattering; the "
              "same in simulation and fit; `start 0`: the start searched with mat_type 0); "
              "`NaI counts` the mean expected source counts of the NaI units in their noticed "
              "channels; `offset` posterior mean to truth; `r68` the "
              "radius of a circle of the 68% Gaussian region's area; `q` the credible level of "
              "the smallest HPD region reaching the truth (inside the 95% region when q < "
              "0.95); `chi2` the truth's squared Mahalanobis distance in the tangent plane "
              "(5.99 at 95%); `draws` per chain after the warm-up (more than asked where r_hat "
              "needed longer chains: `R_HAT_TARGET`); `steps` mean leapfrog steps per draw; "
              "`start` the coarse grid and the maximum-likelihood fits; `NUTS` warmup and "
              "sampling, 4 chains vectorized.",
              ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=10, help="bursts with --mat-type")
    parser.add_argument("--mat-type", type=int, default=0, choices=(0, 1, 2))
    parser.add_argument("--mat2-bursts", type=int, default=0,
                        help="of the same bursts, how many (the first ones) to run with "
                             "mat_type 2 as well")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--mat2-warmup", type=int, default=None)
    parser.add_argument("--mat2-samples", type=int, default=None)
    parser.add_argument("--mat2-start-mat-type", type=int, default=0, choices=(0, 2),
                        help="the response the mat_type 2 bursts' start is searched with")
    parser.add_argument("--grid", type=int, default=GRID_POINTS)
    parser.add_argument("--seed", type=int, default=110721)
    parser.add_argument("--out", default=str(HERE / "BALROG_RECOVERY.md"))
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    paths = data_paths()
    if paths is None:
        print("gbm-drm-gen's balrog_db.h5 or the shared example files not found",
              file=sys.stderr)
        return 2
    trigdat, data_dir = paths
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t_start = time.perf_counter()
    command = "python3 validation/balrog_recovery.py " + " ".join(
        argv if argv is not None else sys.argv[1:])

    def log(message):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {message}", file=sys.stderr,
              flush=True)

    reference = generator("n0", 0, str(trigdat), str(data_dir))
    bursts = draw_bursts(args.seed, args.bursts, reference)
    gens = {d: generator(d, 0, str(trigdat), str(data_dir)) for d in NAI + BGO}
    for burst in bursts:
        counts = expected_counts_by_detector(gens, burst["ra"], burst["dec"],
                                             [burst["alpha"], burst["log_ec"], 0.0])
        burst["detectors"] = select_detectors(counts)
    log(f"{len(bursts)} bursts, detectors chosen")

    costs = {}
    for mat_type in sorted({args.mat_type} | ({2} if args.mat2_bursts else set())):
        costs[mat_type] = loglike_cost(mat_type, trigdat, data_dir, bursts[0],
                                       bursts[0]["detectors"])
        log(f"cost mat_type {mat_type}: {costs[mat_type]}")

    records = []
    settings = dict(warmup=args.warmup, samples=args.samples, chains=4, grid=args.grid,
                    target_accept=TARGET_ACCEPT, max_tree_depth=MAX_TREE_DEPTH,
                    seed=args.seed, n_nai=N_NAI, nai_counts=NAI_COUNTS, stat=STAT,
                    grouping=GROUPING, limb_margin_deg=LIMB_MARGIN_DEG)
    runs = [(b, args.mat_type, args.warmup, args.samples, None) for b in bursts]
    runs += [(b, 2, args.mat2_warmup or args.warmup, args.mat2_samples or args.samples,
              args.mat2_start_mat_type) for b in bursts[:args.mat2_bursts]]
    if args.mat2_bursts:
        settings.update(mat2_warmup=args.mat2_warmup or args.warmup,
                        mat2_samples=args.mat2_samples or args.samples,
                        mat2_start_mat_type=args.mat2_start_mat_type)
    for burst, mat_type, warmup, samples, start_mat_type in runs:
        log(f"burst {burst['index']} mat_type {mat_type}: ra {burst['ra']:.2f} dec "
            f"{burst['dec']:.2f}, {burst['detectors']}")
        record = recover_burst(burst, mat_type, trigdat, data_dir, warmup, samples,
                               n_grid=args.grid, detectors=burst["detectors"],
                               start_mat_type=start_mat_type, log=log)
        records.append(record)
        # each burst compiles its own programs: drop them, or a long run exhausts the process's
        # memory mappings (vm.max_map_count) and LLVM fails with "Cannot allocate memory"
        jax.clear_caches()
        log(f"  q {record['q']:.3f} inside {record['inside']} offset "
            f"{record['offset_deg']:.2f} deg r68 {record['radius68_deg']:.2f} deg, r_hat "
            f"{record['r_hat_max']:.4f}, ess {record['ess_min']:.0f}, div "
            f"{record['divergences']}, NUTS {record['nuts_s']:.0f} s")
        write_report(pathlib.Path(args.out), command, records, costs, settings, started,
                     time.perf_counter() - t_start)
    for mat_type in sorted({r["mat_type"] for r in records}):
        print(summary_line(records, mat_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
