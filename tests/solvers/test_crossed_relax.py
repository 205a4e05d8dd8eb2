"""The crossed-intercept certificate (mixmio.solvers.lmm.crossed_relax): the row-wise perspective
relaxation's dual bound at a fixed value of the fixed effects, its rigid shift to every other
value, the boxes that hold the optimum's fixed effects, and the cover bound, each against
brute-force enumeration of the supports."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from mixmio.solvers import solve_engine
from mixmio.solvers.lmm import crossed as ec
from mixmio.solvers.lmm import crossed_relax as cx
from tests.oracles import brute_force
from tests.solvers.test_engine_crossed import make_crossed

pytest.importorskip("clarabel")


def _data(pr):
    cr = ec.Crossed(pr, {(0, 0): pr.caps[0].k, (1, 0): pr.caps[1].k})
    return cr, cx.CrossedData(cr.Xf, cr.y, cr.codes, cr.K, cr.k, cr.mu)


def _optimum(pr, cr):
    """Brute-force optimum and its whitened fixed effects (joint refit on its support)."""
    fb, mask = brute_force(pr)
    Sa, Sb = mask[pr.p: pr.p + cr.K[0]], mask[pr.p + cr.K[0]:]
    obj, beta_f, _, _ = cr.refit(Sa, Sb)
    assert abs(obj - fb) <= 1e-8 * abs(fb)
    return fb, beta_f


def _min_at_w(d, w):
    """min over supports of F(w, gamma) with w (whitened fixed effects) held fixed."""
    rho = d.y - d.Q @ w
    A = np.zeros((d.n, d.Ka))
    A[np.arange(d.n), d.ca] = 1
    B = np.zeros((d.n, d.Kb))
    B[np.arange(d.n), d.cb] = 1
    best = np.inf
    for Sa in itertools.combinations(range(d.Ka), min(d.ka, d.Ka)):
        for Sb in itertools.combinations(range(d.Kb), min(d.kb, d.Kb)):
            M = np.hstack([A[:, list(Sa)], B[:, list(Sb)]])
            g = np.linalg.solve(M.T @ M + d.mu * np.eye(M.shape[1]), M.T @ rho)
            r = rho - M @ g
            best = min(best, 0.5 * r @ r + 0.5 * d.mu * g @ g)
    return best


CASES = [(6, 5, 60, 2, 2, 2, 0), (5, 6, 45, 2, 1, 3, 1), (6, 4, 80, 3, 3, 1, 2),
         (5, 5, 30, 1, 2, 2, 3)]


@pytest.mark.parametrize("Ka,Kb,n,p,ka,kb,seed", CASES)
def test_dual_bound_valid_at_every_w(Ka, Kb, n, p, ka, kb, seed):
    pr = make_crossed(Ka, Kb, n, p, ka, kb, effect=1.5, seed=seed)
    _, d = _data(pr)
    w0 = d.Q.T @ d.y
    dual, info = cx.solve_rowwise(d, w0, tol=1e-8)
    exact0 = _min_at_w(d, w0)
    assert info["value"] <= exact0 + 1e-7 * abs(exact0)
    # the relaxation is not trivial: above the dense (no cap) ridge value at w0
    rho = d.y - d.Q @ w0
    A = np.zeros((d.n, d.Ka + d.Kb))
    A[np.arange(d.n), d.ca] = 1
    A[np.arange(d.n), d.Ka + d.cb] = 1
    g = np.linalg.solve(A.T @ A + d.mu * np.eye(A.shape[1]), A.T @ rho)
    dense = 0.5 * np.sum((rho - A @ g) ** 2) + 0.5 * d.mu * g @ g
    assert info["value"] >= dense - 1e-7 * abs(dense)
    rng = np.random.default_rng(seed)
    for _ in range(6):  # the rigid shift keeps the bound valid away from w0
        w = w0 + rng.normal(scale=3.0, size=w0.size)
        assert dual(w) <= _min_at_w(d, w) + 1e-7 * abs(exact0)


@pytest.mark.parametrize("Ka,Kb,n,p,ka,kb,seed", CASES)
def test_initial_box_and_trimmed_bound_hold_the_optimum(Ka, Kb, n, p, ka, kb, seed):
    pr = make_crossed(Ka, Kb, n, p, ka, kb, effect=1.5, seed=seed)
    cr, d = _data(pr)
    fb, beta = _optimum(pr, cr)
    w_opt = d.w_of_beta(beta)
    c, h = cx.initial_box(d, fb)
    assert np.all(np.abs(w_opt - c) <= h)
    trimmed = cx._Trimmed(d)
    for scale in (0.0, 0.5, 2.0):
        assert trimmed(w_opt, np.full(w_opt.size, scale)) <= fb + 1e-9 * abs(fb)


@pytest.mark.parametrize("Ka,Kb,n,p,ka,kb,seed", CASES)
def test_cover_bound_below_the_optimum(Ka, Kb, n, p, ka, kb, seed):
    import time

    pr = make_crossed(Ka, Kb, n, p, ka, kb, effect=1.5, seed=seed)
    cr, d = _data(pr)
    fb, beta = _optimum(pr, cr)
    U = fb * 1.02  # an incumbent 2% above the optimum
    bound, stats = cx.cover_bound(d, U, d.w_of_beta(beta), 1e-4, time.perf_counter() + 3.0,
                                  tol=1e-8)
    assert bound <= fb + 1e-7 * abs(fb)
    assert stats["relaxations"] >= 1


def test_cover_is_strong_on_a_larger_instance():
    # 60 x 40 levels, caps 6 / 4: the dense ridge bound is 40% below the incumbent; the cover
    # proves a 1% gap (its validity is the brute-force tests' business)
    pr = make_crossed(60, 40, 1500, 2, 6, 4, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, time_limit=30)
    assert sol.info["ridge_bound"] < 0.7 * sol.objective
    assert sol.info["cover"]["reached_gap"] is not None and sol.info["cover"]["reached_gap"] <= 0.01
    assert sol.best_bound >= 0.99 * sol.objective
    assert sol.status in ("gap_limit", "optimal") and sol.best_bound <= sol.objective


def test_cover_does_not_depend_on_workers():
    pr = make_crossed(6, 5, 60, 2, 2, 2, effect=1.0, seed=5)
    cr, d = _data(pr)
    fb, beta = _optimum(pr, cr)
    w0 = d.w_of_beta(beta)
    b1, s1 = cx.cover_bound(d, fb, w0, 1e-4, None, tol=1e-8, workers=1)
    b2, s2 = cx.cover_bound(d, fb, w0, 1e-4, None, tol=1e-8, workers=2)
    assert b1 == b2 and s1["relaxations"] == s2["relaxations"]


def test_engine_uses_cover_when_supports_are_many(monkeypatch):
    monkeypatch.setattr(ec, "MAX_ENUM", 0)  # force the large-instance path on a small case
    pr = make_crossed(6, 5, 60, 2, 2, 2, effect=1.5, seed=0)
    fb, _ = brute_force(pr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, time_limit=60, mip_gap=1e-4)
    assert "cover" in sol.info and sol.info["cover"]["relaxations"] >= 1
    assert sol.best_bound <= fb + 1e-7 * abs(fb)
    assert sol.best_bound >= sol.info["ridge_bound"] - 1e-9
    assert sol.objective >= fb - 1e-7 * abs(fb)
    if sol.status == "optimal":
        assert sol.objective <= fb * (1 + 1e-4) + 1e-9
    else:
        assert sol.status == "gap_limit"  # the relaxation's own gap, not the clock
