"""Sufficient statistics and fast support evaluation for the random-intercept engine.

Everything the exact engine needs about a random-intercept Problem fits in O(K p + p^2)
numbers, computed in one pass over the n rows:

* the fixed design is reduced to a full-column-rank basis ``cols`` (dropped columns get beta = 0,
  which changes no objective value) and the response is replaced by the OLS residual
  ``r0 = y - X b_ols`` (beta is unpenalised, so the shift b -> b + b_ols changes no objective
  value; it only removes cancellation);
* per cluster: size ``n_k``, residual sum ``a_k``, column sums ``d_k = X_k' 1`` and
  ``w_k = 1 / (n_k + mu)``;
* the within-cluster quadratic ``W(b) = 1/2 b'HW b - gW'b + kW`` (a sum of positive
  semidefinite terms, computed from within-cluster centred data, so no cancellation).

With ``phi_k(b) = w_k (a_k - d_k'b)^2`` and ``O`` the unselected clusters, the penalised
objective of a support ``S`` (all other clusters out) is ``f(S) = min_b W(b) + 1/2 sum_O phi_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs


@dataclass
class InterceptStats:
    K: int
    k: int
    mu: float
    cols: np.ndarray  # kept columns of X (full column rank basis)
    p_full: int
    b_ols: np.ndarray  # OLS coefficients on the kept columns
    n_k: np.ndarray
    w: np.ndarray
    a: np.ndarray
    D: np.ndarray  # (K, p)
    HW: np.ndarray
    gW: np.ndarray
    kW: float
    rr: float  # r0'r0: the k = 0 objective is rr / 2
    Xtr: np.ndarray
    XtX: np.ndarray
    wa: np.ndarray  # w * a
    wa2: np.ndarray  # w * a^2
    # k-independent derived quantities (hard directions, groups), shared by the shallow
    # copies that ``intercept_engine.cached_stats`` makes for other caps
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def p(self) -> int:
        return self.D.shape[1]

    # ------------------------------------------------------------------ quadratics
    def quad_out(self, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(H, g, kappa) of Q(b) = W(b) + 1/2 sum_{k in out} phi_k(b) = 1/2 b'Hb - g'b + kappa."""
        idx = out.nonzero()[0] if out.dtype == bool else out
        Do = self.D[idx]
        H = self.HW + (Do.T * self.w[idx]) @ Do
        g = self.gW + Do.T @ self.wa[idx]
        kappa = self.kW + 0.5 * float(self.wa2[idx].sum())
        return H, g, kappa

    def f_support(self, sel: np.ndarray) -> tuple[float, np.ndarray]:
        """(f(S), b(S)) for a boolean cluster mask ``sel`` (|sel| <= k not checked)."""
        H, g, kappa = self.quad_out(~sel)
        if H.size:  # LAPACK directly: the scipy wrappers cost more than a p x p solve
            Lc, fail = _potrf(H, lower=1)
            if not fail:
                b, fail = _potrs(Lc, g, lower=1)
            if not fail:
                return kappa - 0.5 * float(g @ b), b
        cf = sla.cho_factor(H, lower=True, check_finite=False)
        b = sla.cho_solve(cf, g, check_finite=False)
        return kappa - 0.5 * float(g @ b), b

    # ------------------------------------------------------------------ back to w
    def coefficients(self, sel: np.ndarray):
        """(beta over all p_full columns, gamma over K) jointly minimising the penalised objective
        on support ``sel``; unselected gamma exactly 0.  O(K p): the cluster sums of the
        residual y - X beta are a - D b (b = beta - b_ols on the kept columns)."""
        _, b = self.f_support(sel)
        beta = np.zeros(self.p_full)
        beta[self.cols] = b + self.b_ols
        sums = self.a - self.D @ b if self.p else self.a
        gamma = np.where(sel, sums * self.w, 0.0)
        return beta, gamma


def full_rank_columns(X: np.ndarray, XtX: np.ndarray) -> np.ndarray:
    """Indices of a full-column-rank subset of X's columns (all of them when X'X is safely
    positive definite; otherwise a pivoted QR of X decides)."""
    p = X.shape[1]
    if p == 0:
        return np.zeros(0, dtype=int)
    dg = np.sqrt(np.maximum(np.diag(XtX), 0.0))
    if np.all(dg > 0):
        C = XtX / np.outer(dg, dg)
        ev = np.linalg.eigvalsh(C)
        if ev[0] > 1e-8 * ev[-1]:
            return np.arange(p)
    _, R, piv = sla.qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    if d.size == 0 or d[0] == 0:
        return np.zeros(0, dtype=int)
    tol = d[0] * max(X.shape) * np.finfo(float).eps * 10
    rank = int(np.sum(d > tol))
    return np.sort(piv[:rank])


def profile_ols(X: np.ndarray, y: np.ndarray):
    """(kept full-rank columns, X on them, X'X on them, OLS coefficients, OLS residual).

    Beta is unpenalised, so the engines work on the OLS residual; normal equations with two
    rounds of iterative refinement keep the residual accurate to full precision.
    """
    XtX_full = X.T @ X
    cols = full_rank_columns(X, XtX_full)
    Xr = X[:, cols]
    G = XtX_full[np.ix_(cols, cols)]
    if not cols.size:
        return cols, Xr, G, np.zeros(0), y.copy()
    cf = sla.cho_factor(G, lower=True, check_finite=False)
    b_ols = sla.cho_solve(cf, Xr.T @ y, check_finite=False)
    for _ in range(2):
        b_ols = b_ols + sla.cho_solve(cf, Xr.T @ (y - Xr @ b_ols), check_finite=False)
    return cols, Xr, G, b_ols, y - Xr @ b_ols


def build_stats(X: np.ndarray, y: np.ndarray, codes: np.ndarray, K: int, mu: float,
                k: int, values: np.ndarray | None = None) -> InterceptStats:
    """Statistics of one random-effect column per cluster: the indicator (``values`` None, a
    random intercept) or ``values`` v (a slope-only term ``(0 + x | g)``: Z_ik = v_i 1[g_i = k]).

    With v the sums become v-weighted: ``n_k`` = S_k = sum v^2 (the cluster size for an
    intercept), ``a_k`` = v_k'r0, ``d_k`` = X_k'v_k, ``w_k = 1 / (S_k + mu)``, and W is computed
    from the data with v projected out within each cluster (r_k - v_k (v_k'r_k) / S_k), plus
    the ridge remainder (v'r)^2 (1 / S_k - w_k): the same formulas, the same PSD pieces."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p_full = X.shape
    cols, Xr, XtX, b_ols, r0 = profile_ols(X, y)
    codes = np.asarray(codes, dtype=np.int64)
    v = np.ones(n) if values is None else np.asarray(values, dtype=float).reshape(n)
    n_k = (np.bincount(codes, minlength=K) if values is None
           else np.bincount(codes, weights=v * v, minlength=K)).astype(float)
    A = sp.csr_matrix((v, (codes, np.arange(n))), shape=(K, n))
    D = np.asarray(A @ Xr).reshape(K, cols.size)
    a = np.bincount(codes, weights=v * r0, minlength=K)
    w = np.where(n_k + mu > 0, 1.0 / np.where(n_k + mu > 0, n_k + mu, 1.0), 0.0)
    inv_n = np.where(n_k > 0, 1.0 / np.where(n_k > 0, n_k, 1.0), 0.0)
    # within-cluster data with v projected out (centred data for an intercept)
    xbar = D * inv_n[:, None]
    rbar = a * inv_n
    Xc = Xr - v[:, None] * xbar[codes] if values is not None else Xr - xbar[codes]
    rc = r0 - v * rbar[codes] if values is not None else r0 - rbar[codes]
    extra = np.maximum(inv_n - w, 0.0)  # 1/n_k - w_k = mu / (n_k (n_k + mu)) >= 0
    HW = Xc.T @ Xc + (D.T * extra) @ D
    gW = Xc.T @ rc + D.T @ (extra * a)
    kW = 0.5 * (float(rc @ rc) + float(np.sum(extra * a * a)))
    HW = 0.5 * (HW + HW.T)
    return InterceptStats(
        K=K, k=k, mu=mu, cols=cols, p_full=p_full, b_ols=b_ols, n_k=n_k, w=w, a=a, D=D,
        HW=HW, gW=gW, kW=kW, rr=float(r0 @ r0), Xtr=Xr.T @ r0, XtX=XtX,
        wa=w * a, wa2=w * a * a,
    )


# ---------------------------------------------------------------------- heuristics
def top_k_support(st: InterceptStats, b: np.ndarray, k: int) -> np.ndarray:
    """The k clusters with the largest phi_k(b) (ties by index)."""
    phi = st.w * (st.a - st.D @ b) ** 2
    sel = np.zeros(st.K, dtype=bool)
    if k >= st.K:
        sel[:] = True
    elif k > 0:
        sel[np.argpartition(-phi, k - 1)[:k]] = True
    return sel


def alternate(st: InterceptStats, sel: np.ndarray, max_iter: int = 50) -> tuple[np.ndarray, float]:
    """b-step / support-step alternation (each step does not increase f)."""
    f, b = st.f_support(sel)
    for _ in range(max_iter):
        new = top_k_support(st, b, int(sel.sum()))
        if np.array_equal(new, sel):
            break
        f2, b2 = st.f_support(new)
        if f2 >= f:
            break
        sel, f, b = new, f2, b2
    return sel, f


def swap_search(st: InterceptStats, sel: np.ndarray, max_swaps: int = 100000,
                deadline: float | None = None) -> tuple[np.ndarray, float]:
    """Best-improvement 1-for-1 swap search on the (p+1)-dimensional sufficient statistics.

    With M(S) = T - sum_{j in S} u_j u_j', u_j = sqrt(w_j) [d_j; -a_j], f(S) = 1 / (2 N_yy)
    where N = M^{-1}.  Removing i then adding j is a rank-two update, so all |S| (K - |S|) swaps
    are scored with one |S| x (K - |S|) product of (p+1)-vectors.
    """
    import time

    sel = sel.copy()
    K = st.K
    if sel.sum() == 0 or sel.sum() == K:
        return sel, st.f_support(sel)[0]
    sw = np.sqrt(st.w)
    U = np.column_stack([st.D * sw[:, None], -st.a * sw])
    best_f = st.f_support(sel)[0]
    for _ in range(max_swaps):
        if deadline is not None and time.perf_counter() > deadline:
            break
        H, g, kappa = st.quad_out(~sel)
        M = np.empty((st.p + 1, st.p + 1))
        M[:-1, :-1] = H
        M[:-1, -1] = -g
        M[-1, :-1] = -g
        M[-1, -1] = 2 * kappa
        try:
            N = np.linalg.inv(M)
        except np.linalg.LinAlgError:
            break
        N = 0.5 * (N + N.T)
        NU = U @ N  # (K, p+1)
        gd = np.einsum("ij,ij->i", NU, U)
        py = NU[:, -1]
        Nyy = N[-1, -1]
        ins, outs = _swap_candidates(st, sel, H, g)
        if not (ins.size and outs.size):
            break
        cross = NU[ins] @ U[outs].T  # g_ij
        gi = gd[ins][:, None]
        N1yy = Nyy - py[ins] ** 2 / (1.0 + gd[ins])  # remove i
        N1uj_y = py[outs][None, :] - (py[ins] / (1.0 + gd[ins]))[:, None] * cross
        ujN1uj = gd[outs][None, :] - cross**2 / (1.0 + gi)
        den = 1.0 - ujN1uj
        with np.errstate(divide="ignore", invalid="ignore"):
            N2yy = N1yy[:, None] + N1uj_y**2 / den
            fnew = np.where(den > 1e-14, 0.5 / N2yy, np.inf)
        idx = np.unravel_index(np.argmin(fnew), fnew.shape)
        cand = fnew[idx]
        if not cand < best_f * (1 - 1e-12) - 1e-300:
            break
        trial = sel.copy()
        trial[ins[idx[0]]] = False
        trial[outs[idx[1]]] = True
        f_exact = st.f_support(trial)[0]
        if f_exact >= best_f:
            break
        sel, best_f = trial, f_exact
    return sel, best_f


def _swap_candidates(st: InterceptStats, sel: np.ndarray, H: np.ndarray, g: np.ndarray):
    """The selected clusters i and unselected j that can take part in an improving swap.

    With b the fit of S, H the Hessian of Q_{not S}, m_j = a_j - d_j'b and
    A_j = w_j |m_j| ||d_j||_{H^{-1}}: swapping i out and j in changes the objective by at
    least 1/2 (phi_i - phi_j) - 1/2 (A_i + A_j)^2 / (1 - kappa_j), kappa_j = w_j ||d_j||^2_{H^{-1}}
    (phi_i convex, phi_j exact to second order, the refit of b over H minus j's own term, whose
    inverse is at most H^{-1} / (1 - kappa_j)).  So only pairs with
    phi_i - phi_j < (A_i + A_j)^2 / (1 - kappa_j) can improve, and the others are not scored.
    """
    ins = np.flatnonzero(sel)
    outs = np.flatnonzero(~sel)
    if st.p == 0 or ins.size * outs.size <= 4096:
        return ins, outs
    try:
        Lc = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:  # pragma: no cover - H >= HW > 0
        return ins, outs
    Linv = np.linalg.inv(Lc)
    b = Linv.T @ (Linv @ g)
    E = st.D @ Linv.T  # rows L^{-1} d_j
    dn2 = np.einsum("ij,ij->i", E, E)  # ||d_j||^2_{H^{-1}}
    m = st.a - st.D @ b
    phi = st.w * m * m
    A = st.w * np.abs(m) * np.sqrt(dn2)
    kap = float(np.max(st.w[outs] * dn2[outs]))
    if not kap < 1.0:  # pragma: no cover - kappa_j < 1 always
        return ins, outs
    c = 1.01 / (1.0 - kap)  # 1 % safety against rounding: this only prunes the search
    eps = 1e-12 * (1.0 + float(np.max(phi)))
    A_out, A_in = float(np.max(A[outs])), float(np.max(A[ins]))
    ins = ins[phi[ins] < float(np.max(phi[outs])) + c * (A[ins] + A_out) ** 2 + eps]
    outs = outs[phi[outs] > float(np.min(phi[sel])) - c * (A_in + A[outs]) ** 2 - eps]
    return ins, outs


def heuristic_support(st: InterceptStats, k: int, warm: np.ndarray | None = None,
                      deadline: float | None = None) -> tuple[np.ndarray, float]:
    """Best of: top-k at the OLS fit (alternated, swapped) and the warm support (alternated,
    swapped)."""
    K = st.K
    kk = min(k, K)
    starts = [top_k_support(st, np.zeros(st.p), kk)]
    if warm is not None:
        wm = np.asarray(warm, dtype=bool).copy()
        if wm.sum() > kk:  # keep the kk with the largest phi at the warm fit
            _, b = st.f_support(wm)
            phi = st.w * (st.a - st.D @ b) ** 2
            phi[~wm] = -np.inf
            keep = np.argsort(-phi)[:kk]
            wm = np.zeros(K, dtype=bool)
            wm[keep] = True
        if wm.sum() < kk:  # fill with the largest phi outside
            _, b = st.f_support(wm)
            phi = st.w * (st.a - st.D @ b) ** 2
            phi[wm] = -np.inf
            add = np.argsort(-phi)[: kk - int(wm.sum())]
            wm[add] = True
        starts.insert(0, wm)
    best_sel, best_f = None, np.inf
    seen = set()
    for s0 in starts:
        key = s0.tobytes()
        if key in seen:
            continue
        seen.add(key)
        s1, _ = alternate(st, s0)
        key1 = b"a" + s1.tobytes()
        if key1 in seen:  # the same local search from the same support: the same result
            continue
        seen.add(key1)
        s2, f2 = swap_search(st, s1, deadline=deadline)
        if f2 < best_f:
            best_sel, best_f = s2, f2
    # the first start is always searched and its f (a Cholesky-based least-squares objective)
    # is finite, so it beats the initial inf
    assert best_sel is not None
    return best_sel, best_f
