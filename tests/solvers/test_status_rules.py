"""One status rule for every certified search (``solution.certified_status``): ``optimal`` only
with a gap <= mip_gap proven from a real bound; ``time_limit`` with a RuntimeWarning and the
gap; solver claims, missing/NaN bounds and failures never pass for a proof.  Exercised on the
rule itself, the CVXPY backend (solver outcomes replaced by fakes) and the subset engine."""

import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracles import brute_force, make_problem  # noqa: E402

from mixmio.problem import CapSet, Problem  # noqa: E402
from mixmio.solvers import cvxpy_backend as cb  # noqa: E402
from mixmio.solvers.solution import (  # noqa: E402
    SearchLimitWarning,
    Solution,
    certified_status,
    relative_gap,
)
from mixmio.solvers.subset import engine as subset_engine
from mixmio.solvers.subset.engine import solve_subset  # noqa: E402


def _fixed_effects(n=60, p=7, k=3, seed=0, ridge=0.05, l1=None):
    """Fixed-effects-only best-subset Problem (intercept free, p capped columns)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 1] += 0.6 * X[:, 0]
    beta = np.zeros(p)
    beta[[0, 2, 5]] = [1.5, -1.0, 0.7]
    y = X @ beta + rng.normal(size=n)
    Xf = np.column_stack([np.ones(n), X])
    pen = np.r_[False, np.ones(p, bool)]
    l1v = None if l1 is None else np.r_[0.0, np.full(p, l1)]
    return Problem(Xf, sp.csc_matrix((n, 0)), y, ridge,
                   (CapSet("fixed effects", np.arange(1, p + 1), k),), pen, l1=l1v)


def _no_warnings(fn, *a, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*a, **kw)
    return out, [r for r in rec if issubclass(r.category, RuntimeWarning)]


# ---------------------------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------------------------
def test_certified_status_optimal_only_within_mip_gap():
    (st, _), rec = _no_warnings(certified_status, 1e-4, 1e-4, False, "s")
    assert st == "optimal" and not rec
    # just above mip_gap (the CVXPY backend once accepted mip_gap * (1 + 1e-6))
    for timed_out, expected in ((False, "gap_limit"), (True, "time_limit")):
        with pytest.warns(RuntimeWarning) as rec:
            st, msg = certified_status(1e-4 * (1 + 5e-7), 1e-4, timed_out, "s")
        assert st == expected
        assert "1.000e-04" in msg


@pytest.mark.parametrize("gap", [np.nan, np.inf])
def test_no_bound_is_never_optimal(gap):
    with pytest.warns(RuntimeWarning):
        assert certified_status(gap, 1e-4, False, "s")[0] == "gap_limit"
    with pytest.warns(RuntimeWarning):
        assert certified_status(gap, 1e-4, False, "s", failure="boom")[0] == "error"


def test_time_limit_warning_is_runtime_and_user_warning_and_reports_the_gap():
    with pytest.warns(SearchLimitWarning, match=r"time limit reached with relative gap 3\.000e-02"):
        st, msg = certified_status(0.03, 1e-4, True, "s")
    assert st == "time_limit" and "3.000e-02" in msg
    assert issubclass(SearchLimitWarning, RuntimeWarning)
    assert issubclass(SearchLimitWarning, UserWarning)
    with pytest.warns(RuntimeWarning, match="node limit reached"):
        assert certified_status(0.03, 1e-4, True, "s", limit="node limit")[0] == "time_limit"


def test_failure_is_error_unless_the_gap_is_proven():
    with pytest.warns(RuntimeWarning, match="solver died"):
        st, msg = certified_status(0.5, 1e-4, False, "s", failure="solver died")
    assert st == "error" and "5.000e-01" in msg
    (st, _), rec = _no_warnings(certified_status, 1e-6, 1e-4, False, "s", failure="x")
    assert st == "optimal" and not rec


def test_relative_gap_without_finite_objective_proves_nothing():
    # (inf - 0) / inf is NaN, which max(0, NaN) once turned into a gap of 0
    assert relative_gap(np.inf, 0.0) == np.inf
    assert relative_gap(np.nan, 0.0) == np.inf
    assert relative_gap(1.0, np.nan) == np.inf
    assert relative_gap(2.0, 1.0) == pytest.approx(0.5)
    sol = Solution(w=np.zeros(2), objective=np.inf, best_bound=0.0, status="error",
                   solver="s", solve_time=0.0)
    assert sol.gap == np.inf


# ---------------------------------------------------------------------------------------------
# CVXPY backend: what the solver says is read, never trusted
# ---------------------------------------------------------------------------------------------
def test_finite_bound_rejects_missing_nan_and_infinite_bounds():
    for v in (None, np.nan, np.inf, -np.inf, 1e20, -1e20, "x"):
        assert cb._finite_bound(v) is None
    assert cb._finite_bound(3.5) == 3.5


def _fake_prob(status):
    return SimpleNamespace(status=status, solver_stats=SimpleNamespace(extra_stats=None))


def test_read_outcome_of_other_solvers_has_no_bound():
    import cvxpy as cp

    expect = {cp.OPTIMAL: "complete", cp.OPTIMAL_INACCURATE: "inaccurate",
              cp.USER_LIMIT: "time_limit", cp.INFEASIBLE: "infeasible",
              cp.SOLVER_ERROR: "failed"}
    for status, outcome in expect.items():
        out, bound, primal, _, _ = cb._read_outcome(_fake_prob(status), "MOSEK")
        assert out == outcome and bound is None and primal is None


def test_status_of_each_outcome():
    cases = [("complete", 1e-5, True, "optimal"),
             ("complete", 2e-4, True, "gap_limit"),
             ("complete", np.inf, False, "gap_limit"),  # "optimal" with no bound to check
             ("inaccurate", np.inf, False, "gap_limit"),
             ("time_limit", 2e-4, True, "time_limit"),
             ("time_limit", 1e-5, True, "optimal"),
             ("failed", 2e-4, True, "error"),
             ("failed", 1e-5, True, "optimal")]
    for outcome, gap, has_bound, expected in cases:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            st, _ = cb._status_of(outcome, gap, 1e-4, "SCIP", "optimal", has_bound)
        assert st == expected, (outcome, gap)
        assert (len(rec) > 0) == (expected != "optimal")


_REAL_READ_OUTCOME = cb._read_outcome


def _patch_outcome(monkeypatch, outcome=None, raw=None, bound=None):
    """Let SCIP solve, then replace what it reports.  ``bound(V, primal)``: the solver's bound
    (without the constant) from CVXPY's objective V and the solver's primal value."""
    def fake(prob, solver):
        out, b, primal, nodes, r = _REAL_READ_OUTCOME(prob, solver)
        if bound is not None:
            b = bound(float(prob.value), primal)
        return (outcome or out), b, primal, nodes, (raw or r)

    monkeypatch.setattr(cb, "_read_outcome", fake)


def _claim_gap(frac):
    """A bound at (1 - frac) x the objective: offset = V - primal, raw = (1-frac) V - offset."""
    return lambda V, primal: primal - frac * V


@pytest.fixture(scope="module")
def tiny():
    pr = make_problem(5, K=5, per=6, k=2)
    best, mask = brute_force(pr)
    return pr, best, mask


def test_scip_normal_path_is_optimal_against_brute_force(tiny):
    pr, best, mask = tiny
    sol, rec = _no_warnings(cb.solve_cvxpy, pr, solver="SCIP")
    assert not rec
    assert sol.status == "optimal" and sol.gap <= 1e-4
    assert sol.objective == pytest.approx(best, rel=1e-7)
    assert sol.best_bound <= best * (1 + 1e-9)
    assert np.array_equal(sol.w[pr.capped] != 0, mask[pr.capped])
    assert sol.timed_out is False


def test_solver_claiming_optimal_with_a_large_gap_is_not_optimal(monkeypatch, tiny):
    pr, best, _ = tiny
    _patch_outcome(monkeypatch, outcome="complete", raw="optimal", bound=_claim_gap(0.2))
    with pytest.warns(RuntimeWarning, match="reported optimal"):
        sol = cb.solve_cvxpy(pr, solver="SCIP")
    assert sol.status == "gap_limit"
    assert sol.gap == pytest.approx(0.2, rel=1e-3)
    assert sol.best_bound <= sol.objective


@pytest.mark.parametrize("bad", [None, np.nan, -np.inf])
def test_solver_claiming_optimal_without_a_real_bound_is_not_optimal(monkeypatch, tiny, bad):
    pr, _, _ = tiny
    _patch_outcome(monkeypatch, outcome="complete", raw="optimal", bound=lambda V, p: bad)
    with pytest.warns(RuntimeWarning):
        sol = cb.solve_cvxpy(pr, solver="SCIP")
    assert sol.status == "gap_limit"
    assert sol.gap == np.inf


def test_time_limit_outcome_says_time_limit_with_warning_and_gap(monkeypatch, tiny):
    pr, _, _ = tiny
    _patch_outcome(monkeypatch, outcome="time_limit", raw="timelimit", bound=_claim_gap(0.05))
    with pytest.warns(RuntimeWarning, match=r"time limit reached with relative gap 5\.0"):
        sol = cb.solve_cvxpy(pr, solver="SCIP", time_limit=30)
    assert sol.status == "time_limit"
    assert sol.gap == pytest.approx(0.05, rel=1e-3)
    assert "5.0" in sol.message and sol.timed_out is True
    assert pr.is_feasible(sol.w)


def test_unexpected_solver_stop_is_an_error_unless_proven(monkeypatch, tiny):
    pr, best, _ = tiny
    _patch_outcome(monkeypatch, outcome="failed", raw="memlimit", bound=_claim_gap(0.3))
    with pytest.warns(RuntimeWarning, match="memlimit"):
        sol = cb.solve_cvxpy(pr, solver="SCIP")
    assert sol.status == "error" and sol.gap > 1e-4
    # the same stop with the solver's real (tight) bound: the certificate stands
    _patch_outcome(monkeypatch, outcome="failed", raw="memlimit")
    sol = cb.solve_cvxpy(pr, solver="SCIP")
    assert sol.status == "optimal" and sol.gap <= 1e-4
    assert sol.objective == pytest.approx(best, rel=1e-7)


def _raise_from_solve(monkeypatch, delay=0.0):
    import cvxpy as cp

    def boom(self, *a, **kw):
        time.sleep(delay)
        raise cp.error.SolverError("Solver 'SCIP' failed.")

    monkeypatch.setattr(cp.Problem, "solve", boom)


def test_solver_error_gives_error_with_warning(monkeypatch, tiny):
    pr, _, _ = tiny
    _raise_from_solve(monkeypatch)
    with pytest.warns(RuntimeWarning, match="SCIP failed"):
        sol = cb.solve_cvxpy(pr, solver="SCIP")
    assert sol.status == "error" and sol.gap > 1e-4 and sol.timed_out is False
    assert np.isfinite(sol.objective) and pr.is_feasible(sol.w)  # the warm start


def test_time_limit_without_a_solution_returns_the_warm_start_as_time_limit(monkeypatch, tiny):
    pr, _, _ = tiny
    _raise_from_solve(monkeypatch, delay=0.3)  # CVXPY raises when SCIP finds nothing in time
    with pytest.warns(RuntimeWarning, match="time limit"):
        sol = cb.solve_cvxpy(pr, solver="SCIP", time_limit=0.25)
    assert sol.status == "time_limit" and sol.best_bound == 0.0
    assert sol.gap == pytest.approx(1.0) and sol.timed_out is True


# ---------------------------------------------------------------------------------------------
# subset engine
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,k,l1,mip_gap", [(0, 2, None, 1e-4), (1, 3, None, 1e-2),
                                               (2, 3, 0.5, 1e-4), (3, 4, 2.0, 1e-2)])
def test_subset_normal_path_is_optimal_against_brute_force(seed, k, l1, mip_gap):
    pr = _fixed_effects(seed=seed, k=k, l1=l1)
    best, _ = brute_force(pr)
    sol, rec = _no_warnings(solve_subset, pr, mip_gap=mip_gap)
    assert not rec
    assert sol.status == "optimal" and sol.gap <= mip_gap
    assert sol.best_bound <= best + 1e-7 * abs(best)  # the bound is a real lower bound
    assert best - 1e-7 * abs(best) <= sol.objective <= best * (1 + mip_gap)
    assert sol.timed_out is False


def test_subset_time_limit_says_time_limit_with_warning_and_gap():
    pr = _fixed_effects(n=200, p=30, k=8, seed=3)
    with pytest.warns(RuntimeWarning, match="time limit reached with relative gap"):
        sol = solve_subset(pr, time_limit=0.0)
    assert sol.status == "time_limit"
    assert sol.gap > 1e-4 and "relative gap" in sol.message
    assert pr.is_feasible(sol.w) and sol.best_bound <= sol.objective


def test_subset_node_limit_warns_and_is_not_optimal_unless_proven():
    pr = _fixed_effects(n=200, p=30, k=8, seed=3)
    with pytest.warns(SearchLimitWarning, match="node limit"):
        sol = solve_subset(pr, max_nodes=1)
    assert sol.status == "time_limit" and sol.gap > 1e-4


def test_subset_complete_search_without_the_gap_is_not_optimal(monkeypatch):
    """A complete search whose returned objective is above what the bound proves (here the
    final polish is made 10% worse) must not say optimal."""
    from mixmio.solvers import heuristics

    real = heuristics.polish

    def worse(problem, z, **kw):
        w, obj = real(problem, z, **kw)
        return w, 1.1 * obj

    monkeypatch.setattr(heuristics, "polish", worse)
    pr = _fixed_effects(seed=4, k=2)
    with pytest.warns(RuntimeWarning, match="exceeds mip_gap"):
        sol = subset_engine.solve_subset(pr, warm_start=False)
    assert sol.status == "gap_limit"
    assert sol.gap == pytest.approx(0.1 / 1.1, rel=1e-3)


def _warm_of(pr):
    from mixmio.solvers.heuristics import warm_start

    return warm_start(pr, random_state=0)


def test_solver_error_returns_the_warm_start_honestly(monkeypatch, tiny):
    pr, best, _ = tiny
    warm = _warm_of(pr)

    def boom(*a, **k):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(cb, "_run", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = cb.solve_cvxpy(pr, solver="SCIP", warm=warm, time_limit=None)
    # the warm start's own bound is the trivial 0: nothing is proven
    assert sol.status == "error" and sol.timed_out is False
    assert sol.objective == warm.objective and sol.best_bound == 0.0
    assert "RuntimeError: solver crashed" in sol.message
    assert np.array_equal(sol.w, warm.w)


def test_solver_without_a_point_at_the_time_limit(monkeypatch, tiny):
    pr, best, _ = tiny
    warm = _warm_of(pr)
    real_build = cb._build

    def build(*a, **k):
        prob, w, z = real_build(*a, **k)
        return prob, SimpleNamespace(value=None), z  # the solver's point is missing

    monkeypatch.setattr(cb, "_build", build)
    _patch_outcome(monkeypatch, outcome="time_limit", raw="user_limit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = cb.solve_cvxpy(pr, solver="SCIP", warm=warm, time_limit=5.0)
    assert sol.status == "time_limit" and sol.timed_out is True
    assert sol.objective == warm.objective and sol.best_bound <= best
    assert sol.message.startswith("solver status user_limit; SCIP hit the time limit")
