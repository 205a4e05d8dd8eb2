"""Solver dispatch of mio_glmer: GlmmProblem (+ warm start) -> Solution.

- ``"auto"``: the exact random-intercept branch and bound (:mod:`mixmio.solvers.glmer.engine`) when
  it applies (one ``(1 | g)`` term, its cap, ForceInclude / Exclude of clusters), else SCIP
  through :mod:`mixmio.solvers.glmer.scip` (any random terms, sign caps, every indicator row);
- ``"bnb"`` (or the old ``"engine"`` / ``"mixmio-glmer-bnb"``): the branch and bound, refused
  when it does not apply;
- ``"SCIP"``: the MINLP route for every model;
- ``"heuristic"``: the heuristic alone (status ``heuristic``, no bound).
"""

from __future__ import annotations

from mixmio.errors import ArgumentError
from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.solution import Solution

__all__ = ["SOLVERS", "check_glmer_solver", "solve_glmm"]

#: accepted spellings (the GlmmProblem engines of :mod:`mixmio.solvers.engines` answer to
#: them: "bnb" also as "engine" / "mixmio-glmer-bnb", "SCIP" in any case)
SOLVERS = ("auto", "bnb", "engine", "mixmio-glmer-bnb", "SCIP", "heuristic")
#: the front door's canonical spelling of each accepted name (as stored in the settings)
_CANONICAL = {"auto": "auto", "engine": "engine", "mixmio-glmer-bnb": "engine", "bnb": "engine",
              "scip": "SCIP", "heuristic": "heuristic"}


def check_glmer_solver(solver) -> str:
    """The canonical solver name; refuses unknown ones (before any design is built)."""
    if isinstance(solver, str) and solver.lower() in _CANONICAL:
        return _CANONICAL[solver.lower()]
    raise ArgumentError(f"solver must be one of {list(SOLVERS)} for mio_glmer, got {solver!r}")


def solve_glmm(problem: GlmmProblem, solver: str = "auto", time_limit: float | None = None,
               mip_gap: float = 1e-4, warm=None, random_state=None,
               verbose: bool = False) -> Solution:
    """Solve the capped GLMM with the registry's engine (``auto``: the branch and bound when
    it applies, else SCIP); ``warm`` is a previous Solution or a bool mask over w."""
    from mixmio.solvers.engines import NoEngineError, select

    name = check_glmer_solver(solver)
    try:
        engine = select(problem, name)
    except NoEngineError as exc:
        if name == "engine":
            raise ArgumentError(
                "solver='engine' (the random-intercept branch and bound) needs one (1 | g) "
                "term with one cap and no constraints other than ForceInclude / Exclude of "
                "clusters; use solver='auto' or 'SCIP' for this model") from exc
        raise
    from mixmio._runtime import verbose_logging

    with verbose_logging(verbose):
        return engine.run(problem, time_limit=time_limit, mip_gap=mip_gap, warm=warm,
                          seed=random_state, verbose=verbose)
