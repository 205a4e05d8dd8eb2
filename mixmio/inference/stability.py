"""Stability selection of clusters (Meinshausen & Buhlmann 2010; Shah & Samworth 2013).

The capped problem (same caps, same ridge value as the fit) is re-solved on ``B`` half-samples;
a candidate (a cluster effect, or a selectable fixed effect when the fit has ``k_fixed``) is
flagged when its selection frequency is at least ``threshold``.  With ``q`` the mean number of
candidates selected per half-sample and ``K`` the number of candidates, the expected number of
falsely flagged candidates is at most ``q^2 / ((2 threshold - 1) K)`` (under the exchangeability
and better-than-random-guessing conditions of Meinshausen & Buhlmann's Theorem 1; Shah & Samworth
show the same bound for complementary pairs without them being needed for the pairing).

The bound is proved for subsamples of half the data, so ``frac`` must be 0.5; complementary pairs
need an even ``B``; ``threshold`` must be in (0.5, 1].  Other settings are refused before any
solve.

Subsampling (``scheme``): ``"obs"`` draws half of the rows; ``"cluster_strat"`` draws half of
the rows of every cluster of the first grouping factor (or ``cluster_by=``), ``floor(n_c / 2)``
rows each, so each cluster keeps half its data.  A cluster with no rows in a half-sample cannot
be selected there: its columns are dropped and it counts as not selected.  With
``pairing="complementary"`` each random split gives two disjoint halves (both solved).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import check_replicate_settings
from mixmio.inference._tasks import (
    RESAMPLE_UNSUPPORTED,
    WARM_START,
    ReplicateAccounting,
    _Context,
    _Out,
    check_replicate_args,
    compact,
    make_context,
    resamplable,
    run_tasks,
    seeds_of,
    solve_and_refit,
    sub_problem,
    unit_block_index,
)
from mixmio.inference.bootstrap import coefficient_labels
from mixmio.results._methods import register

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.results.lmer import MioLmerResult

PAIRINGS = ("complementary", "none")
SUB_SCHEMES = ("obs", "cluster_strat")


def _halves(ctx: _Context, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the rows (floor(n/2) each, or floor(n_c/2) per cluster)."""
    if ctx.options["scheme"] == "obs":
        perm = rng.permutation(ctx.n)
        m = ctx.n // 2
        return np.sort(perm[:m]), np.sort(perm[m:2 * m])
    codes = ctx.unit_codes
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=ctx.n_units)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    a, b = [], []
    for c in range(ctx.n_units):
        rows = order[bounds[c]:bounds[c + 1]][rng.permutation(sizes[c])]
        m = sizes[c] // 2
        a.append(rows[:m])
        b.append(rows[m:2 * m])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def half_rows(ctx: _Context, task: tuple[np.random.SeedSequence, np.random.SeedSequence, int]
              ) -> tuple[np.ndarray, int]:
    """(rows, solver seed) of the half-sample ``task = (split_seed, own_seed, half)``."""
    split_seed, own_seed, half = task
    rng, _ = seeds_of(split_seed)
    _, solver_seed = seeds_of(own_seed)
    return _halves(ctx, rng)[half], solver_seed


def _stability_replicate(ctx: _Context, task: tuple[np.random.SeedSequence,
                                                    np.random.SeedSequence, int]) -> _Out:
    try:
        rows, solver_seed = half_rows(ctx, task)
        block_codes = [compact(b.codes[rows]) for b in ctx.blocks]
        problem, colmap = sub_problem(ctx, rows, ctx.y[rows], block_codes)
        return solve_and_refit(ctx, problem, colmap, solver_seed)
    except Exception as exc:  # noqa: BLE001 - recorded as a failure
        return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True, eq=False)
class StabilityResult(ReplicateAccounting):
    """Per-candidate selection frequencies over half-samples, the flagged set and the bound.

    ``frequencies``: one row per candidate (cluster effects; selectable fixed effects when the
    fit has ``k_fixed``) with the full-data estimate, whether the fit selected it, the selection
    frequency and the flag.  ``flagged``: the rows with frequency >= ``threshold``.
    ``bound``: ``q^2 / ((2 threshold - 1) K)``, the bound on the expected number of false flags.
    ``failures`` and ``n_ok`` account for half-samples whose solve failed.

    Made by :func:`stability` or :meth:`MioLmerResult.stability
    <mixmio.results.lmer.MioLmerResult.stability>`.

    Examples
    --------
    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> st = fit.stability(B=20, random_state=1, progress=False)
    >>> st
    <StabilityResult B=20 n_ok=20 threshold=0.6 flagged=3 bound=2.5>
    >>> st.n_candidates, st.q, round(st.bound, 2)
    (18, 3.0, 2.5)
    """

    candidates: pd.DataFrame = field(repr=False)
    selected: np.ndarray = field(repr=False)  # (B, n_candidates) bool, failed rows all False
    ok: np.ndarray = field(repr=False)
    statuses: tuple = field(repr=False)
    reasons: tuple = field(repr=False)
    threshold: float
    B: int
    frac: float
    pairing: str
    scheme: str
    random_state: object
    options: dict
    elapsed: float = 0.0


    @property
    def n_candidates(self) -> int:
        """Number of candidates K (cluster effects, and selectable fixed effects).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> st.n_candidates
        18
        """
        return int(self.selected.shape[1])

    @property
    def q(self) -> float:
        """Mean number of candidates selected per (successful) half-sample.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> st.q
        3.0
        """
        if not self.n_ok:
            return float("nan")
        return float(self.selected[self.ok].sum(axis=1).mean())

    @property
    def bound(self) -> float:
        """Expected-false-flag bound q^2 / ((2 threshold - 1) K).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> round(st.bound, 3)  # 3**2 / ((2 * 0.6 - 1) * 18)
        2.5
        """
        return self.q**2 / ((2 * self.threshold - 1) * self.n_candidates)

    @cached_property
    def frequencies(self) -> pd.DataFrame:
        """One row per candidate, in coefficient order: ``kind``, ``group``, ``level``,
        ``term``, ``estimate`` (full data), ``selected_full`` (selected by the fit),
        ``frequency`` (share of successful half-samples selecting it) and ``flagged``
        (``frequency >= threshold``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> f = st.frequencies
        >>> f.shape, int(f["flagged"].sum())
        ((18, 8), 3)
        >>> f[["level", "frequency"]].head(3)
          level  frequency
        0   308       0.25
        1   309       1.00
        2   310       0.65
        """
        out = self.candidates.copy()
        freq = (self.selected[self.ok].mean(axis=0) if self.n_ok
                else np.full(self.n_candidates, np.nan))
        out["frequency"] = freq
        out["flagged"] = freq >= self.threshold
        return out

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged rows of :attr:`frequencies`, ranked by frequency, then |estimate|.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> st.flagged[["level", "frequency", "selected_full"]]
          level  frequency  selected_full
        0   309       1.00           True
        1   337       0.70           True
        2   310       0.65           True
        """
        f = self.frequencies
        f = f[f["flagged"]]
        order = np.lexsort((-np.abs(f["estimate"].to_numpy()), -f["frequency"].to_numpy()))
        return f.iloc[order].reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`frequencies` (every candidate).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> st.to_frame().shape
        (18, 8)
        """
        return self.frequencies.copy()

    def describe(self) -> str:
        """One line: pairing, scheme, half-samples, threshold, q, K and the bound (with a NOTE
        when some selections are not proven optimal).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> print(st.describe())  # doctest: +NORMALIZE_WHITESPACE
        Stability selection: complementary pairs (obs), B = 20 (20 ok), threshold 0.6;
        q = 3 selected of K = 18 candidates; E[false flags] <= 2.5
        """
        return (f"Stability selection: {self.pairing} pairs" if self.pairing == "complementary"
                else "Stability selection: independent half-samples") + (
            f" ({self.scheme}), B = {self.B} ({self.n_ok} ok), threshold {self.threshold:g}; "
            f"q = {self.q:.3g} selected of K = {self.n_candidates} candidates; "
            f"E[false flags] <= {self.bound:.3g}") + (
            f"\nNOTE: {self.unproven_note()}" if self.unproven_note() else "")

    def __str__(self) -> str:
        from tabulate import tabulate

        f = self.flagged
        cols = ["kind", "group", "term", "level", "estimate", "frequency", "selected_full"]
        body = tabulate(f[cols].to_numpy().tolist(), headers=cols, floatfmt=".4g") if len(f) \
            else "(no candidate reaches the threshold)"
        fails = f"\n{self.B - self.n_ok} half-samples failed (see .failures)" \
            if self.n_ok < self.B else ""
        return f"{self.describe()}{fails}\nFlagged:\n{body}\n"

    def _repr_html_(self) -> str:
        import html

        f = self.flagged
        return (f"<p>{html.escape(self.describe())}</p>"
                + f.to_html(index=False, float_format=lambda v: f"{v:.4g}"))

    def __repr__(self) -> str:
        return (f"<StabilityResult B={self.B} n_ok={self.n_ok} threshold={self.threshold} "
                f"flagged={int(self.frequencies['flagged'].sum())} bound={self.bound:.3g}>")

    def plot_selection(self, ax: Axes | None = None) -> Figure:
        """Bars of every candidate's selection frequency with the threshold line; a Figure
        (the figure of ``ax`` when one is given).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> fig = st.plot_selection()
        >>> type(fig).__name__, len(fig.axes)
        ('Figure', 1)
        """
        from mixmio.inference.plots import plot_frequencies

        f = self.frequencies
        return plot_frequencies(f, "frequency", ax=ax, threshold=self.threshold,
                                title=self.describe().split(";")[0])


def _check_stability_args(B, frac, pairing, threshold, scheme) -> None:
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if scheme not in SUB_SCHEMES:
        raise ValueError(f"scheme must be one of {SUB_SCHEMES}, got {scheme!r}")
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)) or B < 1:
        raise ValueError(f"B must be a positive integer, got {B!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not 0.5 < threshold <= 1:  # type: ignore[operator]  # typeshed: Real, no "<"
        raise ValueError(f"threshold must be in (0.5, 1] for the false-flag bound "
                         f"q^2 / ((2 threshold - 1) K) to hold, got {threshold!r}")
    if frac != 0.5:
        raise ValueError(f"frac must be 0.5: the false-flag bound is proved for subsamples of "
                         f"half the data (Meinshausen & Buhlmann 2010; Shah & Samworth 2013 for "
                         f"complementary pairs), got frac={frac!r}")
    if pairing == "complementary" and B % 2:
        raise ValueError(f"complementary pairs need an even B (each split gives two disjoint "
                         f"halves), got B={B}")


@register("stability")
def stability(fit: MioLmerResult, B: int = 100, frac: float = 0.5,
              pairing: str = "complementary", threshold: float = 0.6, scheme: str = "obs",
              n_jobs: int = 1, random_state: int | Sequence[int] | None = None,
              progress: bool = True, *, cluster_by: str | None = None, solver: str = "auto",
              time_limit: float | None = None) -> StabilityResult:
    """Stability selection of ``fit``'s capped candidates; see the module docstring.

    Parallel execution and reproducibility as in :func:`mixmio.inference.bootstrap`: half-sample
    ``b`` draws its rows from ``SeedSequence(random_state).spawn(B)`` (the two halves of a
    complementary pair share the split of the pair's first seed).

    Parameters
    ----------
    fit : the fit whose capped problem is re-solved (fits with sign caps, or with
        constraints or an l1 term on cluster effects, are refused; constraints on fixed-effect
        columns carry over).
    B : number of half-samples (even with ``pairing="complementary"``).
    frac : subsample fraction; must be 0.5.
    pairing : ``"complementary"`` (two disjoint halves per split) or ``"none"``.
    threshold : flagging threshold in (0.5, 1].
    scheme : ``"obs"`` (half of the rows) or ``"cluster_strat"`` (half of every cluster's
        rows).
    n_jobs : joblib workers (``-1``: all cores).
    random_state : None, an int or a sequence of ints seeding ``numpy.random.SeedSequence``.
    progress : show a progress bar (in Jupyter, or when stderr is a terminal).
    cluster_by : grouping factor of ``scheme="cluster_strat"`` (default the first).
    solver, time_limit : per-half-sample solver settings.

    Returns
    -------
    StabilityResult

    Examples
    --------
    >>> import mixmio
    >>> from mixmio.inference import stability
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> st = stability(fit, B=20, scheme="cluster_strat", random_state=1, progress=False)
    >>> st.n_ok, sorted(st.flagged["level"])
    (20, ['309', '310', '337'])
    """
    _check_stability_args(B, frac, pairing, threshold, scheme)
    unit = unit_block_index(fit, cluster_by)
    check_replicate_args(fit, solver, time_limit)
    random_state, n_jobs = check_replicate_settings(random_state, n_jobs, progress)
    if not resamplable(fit.problem):
        raise NotImplementedError(RESAMPLE_UNSUPPORTED)
    options = {"scheme": scheme, "cluster_by": fit.design.blocks[unit].group,
               "solver": solver, "time_limit": time_limit, "warm_start": WARM_START}
    ctx = make_context(fit, unit_block=unit, solver=solver, time_limit=time_limit,
                       options=options)
    ctx = replace(ctx, refit=False)  # selection only
    return run_stability(fit, ctx, _stability_replicate, B, frac, pairing, threshold, scheme,
                         random_state, n_jobs, progress)


def _check_rows_per_cluster(ctx: _Context, frac: float, threshold: float) -> None:
    """With one row per cluster a half-sample holds each cluster with probability ``frac``,
    so no selection frequency can pass a threshold above it: refuse before any solve."""
    sizes = np.bincount(np.asarray(ctx.unit_codes), minlength=ctx.n_units)
    if sizes.size and sizes.max() <= 1 and threshold > frac:
        raise ValueError(
            f"stability selection cannot flag anything here: every cluster has one row, so a "
            f"half-sample of frac={frac:g} of the rows contains a cluster at most that often "
            f"and no selection frequency can reach threshold={threshold:g}. Use "
            "fit.bootstrap() (parametric for mio_glmer) for the stability of the flags.")


def run_stability(fit, ctx: _Context, replicate, B: int, frac: float, pairing: str,
                  threshold: float, scheme: str, random_state, n_jobs,
                  progress: bool) -> StabilityResult:
    """Run ``B`` half-samples ``replicate(ctx, (split_seed, own_seed, half))`` and collect
    the :class:`StabilityResult` of ``fit`` (arguments checked by the caller; the two halves
    of a complementary pair share the split of the pair's first seed)."""
    _check_rows_per_cluster(ctx, frac, threshold)
    ss = np.random.SeedSequence(random_state)
    seeds = ss.spawn(int(B))
    if pairing == "complementary":
        tasks = [(seeds[b - b % 2], seeds[b], b % 2) for b in range(int(B))]
    else:
        tasks = [(seeds[b], seeds[b], 0) for b in range(int(B))]
    t0 = time.perf_counter()
    outs = run_tasks(replicate, ctx, tasks, n_jobs, progress, "stability")
    cand = np.asarray(fit.problem.capped, dtype=int)
    labels = coefficient_labels(fit).iloc[cand].reset_index(drop=True)
    labels["estimate"] = np.asarray(fit.w)[cand]
    labels["selected_full"] = np.asarray(fit.solution.w)[cand] != 0
    sel = np.zeros((int(B), len(cand)), dtype=bool)
    ok = np.zeros(int(B), dtype=bool)
    for b, o in enumerate(outs):
        if o.w is not None:
            wb = o.w[cand]
            sel[b] = np.isfinite(wb) & (wb != 0)
            ok[b] = True
    return StabilityResult(labels.drop(columns="label"), sel, ok,
                           tuple(o.status for o in outs), tuple(o.reason for o in outs),
                           float(threshold), int(B), float(frac), pairing, scheme, ss.entropy,
                           dict(ctx.options), time.perf_counter() - t0)
