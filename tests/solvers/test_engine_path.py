"""A path over caps k with the random-intercept engine (``intercept_engine``): every k from 0 to
K against brute force, the statistics cache shared by ``dataclasses.replace(problem, caps=...)``,
warm starts from the previous k's support, and the swap search's candidate filter.

Ties: two supports can be within the certified gap of each other, so the tests assert the
certified window [best (1 - 1e-6), best (1 + 1e-4)] and a valid bound, never a support.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from mixmio.solvers import solve
from mixmio.solvers.lmm import intercept as ie
from mixmio.solvers.lmm.stats import _swap_candidates, alternate, build_stats
from tests.oracles import _fit_support, make_problem


def _with_k(problem, k):
    return replace(problem, caps=(replace(problem.caps[0], k=k),))


def _best_by_size(problem):
    """best[s] = least objective over supports of at most s clusters (brute force)."""
    p, K = problem.p, problem.terms[0].n_levels
    by_size = np.full(K + 1, np.inf)
    for size in range(K + 1):
        for comb in itertools.combinations(range(K), size):
            S = np.concatenate([np.arange(p), p + np.array(comb, dtype=int)]).astype(int)
            by_size[size] = min(by_size[size], _fit_support(problem, S)[1])
    return np.minimum.accumulate(by_size)


def _check(sol, best):
    assert sol.status == "optimal"
    assert best * (1 - 1e-6) <= sol.objective <= best * (1 + 1e-4)
    assert sol.best_bound <= best + 1e-9 * max(1.0, abs(best))


CASES = [  # (seed, K, rows per cluster, deviating clusters, ridge)
    (0, 8, 6, 2, 0.5),
    (1, 10, 4, 2, 1e-3),
    (2, 10, 8, 1, 0.05),
    (3, 12, 3, 3, 1e-2),
    (4, 9, 5, 0, 0.2),
]


@pytest.mark.parametrize("seed,K,per,n_dev,ridge", CASES)
def test_path_matches_brute_force(seed, K, per, n_dev, ridge):
    problem = make_problem(seed=seed, K=K, per=per, p=3, k=0, ridge=ridge, n_dev=n_dev,
                           effect=1.5)
    best = _best_by_size(problem)
    warm = None
    for k in range(K + 1):
        sol = solve(_with_k(problem, k), warm=warm, mip_gap=1e-4)
        _check(sol, best[k])
        assert np.sum(sol.w[problem.p:] != 0) <= k
        warm = sol.w != 0


@pytest.mark.parametrize("seed", [5, 6])
def test_path_unequal_clusters(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=10)
    problem = make_problem(seed=seed, K=10, p=2, k=0, ridge=0.01, n_dev=2, sizes=sizes)
    best = _best_by_size(problem)
    for k in range(11):
        _check(solve(_with_k(problem, k), mip_gap=1e-4), best[k])


def test_stats_cache_matches_fresh_build():
    problem = make_problem(seed=7, K=40, per=6, p=4, k=5, ridge=0.05)
    ie._STATS.clear()
    codes = np.asarray(problem.terms[0].codes, dtype=np.int64)
    mu = float(problem.ridge)
    st5 = ie.cached_stats(problem.X, problem.y, codes, 40, mu, 5)
    st9 = ie.cached_stats(problem.X, problem.y, codes, 40, mu, 9)
    fresh = build_stats(problem.X, problem.y, codes, 40, mu, 9)
    assert st9.k == 9 and st5.k == 5
    assert st9.D is st5.D  # shared, not rebuilt
    for name in ("cols", "b_ols", "n_k", "w", "a", "D", "HW", "gW", "Xtr", "XtX", "wa", "wa2"):
        np.testing.assert_array_equal(getattr(st9, name), getattr(fresh, name))
    assert (st9.kW, st9.rr, st9.mu, st9.K, st9.p_full) == (fresh.kW, fresh.rr, fresh.mu,
                                                          fresh.K, fresh.p_full)
    # solving through the cache gives exactly what a fresh build gives
    for k in (0, 3, 9, 40):
        a = solve(_with_k(problem, k))
        ie._STATS.clear()
        b = solve(_with_k(problem, k))
        assert a.objective == b.objective and a.best_bound == b.best_bound
        np.testing.assert_array_equal(a.w, b.w)


def test_stats_cache_sees_other_data():
    problem = make_problem(seed=8, K=12, per=5, p=3, k=3, ridge=0.1)
    first = solve(problem)
    y2 = problem.y.copy()
    y2[:5] += 3.0
    other = replace(problem, y=y2)  # same X object, new y
    assert solve(other).objective != first.objective
    problem.y[:5] += 3.0  # an in-place edit of the cached array is caught by the fingerprint
    try:
        again = solve(_with_k(problem, 3))
        assert abs(again.objective - solve(other).objective) <= 1e-9 * again.objective
    finally:
        problem.y[:5] -= 3.0
    ridge2 = replace(problem, ridge=0.2)
    assert solve(ridge2).objective != first.objective


def test_structure_check_cached_for_replaced_problems(monkeypatch):
    problem = make_problem(seed=9, K=15, per=4, p=2, k=3)
    assert ie.applies(problem)
    calls = []
    real = ie._z_matches
    monkeypatch.setattr(ie, "_z_matches", lambda *a: calls.append(1) or real(*a))
    for k in range(1, 6):
        assert ie.applies(_with_k(problem, k))
    assert not calls  # Z and terms are shared: checked once


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_warm_equals_cold(seed):
    problem = make_problem(seed=seed, K=60, per=5, p=3, k=0, ridge=0.01, n_dev=6)
    warm = None
    for k in (0, 6, 12, 20, 30, 45, 60):
        pk = _with_k(problem, k)
        hot = solve(pk, warm=warm)
        cold = solve(pk)
        assert hot.status == cold.status == "optimal"
        lo = min(hot.objective, cold.objective)
        assert max(hot.objective, cold.objective) <= lo * (1 + 1e-4)
        assert max(hot.best_bound, cold.best_bound) <= lo * (1 + 1e-12)
        warm = hot.w != 0


@pytest.mark.parametrize("seed", [13, 14])
def test_swap_filter_keeps_every_improving_swap(seed):
    problem = make_problem(seed=seed, K=150, per=4, p=3, k=60, ridge=0.01, n_dev=10)
    st = build_stats(problem.X, problem.y, problem.terms[0].codes, 150, float(problem.ridge), 60)
    rng = np.random.default_rng(seed)
    for rep in range(4):
        sel = np.zeros(150, dtype=bool)
        sel[rng.choice(150, 60, replace=False)] = True
        if rep % 2:  # a fixed point of the b / support alternation, as swap_search sees
            sel, _ = alternate(st, sel)
        f0 = st.f_support(sel)[0]
        H, g, _ = st.quad_out(~sel)
        ins, outs = _swap_candidates(st, sel, H, g)
        if rep % 2:
            assert ins.size * outs.size < 60 * 90  # it does prune there
        for i in np.flatnonzero(sel):
            for j in np.flatnonzero(~sel):
                trial = sel.copy()
                trial[i], trial[j] = False, True
                if st.f_support(trial)[0] < f0 * (1 - 1e-12):
                    assert i in ins and j in outs


def test_incremental_quadratic_and_lapack_factors():
    """Q_OUT grown cluster by cluster equals the rebuild; the LAPACK factors of Ell and
    f_support agree with numpy's inverse and solve."""
    from mixmio.solvers.bnb.intercept import BnB, Ell, hard_directions

    problem = make_problem(seed=15, K=50, per=5, p=3, k=10, ridge=0.05, n_dev=5)
    codes = np.asarray(problem.terms[0].codes, dtype=np.int64)
    st = build_stats(problem.X, problem.y, codes, 50, float(problem.ridge), 10)
    bnb = BnB(st, 10, hard_directions(st))
    rng = np.random.default_rng(0)
    out = rng.random(50) < 0.3
    quad = st.quad_out(out)
    for _ in range(3):
        new = np.flatnonzero(~out & (rng.random(50) < 0.2))
        quad = bnb._quad_add(quad, new)
        out[new] = True
        H, g, kappa = st.quad_out(out)
        np.testing.assert_allclose(quad[0], H, rtol=1e-12, atol=1e-12 * np.abs(H).max())
        np.testing.assert_allclose(quad[1], g, rtol=1e-12, atol=1e-12 * np.abs(g).max())
        assert abs(quad[2] - kappa) <= 1e-12 * abs(kappa)
        ell = Ell(H, g, kappa, bnb.V)
        np.testing.assert_allclose(ell.Linv.T @ ell.Linv, np.linalg.inv(H), rtol=1e-9,
                                   atol=1e-12 * np.abs(np.linalg.inv(H)).max())
        np.testing.assert_allclose(ell.c, np.linalg.solve(H, g), rtol=1e-9, atol=1e-12)
        f, b = st.f_support(~out)
        np.testing.assert_allclose(b, np.linalg.solve(H, g), rtol=1e-9, atol=1e-12)
        assert abs(f - (kappa - 0.5 * g @ np.linalg.solve(H, g))) <= 1e-9 * abs(f)


def test_engine_restores_blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info()]
    problem = make_problem(seed=16, K=30, per=4, p=2, k=5)
    assert solve(problem).status == "optimal"
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info()] == before
