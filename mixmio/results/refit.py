"""Unpenalised least squares on a selected support (the reported "unshrunk" estimates)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve

from mixmio.problem import Problem


def _support_gram(problem: Problem, w: np.ndarray):
    """(columns, Gram, X'y) of the refit's columns: non-zero capped plus every uncapped one."""
    active = np.ones(problem.n_coef, dtype=bool)
    active[problem.capped] = False
    active[problem.capped[w[problem.capped] != 0]] = True
    cols = np.nonzero(active)[0]
    p = problem.p
    xc, zc = cols[cols < p], cols[cols >= p] - p
    Xs = problem.X[:, xc]
    Zs = problem.Z[:, zc]
    # Gram blocks of [X_S | Z_S] without forming the n x |S| matrix
    XZ = np.asarray((Zs.T @ Xs).T)
    G = np.block([[Xs.T @ Xs, XZ], [XZ.T, (Zs.T @ Zs).toarray()]])
    c = np.concatenate([Xs.T @ problem.y, np.asarray(Zs.T @ problem.y).ravel()])
    return cols, G, c


def _scaled_eigh(G: np.ndarray, diag: np.ndarray | None = None):
    """Eigen-decomposition of G scaled to unit diagonal, with the scale and a keep-mask of the
    eigenvalues above the rank tolerance.  Scaling first makes the rank decision independent
    of the columns' units: on X'X itself a column in dollars (~1e9 on the diagonal) pushed
    small clusters' dummies below a tolerance relative to the largest eigenvalue.  ``diag``:
    the diagonal to scale by instead of G's own (the columns' sums of squares, when G is a
    Schur complement whose diagonal nearly vanishes in the directions to detect)."""
    d = np.sqrt(np.clip(np.diag(G) if diag is None else diag, 0.0, None))
    nz = d > 0
    dinv = np.where(nz, 1.0 / np.where(nz, d, 1.0), 0.0)
    Gs = G * np.outer(dinv, dinv)
    eig, V = np.linalg.eigh(0.5 * (Gs + Gs.T))
    tol = 1e-10 * max(1.0, float(np.max(np.abs(eig)))) if eig.size else 0.0
    return eig, V, dinv, eig > tol


def support_rank(problem: Problem, w: np.ndarray) -> int:
    """Rank of the refit's design [X_S | Z_S] (for residual degrees of freedom)."""
    cols, G, _ = _support_gram(problem, w)
    if len(cols) == 0:
        return 0
    return int(np.sum(_scaled_eigh(G)[3]))


def refit_support(problem: Problem, w: np.ndarray) -> np.ndarray:
    """Least squares on the non-zero capped coefficients plus every uncapped one.

    When the support is rank deficient (e.g. an intercept plus every cluster's dummy) the
    least-squares fit is not unique; the one returned is the limit of the ridge fit as the
    ridge goes to zero: among the least-squares solutions, the one with the smallest norm of
    the penalised coefficients (so every cluster's dummy selected gives effects that sum to 0
    and the intercept is the mean).  It is computed exactly: the unpenalised columns are
    profiled out and the penalised ones get the minimum-norm (pseudo-inverse) solution.
    """
    fast = _refit_disjoint(problem, w)
    if fast is not None:
        return fast
    cols, G, c = _support_gram(problem, w)
    out = np.zeros(problem.n_coef)
    if len(cols) == 0:
        return out
    try:
        L = np.linalg.cholesky(G)
        cond_ok = np.min(np.diag(L)) ** 2 > 1e-10 * np.max(np.diag(G))
    except np.linalg.LinAlgError:
        cond_ok = False
    if cond_ok:
        out[cols] = cho_solve((L, True), c)
        return out
    pen = np.asarray(problem.penalized[cols], dtype=bool)
    U, P = np.flatnonzero(~pen), np.flatnonzero(pen)
    GUU, GUP, GPP = G[np.ix_(U, U)], G[np.ix_(U, P)], G[np.ix_(P, P)]
    if U.size:
        A = np.linalg.lstsq(GUU, np.column_stack([GUP, c[U]]), rcond=None)[0]
        S = GPP - GUP.T @ A[:, :-1]
        cP = c[P] - GUP.T @ A[:, -1]
    else:
        S, cP = GPP, c[P]
    # S = D^-1 S_s D^-1 with S_s unit-diagonal: solve in the scaled coordinates, then take
    # the solution of least Euclidean norm of w_P (the ridge limit) by removing its component
    # in the null space N = D^-1 V_null (the rank decided on S_s, independent of units)
    eig, V, dinv, keep = _scaled_eigh(S)
    wP = dinv * (V[:, keep] @ ((V[:, keep].T @ (dinv * cP)) / eig[keep]))
    N = dinv[:, None] * V[:, ~keep]
    if N.shape[1]:
        wP = wP - N @ np.linalg.lstsq(N, wP, rcond=None)[0]
    wU = np.linalg.lstsq(GUU, c[U] - GUP @ wP, rcond=None)[0] if U.size else np.zeros(0)
    out[cols[U]] = wU
    out[cols[P]] = wP
    return out


def _refit_disjoint(problem: Problem, w: np.ndarray) -> np.ndarray | None:
    """:func:`refit_support` when the refit's Z columns touch disjoint rows (selected random
    intercepts of one grouping factor), every uncapped column is in X and every Z column is
    penalised; else None.

    The Z block of the Gram is then diagonal (D), so the cluster effects are profiled out
    exactly: gamma = D^-1 (Z'y - Z'X beta), and beta solves the p x p Schur system
    S0 beta = r0 with S0 = X'X - X'Z D^-1 Z'X.  When S0 is singular (an intercept with every
    cluster selected, a cluster-level covariate), the least-squares solutions are
    beta0 + N t (N spanning S0's null space), and the ridge limit is the one of least
    ||gamma||: a least-squares problem in t of the null space's dimension.  O(K p^2) per
    refit: the O(n p) products (X'X, X'y, Z'X, Z'y, Z's column sums of squares) are computed
    once per data (:func:`_disjoint_grams`) and shared by the refits of a path over k.
    """
    p = problem.p
    capped = np.asarray(problem.capped, dtype=int)
    if np.any(capped < p) or not np.all(problem.penalized[p:]) or np.any(problem.penalized[:p]):
        return None
    zc = capped[w[capped] != 0] - p
    if zc.size == 0:
        return None
    grams = _disjoint_grams(problem)
    if not grams.rows_disjoint:
        Zs = problem.Z[:, zc].tocsc()
        if np.bincount(Zs.indices, minlength=problem.n).max() > 1:
            return None
    dvec = grams.zsq[zc]
    if np.any(dvec <= 0):
        return None
    B = grams.ZtX[zc].T  # X'Z_S, p x s
    cZ = grams.Zty[zc]
    BD = B / dvec
    S0 = grams.XtX - BD @ B.T
    r0 = grams.Xty - BD @ cZ
    # scale by X'X's diagonal (the columns' units), not S0's: a direction S0 nearly
    # annihilates has a near-zero diagonal there, which S0's own scaling would blow up to 1
    eig, V, dinv, keep = _scaled_eigh(S0, diag=grams.xsq)
    beta = dinv * (V[:, keep] @ ((V[:, keep].T @ (dinv * r0)) / eig[keep]))
    N = dinv[:, None] * V[:, ~keep]
    if N.shape[1]:
        # least ||gamma|| = ||D^-1 (cZ - B'(beta + N t))|| over t
        resid = (cZ - B.T @ beta) / dvec
        M = (B.T @ N) / dvec[:, None]
        beta = beta + N @ np.linalg.lstsq(M, resid, rcond=None)[0]
    out = np.zeros(problem.n_coef)
    out[:p] = beta
    out[p + zc] = (cZ - B.T @ beta) / dvec
    return out


@dataclass(frozen=True)
class _Grams:
    XtX: np.ndarray
    Xty: np.ndarray
    xsq: np.ndarray  # X's column sums of squares
    ZtX: np.ndarray  # (m, p) dense
    Zty: np.ndarray
    zsq: np.ndarray  # Z's column sums of squares
    rows_disjoint: bool  # every row of Z has at most one non-zero: any columns are disjoint


# Problems of a path over k (``dataclasses.replace(problem, caps=...)``) share X, Z and y: their
# refits share these products, remembered per (X, Z, y) objects (the last few, checked by
# identity and against O(nnz) checksums of in-place edits)
_GRAMS: list = []
_GRAMS_SIZE = 4


def _checksum(problem: Problem) -> tuple:
    ones = np.ones(problem.n)
    Z = problem.Z
    return (float(problem.y @ problem.y), (ones @ problem.X).tobytes(), Z.nnz,
            float(np.sum(Z.data)))


def _disjoint_grams(problem: Problem) -> _Grams:
    X, Z, y = problem.X, problem.Z, problem.y
    fp = _checksum(problem)
    for refs, fp0, grams in _GRAMS:
        if refs[0]() is X and refs[1]() is Z and refs[2]() is y and fp0 == fp:
            return grams
    Zc = sp.csc_matrix(Z)
    rows = np.bincount(Zc.indices, minlength=problem.n) if Zc.nnz else np.zeros(problem.n)
    grams = _Grams(XtX=X.T @ X, Xty=X.T @ y, xsq=np.einsum("ij,ij->j", X, X),
                   ZtX=np.asarray(Zc.T @ X).reshape(Zc.shape[1], X.shape[1]),
                   Zty=np.asarray(Zc.T @ y).ravel(),
                   zsq=np.asarray(Zc.multiply(Zc).sum(axis=0)).ravel(),
                   rows_disjoint=bool(rows.max(initial=0) <= 1))
    try:
        refs = (weakref.ref(X), weakref.ref(Z), weakref.ref(y))
    except TypeError:  # pragma: no cover - not weak-referenceable: do not remember
        return grams
    _GRAMS.insert(0, (refs, fp, grams))
    del _GRAMS[_GRAMS_SIZE:]
    return grams


def refit_if_feasible(problem: Problem, w: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    """The fits' refit rule: the least-squares refit on ``w``'s support when it still satisfies
    the problem (a refit can flip a sign under an asymmetric cap), else ``w`` unchanged.
    ``z``: the solver's indicators, when it reports them."""
    w_ref = refit_support(problem, w)
    return w_ref if problem.is_feasible(w_ref, z=z) else w
