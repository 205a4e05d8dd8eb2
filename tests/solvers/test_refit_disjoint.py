"""The refit's fast path for disjoint cluster dummies equals the generic Gram refit."""

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.problem.build import build_problem
from mixmio.results import refit as R


def _generic(problem, w, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(R, "_refit_disjoint", lambda *a: None)
        return R.refit_support(problem, w)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("frac", [0.2, 0.6, 1.0])
def test_fast_refit_equals_generic(seed, frac, monkeypatch):
    rng = np.random.default_rng(seed)
    K = 12
    g = np.repeat(np.arange(K), rng.integers(1, 7, K))
    n = g.size
    df = pd.DataFrame({"x": rng.normal(size=n), "c": rng.normal(size=K)[g] * 100.0,
                       "f": rng.choice(["a", "b"], size=n), "g": g})
    df["y"] = df.x + rng.normal(size=K)[g] + rng.normal(size=n)
    formula = "y ~ x + c + f + (1 | g)" if seed % 2 else "y ~ x + (1 | g)"
    design = mixmio.build_design(formula, df)
    problem = build_problem(design, int(round(frac * K)))
    w = mixmio.solvers.solve(problem).w
    fast = R._refit_disjoint(problem, w)
    assert fast is not None
    slow = _generic(problem, w, monkeypatch)
    scale = 1 + np.max(np.abs(slow))
    np.testing.assert_allclose(fast, slow, atol=1e-8 * scale)
    # both are least-squares solutions: the residual is orthogonal to the support's columns
    r = problem.y - problem.X @ fast[:problem.p] - problem.Z @ fast[problem.p:]
    on = np.flatnonzero(fast[problem.p:] != 0)
    assert np.max(np.abs(problem.X.T @ r)) < 1e-7 * scale * n
    assert np.max(np.abs(problem.Z[:, on].T @ r)) < 1e-7 * scale * n


def test_overlapping_columns_and_fixed_caps_take_the_generic_path(monkeypatch):
    data = mixmio.datasets.load("sleepstudy")
    design = mixmio.build_design("Reaction ~ Days + (Days | Subject)", data)
    problem = build_problem(design, 3)
    w = np.zeros(problem.n_coef)
    w[:2] = 1.0
    w[2 + 1] = w[2 + 18 + 1] = 1.0  # intercept and slope of one subject: shared rows
    assert R._refit_disjoint(problem, w) is None
    w[2 + 18 + 1] = 0.0
    w[2 + 18 + 4] = 1.0  # another subject's slope: disjoint rows, the fast path is exact
    fast = R._refit_disjoint(problem, w)
    np.testing.assert_allclose(fast, _generic(problem, w, monkeypatch), atol=1e-9)
    problem = build_problem(mixmio.build_design("Reaction ~ Days + (1 | Subject)", data), 3,
                            k_fixed=1)
    assert R._refit_disjoint(problem, mixmio.solvers.solve(problem).w) is None
