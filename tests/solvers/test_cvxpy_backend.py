"""Tests for the CVXPY MIQP backend and the solve() front of the solve stage."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracles import brute_force, make_large, make_problem  # noqa: E402

from mixmio.problem import CapSet, Problem  # noqa: E402
from mixmio.solvers import solve  # noqa: E402
from mixmio.solvers.cvxpy_backend import miqp_solvers, solve_cvxpy, sparse_factor  # noqa: E402
from mixmio.solvers.dfo import quad  # noqa: E402
from mixmio.solvers.heuristics import warm_start  # noqa: E402

HAS_GUROBI = "GUROBI" in miqp_solvers()


def _check_against_oracle(pr, sol):
    best, mask = brute_force(pr)
    assert sol.status == "optimal"
    assert abs(sol.objective - best) <= 1e-6 * abs(best)
    assert sol.best_bound <= sol.objective + 1e-9
    assert sol.gap <= 1e-4 + 1e-12
    sel = np.zeros(pr.n_coef, dtype=bool)
    sel[pr.capped] = sol.w[pr.capped] != 0
    assert np.array_equal(sel, mask)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("slopes", [False, True])
def test_scip_bigm_matches_brute_force(seed, slopes):
    pr = make_problem(seed, K=6, slopes=slopes, k=2, k_slope=1)
    sol = solve_cvxpy(pr, solver="SCIP", formulation="bigm")
    _check_against_oracle(pr, sol)


def test_scip_perspective_matches_brute_force():
    pr = make_problem(7, K=6, slopes=True, k=2, k_slope=1)
    sol = solve_cvxpy(pr, solver="SCIP", formulation="perspective")
    _check_against_oracle(pr, sol)


@pytest.mark.skipif(not HAS_GUROBI, reason="gurobipy not installed")
@pytest.mark.parametrize("formulation", ["bigm", "perspective"])
def test_gurobi_small_matches_brute_force(formulation):
    pr = make_problem(8, K=6, slopes=True, k=2, k_slope=1)
    sol = solve_cvxpy(pr, solver="GUROBI", formulation=formulation)
    _check_against_oracle(pr, sol)


@pytest.mark.skipif(not HAS_GUROBI, reason="gurobipy not installed")
def test_gurobi_size_limit_falls_back_to_scip():
    from mixmio.solvers import _gurobi_full_licence

    if _gurobi_full_licence():
        pytest.skip("full Gurobi licence: no fallback to test")
    pr = make_problem(1, K=150, per=3, p=3, k=150, ridge=1.0)
    with pytest.warns(UserWarning, match="falling back to SCIP"):
        sol = solve_cvxpy(pr, solver="GUROBI")
    assert sol.solver == "cvxpy-SCIP"
    assert sol.status == "optimal"


def test_sparse_factor_reproduces_gram():
    pr = make_problem(2, K=7, slopes=True, k=2)
    q = quad(pr)
    R = sparse_factor(q.Hs, q.capped)
    assert np.allclose((R.T @ R).toarray(), q.Hs.toarray(), atol=1e-9)
    assert R.shape[0] <= pr.n_coef


def test_k_zero_gives_ols():
    pr = make_problem(3, K=6, k=0)
    sol = solve(pr, solver="SCIP")
    beta = np.linalg.lstsq(pr.X, pr.y, rcond=None)[0]
    assert sol.status == "optimal"
    assert np.allclose(sol.w[: pr.p], beta, atol=1e-7)
    assert np.all(sol.w[pr.p:] == 0)


def test_caps_at_block_size_give_dummy_regression():
    base = make_problem(4, K=5, k=5)
    pr = Problem(X=base.X, Z=base.Z, y=base.y, ridge=1e-8, caps=base.caps,
                 penalized=base.penalized)
    sol = solve(pr, solver="SCIP")
    assert sol.status == "optimal"
    D = np.hstack([pr.X, pr.Z.toarray()[:, 1:]])
    coef = np.linalg.lstsq(D, pr.y, rcond=None)[0]
    fitted = pr.X @ sol.w[: pr.p] + pr.Z @ sol.w[pr.p:]
    assert np.allclose(fitted, D @ coef, atol=1e-4)


def test_time_limit_is_honest():
    pr = make_large(K=60, per=20, p=20, k=10, seed=3)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sol = solve_cvxpy(pr, solver="SCIP", time_limit=1.0)
    assert sol.status in ("time_limit", "optimal")
    assert pr.is_feasible(sol.w)
    assert np.isclose(sol.objective, pr.objective(sol.w))
    assert sol.best_bound <= sol.objective
    if sol.status == "optimal":
        assert sol.gap <= 1e-4
    else:
        assert sol.gap > 1e-4
        assert any("time limit" in str(w.message) and f"{sol.gap:.3e}" in str(w.message)
                   and issubclass(w.category, RuntimeWarning) for w in rec)
        assert sol.info["timed_out"]
    assert sol.solve_time < 30


def test_bad_solver_name_raises():
    pr = make_problem(0, K=4, k=1)
    with pytest.raises(ValueError, match="Installed"):
        solve(pr, solver="NOT_A_SOLVER")
    with pytest.raises(ValueError):
        solve_cvxpy(pr, solver="HIGHS")  # MILP only in CVXPY


def test_bad_cap_raises_before_solving():
    base = make_problem(0, K=4, k=1)
    for k in (-1, 5):
        pr = Problem(X=base.X, Z=base.Z, y=base.y, ridge=1.0,
                     caps=(CapSet("c", base.p + np.arange(4), k),), penalized=base.penalized)
        with pytest.raises(ValueError):
            solve(pr, solver="SCIP")


def test_auto_returns_certified_solution():
    pr = make_problem(6, K=6, slopes=True, k=2, k_slope=1)
    sol = solve(pr)  # engine if present, else Gurobi (small) or SCIP
    best, _ = brute_force(pr)
    assert sol.status == "optimal"
    assert abs(sol.objective - best) <= 1e-6 * abs(best)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(3, 6), k=st.integers(0, 3),
       ridge=st.sampled_from([1e-3, 0.1, 2.0]))
def test_property_scip_equals_brute_force_and_beats_heuristic(seed, K, k, ridge):
    pr = make_problem(seed, K=K, per=5, p=2, k=min(k, K), ridge=ridge)
    best, _ = brute_force(pr)
    heur = warm_start(pr, random_state=seed)
    sol = solve_cvxpy(pr, solver="SCIP", warm=heur)
    assert heur.objective >= best - 1e-9 * abs(best)
    assert sol.status == "optimal"
    # "optimal" certifies SCIP's mip_gap (1e-4): on a random draw a second-best support may
    # lie within it, so the objective is pinned to that window, not to the optimum itself
    assert best * (1 - 1e-6) <= sol.objective <= best * (1 + 1e-4)
    assert sol.best_bound <= best * (1 + 1e-6)
    assert sol.objective <= heur.objective + 1e-9 * abs(heur.objective)


def test_solver_noise_on_fd2_is_dropped_and_the_rest_kept():
    """SoPlex's tolerance notices go to file descriptor 2 from C++; they are dropped, while
    Python warnings and other output written meanwhile still reach stderr, in order."""
    import subprocess
    import sys

    code = (
        "import os, sys, warnings\n"
        "from mixmio.solvers.cvxpy_backend import drop_solver_noise\n"
        "with drop_solver_noise():\n"
        "    os.write(2, b'Cannot set feasibility tolerance to small value 1e-12 without GMP"
        " - using 1e-10.\\n')\n"
        "    warnings.warn('kept warning')\n"
        "    os.write(2, b'kept line\\n')\n"
        "with drop_solver_noise(active=False):\n"
        "    os.write(2, b'inactive: without GMP - using\\n')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "Cannot set feasibility tolerance" not in err
    assert "kept warning" in err and "kept line" in err
    assert err.index("kept warning") < err.index("kept line")
    assert "inactive: without GMP" in err


def test_solver_noise_filter_is_off_outside_the_main_thread():
    """Two threads must never swap fd 2 at once: off the main thread the filter does nothing."""
    import subprocess
    import sys

    code = (
        "import os, threading\n"
        "from mixmio.solvers.cvxpy_backend import drop_solver_noise\n"
        "def work():\n"
        "    with drop_solver_noise():\n"
        "        os.write(2, b'thread: without GMP - using\\n')\n"
        "t = threading.Thread(target=work); t.start(); t.join()\n"
        "os.write(2, b'after\\n')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "thread: without GMP" in r.stderr and "after" in r.stderr


def test_no_feasible_start_still_gives_a_proven_result_or_a_clear_error():
    """ForceInclude of a cluster whose deviation breaks the sign cap: the constrained heuristic
    finds no start (which proves nothing, so no 'infeasible' claim), and the MIQP's guessed
    big-M bounds are proven afterwards before any 'optimal' label."""
    import mixmio

    data = mixmio.datasets.load("sleepstudy")
    lev = str(mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
              .z_columns.iloc[9]["level"])
    kw = dict(k={"1|Subject": (0, 3)},
              constraints=[mixmio.ForceInclude(clusters={"Subject": [lev]})])
    with pytest.raises(RuntimeError, match="does not prove the constraints infeasible"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, solver="heuristic", **kw)
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, time_limit=60, **kw)
    assert fit.status in ("optimal", "heuristic", "time_limit")
    if fit.status == "optimal":
        assert fit.solution.info["bigM_verified"]
    assert fit.problem.is_feasible(fit.solution.w, z=fit.solution.info["z"])
