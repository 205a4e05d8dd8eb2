"""Replicate machinery shared by the bootstrap, the jackknife and stability selection.

Everything a worker needs travels in one picklable :class:`_Context` (arrays and cap sizes, no
DataFrames, no formula).  A replicate is a module-level function of ``(context, task)`` that is
deterministic given the task's seed: it builds the replicate :class:`~mixmio.problem.Problem`,
re-runs the selection through ``context.solve`` (:func:`mixmio.solvers.solve`; mio_glmer's
context swaps in ``solve_glmm``), applies the fit's refit rule and maps the coefficients back
to the full-data layout (NaN for coefficients the replicate does not have).
Failures are returned as values (``_Out.reason``), never raised.

Replicates run through ``joblib.Parallel(n_jobs=...)``: local processes for ``n_jobs > 1`` and
whatever backend is active, e.g. Dask under ``joblib.parallel_config(backend="dask")``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mixmio.design import term_z
from mixmio.problem import CapSet, Problem, TermStructure

if TYPE_CHECKING:
    from mixmio.problem.glmer import GlmmProblem

#: solver statuses that make a replicate a failure
FAILED_STATUSES = ("infeasible", "error")


@dataclass(frozen=True, eq=False)
class _Block:
    """One random-effects term of the fit, as arrays."""

    label: str
    group: str
    values: np.ndarray  # (n, q)
    codes: np.ndarray  # (n,)
    n_levels: int
    z_start: int
    labels: tuple[str, ...]
    caps: tuple[int, ...]  # cap k per term column

    @property
    def q(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class _Context:
    """What a worker needs to build and solve any replicate of one fit."""

    problem: Problem  # the fit's problem (response less offset)
    mu: np.ndarray  # X beta + Z gamma of the reported fit (offset excluded)
    resid: np.ndarray  # y - mu
    sigma: float
    blocks: tuple[_Block, ...]
    fixed_cap: CapSet | None
    support: np.ndarray  # bool over w: the full-data selection's support
    refit: bool
    solve_kw: dict
    unit_block: int  # which block's levels are the resampling units
    options: dict = field(default_factory=dict)

    @property
    def X(self) -> np.ndarray:
        return self.problem.X

    @property
    def Z(self) -> sp.csc_matrix:
        return self.problem.Z

    @property
    def y(self) -> np.ndarray:
        return self.problem.y

    @property
    def ridge(self) -> float:
        return self.problem.ridge

    @property
    def penalized(self) -> np.ndarray:
        return self.problem.penalized

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def n_coef(self) -> int:
        return self.X.shape[1] + self.Z.shape[1]

    @property
    def unit_codes(self) -> np.ndarray:
        return self.blocks[self.unit_block].codes

    @property
    def n_units(self) -> int:
        return self.blocks[self.unit_block].n_levels

    def solve(self, problem, **kw):
        """The replicate solve, :func:`mixmio.solvers.solve`; a subclass for another model
        swaps in its own (mio_glmer's contexts call ``solve_glmm`` on a ``GlmmProblem``)."""
        from mixmio import solvers

        return solvers.solve(problem, **kw)


@dataclass(frozen=True)
class _Out:
    """One replicate's outcome: mapped coefficients (or None), solver status, failure reason."""

    w: np.ndarray | None
    status: str
    reason: str = ""


RESAMPLE_UNSUPPORTED = ("resampling clusters or observations of a fit with sign caps, or with "
                        "constraints or an l1 term on cluster effects, is not supported "
                        "(they refer to the full data's clusters; constraints on fixed-effect "
                        "columns are fine). For fit.bootstrap use scheme='residual', 'wild' "
                        "or 'parametric'; for fit.stability, fit without those constraints")


def check_replicate_args(fit, solver: str, time_limit) -> None:
    """The per-replicate solver settings, checked before any replicate runs."""
    from mixmio._checks import check_solve_args
    from mixmio.solvers import check_solver

    check_solve_args(fit.mip_gap, time_limit)
    check_solver(solver)


def unit_block_index(fit, cluster_by: str | None) -> int:
    """Index of the block whose grouping factor is the resampling unit."""
    blocks = fit.design.blocks
    if not blocks:
        raise ValueError("the fit has no random-effects term")
    if cluster_by is None:
        return 0
    for i, b in enumerate(blocks):
        if b.group == cluster_by:
            return i
    raise ValueError(f"cluster_by={cluster_by!r} names no grouping factor of the fit; the "
                     f"grouping factors are {[b.group for b in blocks]}")


def make_context(fit, *, unit_block: int = 0, solver: str = "auto",
                 time_limit: float | None = None, options: dict | None = None) -> _Context:
    pr = fit.problem
    k = fit.k
    blocks = []
    for b in fit.design.blocks:
        blocks.append(_Block(b.label, b.group, np.asarray(b.values, dtype=float),
                             np.asarray(b.codes, dtype=np.int64), int(b.n_levels),
                             int(b.z_slice.start), tuple(b.labels),
                             tuple(int(k[lab]) for lab in b.labels)))
    fixed_cap = next((c for c in pr.caps if c.label == "fixed effects"), None)
    w = np.asarray(fit.w, dtype=float)
    mu = pr.X @ w[: pr.p] + pr.Z @ w[pr.p:]
    support = np.asarray(fit.solution.w) != 0
    solve_kw = {"solver": solver, "time_limit": time_limit, "mip_gap": fit.mip_gap,
                "warm_start": True}
    return _Context(pr, mu, pr.y - mu, float(fit.sigma), tuple(blocks), fixed_cap, support,
                    bool(fit.refit), solve_kw, int(unit_block), dict(options or {}))


# -- building replicate problems ---------------------------------------------------------------
def compact(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel codes to 0..L-1 over the levels present; returns (new codes, original levels)."""
    present, new = np.unique(codes, return_inverse=True)
    return new.astype(np.int64).ravel(), present.astype(np.int64)


def sub_problem(ctx: _Context, rows: np.ndarray, y: np.ndarray,
                block_codes: list[tuple[np.ndarray, np.ndarray]]
                ) -> tuple[Problem, np.ndarray]:
    """Problem on ``rows`` with new level codes per block.

    ``block_codes[i] = (codes, orig)``: the new level of every row of block ``i`` and the original
    level of every new level (duplicates allowed: a resampled cluster drawn twice is two new
    levels).  Caps keep their size (at most the number of levels left).  Returns the problem and
    ``colmap``, the original coefficient index of every new coefficient.
    """
    if not resamplable(ctx.problem):  # callers refuse such fits before any replicate runs
        raise NotImplementedError(RESAMPLE_UNSUPPORTED)
    p = ctx.p
    X = ctx.X[rows]
    zparts, caps, terms, colmap = [], [], [], [np.arange(p)]
    start = 0
    for b, (codes, orig) in zip(ctx.blocks, block_codes, strict=True):
        nl = len(orig)
        vals = b.values[rows]
        zparts.append(term_z(vals, codes, nl))
        for j in range(b.q):
            caps.append(CapSet(b.labels[j], p + start + j * nl + np.arange(nl),
                               min(b.caps[j], nl)))
            colmap.append(p + b.z_start + j * b.n_levels + orig)
        terms.append(TermStructure(b.label, start, b.q, nl, codes, vals))
        start += b.q * nl
    if ctx.fixed_cap is not None:
        caps.append(ctx.fixed_cap)
    Z = sp.hstack(zparts, format="csc") if zparts else sp.csc_matrix((len(rows), 0))
    penalized = np.concatenate([ctx.penalized[:p], np.ones(start, dtype=bool)])
    # constraints and the l1 term on fixed-effect columns carry over unchanged: those columns
    # keep their positions (resamplable() admits nothing that refers to a cluster)
    pr = ctx.problem
    l1 = None if pr.l1 is None else np.concatenate([np.asarray(pr.l1, float)[:p],
                                                    np.zeros(start)])
    problem = Problem(X, Z, np.asarray(y, dtype=float), ctx.ridge, tuple(caps), penalized,
                      tuple(terms), constraints=tuple(pr.constraints), l1=l1)
    return problem, np.concatenate(colmap).astype(np.int64)


def resamplable(problem: Problem) -> bool:
    """True when resampling clusters or rows keeps the problem's meaning: no sign caps, and
    every constraint and l1 weight on fixed-effect columns only (e.g. the automatic grouping
    of a factor's dummies under k_fixed, ForceInclude of a column, Robust)."""
    if problem.sign_caps:
        return False
    p = problem.p
    if any(np.any(np.asarray(c.index) >= p) for c in problem.constraints):
        return False
    return problem.l1 is None or not np.any(np.asarray(problem.l1, float)[p:] != 0)


def same_problem(ctx: _Context, y: np.ndarray) -> tuple[Problem, None]:
    """The fit's problem with a new response (clusters fixed; constraints, sign caps and the
    l1 term kept)."""
    return replace(ctx.problem, y=y), None


def map_back(w: np.ndarray, colmap: np.ndarray | None, n_coef: int) -> np.ndarray:
    """Coefficients in the full-data layout; NaN where absent.

    A cluster drawn twice has two identical copies, and which copy an optimum selects is an
    exact tie that the solver breaks.  The copy with the largest ``|estimate|`` (the first
    among equals) is reported, so a cluster counts as selected when any copy is, whichever
    tied optimum the solver returned.

    >>> map_back(np.array([0.0, 2.0, 5.0]), np.array([1, 1, 0]), 3).tolist()
    [5.0, 2.0, nan]
    """
    w = np.asarray(w, dtype=float)
    if colmap is None:
        return w.copy()
    colmap = np.asarray(colmap)
    out = np.full(n_coef, np.nan)
    order = np.lexsort((-np.abs(w), colmap))  # by column, largest |w| first, stable
    cols = colmap[order]
    head = np.ones(cols.size, dtype=bool)
    head[1:] = cols[1:] != cols[:-1]
    out[cols[head]] = w[order][head]
    return out


def warm_mask(ctx: _Context, problem: Problem | GlmmProblem, colmap: np.ndarray | None
              ) -> np.ndarray:
    """The full-data support in the replicate's layout, trimmed to the caps."""
    if colmap is None:
        return ctx.support.copy()
    mask = ctx.support[colmap].copy()
    first = np.zeros(len(colmap), dtype=bool)
    first[np.unique(colmap, return_index=True)[1]] = True
    mask &= first
    for cap in problem.caps:
        on = cap.index[mask[cap.index]]
        if len(on) > cap.k:
            mask[on[cap.k:]] = False
    return mask


# -- solving -----------------------------------------------------------------------------------
#: how replicates are warm-started (recorded in the results' options)
WARM_START = "full-data support"


def solve_and_refit(ctx: _Context, problem: Problem | GlmmProblem, colmap, seed: int) -> _Out:
    """Selection re-solve through ``ctx.solve`` (+ the fit's refit rule); failures as
    values."""
    kw = dict(ctx.solve_kw, random_state=int(seed), warm=warm_mask(ctx, problem, colmap))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = ctx.solve(problem, **kw)
    return replicate_out(ctx, problem, sol, colmap)


def replicate_out(ctx: _Context, problem: Problem | GlmmProblem, sol, colmap) -> _Out:
    """A replicate's solution as an :class:`_Out`: failed statuses, non-finite or infeasible
    coefficients become failures; the fit's refit rule applies; columns that are all zero in
    the replicate are missing (NaN), not zero estimates."""
    from mixmio.results.refit import refit_if_feasible

    status = str(getattr(sol, "status", "error"))
    if status in FAILED_STATUSES:
        msg = getattr(sol, "message", "")
        return _Out(None, status, f"solver status {status!r}" + (f": {msg}" if msg else ""))
    w = np.asarray(sol.w, dtype=float)
    if w.shape != (problem.n_coef,) or not np.all(np.isfinite(w)):
        return _Out(None, status, "solver returned non-finite or mis-shaped coefficients")
    base = cast("Problem", getattr(problem, "base", problem))  # a GlmmProblem: its base's caps
    if not base.is_feasible(w):
        return _Out(None, status, "solver returned coefficients that break a cap")
    if ctx.refit:  # the fit's own rule (mio_lmer / mio_lm): a linear problem, base is problem
        w = refit_if_feasible(base, w, z=sol.z)
        if not np.all(np.isfinite(w)):
            return _Out(None, status, "refit on the selected support is not finite")
    # a fixed-effect column that is all zero in the replicate (e.g. a factor level whose only
    # cluster was not drawn) is not estimated there: missing, not a zero estimate
    dead = ~np.any(problem.X != 0, axis=0)
    if dead.any():
        w = w.copy()
        w[: problem.p][dead] = np.nan
    return _Out(map_back(w, colmap, ctx.n_coef), status)


def seeds_of(seed: np.random.SeedSequence) -> tuple[np.random.Generator, int]:
    """(data generator, solver seed) of one replicate, without mutating the SeedSequence."""
    state = seed.generate_state(2)
    return np.random.default_rng(int(state[0])), int(state[1])


#: chunks per worker (see run_tasks)
CHUNKS_PER_WORKER = 8


# -- running -----------------------------------------------------------------------------------
class ReplicateAccounting:
    """``n_ok`` and ``failures`` of a result with ``ok``, ``statuses`` and ``reasons`` arrays."""

    ok: np.ndarray  # set by the (dataclass) result classes
    statuses: tuple
    reasons: tuple

    @property
    def n_ok(self) -> int:
        return int(np.sum(self.ok))

    @property
    def failures(self) -> pd.DataFrame:
        """One row per failed replicate: replicate number, solver status, reason."""
        idx = np.flatnonzero(~self.ok)
        return pd.DataFrame({"replicate": idx.astype(int),
                             "status": [self.statuses[i] for i in idx],
                             "reason": [self.reasons[i] for i in idx]})

    @property
    def status_counts(self) -> pd.Series:
        """Solver statuses of all replicates (``optimal``, ``time_limit``, ..., ``exception``)."""
        return pd.Series(self.statuses, dtype=object).value_counts()

    def unproven_note(self) -> str | None:
        """A NOTE when successful replicates include selections not proven optimal (time
        limit, heuristic, ...): they count as draws, and the reader should know."""
        st = pd.Series([s for s, ok in zip(self.statuses, self.ok, strict=True) if ok],
                       dtype=object)
        other = st[st != "optimal"].value_counts()
        if other.empty:
            return None
        detail = ", ".join(f"{k} {v}" for k, v in other.items())
        return (f"{int(other.sum())} of the {len(st)} successful replicates are not proven "
                f"optimal ({detail}); their selections may differ from the exact ones")


def _in_jupyter() -> bool:
    """True inside a Jupyter (IPython kernel) session, the test ``tqdm.auto`` makes."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # noqa: BLE001 - any failure means: not a kernel
        return False


def show_progress(progress: bool) -> bool:
    """Whether ``progress=True`` draws a bar here: in a Jupyter kernel (a widget, drawn by
    ``tqdm.auto``) or when stderr is a terminal (text); never when ``progress`` is False,
    and not when stderr is a pipe or a file (batch jobs, logs, CI stay quiet).  The bar goes
    to stderr (a notebook's output area), never to stdout."""
    if not progress:
        return False
    if _in_jupyter():
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(progress: bool, total: int, desc: str, unit: str):
    """A ``tqdm.auto`` bar over ``total`` items when :func:`show_progress` says so, else
    None.  ``tqdm.auto`` picks the widget in Jupyter and text in a terminal."""
    if not show_progress(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


@contextlib.contextmanager
def _glibc_malloc_defaults():
    """Undo, for the duration of a chunk, a ``MALLOC_TRIM_THRESHOLD_`` set in the environment.

    Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``. Setting that knob
    also switches off glibc's dynamic mmap threshold, so the arrays a replicate allocates and
    frees are returned to the system and page-faulted back in over and over: a replicate ran
    ~40% slower in a Dask worker than in a loky worker or the main process (measured in
    ``benchmarks/bench_bootstrap.py``). Inside the chunk the thresholds are raised to glibc's
    dynamic ceiling; afterwards both are set back to what the environment asked for (with the
    trim variable set, glibc keeps them fixed, so the restore is exact). A no-op without that
    variable or off glibc. The thresholds are process-wide, so under a threading backend
    concurrent chunks share one raise: the first to enter raises them and the last to leave
    restores them.
    """
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = None
    if trim is not None and sys.platform.startswith("linux"):
        try:
            import ctypes
            import platform

            if platform.libc_ver()[0] == "glibc":
                libc = ctypes.CDLL("libc.so.6")
                trim, mmap = int(trim), int(os.environ.get("MALLOC_MMAP_THRESHOLD_", 128 * 1024))
        except (OSError, ValueError):
            libc = None
    if libc is None:
        yield
        return
    global _malloc_users
    with _malloc_lock:  # process-wide setting: the first chunk in raises, the last out restores
        if _malloc_users == 0:
            libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024 * 1024)
            libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        _malloc_users += 1
    try:
        yield
    finally:
        with _malloc_lock:
            _malloc_users -= 1
            if _malloc_users == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, trim)
                libc.mallopt(_M_MMAP_THRESHOLD, mmap)


_malloc_lock = threading.Lock()
_malloc_users = 0  # chunks inside _glibc_malloc_defaults in this process (threading backends)


def _chunk(fn, ctx: _Context, tasks: list) -> list[_Out]:
    """Run replicates with single-threaded BLAS.

    Replicates are the unit of parallelism, so BLAS threads inside one only oversubscribe the
    cores (on small problems multi-threaded OpenBLAS made replicates ~10x slower), and a fixed
    thread count keeps floating-point results, hence selections, identical on every backend.
    """
    from mixmio.solvers.bnb.cd import single_thread

    with single_thread(user_api=None), _glibc_malloc_defaults():
        return [fn(ctx, t) for t in tasks]


def run_tasks(fn, ctx: _Context, tasks: list, n_jobs, progress: bool, desc: str) -> list[_Out]:
    """``fn(ctx, task)`` for every task through joblib's active backend, results in task order.

    Tasks travel in chunks (about eight per worker: few enough that the context, which holds
    the design arrays, is not shipped per replicate; enough for load balance).  Each task is
    deterministic given its own seed, so chunking never changes the results.
    """
    from joblib import Parallel, delayed, effective_n_jobs

    workers = max(1, effective_n_jobs(n_jobs))
    if workers == 1:
        chunks = [[t] for t in tasks]
    else:
        size = max(1, -(-len(tasks) // (CHUNKS_PER_WORKER * workers)))
        chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    par = Parallel(n_jobs=n_jobs, return_as="generator")
    gen = par(delayed(_chunk)(fn, ctx, c) for c in chunks)
    bar = progress_bar(progress, len(tasks), desc, "replicate")
    if bar is None:
        return [out for chunk in gen for out in chunk]
    outs: list[_Out] = []
    with bar:
        for chunk in gen:  # the bar counts replicates, advanced a chunk at a time
            outs.extend(chunk)
            bar.update(len(chunk))
    return outs
