"""mixmio.solvers.glmer.scip.solve_scip against the brute-force oracle (tests/glmer/_oracle.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mixmio.problem.holistic.constraints import Exclude, ForceInclude, JointClusterSelection
from mixmio.solvers.solution import SearchLimitWarning

from . import _oracle as orc

pytest.importorskip("pyscipopt")

MIP_GAP = 1e-4

CASES = {
    "binomial-intercept": ("binomial", "y ~ x + (1 | g)", 6, 8, 2, {}),
    "poisson-intercept-offset": ("poisson", "y ~ x + (1 | g)", 6, 8, 2, dict(offset=True)),
    "binomial-trials-offset": ("binomial", "y ~ x + (1 | g)", 6, 6, 3,
                               dict(weights=True, offset=True)),
    "poisson-weights": ("poisson", "y ~ x + (1 | g)", 7, 6, 2, dict(weights=True)),
    "binomial-slopes": ("binomial", "y ~ x + (1 + x | g)", 5, 10, {"1|g": 2, "x|g": 1}, {}),
    "poisson-slopes": ("poisson", "y ~ x + (1 + x | g)", 5, 8, {"1|g": 1, "x|g": 2}, {}),
    "poisson-slope-only": ("poisson", "y ~ x + (0 + x | g)", 6, 8, 2, {}),
    "binomial-crossed": ("binomial", "y ~ x + (1 | g) + (1 | h)", 6, 8,
                         {"1|g": 2, "1|h": 1}, {}),
    "poisson-sign-cap": ("poisson", "y ~ x + (1 | g)", 8, 6, {"1|g": (1, 1)}, {}),
    "binomial-sign-cap": ("binomial", "y ~ x + (1 | g)", 8, 8, {"1|g": (1, 1)}, {}),
    "poisson-positive-only": ("poisson", "y ~ x + (1 | g)", 8, 6, {"1|g": (2, 0)}, {}),
    "poisson-force-exclude": ("poisson", "y ~ x + (1 | g)", 7, 6, 2, dict(
        constraints=[ForceInclude(clusters={"g": ["g1"]}), Exclude(clusters={"g": ["g0"]})])),
    "binomial-joint": ("binomial", "y ~ x + (1 + x | g)", 6, 8, 2,
                       dict(constraints=[JointClusterSelection("g")])),
    "poisson-fixed-cap": ("poisson", "y ~ x + x2 + (1 | g)", 5, 8, 2, dict(k_fixed=1)),
}


def _problem(name, seed=3):
    family, formula, K, rows, k, kw = CASES[name]
    return orc.small_problem(family, formula, K, rows, k, seed, **kw)


def _check_certified(problem, sol, best):
    """What every optimum shares: the value, a bound below it, the status."""
    assert sol.solver == "SCIP"
    assert sol.status == "optimal"
    assert sol.gap <= MIP_GAP
    # the objective is recomputed from the data, and the oracle agrees with it
    assert sol.objective == pytest.approx(problem.objective(sol.w), rel=1e-12)
    assert orc.objective(problem, sol.w) == pytest.approx(sol.objective, rel=1e-10)
    # a feasible point: caps, sign caps, rows (with the returned indicators)
    assert problem.base.is_feasible(sol.w, z=sol.z)
    # never better than the exact optimum, within mip_gap of it; the bound is below it
    assert sol.objective >= best * (1 - 1e-9)
    assert sol.objective <= best * (1 + MIP_GAP)
    assert sol.best_bound <= best * (1 + 1e-9)
    assert sol.best_bound <= sol.objective


@pytest.mark.parametrize("name", list(CASES))
def test_scip_matches_brute_force(name):
    from mixmio.solvers.glmer.scip import solve_scip

    problem = _problem(name)
    best, _ = orc.brute_force(problem)
    sol = solve_scip(problem, mip_gap=MIP_GAP)
    _check_certified(problem, sol, best)


@pytest.mark.parametrize("family,formula,k", [
    ("poisson", "y ~ x + (1 + x | g)", {"1|g": 2, "x|g": 1}),
    ("binomial", "y ~ x + (1 | g)", 2),
])
def test_scip_small_auto_ridge(family, formula, k):
    """mio_glmer's auto ridge is tiny (1e-4 x the median cluster information): the big-M
    bounds are wide, the certificate must still hold."""
    from mixmio.api._glmer import glmer_auto_ridge
    from mixmio.solvers.glmer.scip import solve_scip

    pr = orc.small_problem(family, formula, 6, 8, k, 0)
    ridge = glmer_auto_ridge(family, pr.X, pr.Z, pr.y, pr.weights, pr.offset)
    assert ridge < 0.01
    problem = orc.small_problem(family, formula, 6, 8, k, 0, ridge=ridge)
    best, _ = orc.brute_force(problem)
    _check_certified(problem, solve_scip(problem), best)


def test_scip_sign_cap_binds():
    """The asymmetric cap (2, 0) is active: with k = 2 alone the optimum is lower."""
    from mixmio.solvers.glmer.scip import solve_scip

    capped = _problem("poisson-positive-only")
    free = orc.small_problem("poisson", "y ~ x + (1 | g)", 8, 6, 2, 3)
    b_capped, _ = orc.brute_force(capped)
    b_free, _ = orc.brute_force(free)
    assert b_free < b_capped * (1 - 1e-6)
    sol = solve_scip(capped)
    v = sol.w[capped.sign_caps[0].index]
    assert np.count_nonzero(v > 0) <= 2 and np.count_nonzero(v < 0) == 0
    assert sol.objective == pytest.approx(b_capped, rel=MIP_GAP)


def test_scip_forced_and_excluded_clusters():
    from mixmio.solvers.glmer.scip import solve_scip

    problem = _problem("poisson-force-exclude")
    sol = solve_scip(problem)
    g0, g1 = problem.base.caps[0].index[:2]      # levels g0 (excluded), g1 (forced)
    assert sol.w[g0] == 0.0 and not sol.z[g0]
    assert sol.z[g1]


def test_scip_warm_start_and_mask():
    from mixmio.solvers.glmer.scip import solve_scip

    problem = _problem("binomial-slopes")
    best, mask = orc.brute_force(problem)
    for warm in (mask, solve_scip(problem)):
        sol = solve_scip(problem, warm=warm)
        _check_certified(problem, sol, best)
        assert sol.info["start_value"] <= best * (1 + MIP_GAP)


def test_scip_time_limit_is_honest():
    """A tiny time limit on a harder instance: status time_limit with the proven gap (finite
    or inf), never optimal; the bound stays below the objective."""
    from mixmio.solvers.glmer.scip import solve_scip

    problem = orc.small_problem("poisson", "y ~ x + (1 + x | g)", 30, 10,
                                {"1|g": 5, "x|g": 5}, 0, ridge=0.01)
    with pytest.warns(SearchLimitWarning):
        sol = solve_scip(problem, time_limit=0.2, mip_gap=1e-9)
    assert sol.status == "time_limit"
    assert sol.gap > 1e-9
    assert not np.isfinite(sol.best_bound) or sol.best_bound <= sol.objective
    assert problem.base.is_feasible(sol.w, z=sol.z)
    assert sol.objective == pytest.approx(problem.objective(sol.w), rel=1e-12)


def test_oracle_k0_is_a_glm():
    """The oracle's null support is the plain GLM (statsmodels), both families."""
    sm = pytest.importorskip("statsmodels.api")
    for family in ("binomial", "poisson"):
        pr = orc.small_problem(family, "y ~ x + (1 | g)", 6, 8, 0, 1, offset=True,
                               weights=True)
        val, _ = orc.brute_force(pr)
        if family == "binomial":
            fit = sm.GLM(np.column_stack([pr.y, pr.weights - pr.y]), pr.X,
                         family=sm.families.Binomial(), offset=pr.offset).fit(tol=1e-12)
        else:
            fit = sm.GLM(pr.y, pr.X, family=sm.families.Poisson(), offset=pr.offset,
                         var_weights=pr.weights).fit(tol=1e-12)
        assert val == pytest.approx(fit.deviance / 2, rel=1e-9)


def test_oracle_allowed_supports_respect_rows():
    pr = _problem("poisson-force-exclude")
    cap, allowed = orc.allowed_supports(pr)
    P = orc._patterns(cap.size)
    pos = {int(j): i for i, j in enumerate(cap)}
    g0, g1 = (pos[int(j)] for j in pr.base.caps[0].index[:2])
    assert not np.any(allowed & P[:, g0])           # excluded: never in a support
    assert np.all(P[allowed].sum(axis=1) <= 2)      # the cap
    # the forced cluster counts toward k: with it in z, at most one other cluster
    assert not np.any(allowed & ~P[:, g1] & (P.sum(axis=1) == 2))
    assert np.any(allowed & P[:, g1] & (P.sum(axis=1) == 2))


def test_scip_infeasible_rows_and_no_start(monkeypatch):
    """Rows no indicator vector meets give status infeasible; without a feasible start the
    model links w and z by indicator constraints (no big-M) and still certifies."""
    from dataclasses import replace

    import mixmio.solvers.glmer.scip as scip
    from mixmio.problem import LinearConstraint
    from mixmio.problem.glmer import GlmmProblem

    pr = orc.small_problem("poisson", "y ~ x + (1 | g)", 6, 8, 2, 0)
    idx = pr.base.caps[0].index
    for rhs, expect in ((3, "infeasible"), (2, "optimal")):
        row = LinearConstraint(idx, np.ones(idx.size), ">=", rhs, "at least")
        problem = GlmmProblem(replace(pr.base, constraints=(row,)), pr.family, pr.y,
                              pr.weights, pr.offset)
        sol = scip.solve_scip(problem)
        assert sol.status == expect
    best, _ = orc.brute_force(problem)
    monkeypatch.setattr(scip, "_start", lambda *a: None)
    sol = scip.solve_scip(problem)
    assert sol.info["start_value"] is None
    _check_certified(problem, sol, best)
