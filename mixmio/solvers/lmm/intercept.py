"""Exact, certified engine for the random-intercept case (issue 4).

Problem: one random-intercept term (q = 1) with K clusters, at most k non-zero cluster effects,
unpenalised fixed effects, ridge mu > 0 on the cluster effects::

    minimize 1/2 ||y - X beta - Z gamma||^2 + mu/2 ||gamma||^2   s.t. ||gamma||_0 <= k.

Method (details and validity proofs in ``benchmarks/ENGINE.md``):

1. One pass over the rows reduces the data to per-cluster sufficient statistics
   (``_engine_stats``): for fixed beta = b the best selected gamma_j is the cluster's mean
   residual shrunk by n_j / (n_j + mu), and the objective is
   ``F(b) = W(b) + 1/2 * (sum of the K - k smallest phi_j(b))`` with W a convex quadratic and
   ``phi_j(b) = (a_j - d_j'b)^2 / (n_j + mu)``.  Everything afterwards is independent of n.
2. Incumbent: top-k clusters at the OLS fit, alternating b / support steps, then best-improvement
   swap search scored in O(p) per swap by rank-two updates of a (p+1) x (p+1) inverse.
3. Certificate: best-first branch and bound over (a) boxes of the few "hard" directions of b
   along which W is nearly flat (the intercept, cluster-level covariates) and (b) cluster
   indicators.  Node bounds: an ellipsoid containing every improving b, interval bounds on each
   phi_j over it, classification of clusters as surely selected / surely unselected (their exact
   phi then joins the quadratic, shrinking the ellipsoid), iterated to a fixed point
   (``_engine_bnb``).
   When the cluster-level columns are categorical (the intercept plus a school-type factor,
   say: at least two hard directions spanning the indicators of groups of clusters), the hard
   directions are group locations instead, and ``_engine_groups`` solves the trimmed problem
   exactly per group and bisects only the remaining ("soft") coefficients.

Also registered from here (``structure`` recognises them; details in ENGINE.md sections 7-8):
one random-slope term with q = 2 and a cap per term column (``lmm.slopes``, :func:`run_slopes`),
and two crossed random-intercept terms with a cap each (``lmm.crossed``, :func:`run_crossed`).
Each is its own entry of :data:`mixmio.solvers.engines.ENGINES` (``bnb-intercept``,
``bnb-slopes``, ``bnb-crossed``), with ``structure``'s kind as its ``why_not``.

Paths over k: Problems made by ``dataclasses.replace(problem, caps=...)`` share X, y, Z and
terms, so the check of Z and the statistics (step 1, with the hard directions) are computed once
and reused (small identity-keyed caches, with checksums against in-place edits).

Public: :func:`applies`, :func:`structure`, :func:`cached_stats`,
:func:`run_intercept`, :func:`run_slopes`, :func:`run_crossed`.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import scipy.sparse as sp

from mixmio.problem import Problem, TermStructure
from mixmio.solvers.bnb.bestfirst import finish
from mixmio.solvers.bnb.cd import single_thread
from mixmio.solvers.bnb.intercept import BnB, hard_directions
from mixmio.solvers.lmm.enum import ENUM_SECONDS, enumerate_best, estimated_seconds
from mixmio.solvers.lmm.groups import GroupBnB
from mixmio.solvers.lmm.groups import detect as detect_groups
from mixmio.solvers.lmm.stats import build_stats, heuristic_support
from mixmio.solvers.solution import Solution

__all__ = ["applies", "structure", "run_intercept", "run_slopes", "run_crossed"]

SOLVER_NAME = "mixmio-bnb"
ENUM_AFTER = 1.0  # seconds of branch and bound before enumerating (when that is affordable)


def _one_column_term(problem: Problem):
    """The single one-column term: ``(1 | g)`` or a slope-only ``(0 + x | g)``, or None."""
    if len(problem.terms) != 1:
        return None
    t = problem.terms[0]
    if t.q != 1:
        return None
    vals = np.asarray(t.values)
    if vals.shape[0] != problem.n or not np.all(np.isfinite(vals)):
        return None
    return t


def _slope_values(term) -> np.ndarray | None:
    """The term's column values, or None for an intercept (all ones)."""
    v = np.asarray(term.values, dtype=float).reshape(-1)
    return None if np.all(v == 1.0) else v


def _z_matches(problem: Problem, terms) -> bool:
    """Z is exactly the row-wise Khatri-Rao product of the terms' level indicators and values."""
    n = problem.n
    if tuple(problem.Z.shape) != (n, problem.m):
        return False
    rows, cols, vals = [], [], []
    for t in terms:
        codes = np.asarray(t.codes)
        values = np.asarray(t.values, dtype=float)
        if codes.shape != (n,) or values.size != n * t.q:
            return False
        values = values.reshape(n, t.q)
        if codes.size and (codes.min() < 0 or codes.max() >= t.n_levels):
            return False
        for j in range(t.q):
            rows.append(np.arange(n))
            cols.append(t.start + j * t.n_levels + codes)
            vals.append(values[:, j])
    Zexp = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, problem.m))
    diff = (sp.csr_matrix(problem.Z) - Zexp).tocsr()
    diff.eliminate_zeros()
    return diff.nnz == 0


def _block_caps(problem: Problem, terms):
    """Per term column block (t, j): its cap k (None when uncapped), or None when some cap is not
    exactly one block or a block carries two caps."""
    p = problem.p
    blocks = {}
    for ti, t in enumerate(terms):
        for j in range(t.q):
            blocks[(ti, j)] = p + t.start + j * t.n_levels + np.arange(t.n_levels)
    out: dict[tuple[int, int], int | None] = {key: None for key in blocks}
    for cap in problem.caps:
        idx = np.sort(np.asarray(cap.index, dtype=int))
        hit = [key for key, b in blocks.items() if np.array_equal(idx, b)]
        if len(hit) != 1 or out[hit[0]] is not None or cap.k < 0:
            return None
        out[hit[0]] = int(cap.k)
    return out


_STRUCTURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Problems made by ``dataclasses.replace(problem, caps=...)`` (a path over k) share Z, terms,
# X, y and ridge; two small identity-keyed caches (id -> (weakref, ...), checked by ``is``, the
# oldest dropped first) let them share the O(nnz) check of Z and the statistics
_CACHE_SIZE = 4
_Z_CHECKED: dict = {}
_STATS: dict = {}


def _recall(cache: dict, obj):
    entry = cache.get(id(obj))
    if entry is None or entry[0]() is not obj:
        return None
    return entry[1:]


def _remember(cache: dict, obj, *values) -> None:
    try:
        ref = weakref.ref(obj)
    except TypeError:  # pragma: no cover - not weak-referenceable: do not cache
        return
    cache.pop(id(obj), None)
    while len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[id(obj)] = (ref, *values)


def _z_matches_cached(problem: Problem, terms) -> bool:
    hit = _recall(_Z_CHECKED, problem.Z)
    if hit is not None and hit[0] is problem.terms and hit[1:3] == (problem.n, problem.m):
        return hit[3]
    ok = _z_matches(problem, terms)
    _remember(_Z_CHECKED, problem.Z, problem.terms, problem.n, problem.m, ok)
    return ok


def _fingerprint(X: np.ndarray, y: np.ndarray, codes: np.ndarray) -> tuple:
    """Cheap checksums (O(n p)) that catch in-place edits of arrays cached by identity.  The
    column sums go through BLAS (``1'X``: about 0.1 ms at 30,000 x 10, against 0.5 ms for the
    pairwise ``X.sum(axis=0)``); any fixed rule will do, as long as it is the same each call."""
    ones = np.ones(X.shape[0])
    return (float(np.sum(y)), float(y @ y), (ones @ X).tobytes(), int(codes @ codes))


def cached_stats(X, y, codes: np.ndarray, K: int, mu: float, k: int, values=None):
    """``build_stats`` remembered per X array: Problems that share the X, y and codes objects
    and the ridge (``dataclasses.replace(problem, caps=...)`` over a path of caps) share one
    set of statistics.  Only the ``k`` field differs, and it is replaced in a shallow copy (the
    arrays are shared and never written to)."""
    import dataclasses

    if not (isinstance(X, np.ndarray) and isinstance(y, np.ndarray)):
        return build_stats(X, y, codes, K, mu, k, values)
    fp = _fingerprint(np.asarray(X, dtype=float), np.asarray(y, dtype=float), codes)
    hit = _recall(_STATS, X)
    if hit is not None:
        y0, c0, v0, K0, mu0, fp0, st = hit
        if y0 is y and K0 == K and mu0 == mu and fp0 == fp and (
                c0 is codes or np.array_equal(c0, codes)) and (
                v0 is values or (v0 is not None and values is not None
                                 and np.array_equal(v0, values))):
            return st if st.k == k else dataclasses.replace(st, k=k)
    st = build_stats(X, y, codes, K, mu, k, values)
    _remember(_STATS, X, y, codes, values, K, mu, fp, st)
    return st


def structure(problem: Problem):
    """("intercept" | "slopes" | "crossed", block caps) when an engine solves ``problem`` exactly,
    else None.  Common requirements: ridge > 0 on every gamma, none on beta, no holistic parts,
    Z exactly the terms' Khatri-Rao columns laid out as in TermStructure, every cap exactly one
    term column block.  The answer is remembered per Problem (checking Z is O(nnz), and the
    registry's ``why_not`` and the engine both ask).  Only the "does not apply" cases return
    None; a bug raises."""
    if problem not in _STRUCTURES:
        _STRUCTURES[problem] = _structure(problem)
    return _STRUCTURES[problem]


def _structure(problem: Problem):
    if problem.constraints or problem.sign_caps or problem.l1 is not None:
        return None
    if not (np.isfinite(problem.ridge) and problem.ridge > 0):
        return None
    terms = tuple(problem.terms)
    if not terms:
        return None
    p, m = problem.p, problem.m
    pen = np.asarray(problem.penalized, dtype=bool)
    if pen.size != p + m or pen[:p].any() or not pen[p:].all():
        return None
    off = 0
    for t in terms:
        if t.start != off:
            return None
        off += t.q * int(t.n_levels)
    if off != m:
        return None
    caps = _block_caps(problem, terms)
    if caps is None or not _z_matches_cached(problem, terms):
        return None
    if len(terms) == 1 and terms[0].q == 1:
        # (1 | g), or a slope-only (0 + x | g): one column per cluster either way
        if _one_column_term(problem) is None or caps[(0, 0)] is None:
            return None
        return "intercept", caps
    if len(terms) == 1 and terms[0].q == 2:
        if caps[(0, 0)] is None and caps[(0, 1)] is None:
            return None
        return "slopes", caps
    if len(terms) == 2 and all(t.q == 1 for t in terms):
        if _same_factor(terms):
            # (1 | g) + (0 + x | g): the columns of (1 + x | g) with a cap per column
            merged = {(0, 0): caps[(0, 0)], (0, 1): caps[(1, 0)]}
            if merged[(0, 0)] is None and merged[(0, 1)] is None:
                return None
            return "slopes", merged
        if not all(np.all(np.asarray(t.values) == 1.0) for t in terms):
            return None
        if caps[(0, 0)] is None and caps[(1, 0)] is None:
            return None
        return "crossed", caps
    return None


def _same_factor(terms) -> bool:
    """Two one-column terms on the same grouping factor, not both intercepts."""
    a, b = terms
    if int(a.n_levels) != int(b.n_levels) or not np.array_equal(a.codes, b.codes):
        return False
    return not (np.all(np.asarray(a.values) == 1.0) and np.all(np.asarray(b.values) == 1.0))


def _merged_term_problem(problem: Problem) -> Problem:
    """``problem`` with its two one-column terms on one factor read as one q = 2 term: Z's
    columns are laid out alike ([K of the first][K of the second]), so nothing else changes."""
    import dataclasses

    a, b = problem.terms
    values = np.column_stack([np.asarray(a.values, dtype=float).reshape(-1),
                              np.asarray(b.values, dtype=float).reshape(-1)])
    term = TermStructure(f"{a.label} + {b.label}", 0, 2, int(a.n_levels), a.codes, values)
    return dataclasses.replace(problem, terms=(term,))


def applies(problem: Problem) -> bool:
    """True when one of the exact engines solves ``problem``: one random-intercept term, one
    random-slope term with q = 2 (a cap on either or both term columns), or two crossed
    random-intercept terms; no cap or ridge on beta, every gamma penalised, ridge > 0, no holistic
    constraints, Z exactly the terms' columns and every cap exactly one term column block."""
    return structure(problem) is not None


def _warm_mask(warm, problem: Problem, K: int) -> np.ndarray | None:
    if warm is None:
        return None
    p = problem.p
    if isinstance(warm, Solution):
        w = np.asarray(warm.w)
        return w[p : p + K] != 0
    wm = np.asarray(warm)
    if wm.dtype != bool:
        wm = wm != 0
    if wm.size == K:
        return wm.copy()
    if wm.size == p + K:
        return wm[p:].copy()
    raise ValueError(f"warm mask has length {wm.size}; expected K={K} or p+K={p + K}")


def _caps_of(problem: Problem, kind: str):
    found = structure(problem)
    if found is None or found[0] != kind:
        raise ValueError(f"the {kind} engine does not apply to this problem "
                         "(see mixmio.solvers.lmm.intercept.structure)")
    return found[1]


def run_intercept(problem: Problem, time_limit=None, mip_gap=1e-4, warm=None, log=None):
    """The random-intercept (or slope-only) engine of the module docstring."""
    t0 = time.perf_counter()
    _caps_of(problem, "intercept")
    # every matrix below is p x p or K x p: BLAS threads only contend with the caller (on a
    # loaded 2-core machine a spinning OpenBLAS worker made a path over k about 2.5x slower)
    with single_thread():
        return _solve_intercept(problem, time_limit, mip_gap, warm, log, t0)


def run_slopes(problem: Problem, time_limit=None, mip_gap=1e-4, warm=None, log=None):
    """One q = 2 random-slope term, or (1 | g) + (0 + x | g) read as one (ENGINE.md 7)."""
    from mixmio.solvers.lmm.slopes import solve_slopes

    t0 = time.perf_counter()
    caps = _caps_of(problem, "slopes")
    if len(problem.terms) == 2:  # (1 | g) + (0 + x | g)
        return solve_slopes(_merged_term_problem(problem), caps, time_limit, mip_gap, warm,
                            log, t0)
    return solve_slopes(problem, caps, time_limit, mip_gap, warm, log, t0)


def run_crossed(problem: Problem, time_limit=None, mip_gap=1e-4, warm=None, log=None):
    """Two crossed random-intercept terms with a cap each (ENGINE.md 8)."""
    from mixmio.solvers.lmm.crossed import solve_crossed

    t0 = time.perf_counter()
    caps = _caps_of(problem, "crossed")
    return solve_crossed(problem, caps, time_limit, mip_gap, warm, log, t0)


#: the engine of each ``structure`` kind (registered in :mod:`mixmio.solvers.engines`)
RUNNERS = {"intercept": run_intercept, "slopes": run_slopes, "crossed": run_crossed}


def _solve_intercept(problem: Problem, time_limit, mip_gap, warm, log, t0) -> Solution:
    term = problem.terms[0]
    K = int(term.n_levels)
    k = int(min(problem.caps[0].k, K))
    codes = np.asarray(term.codes, dtype=np.int64)
    values = _slope_values(term)  # None: a random intercept
    st = cached_stats(problem.X, problem.y, codes, K, float(problem.ridge), k, values)
    deadline = None if time_limit is None else t0 + time_limit
    wm = _warm_mask(warm, problem, K)
    sel, f0 = heuristic_support(st, k, wm, deadline=deadline)
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, f0))
    if "V" not in st.memo:
        st.memo["V"] = hard_directions(st)
    V = st.memo["V"]
    # (0 < k < K: with nothing or everything selectable the generic root is exact, while the
    # grouped path's first-order bound would still bisect)
    groups = None
    # (the grouped path needs indicator columns: cluster-level covariates are constant within a
    # cluster, which has no analogue for a slope-only term)
    if values is None and V.shape[1] >= 2 and 0 < k < K:
        if "groups" not in st.memo:
            st.memo["groups"] = detect_groups(st)
        groups = st.memo["groups"]
    if groups is not None and V.shape[1] > groups.hard.size:
        groups = None  # a soft column is nearly cluster-level too: bisection would crawl
    bnb: GroupBnB | BnB | None = None
    if groups is not None:
        # the cluster-level columns are categorical (at most one continuous one besides):
        # exact trimmed least squares per group of clusters, bisection over the other
        # coefficients only (``_engine_groups``)
        bnb = GroupBnB(st, groups, k)
        if not bnb.free_box(f0):
            bnb, groups = None, None
    if bnb is None:
        bnb = BnB(st, k, V)
    # affordable C(K, k): give the branch and bound a short budget, then enumerate every support
    est = estimated_seconds(K, k, st.p)
    left = np.inf if time_limit is None else time_limit - (time.perf_counter() - t0)
    # race: the branch and bound gets as long as the enumeration is expected to take (at
    # least ENUM_AFTER), so a search that would have finished soon is not replaced by a
    # slower enumeration; the total is at most about twice the better of the two
    head = max(ENUM_AFTER, est)
    enumerable = est <= ENUM_SECONDS and head + est <= left
    bnb_limit = time_limit
    if enumerable:
        bnb_limit = min(time_limit if time_limit is not None else np.inf,
                        time.perf_counter() - t0 + head)
    sel, U, bound, nodes, timed_out = bnb.run(sel, f0, mip_gap, bnb_limit, t0, log=log)
    solver = SOLVER_NAME + ("+groups" if groups is not None else "")
    info = {"heuristic_objective": f0, "hard_directions": V.shape[1]}
    if groups is not None:
        info["cluster_groups"] = groups.n_groups
    if timed_out and enumerable:
        found = enumerate_best(st, k, deadline)
        if found is not None:
            sel_e, f_e, count = found
            if f_e < U:
                sel, U = sel_e, f_e
            # every support evaluated: the bound is the minimum, less a rounding margin
            bound = min(U, f_e) - 1e-10 * max(1.0, abs(f_e))
            timed_out, solver = False, solver + "+enum"
            info["enumerated_supports"] = count
            if log is not None:
                log.append(("bound", time.perf_counter() - t0, bound))
    beta, gamma = st.coefficients(sel)
    w = np.concatenate([beta, gamma])
    info.update(support=np.flatnonzero(sel), reduced_objective=U)
    return finish(problem, w, bound, mip_gap, timed_out, t0, nodes, solver, info, log=log)
