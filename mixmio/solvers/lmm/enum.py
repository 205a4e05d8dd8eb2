"""Exhaustive enumeration of random-intercept supports: an exact fallback when C(K, k) is small.

When the branch and bound's bound is weak (several cluster-level covariates make several hard
directions, e.g. a school-level factor), C(K, k) can still be small enough to evaluate every
support.  With ``Q_S(b) = 1/2 b'H_S b - g_S'b + kappa_S`` the objective with the clusters of S
selected, ``H_S = H_all - sum_{j in S} w_j d_j d_j'`` (and likewise g, kappa), so each support
costs one p x p Cholesky solve.  Supports are visited in lexicographic order by a compiled loop
that keeps the partial sums of every prefix, so moving to the next support updates only the
positions that changed.  Evaluating every support is itself the proof of optimality (up to
floating-point rounding of each evaluation).
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np

from mixmio.solvers.lmm.stats import InterceptStats

#: largest estimated enumeration time (seconds) tried without a time limit; with one, the
#: estimate must also fit in half of the time left
ENUM_SECONDS = 30.0
_NS_PER_FLOP = 1.5  # compiled-loop speed for the estimate (measured ~1.2 on this machine)


def n_supports(K: int, k: int) -> int:
    return math.comb(K, min(k, K))


def estimated_seconds(K: int, k: int, p: int) -> float:
    """Rough time to enumerate C(K, k) supports (one p x p Cholesky solve and a rank-one
    update each); calibrated conservatively on this project's machine.  ``inf`` when C(K, k)
    is astronomically large (computed in logs: C(3000, 300) does not fit in a float)."""
    k = min(k, K)
    log_n = math.lgamma(K + 1) - math.lgamma(k + 1) - math.lgamma(K - k + 1)
    if log_n > math.log(1e15):
        return math.inf
    flops = p**3 / 3 + 4 * p * p + 20
    return math.exp(log_n) * flops * _NS_PER_FLOP * 1e-9


@numba.njit(cache=True)
def _segment(c0, K, k, D, w, wa, wa2, H_all, g_all, kap_all, best_idx):
    """Best support among those whose smallest cluster is ``c0``: (objective, count); the
    support is written to ``best_idx``."""
    p = D.shape[1]
    Hs = np.empty((k + 1, p, p))
    gs = np.empty((k + 1, p))
    ks = np.empty(k + 1)
    Hs[0] = H_all
    gs[0] = g_all
    ks[0] = kap_all
    idx = np.empty(k, dtype=np.int64)
    for i in range(k):
        idx[i] = c0 + i
    L = np.empty((p, p))
    z = np.empty(p)
    best = np.inf
    count = 0
    start = 0
    while True:
        for d in range(start, k):  # prefix sums after removing idx[0..d]
            j = idx[d]
            wj = w[j]
            for a in range(p):
                gs[d + 1, a] = gs[d, a] - D[j, a] * wa[j]
                for b in range(p):
                    Hs[d + 1, a, b] = Hs[d, a, b] - wj * D[j, a] * D[j, b]
            ks[d + 1] = ks[d] - 0.5 * wa2[j]
        # f = kappa - 1/2 g'H^-1 g by Cholesky (H = L L'); fall back to lstsq if not PD
        H = Hs[k]
        g = gs[k]
        ok = True
        for a in range(p):
            s = H[a, a]
            for c in range(a):
                s -= L[a, c] * L[a, c]
            if s <= 1e-14 * max(1.0, abs(H[a, a])):
                ok = False
                break
            L[a, a] = np.sqrt(s)
            for r in range(a + 1, p):
                t = H[r, a]
                for c in range(a):
                    t -= L[r, c] * L[a, c]
                L[r, a] = t / L[a, a]
        if ok:
            quad = 0.0
            for a in range(p):  # z = L^-1 g, g'H^-1 g = z'z
                t = g[a]
                for c in range(a):
                    t -= L[a, c] * z[c]
                z[a] = t / L[a, a]
                quad += z[a] * z[a]
        else:
            bsol = np.linalg.lstsq(H, g, rcond=-1.0)[0]
            quad = 0.0
            for a in range(p):
                quad += g[a] * bsol[a]
        f = ks[k] - 0.5 * quad
        count += 1
        if f < best:
            best = f
            for i in range(k):
                best_idx[i] = idx[i]
        # next combination with idx[0] = c0 fixed
        i = k - 1
        while i >= 1 and idx[i] == K - k + i:
            i -= 1
        if i < 1:
            break
        idx[i] += 1
        for r in range(i + 1, k):
            idx[r] = idx[r - 1] + 1
        start = i
    return best, count


def enumerate_best(st: InterceptStats, k: int, deadline: float | None = None
                   ) -> tuple[np.ndarray, float, int] | None:
    """(best support mask, its objective, supports evaluated), or None when ``deadline``
    (perf_counter seconds) passes first (checked between segments of a common first
    cluster).  Supports of exactly min(k, K) clusters suffice: selecting one more cluster
    never raises the objective (its effect may stay 0)."""
    K = st.K
    kk = min(k, K)
    sel = np.zeros(K, dtype=bool)
    H_all, g_all, kap_all = st.quad_out(np.ones(K, dtype=bool))
    if kk == 0:
        if st.p:
            b = np.linalg.lstsq(H_all, g_all, rcond=None)[0]
            return sel, float(kap_all - 0.5 * g_all @ b), 1
        return sel, float(kap_all), 1
    D = np.ascontiguousarray(st.D, dtype=float)
    args = (D, np.asarray(st.w, float), np.asarray(st.wa, float), np.asarray(st.wa2, float),
            np.ascontiguousarray(H_all, dtype=float), np.asarray(g_all, float), float(kap_all))
    best_f, best = np.inf, None
    total = 0
    buf = np.empty(kk, dtype=np.int64)
    for c0 in range(K - kk + 1):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        f, count = _segment(c0, K, kk, *args, buf)
        total += count
        if f < best_f:
            best_f, best = float(f), buf.copy()
    sel[best] = True
    return sel, best_f, total
