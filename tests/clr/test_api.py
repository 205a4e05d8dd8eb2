"""mio_clr's front door: errors before any solve, the result's tables and prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixmio.api.clr as clr_api
from mixmio.api.clr import mio_clr
from mixmio.results.clr import MioClrResult


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 10, 12)
    g = np.arange(12) % 2
    return pd.DataFrame({"x": x, "g": g, "y": np.where(g == 0, 1 + 2 * x, 25 - 2 * x)
                         + rng.normal(0, 0.3, 12)}, index=[f"r{i}" for i in range(12)])


@pytest.fixture
def no_solve(monkeypatch):
    def boom(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("a solve started before the input was checked")

    monkeypatch.setattr(clr_api, "solve_clr", boom)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"n_clusters": 0}, ValueError, "between 1 and the number of rows"),
    ({"n_clusters": 13}, ValueError, r"between 1 and the number of rows \(12\)"),
    ({"n_clusters": 2.0}, TypeError, "n_clusters must be an int"),
    ({"n_clusters": True}, TypeError, "n_clusters must be an int"),
    ({"n_clusters": 3, "min_size": 5}, ValueError, "infeasible"),
    ({"n_clusters": 2, "min_size": 0}, ValueError, "min_size must be >= 1"),
    ({"n_clusters": 2, "outlier_penalty": -1.0}, ValueError, "outlier_penalty"),
    ({"n_clusters": 2, "solver": "cplex"}, ValueError, "solver must be one of"),
    ({"n_clusters": 2, "time_limit": 0}, ValueError, "time_limit"),
    ({"n_clusters": 2, "mip_gap": 2.0}, ValueError, "mip_gap"),
    ({"n_clusters": 2, "formulation": "ARF"}, ValueError, "formulation must be one of"),
])
def test_bad_arguments(df, no_solve, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mio_clr("y ~ x", df, **kwargs)


def test_bad_formula_and_data(df, no_solve):
    with pytest.raises(KeyError, match="not in the data"):
        mio_clr("y ~ xx", df, 2)
    with pytest.raises(ValueError, match="random term"):
        mio_clr("y ~ x + (1 | g)", df, 2)
    bad = df.copy()
    bad.loc["r3", "x"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        mio_clr("y ~ x", bad, 2, na_action="raise")
    small = df.iloc[:3].copy()
    small.loc["r0", "x"] = np.nan
    with pytest.raises(ValueError, match=r"number of rows \(2\)"):
        mio_clr("y ~ x", small, 3)   # n counted after dropping NA rows


def test_result_tables(df):
    data = df.copy()
    data.loc["r4", "x"] = np.nan
    fit = mio_clr("y ~ x", data, 2, random_state=0)
    assert isinstance(fit, MioClrResult) and fit.status == "optimal"
    assert list(fit.labels_.index) == [r for r in data.index if r != "r4"]
    assert fit.clusters.equals(fit.labels_)
    assert fit.labels_.iloc[0] == 0                     # clusters numbered by first member
    assert not fit.outliers.any()
    assert list(fit.coef.columns) == ["Intercept", "x"] and fit.coef.shape == (2, 2)
    assert fit.sizes.sum() == 11
    assert fit.objective == pytest.approx(fit.cluster_objective.sum())
    assert fit.residuals.abs().sum() == pytest.approx(fit.objective)
    frame = fit.to_frame()
    assert list(frame.columns) == ["Intercept", "x", "size", "lad", "identified"]
    text = fit.summary()
    for word in ("mio_clr", "Status: optimal", "Best bound", "highs-lines", "Intercept",
                 "Big-M: valid"):
        assert word in text
    assert repr(fit).startswith("MioClrResult(formula='y ~ x', n_clusters=2")


def test_predict_gives_every_line(df):
    fit = mio_clr("y ~ x", df, 2, random_state=0)
    new = pd.DataFrame({"x": [0.0, 10.0]}, index=["a", "b"])
    P = fit.predict(new)
    assert P.shape == (2, 2) and list(P.index) == ["a", "b"]
    C = fit.coef.to_numpy()
    np.testing.assert_allclose(P.to_numpy(), np.array([[1, 0], [1, 10]]) @ C.T)
    train = fit.predict()
    lab = fit.labels_.to_numpy()
    np.testing.assert_allclose(train.to_numpy()[np.arange(12), lab], fit.fitted.to_numpy())


def test_min_size_and_outliers(df):
    data = df.copy()
    data.loc["r5", "y"] += 40
    fit = mio_clr("y ~ x", data, 2, outlier_penalty=3.0, min_size=4, random_state=0)
    assert fit.status == "optimal"
    assert fit.outliers.loc["r5"] and fit.labels_.loc["r5"] == -1
    assert fit.sizes.min() >= 4
    assert np.isnan(fit.fitted.loc["r5"])
    assert "Outliers:" in fit.summary()


def test_gurobi_matches_highs_or_names_the_licence_limit(df):
    gp = pytest.importorskip("gurobipy")
    del gp
    from mixmio.solvers.clr.milp import GurobiLicenceError

    ref = mio_clr("y ~ x", df, 2, random_state=0)
    try:
        fit = mio_clr("y ~ x", df, 2, solver="gurobi", random_state=0)
    except GurobiLicenceError:  # pragma: no cover - a licence refusing even this model
        pytest.skip("Gurobi licence refuses a 12-row model")
    assert fit.solver.startswith("gurobi-") and fit.status == "optimal"
    assert fit.objective == pytest.approx(ref.objective, rel=1e-6, abs=1e-8)
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"y": rng.normal(size=230)})   # 2,073 variables in (P1)
    try:
        mio_clr("y ~ 1", big, 3, solver="gurobi", time_limit=5, random_state=0,
                formulation="bigm")
    except GurobiLicenceError as exc:
        assert "2,000 variables" in str(exc) and "10010" in str(exc)


def test_lines_refused_when_too_many(df, monkeypatch, no_solve):
    import mixmio.solvers.clr.solve as solve_mod

    monkeypatch.setattr(solve_mod, "MAX_SUBSETS", 10)
    with pytest.raises(ValueError, match="formulation='lines' enumerates"):
        mio_clr("y ~ x", df, 2, formulation="lines")
