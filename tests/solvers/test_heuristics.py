"""Tests for the warm-start heuristics (discrete first-order method, polish, swaps)."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracles import _fit_support, brute_force, make_large, make_problem  # noqa: E402

from mixmio.problem import CapSet, Problem  # noqa: E402
from mixmio.solvers.heuristics import polish, warm_start  # noqa: E402


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("slopes", [False, True])
def test_heuristic_feasible_and_not_below_brute_force(seed, slopes):
    pr = make_problem(seed, K=6, slopes=slopes, k=2, k_slope=1)
    best, _ = brute_force(pr)
    sol = warm_start(pr, random_state=seed)
    assert sol.status == "heuristic"
    assert pr.is_feasible(sol.w)
    assert sol.objective >= best - 1e-9 * abs(best)
    assert sol.best_bound <= sol.objective
    assert np.isclose(sol.objective, pr.objective(sol.w))
    # on these easy instances the swap search reaches the optimum
    assert sol.objective <= best * (1 + 1e-8)


def test_polish_matches_independent_lstsq():
    pr = make_problem(3, K=7, slopes=True, k=3, k_slope=2)
    rng = np.random.default_rng(0)
    mask = np.zeros(pr.n_coef, dtype=bool)
    mask[rng.choice(pr.capped, size=4, replace=False)] = True
    w, obj = polish(pr, mask)
    free = np.setdiff1d(np.arange(pr.n_coef), pr.capped)
    S = np.sort(np.concatenate([free, np.flatnonzero(mask)]))
    w_ref, obj_ref = _fit_support(pr, S)
    assert np.allclose(w, w_ref, atol=1e-8)
    assert np.isclose(obj, obj_ref, rtol=1e-10)


def test_deterministic_given_random_state():
    pr = make_problem(5, K=8, slopes=True, k=3, k_slope=2)
    a = warm_start(pr, random_state=11)
    b = warm_start(pr, random_state=11)
    assert np.array_equal(a.w, b.w)


def test_k_zero_is_ols_on_x():
    pr = make_problem(2, K=6, k=0)
    sol = warm_start(pr, random_state=0)
    beta = np.linalg.lstsq(pr.X, pr.y, rcond=None)[0]
    assert np.allclose(sol.w[: pr.p], beta, atol=1e-8)
    assert np.all(sol.w[pr.p:] == 0)


def test_caps_at_block_size_give_dummy_regression():
    base = make_problem(4, K=5, k=5, ridge=1e-9)
    pr = Problem(X=base.X, Z=base.Z, y=base.y, ridge=1e-9, caps=base.caps,
                 penalized=base.penalized)
    sol = warm_start(pr, random_state=0)
    D = np.hstack([pr.X, pr.Z.toarray()[:, 1:]])  # drop one redundant dummy
    coef = np.linalg.lstsq(D, pr.y, rcond=None)[0]
    fitted = pr.X @ sol.w[: pr.p] + pr.Z @ sol.w[pr.p:]
    assert np.allclose(fitted, D @ coef, atol=1e-5)


def test_bad_cap_raises():
    base = make_problem(0, K=4, k=1)
    pr = Problem(X=base.X, Z=base.Z, y=base.y, ridge=1.0,
                 caps=(CapSet("bad", base.p + np.arange(4), 5),), penalized=base.penalized)
    with pytest.raises(ValueError):
        warm_start(pr)


def test_large_random_intercept_is_fast_and_finds_true_clusters():
    pr = make_large(K=1000, per=30, p=10, k=100, seed=1)
    warm_start(pr, random_state=0)  # first call also builds cached Gram data
    pr2 = make_large(K=1000, per=30, p=10, k=100, seed=2)
    t0 = time.perf_counter()
    sol = warm_start(pr2, random_state=0)
    assert time.perf_counter() - t0 < 5.0
    assert pr2.is_feasible(sol.w)
    assert np.count_nonzero(sol.w[pr2.p:]) == 100
