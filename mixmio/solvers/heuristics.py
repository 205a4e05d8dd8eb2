"""Warm starts for the ℓ0-capped ridge least-squares problem (METHODS 1, "Warm starts").

Two public functions:

- :func:`polish` — exact minimiser of the penalised objective on a fixed support;
- :func:`warm_start` — discrete first-order method (projected gradient with hard thresholding per
  cap block and exact line search) from several starts, then polish and best-improvement swap
  search.  Returns a feasible :class:`Solution` with status ``"heuristic"``.

Everything is computed from the Gram blocks ``H = [X Z]'[X Z] + ridge * diag(penalized)`` and
``c = [X Z]'y``, never from the n residuals.  With ``S`` the support (every uncapped coefficient
plus the selected capped ones) the polished objective is ``y'y/2 - c_S' H_SS^{-1} c_S / 2``; adding
a column, or swapping one column for another, changes it by closed forms (Schur complements), so a
whole swap neighbourhood costs one ``|S| x |S|`` inverse and one ``|S| x #candidates`` product.

The first-order method works on the *profiled* objective: the uncapped coefficients are minimised
out exactly at every step (Frisch-Waugh-Lovell), so its Lipschitz constant is the largest eigenvalue
of the Schur complement ``H_cc - H_cu H_uu^{-1} H_uc`` (<= lambda_max(G) + ridge).  Without this the
step 1/L is set by the intercept column (eigenvalue ~ n) and cluster effects barely move.

Problems with holistic parts (linear constraints on the indicators, sign caps or an l1 term;
``not problem.is_plain``) are handed to
:func:`mixmio.solvers.subset.constrained.constrained_warm_start`
(greedy forward selection and swaps over feasible units), which returns a feasible solution or
reports that it found none (status ``"error"``, objective ``inf``).
"""

from __future__ import annotations

import time

import numpy as np

from mixmio.problem import Problem
from mixmio.solvers.dfo import quad, search
from mixmio.solvers.solution import Solution

__all__ = ["polish", "warm_start"]


def polish(problem: Problem, support_mask: np.ndarray, signs: np.ndarray | None = None
           ) -> tuple[np.ndarray, float]:
    """Exact minimiser of the penalised objective on a support.

    ``support_mask`` is a boolean mask over ``w`` (length ``n_coef``).  Every uncapped coefficient
    is free whatever the mask says; a capped coefficient is free only where the mask is True and
    is zero elsewhere.  Solves the ridge normal equations ``H_SS w_S = c_S`` (least-squares
    fallback when singular).  Returns ``(w, objective)`` with ``objective`` evaluated from the
    residuals (``problem.objective(w)``).  Cap feasibility of the mask is not checked.

    With an l1 term (``problem.l1``) or ``signs`` (+1: ``w_j >= 0``, -1: ``w_j <= 0``, 0: free;
    over ``w``) the fit is the exact minimiser of the full objective on the support under those
    sign bounds (coordinate descent, :func:`mixmio.solvers.bnb.cd.fit_quadratic`).
    """
    q = quad(problem)
    mask = np.asarray(support_mask, dtype=bool)
    if mask.shape != (q.n_coef,):
        raise ValueError(f"support_mask must have length {q.n_coef}")
    sel = q.capped[mask[q.capped]]
    S = q.support(sel)
    if problem.l1 is not None or signs is not None:
        from mixmio.solvers.bnb.cd import fit_quadratic

        l1 = None if problem.l1 is None else np.asarray(problem.l1, dtype=float)[S]
        lo = hi = None
        if signs is not None:
            sg = np.asarray(signs)[S]
            lo = np.where(sg > 0, 0.0, -np.inf)
            hi = np.where(sg < 0, 0.0, np.inf)
        wS = fit_quadratic(q.block(S, S), q.c[S], l1, lo, hi)
    else:
        wS, _, _ = q.fit(S)
    w = np.zeros(q.n_coef)
    w[S] = wS
    return w, problem.objective(w)




def warm_start(problem: Problem, random_state=None, n_starts: int = 5, max_iter: int = 300,
               tol: float = 1e-4, max_moves: int | None = None) -> Solution:
    """Feasible solution by the discrete first-order method, polish and swap search.

    Starts: zero, a greedy screen (best single additions to the uncapped-only fit) and
    ``n_starts - 2`` random feasible supports.  Each start runs the projected-gradient iteration
    (hard thresholding per cap, step 1/L, exact line search) until the thresholded iterate moves
    less than ``tol``; every distinct resulting support is polished and improved by
    best-improvement add/swap moves within caps.  The best is returned, with status
    ``"heuristic"`` and the trivial lower bound 0 (the objective is non-negative).
    Deterministic given ``random_state``.
    """
    if not problem.is_plain:
        from mixmio.solvers.subset.constrained import constrained_warm_start

        return constrained_warm_start(problem, random_state=random_state, n_starts=n_starts)
    t0 = time.perf_counter()
    w, seen, total_moves = search(problem, random_state, n_starts, max_iter, tol, max_moves)
    obj = problem.objective(w)
    return Solution(
        w=w, objective=obj, best_bound=0.0, status="heuristic", solver="heuristic",
        solve_time=time.perf_counter() - t0,
        message="discrete first-order method + polish + swap search (no certificate)",
        info={"n_supports": len(seen), "moves": total_moves,
              "support": np.flatnonzero(w != 0)},
    )
