"""Tests of the exact random-intercept engine (mixmio.solvers.lmm.intercept).

Oracles are written here, independent of the engine: an exhaustive enumeration of supports with a
dense least-squares solve of the ridge-augmented system, and (on a few moderate instances) a
CVXPY + SCIP big-M MIQP built from the Gram matrix.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mixmio.problem import CapSet, Problem, TermStructure
from mixmio.solvers import solve_engine
from mixmio.solvers.lmm.intercept import applies
from mixmio.solvers.solution import Solution

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


# ----------------------------------------------------------------------------- builders
def build(X, codes, y, K, k, ridge=None):
    n, p = X.shape
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    if ridge is None:
        css = np.concatenate([np.sum(X**2, axis=0), np.asarray(A.power(2).sum(axis=0)).ravel()])
        ridge = 1e-4 * float(np.median(css))
    pen = np.concatenate([np.zeros(p, dtype=bool), np.ones(K, dtype=bool)])
    return Problem(X=X, Z=A, y=y, ridge=ridge, caps=(CapSet("(1|g)", p + np.arange(K), k),),
                   penalized=pen, terms=(TermStructure("(1 | g)", 0, 1, K, codes,
                                                       np.ones((n, 1))),))


def random_problem(seed, K=6, per=5, p=3, k=2, effect=1.5, frac=0.3, sizes=None,
                   cluster_cov=False, ridge=None):
    rng = np.random.default_rng(seed)
    if sizes is None:
        sizes = np.full(K, per)
    codes = np.repeat(np.arange(K), sizes)
    rng.shuffle(codes)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    if cluster_cov:
        X = np.column_stack([X, rng.normal(size=K)[codes]])
    gamma = effect * (rng.random(K) < frac) * rng.choice([-1.0, 1.0], size=K)
    y = X @ rng.normal(size=X.shape[1]) + gamma[codes] + rng.normal(size=n)
    return build(X, codes, y, K, k, ridge)


def brute_force(problem: Problem):
    """(objective, selected cluster tuple) minimising over every support of size <= k."""
    D = problem.design.toarray()
    p, K, k = problem.p, problem.m, problem.caps[0].k
    best = (np.inf, None)
    for s in range(min(k, K) + 1):
        for comb in itertools.combinations(range(K), s):
            cols = list(range(p)) + [p + j for j in comb]
            A = np.vstack([D[:, cols],
                           np.hstack([np.zeros((s, p)), np.sqrt(problem.ridge) * np.eye(s)])])
            b = np.concatenate([problem.y, np.zeros(s)])
            x = np.linalg.lstsq(A, b, rcond=None)[0]
            r = b - A @ x
            f = 0.5 * float(r @ r)
            if f < best[0] - 1e-13 * abs(f):
                best = (f, comb)
    return best


def check_against_oracle(problem, sol, same_support=True):
    fb, comb = brute_force(problem)
    assert sol.status == "optimal"
    assert sol.solver in ("mixmio-bnb", "mixmio-bnb+enum", "mixmio-bnb+groups",
                          "mixmio-bnb+groups+enum")
    assert abs(sol.objective - fb) <= 1e-6 * max(abs(fb), 1e-12)
    assert sol.best_bound <= fb * (1 + 1e-9) + 1e-12
    assert sol.best_bound <= sol.objective
    assert problem.is_feasible(sol.w)
    assert np.isclose(problem.objective(sol.w), sol.objective, rtol=1e-10, atol=1e-12)
    if same_support:
        support = tuple(np.flatnonzero(sol.w[problem.p:] != 0))
        assert support == comb
    return fb


# ----------------------------------------------------------------------------- oracle tests
@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    K = int(rng.integers(4, 10))
    k = int(rng.integers(1, K))
    pr = random_problem(seed, K=K, per=int(rng.integers(3, 7)), p=int(rng.integers(1, 4)), k=k,
                        effect=float(rng.uniform(0.3, 2.0)))
    assert applies(pr)
    sol = solve_engine(pr, mip_gap=1e-9)
    check_against_oracle(pr, sol)


def test_unequal_sizes_and_empty_cluster():
    sizes = np.array([1, 2, 9, 0, 4, 6, 3, 12])
    pr = random_problem(3, K=8, sizes=sizes, k=3, effect=1.0, frac=0.5)
    sol = solve_engine(pr, mip_gap=1e-9)
    check_against_oracle(pr, sol, same_support=False)
    assert sol.w[pr.p + 3] == 0.0  # the empty cluster carries no effect


def test_cluster_level_covariate_and_rank_deficient_x():
    pr = random_problem(5, K=9, per=4, p=3, k=3, cluster_cov=True)
    sol = solve_engine(pr, mip_gap=1e-9)
    check_against_oracle(pr, sol)
    # duplicate a column: same optimum, a rank-deficient design is handled
    X2 = np.column_stack([pr.X, pr.X[:, 1]])
    pr2 = build(X2, pr.terms[0].codes, pr.y, pr.m, 3, pr.ridge)
    sol2 = solve_engine(pr2, mip_gap=1e-9)
    assert sol2.status == "optimal"
    assert np.isclose(sol2.objective, sol.objective, rtol=1e-8)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(2, 8), per=st.integers(1, 6),
       p=st.integers(1, 3), kfrac=st.floats(0.0, 1.0), effect=st.floats(0.0, 3.0),
       logridge=st.floats(-4.0, 0.5))
def test_hypothesis_brute_force(seed, K, per, p, kfrac, effect, logridge):
    k = int(round(kfrac * K))
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, per + 1, size=K)
    pr = random_problem(seed, K=K, sizes=sizes, p=p, k=k, effect=effect,
                        ridge=float(10**logridge))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, mip_gap=1e-8)
    fb, _ = brute_force(pr)
    assert sol.best_bound <= fb * (1 + 1e-9) + 1e-12
    assert abs(sol.objective - fb) <= 1e-6 * max(abs(fb), 1e-12)
    assert sol.status in ("optimal", "gap_limit")  # gap_limit: rounding margin on tiny objectives


# ----------------------------------------------------------------------------- edge cases
def test_k_zero_is_ols():
    pr = random_problem(1, K=7, k=0)
    sol = solve_engine(pr)
    b = np.linalg.lstsq(pr.X, pr.y, rcond=None)[0]
    r = pr.y - pr.X @ b
    assert sol.status == "optimal"
    assert np.all(sol.w[pr.p:] == 0)
    assert np.isclose(sol.objective, 0.5 * r @ r, rtol=1e-10)
    assert np.allclose(sol.w[: pr.p], b, atol=1e-8)


def test_k_equal_K_is_full_ridge_fit():
    pr = random_problem(2, K=7, k=7)
    sol = solve_engine(pr)
    fb, comb = brute_force(pr)
    assert sol.status == "optimal"
    assert np.isclose(sol.objective, fb, rtol=1e-9)
    assert sol.gap <= 1e-4


def test_tiny_time_limit_is_honest():
    pr = random_problem(7, K=300, per=20, p=6, k=30, effect=1.0, frac=0.1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sol = solve_engine(pr, time_limit=1e-3)
    assert sol.status in ("time_limit", "optimal")
    assert np.isfinite(sol.gap)
    assert sol.best_bound <= sol.objective
    assert sol.best_bound >= 0.0
    if sol.status == "time_limit":
        assert sol.gap > 1e-4
        assert any("time limit" in str(w.message) for w in rec)
    # the bound must be below the proven optimum
    full = solve_engine(pr, time_limit=30)
    assert full.status == "optimal"
    assert sol.best_bound <= full.objective * (1 + 1e-9)
    assert full.objective <= sol.objective * (1 + 1e-9)


def test_warm_start_solution_and_mask():
    pr = random_problem(11, K=9, k=3, effect=1.2)
    base = solve_engine(pr, mip_gap=1e-9)
    mask = base.w[pr.p:] != 0
    s1 = solve_engine(pr, mip_gap=1e-9, warm=mask)
    s2 = solve_engine(pr, mip_gap=1e-9, warm=base)
    s3 = solve_engine(pr, mip_gap=1e-9, warm=np.ones(pr.m, dtype=bool))  # too many: truncated
    for s in (s1, s2, s3):
        assert s.status == "optimal"
        assert np.isclose(s.objective, base.objective, rtol=1e-10)
    assert isinstance(s1, Solution)


def test_applies_rejects_other_structures():
    pr = random_problem(0, K=5, k=2)
    assert applies(pr)
    p, K = pr.p, pr.m
    pen = pr.penalized.copy()
    pen[0] = True
    bad = [
        Problem(pr.X, pr.Z, pr.y, pr.ridge, pr.caps, pen, pr.terms),
        Problem(pr.X, pr.Z, pr.y, 0.0, pr.caps, pr.penalized, pr.terms),
        Problem(pr.X, pr.Z, pr.y, pr.ridge, pr.caps, pr.penalized, pr.terms, constraints=("x",)),
        Problem(pr.X, pr.Z, pr.y, pr.ridge, pr.caps + (CapSet("b", np.arange(p), 1),),
                pr.penalized, pr.terms),
        Problem(pr.X, pr.Z, pr.y, pr.ridge, (CapSet("c", p + np.arange(K - 1), 2),),
                pr.penalized, pr.terms),
        Problem(pr.X, pr.Z, pr.y, pr.ridge, pr.caps, pr.penalized, ()),
    ]
    t = pr.terms[0]
    slope_term = TermStructure(t.label, 0, 1, K, t.codes, np.full((pr.n, 1), 2.0))
    bad.append(Problem(pr.X, pr.Z, pr.y, pr.ridge, pr.caps, pr.penalized, (slope_term,)))
    for b in bad:
        assert not applies(b)
    with pytest.raises(ValueError):
        solve_engine(bad[0])


# ----------------------------------------------------------------------------- CVXPY + SCIP
def _scip_available():
    try:
        import cvxpy as cp

        return "SCIP" in cp.installed_solvers()
    except Exception:  # pragma: no cover
        return False


@pytest.mark.skipif(not _scip_available(), reason="cvxpy with SCIP not installed")
@pytest.mark.parametrize("K,seed", [(20, 20), (22, 1)])
def test_matches_cvxpy_scip(K, seed):
    import cvxpy as cp

    pr = random_problem(seed, K=K, per=10, p=4, k=4, effect=1.0, frac=0.2)
    sol = solve_engine(pr, mip_gap=1e-9)
    assert sol.status == "optimal"
    p = pr.p
    G, c, yy = pr.gram
    G = G.toarray() + np.diag(pr.ridge * pr.penalized)
    L = np.linalg.cholesky(G)
    # valid big-M: any optimum has ridge/2 gamma_j^2 <= objective <= U (the loss is >= 0)
    M = np.sqrt(2 * sol.objective / pr.ridge) * (1 + 1e-6)
    w = cp.Variable(p + K)
    z = cp.Variable(K, boolean=True)
    obj = 0.5 * cp.sum_squares(L.T @ w) - c @ w + 0.5 * yy
    cons = [w[p:] <= M * z, -w[p:] <= M * z, cp.sum(z) <= pr.caps[0].k]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="SCIP", scip_params={"limits/time": 60, "limits/gap": 1e-9})
    if prob.status != "optimal":
        pytest.skip(f"SCIP did not finish in 60 s ({prob.status})")
    assert abs(prob.value - sol.objective) <= 1e-6 * abs(sol.objective)


# ----------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("seed", range(6))
def test_enumeration_fallback_matches_brute_force(seed, monkeypatch):
    """With no branch-and-bound budget the engine enumerates C(K, k) supports; the result is
    checked against the independent oracle, including cluster-level covariates and empty
    clusters."""
    import mixmio.solvers.lmm.intercept as ie

    monkeypatch.setattr(ie, "ENUM_AFTER", 0.0)
    rng = np.random.default_rng(300 + seed)
    K = int(rng.integers(4, 10))
    k = int(rng.integers(1, K))
    sizes = rng.integers(0 if seed % 3 == 0 else 1, 6, size=K)
    sizes[0] = max(sizes[0], 1)
    pr = random_problem(seed, K=K, sizes=sizes, p=int(rng.integers(1, 4)), k=k,
                        effect=float(rng.uniform(0.3, 2.0)), cluster_cov=bool(seed % 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, mip_gap=1e-9)
    check_against_oracle(pr, sol, same_support=False)
    if sol.solver.endswith("+enum"):
        assert sol.info["enumerated_supports"] == math.comb(K, k)


def test_enumeration_path_is_taken_without_a_budget(monkeypatch):
    import mixmio.solvers.lmm.intercept as ie

    monkeypatch.setattr(ie, "ENUM_AFTER", 0.0)
    pr = random_problem(7, K=12, per=4, p=3, k=4, effect=0.4, cluster_cov=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, mip_gap=1e-9)
    assert sol.solver == "mixmio-bnb+enum" and sol.status == "optimal"
    assert sol.info["enumerated_supports"] == math.comb(12, 4)
    check_against_oracle(pr, sol, same_support=False)


def test_enumeration_respects_the_deadline():
    from mixmio.solvers.lmm.enum import enumerate_best
    from mixmio.solvers.lmm.stats import build_stats

    pr = random_problem(1, K=30, per=3, p=2, k=8, effect=1.0)
    st_ = build_stats(pr.X, pr.y, pr.terms[0].codes, 30, float(pr.ridge), 8)
    assert enumerate_best(st_, 8, deadline=time.perf_counter() - 1.0) is None


def test_no_time_left_for_enumeration_keeps_the_honest_time_limit(monkeypatch):
    import mixmio.solvers.lmm.intercept as ie

    monkeypatch.setattr(ie, "ENUM_AFTER", 0.0)
    monkeypatch.setattr(ie, "enumerate_best", lambda st, k, deadline: None)  # deadline passed
    pr = random_problem(7, K=12, per=4, p=3, k=4, effect=0.4, cluster_cov=True)
    with pytest.warns(RuntimeWarning, match="time limit"):
        sol = solve_engine(pr, mip_gap=1e-9, time_limit=1e-4)
    assert sol.status == "time_limit" and sol.solver == "mixmio-bnb" and sol.gap > 0


def test_nearly_collinear_cluster_level_covariates_do_not_crash():
    """A cluster-level covariate ~1e6 plus small variation made V'H^-1V numerically singular
    and np.linalg.inv raised LinAlgError out of mio_lmer."""
    import pandas as pd

    import mixmio
    from mixmio.problem.build import build_problem

    rng = np.random.default_rng(5)
    K, per = 10, 5
    idx = np.repeat(np.arange(K), per)
    zc = rng.normal(size=K)
    df = pd.DataFrame({"g": [f"s{i}" for i in idx], "x": rng.normal(size=K * per),
                       "z1": 1e3 * (1000 + zc[idx]), "z2": 1e3 * (zc**2)[idx]})
    df["y"] = df.x + zc[idx] + rng.normal(size=K * per)
    pr = build_problem(mixmio.build_design("y ~ x + z1 + z2 + (1 | g)", df), {"1|g": 3})
    sol = solve_engine(pr, mip_gap=1e-9)
    fb, _ = brute_force(pr)
    assert sol.status == "optimal"
    assert abs(sol.objective - fb) <= 1e-6 * abs(fb)


@pytest.mark.parametrize("cluster_cov", [False, True])
def test_enumerate_best_against_brute_force_for_every_k(cluster_cov):
    from mixmio.solvers.lmm.enum import enumerate_best
    from mixmio.solvers.lmm.stats import build_stats

    for k in range(0, 8):
        pr = random_problem(11, K=7, per=3, p=2, k=k, effect=0.8, cluster_cov=cluster_cov)
        st_ = build_stats(pr.X, pr.y, pr.terms[0].codes, 7, float(pr.ridge), k)
        sel, f, count = enumerate_best(st_, k)
        fb, comb = brute_force(pr)
        assert count == math.comb(7, min(k, 7))
        assert f == pytest.approx(fb, rel=1e-9, abs=1e-12)
        assert sel.sum() == min(k, 7)


def test_enumeration_estimate_of_astronomical_counts_is_inf():
    """C(3000, 300) does not fit in a float: the estimate overflowed and crashed the engine
    at K = 3000 (found by benchmarks/bench_engine.py)."""
    from mixmio.solvers.lmm.enum import estimated_seconds

    assert estimated_seconds(3000, 300, 10) == math.inf
    assert estimated_seconds(10**6, 10**4, 3) == math.inf
    assert 0 < estimated_seconds(65, 6, 4) < 60
    assert estimated_seconds(5, 0, 2) >= 0 and estimated_seconds(5, 9, 2) >= 0
