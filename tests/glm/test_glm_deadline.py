"""mio_glm under a clock: honest statuses and bounds when the time limit stops the warm start
or the branch and bound anywhere (a counting clock makes the stops deterministic), the include
child warm-started from its parent's fit, and the penalised mask computed once.

No test asserts wall time: each checks that what is reported is true (bound <= the
brute-force optimum, gap consistent with objective and bound, status consistent with gap)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mixmio.api.glm import _glm_problem_with_k_max, mio_glm
from mixmio.design import build_design
from mixmio.solvers.glm import bnb
from mixmio.solvers.glm import logistic as _logistic
from mixmio.solvers.glm.heuristics import Fits
from mixmio.solvers.solution import relative_gap

from .test_mio_glm import _brute_force, _data, _sm_nll


class _Clock:
    """A fake ``time`` module whose perf_counter counts its calls (0, 1, 2, ...)."""

    def __init__(self) -> None:
        self.calls = 0

    def perf_counter(self) -> float:
        self.calls += 1
        return float(self.calls - 1)


def _problem(df, formula, k):
    return _glm_problem_with_k_max(build_design(formula, df), k, 0.0)[0]


def _quiet(*_args) -> None:
    return None


def _assert_honest(fit, best: float) -> None:
    """Status, gap and bound tell the truth about the brute-force optimum ``best``."""
    assert 0.0 <= fit.best_bound <= fit.objective
    assert fit.best_bound <= best * (1 + 1e-9)              # a true lower bound
    assert fit.objective >= best * (1 - 1e-9)               # a feasible value
    assert fit.gap == pytest.approx(relative_gap(fit.objective, fit.best_bound), abs=1e-15)
    if fit.status == "optimal":
        assert fit.gap <= fit.mip_gap
        assert fit.objective == pytest.approx(best, rel=10 * fit.mip_gap)
    else:
        assert fit.status == "time_limit" and fit.gap > fit.mip_gap


def test_penalized_mask_is_computed_once():
    df, formula = _data(60, 5, 21, factor=True)
    pr = _problem(df, formula, 2)
    mask = pr.penalized
    assert pr.penalized is mask                      # no new mask per access
    assert not mask.flags.writeable
    expected = np.zeros(pr.p, dtype=bool)
    for u in pr.units:
        expected[u] = True
    np.testing.assert_array_equal(mask, expected)
    assert not mask[pr.always].any() and mask.sum() == pr.selectable_weight


@pytest.mark.parametrize("solver", ["auto", "oa"])
def test_deadline_before_any_bound_reports_the_trivial_bound(solver):
    """A limit that expires before the engine proves anything: the incumbent is the
    intercept-only fit and the bound the trivial 0 (F >= 0), not an invented one."""
    df, formula = _data(150, 6, 22, scale=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the separation LP is cut short as well
        fit = mio_glm(formula, df, k=2, solver=solver, time_limit=1e-9, random_state=0)
    best, _ = _brute_force(df, 2)
    assert fit.status == "time_limit"
    assert fit.best_bound == 0.0 and fit.gap == 1.0
    assert fit.objective == pytest.approx(_sm_nll(df["y"].to_numpy(float),
                                                  np.ones((len(df), 1))), rel=1e-9)
    _assert_honest(fit, best)


def test_solve_bnb_past_deadline_computes_no_root():
    df, formula = _data(100, 5, 23)
    pr = _problem(df, formula, 2)
    fits = Fits(pr)
    fits.fit([])
    bound, timed_out, info = bnb.solve_bnb(pr, fits, -np.inf, 1e-4, _quiet)
    assert (bound, timed_out, info["nodes"]) == (0.0, True, 0)
    assert fits.n_fits == 1                          # nothing fitted after the deadline


@pytest.mark.parametrize("stop", [0, 1, 2, 3, 5, 8])
def test_root_fit_cut_by_the_deadline_still_certifies(stop, monkeypatch):
    """The root's Newton fit stopped after ``stop`` clock checks: its bound is weaker but
    still below min F on all columns (statsmodels' MLE), and at least the trivial 0."""
    df, formula = _data(200, 8, 24, k_true=4)
    pr = _problem(df, formula, 3)
    full = _sm_nll(pr.y, pr.X)
    monkeypatch.setattr(_logistic, "time", _Clock())
    root = bnb._make_node(pr, frozenset(), tuple(range(len(pr.units))), None, 0,
                          deadline=float(stop))
    assert 0.0 <= root.lb <= full * (1 + 1e-12)
    if stop <= 2:
        assert not root.converged                    # really cut short
    monkeypatch.setattr(_logistic, "time", _Clock())
    done = bnb._make_node(pr, frozenset(), tuple(range(len(pr.units))), None, 0,
                          deadline=1e9)
    assert done.converged and done.lb == pytest.approx(full, rel=1e-8)
    assert done.lb <= full * (1 + 1e-12) and root.lb <= done.lb * (1 + 1e-12)


@pytest.mark.parametrize("seed,factor", [(25, False), (26, True)])
def test_search_stopped_anywhere_is_honest(seed, factor, monkeypatch):
    """solve_bnb stopped after 0, 1, 2, ... clock checks (inside the root, a child fit, or
    between nodes): every reported bound is a true lower bound, and a search that was not
    stopped is optimal and finds the brute-force optimum."""
    df, formula = _data(120, 7, seed, scale=0.6, factor=factor)
    k = 3
    best, _ = _brute_force(df, k)
    pr = _problem(df, formula, k)
    finished = False
    for stop in range(0, 400, 7):
        clock = _Clock()
        monkeypatch.setattr(_logistic, "time", clock)
        monkeypatch.setattr(bnb, "time", clock)
        fits = Fits(pr)
        fits.fit([])                                 # a weak incumbent: a real tree
        bound, timed_out, info = bnb.solve_bnb(pr, fits, float(stop), 1e-6, _quiet)
        assert 0.0 <= bound <= fits.best_val
        assert bound <= best * (1 + 1e-9)
        assert fits.best_val >= best * (1 - 1e-9)
        if timed_out:
            assert info["open_nodes"] >= 1
        else:
            finished = True
            assert relative_gap(fits.best_val, bound) <= 1e-6
            assert fits.best_val == pytest.approx(best, rel=1e-7)
    assert finished


@pytest.mark.parametrize("time_limit", [1e-4, 1e-3, 1e-2, 0.1])
def test_short_time_limits_are_honest(time_limit):
    """Whatever the clock allows, the status, gap and bound are consistent and true."""
    df, formula = _data(150, 8, 27, k_true=4, scale=0.5)
    best, _ = _brute_force(df, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mio_glm(formula, df, k=4, time_limit=time_limit, random_state=0, mip_gap=1e-6)
    _assert_honest(fit, best)


@pytest.mark.parametrize("seed,p,k,factor", [(30, 7, 3, False), (31, 8, 4, False),
                                             (32, 6, 2, True), (33, 6, 3, True)])
def test_warm_include_child_agrees_with_cold_and_brute_force(seed, p, k, factor):
    df, formula = _data(120, p, seed, scale=0.7, factor=factor)
    best, best_set = _brute_force(df, k)
    pr = _problem(df, formula, k)
    out = {}
    for warm in (True, False):
        fits = Fits(pr)
        fits.fit([])
        bound, timed_out, info = bnb.solve_bnb(pr, fits, np.inf, 1e-7, _quiet,
                                               warm_include=warm)
        assert not timed_out
        assert fits.best_val == pytest.approx(best, rel=1e-7)
        assert bound <= best * (1 + 1e-9)
        assert relative_gap(fits.best_val, bound) <= 1e-7
        names = {"g" if pr.names[j].startswith("g[") else pr.names[j]
                 for j in pr.columns_of(fits.best_key) if j not in pr.always}
        assert names == best_set
        out[warm] = info
    # the warm path is really taken: same-W include children reuse the parent's fit (with
    # k = 2 and a factor every include child loses the factor or fills the room: all refit)
    assert out[False]["include_reused"] == 0
    if not factor or k > 2:
        assert out[True]["include_reused"] > 0
    else:
        assert out[True]["include_refit"] > 0


@pytest.mark.parametrize("seed", [34, 35])
def test_warm_include_refit_converges_to_the_cold_value(seed):
    """An include child whose W shrinks (a factor too heavy for the room leaves B) is
    refitted from the parent's coefficients: same certified bound and fit as from zero."""
    df, formula = _data(150, 5, seed, factor=True)
    pr = _problem(df, formula, 3)
    heavy = [u for u, c in enumerate(pr.units) if c.size == 2]
    light = [u for u, c in enumerate(pr.units) if c.size == 1]
    assert heavy
    parent = bnb._make_node(pr, frozenset(light[:1]), tuple(light[1:] + heavy), None, 1)
    j = light[1]
    rest = tuple(u for u in parent.B if u != j)      # room 1 after j: the factor leaves B
    warm = bnb._make_node(pr, frozenset(parent.A | {j}), rest, parent.beta, 2, parent=parent)
    cold = bnb._make_node(pr, frozenset(parent.A | {j}), rest, None, 2)
    assert warm.beta is not parent.beta and warm.B == cold.B and heavy[0] not in warm.B
    assert warm.converged and cold.converged
    assert warm.lb == pytest.approx(cold.lb, rel=1e-10)
    np.testing.assert_allclose(warm.beta, cold.beta, rtol=1e-6, atol=1e-8)
    cols = pr.columns_of(set(warm.A) | set(warm.B))
    assert warm.lb <= _sm_nll(pr.y, pr.X[:, cols]) * (1 + 1e-12)
    # an include child that keeps its parent's W (room 2 left: the factor stays) reuses the
    # parent's fit and bound
    root = bnb._make_node(pr, frozenset(), tuple(range(len(pr.units))), None, 0)
    rest0 = tuple(u for u in root.B if u != light[0])
    same = bnb._make_node(pr, frozenset({light[0]}), rest0, root.beta, 1, parent=root)
    assert heavy[0] in same.B
    assert same.beta is root.beta and same.lb == root.lb
    assert same.lb == pytest.approx(parent.lb, rel=1e-10)  # the same W, fitted afresh


def test_child_past_the_deadline_keeps_its_parents_bound():
    """A child not fitted before the deadline takes the bound of the node it came from,
    which is below min F on the child's (smaller) support."""
    df, formula = _data(150, 6, 36, scale=0.8)
    pr = _problem(df, formula, 2)
    root = bnb._make_node(pr, frozenset(), tuple(range(len(pr.units))), None, 0)
    rest = tuple(range(1, len(pr.units)))
    child = bnb._make_node(pr, frozenset(), rest, root.beta, 1, deadline=-np.inf, floor=root)
    assert child.lb == root.lb and not child.converged
    assert child.lb <= _sm_nll(pr.y, pr.X[:, pr.columns_of(rest)]) * (1 + 1e-12)
    fitted = bnb._make_node(pr, frozenset(), rest, root.beta, 1, floor=root)
    assert fitted.converged and root.lb <= fitted.lb
