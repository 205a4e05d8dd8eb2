"""Lower bound for crossed random intercepts: the row-wise perspective relaxation, made valid
for every value of the fixed effects by a cover of the fixed-effect space (issue 4, fifth round;
derivation in ``benchmarks/ENGINE.md`` section 8).

Problem (two intercept terms a and b, caps k_a and k_b):

    f* = min  F(w, gamma) = 1/2 ||y - Q w - A g_a - B g_b||^2 + mu/2 ||gamma||^2,
              ||g_a||_0 <= k_a, ||g_b||_0 <= k_b,

with the fixed effects in whitened coordinates (X_f = Q R, w = R beta, Q'Q = I).

**Bound at a fixed w.** Write rho = y - Q w and v_i = g_a[s(i)] + g_b[d(i)] for row i. With
indicators z, every feasible point has v_i = 0 unless z_s + z_d >= 1, so with
u_i = min(1, z_s + z_d) its objective equals
sum_i (rho_i^2/2 - rho_i v_i + v_i^2 / (2 u_i)) + sum_j mu g_j^2 / (2 z_j)  (0/0 := 0).
Fenchel-Young on each perspective term with multipliers lam_i and kappa = Z'(rho - lam), then
u_i <= theta_i + (1 - theta_i)(z_s + z_d) for any theta_i in [0, 1], give for every feasible
point and every (lam, theta)

    F >= D = 1/2 ||rho||^2 - 1/2 sum_i theta_i lam_i^2 - top_{k_a}(score_a) - top_{k_b}(score_b),
    score_j = 1/2 sum_{i in j} (1 - theta_i) lam_i^2 + kappa_j^2 / (2 mu).

The best (lam, theta) is the dual of a convex conic program (one 3-dimensional second-order cone
per row), solved by Clarabel; D is then recomputed in closed form, so the bound is valid however
accurately the solver stopped.

**All w at once.** Shifting lam rigidly, lam(w) = lam0 - Q (w - w0), keeps kappa fixed, so one
dual point gives a valid D(w) at every w (``RowDual``). For a box with centre c and half-widths h,
an optimum (w*, gamma*) with w* = Q'(y - Z gamma*) in the box satisfies
f* = F(c, gamma*) - 1/2 ||c - w*||^2 >= max_m D_m(c) - 1/2 ||h||^2 (F is quadratic in w with
identity Hessian). A box where no optimum can lie is also discarded by a trimmed least-squares
bound: at most ``C`` rows (the k_a largest plus the k_b largest clusters) carry a cluster effect.
The boxes start from a box that provably holds w* (``initial_box``) and are split best-first;
the relaxation is solved at a box's centre when the box is small and its bound still short of
the current target (two centres at a time, in threads; the choice of centres does not depend on
the number of threads).
"""

from __future__ import annotations

import heapq
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixmio.solvers.bnb.intercept import sum_smallest

MAX_FIXED = 3  # the cover is over the fixed-effect space: at most this many whitened columns
MAX_REFINE = 6  # extra targets tried between the last stage met and the first one missed
MAX_BOXES = 20_000  # open boxes; beyond this the relaxation is too weak to finish
MAX_ROWS = 100_000  # one cone per row: about 15 KB per row at peak (1.1 GiB on InstEval)
STAGES = (0.05, 0.01, 0.005, 0.002, 0.001)
CLOCK_MARGIN = 2.5  # seconds kept back from Clarabel's time limit, which does not count its
# set-up (1.4 s on InstEval) and may finish the iteration it is in (0.6 s)
TOL = 2e-4  # Clarabel's tolerances: the bound is recomputed in closed form anyway


def _topk(x: np.ndarray, k: int) -> float:
    """Sum of the k largest positive parts of x."""
    return -sum_smallest(-np.maximum(x, 0.0), k)


class CrossedData:
    """Whitened data of a crossed-intercept problem (y, Q, codes, sizes, caps, ridge)."""

    def __init__(self, Xf: np.ndarray, y: np.ndarray, codes: tuple, K: tuple, k: tuple,
                 mu: float):
        self.Q, self.R = np.linalg.qr(np.asarray(Xf, dtype=float))
        self.y = np.asarray(y, dtype=float)
        self.ca, self.cb = (np.asarray(c, dtype=np.int64) for c in codes)
        self.Ka, self.Kb = (int(x) for x in K)
        self.ka, self.kb = (int(x) for x in k)
        self.mu = float(mu)
        self.n = self.y.size
        self.na = np.bincount(self.ca, minlength=self.Ka).astype(float)
        self.nb = np.bincount(self.cb, minlength=self.Kb).astype(float)

    def w_of_beta(self, beta_f: np.ndarray) -> np.ndarray:
        return self.R @ np.asarray(beta_f, dtype=float)

    def coverage(self) -> int:
        """Most rows that selected clusters can cover."""
        top = np.sort(self.na)[::-1][: self.ka].sum() + np.sort(self.nb)[::-1][: self.kb].sum()
        return int(min(top, self.n))


class RowDual:
    """D(w) for one dual point (lam0, theta) taken at w0: a lower bound on
    min over capped gamma of F(w, gamma) at every w (module docstring)."""

    def __init__(self, data: CrossedData, w0: np.ndarray, lam0: np.ndarray, theta: np.ndarray):
        self.d, self.w0 = data, np.asarray(w0, dtype=float)
        self.lam0, self.theta = np.asarray(lam0, dtype=float), np.asarray(theta, dtype=float)
        r = data.y - data.Q @ self.w0 - self.lam0
        self.kap_a = 0.5 * np.bincount(data.ca, r, data.Ka) ** 2 / data.mu
        self.kap_b = 0.5 * np.bincount(data.cb, r, data.Kb) ** 2 / data.mu

    def __call__(self, w: np.ndarray) -> float:
        d = self.d
        shift = d.Q @ (np.asarray(w, dtype=float) - self.w0)
        lam = self.lam0 - shift
        rho = d.y - d.Q @ np.asarray(w, dtype=float)
        l2 = lam * lam
        base = 0.5 * float(rho @ rho) - 0.5 * float(np.sum(self.theta * l2))
        h = 0.5 * (1.0 - self.theta) * l2
        sa = np.bincount(d.ca, h, d.Ka) + self.kap_a
        sb = np.bincount(d.cb, h, d.Kb) + self.kap_b
        return base - _topk(sa, d.ka) - _topk(sb, d.kb)


class RowRelaxation:
    """The row-wise perspective relaxation of a crossed problem as Clarabel data (built once:
    only the linear objective depends on the fixed effects w).  ``solve(w)`` solves it with one
    Clarabel thread and returns the dual point as a ``RowDual`` with its closed-form value D(w)."""

    def __init__(self, data: CrossedData, tol: float = TOL):
        self.d, self.tol = data, tol
        d = data
        n, Ka, Kb = d.n, d.Ka, d.Kb
        K = Ka + Kb
        ca, cb = d.ca, Ka + d.cb
        # variables: g (K), z (K), t (n), u (n), q (K)
        og, oz, ot, ou, oq = 0, K, 2 * K, 2 * K + n, 2 * K + 2 * n
        self.nv = nv = 3 * K + 2 * n
        c = np.zeros(nv)
        c[ot:ot + n] = 0.5
        c[oq:oq + K] = 0.5 * d.mu
        self.c_base, self.og, self.K = c, og, K
        ar, ak = np.arange(n), np.arange(K)
        one_n, one_k = np.ones(n), np.ones(K)
        trip: list = []  # (row indices, column indices, values) blocks of A
        rhs: list = []
        r = 0

        def block(nrows, entries, b):
            nonlocal r
            for ri, ci, vi in entries:
                trip.append((r + ri, ci, vi))
            rhs.append(np.broadcast_to(np.asarray(b, dtype=float), (nrows,)))
            r += nrows

        block(n, [(ar, ou + ar, one_n)], 1.0)                                   # u <= 1
        block(n, [(ar, ou + ar, one_n), (ar, oz + ca, -one_n), (ar, oz + cb, -one_n)],
              0.0)                                                               # u <= za + zb
        block(K, [(ak, oz + ak, -one_k)], 0.0)                                  # z >= 0
        block(K, [(ak, oz + ak, one_k)], 1.0)                                   # z <= 1
        block(1, [(np.zeros(Ka, int), oz + np.arange(Ka), np.ones(Ka))], float(d.ka))
        block(1, [(np.zeros(Kb, int), oz + Ka + np.arange(Kb), np.ones(Kb))], float(d.kb))
        self.n_lin = r
        # row cones (t + u, 2 v, t - u), v = g_a + g_b; cluster cones (q + z, 2 g, q - z)
        t3 = 3 * ar
        block(3 * n, [(t3, ot + ar, -one_n), (t3, ou + ar, -one_n), (t3 + 1, og + ca, -2 * one_n),
                      (t3 + 1, og + cb, -2 * one_n), (t3 + 2, ot + ar, -one_n),
                      (t3 + 2, ou + ar, one_n)], 0.0)
        k3 = 3 * ak
        block(3 * K, [(k3, oq + ak, -one_k), (k3, oz + ak, -one_k), (k3 + 1, og + ak, -2 * one_k),
                      (k3 + 2, oq + ak, -one_k), (k3 + 2, oz + ak, one_k)], 0.0)
        rows, cols, vals = (np.concatenate(x) for x in zip(*trip, strict=True))
        self.A = sp.csc_matrix((vals, (rows, cols)), shape=(r, nv))
        self.b = np.concatenate(rhs)

    def _c(self, rho):
        d = self.d
        c = self.c_base.copy()
        c[self.og:self.og + self.K] = -np.concatenate([np.bincount(d.ca, rho, d.Ka),
                                                      np.bincount(d.cb, rho, d.Kb)])
        return c

    def solve(self, w: np.ndarray, time_limit: float | None = None) -> tuple[RowDual, dict]:
        import clarabel

        d, n = self.d, self.d.n
        w = np.asarray(w, dtype=float)
        rho = d.y - d.Q @ w
        c = self._c(rho)
        t0 = time.perf_counter()
        st = clarabel.DefaultSettings()
        st.verbose = False
        st.tol_gap_rel = st.tol_gap_abs = st.tol_feas = self.tol
        st.iterative_refinement_enable = False  # 25 s instead of 44 s per solve on InstEval
        st.max_threads = 1  # two solves side by side beat one solve on two threads
        st.presolve_enable = False  # (the settings the benchmarks were measured with)
        if time_limit is not None:
            st.time_limit = max(float(time_limit), 1e-3)
        cones = [clarabel.NonnegativeConeT(self.n_lin)] + \
            [clarabel.SecondOrderConeT(3)] * (n + self.K)
        sol = clarabel.DefaultSolver(sp.csc_matrix((self.nv, self.nv)), c, self.A, self.b,
                                     cones, st).solve()
        dz = np.asarray(sol.z)
        d1, d2 = np.abs(dz[:n]), np.abs(dz[n:2 * n])
        s = d1 + d2
        theta = np.divide(d1, s, out=np.zeros(n), where=s > 0)
        w1 = dz[self.n_lin + 3 * np.arange(n) + 1]
        best, best_val = None, -np.inf
        for lam in (2.0 * w1, -2.0 * w1):  # the sign convention of the cone dual
            cand = RowDual(d, w, lam, theta)
            val = cand(w)
            if np.isfinite(val) and val > best_val:
                best, best_val = cand, val
        if best is None:  # a failed solve still gives the (weak) bound lam = 0
            best = RowDual(d, w, np.zeros(n), np.zeros(n))
            best_val = best(w)
        info = dict(value=float(best_val), status=str(sol.status),
                    iterations=int(sol.iterations), seconds=time.perf_counter() - t0,
                    primal=float(sol.obj_val + 0.5 * rho @ rho))
        return best, info


def solve_rowwise(data: CrossedData, w: np.ndarray, tol: float = TOL,
                  time_limit: float | None = None) -> tuple[RowDual, dict]:
    """Solve the row-wise perspective relaxation once at fixed whitened fixed effects w."""
    return RowRelaxation(data, tol).solve(w, time_limit)


def initial_box(data: CrossedData, U: float, centre: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A box (centre, half-widths) that holds w* = Q'(y - Z gamma*) for every gamma* with
    objective <= U: ||Q'Z gamma|| <= ||Z|| ||gamma||, ||gamma||^2 <= 2U/mu and
    ||Z||^2 <= 2 max cluster size (Gershgorin on Z'Z).  Centred at ``centre`` if given."""
    zmax = 2.0 * max(data.na.max(initial=0.0), data.nb.max(initial=0.0))
    radius = np.sqrt(zmax * 2.0 * max(U, 0.0) / data.mu) + 1.0
    w_ls = data.Q.T @ data.y
    if centre is None:
        return w_ls, np.full(w_ls.size, radius)
    centre = np.asarray(centre, dtype=float)
    return centre, np.full(w_ls.size, radius + float(np.linalg.norm(centre - w_ls)))


class _Trimmed:
    """Box bound: at most C rows carry a cluster effect, so F >= 1/2 (sum of the n - C smallest
    per-row minimal squared residuals y_i - q_i'w over the box)."""

    def __init__(self, data: CrossedData):
        self.d, self.m = data, data.n - data.coverage()
        self.absQ = np.abs(data.Q)

    def __call__(self, c: np.ndarray, h: np.ndarray) -> float:
        if self.m <= 0:
            return 0.0
        d = self.d
        gap = np.maximum(np.abs(d.y - d.Q @ c) - self.absQ @ h, 0.0)
        return 0.5 * sum_smallest(gap * gap, self.m)


class _Cover:
    """The state of :func:`cover_bound`: the solved relaxations (their duals, points and
    values), the heap of open boxes and the counters reported in ``stats``."""

    def __init__(self, data: CrossedData, deadline, tol, workers):
        self.data, self.deadline, self.tol, self.workers = data, deadline, tol, workers
        self.duals: list[RowDual] = []
        self.solved: set = set()
        self.cache: dict = {}
        self.trimmed = _Trimmed(data)
        # counters here; solve_cover adds reached_gap (None or a float), seconds, ...
        self.stats: dict[str, Any] = dict(relaxations=0, relaxation_seconds=0.0, boxes=0)
        self.pts: list = []   # solved points and their exact dual values
        self.vals: list = []
        self.pending: list = []
        self.heap: list = []
        self.counter = 0

    @staticmethod
    def key(c):
        return tuple(np.round(c, 9))

    def dval(self, c):
        k = self.key(c)
        if k not in self.cache:
            self.cache[k] = max(dm(c) for dm in self.duals)
        return self.cache[k]

    def box_lb(self, c, h):
        lb = max(self.dval(c) - 0.5 * float(h @ h), self.trimmed(c, h))
        if self.pts:  # f* >= D(p) - 1/2 ||p - w*||^2 for a solved point p near the box
            P = np.asarray(self.pts)
            far = np.sum((np.abs(P - c) + h) ** 2, axis=1)
            lb = max(lb, float(np.max(np.asarray(self.vals) - 0.5 * far)))
        return lb

    def left(self):  # Clarabel may overrun its limit by an iteration and its post-processing
        return None if self.deadline is None else (self.deadline - time.perf_counter()
                                                   - CLOCK_MARGIN)

    def add(self, dm, info):
        self.duals.append(dm)
        self.solved.add(self.key(dm.w0))
        self.pts.append(dm.w0.copy())
        self.vals.append(info["value"])
        self.stats["relaxations"] += 1
        self.stats["relaxation_seconds"] += info["seconds"]

    def solve_batch(self, centres):
        data, tol = self.data, self.tol
        tl = self.left()
        if tl is not None and tl <= 0:
            return False
        if len(centres) == 1 or self.workers == 1:
            out = [solve_rowwise(data, c, tol, tl) for c in centres]
        else:
            with ThreadPoolExecutor(max_workers=self.workers) as ex:
                out = list(ex.map(lambda c: solve_rowwise(data, c, tol, tl), centres))
        for dm, info in out:
            self.add(dm, info)
        self.cache.clear()
        return True

    def push(self, lb, c, h):
        self.counter += 1
        heapq.heappush(self.heap, (lb, self.counter, c, h))

    def stage(self, U: float, T: float) -> bool:
        """Open boxes until every bound reaches the target T (or MAX_BOXES are open, or a
        relaxation at a box's own centre is below T); True when the clock ran out."""
        heap = self.heap
        while heap and heap[0][0] < T:
            if self.deadline is not None and time.perf_counter() > self.deadline:
                return True
            if len(heap) >= MAX_BOXES:
                break
            lb, _, c, h = heapq.heappop(heap)
            lb = max(lb, self.box_lb(c, h))  # a box keeps the bound proven for its parent
            if lb >= T:
                self.push(lb, c, h)
                continue
            if self.key(c) not in self.solved and 0.5 * float(h @ h) <= U - T:
                if not self.solve_at(U, T, lb, c, h):
                    return True
                continue
            if self.key(c) in self.solved and self.dval(c) < T:
                self.push(lb, c, h)
                break  # the relaxation at c itself is below this target
            j = int(np.argmax(h))
            h2 = h.copy()
            h2[j] *= 0.5
            for s in (-1.0, 1.0):
                c2 = c.copy()
                c2[j] += s * h2[j]
                self.counter += 1
                self.stats["boxes"] += 1
                heapq.heappush(heap, (max(lb, self.box_lb(c2, h2)), self.counter, c2, h2))
        return False

    def solve_at(self, U, T, lb, c, h) -> bool:
        """Solve the relaxation at the centre of box (c, h), with the pending start and the
        next box that also wants one, and put the box back; False when the clock ran out."""
        heap = self.heap
        batch = [(p_, None) for p_ in self.pending] + [(c, h)]
        self.pending = []
        for item in sorted(heap)[:64]:  # the next box that also wants a solve
            if len(batch) >= 2 or item[0] >= T:
                break
            ci, hi = item[2], item[3]
            if self.key(ci) not in self.solved and 0.5 * float(hi @ hi) <= U - T \
                    and self.box_lb(ci, hi) < T and self.key(ci) != self.key(c):
                batch.append((ci, hi))
        if not self.solve_batch([b[0] for b in batch]):
            self.push(lb, c, h)
            return False
        self.counter += 1
        heapq.heappush(heap, (max(lb, self.box_lb(c, h)), self.counter, c, h))
        return True


def cover_bound(data: CrossedData, U: float, w_start: np.ndarray, mip_gap: float,
                deadline: float | None, tol: float = TOL, workers: int | None = None,
                log=None, first=None, t0: float | None = None) -> tuple[float, dict]:
    """Best-first cover of the fixed-effect space; returns (valid lower bound on f*, stats).
    ``first``: optional ``(RowDual, info)`` pairs already solved (the engine starts them while
    its heuristic runs); ``w_start`` is solved with the first batch unless among them.  At most
    ``MAX_BOXES`` boxes are opened."""
    t_start = time.perf_counter()
    workers = max(1, min(2, os.cpu_count() or 1)) if workers is None else max(1, int(workers))
    cv = _Cover(data, deadline, tol, workers)
    stats = cv.stats
    w_start = np.asarray(w_start, dtype=float)
    for item in first or ():
        cv.add(*item)
    if cv.key(w_start) not in cv.solved:
        cv.pending.append(w_start)  # solved with the first box that asks for a relaxation
    if not cv.duals and not cv.solve_batch(cv.pending):
        stats.update(reached_gap=None, seconds=time.perf_counter() - t_start, open_boxes=0,
                     out_of_time=True)
        return -np.inf, stats
    if not first:
        cv.pending = []
    c0, h0 = initial_box(data, U, w_start)
    heap = cv.heap
    heap.append((cv.box_lb(c0, h0), cv.counter, c0, h0))
    stages = [g for g in STAGES if g > mip_gap] + [mip_gap]
    reached = None
    out_of_time = False
    refinements = 0
    while stages:
        g = stages.pop(0)
        T = U - g * abs(U)
        out_of_time = cv.stage(U, T)
        if out_of_time or len(heap) >= MAX_BOXES:
            break
        if heap and heap[0][0] < T:  # the relaxation stops short of g: aim between
            if reached is None or refinements >= MAX_REFINE or reached < 1.25 * g:
                break
            refinements += 1
            stages = [float(np.sqrt(reached * g))]
            continue
        reached = g
        if log is not None:
            log.append(("bound", time.perf_counter() - (t_start if t0 is None else t0),
                        min(b[0] for b in heap)))
    bound = min(b[0] for b in heap) if heap else U
    stats.update(reached_gap=reached, seconds=time.perf_counter() - t_start,
                 open_boxes=len(heap), out_of_time=out_of_time)
    return float(min(bound, U)), stats
