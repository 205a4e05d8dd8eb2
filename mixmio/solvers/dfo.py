"""The discrete first-order search behind :func:`mixmio.solvers.heuristics.warm_start` (METHODS
1, "Warm starts") on a plain problem (caps only), from the Gram data of :class:`Quad`.

:func:`search` runs projected gradient with hard thresholding per cap block and exact line
search on the profiled objective from several starts, then best-improvement add/swap moves on
every distinct support (see the :mod:`mixmio.solvers.heuristics` docstring).  :func:`quad` is the
cached :class:`Quad` of a Problem, shared with the constrained heuristic, the subset engine and
the CVXPY backend.
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mixmio.problem import Problem

__all__ = ["Quad", "quad", "search"]

_DENSE_LIMIT = 4000  # keep H dense when n_coef is at most this
_QUAD_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Quad:
    """Gram data of one Problem, with the index bookkeeping the heuristics need."""

    def __init__(self, problem: Problem):
        G, c, yy = problem.gram
        n_coef = problem.n_coef
        pen = np.asarray(problem.penalized, dtype=bool)
        Hs = (G + sp.diags(problem.ridge * pen.astype(float))).tocsc()
        self.n_coef = n_coef
        self.Hs = Hs
        self.dense = n_coef <= _DENSE_LIMIT
        self.H = Hs.toarray() if self.dense else None
        self.hdiag = Hs.diagonal()
        self.c = np.asarray(c, dtype=float)
        self.yy = float(yy)
        self.capped = np.asarray(problem.capped, dtype=int)
        is_capped = np.zeros(n_coef, dtype=bool)
        is_capped[self.capped] = True
        self.is_capped = is_capped
        self.free = np.flatnonzero(~is_capped)
        # position of every capped coefficient inside self.capped
        pos = np.full(n_coef, -1, dtype=int)
        pos[self.capped] = np.arange(self.capped.size)
        self.cap_pos = pos
        self.caps = [(np.asarray(cap.index, dtype=int), int(cap.k)) for cap in problem.caps]
        # membership of every coefficient in every cap (n_caps x n_coef)
        member = np.zeros((len(self.caps), n_coef), dtype=bool)
        for i, (idx, _) in enumerate(self.caps):
            member[i, idx] = True
        self.member = member
        self.kvec = np.array([k for _, k in self.caps], dtype=int)

    # -- blocks of H ---------------------------------------------------------------------------
    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if self.dense:
            assert self.H is not None  # H is kept exactly when dense
            return self.H[np.ix_(rows, cols)]
        return self.Hs[rows][:, cols].toarray()

    # -- exact fit on a support ------------------------------------------------------------------
    def fit(self, S: np.ndarray, want_inverse: bool = False):
        """Minimiser on support S: (w_S, objective by Gram formula, inverse of H_SS or None)."""
        if S.size == 0:
            return np.zeros(0), 0.5 * self.yy, np.zeros((0, 0))
        A = self.block(S, S)
        cS = self.c[S]
        P = None
        try:
            cf = sla.cho_factor(A, lower=False, check_finite=False)
            wS = sla.cho_solve(cf, cS, check_finite=False)
            if want_inverse:
                P = sla.cho_solve(cf, np.eye(S.size), check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            wS = sla.lstsq(A, cS, check_finite=False)[0]
            if want_inverse:
                P = np.linalg.pinv(A, hermitian=True)
        if not np.all(np.isfinite(wS)):
            wS = sla.lstsq(A, cS, check_finite=False)[0]
            P = np.linalg.pinv(A, hermitian=True) if want_inverse else None
        obj = 0.5 * self.yy - 0.5 * float(cS @ wS)
        return wS, obj, P

    def support(self, selected_capped: np.ndarray) -> np.ndarray:
        """Support indices: all free coefficients then the selected capped ones (sorted)."""
        return np.concatenate([self.free, np.sort(np.asarray(selected_capped, dtype=int))])


def quad(problem: Problem) -> Quad:
    q = _QUAD_CACHE.get(problem)
    if q is None:
        q = Quad(problem)
        _QUAD_CACHE[problem] = q
    return q


# ---------------------------------------------------------------------------------------------
# discrete first-order method on the profiled objective
# ---------------------------------------------------------------------------------------------
class _Profiled:
    """g(w_c) = min_{w_u} 1/2 w'Hw - c'w (uncapped u profiled out), its gradient and Hessian."""

    def __init__(self, q: Quad):
        self.q = q
        u, cap = q.free, q.capped
        Hs = q.Hs
        self.Hcc = Hs[cap][:, cap].tocsr()
        self.Hcu = Hs[cap][:, u].tocsr()
        self.Huc = self.Hcu.T.tocsr()
        self.cu = q.c[u]
        self.cc = q.c[cap]
        self.nu = u.size
        if self.nu == 0:
            self._solve_u = lambda r: np.zeros(0)
        elif self.nu <= 2000:
            Huu = q.block(u, u)
            try:
                cf = sla.cho_factor(Huu, check_finite=False)
                self._solve_u = lambda r: sla.cho_solve(cf, r, check_finite=False)
            except (np.linalg.LinAlgError, ValueError):
                Hp = np.linalg.pinv(Huu, hermitian=True)
                self._solve_u = lambda r: Hp @ r
        else:
            Huu = Hs[u][:, u].tocsc()
            jitter = 1e-12 * max(1.0, float(np.max(np.abs(Huu.diagonal()))))
            lu = spla.splu((Huu + jitter * sp.eye(self.nu)).tocsc())
            self._solve_u = lu.solve

    def wu(self, wc: np.ndarray) -> np.ndarray:
        return self._solve_u(self.cu - self.Huc @ wc)

    def grad(self, wc: np.ndarray) -> np.ndarray:
        return self.Hcc @ wc + self.Hcu @ self.wu(wc) - self.cc

    def hess(self, v: np.ndarray) -> np.ndarray:
        return self.Hcc @ v - self.Hcu @ self._solve_u(self.Huc @ v)

    def lipschitz(self) -> float:
        nc = self.Hcc.shape[0]
        if nc == 0:
            return 1.0
        if nc <= 300:
            M = np.column_stack([self.hess(e) for e in np.eye(nc)])
            lam = float(np.linalg.eigvalsh(0.5 * (M + M.T))[-1])
        else:
            op = spla.LinearOperator((nc, nc), matvec=self.hess, dtype=float)
            try:
                lam = float(spla.eigsh(op, k=1, which="LA", tol=1e-4, return_eigenvectors=False,
                                       v0=np.ones(nc))[0])
            except spla.ArpackNoConvergence:  # pragma: no cover - fall back to a Gershgorin bound
                lam = float(np.max(np.abs(self.Hcc).sum(axis=1)))
        return max(lam * 1.01, 1e-12)


def _project(q: Quad, v: np.ndarray) -> np.ndarray:
    """Hard thresholding H: in every cap keep the k largest |entries| (v indexed like capped)."""
    out = v.copy()
    for idx, k in q.caps:
        loc = q.cap_pos[idx]
        size = loc.size
        if k >= size:
            continue
        if k <= 0:
            out[loc] = 0.0
            continue
        a = np.abs(out[loc])
        drop = np.argpartition(-a, k)[k:]
        out[loc[drop]] = 0.0
    return out


def _dfo(prof: _Profiled, wc0: np.ndarray, L: float, max_iter: int, tol: float) -> np.ndarray:
    q = prof.q
    w = _project(q, wc0)
    eta_prev = None
    eta = w
    for _ in range(max_iter):
        g = prof.grad(w)
        eta = _project(q, w - g / L)
        d = eta - w
        dd = float(d @ d)
        if dd == 0.0:
            break
        curv = float(d @ prof.hess(d))
        lam = 1.0 if curv <= 0 else min(1.0, max(0.0, -float(g @ d) / curv))
        w = w + lam * d
        if eta_prev is not None and np.linalg.norm(eta - eta_prev) <= tol * (
                1.0 + np.linalg.norm(eta)):
            break
        eta_prev = eta
    return eta


# ---------------------------------------------------------------------------------------------
# best-improvement add / swap local search
# ---------------------------------------------------------------------------------------------
def _local_search(q: Quad, sel: np.ndarray, max_moves: int) -> tuple[np.ndarray, float, int]:
    """Best-improvement moves (add when a cap has room, swap within caps) until none improves.

    ``sel`` are the selected capped coefficient indices.  Returns (sel, objective, moves).
    """
    sel = np.sort(np.asarray(sel, dtype=int))
    nfree = q.free.size
    moves = 0
    S = q.support(sel)
    wS, f, P = q.fit(S, want_inverse=True)
    while moves < max_moves:
        in_sel = np.zeros(q.n_coef, dtype=bool)
        in_sel[sel] = True
        cand = q.capped[~in_sel[q.capped]]
        if cand.size == 0:
            break
        counts = q.member[:, in_sel].sum(axis=1)
        full = counts >= q.kvec
        B = q.block(S, cand)
        U = P @ B
        r = q.c[cand] - B.T @ wS
        s = q.hdiag[cand] - np.einsum("ij,ij->j", B, U)
        scale = np.maximum(q.hdiag[cand], 1e-300)
        okc = s > 1e-10 * scale
        best_delta, best_move = 0.0, None
        # additions
        if q.member.size:
            addable = ~np.any(q.member[np.ix_(full, cand)], axis=0)
        else:
            addable = np.zeros(cand.size, dtype=bool)
        addable &= okc
        if np.any(addable):
            gain = np.where(addable, r**2 / (2 * np.where(okc, s, 1.0)), -np.inf)
            jbest = int(np.argmax(gain))
            if gain[jbest] > 0 and -gain[jbest] < best_delta:
                best_delta, best_move = -gain[jbest], ("add", None, cand[jbest])
        # swaps
        if sel.size:
            E = nfree + np.arange(sel.size)  # positions of the selected capped in S
            we = wS[E]
            Pee = np.diag(P)[E]
            Pee_safe = np.where(Pee > 0, Pee, np.inf)
            inc_rm = we**2 / (2 * Pee_safe)
            V = U[E, :]
            r2 = r[None, :] + V * (we / Pee_safe)[:, None]
            s2 = s[None, :] + V**2 / Pee_safe[:, None]
            ok2 = s2 > 1e-10 * scale[None, :]
            delta = inc_rm[:, None] - np.where(ok2, r2**2 / (2 * np.where(ok2, s2, 1.0)), 0.0)
            # feasibility: infeasible if some full cap contains l but not j
            if np.any(full):
                Mf = q.member[full]
                bad = (~Mf[:, sel]).T.astype(np.int32) @ Mf[:, cand].astype(np.int32) > 0
                delta = np.where(bad, np.inf, delta)
            flat = int(np.argmin(delta))
            ej, el = divmod(flat, cand.size)
            if delta[ej, el] < best_delta:
                best_delta, best_move = delta[ej, el], ("swap", sel[ej], cand[el])
        if best_move is None or best_delta > -1e-10 * max(abs(f), 1e-8):
            break
        kind, out_j, in_l = best_move
        new_sel = np.append(sel, in_l) if kind == "add" else np.append(sel[sel != out_j], in_l)
        new_sel = np.sort(new_sel)
        S_new = q.support(new_sel)
        wS_new, f_new, P_new = q.fit(S_new, want_inverse=True)
        if not f_new < f - 1e-12 * max(abs(f), 1e-8):
            break  # numerical disagreement: stop rather than cycle
        sel, S, wS, f, P = new_sel, S_new, wS_new, f_new, P_new
        moves += 1
    return sel, f, moves


def _screen_start(q: Quad) -> np.ndarray:
    """Greedy screen: from the free-only fit, take in every cap the k best single additions."""
    wS, _, P = q.fit(q.free, want_inverse=True)
    cand = q.capped
    if cand.size == 0:
        return np.zeros(0, dtype=int)
    B = q.block(q.free, cand)
    if q.free.size:
        r = q.c[cand] - B.T @ wS
        s = q.hdiag[cand] - np.einsum("ij,ij->j", B, P @ B)
    else:
        r, s = q.c[cand].copy(), q.hdiag[cand].copy()
    gain = np.where(s > 1e-12, r**2 / (2 * np.maximum(s, 1e-300)), 0.0)
    score = np.zeros(q.capped.size)
    score[:] = gain
    return _select_top(q, score)


def _select_top(q: Quad, score: np.ndarray) -> np.ndarray:
    """Greedy feasible selection of capped coefficients by decreasing score (score > 0)."""
    order = np.argsort(-score, kind="stable")
    counts = np.zeros(len(q.caps), dtype=int)
    chosen = []
    for i in order:
        if score[i] <= 0:
            break
        j = q.capped[i]
        caps_j = q.member[:, j]
        if np.all(counts[caps_j] < q.kvec[caps_j]):
            chosen.append(j)
            counts[caps_j] += 1
    return np.array(sorted(chosen), dtype=int)


def _random_start(q: Quad, rng: np.random.Generator) -> np.ndarray:
    return _select_top(q, rng.random(q.capped.size) + 1e-9)


def search(problem: Problem, random_state=None, n_starts: int = 5, max_iter: int = 300,
           tol: float = 1e-4, max_moves: int | None = None) -> tuple[np.ndarray, set, int]:
    """The search of :func:`mixmio.solvers.heuristics.warm_start` on a plain problem (caps
    only): ``(w, the set of distinct supports searched, local-search moves)``."""
    rng = np.random.default_rng(random_state)
    q = quad(problem)
    for idx, k in q.caps:
        if k < 0 or k > idx.size:
            raise ValueError(f"cap k={k} outside [0, {idx.size}]")
    if max_moves is None:
        max_moves = 10 * int(q.kvec.sum()) + 100
    nc = q.capped.size
    starts: list[np.ndarray] = []
    if nc:
        prof = _Profiled(q)
        L = prof.lipschitz()
        seeds = [np.zeros(0, dtype=int), _screen_start(q)]
        seeds += [_random_start(q, rng) for _ in range(max(0, n_starts - 2))]
        seeds = seeds[: max(1, n_starts)]
        for i, sel0 in enumerate(seeds):
            wc0 = np.zeros(nc)
            if sel0.size:
                S0 = q.support(sel0)
                wS0, _, _ = q.fit(S0)
                wc0[q.cap_pos[sel0]] = wS0[q.free.size:]
            eta = _dfo(prof, wc0, L, max_iter, tol)
            starts.append(q.capped[eta != 0])
            if i == 1:
                starts.append(sel0)  # the greedy screen itself is a candidate too
    else:
        starts.append(np.zeros(0, dtype=int))
    seen: set = set()
    best_sel, best_f, total_moves = None, np.inf, 0
    for sel in starts:
        key = tuple(np.sort(sel))
        if key in seen:
            continue
        seen.add(key)
        sel2, f, moves = _local_search(q, np.sort(sel), max_moves)
        total_moves += moves
        if f < best_f:
            best_sel, best_f = sel2, f
    assert best_sel is not None  # starts is never empty and every local search has a finite f
    S = q.support(best_sel)
    wS, _, _ = q.fit(S)
    w = np.zeros(q.n_coef)
    w[S] = wS
    return w, seen, total_moves
