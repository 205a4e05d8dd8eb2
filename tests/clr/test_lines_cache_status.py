"""Duplicate candidate lines, the LAD refit cache, explicit HiGHS options, the status rule."""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import mixmio.solvers.clr.heuristic as heuristic
import mixmio.solvers.clr.solve as solve_mod
from mixmio.api.clr import mio_clr
from mixmio.problem.clr import unique_lines
from mixmio.solvers.clr import milp
from mixmio.solvers.clr.heuristic import LadCache, objective_of
from mixmio.solvers.clr.solve import solve_clr
from tests.clr._oracle import brute_force_clr


def _tied() -> pd.DataFrame:
    """Ten rows on a small integer grid: three repeated rows and several collinear triples,
    so many pairs of rows give the same basic line."""
    x = [0, 1, 2, 3, 4, 0, 1, 2, 2, 4]
    y = [1, 2, 3, 9, 6, 1, 2, 7, 3, 2]
    return pd.DataFrame({"x": np.array(x, dtype=float), "y": np.array(y, dtype=float)})


def _exact_distinct_lines(df: pd.DataFrame) -> set[tuple[Fraction, Fraction]]:
    """The distinct lines through two rows with different x, in exact arithmetic."""
    pts = [(Fraction(int(a)), Fraction(int(b))) for a, b in zip(df.x, df.y, strict=True)]
    lines = set()
    for (x1, y1), (x2, y2) in itertools.combinations(pts, 2):
        if x1 != x2:
            slope = (y2 - y1) / (x2 - x1)
            lines.add((y1 - slope * x1, slope))
    return lines


def test_unique_lines_merges_only_near_exact_twins():
    X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 10.0]])
    y = np.array([1.0, 3.0, 5.0, 21.0])
    L = np.array([[1.0, 2.0], [3.0, -1.0], [1.0, 2.0], [1.0 + 1e-14, 2.0 - 1e-15],
                  [1.0, 2.0 + 1e-7], [0.0, 0.0], [-0.0, 0.0], [1e-8, 0.0]])
    kept, removed = unique_lines(L, X, y)
    # twins: the exact copy, the 1e-14 round-off copy, -0.0; a 1e-7 slope change and a
    # 1e-8 intercept are real (fitted values move by 1e-6 and 1e-8 > 1e-10 * 21)
    assert removed == 3
    np.testing.assert_array_equal(kept, L[[0, 1, 4, 5, 7]])
    # every dropped line has a kept twin within tau at every row
    tau = 1e-10 * np.abs(y).max()
    for a in L:
        assert np.min(np.max(np.abs((kept - a) @ X.T), axis=1)) <= tau
    # y = 0 (tau = 0): exact equality only
    kept0, removed0 = unique_lines(L, X, np.zeros(4))
    assert removed0 == 2 and len(kept0) == 6


def test_duplicated_rows_give_the_brute_force_optimum():
    df = _tied()
    X = np.column_stack([np.ones(len(df)), df.x.to_numpy()])
    y = df.y.to_numpy()
    exact = _exact_distinct_lines(df)
    best = brute_force_clr(X, y)
    for K_kwargs in ({}, {"min_size": 3}, {"outlier_penalty": 1.5, "min_size": 3}):
        fit = mio_clr("y ~ x", df, 2, random_state=0, formulation="lines", **K_kwargs)
        assert fit.solver == "highs-lines" and fit.status == "optimal"
        ref = brute_force_clr(X, y, min_size=K_kwargs.get("min_size"),
                              outlier_penalty=K_kwargs.get("outlier_penalty"))
        assert fit.objective == pytest.approx(ref, rel=1e-7, abs=1e-9)
        assert fit.best_bound <= fit.objective
        assert fit.best_bound >= ref * (1 - 1e-4) - 1e-9
        if not K_kwargs:
            assert fit.objective == pytest.approx(best, rel=1e-7, abs=1e-9)
            # the kept lines are exactly the distinct lines: none merged, none left twice
            pr = fit.problem
            assert len(pr.lines) == len(exact)
            assert pr.duplicate_lines == pr.subsets_used - len(exact) > 0
            assert fit.solution.info["duplicate_lines"] == pr.duplicate_lines
    bigm = mio_clr("y ~ x", df, 2, random_state=0, formulation="bigm")
    assert bigm.status == "optimal"
    assert bigm.objective == pytest.approx(best, rel=1e-6, abs=1e-8)


def _record_fits(monkeypatch) -> list[tuple[bytes, bytes, bytes | None]]:
    seen: list[tuple[bytes, bytes, bytes | None]] = []
    real = heuristic.lad_fit

    def recording(X, y, box=None):
        seen.append((np.ascontiguousarray(X).tobytes(), np.ascontiguousarray(y).tobytes(),
                     None if box is None else np.asarray(box, dtype=float).tobytes()))
        return real(X, y, box)

    monkeypatch.setattr(heuristic, "lad_fit", recording)
    return seen


@pytest.mark.parametrize("kwargs", [
    {"formulation": "lines"},
    {"formulation": "bigm"},
    {"formulation": "lines", "min_size": 3, "outlier_penalty": 2.0},
    {"solver": "heuristic"},
])
def test_each_cluster_is_fitted_once_per_solve(monkeypatch, kwargs):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 10, 14)
    df = pd.DataFrame({"x": x, "y": np.where(np.arange(14) % 2, 1 + x, 9 - x)
                       + rng.normal(0, 0.5, 14)})
    seen = _record_fits(monkeypatch)
    fit = mio_clr("y ~ x", df, 2, random_state=0, **kwargs)
    assert len(seen) == len(set(seen)), "a cluster was refitted"
    assert fit.solution.info["lad_fits"] == len(seen)
    # the reported fit is the one a fresh refit of its labels gives
    X = np.column_stack([np.ones(14), x])
    monkeypatch.undo()
    coef, lad, total = objective_of(X, df.y.to_numpy(), fit.labels_.to_numpy(), 2,
                                    kwargs.get("outlier_penalty"))
    assert total == fit.objective
    np.testing.assert_array_equal(coef, fit.coef.to_numpy())


def test_box_fallback_fits_once(monkeypatch):
    monkeypatch.setattr(solve_mod, "MAX_SUBSETS", 0)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 10)
    df = pd.DataFrame({"x": x, "y": np.where(np.arange(10) % 2, 1 + x, 9 - x)})
    seen = _record_fits(monkeypatch)
    with pytest.warns(RuntimeWarning, match="coefficient box"):
        fit = mio_clr("y ~ x", df, 2, random_state=0)
    assert fit.big_m_kind == "box"
    assert len(seen) == len(set(seen))


def test_cache_returns_what_a_refit_gives():
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(12), rng.normal(size=12)])
    y = rng.normal(size=12)
    cache = LadCache(X, y)
    lab = rng.integers(-1, 3, 12)
    first = objective_of(X, y, lab, 3, 0.5, cache=cache)
    again = objective_of(X, y, lab, 3, 0.5, cache=cache)
    fresh = objective_of(X, y, lab, 3, 0.5)
    assert cache.fits == 3 and cache.hits == 3
    for a, b, c in zip(first, again, fresh, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    box = np.array([0.1, 0.1])
    boxed = objective_of(X, y, lab, 3, 0.5, box, cache)
    assert cache.fits == 6        # a box is a different fit
    np.testing.assert_array_equal(boxed[0], objective_of(X, y, lab, 3, 0.5, box)[0])


def test_highs_options_are_per_solve():
    assert not hasattr(milp, "HIGHS_OPTIONS")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 24)
    X = np.column_stack([np.ones(24), x])
    y = np.where(np.arange(24) % 3 == 0, 4 + 3 * x, np.where(np.arange(24) % 3 == 1,
                                                             4 - 3 * x, 2 + 5 * x))
    y = y + rng.normal(0, 1, 24)
    with pytest.warns(RuntimeWarning, match="limit reached"):
        _, capped = solve_clr(X, y, 3, formulation="bigm", random_state=0,
                              highs_options={"mip_max_nodes": 1})
    assert capped.status == "time_limit" and capped.nodes <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, free = solve_clr(X, y, 3, formulation="lines", random_state=0)
    assert free.status == "optimal"


def test_bad_highs_options_refused_before_any_work(monkeypatch):
    def boom(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("the warm start ran")

    monkeypatch.setattr(solve_mod, "alternating", boom)
    X = np.column_stack([np.ones(6), np.arange(6.0)])
    with pytest.raises(ValueError, match="HiGHS refused the option"):
        solve_clr(X, np.arange(6.0), 2, highs_options={"no_such_option": 1})
    with pytest.raises(ValueError, match="HiGHS refused the option"):
        solve_clr(X, np.arange(6.0), 2, highs_options={"mip_rel_gap": "tight"})
    with pytest.raises(ValueError, match="highs_options apply"):
        solve_clr(X, np.arange(6.0), 2, solver="gurobi", highs_options={"threads": 1})


@pytest.mark.parametrize("raw,bound_frac,status", [
    ("optimal", 1 - 5e-5, "optimal"),
    ("optimal", 1 - 2e-4, "gap_limit"),
    ("time_limit", 1 - 5e-5, "optimal"),
    ("time_limit", 0.5, "time_limit"),
    ("error", 0.99, "error"),
])
def test_status_rule_with_one_warning(monkeypatch, raw, bound_frac, status):
    """certified_status of the reported objective's gap; 'error' for a failed run; a
    limited or failed search warns exactly once (from solve_clr, not again from mio_clr)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 10)
    df = pd.DataFrame({"x": x, "y": 1 + x + rng.normal(0, 1, 10)})
    real = milp.solve_highs

    def fake(pr, model, start, *a, **k):
        out = real(pr, model, start, *a, **k)
        out.status = raw
        out.bound = out.objective * bound_frac
        return out

    monkeypatch.setattr(solve_mod, "solve_highs", fake)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = mio_clr("y ~ x", df, 2, random_state=0, mip_gap=1e-4)
    assert fit.status == status
    assert fit.gap <= 1e-4 if status == "optimal" else fit.gap > 1e-4
    if status == "error":
        assert fit.best_bound == 0.0      # a failed run's bound is not used
    warned = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(warned) == (0 if status == "optimal" else 1)
    assert all(w.filename == __file__ for w in warned)
