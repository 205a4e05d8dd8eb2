"""The engine registry (mixmio.solvers.engines): selection order, names, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from mixmio.problem.glm import GlmProblem
from mixmio.problem.glmer import GlmmProblem
from mixmio.solvers import check_solver, installed_solvers, solve
from mixmio.solvers.engines import ENGINES, NoEngineError, accepted_names, engines_for, select
from mixmio.solvers.lmm import intercept
from tests.oracles import make_problem
from tests.solvers.test_engine_contract import _crossed, _fixed_only


def test_auto_follows_the_list_order():
    assert select(make_problem(0, K=6, k=2)).name == "bnb-intercept"
    assert select(make_problem(1, K=5, slopes=True, k=2, k_slope=1)).name == "bnb-slopes"
    assert select(_fixed_only()).name == "subset"
    # a small crossed model goes to a general MIQP solver; named, the crossed engine runs
    small = _crossed()
    assert select(small).name in ("GUROBI", "SCIP")
    assert select(small, "engine").name == select(small, "bnb").name == "bnb-crossed"


def test_names_are_case_insensitive_and_old_spellings_stay():
    assert check_solver("scip") == "SCIP"
    assert check_solver("engine") == "engine" and check_solver("Subset") == "Subset"
    pr = make_problem(0, K=6, k=2)
    assert select(pr, "BNB").name == select(pr, "Engine").name == "bnb-intercept"
    assert "engine" in installed_solvers() and "auto" == installed_solvers()[0]
    assert accepted_names(GlmProblem) == ("auto", "bnb", "oa", "heuristic")
    assert {"bnb", "engine", "mixmio-glmer-bnb", "SCIP"} <= set(accepted_names(GlmmProblem))


def test_a_named_engine_that_does_not_apply_lists_its_reason():
    with pytest.raises(NoEngineError, match="subset: the problem has random-effect columns"):
        select(make_problem(0, K=6, k=2), "subset")
    with pytest.raises(ValueError, match="bnb-intercept: not a plain"):
        solve(_fixed_only(), solver="engine")
    with pytest.raises(ValueError, match="not an installed"):
        check_solver("NOPE")


def test_every_engine_is_registered_once_in_one_list():
    for ptype in {e.problem_type for e in ENGINES}:
        names = [e.name for e in engines_for(ptype)]
        assert len(names) == len(set(names))


def test_a_bug_in_the_structure_check_raises(monkeypatch):
    """``_structure`` catches only the "does not apply" cases: an error in it propagates
    instead of sending the problem silently to CVXPY."""
    def broken(problem, terms):
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(intercept, "_block_caps", broken)
    pr = make_problem(3, K=6, k=2)
    with pytest.raises(ZeroDivisionError, match="injected"):
        solve(pr)


def test_solution_gap_uses_the_null_objective_floor():
    pr = make_problem(0, K=6, k=2)
    sol = solve(pr)
    assert sol.gap_scale == pytest.approx(pr.null_objective)
    assert np.isfinite(sol.gap) and sol.gap <= 1e-4
