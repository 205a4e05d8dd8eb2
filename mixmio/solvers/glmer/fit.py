"""Exact penalised GLMM fits on a fixed support, and certified lower bounds of them.

For a support ``mask`` (bool over Z's columns) the convex program

    minimise  F_S(beta, gamma_S) = sum_i l_i(x_i'beta + z_{i,S}'gamma_S + o_i)
                                   + ridge/2 ||w_penalized||^2

is solved by damped Newton with a backtracking (Armijo) line search.  The Hessian has the
block-arrow form [[A, B], [B', D]] with A = X'WX (p x p), B = X'W Z_S and D = Z_S'W Z_S +
ridge I; each Newton system is solved through the Schur complement A - B D^-1 B' over beta,
with D diagonal for a random intercept (O(n p^2) per iteration) and a sparse LU of D
otherwise (random slopes: D is block-diagonal per cluster).

Certified bound (:func:`fit_lower_bound`).  Both families have |l'''| <= l'' in eta, so along
any direction d of w the restriction t -> F_S(w + t d) is generalised self-concordant with
constant max_i |z_i'd| (z_i the i-th row of [X Z_S]; the ridge has no third derivative;
Bach 2010, Prop. 1).  With H the Hessian at w, g the gradient, r = ||d||_H,
c = max_i ||z_i||_{H^-1} and a = ||g||_{H^-1},

    F_S(w + d) >= F_S(w) - a r + (e^{-c r} + c r - 1) / c^2,

whose minimum over r >= 0 is -(u + (1 - u) log(1 - u)) / c^2 with u = a c < 1 (about
-a^2 / 2): :func:`mixmio.solvers.glm.logistic.certified_gap` evaluates it.  The returned bound also
subtracts a rounding margin of 1e-12 (1 + |F|).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.glm.logistic import certified_gap

__all__ = ["fit_support", "fit_lower_bound", "row_terms"]

_TOL = 1e-13


def row_terms(family: str, eta: np.ndarray, y: np.ndarray, wts: np.ndarray,
              sat: np.ndarray, order: int = 2):
    """(l_i, l'_i, l''_i) at eta (``order`` 0: the values only).  The value is the family's
    loss without the clamp at 0 (so it stays a smooth convex function; it is >= 0 up to
    rounding)."""
    if family == "binomial":
        val = wts * np.logaddexp(0.0, eta) - y * eta - sat
        if order == 0:
            return val
        p = expit(eta)
        return val, wts * p - y, wts * p * (1.0 - p)
    mu = np.exp(np.minimum(eta, 700.0))
    val = wts * (mu - y * eta) - sat
    if order == 0:
        return val
    return val, wts * (mu - y), wts * mu


class Design:
    """[X | Z_S] with the block-arrow linear algebra of the Newton step."""

    def __init__(self, X: np.ndarray, Zs, penalized: np.ndarray, ridge: float):
        self.X = np.ascontiguousarray(X, dtype=float)
        self.p = self.X.shape[1]
        Zs = sp.csc_matrix(Zs)
        self.Zs = Zs
        self.s = Zs.shape[1]
        self.pen_b = ridge * penalized[: self.p].astype(float)
        self.pen_g = ridge * penalized[self.p:].astype(float)
        Zr = sp.csr_matrix(Zs)
        per_row = np.diff(Zr.indptr)
        # one nonzero per row in Z_S: D = Z_S' W Z_S is diagonal
        self.diag = bool(np.all(per_row <= 1))
        if self.diag:
            self.code = np.full(self.X.shape[0], -1)
            rows = np.repeat(np.arange(Zr.shape[0]), per_row)
            self.code[rows] = Zr.indices
            self.val = np.zeros(self.X.shape[0])
            self.val[rows] = Zr.data
            self.on = self.code >= 0

    def eta(self, v: np.ndarray, off: np.ndarray) -> np.ndarray:
        return self.X @ v[: self.p] + self.Zs @ v[self.p:] + off

    def grad(self, g1: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.concatenate([self.X.T @ g1 + self.pen_b * v[: self.p],
                               self.Zs.T @ g1 + self.pen_g * v[self.p:]])

    def factor(self, g2: np.ndarray):
        """Factors of the Hessian at row weights g2 (returned as an opaque tuple)."""
        X, p = self.X, self.p
        A = (X * g2[:, None]).T @ X
        A[np.diag_indices(p)] += self.pen_b
        if self.diag:
            wz = g2[self.on] * self.val[self.on] ** 2
            D = np.bincount(self.code[self.on], weights=wz, minlength=self.s) + self.pen_g
            Bt = np.asarray(self.Zs.T @ (X * g2[:, None])).reshape(self.s, p)
            Dinv = 1.0 / D
            S = A - (Bt * Dinv[:, None]).T @ Bt
            return ("diag", Bt, Dinv, _chol(S))
        from scipy.sparse.linalg import splu

        WZ = sp.diags(g2) @ self.Zs
        D = (self.Zs.T @ WZ).tocsc() + sp.diags(self.pen_g)
        Bt = np.asarray(WZ.T @ X)
        lu = splu(D.tocsc())
        DiBt = lu.solve(Bt) if p else np.zeros((self.s, 0))
        S = A - Bt.T @ DiBt
        return ("lu", Bt, lu, _chol(S), DiBt)

    def solve(self, fac, r: np.ndarray) -> np.ndarray:
        """H^-1 r through the Schur complement over beta."""
        p = self.p
        rb, rg = r[:p], r[p:]
        if fac[0] == "diag":
            _, Bt, Dinv, L = fac
            Dig = Dinv * rg
            xb = _cho_solve(L, rb - Bt.T @ Dig)
            return np.concatenate([xb, Dig - Dinv * (Bt @ xb)])
        _, Bt, lu, L, DiBt = fac
        Dig = lu.solve(rg)
        xb = _cho_solve(L, rb - Bt.T @ Dig)
        return np.concatenate([xb, Dig - DiBt @ xb])

    def row_norms(self, fac) -> np.ndarray:
        """||z_i||^2_{H^-1} for every row z_i of [X | Z_S]."""
        p = self.p
        if fac[0] == "diag":
            _, Bt, Dinv, L = fac
            U = self.X.copy()
            on = self.on
            c = self.code[on]
            U[on] -= (Bt[c] * (Dinv[c] * self.val[on])[:, None])
            out = _quad_rows(L, U)
            out[on] += Dinv[c] * self.val[on] ** 2
            return out
        _, Bt, lu, L, DiBt = fac
        Zd = self.Zs.T.toarray()                       # s x n
        DiZ = lu.solve(Zd)                             # D^-1 Z_S'
        U = self.X - (Bt.T @ DiZ).T if p else self.X
        return _quad_rows(L, U) + np.einsum("ij,ij->j", Zd, DiZ)


def _chol(S: np.ndarray):
    if S.shape[0] == 0:
        return S
    S = 0.5 * (S + S.T)
    S[np.diag_indices_from(S)] += 1e-14 * max(1.0, float(np.trace(S)) / S.shape[0])
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        S[np.diag_indices_from(S)] += 1e-10 * max(1.0, float(np.trace(S)) / S.shape[0])
        return np.linalg.cholesky(S)


def _cho_solve(L: np.ndarray, r: np.ndarray) -> np.ndarray:
    if L.shape[0] == 0:
        return r
    from scipy.linalg import solve_triangular

    z = solve_triangular(L, r, lower=True, check_finite=False)
    return solve_triangular(L.T, z, lower=False, check_finite=False)


def _quad_rows(L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """u_i' (L L')^-1 u_i for every row u_i of U."""
    if L.shape[0] == 0:
        return np.zeros(U.shape[0])
    from scipy.linalg import solve_triangular

    W = solve_triangular(L, U.T, lower=True, check_finite=False)
    return np.einsum("ij,ij->j", W, W)


def _setup(problem: GlmmProblem, mask):
    mask = np.asarray(mask, dtype=bool)
    cols = np.flatnonzero(mask)
    pen = np.asarray(problem.penalized, dtype=bool)
    pen_s = np.concatenate([pen[: problem.p], pen[problem.p:][cols]])
    des = Design(problem.X, problem.Z[:, cols], pen_s, problem.ridge)
    return cols, des


def _value(problem, des, v, eta=None):
    if eta is None:
        eta = des.eta(v, problem.offset)
    val = float(np.sum(row_terms(problem.family, eta, problem.y, problem.weights,
                                 problem.sat, order=0)))
    pb, pg = v[: des.p], v[des.p:]
    return val + 0.5 * float(des.pen_b @ (pb * pb) + des.pen_g @ (pg * pg))


def newton(problem, des, v, deadline=None, max_iter=100):
    """Damped Newton on the support's program from v; (v, F, converged, factors, grad)."""
    fam, y, wts, sat, off = problem.family, problem.y, problem.weights, problem.sat, problem.offset
    eta = des.eta(v, off)
    f = _value(problem, des, v, eta)
    converged = False
    fac = g = None
    for _ in range(max_iter):
        _, g1, g2 = row_terms(fam, eta, y, wts, sat)
        g = des.grad(g1, v)
        fac = des.factor(g2)
        step = des.solve(fac, g)
        dec = float(g @ step)
        if dec <= _TOL * max(1.0, abs(f)):
            converged = True
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
        t = 1.0
        while t > 1e-12:
            cand = v - t * step
            eta_c = des.eta(cand, off)
            fc = _value(problem, des, cand, eta_c)
            if fc <= f - 1e-4 * t * dec:
                break
            t *= 0.5
        else:
            converged = dec <= 1e-8 * max(1.0, abs(f))   # no progress possible in floats
            break
        if abs(f - fc) <= 1e-16 * max(1.0, abs(f)) and t == 1.0:
            v, f, eta = cand, fc, eta_c
            converged = True
            _, g1, g2 = row_terms(fam, eta, y, wts, sat)
            g = des.grad(g1, v)
            fac = des.factor(g2)
            break
        v, f, eta = cand, fc, eta_c
        if np.max(np.abs(v)) > 1e8:
            break
    if fac is None:
        _, g1, g2 = row_terms(fam, eta, y, wts, sat)
        g = des.grad(g1, v)
        fac = des.factor(g2)
    return v, f, converged, fac, g


def _pack(problem, cols, w):
    if w is None:
        return np.zeros(problem.p + cols.size)
    w = np.asarray(w, dtype=float)
    return np.concatenate([w[: problem.p], w[problem.p:][cols]])


def _unpack(problem, cols, v):
    w = np.zeros(problem.p + problem.m)
    w[: problem.p] = v[: problem.p]
    w[problem.p + cols] = v[problem.p:]
    return w


def fit_support(problem: GlmmProblem, mask, start=None, deadline=None
                ) -> tuple[np.ndarray, float, bool]:
    """Exact penalised fit with gamma free on ``mask`` (bool over Z's columns), zero elsewhere.

    Returns ``(w, F(w), converged)``, w over [beta; gamma].  ``start``: a w to start from
    (its entries off ``mask`` are ignored).  ``deadline`` (``time.perf_counter()`` value):
    stop before the next Newton step after it (``converged`` False; F(w) is still exact and
    :func:`fit_lower_bound` still certifies a bound at w).  F is the objective without the
    family's clamp at 0, equal to ``problem.objective(w)`` up to rounding.
    """
    cols, des = _setup(problem, mask)
    v, f, conv, _, _ = newton(problem, des, _pack(problem, cols, start), deadline)
    return _unpack(problem, cols, v), f, conv


def fit_lower_bound(problem: GlmmProblem, mask, w) -> float:
    """A certified lower bound of min F over the support ``mask`` from any w (see the
    module docstring); -inf when the self-concordance bound does not apply at w."""
    cols, des = _setup(problem, mask)
    v = _pack(problem, cols, w)
    eta = des.eta(v, problem.offset)
    f = _value(problem, des, v, eta)
    _, g1, g2 = row_terms(problem.family, eta, problem.y, problem.weights, problem.sat)
    g = des.grad(g1, v)
    fac = des.factor(g2)
    return f + _gap(des, fac, g) - 1e-12 * (1.0 + abs(f))


def _gap(des, fac, g) -> float:
    """certified_gap from the factors: a = ||g||_{H^-1}, c^2 = max_i ||z_i||^2_{H^-1}."""
    a2 = max(float(g @ des.solve(fac, g)), 0.0)
    c2 = float(np.max(des.row_norms(fac), initial=0.0))
    return gap_from(a2, c2)


def gap_from(a2: float, c2: float) -> float:
    """certified_gap(Hinv, g, Xc) written with a^2 and c^2 (same formula)."""
    return certified_gap(np.array([[1.0]]), np.array([np.sqrt(a2)]),
                         np.array([[np.sqrt(max(c2, 0.0))]]))
