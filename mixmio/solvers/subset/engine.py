"""Exact best-subset engine: branch-and-bound on the profiled normal equations.

Applies to fixed-effects-only problems (no Z): one cap on beta, optional linear rows on the
indicators of the kinds the holistic constraints compile to (equalities tying a group, fixings
``z_j = 1`` / ``z_j = 0``, and packing rows ``sum a_i z_i <= b`` with ``a >= 0``: correlation
pairs, at-most-one transform, significance cuts), and an optional l1 term.

The uncapped coefficients (the intercept) are profiled out once, leaving the p-dimensional
quadratic ``F(S) = const + min_w 1/2 w'A_SS w - b_S'w (+ l1_S'|w|)``.  A node fixes units in
(``I``) or out; ``T = I u R`` (R: undecided).  Its bound:

- monotonicity: ``F(S) >= F(T)`` for every ``S`` inside ``T``;
- strengthened with the cap: a completion must drop units ``D`` of R with total size at least
  ``need = |T| - k``, and ``F(T \\ D) - F(T) = 1/2 w_D' (P_DD)^{-1} w_D >= mu_R/2 ||w_D||^2``
  (``P = A_TT^{-1}``, ``mu_R = 1 / lambda_max(P_RR)``; the same holds with the l1 term by strong
  convexity), so ``LB = F(T) + mu_R/2 * min_D ||w_D||^2``, the minimum taken by the fractional
  knapsack cover (a lower bound on the integer one).  With the l1 term the node fit is
  iterative: its value is lowered by ``||s||^2 / (2 lambda_min)`` (s the minimum-norm
  subgradient) and the distance to the exact minimiser (``||s|| / lambda_min``) is subtracted.

Nodes are explored best-first; the branching unit is the one whose removal costs most
(``w_j^2 / (2 P_jj)``).  Fixing a unit in propagates the packing rows and the cap.  Every node
also rounds its fit to a feasible support (largest units first) for the incumbent.  A node is
pruned when ``LB >= UB - mip_gap/2 |UB|`` (after a safety margin for rounding; half the gap, as
in :mod:`mixmio.solvers.bnb.bestfirst`, so a complete search ends well within ``mip_gap``); the
reported bound is the minimum over pruned, closed and open nodes and the incumbent.

Status: :func:`~mixmio.solvers.solution.certified_status` of the gap proven by that bound --
``optimal`` only when it is at most ``mip_gap``; ``time_limit`` (with a warning) when the clock
or ``max_nodes`` stopped the search first; ``gap_limit`` (with a warning) when a complete search
still ends above ``mip_gap``; ``infeasible`` when a complete search found no feasible support.
"""

from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.linalg as sla

from mixmio.problem import Problem
from mixmio.solvers.bnb.cd import fit_quadratic
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

__all__ = ["applies", "why_not", "solve_subset"]

accepts_constraints = True
_MAX_CAPPED = 400


def why_not(problem: Problem) -> str | None:
    """None when the engine applies; otherwise the reason."""
    if problem.m != 0:
        return "the problem has random-effect columns (use the intercept engine or CVXPY)"
    if len(problem.caps) != 1:
        return "the engine needs exactly one cap"
    if problem.sign_caps:
        return "sign caps are not supported"
    if problem.capped.size > _MAX_CAPPED:
        return f"more than {_MAX_CAPPED} capped coefficients"
    if not np.isfinite(problem.ridge) or problem.ridge < 0:
        return "the ridge must be finite and non-negative"
    from mixmio.solvers.subset.constrained import IndicatorStructure

    try:
        st = IndicatorStructure(problem)
    except ValueError as exc:
        return str(exc)
    for i, (idx, coef, sense, _rhs, name) in enumerate(st.rows):
        if idx.size == 1 and coef[0] > 0:
            continue  # fixing
        if sense == "<=" and np.all(st.U[i] >= 0):
            continue  # packing
        return f"constraint {name!r} is not an equality tie, fixing or packing row"
    return None


def applies(problem: Problem) -> bool:
    return why_not(problem) is None


class _Reduced:
    """The profiled problem over the capped coefficients."""

    def __init__(self, problem: Problem):
        from mixmio.solvers.dfo import quad
        from mixmio.solvers.subset.constrained import IndicatorStructure

        q = quad(problem)
        self.q = q
        st = IndicatorStructure(problem)
        self.st = st
        C, f = q.capped, q.free
        H = q.H if q.H is not None else q.Hs.toarray()  # Quad keeps H exactly when dense
        c = q.c
        if f.size:
            Hff = H[np.ix_(f, f)]
            Hfc = H[np.ix_(f, C)]
            cf = sla.cho_factor(Hff, check_finite=False)
            K = sla.cho_solve(cf, np.column_stack([Hfc, c[f]]), check_finite=False)
            self.A = H[np.ix_(C, C)] - Hfc.T @ K[:, :-1]
            self.b = c[C] - Hfc.T @ K[:, -1]
            self.const = 0.5 * q.yy - 0.5 * float(c[f] @ K[:, -1])
        else:
            self.A = H[np.ix_(C, C)].copy()
            self.b = c[C].copy()
            self.const = 0.5 * q.yy
        self.A = 0.5 * (self.A + self.A.T)
        self.l1 = None if problem.l1 is None else np.asarray(problem.l1, float)[C]
        if self.l1 is not None and not np.any(self.l1 > 0):
            self.l1 = None
        self.k = int(problem.caps[0].k)
        self.ucols = [q.cap_pos[u] for u in st.units]  # unit -> positions in C
        self.size = st.size
        # packing rows (<=, non-negative) excluding fixings
        keep = [i for i, r in enumerate(st.rows) if not (r[0].size == 1 and r[1][0] > 0)]
        self.U = st.U[keep]
        self.rhs = st.rhs[keep]

    def cols(self, units: np.ndarray) -> np.ndarray:
        if units.size == 0:
            return np.zeros(0, dtype=int)
        return np.concatenate([self.ucols[u] for u in units])

    def fit(self, cols: np.ndarray):
        """(w on cols, value F, certified lower value, distance bound, chol or None)."""
        if cols.size == 0:
            return np.zeros(0), self.const, self.const, 0.0
        A = self.A[np.ix_(cols, cols)]
        b = self.b[cols]
        if self.l1 is None:
            try:
                cf = sla.cho_factor(A, check_finite=False)
                w = sla.cho_solve(cf, b, check_finite=False)
            except (np.linalg.LinAlgError, ValueError):
                w = sla.lstsq(A, b, check_finite=False)[0]
            F = self.const - 0.5 * float(b @ w)
            return w, F, F, 0.0
        l1 = self.l1[cols]
        w = fit_quadratic(A, b, l1)
        g = A @ w - b
        s = np.where(w != 0, g + l1 * np.sign(w), np.sign(g) * np.maximum(np.abs(g) - l1, 0))
        F = self.const + 0.5 * float(w @ A @ w) - float(b @ w) + float(l1 @ np.abs(w))
        ns = float(np.linalg.norm(s))
        if ns == 0.0:
            return w, F, F, 0.0
        lam_min = float(sla.eigvalsh(A, subset_by_index=[0, 0], check_finite=False)[0])
        if lam_min <= 0:
            return w, F, -np.inf, np.inf
        return w, F, F - ns**2 / (2 * lam_min), ns / lam_min

    def value(self, units: np.ndarray) -> tuple[float, np.ndarray]:
        cols = self.cols(units)
        w, F, _, _ = self.fit(cols)
        return F, w


def _propagate(red: _Reduced, state: np.ndarray) -> bool:
    """Fix out every undecided unit that no longer fits (cap and packing rows); False when the
    fixed-in units already violate a row."""
    inn = np.flatnonzero(state == 1)
    size_in = int(red.size[inn].sum())
    if size_in > red.k:
        return False
    lhs = red.U[:, inn].sum(axis=1) if red.U.size else np.zeros(0)
    if red.U.size and np.any(lhs > red.rhs + 1e-9):
        return False
    und = np.flatnonzero(state == 0)
    if und.size:
        bad = size_in + red.size[und] > red.k
        if red.U.size:
            bad |= np.any(lhs[:, None] + red.U[:, und] > red.rhs[:, None] + 1e-9, axis=0)
        state[und[bad]] = -1
    return True


def _round(red: _Reduced, state: np.ndarray, order_units: np.ndarray) -> np.ndarray:
    """Feasible selection: fixed-in units, then ``order_units`` while cap and rows allow."""
    sel: list[int] = np.flatnonzero(state == 1).tolist()
    size = int(red.size[sel].sum()) if sel else 0
    lhs = red.U[:, sel].sum(axis=1) if (red.U.size and sel) else np.zeros(red.U.shape[0])
    for u in order_units:
        if state[u] != 0:
            continue
        if size + red.size[u] > red.k:
            continue
        if red.U.size and np.any(lhs + red.U[:, u] > red.rhs + 1e-9):
            continue
        sel.append(int(u))
        size += int(red.size[u])
        if red.U.size:
            lhs = lhs + red.U[:, u]
    return np.array(sorted(sel), dtype=int)


def solve_subset(problem: Problem, time_limit: float | None = None, mip_gap: float = 1e-4,
                 warm_start: bool = True, random_state=None, max_nodes: int | None = None,
                 warm: Solution | None = None) -> Solution:
    """Solve a best-subset problem exactly (see module docstring).  BLAS runs single-threaded
    inside (small dense factorisations)."""
    from mixmio.solvers.bnb.cd import single_thread

    with single_thread():
        return _solve_subset(problem, time_limit, mip_gap, warm_start, random_state, max_nodes,
                             warm)


def _solve_subset(problem, time_limit, mip_gap, warm_start, random_state, max_nodes, warm):
    t0 = time.perf_counter()
    reason = why_not(problem)
    if reason is not None:
        raise ValueError(f"the subset engine does not apply: {reason}")
    red = _Reduced(problem)
    st = red.st
    nU = st.n_units
    best_units, best_F = _warm_units(problem, red, warm, warm_start, random_state)
    root = np.zeros(nU, dtype=np.int8)
    root[st.forced] = 1
    root[st.excluded & ~st.forced] = -1
    if np.any(st.forced & st.excluded) or not _propagate(red, root):
        return Solution(w=np.zeros(problem.n_coef), objective=np.inf, best_bound=np.inf,
                        status="infeasible", solver="subset-bnb",
                        solve_time=time.perf_counter() - t0,
                        message="forced units violate the cap or a constraint",
                        info={"nodes": 0}, gap_scale=gap_scale(problem))
    heap = [(-np.inf, 0, root)]
    return _search(problem, red, heap, best_F, best_units, t0, time_limit, mip_gap, max_nodes)


def _search(problem, red, heap, best_F, best_units, t0, time_limit, mip_gap, max_nodes):
    """Best-first branch and bound over the units from the nodes in ``heap`` (the incumbent
    ``best_units`` of profiled objective ``best_F``), and its Solution."""
    st = red.st
    counter = 1
    pruned_min = np.inf
    nodes = 0
    stopped = None
    safety = 1e-9

    while heap:
        stopped = _limit(t0, time_limit, nodes, max_nodes)
        if stopped is not None:
            break
        key, _, state = heapq.heappop(heap)
        cut = best_F - 0.5 * mip_gap * max(abs(best_F), 1e-10) if np.isfinite(best_F) \
            else np.inf
        if key >= cut:
            pruned_min = min(pruned_min, key)
            continue
        nodes += 1
        inn = np.flatnonzero(state == 1)
        und = np.flatnonzero(state == 0)
        T_units = np.concatenate([inn, und])
        cols = red.cols(T_units)
        w, F, Flow, delta = red.fit(cols)
        size_T = int(red.size[T_units].sum())
        need = size_T - red.k
        lhsT = red.U[:, T_units].sum(axis=1) if red.U.size else np.zeros(0)
        rows_ok = not red.U.size or bool(np.all(lhsT <= red.rhs + 1e-9))
        if need <= 0 and rows_ok:  # T itself is feasible: the subtree's best is T
            if F < best_F:
                best_F, best_units = F, T_units
            if Flow < F:  # l1: the iterative fit F is only an upper value; Flow is proven
                pruned_min = min(pruned_min, Flow - safety * (abs(F) + 1.0))
            continue
        owner, e_T, sel, Fr = _rounded(red, state, T_units, w)
        if Fr < best_F:
            best_F, best_units = Fr, sel
        LB, P, r_loc = _node_bound(red, cols, owner, inn.size, T_units, e_T, need, Flow, delta)
        LB = LB - safety * (abs(F) + 1.0)
        if LB >= cut:
            pruned_min = min(pruned_min, LB)
            continue
        u = _branch_unit(red, P, owner, w, T_units, r_loc, rows_ok, need, lhsT)
        counter = _push_children(red, heap, state, u, LB, counter)
    open_min = min((h[0] for h in heap), default=np.inf)
    elapsed = time.perf_counter() - t0
    if best_units is None:
        if stopped is None:  # complete search, no feasible support
            return Solution(w=np.zeros(problem.n_coef), objective=np.inf,
                            best_bound=min(open_min, pruned_min), status="infeasible",
                            solver="subset-bnb", solve_time=elapsed, nodes=nodes,
                            message="no feasible support", info={"nodes": nodes},
                            timed_out=False, gap_scale=gap_scale(problem))
        status, msg = certified_status(np.inf, mip_gap, True, "subset-bnb",
                                       limit=stopped.replace("_", " "))
        return Solution(w=np.zeros(problem.n_coef), objective=np.inf,
                        best_bound=min(open_min, pruned_min), status=status,
                        solver="subset-bnb", solve_time=elapsed, nodes=nodes,
                        message=f"stopped: {stopped} before finding a feasible support; {msg}",
                        info={"nodes": nodes}, timed_out=True, gap_scale=gap_scale(problem))
    from mixmio.solvers.heuristics import polish

    z = st.z_of(best_units)
    w_out, obj = polish(problem, z)
    bound = min(best_F, pruned_min, open_min)
    bound = min(bound, obj)
    gap = relative_gap(obj, bound, gap_scale(problem))
    status, msg = certified_status(gap, mip_gap, stopped is not None, "subset-bnb",
                                   limit=(stopped or "time_limit").replace("_", " "))
    return Solution(w=w_out, objective=obj, best_bound=float(bound), status=status,
                    solver="subset-bnb", solve_time=elapsed, nodes=nodes,
                    message=msg if stopped is None else f"stopped: {stopped}; {msg}",
                    info={"nodes": nodes, "profiled_objective": best_F,
                          "open_nodes": len(heap), "mip_gap": mip_gap},
                    z=z, timed_out=stopped is not None, gap_scale=gap_scale(problem))


def _warm_units(problem, red, warm, warm_start, random_state):
    """(units, profiled objective) of the warm start (the heuristic's when ``warm_start``
    and none is given) when it satisfies the rows, else (None, inf)."""
    st = red.st
    best_units, best_F = None, np.inf
    if warm is None and warm_start:
        from mixmio.solvers.heuristics import warm_start as _ws

        warm = _ws(problem, random_state=random_state)
    if warm is not None and warm.status != "infeasible" and np.isfinite(warm.objective):
        z = warm.z
        z = (warm.w != 0) if z is None else np.asarray(z, dtype=bool)
        units = np.unique(st.unit_of[np.flatnonzero(z)])
        units = units[units >= 0]
        if st.rows_ok(st.lhs(units))[0]:
            best_F, _ = red.value(units)
            best_units = units
    return best_units, best_F


def _node_bound(red, cols, owner, n_in, T_units, e_T, need, Flow, delta):
    """(LB, P, r_loc): the node's lower bound (before the safety margin), the inverse of A_T
    and the positions of the undecided units within T_units."""
    # P = A_T^{-1}. The cap strengthening below is valid only when A_T is invertible; a
    # singular A_T (ridge 0 with aliased columns) keeps the monotonicity bound, and its
    # pseudo-inverse only guides the branching
    invertible = True
    try:
        A_T = red.A[np.ix_(cols, cols)]
        P = sla.cho_solve(sla.cho_factor(A_T, check_finite=False), np.eye(cols.size),
                          check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        invertible = False
        P = np.linalg.pinv(red.A[np.ix_(cols, cols)], hermitian=True)
    r_loc = np.arange(n_in, T_units.size)  # undecided units within T_units
    r_cols = np.flatnonzero(np.isin(owner, r_loc))
    LB = Flow
    if need > 0 and r_cols.size:
        # fractional knapsack cover of size >= need over undecided units, cheapest ratio
        eR = e_T[r_loc]
        sR = red.size[T_units[r_loc]].astype(float)
        ordr = np.argsort(eR / sR)
        cum = np.cumsum(sR[ordr])
        j = int(np.searchsorted(cum, need))
        if j >= ordr.size:
            LB = np.inf  # cannot drop enough: infeasible subtree
        else:
            take = eR[ordr[:j]].sum()
            prev = cum[j - 1] if j > 0 else 0.0
            take += eR[ordr[j]] * (need - prev) / sR[ordr[j]]
            lam = 0.0 if not invertible else float(sla.eigvalsh(
                P[np.ix_(r_cols, r_cols)], subset_by_index=[r_cols.size - 1, r_cols.size - 1],
                check_finite=False)[0])
            if lam > 0 and np.isfinite(delta):
                mu = 1.0 / lam
                root_d = max(0.0, np.sqrt(max(take, 0.0)) - delta)
                LB = Flow + 0.5 * mu * root_d**2
    return LB, P, r_loc


def _branch_unit(red, P, owner, w, T_units, r_loc, rows_ok, need, lhsT):
    """The undecided unit whose removal costs most (among those in a violated row when T
    fits the cap but not the rows)."""
    Pd = np.diag(P)
    cost = np.bincount(owner, weights=w**2 / np.maximum(Pd, 1e-300),
                       minlength=T_units.size)[r_loc]
    if not rows_ok and need <= 0:
        viol = np.flatnonzero(lhsT > red.rhs + 1e-9)
        inv = np.any(red.U[np.ix_(viol, T_units[r_loc])] > 0, axis=0)
        cost = np.where(inv, cost, -np.inf)
    u = int(T_units[r_loc[int(np.argmax(cost))]])
    return u


def _limit(t0, time_limit, nodes, max_nodes):
    """The limit that stops the search now ("time_limit", "node_limit"), or None."""
    if time_limit is not None and time.perf_counter() - t0 > time_limit:
        return "time_limit"
    if max_nodes is not None and nodes >= max_nodes:
        return "node_limit"
    return None


def _rounded(red, state, T_units, w):
    """Unit magnitudes on T (their owner map and squared norms e_T) and the incumbent by
    rounding, fixed-in first, then the largest magnitude units: (owner, e_T, sel, its
    profiled objective)."""
    owner = np.repeat(np.arange(T_units.size), red.size[T_units])
    e_T = np.bincount(owner, weights=w**2, minlength=T_units.size)
    order = T_units[np.argsort(-e_T / red.size[T_units])]
    sel = _round(red, state, order)
    Fr, _ = red.value(sel)
    return owner, e_T, sel, Fr


def _push_children(red, heap, state, u, LB, counter):
    """Push the two children of branching on unit u (in when it still fits, and out) with
    bound LB; returns the updated tie-break counter."""
    child_in = state.copy()
    child_in[u] = 1
    if _propagate(red, child_in):
        heapq.heappush(heap, (LB, counter, child_in))
        counter += 1
    child_out = state.copy()
    child_out[u] = -1
    heapq.heappush(heap, (LB, counter, child_out))
    counter += 1
    return counter
