"""The solve stage: a problem (+ warm start) -> ``Solution``.

Public entry point :func:`solve`.  The engines are the records of
:data:`mixmio.solvers.engines.ENGINES`, one ordered list for every problem type; :func:`solve`
runs the least-squares :class:`~mixmio.problem.Problem` (mio_lmer, mio_lm, holistic
regression) through it.  Names (case-insensitive; the registry's module docstring has the
scheme shared by every family):

- ``"bnb-intercept"``, ``"bnb-slopes"``, ``"bnb-crossed"`` (together ``"bnb"``, old alias
  ``"engine"``): the specialised exact engines of ``mixmio.solvers.lmm``;
- ``"subset"``: the exact best-subset branch and bound :mod:`mixmio.solvers.subset.engine`
  (fixed-effects-only problems: one cap on beta, optional linear rows on the indicators and an
  optional l1 term);
- ``"heuristic"``: :func:`mixmio.solvers.heuristics.warm_start` only (no certificate);
- any installed CVXPY mixed-integer quadratic solver, spelled as CVXPY spells it (``"SCIP"``,
  ``"GUROBI"``, ``"MOSEK"``, ...) through :func:`mixmio.solvers.cvxpy_backend.solve_cvxpy`;
- ``"auto"``: the first engine of the list that applies: an exact lmm engine (except the
  crossed engine on small models, which a general MIQP solver certifies faster), else the
  subset engine, otherwise Gurobi when its licence allows the model size, else SCIP.
  ``Solution.solver`` names the engine that ran.

:func:`solve_glm` runs a :class:`~mixmio.problem.glm.GlmProblem` (mio_glm) through the same
list, and :func:`solve_engine` a least-squares problem through the exact ``"bnb"`` engines only.
"""

from __future__ import annotations

import numpy as np

from mixmio.problem import Problem
from mixmio.solvers.solution import STATUSES, Solution, relative_gap

__all__ = ["solve", "solve_glm", "solve_engine", "Solution", "STATUSES", "relative_gap",
           "installed_solvers"]



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


def installed_solvers() -> list[str]:
    """Names accepted by :func:`solve` on this machine (from the engine registry)."""
    from mixmio.solvers.engines import installed_names

    return installed_names(Problem)


def check_solver(solver: str) -> str:
    """The solver's name, checked against the engine registry: ``auto`` or the name (or an
    alias) of an installed engine for a least-squares Problem; a CVXPY solver's name comes
    back as CVXPY spells it (upper case).  Else ValueError listing the installed ones."""
    from mixmio.solvers.engines import check_name, engines_for

    name = check_name(solver, Problem)
    for e in engines_for(Problem):
        if e.answers_to(name) and e.name.isupper():
            return e.name
    return name


def solve(problem: Problem, solver: str = "auto", time_limit: float | None = None,
          mip_gap: float = 1e-4, warm_start: bool = True, random_state=None,
          verbose: bool = False, formulation: str = "bigm", warm=None) -> Solution:
    """Solve the ℓ0-capped ridge least-squares problem with an engine of the registry
    (:data:`mixmio.solvers.engines.ENGINES`).

    ``solver``: ``"auto"`` (the first engine of the list that applies, see the module
    docstring) or a name, matched case-insensitively.  Canonical names: mixmio's own engines
    in lower case (``"bnb-intercept"``, ``"bnb-slopes"``, ``"bnb-crossed"``, together
    ``"bnb"``; ``"subset"``; ``"heuristic"``), outside solvers as CVXPY spells them
    (``"SCIP"``, ``"GUROBI"``, ...).  The same scheme names the engines of mio_glm (``"bnb"``,
    ``"oa"``, ``"heuristic"``), mio_glmer (``"bnb"``, ``"SCIP"``, ``"heuristic"``) and mio_clr
    (``"HIGHS"``, ``"GUROBI"``, ``"heuristic"``).  Old spellings stay accepted: ``"engine"``
    (= ``"bnb"``), ``"mixmio-glmer-bnb"``, lower-case ``"scip"`` / ``"highs"`` / ``"gurobi"``.
    A named engine that does not apply raises ``ValueError`` with its reason.
    ``verbose``: show the engines' progress lines (the ``mixmio`` logger at INFO) and the
    CVXPY solver's log on stderr.

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
    from mixmio._runtime import verbose_logging
    from mixmio.solvers.engines import select

    _validate(problem)
    check_solver(solver)
    mask = _warm_mask(problem, warm)
    engine = select(problem, solver, {"formulation": formulation})
    with verbose_logging(verbose):
        return engine.run(problem, time_limit=time_limit, mip_gap=mip_gap, warm=mask,
                          seed=random_state, warm_start=warm_start, formulation=formulation,
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


def solve_glm(pr, solver: str = "auto", time_limit: float | None = None,
              mip_gap: float = 1e-4, random_state: int | np.random.Generator | None = None,
              warm_start_: bool = True, verbose: bool = False) -> Solution:
    """Solve ``pr`` with the engine ``solver`` (module docstring), chosen by the registry
    (:mod:`mixmio.solvers.engines`); ``verbose`` shows the progress lines (the ``mixmio``
    logger at INFO) on stderr."""
    from mixmio._runtime import verbose_logging
    from mixmio.solvers.engines import GLM_SOLVERS, select

    if solver not in GLM_SOLVERS:
        raise ValueError(f"solver must be one of {list(GLM_SOLVERS)}, got {solver!r}")
    with verbose_logging(verbose):
        return select(pr, solver).run(pr, time_limit=time_limit, mip_gap=mip_gap,
                                      seed=random_state, warm_start=warm_start_)


def solve_engine(problem: Problem, time_limit: float | None = None, mip_gap: float = 1e-4,
                 warm=None, random_state=None, log: list | None = None) -> Solution:
    """Solve a random-intercept, random-slope or crossed-intercept Problem exactly with the
    registered engine that applies (``solver="bnb"`` of :mod:`mixmio.solvers.engines`).

    ``warm``: a Solution or a boolean support mask (length K, or p + K over w) used as an extra
    starting support.  ``log``: optional list that receives ("incumbent" | "bound", seconds,
    value) events (for time-to-gap trajectories).  Status is ``"optimal"`` only when the proven
    relative gap is at most ``mip_gap``; otherwise ``"time_limit"`` (with a warning).  Raises
    ValueError (listing each engine's reason) when none applies.
    """
    from mixmio.solvers.engines import select

    del random_state  # deterministic; accepted for API symmetry
    return select(problem, "bnb").run(problem, time_limit=time_limit, mip_gap=mip_gap,
                                      warm=warm, log=log)
