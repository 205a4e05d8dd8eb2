"""Unpenalised least squares on a selected support (the reported "unshrunk" estimates)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve

from ..problem import Problem


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


def _rank_tol(eig: np.ndarray, G: np.ndarray) -> float:
    return max(G.shape) * np.finfo(float).eps * max(float(np.max(np.abs(eig))), 1e-300) * 1e3


def support_rank(problem: Problem, w: np.ndarray) -> int:
    """Rank of the refit's design [X_S | Z_S] (for residual degrees of freedom)."""
    cols, G, _ = _support_gram(problem, w)
    if len(cols) == 0:
        return 0
    eig = np.linalg.eigvalsh(G)
    return int(np.sum(eig > _rank_tol(eig, G)))


def refit_support(problem: Problem, w: np.ndarray) -> np.ndarray:
    """Least squares on the non-zero capped coefficients plus every uncapped one.

    When the support is rank deficient (e.g. an intercept plus every cluster's dummy) the
    least-squares fit is not unique; the one returned is the limit of the ridge fit as the
    ridge goes to zero: among the least-squares solutions, the one with the smallest norm of
    the penalised coefficients (so every cluster's dummy selected gives effects that sum to 0
    and the intercept is the mean).  It is computed exactly: the unpenalised columns are
    profiled out and the penalised ones get the minimum-norm (pseudo-inverse) solution.
    """
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
    eig, V = np.linalg.eigh(0.5 * (S + S.T))
    keep = eig > _rank_tol(eig, S)
    wP = V[:, keep] @ ((V[:, keep].T @ cP) / eig[keep])
    wU = np.linalg.lstsq(GUU, c[U] - GUP @ wP, rcond=None)[0] if U.size else np.zeros(0)
    out[cols[U]] = wU
    out[cols[P]] = wP
    return out


def refit_if_feasible(problem: Problem, w: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    """The fits' refit rule: the least-squares refit on ``w``'s support when it still satisfies
    the problem (a refit can flip a sign under an asymmetric cap), else ``w`` unchanged.
    ``z``: the solver's indicators, when it reports them."""
    w_ref = refit_support(problem, w)
    return w_ref if problem.is_feasible(w_ref, z=z) else w
