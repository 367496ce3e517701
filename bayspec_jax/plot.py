"""Plots for a fitted `Data` (matplotlib, optional extra ``bayspec_jax[plot]``)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import likelihood, views
from .data.data import Data
from .fold import Model

SPECTRUM_LABELS = {
    "phtspec": r"$N(E)$ [" + views.SPECTRUM_UNITS["phtspec"] + "]",
    "flxspec": r"$E\,N(E)$ [" + views.SPECTRUM_UNITS["flxspec"] + "]",
    "ergspec": r"$E^2 N(E)$ [" + views.SPECTRUM_UNITS["ergspec"] + "]",
}
"""Axis labels of the deconvolved spectra."""


def _pyplot(path):
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


RESIDUALS = ("pseudo", "sigma", "ratio")
"""The residual panels of `counts_spectrum`."""


def energy_axis(axis) -> None:
    """A log keV axis with plain-number tick labels at 1, 2, 5 per decade (0.5, 1, 2, 5, 10...)
    instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_xscale("log")
    axis.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())


def counts_spectrum(model: Model, params: Any, data: Data, path: str | None = None,
                    title: str | None = None, data_params: likelihood.DataParams = None,
                    residuals: str = "pseudo"):
    """Net count spectrum of each unit with the folded model, and residuals below.

    **Arguments:**

    - `model`, `params`: the photon model and its parameter vector.
    - `data`: the `Data` (its fitted groups are shown).
    - `path`: write the figure there (PNG, PDF... by extension) when given.
    - `data_params`: the data-layer parameters (``sf``, ``bf``, ``rf`` per unit) of the fit,
        e.g. ``problem.data_params(fit.best)`` with a free ``'rf@bgo'``: the model counts and
        the net spectrum use them.
    - `residuals`: ``"pseudo"`` (the statistic's ``sign * sqrt(-2 loglike)``), ``"sigma"``
        (``(data - model) / error``, with unit error bars) or ``"ratio"`` (``data / model``,
        with the data's errors over the model).

    For a fit: ``counts_spectrum(problem.model, problem.full(fit.best), problem.data,
    data_params=problem.data_params(fit.best))``.

    **Returns:** the matplotlib `Figure`.
    """
    if residuals not in RESIDUALS:
        raise ValueError(f"residuals must be one of {RESIDUALS}, got {residuals!r}")
    plt = _pyplot(path)
    rates = views.conv_ctsrate(model, params, data, data_params)
    if residuals == "pseudo":
        panel = likelihood.pseudo_residual(model, params, data, data_params)
    elif residuals == "sigma":
        panel = views.residual(model, params, data, data_params)
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6),
                                         gridspec_kw={"height_ratios": [3, 1], "hspace": 0})
    lowest = np.inf
    for i, ((name, unit), rate) in enumerate(zip(data.items(), rates)):
        color = f"C{i}"
        chbin = np.asarray(unit.rsp_chbin, dtype=float)
        centre = np.sqrt(chbin[:, 0] * chbin[:, 1])
        half = [centre - chbin[:, 0], chbin[:, 1] - centre]
        width = chbin[:, 1] - chbin[:, 0]
        spectrum = np.asarray(views._net(unit, i, data_params, False, True, False), dtype=float)
        error = np.asarray(views._net(unit, i, data_params, False, True, True), dtype=float)
        model_spectrum = np.asarray(rate, dtype=float) / width
        top.errorbar(centre, spectrum, xerr=half, yerr=error,
                     fmt="none", lw=1, color=color, label=f"{name} ({unit.stat})")
        top.hlines(model_spectrum, chbin[:, 0], chbin[:, 1], color="k", lw=1.2,
                   label="model" if i == 0 else None)
        if residuals == "ratio":
            with np.errstate(divide="ignore", invalid="ignore"):
                value, yerr = spectrum / model_spectrum, error / model_spectrum
        else:
            value = np.asarray(panel[i], dtype=float)
            yerr = 1.0 if residuals == "sigma" else None
        bottom.errorbar(centre, value, xerr=half, yerr=yerr, fmt="none", color=color, lw=1)
        positive = spectrum[spectrum > 0]
        if positive.size:
            lowest = min(lowest, float(positive.min()))
    bottom.axhline(1.0 if residuals == "ratio" else 0.0, color="k", lw=0.8)
    energy_axis(top)
    top.set_yscale("log")
    if np.isfinite(lowest):
        top.set_ylim(bottom=0.3 * lowest)
    top.set_ylabel("counts / s / keV")
    bottom.set_ylabel({"pseudo": "pseudo-residual", "sigma": r"residual [$\sigma$]",
                       "ratio": "data / model"}[residuals])
    bottom.set_xlabel("energy [keV]")
    return _finish(figure, top, title, path)


def _finish(figure, top, title: str | None, path: str | None):
    """Legend and title on the top panel; write the figure to `path` when given."""
    top.legend(frameon=False)
    if title:
        top.set_title(title)
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure


def deconvolved_spectrum(model: Model, params: Any, data: Data, kind: str = "ergspec",
                         path: str | None = None, rebinned: bool = False,
                         data_params: likelihood.DataParams = None, title: str | None = None,
                         n_energies: int = 400):
    """Deconvolved (unfolded) spectrum of each unit with the model, and sigma residuals below.

    The points are `views.deconvolve` at each group's centre, with the group's energy range as
    x error and the deconvolved error as y error; groups whose net spectrum is not positive are
    shown as 2-sigma upper limits where that is positive. The y range follows the positive
    points (upper limits and the model may run off it). The model is drawn on `n_energies`
    log-spaced energies over all groups. The residuals are `views.residual` (the same in count
    and deconvolved space).

    **Arguments:**

    - `model`, `params`: the photon model and its parameters.
    - `data`: the `Data`.
    - `kind`: ``"ergspec"`` (nuFnu), ``"flxspec"`` or ``"phtspec"``.
    - `path`: write the figure there (PNG, PDF... by extension) when given.
    - `rebinned`: show each unit's rebinning grid instead of its fitted groups.
    - `data_params`: optional ``sf``, ``bf``, ``rf`` per unit (see `likelihood`).

    **Returns:** the matplotlib `Figure` (two axes: spectrum, residuals).
    """
    if kind not in views.SPECTRUM_KINDS:
        raise ValueError(f"kind must be one of {list(views.SPECTRUM_KINDS)}, got {kind!r}")
    if isinstance(n_energies, bool) or not isinstance(n_energies, int) or n_energies < 2:
        raise ValueError(f"n_energies must be an integer >= 2, got {n_energies!r}")
    plt = _pyplot(path)
    values = views.deconvolve(model, params, data, kind, rebinned, False, data_params)
    errors = views.deconvolve(model, params, data, kind, rebinned, True, data_params)
    residuals = (views.re_residual if rebinned else views.residual)(model, params, data,
                                                                    data_params)
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6),
                                         gridspec_kw={"height_ratios": [3, 1], "hspace": 0})
    shown, low_edges, high_edges = [], [], []
    for i, ((name, unit), value, error, residual) in enumerate(
            zip(data.items(), values, errors, residuals)):
        color = f"C{i}"
        chbin = np.asarray(unit.rsp_re_chbin if rebinned else unit.rsp_chbin, dtype=float)
        centre = chbin.mean(axis=1)
        half = [centre - chbin[:, 0], chbin[:, 1] - centre]
        value, error = np.asarray(value, dtype=float), np.asarray(error, dtype=float)
        detected = np.isfinite(value) & (value > 0)
        top.errorbar(centre[detected], value[detected], yerr=error[detected],
                     xerr=[h[detected] for h in half], fmt="none", lw=1, color=color,
                     label=f"{name} ({unit.stat})")
        limit = value + 2.0 * error
        upper = ~detected & np.isfinite(limit) & (limit > 0)
        if upper.any():
            top.errorbar(centre[upper], limit[upper], yerr=0.4 * limit[upper],
                         xerr=[h[upper] for h in half], uplims=True, fmt="none", lw=1,
                         color=color, alpha=0.6)
        bottom.errorbar(centre, np.asarray(residual, dtype=float), yerr=1.0,
                        xerr=half, fmt="none", color=color, lw=1)
        shown.append(value[detected])
        low_edges.append(chbin[:, 0].min())
        high_edges.append(chbin[:, 1].max())
    energy = np.geomspace(min(low_edges), max(high_edges), n_energies)
    curve = np.asarray(views.model_spectrum(model, params, energy, kind), dtype=float)
    top.plot(energy, curve, color="k", lw=1.4, label="model")
    bottom.axhline(0.0, color="k", lw=0.8)
    energy_axis(top)
    top.set_yscale("log")
    points = np.concatenate(shown)
    points = points[np.isfinite(points) & (points > 0)]
    if points.size:  # the detections set the range: neither a steep model cutoff nor an upper
        # limit deconvolved there (both can reach 1e-30) may squash them
        top.set_ylim(0.5 * points.min(), 2.0 * points.max())
    top.set_xlim(min(low_edges) / 1.1, max(high_edges) * 1.1)
    top.set_ylabel(SPECTRUM_LABELS[kind])
    bottom.set_ylabel(r"residual [$\sigma$]")
    bottom.set_xlabel("energy [keV]")
    limit = np.nanmax(np.abs(np.concatenate([np.asarray(r, dtype=float) for r in residuals])))
    bottom.set_ylim(-max(3.5, 1.1 * limit + 1), max(3.5, 1.1 * limit + 1))
    for axis in (top, bottom):
        axis.tick_params(which="both", direction="in", top=True, right=True)
    return _finish(figure, top, title, path)


def _flat_samples(samples: Any) -> tuple[list[str], np.ndarray]:
    if not isinstance(samples, Mapping) or not samples:
        raise ValueError("samples must be a non-empty dict {name: 1-d or (chain, draw) array}, "
                         f"got {type(samples).__name__}")
    names, columns = [], []
    for name, values in samples.items():
        values = np.asarray(values, dtype=float)
        if values.ndim not in (1, 2) or values.size < 2:
            raise ValueError(f"samples[{name!r}] must be a 1-d or (chain, draw) array with at "
                             f"least 2 draws, got shape {values.shape}")
        names.append(str(name))
        columns.append(values.ravel())
    sizes = {c.size for c in columns}
    if len(sizes) != 1:
        raise ValueError(f"samples must all have the same number of draws, got "
                         f"{dict(zip(names, (c.size for c in columns)))}")
    table = np.stack(columns, axis=1)
    finite = np.all(np.isfinite(table), axis=1)
    if finite.sum() < 2:
        raise ValueError("samples have fewer than 2 draws that are finite in every parameter")
    return names, table[finite]


def _truth_values(truths: Any, names: list[str]) -> list[float | None]:
    if truths is None:
        return [None] * len(names)
    if isinstance(truths, Mapping):
        unknown = sorted(set(map(str, truths)) - set(names))
        if unknown:
            raise ValueError(f"truths has unknown name(s) {unknown}; samples are {names}")
        return [None if truths.get(n) is None else float(truths[n]) for n in names]
    if isinstance(truths, (Sequence, np.ndarray)):
        if len(truths) != len(names):
            raise ValueError(f"truths must have one value per parameter ({len(names)}), got "
                             f"{len(truths)}")
        return [None if t is None else float(t) for t in truths]
    raise ValueError(f"truths must be None, a dict or a sequence, got {type(truths).__name__}")


def _smooth(histogram: np.ndarray) -> np.ndarray:
    """One pass of a 1-2-1 kernel along each axis (edges reflected)."""
    for axis in (0, 1):
        padded = np.concatenate([np.take(histogram, [0], axis), histogram,
                                 np.take(histogram, [-1], axis)], axis=axis)
        n = histogram.shape[axis]
        histogram = (np.take(padded, range(n), axis) + 2 * np.take(padded, range(1, n + 1), axis)
                     + np.take(padded, range(2, n + 2), axis)) / 4.0
    return histogram


def _mass_levels(histogram: np.ndarray, masses: Sequence[float]) -> list[float]:
    """Histogram values whose upper level sets hold the given fractions of the total."""
    ordered = np.sort(histogram.ravel())[::-1]
    cumulative = np.cumsum(ordered) / ordered.sum()
    return [float(ordered[min(np.searchsorted(cumulative, m), ordered.size - 1)])
            for m in masses]


def _summary(name: str, low: float, median: float, high: float) -> str:
    """``name = median^{+up}_{-down}`` with two significant digits on the smaller error."""
    spread = min(high - median, median - low)
    digits = 2 if not spread > 0 else max(0, 1 - int(np.floor(np.log10(spread))))
    return (f"{name} = {median:.{digits}f}$^{{+{high - median:.{digits}f}}}"
            f"_{{-{median - low:.{digits}f}}}$")


_TRUTH_STYLE = {"color": "C3", "lw": 1.0}


def _diagonal_panel(ax, x, name, bins, limits, truth) -> None:
    """Histogram of one parameter, its 16/50/84% quantiles (titled) and its truth."""
    ax.hist(x, bins=bins, range=limits, histtype="step", color="k", lw=1.0, density=True)
    low, median, high = np.quantile(x, [0.16, 0.5, 0.84])
    for q, style in ((low, "--"), (median, "-"), (high, "--")):
        ax.axvline(q, color="k", ls=style, lw=0.8)
    if truth is not None:
        ax.axvline(truth, **_TRUTH_STYLE)
    ax.set_title(_summary(name, low, median, high), fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(limits)


def _pair_panel(ax, x, y, bins, limits, masses, truth) -> None:
    """2-D histogram of two parameters, contours holding `masses` of the draws, truths."""
    histogram, xedges, yedges = np.histogram2d(x, y, bins=bins, range=list(limits))
    histogram = _smooth(histogram)
    ax.pcolormesh(xedges, yedges, histogram.T, cmap="Greys", shading="flat", rasterized=True)
    # the widest mass gives the lowest level; contour wants increasing levels
    levels = _mass_levels(histogram, masses)[::-1]
    if all(a < b for a, b in itertools.pairwise(levels)) and levels[-1] < histogram.max():
        ax.contour(0.5 * (xedges[1:] + xedges[:-1]), 0.5 * (yedges[1:] + yedges[:-1]),
                   histogram.T, levels=levels, colors="C0",
                   linewidths=np.linspace(0.8, 1.5, len(levels)))
    if truth[0] is not None:
        ax.axvline(truth[0], **_TRUTH_STYLE)
    if truth[1] is not None:
        ax.axhline(truth[1], **_TRUTH_STYLE)
    if truth[0] is not None and truth[1] is not None:
        ax.plot(*truth, "s", color="C3", ms=4)
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])


def corner(samples: Mapping[str, Any], truths: Any = None, path: str | None = None,
           bins: int = 30, masses: Sequence[float] = (0.68, 0.95), title: str | None = None):
    """A corner plot of posterior samples (matplotlib only).

    1-D histograms on the diagonal, with the median and the 16% and 84% quantiles (given in
    each title); below it, 2-D histograms of each pair with contours holding `masses` of the
    draws (68% and 95%). Upper-triangle panels are removed.

    **Arguments:**

    - `samples`: ``{name: draws}``, each 1-d or ``(chain, draw)`` (flattened); all the same
        size. Draws not finite in every parameter are dropped.
    - `truths`: `None`, ``{name: value}`` or one value per parameter (`None` skips one);
        drawn as lines.
    - `path`: write the figure there when given.
    - `bins`: histogram bins per parameter.

    **Returns:** the matplotlib `Figure` (``n (n + 1) / 2`` axes for `n` parameters).
    """
    names, table = _flat_samples(samples)
    truth = _truth_values(truths, names)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    masses = sorted(float(m) for m in masses)
    if not masses or not all(0 < m < 1 for m in masses):
        raise ValueError(f"masses must be fractions in (0, 1), got {masses!r}")
    plt = _pyplot(path)
    n = len(names)
    size = max(2.0, min(2.6, 9.0 / n))
    figure, axes = plt.subplots(n, n, figsize=(size * n + 0.8, size * n + 0.6), squeeze=False)
    ranges = []
    for column in table.T:
        low, high = np.quantile(column, [0.0005, 0.9995])
        if high <= low:
            low, high = low - 0.5, high + 0.5
        pad = 0.05 * (high - low)
        ranges.append((low - pad, high + pad))
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                figure.delaxes(ax)
                continue
            if i == j:
                _diagonal_panel(ax, table[:, i], names[i], bins, ranges[i], truth[i])
            else:
                _pair_panel(ax, table[:, j], table[:, i], bins, (ranges[j], ranges[i]), masses,
                            (truth[j], truth[i]))
            ax.tick_params(direction="in", labelsize=8)
            if i == n - 1:
                ax.set_xlabel(names[j])
                for label in ax.get_xticklabels():
                    label.set_rotation(45)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
            elif i != j:
                ax.set_yticklabels([])
    figure.subplots_adjust(wspace=0.06, hspace=0.06)
    if title:
        figure.suptitle(title)
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure


_SKY_MARKERS = ("*", "X", "P", "D", "s", "^")


def _sky_xy(ra: np.ndarray, dec: np.ndarray, mollweide: bool) -> tuple[np.ndarray, np.ndarray]:
    """Axis coordinates: Mollweide longitude ``-ra`` wrapped to [-pi, pi) and latitude [rad]
    (ra grows to the left, as on the sky); plain: ra and dec [deg] (the x axis is inverted)."""
    if mollweide:
        return np.radians(-(np.mod(ra + 180.0, 360.0) - 180.0)), np.radians(dec)
    return np.mod(ra, 360.0), dec


def _mollweide(longitude: np.ndarray, latitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Mollweide projection of longitudes and latitudes [rad] (any longitude)."""
    theta = np.array(latitude, dtype=float)
    target = np.pi * np.sin(latitude)
    for _ in range(30):  # Newton on 2 theta + sin(2 theta) = pi sin(latitude)
        slope = 2.0 + 2.0 * np.cos(2.0 * theta)
        step = np.where(slope > 1e-12, (2.0 * theta + np.sin(2.0 * theta) - target)
                        / np.where(slope > 1e-12, slope, 1.0), 0.0)
        theta = theta - step
    return 2.0 * np.sqrt(2.0) / np.pi * longitude * np.cos(theta), np.sqrt(2.0) * np.sin(theta)


def _sky_triangulation(ra: np.ndarray, dec: np.ndarray, mollweide: bool):
    """A triangulation of the sky points in the axes' coordinates, and which point each vertex
    is. The triangles are those of the points' Mollweide projection centred on the axes'
    centre (equal-area: well-spread points give well-shaped triangles, the poles included);
    points near the axes' ra seam are repeated one turn away, so that no gap is left there
    (the axes clip what lies beyond)."""
    from matplotlib.tri import Triangulation

    centre = 0.0 if mollweide else 180.0
    longitude = np.radians(np.mod(ra - centre + 180.0, 360.0) - 180.0)
    near = np.abs(longitude) > 0.6 * np.pi
    index = np.concatenate([np.arange(ra.size), np.flatnonzero(near)])
    longitude = np.concatenate([longitude,
                                longitude[near] - np.sign(longitude[near]) * 2.0 * np.pi])
    latitude = np.radians(dec[index])
    triangles = Triangulation(*_mollweide(longitude, latitude)).triangles  # Delaunay
    if mollweide:  # the axes' longitude grows to the right, ra to the left
        return Triangulation(-longitude, latitude, triangles), index
    return Triangulation(np.degrees(longitude) + centre, np.degrees(latitude), triangles), index


def plot_sky_map(ra: Any, dec: Any, loglike: Any, regions: Any = (0.68, 0.95),
                 true_position: tuple[float, float] | None = None,
                 best: tuple[float, float] | None = None, ax: Any = None, *,
                 markers: Mapping[str, tuple[float, float]] | None = None,
                 projection: str = "mollweide", vmin: float = -20.0, path: str | None = None,
                 title: str | None = None):
    """A localization map: the log-likelihood over the sky, its credible regions and positions.

    The colour is ``loglike - max`` (clipped below at `vmin`), filled between the points
    (`tricontourf` on a triangulation of them); the regions are drawn as lines, labelled with
    the posterior probability they hold (equal-area points, uniform prior: see
    `infer.credible_regions`). On the Mollweide projection ra grows to the left and is 0 at the
    centre; on the plain one the ra axis runs from 360 down to 0 deg.

    **Arguments:**

    - `ra`, `dec`: the positions [deg] ``(n,)`` (e.g. `infer.sky_grid`).
    - `loglike`: the log-likelihood at each ``(n,)`` (e.g. `infer.localization_map`'s).
    - `regions`: the probabilities of the regions to draw (default 68% and 95%), or boolean
        masks ``(region, n)`` (`infer.credible_regions`; labelled with the probability they
        hold); `None` draws none.
    - `true_position`: ``(ra, dec)`` [deg] of the known position, drawn as a star.
    - `best`: ``(ra, dec)`` [deg] of the best position, drawn as a cross.
    - `ax`: draw into these axes (a Mollweide axes, or plain axes for ra/dec in degrees);
        default a new figure with `projection` (``"mollweide"`` or ``"rectangular"``).
    - `markers`: more positions, ``{label: (ra, dec)}``.
    - `vmin`: the lowest ``loglike - max`` coloured.
    - `path`: write the figure there when given.

    **Returns:** the matplotlib `Figure`.
    """
    from .infer.localization import _own_probability, credible_regions

    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    loglike = np.asarray(loglike, dtype=float)
    if ra.ndim != 1 or ra.shape != dec.shape or ra.shape != loglike.shape or ra.size < 3:
        raise ValueError(f"ra, dec and loglike must be 1-d arrays of one length (at least 3), "
                         f"got shapes {ra.shape}, {dec.shape}, {loglike.shape}")
    finite = np.isfinite(loglike)
    if not finite.any():
        raise ValueError("loglike is nowhere finite")
    if projection not in ("mollweide", "rectangular"):
        raise ValueError(f"projection must be 'mollweide' or 'rectangular', got {projection!r}")
    levels: list[float | None] = []
    if regions is None:
        masks = np.zeros((0, ra.size), dtype=bool)
    elif np.asarray(regions).dtype == bool:
        masks = np.atleast_2d(np.asarray(regions))
        if masks.shape[1:] != ra.shape:
            raise ValueError(f"regions as masks must have shape (region, {ra.size}), got "
                             f"{masks.shape}")
        levels = [None] * masks.shape[0]
    else:
        levels = [float(level) for level in regions]
        masks = np.asarray(credible_regions(loglike, tuple(levels)))
    plt = _pyplot(path)
    if ax is None:
        figure = plt.figure(figsize=(9, 5))
        ax = figure.add_subplot(projection=None if projection == "rectangular" else projection)
    else:
        figure = ax.figure
    mollweide = ax.name == "mollweide"
    triangulation, index = _sky_triangulation(ra, dec, mollweide)
    relative = np.clip(np.where(finite, loglike - loglike[finite].max(), vmin), vmin, 0.0)
    filled = ax.tricontourf(triangulation, relative[index], levels=np.linspace(vmin, 0.0, 21),
                            cmap="viridis")
    figure.colorbar(filled, ax=ax, orientation="horizontal", shrink=0.6,
                    pad=0.06 if mollweide else 0.14,
                    label=r"$\log L - \log L_{\max}$")
    from matplotlib.lines import Line2D

    handles = []
    probability = np.asarray(_own_probability(loglike))  # as credible_regions weighs points
    styles = ("-", "--", ":", "-.")
    for k, mask in enumerate(masks):
        if mask.any() and not mask.all():
            ax.tricontour(triangulation, mask[index].astype(float), levels=[0.5], colors="k",
                          linewidths=1.3, linestyles=styles[k % len(styles)])
        held = probability[mask].sum() if levels[k] is None else levels[k]
        handles.append(Line2D([], [], color="k", ls=styles[k % len(styles)],
                              label=f"{100 * held:.0f}% region"))
    points = dict(markers or {})
    if true_position is not None:
        points = {"true position": true_position, **points}
    for k, (label, (p_ra, p_dec)) in enumerate(points.items()):
        px, py = _sky_xy(np.array([p_ra], dtype=float), np.array([p_dec], dtype=float),
                         mollweide)
        handles.append(ax.plot(px, py, _SKY_MARKERS[k % len(_SKY_MARKERS)],
                               ms=13 if k == 0 else 9, color=f"C{(k + 1) % 10}", mec="k",
                               mew=0.8, label=label, zorder=5 - 0.1 * k)[0])
    if best is not None:
        bx, by = _sky_xy(np.array([best[0]], dtype=float), np.array([best[1]], dtype=float),
                         mollweide)
        handles.append(ax.plot(bx, by, "+", ms=13, mew=2.0, color="r", label="best",
                               zorder=6)[0])
    if mollweide:
        ticks = np.arange(-150, 151, 30)
        ax.set_xticks(np.radians(ticks))
        ax.set_xticklabels([f"{(-t) % 360:.0f}°" for t in ticks], color="w", fontsize=8)
        ax.grid(True, color="0.8", lw=0.4, alpha=0.6)
    else:
        ax.set_xlim(360.0, 0.0)
        ax.set_ylim(-90.0, 90.0)
        ax.set_xlabel("ra [deg]")
        ax.set_ylabel("dec [deg]")
    if handles:
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8,
                  frameon=False)
    if title:
        ax.set_title(title, pad=18 if mollweide else 6)
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure
