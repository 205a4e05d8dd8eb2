"""Bootstrap of a best-subset fit (``mio_lm``, ``mio_glm``): how stable is the selection?

Every replicate re-runs the whole selection -- same cap ``k``, same constraints (as compiled on
the full data: ``CorrelationLimit`` pairs, groups, ``ForceInclude`` / ``Exclude``), same ridge
value, same ``l1`` term (``Robust``), same ``mip_gap``, the fit's engine, and the fit's refit
rule -- on resampled data, so the selection frequencies measure selection uncertainty and the
intervals include it.  A fit with ``Significance`` re-runs its rounds (solve, bootstrap, cut)
in every replicate, starting from the constraints without the full data's cuts.

Schemes:

``pairs`` (``mio_lm`` and ``mio_glm``)
    Rows (x_i, y_i) drawn with replacement (case resampling).  Replicate ``b`` draws its rows
    as ``rng.integers(0, n, n)`` with ``rng, _ = seeds_of(SeedSequence(random_state).spawn(B)
    [b])``; :func:`resample_indices` reproduces that stream.  A column that is all zero in a
    replicate (e.g. the dummy of a level no drawn row has) is not estimated there: its draw is
    missing (NaN), not a zero, and its frequency is over the replicates where it exists.
``residual`` (``mio_lm`` only)
    Rows fixed; ``y* = fitted + e*`` with ``e*`` drawn with replacement from the centred
    residuals of the reported fit, inflated by ``sqrt(n / (n - df))`` (as the ``mio_lmer``
    bootstrap does).

Replicates that fail are recorded (``failures``: replicate, status, reason) and excluded from
every statistic, never raised: for ``mio_glm`` a resampled response with one class only
(status ``degenerate``) or (quasi-)complete separation without a ridge (status
``separation``, the :class:`~mixmio.errors.SeparationError` message as reason); otherwise a
solver status ``infeasible`` / ``error`` or an exception.  Replicates whose selection is not
proven optimal (``time_limit``, ``heuristic``, ...) count as draws, and ``describe()`` says
how many there are.

Statistics per coefficient (see :func:`~mixmio.inference.bootstrap.coefficient_stats`):
bootstrap ``se`` (zeros of replicates that did not select the column included), ``lower`` /
``upper`` (``percentile`` or ``basic``; a column that is 0 in some replicates gets the
percentile interval, the basic interval being undefined at a point mass), selection frequency,
sign stability (share of the selecting replicates with the full-data sign) and a bootstrap
p-value.  Results are identical for any ``n_jobs`` and joblib backend given ``random_state``.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mixmio._checks import check_random_state, check_replicate_settings
from mixmio.inference._tasks import (
    FAILED_STATUSES,
    WARM_START,
    ReplicateAccounting,
    _Context,
    _Out,
    make_context,
    replicate_out,
    run_tasks,
    seeds_of,
    solve_and_refit,
)
from mixmio.inference.bootstrap import (
    _check_level,
    _pct,
    coefficient_stats,
    interval_bounds,
    point_mass_at_zero,
)
from mixmio.inference.report import ReportRendering, check_frequency
from mixmio.results._methods import register

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.problem.glm import GlmProblem
    from mixmio.results.glm import MioGlmResult
    from mixmio.results.lm import MioLmResult

__all__ = ["SubsetBootstrapReport", "SubsetBootstrapResult", "resample_indices",
           "subset_bootstrap"]

LM_SCHEMES = ("pairs", "residual")
GLM_SCHEMES = ("pairs",)
INTERVALS = ("percentile", "basic")


# -- replicates (module level: picklable) ------------------------------------------------------
def resample_indices(n: int, B: int, random_state: int | Sequence[int] | None) -> np.ndarray:
    """The rows every ``pairs`` replicate draws (B x n), as the bootstrap draws them.

    Replicate ``b`` uses ``SeedSequence(random_state).spawn(B)[b]``, so the rows depend on
    ``random_state``, ``B`` and ``n`` only (not on ``n_jobs``).

    Examples
    --------
    >>> idx = resample_indices(5, 3, random_state=0)
    >>> idx.shape, bool(((idx >= 0) & (idx < 5)).all())
    ((3, 5), True)
    >>> bool((idx == resample_indices(5, 3, random_state=0)).all())
    True
    """
    random_state = check_random_state(random_state)
    seeds = np.random.SeedSequence(random_state).spawn(int(B))
    return np.vstack([_rows(seeds_of(s)[0], int(n)) for s in seeds]).astype(np.int64)


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, n, n)


def _lm_problem(ctx: _Context, rng: np.random.Generator):
    pr = ctx.problem
    if ctx.options["scheme"] == "pairs":
        rows = _rows(rng, ctx.n)
        return replace(pr, X=pr.X[rows], Z=sp.csc_matrix((rows.size, 0)), y=pr.y[rows])
    r = (ctx.resid - ctx.resid.mean()) * ctx.options["resid_scale"]
    return replace(pr, y=ctx.mu + r[_rows(rng, ctx.n)])


def _lm_replicate(ctx: _Context, seed: np.random.SeedSequence) -> _Out:
    try:
        rng, solver_seed = seeds_of(seed)
        problem = _lm_problem(ctx, rng)
        if ctx.options.get("significance") is None:
            return solve_and_refit(ctx, problem, None, solver_seed)
        return _significance_replicate(ctx, problem, solver_seed)
    except Exception as exc:  # noqa: BLE001 - recorded as a failure, never dropped silently
        return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


def _significance_replicate(ctx: _Context, problem, seed: int) -> _Out:
    """King's significance rounds on the replicate (as ``mio_lm`` runs them), then the refit."""
    from mixmio.inference.significance import significance_loop

    kw = dict(ctx.solve_kw, random_state=int(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem, sol, _, _ = significance_loop(problem, ctx.options["significance"], kw,
                                               refit=ctx.refit)
    status = str(getattr(sol, "status", "error"))
    if status not in FAILED_STATUSES and not np.isfinite(sol.objective):
        return _Out(None, "error", f"solver status {status!r}: {getattr(sol, 'message', '')}")
    return replicate_out(ctx, problem, sol, None)


@dataclass(frozen=True, eq=False)
class _GlmContext:
    """What a worker needs to re-solve a ``mio_glm`` selection on resampled rows."""

    problem: GlmProblem
    solve_kw: dict


def _glm_replicate(ctx: _GlmContext, seed: np.random.SeedSequence) -> _Out:
    from mixmio.solvers.glm.logistic import SeparationError

    try:
        rng, solver_seed = seeds_of(seed)
        rows = _rows(rng, ctx.problem.n)
        return _glm_solve(ctx, rows, solver_seed)
    except SeparationError as exc:
        return _Out(None, "separation", f"SeparationError: {exc}")
    except Exception as exc:  # noqa: BLE001
        return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


def _glm_solve(ctx: _GlmContext, rows: np.ndarray, seed: int) -> _Out:
    from mixmio.problem.glm import GlmProblem
    from mixmio.solvers import solve_glm

    pr = ctx.problem
    y = pr.y[rows]
    if np.all(y == y[0]):
        return _Out(None, "degenerate",
                    f"the resampled response has one class only (all {y[0]:g}): the "
                    "intercept's MLE is infinite")
    X = pr.X[rows]
    live = np.any(X != 0, axis=0)
    live[pr.always] = True
    keep = np.flatnonzero(live)
    pos = np.full(pr.p, -1, dtype=int)
    pos[keep] = np.arange(keep.size)
    # units whose columns are all zero in the resample are dropped (their coefficients are
    # recorded as NaN); the holistic constraints follow the renumbered units
    new = {}
    units: list[np.ndarray] = []
    for i, u in enumerate(pr.units):
        if live[u].any():
            new[i] = len(units)
            units.append(pos[u[live[u]]])
    forced = tuple(new[i] for i in pr.forced if i in new)
    packing = []
    for ru, rc, rhs in pr.rows:
        kept = [(new[int(u)], float(c)) for u, c in zip(ru, rc, strict=True) if int(u) in new]
        if kept:
            packing.append((np.array([u for u, _ in kept], dtype=int),
                            np.array([c for _, c in kept]), float(rhs)))
    sub = GlmProblem(X[:, keep], y, pr.offset[rows], tuple(units), pos[pr.always], pr.k,
                     pr.ridge, tuple(pr.names[j] for j in keep) if pr.names else (),
                     forced=forced, rows=tuple(packing))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_glm(sub, random_state=seed, **ctx.solve_kw)
    status = str(sol.status)
    if status in FAILED_STATUSES:
        return _Out(None, status, f"solver status {status!r}: {sol.message}")
    beta = np.asarray(sol.w, dtype=float)
    if beta.shape != (keep.size,) or not np.all(np.isfinite(beta)):
        return _Out(None, status, "solver returned non-finite or mis-shaped coefficients")
    w = np.full(pr.p, np.nan)
    w[keep] = beta
    return _Out(w, status)


# -- result ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SubsetBootstrapResult(ReplicateAccounting):
    """Bootstrap of a best-subset fit (:class:`~mixmio.results.lm.MioLmResult` or
    :class:`~mixmio.results.glm.MioGlmResult`), immutable.

    ``table`` (a copy: ``to_frame()``; other intervals: ``intervals()``): one row per
    column of the design (indexed by name) with the full-data ``estimate``, bootstrap
    ``se``, ``lower`` / ``upper``, ``selection_frequency``, ``sign_stability``,
    ``p_value``, ``n_valid``, ``selected`` (by the full-data fit) and ``always_in`` (the
    intercept).  ``selection_frequency``: the same as a Series.
    ``subset_frequencies()``: how often each whole subset was selected.  ``report()``: the
    stable selections.  ``draws`` (B x p; NaN rows for failed replicates), ``ok``,
    ``statuses``, ``failures``, ``status_counts``, ``n_ok``: replicate accounting.

    Made by ``fit.bootstrap(...)`` (:func:`subset_bootstrap`); see
    :mod:`mixmio.inference.subset_bootstrap`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
    >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2)
    >>> boot = fit.bootstrap(B=20, random_state=1)
    >>> boot
    <SubsetBootstrapResult mio_lm scheme=pairs B=20 n_ok=20 ci=percentile level=0.95>
    >>> boot.selection_frequency.tolist()
    [1.0, 1.0, 0.0, 1.0, 0.0]
    """

    terms: tuple[str, ...]
    selectable: np.ndarray = field(repr=False)
    estimate: np.ndarray = field(repr=False)
    draws: np.ndarray = field(repr=False)
    ok: np.ndarray = field(repr=False)
    statuses: tuple = field(repr=False)
    reasons: tuple = field(repr=False)
    model: str
    scheme: str
    ci: str
    level: float
    B: int
    random_state: int | Sequence[int] | None
    options: dict
    elapsed: float = 0.0
    notes: tuple = ()
    source_fit: object = field(default=None, repr=False)

    # tables --------------------------------------------------------------------------------
    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per column (index: the column names): ``estimate`` (full data), ``se``,
        ``lower`` / ``upper`` (the bootstrap's ``ci`` interval at its ``level``; other kinds
        and levels from the same replicates: :meth:`intervals`),
        ``selection_frequency``, ``sign_stability``, ``p_value``, ``n_valid`` (replicates where
        the column exists), ``selected`` (by the full-data fit) and ``always_in``.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> t = boot.table
        >>> list(t.columns)  # doctest: +NORMALIZE_WHITESPACE
        ['estimate', 'se', 'lower', 'upper', 'selection_frequency', 'sign_stability',
         'p_value', 'n_valid', 'selected', 'always_in']
        >>> bool(t.loc["a", "lower"] > 1.5), bool(t.loc["b", "upper"] == 0.0)
        (True, True)
        """
        good = self.draws[self.ok]
        st = coefficient_stats(good, self.estimate)
        out = self.intervals()
        out.insert(1, "se", st["se"].to_numpy())
        for c in ("selection_frequency", "sign_stability", "p_value", "n_valid"):
            out[c] = st[c].to_numpy()
        out["selected"] = self.selectable & (self.estimate != 0)
        out["always_in"] = ~self.selectable
        return out

    def intervals(self, ci: str | None = None, level: float | None = None) -> pd.DataFrame:
        """``estimate``, ``lower``, ``upper`` per column: intervals of another kind
        (``percentile`` or ``basic``) or level from the same replicates.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> iv = boot.intervals("basic", level=0.9)
        >>> list(iv.columns), bool(iv.loc["a", "lower"] < iv.loc["a", "upper"])
        (['estimate', 'lower', 'upper'], True)
        """
        ci = self.ci if ci is None else _check_ci(ci)
        level = self.level if level is None else _check_level(level)
        lo, hi = interval_bounds(self.draws[self.ok], self.estimate, ci, level)
        return pd.DataFrame({"estimate": self.estimate, "lower": lo, "upper": hi},
                            index=pd.Index(list(self.terms), name="term"))

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`."""
        return self.table.copy()

    @property
    def selection_frequency(self) -> pd.Series:
        """Share of the successful replicates selecting each column (1 for always-in ones)."""
        return self.table["selection_frequency"]

    @property
    def interval_labels(self) -> tuple[str, str]:
        """The interval limits as percentages, e.g. ``("2.5%", "97.5%")``."""
        a = 100 * (1 - self.level) / 2
        return f"{_pct(a)}%", f"{_pct(100 - a)}%"

    def subset_frequencies(self) -> pd.DataFrame:
        """Every distinct selected subset (selectable columns, in design order) with its count
        and share of the successful replicates, most frequent first; ``full_data`` marks the
        full-data fit's subset.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> boot.subset_frequencies()
          subset  size  count  frequency  full_data
        0  a + c     2     20        1.0       True
        """
        cols = np.flatnonzero(self.selectable)
        good = self.draws[self.ok][:, cols]
        picked = np.isfinite(good) & (good != 0)
        counts = Counter(tuple(cols[row].tolist()) for row in picked)
        full = tuple(cols[self.estimate[cols] != 0].tolist())
        rows = [(" + ".join(self.terms[j] for j in key) or "(none)", len(key), c, key == full)
                for key, c in counts.items()]
        rows.sort(key=lambda r: (-r[2], r[1], r[0]))
        n = max(int(self.ok.sum()), 1)
        return pd.DataFrame({"subset": [r[0] for r in rows], "size": [r[1] for r in rows],
                             "count": [r[2] for r in rows],
                             "frequency": [r[2] / n for r in rows],
                             "full_data": [r[3] for r in rows]})

    def resample_indices(self) -> np.ndarray:
        """The rows each replicate drew (B x n; ``pairs`` only), recomputed from the seed."""
        if self.scheme != "pairs":
            raise ValueError("resample_indices applies to scheme='pairs' only")
        return resample_indices(self.options["n_obs"], self.B, self.random_state)

    # text ----------------------------------------------------------------------------------
    def describe(self) -> str:
        """One line (plus NOTE lines): model, scheme, replicates, interval kind.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> print(boot.describe())  # doctest: +NORMALIZE_WHITESPACE
        Bootstrap of mio_lm (k = 2): pairs scheme (rows resampled with replacement, selection
        re-run), B = 20 (20 ok, 0 failed), percentile intervals at 95%
        """
        detail = ("rows resampled with replacement" if self.scheme == "pairs" else
                  "residuals of the fit resampled, rows fixed")
        tl = self.options.get("time_limit")
        lines = [f"Bootstrap of {self.model} (k = {self.options['k']}): {self.scheme} scheme "
                 f"({detail}, selection re-run"
                 + (f", time limit {tl:g} s per replicate" if tl is not None else "")
                 + f"), B = {self.B} ({self.n_ok} ok, {self.B - self.n_ok} failed), "
                 f"{self.ci} intervals at {100 * self.level:.3g}%"]
        lines += [f"NOTE: {n}" for n in self.notes]
        if self.ci == "basic":
            m0 = int(point_mass_at_zero(self.draws[self.ok]).sum())
            if m0:
                lines.append(f"NOTE: {m0} coefficient(s) are exactly 0 in some replicates (a "
                             "point mass at 0, which basic intervals cannot handle); their "
                             "intervals are percentile intervals")
        if self.n_ok < self.B:
            counts = pd.Series([s for s, o in zip(self.statuses, self.ok, strict=True)
                                if not o], dtype=object).value_counts()
            lines.append("NOTE: failed replicates (excluded): "
                         + ", ".join(f"{k} {v}" for k, v in counts.items())
                         + "; see .failures")
        unproven = self.unproven_note()
        if unproven:
            lines.append(f"NOTE: {unproven}")
        return "\n".join(lines)

    def report(self, min_frequency: float = 0.5) -> SubsetBootstrapReport:
        """The stable selections: selectable columns with selection frequency >=
        ``min_frequency``, the full-data selections below it, and the most frequent subsets.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> rep = boot.report()
        >>> rep.stable["term"].tolist(), len(rep.unstable)
        (['a', 'c'], 0)
        >>> print(str(rep).splitlines()[0])
        Best-subset bootstrap report
        """
        return SubsetBootstrapReport.from_bootstrap(self, min_frequency)

    def plot_selection(self, ax: Axes | None = None, min_frequency: float = 0.5) -> Figure:
        """Bars of every candidate column's selection frequency, most frequent on top, the
        columns the full-data fit selected in blue (the others gray), a dashed line at
        ``min_frequency``; always-in columns (the intercept) are left out.  A Figure (the
        figure of ``ax`` when one is given).

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> boot = mixmio.mio_lm("y ~ a + b + c + d", df, k=2).bootstrap(B=20, random_state=1)
        >>> fig = boot.plot_selection()
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['a', 'c', 'b', 'd']
        """
        from mixmio.inference.plots import plot_subset_selection

        return plot_subset_selection(self, ax=ax, min_frequency=min_frequency)

    def __repr__(self) -> str:
        return (f"<SubsetBootstrapResult {self.model} scheme={self.scheme} B={self.B} "
                f"n_ok={self.n_ok} ci={self.ci} level={self.level}>")

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


# -- report ------------------------------------------------------------------------------------
STABLE_COLUMNS = ["term", "estimate", "lower", "upper", "se", "selection_frequency",
                  "sign_stability", "selected"]
TOP_SUBSETS = 5


@dataclass(frozen=True, eq=False)
class SubsetBootstrapReport(ReportRendering):
    """Report of a :class:`SubsetBootstrapResult`: ``stable`` (selectable columns with
    selection frequency >= ``min_frequency``, most frequent first, then by |estimate|),
    ``unstable`` (columns the full-data fit selected whose frequency is below it),
    ``subsets`` (the most frequent selected subsets), ``status_counts`` (solver status of
    every replicate) and ``header`` (description lines).  ``str()`` gives text, Jupyter shows
    HTML (``to_html()``), ``to_markdown()`` Markdown, ``to_frame()`` stacks the column tables."""

    stable: pd.DataFrame
    unstable: pd.DataFrame
    subsets: pd.DataFrame
    status_counts: pd.Series
    header: tuple[str, ...]
    min_frequency: float

    TITLE = "Best-subset bootstrap report"
    CSS = "mixmio-subset-bootstrap-report"

    @classmethod
    def from_bootstrap(cls, boot: SubsetBootstrapResult, min_frequency: float = 0.5
                       ) -> SubsetBootstrapReport:
        min_frequency = check_frequency(min_frequency)
        t = boot.table.reset_index()
        cand = t[~t["always_in"]]
        freq = cand["selection_frequency"].to_numpy()
        hit = cand[freq >= min_frequency]
        order = np.lexsort((-np.abs(hit["estimate"].to_numpy()),
                            -hit["selection_frequency"].to_numpy()))
        stable = hit.iloc[order][STABLE_COLUMNS].reset_index(drop=True)
        unstable = cand[cand["selected"] & ~(freq >= min_frequency)][STABLE_COLUMNS] \
            .reset_index(drop=True)
        subs = boot.subset_frequencies()
        full = subs[subs["full_data"]]
        share = float(full["frequency"].iloc[0]) if len(full) else 0.0
        sel = [boot.terms[j] for j in np.flatnonzero(boot.selectable & (boot.estimate != 0))]
        header = (boot.describe(),
                  f"Stable selections: selection frequency >= {min_frequency:g} ({len(stable)} "
                  f"of {len(cand)} candidate columns)",
                  f"Full-data selection {{{', '.join(sel)}}}: selected exactly in "
                  f"{100 * share:.3g}% of the successful replicates",
                  "Replicate statuses: " + (", ".join(
                      f"{k} {v}" for k, v in boot.status_counts.items()) or "(none)"))
        return cls(stable, unstable, subs.head(TOP_SUBSETS).reset_index(drop=True),
                   boot.status_counts, header, float(min_frequency))

    def to_frame(self) -> pd.DataFrame:
        """``stable`` and ``unstable`` stacked, with a ``section`` column."""
        return pd.concat([self.stable.assign(section="stable"),
                          self.unstable.assign(section="selected, below min_frequency")],
                         ignore_index=True)[["section"] + STABLE_COLUMNS]

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        return [(f"Stable selections (frequency >= {self.min_frequency:g})", self.stable),
                ("Selected on the full data, below min_frequency", self.unstable),
                ("Most frequent subsets", self.subsets)]


# -- entry point -------------------------------------------------------------------------------
def _check_ci(ci) -> str:
    if ci not in INTERVALS:
        raise ValueError(f"ci must be one of {INTERVALS}, got {ci!r}")
    return ci


def _default_time_limit(fit, time_limit):
    """The per-replicate limit: the one given, else the fit's own when it stopped on one (its
    solve time, which is the limit it had), else none."""
    from mixmio._checks import check_solve_args

    check_solve_args(fit.mip_gap, time_limit)
    if time_limit is not None:
        return float(time_limit)
    if fit.status == "time_limit":
        return max(float(fit.solve_time), 1e-3)
    return None


def _lm_solver(fit, solver: str | None) -> str:
    from mixmio.solvers import check_solver

    if solver is None:  # the fit's engine: a CVXPY backend by name, the heuristic, else auto
        name = str(fit.solver)
        if name == "heuristic":
            solver = "heuristic"
        elif name.startswith("cvxpy-"):
            solver = name[len("cvxpy-"):]
        else:
            solver = "auto"
    return check_solver(solver)


def _glm_solver(fit, solver: str | None) -> str:
    from mixmio.solvers.engines import GLM_SOLVERS as SOLVERS

    if solver is None:
        solver = {"mixmio-oa-highs": "oa", "heuristic": "heuristic"}.get(str(fit.solver),
                                                                         "auto")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    return solver


def _check_subset_args(fit, B, scheme: str, ci: str, level) -> tuple:
    """``(model name, B, level)`` of a subset bootstrap, every argument checked."""
    from mixmio.results.glm import MioGlmResult
    from mixmio.results.lm import MioLmResult

    schemes: tuple[str, ...]
    if isinstance(fit, MioLmResult):
        model, schemes = "mio_lm", LM_SCHEMES
    elif isinstance(fit, MioGlmResult):
        model, schemes = "mio_glm", GLM_SCHEMES
    else:
        raise TypeError(f"subset_bootstrap needs a mio_lm or mio_glm fit, got "
                        f"{type(fit).__name__}")
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)) or B < 2:
        raise ValueError(f"B must be an integer >= 2, got {B!r}")
    if scheme not in schemes:
        raise ValueError(f"scheme must be one of {schemes} for a {model} fit, got {scheme!r}"
                         + (" (logistic regression has no additive residuals to resample)"
                            if model == "mio_glm" and scheme == "residual" else ""))
    _check_ci(ci)
    return model, int(B), _check_level(level)


def _lm_setup(fit, solver, scheme: str, tl, options: dict) -> tuple:
    """The replicates of a mio_lm fit: ``(context, selectable mask, estimate, replicate
    function, Significance or None)``; fills ``options``."""
    n = int(fit.problem.n)
    solver = _lm_solver(fit, solver)
    pr = fit.problem
    sig = None if fit.compiled is None else fit.compiled.significance
    if scheme == "residual":
        df = n - int(np.count_nonzero(fit.w))
        if df <= 0:
            raise ValueError(f"the fit leaves no residual degrees of freedom (n = {n}, "
                             f"{n - df} non-zero coefficients): its residuals are 0, so "
                             "scheme='residual' has nothing to resample; use 'pairs'")
        options["resid_scale"] = float(np.sqrt(n / df))
    options.update(solver=solver, significance=sig)
    ctx = make_context(fit, solver=solver, time_limit=tl, options=options)
    if sig is not None:  # replicates start from the constraints without the fit's cuts
        ctx = replace(ctx, problem=replace(pr, constraints=tuple(fit.compiled.rows)))
    selectable = np.zeros(pr.p, dtype=bool)
    selectable[pr.caps[0].index] = True
    estimate = np.asarray(fit.w[: pr.p], dtype=float).copy()
    return ctx, selectable, estimate, _lm_replicate, sig


@register("subset_bootstrap")
def subset_bootstrap(fit: MioLmResult | MioGlmResult, B: int = 500, scheme: str = "pairs",
                     ci: str = "percentile", level: float = 0.95, n_jobs: int = 1,
                     random_state: int | Sequence[int] | None = None, progress: bool = True,
                     time_limit: float | None = None, *, solver: str | None = None
                     ) -> SubsetBootstrapResult:
    """Bootstrap a ``mio_lm`` or ``mio_glm`` fit, re-running the selection in every replicate
    (see the module docstring); ``fit.bootstrap(...)`` calls this.

    Parameters
    ----------
    fit : a :class:`~mixmio.results.lm.MioLmResult` or :class:`~mixmio.results.glm.MioGlmResult`.
    B : number of replicates (an integer >= 2).
    scheme : ``"pairs"`` (rows resampled), or for ``mio_lm`` also ``"residual"``.
    ci : ``"percentile"`` or ``"basic"``.
    level : interval coverage in (0, 1).
    n_jobs : joblib workers (``-1``: all cores); results do not depend on it.
    random_state : None, an int or a sequence of ints seeding ``numpy.random.SeedSequence``.
    progress : show a progress bar (default True, as for every mixmio bootstrap): a widget
        in Jupyter, text on a terminal's stderr, nothing when stderr is a pipe or a file.
    time_limit : seconds per replicate; None: the fit's limit when it stopped on one (its
        solve time), else none.
    solver : the engine of every replicate; None: the one that solved the fit.

    Every argument is checked before any replicate runs.
    """
    model, B, level = _check_subset_args(fit, B, scheme, ci, level)
    random_state, n_jobs = check_replicate_settings(random_state, n_jobs, progress)
    tl = _default_time_limit(fit, time_limit)
    n = int(fit.problem.n)
    options = {"scheme": scheme, "time_limit": tl, "k": fit.k, "n_obs": n,
               "warm_start": WARM_START if model == "mio_lm" else "engine's own"}
    if model == "mio_lm":
        ctx, selectable, estimate, fn, sig = _lm_setup(fit, solver, scheme, tl, options)
    else:
        solver = _glm_solver(fit, solver)
        options["solver"] = solver
        ctx = _GlmContext(cast("GlmProblem", fit.problem),  # model "mio_glm": a MioGlmResult
                          {"solver": solver, "time_limit": tl, "mip_gap": fit.mip_gap})
        selectable = np.asarray(fit.problem.penalized, dtype=bool).copy()
        estimate = np.asarray(fit.w, dtype=float).copy()
        fn, sig = _glm_replicate, None
    ss = np.random.SeedSequence(random_state)
    t0 = time.perf_counter()
    outs = run_tasks(fn, ctx, ss.spawn(B), n_jobs, progress, f"bootstrap ({model}, {scheme})")
    p = estimate.size
    draws = np.full((B, p), np.nan)
    ok = np.zeros(B, dtype=bool)
    for b, o in enumerate(outs):
        if o.w is not None:
            draws[b] = o.w[:p]
            ok[b] = True
    notes = []
    if tl is not None and time_limit is None:
        notes.append(f"the fit stopped on a time limit; every replicate gets {tl:g} s (its "
                     "solve time); pass time_limit= to change it")
    if sig is not None:
        notes.append("every replicate re-runs the Significance rounds (solve, bootstrap, cut)")
    if not ok.any():
        notes.append("every replicate failed; see .failures")
    options.pop("significance", None)
    return SubsetBootstrapResult(tuple(str(c) for c in fit.design.X.columns), selectable,
                                 estimate, draws, ok, tuple(o.status for o in outs),
                                 tuple(o.reason for o in outs), model, scheme, ci, level, B,
                                 ss.entropy, options, time.perf_counter() - t0, tuple(notes),
                                 fit)
