"""statsmodels-style accessors (issue 20): params, bse, tvalues, pvalues, conf_int, nobs,
fittedvalues, resid, conditional on the selected support."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixmio


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


def _ols_on_support(fit, data, group):
    sm = pytest.importorskip("statsmodels.api")
    X = pd.DataFrame(fit.design.X.to_numpy(), columns=list(fit.design.X.columns),
                     index=data.index)
    for lev in fit.selected["level"].astype(str):
        X[f"g{lev}"] = (data[group].astype(str) == lev).astype(float)
    return sm.OLS(data[fit.formula.split("~")[0].strip()], X).fit()


def test_matches_ols_on_the_selected_support(sleep):
    """With the tiny default ridge, the support-conditional inference is OLS on [X | Z_S]."""
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=4)
    ols = _ols_on_support(fit, sleep, "Subject")
    names = list(fit.params.index)
    np.testing.assert_allclose(fit.params, ols.params[names], rtol=1e-6)
    np.testing.assert_allclose(fit.bse, ols.bse[names], rtol=1e-5)
    np.testing.assert_allclose(fit.tvalues, ols.tvalues[names], rtol=1e-5)
    np.testing.assert_allclose(fit.pvalues, ols.pvalues[names], rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(fit.conf_int(0.1).to_numpy(),
                               ols.conf_int(0.1).loc[names].to_numpy(), rtol=1e-6)
    assert fit.nobs == 180 and fit.df_resid == ols.df_resid


def test_series_are_aligned_to_the_data_index(sleep):
    df = sleep.copy()
    df.index = np.arange(1000, 1000 + len(df))
    df.loc[1003, "Reaction"] = np.nan
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", df, k=3)
    assert fit.nobs == 179 and 1003 not in fit.fittedvalues.index
    assert fit.fittedvalues.index.equals(df.index.drop(1003))
    np.testing.assert_allclose(fit.fittedvalues + fit.resid, df["Reaction"].drop(1003))


def test_bootstrap_intervals_take_over(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    boot = fit.bootstrap(B=20, random_state=1, progress=False)
    ci = fit.with_bootstrap(boot).conf_int()
    t = boot.table[boot.table["kind"] == "fixed"].set_index("term")
    np.testing.assert_allclose(ci["lower"], t.loc[ci.index, "lower"])
    np.testing.assert_allclose(ci["upper"], t.loc[ci.index, "upper"])
    assert not np.allclose(ci.to_numpy(), fit.conf_int().to_numpy())


def test_glmer_uses_wald_z(sleep):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "x": rng.normal(size=200)})
    df["y"] = rng.poisson(np.exp(0.3 + 0.5 * df["x"] + np.where(df["g"] < 2, 1.0, 0.0)))
    fit = mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="poisson")
    assert "z_value" in fit.fixef_table
    from scipy.stats import norm
    ci = fit.conf_int()
    np.testing.assert_allclose(ci["upper"] - fit.params, norm.ppf(0.975) * fit.bse)
    np.testing.assert_allclose(fit.tvalues, fit.params / fit.bse)


def test_bad_alpha(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    with pytest.raises(ValueError, match="alpha"):
        fit.conf_int(1.5)


def test_lm_and_glm_accessors_match_statsmodels(sleep):
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    df["y"] = 1.0 + 2.0 * df.a - df.b + rng.normal(size=300)
    fit = mixmio.mio_lm("y ~ a + b + c", df, k=3)  # every column: OLS
    X = sm.add_constant(df[["a", "b", "c"]]).rename(columns={"const": "Intercept"})
    ols = sm.OLS(df.y, X).fit()
    np.testing.assert_allclose(fit.params, ols.params, rtol=1e-8)
    np.testing.assert_allclose(fit.bse, ols.bse, rtol=1e-6)
    np.testing.assert_allclose(fit.pvalues, ols.pvalues, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(fit.conf_int().to_numpy(), ols.conf_int().to_numpy(), rtol=1e-6)
    assert fit.nobs == 300 and fit.resid.index.equals(df.index)
    sub = mixmio.mio_lm("y ~ a + b + c", df, k=1)
    assert np.isnan(sub.bse[sub.params == 0]).all()

    df["z"] = (rng.random(300) < 1 / (1 + np.exp(-(0.5 + df.a)))).astype(int)
    g = mixmio.mio_glm("z ~ a + b", df, k=2, family="binomial")
    logit = sm.Logit(df.z, X[["Intercept", "a", "b"]]).fit(disp=0)
    np.testing.assert_allclose(g.params, logit.params, rtol=1e-3)
    np.testing.assert_allclose(g.bse, logit.bse, rtol=1e-3)
    np.testing.assert_allclose(g.conf_int().to_numpy(), logit.conf_int().to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(g.fittedvalues, logit.predict(), rtol=1e-3)


def test_clr_accessors():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 40)
    lab = np.arange(40) % 2
    df = pd.DataFrame({"x": x, "y": np.where(lab == 0, 1 + 2 * x, -1 - 0.5 * x)
                       + 0.1 * rng.normal(size=40)})
    fit = mixmio.mio_clr("y ~ x", df, n_clusters=2, random_state=0)
    assert fit.nobs == 40
    assert fit.params.index.nlevels == 2 and len(fit.params) == 4
    np.testing.assert_allclose(fit.params.to_numpy(), fit.coef.to_numpy().ravel())
    np.testing.assert_allclose(fit.fittedvalues + fit.resid, df["y"])
    for name in ("bse", "pvalues", "tvalues"):
        with pytest.raises(NotImplementedError, match="no standard errors"):
            getattr(fit, name)
    with pytest.raises(NotImplementedError):
        fit.conf_int()


def test_lm_and_glm_predict_are_series_on_newdata_index():
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    df["y"] = df.a + rng.normal(size=120)
    df["z"] = (df.a + rng.normal(size=120) > 0).astype(int)
    new = df.head(5).copy()
    new.index = ["r1", "r2", "r3", "r4", "r5"]
    new.loc["r3", "a"] = np.nan
    for fit in (mixmio.mio_lm("y ~ a + b", df, k=1), mixmio.mio_glm("z ~ a + b", df, k=1)):
        p = fit.predict(new)
        assert isinstance(p, pd.Series) and list(p.index) == list(new.index)
        assert np.isnan(p["r3"]) and p.drop("r3").notna().all()
        assert fit.predict().index.equals(df.index)
