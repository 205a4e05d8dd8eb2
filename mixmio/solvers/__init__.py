"""The solve stage: ``Problem`` (+ warm start) -> ``Solution``.

Public entry point :func:`solve`.  Backends:

- ``"heuristic"``: :func:`mixmio.solvers.heuristics.warm_start` only (no certificate);
- ``"engine"``: the specialised exact engine ``mixmio.solvers.intercept_engine`` (when present);
- any installed CVXPY mixed-integer quadratic solver (``"SCIP"``, ``"GUROBI"``, ...) through
  :func:`mixmio.solvers.cvxpy_backend.solve_cvxpy`;
- ``"auto"``: the engine when it is importable and ``applies(problem)``; otherwise Gurobi when its
  licence allows the model size, else SCIP.
"""

from __future__ import annotations

import numpy as np

from mixmio.problem import Problem
from mixmio.solvers.solution import STATUSES, Solution, relative_gap

__all__ = ["solve", "Solution", "STATUSES", "relative_gap", "installed_solvers"]



def _validate(problem: Problem) -> None:
    for cap in problem.caps:
        size = len(cap.index)
        if int(cap.k) != cap.k or cap.k < 0 or cap.k > size:
            raise ValueError(f"cap {cap.label!r}: k={cap.k} must be an integer in [0, {size}]")
    if problem.penalized.shape != (problem.n_coef,):
        raise ValueError("penalized mask must have one entry per coefficient")


def _engine():
    try:
        from mixmio.solvers import intercept_engine  # noqa: PLC0415 - optional, written elsewhere
    except ImportError:
        return None
    if not (hasattr(intercept_engine, "applies") and hasattr(intercept_engine, "solve_engine")):
        return None
    return intercept_engine


def _gurobi_full_licence() -> bool:
    from mixmio.solvers.cvxpy_backend import gurobi_full_licence

    return gurobi_full_licence()


def installed_solvers() -> list[str]:
    """Names accepted by :func:`solve` on this machine."""
    from mixmio.solvers.cvxpy_backend import miqp_solvers

    names = ["auto", "heuristic"] + miqp_solvers()
    if _engine() is not None:
        names.insert(1, "engine")
    return names


def solve(problem: Problem, solver: str = "auto", time_limit: float | None = None,
          mip_gap: float = 1e-4, warm_start: bool = True, random_state=None,
          verbose: bool = False, formulation: str = "bigm") -> Solution:
    """Solve the ℓ0-capped ridge least-squares problem.

    ``warm_start``: run the discrete first-order heuristic first and hand its solution to the
    backend (MIP start / incumbent).  The CVXPY backend needs a feasible objective value for its
    valid big-M bounds, so it runs the heuristic even when ``warm_start=False`` (it then only
    skips passing it on to the engine).  ``formulation`` ("bigm" or "perspective") applies to
    CVXPY backends.  Raises ``ValueError`` for an invalid cap or an unknown/uninstalled solver.
    """
    from mixmio.solvers import cvxpy_backend
    from mixmio.solvers.heuristics import warm_start as _heuristic

    _validate(problem)
    name = str(solver)
    key = name.lower()
    if key not in ("auto", "heuristic", "engine"):
        name = cvxpy_backend._check_solver(name)  # raises ValueError listing installed solvers
    warm = _heuristic(problem, random_state=random_state) if (warm_start or key != "engine") \
        else None
    if key == "heuristic":
        return warm
    if key in ("auto", "engine"):
        eng = _engine()
        if eng is not None and eng.applies(problem):
            return eng.solve_engine(problem, time_limit=time_limit, mip_gap=mip_gap,
                                    warm=warm if warm_start else None)
        if key == "engine":
            raise ValueError("the intercept engine is not available or does not apply to this "
                             f"problem; installed solvers: {installed_solvers()}")
        name = _auto_cvxpy_solver(problem, formulation)
    return cvxpy_backend.solve_cvxpy(problem, solver=name, time_limit=time_limit,
                                     mip_gap=mip_gap, warm=warm, formulation=formulation,
                                     verbose=verbose)


def _auto_cvxpy_solver(problem: Problem, formulation: str) -> str:
    from mixmio.solvers.cvxpy_backend import miqp_solvers

    avail = miqp_solvers()
    if "GUROBI" in avail:
        n_ind = int(np.asarray(problem.capped).size)
        n_vars = problem.n_coef + n_ind * (2 if formulation == "perspective" else 1)
        if n_vars <= 200 or _gurobi_full_licence():
            return "GUROBI"
    if "SCIP" in avail:
        return "SCIP"
    if avail:
        return avail[0]
    raise ValueError("no mixed-integer quadratic solver installed (install pyscipopt for SCIP)")
