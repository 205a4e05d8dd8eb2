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

Public: :func:`applies`, :func:`solve_engine`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp

from mixmio.problem import Problem
from mixmio.solvers._engine_bnb import BnB, hard_directions
from mixmio.solvers._engine_stats import build_stats, heuristic_support
from mixmio.solvers.solution import Solution, relative_gap

__all__ = ["applies", "solve_engine"]

SOLVER_NAME = "mixmio-bnb"


def _intercept_term(problem: Problem):
    """The single random-intercept TermStructure, or None.  (Hook: slopes / several terms would
    be recognised here and dispatched to their own statistics.)"""
    if len(problem.terms) != 1:
        return None
    t = problem.terms[0]
    if t.q != 1:
        return None
    vals = np.asarray(t.values)
    if vals.shape[0] != problem.n or not np.all(vals == 1.0):
        return None
    return t


def applies(problem: Problem) -> bool:
    """True when the engine solves ``problem`` exactly: one random-intercept term whose columns
    are exactly Z (one-hot of the term's codes), one cap on exactly those columns, no cap or ridge
    on beta, every gamma penalised, ridge > 0, no holistic constraints."""
    try:
        if problem.constraints:
            return False
        t = _intercept_term(problem)
        if t is None:
            return False
        p, m, K = problem.p, problem.m, int(t.n_levels)
        if m != K or t.start != 0:
            return False
        if not (np.isfinite(problem.ridge) and problem.ridge > 0):
            return False
        if len(problem.caps) != 1:
            return False
        cap = problem.caps[0]
        idx = np.sort(np.asarray(cap.index, dtype=int))
        if idx.size != K or not np.array_equal(idx, p + t.start + np.arange(K)):
            return False
        if cap.k < 0:
            return False
        pen = np.asarray(problem.penalized, dtype=bool)
        if pen.size != p + m or pen[:p].any() or not pen[p:].all():
            return False
        codes = np.asarray(t.codes)
        if codes.shape != (problem.n,) or (codes.size and (codes.min() < 0 or codes.max() >= K)):
            return False
        # Z must be the one-hot matrix of the codes
        Z = sp.csr_matrix(problem.Z)
        if Z.nnz != problem.n:
            Z.eliminate_zeros()
        if Z.nnz != problem.n:
            return False
        Z.sort_indices()
        if not (np.all(np.diff(Z.indptr) == 1) and np.array_equal(Z.indices, codes)
                and np.all(Z.data == 1.0)):
            return False
        return True
    except Exception:  # pragma: no cover - defensive: anything odd means "not for us"
        return False


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


def solve_engine(problem: Problem, time_limit: float | None = None, mip_gap: float = 1e-4,
                 warm=None, random_state=None, log: list | None = None) -> Solution:
    """Solve a random-intercept Problem exactly (see module docstring).

    ``warm``: a Solution or a boolean support mask (length K, or p + K over w) used as an extra
    starting support.  ``log``: optional list that receives ("incumbent" | "bound", seconds,
    value) events (for time-to-gap trajectories).  Status is ``"optimal"`` only when the proven
    relative gap is at most ``mip_gap``; otherwise ``"time_limit"`` (with a warning).
    """
    t0 = time.perf_counter()
    if not applies(problem):
        raise ValueError("solve_engine: problem is not a plain random-intercept problem "
                         "(see intercept_engine.applies)")
    del random_state  # deterministic; accepted for API symmetry
    term = problem.terms[0]
    K = int(term.n_levels)
    k = int(min(problem.caps[0].k, K))
    codes = np.asarray(term.codes, dtype=np.int64)
    st = build_stats(problem.X, problem.y, codes, K, float(problem.ridge), k)
    deadline = None if time_limit is None else t0 + time_limit
    wm = _warm_mask(warm, problem, K)
    sel, f0 = heuristic_support(st, k, wm, deadline=deadline)
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, f0))
    V = hard_directions(st)
    bnb = BnB(st, k, V)
    sel, U, bound, nodes, timed_out = bnb.run(sel, f0, mip_gap, time_limit, t0, log=log)
    beta, gamma = st.coefficients(sel, problem.y, problem.X, codes)
    w = np.concatenate([beta, gamma])
    obj = problem.objective(w)
    bound = min(bound, obj)
    gap = relative_gap(obj, bound)
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, obj))
        log.append(("bound", time.perf_counter() - t0, bound))
    if gap <= mip_gap:
        status = "optimal"
        msg = f"proven relative gap {gap:.2e} <= {mip_gap:.0e}"
    elif timed_out:
        status = "time_limit"
        msg = f"time limit reached with relative gap {gap:.3e}"
        warnings.warn(f"mixmio-bnb: {msg}", RuntimeWarning, stacklevel=2)
    else:
        # tree exhausted, but the rounding safety margins leave a gap above mip_gap
        status = "gap_limit"
        msg = (f"search complete; proven relative gap {gap:.3e} exceeds mip_gap {mip_gap:.0e} "
               "only by the floating-point safety margins")
        warnings.warn(f"mixmio-bnb: {msg}", RuntimeWarning, stacklevel=2)
    return Solution(
        w=w, objective=obj, best_bound=float(bound), status=status, solver=SOLVER_NAME,
        solve_time=time.perf_counter() - t0, nodes=nodes, message=msg,
        info={"support": np.flatnonzero(sel), "heuristic_objective": f0,
              "reduced_objective": U, "hard_directions": V.shape[1], "timed_out": timed_out,
              "mip_gap": mip_gap},
    )
