"""Outer approximation (METHODS 3, 004 Sec. 4.3) with a HiGHS MILP master.

The master ``min eta`` over (eta, beta, z) has ``lo_j z_u <= beta_j <= hi_j z_u`` (the
bounds of :mod:`mixmio.solvers.glm.bounds`, valid for every optimum), ``sum_u |u| z_u <= k``,
and one
cut ``eta >= F(b) + grad F(b)'(beta - b)`` (full gradient) for every support fitted so far;
the warm start's fits seed it.  Each master solve proposes a support, whose exact fit adds a
cut and may improve the incumbent.  The master's dual bound (HiGHS ``mip_dual_bound``, valid
even when stopped by the time limit) is a lower bound on the optimum: every cut is valid by
convexity and the box contains an optimum.  Holistic constraints: forced units have
``z_u = 1``, packing rows ``sum a_u z_u <= b`` are master rows, and excluded columns belong
to no unit, so their box is {0}.  It is lowered by 1e-7 x max(1, |U|) (HiGHS's
feasibility tolerance on the cut rows) before use.

Measured (benchmarks/results/glm.md, 2-core machine): n=100, p=10, k=5 proven optimal in
0.1-11 s (median 2.8 s); n=1000, p=100, k=5 or 10 still open after 30 s (relative gap > 100%:
the bound is still below 0) and at 31% after 600 s in a development run.  With bounds that
are provable (|M| about 7-10 against |beta*| about 1 there) a linear cut says little about a
support it was not taken at, so the bound creeps.  The branch and bound of
:mod:`mixmio.solvers.glm.bnb` (optimal in 2-6 s on those instances) is therefore the default engine,
and this one is kept as ``solver="oa"``.
"""

from __future__ import annotations

import time

import numpy as np

from mixmio.problem.glm import GlmProblem
from mixmio.solvers.glm.bounds import coefficient_bounds, highs
from mixmio.solvers.glm.heuristics import Fits
from mixmio.solvers.glm.logistic import value_and_gradient

__all__ = ["solve_oa"]

_SAFETY = 1e-7


class _Master:
    """The OA master MILP in HiGHS: columns eta, beta (p), z (one per unit)."""

    def __init__(self, pr: GlmProblem, lo: np.ndarray, hi: np.ndarray):
        import highspy

        self.pr = pr
        p, nu = pr.p, len(pr.units)
        self.h = h = highs()
        # HiGHS accepts MIP solutions within mip_feasibility_tolerance (default 1e-6) but then
        # checks them against primal_feasibility_tolerance (1e-7) and reports "Solve error"
        # on a mismatch (seen on about 1 in 70 masters under load); equal tolerances avoid it
        h.setOptionValue("mip_feasibility_tolerance", 1e-7)
        inf = highspy.kHighsInf
        h.addVar(-inf, inf)  # eta
        h.addVars(p, lo, hi)
        zlo = np.zeros(nu)
        zlo[list(pr.forced)] = 1.0  # ForceInclude: z_u = 1
        h.addVars(nu, zlo, np.ones(nu))
        h.changeColsIntegrality(nu, np.arange(1 + p, 1 + p + nu, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * nu))
        h.changeColCost(0, 1.0)
        for u, cols in enumerate(pr.units):
            zc = 1 + p + u
            for j in cols:
                # beta_j - hi_j z <= 0  and  beta_j - lo_j z >= 0
                h.addRow(-inf, 0.0, 2, np.array([1 + j, zc], dtype=np.int32),
                         np.array([1.0, -hi[j]]))
                h.addRow(0.0, inf, 2, np.array([1 + j, zc], dtype=np.int32),
                         np.array([1.0, -lo[j]]))
        h.addRow(-inf, float(pr.k), nu, np.arange(1 + p, 1 + p + nu, dtype=np.int32),
                 pr.weights.astype(float))
        for units, coef, rhs in pr.rows:  # packing rows: sum_u a_u z_u <= rhs
            h.addRow(-inf, float(rhs), len(units), (1 + p + np.asarray(units)).astype(np.int32),
                     np.asarray(coef, dtype=float))
        self.n_cuts = 0

    def add_cut(self, b: np.ndarray, val: float, g: np.ndarray) -> None:
        """eta - g'beta >= F(b) - g'b."""
        import highspy

        nz = np.flatnonzero(g)
        idx = np.concatenate([[0], 1 + nz]).astype(np.int32)
        coef = np.concatenate([[1.0], -g[nz]])
        self.h.addRow(float(val - g @ b), highspy.kHighsInf, idx.size, idx, coef)
        self.n_cuts += 1

    def solve(self, time_limit: float, rel_gap: float):
        """Returns (lower bound, support units or None, timed_out)."""
        import highspy

        h = self.h
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
        h.setOptionValue("mip_rel_gap", float(rel_gap))
        h.clearSolver()  # a fresh MIP solve after rows were added (avoids stale solver state)
        h.run()
        st = h.getModelStatus()
        if st == highspy.HighsModelStatus.kSolveError:  # retry once without presolve
            h.setOptionValue("presolve", "off")
            h.clearSolver()
            h.run()
            h.setOptionValue("presolve", "choose")
            st = h.getModelStatus()
        info = h.getInfo()
        bound = float(info.mip_dual_bound)
        timed_out = st in (highspy.HighsModelStatus.kTimeLimit,
                           highspy.HighsModelStatus.kInterrupt)
        if st == highspy.HighsModelStatus.kOptimal or (timed_out and info.primal_solution_status):
            x = np.asarray(h.getSolution().col_value)
            z = x[1 + self.pr.p:]
            units = [int(u) for u in np.flatnonzero(z > 0.5)]
            return bound, units, timed_out
        return (bound if timed_out else -np.inf), None, timed_out




def solve_oa(pr: GlmProblem, fits: Fits, deadline: float, mip_gap: float, log
             ) -> tuple[float, bool, dict]:
    """Run outer approximation from the incumbent in ``fits``.

    Returns ``(best bound, timed_out, info)``; the incumbent is ``fits.best_key``.
    """
    if time.perf_counter() >= deadline:
        # nothing proven yet: the trivial valid bound (F >= 0)
        return 0.0, True, {"iterations": 0, "cuts": 0, "bounds": None, "master_failed": None}
    lo, hi = coefficient_bounds(pr, fits.best_val)
    log(f"bounds: max |M| = {max(np.max(hi), -np.min(lo)):.4g}")
    master = _Master(pr, lo, hi)
    for b, val in fits.store.values():
        _, g = value_and_gradient(b, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
        master.add_cut(b, val, g)
    bound = 0.0  # F >= 0: the trivial valid bound until the master proves more
    timed_out = False
    failed = None
    iters = repeats = 0
    safety = _SAFETY * max(1.0, abs(fits.best_val))
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        lb, units, t_out = master.solve(remaining, rel_gap=mip_gap / 4)
        iters += 1
        if np.isfinite(lb):
            bound = max(bound, min(lb - safety, fits.best_val))
        gap = (fits.best_val - bound) / max(abs(fits.best_val), 1e-10)
        log(f"iter {iters}: incumbent {fits.best_val:.6f} bound {bound:.6f} gap {gap:.2e} "
            f"cuts {master.n_cuts}")
        if gap <= mip_gap:
            break
        if t_out:
            timed_out = True
            break
        if units is None:  # HiGHS failed: keep the incumbent and the bound proven so far
            failed = master.h.modelStatusToString(master.h.getModelStatus())
            log(f"master failed: {failed}")
            break
        key = frozenset(units)
        if key in fits.store:
            # a support already cut: its value is within the floating-point margins of the
            # master's bound, so nothing more can be proven
            repeats += 1
            if repeats >= 2:
                break
        b, val = fits.fit(key)
        _, g = value_and_gradient(b, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
        master.add_cut(b, val, g)
    return bound, timed_out, {"iterations": iters, "cuts": master.n_cuts, "bounds": (lo, hi),
                              "master_failed": failed}
