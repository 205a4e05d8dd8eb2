"""Bootstrap of a sparse mixed-model fit, re-running the selection in every replicate.

Schemes (METHODS 7):

``residual``
    Clusters fixed; ``y* = fitted + e*`` with ``e*`` drawn with replacement from the centred
    residuals (``within_cluster=True``: from the residuals of the row's own cluster, uncentred,
    so that what the fit left in a cluster stays in that cluster).
``cluster``
    Clusters of the resampling factor (the first grouping factor, or ``cluster_by=``) drawn with
    replacement; a cluster drawn twice becomes two clusters (relabelled), so each draw can be
    selected on its own.  Effects of clusters absent from a replicate are missing (NaN), not
    zero; for a cluster drawn more than once the first copy's estimate is used.  Levels of other
    grouping factors keep their identity (the ones with no rows in the replicate are dropped).
``wild``
    Clusters fixed; ``y* = fitted + v_c * r`` with one multiplier per cluster of the resampling
    factor, Rademacher (+-1) or Mammen's two-point distribution (``weights=``).
``parametric``
    Clusters fixed; ``y* = fitted + N(0, sigma^2)`` errors with ``sigma = fit.sigma``.  This
    assumes independent homoscedastic Gaussian errors around the fitted model, and says so in
    every report.

Residuals used by ``residual`` and ``wild`` are inflated by ``sqrt(n / (n - df))`` (``df`` the
rank of the fit's selected columns, i.e. ``fit.df_resid = n - df``) so that their mean
square is ``fit.sigma^2`` (Davison & Hinkley 1997, Sec. 6.2.3); without it percentile intervals
are too short by that factor.

Every replicate re-solves the capped problem (same caps, same ridge value as the fit) through
:func:`mixmio.solvers.solve`, then applies the fit's refit rule.  Replicates that fail (an
exception, status ``infeasible`` or ``error``, non-finite or cap-breaking coefficients) are
recorded in :attr:`BootstrapResult.failures` and excluded from every statistic.

Statistics per coefficient, over the ``n_ok`` successful replicates where the coefficient exists:

- ``se``: standard deviation of the replicate estimates (zeros of unselected replicates included);
- ``lower``/``upper``: ``percentile`` (quantiles of the replicate estimates), ``basic``
  (``2 est - q_hi``, ``2 est - q_lo``) or ``bca`` (bias-corrected and accelerated; the bias
  correction uses mid-ranks, ``z0 = Phi^-1((#{b < est} + #{b = est}/2) / n)``, clipped to
  ``[1/(2n), 1 - 1/(2n)]``; the acceleration comes from a delete-one-cluster jackknife over the
  clusters of the resampling factor, each jackknife fit re-running the selection; a
  coefficient that is exactly 0 in some replicate has a point mass at 0, where BCa is not
  defined, and gets the percentile interval instead);
- ``selection_frequency``: share of replicates in which the coefficient is non-zero;
- ``sign_stability``: among replicates where it is selected, the share with the sign of the
  full-data estimate (NaN when the full-data estimate is zero);
- ``p_value``: two-sided bootstrap p-value for "the coefficient is 0",
  ``min(1, 2 * min((1 + #{b <= 0}) / (1 + n), (1 + #{b >= 0}) / (1 + n)))`` (the ``+1`` keeps
  it away from 0 with finitely many replicates, so p >= 2 / (n + 1): with fewer than 39
  valid replicates no p-value is below 0.05, and near the boundary it can disagree with the
  interval by that +1).  For a cluster that is unselected (0) in many replicates it is large
  by construction.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm

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
    same_problem,
    seeds_of,
    solve_and_refit,
    sub_problem,
    unit_block_index,
)
from mixmio.results._methods import register

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.inference.report import BootstrapReport
    from mixmio.results.lmer import MioLmerResult
    from mixmio.results.summary import LmerSummary

SCHEMES = ("residual", "cluster", "wild", "parametric")
INTERVALS = ("percentile", "basic", "bca")
BCA_MIN_B = 1000  # Efron & Tibshirani (1993): interval endpoints want B of about 1,000+
WEIGHTS = ("rademacher", "mammen")

_SQ5 = np.sqrt(5.0)
_MAMMEN = (-(_SQ5 - 1) / 2, (_SQ5 + 1) / 2)
_MAMMEN_P = (_SQ5 + 1) / (2 * _SQ5)  # probability of the negative point

PARAMETRIC_NOTE = ("parametric scheme: assumes independent Gaussian errors with sd = "
                   "fit.sigma ({sigma:.4g}) around the fitted model")


# -- replicate workers (module level: picklable) -----------------------------------------------
def _errors(ctx: _Context, rng: np.random.Generator) -> np.ndarray:
    scheme = ctx.options["scheme"]
    r = ctx.resid
    if scheme == "parametric":
        return rng.normal(0.0, ctx.sigma, ctx.n)
    codes = ctx.unit_codes
    r = r * ctx.options.get("resid_scale", 1.0)
    if scheme == "wild":
        if ctx.options["weights"] == "rademacher":
            v = rng.choice(np.array([-1.0, 1.0]), size=ctx.n_units)
        else:
            v = np.where(rng.random(ctx.n_units) < _MAMMEN_P, _MAMMEN[0], _MAMMEN[1])
        return v[codes] * r
    if not ctx.options["within_cluster"]:
        rc = r - r.mean()
        return rc[rng.integers(0, ctx.n, ctx.n)]
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=ctx.n_units)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = starts[codes] + np.floor(rng.random(ctx.n) * sizes[codes]).astype(np.int64)
    return r[order[pick]]


def _cluster_problem(ctx: _Context, rng: np.random.Generator):
    rows, block_codes = cluster_rows(ctx, rng)
    return sub_problem(ctx, rows, ctx.y[rows], block_codes)


def cluster_rows(ctx: _Context, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One cluster-bootstrap draw: the rows of ``K`` clusters drawn with replacement and the
    new level codes per block, as :func:`~mixmio.inference._tasks.sub_problem` takes them."""
    codes = ctx.unit_codes
    K = ctx.n_units
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=K)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    draws = rng.integers(0, K, K)
    rows = np.concatenate([order[bounds[d]:bounds[d + 1]] for d in draws])
    copy = np.repeat(np.arange(K), sizes[draws]).astype(np.int64)  # new unit of every row
    block_codes = []
    for i, b in enumerate(ctx.blocks):
        if i == ctx.unit_block:
            block_codes.append((copy, draws.astype(np.int64)))
        elif _nested_in(b.codes, codes):
            # same factor as the unit (e.g. the other half of (x || g)) or nested in it: a
            # cluster drawn twice is two clusters here too
            key = copy * (int(b.codes.max()) + 1) + b.codes[rows]
            _, first, new = np.unique(key, return_index=True, return_inverse=True)
            block_codes.append((new.ravel().astype(np.int64),
                                b.codes[rows][first].astype(np.int64)))
        else:
            block_codes.append(compact(b.codes[rows]))
    return rows, block_codes


def _nested_in(codes: np.ndarray, unit_codes: np.ndarray) -> bool:
    """True when every level of ``codes`` lies within one level of ``unit_codes``."""
    pairs = np.unique(np.stack([codes, unit_codes]), axis=1)
    return pairs.shape[1] == np.unique(codes).size


def _boot_replicate(ctx: _Context, seed: np.random.SeedSequence) -> _Out:
    try:
        rng, solver_seed = seeds_of(seed)
        if ctx.options["scheme"] == "cluster":
            problem, colmap = _cluster_problem(ctx, rng)
        else:
            problem, colmap = same_problem(ctx, ctx.mu + _errors(ctx, rng))
        return solve_and_refit(ctx, problem, colmap, solver_seed)
    except Exception as exc:  # noqa: BLE001 - recorded as a failure, never dropped silently
        return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


def _jackknife_replicate(ctx: _Context, task: tuple[int, np.random.SeedSequence]) -> _Out:
    unit, seed = task
    try:
        _, solver_seed = seeds_of(seed)
        rows = np.flatnonzero(ctx.unit_codes != unit)
        block_codes = [compact(b.codes[rows]) for b in ctx.blocks]
        problem, colmap = sub_problem(ctx, rows, ctx.y[rows], block_codes)
        return solve_and_refit(ctx, problem, colmap, solver_seed)
    except Exception as exc:  # noqa: BLE001
        return _Out(None, "exception", f"{type(exc).__name__}: {exc}")


# -- statistics --------------------------------------------------------------------------------
def _valid(draws: np.ndarray) -> np.ndarray:
    return np.isfinite(draws)


def _nanquantile(draws: np.ndarray, q) -> np.ndarray:
    """Column quantiles ignoring NaN; NaN for an all-NaN column (no warning)."""
    q = np.atleast_1d(np.asarray(q, dtype=float))
    out = np.full((len(q), draws.shape[1]) if q.ndim == 1 else q.shape, np.nan)
    ok = np.isfinite(draws).any(axis=0)
    if ok.any():
        if q.ndim == 1:
            out[:, ok] = np.nanquantile(draws[:, ok], q, axis=0)
        else:  # one pair of levels per column
            for j in np.flatnonzero(ok):
                out[:, j] = np.nanquantile(draws[:, j], q[:, j])
    return out


def _acceleration(jack: np.ndarray) -> np.ndarray:
    """Jackknife acceleration per column, a = sum d^3 / (6 (sum d^2)^1.5), d = mean - theta_i."""
    valid = np.isfinite(jack)
    cnt = valid.sum(axis=0)
    mean = np.where(valid, jack, 0.0).sum(axis=0) / np.maximum(cnt, 1)
    d = np.where(valid, mean - np.where(valid, jack, 0.0), 0.0)
    num = np.sum(d**3, axis=0)
    den = 6.0 * np.sum(d**2, axis=0) ** 1.5
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def interval_bounds(draws: np.ndarray, estimate: np.ndarray, ci: str, level: float,
                    jackknife: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) per column of ``draws`` (replicates x coefficients, NaN = missing).

    ``ci`` is ``"percentile"``, ``"basic"`` or ``"bca"`` (which needs ``jackknife``, the
    delete-one-cluster estimates); ``level`` the coverage.

    Examples
    --------
    >>> import numpy as np
    >>> draws = np.array([[1.0, 0.0], [2.0, 0.5], [3.0, 1.0], [4.0, 0.0]])
    >>> lo, hi = interval_bounds(draws, np.array([2.5, 0.5]), "percentile", 0.5)
    >>> lo.tolist(), hi.tolist()
    ([1.75, 0.0], [3.25, 0.625])
    """
    alpha = 1.0 - level
    qlo, qhi = _nanquantile(draws, [alpha / 2, 1 - alpha / 2])
    if ci == "percentile":
        return qlo, qhi
    if ci == "basic":
        lo, hi = 2 * estimate - qhi, 2 * estimate - qlo
    elif ci == "bca":
        lo, hi = _bca_bounds(draws, estimate, alpha, jackknife)
    else:
        raise ValueError(f"ci must be one of {INTERVALS}, got {ci!r}")
    # A coefficient that is exactly 0 in some replicates (not selected there) has a point mass
    # at 0: basic intervals mirror it to 2 est, and BCa's normalising transformation does not
    # exist (its bias correction moved whole intervals off 0 for clusters unselected in 43% of
    # replicates).  Those columns get the percentile interval (see ``describe``).
    mass0 = point_mass_at_zero(draws)
    return np.where(mass0, qlo, lo), np.where(mass0, qhi, hi)


def _bca_bounds(draws: np.ndarray, estimate: np.ndarray, alpha: float,
                jackknife: np.ndarray | None) -> np.ndarray:  # (2, p): lower, upper rows
    if jackknife is None:
        raise ValueError("bca intervals need the cluster jackknife; run the bootstrap with "
                         "ci='bca' (it fits the delete-one-cluster jackknife)")
    valid = _valid(draws)
    n = valid.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.sum(np.where(valid, draws < estimate, False), axis=0)
        equal = np.sum(np.where(valid, draws == estimate, False), axis=0)
        share = (below + 0.5 * equal) / n
        share = np.clip(share, 0.5 / np.maximum(n, 1), 1 - 0.5 / np.maximum(n, 1))
        z0 = norm.ppf(share)
    a = _acceleration(jackknife)
    bounds = []
    for z in (norm.ppf(alpha / 2), norm.ppf(1 - alpha / 2)):
        bounds.append(norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    levels = np.where(np.isfinite(bounds), bounds, 0.5)
    # a (2, p) or (2,) array: numpy's stubs type vstack's argument as a sequence only
    return _nanquantile(draws, np.vstack(levels))  # type: ignore[call-overload]


def _pct(x: float) -> str:
    """A percentage with as many decimals as it needs (0.05, 2.5, 97.5, 99.95), never rounded
    to a wrong label such as '100'."""
    for d in range(0, 6):
        if abs(round(x, d) - x) < 1e-9:
            return f"{x:.{d}f}"
    return f"{x:.6g}"


def point_mass_at_zero(draws: np.ndarray) -> np.ndarray:
    """Columns with at least one valid draw exactly 0 (unselected in that replicate).

    Examples
    --------
    >>> import numpy as np
    >>> point_mass_at_zero(np.array([[1.0, 0.0], [2.0, 0.5]])).tolist()
    [False, True]
    """
    return np.any(_valid(draws) & (draws == 0), axis=0)


def coefficient_stats(draws: np.ndarray, estimate: np.ndarray) -> pd.DataFrame:
    """Per-column bootstrap statistics of ``draws`` (replicates x coefficients, NaN =
    missing) around the full-data ``estimate``: ``boot_mean``, ``se``,
    ``selection_frequency``, ``sign_stability``, ``p_value`` and ``n_valid``.

    Examples
    --------
    >>> import numpy as np
    >>> draws = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, -1.0], [np.nan, 0.0]])
    >>> st = coefficient_stats(draws, np.array([2.0, 0.0]))
    >>> st[["se", "selection_frequency", "n_valid"]].values.tolist()
    [[1.0, 1.0, 3.0], [0.5, 0.25, 4.0]]
    """
    valid = _valid(draws)
    n = valid.sum(axis=0)
    nz = valid & (draws != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(np.where(valid, draws, 0.0), axis=0) / n, np.nan)
        dev = np.where(valid, draws - mean, 0.0)
        se = np.where(n > 1, np.sqrt(np.sum(dev**2, axis=0) / (n - 1)), np.nan)
        freq = np.where(n > 0, nz.sum(axis=0) / n, np.nan)
        same = nz & (np.sign(np.where(valid, draws, 0.0)) == np.sign(estimate))
        n_sel = nz.sum(axis=0)
        stab = np.where((n_sel > 0) & (estimate != 0), same.sum(axis=0) / n_sel, np.nan)
        le = np.sum(valid & (draws <= 0), axis=0)
        ge = np.sum(valid & (draws >= 0), axis=0)
        pv = np.minimum(1.0, 2 * np.minimum((1 + le) / (1 + n), (1 + ge) / (1 + n)))
        pv = np.where(n > 0, pv, np.nan)
    return pd.DataFrame({"boot_mean": mean, "se": se, "selection_frequency": freq,
                         "sign_stability": stab, "p_value": pv, "n_valid": n})


# -- result ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BootstrapResult(ReplicateAccounting):
    """Bootstrap of a :class:`~mixmio.results.lmer.MioLmerResult` (immutable).

    ``table`` (alias ``to_frame()``): one row per coefficient (fixed effects, then every cluster
    effect) with estimate, bootstrap SE, interval, selection frequency, sign stability and
    bootstrap p-value.  ``draws``: replicate estimates (B x coefficients; NaN rows for failed
    replicates, NaN entries for clusters absent from a cluster-bootstrap replicate).
    ``failures`` and ``n_ok`` account for failed replicates; with ``ci='bca'``,
    ``jackknife_failed`` lists the delete-one-cluster fits that failed (cluster left out, status,
    reason; their rows of ``jackknife`` are NaN and the acceleration uses the others).
    ``report()`` is the significance
    report; ``fit`` is the original fit with this bootstrap attached (its ``summary()`` shows the
    bootstrap columns; the original fit is unchanged).

    Made by :func:`bootstrap` or :meth:`MioLmerResult.bootstrap
    <mixmio.results.lmer.MioLmerResult.bootstrap>`.

    Examples
    --------
    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
    >>> boot
    <BootstrapResult scheme=residual B=20 n_ok=20 ci=percentile level=0.95>
    >>> boot.draws.shape, boot.n_ok, len(boot.failures)
    ((20, 20), 20, 0)
    >>> t = boot.table
    >>> t.loc[t["selection_frequency"] >= 0.5, "level"].tolist()
    ['', '', '309', '310', '337']
    """

    coefficients: pd.DataFrame = field(repr=False)  # kind, group, level, term, label
    estimate: np.ndarray = field(repr=False)
    draws: np.ndarray = field(repr=False)
    ok: np.ndarray = field(repr=False)
    statuses: tuple = field(repr=False)
    reasons: tuple = field(repr=False)
    scheme: str
    ci: str
    level: float
    B: int
    random_state: object
    options: dict
    jackknife: np.ndarray | None = field(default=None, repr=False)
    jackknife_failures: int = 0
    jackknife_failed: pd.DataFrame | None = field(default=None, repr=False)
    elapsed: float = 0.0
    notes: tuple = ()
    source_fit: object = field(default=None, repr=False)

    # accounting ----------------------------------------------------------------------------

    # tables --------------------------------------------------------------------------------
    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per coefficient (fixed effects, then every cluster effect): ``kind``,
        ``group``, ``level``, ``term``, ``estimate`` (full data), ``se``, ``lower`` /
        ``upper`` (the ``ci`` interval at ``level``), ``selection_frequency``,
        ``sign_stability``, ``p_value`` and ``n_valid`` (replicates where it exists).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> t = boot.table
        >>> t.shape
        (20, 12)
        >>> t.loc[t["kind"] == "fixed", ["term", "estimate", "lower", "upper"]].round(1)
                term  estimate  lower  upper
        0  Intercept     256.3  244.3  267.3
        1       Days      10.5    8.6   12.9
        """
        good = self.draws[self.ok]
        lo, hi = interval_bounds(good, self.estimate, self.ci, self.level, self.jackknife)
        st = coefficient_stats(good, self.estimate)
        out = self.coefficients[["kind", "group", "level", "term"]].copy()
        out["estimate"] = self.estimate
        out["se"] = st["se"].to_numpy()
        out["lower"] = lo
        out["upper"] = hi
        for c in ("selection_frequency", "sign_stability", "p_value", "n_valid"):
            out[c] = st[c].to_numpy()
        return out

    def to_frame(self) -> pd.DataFrame:
        """All coefficients with bootstrap SE, interval, selection frequency, p-value (a copy
        of :attr:`table`).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> df = boot.to_frame()
        >>> df.shape, df.equals(boot.table), df is boot.table
        ((20, 12), True, False)
        """
        return self.table.copy()

    def intervals(self, ci: str | None = None, level: float | None = None) -> pd.DataFrame:
        """Intervals of another kind or level from the same replicates (``bca`` needs the
        jackknife, i.e. a bootstrap run with ``ci='bca'``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> iv = boot.intervals("basic", level=0.9)
        >>> list(iv.columns)
        ['kind', 'group', 'level', 'term', 'estimate', 'lower', 'upper']
        >>> iv.loc[iv["term"] == "Days", ["lower", "upper"]].round(1).values.tolist()
        [[8.1, 12.1]]
        """
        ci = ci or self.ci
        level = self.level if level is None else _check_level(level)
        lo, hi = interval_bounds(self.draws[self.ok], self.estimate, ci, level, self.jackknife)
        out = self.coefficients[["kind", "group", "level", "term"]].copy()
        out["estimate"] = self.estimate
        out["lower"], out["upper"] = lo, hi
        return out

    @property
    def interval_labels(self) -> tuple[str, str]:
        """Column names of the interval limits, e.g. ("2.5%", "97.5%").

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> boot.interval_labels
        ('2.5%', '97.5%')
        """
        a = 100 * (1 - self.level) / 2
        return f"{_pct(a)}%", f"{_pct(100 - a)}%"

    def fixef_table(self) -> pd.DataFrame:
        """Bootstrap columns for the fixed effects, indexed by name (used by ``summary()``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> boot.fixef_table().round(1)
                   Boot.SE   2.5%  97.5%  Pr(boot)
        Intercept      6.9  244.3  267.3       0.1
        Days           1.4    8.6   12.9       0.1
        """
        t = self.table[self.table["kind"] == "fixed"]
        lo, hi = self.interval_labels
        out = pd.DataFrame({"Boot.SE": t["se"].to_numpy(), lo: t["lower"].to_numpy(),
                            hi: t["upper"].to_numpy()}, index=t["term"].to_numpy())
        if self.options.get("k_fixed") is not None:
            out["Sel.freq"] = t["selection_frequency"].to_numpy()
        out["Pr(boot)"] = t["p_value"].to_numpy()
        return out.astype(float)

    def ranef_table(self, selected_only: bool = False) -> pd.DataFrame:
        """Bootstrap columns for the cluster effects (``selected_only``: full-data selection).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> r = boot.ranef_table(selected_only=True)
        >>> r[["level", "estimate", "selection_frequency"]].round(1)
          level  estimate  selection_frequency
        0   309     -88.2                  1.0
        1   310     -72.4                  1.0
        2   337      72.3                  1.0
        """
        t = self.table[self.table["kind"] == "random"]
        if selected_only:
            t = t[t["estimate"] != 0]
        return t.drop(columns="kind").reset_index(drop=True)

    # views ---------------------------------------------------------------------------------
    @cached_property
    def fit(self):
        """The original fit with this bootstrap attached (``fit.with_bootstrap(self)``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> boot.fit.bootstrap_result is boot, fit.bootstrap_result is None
        (True, True)
        """
        if self.source_fit is None:
            raise ValueError("this BootstrapResult carries no fit")
        return self.source_fit.with_bootstrap(self)

    def summary(self) -> LmerSummary:
        """The fit's summary with the bootstrap columns (``print`` it, or show it in Jupyter).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> text = str(boot.summary())
        >>> "Boot.SE" in text, "Selected clusters (bootstrap)" in text
        (True, True)
        """
        return self.fit.summary()

    def report(self, min_frequency: float = 0.5) -> BootstrapReport:
        """Bootstrap significance report: clusters with selection frequency >= ``min_frequency``
        ranked by frequency then |estimate|, and the fixed effects whose interval excludes 0.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> rep = boot.report()
        >>> rep.clusters[["level", "direction"]].values.tolist()
        [['309', 'below'], ['310', 'below'], ['337', 'above']]
        >>> rep.fixed["term"].tolist()
        ['Intercept', 'Days']
        """
        from mixmio.inference.report import BootstrapReport

        return BootstrapReport.from_bootstrap(self, min_frequency)

    def plot_selection(self, ax: Axes | None = None) -> Figure:
        """Selection frequency of every cluster effect (and capped fixed effect); a Figure
        (the figure of ``ax`` when one is given).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> fig = boot.plot_selection()
        >>> type(fig).__name__, len(fig.axes)
        ('Figure', 1)
        """
        from mixmio.inference.plots import plot_selection

        return plot_selection(self, ax=ax)

    def plot_effects(self, term: str | None = None, ax: Axes | None = None) -> Figure:
        """Caterpillar plot of the cluster effects with these intervals; a Figure.

        ``term`` is a random-effect column label (``"1|Subject"``; default the first).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> fig = boot.plot_effects("1|Subject")
        >>> type(fig).__name__
        'Figure'
        """
        from mixmio.inference.plots import plot_effects

        return plot_effects(self.source_fit, term=term, boot=self, ax=ax)

    def describe(self) -> str:
        """One line: scheme, replicates, interval kind (plus NOTE lines where they apply).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> print(boot.describe())  # doctest: +NORMALIZE_WHITESPACE
        Bootstrap: residual scheme (residuals resampled over all rows), B = 20 (20 ok,
        0 failed), percentile intervals at 95%
        """
        lines = [f"Bootstrap: {self.scheme} scheme"
                 + (f" ({_scheme_detail(self)})" if _scheme_detail(self) else "")
                 + f", B = {self.B} ({self.n_ok} ok, {self.B - self.n_ok} failed), "
                 f"{self.ci} intervals at {100 * self.level:.3g}%"
                 + ("" if self.jackknife is None else
                    f" (acceleration from a {self.jackknife.shape[0]}-cluster jackknife"
                    + (f", {self.jackknife_failures} jackknife fits failed (see "
                       ".jackknife_failed)" if self.jackknife_failures else "") + ")")]
        lines += [f"NOTE: {n}" for n in self.notes]
        if self.ci == "bca" and self.n_ok < BCA_MIN_B:
            lines.append(f"NOTE: BCa endpoints are unstable with {self.n_ok} replicates (its "
                         f"bias correction and extreme quantiles need about {BCA_MIN_B} or "
                         "more); raise B")
        if self.ci in ("bca", "basic"):
            m0 = int(point_mass_at_zero(self.draws[self.ok]).sum())
            if m0:
                lines.append(f"NOTE: {m0} coefficient(s) are exactly 0 in some replicates (a "
                             f"point mass at 0, which {self.ci} intervals cannot handle); their "
                             "intervals are percentile intervals")
        unproven = self.unproven_note()
        if unproven:
            lines.append(f"NOTE: {unproven}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<BootstrapResult scheme={self.scheme} B={self.B} n_ok={self.n_ok} "
                f"ci={self.ci} level={self.level}>")

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


def _scheme_detail(boot: BootstrapResult) -> str:
    o = boot.options
    if "scheme_detail" in o:  # set by a caller for another model (mio_glmer)
        return o["scheme_detail"]
    if boot.scheme == "residual":
        return "residuals resampled within clusters of " + o["cluster_by"] \
            if o.get("within_cluster") else "residuals resampled over all rows"
    if boot.scheme == "cluster":
        return f"clusters of {o['cluster_by']} resampled"
    if boot.scheme == "wild":
        return f"{o['weights']} multipliers per cluster of {o['cluster_by']}"
    return "Gaussian errors"


def check_boot_args(B, ci, level) -> float:
    """``ci`` one of :data:`INTERVALS`, ``B`` an integer >= 2; returns ``level`` checked."""
    if ci not in INTERVALS:
        raise ValueError(f"ci must be one of {INTERVALS}, got {ci!r}")
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)) or B < 2:
        raise ValueError(f"B must be an integer >= 2, got {B!r}")
    return _check_level(level)


def check_resampling(problem, scheme: str, ci: str, block) -> None:
    """Refuse what the cluster scheme and the BCa jackknife cannot do: fits whose constraints
    refer to clusters (see :func:`~mixmio.inference._tasks.resamplable`; ``problem`` is the
    linear one), and BCa with fewer than 3 clusters of the resampling factor ``block``."""
    if scheme == "cluster" and not resamplable(problem):
        raise NotImplementedError(RESAMPLE_UNSUPPORTED)
    if ci == "bca":
        K = block.n_levels
        if K < 3:
            raise ValueError(f"bca is defined here through a delete-one-cluster jackknife, which "
                             f"needs at least 3 clusters of '{block.group}' (it has {K}); use "
                             "ci='percentile' or 'basic'")
        if not resamplable(problem):
            raise ValueError("bca needs the delete-one-cluster jackknife, which is not defined "
                             "for fits with sign caps or with constraints or an l1 term on cluster "
                             "effects; use "
                             "'percentile' or 'basic'")


def _check_level(level) -> float:
    if (not isinstance(level, numbers.Real) or isinstance(level, bool)
            or not 0 < level < 1):  # type: ignore[operator]  # typeshed: Real has no "<"
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(level)


def coefficient_labels(fit: MioLmerResult) -> pd.DataFrame:
    """``kind``, ``group``, ``level``, ``term`` and ``label`` of every coefficient of ``fit``
    (fixed effects, then the columns of Z), in the order of ``fit.w``.

    Examples
    --------
    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> coefficient_labels(fit).iloc[1:3].values.tolist()
    [['fixed', '', '', 'Days', ''], ['random', 'Subject', '308', 'Intercept', '1|Subject']]
    """
    fx = pd.DataFrame({"kind": "fixed", "group": "", "level": "",
                       "term": list(fit.design.X.columns), "label": ""})
    zc = fit.design.z_columns
    rx = pd.DataFrame({"kind": "random", "group": zc["group"].to_numpy(),
                       "level": zc["level"].astype(str).to_numpy(),
                       "term": zc["term"].to_numpy(), "label": zc["label"].to_numpy()})
    return pd.concat([fx, rx], ignore_index=True)


@register("bootstrap")
def bootstrap(fit: MioLmerResult, B: int = 500, scheme: str = "residual",
              ci: str = "percentile", level: float = 0.95, n_jobs: int = 1,
              random_state: int | Sequence[int] | None = None, progress: bool = True, *,
              within_cluster: bool = False, cluster_by: str | None = None,
              weights: str = "rademacher", solver: str = "auto",
              time_limit: float | None = None) -> BootstrapResult:
    """Bootstrap ``fit`` (a :class:`~mixmio.results.lmer.MioLmerResult`), re-running the
    selection in every replicate; see the module docstring for schemes and statistics.

    ``n_jobs``: joblib workers (``-1`` all cores).  Under ``joblib.parallel_config(backend="dask")``
    with a ``dask.distributed.Client`` the replicates run on the Dask cluster (pass ``n_jobs=-1``
    to use every worker).  Results are identical for any ``n_jobs`` and backend given
    ``random_state``: replicate ``b`` uses ``SeedSequence(random_state).spawn(B)[b]``.
    ``solver``/``time_limit``: passed to :func:`mixmio.solvers.solve` for every replicate
    (``mip_gap`` is the fit's).

    Parameters
    ----------
    fit : the fit to bootstrap (its caps, ridge and refit rule are reused).
    B : number of replicates (at least 2).
    scheme : ``"residual"``, ``"cluster"``, ``"wild"`` or ``"parametric"``.
    ci : interval kind, ``"percentile"``, ``"basic"`` or ``"bca"`` (``bca`` also runs the
        delete-one-cluster jackknife, and wants B of about 1,000 or more).
    level : interval coverage in (0, 1).
    n_jobs : joblib workers (``-1``: all cores).
    random_state : None, an int or a sequence of ints seeding ``numpy.random.SeedSequence``.
    progress : show a progress bar (in Jupyter, or when stderr is a terminal).
    within_cluster : ``scheme="residual"`` only: resample residuals within clusters.
    cluster_by : the resampling grouping factor (default the first).
    weights : ``scheme="wild"`` only: ``"rademacher"`` or ``"mammen"``.
    solver, time_limit : per-replicate solver settings.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import mixmio
    >>> from mixmio.inference import bootstrap
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> boot = bootstrap(fit, B=20, scheme="wild", random_state=1, progress=False)
    >>> boot.scheme, boot.n_ok
    ('wild', 20)
    >>> boot.table.loc[1, "term"], bool(boot.table.loc[1, "lower"] > 0)
    ('Days', True)
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    level = check_boot_args(B, ci, level)
    if fit.df_resid == 0 and scheme in ("residual", "wild", "parametric"):
        raise ValueError(f"the fit leaves no residual degrees of freedom (rank = n = "
                         f"{fit.n_obs}): its residuals are 0, so scheme={scheme!r} has nothing "
                         "to resample; lower k or use scheme='cluster'")
    if within_cluster and scheme != "residual":
        raise ValueError(f"within_cluster=True applies to scheme='residual' only, not "
                         f"{scheme!r}")
    if weights != "rademacher" and scheme != "wild":
        raise ValueError(f"weights={weights!r} applies to scheme='wild' only, not {scheme!r}")
    unit = unit_block_index(fit, cluster_by)
    group = fit.design.blocks[unit].group
    check_replicate_args(fit, solver, time_limit)
    random_state, n_jobs = check_replicate_settings(random_state, n_jobs, progress)
    check_resampling(fit.problem, scheme, ci, fit.design.blocks[unit])
    options = {"within_cluster": bool(within_cluster), "cluster_by": group, "weights": weights,
               "scheme": scheme, "solver": solver, "time_limit": time_limit,
               "k_fixed": fit.k_fixed, "warm_start": WARM_START,
               "resid_scale": float(np.sqrt(fit.n_obs / fit.df_resid))}
    ctx = make_context(fit, unit_block=unit, solver=solver, time_limit=time_limit,
                       options=options)
    notes = [PARAMETRIC_NOTE.format(sigma=fit.sigma)] if scheme == "parametric" else []
    return run_bootstrap(fit, ctx, _boot_replicate, _jackknife_replicate, B, scheme, ci, level,
                         random_state, n_jobs, progress, notes)


def run_bootstrap(fit, ctx: _Context, replicate, jackknife, B: int, scheme: str, ci: str,
                  level: float, random_state, n_jobs, progress: bool,
                  notes: list[str]) -> BootstrapResult:
    """Run ``B`` replicates ``replicate(ctx, seed)`` (and, for ``ci="bca"``, the
    delete-one-cluster fits ``jackknife(ctx, (unit, seed))``) and collect a
    :class:`BootstrapResult` of ``fit``; replicate ``b`` uses
    ``SeedSequence(random_state).spawn(B)[b]``.  Arguments are checked by the caller;
    ``ctx.options`` become the result's options."""
    ss = np.random.SeedSequence(random_state)
    seeds = ss.spawn(int(B))
    t0 = time.perf_counter()
    outs = run_tasks(replicate, ctx, seeds, n_jobs, progress, f"bootstrap ({scheme})")
    n_coef = ctx.n_coef
    draws = np.full((int(B), n_coef), np.nan)
    ok = np.zeros(int(B), dtype=bool)
    for b, o in enumerate(outs):
        if o.w is not None:
            draws[b] = o.w
            ok[b] = True
    jack, jack_fail, jack_failed = None, 0, None
    if ci == "bca":
        K = ctx.n_units
        jseeds = np.random.SeedSequence(ss.entropy, spawn_key=(2**31,)).spawn(K)
        jouts = run_tasks(jackknife, ctx, list(zip(range(K), jseeds, strict=True)),
                          n_jobs, progress, "jackknife")
        jack = np.vstack([o.w if o.w is not None else np.full(n_coef, np.nan) for o in jouts])
        failed = [j for j, o in enumerate(jouts) if o.w is None]
        jack_fail = len(failed)
        levels = fit.design.blocks[ctx.unit_block].levels
        jack_failed = pd.DataFrame({"left_out": [str(levels[j]) for j in failed],
                                    "status": [jouts[j].status for j in failed],
                                    "reason": [jouts[j].reason for j in failed]})
    notes = list(notes)
    if not ok.any():
        notes.append("every replicate failed; see .failures")
    return BootstrapResult(coefficient_labels(fit), np.asarray(fit.w, dtype=float).copy(),
                           draws, ok, tuple(o.status for o in outs),
                           tuple(o.reason for o in outs), scheme, ci, level, int(B),
                           ss.entropy, dict(ctx.options), jack, jack_fail, jack_failed,
                           time.perf_counter() - t0,
                           tuple(notes), fit)
