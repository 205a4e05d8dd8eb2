"""mio_lmer end to end: oracles (brute force, OLS, dummy-variable regression), errors, output."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import mixmio
from mixmio.datasets import load
from mixmio.problem.build import build_problem
from tests.oracles import brute_force


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="module")
def fit3(sleep):
    return mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3, refit=False)


def test_objective_and_support_match_brute_force(sleep, fit3):
    problem = build_problem(mixmio.build_design("Reaction ~ Days + (1 | Subject)", sleep), k=3)
    best, mask = brute_force(problem)
    assert fit3.status == "optimal" and fit3.gap <= 1e-4
    assert fit3.objective == pytest.approx(best, rel=1e-6)
    assert np.array_equal(fit3.w[problem.p:] != 0, mask[problem.p:])
    assert fit3.problem.objective(fit3.w) == pytest.approx(fit3.objective, rel=1e-9)


def test_slopes_two_caps_match_brute_force():
    rng = np.random.default_rng(3)
    K, per = 7, 6
    g = np.repeat(np.arange(K), per)
    x = rng.normal(size=K * per)
    y = 1 + x + np.where(g < 2, 3.0, 0.0) + np.where(g == 5, 2.0, 0.0) * x
    y = y + rng.normal(size=K * per)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    caps = {"1|g": 2, "x|g": 1}
    fit = mixmio.mio_lmer("y ~ x + (1 + x | g)", df, k=caps, refit=False)
    problem = build_problem(mixmio.build_design("y ~ x + (1 + x | g)", df), k=caps)
    best, mask = brute_force(problem)
    assert fit.status == "optimal"
    assert fit.objective == pytest.approx(best, rel=1e-6)
    assert np.array_equal(fit.w != 0, mask | ~np.isin(np.arange(problem.n_coef), problem.capped))
    sel = fit.selected
    assert (sel.term == "Intercept").sum() <= 2 and (sel.term == "x").sum() <= 1


def test_k0_is_ols(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=0)
    ols = smf.ols("Reaction ~ Days", sleep).fit()
    np.testing.assert_allclose(fit.fixef.to_numpy(), ols.params.to_numpy(), rtol=1e-8)
    assert (fit.ranef.estimate == 0).all() and len(fit.selected) == 0
    assert fit.status == "optimal"


def test_no_cap_tiny_ridge_is_dummy_variable_regression(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=18, ridge=1e-9)
    dummy = smf.ols("Reaction ~ Days + C(Subject)", sleep).fit()
    np.testing.assert_allclose(fit.fitted, dummy.fittedvalues.to_numpy(), rtol=1e-7)
    assert fit.fixef["Days"] == pytest.approx(dummy.params["Days"], rel=1e-7)


def test_refit_is_unpenalised_ls_on_support(sleep, fit3):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    chosen = set(fit3.selected.level)
    assert set(fit.selected.level) == chosen
    df = sleep.assign(**{f"d{lv}": (sleep.Subject.astype(str) == lv).astype(float)
                         for lv in chosen})
    ols = smf.ols("Reaction ~ Days + " + " + ".join(f"d{lv}" for lv in chosen), df).fit()
    np.testing.assert_allclose(fit.fitted, ols.fittedvalues, rtol=1e-9)
    assert fit.objective == pytest.approx(fit3.objective)  # selection objective is kept


@pytest.mark.parametrize("formula, data, k", [
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", {"1|plate": 4, "1|sample": 2}),
    ("strength ~ 1 + (1 | batch/cask)", "pastes", 3),
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", {"1|Subject": 3, "Days|Subject": 2}),
])
def test_multiple_terms_crossed_nested_slopes(formula, data, k):
    df = load(data)
    fit = mixmio.mio_lmer(formula, df, k=k, time_limit=120)
    assert fit.status == "optimal"
    for lab, cap in fit.k.items():
        block, j = fit.design.block_of(lab)
        sl = block.column_slice(j)
        assert np.count_nonzero(fit.w[fit.problem.p + sl.start: fit.problem.p + sl.stop]) <= cap
    np.testing.assert_allclose(fit.predict(df), fit.fitted, rtol=1e-10)
    np.testing.assert_allclose(fit.residuals, fit.design.y - fit.fitted)


def test_predict_new_levels(sleep, fit3):
    new = sleep.head(3).assign(Subject=[308, 308, 999])
    with pytest.warns(UserWarning, match="not seen"):
        pred = fit3.predict(new)
    beta = fit3.fixef
    assert isinstance(pred, pd.Series) and pred.index.equals(new.index)
    assert pred.iloc[2] == pytest.approx(beta["Intercept"] + beta["Days"] * new.Days.iloc[2])
    with pytest.raises(ValueError, match="not seen in training"):
        fit3.predict(new, new_levels="error")


def test_result_tables(fit3):
    assert list(fit3.ranef.columns) == ["group", "level", "term", "estimate"]
    assert len(fit3.ranef) == 18 and len(fit3.selected) == 3
    frame = fit3.to_frame()
    assert frame.selected.sum() == 3 + 2
    assert 0 < fit3.icc["1|Subject"] < 1
    assert fit3.sigma > 0 and fit3.n_groups == {"Subject": 18}
    text = str(fit3.summary())
    for piece in ["Formula: Reaction ~ Days + (1 | Subject)", "Scaled residuals", "Random effects",
                  "Fixed effects", "status: optimal", "Residual", "Number of obs: 180"]:
        assert piece in text
    assert "<table>" in fit3._repr_html_()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(k=-1), ValueError, "outside 0..18"),
    (dict(k=19), ValueError, "outside 0..18"),
    (dict(k=None), TypeError, "k is required"),
    (dict(k={"1|school": 2}), KeyError, "name no random-effect column"),
    (dict(k=2.5), TypeError, "must be an integer"),
    (dict(k=2, k_fixed=5), ValueError, "k_fixed is 5"),
    (dict(k=2, solver="NOSUCHSOLVER"), ValueError, "NOSUCHSOLVER"),
    (dict(k=2, ridge=-1.0), ValueError, "ridge"),
])
def test_bad_input_raises_before_solving(sleep, monkeypatch, kwargs, error, match):
    import mixmio.solvers as solvers

    if "solver" not in kwargs:
        monkeypatch.setattr(solvers, "solve", lambda *a, **k: pytest.fail("solve was called"))
    with pytest.raises(error, match=match):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, **kwargs)


def test_non_numeric_response(sleep):
    with pytest.raises(TypeError, match="must be numeric"):
        mixmio.mio_lmer("s ~ Days + (1 | Subject)", sleep.assign(s="a"), k=2)


def test_uncapped_fit_is_the_minimum_norm_refit_with_rank_degrees_of_freedom():
    """Every cluster selected: the intercept and the dummies are aliased. The refit is the
    ridge limit (effects sum to 0, intercept = mean of the cluster intercepts), and df_resid
    counts rank, as statsmodels' dummy regression does."""
    import statsmodels.formula.api as smf

    d = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k=18)
    assert abs(fit.ranef["estimate"].sum()) < 1e-8
    ref = smf.ols("Reaction ~ Days + C(Subject)", d).fit()
    np.testing.assert_allclose(fit.fitted, ref.fittedvalues, rtol=1e-9)
    assert fit.df_resid == int(ref.df_resid)
    assert fit.sigma == pytest.approx(np.sqrt(ref.scale), rel=1e-9)
    slopes = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", d,
                             k={"1|Subject": 3, "Days|Subject": 18})
    dev = slopes.ranef.query("term == 'Days'")["estimate"]
    assert abs(dev.sum()) < 1e-8
    pen = mixmio.datasets.load("Penicillin")
    crossed = mixmio.mio_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen,
                              k={"1|plate": 24, "1|sample": 6})
    ref2 = smf.ols("diameter ~ C(plate) + C(sample)", pen).fit()
    assert crossed.df_resid == int(ref2.df_resid)
    np.testing.assert_allclose(crossed.fitted, ref2.fittedvalues, rtol=1e-9)


def test_time_limit_warning_points_at_the_callers_line():
    ex = mixmio.datasets.load("exam")
    with pytest.warns(RuntimeWarning, match="time") as rec:
        fit = mixmio.mio_lmer("normexam ~ standLRT + schgend + schavg + (1 | school)", ex, k=3,
                              time_limit=0.3)
    assert fit.status == "time_limit" and fit.gap > 0
    assert {r.filename for r in rec if "time" in str(r.message)} == {__file__}


def test_asymmetric_caps_are_shown():
    d = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k={"1|Subject": (1, 2)})
    assert fit.k == {"1|Subject": 3} and fit.sign_caps == {"1|Subject": (1, 2)}
    assert "3 (+1/-2)" in str(fit.summary())


def test_rank_and_refit_do_not_depend_on_column_units():
    """A covariate in dollars (~5e4) made the rank tolerance, relative to X'X's largest
    eigenvalue, treat cluster dummies as aliased: df_resid 998 instead of 899, and a
    k_fixed refit far from least squares."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(2)
    G, m = 100, 10
    df = pd.DataFrame({"g": np.repeat([f"s{i}" for i in range(G)], m)})
    df["income"] = rng.normal(50_000, 15_000, size=G * m)
    df["y"] = (1e-4 * df.income + df.g.map(dict(zip(df.g.unique(), rng.normal(size=G),
                                                    strict=True))) + rng.normal(size=G * m))
    ols = smf.ols("y ~ income + C(g)", df).fit()
    fit = mixmio.mio_lmer("y ~ income + (1 | g)", df, k=G)
    assert fit.df_resid == int(ols.df_resid)
    assert fit.sigma == pytest.approx(np.sqrt(ols.scale), rel=1e-8)
    assert fit.fixef["income"] == pytest.approx(ols.params["income"], rel=1e-6)


def test_refit_and_random_state_are_checked_before_the_solve():
    d = mixmio.datasets.load("sleepstudy")
    with pytest.raises(TypeError, match="refit must be True or False"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k=3, refit="no")
    with pytest.raises(TypeError, match="random_state must be None"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k=3, random_state="abc")
    with pytest.raises(TypeError, match="refit must be True or False"):
        mixmio.mio_lm("Reaction ~ Days", d, k=1, refit="yes")
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        mixmio.holistic_regression("Reaction ~ Days", d, time_limit=-1)
    with pytest.raises(ValueError, match="not an installed"):
        mixmio.holistic_regression("Reaction ~ Days", d, solver="NOPE")
