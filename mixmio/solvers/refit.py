"""Unpenalised least squares on a selected support (the reported "unshrunk" estimates)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve

from ..problem import Problem


def refit_support(problem: Problem, w: np.ndarray) -> np.ndarray:
    """Least squares on the non-zero capped coefficients plus every uncapped one.

    When the support is rank deficient (e.g. an intercept plus every cluster's dummy) the
    least-squares fit is not unique; the one returned is the limit of the ridge fit as the
    ridge goes to zero (the minimum-norm choice for the penalised coefficients), found with a
    ridge of 1e-10 x the problem's ridge on the penalised coefficients.
    """
    active = np.ones(problem.n_coef, dtype=bool)
    active[problem.capped] = False
    active[problem.capped[w[problem.capped] != 0]] = True
    cols = np.nonzero(active)[0]
    out = np.zeros(problem.n_coef)
    if len(cols) == 0:
        return out
    p = problem.p
    xc, zc = cols[cols < p], cols[cols >= p] - p
    Xs = problem.X[:, xc]
    Zs = problem.Z[:, zc]
    # Gram blocks of [X_S | Z_S] without forming the n x |S| matrix
    XZ = np.asarray((Zs.T @ Xs).T)
    G = np.block([[Xs.T @ Xs, XZ], [XZ.T, (Zs.T @ Zs).toarray()]])
    c = np.concatenate([Xs.T @ problem.y, np.asarray(Zs.T @ problem.y).ravel()])
    try:
        L = np.linalg.cholesky(G)
        cond_ok = np.min(np.diag(L)) ** 2 > 1e-10 * np.max(np.diag(G))
    except np.linalg.LinAlgError:
        cond_ok = False
    if cond_ok:
        out[cols] = cho_solve((L, True), c)
    else:
        eps = 1e-10 * problem.ridge * np.asarray(problem.penalized[cols], dtype=float)
        eps = eps + 1e-14 * np.max(np.diag(G))
        out[cols] = np.linalg.solve(G + np.diag(eps), c)
    return out


def refit_if_feasible(problem: Problem, w: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    """The fits' refit rule: the least-squares refit on ``w``'s support when it still satisfies
    the problem (a refit can flip a sign under an asymmetric cap), else ``w`` unchanged.
    ``z``: the solver's indicators, when it reports them."""
    w_ref = refit_support(problem, w)
    return w_ref if problem.is_feasible(w_ref, z=z) else w
