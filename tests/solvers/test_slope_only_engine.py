"""Slope-only terms ``(0 + x | g)`` go to the exact intercept engine (issue 21): one column
per cluster with values x instead of ones; the statistics become x-weighted sums."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixmio
from mixmio.problem import CapSet, Problem, TermStructure
from mixmio.solvers import solve_engine
from mixmio.solvers.lmm.intercept import structure
from tests.oracles import brute_force


def _slope_only(seed: int):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(3, 8))
    per = int(rng.integers(1, 6))
    p = int(rng.integers(1, 4))
    codes = np.repeat(np.arange(K), per)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    x = rng.normal(size=n) * rng.uniform(0.1, 3.0)
    if seed % 4 == 0:
        x[codes == 0] = 0.0  # a cluster whose column is empty: no gain possible
    g = np.zeros(K)
    dev = rng.choice(K, size=min(2, K), replace=False)
    g[dev] = rng.uniform(0.5, 2.5, size=dev.size) * rng.choice([-1, 1], size=dev.size)
    y = X @ rng.normal(size=p) + x * g[codes] + rng.normal(size=n)
    Z = sp.csc_matrix((x, (np.arange(n), codes)), shape=(n, K))
    k = int(rng.integers(0, K + 1))
    ridge = float(10 ** rng.uniform(-3, 0.5))
    pen = np.concatenate([np.zeros(p, bool), np.ones(K, bool)])
    return Problem(X=X, Z=Z, y=y, ridge=ridge, caps=(CapSet("x|g", p + np.arange(K), k),),
                   penalized=pen, terms=(TermStructure("0 + x | g", 0, 1, K, codes,
                                                       x[:, None]),))


@pytest.mark.parametrize("seed", range(16))
def test_slope_only_matches_brute_force(seed):
    pr = _slope_only(seed)
    assert structure(pr)[0] == "intercept"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(pr, mip_gap=1e-9)
    fb, _ = brute_force(pr)
    assert sol.status == "optimal"
    assert abs(sol.objective - fb) <= 1e-7 * max(abs(fb), 1e-12)
    assert sol.best_bound <= fb * (1 + 1e-9) + 1e-12
    assert pr.is_feasible(sol.w)
    assert np.isclose(pr.objective(sol.w), sol.objective, rtol=1e-10)


def test_slope_only_front_door_uses_the_engine_and_matches_cvxpy():
    """mio_lmer routes (0 + x | g) to mixmio-bnb; the CVXPY route (SCIP) reaches the same
    objective on a small Exam subset where it can finish."""
    exam = mixmio.datasets.load("exam")
    small = exam[exam["school"].astype(int) <= 8].reset_index(drop=True)
    f = "normexam ~ standLRT + (0 + standLRT | school)"
    fit = mixmio.mio_lmer(f, small, k=2)
    assert fit.solver == "mixmio-bnb" and fit.status == "optimal"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = mixmio.mio_lmer(f, small, k=2, solver="SCIP", time_limit=120)
    assert ref.solver.startswith("cvxpy")
    if ref.status == "optimal":
        assert fit.objective == pytest.approx(ref.objective, rel=1e-6)
    assert fit.objective <= ref.objective * (1 + 1e-6)
    assert fit.best_bound <= ref.objective * (1 + 1e-9)


def test_intercept_and_slope_only_statistics_are_not_shared():
    """The statistics cache is keyed on the column values too: the same X, y and codes with
    (1 | g) and with (0 + x | g) give different fits."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "g": np.repeat(np.arange(6), 10)})
    df["y"] = df["x"] + np.where(df["g"] == 2, 2.0, 0.0) + rng.normal(size=60)
    a = mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1)
    b = mixmio.mio_lmer("y ~ x + (0 + x | g)", df, k=1)
    assert a.solver == b.solver == "mixmio-bnb"
    assert a.objective != pytest.approx(b.objective, rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_intercept_plus_slope_only_terms_use_the_slopes_engine(seed):
    """(1 | g) + (0 + x | g): two one-column terms on one factor are the columns of
    (1 + x | g) with a cap per column; the slopes engine solves them (brute force agrees)."""
    pr = _slope_only(seed)
    K, p = pr.terms[0].n_levels, pr.p
    n = pr.n
    codes = pr.terms[0].codes
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    Z = sp.hstack([A, pr.Z], format="csc")
    rng = np.random.default_rng(seed)
    k1, k2 = int(rng.integers(0, K + 1)), int(rng.integers(0, K + 1))
    caps = (CapSet("1|g", p + np.arange(K), k1), CapSet("0 + x|g", p + K + np.arange(K), k2))
    terms = (TermStructure("1 | g", 0, 1, K, codes, np.ones((n, 1))),
             TermStructure("0 + x | g", K, 1, K, codes, pr.terms[0].values))
    pen = np.concatenate([np.zeros(p, bool), np.ones(2 * K, bool)])
    two = Problem(X=pr.X, Z=Z, y=pr.y, ridge=pr.ridge, caps=caps, penalized=pen, terms=terms)
    assert structure(two)[0] == "slopes"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_engine(two, mip_gap=1e-9)
    fb, _ = brute_force(two)
    assert sol.status == "optimal"
    assert abs(sol.objective - fb) <= 1e-7 * max(abs(fb), 1e-12)
    assert sol.best_bound <= fb * (1 + 1e-9) + 1e-12
    assert two.is_feasible(sol.w)


def test_front_door_two_terms_one_factor():
    exam = mixmio.datasets.load("exam")
    fit = mixmio.mio_lmer("normexam ~ standLRT + (1 | school) + (0 + standLRT | school)", exam,
                          k={"1|school": 3, "standLRT|school": 3})
    assert fit.solver.startswith("mixmio-bnb") and fit.status == "optimal"
