"""Plots (matplotlib, object-oriented API only: safe under the Agg backend, no pyplot state).

Every function returns the :class:`matplotlib.figure.Figure` it drew on (the figure of ``ax``
when an axes is given).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _new_axes(ax, height: float):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, max(2.5, min(height, 40.0))), layout="constrained")
    return fig, fig.add_subplot()


def _term_rows(table: pd.DataFrame, term: str | None, labels: list[str]) -> pd.DataFrame:
    """Rows of one random-effect column (cap label like ``1|Subject``; default the first)."""
    if term is None:
        term = labels[0]
    if term not in labels:
        raise ValueError(f"term must be one of the random-effect columns {labels}, "
                         f"got {term!r}")
    return table[table["label"] == term], term


def plot_effects(fit, term: str | None = None, boot=None, ax=None):
    """Caterpillar plot of one random-effect column's cluster effects.

    With a bootstrap (``boot``, else the one attached to ``fit``) each effect gets its bootstrap
    interval and is coloured by its selection frequency; without, selected effects are dark and
    unselected ones light.
    """
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
    rows = rows.iloc[np.argsort(rows["estimate"].to_numpy(), kind="stable")]
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
    ax.set_xlabel("cluster effect")
    return fig


def plot_frequencies(table: pd.DataFrame, column: str, ax=None, threshold: float | None = None,
                     title: str = ""):
    """Horizontal bars of ``table[column]`` per candidate, sorted, labelled term/level."""
    t = table.iloc[np.argsort(-table[column].fillna(0).to_numpy(), kind="stable")]
    names = [(f"{g} {lv}" if g else str(term)) + (f" ({term})" if g else "")
             for g, lv, term in zip(t["group"], t["level"], t["term"], strict=True)]
    fig, ax = _new_axes(ax, 1.0 + 0.2 * len(t))
    y = np.arange(len(t))[::-1]
    ax.barh(y, t[column].fillna(0).to_numpy(), color="tab:blue")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7 if len(t) > 30 else 9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("selection frequency")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", lw=1, ls="--", label=f"threshold {threshold:g}")
        ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_selection(boot, ax=None):
    """Bootstrap selection frequency of every cluster effect (and capped fixed effect)."""
    t = boot.table
    keep = t["kind"] == "random"
    if boot.options.get("k_fixed") is not None:
        keep |= (t["kind"] == "fixed") & (t["term"] != "Intercept")
    return plot_frequencies(t[keep], "selection_frequency", ax=ax,
                            title=f"Selection frequency, {boot.scheme} bootstrap, "
                                  f"{boot.n_ok} replicates")
