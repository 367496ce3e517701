"""Localization maps (`infer.sky_grid`, `infer.credible_regions`, `infer.localization_map`) and
`plot.plot_sky_map`.

The maps are checked on a burst simulated (`simulate.fakeit`, cutoff power law) through the
BALROG responses of three NaI detectors whose positions are linked; the detector database is
gbm-drm-gen's, and those tests skip when it is not found (set ``BAYSPEC_GBM_DRM_GEN_DATA``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayspec_jax as bj
from bayspec_jax import infer, simulate
from bayspec_jax.balrog import drm_generator, gbm_drm_gen_data_dir
from bayspec_jax.infer import localization

TRIGDAT = "glg_trigdat_all_bn110721200_v01.fit"
TRUTH_POSITION = (333.66, -38.59)  # GRB 110721A, seen by n6, n7 and n9 at the trigger
TRUTH_CPL = (-1.0, 2.5, 0.3)  # alpha, log10 Ec [keV], log10 A: ~11000 counts per detector
CAP_DEG = 25.0


def _unit_vectors(ra, dec):
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _separation(ra, dec, position):
    cosine = _unit_vectors(ra, dec) @ _unit_vectors(*position)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


# ----------------------------------------------------------------------------------------------
# grid and regions (no database needed)


def test_sky_grid_is_near_equal_area():
    n = 10_000
    ra, dec = infer.sky_grid(n)
    assert ra.shape == dec.shape == (n,)
    assert np.all((ra >= 0) & (ra < 360)) and np.all(np.abs(dec) < 90)
    # every band of declination holds its share of the sphere's area, to one point per edge
    edges = np.linspace(-90, 90, 19)
    counts, _ = np.histogram(dec, bins=edges)
    expected = n * np.diff(np.sin(np.radians(edges))) / 2
    assert np.all(np.abs(counts - expected) <= 2)
    # so does every lune of right ascension, to a few points
    counts, _ = np.histogram(ra, bins=np.linspace(0, 360, 13))
    assert np.all(np.abs(counts - n / 12) <= 0.02 * n / 12 + 3)
    # and the points are evenly spread: nearest neighbours about sqrt(area per point) apart
    vectors = _unit_vectors(ra[::10], dec[::10])
    cosine = vectors @ _unit_vectors(ra, dec).T
    cosine[np.arange(vectors.shape[0]), np.arange(0, n, 10)] = -1.0
    nearest = np.degrees(np.arccos(np.clip(cosine.max(axis=1), -1, 1)))
    spacing = np.sqrt(localization.FULL_SKY_DEG2 / n)
    assert 0.7 * spacing < nearest.min() and nearest.max() < 1.3 * spacing


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "100"])
def test_sky_grid_refuses_a_bad_size(n):
    with pytest.raises(ValueError, match="integer >= 1"):
        infer.sky_grid(n)


@pytest.mark.parametrize("sigma", [3.0, 6.0])
def test_credible_regions_of_a_gaussian(sigma):
    """On a fine equal-area grid, the regions of a 2-d Gaussian of width `sigma` (in angle from
    a centre) have the analytic areas ``2 pi sigma^2 (-ln(1 - p))`` (small-angle limit, with
    the sphere's correction at this size under 1%)."""
    n = 200_000
    ra, dec = infer.sky_grid(n)
    theta = _separation(ra, dec, (40.0, 20.0))
    loglike = -0.5 * (theta / sigma) ** 2
    levels = (0.5, 0.68, 0.95)
    masks = np.asarray(infer.credible_regions(loglike, levels))
    assert masks.shape == (3, n) and masks.dtype == bool
    assert np.all(masks[0] <= masks[1]) and np.all(masks[1] <= masks[2])  # nested
    areas = masks.sum(axis=1) * localization.FULL_SKY_DEG2 / n
    analytic = 2 * np.pi * sigma**2 * -np.log1p(-np.array(levels))
    np.testing.assert_allclose(areas, analytic, rtol=0.03)
    # each region is the most likely points, and the fewest that hold the probability
    weight = np.exp(loglike - loglike.max())
    weight /= weight.sum()
    for mask, level in zip(masks, levels):
        assert loglike[mask].min() >= loglike[~mask].max()
        assert weight[mask].sum() >= level > weight[mask].sum() - weight[mask].min()


def test_credible_regions_edge_cases():
    loglike = np.array([0.0, -np.inf, np.log(0.5), np.nan, np.log(0.25), np.log(0.25)])
    masks = np.asarray(infer.credible_regions(loglike, (0.3, 0.5, 0.99, 1.0)))
    # probabilities 0.5, 0, 0.25, 0, 0.125, 0.125: ties taken in order
    np.testing.assert_array_equal(masks, [[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0],
                                          [1, 0, 1, 0, 1, 1], [1, 0, 1, 0, 1, 1]])
    mass = np.asarray(infer.enclosed_probability(loglike))
    np.testing.assert_allclose(mass, [0.5, 1.0, 0.75, 1.0, 0.875, 1.0])
    # jit-able with the levels static
    jitted = jax.jit(infer.credible_regions, static_argnums=1)
    np.testing.assert_array_equal(jitted(jnp.asarray(loglike), (0.3, 0.99)), masks[[0, 2]])
    for levels in [(), (0.0,), (1.5,)]:
        with pytest.raises(ValueError, match="levels must be probabilities"):
            infer.credible_regions(loglike, levels)
    with pytest.raises(ValueError, match="shape"):
        infer.credible_regions(np.zeros((2, 3)))


# ----------------------------------------------------------------------------------------------
# maps of a simulated burst


@pytest.fixture(scope="module")
def burst(data_dir):
    """A burst at `TRUTH_POSITION` simulated through the direct BALROG responses of n6, n7 and
    n9 (GRB 110721A's trigger-time attitude), the NaI example's exposure and background; the
    fit `Problem` with the three positions linked."""
    folder = gbm_drm_gen_data_dir()
    if folder is None or not (folder / "balrog_db.h5").is_file() or not (
            folder / "example_data" / TRIGDAT).is_file():
        pytest.skip("gbm-drm-gen's balrog_db.h5 and example data not found "
                    "(set BAYSPEC_GBM_DRM_GEN_DATA)")
    template = data_dir / "GBM"
    units = []
    for k, detector in enumerate(("n6", "n7", "n9")):
        generator = drm_generator(detector, trigdat=folder / "example_data" / TRIGDAT,
                                  out_edges=template / "n6.src", mat_type=0)
        rsp = bj.BalrogResponse(generator, ra=bj.Par(TRUTH_POSITION[0], bj.unif(0, 360)),
                                dec=bj.Par(TRUTH_POSITION[1], bj.unif(-90, 90)))
        unit = bj.DataUnit(src=str(template / "n6.src"), bkg=str(template / "n6.bkg"), rsp=rsp,
                           notc=[8, 900], stat="pgstat", grpg={"min_sigma": 3, "max_bin": 10})
        units.append((detector, simulate.fakeit(jax.random.PRNGKey(20 + k), bj.models.cpl,
                                                jnp.asarray(TRUTH_CPL), unit)))
    params = {"alpha": bj.Par(-1.2, bj.unif(-3, 1)), "log_ec": bj.Par(2.3, bj.unif(1, 4)),
              "log_a": bj.Par(0.0, bj.unif(-6, 6))}
    links = [("ra@n6", "ra@n7", "ra@n9"), ("dec@n6", "dec@n7", "dec@n9")]
    problem = infer.Problem(bj.models.cpl, params, bj.Data(units), links=links)
    assert problem.names == ["alpha", "log_ec", "log_a", "ra@n6", "dec@n6"]
    return problem


@pytest.fixture(scope="module")
def maps(burst):
    """The profile and conditional maps on ~200 points of an equal-area grid within
    `CAP_DEG` of the truth, the truth itself appended; reference: the truth."""
    ra, dec = infer.sky_grid(4300)
    near = _separation(ra, dec, TRUTH_POSITION) < CAP_DEG
    ra, dec = np.append(ra[near], TRUTH_POSITION[0]), np.append(dec[near], TRUTH_POSITION[1])
    reference = np.array([*TRUTH_CPL, *TRUTH_POSITION])
    profile = infer.localization_map(burst, ra, dec, reference=reference, batch_size=64)
    conditional = infer.localization_map(burst, ra, dec, method="conditional",
                                         reference=reference)
    return profile, conditional


def test_profile_map_finds_the_burst(maps):
    profile, _ = maps
    n = len(profile)
    assert 190 < n < 220 and profile.method == "profile"
    assert profile.names == ["alpha", "log_ec", "log_a"] and profile.params.shape == (n, 3)
    assert np.all(np.isfinite(profile.loglike))
    regions = profile.regions((0.68, 0.95))
    assert regions[1, -1], "the true position is outside the 95% region"
    assert 2 <= regions[0].sum() <= regions[1].sum() < n // 4
    assert _separation(*profile.best, TRUTH_POSITION) < 4.0
    # the fits converged where the likelihood matters
    assert np.all(profile.converged[regions[1]])
    # at the truth, the best spectrum is near the simulated one
    np.testing.assert_allclose(profile.params[-1], TRUTH_CPL, atol=0.15)
    area = profile.areas(point_area=localization.FULL_SKY_DEG2 / 4300)
    assert 0 < area[0] < area[1] < 400


def test_profile_is_at_least_the_conditional(maps):
    profile, conditional = maps
    assert conditional.method == "conditional" and np.all(conditional.converged)
    np.testing.assert_array_equal(conditional.params,
                                  np.broadcast_to(TRUTH_CPL, conditional.params.shape))
    assert np.all(profile.loglike >= conditional.loglike)
    assert np.max(profile.loglike - conditional.loglike) > 10  # the fits do something
    # at the truth, fitting three parameters gains about chi2(3) / 2 over the true ones
    assert 0 <= profile.loglike[-1] - conditional.loglike[-1] < 6


def test_the_whole_sky_peaks_in_the_cap(burst):
    """A coarse whole-sky conditional map (occulted positions included) peaks near the truth:
    the cap of the maps above holds the likelihood."""
    ra, dec = infer.sky_grid(500)
    whole = infer.localization_map(burst, ra, dec, method="conditional",
                                   reference=np.array([*TRUTH_CPL, *TRUTH_POSITION]))
    assert _separation(*whole.best, TRUTH_POSITION) < 10.0
    assert np.all(whole.loglike[_separation(ra, dec, TRUTH_POSITION) > CAP_DEG]
                  < whole.loglike.max() - 20)
    assert np.isneginf(whole.loglike).sum() < len(whole)


@pytest.mark.parametrize("method", ["profile", "conditional"])
def test_the_map_is_one_compiled_program(burst, method):
    """The map is one traced program whatever the number of positions (no Python loop over
    them): its jaxpr has the same equations for 16 and 64 positions (and the conditional one
    lowers and compiles as one)."""
    setup, counts = burst.arrays
    reference = jnp.array([*TRUTH_CPL, *TRUTH_POSITION])
    position = (3, 4)

    def program(n):
        ra, dec = (jnp.asarray(a[:n]) for a in infer.sky_grid(64))
        return jax.make_jaxpr(lambda r, d: localization._map_core(
            burst.objective, setup, counts, reference, r, d, position, method, 8, 1e-6, 1e-4,
            20))(ra, dec)

    small, large = program(16), program(64)
    assert len(small.eqns) == len(large.eqns)
    assert str(small).count("while") == str(large).count("while")
    if method == "conditional":  # (compiling the profile's fits takes a while)
        ra, dec = (jnp.asarray(a) for a in infer.sky_grid(16))
        lowered = localization._map_jit.lower(burst.objective, setup, counts, reference, ra,
                                              dec, position, method, 8, 1e-6, 1e-4, 20)
        assert lowered.compile() is not None


def test_bad_arguments_are_named(burst, example_unit):
    ra, dec = infer.sky_grid(8)
    with pytest.raises(ValueError, match="method must be one of"):
        infer.localization_map(burst, ra, dec, method="marginal")
    with pytest.raises(ValueError, match="reference must have shape"):
        infer.localization_map(burst, ra, dec, reference=np.zeros(3))
    with pytest.raises(ValueError, match="ra and dec must be 1-d"):
        infer.localization_map(burst, ra, dec[:4])
    with pytest.raises(ValueError, match="dec must be within"):
        infer.localization_map(burst, ra, dec + 100.0)
    with pytest.raises(ValueError, match="batch_size"):
        infer.localization_map(burst, ra, dec, batch_size=0)
    unlinked = infer.Problem(bj.models.cpl, burst.params, burst.data)
    with pytest.raises(ValueError, match="exactly one free ra and one free dec"):
        infer.localization_map(unlinked, ra, dec)
    constant = infer.Problem(bj.models.cpl, burst.params, bj.Data([("nai", example_unit)]))
    with pytest.raises(ValueError, match=r"free ones: ra \[\], dec \[\]"):
        infer.localization_map(constant, ra, dec)


def test_plot_sky_map(maps, tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from bayspec_jax import plot

    profile, _ = maps
    try:
        figure = plot.plot_sky_map(profile.ra, profile.dec, profile.loglike,
                                   true_position=TRUTH_POSITION, best=profile.best,
                                   markers={"other": (330.0, -40.0)}, path=tmp_path / "m.png",
                                   title="simulated")
        assert (tmp_path / "m.png").stat().st_size > 0
        ax = figure.axes[0]
        assert ax.name == "mollweide"
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["68% region", "95% region"]
        assert labels[2:] == ["true position", "other", "best"]
        figure = plot.plot_sky_map(profile.ra, profile.dec, profile.loglike,
                                   regions=profile.regions((0.9,)), projection="rectangular")
        assert figure.axes[0].name == "rectilinear"
        assert figure.axes[0].get_xlim() == (360.0, 0.0)
        with pytest.raises(ValueError, match="one length"):
            plot.plot_sky_map(profile.ra, profile.dec[:5], profile.loglike)
        with pytest.raises(ValueError, match="projection"):
            plot.plot_sky_map(profile.ra, profile.dec, profile.loglike, projection="aitoff")
    finally:
        plt.close("all")
