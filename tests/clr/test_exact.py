"""mio_clr against independent oracles: brute force, plain LAD, known lines."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from mixmio.api.clr import mio_clr
from mixmio.problem.clr import proven_big_m
from mixmio.solvers.clr.heuristic import lad_fit
from mixmio.solvers.clr.milp import build_model, solve_highs
from mixmio.solvers.clr.solve import make_problem
from tests.clr._oracle import brute_force_clr, lad_objective


def _two_lines(n: int, seed: int, noise: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    g = rng.integers(0, 2, n)
    y = np.where(g == 0, 1 + x, 8 - 0.5 * x) + rng.normal(0, noise, n)
    return pd.DataFrame({"x": x, "y": y, "g": g})


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return np.column_stack([np.ones(len(df)), df.x.to_numpy()]), df.y.to_numpy()


@pytest.mark.parametrize("seed,n,min_size", [(0, 8, None), (1, 9, None), (2, 9, 3)])
def test_matches_brute_force(seed, n, min_size):
    df = _two_lines(n, seed)
    best = brute_force_clr(*_arrays(df), min_size=min_size)
    X, y = _arrays(df)
    for formulation in ("bigm", "lines"):
        fit = mio_clr("y ~ x", df, 2, min_size=min_size, random_state=seed,
                      formulation=formulation)
        assert fit.solver == f"highs-{formulation}" and fit.status == "optimal"
        assert fit.objective == pytest.approx(best, rel=1e-6, abs=1e-8)
        assert fit.best_bound <= fit.objective and fit.gap <= 1e-4
        assert fit.best_bound >= best * (1 - 1e-4) - 1e-8      # the bound is valid
        # the labels achieve the objective (each cluster refitted independently)
        lab = fit.labels_.to_numpy()
        got = sum(lad_objective(X[lab == k], y[lab == k]) for k in range(2))
        assert got == pytest.approx(fit.objective, rel=1e-6, abs=1e-8)
        if min_size is not None:
            assert fit.sizes.min() >= min_size


def test_outliers_match_brute_force():
    rng = np.random.default_rng(3)
    x = np.array([0.0, 1.0, 2.0, 3.0, 0.5, 1.5, 2.5, 1.2])
    y = np.concatenate([x[:4], 10 - x[4:7], [40.0]]) + rng.normal(0, 0.2, 8)
    df = pd.DataFrame({"x": x, "y": y})
    T = 2.0
    # min_size keeps the outlier from forming a cheap cluster of its own (seed 003, Fig. 1)
    best = brute_force_clr(*_arrays(df), min_size=3, outlier_penalty=T)
    for formulation in ("bigm", "lines"):
        fit = mio_clr("y ~ x", df, 2, outlier_penalty=T, min_size=3, random_state=0,
                      formulation=formulation)
        assert fit.status == "optimal"
        assert fit.objective == pytest.approx(best, rel=1e-6, abs=1e-8)
        assert fit.outliers.tolist() == [False] * 7 + [True]
        assert (fit.labels_[fit.outliers] == -1).all()
        assert fit.objective == pytest.approx(fit.cluster_objective.sum()
                                              + T * fit.outliers.sum(), rel=1e-9)


def test_one_cluster_is_plain_lad():
    from statsmodels.regression.quantile_regression import QuantReg

    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x1": rng.normal(size=40), "x2": rng.normal(size=40)})
    df["y"] = 1 + 2 * df.x1 - df.x2 + rng.standard_t(3, size=40)
    fit = mio_clr("y ~ x1 + x2", df, 1)
    X = np.column_stack([np.ones(40), df.x1, df.x2])
    qr = QuantReg(df.y.to_numpy(), X).fit(q=0.5)
    qr_obj = float(np.abs(df.y.to_numpy() - X @ qr.params).sum())
    assert fit.status == "optimal"
    assert fit.objective == pytest.approx(qr_obj, rel=1e-5)
    np.testing.assert_allclose(fit.coef.loc[0].to_numpy(), qr.params, atol=1e-3)
    assert fit.sizes.tolist() == [40]


def test_recovers_two_separated_lines():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, 30)
    g = np.arange(30) % 2
    df = pd.DataFrame({"x": x, "y": np.where(g == 0, 2 + 3 * x, 40 - 2 * x)
                       + rng.normal(0, 0.2, 30)})
    fit = mio_clr("y ~ x", df, 2, random_state=0)
    assert fit.status == "optimal"
    lab = fit.labels_.to_numpy()
    assert np.array_equal(lab, g) or np.array_equal(lab, 1 - g)
    coef = fit.coef.sort_values("Intercept").to_numpy()
    np.testing.assert_allclose(coef, [[2, 3], [40, -2]], atol=0.4)
    # every row's own line is its best line
    P = fit.predict()
    own = np.abs(df.y.to_numpy() - P.to_numpy()[np.arange(30), lab])
    assert np.all(own <= np.abs(df.y.to_numpy()[:, None] - P.to_numpy()).min(axis=1) + 1e-9)


def test_symmetry_breaking_keeps_the_optimum():
    df = _two_lines(10, 6)
    on = mio_clr("y ~ x", df, 3, random_state=0, formulation="bigm")
    off = mio_clr("y ~ x", df, 3, random_state=0, symmetry_breaking=False, formulation="bigm")
    lines = mio_clr("y ~ x", df, 3, random_state=0, formulation="lines")
    assert lines.objective == pytest.approx(on.objective, rel=1e-6, abs=1e-8)
    assert on.status == off.status == "optimal"
    assert on.objective == pytest.approx(off.objective, rel=1e-6, abs=1e-8)
    assert on.problem.symmetry_breaking and not off.problem.symmetry_breaking


def test_symmetry_rows_keep_exactly_one_relabelling():
    """The rows admit, of all K! relabellings of a labeling, exactly the first-member one."""
    from mixmio.problem.clr import symmetry_rows

    n, K = 5, 3
    rows = symmetry_rows(n, K)
    for lab in itertools.product(range(K), repeat=n):
        z = np.zeros(n * K)
        z[np.arange(n) * K + np.array(lab)] = 1
        ok = all(z[idx] @ np.array(c) <= 0 for idx, c in rows)
        firsts = [lab.index(k) for k in range(K) if k in lab]
        canonical = firsts == sorted(firsts) and set(lab) == set(range(len(firsts)))
        assert ok == canonical, lab


def test_big_m_covers_every_basic_line():
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(8), rng.uniform(0, 1, 8)])
    y = rng.normal(size=8)
    M, used = proven_big_m(X, y)
    assert used == 28
    for i, j in itertools.combinations(range(8), 2):
        a = np.linalg.solve(X[[i, j]], y[[i, j]])
        assert np.all(np.abs(y - X @ a) <= M + 1e-9)
    # LAD fits of random subsets are basic: their residuals stay within M
    for _ in range(5):
        S = rng.random(8) < 0.5
        if S.sum() >= 2:
            a, _ = lad_fit(X[S], y[S])
            assert np.all(np.abs(y - X @ a) <= M + 1e-6)


def test_paper_big_m_can_cut_off_the_optimum():
    """The paper's M (largest pairwise distance) is not valid: a steep pair of rows is a
    zero-cost cluster whose line is far (> M) from the other rows."""
    x = np.array([0.0, 0.01, 0.02, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.0, 10.0, 20.0, 6.0, 7.0, 8.0, 9.0])
    df = pd.DataFrame({"x": x, "y": y})
    fit = mio_clr("y ~ x", df, 2, random_state=0)
    assert fit.status == "optimal" and fit.objective == pytest.approx(0.0, abs=1e-7)
    X = np.column_stack([np.ones(7), x])
    pr = make_problem(X, y, 2, None, None, 0.0, np.zeros((2, 2)))
    paper_m = np.sqrt(((np.column_stack([x, y])[:, None] - np.column_stack([x, y])[None])
                       ** 2).sum(-1)).max()
    assert pr.big_m.max() > paper_m
    bad = dataclasses.replace(pr, big_m=np.full(7, paper_m))
    out = solve_highs(bad, build_model(bad), None, 10.0, 1e-6, False)
    assert out.status == "optimal" and out.objective > 1.0   # "optimal", but wrong


def test_box_fallback_is_stated(monkeypatch):
    import mixmio.solvers.clr.solve as solve_mod

    monkeypatch.setattr(solve_mod, "MAX_SUBSETS", 0)
    df = _two_lines(8, 0)
    fit = mio_clr("y ~ x", df, 2, random_state=0)
    assert fit.big_m_kind == "box" and fit.coef_box is not None
    assert "coefficient box" in fit.summary()
    assert (fit.coef.abs().to_numpy() <= fit.coef_box.to_numpy() + 1e-9).all()
    assert fit.objective == pytest.approx(brute_force_clr(*_arrays(df)), rel=1e-6)


def test_time_limit_is_honest():
    from mixmio.solvers.solution import relative_gap

    rng = np.random.default_rng(0)
    parts = []
    for a0, a1 in [(4, 3), (4, -3), (2, 5)]:
        x = rng.uniform(0, 10, 12)
        parts.append(pd.DataFrame({"x": x, "y": a0 + a1 * x + rng.normal(0, 1, 12)}))
    df = pd.concat(parts, ignore_index=True)
    with pytest.warns(RuntimeWarning, match="time limit"):
        fit = mio_clr("y ~ x", df, 4, time_limit=1.0, random_state=0, formulation="bigm")
    assert fit.status == "time_limit"
    assert fit.gap > 1e-4
    assert fit.best_bound <= fit.objective
    assert fit.gap == pytest.approx(relative_gap(fit.objective, fit.best_bound))
    assert fit.solve_time < 10
    assert "time_limit" in fit.summary()


def test_heuristic_is_labelled():
    df = _two_lines(8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = mio_clr("y ~ x", df, 2, solver="heuristic", random_state=0)
    assert fit.status == "heuristic" and fit.best_bound == 0.0 and fit.gap == 1.0
    assert fit.objective >= brute_force_clr(*_arrays(df)) - 1e-8
