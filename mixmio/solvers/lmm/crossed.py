"""Crossed random intercepts ``(1 | a) + (1 | b)`` with a cap on each term (issue 4).

    minimize 1/2 ||y - X beta - A gamma_a - B gamma_b||^2 + mu/2 (||gamma_a||^2 + ||gamma_b||^2)
    s.t.     ||gamma_a||_0 <= k_a,  ||gamma_b||_0 <= k_b

Key reduction (exact): once the support S_b of the other term is fixed (or its cap dropped),
the problem is a single random-intercept problem in term a whose "fixed effects" are
[X | B_{S_b}] with a ridge on the B columns.  The intercept engine's statistics and branch and
bound carry over unchanged once the ridge on those columns is folded into the within-cluster
quadratic W (``pen_stats``).  Hence:

* heuristic: block coordinate descent (term a given gamma_b, term b given gamma_a, each by the
  intercept engine's swap search on the adjusted response) with a joint ridge refit on the two
  supports after every round;
* exact search when one term has few maximal supports (C(K_t, k_t) <= ``MAX_ENUM``): for every
  maximal support of that term, the other term's problem is solved by the intercept branch and
  bound; the bound is the minimum of the per-support bounds;
* otherwise, with at most ``_crossed_relax.MAX_FIXED`` fixed columns: the row-wise perspective
  relaxation, made valid for every value of the fixed effects by a best-first cover of their
  space (``_crossed_relax``; its first relaxation runs in a thread while the heuristic does);
* otherwise a valid lower bound: dropping either cap is a relaxation, so
  max(bound with k_b := K_b, bound with k_a := K_a) (each a single-term problem with the other
  term as dense ridge columns, bounded by the intercept branch and bound within the time left),
  and never worse than the dense ridge fit.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from mixmio.solvers.bnb.bestfirst import finish
from mixmio.solvers.bnb.intercept import BnB, hard_directions
from mixmio.solvers.lmm.stats import InterceptStats, heuristic_support

MAX_ENUM = 256
MAX_DENSE = 1500  # largest other term made dense in a relaxation (memory ~ K^2)


def pen_stats(Xf: np.ndarray, Zp, y: np.ndarray, codes: np.ndarray, K: int, mu: float,
              k: int) -> InterceptStats:
    """Random-intercept statistics (``_engine_stats.InterceptStats``) for fixed columns
    [Xf | Zp] where the Zp columns carry the ridge mu/2 ||.||^2 (Xf full column rank).

    With b0 the ridge fit of y on [Xf | Zp] and r0 = y - [Xf|Zp] b0, the objective of the shifted
    coefficients b' = b - b0 is  W(b') + 1/2 sum_out phi_j(b'),  W(b') = 1/2 sum_j (||r_j||^2 -
    w_j (1'r_j)^2) + mu/2 ||(b' + b0)_pen||^2  (r = r0 - X b'), so HW = X'X - D' diag(w) D +
    mu P, gW = X'r0 - D'(w a) - mu P b0, kW = 1/2 (r0'r0 - sum w a^2) + mu/2 ||P b0||^2."""
    n = y.size
    pf = Xf.shape[1]
    if Zp is None or Zp.shape[1] == 0:
        Xs = sp.csr_matrix(Xf)
        pz = 0
    else:
        Xs = sp.hstack([sp.csr_matrix(Xf), sp.csr_matrix(Zp)], format="csr")
        pz = Zp.shape[1]
    p = pf + pz
    pen = np.concatenate([np.zeros(pf), np.ones(pz)])
    XtX = np.asarray((Xs.T @ Xs).toarray())
    G = XtX + mu * np.diag(pen)
    cf = sla.cho_factor(G, lower=True, check_finite=False)
    b0 = sla.cho_solve(cf, np.asarray(Xs.T @ y).ravel(), check_finite=False)
    for _ in range(2):
        r0 = y - Xs @ b0
        b0 = b0 + sla.cho_solve(cf, np.asarray(Xs.T @ r0).ravel() - mu * pen * b0,
                                check_finite=False)
    r0 = y - Xs @ b0
    n_k = np.bincount(codes, minlength=K).astype(float)
    A = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(K, n))
    D = np.asarray((A @ Xs).toarray()).reshape(K, p)
    a = np.bincount(codes, weights=r0, minlength=K)
    w = 1.0 / (n_k + mu)
    Xtr = np.asarray(Xs.T @ r0).ravel()
    HW = XtX - (D.T * w) @ D + mu * np.diag(pen)
    gW = Xtr - D.T @ (w * a) - mu * pen * b0
    kW = 0.5 * (float(r0 @ r0) - float(np.sum(w * a * a))) + 0.5 * mu * float(np.sum(pen * b0**2))
    HW = 0.5 * (HW + HW.T)
    return InterceptStats(K=K, k=k, mu=mu, cols=np.arange(p), p_full=p, b_ols=b0, n_k=n_k, w=w,
                          a=a, D=D, HW=HW, gW=gW, kW=kW, rr=float(r0 @ r0), Xtr=Xtr, XtX=G,
                          wa=w * a, wa2=w * a * a)


class Crossed:
    def __init__(self, problem, caps):
        self.pr = problem
        ta, tb = problem.terms
        self.codes = (np.asarray(ta.codes, dtype=np.int64), np.asarray(tb.codes, dtype=np.int64))
        self.K = (int(ta.n_levels), int(tb.n_levels))
        self.k = tuple(self.K[i] if caps[(i, 0)] is None else min(caps[(i, 0)], self.K[i])
                       for i in range(2))
        self.mu = float(problem.ridge)
        X = np.asarray(problem.X, dtype=float)
        from mixmio.solvers.lmm.stats import full_rank_columns

        self.cols = full_rank_columns(X, X.T @ X)
        self.Xf = X[:, self.cols]
        Z = sp.csc_matrix(problem.Z)
        self.Zt = (Z[:, : self.K[0]], Z[:, self.K[0]:])
        self.y = np.asarray(problem.y, dtype=float)

    # ------------------------------------------------------------------ helpers
    def refit(self, Sa, Sb):
        """Joint ridge fit on supports (Sa, Sb): (objective, beta_f, ga, gb)."""
        Za, Zb = self.Zt
        ia, ib = np.flatnonzero(Sa), np.flatnonzero(Sb)
        M = sp.hstack([sp.csc_matrix(self.Xf), Za[:, ia], Zb[:, ib]], format="csc")
        pf = self.Xf.shape[1]
        pen = np.concatenate([np.zeros(pf), np.ones(ia.size + ib.size)])
        G = np.asarray((M.T @ M).toarray()) + self.mu * np.diag(pen)
        rhs = np.asarray(M.T @ self.y).ravel()
        cf = sla.cho_factor(G, lower=True, check_finite=False)
        x = sla.cho_solve(cf, rhs, check_finite=False)
        r = self.y - M @ x
        x = x + sla.cho_solve(cf, np.asarray(M.T @ r).ravel() - self.mu * pen * x,
                              check_finite=False)
        r = self.y - M @ x
        obj = 0.5 * float(r @ r) + 0.5 * self.mu * float(np.sum(pen * x * x))
        ga = np.zeros(self.K[0])
        gb = np.zeros(self.K[1])
        ga[ia] = x[pf: pf + ia.size]
        gb[ib] = x[pf + ia.size:]
        return obj, x[:pf], ga, gb

    def w_vector(self, beta_f, ga, gb):
        beta = np.zeros(self.pr.p)
        beta[self.cols] = beta_f
        return np.concatenate([beta, ga, gb])

    def block_step(self, t, g_other, S_t, deadline):
        """Best support of term t (intercept swap search) with the other term's effects fixed."""
        other = 1 - t
        y_adj = self.y - self.Zt[other] @ g_other
        st = pen_stats(self.Xf, None, y_adj, self.codes[t], self.K[t], self.mu, self.k[t])
        sel, _ = heuristic_support(st, self.k[t], S_t, deadline=deadline)
        return sel

    def heuristic(self, deadline=None, warm=None, max_rounds=50):
        """Best of block coordinate descent started on either term (and from ``warm``)."""
        starts = [(None, 0), (None, 1)] + ([(warm, 0)] if warm is not None else [])
        best = None
        for w0, first in starts:
            res = self._bcd(deadline, w0, first, max_rounds)
            if best is None or res[0] < best[0]:
                best = res
        return best

    def _bcd(self, deadline, warm, first, max_rounds):
        K = self.K
        S = [np.zeros(K[0], dtype=bool), np.zeros(K[1], dtype=bool)]
        if warm is not None:
            S = [warm[0].copy(), warm[1].copy()]
        g = [np.zeros(K[0]), np.zeros(K[1])]
        if warm is not None:
            _, _, g[0], g[1] = self.refit(S[0], S[1])
        best = None
        order = (first, 1 - first)
        for _ in range(max_rounds):
            for t in order:
                S[t] = self.block_step(t, g[1 - t], S[t] if S[t].any() else None, deadline)
                obj, bf, g[0], g[1] = self.refit(S[0], S[1])
            Sa, Sb, ga, gb = S[0], S[1], g[0], g[1]
            if best is not None and obj >= best[0] * (1 - 1e-10):
                if obj < best[0]:
                    best = (obj, Sa.copy(), Sb.copy(), bf, ga, gb)
                break
            best = (obj, Sa.copy(), Sb.copy(), bf, ga, gb)
            if deadline is not None and time.perf_counter() > deadline:
                break
        return best

    def sub_bound(self, t, S_other, U, mip_gap, time_limit, t0):
        """Solve term t's problem with the other term restricted to support S_other (dense
        ridge columns): (objective, bound, support of t, nodes, timed_out)."""
        other = 1 - t
        Zp = self.Zt[other][:, np.flatnonzero(S_other)]
        st = pen_stats(self.Xf, Zp, self.y, self.codes[t], self.K[t], self.mu, self.k[t])
        sel, f0 = heuristic_support(st, self.k[t], None)
        V = hard_directions(st)
        bnb = BnB(st, self.k[t], V)
        # prune against the global incumbent U when it is better than this subproblem's own
        sel, Us, bound, nodes, timed_out = _run_with_cutoff(bnb, sel, f0, U, mip_gap,
                                                             time_limit, t0)
        return Us, bound, sel, nodes, timed_out

    def ridge_bound(self):
        return self.refit(np.ones(self.K[0], dtype=bool), np.ones(self.K[1], dtype=bool))[0]


def _run_with_cutoff(bnb, sel, f0, U, mip_gap, time_limit, t0):
    """Run the intercept branch and bound with the pruning target from min(own incumbent, U).
    Nodes are closed once their bound reaches that value, so the returned bound is valid for
    min(subproblem optimum, U), which is all the caller needs (the global optimum is <= U)."""
    if U < f0:
        sel_s, U_s, bound, nodes, timed_out = bnb.run(sel, U, mip_gap, time_limit, t0)
        if U_s < U:
            return sel_s, U_s, bound, nodes, timed_out
        return sel, f0, bound, nodes, timed_out
    return bnb.run(sel, f0, mip_gap, time_limit, t0)


def _cover_start(cr, counts, deadline):
    """Start the certificate's first relaxation (at the least-squares fixed effects) in a
    thread, so that it runs while the heuristic does.  None when the certificate does not apply:
    more than ``MAX_FIXED`` fixed columns (the cover is over their space), more than
    ``MAX_ROWS`` rows (memory), or no Clarabel."""
    from concurrent.futures import ThreadPoolExecutor

    from mixmio.solvers.lmm import crossed_relax as cx

    if not (0 < cr.Xf.shape[1] <= cx.MAX_FIXED) or cr.y.size > cx.MAX_ROWS or cr.mu <= 0:
        return None  # (the dual's kappa^2 / (2 mu) needs a positive ridge)
    if min(counts) <= MAX_ENUM:  # the exact enumeration path runs instead
        return None
    try:
        import clarabel  # noqa: F401
    except ImportError:  # pragma: no cover - clarabel ships with cvxpy
        return None
    data = cx.CrossedData(cr.Xf, cr.y, cr.codes, cr.K, cr.k, cr.mu)
    w0 = data.Q.T @ data.y
    left = None if deadline is None else max(deadline - time.perf_counter() - cx.CLOCK_MARGIN,
                                             1e-3)
    ex = ThreadPoolExecutor(max_workers=1)
    fut = ex.submit(cx.solve_rowwise, data, w0, cx.TOL, left)
    ex.shutdown(wait=False)
    return data, w0, fut


def _cover_bound(started, U, beta_f, mip_gap, deadline, log, t0):
    """The cover, centred at the incumbent's fixed effects, with the first relaxation (at
    the least-squares ones) taken from the thread started by ``_cover_start``."""
    from concurrent.futures import ThreadPoolExecutor

    from mixmio.solvers.lmm import crossed_relax as cx

    data, _, fut = started
    w_inc = data.w_of_beta(beta_f)
    first = []
    if not fut.done():  # use the idle core: the relaxation at the incumbent's fixed effects
        left = None if deadline is None else max(
            deadline - time.perf_counter() - cx.CLOCK_MARGIN, 1e-3)
        with ThreadPoolExecutor(max_workers=1) as ex:
            first.append(ex.submit(cx.solve_rowwise, data, w_inc, cx.TOL, left).result())
    first.insert(0, fut.result())
    return cx.cover_bound(data, U, w_inc, mip_gap, deadline, log=log, first=first, t0=t0)


def _spend_time(items, run, is_open, pick, deadline) -> tuple[bool, int]:
    """Run every item once with an even share of the time left, then, while some item is
    still open and time remains, run ``pick(open items)`` again with twice its last budget
    (at least 0.05 s) or all the time left.  ``run(item, seconds or None)`` does the work.
    So one slow sub-search cannot end a fit early with time to spare, and a longer limit only
    gives more runs.  Returns (timed_out, reruns)."""
    budget = {}
    for i, item in enumerate(items):
        left = None if deadline is None else max(deadline - time.perf_counter(), 0.0) / (
            len(items) - i)
        run(item, left)
        budget[item] = np.inf if left is None else left
    reruns = 0
    while True:
        opened = [item for item in items if is_open(item)]
        if not opened:
            return False, reruns
        rest = np.inf if deadline is None else deadline - time.perf_counter()
        if rest <= 1e-3:
            return True, reruns
        item = pick(opened)
        budget[item] = min(rest, max(2.0 * budget[item], 0.05))
        run(item, budget[item])
        reruns += 1


def _enumerate_supports(cr, t, supports, inc, mip_gap, deadline, problem):
    """Bound every maximal support S of the other term by term t's branch and bound; the bound
    is the least per-support bound.  ``inc`` = [U, Sa, Sb, beta, ga, gb] is updated in place.

    With a deadline, the first pass gives each support an even share of the time left; then,
    while time remains, the support with the weakest open bound (the one that sets the global
    bound) is searched again from the current incumbent with twice its last budget, or all the
    time left.  So a slow sub-search does not end the fit early while time remains (issue 18:
    an even split alone stopped after 4 s of 60 with a 27% gap), and a longer limit can only
    raise each support's bound.  Each rerun's bound and the earlier ones are all valid for the
    support (each is <= min(its minimum, the incumbent then)), so the largest is kept.

    Returns (bound, nodes, timed_out, reruns)."""
    from mixmio.solvers.solution import gap_scale, relative_gap

    other = 1 - t
    bounds = np.full(len(supports), -np.inf)
    finished = np.zeros(len(supports), dtype=bool)
    scale = gap_scale(problem)
    nodes = 0

    def run(i, left):
        nonlocal nodes
        S = np.zeros(cr.K[other], dtype=bool)
        S[list(supports[i])] = True
        Us, bnd, sel, nd, to = cr.sub_bound(t, S, inc[0], mip_gap, left, time.perf_counter())
        nodes += nd
        bounds[i] = max(bounds[i], bnd)
        finished[i] = not to
        if Us < inc[0]:
            Sa2, Sb2 = (sel, S) if t == 0 else (S, sel)
            obj, bf2, ga2, gb2 = cr.refit(Sa2, Sb2)
            if obj < inc[0]:
                inc[:] = [obj, Sa2, Sb2, bf2, ga2, gb2]

    def is_open(i):
        return not finished[i] and relative_gap(inc[0], min(bounds[i], inc[0]), scale) > mip_gap

    # the weakest open support sets the global bound: search it again first
    timed_out, reruns = _spend_time(range(len(supports)), run, is_open,
                                    lambda opened: min(opened, key=lambda j: bounds[j]),
                                    deadline)
    return float(min(bounds.min(), inc[0])), nodes, timed_out, reruns


def _n_supports(K, k):
    return math.comb(K, min(k, K))


def _warm_supports(problem, warm, K, k):
    """The supports (Sa, Sb) of the two terms in a warm start (a Solution, or w over all
    coefficients or over Z's columns), or None without one or when it breaks a cap."""
    wS = None
    if warm is not None:
        w = np.asarray(warm.w if hasattr(warm, "w") else warm)
        w = w[problem.p:] if w.size == problem.p + K[0] + K[1] else w
        nz = w != 0
        Sa, Sb = nz[: K[0]].copy(), nz[K[0]:].copy()
        if Sa.sum() <= k[0] and Sb.sum() <= k[1]:
            wS = (Sa, Sb)
    return wS


def solve_crossed(problem, caps, time_limit, mip_gap, warm, log, t0):
    from itertools import combinations

    cr = Crossed(problem, caps)
    deadline = None if time_limit is None else t0 + time_limit
    K, k = cr.K, cr.k
    wS = _warm_supports(problem, warm, K, k)
    counts = [_n_supports(K[1], k[1]), _n_supports(K[0], k[0])]  # enumerate term 1-t -> solve t
    started = _cover_start(cr, counts, deadline)
    best = cr.heuristic(deadline=deadline, warm=wS)
    U, Sa, Sb, bf, ga, gb = best
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, U))
    t = int(np.argmin(counts))  # term solved by branch and bound
    other = 1 - t
    nodes = 0
    timed_out = False
    info = {"structure": "crossed", "caps": k}
    if counts[t] <= MAX_ENUM:
        supports = list(combinations(range(K[other]), min(k[other], K[other])))
        inc = [U, Sa, Sb, bf, ga, gb]
        bound, nodes, timed_out, reruns = _enumerate_supports(cr, t, supports, inc, mip_gap,
                                                              deadline, problem)
        U, Sa, Sb, bf, ga, gb = inc
        info["method"] = f"enumerated {len(supports)} supports of term {other}"
        info["reruns"] = reruns
    else:
        bound = cr.ridge_bound()
        info["ridge_bound"] = bound
        cover = None if started is None else _cover_bound(started, U, bf, mip_gap, deadline,
                                                          log, t0)
        if cover is not None:
            cbound, cstats = cover
            info["cover_bound"] = cbound
            info["cover"] = cstats
            bound = max(bound, min(cbound, U))
            w = cr.w_vector(bf, ga, gb)
            info.update(method="row-wise perspective relaxation over a fixed-effect cover",
                        support=np.flatnonzero(w[problem.p:] != 0), heuristic_objective=best[0])
            return finish(problem, w, bound, mip_gap, bool(cstats["out_of_time"]), t0, nodes,
                          "mixmio-bnb", info, log=log,
                          reason="the certificate stopped at the row-wise relaxation's own gap")
        terms = [tt for tt in (0, 1) if K[1 - tt] <= MAX_DENSE]  # (dense other columns)
        rb = {tt: -np.inf for tt in terms}
        done = dict.fromkeys(terms, False)

        def relax(tt, left):
            nonlocal nodes
            if left is not None and left <= 1e-3:  # out of time: building it costs seconds
                return
            S = np.ones(K[1 - tt], dtype=bool)
            _, bnd, _, nd, to = cr.sub_bound(tt, S, U, mip_gap, left, time.perf_counter())
            nodes += nd
            rb[tt] = max(rb[tt], bnd)  # every run's bound is valid: keep the largest
            done[tt] = not to or rb[tt] >= U

        # the bound is the larger of the two: an unfinished one with the larger bound first
        timed_out, _ = _spend_time(terms, relax, lambda tt: not done[tt],
                                   lambda opened: max(opened, key=lambda v: rb[v]), deadline)
        for tt in terms:
            info[f"relaxed_bound_{tt}"] = rb[tt]
            bound = max(bound, min(rb[tt], U))
        info["method"] = "relaxations (one cap dropped at a time)"
        # no exact search applies: a gap left with time to spare is the relaxations' own
        # (gap_limit with this reason), not the clock's
        reason = ("no exact search applies to these caps (too many supports of either term for "
                  "enumeration, no fixed-effect cover); the bound is the best of the "
                  "relaxations that drop one cap")
        w = cr.w_vector(bf, ga, gb)
        info.update(support=np.flatnonzero(w[problem.p:] != 0), heuristic_objective=best[0])
        return finish(problem, w, bound, mip_gap, timed_out, t0, nodes, "mixmio-bnb", info,
                      log=log, reason=reason)
    w = cr.w_vector(bf, ga, gb)
    info.update(support=np.flatnonzero(w[problem.p:] != 0), heuristic_objective=best[0])
    return finish(problem, w, bound, mip_gap, timed_out, t0, nodes, "mixmio-bnb", info, log=log)
