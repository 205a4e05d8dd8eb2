"""The exact MINLP route of :func:`mixmio.mio_glmer` through SCIP (pyscipopt), for every model.

Any random terms (intercepts, slopes, several terms), sign caps, fixed-effect caps and every
indicator row (ForceInclude / Exclude, JointClusterSelection, groups).  The model:

- rows are grouped: rows with the same design row (binomial: and the same offset) share one
  linear predictor ``e_g`` and one convex term.  Poisson: ``sum_i w_i exp(a'w + off_i)
  = exp(e_g)`` with ``e_g = a'w + log sum_i w_i e^{off_i}``; binomial: ``N_g softplus(e_g)``
  with ``e_g = a'w + off``.  The linear part ``-Y_g e_g`` goes into the objective; the convex
  part through an epigraph ``t_g``: ``exp(e_g) <= t_g`` (poisson) or
  ``exp(-t_g) + exp(e_g - t_g) <= 1`` (binomial, ``t_g >= log(1 + e^{e_g})`` as a sum of
  exponentials SCIP recognises as convex);
- the ridge ``ridge/2 sum_j w_j^2`` through ``w_j^2 <= s_j`` (uncapped penalised columns) and
  the perspective ``w_j^2 <= s_j z_j`` for capped ones (a rotated cone; it also forces
  ``w_j = 0`` when ``z_j = 0``);
- valid big-M links ``|w_j| <= M z_j`` from the level set of a feasible value ``U`` (the
  warm start or the start heuristic's): every row loss is >= 0, so at any optimum
  ``ridge/2 w_j^2 <= U - L0`` with ``L0`` the sum of the groups' least losses, and every group
  loss is at most ``U - (L0 - its least loss)``, which bounds ``e_g`` to an interval.  Capped
  unpenalised columns (none in mio_glmer's problems) get SCIP indicator constraints instead;
  without a feasible start every link is an indicator constraint and no interval is used;
- sign caps: ``u_j + v_j <= z_j``, ``w_j <= M u_j``, ``-w_j <= M v_j``, ``sum u <= k_pos``,
  ``sum v <= k_neg`` (indicator constraints when M is unknown); caps and rows are linear on z.

SCIP's feasibility tolerance leaves its primal slightly inexact: the final support is refitted
by an exact Newton fit (signs kept), and the better of that fit and SCIP's own point cleaned to
its support is returned.  ``objective`` is ``problem.objective(w)``; ``best_bound`` is SCIP's
dual bound in the same scale, never above the objective; the status comes from
:func:`~mixmio.solvers.solution.certified_status` (SCIP is asked for half of ``mip_gap``).
"""

from __future__ import annotations

import operator
import time

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from mixmio.problem import family as fam
from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

__all__ = ["solve_scip"]
#: extra SCIP parameters applied to every model (for experiments; empty by default)
_SCIP_PARAMS: dict = {}
_SENSE = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


# ---------------------------------------------------------------------------------------------
# exact arithmetic on the problem
# ---------------------------------------------------------------------------------------------
def _nll(family: str, eta: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    if family == "binomial":
        return w * np.logaddexp(0.0, eta) - y * eta
    return w * (np.exp(eta) - y * eta)


class _Exact:
    """F(w) with the documented losses and the support fits of the polish and the start."""

    def __init__(self, problem: GlmmProblem):
        self.pb = problem
        self.family = problem.family
        self.D = sp.hstack([sp.csc_matrix(problem.X), sp.csc_matrix(problem.Z)],
                           format="csc")
        self.cap = np.asarray(problem.capped, dtype=int)
        self.Dcap = self.D[:, self.cap].tocoo()
        self.y = np.asarray(problem.y, dtype=float)
        self.wt = np.asarray(problem.weights, dtype=float)
        self.off = np.asarray(problem.offset, dtype=float)
        self.const = float(np.sum(fam.saturated(self.family, self.y, self.wt)))
        self.pen = np.asarray(problem.penalized, dtype=bool)
        self.ridge = float(problem.ridge)

    def value(self, w: np.ndarray) -> float:
        eta = self.D @ w + self.off
        loss = float(np.sum(_nll(self.family, eta, self.y, self.wt))) - self.const
        return loss + 0.5 * self.ridge * float(w[self.pen] @ w[self.pen])

    def fit(self, cols: np.ndarray, tol: float = 1e-14, max_iter: int = 100
            ) -> tuple[np.ndarray, float]:
        """Damped Newton on the columns ``cols`` (the others zero): (w, F(w))."""
        cols = np.asarray(cols, dtype=int)
        Dc = self.D[:, cols].toarray()
        rid = self.ridge * self.pen[cols].astype(float)
        w = np.zeros(self.D.shape[1])
        v = np.zeros(cols.size)
        fv = self.value(w)
        for _ in range(max_iter):
            eta = Dc @ v + self.off
            g1, g2 = fam.derivatives(self.family, eta, self.y, self.wt)
            grad = Dc.T @ g1 + rid * v
            H = Dc.T @ (g2[:, None] * Dc)
            H[np.diag_indices_from(H)] += rid
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(H, grad, rcond=None)[0]
            dec = float(grad @ step)
            if not np.isfinite(dec) or dec <= tol * max(1.0, abs(fv)):
                break
            t = 1.0
            while t > 1e-10:
                w_try = np.zeros_like(w)
                w_try[cols] = v - t * step
                f_try = self.value(w_try)
                if f_try <= fv - 0.3 * t * dec:
                    break
                t *= 0.5
            else:
                break
            v, fv = v - t * step, f_try
        w[cols] = v
        return w, fv


# ---------------------------------------------------------------------------------------------
# indicator bookkeeping: closure under equality rows, feasibility, sign-consistent fits
# ---------------------------------------------------------------------------------------------
class _Rows:
    """Caps, sign caps and rows of the problem over the capped coefficients."""

    def __init__(self, problem: GlmmProblem):
        self.pb = problem
        self.cap = np.asarray(problem.capped, dtype=int)
        self.n_coef = problem.n_coef
        parent = {int(j): int(j) for j in self.cap}

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        self.forced, self.excluded = set(), set()
        for r in problem.constraints:
            idx, coef = r.index, r.coef
            if idx.size == 2 and r.sense == "==" and r.rhs == 0 and coef[0] == -coef[1] != 0:
                parent[find(int(idx[0]))] = find(int(idx[1]))
            elif idx.size == 1 and coef[0] > 0:
                lo = r.rhs / coef[0]
                if r.sense in (">=", "==") and lo > 0:
                    self.forced.add(int(idx[0]))
                if r.sense in ("<=", "==") and lo < 1:
                    self.excluded.add(int(idx[0]))
        groups: dict[int, list[int]] = {}
        for j in parent:
            groups.setdefault(find(j), []).append(j)
        self.closure = {j: groups[find(j)] for j in parent}
        self.sign_sets = {id(sc): set(np.asarray(sc.index, int).tolist())
                          for sc in problem.sign_caps}

    def feasible_z(self, z: np.ndarray) -> bool:
        zz = np.zeros(self.n_coef)
        zz[z] = 1.0
        if not all(np.count_nonzero(zz[c.index]) <= c.k for c in self.pb.caps):
            return False
        return all(r.satisfied(zz > 0) for r in self.pb.constraints)

    def base_z(self) -> np.ndarray:
        """The forced columns and their closure (bool over w)."""
        z = np.zeros(self.n_coef, dtype=bool)
        for j in self.forced:
            z[self.closure[j]] = True
        return z

    def can_add(self, z: np.ndarray, j: int, w: np.ndarray, sign: float) -> bool:
        """Whether z plus j's closure keeps the caps, the '<=' rows with non-negative
        coefficients and (with w's signs and ``sign`` for j) the sign caps."""
        if z[j] or any(i in self.excluded for i in self.closure[j]):
            return False
        cand = z.copy()
        cand[self.closure[j]] = True
        if not self._partial_ok(cand):
            return False
        for sc in self.pb.sign_caps:
            if j in self.sign_sets[id(sc)]:
                v = w[sc.index]
                if sign > 0 and np.count_nonzero(v > 0) >= sc.k_pos:
                    return False
                if sign < 0 and np.count_nonzero(v < 0) >= sc.k_neg:
                    return False
        return True

    def _partial_ok(self, z: np.ndarray) -> bool:
        zz = z.astype(float)
        if not all(np.count_nonzero(z[c.index]) <= c.k for c in self.pb.caps):
            return False
        for r in self.pb.constraints:
            if r.sense == "<=" and np.all(r.coef >= 0) and not r.satisfied(zz > 0):
                return False
        return True

    def signs_ok(self, w: np.ndarray) -> bool:
        for sc in self.pb.sign_caps:
            v = w[sc.index]
            if np.count_nonzero(v > 0) > sc.k_pos or np.count_nonzero(v < 0) > sc.k_neg:
                return False
        return True


def _support_fit(ex: _Exact, rows: _Rows, S: np.ndarray, signs: np.ndarray | None = None
                 ) -> tuple[np.ndarray, float]:
    """Exact fit on support S (bool over w; the uncapped columns always in) meeting the sign
    caps: sign-capped columns whose fitted sign leaves ``signs`` (default: the first fit's)
    are dropped one at a time until the sign caps hold."""
    free = np.ones(ex.D.shape[1], dtype=bool)
    free[rows.cap] = False
    S = np.asarray(S, dtype=bool).copy()
    w, val = ex.fit(np.flatnonzero(S | free))
    if not rows.pb.sign_caps:
        return w, val
    if signs is None:
        signs = np.sign(w)
    capped_sign = np.zeros(S.size, dtype=bool)
    for sc in rows.pb.sign_caps:
        capped_sign[sc.index] = True
    while not rows.signs_ok(w):
        bad = np.flatnonzero(S & capped_sign & (np.sign(w) != signs))
        if bad.size == 0:
            bad = np.flatnonzero(S & capped_sign)
        S[bad[np.argmin(np.abs(w[bad]))]] = False
        w, val = ex.fit(np.flatnonzero(S | free))
    return w, val


def _warm_mask(warm, n_coef: int) -> np.ndarray | None:
    if warm is None or warm is False:
        return None
    if isinstance(warm, Solution):
        z = warm.z
        if z is not None and np.asarray(z).shape == (n_coef,):
            return np.asarray(z, dtype=bool)
        if warm.w is None or not np.all(np.isfinite(warm.w)):
            return None
        return np.asarray(warm.w) != 0
    mask = np.asarray(warm, dtype=bool)
    if mask.shape != (n_coef,):
        raise ValueError(f"warm must be a Solution or a bool mask of length {n_coef}")
    return mask


def _scores(ex: _Exact, w: np.ndarray, iters: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(direction, gain) of freeing each capped column alone at w: the exact decrease of F
    along that coordinate (others fixed), by a safeguarded 1-D Newton run on every column
    at once; zeros for columns already non-zero."""
    eta = ex.D @ w + ex.off
    r, c, v = ex.Dcap.row, ex.Dcap.col, ex.Dcap.data
    ncap = ex.cap.size
    y, wt = ex.y[r], ex.wt[r]
    rid = ex.ridge * ex.pen[ex.cap]
    base = _nll(ex.family, eta[r], y, wt)
    gam = np.zeros(ncap)
    for _ in range(iters):
        e = eta[r] + v * gam[c]
        d1, d2 = fam.derivatives(ex.family, e, y, wt)
        g = np.bincount(c, v * d1, ncap) + rid * gam
        h = np.bincount(c, v * v * d2, ncap) + rid
        step = np.clip(g / np.maximum(h, 1e-300), -2.0, 2.0)
        gam -= step
        if np.max(np.abs(step), initial=0.0) < 1e-10:
            break
    e = eta[r] + v * gam[c]
    gain = -(np.bincount(c, _nll(ex.family, e, y, wt) - base, ncap) + 0.5 * rid * gam ** 2)
    free = w[ex.cap] == 0
    out_dir, out_gain = np.zeros(w.size), np.zeros(w.size)
    out_dir[ex.cap] = np.where(free, np.sign(gam), 0.0)
    out_gain[ex.cap] = np.where(free, gain, 0.0)
    return out_dir, out_gain


def _best_addition(ex: _Exact, rows: _Rows, z, w, val, skip=(), tries: int = 3):
    """The best of the ``tries`` top-scored feasible additions to z (exact fits), as
    (z, w, val), or None when none improves on ``val``."""
    direction, score = _scores(ex, w)
    order = rows.cap[np.argsort(-score[rows.cap], kind="stable")]
    best, n = None, 0
    for j in order:
        if n >= tries or score[j] <= 1e-12 * max(1.0, abs(val)):
            break
        j = int(j)
        if j in skip or not rows.can_add(z, j, w, direction[j]):
            continue
        n += 1
        zc = z.copy()
        zc[rows.closure[j]] = True
        wc, vc = _support_fit(ex, rows, zc)
        if vc < val - 1e-12 * max(1.0, abs(val)) and (best is None or vc < best[2]):
            best = (zc, wc, vc)
    return best


def _local_search(ex: _Exact, rows: _Rows, z: np.ndarray, max_rounds: int = 3):
    """Greedy forward selection from z, then passes of single swaps: (w, z, F)."""
    w, val = _support_fit(ex, rows, z)
    while True:
        nxt = _best_addition(ex, rows, z, w, val)
        if nxt is None:
            break
        z, w, val = nxt
    for _ in range(max_rounds):
        improved = False
        for jj in np.flatnonzero(z):
            j = int(jj)
            if not z[j] or any(i in rows.forced for i in rows.closure[j]):
                continue
            zr = z.copy()
            zr[rows.closure[j]] = False
            wr, vr = _support_fit(ex, rows, zr)
            nxt = _best_addition(ex, rows, zr, wr, vr, skip=set(rows.closure[j]))
            if nxt is not None and nxt[2] < val - 1e-12 * max(1.0, abs(val)):
                z, w, val = nxt
                improved = True
        if not improved:
            break
    return w, z, val


def _start(ex: _Exact, rows: _Rows, warm) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(w, z, F) of a feasible start: the better of the warm support (if feasible) and a
    greedy forward selection with swaps from the forced columns; None when neither gives a
    feasible z (then the model uses indicator constraints and no level-set bounds)."""
    cands = []
    mask = _warm_mask(warm, ex.D.shape[1])
    if mask is not None:
        z = np.zeros(mask.size, dtype=bool)
        z[rows.cap] = mask[rows.cap]
        z |= rows.base_z()
        if rows.feasible_z(z):
            w, val = _support_fit(ex, rows, z)
            cands.append((w, z, val))
    z0 = rows.base_z()
    if rows.feasible_z(z0) or not cands:
        w, z, val = _local_search(ex, rows, z0 if not cands else cands[0][1])
        if rows.feasible_z(z):
            cands.append((w, z, val))
    return min(cands, key=lambda c: c[2]) if cands else None


# ---------------------------------------------------------------------------------------------
# row groups and level-set intervals
# ---------------------------------------------------------------------------------------------
def _groups(ex: _Exact):
    """(A, lin_off, N, Y, c): group design rows A (csr), e_g = A w + lin_off, group loss
    N t(e) - Y e + c (t = softplus or exp), the sum over groups being F's loss part."""
    keep = ex.wt > 0
    D = ex.D.tocsr()[keep]
    y, wt, off = ex.y[keep], ex.wt[keep], ex.off[keep]
    keys: dict = {}
    gid = np.empty(D.shape[0], dtype=int)
    for i in range(D.shape[0]):
        lo, hi = D.indptr[i], D.indptr[i + 1]
        key: tuple = (D.indices[lo:hi].tobytes(), D.data[lo:hi].tobytes())
        if ex.family == "binomial":
            key += (float(off[i]),)
        gid[i] = keys.setdefault(key, len(keys))
    G = len(keys)
    first = np.full(G, -1)
    for i in range(D.shape[0] - 1, -1, -1):
        first[gid[i]] = i
    A = D[first]
    sat = fam.saturated(ex.family, y, wt)
    N: np.ndarray  # float counts (bincount with weights)
    if ex.family == "binomial":
        N = np.bincount(gid, wt, G)
        Y = np.bincount(gid, y, G)
        lin_off = off[first]
        c = -np.bincount(gid, sat, G)
    else:
        C = np.bincount(gid, wt * np.exp(off), G)
        Y = np.bincount(gid, wt * y, G)
        N = np.ones(G)
        lin_off = np.log(C)
        c = Y * lin_off - np.bincount(gid, wt * y * off, G) - np.bincount(gid, sat, G)
    return A, lin_off, N, Y, c


def _phi(family, e, N, Y, c):
    t = np.logaddexp(0.0, e) if family == "binomial" else np.exp(np.minimum(e, 700.0))
    return N * t - Y * e + c


def _least(family, N, Y, c) -> np.ndarray:
    """The least value of every group loss (0 where its infimum is at infinity)."""
    if family == "binomial":
        frac = np.clip(Y / N, 1e-300, 1.0)
        inner = (Y > 0) & (Y < N)
        e = np.where(inner, np.log(frac) - np.log1p(-np.minimum(frac, 1 - 1e-16)), 0.0)
    else:
        inner = Y > 0
        e = np.where(inner, np.log(np.maximum(Y, 1e-300)), 0.0)
    val = np.where(inner, _phi(family, e, N, Y, c), 0.0)
    # the infimum at infinity is the constant c + limit, >= 0; use 0 (valid lower bound)
    return np.maximum(val, 0.0)


def _interval(family, N, Y, c, R, e0) -> tuple[float, float]:
    """An interval containing {e : phi(e) <= R}, phi convex with phi(e0) <= R."""
    out = []
    for sgn in (-1.0, 1.0):
        # unbounded side: the loss tends to a finite limit
        if family == "binomial" and ((sgn < 0 and Y <= 0) or (sgn > 0 and Y >= N)):
            out.append(sgn * np.inf)
            continue
        if family == "poisson" and sgn < 0 and Y <= 0:
            out.append(-np.inf)
            continue
        inside, d = e0, 1.0
        outside = e0 + sgn * d
        while _phi(family, outside, N, Y, c) <= R:
            inside, d = outside, 2.0 * d
            outside = e0 + sgn * d
            if d > 1e6:
                outside = sgn * np.inf
                break
        if np.isfinite(outside):
            for _ in range(80):
                mid = 0.5 * (inside + outside)
                if _phi(family, mid, N, Y, c) <= R:
                    inside = mid
                else:
                    outside = mid
        out.append(outside + sgn * (1e-6 + 1e-9 * abs(outside)) if np.isfinite(outside)
                   else outside)
    return out[0], out[1]


def _perspective_points(M: float) -> np.ndarray:
    """Tangent points a of the perspective cuts: +-0.05 * 2^i up to the bound M."""
    top = min(M, 64.0) if np.isfinite(M) else 64.0
    pos = 0.05 * 2.0 ** np.arange(int(np.floor(np.log2(max(top / 0.05, 1.0)))) + 1)
    return np.concatenate([-pos[::-1], pos])


TANGENTS_E = np.array([-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0])


def _tangent_points(e0: float, lo: float, hi: float) -> np.ndarray:
    pts = e0 + TANGENTS_E
    return np.unique(np.clip(pts, max(lo, -30.0), min(hi, 30.0)))


# ---------------------------------------------------------------------------------------------
# the SCIP model
# ---------------------------------------------------------------------------------------------
def _build(problem: GlmmProblem, ex: _Exact, rows: _Rows, start, verbose: bool):
    from pyscipopt import Model, quicksum

    A, lin_off, N, Y, c = _groups(ex)
    n_coef = problem.n_coef
    cap = rows.cap
    is_cap = np.zeros(n_coef, dtype=bool)
    is_cap[cap] = True
    pen = ex.pen
    ridge = ex.ridge
    M, e_lo, e_hi, e0 = _start_bounds(problem, A, lin_off, N, Y, c, pen, ridge, start)

    m = Model("mio_glmer")
    m.hideOutput(not verbose)
    inf = m.infinity()

    def fin(x):
        return x if np.isfinite(x) else (inf if x > 0 else -inf)

    w = [m.addVar(f"w{j}", lb=fin(-M[j]), ub=fin(M[j])) for j in range(n_coef)]
    z = {int(j): m.addVar(f"z{j}", vtype="B") for j in cap}
    # ridge: w_j^2 <= s_j, and for capped columns the perspective tangents
    # s_j >= 2 a w_j - a^2 z_j (valid: z_j = 0 forces w_j = 0)
    s = {}
    for jj in np.flatnonzero(pen):
        j = int(jj)
        ub = M[j] ** 2 * (1 + 1e-9) if np.isfinite(M[j]) else None
        s[j] = m.addVar(f"s{j}", lb=0.0, ub=ub)
        m.addCons(w[j] * w[j] <= s[j], name=f"ridge{j}")
        if j in z:
            for a in _perspective_points(M[j]):
                m.addCons(s[j] >= 2.0 * a * w[j] - a * a * z[j])
    sign_vars = _add_selection(m, problem, M, w, z)
    A = A.tocsr()
    e_vars, t_vars, obj = _add_losses(m, problem, A, lin_off, N, Y, w, e_lo, e_hi,
                                      e0 if start is not None else None, fin)
    m.setObjective(quicksum(obj) + quicksum(0.5 * ridge * sj for sj in s.values()),
                   "minimize")
    m.addObjoffset(float(np.sum(c)))
    vars_ = dict(w=w, z=z, s=s, e=e_vars, t=t_vars, signs=sign_vars, A=A, lin_off=lin_off,
                 M=M)
    if start is not None:
        _add_start(m, problem, vars_, start)
    return m, vars_


def _start_bounds(problem, A, lin_off, N, Y, c, pen, ridge, start):
    """(M, e_lo, e_hi, e0): the big-M bounds of the penalised coefficients and the intervals
    of the grouped linear predictors e_g that any solution at least as good as the start
    (w0, z0, U) obeys (infinite without a start), and e at the start (zero without one)."""
    G = A.shape[0]
    M = np.full(problem.n_coef, np.inf)
    e_lo, e_hi = np.full(G, -np.inf), np.full(G, np.inf)
    e0 = np.zeros(G)
    if start is not None:
        w0, _, U = start
        U = U + 1e-9 * abs(U) + 1e-9
        least = _least(problem.family, N, Y, c)
        L0 = float(np.sum(least))
        room = max(U - L0, 0.0)
        if ridge > 0:
            M[pen] = np.sqrt(2.0 * room / ridge) * (1 + 1e-9) + 1e-9
        e0 = A @ w0 + lin_off
        for g in range(G):
            R = U - (L0 - least[g])
            R = max(R, _phi(problem.family, e0[g], N[g], Y[g], c[g]))
            e_lo[g], e_hi[g] = _interval(problem.family, N[g], Y[g], c[g], R, e0[g])
    return M, e_lo, e_hi, e0


def _add_selection(m, problem, M, w, z):
    """The indicator links w_j = 0 when z_j = 0, the sign caps, the caps and the linear rows
    on the indicators; returns the sign caps' (index, u vars, v vars)."""
    from pyscipopt import quicksum

    def link(j, up, down):
        """w_j <= 0 unless ``up`` is 1, w_j >= 0 unless ``down`` is 1 (big-M when M_j is
        known, indicator constraints otherwise)."""
        for sgn, b in ((1.0, up), (-1.0, down)):
            if np.isfinite(M[j]):
                m.addCons(sgn * w[j] <= M[j] * b)
            else:
                m.addConsIndicator(sgn * w[j] <= 0, binvar=b, activeone=False)

    for j, zj in z.items():     # w_j = 0 when z_j = 0
        link(j, zj, zj)
    sign_vars = []
    for sc in problem.sign_caps:
        us, vs = [], []
        for j in sc.index:
            j = int(j)
            u = m.addVar(f"u{j}", vtype="B")
            v = m.addVar(f"v{j}", vtype="B")
            m.addCons(u + v <= z[j])
            link(j, u, v)
            us.append(u)
            vs.append(v)
        m.addCons(quicksum(us) <= sc.k_pos)
        m.addCons(quicksum(vs) <= sc.k_neg)
        sign_vars.append((np.asarray(sc.index, dtype=int), us, vs))
    for capset in problem.caps:
        if capset.k < len(capset.index):
            m.addCons(quicksum(z[int(j)] for j in capset.index) <= capset.k)
    for r in problem.constraints:
        expr = quicksum(float(a) * z[int(j)] for j, a in zip(r.index, r.coef, strict=True))
        m.addCons(_SENSE[r.sense](expr, r.rhs))
    return sign_vars


def _add_losses(m, problem, A, lin_off, N, Y, w, e_lo, e_hi, e0, fin):
    """The grouped losses: e_g = A_g w + offset_g and t_g >= the log-partition of e_g (exact
    exponential cone, plus tangent cuts around ``e0``, 0 without a start); returns (e vars,
    t vars, objective terms N_g t_g - Y_g e_g)."""
    from pyscipopt import exp, quicksum

    e_vars, t_vars = [], []
    obj = []
    for g in range(A.shape[0]):
        lo, hi = A.indptr[g], A.indptr[g + 1]
        eg = m.addVar(f"e{g}", lb=fin(e_lo[g]), ub=fin(e_hi[g]))
        m.addCons(eg == quicksum(float(a) * w[int(j)] for j, a in
                                 zip(A.indices[lo:hi], A.data[lo:hi], strict=True))
                  + float(lin_off[g]))
        tg = m.addVar(f"t{g}", lb=0.0)
        if problem.family == "binomial":
            m.addCons(exp(-tg) + exp(eg - tg) <= 1.0)
        else:
            m.addCons(exp(eg) <= tg)
        for ek in _tangent_points(e0[g] if e0 is not None else 0.0, e_lo[g], e_hi[g]):
            if problem.family == "binomial":
                f, d = float(np.logaddexp(0.0, ek)), float(expit(ek))
            else:
                f = d = float(np.exp(ek))
            m.addCons(tg >= f + d * (eg - ek))
        e_vars.append(eg)
        t_vars.append(tg)
        obj.append(float(N[g]) * tg - float(Y[g]) * eg)
    return e_vars, t_vars, obj


def _add_start(m, problem, V, start) -> None:
    w0, z0, _ = start
    sol = m.createSol()
    for j, wj in enumerate(V["w"]):
        m.setSolVal(sol, wj, float(w0[j]))
    for j, zj in V["z"].items():
        m.setSolVal(sol, zj, 1.0 if z0[j] else 0.0)
    for j, sj in V["s"].items():
        m.setSolVal(sol, sj, float(w0[j]) ** 2)
    e0 = V["A"] @ w0 + V["lin_off"]
    for g, (eg, tg) in enumerate(zip(V["e"], V["t"], strict=True)):
        m.setSolVal(sol, eg, float(e0[g]))
        tv = np.logaddexp(0.0, e0[g]) if problem.family == "binomial" else np.exp(e0[g])
        m.setSolVal(sol, tg, float(tv) * (1 + 1e-12) + 1e-12)
    for idx, us, vs in V["signs"]:
        for j, u, v in zip(idx, us, vs, strict=True):
            m.setSolVal(sol, u, 1.0 if w0[j] > 0 else 0.0)
            m.setSolVal(sol, v, 1.0 if w0[j] < 0 else 0.0)
    m.addSol(sol, free=True)


# ---------------------------------------------------------------------------------------------
# the solve
# ---------------------------------------------------------------------------------------------
def solve_scip(problem: GlmmProblem, time_limit: float | None = None, mip_gap: float = 1e-4,
               warm=None, verbose: bool = False) -> Solution:
    """Solve the capped GLMM exactly with SCIP (see the module).

    ``warm``: a previous Solution or a bool mask over w (its support, refitted exactly, is
    SCIP's first incumbent when feasible).  Returns a Solution with solver ``"SCIP"``.
    """
    from pyscipopt import SCIP_PARAMSETTING

    from mixmio.solvers.cvxpy_backend import drop_solver_noise

    t0 = time.perf_counter()
    ex = _Exact(problem)
    rows = _Rows(problem)
    start = _start(ex, rows, warm)
    m, V = _build(problem, ex, rows, start, verbose)
    # SCIP 10's second-order-cone handler crashes (munmap_chunk) on these models
    m.setParam("nlhdlr/soc/enabled", False)
    # the start is a local-search optimum; SCIP's primal heuristics (sub-NLPs, feasibility
    # pump) cost more than they find here, and aggressive separation stalls the root
    m.setHeuristics(SCIP_PARAMSETTING.OFF)
    m.setSeparating(SCIP_PARAMSETTING.FAST)
    # no separation rounds below the root and pseudo-cost branching: per-node LPs and strong
    # branching dominated (50 x 10 -> 10 x 10 slope model, caps 3/3, ridge 1: poisson
    # 24 s -> 4.8 s, binomial 3.6 s -> 0.7 s)
    m.setParam("separating/maxrounds", 0)
    m.setParam("branching/pscost/priority", 100000)
    for key, val in _SCIP_PARAMS.items():
        m.setParam(key, val)
    m.setParam("limits/gap", 0.5 * float(mip_gap))
    m.setParam("limits/absgap", 0.0)
    if time_limit is not None:
        m.setParam("limits/time", max(float(time_limit) - (time.perf_counter() - t0), 0.01))
    with drop_solver_noise(not verbose):
        m.optimize()
    st = m.getStatus()
    nodes = int(m.getNNodes())
    info = {"scip_status": st, "start_value": None if start is None else start[2]}
    n_coef = problem.n_coef
    if st == "infeasible":
        return Solution(w=np.zeros(n_coef), objective=np.inf, best_bound=np.inf,
                        status="infeasible", solver="SCIP",
                        solve_time=time.perf_counter() - t0, nodes=nodes,
                        message="SCIP proved the constraints infeasible", info=info,
                        gap_scale=gap_scale(problem))
    cands = [] if start is None else [(start[0], start[1])]
    if m.getNSols() > 0:
        sol = m.getBestSol()
        wv = np.array([m.getSolVal(sol, wj) for wj in V["w"]])
        zv = np.zeros(n_coef, dtype=bool)
        for j, zj in V["z"].items():
            zv[j] = m.getSolVal(sol, zj) > 0.5
        cands.append((wv, zv))
    bound_true = float(m.getDualbound())
    best = None
    for wv, zv in cands:
        best = _polish(ex, rows, wv, zv, best)
    if best is None:
        return Solution(w=np.zeros(n_coef), objective=np.inf, best_bound=-np.inf,
                        status="error", solver="SCIP", solve_time=time.perf_counter() - t0,
                        nodes=nodes, message=f"SCIP stopped ({st}) without a solution",
                        info=info, gap_scale=gap_scale(problem))
    w, z, val_true = best
    objective = float(problem.objective(w))
    shift = objective - val_true  # family.py's constant, if it differs from the documented
    bound = min(bound_true + shift, objective) if np.isfinite(bound_true) else -np.inf
    timed_out = st in ("timelimit", "nodelimit", "totalnodelimit", "stallnodelimit",
                       "memlimit", "userinterrupt")
    failure = None if st in ("optimal", "gaplimit") or timed_out else f"SCIP status {st}"
    gap = relative_gap(objective, bound, gap_scale(problem))
    status, msg = certified_status(gap, mip_gap, timed_out, "SCIP", failure=failure)
    info.update(mip_gap=mip_gap, scip_bound=bound_true)
    return Solution(w=w, objective=objective, best_bound=bound, status=status, solver="SCIP",
                    solve_time=time.perf_counter() - t0, nodes=nodes, message=msg, info=info,
                    z=z, timed_out=timed_out, gap_scale=gap_scale(problem))


def _polish(ex: _Exact, rows: _Rows, wv: np.ndarray, zv: np.ndarray, best):
    """The better of SCIP's point cleaned to its indicators (and signs) and the exact
    sign-keeping refit of its support, compared with ``best`` (w, z, F)."""
    if not rows.feasible_z(np.flatnonzero(zv)):
        return best
    w_clean = wv.copy()
    off = np.zeros(wv.size, dtype=bool)
    off[rows.cap] = ~zv[rows.cap]
    w_clean[off] = 0.0
    tries = []
    if rows.signs_ok(w_clean):
        tries.append(w_clean)
    S = zv.copy()
    S[rows.cap] &= np.abs(wv[rows.cap]) > 0
    w_fit, _ = _support_fit(ex, rows, S, np.sign(wv))
    tries.append(w_fit)
    for wt in tries:
        val = ex.value(wt)
        if best is None or val < best[2]:
            best = (wt, zv, val)
    return best
