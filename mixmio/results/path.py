"""PathResult: the fits of a path over the caps k (:func:`mixmio.lmer_path`,
:func:`mixmio.glmer_path`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio.errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PathResult", "selected_keys", "z_keys"]


def z_keys(design) -> tuple[np.ndarray, np.ndarray]:
    """(column label, level as text) of every Z column."""
    zc = design.z_columns
    return zc["label"].to_numpy(), zc["level"].astype(str).to_numpy()


def selected_keys(fit, keys=None) -> dict[tuple[str, str], float]:
    """{(column label, level): estimate} of the fit's non-zero cluster effects (``keys``:
    :func:`z_keys` of the fit's design, when already at hand)."""
    lab, lev = z_keys(fit.design) if keys is None else keys
    gam = np.asarray(fit.w)[fit.problem.p:]
    nz = np.flatnonzero(gam != 0)
    return {(str(lab[j]), str(lev[j])): float(gam[j]) for j in nz}


@dataclass(frozen=True, eq=False)
class PathResult:
    """The fits of a path over caps k: ``table``, ``fits`` (keyed by k), ``ranking()``,
    ``audit_budget()``, ``plot()``, ``plot_audit()``.

    ``table`` has one row per cap: ``k``, ``objective``, ``best_bound``, ``gap``, ``status``,
    ``time`` (seconds of that point's solve), ``n_selected`` and the clusters ``entered`` and
    ``left`` since the previous cap (labelled ``level``, or ``column: level`` with several
    random-effect columns).

    >>> import mixmio
    >>> path = mixmio.lmer_path("Reaction ~ Days + (1 | Subject)",
    ...                         mixmio.datasets.load("sleepstudy"), k=[0, 2, 4])
    >>> path.table[["k", "status", "n_selected"]]
       k   status  n_selected
    0  0  optimal           0
    1  2  optimal           2
    2  4  optimal           4
    """

    formula: str
    fits: dict = field(repr=False)
    caps: dict = field(repr=False)  # key -> {column label: cap}
    table: pd.DataFrame = field(repr=False)

    @property
    def k(self) -> list:
        """The caps of the path, in order."""
        return list(self.fits)

    @property
    def labels(self) -> list[str]:
        """The random-effect column labels (``1|school``, ...)."""
        return next(iter(self.fits.values())).design.column_labels

    def ranking(self, term: str | None = None) -> pd.DataFrame:
        """Clusters in order of first entry along the path (ties within a step: larger
        |estimate| first), with the cap and the estimate at entry.

        ``term``: one random-effect column label (default: every column).  Columns: ``rank``,
        ``term`` (the column label), ``level``, ``k_entry``, ``estimate_at_entry``, and
        ``selected_at_end`` (still selected at the largest cap).

        >>> import mixmio
        >>> path = mixmio.lmer_path("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"), k=[1, 3])
        >>> path.ranking()[["rank", "level", "k_entry"]]
           rank level  k_entry
        0     1   309        1
        1     2   310        3
        2     3   337        3
        """
        if term is not None and term not in self.labels:
            raise ArgumentError(f"term must be one of the random-effect columns {self.labels}, "
                                f"got {term!r}")
        rows, seen = [], set()
        last = selected_keys(list(self.fits.values())[-1])
        for step, (key, fit) in enumerate(self.fits.items()):
            new = [(kk, est) for kk, est in selected_keys(fit).items()
                   if kk not in seen and (term is None or kk[0] == term)]
            new.sort(key=lambda t: -abs(t[1]))
            for kk, est in new:
                seen.add(kk)
                rows.append({"term": kk[0], "level": kk[1], "k_entry": key,
                             "estimate_at_entry": est, "selected_at_end": kk in last,
                             "_step": step})
        out = pd.DataFrame(rows, columns=["term", "level", "k_entry", "estimate_at_entry",
                                          "selected_at_end", "_step"])
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        return out.drop(columns="_step")

    def audit_budget(self, term: str | None = None) -> pd.DataFrame:
        """Share of the total squared deviation captured against the number of clusters
        reviewed, reviewing them in :meth:`ranking` order.

        The deviations are those of the path's largest cap (the least sparse fit: with the
        default grid k = K, every cluster free); ``share`` is the cumulative sum of their
        squares over the clusters reviewed, divided by the sum over all clusters;
        ``uniform`` is n_reviewed / K, the expected share when clusters are reviewed in
        random order and deviations are equal.  ``term``: one random-effect column (default
        the first).

        >>> import mixmio
        >>> path = mixmio.lmer_path("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"))
        >>> audit = path.audit_budget()
        >>> round(float(audit["share"].iloc[-1]), 12)
        1.0
        """
        term = self.labels[0] if term is None else term
        rk = self.ranking(term)
        ref = list(self.fits.values())[-1]
        zc = ref.design.z_columns
        gam = np.asarray(ref.w)[ref.problem.p:]
        on = zc["label"].to_numpy() == term
        sq = pd.Series(gam[on] ** 2, index=zc["level"].astype(str).to_numpy()[on])
        total = float(sq.sum())
        vals = sq.reindex(rk["level"]).fillna(0.0).to_numpy()
        K = int(on.sum())
        share = np.cumsum(vals) / total if total > 0 else np.zeros(vals.size)
        return pd.DataFrame({"n_reviewed": np.arange(1, len(rk) + 1), "level": rk["level"],
                             "share": share, "uniform": np.arange(1, len(rk) + 1) / K})

    def effects(self, term: str | None = None) -> pd.DataFrame:
        """Cluster effects along the path: one row per level, one column per cap.

        >>> import mixmio
        >>> path = mixmio.lmer_path("Reaction ~ Days + (1 | Subject)",
        ...                         mixmio.datasets.load("sleepstudy"), k=[0, 3])
        >>> int((path.effects() != 0).sum().iloc[-1])
        3
        """
        term = self.labels[0] if term is None else term
        if term not in self.labels:
            raise ArgumentError(f"term must be one of the random-effect columns {self.labels}, "
                                f"got {term!r}")
        cols = {}
        for key, fit in self.fits.items():
            zc = fit.design.z_columns
            on = zc["label"].to_numpy() == term
            cols[key] = pd.Series(np.asarray(fit.w)[fit.problem.p:][on],
                                  index=zc["level"].astype(str).to_numpy()[on])
        return pd.DataFrame(cols)

    def plot(self, term: str | None = None, ax: Axes | None = None) -> Figure:
        """Effects against k (one line per cluster that is ever selected; the others stay
        at 0).  Returns the matplotlib Figure."""
        from mixmio.results.plots import new_axes

        eff = self.effects(term)
        x = np.array([sum(self.caps[key].values()) for key in eff.columns], dtype=float)
        fig, ax = new_axes(ax, 4.0)
        ever = eff.index[(eff != 0).any(axis=1)]
        for lev in ever:
            ax.plot(x, eff.loc[lev].to_numpy(), lw=0.8)
        ax.axhline(0.0, color="gray", lw=0.5)
        ax.set_xlabel("k (cap on the number of non-zero cluster effects)")
        ax.set_ylabel(f"effect ({term or self.labels[0]})")
        group = (term or self.labels[0]).split("|", 1)[-1].strip()
        ax.set_title(f"{len(ever)} of {len(eff)} {group} levels enter the path")
        return fig

    def plot_audit(self, term: str | None = None, ax: Axes | None = None) -> Figure:
        """The audit-budget curve (:meth:`audit_budget`) against random order."""
        from mixmio.results.plots import new_axes

        a = self.audit_budget(term)
        fig, ax = new_axes(ax, 4.0)
        ax.step(np.r_[0, a["n_reviewed"]], np.r_[0, a["share"]], where="post",
                label="path ranking")
        ax.plot(np.r_[0, a["n_reviewed"]], np.r_[0, a["uniform"]], ls="--", color="gray",
                label="random order")
        ax.set_xlabel(f"{(term or self.labels[0]).split('|', 1)[-1]} levels reviewed (path order)")
        ax.set_ylabel("share of squared deviation captured")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right")
        return fig

    def __repr__(self) -> str:
        st = self.table["status"].value_counts().to_dict()
        return f"<PathResult {self.formula!r}: {len(self.fits)} caps, status {st}>"

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)
