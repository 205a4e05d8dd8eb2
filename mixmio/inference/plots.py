"""Plots (matplotlib).

Every function returns the :class:`matplotlib.figure.Figure` it drew on (the figure of ``ax``
when an axes is given).  New figures are created through pyplot, so they show in Jupyter
(``fit.plot_effects();``) and with ``plt.show()`` as any pyplot figure does; close them with
``plt.close(fig)`` in loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio.results._methods import register
from mixmio.results.plots import new_axes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HIGHLIGHT = "tab:blue"
DIMMED = "lightgray"


#: plot_effects shows every cluster up to this many; above it, the selected ones by default
MANY_CLUSTERS = 60


def _term_rows(table: pd.DataFrame, term: str | None, labels: list[str]) -> pd.DataFrame:
    """Rows of one random-effect column (cap label like ``1|Subject``; default the first)."""
    if term is None:
        term = labels[0]
    if term not in labels:
        raise ValueError(f"term must be one of the random-effect columns {labels}, "
                         f"got {term!r}")
    return table[table["label"] == term], term


def _effect_rows(fit, term, boot, top, selected_only) -> tuple:
    """The clusters a caterpillar plot shows, sorted by estimate (with the bootstrap's
    interval and selection frequency): ``(rows, term, clusters of the term, all their
    estimates, bootstrap or None)``."""
    from mixmio._checks import check_bool, check_int

    check_int("top", top, lo=1, none_ok=True)
    if selected_only is not None:
        check_bool("selected_only", selected_only)
    if boot is None:
        boot = getattr(fit, "bootstrap_result", None)
    zc = fit.design.z_columns
    p = fit.problem.p
    base = pd.DataFrame({"level": zc["level"].astype(str).to_numpy(),
                         "label": zc["label"].to_numpy(),
                         "estimate": np.asarray(fit.w)[p:]})
    if boot is not None:
        from mixmio.results.lmer import check_boot_of

        check_boot_of(fit, boot)
        t = boot.table.iloc[p:].reset_index(drop=True)
        base["lower"] = t["lower"].to_numpy()
        base["upper"] = t["upper"].to_numpy()
        base["freq"] = t["selection_frequency"].to_numpy()
    rows, term = _term_rows(base, term, fit.design.column_labels)
    n_all = len(rows)
    if selected_only is None:
        selected_only = n_all > MANY_CLUSTERS and top is None
    est_all = rows["estimate"].to_numpy()
    if selected_only:
        keep = est_all != 0
        if boot is not None:  # clusters some replicates select stay in view
            keep |= np.nan_to_num(rows["freq"].to_numpy(), nan=0.0) > 0
        rows = rows[keep]
    if top is not None and len(rows) > top:
        rows = rows.iloc[np.argsort(-np.abs(rows["estimate"].to_numpy()), kind="stable")[:top]]
    rows = rows.iloc[np.argsort(rows["estimate"].to_numpy(), kind="stable")]
    return rows, term, n_all, est_all, boot


def _draw_intervals(fig, ax, rows: pd.DataFrame, y: np.ndarray, boot, term: str) -> None:
    """The bootstrap intervals and estimates coloured by selection frequency."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis"]
    norm = Normalize(0.0, 1.0)
    freq = np.nan_to_num(rows["freq"].to_numpy(), nan=0.0)
    colors = cmap(norm(freq))
    lo, hi = rows["lower"].to_numpy(), rows["upper"].to_numpy()
    est = rows["estimate"].to_numpy()
    for i in range(len(rows)):
        if np.isfinite(lo[i]) and np.isfinite(hi[i]):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color=colors[i], lw=1.5)
    ax.scatter(est, y, c=colors, s=18, zorder=3)
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label="bootstrap selection frequency")
    ax.set_title(f"{term}: estimates with {100 * boot.level:.3g}% {boot.ci} intervals "
                 f"({boot.scheme} bootstrap)", fontsize=9)


@register("plot_effects")
def plot_effects(fit, term: str | None = None, boot=None, ax=None, *, top: int | None = None,
                 selected_only: bool | None = None):
    """Caterpillar plot of one random-effect column's cluster effects.

    With a bootstrap (``boot``, else the one attached to ``fit``) each effect gets its bootstrap
    interval and is coloured by its selection frequency; without, selected effects are dark and
    unselected ones light.  ``top``: only the ``top`` largest |effects|; ``selected_only``:
    only the selected clusters (default: True when the column has more than
    ``MANY_CLUSTERS`` clusters, so 3,000 clusters give a readable plot); the clusters left out
    are counted in the title.  The y axis is labelled by the grouping factor.
    """
    rows, term, n_all, est_all, boot = _effect_rows(fit, term, boot, top, selected_only)
    left_out = n_all - len(rows)
    y = np.arange(len(rows))
    fig, ax = new_axes(ax, 1.0 + 0.22 * len(rows))
    if boot is not None:
        _draw_intervals(fig, ax, rows, y, boot, term)
    else:
        est = rows["estimate"].to_numpy()
        sel = est != 0
        ax.scatter(est, y, c=np.where(sel, "tab:blue", "lightgray"), s=18, zorder=3)
        ax.set_title(f"{term}: estimates (blue: selected)", fontsize=9)
    ax.axvline(0.0, color="gray", lw=0.8, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels(rows["level"].to_numpy(), fontsize=7 if len(rows) > 30 else 9)
    ax.set_xlabel(f"cluster effect ({term})")
    group = term.split("|", 1)[-1]
    ax.set_ylabel(group)
    if left_out:
        zeros = int(np.sum(est_all == 0)) - int(np.sum(rows["estimate"].to_numpy() == 0))
        ax.set_title(ax.get_title() + f"\n{left_out} of {n_all} {group} levels not shown"
                     + (f" ({zeros} of them at exactly 0)" if zeros else ""), fontsize=9)
    return fig


def frequency_bars(names: Sequence[str], freq: np.ndarray | Sequence[float], ax: Axes | None = None,
                   threshold: float | None = None, title: str = "",
                   highlight: np.ndarray | Sequence[bool] | None = None,
                   highlight_labels: tuple[str, str] = ("selected", "not selected")) -> Figure:
    """Horizontal bars of selection frequencies, most frequent on top (stable order on ties).

    ``names`` label the bars; missing frequencies (NaN) are drawn as 0.  ``threshold``: a
    dashed red line.  ``highlight``: a boolean per bar; True bars are ``tab:blue``, False ones
    ``lightgray`` (with a legend named by ``highlight_labels``); without it every bar is
    ``tab:blue``.  Returns the Figure (of ``ax`` when one is given).

    Examples
    --------
    >>> fig = frequency_bars(["a", "b", "c"], [0.2, 0.9, 0.5], threshold=0.5,
    ...                      highlight=[False, True, True])
    >>> ax = fig.axes[0]
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['b', 'c', 'a']
    >>> [float(b.get_width()) for b in ax.patches]
    [0.9, 0.5, 0.2]
    """
    values = np.nan_to_num(np.asarray(freq, dtype=float), nan=0.0)
    names = [str(v) for v in names]
    if len(names) != values.size:
        raise ValueError(f"{len(names)} names for {values.size} frequencies")
    order = np.argsort(-values, kind="stable")
    fig, ax = new_axes(ax, 1.0 + 0.2 * len(order))
    y = np.arange(len(order))[::-1]
    handles: list = []  # Patch and Line2D artists
    if highlight is None:
        colors = ["tab:blue"] * len(order)
    else:
        hl = np.asarray(highlight, dtype=bool)
        if hl.shape != values.shape:
            raise ValueError(f"highlight has {hl.size} entries for {values.size} frequencies")
        colors = [HIGHLIGHT if hl[i] else DIMMED for i in order]
        from matplotlib.patches import Patch

        handles = [Patch(color=HIGHLIGHT, label=highlight_labels[0]),
                   Patch(color=DIMMED, label=highlight_labels[1])]
    ax.barh(y, values[order], color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels([names[i] for i in order], fontsize=7 if len(order) > 30 else 9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("selection frequency")
    if threshold is not None:
        handles.append(ax.axvline(threshold, color="tab:red", lw=1, ls="--",
                                  label=f"threshold {threshold:g}"))
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_frequencies(table: pd.DataFrame, column: str, ax: Axes | None = None,
                     threshold: float | None = None, title: str = "") -> Figure:
    """Horizontal bars of ``table[column]`` per candidate, sorted, labelled term/level."""
    names = [(f"{g} {lv}" if g else str(term)) + (f" ({term})" if g else "")
             for g, lv, term in zip(table["group"], table["level"], table["term"],
                                    strict=True)]
    return frequency_bars(names, table[column].to_numpy(dtype=float), ax=ax,
                          threshold=threshold, title=title)


def plot_selection(boot, ax: Axes | None = None) -> Figure:
    """Bootstrap selection frequency of every cluster effect (and capped fixed effect)."""
    t = boot.table
    keep = t["kind"] == "random"
    if boot.options.get("k_fixed") is not None:
        keep |= (t["kind"] == "fixed") & (t["term"] != "Intercept")
    return plot_frequencies(t[keep], "selection_frequency", ax=ax,
                            title=f"Selection frequency, {boot.scheme} bootstrap, "
                                  f"{boot.n_ok} replicates")


def plot_subset_selection(boot, ax: Axes | None = None, min_frequency: float = 0.5) -> Figure:
    """Selection frequency of every candidate column of a best-subset bootstrap
    (:class:`~mixmio.inference.subset_bootstrap.SubsetBootstrapResult`), most frequent on
    top; the columns the full-data fit selected in blue, the others gray; a dashed line at
    ``min_frequency``.  Always-in columns (the intercept) are left out."""
    from mixmio.inference.report import check_frequency

    min_frequency = check_frequency(min_frequency)
    t = boot.table
    cand = t[~t["always_in"].to_numpy(dtype=bool)]
    return frequency_bars(
        list(cand.index), cand["selection_frequency"].to_numpy(dtype=float), ax=ax,
        threshold=min_frequency, highlight=cand["selected"].to_numpy(dtype=bool),
        highlight_labels=("selected on the full data", "not selected"),
        title=f"Selection frequency ({boot.model}, k = {boot.options.get('k')}), "
              f"{boot.scheme} bootstrap, {boot.n_ok} replicates")


OUTLIER_COLOR = "black"


@register("plot_clusters")
def plot_clusters(fit, x: str | None = None, ax: Axes | None = None) -> Figure:
    """Scatter of a clusterwise regression's response against the design column ``x``, one
    collection per non-empty cluster (colour ``C<k>``), outliers as black crosses (their own
    collection), and each cluster's fitted line ``y = b_x * x + c_k`` over the range of
    ``x``: ``c_k`` is the cluster's line at its members' means of the other columns (and
    offset), so with one covariate besides the intercept (and no offset) it is the fitted
    line itself.  See :meth:`mixmio.results.clr.MioClrResult.plot`."""
    cols = [str(c) for c in fit.design.X.columns]
    covariates = [c for c in cols if c != "Intercept"]
    if x is None:
        if not covariates:
            raise ValueError(f"the model has no covariate to plot against (columns {cols})")
        x = covariates[0]
    if x not in covariates:
        raise ValueError(f"x must be one of the design's non-intercept columns {covariates}, "
                         f"got {x!r}")
    j = cols.index(x)
    X = np.asarray(fit.problem.X, dtype=float)
    y = np.asarray(fit.design.y, dtype=float)
    off = np.asarray(fit.design.offset, dtype=float)
    labels = np.asarray(fit.solution.labels)
    coef = fit.coef.to_numpy(dtype=float)
    xv = X[:, j]
    grid = np.array([xv.min(), xv.max()])
    fig, ax = new_axes(ax, 4.8)
    for k in range(fit.n_clusters):
        mine = labels == k
        if not mine.any():
            continue
        color = f"C{k % 10}"
        ax.scatter(xv[mine], y[mine], s=20, color=color, label=f"cluster {k} (n={mine.sum()})")
        b = coef[k]
        rest = np.delete(X[mine].mean(axis=0) * b, j).sum() + off[mine].mean()
        ax.plot(grid, rest + b[j] * grid, color=color, lw=1.5)
    out = labels < 0
    if out.any():
        ax.scatter(xv[out], y[out], s=30, marker="x", color=OUTLIER_COLOR,
                   label=f"outlier (n={out.sum()})")
    ax.set_xlabel(x)
    ax.set_ylabel(fit.design.spec.response)
    others = [c for c in covariates if c != x] + (["the offset"] if fit.design.spec.offsets
                                                  else [])
    ax.set_title(f"mio_clr, {fit.n_clusters} clusters: {fit.formula}"
                 + (f"\nlines at the cluster means of {', '.join(others)}" if others else ""),
                 fontsize=9)
    ax.legend(fontsize=8)
    return fig


#: the funnel plot's control limits: two-sided coverage (Spiegelhalter 2005: 95% and 99.8%)
FUNNEL_LEVELS = (0.95, 0.998)
#: longest level label drawn next to a flagged unit in a funnel plot
FUNNEL_LABEL_CHARS = 28


def _intercept_block(fit, term: str | None):
    """The random-intercept block of ``term`` (a grouping factor or ``1|group``; default the
    first block with an intercept column)."""
    blocks = [b for b in fit.design.blocks if "Intercept" in b.columns]
    if term is not None:
        blocks = [b for b in blocks if term in (b.group, f"1|{b.group}", b.label)]
    if not blocks:
        have = [b.group for b in fit.design.blocks if "Intercept" in b.columns]
        raise ValueError("a funnel plot needs a random intercept term"
                         + (f" for {term!r}; the model has one for {have}" if term else ""))
    b = blocks[0]
    col = b.columns.index("Intercept")
    block = np.asarray(fit.w)[fit.problem.p:][b.z_slice]  # column-major: a column's K levels
    return b, block.reshape(b.q, b.n_levels)[col]


def _population_eta(fit) -> np.ndarray:
    """Linear predictor of the population model (the fixed effects and offset alone, refitted
    by maximum likelihood without any cluster effect: k = 0), by damped Newton."""
    from mixmio.problem import family as fam

    pr = fit.problem
    X = np.asarray(pr.X, dtype=float)
    off = np.asarray(pr.offset, dtype=float)
    y, w = np.asarray(pr.y, dtype=float), np.asarray(pr.weights, dtype=float)
    beta = np.zeros(X.shape[1])
    if X.shape[1] == 0:
        return off

    def total(b):
        return float(np.sum(fam.loss(pr.family, off + X @ b, y, w, pr.sat)))

    f = total(beta)
    for _ in range(100):
        g, h = fam.derivatives(pr.family, off + X @ beta, y, w)
        grad = X.T @ g
        H = X.T @ (X * h[:, None]) + 1e-10 * np.eye(X.shape[1])
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-10:
            f_new = total(beta - t * step)
            if f_new <= f:
                break
            t /= 2
        beta, f_old, f = beta - t * step, f, min(f, f_new)
        if abs(f_old - f) <= 1e-12 * max(1.0, f) or t <= 1e-10:
            break
    return off + X @ beta


def _count_limits(expected: np.ndarray, q: float, n_over_e: float | None) -> np.ndarray:
    """Ratio O/E at quantile ``q`` of the observed count given its expectation (Poisson, or
    binomial with ``n = expected * n_over_e`` trials), interpolated between integers as in
    Spiegelhalter (2005), so the limits are smooth in the expectation."""
    from scipy import stats

    e = np.asarray(expected, dtype=float)
    if n_over_e is None:
        dist = stats.poisson(e)
    else:
        n = np.maximum(np.round(e * n_over_e), 1.0)
        dist = stats.binom(n, np.clip(e / n, 0.0, 1.0))
    r = dist.ppf(q)
    cdf_r, cdf_below = dist.cdf(r), dist.cdf(r - 1)
    mass = np.where(cdf_r - cdf_below > 0, cdf_r - cdf_below, 1.0)
    alpha = np.clip((cdf_r - q) / mass, 0.0, 1.0)
    return np.maximum(r - alpha, 0.0) / e


def _label_flagged(ax, x, y, names, flagged, colors):
    """Level names next to the flagged points, staggered in height (left to right) so that
    neighbours on one row (e.g. several zero counts) stay legible."""
    idx = np.flatnonzero(flagged)
    for j, i in enumerate(idx[np.argsort(x[idx], kind="stable")]):
        name = str(names[i])
        if len(name) > FUNNEL_LABEL_CHARS:
            name = name[: FUNNEL_LABEL_CHARS - 1] + "…"
        ax.annotate(name, (x[i], y[i]), xytext=(4, 3 + 9 * (j % 3)), textcoords="offset points",
                    fontsize=7, color=colors[i])


def _count_funnel(ax, fit, family: str, codes, K: int, levels) -> tuple:
    """A GLMM funnel's points (expected count, observed / expected per cluster) under the
    population model, with its exact control limits drawn; ``(x, y, centre)``."""
    from mixmio.problem import family as fam

    pr = fit.problem
    mu0 = fam.mean(family, _population_eta(fit))
    w, y = np.asarray(pr.weights, float), np.asarray(pr.y, float)
    obs_rows = y if family == "binomial" else w * y
    x = np.bincount(codes, weights=w * mu0, minlength=K)  # expected under k = 0
    obs = np.bincount(codes, weights=obs_rows, minlength=K)
    with np.errstate(divide="ignore", invalid="ignore"):
        yv = np.where(x > 0, obs / x, np.nan)
    n_over_e = None
    if family == "binomial":
        n_over_e = float(np.sum(w) / max(np.sum(x), 1e-300))
    grid = np.geomspace(max(np.nanmin(x[x > 0]) * 0.8, 1e-3), np.nanmax(x) * 1.2, 200)
    for k, lev in enumerate(sorted(levels)):
        lo = _count_limits(grid, (1 - lev) / 2, n_over_e)
        hi = _count_limits(grid, (1 + lev) / 2, n_over_e)
        ls = "--" if k == 0 else ":"
        ax.plot(grid, hi, color="gray", lw=1, ls=ls, label=f"{100 * lev:g}% limits")
        ax.plot(grid, lo, color="gray", lw=1, ls=ls)
    ax.set_xscale("log")
    return x, yv, 1.0


def _residual_funnel(ax, fit, gamma: np.ndarray, codes, K: int, levels) -> tuple:
    """A linear mixed model's funnel points (cluster size, mean residual for the intercept)
    with the limits ``0 +/- z sigma / sqrt(n)`` drawn; ``(x, y, centre)``."""
    from scipy.stats import norm

    # what the intercepts are left to explain: y less the fit's fixed part, offset and
    # every other cluster effect (a subject's slope effect is not an intercept outlier)
    resid = np.asarray(fit.design.y, float) - np.asarray(fit.fitted, float) + gamma[codes]
    x = np.bincount(codes, minlength=K).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        yv = np.bincount(codes, weights=resid, minlength=K) / x
    grid = np.linspace(max(x[x > 0].min() * 0.8, 0.5), x.max() * 1.2, 200)
    for k, lev in enumerate(sorted(levels)):
        half = norm.ppf((1 + lev) / 2) * fit.sigma / np.sqrt(grid)
        ls = "--" if k == 0 else ":"
        ax.plot(grid, half, color="gray", lw=1, ls=ls, label=f"{100 * lev:g}% limits")
        ax.plot(grid, -half, color="gray", lw=1, ls=ls)
    return x, yv, 0.0


@register("plot_funnel")
def plot_funnel(fit, term: str | None = None, ax: Axes | None = None, *,
                levels: Sequence[float] = FUNNEL_LEVELS, label: bool = True) -> Figure:
    """Funnel plot of the clusters of a random-intercept term, with the selected ones marked.

    A ``mio_glmer`` fit (Poisson or binomial): each cluster's observed / expected ratio
    against its expected count, both under the *population model* (the fixed effects and the
    offset refitted without cluster effects, k = 0; for ``y ~ offset(log(predicted)) + (1 |
    hospital)`` that is the intercept-only model), with that model's control limits at
    ``levels`` (default 95% and 99.8%): exact Poisson (or binomial, at the overall rate)
    quantiles of the observed count, interpolated (Spiegelhalter 2005).  A ``mio_lmer`` fit:
    each cluster's mean residual ``y - X beta - offset - (its other cluster effects)``, i.e.
    what its intercept is left to explain, against its size, with limits
    ``0 +/- z sigma / sqrt(n)`` (``sigma`` of the fit).

    Selected clusters are drawn in red (effect > 0) or blue (< 0), labelled by level when
    ``label``; the rest are gray.  The y axis names the grouping factor.  Returns the Figure
    (created through pyplot unless ``ax`` is given).
    """
    levels = tuple(float(v) for v in levels)
    if not levels or any(not 0 < v < 1 for v in levels):
        raise ValueError(f"levels must be coverages in (0, 1), got {levels}")
    b, gamma = _intercept_block(fit, term)
    codes, K = np.asarray(b.codes), b.n_levels
    family = getattr(fit, "family", "gaussian")
    fig, ax = new_axes(ax, 4.8)
    if family in ("poisson", "binomial"):
        x, yv, centre = _count_funnel(ax, fit, family, codes, K, levels)
        ax.set_xlabel("expected count under the population model (k = 0)")
        ylab = f"observed / expected, per {b.group}"
        what = f"mio_glmer ({family}) funnel"
    else:
        x, yv, centre = _residual_funnel(ax, fit, gamma, codes, K, levels)
        ax.set_xlabel(f"rows per {b.group}")
        ylab = f"mean residual for the intercept, per {b.group}"
        what = "mio_lmer funnel"
    ax.axhline(centre, color="black", lw=0.8)
    ax.margins(y=0.12)  # room for the labels of the extreme points
    sel = gamma != 0
    colors = np.where(gamma > 0, "tab:red", "tab:blue")
    ax.scatter(x[~sel], yv[~sel], s=14, color=DIMMED, edgecolors="gray", linewidths=0.3,
               label=f"not selected ({int((~sel).sum())})", zorder=2)
    for sign, name in ((1, "above"), (-1, "below")):
        m = sel & (np.sign(gamma) == sign)
        if m.any():
            ax.scatter(x[m], yv[m], s=28, color=colors[m][0], zorder=3,
                       label=f"selected, {name} ({int(m.sum())})")
    if label:
        _label_flagged(ax, x, yv, b.levels, sel, colors)
    ax.set_ylabel(ylab)
    ax.set_title(f"{what}: {int(sel.sum())} of {K} {b.group} levels selected", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return fig
