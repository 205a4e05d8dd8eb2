"""Solver dispatch of mio_glmer: GlmmProblem (+ warm start) -> Solution.

- ``"auto"``: the exact random-intercept branch and bound (:mod:`mixmio.solvers.glmer.engine`) when
  it applies (one ``(1 | g)`` term, its cap, ForceInclude / Exclude of clusters), else SCIP
  through :mod:`mixmio.solvers.glmer.scip` (any random terms, sign caps, every indicator row);
- ``"engine"`` (or ``"mixmio-glmer-bnb"``): the branch and bound, refused when it does not
  apply;
- ``"SCIP"``: the MINLP route for every model;
- ``"heuristic"``: the heuristic alone (status ``heuristic``, no bound).
"""

from __future__ import annotations

from mixmio.errors import ArgumentError
from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.solution import Solution

__all__ = ["SOLVERS", "check_glmer_solver", "solve_glmm"]

SOLVERS = ("auto", "engine", "mixmio-glmer-bnb", "SCIP", "heuristic")


def check_glmer_solver(solver) -> str:
    """The canonical solver name; refuses unknown ones (before any design is built)."""
    if isinstance(solver, str):
        for s in SOLVERS:
            if solver.lower() == s.lower():
                return "engine" if s == "mixmio-glmer-bnb" else s
    raise ArgumentError(f"solver must be one of {list(SOLVERS)} for mio_glmer, got {solver!r}")


def solve_glmm(problem: GlmmProblem, solver: str = "auto", time_limit: float | None = None,
               mip_gap: float = 1e-4, warm=None, random_state=None,
               verbose: bool = False) -> Solution:
    """Solve the capped GLMM; ``warm`` is a previous Solution or a bool mask over w."""
    from mixmio.solvers.glmer import engine

    name = check_glmer_solver(solver)
    if name == "heuristic":
        from mixmio.solvers.glmer.heuristic import heuristic

        return heuristic(problem, warm=warm, random_state=random_state)
    if name in ("auto", "engine"):
        if engine.applies(problem):
            return engine.solve_engine(problem, time_limit=time_limit, mip_gap=mip_gap,
                                       warm=warm, verbose=verbose)
        if name == "engine":
            raise ArgumentError(
                "solver='engine' (the random-intercept branch and bound) needs one (1 | g) "
                "term with one cap and no constraints other than ForceInclude / Exclude of "
                "clusters; use solver='auto' or 'SCIP' for this model")
    from mixmio.solvers.glmer.scip import solve_scip

    return solve_scip(problem, time_limit=time_limit, mip_gap=mip_gap, warm=warm,
                      verbose=verbose)
