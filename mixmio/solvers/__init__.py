"""The solve stage: ``Problem`` (+ warm start) -> ``Solution``.

Public entry point :func:`solve`.  Backends:

- ``"heuristic"``: :func:`mixmio.solvers.heuristics.warm_start` only (no certificate);
- ``"engine"``: the specialised exact engine ``mixmio.solvers.lmm.intercept`` (when present);
- ``"subset"``: the exact best-subset branch-and-bound :mod:`mixmio.solvers.subset.engine`
  (fixed-effects-only problems: one cap on beta, optional linear rows on the indicators and an
  optional l1 term);
- any installed CVXPY mixed-integer quadratic solver (``"SCIP"``, ``"GUROBI"``, ...) through
  :func:`mixmio.solvers.cvxpy_backend.solve_cvxpy`;
- ``"auto"``: the intercept engine when it is importable and ``applies(problem)`` (problems with
  holistic parts -- linear rows, sign caps, an l1 term -- only if the engine declares
  ``accepts_constraints``); else the subset engine when it applies; otherwise Gurobi when its
  licence allows the model size, else SCIP.  ``Solution.solver`` names the engine that ran.
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
    capped = np.zeros(problem.n_coef, dtype=bool)
    capped[problem.capped] = True
    for row in problem.constraints:
        idx = np.asarray(getattr(row, "index", []), dtype=int)
        if not hasattr(row, "sense") or np.any(~capped[idx]):
            raise ValueError(f"constraint {getattr(row, 'name', row)!r} must be a "
                             "LinearConstraint on coefficients that carry an indicator")
    for sc in problem.sign_caps:
        if np.any(~capped[np.asarray(sc.index, dtype=int)]):
            raise ValueError(f"sign cap {sc.label!r} covers coefficients outside every cap")
    if problem.l1 is not None:
        l1 = np.asarray(problem.l1, dtype=float)
        if l1.shape != (problem.n_coef,) or np.any(l1 < 0) or not np.all(np.isfinite(l1)):
            raise ValueError("l1 must hold one finite non-negative weight per coefficient")


def _subset_engine():
    from mixmio.solvers.subset import engine as subset_engine

    return subset_engine


def _engine():
    try:
        from mixmio.solvers.lmm import intercept as intercept_engine
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

    names = ["auto", "heuristic", "subset"] + miqp_solvers()
    if _engine() is not None:
        names.insert(1, "engine")
    return names


def check_solver(solver: str) -> str:
    """The solver's name, checked: ``auto``, ``heuristic``, ``engine``, ``subset`` or an
    installed CVXPY mixed-integer solver (else ValueError listing the installed ones)."""
    name = str(solver)
    if name.lower() in ("auto", "heuristic", "engine", "subset"):
        return name
    # cvxpy is imported only when a CVXPY backend may run (it costs ~1.5 s per process)
    from mixmio.solvers import cvxpy_backend

    return cvxpy_backend._check_solver(name)


def solve(problem: Problem, solver: str = "auto", time_limit: float | None = None,
          mip_gap: float = 1e-4, warm_start: bool = True, random_state=None,
          verbose: bool = False, formulation: str = "bigm", warm=None) -> Solution:
    """Solve the ℓ0-capped ridge least-squares problem.

    ``warm``: a previous Solution or a boolean support mask over w (e.g. the full-data support
    reused by bootstrap replicates or a path over k); it is polished and handed to the backend
    as its first incumbent.  ``warm_start``: also run the discrete first-order heuristic (the
    engines run their own structure-aware heuristics instead).  The CVXPY backend needs a
    feasible objective value for its valid big-M bounds, so it always has an incumbent.
    ``formulation`` ("bigm" or "perspective") applies to CVXPY backends.  Raises ``ValueError``
    for an invalid cap or an unknown/uninstalled solver.

    >>> import mixmio
    >>> from mixmio.problem.build import build_problem
    >>> data = mixmio.datasets.load("sleepstudy")
    >>> design = mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
    >>> sol = solve(build_problem(design, k=3))
    >>> sol.status, sol.solver
    ('optimal', 'mixmio-bnb')
    """
    from mixmio.solvers.heuristics import warm_start as _heuristic

    _validate(problem)
    name = check_solver(solver)
    key = name.lower()
    mask = _warm_mask(problem, warm)
    eng = _engine() if key in ("auto", "engine") else None
    if eng is not None and not (eng.applies(problem) and (
            problem.is_plain or getattr(eng, "accepts_constraints", False))):
        eng = None
    if eng is not None and key == "auto" and _prefer_cvxpy(eng, problem):
        eng = None
    sub = _subset_engine() if key in ("auto", "subset") and eng is None else None
    if sub is not None and not sub.applies(problem):
        if key == "subset":
            raise ValueError("the subset engine does not apply to this problem: "
                             f"{sub.why_not(problem)}")
        sub = None
    if eng is not None:  # the engines only need the support; they fit it themselves
        from mixmio.solvers.bnb.bestfirst import VERBOSE

        token = VERBOSE.set(bool(verbose))  # progress lines from the branch and bound
        try:
            return eng.solve_engine(problem, time_limit=time_limit, mip_gap=mip_gap, warm=mask)
        finally:
            VERBOSE.reset(token)
    warm = _polished(problem, mask)
    if sub is not None:
        return sub.solve_subset(problem, time_limit=time_limit, mip_gap=mip_gap,
                                warm_start=warm_start, random_state=random_state, warm=warm)
    if key == "engine":
        raise ValueError("the intercept engine is not available or does not apply to this "
                         f"problem; installed solvers: {installed_solvers()}")
    heur = _heuristic(problem, random_state=random_state) \
        if (warm is None or warm_start or key == "heuristic") else None
    if warm is None or (heur is not None and heur.objective < warm.objective):
        warm = heur
    if key == "heuristic":
        return warm
    if key == "auto":
        name = _auto_cvxpy_solver(problem, formulation)
    from mixmio.solvers import cvxpy_backend

    return cvxpy_backend.solve_cvxpy(problem, solver=name, time_limit=time_limit,
                                     mip_gap=mip_gap, warm=warm, formulation=formulation,
                                     verbose=verbose)


def _warm_mask(problem: Problem, warm) -> np.ndarray | None:
    """A warm start's support as a boolean mask over w, or None when it is not feasible here
    (e.g. a support chosen under other caps)."""
    if warm is None:
        return None
    mask = warm.w != 0 if isinstance(warm, Solution) else np.asarray(warm, dtype=bool)
    if mask.shape != (problem.n_coef,):
        raise ValueError(f"warm must be a Solution or a boolean mask of length {problem.n_coef}")
    return mask if problem.is_feasible(mask.astype(float)) else None


def _polished(problem: Problem, mask: np.ndarray | None) -> Solution | None:
    """The support refitted (ridge) as an incumbent Solution, for the backends that need a
    feasible objective value (CVXPY's big-M bounds, the subset engine's first incumbent)."""
    if mask is None:
        return None
    from mixmio.solvers.heuristics import polish

    w, obj = polish(problem, mask)
    return Solution(w=w, objective=obj, best_bound=0.0, status="heuristic", solver="warm",
                    solve_time=0.0)


def _prefer_cvxpy(eng, problem: Problem) -> bool:
    """Small crossed/nested models: a general MIQP solver certifies them faster than the
    crossed engine, whose bound is built for many levels (benchmarks/ENGINE.md section 8)."""
    found = eng.structure(problem) if hasattr(eng, "structure") else None
    return bool(found) and found[0] == "crossed" and problem.n_coef + len(problem.capped) <= 400


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
