"""Branch and bound for the random-intercept engine (see benchmarks/ENGINE.md for the proofs).

Reduced problem (``_engine_stats``):  f* = min_b F(b),

    F(b) = W(b) + 1/2 * (sum of the K - k smallest phi_j(b)),   phi_j(b) = w_j (a_j - d_j'b)^2.

A node is (state, box): ``state[j]`` in {FREE, IN, OUT} restricts the selections (IN forced
selected, OUT forced unselected, FREE with m = k - #IN slots left), and ``box`` restricts
t = V'b (V: the "hard" directions of b, along which W is nearly flat) to [lo, hi].  The node
function is

    F_N(b) = Q(b) + 1/2 * trim_{|F| - m}(phi_F(b)),   Q = W + 1/2 sum_OUT phi_j,

minimised over the box.  Bounding (:func:`evaluate`) restricts b to the region where
F_N(b) <= Ut (Ut: the pruning target, incumbent minus the allowed gap): an ellipsoid
E = {Q(b) <= Ut - L} intersected with the box, with L = 1/2 trim(l_F) the trimmed sum of
lower bounds of phi over that region.  Interval bounds [l_j, u_j] of phi_j over the region
classify free clusters as surely selected / surely unselected (moved into IN / OUT, where
their exact phi enters Q), which shrinks E; iterate to a fixed point.

With one hard direction (h = 1, the intercept) each node also *sweeps* its box
(:meth:`BnB._sweep`): the same bounds computed on 16 slices of the box at once, with every
interval restricted to the slice, so slices far from the optimum are discarded together and
the survivors become the children, each carrying its slice's proven interval bounds
(``Node.bounds``), instead of one bisection level per node.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.linalg as sla
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dtrtri as _trtri

from mixmio.solvers.bnb.bestfirst import BestFirst, Node
from mixmio.solvers.lmm.stats import InterceptStats, swap_search

FREE, IN, OUT = 0, 1, 2

REL = 1e-12  # relative safety margins against rounding (x the OLS objective)
_SLICES = 16  # slices per sweep of a one-dimensional box (``BnB._sweep``)
_SWEEPS = 3  # sweeps per node
_CHILDREN = 16  # children of a node split along the slices of its sweep
_PEEL = 0.4  # a pass that decides more than this share of the free clusters starts over


class _WithinStats(Protocol):
    """What :func:`hard_directions` reads (InterceptStats and lmm.slopes.SlopeStats)."""

    HW: np.ndarray
    XtX: np.ndarray

    @property
    def p(self) -> int: ...


def hard_directions(st: _WithinStats, thresh: float = 0.1, hmax: int = 6) -> np.ndarray:
    """Directions of b along which the within-cluster quadratic W is weak relative to X'X
    (generalised eigenvalues of (HW, X'X) below ``thresh``): cluster-level covariates, the
    intercept.  Columns of the returned (p, h) matrix."""
    p = st.p
    if p == 0:
        return np.zeros((0, 0))
    lam, V = sla.eigh(st.HW, st.XtX)
    h = int(min(hmax, np.sum(lam < thresh)))
    return V[:, :h]


def _box_qp(Ginv: np.ndarray, tc: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """min over t in [lo, hi] of 1/2 (t - tc)' Ginv (t - tc): (valid lower bound, point t).
    Exact for h = 1; for h > 1 projected coordinate descent with a Frank-Wolfe lower bound."""
    h = tc.size
    if h == 0:
        return 0.0, tc
    if h == 1:  # (scalars: np.clip costs more than the arithmetic)
        t0 = min(max(float(tc[0]), float(lo[0])), float(hi[0]))
        dt = t0 - float(tc[0])
        return 0.5 * float(Ginv[0, 0]) * dt * dt, np.array([t0])
    t = np.clip(tc, lo, hi)
    for _ in range(200):
        t_old = t.copy()
        for i in range(h):
            if Ginv[i, i] <= 0.0:  # a direction the pseudo-inverse leaves flat
                continue
            # minimise over t_i with the others fixed
            r = Ginv[i] @ (t - tc) - Ginv[i, i] * (t[i] - tc[i])
            ti = tc[i] - r / Ginv[i, i]
            t[i] = min(max(ti, lo[i]), hi[i])
        if np.max(np.abs(t - t_old)) <= 1e-13 * (1 + np.max(np.abs(t))):
            break
    dt = t - tc
    val = 0.5 * float(dt @ Ginv @ dt)
    grad = Ginv @ dt
    s = np.where(grad > 0, lo, hi)
    fw = float(grad @ (s - t))  # <= 0
    return max(0.0, val + fw), t


#: use :meth:`BnB._envelope_bound` on stalled nodes (a switch for measurements and tests)
ENVELOPE = True


def _envelope(s, a, w, tau, lo, hi):
    """(value, first, second derivative) at s of a convex minorant g of
    h(s) = min(w (s - a)^2, tau) on [lo, hi]: the parabola between its tangents through the
    interval's ends where those lie outside the parabola's part below tau (|s - a| > rho,
    rho = sqrt(tau / w)), the tangent lines beyond.  The tangent from (lo, tau) touches at
    d = L + sqrt(L^2 - rho^2) (L = lo - a < -rho), which has |d| <= rho, so g = h on the
    parabola part and g <= tau on the lines: g <= h on [lo, hi].  An infinite end gives the
    horizontal tangent at the vertex (g = 0 on that side).  Vectorised over clusters."""
    rho = np.sqrt(np.maximum(tau, 0.0) / np.maximum(w, 1e-300))
    with np.errstate(invalid="ignore"):
        L = lo - a
        U = hi - a
        dl = np.where(L < -rho, L + np.sqrt(np.maximum(L * L - rho * rho, 0.0)), L)
        dr = np.where(U > rho, U - np.sqrt(np.maximum(U * U - rho * rho, 0.0)), U)
    dl = np.where(np.isfinite(L), np.minimum(dl, 0.0), 0.0)
    dr = np.where(np.isfinite(U), np.maximum(dr, 0.0), 0.0)
    d = s - a
    left, right = d < dl, d > dr
    dt = np.where(left, dl, np.where(right, dr, d))  # tangent point (or s itself)
    val = w * dt * dt + 2.0 * w * dt * (d - dt)
    return val, 2.0 * w * dt, np.where(left | right, 0.0, 2.0 * w)


def sum_smallest(v: np.ndarray, r: int) -> float:
    if r <= 0:
        return 0.0
    if r >= v.size:
        return float(v.sum())
    return float(np.partition(v, r - 1)[:r].sum())


class Ell:
    """Q(b) = 1/2 b'Hb - g'b + kappa = Qmin + 1/2 (b - c)'H(b - c) and its sublevel sets
    {Q <= Qmin + rho}, together with the hard directions t = V'b."""

    def __init__(self, H, g, kappa, V):
        # LAPACK directly (potrf + trtri): the numpy wrappers cost more than a 10 x 10 factor
        Lc, fail = _potrf(H, lower=1, clean=1)
        if fail:  # never expected: H >= HW > 0
            H = H + 1e-12 * np.trace(H) / max(1, H.shape[0]) * np.eye(H.shape[0])
            Lc = np.linalg.cholesky(H)
        Linv, fail = _trtri(Lc, lower=1) if Lc.size else (Lc, 0)
        if fail:  # pragma: no cover - a singular factor of a positive definite matrix
            Linv = np.linalg.inv(Lc)
        self.Lc = Lc
        self.Linv = Linv  # lower triangular; H^{-1} = Linv' Linv
        zg = Linv @ g
        self.c = Linv.T @ zg
        self.Qmin = kappa - 0.5 * float(zg @ zg)  # g'H^{-1}g = |L^{-1} g|^2
        self.V = V
        self.h = V.shape[1]
        if self.h:
            self.A = Linv @ V
            self.G = self.A.T @ self.A  # V'H^{-1}V
            if self.h == 1:  # the pseudo-inverse of a 1 x 1 matrix
                g00 = float(self.G[0, 0])
                self.Ginv = np.array([[1.0 / g00 if g00 > 0 else 0.0]])
            else:
                # pinv, not inv: with nearly collinear X (a covariate ~1e6 + small variation)
                # G can be numerically singular; the pseudo-inverse's quadratic is <= the true
                # one (which is infinite off range(G)), so the box bound stays valid
                self.Ginv = np.linalg.pinv(self.G, hermitian=True)
            self.tc = V.T @ self.c
            self.Gdiag = self.G.diagonal().copy()

    def shadow(self, rho, lo, hi):
        """Node box intersected with the projection of the ellipsoid on t."""
        if not self.h:
            return lo, hi
        half = np.sqrt(2.0 * rho * self.Gdiag) * (1 + 1e-9)
        return np.maximum(lo, self.tc - half), np.minimum(hi, self.tc + half)

    def boxmin(self, lo, hi):
        """(valid lower bound of min Q over {V'b in box}, a minimiser b)."""
        if not self.h:
            return self.Qmin, self.c
        dq, tb = _box_qp(self.Ginv, self.tc, lo, hi)
        b = self.c + self.Linv.T @ (self.A @ (self.Ginv @ (tb - self.tc)))
        return self.Qmin + dq, b

    def ranges(self, rho, lo, hi, Df):
        """Outer bounds [s_lo, s_hi] of s = d'b over ellipsoid x box for the rows d of Df, and
        the widths due to the box (wb) and to the rest of the ellipsoid (we)."""
        rad = np.sqrt(2.0 * max(rho, 0.0))
        E = self.Linv @ Df.T  # (p, nf): L^{-1} d_j
        e2 = np.einsum("ij,ij->j", E, E)
        sc = Df @ self.c
        r_ell = rad * np.sqrt(e2)
        s_lo, s_hi = sc - r_ell, sc + r_ell
        if not self.h:
            return s_lo, s_hi, np.zeros(sc.size), 2 * r_ell
        if self.h == 1:  # the same with scalars (fewer numpy calls per pass)
            alpha = (float(self.Ginv[0, 0]) * self.A[:, 0]) @ E
            eperp2 = np.maximum(e2 - alpha * alpha * float(self.G[0, 0]), 0.0)
            a_lo = alpha * float(lo[0] - self.tc[0])
            a_hi = alpha * float(hi[0] - self.tc[0])
            amin = np.minimum(a_lo, a_hi)
            amax = np.maximum(a_lo, a_hi)
        else:
            alpha = self.Ginv @ (self.A.T @ E)
            eperp2 = np.maximum(e2 - np.einsum("ij,ij->j", alpha, self.G @ alpha), 0.0)
            tlo = (lo - self.tc)[:, None]
            thi = (hi - self.tc)[:, None]
            amin = np.minimum(alpha * tlo, alpha * thi).sum(0)
            amax = np.maximum(alpha * tlo, alpha * thi).sum(0)
        rperp = rad * np.sqrt(eperp2)
        s_lo = np.maximum(s_lo, sc + amin - rperp)
        s_hi = np.minimum(s_hi, sc + amax + rperp)
        return s_lo, s_hi, amax - amin, 2 * rperp


def _trim_classify(lo_phi, u, nf, m):
    """The trimmed sum L = 1/2 sum of the nf - m smallest lower bounds l, and the free
    clusters surely unselected (u < the m-th largest l) and surely selected (l > the (m+1)-th
    largest u) on the region: (L, sure_out, sure_in)."""
    n_out = nf - m  # free clusters left unselected
    if 0 < n_out < nf:  # one partition for the trimmed sum and theta
        part = np.partition(lo_phi, (n_out - 1, n_out))
        L_amb = 0.5 * float(part[:n_out].sum())
        theta = part[n_out]  # m-th largest lower bound
    else:
        L_amb = 0.5 * sum_smallest(lo_phi, n_out)
    if m <= 0:
        sure_out = np.ones(nf, dtype=bool)
        sure_in = np.zeros(nf, dtype=bool)
    elif m >= nf:
        sure_out = np.zeros(nf, dtype=bool)
        sure_in = np.ones(nf, dtype=bool)
    else:
        psi = np.partition(u, nf - m - 1)[nf - m - 1]  # (m+1)-th largest upper bound
        sure_out = u < theta * (1 - 1e-9)
        sure_in = lo_phi > psi * (1 + 1e-9)
        # impossible with valid bounds:
        if np.count_nonzero(sure_in) > m or np.count_nonzero(sure_out) > nf - m:
            sure_in[:] = False
            sure_out[:] = False
    return L_amb, sure_out, sure_in


def _classified(state, fr, sure_out, sure_in, n_cls, m, nf, L_amb, Qbox1):
    """Move the classified free clusters into OUT / IN.  Returns (again, fr, m, nf, L, Qbox1):
    ``again`` when they are many (more than _PEEL of the free ones, or every slot decided) and
    the pass starts over (L the new trimmed sum); else the free-cluster arrays ``fr`` of
    :meth:`BnB._phi_intervals` restricted to the rest, with L and Qbox1 of :func:`_peel`."""
    free, lo_phi = fr[0], fr[4]
    state[free[sure_out]] = OUT
    state[free[sure_in]] = IN
    keep = ~(sure_out | sure_in)
    m2 = m - int(np.count_nonzero(sure_in))
    nk = int(np.count_nonzero(keep))
    if n_cls > _PEEL * nf or m2 <= 0 or m2 >= nk:
        L_amb = 0.5 * sum_smallest(lo_phi[keep], nk - m2)
        return True, fr, m, nf, L_amb, Qbox1
    # only a few clusters decided: rather than a pass that rebuilds the ellipsoid for them
    # alone, take the exchange bound now on the remaining free clusters
    L_amb, Qbox1 = _peel(lo_phi, sure_out, L_amb, Qbox1)
    return False, tuple(x[keep] for x in fr), m2, nk, L_amb, Qbox1


def _peel(lo_phi, sure_out, L_amb, Qbox1):
    """(L, Qbox1) after a few clusters were classified, without a new pass.

    Sure-out clusters have l <= u < theta, so they are among the n_out smallest l; sure-in ones
    have l > psi >= the (m+1)-th largest l, so they are not: the n_out - #out smallest l of the
    rest are the n_out smallest less the sure-out.  Q_{OUT} of this pass lacks the newly
    excluded clusters' phi >= l, so Qbox1 + 1/2 sum of their l stays a lower bound of the new Q
    over the box."""
    L_amb = L_amb - 0.5 * float(lo_phi[sure_out].sum())
    Qbox1 = Qbox1 + 0.5 * float(lo_phi[sure_out].sum())
    return L_amb, Qbox1


def _exchange(wf, af, Df, bref, n_out, u, lo_phi):
    """The exchange bound's pieces: phi at bref, T0 (the n_out smallest phi there, as
    positions among the free clusters), the pairs u - l and Gamma = the sum of their positive
    parts, so trim(phi_F) >= sum_{T0} phi - Gamma on the region: (phi_ref, T0, pairs, Gam)."""
    phi_ref = wf * (af - Df @ bref) ** 2
    order = np.argpartition(phi_ref, n_out - 1)  # T0: the n_out smallest (a set)
    T0 = order[:n_out]
    R0 = order[n_out:]
    ud = np.sort(u[T0])[::-1]
    la = np.sort(lo_phi[R0])
    r = min(ud.size, la.size)
    pairs = ud[:r] - la[:r]
    Gam = float(pairs[pairs > 0].sum())
    return phi_ref, T0, pairs, Gam


def ellipsoid_region(ell1, ell2, rho2, Ut, L_amb, lo, hi, tol):
    """(rho1, lo, hi): the level of the decided clusters' ellipsoid ``ell1`` (Q_OUT's) and the
    node box intersected with the shadows of ``ell1`` and ``ell2`` (at level ``rho2``); rho1
    None when that proves the node pruned.  Shared by the intercept and slopes engines."""
    rho1 = Ut - L_amb - ell1.Qmin + tol + REL * abs(ell1.Qmin)
    if rho1 < 0:
        return None, lo, hi
    lo, hi = ell1.shadow(rho1, lo, hi)
    if ell2 is not None:
        lo, hi = ell2.shadow(rho2, lo, hi)
    if np.any(lo > hi):
        return None, lo, hi
    return rho1, lo, hi


class BnB:
    def __init__(self, st: InterceptStats, k: int, V: np.ndarray):
        self.st = st
        self.k = k
        self.V = V
        self.h = V.shape[1]
        self.scale = max(0.5 * st.rr, 1e-300)
        self.tol_abs = REL * self.scale

    # ------------------------------------------------------------------ bounding
    def _ell(self, out_mask: np.ndarray) -> Ell:
        H, g, kappa = self.st.quad_out(out_mask)
        return Ell(H, g, kappa, self.V)

    def _quad_add(self, quad, idx: np.ndarray):
        """(H, g, kappa) of ``quad`` plus 1/2 sum_{j in idx} phi_j (the clusters idx leave the
        trimmed sum for Q): an update in O(|idx| p^2) instead of a rebuild over all of OUT."""
        st = self.st
        H, g, kappa = quad
        if not idx.size:
            return quad
        Do = st.D[idx]
        return (H + (Do.T * st.w[idx]) @ Do, g + Do.T @ st.wa[idx],
                kappa + 0.5 * float(st.wa2[idx].sum()))

    def evaluate(self, node: Node, Ut: float, max_it: int = 30):
        """Bound one node against the target Ut.

        Returns (kind, lb, state, eff_lo, eff_hi, info).  kind is "pruned" (every point of the
        node has F_N >= Ut: lb = Ut is a valid bound), "leaf" (lb is the exact node minimum over
        the box) or "open" (lb a valid bound < Ut).  ``state`` carries the clusters classified
        surely in / out on the node's region (valid for all its descendants).
        """
        k = self.k
        state, lo, hi, lK, uK, L_amb = self._start(node)
        tol = self.tol_abs
        info: dict = {}
        # Q_OUT's ellipsoid, #OUT, (H, g, kappa) and the OUT mask it holds; the exchange
        # ellipsoid from the previous pass (a valid region constraint)
        ell1, n_out1, quad1, out_q = None, -1, None, None
        ell2, rho2, out2_prev = None, np.inf, None
        lb_prev, lb, sweeps, env_done = -np.inf, -np.inf, 0, not ENVELOPE
        for _it in range(max_it):
            ell1, n_out1, quad1, out_q = self._out_ellipsoid(state, ell1, n_out1, quad1, out_q)
            rho1, lo, hi = ellipsoid_region(ell1, ell2, rho2, Ut, L_amb, lo, hi, self.tol_abs)
            if rho1 is None:
                return "pruned", Ut, state, lo, hi, info
            Qbox1, b1 = ell1.boxmin(lo, hi)
            free = (state == FREE).nonzero()[0]
            m = k - int(np.count_nonzero(state == IN))
            nf = free.size
            if nf == 0:
                info.update(bhat=b1)
                return "leaf", Qbox1 - tol, state, lo, hi, info
            if Qbox1 + L_amb - tol >= Ut:
                return "pruned", Ut, state, lo, hi, info
            fr = self._phi_intervals(ell1, rho1, ell2, rho2, lo, hi, free, lK, uK)
            if fr is None:  # the interval bounds prove the region empty
                return "pruned", Ut, node.state, lo, hi, {}
            L_amb, sure_out, sure_in = _trim_classify(fr[4], fr[5], nf, m)
            n_cls = int(np.count_nonzero(sure_out)) + int(np.count_nonzero(sure_in))
            if n_cls:
                again, fr, m, nf, L_amb, Qbox1 = _classified(state, fr, sure_out, sure_in, n_cls,
                                                             m, nf, L_amb, Qbox1)
                if again:  # many clusters decided: a new pass
                    continue
            free, n_out = fr[0], nf - m
            ex = self._exchange_bound(state, fr, m, n_out, b1, Qbox1, L_amb, quad1, out_q, ell2,
                                      out2_prev, Ut, lo, hi, info)
            if ex is None:
                return "pruned", Ut, state, lo, hi, info
            lb, Gam, T0, phi_ref, bref, ell2, rho2, out2_prev = ex
            if lb >= Ut:
                return "pruned", Ut, state, lo, hi, info
            if Gam <= tol:
                # T0 is the unselected set everywhere on the region: node solved
                return "leaf", lb, state, lo, hi, info
            if n_cls:  # classification is still moving: another pass
                lb_prev = lb
                continue
            if lb - lb_prev <= 0.02 * (Ut - lb) and not env_done:
                # stalled: once per node, the envelope bound couples the clusters through b
                env_done = True
                lb = max(lb, self._stall_envelope(state, fr, m, nf, phi_ref, bref, quad1,
                                                  out_q) - tol)
                if lb >= Ut:
                    return "pruned", Ut, state, lo, hi, info
            if lb - lb_prev <= 0.02 * (Ut - lb):
                if self.h != 1 or sweeps >= _SWEEPS or not np.all(np.isfinite(hi - lo)):
                    break
                # one hard direction: bound slices of the box at once, keep their hull
                sweeps += 1
                sw = self._sweep_step(ell1, rho1, ell2, rho2, lo, hi, free, n_out, T0, lK, uK,
                                      Ut, lb, info)
                if sw is None:
                    return "pruned", Ut, state, lo, hi, info
                lo, hi, lb, wide = sw
                if lb >= Ut:
                    return "pruned", Ut, state, lo, hi, info
                if wide:  # the hull kept more than half the box
                    break
            lb_prev = lb
        return "open", lb, state, lo, hi, info

    def _start(self, node: Node):
        """(state, lo, hi, lK, uK, L_amb) at the start of :meth:`evaluate`: copies of the node's
        state and box, and the interval bounds of phi it inherits from its parent."""
        K = self.st.K
        state = node.state.copy()
        lo, hi = node.lo.copy(), node.hi.copy()
        lK = np.zeros(K)
        uK = np.full(K, np.inf)
        L_amb = 0.0
        if node.bounds is not None:
            # interval bounds of phi proven by the parent on a region that holds this node's
            idx, l0, u0 = node.bounds
            lK[idx] = l0
            uK[idx] = u0
            fr = state == FREE
            L_amb = 0.5 * sum_smallest(lK[fr], int(np.count_nonzero(fr))
                                       - (self.k - int(np.count_nonzero(state == IN))))
        return state, lo, hi, lK, uK, L_amb

    def _out_ellipsoid(self, state, ell1, n_out1, quad1, out_q):
        """The ellipsoid of Q_OUT for this pass's OUT set, updated only when OUT grew (it only
        grows within a node): (ell1, #OUT, (H, g, kappa) of Q_OUT, the OUT mask it holds)."""
        out1 = state == OUT
        if ell1 is None or int(np.count_nonzero(out1)) != n_out1:  # OUT only grows
            if quad1 is None:
                quad1 = self.st.quad_out(out1)
            else:  # OUT only grows within a node
                quad1 = self._quad_add(quad1, (out1 & ~out_q).nonzero()[0])
            out_q = out1
            ell1, n_out1 = Ell(*quad1, self.V), int(np.count_nonzero(out1))
        return ell1, n_out1, quad1, out_q

    def _phi_intervals(self, ell1, rho1, ell2, rho2, lo, hi, free, lK, uK):
        """Interval bounds [l_j, u_j] of phi_j over the region for the free clusters j (stored
        in lK, uK): (free, D_F, a_F, w_F, l, u, wb, we, s_lo, s_hi), or None when they prove
        the region empty."""
        st = self.st
        Df = st.D[free]
        af = st.a[free]
        s_lo, s_hi, wb, we = ell1.ranges(rho1, lo, hi, Df)
        if ell2 is not None:
            s_lo2, s_hi2, wb2, we2 = ell2.ranges(rho2, lo, hi, Df)
            s_lo = np.maximum(s_lo, s_lo2)
            s_hi = np.minimum(s_hi, s_hi2)
            if (wb2 + we2).sum() < (wb + we).sum():
                wb, we = wb2, we2
        pad = (np.abs(s_lo) + np.abs(s_hi) + np.abs(af)) * 1e-9 + 1e-300
        s_lo -= pad
        s_hi += pad
        if (s_lo > s_hi).any():  # the outer bounds prove the region empty
            return None
        wf = st.w[free]
        a_lo = af - s_lo  # > 0 where a is above the interval of s
        a_hi = s_hi - af
        dist = np.maximum(np.maximum(-a_lo, -a_hi), 0.0)
        lo_phi = np.maximum(dist * dist * (wf * (1 - 1e-9)), lK[free])
        far = np.maximum(a_lo, a_hi)  # the interval's farthest end from a
        u = np.minimum(far * far * (wf * (1 + 1e-9)), uK[free])
        if (lo_phi > u).any():  # inconsistent bounds: the region is empty
            return None
        lK[free] = lo_phi
        uK[free] = u
        return free, Df, af, wf, lo_phi, u, wb, we, s_lo, s_hi

    def _exchange_bound(self, state, fr, m, n_out, b1, Qbox1, L_amb, quad1, out_q, ell2,
                        out2_prev, Ut, lo, hi, info):
        """The node bound of one pass with the exchange bound trim(phi_F) >= sum_{T0} phi -
        Gamma (recorded in ``info``): (lb, Gam, T0, phi_ref, bref, ell2, rho2, out2_prev), or
        None when the exchange ellipsoid is empty (the node is pruned)."""
        tol = self.tol_abs
        free, Df, af, wf, lo_phi, u, wb, we = fr[:8]
        bref = info.get("b2", b1)
        phi_ref, T0, pairs, Gam = _exchange(wf, af, Df, bref, n_out, u, lo_phi)
        out2 = state == OUT
        out2[free[T0]] = True
        if out2_prev is None or not np.array_equal(out2, out2_prev):
            # Q_{OUT ∪ T0}: this pass's OUT (held by quad1 or to be added) plus T0
            ell2, out2_prev = Ell(*self._quad_add(quad1, (out2 & ~out_q).nonzero()[0]),
                                  self.V), out2
        rho2 = Ut + 0.5 * Gam - ell2.Qmin + tol + REL * abs(ell2.Qmin)
        if rho2 < 0:
            return None
        Qbox2, b2 = ell2.boxmin(lo, hi)
        lb = max(Qbox1 + L_amb, Qbox2 - 0.5 * Gam) - tol
        info.update(l=lo_phi, u=u, free=free, wb=wb, we=we, b2=b2, bhat=b2, Gam=Gam,
                    T0=free[T0], pairs=pairs, m=m)
        return lb, Gam, T0, phi_ref, bref, ell2, rho2, out2_prev

    def _stall_envelope(self, state, fr, m, nf, phi_ref, bref, quad1, out_q):
        """:meth:`_envelope_bound` at tau = the m-th largest phi at bref (before the margin)."""
        free, s_lo, s_hi = fr[0], fr[8], fr[9]
        tau = float(np.partition(phi_ref, nf - m)[nf - m])  # m-th largest phi at bref
        quad = self._quad_add(quad1, ((state == OUT) & ~out_q).nonzero()[0])
        return self._envelope_bound(state, free, m, s_lo, s_hi, tau, bref, quad)

    def _sweep_step(self, ell1, rho1, ell2, rho2, lo, hi, free, n_out, T0, lK, uK, Ut, lb,
                    info):
        """One sweep of the box (:meth:`_sweep`), kept as the hull of its slices: (lo, hi, lb,
        whether the hull is wider than half the box), or None when no slice survives."""
        width = float(hi[0] - lo[0])
        found = self._sweep(ell1, rho1, ell2, rho2, lo, hi, free, n_out, T0, lK, uK, Ut)
        if found is None:
            return None
        slo, shi, sb, sl, su = found
        lo, hi = slo[0].copy(), shi[-1].copy()
        lb = max(lb, float(sb.min()))
        info.update(slices=(slo, shi, sb, free, sl, su))
        return lo, hi, lb, float(hi[0] - lo[0]) > 0.5 * width

    def _envelope_bound(self, state, free, m, s_lo, s_hi, tau, b0, quad=None,
                        iters: int = 30) -> float:
        """A lower bound of F_N over the node's region that couples the free clusters through
        their common b (the interval bounds take each cluster at its own worst b).

        For any tau >= 0 the trimmed sum is at least sum_F min(phi_j, tau) - m tau (the m
        largest phi are at most m tau plus their excess over tau).  On the region, s_j = d_j'b
        lies in [s_lo_j, s_hi_j], where min(w (a - s)^2, tau) is bounded below by the convex
        function g_j of :func:`_envelope` (the parabola between the tangents from the interval's
        ends).  So F_N >= G(b) = Q_OUT(b) + 1/2 sum_F g_j(d_j'b) - m tau / 2 on the region, and
        min over all b of G (convex, strongly convex through W) is a lower bound, certified at
        the Newton iterate b by G(b) - 1/2 grad' H_Q^{-1} grad (H_Q <= the Hessian of G).
        ``quad``: Q_OUT's (H, g, kappa) for ``state``'s OUT set, if the caller holds it."""
        st = self.st
        # (H, g, kappa) of Q_OUT: the caller's running quadratic when it has one
        H0, g0, k0 = st.quad_out(state == OUT) if quad is None else quad
        D, a, w = st.D[free], st.a[free], st.w[free]
        try:
            L0 = np.linalg.cholesky(H0)
        except np.linalg.LinAlgError:
            return -np.inf

        def G(b):
            v, d1, d2 = _envelope(D @ b, a, w, tau, s_lo, s_hi)
            val = 0.5 * float(b @ H0 @ b) - float(g0 @ b) + k0 + 0.5 * float(v.sum()) \
                - 0.5 * m * tau
            return val, H0 @ b - g0 + 0.5 * (D.T @ d1), d2

        b = np.asarray(b0, dtype=float).copy()
        val, grad, d2 = G(b)
        for _ in range(iters):
            Hs = H0 + 0.5 * (D.T * d2) @ D
            try:
                step = np.linalg.solve(Hs, grad)
            except np.linalg.LinAlgError:
                break
            dec = float(grad @ step)
            if dec <= 1e-13 * max(1.0, abs(val)):
                break
            t = 1.0
            while t > 1e-8:
                val2, grad2, d22 = G(b - t * step)
                if val2 <= val - 1e-4 * t * dec:
                    break
                t *= 0.5
            else:
                break
            b, val, grad, d2 = b - t * step, val2, grad2, d22
        z = sla.solve_triangular(L0, grad, lower=True, check_finite=False)
        bound = val - 0.5 * float(z @ z)
        return bound - 1e-12 * (abs(val) + abs(k0)) - 1e-9 * abs(bound - val)

    def _sweep(self, ell1, rho1, ell2, rho2, lo, hi, free, n_out, T0, lK, uK, Ut):
        """h = 1: split the box [lo, hi] into ``_SLICES`` slices and bound F_N on each, as the
        passes of :meth:`evaluate` bound the whole box, but with every interval and quadratic
        restricted to the slice.  On E = {Qmin + 1/2 (b - c)'H(b - c) <= Qmin + rho}, with
        z = L'(b - c) and tau = V'(b - c), ||z||^2 = tau^2 / G + ||z_perp||^2, so on a slice
        whose nearest point to tc is at distance dmin, ||z_perp||^2 <= 2 rho - dmin^2 / G and
        s_j - d_j'c lies in alpha_j tau +- ||e_perp,j|| sqrt(2 rho - dmin^2 / G).  Both
        ellipsoids hold the node's region; the trimmed lower bounds and the exchange bound
        (same T0) then give each slice's bound.  Returns (lo, hi, bound) of the slices whose
        bound is below Ut (increasing), or None when none is."""
        st = self.st
        M = _SLICES
        edges = np.linspace(lo[0], hi[0], M + 1)
        edges[0], edges[-1] = lo[0], hi[0]
        ta, tb = edges[:-1], edges[1:]
        Df = st.D[free]
        af = st.a[free]
        wf = st.w[free]
        s_lo = np.full((M, free.size), -np.inf)
        s_hi = np.full((M, free.size), np.inf)
        qmins = []
        for ell, rho in ((ell1, rho1), (ell2, rho2)):
            if ell is None:
                qmins.append(None)
                continue
            tc = float(ell.tc[0])
            ginv = float(ell.Ginv[0, 0])
            da, db = ta - tc, tb - tc
            dmin = np.where(da > 0, da, np.where(db < 0, -db, 0.0)) * (1 - 1e-9)
            q = 0.5 * ginv * dmin**2  # min over the slice of Q - Qmin
            qmins.append(ell.Qmin + q)
            r2 = 2.0 * max(rho, 0.0) - 2.0 * q
            ok = r2 >= 0
            rad = np.sqrt(np.maximum(r2, 0.0)) * (1 + 1e-9)
            E = ell.Linv @ Df.T
            e2 = np.einsum("ij,ij->j", E, E)
            sc = Df @ ell.c
            alpha = ginv * (ell.A[:, 0] @ E)
            eperp = np.sqrt(np.maximum(e2 - alpha**2 * float(ell.G[0, 0]), 0.0))
            oa, ob = np.outer(da, alpha), np.outer(db, alpha)
            lo_a = np.minimum(oa, ob)
            hi_a = np.maximum(oa, ob)
            rp = np.outer(rad, eperp)
            lo_s = np.where(ok[:, None], sc + lo_a - rp, np.inf)
            hi_s = np.where(ok[:, None], sc + hi_a + rp, -np.inf)
            s_lo = np.maximum(s_lo, lo_s)
            s_hi = np.minimum(s_hi, hi_s)
        pad = 1e-9 * (np.abs(np.where(np.isfinite(s_lo), s_lo, 0.0))
                      + np.abs(np.where(np.isfinite(s_hi), s_hi, 0.0)) + np.abs(af)) + 1e-300
        s_lo = s_lo - pad
        s_hi = s_hi + pad
        empty = np.any(s_lo > s_hi, axis=1)
        dist = np.maximum(np.maximum(s_lo - af, af - s_hi), 0.0)
        lphi = np.maximum(wf * dist**2 * (1 - 1e-9), lK[free])
        with np.errstate(invalid="ignore"):
            uphi = np.minimum(wf * np.maximum((af - s_lo) ** 2, (af - s_hi) ** 2) * (1 + 1e-9),
                              uK[free])
        empty |= np.any(lphi > uphi, axis=1)
        tol = self.tol_abs
        if 0 < n_out < free.size:
            L = 0.5 * np.partition(lphi, n_out - 1, axis=1)[:, :n_out].sum(1)
        else:
            L = 0.5 * (lphi.sum(1) if n_out >= free.size else np.zeros(M))
        bound = qmins[0] + L
        if qmins[1] is not None and 0 < T0.size < free.size:
            inT0 = np.zeros(free.size, dtype=bool)
            inT0[T0] = True
            ud = -np.sort(-uphi[:, inT0], axis=1)
            la = np.sort(lphi[:, ~inT0], axis=1)
            r = min(ud.shape[1], la.shape[1])
            with np.errstate(invalid="ignore"):
                pairs = ud[:, :r] - la[:, :r]
            Gam = np.where(pairs > 0, pairs, 0.0).sum(1)
            bound = np.maximum(bound, qmins[1] - 0.5 * Gam)
        bound = bound - tol
        keep = ~empty & (bound < Ut)
        if not keep.any():
            return None
        return ta[keep][:, None], tb[keep][:, None], bound[keep], lphi[keep], uphi[keep]

    # ------------------------------------------------------------------ driver
    def run(self, sel0: np.ndarray, f0: float, mip_gap: float, time_limit: float | None,
            t0: float, log: list | None = None):
        st, k = self.st, self.k
        K = st.K
        root_state = np.zeros(K, dtype=np.int8)
        if k <= 0:
            root_state[:] = OUT
        elif k >= K:
            root_state[:] = IN
        root = Node(root_state, np.full(self.h, -np.inf), np.full(self.h, np.inf), 0)
        bf = BestFirst(root, sel0.copy(), f0, mip_gap, time_limit, t0, log)
        seen_supports: set = set()
        for node in bf:
            kind, lb, state, elo, ehi, info = self.evaluate(node, bf.target)
            if "bhat" in info:
                self._try_incumbent(bf, state, info["bhat"], seen_supports)
            if kind in ("pruned", "leaf") or lb >= bf.target:
                bf.close(lb)
                continue
            d = node.depth + 1
            if "free" not in info:  # classification still moving after max_it passes
                bf.push(lb, d, Node(state, elo, ehi, d))
                continue
            self._branch(bf, lb, d, state, elo, ehi, info)
        return bf.best, bf.U, bf.bound(), bf.nodes, bf.timed_out

    def _try_incumbent(self, bf: BestFirst, state, b, seen: set) -> None:
        """Complete the node's selection from its centre b (largest phi among the free
        clusters), polish by swaps, and offer it as incumbent."""
        st, k = self.st, self.k
        sel = state == IN
        free = (state == FREE).nonzero()[0]
        m = k - int(np.count_nonzero(sel))
        if free.size and m > 0:
            phi = st.w[free] * (st.a[free] - st.D[free] @ b) ** 2
            take = free[np.argsort(-phi, kind="stable")[:m]]
            sel = sel.copy()
            sel[take] = True
        key = sel.tobytes()
        if int(sel.sum()) > k or key in seen:
            return
        seen.add(key)
        f, _ = st.f_support(sel)
        if f < bf.U:
            sel2, f2 = swap_search(st, sel, deadline=bf.deadline)
            if f2 < f:
                sel, f = sel2, f2
            bf.offer(f, sel)

    def _classified(self, state, idx, lo_b, up_b):
        """``state`` with the clusters that the interval bounds [lo_b, up_b] of phi over idx
        (valid on the child's region) decide moved to IN / OUT: the classification step of
        :meth:`evaluate` with these bounds alone, applied before the child's first pass so that
        its first ellipsoid already holds them."""
        fr = state[idx] == FREE
        m = self.k - int(np.count_nonzero(state == IN))
        nf = int(fr.sum())
        if not (0 < m < nf):
            return state
        fi, lf, uf = idx[fr], lo_b[fr], up_b[fr]
        theta = np.partition(lf, nf - m)[nf - m]  # m-th largest lower bound
        psi = np.partition(uf, nf - m - 1)[nf - m - 1]  # (m+1)-th largest upper bound
        sure_out = uf < theta * (1 - 1e-9)
        sure_in = lf > psi * (1 + 1e-9)
        if sure_in.sum() > m or sure_out.sum() > nf - m:  # impossible with valid bounds
            return state
        if not (sure_out.any() or sure_in.any()):
            return state
        state = state.copy()
        state[fi[sure_out]] = OUT
        state[fi[sure_in]] = IN
        return state

    def _branch(self, bf: BestFirst, lb, d, state, elo, ehi, info) -> None:
        """Split the node: on a hard coordinate of the box when the box, not the cluster
        choice, causes most of the ambiguity; otherwise on the most ambiguous cluster."""
        free = info["free"]
        lo_phi, u, wb, we = info["l"], info["u"], info["wb"], info["we"]
        amb = state[free] == FREE
        if "T0" in info:
            # clusters that take part in a positive exchange pair
            inT0 = np.isin(free, info["T0"])
            umax = np.max(u[inT0]) if inT0.any() else -np.inf
            lmin = np.min(lo_phi[~inT0]) if (~inT0).any() else np.inf
            act = np.where(inT0, u > lmin, lo_phi < umax)
            if (amb & act).any():
                amb = amb & act
        pb = (free, lo_phi, u)  # proven on this node's region, so on every child's
        if not amb.any():  # everything got decided in the last pass: re-evaluate
            bf.push(lb, d, Node(state, elo, ehi, d, pb))
            return
        fa, la, ua = free[amb], lo_phi[amb], u[amb]
        if self.h:
            width = ehi - elo
            big = np.isfinite(width) & (width > 1e-12 * (1 + np.abs(elo) + np.abs(ehi)))
            if big.any() and wb[amb].sum() > we[amb].sum() and "slices" in info:
                # the surviving slices of the last sweep (h = 1), grouped into at most
                # _CHILDREN children of consecutive slices, each with its slices' least bound
                slo, shi, sb, sfree, sl, su = info["slices"]
                a_all = np.maximum(slo[:, 0], elo[0])
                b_all = np.minimum(shi[:, 0], ehi[0])
                ok = a_all <= b_all
                a_all, b_all, sb, sl, su = a_all[ok], b_all[ok], sb[ok], sl[ok], su[ok]
                if a_all.size:
                    for part in np.array_split(np.arange(a_all.size),
                                               min(_CHILDREN, a_all.size)):
                        bounds = (sfree, sl[part].min(0), su[part].max(0))
                        bf.push(max(lb, float(sb[part].min())), d,
                                Node(self._classified(state, *bounds),
                                     np.array([a_all[part[0]]]),
                                     np.array([b_all[part[-1]]]), d, bounds))
                    return
            if big.any() and wb[amb].sum() > we[amb].sum():
                i = int(np.argmax(np.where(big, width, -1.0)))
                mid = 0.5 * (elo[i] + ehi[i])
                for a_, b_ in ((elo[i], mid), (mid, ehi[i])):
                    lo2, hi2 = elo.copy(), ehi.copy()
                    lo2[i], hi2[i] = a_, b_
                    bf.push(lb, d, Node(state, lo2, hi2, d, pb))
                return
        j = fa[int(np.argmax(ua - la))]
        for v in (IN, OUT):
            s2 = state.copy()
            s2[j] = v
            bf.push(lb, d, Node(s2, elo, ehi, d, pb))
