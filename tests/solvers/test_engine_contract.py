"""The engine contract: one battery run on every registered engine (mixmio.solvers.engines.ENGINES),
in the spirit of scikit-learn's ``check_estimator``.  A new engine is tested as soon as it is
registered.

On small instances of the engine's problem type, solved by brute force enumeration:

(a) honest status: every status is in STATUSES, and "optimal" only when the objective matches
    the enumerated optimum (no objective below the optimum, whatever the status);
(b) time-limit honesty: a tiny time limit gives a status with an honest gap: "optimal" only
    with a proven gap within mip_gap (and the optimum's objective), else a finite or an
    infinite gap;
(c) a valid bound: best_bound <= the enumerated optimum (+ tolerance);
(d) warm-start use: a warm start at the optimum is accepted and the result is no worse.

Engines not installed are skipped with a reason; an engine that applies to none of the
instances of its problem type fails (add an instance here).
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mixmio.problem import CapSet, Problem, TermStructure
from mixmio.problem.clr import ClrProblem
from mixmio.problem.glm import GlmProblem
from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers.engines import ENGINES
from mixmio.solvers.solution import STATUSES

MIP_GAP = 1e-6
RTOL = 1e-6  # objective agreement with the enumerated optimum


# --------------------------------------------------------------------------- instances
def _crossed(seed=0, Ka=4, Kb=3, n=30, p=2, ka=2, kb=1):
    rng = np.random.default_rng(seed)
    ca, cb = rng.integers(0, Ka, size=n), rng.integers(0, Kb, size=n)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = X @ rng.normal(size=p) + 1.5 * (ca == 0) - 1.2 * (cb == 1) + rng.normal(size=n)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), ca)), shape=(n, Ka))
    B = sp.csc_matrix((np.ones(n), (np.arange(n), cb)), shape=(n, Kb))
    pen = np.concatenate([np.zeros(p, bool), np.ones(Ka + Kb, bool)])
    caps = (CapSet("1|a", p + np.arange(Ka), ka), CapSet("1|b", p + Ka + np.arange(Kb), kb))
    terms = (TermStructure("1|a", 0, 1, Ka, ca, np.ones((n, 1))),
             TermStructure("1|b", Ka, 1, Kb, cb, np.ones((n, 1))))
    return Problem(X=X, Z=sp.hstack([A, B], format="csc"), y=y, ridge=0.3, caps=caps,
                   penalized=pen, terms=terms)


def _fixed_only(seed=0, n=40, p=6, k=2):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = X[:, 1] - 0.8 * X[:, 3] + rng.normal(size=n)
    pen = np.zeros(p, dtype=bool)
    pen[1:] = True
    return Problem(X=X, Z=sp.csc_matrix((n, 0)), y=y, ridge=0.1,
                   caps=(CapSet("beta", np.arange(1, p), k),), penalized=pen, terms=())


def _lmm_instances():
    from tests.oracles import make_problem

    return [make_problem(0, K=6, k=2), make_problem(1, K=5, slopes=True, k=2, k_slope=1),
            _crossed(), _fixed_only()]


def _glm_instance(seed=0, n=80, p=5, k=2):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p))])
    eta = 0.3 + 1.2 * X[:, 1] - 0.9 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    units = tuple(np.array([j]) for j in range(1, p + 1))
    return GlmProblem(X=X, y=y, offset=np.zeros(n), units=units, always=np.array([0]), k=k,
                      ridge=0.01)


def _glmm_instances():
    from tests.glmer._oracle import small_problem

    return [small_problem("binomial", "y ~ x + (1 | g)", 5, 4, 2, seed=0, ridge=0.5),
            small_problem("poisson", "y ~ x + (1 + x | g)", 4, 4, {"1|g": 2, "x|g": 1}, seed=1,
                          ridge=0.5)]


def _clr_instance():
    from mixmio.solvers.clr.solve import solve_clr

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 9)
    y = np.where(np.arange(9) < 5, 1 + x, 12 - x) + rng.normal(scale=0.3, size=9)
    X = np.column_stack([np.ones(9), x])
    pr, _ = solve_clr(X, y, 2, solver="heuristic", random_state=0)
    return pr


@functools.cache
def _instances(ptype: type) -> tuple:
    if ptype is Problem:
        return tuple(_lmm_instances())
    if ptype is GlmProblem:
        return (_glm_instance(),)
    if ptype is GlmmProblem:
        return tuple(_glmm_instances())
    return (_clr_instance(),)


# --------------------------------------------------------------------------- brute force
def _glm_brute(pr: GlmProblem) -> float:
    from mixmio.solvers.glm.logistic import fit_support

    best = np.inf
    for size in range(pr.k + 1):
        for units in itertools.combinations(range(len(pr.units)), size):
            if not pr.feasible(units):
                continue
            _, val, _ = fit_support(pr.columns_of(units), pr.X, pr.y, pr.offset, pr.ridge,
                                    pr.penalized)
            best = min(best, val)
    return best


_OPTIMA: dict = {}


def _optimum(pr) -> tuple[float, np.ndarray | None]:
    """(optimum, support mask over w at the optimum or None)."""
    if id(pr) not in _OPTIMA:
        if isinstance(pr, Problem):
            from tests.oracles import brute_force

            best, mask = brute_force(pr)
            full = np.zeros(pr.n_coef, dtype=bool)
            full[np.setdiff1d(np.arange(pr.n_coef), pr.capped)] = True
            full |= mask
            _OPTIMA[id(pr)] = (best, full)
        elif isinstance(pr, GlmmProblem):
            from tests.glmer._oracle import brute_force

            best, mask = brute_force(pr)
            _OPTIMA[id(pr)] = (best, None if mask is None else np.asarray(mask, dtype=bool))
        elif isinstance(pr, GlmProblem):
            _OPTIMA[id(pr)] = (_glm_brute(pr), None)
        else:
            from tests.clr._oracle import brute_force_clr

            _OPTIMA[id(pr)] = (brute_force_clr(pr.X, pr.y, pr.min_size, pr.outlier_penalty),
                               None)
    return _OPTIMA[id(pr)]


def _cases(engine):
    if not engine.installed():
        pytest.skip(f"{engine.name} ({engine.problem_type.__name__}) is not installed")
    cases = [pr for pr in _instances(engine.problem_type) if engine.why_not(pr) is None]
    assert cases, (f"{engine.name}: applies to no contract instance of "
                   f"{engine.problem_type.__name__}; add one to tests/solvers/"
                   "test_engine_contract.py")
    return cases


def _run(engine, pr, **kw):
    kw.setdefault("time_limit", None)
    kw.setdefault("mip_gap", MIP_GAP)
    kw.setdefault("warm", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine.run(pr, seed=0, **kw)


def _tol(best: float) -> float:
    return RTOL * max(abs(best), 1.0)


_ids = [f"{e.problem_type.__name__}:{e.name}" for e in ENGINES]


# --------------------------------------------------------------------------- the battery
@pytest.mark.parametrize("engine", ENGINES, ids=_ids)
def test_status_is_honest_against_brute_force(engine):
    for pr in _cases(engine):
        best, _ = _optimum(pr)
        sol = _run(engine, pr)
        assert sol.status in STATUSES, sol.status
        assert sol.objective >= best - _tol(best), "an objective below the optimum"
        if sol.status == "optimal":
            assert abs(sol.objective - best) <= MIP_GAP * abs(best) + _tol(best)
            assert sol.gap <= MIP_GAP
        if engine.name == "heuristic":  # a heuristic proves nothing
            assert sol.status == "heuristic"


@pytest.mark.parametrize("engine", ENGINES, ids=_ids)
def test_tiny_time_limit_is_honest(engine):
    for pr in _cases(engine):
        best, _ = _optimum(pr)
        sol = _run(engine, pr, time_limit=1e-4)
        assert sol.status in STATUSES, sol.status
        gap = sol.gap
        assert gap >= 0 and (np.isfinite(gap) or gap == np.inf)
        if sol.status == "optimal":  # only with a proven gap
            assert gap <= MIP_GAP
            assert abs(sol.objective - best) <= MIP_GAP * abs(best) + _tol(best)
        assert sol.best_bound <= best + _tol(best)


@pytest.mark.parametrize("engine", ENGINES, ids=_ids)
def test_bound_is_valid(engine):
    for pr in _cases(engine):
        best, _ = _optimum(pr)
        sol = _run(engine, pr)
        assert sol.best_bound <= best + _tol(best), (sol.best_bound, best)
        assert sol.best_bound <= sol.objective + _tol(best)


@pytest.mark.parametrize("engine", ENGINES, ids=_ids)
def test_warm_start_at_the_optimum_is_used(engine):
    for pr in _cases(engine):
        best, mask = _optimum(pr)
        first = _run(engine, pr)
        # a boolean support mask over w where the problem type has one; else the Solution
        warm = mask if mask is not None else first
        sol = _run(engine, pr, warm=warm)
        assert sol.status in STATUSES
        assert sol.objective <= max(first.objective, best) + _tol(best)
        if mask is not None:
            assert sol.objective <= best + _tol(best), "the warm start was not used"


def test_every_problem_type_has_an_engine_for_auto():
    for ptype in (Problem, GlmProblem, GlmmProblem, ClrProblem):
        assert any(e.auto and e.problem_type is ptype for e in ENGINES)


def test_names_are_unique_per_problem_type():
    seen = set()
    for e in ENGINES:
        key = (e.problem_type, e.name.lower())
        assert key not in seen, key
        seen.add(key)


