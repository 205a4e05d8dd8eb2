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

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HIGHLIGHT = "tab:blue"
DIMMED = "lightgray"


def _new_axes(ax, height: float):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4, max(2.5, min(height, 40.0))), layout="constrained")
    return fig, fig.add_subplot()


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
    from mixmio._validate import check_bool, check_int

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
    left_out = n_all - len(rows)
    y = np.arange(len(rows))
    fig, ax = _new_axes(ax, 1.0 + 0.22 * len(rows))
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis"]
    norm = Normalize(0.0, 1.0)
    if boot is not None:
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
    freq = np.nan_to_num(np.asarray(freq, dtype=float), nan=0.0)
    names = [str(v) for v in names]
    if len(names) != freq.size:
        raise ValueError(f"{len(names)} names for {freq.size} frequencies")
    order = np.argsort(-freq, kind="stable")
    fig, ax = _new_axes(ax, 1.0 + 0.2 * len(order))
    y = np.arange(len(order))[::-1]
    handles = []
    if highlight is None:
        colors = ["tab:blue"] * len(order)
    else:
        hl = np.asarray(highlight, dtype=bool)
        if hl.shape != freq.shape:
            raise ValueError(f"highlight has {hl.size} entries for {freq.size} frequencies")
        colors = [HIGHLIGHT if hl[i] else DIMMED for i in order]
        from matplotlib.patches import Patch

        handles = [Patch(color=HIGHLIGHT, label=highlight_labels[0]),
                   Patch(color=DIMMED, label=highlight_labels[1])]
    ax.barh(y, freq[order], color=colors)
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
    from .report import check_frequency

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


def plot_clusters(fit, x: str | None = None, ax: Axes | None = None) -> Figure:
    """Scatter of a clusterwise regression's response against the design column ``x``, one
    collection per non-empty cluster (colour ``C<k>``), outliers as black crosses (their own
    collection), and each cluster's fitted line ``y = b_x * x + c_k`` over the range of
    ``x``: ``c_k`` is the cluster's line at its members' means of the other columns (and
    offset), so with one covariate besides the intercept (and no offset) it is the fitted
    line itself.  See :meth:`mixmio.clr.MioClrResult.plot`."""
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
    labels = np.asarray(fit.solution.info["labels"])
    coef = fit.coef.to_numpy(dtype=float)
    xv = X[:, j]
    grid = np.array([xv.min(), xv.max()])
    fig, ax = _new_axes(ax, 4.8)
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
