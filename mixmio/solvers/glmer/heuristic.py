"""Heuristic for the l0-capped GLMM (any Z; exact cluster gains for a random intercept).

1. Start: the fit with only the forced-in columns (the pooled GLM when none), or ``warm``.
2. Support step: for a random intercept, every cluster's exact deviance gain at the current
   fixed effects (``_engine_clusters``: the 1-D fit of its own gamma) and the top k of them;
   otherwise the score statistic g_c^2 / (Z_c'WZ_c + ridge) of every unselected column and
   the curvature-weighted size gamma_c^2 (Z_c'WZ_c + ridge) / 2 of every selected one, top k
   per cap.  Beta step: the exact fit on the support (:func:`mixmio.solvers.glmer.fit.fit_support`).
   Alternated until the support repeats (neither step increases F for the intercept case:
   the top k of the gains minimise over supports at fixed beta).
3. Swap search: the few weakest selected against the few strongest unselected columns, each
   pair refitted exactly, the best improving swap taken, until none improves (or the
   deadline).  ``random_state`` breaks ties between equal scores.

Forced-in / excluded columns (singleton ``==`` rows) are respected; other indicator rows and
caps on fixed effects are not handled here (the front door routes those models to SCIP).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.glmer.clusters import Clusters
from mixmio.solvers.glmer.fit import fit_support, row_terms
from mixmio.solvers.solution import Solution, gap_scale

__all__ = ["heuristic", "forced_sets"]

SOLVER_NAME = "mixmio-glmer-heuristic"
SWAP_WIDTH = 4


def _cap_groups(problem: GlmmProblem):
    """[(Z column indices, k)] of the caps over random-effect columns."""
    p = problem.p
    out = []
    for c in problem.caps:
        idx = np.asarray(c.index, dtype=int)
        idx = idx[idx >= p] - p
        if idx.size:
            out.append((idx, int(c.k)))
    return out


def forced_sets(problem: GlmmProblem):
    """(forced in, forced out) bool masks over Z's columns from the singleton indicator rows
    (ForceInclude compiles to z >= 1 or z == 1, Exclude to z <= 0 or z == 0): a row that
    only z = 1 satisfies forces the column in, one only z = 0 satisfies forces it out, a row
    both satisfy is vacuous.  Raises ValueError when no value satisfies a row."""
    m, p = problem.m, problem.p
    fin = np.zeros(m, dtype=bool)
    fout = np.zeros(m, dtype=bool)
    for c in problem.constraints:
        if c.index.size != 1 or c.index[0] < p:
            continue
        j = int(c.index[0]) - p
        ok = [c.satisfied(np.eye(1, problem.p + m, p + j).ravel() * z) for z in (0.0, 1.0)]
        if not any(ok):
            raise ValueError(f"indicator row {c.name!r} has no feasible value")
        if not ok[0]:
            fin[j] = True
        elif not ok[1]:
            fout[j] = True
    if np.any(fin & fout):
        raise ValueError("a cluster is both forced in and excluded")
    return fin, fout


def _scores(problem: GlmmProblem, w: np.ndarray, cl: Clusters | None):
    """Per Z column: how much it is worth (selected: its own value; else its gain)."""
    p = problem.p
    if cl is not None:
        v = problem.X @ w[:p] + problem.offset
        est, _, _, _ = cl.gains(v)
        return est
    eta = problem.eta(w)
    _, d1, d2 = row_terms(problem.family, eta, problem.y, problem.weights, problem.sat)
    Z = sp.csc_matrix(problem.Z)
    g = Z.T @ d1 + problem.ridge * w[p:]
    Hd = np.asarray(Z.multiply(Z).T @ d2).ravel() + problem.ridge
    gam = w[p:]
    return np.where(gam != 0, 0.5 * gam * gam * Hd + 0.5 * g * g / Hd, 0.5 * g * g / Hd)


def intercept_codes(problem: GlmmProblem) -> bool:
    """One (1 | g) term whose Z is the one-hot matrix of its codes."""
    if len(problem.terms) != 1 or problem.terms[0].q != 1:
        return False
    Z = sp.csr_matrix(problem.Z)
    t = problem.terms[0]
    return bool(Z.shape[1] == t.n_levels and np.all(np.diff(Z.indptr) == 1)
                and np.all(Z.data == 1.0) and np.array_equal(Z.indices, np.asarray(t.codes)))


def _choose(scores, groups, fin, fout, rng):
    mask = fin.copy()
    jitter = 1e-12 * rng.random(scores.size) * (1.0 + np.abs(scores))
    s = np.where(fout, -np.inf, scores + jitter)
    for idx, k in groups:
        room = k - int(mask[idx].sum())
        cand = idx[~mask[idx] & ~fout[idx]]
        if room > 0 and cand.size:
            top = cand[np.argsort(-s[cand], kind="stable")[:room]]
            mask[top] = True
    return mask


def _feasible(mask, groups):
    return all(int(mask[idx].sum()) <= k for idx, k in groups)


def heuristic(problem: GlmmProblem, warm=None, random_state=None, deadline=None) -> Solution:
    """A good feasible point (status ``heuristic``, no bound); see the module docstring."""
    t0 = time.perf_counter()
    deadline = np.inf if deadline is None else float(deadline)
    rng = np.random.default_rng(random_state)
    p, m = problem.p, problem.m
    groups = _cap_groups(problem)
    fin, fout = forced_sets(problem)
    cl = None
    if intercept_codes(problem):
        cl = Clusters(problem.family, problem.y, problem.weights, problem.sat,
                      np.asarray(problem.terms[0].codes), m, problem.ridge)
    capped = np.zeros(m, dtype=bool)
    for idx, _ in groups:
        capped[idx] = True
    base = fin | ~capped            # uncapped random columns are always free

    cache: dict[bytes, tuple[np.ndarray, float]] = {}

    def fit(mask, start=None):
        key = np.packbits(mask).tobytes()
        if key not in cache:
            w, _, _ = fit_support(problem, mask, start=start, deadline=deadline)
            cache[key] = (w, problem.objective(w))
        return cache[key]

    starts = [base.copy()]
    if warm is not None:
        wm = np.asarray(warm.w != 0 if isinstance(warm, Solution) else warm, dtype=bool)
        wm = wm[p:] if wm.size == p + m else wm
        wm = (wm | base) & ~fout
        if not _feasible(wm, groups):
            w0, _ = fit(wm)
            wm = _choose(_scores(problem, w0, cl), groups, base, fout, rng) | (wm & ~capped)
        starts.append(wm)
    best_w, best_f, best_mask = None, np.inf, None
    for mask in starts:
        w, f = fit(mask)
        for _ in range(20):               # alternate support and beta steps
            new = _choose(_scores(problem, w, cl), groups, base, fout, rng) | (base)
            if np.array_equal(new, mask) or time.perf_counter() > deadline:
                break
            w2, f2 = fit(new, start=w)
            if f2 >= f - 1e-12 * abs(f):
                break
            mask, w, f = new, w2, f2
        if f < best_f:
            best_w, best_f, best_mask = w, f, mask
    # starts is never empty and the objective of a fit is finite: the first start is kept
    assert best_mask is not None and best_w is not None
    mask, w, f = best_mask, best_w, best_f
    # swap search
    while time.perf_counter() < deadline:
        sc = _scores(problem, w, cl)
        best = None
        for idx, _k in groups:
            sel = idx[mask[idx] & ~fin[idx]]
            out = idx[~mask[idx] & ~fout[idx]]
            if sel.size == 0 or out.size == 0:
                continue
            weak = sel[np.argsort(sc[sel], kind="stable")[:SWAP_WIDTH]]
            strong = out[np.argsort(-sc[out], kind="stable")[:SWAP_WIDTH]]
            for i in weak:
                for j in strong:
                    cand = mask.copy()
                    cand[i], cand[j] = False, True
                    w2, f2 = fit(cand, start=w)
                    if f2 < f - 1e-10 * abs(f) and (best is None or f2 < best[1]):
                        best = (cand, f2, w2)
                    if time.perf_counter() > deadline:
                        break
        if best is None:
            break
        mask, f, w = best[0], best[1], best[2]
    obj = problem.objective(w)
    return Solution(w=w, objective=obj, best_bound=-np.inf, status="heuristic",
                    solver=SOLVER_NAME, solve_time=time.perf_counter() - t0, nodes=None,
                    message="heuristic: no bound",
                    z=np.concatenate([np.zeros(p, dtype=bool), mask]),
                    gap_scale=gap_scale(problem))
