"""The engine registry: one :class:`Engine` record per engine, in one ordered list.

Every engine that turns a problem into a :class:`~mixmio.solvers.solution.Solution` is one
entry of :data:`ENGINES` (in the spirit of cvxpy's ``reductions/solvers/defines.py``).  An
entry holds its ``name``, the problem class it solves (``problem_type``: the least-squares
:class:`~mixmio.problem.Problem` of mio_lmer / mio_lm, :class:`~mixmio.problem.glm.GlmProblem`,
:class:`~mixmio.problem.glmer.GlmmProblem` or :class:`~mixmio.problem.clr.ClrProblem`),
``why_not(problem)`` (None when it solves the problem exactly, else the reason),
``run(problem, *, time_limit, mip_gap, warm, seed, **options)`` and ``installed()``.

Names (one scheme for every family; matched case-insensitively):

- mixmio's own engines are lower case: ``"bnb"`` is the family's exact branch and bound
  (``"bnb-intercept"``, ``"bnb-slopes"``, ``"bnb-crossed"`` for least squares; the GLM and
  GLMM branch and bounds), ``"subset"`` the best-subset branch and bound, ``"oa"`` outer
  approximation (GLM), ``"heuristic"`` the family's heuristic alone (no certificate);
- outside solvers are spelled as CVXPY spells them: ``"SCIP"``, ``"GUROBI"``, ``"HIGHS"``,
  ``"MOSEK"``, ...;
- ``"auto"``: the first installed engine of the problem's type, in list order, that applies
  (``why_not`` is None) and that ``auto`` may pick (``auto=True`` and ``prefer_not`` None).
  The order encodes every preference (e.g. small crossed models go to a general MIQP solver,
  Gurobi's size-limited licence hands larger models to SCIP).

Old spellings stay accepted as aliases: ``"engine"`` (= ``"bnb"``), ``"mixmio-glmer-bnb"``,
and every name in any letter case (``"scip"``, ``"Gurobi"``, ``"highs"``).  A name shared by
several engines (``"bnb"`` for least squares) takes the first of them that applies.

A new engine is one new entry in :data:`ENGINES` (the contract test
``tests/solvers/test_engine_contract.py`` then runs its battery on it).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mixmio.errors import MissingDependencyError
from mixmio.problem import Problem
from mixmio.problem.clr import ClrProblem
from mixmio.problem.glm import GlmProblem
from mixmio.problem.glmer import GlmmProblem

if TYPE_CHECKING:
    from mixmio.solvers.solution import Solution

__all__ = ["Engine", "ENGINES", "NoEngineError", "engines_for", "select", "accepted_names",
           "installed_names", "check_name", "GLM_SOLVERS", "CLR_SOLVERS"]


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Engine:
    """One engine: see the module docstring.

    ``aliases``: other accepted names (case-insensitive); ``auto``: may ``solver="auto"`` pick
    it; ``extra``: the pip extra that installs it (``"scip"`` for ``mixmio[scip]``; None: core
    or the user's own install); ``prefer_not(problem, options)``: a reason ``"auto"`` passes
    over it although it applies (a preference, not a limitation: when no later engine applies,
    auto still takes it; None: no objection)."""

    name: str
    problem_type: type
    # the problem argument is Any: each engine's functions take its own problem_type
    why_not: Callable[[Any], str | None]
    run: Callable[..., Solution]
    installed: Callable[[], bool] = _always
    aliases: tuple[str, ...] = ()
    auto: bool = True
    prefer_not: Callable[[Any, dict], str | None] | None = None
    extra: str | None = None

    def install_hint(self) -> str:
        """How to install it: ``pip install 'mixmio[EXTRA]'``, or "" when no extra has it."""
        return f"pip install 'mixmio[{self.extra}]'" if self.extra else ""

    def answers_to(self, name: str) -> bool:
        key = str(name).lower()
        return key == self.name.lower() or key in (a.lower() for a in self.aliases)


class NoEngineError(ValueError):
    """No installed engine applies (the message lists each engine's reason)."""


# ------------------------------------------------------------------------- least squares
def _lmm_structure_why(kind: str):
    def why_not(problem: Problem) -> str | None:
        from mixmio.solvers.lmm.intercept import structure

        found = structure(problem)
        if found is None:
            return ("not a plain random-intercept, random-slope or crossed-intercept problem "
                    "(ridge > 0 on every gamma and none on beta, no holistic parts, Z the "
                    "terms' columns, every cap one term column block)")
        if found[0] != kind:
            return f"a {found[0]} problem"
        return None

    return why_not


def _lmm_bnb_run(kind: str):
    def run(problem: Problem, *, time_limit=None, mip_gap=1e-4, warm=None, seed=None,
            log=None, **_):
        from mixmio.solvers.lmm import intercept

        return intercept.RUNNERS[kind](problem, time_limit, mip_gap, warm, log)

    return run


def _small_crossed(problem: Problem, options: dict) -> str | None:
    """Small crossed/nested models: a general MIQP solver certifies them faster than the
    crossed engine, whose bound is built for many levels (benchmarks/ENGINE.md section 8)."""
    if problem.n_coef + len(problem.capped) <= 400:
        return "a small crossed model: a general MIQP solver certifies it faster"
    return None


def _polished(problem: Problem, mask):
    """The support refitted (ridge) as an incumbent Solution, for the backends that need a
    feasible objective value (CVXPY's big-M bounds, the subset engine's first incumbent)."""
    if mask is None:
        return None
    from mixmio.solvers.heuristics import polish
    from mixmio.solvers.solution import Solution

    w, obj = polish(problem, mask)
    return Solution(w=w, objective=obj, best_bound=0.0, status="heuristic", solver="warm",
                    solve_time=0.0)


def _subset_why(problem: Problem) -> str | None:
    from mixmio.solvers.subset.engine import why_not

    return why_not(problem)


def _subset_run(problem: Problem, *, time_limit=None, mip_gap=1e-4, warm=None, seed=None,
                warm_start=True, **_):
    from mixmio.solvers.subset.engine import solve_subset

    return solve_subset(problem, time_limit=time_limit, mip_gap=mip_gap,
                        warm_start=warm_start, random_state=seed, warm=_polished(problem, warm))


def _best_start(problem: Problem, warm, seed, run_heuristic: bool):
    from mixmio.solvers.heuristics import warm_start as _heuristic

    start = _polished(problem, warm)
    heur = _heuristic(problem, random_state=seed) if (start is None or run_heuristic) else None
    if start is None or (heur is not None and heur.objective < start.objective):
        start = heur
    return start


def _lmm_heuristic_run(problem: Problem, *, time_limit=None, mip_gap=1e-4, warm=None,
                       seed=None, **_):
    return _best_start(problem, warm, seed, True)


def _no_reason(problem) -> str | None:
    return None


@functools.cache
def _cvxpy_miqp() -> tuple[str, ...]:
    """The installed CVXPY MIQP solvers, asked once per process (``cp.installed_solvers()``
    costs about 5 ms, and auto may ask for several engines on every solve)."""
    if importlib.util.find_spec("cvxpy") is None:
        return ()
    from mixmio.solvers.cvxpy_backend import miqp_solvers

    return tuple(miqp_solvers())


def _cvxpy_installed(name: str):
    def installed() -> bool:
        return name in _cvxpy_miqp()

    return installed


def _cvxpy_run(name: str):
    def run(problem: Problem, *, time_limit=None, mip_gap=1e-4, warm=None, seed=None,
            warm_start=True, formulation="bigm", verbose=False, **_):
        from mixmio.solvers import cvxpy_backend

        start = _best_start(problem, warm, seed, warm_start)
        return cvxpy_backend.solve_cvxpy(problem, solver=name, time_limit=time_limit,
                                         mip_gap=mip_gap, warm=start, formulation=formulation,
                                         verbose=verbose)

    return run


def _gurobi_size_rule(problem: Problem, options: dict) -> str | None:
    """Gurobi's pip licence: a quadratic model may have at most 200 variables.  Larger models
    go to SCIP when it is installed (without SCIP, Gurobi still runs, as before)."""
    from mixmio.solvers.cvxpy_backend import gurobi_full_licence

    n_ind = int(np.asarray(problem.capped).size)
    perspective = options.get("formulation", "bigm") == "perspective"
    n_vars = problem.n_coef + n_ind * (2 if perspective else 1)
    if n_vars <= 200 or "SCIP" not in _cvxpy_miqp() or gurobi_full_licence():
        return None
    return f"{n_vars} variables exceed the size-limited licence's 200 (SCIP takes it)"


#: CVXPY mixed-integer quadratic solvers, in the order "auto" tries them
_CVXPY_ORDER = ("GUROBI", "SCIP", "MOSEK", "CPLEX", "XPRESS", "COPT", "KNITRO", "ECOS_BB")


#: the extras that install a CVXPY solver (cvxpy and the solver's own package)
_CVXPY_EXTRAS = {"SCIP": "scip", "GUROBI": "gurobi"}


def _cvxpy_engine(name: str) -> Engine:
    return Engine(name, Problem, _no_reason, _cvxpy_run(name), _cvxpy_installed(name),
                  aliases=(f"cvxpy-{name}",), extra=_CVXPY_EXTRAS.get(name),
                  prefer_not=_gurobi_size_rule if name == "GUROBI" else None)


# ------------------------------------------------------------------------------------- GLM
def _glm_run(key: str):
    def run(problem: GlmProblem, *, time_limit=None, mip_gap=1e-4, warm=None, seed=None,
            warm_start=True, verbose=False, **_):
        from mixmio.solvers.glm.engine import run_glm

        return run_glm(problem, key, time_limit=time_limit, mip_gap=mip_gap,
                       random_state=seed, warm_start_=warm_start, verbose=verbose)

    return run


def _module_installed(module: str):
    def installed() -> bool:
        return importlib.util.find_spec(module) is not None

    return installed


# ------------------------------------------------------------------------------------ GLMM
def _glmm_bnb_why(problem: GlmmProblem) -> str | None:
    from mixmio.solvers.glmer.engine import applies

    if applies(problem):
        return None
    return ("the random-intercept branch and bound needs one (1 | g) term with one cap and no "
            "constraints other than ForceInclude / Exclude of clusters")


def _glmm_bnb_run(problem: GlmmProblem, *, time_limit=None, mip_gap=1e-4, warm=None,
                  seed=None, verbose=False, **_):
    from mixmio.solvers.glmer.engine import solve_engine

    return solve_engine(problem, time_limit=time_limit, mip_gap=mip_gap, warm=warm,
                        verbose=verbose)


def _glmm_scip_run(problem: GlmmProblem, *, time_limit=None, mip_gap=1e-4, warm=None,
                   seed=None, verbose=False, **_):
    from mixmio.solvers.glmer.scip import solve_scip

    return solve_scip(problem, time_limit=time_limit, mip_gap=mip_gap, warm=warm,
                      verbose=verbose)


def _glmm_heuristic_run(problem: GlmmProblem, *, time_limit=None, mip_gap=1e-4, warm=None,
                        seed=None, **_):
    from mixmio.solvers.glmer.heuristic import heuristic

    return heuristic(problem, warm=warm, random_state=seed)


# ------------------------------------------------------------------------------------- CLR
def _clr_run(key: str):
    def run(problem: ClrProblem, *, time_limit=None, mip_gap=1e-4, warm=None, seed=None,
            verbose=False, **options):
        """Solve the CLR problem's data again (the big-M and the formulation are rebuilt from
        the warm start, as mio_clr does); returns the Solution."""
        from mixmio.solvers.clr.solve import solve_clr

        options.pop("warm_start", None)
        options.setdefault("formulation", problem.formulation
                           if problem.formulation in ("bigm", "lines") else "auto")
        options.setdefault("symmetry_breaking", problem.symmetry_breaking)
        _, sol = solve_clr(problem.X, problem.y, problem.n_clusters,
                           outlier_penalty=problem.outlier_penalty, min_size=problem.min_size,
                           solver=key, time_limit=time_limit, mip_gap=mip_gap,
                           random_state=seed, verbose=verbose, **options)
        return sol

    return run


#: every engine, in the order ``solver="auto"`` tries them (per problem type)
ENGINES: tuple[Engine, ...] = (
    # least squares (mio_lmer, mio_lm, holistic_regression)
    Engine("bnb-intercept", Problem, _lmm_structure_why("intercept"),
           _lmm_bnb_run("intercept"), aliases=("bnb", "engine")),
    Engine("bnb-slopes", Problem, _lmm_structure_why("slopes"), _lmm_bnb_run("slopes"),
           aliases=("bnb", "engine")),
    Engine("bnb-crossed", Problem, _lmm_structure_why("crossed"), _lmm_bnb_run("crossed"),
           aliases=("bnb", "engine"), prefer_not=_small_crossed),
    Engine("subset", Problem, _subset_why, _subset_run),
    Engine("heuristic", Problem, _no_reason, _lmm_heuristic_run, auto=False),
    *(_cvxpy_engine(name) for name in _CVXPY_ORDER),
    # logistic GLM (mio_glm)
    Engine("bnb", GlmProblem, _no_reason, _glm_run("bnb")),
    Engine("oa", GlmProblem, _no_reason, _glm_run("oa"), _module_installed("highspy"),
           auto=False),
    Engine("heuristic", GlmProblem, _no_reason, _glm_run("heuristic"), auto=False),
    # GLMM (mio_glmer)
    Engine("bnb", GlmmProblem, _glmm_bnb_why, _glmm_bnb_run,
           aliases=("engine", "mixmio-glmer-bnb")),
    Engine("SCIP", GlmmProblem, _no_reason, _glmm_scip_run, _module_installed("pyscipopt"),
           extra="scip"),
    Engine("heuristic", GlmmProblem, _no_reason, _glmm_heuristic_run, auto=False),
    # clusterwise linear regression (mio_clr)
    Engine("HIGHS", ClrProblem, _no_reason, _clr_run("highs"), _module_installed("highspy")),
    Engine("GUROBI", ClrProblem, _no_reason, _clr_run("gurobi"),
           _module_installed("gurobipy"), auto=False, extra="gurobi"),
    Engine("heuristic", ClrProblem, _no_reason, _clr_run("heuristic"), auto=False),
)


def engines_for(problem_type: type) -> tuple[Engine, ...]:
    """The registered engines of one problem class, in list order."""
    return tuple(e for e in ENGINES if e.problem_type is problem_type)


def _type_of(problem_or_type) -> type:
    if isinstance(problem_or_type, type):
        for t in (GlmmProblem, GlmProblem, ClrProblem, Problem):
            if issubclass(problem_or_type, t):
                return t
        raise TypeError(f"no engine solves {problem_or_type.__name__}")
    return _type_of(type(problem_or_type))


def accepted_names(problem_type: type = Problem) -> tuple[str, ...]:
    """Every name (canonical, then aliases) accepted for ``problem_type``, "auto" first,
    whether installed or not."""
    names = ["auto"]
    for e in engines_for(_type_of(problem_type)):
        for n in (e.name, *e.aliases):
            if n not in names:
                names.append(n)
    return tuple(names)


def installed_names(problem_type: type = Problem) -> list[str]:
    """The canonical names of the installed engines of ``problem_type``, after "auto" and
    the shared short names ("bnb", "engine") that reach them."""
    names = ["auto"]
    for e in engines_for(_type_of(problem_type)):
        if e.installed():
            for n in (e.name, *(a for a in e.aliases if a.lower() in ("bnb", "engine"))):
                if n not in names:
                    names.append(n)
    return names


def check_name(solver, problem_type: type = Problem) -> str:
    """``solver`` when it names an installed engine of ``problem_type`` (or is "auto"); else
    ValueError listing the installed ones."""
    name = str(solver)
    if name.lower() == "auto":
        return name
    named = [e for e in engines_for(_type_of(problem_type)) if e.answers_to(name)]
    if any(e.installed() for e in named):
        return name
    hints = sorted({e.install_hint() for e in named if e.extra})
    if hints:
        raise MissingDependencyError(f"solver {solver!r} is not installed: {' or '.join(hints)}")
    what = "not installed" if named else "not an installed engine or solver"
    raise ValueError(f"solver {solver!r} is {what} for {_type_of(problem_type).__name__}. "
                     f"Installed: {installed_names(problem_type)}")


def select(problem, solver: str = "auto", options: dict | None = None) -> Engine:
    """The engine that runs ``problem``: for ``"auto"`` the first installed engine of the
    problem's type that applies and that auto may pick; for a name, the first installed
    engine answering to it that applies.  :class:`NoEngineError` lists each engine's reason
    otherwise."""
    options = {} if options is None else options
    ptype = _type_of(problem)
    auto = str(solver).lower() == "auto"
    candidates = [e for e in engines_for(ptype) if (e.auto if auto else e.answers_to(solver))]
    reasons, missing, passed_over = [], [], []
    for e in candidates:
        if not e.installed():
            hint = e.install_hint()
            reasons.append(f"{e.name}: not installed" + (f" ({hint})" if hint else ""))
            if hint and e.why_not(problem) is None:
                missing.append(hint)
            continue
        why = e.why_not(problem)
        if why is None and auto and e.prefer_not is not None:
            why = e.prefer_not(problem, options)
            if why is not None:
                passed_over.append(e)
        if why is None:
            return e
        reasons.append(f"{e.name}: {why}")
    if not candidates:
        raise NoEngineError(f"solver {solver!r} is not an installed engine or solver for "
                            f"{ptype.__name__}. Installed: {installed_names(ptype)}")
    what = "no installed engine applies" if auto else f"solver {solver!r} does not apply"
    if passed_over:  # a preference, not a limitation: without the preferred engine, take it
        return passed_over[0]
    if auto and missing:  # an engine that would apply needs an extra: say which
        raise MissingDependencyError(
            f"{what} to this {ptype.__name__}, and the solvers that would need an extra: "
            f"{missing[0]}. Reasons: " + "; ".join(reasons))
    raise NoEngineError(f"{what} to this {ptype.__name__}: " + "; ".join(reasons))


#: accepted values of ``solver`` for mio_glm ("auto" and the GlmProblem engines' names)
GLM_SOLVERS = accepted_names(GlmProblem)
#: accepted values of ``solver`` for mio_clr (lower case; the ClrProblem engines' names)
CLR_SOLVERS = tuple(name.lower() for name in accepted_names(ClrProblem))
