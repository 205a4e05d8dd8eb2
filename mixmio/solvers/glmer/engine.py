"""Exact, certified branch and bound for the random-intercept GLMM with an l0 cap.

    minimise F(beta, gamma) = sum_i l_i(x_i'beta + o_i + gamma_g(i)) + ridge/2 ||gamma||^2
    s.t.     ||gamma||_0 <= k   (plus forced-in / excluded clusters),  ridge > 0.

Design note with measurements: ``benchmarks/GLMER_ENGINE.md``.  Validity of every step:

**Reduction.**  For fixed beta the problem separates over clusters: cluster j costs
h_j(beta) if unselected and m_j(beta) = min_gamma psi_j if selected (``_engine_clusters``);
gain_j = h_j - m_j >= 0, so selecting more never hurts and

    f* = min_beta G(beta),  G = sum_j h_j - (sum of the k largest gains, forced in/out kept).

**Node.**  (IN, OUT, FREE, m = k - |IN| slots, a box on the h "hard" coordinates of beta).
Coordinates: beta = P theta with X P orthonormal and the first h columns the generalised
eigenvectors of (within-cluster Gram, X'X) with eigenvalue < 0.1 (directions nearly constant
within clusters: intercept, cluster-level covariates; at most 2 are boxed; with p <= 2 every
coordinate is boxed, "all-hard" mode).  The node's function is
G_N = sum_{IN u FREE} m_j + sum_OUT h_j + trim_{|F|-m}(gain_F) (trim_r: sum of the r
smallest); children partition the node, so the root minimum is f*.

**Target.**  U = incumbent value, Ut = U - mip_gap/2 |U|.  A node is closed once G_N >= Ut
is proven on it.  Every bound below is valid on R = box n {G_N < Ut}; R only shrinks during
the passes and from parent to child (a child's G is >= its parent's), so earlier interval
bounds (row ranges, gain intervals, minimiser ranges) stay valid (induction).

1. *Relaxation ellipsoid.*  F_R = the convex fit with IN u FREE selected, OUT unselected;
   G_N >= F_R + L on R with L = trim(l_F), l the current lower bounds of the gains (trim is
   monotone).  At the Newton iterate c (joint Hessian H, gradient norm a = ||g||_{H^-1}):
   (i) generalised self-concordance (|l^(3)| <= l'', :mod:`mixmio.solvers.glmer.fit`) gives
   F_R(c + d) >= F_R(c) - a r + (e^{-c r} + c r - 1)/c^2, r = ||d||_H, c = max_i
   ||z_i||_{H^-1}, so F_R <= level forces r <= r_max (``mixmio.solvers.glm.bounds.radius``);
   (ii) on R, where every eta_i moves by at most T_i from c (row ranges of step 2 plus the
   minimiser ranges of step 3), l_i(eta + u) >= l_i + l_i'u + l_i'' w(|u|) with
   w(t) = e^-t + t - 1 >= kap t^2/2, kap = 2 w(T)/T^2, so r <= (a + sqrt(a^2 + 2 kap
   delta))/kap (:meth:`_Fit.radius`).  The beta part satisfies ||d_beta||_S <= r with S the
   Schur complement (min over d_gamma of d'Hd).  The same for the exchange fit (step 4).
2. *Row ranges.*  For every row, x_i'beta over ellipsoid n box: with t_i the row in theta
   coordinates, t_i'd = alpha_i'd_a + t_ib'(d_b + S_bb^-1 S_ba d_a), the first term bounded
   over the box, the second by r ||t_ib||_{S_bb^-1}; intersected with the plain ellipsoid
   range r ||t_i||_{S^-1} and with the node's previous ranges.  Box shrinking: the shadow
   a_c +- r sqrt((S^-1)_aa) of each ellipsoid on the hard coordinates.  All-hard mode: the
   row ranges are the box's image, and (:meth:`_Search.box_bound`) the fit's minimum over
   the box is bounded below by linearisation at the clamped minimiser x with the clusters'
   own gamma_hat(x): F(y, gamma) >= F(x, gamma_hat) + g'(y - x) - sum psi_j'^2 / (2 ridge)
   (joint convexity plus the ridge's exact quadratic), which also cuts the box.
3. *Gain intervals.*  (a) Corners (``_engine_clusters.gain_bounds``): monotonicity of the
   signed gains in each v_i, certified 1-D minima; also an interval of each cluster's
   minimiser gamma*_j over the row box (psi' increases in every v_i).  (b) Projection
   (:meth:`_Search.proj_bounds`, h <= 1): first-order terms sum_i a_i delta_i bounded by
   projecting onto the ellipsoid and the box, second-order terms by self-concordance and the
   largest eigenvalue of each cluster's weighted information in the ellipsoid metric (the
   full statement is in that method's docstring).  Both are valid on R; their intersection
   is kept.  (c) Sweeps (h = 1, :meth:`_Search.sweep`): the box is cut into 16 slices, each
   bounded with its own row ranges and gain intervals by the relaxation + trim bound and by
   the exchange bound of step 5 with the exchange fit's lower bound on the slice; dropped
   slices hold no point of R and the box becomes the hull of the rest.
4. *Classification.*  theta = m-th largest lower bound: a free cluster with upper < theta is
   below m others everywhere on R, so it is unselected in every optimal choice there: it
   moves to OUT (G_N unchanged on R).  psi = (m+1)-th largest upper: lower > psi moves to
   IN.  Decided clusters are strictly on one side, so the rules never conflict; inverted
   intervals or an empty box prove R empty.
5. *Exchange bound.*  S0 = IN u (top m free clusters by gain at the incumbent's beta),
   T0 = the other free clusters.  For every choice T of m free clusters,
   sum_T gain <= sum_S0' gain + Gamma, Gamma = sum_{i<=r} (u_{T0,(i)} - l_{S0',(i)})_+
   (uppers decreasing, lowers increasing; r exchanged pairs gain at most that), so
   G_N >= F_{S0} - Gamma on R: the bound LB(F_{S0}) - Gamma, and the ellipsoid
   {F_{S0} <= Ut + Gamma} (far tighter: K - k clusters unselected) feeds step 2.
   LB(.) is the certified lower bound of the convex fit (``fit.gap_from``).

Node bound = max(LB(F_R) + L, LB(F_S0) - Gamma) (all-hard mode: also the box bounds).
Branch: when the box part of the ambiguous clusters' row ranges is more than SPATIAL times
the ellipsoid part (all-hard mode: while the box is wider than 1e-7 relative), bisect the
widest hard coordinate; else force IN / OUT the free cluster with the widest gain interval
among those in a positive exchange pair.  Best first.  A leaf (no free cluster) is a convex
fit: its certified lower bound closes it.

**Floating point.**  Per-cluster sums carry a relative margin (``_engine_clusters.MARGIN``),
bounds lose 1e-12 (1 + |F|), row ranges are padded by 1e-9 (1 + |x_i'beta|), classification
needs a 1e-9 relative separation.  The reported objective is ``problem.objective(w)`` and the
bound is clipped to it; a complete search whose margins keep the gap above mip_gap returns
``gap_limit``; a time limit returns ``time_limit`` with the honest gap (the root is always
bounded, at worst by the relaxation).
"""

from __future__ import annotations

import heapq
import itertools
import time

import numpy as np
import scipy.sparse as sp

from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.bnb.intercept import sum_smallest as _trim  # sum of the r smallest entries
from mixmio.solvers.glm.bounds import radius as _radius
from mixmio.solvers.glmer import fit as _fit
from mixmio.solvers.glmer.clusters import Clusters
from mixmio.solvers.glmer.heuristic import forced_sets
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

__all__ = ["applies", "solve_engine"]

SOLVER_NAME = "mixmio-glmer-bnb"
MAX_PASSES = 12
PAD = 1e-9
SLICES = 16
SPATIAL = 0.25  # bisect the box when its part of the row ranges exceeds this share


def applies(problem: GlmmProblem) -> bool:
    """One (1 | g) term with one-hot Z, its single cap over all clusters, ridge > 0, no sign
    caps, no l1 term, and only singleton indicator rows (ForceInclude / Exclude)."""
    from mixmio.solvers.glmer.heuristic import intercept_codes

    b = problem.base
    if (len(b.caps) != 1 or b.sign_caps or b.l1 is not None or problem.ridge <= 0
            or not intercept_codes(problem)):
        return False
    if not all(c.index.size == 1 and c.index[0] >= problem.p for c in b.constraints):
        return False
    try:
        forced_sets(problem)
    except ValueError:
        return False
    if np.any(b.penalized[: problem.p]) or not np.all(b.penalized[problem.p:]):
        return False
    cap = np.sort(np.asarray(problem.caps[0].index))
    return bool(np.array_equal(cap, problem.p + np.arange(problem.m)))


class _Fit:
    """A convex fit on a support (in theta coordinates) with its region quantities."""

    def __init__(self, eng, sel, start, deadline):
        des = _fit.Design(eng.T, eng.Zsel(sel), eng.pen(sel), eng.ridge)
        v0 = np.zeros(eng.p + int(sel.sum()))
        if start is not None:
            v0[: eng.p] = start[0]
            v0[eng.p:] = start[1][sel]
        v, f, conv, fac, g = _fit.newton(eng.pr, des, v0, deadline)
        self.sel = sel
        self.theta = v[: eng.p]
        self.gamma = np.zeros(eng.K)
        self.gamma[sel] = v[eng.p:]
        self.value = f
        a2 = max(float(g @ des.solve(fac, g)), 0.0)
        c2 = float(np.max(des.row_norms(fac), initial=0.0))
        self.a, self.c = np.sqrt(a2), np.sqrt(c2)
        self.lb = f + _fit.gap_from(a2, c2) - 1e-12 * (1.0 + abs(f))
        L = fac[3]                                   # Cholesky of the Schur complement S
        p = eng.p
        Li = np.linalg.inv(L) if p else np.zeros((0, 0))
        self.Sinv = Li.T @ Li
        h = eng.h
        if 0 < h < p:
            Sb = L @ L.T
            Sbb = Sb[h:, h:]
            M = np.linalg.solve(Sbb, Sb[h:, :h])        # S_bb^-1 S_ba
            self.alpha = eng.T[:, :h] - eng.T[:, h:] @ M
            Lb = np.linalg.cholesky(0.5 * (Sbb + Sbb.T))
            Wb = np.linalg.solve(Lb, eng.T[:, h:].T)
            self.e = np.sqrt(np.einsum("ij,ij->j", Wb, Wb))
            self.M = M
            self.Wb = np.ascontiguousarray(Wb.T)
        elif h == p:
            self.alpha = eng.T
            self.e = np.zeros(eng.n)
        W = Li @ eng.T.T if p else np.zeros((0, eng.n))
        self.s = np.sqrt(np.einsum("ij,ij->j", W, W))
        if h == 0:
            self.Wb = np.ascontiguousarray(W.T)
        self.xc = eng.T @ self.theta

    def radius(self, level, node=None, eng=None):
        """r_max with F(c + d) <= level  =>  ||d||_H <= r_max on R (None: level below the
        bound).  Two bounds, the smaller is used:

        - global (``_radius``): the self-concordance bound with c = max_i ||z_i||_{H^-1};
        - on R, when the node knows row ranges (x_i'beta in [rlo_i, rhi_i]) and ranges
          [gmin_j, gmax_j] of the selected clusters' minimisers: every eta_i changes by at
          most T_i from the fit, l_i(eta + u) >= l_i + l_i' u + l_i'' w(|u|) with
          w(t) = e^-t + t - 1 >= kap_i t^2 / 2 for |t| <= T_i, kap_i = 2 w(T_i) / T_i^2
          (w(t)/t^2 decreases), so F(c + d) >= F(c) - a ||d||_H + kap/2 ||d||_H^2 with
          kap = min_i kap_i, and ||d||_H <= (a + sqrt(a^2 + 2 kap delta)) / kap.
        """
        delta = level - self.value
        if level < self.lb:
            return None
        delta = max(delta, 0.0) + 1e-12 * (1.0 + abs(level))
        try:
            r = _radius(self.a, self.c, delta) * (1.0 + 1e-9)
        except Exception:                                  # noqa: BLE001  a c >= 1
            r = np.inf
        if node is not None and node.grange is not None:
            kap = self.kappa(node, eng)
            if kap > 0:
                r2 = (self.a + np.sqrt(self.a ** 2 + 2.0 * kap * delta)) / kap
                r = min(r, r2 * (1.0 + 1e-9))
        return r

    def kappa(self, node, eng):
        """min_i kap_i over the rows (see :meth:`radius`)."""
        gmin, gmax = node.grange
        xc = self.xc
        if not (np.all(np.isfinite(node.rlo)) and np.all(np.isfinite(node.rhi))):
            return 0.0
        dlo = node.rlo - xc
        dhi = node.rhi - xc
        sel = self.sel[eng.codes]
        g = self.gamma[eng.codes]
        lo_g = np.where(sel, gmin[eng.codes] - g, 0.0)
        hi_g = np.where(sel, gmax[eng.codes] - g, 0.0)
        T = np.maximum(np.abs(dlo + lo_g), np.abs(dhi + hi_g))
        T = np.maximum(np.max(T), 1e-12)
        if not np.isfinite(T):
            return 0.0
        return float(2.0 * (np.expm1(-T) + T) / (T * T)) * (1.0 - 1e-9)


class _Engine:
    def __init__(self, problem: GlmmProblem, deadline):
        pr = self.pr = problem
        self.deadline = deadline
        X = np.asarray(pr.X, dtype=float)
        self.n, self.p, self.K = X.shape[0], X.shape[1], pr.m
        self.codes = np.asarray(pr.terms[0].codes, dtype=np.intp)
        self.ridge = pr.ridge
        self.k = int(pr.caps[0].k)
        self.fin, self.fout = forced_sets(pr)
        self.P, self.h = self._basis(X)
        self.all_hard = 0 < self.h == self.p
        self.T = X @ self.P
        self.cl = Clusters(pr.family, pr.y, pr.weights, pr.sat, self.codes, self.K, pr.ridge)
        self._Z = sp.csc_matrix((np.ones(self.n), (np.arange(self.n), self.codes)),
                                shape=(self.n, self.K))
        self.nodes = 0
        self._stacked = None
        self.order = np.argsort(self.codes, kind="stable")
        counts = np.bincount(self.codes, minlength=self.K)
        self.present = counts > 0
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def _basis(self, X):
        """P with (XP)'(XP) = I, first h columns the hard directions (sorted by within share)."""
        p = X.shape[1]
        if p == 0:
            return np.zeros((0, 0)), 0
        G = X.T @ X
        n_j = np.bincount(self.codes, minlength=self.K).astype(float)
        sums = np.zeros((self.K, p))
        np.add.at(sums, self.codes, X)
        B = sums.T @ (sums / np.maximum(n_j, 1.0)[:, None])     # between-cluster Gram
        Wg = G - B                                              # within-cluster Gram
        R = np.linalg.cholesky(0.5 * (G + G.T))
        Ri = np.linalg.inv(R)
        lam, U = np.linalg.eigh(Ri @ Wg @ Ri.T)
        P = Ri.T @ U
        h = int(min(np.sum(lam < 0.1), 2))
        if h == p or p <= 2:       # every coordinate boxed (one row per cluster, say)
            h = p
        return P, h

    def stacked(self):
        """The clusters repeated SLICES times (codes s K + j), for vectorised sweeps."""
        if self._stacked is None:
            pr, S = self.pr, SLICES
            codes = (np.arange(S)[:, None] * self.K + self.codes[None, :]).ravel()
            self._stacked = Clusters(pr.family, np.tile(pr.y, S), np.tile(pr.weights, S),
                                     np.tile(pr.sat, S), codes, S * self.K, pr.ridge)
        return self._stacked

    def group_sum(self, A):
        """Per-cluster sums of the rows of A (n x d) -> (K x d)."""
        out = np.zeros((self.K, A.shape[1]))
        st = self.starts[self.present]
        out[self.present] = np.add.reduceat(A[self.order], st, axis=0)
        return out

    def group_lmax(self, q, W):
        """lambda_max of sum_{i in j} q_i W_i W_i' for every cluster (batched, chunked)."""
        d = W.shape[1]
        out = np.zeros(self.K)
        if d == 0:
            return out
        Wq = W[self.order]
        qq = q[self.order]
        cl_ids = np.flatnonzero(self.present)
        st = self.starts[self.present]
        en = np.append(st[1:], self.n)
        step = max(1, 2_000_000 // max(1, d * d * max(1, int(np.max(en - st)))))
        for c0 in range(0, cl_ids.size, step):
            c1 = min(cl_ids.size, c0 + step)
            r0, r1 = st[c0], en[c1 - 1]
            Wc = Wq[r0:r1]
            outer = (qq[r0:r1, None, None] * Wc[:, :, None]) * Wc[:, None, :]
            M = np.add.reduceat(outer, st[c0:c1] - r0, axis=0)
            out[cl_ids[c0:c1]] = np.linalg.eigvalsh(M)[:, -1]
        return np.maximum(out, 0.0)

    def Zsel(self, sel):
        return self._Z[:, np.flatnonzero(sel)]

    def pen(self, sel):
        return np.concatenate([np.zeros(self.p, dtype=bool), np.ones(int(sel.sum()), dtype=bool)])

    def beta(self, theta):
        return self.P @ theta


class _Node:
    __slots__ = ("IN", "OUT", "lo", "hi", "bound", "rlo", "rhi", "start", "lb_g", "ub_g",
                 "grange")

    def __init__(self, IN, OUT, lo, hi, bound, rlo, rhi, start, lb_g=None, ub_g=None):
        self.IN, self.OUT, self.lo, self.hi = IN, OUT, lo, hi
        self.bound, self.rlo, self.rhi, self.start = bound, rlo, rhi, start
        self.lb_g, self.ub_g = lb_g, ub_g
        self.grange = None


def _kth_largest(vals: np.ndarray, k: int) -> float:
    if k <= 0:
        return np.inf
    if k > vals.size:
        return -np.inf
    return float(np.partition(vals, vals.size - k)[vals.size - k])


def _outside_in(S: int):
    """Slice indices alternating from both ends towards the middle."""
    lo, hi = 0, S - 1
    while lo <= hi:
        yield lo
        if hi != lo:
            yield hi
        lo, hi = lo + 1, hi - 1


def _hull_done(keep: np.ndarray, si: int) -> bool:
    """A slice between two kept ones cannot change the hull."""
    return bool(keep[:si].any() and keep[si + 1:].any())


def _exchange_slice_bound(exs, slo, shi, ls, us):
    """The lower bound of F_S0 on the slice [slo, shi] minus its exchange sum Gamma_s (see
    :meth:`_Search.sweep`); ``exs`` = (F_S0, its radius, S0, T0, its kap, sqrt((S^-1)_aa))."""
    FS, _, S0, T0, kapS, sa = exs
    uT = np.sort(us[T0])[::-1]
    lS = np.sort(ls[S0])
    rr = min(uT.size, lS.size)
    gam = float(np.sum(np.maximum(uT[:rr] - lS[:rr], 0.0)))
    dist = max(0.0, slo - FS.theta[0], FS.theta[0] - shi) / sa
    dist *= 1.0 - 1e-9
    phi = -FS.a * dist + (np.expm1(-FS.c * dist) + FS.c * dist) / (
        FS.c ** 2) if FS.c > 0 else -FS.a * dist + 0.5 * dist * dist
    if kapS > 0:
        phi = max(phi, -FS.a * dist + 0.5 * kapS * dist * dist)
    lbS = FS.value + phi - 1e-12 * (1.0 + abs(FS.value))
    return lbS - gam


def _reference(node, F, h):
    """(theta0, hw) of :meth:`_Search.proj_bounds`: the ellipsoid centre of F moved along its
    conditional centre line to the box midpoint (h = 1) and half the box width; None when
    the box is unbounded."""
    theta0 = F.theta.copy()
    hw = 0.0
    if h == 1:
        if not (np.isfinite(node.lo[0]) and np.isfinite(node.hi[0])):
            return None
        amid = 0.5 * (node.lo[0] + node.hi[0])
        da0 = amid - theta0[0]
        theta0[0] = amid
        theta0[1:] -= F.M[:, 0] * da0
        hw = 0.5 * (node.hi[0] - node.lo[0])
    return theta0, hw


class _Projection:
    """Bounds over the region (ellipsoid of radius r around F's fit, times the box of half
    width hw when h = 1) of per-cluster sums of the row moves delta_i (:meth:`proj`) and of
    their squares (:meth:`quad`), for :meth:`_Search.proj_bounds`."""

    __slots__ = ("eng", "r", "W", "h", "al", "hw", "codes", "K", "base", "d2v", "lam")

    def __init__(self, eng, F, r, hw, d2v):
        self.eng, self.r, self.W, self.h, self.hw = eng, r, F.Wb, eng.h, hw
        self.al = F.alpha[:, 0] if eng.h == 1 else None
        self.codes, self.K = eng.codes, eng.K
        # lambda_max(sum_j d2v_i W_i W_i') once; other weights by their largest ratio to d2v
        self.base = d2v > 0
        self.d2v = d2v
        self.lam = eng.group_lmax(d2v, self.W)

    def proj(self, wt):
        """>= max over the region of |sum_{i in j} wt_i delta_i|."""
        codes, K = self.codes, self.K
        out = self.r * np.sqrt(np.sum(self.eng.group_sum(wt[:, None] * self.W) ** 2, axis=1))
        if self.h == 1:
            out = out + np.abs(np.bincount(codes, weights=wt * self.al, minlength=K)) * self.hw
        return out * (1.0 + 1e-9)

    def quad(self, wt):
        """>= max over the region of sum_{i in j} wt_i delta_i^2:
        (sqrt(hard part) + sqrt(ellipsoid part))^2, the best of (1 + t) A + (1 + 1/t) B."""
        codes, K, base, r, hw, al = self.codes, self.K, self.base, self.r, self.hw, self.al
        ratio = np.zeros(K)
        np.maximum.at(ratio, codes, np.where(base, wt / np.where(base, self.d2v, 1.0), np.inf))
        with np.errstate(invalid="ignore", over="ignore"):
            ell = np.where(np.isfinite(ratio), r * r * ratio * self.lam, np.inf)
        if self.h == 1:
            hard = hw * hw * np.bincount(codes, weights=wt * al * al, minlength=K)
            ell = (np.sqrt(ell) + np.sqrt(hard)) ** 2
        return ell * (1.0 + 1e-9)


def _gain_upper(eng, pj, a, c, d1g, d2v, g0, u0, lin, kap, Dj, gmin, gmax):
    """The upper interval bounds of the gains of :meth:`_Search.proj_bounds` (the better of
    (i) and (ii) below); ``pj`` the :class:`_Projection` of the region."""
    codes, K = eng.codes, eng.K
    # eps bounds the move of the minimiser gamma* over R: A (1 - e^-eps) <= Psi with
    # A = I0 e^-D <= psi'' and Psi >= |psi'(gamma0; beta)| (first order + remainder)
    I0 = np.bincount(codes, weights=c, minlength=K)
    Pc = pj.proj(c)
    Qc = pj.quad(c)
    grad0 = np.abs(np.bincount(codes, weights=d1g, minlength=K) + eng.ridge * g0)
    Psi = grad0 + Pc + 0.5 * kap * Qc
    A = I0 * np.exp(-Dj)
    eps_corner = np.maximum(np.abs(gmin - g0), np.abs(gmax - g0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        eps_n = np.where(Psi < A, -np.log1p(-Psi / np.where(A > 0, A, 1.0)), np.inf)
    eps = np.minimum(eps_corner, eps_n * (1.0 + 1e-9) + 1e-12)
    eps = np.where(np.isfinite(eps), eps, 50.0)
    # upper (i): h_j(beta) <= h_j(beta0) + h'd + kap/2 d'H_h d (upper self-concordance);
    # m_j(beta) >= m_lo(beta0) + m'd + kap'/2 [d'C d - (c'd)^2 / (I0 + ridge/kap')] with
    # C = sum c_i x_i x_i' and kap' = 2 w(D + eps) / (D + eps)^2 (lower self-concordance
    # on |delta_i + gamma - gamma0| <= D + eps, the minimiser staying within eps), so
    # gain <= u0 + lin + 1/2 quad((kap d2v - kap' c)_+) + kap'/2 Pc^2 / (I0 + ridge/kap')
    Te = np.minimum(Dj + eps, 50.0)
    Tc = np.maximum(Te, 1e-8)
    kap_m = np.where(Te > 1e-4, 2.0 * (np.expm1(-Tc) + Tc) / (Tc * Tc), 1.0 - Tc)
    kap_m = np.maximum(kap_m * (1.0 - 1e-9), 0.0)
    wdiff = np.maximum(kap[codes] * d2v - kap_m[codes] * c, 0.0)
    up1 = (u0 + lin + 0.5 * pj.quad(wdiff)
           + 0.5 * kap_m * Pc ** 2 / (I0 + eng.ridge / np.maximum(kap_m, 1e-300)))
    # upper (ii): max over |gamma - gamma0| <= eps of Phi_j(beta, gamma)
    wb_eps = np.expm1(np.minimum(eps, 50.0)) - np.minimum(eps, 50.0)
    q = np.abs(a) + c * np.expm1(np.minimum(eps, 50.0))[codes]
    up2 = (u0 + lin + eps * Pc + wb_eps * np.sqrt(I0 * Qc) + 0.5 * kap * pj.quad(q))
    return np.minimum(up1, up2)


def _ambiguous(pair, T0, S0, gl, gu, free):
    """The clusters to branch on when :meth:`_Search.bound_node` stalls: those of the positive
    exchange pairs (the npos largest upper bounds in T0 and smallest lower bounds in S0), or
    every free cluster when there is none."""
    npos = int(np.sum(pair > 0))
    amb = np.zeros(free.size, dtype=bool)
    if npos:
        uidx = np.flatnonzero(T0)[np.argsort(-gu[T0], kind="stable")[:npos]]
        lidx = np.flatnonzero(S0)[np.argsort(gl[S0], kind="stable")[:npos]]
        amb[uidx] = True
        amb[lidx] = True
    else:
        amb = free
    return amb


class _Search:
    def __init__(self, eng: _Engine, U, w_inc, mip_gap):
        self.eng, self.U, self.w_inc, self.mip_gap = eng, U, w_inc, mip_gap
        self.box_part = None
        self.est = None

    @property
    def Ut(self):
        return self.U - 0.5 * self.mip_gap * abs(self.U)

    def estimates(self):
        """Every cluster's gain at the incumbent's fixed effects (orders S0)."""
        if self.est is None:
            eng = self.eng
            v = eng.pr.X @ self.w_inc[: eng.p] + eng.pr.offset
            self.est = eng.cl.gains(v)[0]
        return self.est

    def offer(self, fitobj: _Fit):
        """A fit's support is feasible: update the incumbent when it is better."""
        eng = self.eng
        if int(fitobj.sel.sum()) > eng.k:
            return
        w = np.concatenate([eng.beta(fitobj.theta), fitobj.gamma])
        val = eng.pr.objective(w)
        if val < self.U:
            self.U, self.w_inc = val, w
            self.est = None

    def ranges(self, node, F, r, free_rows=None):
        """Intersect the node's row ranges with those of the ellipsoid of F (radius r)."""
        eng = self.eng
        if not np.isfinite(r):
            return
        xc = F.xc
        half = r * F.s
        lo, hi = xc - half, xc + half
        if eng.h:
            theta_a = F.theta[: eng.h]
            # box shrink by the ellipsoid's shadow on the hard coordinates
            sh = r * np.sqrt(np.maximum(np.diag(F.Sinv)[: eng.h], 0.0))
            node.lo = np.maximum(node.lo, theta_a - sh)
            node.hi = np.minimum(node.hi, theta_a + sh)
            if np.any(node.lo > node.hi):
                return
            da_lo = node.lo - theta_a
            da_hi = node.hi - theta_a
            A = F.alpha
            bmin = np.sum(np.minimum(A * da_lo, A * da_hi), axis=1)
            bmax = np.sum(np.maximum(A * da_lo, A * da_hi), axis=1)
            lo = np.maximum(lo, xc + bmin - r * F.e)
            hi = np.minimum(hi, xc + bmax + r * F.e)
        pad = PAD * (1.0 + np.abs(xc))
        node.rlo = np.maximum(node.rlo, lo - pad)
        node.rhi = np.minimum(node.rhi, hi + pad)
        if eng.h:
            # for the branching rule: the box part and the smallest ellipsoid part so far
            ep = 2.0 * r * F.e
            if self.box_part is not None and self.box_part[2] is node:
                ep = np.minimum(ep, self.box_part[1])
            self.box_part = (bmax - bmin, ep, node)

    def _slice_rows(self, F, r, slo, shi):
        """Row ranges of x_i'beta on every slice of the box from one ellipsoid."""
        eng = self.eng
        if eng.all_hard:
            t = eng.T[:, 0]
            return (np.minimum(np.outer(slo, t), np.outer(shi, t)),
                    np.maximum(np.outer(slo, t), np.outer(shi, t)))
        ta = F.theta[0]
        al = F.alpha[:, 0]
        a1 = np.outer(slo - ta, al)
        a2 = np.outer(shi - ta, al)
        return F.xc + np.minimum(a1, a2) - r * F.e, F.xc + np.maximum(a1, a2) + r * F.e

    def sweep(self, node, FR, rR, free, m, it=0, ex=None):
        """h = 1: cut the box into SLICES slices and drop those that hold no point of R.

        On R n slice (valid there: the slice's row ranges, corner and projection bounds of
        the gains), a slice is dropped when (a) the relaxation bound plus the trimmed lower
        bounds reaches Ut, or (b) with the exchange fit F_S0 (``ex``): its lower bound on
        the slice minus the slice's exchange sum Gamma_s reaches Ut.  The slice lower bound
        of F_S0: every beta of the slice is at S-distance rho >= dist(slice, c_a) /
        sqrt((S^-1)_aa) from the fit, and F_S0(c + d) >= F_S0(c) - a rho + phi(rho) with
        phi the self-concordance (or, on R, the kap) quadratic of :meth:`_Fit.radius`.
        The box becomes the hull of the other slices (repeated while it halves)."""
        eng = self.eng
        if eng.h != 1 or not (np.isfinite(node.lo[0]) and np.isfinite(node.hi[0])):
            return
        if it % 4 and ex is None:
            return                    # sweeps on the first pass and every fourth
        nf = int(free.sum())
        S = SLICES
        cls = eng.stacked()
        okc = np.ones(eng.K, dtype=bool)
        exs = None
        if ex is not None:
            FS, rS, S0, T0 = ex
            kapS = FS.kappa(node, eng) if node.grange is not None else 0.0
            exs = (FS, rS, S0, T0, kapS, np.sqrt(max(FS.Sinv[0, 0], 1e-300)))
        for _ in range(4):
            lo0, hi0 = node.lo[0], node.hi[0]
            if not hi0 > lo0:
                return
            edges = np.linspace(lo0, hi0, S + 1)
            slo, shi = edges[:-1], edges[1:]
            sg = self._slice_gains(node, FR, rR, exs, slo, shi, cls)
            if sg is None:
                return
            rlo, rhi, lw, up, gmn, gmx = sg
            empty = np.any(rlo > rhi, axis=1)
            keep = np.zeros(S, dtype=bool)
            # only the outermost kept slices matter (the box becomes their hull): scan
            # inwards from both ends and stop at the first slice that is kept
            for si in _outside_in(S):
                if empty[si] or _hull_done(keep, si):
                    continue
                keep[si] = self._slice_kept(node, si, slo, shi, sg, FR, rR, exs, free, nf, m,
                                            okc)
            if not keep.any():
                node.lo[0], node.hi[0] = 1.0, 0.0          # empty: R holds no point
                return
            idx = np.flatnonzero(keep)
            node.lo[0], node.hi[0] = slo[idx[0]], shi[idx[-1]]
            if (node.hi[0] - node.lo[0]) > 0.5 * (hi0 - lo0):
                return

    def _slice_gains(self, node, FR, rR, exs, slo, shi, cls):
        """Row ranges of the slices [slo, shi] of the box (padded, within the node's) and the
        gains' bounds on them: (rlo, rhi, lw, up, gmn, gmx), one row per slice, or None when a
        row range is unbounded."""
        eng = self.eng
        S = slo.size
        rlo, rhi = self._slice_rows(FR, rR, slo, shi)
        if exs is not None and not eng.all_hard and np.isfinite(exs[1]):
            r2lo, r2hi = self._slice_rows(exs[0], exs[1], slo, shi)
            rlo, rhi = np.maximum(rlo, r2lo), np.minimum(rhi, r2hi)
        pad = PAD * (1.0 + np.maximum(np.abs(rlo), np.abs(rhi)))
        rlo = np.maximum(rlo - pad, node.rlo)
        rhi = np.minimum(rhi + pad, node.rhi)
        if not (np.all(np.isfinite(rlo)) and np.all(np.isfinite(rhi))):
            return None
        off = eng.pr.offset
        lw, up, (gmn, gmx) = cls.gain_bounds((rlo + off).ravel(), (rhi + off).ravel())
        lw, up = lw.reshape(S, eng.K), up.reshape(S, eng.K)
        gmn, gmx = gmn.reshape(S, eng.K), gmx.reshape(S, eng.K)
        if node.grange is not None:
            gmn = np.maximum(gmn, node.grange[0])
            gmx = np.minimum(gmx, node.grange[1])
        return rlo, rhi, lw, up, gmn, gmx

    def _slice_kept(self, node, si, slo, shi, sg, FR, rR, exs, free, nf, m, okc):
        """Whether slice si of :meth:`sweep` may hold a point of R (see there)."""
        rlo, rhi, lw, up, gmn, gmx = sg
        ls, us = np.maximum(lw[si], 0.0), up[si]
        if node.lb_g is not None:
            ls, us = np.maximum(ls, node.lb_g), np.minimum(us, node.ub_g)
        sl = _Node(None, None, slo[si:si + 1].copy(), shi[si:si + 1].copy(), None,
                   rlo[si], rhi[si], None)
        Ls = _trim(ls[free], nf - m)
        if FR.lb + Ls >= self.Ut:
            return False
        if rR is not None and np.isfinite(rR):
            pb = self.proj_bounds(sl, FR, rR, (gmn[si], gmx[si]), okc)
            if pb is not None:
                ls, us = np.maximum(ls, pb[0]), np.minimum(us, pb[1])
        if exs is not None and np.isfinite(exs[1]):
            pb = self.proj_bounds(sl, exs[0], exs[1], (gmn[si], gmx[si]), okc)
            if pb is not None:
                ls, us = np.maximum(ls, pb[0]), np.minimum(us, pb[1])
        Ls = _trim(ls[free], nf - m)
        if FR.lb + Ls >= self.Ut:
            return False
        return exs is None or not _exchange_slice_bound(exs, slo[si], shi[si], ls, us) >= self.Ut

    def proj_bounds(self, node, F, r, grange, okc):
        """Interval bounds of the gains over R from one ellipsoid (h <= 1), by projection.

        Reference beta0: the ellipsoid centre moved along its conditional centre line to the
        box midpoint (h = 1).  With v = X beta0 + o, gamma0 the clusters' minimisers at beta0,
        a_i = l_i'(v_i + gamma0) - l_i'(v_i), delta_i = x_i'(beta - beta0) and
        wbar(t) = e^t - 1 - t <= t^2 e^t / 2 (generalised self-concordance, |l^(3)| <= l''):

            gain_j(beta) >= Phi_j(beta, gamma0) >= gain_j(beta0) - sum_i a_i delta_i
                            - sum_i |a_i| wbar(|delta_i|),
            gain_j(beta) <= max_{gamma in G_j} Phi_j(beta, gamma) <= gain_j(beta0)
                            + |sum_i a_i delta_i| + sum_i b_i |delta_i|
                            + sum_i (|a_i| + b_i) wbar(|delta_i|),

        G_j = [gmin_j, gmax_j] holding the minimiser over R (``gain_bounds``),
        b_i = l_i''(v_i + gamma0)(e^{w_j} - 1) >= |a_i(gamma) - a_i(gamma0)| for gamma in G_j,
        w_j = max |G_j - gamma0|.  In coordinates (d_a, z): delta_i = alpha_i d_a + W_i'z with
        |d_a| <= half the box width and ||z|| <= r, so |sum a_i delta_i| <= |sum a_i alpha_i|
        hw + r ||sum a_i W_i||; sum q_i delta_i^2 <= 2 hw^2 sum q_i alpha_i^2 + 2 r^2
        lambda_max(sum q_i W_i W_i') (Q_j, with q = |a| + b); sum b |delta| <= sqrt(sum b Q_j)
        (Cauchy-Schwarz, b <= q); |delta_i| <= D_j from the row ranges.
        """
        eng = self.eng
        h = eng.h
        if eng.all_hard or h > 1 or not np.isfinite(r):
            return None
        ref = _reference(node, F, h)
        if ref is None:
            return None
        theta0, hw = ref
        cl, codes, K = eng.cl, eng.codes, eng.K
        x0 = eng.T @ theta0
        v = x0 + eng.pr.offset
        g0, _, m_lo, hv, marg, _ = cl.cluster_min(v)
        psi0, psabs = cl.psi(v, g0)
        l0 = hv - psi0 - 1e-11 * (1.0 + psabs + marg)
        u0 = hv - m_lo + marg
        fam, y, wts, sat = eng.pr.family, eng.pr.y, eng.pr.weights, eng.pr.sat
        _, d1v, d2v = _fit.row_terms(fam, v, y, wts, sat)
        eg = v + g0[codes]
        _, d1g, d2g = _fit.row_terms(fam, eg, y, wts, sat)
        a = d1g - d1v
        c = d2g
        gmin, gmax = grange
        D = np.maximum(np.abs(node.rlo - x0), np.abs(node.rhi - x0))
        Dj = np.zeros(K)
        np.maximum.at(Dj, codes, D)
        pj = _Projection(eng, F, r, hw, d2v)
        # wbar(t) <= kap(D) t^2 / 2 for t <= D, kap(D) = 2 wbar(D) / D^2 (increasing in D)
        Dc = np.maximum(Dj, 1e-8)
        kap = np.where(Dj > 1e-4, 2.0 * (np.expm1(Dc) - Dc) / (Dc * Dc), 1.0 + Dc) * (1 + 1e-9)
        lin = pj.proj(a)
        lower = l0 - lin - 0.5 * kap * pj.quad(np.abs(a))
        upper = _gain_upper(eng, pj, a, c, d1g, d2v, g0, u0, lin, kap, Dj, gmin, gmax)
        bad = ~okc | ~np.isfinite(gmin) | ~np.isfinite(gmax) | cl.extreme(v) | cl.extreme(eg)
        lower = np.where(bad | ~np.isfinite(lower), 0.0, np.maximum(lower, 0.0))
        upper = np.where(bad | ~np.isfinite(upper), np.inf, upper)
        return lower, upper

    def box_rows(self, node):
        """All coordinates boxed: the row ranges of x_i'beta are the box's image."""
        T = self.eng.T
        lo = np.sum(np.minimum(T * node.lo, T * node.hi), axis=1)
        hi = np.sum(np.maximum(T * node.lo, T * node.hi), axis=1)
        pad = PAD * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
        node.rlo = np.maximum(node.rlo, lo - pad)
        node.rhi = np.minimum(node.rhi, hi + pad)

    def box_bound(self, node, sel, theta, target):
        """Lower bound of min over the box of the fit on ``sel`` (all coordinates boxed), and
        the box cut by it.  At x = the fit's minimiser clamped to the box, with gamma_hat the
        clusters' own 1-D minimisers at x: by joint convexity and the ridge's exact
        quadratic, F(y, gamma) >= F(x, gamma_hat) + g'(y - x) - sum_j psi_j'(gamma_hat)^2 /
        (2 ridge) (g the theta-gradient at (x, gamma_hat)); the first and last terms are
        sum_sel m_lower + sum_unsel h.  Coordinates y_j whose bound reaches ``target`` are
        cut from the box."""
        eng = self.eng
        if not np.all(np.isfinite(node.lo)) or not np.all(np.isfinite(node.hi)):
            return -np.inf
        x = np.clip(theta, node.lo, node.hi)
        v = eng.T @ x + eng.pr.offset
        gam, _, m_lo, h, marg, _ = eng.cl.cluster_min(v)
        eta = v + np.where(sel, gam, 0.0)[eng.codes]
        if np.any(np.abs(eta) > 600.0) or np.any(np.abs(v) > 600.0):
            return -np.inf
        C = float(np.sum(np.where(sel, m_lo, h - marg)))
        C -= 1e-12 * (1.0 + abs(C))
        _, d1, _ = _fit.row_terms(eng.pr.family, eta, eng.pr.y, eng.pr.weights, eng.pr.sat)
        g = eng.T.T @ d1
        g_abs = np.abs(g) * (1.0 + 1e-12) + 1e-12
        part = np.minimum(g * (node.lo - x), g * (node.hi - x)) - 1e-12 * g_abs * (
            np.abs(node.lo - x) + np.abs(node.hi - x))
        val = C + float(np.sum(part))
        for j in range(x.size):
            room = target - (val - part[j])          # g_j (y_j - x_j) must stay below room
            if g[j] != 0:
                step = room / g[j]
                slack = 1e-9 * (abs(step) + abs(x[j])) + 1e-12
                if g[j] > 0:
                    node.hi[j] = min(node.hi[j], x[j] + step + slack)
                else:
                    node.lo[j] = max(node.lo[j], x[j] + step - slack)
        return val

    def bound_node(self, node):
        """Bound the node; returns (status, bound, branch info)."""
        eng = self.eng
        K = eng.K
        best = -np.inf
        prev_free = -1
        Fs = None
        gl = gu = None
        best_prev = -np.inf
        ex_sweeps = 0
        for it in range(MAX_PASSES):
            free = ~(node.IN | node.OUT)
            nf = int(free.sum())
            m = eng.k - int(node.IN.sum())
            if m < 0:
                return "pruned", np.inf, None
            if m == 0 and nf:
                node.OUT = node.OUT | free
                continue
            if nf and m >= nf:
                node.IN = node.IN | free
                continue
            if nf == 0:
                Fl = _Fit(eng, node.IN.copy(), node.start, eng.deadline)
                self.offer(Fl)
                return "leaf", max(best, Fl.lb), None
            if time.perf_counter() > eng.deadline:
                return "open", best, None
            # 1. relaxation
            sel_R = node.IN | free
            FR = _Fit(eng, sel_R, node.start, eng.deadline)
            if gl is None or gl.size != K:
                gl = np.zeros(K) if node.lb_g is None else node.lb_g.copy()
                gu = np.full(K, np.inf) if node.ub_g is None else node.ub_g.copy()
            L = _trim(gl[free], nf - m)
            best = max(best, FR.lb + L)
            if eng.all_hard:
                best = max(best, self.box_bound(node, sel_R, FR.theta, self.Ut - L) + L)
            if best >= self.Ut:
                return "closed", best, None
            closed, rR = self._relaxation_region(node, FR, L, free, m, it, Fs)
            if closed:
                return "closed", max(best, self.Ut), None
            # 2. gains over the row box
            gl, gu = self._gain_intervals(node, FR, rR, Fs, gl, gu)
            if np.any(gl[free] > gu[free] * (1 + 1e-9) + 1e-12):
                return "closed", max(best, self.Ut), None
            # 3. classification
            theta = _kth_largest(gl[free], m)
            psi = _kth_largest(gu[free], m + 1)
            out_new = free & (gu * (1 + 1e-9) + 1e-12 < theta)
            in_new = free & (gl > psi * (1 + 1e-9) + 1e-12)
            if in_new.any() or out_new.any():
                node.IN = node.IN | in_new
                node.OUT = node.OUT | out_new
                node.lb_g, node.ub_g = gl, gu
                Fs = None
                continue
            # 4. exchange bound
            FS, S0, T0, pair, Gam = self._exchange_fit(node, FR, gl, gu, free, m)
            best = max(best, FS.lb - Gam)
            if eng.all_hard:
                best = max(best, self.box_bound(node, node.IN | S0, FS.theta,
                                                self.Ut + Gam) - Gam)
            node.start = (FS.theta, FS.gamma)
            node.lb_g, node.ub_g = gl, gu
            if best >= self.Ut:
                return "closed", best, None
            closed, Fs, ex_sweeps = self._exchange_region(node, FR, rR, FS, Gam, S0, T0, free,
                                                          m, it, Fs, ex_sweeps)
            if closed:
                return "closed", max(best, self.Ut), None
            gain = best - best_prev
            stalled = nf == prev_free and gain < 0.2 * max(self.Ut - best, 0.0)
            prev_free, best_prev = nf, best
            if stalled or it == MAX_PASSES - 1:
                # stalled: branch
                return "branch", best, (_ambiguous(pair, T0, S0, gl, gu, free), gl, gu)
        return self._passes_out(node, best, gl, gu)

    def _relaxation_region(self, node, FR, L, free, m, it, Fs):
        """Step 1 of :meth:`bound_node`: cut the node's box and row ranges to the relaxation's
        region (and the previous exchange fit's, ``Fs``).  Returns (closed, rR): closed when
        the region is empty, rR the relaxation's radius (None when all coordinates are
        boxed)."""
        eng = self.eng
        if eng.all_hard:
            rR = None
            self.sweep(node, FR, rR, free, m, it)
            if np.any(node.lo > node.hi):
                return True, rR
            self.box_rows(node)
        else:
            rR = FR.radius(self.Ut - L, node, eng)
            if rR is None:
                return True, rR
            self.ranges(node, FR, rR)
            if eng.h == 1 and np.isfinite(rR):
                self.sweep(node, FR, rR, free, m, it)
                if np.any(node.lo > node.hi):
                    return True, rR
                self.ranges(node, FR, rR)
            if Fs is not None:
                self.ranges(node, Fs[0], Fs[1])
        if np.any(node.rlo > node.rhi) or (eng.h and np.any(node.lo > node.hi)):
            return True, rR
        return False, rR

    def _gain_intervals(self, node, FR, rR, Fs, gl, gu):
        """Step 2 of :meth:`bound_node`: the interval bounds (gl, gu) of the gains over the
        row box (tightened by projection on the ellipsoids); records the minimisers' ranges
        in ``node.grange``."""
        eng = self.eng
        K = eng.K
        off = eng.pr.offset
        lo_v = node.rlo + off
        hi_v = node.rhi + off
        l_new, u_new, grange = eng.cl.gain_bounds(np.where(np.isfinite(lo_v), lo_v, -50.0),
                                                np.where(np.isfinite(hi_v), hi_v, 50.0))
        fin_rows = np.isfinite(node.rlo) & np.isfinite(node.rhi)
        okc = np.bincount(eng.codes, weights=(~fin_rows).astype(float), minlength=K) == 0
        u_new = np.where(okc, u_new, np.inf)
        l_new = np.where(okc, l_new, 0.0)
        gl = np.maximum(gl, l_new)
        gu = np.minimum(gu, u_new)
        gmn = np.where(okc, grange[0], -np.inf)
        gmx = np.where(okc, grange[1], np.inf)
        if node.grange is not None:
            gmn = np.maximum(gmn, node.grange[0])
            gmx = np.minimum(gmx, node.grange[1])
        node.grange = (gmn, gmx)
        grange = node.grange
        for Fe, re in ((FR, None if eng.all_hard else rR), Fs or (None, None)):
            if Fe is None or re is None:
                continue
            pb = self.proj_bounds(node, Fe, re, grange, okc)
            if pb is not None:
                gl = np.maximum(gl, pb[0])
                gu = np.minimum(gu, pb[1])
        return gl, gu

    def _exchange_fit(self, node, FR, gl, gu, free, m):
        """Step 4 of :meth:`bound_node`: S0 (the m free clusters of largest estimated gain),
        T0 the other free ones, the fit F_S0 on IN + S0 (offered as incumbent) and the pairs
        and exchange sum Gamma of the bound trim >= F_S0 - Gamma: (FS, S0, T0, pair, Gam)."""
        eng = self.eng
        est = self.estimates()
        cand = np.flatnonzero(free)
        order = cand[np.argsort(-est[cand], kind="stable")]
        S0 = np.zeros(eng.K, dtype=bool)
        S0[order[:m]] = True
        T0 = free & ~S0
        FS = _Fit(eng, node.IN | S0, (FR.theta, FR.gamma), eng.deadline)
        self.offer(FS)
        uT = np.sort(gu[T0])[::-1]
        lS = np.sort(gl[S0])
        rr = min(uT.size, lS.size)
        pair = np.maximum(uT[:rr] - lS[:rr], 0.0)
        Gam = float(np.sum(pair))
        return FS, S0, T0, pair, Gam

    def _exchange_region(self, node, FR, rR, FS, Gam, S0, T0, free, m, it, Fs, ex_sweeps):
        """The node's box and row ranges cut to the exchange fit's region (after step 4 of
        :meth:`bound_node`): (closed, Fs, ex_sweeps), closed when the region is empty."""
        eng = self.eng
        if eng.all_hard:
            if np.any(node.lo > node.hi):
                return True, Fs, ex_sweeps
            self.box_rows(node)
        else:
            rS = FS.radius(self.Ut + Gam, node, eng)
            if rS is None:
                return True, Fs, ex_sweeps
            Fs = (FS, rS)
            self.ranges(node, FS, rS)
            if eng.h == 1 and np.isfinite(rS) and np.isfinite(rR) and ex_sweeps < 2:
                ex_sweeps += 1
                self.sweep(node, FR, rR, free, m, it, ex=(FS, rS, S0, T0))
            if eng.h and np.any(node.lo > node.hi):
                return True, Fs, ex_sweeps
        return False, Fs, ex_sweeps

    def _passes_out(self, node, best, gl, gu):
        """:meth:`bound_node`'s result when the passes ran out while classification was still
        moving."""
        eng = self.eng
        free = ~(node.IN | node.OUT)
        m = eng.k - int(node.IN.sum())
        if m < 0:
            return "pruned", np.inf, None
        if m == 0 or m >= int(free.sum()):  # every free cluster's side is forced: a leaf
            IN = node.IN | free if m > 0 else node.IN.copy()
            Fl = _Fit(eng, IN, node.start, eng.deadline)
            self.offer(Fl)
            return "leaf", max(best, Fl.lb), None
        return "branch", best, (free, gl, gu)

    def branch(self, node, info):
        eng = self.eng
        amb, gl, gu = info
        children = []
        parent_grange = node.grange
        spatial = False
        if eng.all_hard:
            wid = node.hi - node.lo
            spatial = bool(np.max(wid) > 1e-7 * (1.0 + np.max(np.abs(node.lo) + np.abs(node.hi))))
        elif eng.h and getattr(self, "box_part", None) is not None:
            rows = amb[eng.codes]
            bp, ep, _ = self.box_part
            if rows.any() and np.mean(bp[rows]) > SPATIAL * np.mean(ep[rows]):
                spatial = True
        if spatial:
            jj = int(np.argmax(node.hi - node.lo))
            midp = 0.5 * (node.lo[jj] + node.hi[jj])
            for side in (0, 1):
                lo, hi = node.lo.copy(), node.hi.copy()
                if side == 0:
                    hi[jj] = midp
                else:
                    lo[jj] = midp
                children.append(_Node(node.IN.copy(), node.OUT.copy(), lo, hi, node.bound,
                                      node.rlo.copy(), node.rhi.copy(), node.start,
                                      gl.copy(), gu.copy()))
            for ch in children:
                ch.grange = parent_grange
            return children
        free = ~(node.IN | node.OUT)
        cand = np.flatnonzero(amb & free)
        if cand.size == 0:
            cand = np.flatnonzero(free)
        width = np.where(np.isfinite(gu[cand]), gu[cand] - gl[cand], np.inf)
        j = int(cand[np.argmax(width)])
        for side in (True, False):
            IN, OUT = node.IN.copy(), node.OUT.copy()
            (IN if side else OUT)[j] = True
            children.append(_Node(IN, OUT, node.lo.copy(), node.hi.copy(), node.bound,
                                  node.rlo.copy(), node.rhi.copy(), node.start,
                                  gl.copy(), gu.copy()))
        for ch in children:
            ch.grange = parent_grange
        return children


def solve_engine(problem: GlmmProblem, time_limit=None, mip_gap=1e-4, warm=None,
                 verbose=False) -> Solution:
    """Certified solve of the random-intercept GLMM (see the module docstring).

    Returns a Solution with ``best_bound`` a proven lower bound of the optimum, status from
    :func:`certified_status` and ``z`` the selected indicators (bool over w)."""
    from mixmio.solvers.bnb.cd import single_thread

    with single_thread():
        return _solve(problem, time_limit, mip_gap, warm, verbose)


def _solve(problem, time_limit, mip_gap, warm, verbose) -> Solution:
    from mixmio.solvers.glmer.heuristic import heuristic

    t0 = time.perf_counter()
    deadline = t0 + (np.inf if time_limit is None else float(time_limit))
    if not applies(problem):
        raise ValueError("solve_engine needs a single (1 | g) term with one cap and only "
                         "ForceInclude / Exclude rows (see applies)")
    eng = _Engine(problem, deadline)
    inc = heuristic(problem, warm=warm, deadline=t0 + (np.inf if time_limit is None
                                                     else 0.3 * float(time_limit)))
    search = _Search(eng, float(inc.objective), np.asarray(inc.w, dtype=float).copy(), mip_gap)
    n = eng.n
    IN0, OUT0 = eng.fin.copy(), eng.fout.copy()
    root = _Node(IN0, OUT0, np.full(eng.h, -np.inf), np.full(eng.h, np.inf), -np.inf,
                 np.full(n, -np.inf), np.full(n, np.inf), None)
    # the root is always bounded: the relaxation (every non-excluded cluster free)
    FR0 = _Fit(eng, ~OUT0 if eng.k > 0 else IN0.copy(), None, np.inf)
    root_floor = max(FR0.lb, 0.0)     # every l_i >= 0 and the ridge term >= 0: F >= 0
    root.start = (FR0.theta, FR0.gamma)
    if eng.h:
        # the root box: the relaxation ellipsoid's shadow on the boxed coordinates
        r0 = FR0.radius(search.Ut)
        if r0 is None:
            r0 = 0.0
        sh = r0 * np.sqrt(np.maximum(np.diag(FR0.Sinv)[: eng.h], 0.0))
        root.lo = FR0.theta[: eng.h] - sh * (1 + 1e-9) - 1e-12
        root.hi = FR0.theta[: eng.h] + sh * (1 + 1e-9) + 1e-12
    counter = itertools.count()
    heap = [(-np.inf, next(counter), root)]
    leaf_floor = np.inf
    timed_out = False
    exact_fit = False
    while heap:
        if search.U <= 1e-9:
            # an exact fit: only the bound F >= 0 can certify it; search no further
            exact_fit = True
            break
        if time.perf_counter() > deadline:
            timed_out = True
            break
        b, _, node = heapq.heappop(heap)
        if b >= search.Ut:
            continue
        eng.nodes += 1
        status, bnd, info = search.bound_node(node)
        if status in ("closed", "pruned"):
            continue
        if status == "leaf":
            if bnd < search.Ut:
                leaf_floor = min(leaf_floor, bnd)
            continue
        if status == "open":
            heapq.heappush(heap, (max(b, bnd), next(counter), node))
            timed_out = True
            break
        node.bound = max(b, bnd)
        for ch in search.branch(node, info):
            heapq.heappush(heap, (node.bound, next(counter), ch))
    open_min = 0.0 if exact_fit else min((e[0] for e in heap), default=np.inf)
    bound = min(search.Ut, open_min, leaf_floor)
    if eng.nodes == 0 or not np.isfinite(bound):
        bound = max(root_floor, bound) if np.isfinite(bound) else root_floor
    bound = max(bound, root_floor)
    w = search.w_inc
    obj = problem.objective(w)
    bound = min(bound, obj)
    gap = relative_gap(obj, bound, gap_scale(problem))
    status, msg = certified_status(gap, mip_gap, timed_out, SOLVER_NAME)
    z = np.zeros(problem.p + problem.m, dtype=bool)
    z[problem.p:] = w[problem.p:] != 0
    return Solution(w=w, objective=obj, best_bound=bound, status=status, solver=SOLVER_NAME,
                    solve_time=time.perf_counter() - t0, nodes=eng.nodes, message=msg,
                    z=z, timed_out=timed_out, gap_scale=gap_scale(problem))
