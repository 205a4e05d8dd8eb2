"""fit.bootstrap for mio_lm / mio_glm: selection frequencies, intervals, accounting, seeds."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.inference.subset_bootstrap import SubsetBootstrapResult, resample_indices

# the module (the package exports a function of the same name)
sb = importlib.import_module("mixmio.inference.subset_bootstrap")


# -- data ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm_data():
    rng = np.random.default_rng(11)
    n = 150
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    df["y"] = 1.0 + 2.0 * df.a - 1.5 * df.c + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def lm_fit(lm_data):
    return mixmio.mio_lm("y ~ a + b + c + d + e", lm_data, k=2)


@pytest.fixture(scope="module")
def lm_boot(lm_fit):
    return lm_fit.bootstrap(B=30, random_state=3)


@pytest.fixture(scope="module")
def glm_fit():
    rng = np.random.default_rng(5)
    n = 200
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    eta = 0.3 + 2.0 * df.a - 1.5 * df.c
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return mixmio.mio_glm("y ~ a + b + c + d + e", df, k=2)


def _stream(n: int, B: int, random_state) -> np.ndarray:
    """The replicate rows, rebuilt from numpy primitives (not from mixmio)."""
    out = []
    for s in np.random.SeedSequence(random_state).spawn(B):
        rng = np.random.default_rng(int(s.generate_state(2)[0]))
        out.append(rng.integers(0, n, n))
    return np.vstack(out)


# -- selection frequencies ----------------------------------------------------------------------
def test_lm_strong_support_selected_null_not(lm_boot):
    assert isinstance(lm_boot, SubsetBootstrapResult)
    assert lm_boot.n_ok == 30 and len(lm_boot.failures) == 0
    f = lm_boot.selection_frequency
    assert f["a"] >= 0.95 and f["c"] >= 0.95
    assert max(f["b"], f["d"], f["e"]) <= 0.1
    assert f["Intercept"] == 1.0
    t = lm_boot.table
    assert t.loc["a", "lower"] < 2.0 < t.loc["a", "upper"]
    assert t.loc["c", "lower"] < -1.5 < t.loc["c", "upper"]
    assert t.loc["a", "sign_stability"] == 1.0
    assert t.loc[["a", "c"], "selected"].all() and not t.loc["b", "selected"]
    assert t.loc["Intercept", "always_in"] and not t.loc["a", "always_in"]
    assert lm_boot.to_frame().equals(t)
    subs = lm_boot.subset_frequencies()
    assert subs.loc[0, "subset"] == "a + c" and subs.loc[0, "full_data"]


def test_glm_strong_support_selected_null_not(glm_fit):
    boot = glm_fit.bootstrap(B=20, random_state=1)
    assert boot.model == "mio_glm" and boot.n_ok == 20
    f = boot.selection_frequency
    assert f["a"] >= 0.95 and f["c"] >= 0.95
    assert max(f["b"], f["d"], f["e"]) <= 0.15
    t = boot.table
    assert t.loc["a", "lower"] > 0 and t.loc["c", "upper"] < 0
    assert np.array_equal(t["estimate"].to_numpy(), glm_fit.coef.to_numpy())


# -- seeds and parallelism ------------------------------------------------------------------------
def test_identical_for_any_n_jobs_and_seed_matters(lm_fit):
    one = lm_fit.bootstrap(B=12, random_state=7, n_jobs=1)
    two = lm_fit.bootstrap(B=12, random_state=7, n_jobs=2)
    np.testing.assert_array_equal(one.draws, two.draws)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert one.statuses == two.statuses
    other = lm_fit.bootstrap(B=12, random_state=8, n_jobs=1)
    assert not np.array_equal(one.draws, other.draws)
    assert not one.table[["se", "lower", "upper"]].equals(other.table[["se", "lower",
                                                                          "upper"]])


def test_glm_identical_for_any_n_jobs(glm_fit):
    one = glm_fit.bootstrap(B=8, random_state=2, n_jobs=1)
    two = glm_fit.bootstrap(B=8, random_state=2, n_jobs=2)
    np.testing.assert_array_equal(one.draws, two.draws)


# -- oracle: no selection (k = p) is the plain pairs bootstrap of OLS ----------------------------
def test_lm_k_equals_p_matches_numpy_pairs_bootstrap_of_ols():
    rng = np.random.default_rng(4)
    n, B = 120, 40
    df = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    df["y"] = 0.5 + df.a - 0.7 * df.b + 0.2 * df.c + rng.standard_t(4, size=n)
    fit = mixmio.mio_lm("y ~ a + b + c", df, k=3)
    boot = fit.bootstrap(B=B, random_state=[9, 1])
    X = np.column_stack([np.ones(n), df[["a", "b", "c"]].to_numpy()])
    y = df["y"].to_numpy()
    idx = _stream(n, B, [9, 1])
    np.testing.assert_array_equal(idx, resample_indices(n, B, [9, 1]))
    np.testing.assert_array_equal(idx, boot.resample_indices())
    draws = np.vstack([np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in idx])
    t = boot.table
    np.testing.assert_allclose(t["estimate"], np.linalg.lstsq(X, y, rcond=None)[0],
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(t["se"], draws.std(axis=0, ddof=1), rtol=0, atol=1e-8)
    np.testing.assert_allclose(t["lower"], np.quantile(draws, 0.025, axis=0), rtol=0, atol=1e-8)
    np.testing.assert_allclose(t["upper"], np.quantile(draws, 0.975, axis=0), rtol=0, atol=1e-8)
    basic = boot.intervals("basic", level=0.9)
    est = t["estimate"].to_numpy()
    np.testing.assert_allclose(basic["lower"], 2 * est - np.quantile(draws, 0.95, axis=0),
                               rtol=0, atol=1e-8)
    assert (t["selection_frequency"] == 1.0).all()


# -- failures ------------------------------------------------------------------------------------
def test_glm_degenerate_and_separated_replicates_are_failures():
    rng = np.random.default_rng(1)
    n = 24
    d = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    d["y"] = (rng.random(n) < 1 / (1 + np.exp(-(-2.5 + 2 * d.x)))).astype(int)
    fit = mixmio.mio_glm("y ~ x + z", d, k=1)
    boot = fit.bootstrap(B=20, random_state=0)
    counts = boot.status_counts
    assert counts.get("degenerate", 0) >= 1 and counts.get("separation", 0) >= 1
    fails = boot.failures
    assert boot.n_ok + len(fails) == 20 and boot.n_ok >= 1
    assert set(fails["status"]) == {"degenerate", "separation"}
    assert fails.loc[fails["status"] == "degenerate", "reason"].str.contains(
        "one class").all()
    assert fails.loc[fails["status"] == "separation", "reason"].str.contains(
        "SeparationError").all()
    assert np.isnan(boot.draws[~boot.ok]).all()
    t = boot.table
    assert t.loc["Intercept", "n_valid"] == boot.n_ok
    assert "failed replicates (excluded)" in boot.describe()


def test_lm_factor_level_missing_in_resample_keeps_columns():
    rng = np.random.default_rng(2)
    n = 60
    f = np.array(["A"] * 40 + ["B"] * 18 + ["C"] * 2)
    df = pd.DataFrame({"x": rng.normal(size=n), "f": f})
    df["y"] = df.x + (df.f == "B") + rng.normal(size=n)
    fit = mixmio.mio_lm("y ~ x + f", df, k=3)
    boot = fit.bootstrap(B=30, random_state=4)
    t = boot.table
    assert list(t.index) == list(fit.design.X.columns)
    c_col = [c for c in t.index if "C" in c][0]
    idx = boot.resample_indices()
    missing = ~np.isin(idx, np.flatnonzero(f == "C")).any(axis=1)
    assert missing.any()
    assert np.isnan(boot.draws[missing, list(t.index).index(c_col)]).all()
    assert t.loc[c_col, "n_valid"] == boot.n_ok - missing[boot.ok].sum()
    assert t.loc["x", "n_valid"] == boot.n_ok


def test_glm_factor_level_missing_in_resample():
    rng = np.random.default_rng(3)
    n = 120
    f = np.array(["A"] * 80 + ["B"] * 37 + ["C"] * 3)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "f": f})
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-1.5 * df.x))).astype(int)
    fit = mixmio.mio_glm("y ~ x + z + f", df, k=2, ridge="auto")
    boot = fit.bootstrap(B=30, random_state=6)
    idx = boot.resample_indices()
    missing = ~np.isin(idx, np.flatnonzero(f == "C")).any(axis=1)
    assert missing.any()
    j = list(boot.terms).index([c for c in boot.terms if "C" in c][0])
    assert np.isnan(boot.draws[missing & boot.ok, j]).all()
    assert boot.n_ok == 30
    assert boot.selection_frequency["x"] >= 0.9


# -- other schemes, options, reports ------------------------------------------------------------
def test_lm_residual_scheme(lm_fit):
    boot = lm_fit.bootstrap(B=12, scheme="residual", random_state=1)
    assert boot.scheme == "residual" and boot.n_ok == 12
    assert boot.selection_frequency[["a", "c"]].min() == 1.0
    with pytest.raises(ValueError, match="pairs"):
        boot.resample_indices()


def test_unproven_replicates_are_draws_with_a_note(lm_fit):
    boot = lm_fit.bootstrap(B=6, random_state=1, solver="heuristic")
    assert boot.n_ok == 6 and set(boot.statuses) == {"heuristic"}
    assert "not proven optimal" in boot.describe()


def test_significance_fit_reruns_rounds(lm_data):
    fit = mixmio.mio_lm("y ~ a + b + c + d + e", lm_data, k=3,
                        constraints=[mixmio.Significance(B=20, random_state=0)])
    boot = fit.bootstrap(B=5, random_state=2)
    assert boot.n_ok == 5
    assert any("Significance" in n for n in boot.notes)
    assert boot.selection_frequency[["a", "c"]].min() == 1.0


def test_report_renders(lm_boot):
    rep = lm_boot.report()
    assert rep.stable["term"].tolist() == ["a", "c"]
    assert rep.unstable.empty
    text = str(rep)
    assert "Stable selections" in text and "Replicate statuses: optimal 30" in text
    assert "<table" in lm_boot._repr_html_()
    assert set(rep.to_frame()["section"]) == {"stable"}
    assert set(lm_boot.report(min_frequency=1.0).stable["term"]) <= {"a", "c"}
    with pytest.raises(ValueError, match="min_frequency"):
        lm_boot.report(min_frequency=1.5)


# -- input errors, before any solve ---------------------------------------------------------------
@pytest.mark.parametrize("kw, exc, match", [
    ({"B": 1}, ValueError, "B must be"),
    ({"B": 2.5}, ValueError, "B must be"),
    ({"B": True}, ValueError, "B must be"),
    ({"ci": "bca"}, ValueError, "ci must be one of"),
    ({"level": 1.0}, ValueError, "level"),
    ({"level": 0}, ValueError, "level"),
    ({"scheme": "cluster"}, ValueError, r"scheme must be one of \('pairs', 'residual'\)"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"time_limit": -1}, ValueError, "time_limit"),
    ({"solver": "nope"}, ValueError, "solver 'nope'"),
])
def test_lm_input_errors_before_any_solve(lm_fit, monkeypatch, kw, exc, match):
    def boom(*a, **k):
        raise AssertionError("a replicate ran before the arguments were checked")

    monkeypatch.setattr(sb, "run_tasks", boom)
    with pytest.raises(exc, match=match):
        lm_fit.bootstrap(**kw)


@pytest.mark.parametrize("kw, match", [
    ({"scheme": "residual"}, r"scheme must be one of \('pairs',\)"),
    ({"B": 0}, "B must be"),
    ({"ci": "normal"}, "ci must be one of"),
    ({"solver": "SCIP"}, "solver must be one of"),
])
def test_glm_input_errors_before_any_solve(glm_fit, monkeypatch, kw, match):
    monkeypatch.setattr(sb, "run_tasks", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("ran")))
    with pytest.raises(ValueError, match=match):
        glm_fit.bootstrap(**kw)


def test_fit_unchanged(lm_fit, lm_boot):
    assert lm_boot.source_fit is lm_fit
    assert lm_fit.selected == ["a", "c"]
