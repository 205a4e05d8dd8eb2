"""mio_glmer end to end: closed forms, the result's face, path and CV (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixmio

sm = pytest.importorskip("statsmodels.api")


def poisson_data(seed=0, K=12, rows=8, dev=(0, 1)):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), rows)
    x = rng.normal(size=g.size)
    e = rng.uniform(0.5, 2.0, g.size)
    gam = np.zeros(K)
    gam[list(dev)] = [1.2, -1.5][: len(dev)]
    y = rng.poisson(e * np.exp(0.2 + 0.3 * x + gam[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"c{i:02d}" for i in g], "e": e})


def binomial_data(seed=0, K=10, rows=12, trials=None):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), rows)
    x = rng.normal(size=g.size)
    gam = np.where(np.arange(K) < 2, 1.5, 0.0)
    p = 1 / (1 + np.exp(-(-0.3 + 0.5 * x + gam[g])))
    if trials is None:
        return pd.DataFrame({"y": rng.binomial(1, p), "x": x, "g": g})
    n = rng.integers(1, trials + 1, g.size)
    return pd.DataFrame({"y": rng.binomial(n, p) / n, "n": n, "x": x, "g": g})


def test_k0_is_the_plain_glm():
    df = poisson_data()
    fit = mixmio.mio_glmer("y ~ x + offset(np.log(e)) + (1 | g)", df, k=0, family="poisson")
    ref = sm.GLM(df.y, sm.add_constant(df[["x"]]), family=sm.families.Poisson(),
                 offset=np.log(df.e)).fit()
    assert fit.status == "optimal"
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref.params.to_numpy(), rtol=1e-6,
                               atol=1e-8)
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-8)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-8)
    assert fit.objective == pytest.approx(ref.deviance / 2, rel=1e-6)
    np.testing.assert_allclose(fit.fixef_table["std_error"], ref.bse, rtol=1e-5)


def test_binomial_trials_k0_is_the_plain_glm():
    df = binomial_data(trials=5)
    fit = mixmio.mio_glmer("y ~ x + (1 | g)", df, k=0, family="binomial", weights="n")
    ref = sm.GLM(df.y, sm.add_constant(df[["x"]]), family=sm.families.Binomial(),
                 var_weights=df.n).fit()
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-7)


def test_k_equal_K_approaches_the_dummy_glm():
    df = binomial_data(K=6, rows=30)
    K = 6
    fit = mixmio.mio_glmer("y ~ x + (1 | g)", df, k=K, family="binomial", ridge=1e-9)
    D = pd.get_dummies(df.g, prefix="g", dtype=float)
    ref = sm.GLM(df.y, pd.concat([df[["x"]], D], axis=1), family=sm.families.Binomial()).fit()
    assert fit.status == "optimal"
    # intercept + gamma_j (fit) against the dummy coefficient of cluster j (ref)
    eta_fit = fit.predict(type="link").to_numpy()
    eta_ref = ref.predict(which="linear") if hasattr(ref, "predict") else None
    np.testing.assert_allclose(eta_fit, np.asarray(eta_ref), atol=1e-5)
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-6)


def test_strong_clusters_are_found_and_the_face_is_complete():
    df = poisson_data(K=15, rows=20, dev=(0, 1))
    fit = mixmio.mio_glmer("y ~ x + offset(np.log(e)) + (1 | g)", df, k=2, family="poisson")
    assert fit.status == "optimal" and fit.gap <= 1e-4
    assert sorted(fit.selected["level"]) == ["c00", "c01"]
    sel = fit.selected.set_index("level")
    assert sel.loc["c00", "estimate"] > 0 > sel.loc["c01", "estimate"]
    np.testing.assert_allclose(sel["rate_ratio"], np.exp(sel["estimate"]))
    assert (fit.ranef["estimate"] == 0).sum() == 13
    # response-scale fitted values include the exposure offset
    np.testing.assert_allclose(fit.fitted, np.exp(fit.predict(type="link")))
    new = df.iloc[:3]
    np.testing.assert_allclose(fit.predict(new), fit.fitted[:3])
    unseen = new.assign(g="zz")
    pop = fit.predict(unseen, new_levels="population", type="link")
    np.testing.assert_allclose(pop, fit.fixef["Intercept"] + fit.fixef["x"] * new.x
                               + np.log(new.e))
    text = str(fit.summary())
    assert "Family: poisson  ( log )" in text and "Pr(>|z|)" in text and "Residual" not in text
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 4)
    assert fit.sigma == 1.0
    with pytest.raises(ValueError, match="type must be"):
        fit.predict(new, type="mean")


def test_boundary_cluster_is_stated_and_finite():
    df = binomial_data(K=8, rows=10)
    df.loc[df.g == 3, "y"] = 0
    fit = mixmio.mio_glmer("y ~ x + (1 | g)", df, k=8, family="binomial")
    bd = fit.boundary_clusters
    assert "3" in set(bd["level"]) and set(bd["boundary"]) <= {"all zero", "all one"}
    assert np.all(np.isfinite(fit.w))
    assert "boundary" in str(fit.summary())


def test_force_and_exclude_clusters():
    df = poisson_data(K=10, rows=15, dev=(0, 1))
    f = "y ~ x + offset(np.log(e)) + (1 | g)"
    fit = mixmio.mio_glmer(f, df, k=2, family="poisson",
                           constraints=[mixmio.ForceInclude(clusters={"g": ["c05"]}),
                                        mixmio.Exclude(clusters={"g": ["c01"]})])
    assert fit.status == "optimal"
    lv = set(fit.selected["level"])
    assert "c05" in lv and "c01" not in lv and len(lv) <= 2


def test_path_matches_single_fits_and_decreases():
    df = poisson_data(K=12, rows=10, dev=(0, 1))
    f = "y ~ x + (1 | g)"
    path = mixmio.glmer_path(f, df, k=[0, 1, 2, 4, 12], family="poisson")
    obj = path.table["objective"].to_numpy()
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1]))
    assert (path.table["status"] == "optimal").all()
    for k in (1, 4):
        single = mixmio.mio_glmer(f, df, k=k, family="poisson")
        assert path.fits[k].objective == pytest.approx(single.objective, rel=1e-6)


def test_cv_deviance_same_for_n_jobs_and_k_cv():
    df = poisson_data(K=8, rows=9, dev=(0, 1))
    f = "y ~ x + (1 | g)"
    cv1 = mixmio.cv_glmer(f, df, k=[0, 2], family="poisson", cv="within", folds=3,
                          random_state=0)
    cv2 = mixmio.cv_glmer(f, df, k=[0, 2], family="poisson", cv="within", folds=3,
                          random_state=0, n_jobs=2)
    pd.testing.assert_frame_equal(cv1.table, cv2.table)
    assert cv1.metric == "deviance" and cv1.fit.cv_result is cv1
    # held-out deviance by hand on fold 1 at k = 2
    te = cv1.folds[0]
    train = df.drop(index=df.index[te])
    fit = mixmio.mio_glmer(f, train, k=2, family="poisson")
    mu = fit.predict(df.iloc[te])
    y = df.y.to_numpy()[te]
    dev = 2 * (mu - y + np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0))
    assert cv1.table.loc[cv1.table.k == 2, "fold_1"].item() == pytest.approx(dev.mean(),
                                                                              rel=1e-6)
    blocked = mixmio.cv_glmer(f, df, k=[0, 2], family="poisson", folds=3, random_state=0)
    assert blocked.cv == "blocked" and len(blocked.table) == 2


def test_k_cv_returns_the_cv_refit():
    df = poisson_data(K=5, rows=6, dev=(0,))
    fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k="cv", family="poisson", random_state=0)
    cv = fit.cv_result
    assert cv is not None and cv.metric == "deviance" and cv.fit is fit
    assert fit.k == {"1|g": cv.k_best}
