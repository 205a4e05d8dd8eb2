"""Tests of the crossed random-intercept engine ``(1 | a) + (1 | b)``
(mixmio.solvers.lmm.crossed) through ``intercept_engine.solve_engine``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mixmio.problem import CapSet, Problem, TermStructure
from mixmio.solvers import solve_engine
from mixmio.solvers.lmm.crossed import MAX_ENUM
from mixmio.solvers.lmm.intercept import structure
from tests.oracles import brute_force


def make_crossed(Ka, Kb, n, p, ka, kb, effect=1.5, frac=0.3, seed=0, ridge=None):
    rng = np.random.default_rng(seed)
    ca, cb = rng.integers(0, Ka, size=n), rng.integers(0, Kb, size=n)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    ga = effect * (rng.random(Ka) < frac) * rng.choice([-1.0, 1.0], size=Ka)
    gb = effect * (rng.random(Kb) < frac) * rng.choice([-1.0, 1.0], size=Kb)
    y = X @ rng.normal(size=p) + ga[ca] + gb[cb] + rng.normal(size=n)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), ca)), shape=(n, Ka))
    B = sp.csc_matrix((np.ones(n), (np.arange(n), cb)), shape=(n, Kb))
    Z = sp.hstack([A, B], format="csc")
    if ridge is None:
        css = np.concatenate([np.sum(X**2, 0), np.asarray(Z.power(2).sum(0)).ravel()])
        ridge = 1e-4 * float(np.median(css))
    pen = np.concatenate([np.zeros(p, bool), np.ones(Ka + Kb, bool)])
    caps = (CapSet("1|a", p + np.arange(Ka), ka), CapSet("1|b", p + Ka + np.arange(Kb), kb))
    terms = (TermStructure("1|a", 0, 1, Ka, ca, np.ones((n, 1))),
             TermStructure("1|b", Ka, 1, Kb, cb, np.ones((n, 1))))
    return Problem(X=X, Z=Z, y=y, ridge=ridge, caps=caps, penalized=pen, terms=terms)


def _solve(pr, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return solve_engine(pr, **kw)


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    Ka, Kb = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    pr = make_crossed(Ka, Kb, int(rng.integers(10, 40)), int(rng.integers(1, 3)),
                      int(rng.integers(0, Ka + 1)), int(rng.integers(0, Kb + 1)),
                      effect=float(rng.uniform(0.3, 2)), seed=seed,
                      ridge=float(10 ** rng.uniform(-3, 0)))
    assert structure(pr)[0] == "crossed"
    sol = _solve(pr, mip_gap=1e-9)
    fb, _ = brute_force(pr)
    assert sol.status == "optimal"
    assert abs(sol.objective - fb) <= 1e-7 * abs(fb)
    assert sol.best_bound <= fb * (1 + 1e-9)
    assert pr.is_feasible(sol.w)


def test_large_instance_is_honest():
    # neither term has few supports: heuristic + the cover's relaxation bound; time_limit
    # (clock), gap_limit (the relaxation's own gap) or optimal, never a false optimal
    pr = make_crossed(60, 40, 1500, 2, 6, 4, seed=3)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        sol = solve_engine(pr, time_limit=5)
    assert sol.status in ("optimal", "time_limit", "gap_limit")
    assert sol.status != "optimal" or sol.gap <= 1e-4
    assert sol.best_bound <= sol.objective and np.isfinite(sol.gap)
    assert pr.is_feasible(sol.w)
    assert np.isclose(pr.objective(sol.w), sol.objective, rtol=1e-10)


def _scip_available():
    try:
        import cvxpy as cp

        return "SCIP" in cp.installed_solvers()
    except Exception:  # pragma: no cover
        return False


@pytest.mark.skipif(not _scip_available(), reason="cvxpy with SCIP not installed")
def test_matches_cvxpy_scip():
    from mixmio.solvers.cvxpy_backend import solve_cvxpy

    pr = make_crossed(8, 6, 120, 2, 3, 2, effect=1.5, seed=7)
    assert MAX_ENUM >= 15  # C(6, 2): exact enumeration path
    sol = _solve(pr, mip_gap=1e-9)
    assert sol.status == "optimal"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solve_cvxpy(pr, solver="SCIP", time_limit=60, mip_gap=1e-9)
    if ref.status not in ("optimal", "optimal_inaccurate"):
        pytest.skip(f"SCIP did not finish ({ref.status})")
    assert sol.objective <= ref.objective * (1 + 1e-7)
    assert abs(ref.objective - sol.objective) <= 1e-5 * abs(sol.objective)


def _slow_support(monkeypatch, need: float):
    """Make the sub-search of the first enumerated support 'slow': with a budget below
    ``need`` seconds it sleeps through its budget and returns the trivial bound -inf (still
    valid) with timed_out; otherwise the real search.  Returns the list of its budgets."""
    from mixmio.solvers.lmm import crossed as ec

    real = ec.Crossed.sub_bound
    budgets: list[float] = []

    def sub_bound(self, t, S, U, mip_gap, time_limit, t0):
        first = bool(S[0]) and S.sum() == 1
        if first:
            budgets.append(np.inf if time_limit is None else time_limit)
            if time_limit is not None and time_limit < need:
                import time as _t

                _t.sleep(time_limit)
                Us, _, sel, nd, _ = real(self, t, S, U, mip_gap, None, t0)
                return np.inf, -np.inf, sel, nd, True
        return real(self, t, S, U, mip_gap, time_limit, t0)

    monkeypatch.setattr(ec.Crossed, "sub_bound", sub_bound)
    return budgets


def test_slow_sub_search_gets_the_time_left(monkeypatch):
    """Issue 18: the even split of the time over enumerated supports let one slow sub-search
    end the fit as time_limit long before the limit.  Now the weakest open support is searched
    again with a doubled budget while time remains, and the fit is certified."""
    pr = make_crossed(40, 40, 600, 2, 1, 1, seed=1)
    budgets = _slow_support(monkeypatch, need=0.4)
    sol = _solve(pr, time_limit=6.0)
    assert sol.status == "optimal"
    assert len(budgets) >= 2 and budgets[0] < 0.4 <= budgets[-1]
    assert sol.info["reruns"] >= 1
    fb = _solve(make_crossed(40, 40, 600, 2, 1, 1, seed=1)).objective
    assert abs(sol.objective - fb) <= 1e-4 * abs(fb)


def test_unfinished_search_uses_its_time_limit(monkeypatch):
    """An instance the engine cannot finish (one support never closes) reports time_limit only
    after using at least 90% of the limit."""
    import time

    pr = make_crossed(40, 40, 600, 2, 1, 1, seed=2)
    _slow_support(monkeypatch, need=np.inf)
    t0 = time.perf_counter()
    sol = _solve(pr, time_limit=2.0)
    used = time.perf_counter() - t0
    assert sol.status == "time_limit"
    assert used >= 0.9 * 2.0
    assert sol.best_bound == -np.inf or sol.best_bound <= sol.objective


def test_relaxation_only_route_is_not_called_a_time_limit():
    """Too many supports for enumeration and too many fixed columns for the cover: the bound
    is the best single-cap relaxation.  With time to spare its gap is gap_limit (the
    relaxations' own, with the reason in the message), not time_limit."""
    from mixmio.solvers.lmm.crossed_relax import MAX_FIXED

    pr = make_crossed(30, 30, 400, MAX_FIXED + 1, 3, 3, seed=4)
    sol = _solve(pr, time_limit=60.0)
    assert sol.info["method"] == "relaxations (one cap dropped at a time)"
    assert sol.status in ("optimal", "gap_limit")
    if sol.status == "gap_limit":
        assert "no exact search applies" in sol.message
    assert sol.best_bound <= sol.objective
