"""Exact engine for one random-slope term ``(1 + x | g)`` (q = 2) with a cap per term column.

Reduction (proofs in ``benchmarks/ENGINE.md`` section 7).  For fixed beta = b, cluster k with
residual r_k = y_k - X_k b, term columns Z_k (n_k x 2), S_k = Z_k'Z_k and v_k(b) = Z_k'r_k
(affine in b) chooses an option T in {0: none, 1: column 1, 2: column 2, 3: both}; the best
gamma on T is the ridge fit and the cluster's objective is 1/2 ||r_k||^2 - g_{k,T}(b),
g_T = 1/2 v_T'(S_TT + mu I)^{-1} v_T.  With W(b) = 1/2||r||^2 - sum_k g_{k,3}(b) (a sum of PSD
quadratics) and psi_{k,T} = g_{k,3} - g_{k,T} >= 0,

    f* = min_b  W(b) + min { sum_k psi_{k,T_k}(b) : #{k: 1 in T_k} <= k1, #{k: 2 in T_k} <= k2 }.

Every psi is a sum of rank-one "forms" 1/2 w (a - d'b)^2 (sequential residualisation of the two
columns):  A1 = v1^2/(S11+mu), A2 = v2^2/(S22+mu), B21 = (v2 - rho21 v1)^2 / s_{2|1},
B12 = (v1 - rho12 v2)^2 / s_{1|2};  psi_0 = (A1 + B21)/2 = (A2 + B12)/2, psi_1 = B21/2,
psi_2 = B12/2, psi_3 = 0.  So the interval machinery of the intercept engine (ranges of d'b over
ellipsoid x box) applies form by form, and the min-cost assignment under the two caps is bounded
by its Lagrangian dual (a valid bound for any multipliers >= 0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from mixmio.solvers.bnb.bestfirst import BestFirst, Node, finish
from mixmio.solvers.bnb.intercept import REL, Ell, ellipsoid_region, hard_directions
from mixmio.solvers.lmm.stats import profile_ols
from mixmio.solvers.solution import gap_scale, relative_gap

# option o in 0..3: bit 0 = term column 1 selected, bit 1 = term column 2 selected
T1 = np.array([0.0, 1.0, 0.0, 1.0])
T2 = np.array([0.0, 0.0, 1.0, 1.0])
ALL = np.uint8(15)
A1, A2, B21, B12 = 0, 1, 2, 3
_ONLY = np.full(16, -1)
for _o in range(4):
    _ONLY[1 << _o] = _o
_OPT_BITS = np.array([[(m >> o) & 1 for o in range(4)] for m in range(16)], dtype=bool)


@dataclass
class SlopeStats:
    K: int
    mu: float
    cols: np.ndarray
    p_full: int
    b_ols: np.ndarray
    Fw: np.ndarray  # (4, K) form weights
    Fa: np.ndarray  # (4, K)
    FD: np.ndarray  # (4, K, p)
    HW: np.ndarray
    gW: np.ndarray
    kW: float
    rr: float
    XtX: np.ndarray
    S: np.ndarray  # (K, 2, 2)
    c: np.ndarray  # (K, 2)
    E: np.ndarray  # (K, 2, p)

    @property
    def p(self) -> int:
        return self.HW.shape[0]

    def form_values(self, b: np.ndarray, idx=None) -> np.ndarray:
        if idx is None:
            return self.Fw * (self.Fa - self.FD @ b) ** 2
        return self.Fw[:, idx] * (self.Fa[:, idx] - self.FD[:, idx] @ b) ** 2

    def psi(self, b: np.ndarray, idx=None) -> np.ndarray:
        """(n, 4) exact psi_{k,T}(b)."""
        F = self.form_values(b, idx)
        out = np.zeros((F.shape[1], 4))
        out[:, 0] = 0.5 * (F[A1] + F[B21])
        out[:, 1] = 0.5 * F[B21]
        out[:, 2] = 0.5 * F[B12]
        return out

    def quad(self, opt: np.ndarray, idx=None):
        """(H, g, kappa) of W + sum_k psi_{k, opt_k} over clusters ``idx`` (default all)."""
        if idx is None:
            idx = np.arange(self.K)
        H, g, kappa = self.HW.copy(), self.gW.copy(), self.kW
        for f, sel in ((A1, opt == 0), (B21, opt <= 1), (B12, opt == 2)):
            j = idx[sel]
            if j.size:
                D = self.FD[f, j]
                w = self.Fw[f, j]
                a = self.Fa[f, j]
                H = H + (D.T * w) @ D
                g = g + D.T @ (w * a)
                kappa += 0.5 * float(np.sum(w * a * a))
        return 0.5 * (H + H.T), g, kappa

    def f_assign(self, opt: np.ndarray):
        H, g, kappa = self.quad(opt)
        cf = sla.cho_factor(H, lower=True, check_finite=False)
        b = sla.cho_solve(cf, g, check_finite=False)
        return kappa - 0.5 * float(g @ b), b

    def coefficients(self, opt, y, X, codes, values, start):
        """(beta over p_full, gamma over the 2K term columns) of assignment ``opt``."""
        _, b = self.f_assign(opt)
        beta_r = b + self.b_ols
        beta = np.zeros(self.p_full)
        beta[self.cols] = beta_r
        v = self.c - self.E @ b  # (K, 2)
        K, mu = self.K, self.mu
        gam = np.zeros((2, K))
        both = opt == 3
        if both.any():
            Sm = self.S[both] + mu * np.eye(2)
            gam[:, both] = np.linalg.solve(Sm, v[both][..., None])[..., 0].T
        o1 = opt == 1
        gam[0, o1] = v[o1, 0] / (self.S[o1, 0, 0] + mu)
        o2 = opt == 2
        gam[1, o2] = v[o2, 1] / (self.S[o2, 1, 1] + mu)
        return beta, gam.reshape(-1)


def build_slope_stats(X, y, codes, values, K, mu) -> SlopeStats:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p_full = X.shape
    cols, Xr, XtX, b_ols, r0 = profile_ols(X, y)
    p = cols.size
    Vv = np.asarray(values, dtype=float)
    A = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(K, n))
    S = np.empty((K, 2, 2))
    for i in range(2):
        for j in range(i, 2):
            S[:, i, j] = S[:, j, i] = np.bincount(codes, weights=Vv[:, i] * Vv[:, j], minlength=K)
    c = np.column_stack([np.bincount(codes, weights=Vv[:, j] * r0, minlength=K)
                         for j in range(2)])
    E = np.stack([np.asarray(A @ (Vv[:, j : j + 1] * Xr)).reshape(K, p) for j in range(2)], 1)
    s11, s22, s12 = S[:, 0, 0] + mu, S[:, 1, 1] + mu, S[:, 0, 1]
    rho21 = s12 / s11
    rho12 = s12 / s22
    s21 = s22 - s12 * rho21
    s1_2 = s11 - s12 * rho12
    Fw = np.stack([1 / s11, 1 / s22, 1 / s21, 1 / s1_2])
    Fa = np.stack([c[:, 0], c[:, 1], c[:, 1] - rho21 * c[:, 0], c[:, 0] - rho12 * c[:, 1]])
    FD = np.stack([E[:, 0], E[:, 1], E[:, 1] - rho21[:, None] * E[:, 0],
                   E[:, 0] - rho12[:, None] * E[:, 1]])
    # W(b) = 1/2 sum_k r_k'(I - P_k) r_k with I - P_k = (I - Pi_k) + Z_k M_k Z_k' (both PSD):
    # Pi_k the projection on col(Z_k), M_k = U diag(mu / (s (s + mu))) U' on the range of S_k.
    s_ev, U = np.linalg.eigh(S)
    smax = np.maximum(s_ev[:, -1:], 1e-300)
    pos = s_ev > 1e-10 * smax
    inv = np.where(pos, 1.0 / np.where(pos, s_ev, 1.0), 0.0)
    mm = np.where(pos, mu * inv / (s_ev + mu), 0.0)
    Splus = np.einsum("kij,kj,klj->kil", U, inv, U)
    Mk = np.einsum("kij,kj,klj->kil", U, mm, U)
    CX = Splus @ E  # (K, 2, p)
    cr = np.einsum("kij,kj->ki", Splus, c)
    Xres = Xr - np.einsum("nj,njp->np", Vv, CX[codes])
    rres = r0 - np.einsum("nj,nj->n", Vv, cr[codes])
    ME = Mk @ E
    HW = Xres.T @ Xres + np.einsum("kjp,kjq->pq", E, ME)
    gW = Xres.T @ rres + np.einsum("kjp,kj->p", ME, c)
    kW = 0.5 * (float(rres @ rres) + float(np.einsum("ki,kij,kj->", c, Mk, c)))
    return SlopeStats(K=K, mu=mu, cols=cols, p_full=p_full, b_ols=b_ols, Fw=Fw, Fa=Fa, FD=FD,
                      HW=0.5 * (HW + HW.T), gW=gW, kW=kW, rr=float(r0 @ r0),
                      XtX=XtX, S=S, c=c, E=E)


# ---------------------------------------------------------------------- assignment problem
@numba.njit(cache=True)
def _inner_nb(C, lam2, m1):
    n = C.shape[0]
    alpha = np.empty(n)
    beta = np.empty(n)
    diff = np.empty(n)
    for k in range(n):
        al = min(C[k, 0], C[k, 2] + lam2)
        be = min(C[k, 1], C[k, 3] + lam2)
        alpha[k] = al
        beta[k] = be
        if al == np.inf:
            diff[k] = np.inf
        elif be == np.inf:
            diff[k] = -np.inf
        else:
            diff[k] = al - be
    lam1 = 0.0
    if m1 < n:
        srt = np.sort(diff)
        lam1 = max(0.0, srt[n - 1 - m1])  # (m1+1)-th largest
        if lam1 == np.inf:
            return np.inf, lam1
    val = 0.0
    for k in range(n):
        val += min(alpha[k], beta[k] + lam1)
    return val - lam1 * m1, lam1


@numba.njit(cache=True)
def _lagr_nb(C, m1, m2, iters):
    n = C.shape[0]
    v0, l10 = _inner_nb(C, 0.0, m1)
    if m2 >= n or v0 == np.inf:
        return v0, l10, 0.0
    cmax, cmin = -np.inf, np.inf
    for k in range(n):
        for t in range(4):
            c = C[k, t]
            if c < np.inf:
                cmax = max(cmax, c)
                cmin = min(cmin, c)
    hi = 1.01 * (cmax - cmin) + 1e-300 if cmax > -np.inf else 1e-300
    g = 0.5 * (np.sqrt(5.0) - 1)
    a, b = 0.0, hi
    x1, x2 = b - g * (b - a), a + g * (b - a)
    f1 = _inner_nb(C, x1, m1)[0] - x1 * m2
    f2 = _inner_nb(C, x2, m1)[0] - x2 * m2
    for _ in range(iters):
        if f1 < f2:
            a, x1, f1 = x1, x2, f2
            x2 = a + g * (b - a)
            f2 = _inner_nb(C, x2, m1)[0] - x2 * m2
        else:
            b, x2, f2 = x2, x1, f1
            x1 = b - g * (b - a)
            f1 = _inner_nb(C, x1, m1)[0] - x1 * m2
    best, bl1, bl2 = v0, l10, 0.0
    for lam2 in (x1, x2, hi):
        v, l1 = _inner_nb(C, lam2, m1)
        v -= lam2 * m2
        if v > best:
            best, bl1, bl2 = v, l1, lam2
    return best, bl1, bl2


def lagrangian_min(C: np.ndarray, m1: int, m2: int, iters: int = 60):
    """Valid lower bound on min sum_k C[k, T_k] s.t. #{T_k has column 1} <= m1 and
    #{T_k has column 2} <= m2 (C = +inf: option not allowed): the Lagrangian dual, maximised
    exactly over lam1 and by golden section over lam2.  Returns (bound, lam1, lam2); any
    multipliers >= 0 give a valid bound, so an inexact maximisation only weakens it."""
    if C.shape[0] == 0:
        return 0.0, 0.0, 0.0
    if m1 < 0 or m2 < 0:
        return np.inf, 0.0, 0.0
    v, l1, l2 = _lagr_nb(np.ascontiguousarray(C, dtype=np.float64), int(m1), int(m2), iters)
    return float(v), float(l1), float(l2)


#: largest n (m1 + 1) (m2 + 1) for which the assignment problem is solved exactly by dynamic
#: programming (~1 ms in numba); above it only the Lagrangian dual is used
DP_BUDGET = 400_000


@numba.njit(cache=True)
def _dp_nb(C, m1, m2):
    n = C.shape[0]
    V = np.full((m1 + 1, m2 + 1), np.inf)
    V[0, 0] = 0.0
    for k in range(n):
        W = np.full((m1 + 1, m2 + 1), np.inf)
        for t in range(4):
            c = C[k, t]
            if c == np.inf:
                continue
            t1, t2 = t & 1, t >> 1
            for u1 in range(m1 + 1 - t1):
                for u2 in range(m2 + 1 - t2):
                    v = V[u1, u2] + c
                    if v < W[u1 + t1, u2 + t2]:
                        W[u1 + t1, u2 + t2] = v
        V = W
    return V.min()


def assignment_min(C: np.ndarray, m1: int, m2: int) -> float:
    """Lower bound on min sum_k C[k, T_k] under the two caps (see :func:`lagrangian_min`):
    the exact minimum by dynamic programming over (slots used per column) when
    n (m1 + 1) (m2 + 1) <= ``DP_BUDGET``, else the Lagrangian dual.  Small problems need the
    exact value: with few clusters the Lagrangian duality gap alone can keep a node open."""
    n = C.shape[0]
    if n == 0:
        return 0.0
    if m1 < 0 or m2 < 0:
        return np.inf
    m1, m2 = min(int(m1), n), min(int(m2), n)
    if n * (m1 + 1) * (m2 + 1) <= DP_BUDGET:
        return float(_dp_nb(np.ascontiguousarray(C, dtype=np.float64), m1, m2))
    return lagrangian_min(C, m1, m2)[0]


def feasible(allowed: np.ndarray, m1: int, m2: int) -> bool:
    """Whether one allowed option per cluster fits both caps (exact)."""
    ok = _OPT_BITS[allowed]
    nz = ~ok[:, 0]
    flex = nz & ok[:, 1] & ok[:, 2]
    n1 = int(np.sum(nz & ok[:, 1] & ~ok[:, 2]))
    n2 = int(np.sum(nz & ok[:, 2] & ~ok[:, 1]))
    n3 = int(np.sum(nz & ~ok[:, 1] & ~ok[:, 2]))
    f = int(flex.sum())
    return n3 + n1 <= m1 and n3 + n2 <= m2 and n1 + n2 + 2 * n3 + f <= m1 + m2


def _feasible_start(C: np.ndarray, ok: np.ndarray, m1: int, m2: int) -> np.ndarray:
    """An assignment that fits both caps whenever ``feasible`` holds (the construction mirrors
    its counting argument): option 0 where allowed; otherwise the cheapest single-column option
    a cluster is restricted to, or option 3; clusters allowing both single columns take column 1
    while slots remain (cheapest relative to column 2 first), then column 2."""
    n = C.shape[0]
    opt = np.zeros(n, dtype=np.int64)
    nz = ~ok[:, 0]
    flex = nz & ok[:, 1] & ok[:, 2]
    o1 = nz & ok[:, 1] & ~ok[:, 2]
    o2 = nz & ok[:, 2] & ~ok[:, 1]
    o3 = nz & ~ok[:, 1] & ~ok[:, 2]
    opt[o1], opt[o2], opt[o3] = 1, 2, 3
    fi = np.flatnonzero(flex)
    r1 = max(0, m1 - int(o3.sum()) - int(o1.sum()))
    order = fi[np.argsort(C[fi, 1] - C[fi, 2], kind="stable")]
    opt[order[:r1]] = 1
    opt[order[r1:]] = 2
    return opt


def _fits(opt: np.ndarray, ok: np.ndarray, m1: int, m2: int) -> bool:
    return (bool(np.all(ok[np.arange(opt.size), opt])) and T1[opt].sum() <= m1
            and T2[opt].sum() <= m2)


def _pair_move(C, ok, opt, m1, m2, repair):
    """Best simultaneous change of two clusters.  repair=True: among pairs that reduce the
    total cap violation, the cheapest; else the best improving pair that stays within the caps.
    Moves are grouped by their cap change (d1, d2) in {-1, 0, 1}^2 and only the two cheapest of
    each group are combined, so this is O(n) and exact for the best pair."""
    n = C.shape[0]
    c1, c2 = int(T1[opt].sum()), int(T2[opt].sum())
    cur = C[np.arange(n), opt]
    with np.errstate(invalid="ignore"):
        dc = np.where(ok, C - cur[:, None], np.inf)
    dc[np.arange(n), opt] = np.inf
    d1 = (T1[None, :] - T1[opt][:, None]).astype(int)
    d2 = (T2[None, :] - T2[opt][:, None]).astype(int)
    groups = []
    rows = np.arange(n)
    for g1 in (-1, 0, 1):
        for g2 in (-1, 0, 1):
            cost = np.where((d1 == g1) & (d2 == g2), dc, np.inf)
            if n == 0:
                continue
            tbest = np.argmin(cost, axis=1)
            cbest = cost[rows, tbest]
            top = []
            for _ in range(2):
                i = int(np.argmin(cbest))
                if not cbest[i] < np.inf:
                    break
                top.append((i, int(tbest[i]), float(cbest[i])))
                cbest[i] = np.inf
            if top:
                groups.append((g1, g2, top))
    v0 = max(c1 - m1, 0) + max(c2 - m2, 0)
    best, move = np.inf, None
    for a in range(len(groups)):
        for b in range(a, len(groups)):
            ga1, ga2, ta = groups[a]
            gb1, gb2, tb = groups[b]
            n1, n2 = c1 + ga1 + gb1, c2 + ga2 + gb2
            v1 = max(n1 - m1, 0) + max(n2 - m2, 0)
            if repair and not v1 < v0:
                continue
            if not repair and v1 > 0:
                continue
            for i, ti, ci in ta:
                for j, tj, cj in tb:
                    if i != j and ci + cj < best:
                        best, move = ci + cj, ((i, ti), (j, tj))
    if move is None:
        return None
    if not repair and not best < -1e-15 * (1 + float(np.abs(cur[[move[0][0], move[1][0]]]).sum())):
        return None
    return move


def assign(P: np.ndarray, allowed: np.ndarray, m1: int, m2: int) -> np.ndarray:
    """A good feasible assignment (option per row) for costs P (n, 4) restricted to the
    ``allowed`` option masks, caps m1, m2: Lagrangian argmin, repaired, then greedy single and
    pair moves.  The result is always feasible when ``feasible(allowed, m1, m2)`` holds: the
    branch and bound relies on it (an infeasible T0 with Gamma = 0 is not a solved node)."""
    n = P.shape[0]
    ok = _OPT_BITS[allowed]
    C = np.where(ok, P, np.inf)
    _, l1, l2 = lagrangian_min(C, m1, m2, iters=30)
    opt = np.argmin(C + l1 * T1 + l2 * T2, axis=1)
    for _ in range(4 * n + 8):
        c1 = int(T1[opt].sum())
        c2 = int(T2[opt].sum())
        cur = C[np.arange(n), opt]
        if c1 > m1 or c2 > m2:
            # cheapest single change that reduces the total cap violation
            v0 = max(c1 - m1, 0) + max(c2 - m2, 0)
            v1 = (np.maximum(c1 + T1[None, :] - T1[opt][:, None] - m1, 0)
                  + np.maximum(c2 + T2[None, :] - T2[opt][:, None] - m2, 0))
            cost = np.where((v1 < v0) & ok, C - cur[:, None], np.inf)
            cost[~np.isfinite(cost) & (v1 < v0) & ok] = 1e300
            i, t = np.unravel_index(np.argmin(cost), cost.shape)
            if v1[i, t] < v0 and ok[i, t]:
                opt[i] = t
                continue
            # no single change helps (e.g. column 2 over its cap while column 1 is full):
            # change two clusters at once
            mv = _pair_move(C, ok, opt, m1, m2, repair=True)
            if mv is None:
                break
            for i, t in mv:
                opt[i] = t
            continue
        if not _improve_step(C, ok, opt, m1, m2):
            break
    if not _fits(opt, ok, m1, m2) and m1 >= 0 and m2 >= 0 and feasible(allowed, m1, m2):
        opt = _feasible_start(C, ok, m1, m2)
        for _ in range(4 * n + 8):  # greedy improvement from the constructed start
            if not _improve_step(C, ok, opt, m1, m2):
                break
    return opt


def _improve_step(C: np.ndarray, ok: np.ndarray, opt: np.ndarray, m1: int, m2: int) -> bool:
    """Apply the best improving single move within the caps, else the best improving pair
    move, to a feasible ``opt`` in place; False when neither improves."""
    n = opt.size
    c1, c2 = int(T1[opt].sum()), int(T2[opt].sum())
    cur = C[np.arange(n), opt]
    d1 = T1[None, :] - T1[opt][:, None]
    d2 = T2[None, :] - T2[opt][:, None]
    feas = ok & (c1 + d1 <= m1) & (c2 + d2 <= m2)
    gain = np.where(feas, C - cur[:, None], np.inf)
    i, t = np.unravel_index(np.argmin(gain), gain.shape)
    if gain[i, t] < -1e-15 * (1 + abs(cur[i])):
        opt[i] = t
        return True
    mv = _pair_move(C, ok, opt, m1, m2, repair=False)
    if mv is None:
        return False
    for i, t in mv:
        opt[i] = t
    return True


# ---------------------------------------------------------------------- heuristic
def _col_vectors(st: SlopeStats, opt: np.ndarray, col: int, drop: bool) -> np.ndarray:
    """(K, p+1) rank-one vectors u = sqrt(w)[d; -a]: dropping column ``col`` from a cluster
    adds u u' to M (drop=True; rows for clusters holding col), adding it subtracts u u'."""
    other = 1 - col
    has_other = ((opt >> other) & 1).astype(bool)
    # column 0 toggles: other set -> B12, else A1; column 1: other set -> B21, else A2
    f_other, f_alone = (B12, A1) if col == 0 else (B21, A2)
    f = np.where(has_other, f_other, f_alone)
    K = st.K
    w = st.Fw[f, np.arange(K)]
    a = st.Fa[f, np.arange(K)]
    D = st.FD[f, np.arange(K)]
    sw = np.sqrt(w)
    del drop
    return np.column_stack([D * sw[:, None], -a * sw])


def _M(st, opt):
    H, g, kappa = st.quad(opt)
    p = st.p
    M = np.empty((p + 1, p + 1))
    M[:-1, :-1] = H
    M[:-1, -1] = -g
    M[-1, :-1] = -g
    M[-1, -1] = 2 * kappa
    return M


def swap_search(st: SlopeStats, opt: np.ndarray, k1: int, k2: int, deadline=None,
                max_moves: int = 20000):
    """Best-improvement moves on one term column at a time: add the column to a cluster (while
    under the cap) or swap it between two clusters, scored exactly by rank-one updates of the
    (p+1)-dimensional M = [[H, -g], [-g', 2 kappa]] (f = 1 / (2 (M^{-1})_yy))."""
    opt = np.asarray(opt, dtype=np.int64).copy()
    best_f = st.f_assign(opt)[0]
    caps = (k1, k2)
    stale = 0
    col = 0
    for _ in range(max_moves):
        if deadline is not None and time.perf_counter() > deadline:
            break
        if stale >= 2:
            break
        has = ((opt >> col) & 1).astype(bool)
        ins, outs = np.flatnonzero(has), np.flatnonzero(~has)
        if outs.size == 0 or (ins.size == 0 and caps[col] == 0):
            stale += 1
            col = 1 - col
            continue
        try:
            N = np.linalg.inv(_M(st, opt))
        except np.linalg.LinAlgError:
            break
        N = 0.5 * (N + N.T)
        Uv = _col_vectors(st, opt, col, True)
        NU = Uv @ N
        gd = np.einsum("ij,ij->i", NU, Uv)
        py = NU[:, -1]
        Nyy = N[-1, -1]
        cand, move = np.inf, None
        if ins.size < caps[col]:  # pure addition: M - R R'
            den = 1.0 - gd[outs]
            with np.errstate(divide="ignore", invalid="ignore"):
                fa = np.where(den > 1e-14, 0.5 / (Nyy + py[outs] ** 2 / den), np.inf)
            j = int(np.argmin(fa))
            cand, move = fa[j], (None, outs[j])
        elif ins.size:
            cross = NU[ins] @ Uv[outs].T
            gi = 1.0 + gd[ins]
            N1yy = Nyy - py[ins] ** 2 / gi
            r_y = py[outs][None, :] - (py[ins] / gi)[:, None] * cross
            rr = gd[outs][None, :] - cross**2 / gi[:, None]
            den = 1.0 - rr
            with np.errstate(divide="ignore", invalid="ignore"):
                fs = np.where(den > 1e-14, 0.5 / (N1yy[:, None] + r_y**2 / den), np.inf)
            i, jj = np.unravel_index(np.argmin(fs), fs.shape)
            cand, move = fs[i, jj], (ins[i], outs[jj])
        if move is None or not cand < best_f * (1 - 1e-12):
            stale += 1
            col = 1 - col
            continue
        trial = opt.copy()
        if move[0] is not None:
            trial[move[0]] &= ~(1 << col)
        trial[move[1]] |= 1 << col
        f_exact = st.f_assign(trial)[0]
        if f_exact >= best_f:
            stale += 1
            col = 1 - col
            continue
        opt, best_f = trial, f_exact
        stale = 0
    return opt, best_f


def alternate(st: SlopeStats, opt, k1, k2, max_iter=50):
    f, b = st.f_assign(opt)
    allowed = np.full(st.K, ALL, dtype=np.uint8)
    for _ in range(max_iter):
        new = assign(st.psi(b), allowed, k1, k2)
        if np.array_equal(new, opt):
            break
        f2, b2 = st.f_assign(new)
        if f2 >= f:
            break
        opt, f, b = new, f2, b2
    return opt, f


def heuristic(st: SlopeStats, k1, k2, warm=None, deadline=None):
    allowed = np.full(st.K, ALL, dtype=np.uint8)
    starts = [assign(st.psi(np.zeros(st.p)), allowed, k1, k2)]
    if warm is not None:
        w = np.asarray(warm, dtype=np.int64)
        starts.insert(0, w)
    best, best_f = None, np.inf
    for s0 in starts:
        if T1[s0].sum() > k1 or T2[s0].sum() > k2:
            _, b = st.f_assign(s0)
            s0 = assign(st.psi(b), allowed, k1, k2)
        s1, _ = alternate(st, s0, k1, k2)
        s2, f2 = swap_search(st, s1, k1, k2, deadline=deadline)
        s3, f3 = alternate(st, s2, k1, k2)
        if f3 < f2:
            s2, f2 = swap_search(st, s3, k1, k2, deadline=deadline)
        if f2 < best_f:
            best, best_f = s2, f2
    return best, best_f


# ---------------------------------------------------------------------- branch and bound
def _exchange_deltas(FL, FU, lf, uf):
    """(n, 4, 4) upper bounds of psi_T0 - psi_T over the region, through the forms where the
    difference is itself one form (psi_0 - psi_1 = A1/2, ...), else u_T0 - l_T."""
    D = uf[:, :, None] - lf[:, None, :]
    lA1, lA2, lB21, lB12 = FL
    uA1, uA2, uB21, uB12 = FU
    D[:, 0, 1] = np.minimum(D[:, 0, 1], 0.5 * uA1)
    D[:, 0, 2] = np.minimum(D[:, 0, 2], 0.5 * uA2)
    D[:, 1, 0] = np.minimum(D[:, 1, 0], -0.5 * lA1)
    D[:, 2, 0] = np.minimum(D[:, 2, 0], -0.5 * lA2)
    D[:, 1, 2] = np.minimum(D[:, 1, 2], 0.5 * (uB21 - lB12))
    D[:, 2, 1] = np.minimum(D[:, 2, 1], 0.5 * (uB12 - lB21))
    return D


def _option_bounds(FL, FU, lP, uP, free):
    """Interval bounds (lf, uf) of the four option costs of the free clusters over the region
    from the bounds (FL, FU) of the forms, within the node's previous ones (lP, uP)."""
    l_new = np.column_stack([0.5 * np.maximum(FL[A1] + FL[B21], FL[A2] + FL[B12]),
                             0.5 * FL[B21], 0.5 * FL[B12], np.zeros(free.size)])
    u_new = np.column_stack([0.5 * np.minimum(FU[A1] + FU[B21], FU[A2] + FU[B12]),
                             0.5 * FU[B21], 0.5 * FU[B12], np.zeros(free.size)])
    lf = np.maximum(lP[free], l_new)
    uf = np.minimum(uP[free], u_new)
    return lf, uf


def _assignment_bound(okf, lf, m1, m2, Qbox1, Ut, tol):
    """(lb1, kill): the bound Qbox1 + the assignment bound of the lower option costs, and the
    options that reduced-cost fixing proves impossible on the region (from the Lagrangian
    value, whose multipliers make the per-option bound separable); None when pruned."""
    C = np.where(okf, lf, np.inf)
    Lam_l, l1, l2 = lagrangian_min(C, m1, m2)
    Lam = max(Lam_l, assignment_min(C, m1, m2))
    if not np.isfinite(Lam):
        return None
    lb1 = Qbox1 + Lam
    if lb1 - tol >= Ut:
        return None
    red = C + l1 * T1 + l2 * T2
    base = Qbox1 + Lam_l - red.min(1)
    kill = okf & (base[:, None] + red - tol >= Ut)
    return lb1, kill


def _remove_options(allowed, free, kill) -> bool:
    """Remove the options ``kill`` (free clusters x 4) from ``allowed``; whether any was."""
    if kill.any():
        bits = (kill * (1 << np.arange(4))).sum(1).astype(np.uint8)
        allowed[free] &= ~bits
        return True
    return False


def _exchange(Pref, allowed_f, okf, FL, FU, lf, uf, m1, m2):
    """The exchange bound around T0, the best assignment at the reference point (costs
    ``Pref``): (T0, delta, Gneg, g1, g2, Gamma) with delta the bounds of psi_T0 - psi_T."""
    T0 = assign(Pref, allowed_f, m1, m2)
    if not _fits(T0, okf, m1, m2):  # never expected: assign is feasible when feasible()
        T0 = _feasible_start(np.where(okf, Pref, np.inf), okf, m1, m2)
    nf = okf.shape[0]
    delta = np.where(okf, _exchange_deltas(FL, FU, lf, uf)[np.arange(nf), T0], -np.inf)
    delta[np.arange(nf), T0] = 0.0
    Gneg, g1, g2 = lagrangian_min(-delta, m1, m2)
    Gam = max(0.0, -max(Gneg, assignment_min(-delta, m1, m2)))
    return T0, delta, Gneg, g1, g2, Gam


class SlopeBnB:
    """Best-first branch and bound over (boxes of the hard directions of b) x (per-cluster sets
    of allowed options); see ``benchmarks/ENGINE.md`` section 7 for the validity arguments."""

    def __init__(self, st: SlopeStats, k1: int, k2: int):
        self.st = st
        self.k1, self.k2 = k1, k2
        self.V = hard_directions(st)
        self.h = self.V.shape[1]
        self.scale = max(0.5 * st.rr, 1e-300)
        self.tol = REL * self.scale

    def _ell(self, opt_dec, dec_idx):
        H, g, kappa = self.st.quad(opt_dec, dec_idx)
        return Ell(H, g, kappa, self.V)

    def _form_intervals(self, ells, free, lo, hi):
        st = self.st
        nf = free.size
        Df = st.FD[:, free].reshape(4 * nf, -1)
        af = st.Fa[:, free].reshape(-1)
        wf = st.Fw[:, free].reshape(-1)
        s_lo, s_hi = np.full(4 * nf, -np.inf), np.full(4 * nf, np.inf)
        wb = we = None
        for ell, rho in ells:
            a_, b_, wb_, we_ = ell.ranges(rho, lo, hi, Df)
            s_lo, s_hi = np.maximum(s_lo, a_), np.minimum(s_hi, b_)
            if wb is None or np.sum(wb_ + we_) < np.sum(wb + we):
                wb, we = wb_, we_
        pad = 1e-9 * (np.abs(s_lo) + np.abs(s_hi) + np.abs(af)) + 1e-300
        s_lo, s_hi = s_lo - pad, s_hi + pad
        if np.any(s_lo > s_hi):
            return None
        dist = np.maximum(np.maximum(s_lo - af, af - s_hi), 0.0)
        FL = (wf * dist**2 * (1 - 1e-9)).reshape(4, nf)
        FU = (wf * np.maximum((af - s_lo) ** 2, (af - s_hi) ** 2) * (1 + 1e-9)).reshape(4, nf)
        return FL, FU, wb.reshape(4, nf).sum(0), we.reshape(4, nf).sum(0)

    def evaluate(self, node: Node, Ut: float, max_it: int = 30):
        st = self.st
        allowed, lo, hi, lP, uP = self._start(node)
        tol = self.tol
        ell2, rho2 = None, np.inf
        info: dict = {}
        lb_prev, lb = -np.inf, -np.inf
        for _it in range(max_it):
            if np.any(allowed == 0):
                return "pruned", Ut, allowed, lo, hi, info
            only = _ONLY[allowed]
            dec = np.flatnonzero(only >= 0)
            free = np.flatnonzero(only < 0)
            m1 = self.k1 - int(T1[only[dec]].sum())
            m2 = self.k2 - int(T2[only[dec]].sum())
            if m1 < 0 or m2 < 0 or not feasible(allowed[free], m1, m2):
                return "pruned", Ut, allowed, lo, hi, info
            okf = _OPT_BITS[allowed[free]]
            L_amb = assignment_min(np.where(okf, lP[free], np.inf), m1, m2)
            if not np.isfinite(L_amb):
                return "pruned", Ut, allowed, lo, hi, info
            ell1 = self._ell(only[dec], dec)
            rho1, lo, hi = ellipsoid_region(ell1, ell2, rho2, Ut, L_amb, lo, hi, self.tol)
            if rho1 is None:
                return "pruned", Ut, allowed, lo, hi, info
            Qbox1, b1 = ell1.boxmin(lo, hi)
            if free.size == 0:
                info.update(bhat=b1)
                return "leaf", Qbox1 - tol, allowed, lo, hi, info
            if Qbox1 + L_amb - tol >= Ut:
                return "pruned", Ut, allowed, lo, hi, info
            ells = [(ell1, rho1)] + ([(ell2, rho2)] if ell2 is not None else [])
            res = self._form_intervals(ells, free, lo, hi)
            if res is None:
                return "pruned", Ut, allowed, lo, hi, info
            FL, FU, wb, we = res
            lf, uf = _option_bounds(FL, FU, lP, uP, free)
            if np.any(lf > uf):
                return "pruned", Ut, node.state, lo, hi, {}
            lP[free], uP[free] = lf, uf
            ab = _assignment_bound(okf, lf, m1, m2, Qbox1, Ut, tol)
            if ab is None:
                return "pruned", Ut, allowed, lo, hi, info
            lb1, kill = ab
            if _remove_options(allowed, free, kill):
                continue
            # ------------- exchange bound around the best assignment at a reference point
            bref = info.get("b2", b1)
            T0, delta, Gneg, g1, g2, Gam = _exchange(st.psi(bref, free), allowed[free], okf,
                                                     FL, FU, lf, uf, m1, m2)
            opt2 = np.concatenate([only[dec], T0])
            idx2 = np.concatenate([dec, free])
            ell2 = self._ell(opt2, idx2)
            rho2 = Ut + Gam - ell2.Qmin + tol + REL * abs(ell2.Qmin)
            if rho2 < 0:
                return "pruned", Ut, allowed, lo, hi, info
            Qbox2, b2 = ell2.boxmin(lo, hi)
            lb = max(lb1, Qbox2 - Gam) - tol
            info.update(free=free, lf=lf, uf=uf, wb=wb, we=we, b2=b2, bhat=b2, Gam=Gam, T0=T0,
                        delta=delta, m1=m1, m2=m2)
            if lb >= Ut:
                return "pruned", Ut, allowed, lo, hi, info
            if Gam <= tol:
                # T0 is feasible and optimal among feasible assignments on the region, so
                # F_N = Q_T0 there: the node is solved (run evaluates T0 as an incumbent)
                info.update(leaf_opt=opt2, leaf_idx=idx2)
                return "leaf", lb, allowed, lo, hi, info
            # reduced-cost fixing on the exchange bound
            redG = -delta + g1 * T1 + g2 * T2
            GamkT = -(Gneg - redG.min(1)[:, None] + redG)
            if _remove_options(allowed, free, okf & (Qbox2 - GamkT - tol >= Ut)):
                continue
            if lb - lb_prev <= 0.02 * (Ut - lb):
                break
            lb_prev = lb
        return "open", lb, allowed, lo, hi, info

    def _start(self, node: Node):
        """(allowed, lo, hi, lP, uP) at the start of :meth:`evaluate`: copies of the node's
        options and box, and the trivial bounds of the option costs."""
        K = self.st.K
        allowed = node.state.copy()
        lo, hi = node.lo.copy(), node.hi.copy()
        lP = np.zeros((K, 4))
        uP = np.full((K, 4), np.inf)
        uP[:, 3] = 0.0
        return allowed, lo, hi, lP, uP

    def run(self, opt0, f0, mip_gap, time_limit, t0, log=None):
        st = self.st
        K = st.K
        root_allowed = np.full(K, ALL, dtype=np.uint8)
        if self.k1 <= 0:
            root_allowed &= np.uint8(0b0101)
        if self.k2 <= 0:
            root_allowed &= np.uint8(0b0011)
        if self.k1 >= K:
            root_allowed &= np.uint8(0b1010)
        if self.k2 >= K:
            root_allowed &= np.uint8(0b1100)
        root = Node(root_allowed, np.full(self.h, -np.inf), np.full(self.h, np.inf), 0)
        bf = BestFirst(root, opt0.copy(), f0, mip_gap, time_limit, t0, log)
        seen: set = set()
        for node in bf:
            kind, lb, allowed, elo, ehi, info = self.evaluate(node, bf.target)
            for opt in self._candidates(allowed, info):
                key = opt.tobytes()
                if T1[opt].sum() <= self.k1 and T2[opt].sum() <= self.k2 and key not in seen:
                    seen.add(key)
                    f, _ = st.f_assign(opt)
                    if f < bf.U:
                        o2, f2 = swap_search(st, opt, self.k1, self.k2, deadline=bf.deadline)
                        if f2 < f:
                            opt, f = o2, f2
                        bf.offer(f, opt)
            if kind in ("pruned", "leaf") or lb >= bf.target:
                bf.close(lb)
                continue
            d = node.depth + 1
            if "free" not in info or not np.array_equal(info["free"],
                                                        np.flatnonzero(_ONLY[allowed] < 0)):
                bf.push(lb, d, Node(allowed, elo, ehi, d))
                continue
            self._branch(bf, lb, d, allowed, elo, ehi, info)
        return bf.best, bf.U, bf.bound(), bf.nodes, bf.timed_out

    def _candidates(self, allowed, info) -> list:
        """Assignments worth evaluating at this node: the Lagrangian assignment at the node's
        centre b, and the solved node's own assignment (its value is <= the node's bound, so
        a leaf bound below U always comes with a better incumbent)."""
        cands = []
        if "bhat" in info:
            only = _ONLY[allowed]
            opt = np.where(only >= 0, only, 0)
            fr = np.flatnonzero(only < 0)
            if fr.size:
                dec = only >= 0
                m1 = self.k1 - int(T1[opt[dec]].sum())
                m2 = self.k2 - int(T2[opt[dec]].sum())
                if m1 >= 0 and m2 >= 0:
                    opt[fr] = assign(self.st.psi(info["bhat"], fr), allowed[fr], m1, m2)
            cands.append(opt)
        if "leaf_opt" in info:
            opt = np.zeros(self.st.K, dtype=np.int64)
            opt[info["leaf_idx"]] = info["leaf_opt"]
            cands.append(opt)
        return cands

    def _branch(self, bf: BestFirst, lb, d, allowed, elo, ehi, info) -> None:
        """Split on a hard coordinate of the box or on the most ambiguous cluster's column."""
        free, delta, T0 = info["free"], info["delta"], info["T0"]
        dmax = delta.max(1)
        amb = dmax > 0
        if not amb.any():
            bf.push(lb, d, Node(allowed, elo, ehi, d))
            return
        if self.h:
            width = ehi - elo
            big = np.isfinite(width) & (width > 1e-12 * (1 + np.abs(elo) + np.abs(ehi)))
            if big.any() and info["wb"][amb].sum() > info["we"][amb].sum():
                i = int(np.argmax(np.where(big, width, -1.0)))
                mid = 0.5 * (elo[i] + ehi[i])
                for a_, b_ in ((elo[i], mid), (mid, ehi[i])):
                    lo2, hi2 = elo.copy(), ehi.copy()
                    lo2[i], hi2[i] = a_, b_
                    bf.push(lb, d, Node(allowed, lo2, hi2, d))
                return
        jj = int(np.argmax(np.where(amb, dmax, -np.inf)))
        k = free[jj]
        tstar = int(np.argmax(delta[jj]))
        diffbits = int(T0[jj]) ^ tstar
        col = 0 if diffbits & 1 else 1
        withc = np.uint8(sum(1 << o for o in range(4) if (o >> col) & 1))
        for part in (withc, np.uint8(15) ^ withc):
            a2 = allowed.copy()
            a2[k] &= part
            bf.push(lb, d, Node(a2, elo, ehi, d))


# ---------------------------------------------------------------------- API
def _warm_opt(warm, problem, K):
    if warm is None:
        return None
    w = np.asarray(warm.w if hasattr(warm, "w") else warm)
    if w.dtype == bool:
        w = w.astype(float)
    if w.size == problem.p + 2 * K:
        w = w[problem.p:]
    if w.size != 2 * K:
        raise ValueError(f"warm has length {w.size}; expected 2K={2 * K} or p+2K")
    nz = w != 0
    return nz[:K].astype(np.int64) + 2 * nz[K:].astype(np.int64)


#: enumerate every maximal support before the branch and bound when there are at most this
#: many, and after it (when it ends without a certificate) while the estimated cost fits
ENUM_FIRST = 64
ENUM_FLOPS = 3e9  # about 2 s of dense least squares on this project's machine


def _maximal_supports(K: int, k1: int, k2: int):
    """Option vectors of every maximal support (k1 intercepts, k2 slopes): with a ridge on
    gamma, freeing more columns never raises the minimum, so these contain an optimum."""
    from itertools import combinations, product

    for S1, S2 in product(combinations(range(K), k1), combinations(range(K), k2)):
        opt = np.zeros(K, dtype=np.int64)
        opt[list(S1)] += 1
        opt[list(S2)] += 2
        yield opt


def enumeration_flops(problem, K: int, k1: int, k2: int) -> float:
    from math import comb

    cols = problem.p + k1 + k2
    return float(comb(K, k1) * comb(K, k2)) * problem.y.size * cols * cols


def enumerate_slopes(problem, K: int, k1: int, k2: int, deadline: float | None = None):
    """Every maximal support fitted by dense least squares (SVD, backward stable: accurate
    also with near-collinear covariates, where the normal equations of the branch and bound
    lose digits).  Returns (w, objective, bound, count), or None when the deadline passes.
    The bound is the least objective less a rounding margin of 1e-12 (f + 1/2 ||y||^2)."""
    if deadline is not None and time.perf_counter() > deadline:
        return None  # (before densifying the design)
    D = problem.design.toarray()
    y = np.asarray(problem.y, dtype=float)
    p, mu = problem.p, float(problem.ridge)
    best: tuple[float, np.ndarray | None] = (np.inf, None)
    count = 0
    for opt in _maximal_supports(K, k1, k2):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        g = np.concatenate([(opt & 1) > 0, (opt & 2) > 0])  # gamma layout: (2, K) row-major
        cols = np.concatenate([np.arange(p), p + np.flatnonzero(g)])
        A = np.vstack([D[:, cols], np.sqrt(mu) * np.eye(cols.size)[p:]])
        b = np.concatenate([y, np.zeros(cols.size - p)])
        coef = np.linalg.lstsq(A, b, rcond=None)[0]
        w = np.zeros(D.shape[1])
        w[cols] = coef
        f = problem.objective(w)
        count += 1
        if f < best[0]:
            best = (f, w)
    f, w_best = best  # a w: there is always a maximal support
    margin = 1e-12 * (abs(f) + 0.5 * float(y @ y))
    return w_best, f, f - margin, count


def solve_slopes(problem, caps, time_limit, mip_gap, warm, log, t0):
    term = problem.terms[0]
    K = int(term.n_levels)
    k1 = K if caps[(0, 0)] is None else min(caps[(0, 0)], K)
    k2 = K if caps[(0, 1)] is None else min(caps[(0, 1)], K)
    codes = np.asarray(term.codes, dtype=np.int64)
    st = build_slope_stats(problem.X, problem.y, codes, term.values, K, float(problem.ridge))
    deadline = None if time_limit is None else t0 + time_limit
    opt, f0 = heuristic(st, k1, k2, _warm_opt(warm, problem, K), deadline=deadline)
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, f0))
    from math import comb

    n_max = comb(K, k1) * comb(K, k2)
    info = {"heuristic_objective": f0, "structure": "slopes", "caps": (k1, k2)}
    if n_max <= ENUM_FIRST:  # few supports: evaluating each is cheaper than bounding
        found = enumerate_slopes(problem, K, k1, k2, deadline)
        if found is not None:
            w, _, bound, count = found
            info.update(support=np.flatnonzero(w[problem.p:] != 0), enumerated_supports=count)
            return finish(problem, w, bound, mip_gap, False, t0, 0, "mixmio-bnb+enum", info,
                          log=log)
    bnb = SlopeBnB(st, k1, k2)
    opt, U, bound, nodes, timed_out = bnb.run(opt, f0, mip_gap, time_limit, t0, log=log)
    beta, gamma = st.coefficients(opt, problem.y, problem.X, codes, term.values, term.start)
    w = np.concatenate([beta, gamma])
    info.update(support=np.flatnonzero(gamma != 0), options=opt, reduced_objective=U,
                hard_directions=bnb.h)
    solver = "mixmio-bnb"
    obj = problem.objective(w)
    if relative_gap(obj, min(bound, obj), gap_scale(problem)) > mip_gap \
            and enumeration_flops(problem, K, k1, k2) <= ENUM_FLOPS:
        # no certificate (degenerate designs: near-collinear covariates weaken every bound):
        # enumerate the maximal supports if that is affordable
        found = enumerate_slopes(problem, K, k1, k2, deadline)
        if found is not None:
            w_e, f_e, bound, count = found
            if f_e < obj:
                w = w_e
            timed_out, solver = False, "mixmio-bnb+enum"
            info.update(support=np.flatnonzero(w[problem.p:] != 0), enumerated_supports=count)
    return finish(problem, w, bound, mip_gap, timed_out, t0, nodes, solver, info, log=log)
