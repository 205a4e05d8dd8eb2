"""Significance (King's stage 3): which estimator it tests, forced columns, infeasible cuts,
seeding and names."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio import ForceInclude, Robust, Significance


def _data(n=80, seed=0, b=(1.0, 0.8)):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    df["y"] = b[0] * df.x0 + b[1] * df.x1 + rng.normal(size=n)
    return df


F = "y ~ x0 + x1 + x2 + x3 + x4 + x5"


def test_tests_the_reported_estimator():
    """With Robust and no refit the reported coefficients are the l1-shrunk ones; a column
    significant by least squares but shrunk to ~0 is insignificant for that estimator."""
    rng = np.random.default_rng(2)
    n = 100
    df = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n)})
    df["y"] = 0.35 * df.x0 + rng.normal(size=n)
    gamma = 0.9 * abs(float(df.x0 @ (df.y - df.y.mean())))
    sig = Significance(B=200, random_state=0, max_rounds=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shrunk = mixmio.mio_lm("y ~ x0 + x1", df, k=1, constraints=[Robust(gamma=gamma), sig])
        ols = mixmio.mio_lm("y ~ x0 + x1", df, k=1, constraints=[Robust(gamma=gamma), sig],
                            refit=True)
    assert shrunk.selected == ["x0"] and ols.selected == ["x0"]
    assert abs(shrunk.coef["x0"]) < 0.1 < ols.coef["x0"]
    assert shrunk.rounds[0]["insignificant"] == ["x0"]
    assert ols.rounds[0]["insignificant"] == []


def test_forced_columns_are_never_cut():
    """A forced column is reported when insignificant but not cut (the cut used to include
    it: k = 1 raised 'no solution satisfies the constraints', k = 2 dropped true signals)."""
    df = _data()
    for k, expected in ((1, ["x5"]), (2, ["x0", "x5"])):
        fit = mixmio.mio_lm(F, df, k=k, constraints=[ForceInclude(["x5"]),
                                                     Significance(B=100, random_state=0)])
        assert sorted(fit.selected) == expected and len(fit.rounds) == 1
        assert fit.rounds[0]["insignificant"] == ["x5"]
        assert not [c for c in fit.problem.constraints if c.name.startswith("Significance")]


def test_a_cut_that_leaves_nothing_feasible_returns_the_last_model():
    from dataclasses import replace

    from mixmio.design import build_design
    from mixmio.inference.significance import significance_loop
    from mixmio.problem import LinearConstraint
    from mixmio.problem.build import build_lm_problem

    df = _data(b=(0.0, 0.0))  # pure noise: every model fails the test
    design = build_design("y ~ x0 + x1", df)
    pr = build_lm_problem(design, 1)
    at_least_one = LinearConstraint(np.array([1, 2]), np.ones(2), ">=", 1.0, "x0 or x1")
    pr = replace(pr, constraints=(at_least_one,))
    sig = Significance(B=50, random_state=0, max_rounds=5, alpha=0.01)
    with pytest.warns(UserWarning, match="no model is feasible"):
        out_pr, sol, rounds, draws = significance_loop(pr, sig, dict(solver="auto"),
                                                       names=list(design.X.columns))
    assert [r["cut"] for r in rounds] == [True, True, False]
    assert rounds[-1]["status"] == "infeasible"
    assert sol.status == "optimal" and set(rounds[1]["support"]) == {int(np.flatnonzero(
        sol.w[1:3])[0]) + 1}
    # the returned problem is the one the returned model solved (one cut, not two)
    assert sum(c.name.startswith("Significance") for c in out_pr.constraints) == 1
    assert draws is not None and draws[1].shape == (50, 2)


def test_seeded_by_the_fits_random_state():
    df = _data(n=50, b=(1.0, 0.28))
    runs = [mixmio.mio_lm(F, df, k=3, constraints=[Significance(B=20)], random_state=0)
            for _ in range(3)]
    assert all(r.rounds == runs[0].rounds for r in runs[1:])


def test_a_forced_column_shrunk_to_zero_is_reported():
    df = _data()
    with pytest.warns(UserWarning, match=r"forced-in column\(s\) \['x5'\] have estimate "
                      r"exactly 0 \(the l1 penalty of Robust\(gamma=50\)"):
        fit = mixmio.mio_lm(F, df, k=2, constraints=[ForceInclude(["x5"]),
                                                     Robust(gamma=50.0)])
    assert fit.coef["x5"] == 0
