"""Exhaustive enumeration of random-intercept supports: an exact fallback for small C(K, k).

When the branch and bound's bound is weak (several cluster-level covariates make several hard
directions, e.g. a school-level factor), C(K, k) can still be small enough to evaluate every
support.  With ``Q_S(b) = 1/2 b'H_S b - g_S'b + kappa_S`` the objective with the clusters of S
selected, ``H_S = H_all - sum_{j in S} w_j d_j d_j'`` (and likewise g, kappa), so each support
costs one p x p solve; supports are evaluated in vectorised batches (at most 20,000 supports
and ~16 MB per array).  Evaluating every support is itself the proof of optimality (up to
floating-point rounding of each evaluation).
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from mixmio.solvers._engine_stats import InterceptStats

ENUM_MAX = 250_000  # largest C(K, k) enumerated
_BATCH_FLOATS = 2_000_000  # floats per batch array (N * max(p*p, k*p)): ~16 MB each


def n_supports(K: int, k: int) -> int:
    return math.comb(K, min(k, K))


def enumerate_best(st: InterceptStats, k: int, deadline: float | None = None
                   ) -> tuple[np.ndarray, float, int] | None:
    """(best support mask, its objective, supports evaluated), or None when ``deadline``
    (perf_counter seconds) passes first.  Supports of exactly min(k, K) clusters suffice:
    selecting one more cluster never raises the objective (its effect may stay 0)."""
    K = st.K
    kk = min(k, K)
    H_all, g_all, kap_all = st.quad_out(np.ones(K, dtype=bool))
    best_f, best = np.inf, None
    count = 0
    combos = itertools.combinations(range(K), kk)
    batch = max(1, min(20_000, _BATCH_FLOATS // max(1, st.p * st.p, kk * st.p)))
    while True:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        chunk = list(itertools.islice(combos, batch))
        if not chunk:
            break
        C = np.asarray(chunk, dtype=np.int64).reshape(len(chunk), kk)
        Dk = st.D[C]  # (N, k, p)
        wk = st.w[C]
        H = H_all[None] - np.einsum("nkp,nk,nkq->npq", Dk, wk, Dk)
        g = g_all[None] - np.einsum("nkp,nk->np", Dk, st.wa[C])
        kap = kap_all - 0.5 * st.wa2[C].sum(axis=1)
        if st.p:
            try:
                b = np.linalg.solve(H, g[..., None])[..., 0]
            except np.linalg.LinAlgError:  # a support that leaves X unidentified
                b = np.einsum("npq,nq->np", np.linalg.pinv(H, hermitian=True), g)
            f = kap - 0.5 * np.einsum("np,np->n", g, b)
        else:
            f = kap
        i = int(np.argmin(f))
        if f[i] < best_f:
            best_f, best = float(f[i]), C[i]
        count += len(chunk)
    sel = np.zeros(K, dtype=bool)
    if best is not None:
        sel[best] = True
    return sel, best_f, count
