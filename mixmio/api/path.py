"""A warm-started path of mio_lmer fits over the caps k."""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio.errors import ArgumentError, ArgumentTypeError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


#: the seed paper's sparsity fractions (share of the clusters allowed to deviate)
FRACTIONS = (0.0, 0.1, 0.2, 0.25, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.8, 0.9, 1.0)

#: the keyword arguments of mio_lmer a path (and a CV) passes through
LMER_ARGS = ("k_fixed", "ridge", "solver", "time_limit", "mip_gap", "refit", "warm_start",
             "random_state", "na_action", "verbose", "constraints")


def check_lmer_args(kwargs: Mapping[str, Any], where: str, allowed=LMER_ARGS,
                    to: str = "mio_lmer") -> dict:
    """The keyword arguments a path or CV passes on to ``to``; refuses any other."""
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise ArgumentTypeError(f"{where} got unexpected keyword argument(s) {bad}; it passes "
                                f"these on to {to}: {list(allowed)}")
    return dict(kwargs)


def _as_cap(v, what: str) -> int:
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
        raise ArgumentTypeError(f"{what} must be an integer cap, got {v!r}")
    return int(v)


def default_grid(sizes: Mapping[str, int]) -> list[dict[str, int]]:
    """The caps round(f K) of every column for the seed paper's fractions f (capped at K)."""
    return [{lab: min(K, int(np.floor(f * K + 0.5))) for lab, K in sizes.items()}
            for f in FRACTIONS]


def resolve_grid(design, k) -> list[tuple[Any, dict[str, int]]]:
    """``[(key, caps by column label)]`` of the path, sorted by total cap, duplicates removed.

    ``k``: None (the default fractions of every column's number of clusters), a list of ints
    (each caps every random-effect column, as ``mio_lmer(k=int)``), or a dict ``{label: list
    or int}`` (lists of one length, ints held fixed along the path).  The key is the int when
    one int caps every column, else the tuple of caps in column order.
    """
    labels = design.column_labels
    if not labels:
        raise ArgumentError("a path over k needs a random term such as (1 | g); for a model "
                            "without one use mixmio.mio_lm")
    sizes = {lab: design.block_of(lab)[0].n_levels for lab in labels}
    if k is None:
        points = default_grid(sizes)
    elif isinstance(k, Mapping):
        from mixmio.problem.build import cap_key

        spec = {cap_key(lab): v for lab, v in k.items()}
        unknown = [lab for lab in spec if lab not in sizes]
        if unknown:
            raise ArgumentError(f"k names no random-effect column {unknown}; the columns are "
                                f"{labels}")
        lens = {len(v) for v in spec.values() if isinstance(v, Sequence)
                and not isinstance(v, str)}
        if len(lens) > 1:
            raise ArgumentError(f"the lists of caps in k must have one length, got {sorted(lens)}")
        n = lens.pop() if lens else 1
        points = []
        for i in range(n):
            pt = {}
            for lab, v in spec.items():
                vi = v[i] if isinstance(v, Sequence) and not isinstance(v, str) else v
                pt[lab] = _as_cap(vi, f"k[{lab!r}]")
            points.append(pt)
    elif isinstance(k, Sequence) and not isinstance(k, str):
        points = [{lab: _as_cap(v, "every entry of k") for lab in labels} for v in k]
    else:
        raise ArgumentTypeError("k of a path must be None (the default grid), a list of ints or "
                                f"a dict of lists keyed by column label, got {k!r}")
    if not points:
        raise ArgumentError("the grid of caps k is empty; give at least one cap (or k=None for "
                            "the default grid)")
    for pt in points:
        for lab, v in pt.items():
            if not 0 <= v <= sizes[lab]:
                raise ArgumentError(f"cap {v} on '{lab}' is out of range: it must be in "
                                    f"[0, {sizes[lab]}] (the number of levels of "
                                    f"'{design.block_of(lab)[0].group}')")
    single = isinstance(k, Sequence) and not isinstance(k, Mapping | str)
    out, seen = [], set()
    for pt in sorted(points, key=lambda d: (sum(d.values()), tuple(d.values()))):
        vals = tuple(pt.values())
        if vals in seen:
            continue
        seen.add(vals)
        out.append((vals[0] if single or len(vals) == 1 else vals, pt))
    return out


def _z_keys(design) -> tuple[np.ndarray, np.ndarray]:
    """(column label, level as text) of every Z column."""
    zc = design.z_columns
    return zc["label"].to_numpy(), zc["level"].astype(str).to_numpy()


def _selected_keys(fit, keys=None) -> dict[tuple[str, str], float]:
    """{(column label, level): estimate} of the fit's non-zero cluster effects (``keys``:
    :func:`_z_keys` of the fit's design, when already at hand)."""
    lab, lev = _z_keys(fit.design) if keys is None else keys
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
        last = _selected_keys(list(self.fits.values())[-1])
        for step, (key, fit) in enumerate(self.fits.items()):
            new = [(kk, est) for kk, est in _selected_keys(fit).items()
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
        from mixmio.inference.plots import new_axes

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
        from mixmio.inference.plots import new_axes

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


def path_from_prepared(prepared, grid, settings: dict, formula: str,
                       fit_one=None) -> PathResult:
    """The path on a prepared design (shared by :func:`lmer_path` and the CV folds)."""
    if fit_one is None:  # mio_lmer's; mio_glmer passes its own (same signature)
        from mixmio.api._lmer import lmer_fit as fit_one

    fits: dict = {}
    caps: dict = {}
    rows = []
    prev = None
    prev_sel: dict = {}
    multi = len(prepared.design.column_labels) > 1
    keys = _z_keys(prepared.design)

    def name(kk):  # the table's cluster label: the level, or "column: level"
        return f"{kk[0]}: {kk[1]}" if multi else kk[1]

    for key, pt in grid:
        t0 = time.perf_counter()
        fit = fit_one(prepared, pt, settings, base=None if prev is None else prev.problem,
                        warm=None if prev is None else prev.solution)
        wall = time.perf_counter() - t0
        sel = _selected_keys(fit, keys)
        rows.append({"k": key, "objective": fit.objective, "best_bound": fit.best_bound,
                     "gap": fit.gap, "status": fit.status, "time": wall,
                     "n_selected": len(sel),
                     "entered": [name(kk) for kk in sel if kk not in prev_sel],
                     "left": [name(kk) for kk in prev_sel if kk not in sel]})
        fits[key] = fit
        caps[key] = dict(pt)
        prev, prev_sel = fit, sel
    return PathResult(formula, fits, caps, pd.DataFrame(rows))


def lmer_path(formula: str, data: pd.DataFrame,
              k: Sequence[int] | Mapping[str, Sequence[int] | int] | None = None,
              **mio_lmer_args) -> PathResult:
    """Fit :func:`mixmio.mio_lmer` over a grid of caps, warm-started along the path.

    The design is built once; each cap's problem reuses its arrays (so the exact engines'
    per-cluster statistics are built once too) and starts from the previous cap's support.
    Every point is certified as a single fit is (``status``, ``gap`` per row of ``table``).

    Parameters
    ----------
    formula, data : as in :func:`mixmio.mio_lmer`.
    k : None (default): the seed paper's sparsity fractions {0, .1, .2, .25, 1/3, .4, .5,
        .6, 2/3, .75, .8, .9, 1} times the number of clusters K of every random-effect
        column (rounded, capped at K); a list of ints (each caps every column); or a dict
        ``{"1|school": [0, 5, 10], "x|school": 2}`` (lists of one length, ints held fixed).
        The path runs in increasing total cap.
    **mio_lmer_args : ``k_fixed``, ``ridge``, ``solver``, ``time_limit`` (per cap),
        ``mip_gap``, ``refit``, ``warm_start``, ``random_state``, ``na_action``,
        ``verbose``, ``constraints``.

    Examples
    --------
    >>> import mixmio
    >>> exam = mixmio.datasets.load("Exam")
    >>> path = mixmio.lmer_path("normexam ~ standLRT + (1 | school)", exam, k=[0, 5, 10])
    >>> list(path.table["n_selected"]), bool((path.table["status"] == "optimal").all())
    ([0, 5, 10], True)
    >>> path.fits[5].status
    'optimal'
    """
    from mixmio._checks import as_frame
    from mixmio.api._lmer import lmer_prepare, lmer_settings

    kw = check_lmer_args(mio_lmer_args, "lmer_path")
    na_action = kw.pop("na_action", "drop")
    constraints = kw.pop("constraints", ())
    data = as_frame(data)
    settings = lmer_settings(**kw)
    prepared = lmer_prepare(formula, data, na_action, constraints)
    grid = resolve_grid(prepared.design, k)
    return path_from_prepared(prepared, grid, settings, formula)
