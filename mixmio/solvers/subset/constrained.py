"""Feasible warm starts under holistic constraints (linear rows on indicators, sign caps, l1).

The indicators are grouped into *units*: coefficients tied by equality rows ``z_a - z_b = 0``
(group sparsity, joint cluster selection) form one unit that enters or leaves as a whole.
Single-index rows fix units in (``z_j >= 1``: forced) or out (``z_j <= 0``: excluded).  Every
other row, and every cap, is checked on the indicator vector of a candidate selection, so any
linear row is respected; sign caps are checked on the fitted coefficients.

:func:`constrained_warm_start` runs greedy forward selection (best exact objective decrease among
the feasible additions) from the forced units and from a repaired unconstrained warm start, then
best-improvement swaps, and returns the best feasible selection with status ``"heuristic"``, or
a :class:`Solution` with status ``"error"`` (objective ``inf``) when it found none: a heuristic
that finds nothing proves nothing, so it never says ``"infeasible"``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from mixmio.problem import Problem
from mixmio.solvers.bnb.cd import fit_quadratic
from mixmio.solvers.dfo import quad, search
from mixmio.solvers.solution import Solution, gap_scale

__all__ = ["IndicatorStructure", "constrained_warm_start", "structure"]

_SCREEN_ADD = 8  # exact evaluations of additions per move (best screen scores)
_SCREEN_SWAP_OUT = 8  # units tried for removal per swap round (cheapest removals first)
_SCREEN_SWAP_IN = 5  # additions tried per removal


class IndicatorStructure:
    """Units, forced/excluded units and the constraint matrix of a Problem (over units)."""

    def __init__(self, problem: Problem):
        q = quad(problem)
        self.q = q
        capped = q.capped
        n_coef = problem.n_coef
        parent = {int(j): int(j) for j in capped}

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        rows = []  # (index, coef, sense, rhs, name) rows checked on z
        forced, excluded = set(), set()
        for c in problem.constraints:
            idx, coef = c.index, c.coef
            bad = [int(j) for j in idx if j not in parent]
            if bad:
                raise ValueError(f"constraint {c.name!r} refers to coefficient(s) {bad} that "
                                 "carry no indicator (they are in no cap)")
            if (c.sense == "==" and idx.size == 2 and c.rhs == 0
                    and coef[0] == -coef[1] and coef[0] != 0):
                ra, rb = find(int(idx[0])), find(int(idx[1]))
                if ra != rb:
                    parent[ra] = rb
                continue
            if idx.size == 1 and coef[0] > 0:
                v = c.rhs / coef[0]
                if c.sense in (">=", "==") and v > 0:
                    forced.add(int(idx[0]))
                if c.sense in ("<=", "==") and v < 1:
                    excluded.add(int(idx[0]))
            rows.append((idx, coef, c.sense, c.rhs, c.name))
        roots: dict[int, int] = {}
        unit_of = np.full(n_coef, -1, dtype=int)
        for j in capped:
            r = find(int(j))
            unit_of[j] = roots.setdefault(r, len(roots))
        self.n_units = len(roots)
        self.unit_of = unit_of
        self.units = [np.flatnonzero(unit_of == u) for u in range(self.n_units)]
        self.size = np.array([u.size for u in self.units], dtype=int)
        self.forced = np.zeros(self.n_units, dtype=bool)
        self.excluded = np.zeros(self.n_units, dtype=bool)
        for j in forced:
            self.forced[unit_of[j]] = True
        for j in excluded:
            self.excluded[unit_of[j]] = True
        for cap in problem.caps:
            rows.append((np.asarray(cap.index, dtype=int), np.ones(len(cap.index)), "<=",
                         float(cap.k), cap.label))
        self.rows = rows
        # row x unit coefficient matrix
        E = sp.csr_matrix((np.ones(capped.size), (capped, unit_of[capped])),
                          shape=(n_coef, self.n_units))
        if rows:
            ri = np.concatenate([np.full(r[0].size, i) for i, r in enumerate(rows)])
            ci = np.concatenate([r[0] for r in rows])
            vals = np.concatenate([r[1] for r in rows])
            A = sp.csr_matrix((vals, (ri, ci)), shape=(len(rows), n_coef))
            self.U = (A @ E).toarray()
        else:
            self.U = np.zeros((0, self.n_units))
        self.sense = np.array([r[2] for r in rows], dtype=object)
        self.rhs = np.array([r[3] for r in rows], dtype=float)
        self.le = self.sense == "<="
        self.ge = self.sense == ">="
        self.eq = self.sense == "=="
        self.sign_caps = [(np.asarray(s.index, dtype=int), int(s.k_pos), int(s.k_neg))
                          for s in problem.sign_caps]
        self.l1 = None if problem.l1 is None else np.asarray(problem.l1, dtype=float)

    # -- feasibility -------------------------------------------------------------------------
    def lhs(self, sel: np.ndarray) -> np.ndarray:
        return self.U[:, sel].sum(axis=1) if sel.size else np.zeros(self.U.shape[0])

    def rows_ok(self, lhs: np.ndarray, upper_only: bool = False, tol: float = 1e-9):
        """Bool (per column of ``lhs``) that every row holds (``upper_only``: <=-type parts)."""
        lhs = lhs if lhs.ndim == 2 else lhs[:, None]
        ok = np.all(lhs[self.le | self.eq] <= self.rhs[self.le | self.eq, None] + tol, axis=0)
        if not upper_only:
            ok &= np.all(lhs[self.ge | self.eq] >= self.rhs[self.ge | self.eq, None] - tol,
                         axis=0)
        return ok

    def z_of(self, sel: np.ndarray) -> np.ndarray:
        z = np.zeros(self.unit_of.size, dtype=bool)
        for u in sel:
            z[self.units[u]] = True
        return z

    def signs_ok(self, w: np.ndarray, tol: float = 0.0) -> bool:
        for idx, kp, kn in self.sign_caps:
            v = w[idx]
            if np.count_nonzero(v > tol) > kp or np.count_nonzero(v < -tol) > kn:
                return False
        return True

    # -- fits --------------------------------------------------------------------------------
    def fit(self, sel: np.ndarray) -> tuple[np.ndarray, float]:
        """(w over all coefficients, objective) on free columns + the selected units."""
        q = self.q
        cols = [q.free] + [self.units[u] for u in sel]
        S = np.sort(np.concatenate(cols)) if cols else np.zeros(0, dtype=int)
        w = np.zeros(q.n_coef)
        if S.size == 0:
            return w, 0.5 * q.yy
        A = q.block(S, S)
        b = q.c[S]
        if self.l1 is None:
            wS = fit_quadratic(A, b)
            val = 0.5 * q.yy - 0.5 * float(b @ wS)
        else:
            l1 = self.l1[S]
            wS = fit_quadratic(A, b, l1)
            val = 0.5 * q.yy + 0.5 * float(wS @ A @ wS) - float(b @ wS) + float(l1 @ np.abs(wS))
        w[S] = wS
        return w, val

    def screen_scores(self, w: np.ndarray, sel: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Score of adding each candidate unit to ``sel``: the exact objective decrease of the
        smooth problem for a one-column unit (Schur complement ``r^2 / 2s``, with ``r``
        soft-thresholded by the l1 weight), summed over the columns of a larger unit."""
        q = self.q
        cols = np.concatenate([self.units[u] for u in cands])
        S = np.sort(np.concatenate([q.free] + [self.units[u] for u in sel])) if (
            q.free.size or sel.size) else np.zeros(0, dtype=int)
        g = q.c[cols] - (q.H[cols] @ w if q.H is not None else q.Hs[cols] @ w)  # H iff dense
        s_ = q.hdiag[cols].astype(float).copy()
        if S.size:
            B = q.block(S, cols)
            try:
                cf = sla.cho_factor(q.block(S, S), check_finite=False)
                s_ = s_ - np.einsum("ij,ij->j", B, sla.cho_solve(cf, B, check_finite=False))
            except (np.linalg.LinAlgError, ValueError):
                pass
        if self.l1 is not None:
            g = np.maximum(np.abs(g) - self.l1[cols], 0.0)
        sc = g**2 / np.maximum(s_, 1e-12 * np.maximum(q.hdiag[cols], 1e-300))
        owner = np.repeat(np.arange(cands.size), self.size[cands])
        return np.bincount(owner, weights=sc, minlength=cands.size)


def structure(problem: Problem) -> IndicatorStructure:
    return IndicatorStructure(problem)


def _evaluate(st: IndicatorStructure, sel: np.ndarray):
    w, f = st.fit(sel)
    if st.sign_caps and not st.signs_ok(w):
        return w, np.inf
    return w, f


def _improve(st: IndicatorStructure, sel: np.ndarray, max_moves: int, deadline: float):
    """Greedy additions then best-improvement swaps; sel must satisfy the <= rows.

    Moves are screened by the smooth Schur-complement gains and only the most promising are
    fitted exactly (with the l1 term when there is one)."""
    sel = np.array(sorted(set(int(u) for u in sel)), dtype=int)
    w, f = _evaluate(st, sel)
    moves = 0
    allowed = ~st.excluded
    while moves < max_moves and time.perf_counter() < deadline:
        in_sel = np.zeros(st.n_units, dtype=bool)
        in_sel[sel] = True
        lhs = st.lhs(sel)
        cands = np.flatnonzero(allowed & ~in_sel)
        best: tuple[float, tuple[np.ndarray, np.ndarray] | None] = (
            f - 1e-10 * max(1.0, abs(f)), None)
        if cands.size:
            ok = st.rows_ok(lhs[:, None] + st.U[:, cands], upper_only=True)
            add = cands[ok]
            if add.size:
                if add.size > _SCREEN_ADD:
                    add = add[np.argsort(-st.screen_scores(w, sel, add))[:_SCREEN_ADD]]
                for u in add:
                    s2 = np.append(sel, u)
                    w2, f2 = _evaluate(st, s2)
                    if f2 < best[0]:
                        best = (f2, (s2, w2))
        if best[1] is None and sel.size and cands.size:
            # swaps: remove one non-forced unit (cheapest removals first), add one candidate
            removable = sel[~st.forced[sel]]
            if removable.size > _SCREEN_SWAP_OUT:
                cost = np.array([np.sum(w[st.units[a]] ** 2 * st.q.hdiag[st.units[a]])
                                 for a in removable])
                removable = removable[np.argsort(cost)[:_SCREEN_SWAP_OUT]]
            for a in removable:
                base = lhs - st.U[:, a]
                ok = st.rows_ok(base[:, None] + st.U[:, cands], upper_only=True)
                add = cands[ok]
                if not add.size:
                    continue
                rest = sel[sel != a]
                if add.size > _SCREEN_SWAP_IN:
                    w_rest, _ = st.fit(rest)
                    add = add[np.argsort(-st.screen_scores(w_rest, rest, add))[
                        :_SCREEN_SWAP_IN]]
                for u in add:
                    s2 = np.append(rest, u)
                    w2, f2 = _evaluate(st, s2)
                    if f2 < best[0]:
                        best = (f2, (s2, w2))
        if best[1] is None:
            break
        sel, w = np.sort(best[1][0]), best[1][1]
        f = best[0]
        moves += 1
    return sel, w, f, moves


def constrained_warm_start(problem: Problem, random_state=None, n_starts: int = 3,
                           max_moves: int | None = None, start=None,
                           time_budget: float = 30.0) -> Solution:
    """Feasible solution under the holistic constraints (see module docstring).

    ``start``: optional bool mask over ``w`` (or index array) of a selection to repair and
    improve first (e.g. the previous solution on a path over k).
    """
    t0 = time.perf_counter()
    deadline = t0 + time_budget
    st = IndicatorStructure(problem)
    if max_moves is None:
        max_moves = 4 * int(sum(c.k for c in problem.caps)) + 50
    seeds = []
    forced = np.flatnonzero(st.forced)
    seeds.append(forced)
    if start is not None:
        start = np.asarray(start)
        idx = np.flatnonzero(start) if start.dtype == bool else start.astype(int)
        seeds.append(np.unique(st.unit_of[idx][st.unit_of[idx] >= 0]))
    # repaired unconstrained warm start (plain problem: caps only)
    if n_starts > 1:
        plain = replace(problem, constraints=(), sign_caps=(), l1=None)
        ws_w, _, _ = search(plain, random_state=random_state, n_starts=max(2, n_starts))
        nz = np.flatnonzero(ws_w != 0)
        u = st.unit_of[nz]
        keep = u >= 0
        if keep.any():
            mag = np.zeros(st.n_units)
            np.maximum.at(mag, u[keep], np.abs(ws_w[nz[keep]]))
            uu = np.unique(u[keep])
            seeds.append(uu[np.argsort(-mag[uu])])
    best_sel, best_w, best_f, total_moves = None, None, np.inf, 0
    tried = set()
    for seed in seeds:
        # repair: forced first, then seed units in order while the <= rows allow
        chosen: list[int] = forced.tolist()
        lhs = st.lhs(np.asarray(chosen, dtype=int))
        for su in seed:
            un = int(su)
            if un in chosen or st.excluded[un]:
                continue
            if st.rows_ok(lhs + st.U[:, un], upper_only=True)[0]:
                chosen.append(un)
                lhs = lhs + st.U[:, un]
        key = tuple(sorted(chosen))
        if key in tried:
            continue
        tried.add(key)
        if not st.rows_ok(lhs, upper_only=True)[0]:
            continue
        sel, w, f, moves = _improve(st, np.asarray(chosen, dtype=int), max_moves, deadline)
        total_moves += moves
        if np.isfinite(f) and st.rows_ok(st.lhs(sel))[0] and f < best_f:
            best_sel, best_w, best_f = sel, w, f
    elapsed = time.perf_counter() - t0
    if best_sel is None:
        return Solution(w=np.zeros(problem.n_coef), objective=np.inf, best_bound=-np.inf,
                        status="error", solver="heuristic", solve_time=elapsed,
                        message="the constrained heuristic found no feasible selection; that "
                                "does not prove the constraints infeasible",
                        z=np.zeros(problem.n_coef, dtype=bool), gap_scale=gap_scale(problem))
    assert best_w is not None  # set together with best_sel
    z = st.z_of(best_sel)
    obj = problem.objective(best_w)
    return Solution(w=best_w, objective=obj, best_bound=0.0, status="heuristic",
                    solver="heuristic", solve_time=elapsed,
                    message="constrained greedy + swap search (no certificate)",
                    info={"moves": total_moves}, z=z, support=np.flatnonzero(best_w != 0),
                    gap_scale=gap_scale(problem))
