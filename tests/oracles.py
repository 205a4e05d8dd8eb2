"""Independent oracles for solver tests.

``brute_force`` enumerates every feasible support and fits each one by a dense least-squares
solve of the augmented ridge system ``[X~_S; sqrt(ridge) I_pen] w = [y; 0]`` — deliberately not
sharing code with ``mixmio.solvers.heuristics.polish``.  ``make_problem`` builds small random
random-intercept / random-slope Problems directly (no formulas, no DataFrames).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from mixmio.problem import CapSet, Problem, TermStructure


def _fit_support(problem: Problem, S: np.ndarray, lo=None, hi=None) -> tuple[np.ndarray, float]:
    D = problem.design.toarray()[:, S]
    pen = np.asarray(problem.penalized)[S]
    rows = np.sqrt(problem.ridge) * np.eye(S.size)[pen]
    A = np.vstack([D, rows])
    b = np.concatenate([problem.y, np.zeros(rows.shape[0])])
    l1 = None if problem.l1 is None else np.asarray(problem.l1)[S]
    if l1 is not None and np.any(l1 > 0) or lo is not None:
        wS = _convex_fit(A, b, l1, lo, hi)
    else:
        wS = np.linalg.lstsq(A, b, rcond=None)[0]
    w = np.zeros(problem.n_coef)
    w[S] = wS
    r = problem.y - D @ wS
    obj = 0.5 * float(r @ r) + 0.5 * problem.ridge * float(np.sum(wS[pen] ** 2))
    if l1 is not None:
        obj += float(l1 @ np.abs(wS))
    return w, obj


def _convex_fit(A, b, l1, lo, hi) -> np.ndarray:
    """min 1/2||A w - b||^2 + l1'|w| on [lo, hi] by CVXPY (Clarabel): independent of mixmio's
    coordinate descent; tightly solved, then its objective is evaluated exactly."""
    import cvxpy as cp

    w = cp.Variable(A.shape[1])
    obj = 0.5 * cp.sum_squares(A @ w - b)
    if l1 is not None:
        obj = obj + l1 @ cp.abs(w)
    cons = []
    if lo is not None:
        fin = np.isfinite(lo)
        if fin.any():
            cons.append(w[np.flatnonzero(fin)] >= lo[fin])
        fin = np.isfinite(hi)
        if fin.any():
            cons.append(w[np.flatnonzero(fin)] <= hi[fin])
    cp.Problem(cp.Minimize(obj), cons).solve(solver="CLARABEL", tol_gap_abs=1e-12,
                                             tol_gap_rel=1e-12, tol_feas=1e-12)
    return np.asarray(w.value).ravel()


def _sign_patterns(problem: Problem, S: np.ndarray):
    """(lo, hi) bounds for every sign pattern of the sign-capped coefficients in S that the
    sign caps allow (None, None when there are no sign caps)."""
    if not problem.sign_caps:
        yield None, None
        return
    capped_signs = {}
    for sc in problem.sign_caps:
        for j in sc.index:
            capped_signs[int(j)] = sc
    inS = [i for i, j in enumerate(S) if int(j) in capped_signs]
    for pattern in itertools.product((1, -1), repeat=len(inS)):
        ok = True
        for sc in problem.sign_caps:
            pos = sum(1 for i, s in zip(inS, pattern, strict=True) if int(S[i]) in
                      set(sc.index.tolist()) and s > 0)
            neg = sum(1 for i, s in zip(inS, pattern, strict=True) if int(S[i]) in
                      set(sc.index.tolist()) and s < 0)
            ok &= pos <= sc.k_pos and neg <= sc.k_neg
        if not ok:
            continue
        lo = np.full(S.size, -np.inf)
        hi = np.full(S.size, np.inf)
        for i, s in zip(inS, pattern, strict=True):
            if s > 0:
                lo[i] = 0.0
            else:
                hi[i] = 0.0
        yield lo, hi


def brute_force(problem: Problem) -> tuple[float, np.ndarray]:
    """(minimum objective, support mask of capped coefficients selected) over every support
    with at most k selected per cap that satisfies the linear constraints on the indicators
    (z = the support), the sign caps (every allowed sign pattern, bounded fits) and with the
    l1 term in the objective.  Exponential: small problems only."""
    n_coef = problem.n_coef
    capped = np.unique(np.concatenate([c.index for c in problem.caps])) if problem.caps else \
        np.zeros(0, dtype=int)
    free = np.setdiff1d(np.arange(n_coef), capped)
    best_obj, best_mask = np.inf, None
    # enumerate subsets of capped coefficients of total size <= sum of caps, then check caps
    max_total = min(capped.size, sum(c.k for c in problem.caps))
    for size in range(max_total + 1):
        for comb in itertools.combinations(capped, size):
            comb = np.array(comb, dtype=int)
            ok = all(np.isin(c.index, comb).sum() <= c.k for c in problem.caps)
            if not ok:
                continue
            z = np.zeros(n_coef)
            z[comb] = 1.0
            if not all(_row_ok(row, z) for row in problem.constraints):
                continue
            S = np.concatenate([free, comb]).astype(int)
            obj = min(_fit_support(problem, S, lo, hi)[1]
                      for lo, hi in _sign_patterns(problem, S))
            if best_mask is None or obj < best_obj - 1e-12 * max(1.0, abs(best_obj)):
                best_obj = obj
                best_mask = np.zeros(n_coef, dtype=bool)
                best_mask[comb] = True
    return best_obj, best_mask


def _row_ok(row, z: np.ndarray, tol: float = 1e-9) -> bool:
    v = float(np.dot(row.coef, z[row.index]))
    if row.sense == "<=":
        return v <= row.rhs + tol
    if row.sense == ">=":
        return v >= row.rhs - tol
    return abs(v - row.rhs) <= tol


def make_problem(seed: int = 0, K: int = 6, per: int = 8, p: int = 3, k=2, slopes: bool = False,
                 k_slope: int = 1, ridge: float = 0.5, effect: float = 2.0, n_dev: int = 2,
                 sizes: np.ndarray | None = None) -> Problem:
    """Random Problem: X with an intercept column, clusters from random codes, caps per block."""
    rng = np.random.default_rng(seed)
    if sizes is None:
        codes = np.repeat(np.arange(K), per)
        rng.shuffle(codes)
    else:
        codes = np.repeat(np.arange(K), sizes)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(size=p)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    gamma = np.zeros(K)
    dev = rng.choice(K, size=min(n_dev, K), replace=False)
    gamma[dev] = effect * rng.choice([-1, 1], size=dev.size)
    y = X @ beta + A @ gamma + rng.normal(size=n)
    if slopes:
        x1 = X[:, 1]
        Zs = sp.csc_matrix(A.multiply(x1[:, None]))
        Z = sp.hstack([A, Zs], format="csc")
        gs = np.zeros(K)
        gs[dev[:1]] = effect
        y = y + Zs @ gs
        values = np.column_stack([np.ones(n), x1])
        caps = (CapSet("(1|g)", p + np.arange(K), k),
                CapSet("(x|g)", p + K + np.arange(K), k_slope))
        terms = (TermStructure("(1 + x | g)", 0, 2, K, codes, values),)
    else:
        Z = A
        caps = (CapSet("(1|g)", p + np.arange(K), k),)
        terms = (TermStructure("(1 | g)", 0, 1, K, codes, np.ones((n, 1))),)
    m = Z.shape[1]
    penalized = np.concatenate([np.zeros(p, dtype=bool), np.ones(m, dtype=bool)])
    return Problem(X=X, Z=Z, y=y, ridge=ridge, caps=caps, penalized=penalized, terms=terms)


def make_large(K: int = 100, per: int = 20, p: int = 20, k: int = 10, frac: float = 0.1,
               sigma: float = 1.0, seed: int = 0, ridge: float | None = None) -> Problem:
    """Random-intercept benchmark: frac of clusters deviate by +-2 sigma; ridge defaults to
    1e-4 x median column sum of squares of [X | A] (METHODS 1)."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(K), per)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(size=p)
    gamma = np.zeros(K)
    dev = rng.choice(K, size=int(round(frac * K)), replace=False)
    gamma[dev] = 2 * sigma * rng.choice([-1, 1], size=dev.size)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    y = X @ beta + A @ gamma + sigma * rng.normal(size=n)
    if ridge is None:
        css = np.concatenate([np.sum(X**2, axis=0), np.asarray(A.power(2).sum(axis=0)).ravel()])
        ridge = 1e-4 * float(np.median(css))
    penalized = np.concatenate([np.zeros(p, dtype=bool), np.ones(K, dtype=bool)])
    caps = (CapSet("(1|g)", p + np.arange(K), k),)
    terms = (TermStructure("(1 | g)", 0, 1, K, codes, np.ones((n, 1))),)
    return Problem(X=X, Z=A, y=y, ridge=ridge, caps=caps, penalized=penalized, terms=terms)
