"""Exact branch and bound for random intercepts whose cluster-level covariates are categorical.

When every fixed-effect column that is constant within clusters (the intercept, a school-type
factor, ...) takes only as many distinct row patterns across clusters as it has columns, those
columns span exactly the indicators of a partition of the clusters into groups g.  Writing the
fixed effects as (beta, t) with t_g the location of group g, the reduced objective of
``_engine_stats`` (see benchmarks/ENGINE.md section 1) becomes

    F(beta, t, S) = W_w(beta) + sum_g [ 1/2 sum_{j in g} e_j (m_j(beta) - t_g)^2
                                       + 1/2 sum_{j in g, j not in S} v_j (m_j(beta) - t_g)^2 ]

with m_j(beta) = (a_j - d_j^s' beta) / n_j the cluster's mean residual, v_j = w_j n_j^2,
e_j = (1/n_j - w_j) n_j^2 (the ridge's share), and W_w the within-cluster quadratic of the
other ("soft") columns.  For a fixed beta the minimum over t and S is a trimmed least-squares
problem in one dimension per group, solved exactly: for fixed t the best S holds the k_g
largest v_j (m_j - t)^2, and that order changes only where two of the functions
sqrt(v_j) |m_j - t| cross, so the candidate S are those of the O(N_g^2) cells between
crossings; a knapsack over groups shares the cap.

The hard directions of the generic branch and bound (boxes on t) disappear: the search is a
best-first bisection of a box in beta only.  On a box B, m_j ranges over an interval, and

    LB(B) = min_{beta in B} W_w(beta) + G_int(B)

is a valid bound, where G_int replaces each m_j by the point of its interval nearest to t_g
(each distance dist(t, [lo_j, hi_j]) is convex and piecewise linear, so the same cell
argument applies, with the interval ends as extra breakpoints).  As boxes shrink the bound
tends to the exact value.  Boxes outside the ellipsoid {W_w <= U} cannot improve the
incumbent U.  Every node also offers the exact support of the trimmed problem at its best
beta as an incumbent (re-evaluated by the joint refit of ``InterceptStats.f_support``).

One continuous cluster-level column (a school's mean intake score) may come with the
categorical ones, within the limit of three bisected coordinates in all.  Its coefficient s is
bisected like a soft coordinate, but W_w does not depend on it, so the ball gives it no box;
:func:`free_range` derives a finite start box from disjoint pairs of clusters within groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg as sla

from mixmio.solvers.bnb.bestfirst import BestFirst, Node
from mixmio.solvers.bnb.intercept import sum_smallest
from mixmio.solvers.lmm.stats import InterceptStats

_REL = 1e-12
#: applicability limits: bisected dimensions (soft and free columns), and the sum of
#: squared group sizes (cells per group grow as N_g^2)
MAX_SOFT = 3
MAX_CELLS = 60_000


@dataclass(frozen=True)
class Groups:
    """The reduced problem in coordinates z = (u, s): u whitened soft coordinates (beta_soft
    = c + L^{-T} u with Hs = L L', so W_w = Wmin + 1/2 ||u||^2) and s the coefficients of
    continuous cluster-level columns ("free" columns, on which W_w does not depend);
    m_j(z) = m0_j - M_j z.  The last ``n_free`` columns of M belong to s."""

    hard: np.ndarray  # indices of the cluster-level columns of b (categorical and free)
    group: np.ndarray  # (K,) group of each cluster
    n_groups: int
    m0: np.ndarray  # (K,) m_j at z = 0
    M: np.ndarray  # (K, p_s + n_free)
    v: np.ndarray  # (K,) w_j n_j^2
    e: np.ndarray  # (K,) (1/n_j - w_j) n_j^2
    Wmin: float
    n_free: int = 0


def _split_hard(pat: np.ndarray, n_max_free: int):
    """Split the cluster-level columns (their (K, h) cluster values ``pat``) into categorical
    columns whose distinct patterns number as many as the columns and have full rank (they
    span the indicators of groups of clusters) and at most ``n_max_free`` free columns (those
    with the most distinct values).  At least two categorical columns (two groups) are
    required: with the intercept alone and a free column the generic branch and bound was
    faster (Exam ``standLRT + schavg``, k = 10: 2.5 s against a 30 s time limit).
    (categorical indices, free indices, group of each cluster) or None."""
    h = pat.shape[1]
    scale = np.maximum(np.max(np.abs(pat), axis=0), 1e-300)
    key = np.round(pat / scale, 9)
    distinct = np.array([np.unique(key[:, i]).size for i in range(h)])
    by_distinct = np.argsort(-distinct, kind="stable")
    for r in range(0, min(n_max_free, h - 1) + 1):
        free = np.sort(by_distinct[:r])
        cat = np.setdiff1d(np.arange(h), free)
        if cat.size < 2:  # one group and free columns: the generic path does better
            return None
        uniq, group = np.unique(key[:, cat], axis=0, return_inverse=True)
        if uniq.shape[0] != cat.size:
            continue
        if np.linalg.matrix_rank(uniq * scale[cat]) < cat.size:
            continue
        return cat, free, np.asarray(group).reshape(-1)
    return None


def detect(st: InterceptStats, rel_tol: float = 1e-9) -> Groups | None:
    """The group structure of ``st`` or None (see module docstring)."""
    p = st.p
    n = st.n_k
    if p == 0 or np.any(n <= 0):
        return None
    extra = np.maximum(1.0 / n - st.w, 0.0)
    # within-cluster part of W: H_within = HW - D' diag(extra) D
    Hw = st.HW - (st.D.T * extra) @ st.D
    gw = st.gW - st.D.T @ (extra * st.a)
    kw = st.kW - 0.5 * float(np.sum(extra * st.a * st.a))
    diag_x = np.maximum(np.diag(st.XtX), 1e-300)
    hard = np.flatnonzero(np.abs(np.diag(Hw)) <= rel_tol * diag_x)
    if hard.size < 2:
        return None
    soft = np.setdiff1d(np.arange(p), hard)
    if soft.size > MAX_SOFT:
        return None
    pat = st.D[:, hard] / n[:, None]
    split = _split_hard(pat, min(1, MAX_SOFT - soft.size))  # free_range handles one
    if split is None:
        return None
    _, free, group = split
    n_groups = int(group.max()) + 1
    counts = np.bincount(group, minlength=n_groups)
    if float(np.sum(counts.astype(float) ** 2)) > MAX_CELLS:
        return None
    Hs = Hw[np.ix_(soft, soft)]
    gs = gw[soft]
    v = st.w * n * n
    M = st.D[:, soft] / n[:, None]
    m0 = st.a / n
    Wmin = kw
    if soft.size:
        try:
            Lc = np.linalg.cholesky(0.5 * (Hs + Hs.T))
        except np.linalg.LinAlgError:
            return None
        c = sla.cho_solve((Lc, True), gs, check_finite=False)
        Wmin = kw - 0.5 * float(gs @ c)
        m0 = m0 - M @ c
        M = sla.solve_triangular(Lc, M.T, lower=True, check_finite=False).T  # M L^{-T}
    # free columns: m_j -= x_j s with x_j the cluster's value (W_w does not depend on s)
    M = np.column_stack([M, pat[:, free]])
    # t_g is free, so only the within-group deviations of the clusters' mean covariates move
    # m_j relative to t_g: M_j - Mbar_g (any per-group constant; the v-weighted mean keeps
    # the intervals below narrow).  Exact: t_g + Mbar_g' z is again a free location.
    for g in range(n_groups):
        mem = group == g
        M[mem] -= np.average(M[mem], axis=0, weights=v[mem])
    return Groups(hard=hard, group=group, n_groups=n_groups, m0=m0, M=M, v=v,
                  e=extra * n * n, Wmin=float(Wmin), n_free=int(free.size))


def free_range(gr: Groups, k: int, budget: float):
    """An interval containing every value of the (single) free coordinate s at which the
    objective can be <= Wmin + ``budget``, or None when no finite one is found.

    Pair the clusters of each group (sorted by x, the i-th with the (i + N_g // 2)-th).  Two
    unselected clusters of a group cost at least 1/2 h_ij (m_i - m_j)^2 whatever t_g (h_ij =
    a_i a_j / (a_i + a_j), a = e + v), the pairs are disjoint, and at most k pairs hold a
    selected cluster, so the objective is >= Wmin + the sum of the P - k smallest pair
    costs.  With 1/2 ||u||^2 <= budget, |m_i - m_j| >= |dx| |s - s_ij| - delta_ij
    (s_ij = dm0 / dx, delta_ij = sqrt(2 budget) ||M^u_i - M^u_j||); beyond the largest
    s_ij + delta_ij / |dx| every such term grows with s, so the bound is monotone there and
    its crossing of the budget is found by bisection (and likewise below)."""
    if gr.n_free != 1:
        return None
    ps = gr.M.shape[1] - 1
    x, Mu = gr.M[:, ps], gr.M[:, :ps]
    a = gr.e + gr.v
    ia_list: list[int] = []
    ja_list: list[int] = []
    for g in range(gr.n_groups):
        mem = np.flatnonzero(gr.group == g)
        mem = mem[np.argsort(x[mem], kind="stable")]
        half = mem.size // 2
        ia_list.extend(mem[:half].tolist())
        ja_list.extend(mem[mem.size - half:].tolist())
    if not ia_list:
        return None
    Ia, Ja = np.asarray(ia_list), np.asarray(ja_list)
    P = Ia.size
    if P <= k:
        return None
    h = a[Ia] * a[Ja] / (a[Ia] + a[Ja])
    dx = x[Ia] - x[Ja]
    dm = gr.m0[Ia] - gr.m0[Ja]
    delta = np.sqrt(2 * max(budget, 0.0)) * (1 + 1e-9) * np.linalg.norm(Mu[Ia] - Mu[Ja], axis=1)
    moving = np.abs(dx) > 1e-12 * max(1.0, float(np.max(np.abs(x))))
    if np.count_nonzero(moving) <= k:
        return None  # the bound stays finite as |s| grows
    adx = np.where(moving, np.abs(dx), 1.0)
    sij = np.where(moving, dm / adx * np.sign(dx), 0.0)
    reach = np.where(moving, delta / adx, 0.0)

    def lb(s):
        dist = np.where(moving, np.maximum(np.abs(dx) * np.abs(s - sij) - delta, 0.0),
                        np.maximum(np.abs(dm) - delta, 0.0))
        return sum_smallest(0.5 * h * dist * dist, P - k)

    target = budget * (1 + 1e-9) + 1e-300
    ends = []
    for sign in (1.0, -1.0):
        s0 = float(np.max(sign * sij[moving] + reach[moving]))  # monotone beyond (in sign * s)
        if lb(sign * s0) > target:
            ends.append(sign * s0)
            continue
        step = max(1.0, abs(s0))
        hi_ = s0 + step
        while lb(sign * hi_) <= target:
            step *= 2.0
            hi_ = s0 + step
            if step > 1e30:
                return None
        lo_ = s0
        for _ in range(100):  # lb(lo_) <= target < lb(hi_)
            mid = 0.5 * (lo_ + hi_)
            if lb(sign * mid) > target:
                hi_ = mid
            else:
                lo_ = mid
            if hi_ - lo_ <= 1e-12 * (1 + abs(hi_)):
                break
        ends.append(sign * hi_)
    return ends[1], ends[0]


@numba.njit(cache=True)
def _breakpoints(lo, hi, sv, tmin, tmax):
    """The sorted distinct breakpoints of sqrt(v_j) dist(t, [lo_j, hi_j]) inside
    [tmin, tmax], ends included (the minimum over t lies there: outside it every distance
    shrinks towards the hull)."""
    N = lo.size
    cap = 2 * N + 4 * N * (N - 1) // 2 + 2
    pts = np.empty(cap)
    pts[0] = tmin
    pts[1] = tmax
    npts = 2
    for j in range(N):
        if tmin < lo[j] < tmax:
            pts[npts] = lo[j]
            npts += 1
        if tmin < hi[j] < tmax:
            pts[npts] = hi[j]
            npts += 1
    for i in range(N):
        for j in range(i + 1, N):
            si, sj = sv[i], sv[j]
            den = si - sj
            if abs(den) > 1e-14 * (si + sj):
                x1 = (si * lo[i] - sj * lo[j]) / den
                x2 = (si * hi[i] - sj * hi[j]) / den
                if tmin < x1 < tmax:
                    pts[npts] = x1
                    npts += 1
                if tmin < x2 < tmax:
                    pts[npts] = x2
                    npts += 1
            x3 = (si * lo[i] + sj * hi[j]) / (si + sj)
            x4 = (si * hi[i] + sj * lo[j]) / (si + sj)
            if tmin < x3 < tmax:
                pts[npts] = x3
                npts += 1
            if tmin < x4 < tmax:
                pts[npts] = x4
                npts += 1
    return np.unique(pts[:npts])


@numba.njit(cache=True)
def _trim_cells(lo, hi, v, e, kmax, ta, tb):
    """Compiled core of :func:`group_trim`: (L[0..kmax], best cell midpoint per k'), t
    restricted to [ta, tb]."""
    N = lo.size
    sv = np.sqrt(v)
    tmin, tmax = max(lo.min(), ta), min(hi.max(), tb)
    L = np.full(kmax + 1, np.inf)
    tbest = np.zeros(kmax + 1)
    if tmin > tmax:
        return L, tbest
    x = _breakpoints(lo, hi, sv, tmin, tmax)
    key = np.empty(N)
    cpt = np.empty(N)
    act = np.empty(N)
    ncell = max(x.size - 1, 1)
    for c in range(ncell):
        if x.size >= 2:
            a, b = x[c], x[c + 1]
        else:
            a, b = x[0], x[0]
        tm = 0.5 * (a + b)
        A = 0.0
        B = 0.0
        C = 0.0
        for j in range(N):
            if tm < lo[j]:
                cpt[j] = lo[j]
                act[j] = 1.0
                key[j] = -sv[j] * (lo[j] - tm)
            elif tm > hi[j]:
                cpt[j] = hi[j]
                act[j] = 1.0
                key[j] = -sv[j] * (tm - hi[j])
            else:
                cpt[j] = 0.0
                act[j] = 0.0
                key[j] = 0.0
            w = (e[j] + v[j]) * act[j]
            A += w
            B += w * cpt[j]
            C += w * cpt[j] * cpt[j]
        order = np.argsort(key)
        for kk in range(kmax + 1):
            if kk > 0:
                j = order[kk - 1]
                w = v[j] * act[j]
                A -= w
                B -= w * cpt[j]
                C -= w * cpt[j] * cpt[j]
            t = B / A if A > 0 else tm
            t = min(max(t, a), b)
            val = 0.5 * (A * t * t - 2.0 * B * t + C)
            if val < 0.0:  # rounding of the expanded form; exact value >= 0
                val = 0.0
            if val < L[kk]:
                L[kk] = val
                tbest[kk] = tm
    return L, tbest


@numba.njit(cache=True)
def _trim_lin(a, mu2, v, e, kmax):
    """Compiled core of :func:`group_trim_lin`: L[k'] = min over t and |S| <= k' of
    1/2 sum_j c_j(S) ((a_j - t)^2 - mu2_j), c_j = e_j + v_j off S and e_j on S."""
    N = a.size
    L = np.full(kmax + 1, np.inf)
    cap = 2 * N + 2 * N * (N - 1) + 2
    pts = np.empty(cap)
    npts = 0
    mu = np.sqrt(np.maximum(mu2, 0.0))
    for j in range(N):  # where cluster j's gain v_j ((a_j - t)^2 - mu2_j) changes sign
        pts[npts] = a[j] - mu[j]
        pts[npts + 1] = a[j] + mu[j]
        npts += 2
    for i in range(N):  # where the gains of i and j cross (a quadratic in t)
        for j in range(i + 1, N):
            qa = v[i] - v[j]
            qb = -2.0 * (v[i] * a[i] - v[j] * a[j])
            qc = v[i] * (a[i] * a[i] - mu2[i]) - v[j] * (a[j] * a[j] - mu2[j])
            if abs(qa) <= 1e-14 * (v[i] + v[j]):
                if qb != 0.0:
                    pts[npts] = -qc / qb
                    npts += 1
            else:
                disc = qb * qb - 4.0 * qa * qc
                if disc >= 0.0:
                    r = np.sqrt(disc)
                    pts[npts] = (-qb - r) / (2.0 * qa)
                    pts[npts + 1] = (-qb + r) / (2.0 * qa)
                    npts += 2
    x = np.unique(pts[:npts])
    # cells: (-inf, x0), (x_i, x_i+1), (x_last, inf), and the breakpoints themselves
    ncell = x.size + 1
    gain = np.empty(N)
    for c in range(2 * ncell - 1):
        if c % 2 == 1:  # a breakpoint (ties: any order is optimal there)
            ta = x[c // 2]
            tb = ta
            tm = ta
        else:
            ci = c // 2
            ta = -np.inf if ci == 0 else x[ci - 1]
            tb = np.inf if ci == x.size else x[ci]
            if ci == 0:
                tm = x[0] - 1.0 if x.size else 0.0
            elif ci == x.size:
                tm = x[x.size - 1] + 1.0
            else:
                tm = 0.5 * (ta + tb)
        A = 0.0
        B = 0.0
        C = 0.0
        for j in range(N):
            w = e[j] + v[j]
            A += w
            B += w * a[j]
            C += w * (a[j] * a[j] - mu2[j])
            gain[j] = -v[j] * ((a[j] - tm) ** 2 - mu2[j])  # ascending = largest gain first
        order = np.argsort(gain)
        for kk in range(kmax + 1):
            if kk > 0:
                j = order[kk - 1]
                if gain[j] < 0.0:  # a positive gain: selecting j lowers the value here
                    A -= v[j]
                    B -= v[j] * a[j]
                    C -= v[j] * (a[j] * a[j] - mu2[j])
            t = B / A if A > 0 else tm
            t = min(max(t, ta), tb)
            val = 0.5 * (A * t * t - 2.0 * B * t + C)
            if val < L[kk]:
                L[kk] = val
    for kk in range(1, kmax + 1):  # at most k'
        if L[kk - 1] < L[kk]:
            L[kk] = L[kk - 1]
    return L


def group_trim_lin(a, mu2, v, e, kmax: int) -> np.ndarray:
    """For one group: L[k'] = min over t and |S| <= k' of 1/2 sum_j c_j(S) ((a_j - t)^2 -
    mu2_j), c_j = e_j + v_j for j not in S and e_j for j in S, k' = 0..kmax.  Within a cell
    between consecutive breakpoints (sign changes of each gain v_j ((a_j - t)^2 - mu2_j) and
    crossings of two gains) the order of the gains is fixed, so the best S holds the k'
    largest positive gains and the value is a quadratic in t minimised in closed form."""
    shift = float(np.median(a)) if a.size else 0.0
    return _trim_lin(np.asarray(a, float) - shift, np.asarray(mu2, float),
                     np.asarray(v, float), np.asarray(e, float), int(kmax))


def group_trim(lo, hi, v, e, kmax: int, budget: float = np.inf):
    """For one group: L[k'] = min over t and |S| = k' of 1/2 sum e_j d_j(t)^2 +
    1/2 sum_{j not in S} v_j d_j(t)^2 with d_j(t) = dist(t, [lo_j, hi_j]), k' = 0..kmax
    (kmax <= N); and for each k' an order of the clusters whose first k' entries are an
    optimal S.

    With a finite ``budget`` only t where the value can be <= budget are searched: an
    unselected cluster alone costs more than the budget when t < lo_j - r_j or
    t > hi_j + r_j (r_j = sqrt(2 budget / v_j)), and at most kmax clusters are selected.
    L[k'] is then the minimum over those t (inf when none): a bound valid for every point
    whose value is <= budget, which is all the pruning needs.
    """
    shift = float(np.median(0.5 * (lo + hi)))  # centre: the expanded quadratic cancels less
    lo, hi = lo - shift, hi - shift
    ta, tb = -np.inf, np.inf
    if np.isfinite(budget) and kmax < lo.size:
        r = np.sqrt(2 * max(budget, 0.0) / v) * (1 + 1e-9)
        ta = float(-np.partition(-(lo - r), kmax)[kmax])  # (kmax+1)-th largest lo - r
        tb = float(np.partition(hi + r, kmax)[kmax])  # (kmax+1)-th smallest hi + r
    L, t_best = _trim_cells(lo, hi, np.asarray(v, float), np.asarray(e, float), int(kmax),
                            ta, tb)
    T = t_best[:, None]
    dist = np.where(T < lo[None, :], lo[None, :] - T,
                    np.where(T > hi[None, :], T - hi[None, :], 0.0))
    order = np.argsort(-(np.sqrt(v)[None, :] * dist), axis=1, kind="stable")
    return L, order


def _knapsack(Ls: list[np.ndarray], k: int):
    """min over k_g (sum <= k) of sum_g L_g[k_g]; returns (value, k_g per group)."""
    best = Ls[0][: k + 1].copy()
    choice = [np.arange(best.size)]
    for L in Ls[1:]:
        size = min(k, best.size - 1 + L.size - 1) + 1
        new = np.full(size, np.inf)
        arg = np.zeros(size, dtype=int)
        for kg in range(L.size):
            s = best[: max(0, size - kg)] + L[kg]
            idx = np.arange(s.size) + kg
            better = s < new[idx]
            new[idx[better]] = s[better]
            arg[idx[better]] = kg
        best = new
        choice.append(arg)
    tot = int(np.argmin(best))
    val = float(best[tot])
    ks = []
    for g in range(len(Ls) - 1, 0, -1):
        kg = int(choice[g][tot])
        ks.append(kg)
        tot -= kg
    ks.append(tot)
    return val, ks[::-1]


class GroupBnB:
    """Best-first bisection of a box in z = (u, s) (see module docstring and
    :class:`Groups`); with neither soft nor free columns the root is solved exactly.  The
    ball 1/2 ||u||^2 <= Ut - Wmin - G bounds u; the free coordinate s starts from
    :func:`free_range` (set by :meth:`free_box`, which must succeed when there is one)."""

    def __init__(self, st: InterceptStats, gr: Groups, k: int):
        self.st, self.gr, self.k = st, gr, k
        self.members = [np.flatnonzero(gr.group == g) for g in range(gr.n_groups)]
        self.tol = _REL * max(0.5 * st.rr, 1e-300)
        self.ps = gr.M.shape[1] - gr.n_free  # whitened soft coordinates come first
        # ellipsoid half-width of M_j^u u per sqrt(2 rho)
        self.Mn = np.linalg.norm(gr.M[:, : self.ps], axis=1)
        self.infl = (np.sqrt(gr.v)[:, None] * np.abs(gr.M)).sum(0)  # split score per axis
        self.s_box = (np.zeros(0), np.zeros(0))

    def free_box(self, U: float) -> bool:
        """Start box of the free coordinates from an incumbent value U (valid for every
        later, smaller incumbent); False when no finite box is found."""
        if self.gr.n_free == 0:
            return True
        rng = free_range(self.gr, self.k, U - self.gr.Wmin + 2 * self.tol + _REL * abs(U))
        if rng is None:
            return False
        self.s_box = (np.array([rng[0]]), np.array([rng[1]]))
        return True

    def trimmed(self, lo, hi, budget=np.inf):
        """(G_int, selected mask) for per-cluster intervals [lo, hi] of m_j (see
        :func:`group_trim` for ``budget``); G_int = inf when no point is within budget."""
        Ls, orders = [], []
        for mem in self.members:
            kmax = min(self.k, mem.size)
            L, od = group_trim(lo[mem], hi[mem], self.gr.v[mem], self.gr.e[mem], kmax, budget)
            if not np.isfinite(L).any():
                return np.inf, np.zeros(self.st.K, dtype=bool)
            Ls.append(L)
            orders.append(od)
        val, ks = _knapsack(Ls, self.k)
        sel = np.zeros(self.st.K, dtype=bool)
        for mem, od, kg in zip(self.members, orders, ks, strict=True):
            sel[mem[od[kg][:kg]]] = True
        return val, sel

    def linearised(self, lo_u, hi_u) -> float:
        """Second-order bound on the box (ENGINE.md section 6): around the centre z_c, with
        half-widths h, for every S and t the objective is a convex quadratic in dz; dropping
        its quadratic part and minimising the linear part over the box gives, for each sign
        pattern sigma of the box's corners, mu_j = M_j (sigma h) and

            Wmin + 1/2 ||u_c||^2 + sigma h . u_c
                 + min_{S, t} sum_g 1/2 sum_j c_j(S) ((m_j(z_c) - mu_j - t_g)^2 - mu_j^2);

        the bound is the minimum over sigma.  It is exact at zero width and loses only the
        dropped quadratic part, O(width^2)."""
        gr, ps = self.gr, self.ps
        zc = 0.5 * (lo_u + hi_u)
        h = 0.5 * (hi_u - lo_u)
        if not np.all(np.isfinite(h)):
            return -np.inf
        mc = gr.m0 - gr.M @ zc
        ubar = np.zeros_like(zc)
        ubar[:ps] = zc[:ps]
        base = gr.Wmin + 0.5 * float(zc[:ps] @ zc[:ps])
        best = np.inf
        d = zc.size
        for code in range(2 ** d):
            sig = np.array([1.0 if (code >> i) & 1 else -1.0 for i in range(d)])
            mu = gr.M @ (sig * h)
            a = mc - mu
            mu2 = mu * mu
            Ls = [group_trim_lin(a[mem], mu2[mem], gr.v[mem], gr.e[mem], min(self.k, mem.size))
                  for mem in self.members]
            val, _ = _knapsack(Ls, self.k)
            best = min(best, base + float(sig * h @ ubar) + val)
        return best

    def m_range(self, lo_u, hi_u, rho):
        """Intervals of m_j over the box intersected with the ball 1/2 ||u||^2 <= rho (the
        ball restricts the soft part M_j^u u; the free part ranges over the box alone)."""
        gr = self.gr
        ps = self.ps
        Mu = gr.M[:, :ps]
        Mlo = np.minimum(Mu * lo_u[:ps], Mu * hi_u[:ps]).sum(1)
        Mhi = np.maximum(Mu * lo_u[:ps], Mu * hi_u[:ps]).sum(1)
        r = np.sqrt(2 * max(rho, 0.0)) * self.Mn * (1 + 1e-9)
        Mlo = np.maximum(Mlo, -r)
        Mhi = np.minimum(Mhi, r)
        if gr.n_free:
            Ms = gr.M[:, ps:]
            Mlo = Mlo + np.minimum(Ms * lo_u[ps:], Ms * hi_u[ps:]).sum(1)
            Mhi = Mhi + np.maximum(Ms * lo_u[ps:], Ms * hi_u[ps:]).sum(1)
        lo, hi = gr.m0 - Mhi, gr.m0 - Mlo
        pad = 1e-12 * (np.abs(lo) + np.abs(hi)) + 1e-300
        return lo - pad, hi + pad

    def evaluate(self, node: Node, bf: BestFirst):
        """(lb, box lo, box hi); lb >= bf.target means the node is closed.

        On the node's box B, F < Ut needs 1/2 ||u||^2 <= Ut - Wmin - G_int(B): a ball whose
        bounding box shrinks B, so the intervals of m_j narrow and G_int rises.  Iterated;
        each pass is valid on the region left by the previous one.
        """
        gr = self.gr
        ps = self.ps
        Ut = bf.target
        lo_u, hi_u = node.lo.copy(), node.hi.copy()
        G = 0.0
        lb = -np.inf
        uhat = np.zeros(gr.M.shape[1])
        for _ in range(8):
            rho = Ut - gr.Wmin - G + self.tol + _REL * abs(Ut)
            if rho < 0:
                return Ut, lo_u, hi_u
            rad = np.sqrt(2 * rho) * (1 + 1e-9)
            lo_n, hi_n = lo_u.copy(), hi_u.copy()
            lo_n[:ps] = np.maximum(lo_u[:ps], -rad)
            hi_n[:ps] = np.minimum(hi_u[:ps], rad)
            if np.any(lo_n > hi_n):
                return Ut, lo_n, hi_n
            settled = np.isfinite(lb) and np.all(hi_n - lo_n >= 0.9 * (hi_u - lo_u))
            lo_u, hi_u = lo_n, hi_n
            if settled:
                break
            # minimiser of 1/2 ||u||^2 over the box (exact); the free part: the box centre
            uhat = np.concatenate([np.clip(0.0, lo_u[:ps], hi_u[:ps]),
                                   0.5 * (lo_u[ps:] + hi_u[ps:])])
            Wlb = gr.Wmin + 0.5 * float(uhat[:ps] @ uhat[:ps])
            if Wlb - self.tol >= Ut:
                return Ut, lo_u, hi_u
            lo, hi = self.m_range(lo_u, hi_u, rho)
            G, _ = self.trimmed(lo, hi, budget=Ut - Wlb + 2 * self.tol)
            if not np.isfinite(G):
                return Ut, lo_u, hi_u
            lb = Wlb + G - self.tol - _REL * abs(Wlb + G)
            if lb >= Ut or not uhat.size:
                break
        if uhat.size and lb < Ut:
            lin = self.linearised(lo_u, hi_u)
            if np.isfinite(lin):
                lb = max(lb, lin - self.tol - _REL * (abs(lin) + abs(gr.Wmin)))
        if lb < Ut and (node.depth % 3 == 0 or not uhat.size):
            # incumbent: the exact trimmed support at the box's best z, refit jointly
            m = gr.m0 - gr.M @ uhat
            _, sel = self.trimmed(m, m)
            key = sel.tobytes()
            if key not in self.seen:
                self.seen.add(key)
                f, _ = self.st.f_support(sel)
                bf.offer(f, sel)
        return lb, lo_u, hi_u

    def run(self, sel0, f0, mip_gap, time_limit, t0, log=None):
        """(best support, its objective, proven bound, nodes, timed out)."""
        ps = self.gr.M.shape[1]
        root = Node(None, np.concatenate([np.full(self.ps, -np.inf), self.s_box[0]]),
                    np.concatenate([np.full(self.ps, np.inf), self.s_box[1]]), 0)
        bf = BestFirst(root, sel0.copy(), f0, mip_gap, time_limit, t0, log)
        self.seen: set = set()
        for node in bf:
            lb, lo_u, hi_u = self.evaluate(node, bf)
            if lb >= bf.target or ps == 0:
                bf.close(lb)
                continue
            width = hi_u - lo_u
            i = int(np.argmax(width * self.infl))
            if not np.isfinite(width[i]) or width[i] <= 1e-15 * (1 + abs(lo_u[i]) + abs(hi_u[i])):
                bf.close(lb)  # cannot split further: the bound stands
                continue
            mid = 0.5 * (lo_u[i] + hi_u[i])
            for a_, b_ in ((lo_u[i], mid), (mid, hi_u[i])):
                l2, h2 = lo_u.copy(), hi_u.copy()
                l2[i], h2[i] = a_, b_
                bf.push(lb, node.depth + 1, Node(None, l2, h2, node.depth + 1))
        return bf.best, bf.U, bf.bound(), bf.nodes, bf.timed_out
