"""holistic_regression: King's pipeline end to end on a small synthetic design."""

import numpy as np
import pandas as pd
import pytest

import mixmio


def test_holistic_regression_small():
    rng = np.random.default_rng(0)
    n, p = 240, 12
    idx = np.arange(p)
    L = np.linalg.cholesky(0.9 ** np.abs(idx[:, None] - idx[None, :]))
    X = rng.normal(size=(n, p)) @ L.T
    y = X[:, 2] + X[:, 8] + 0.5 * rng.normal(size=n)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(p)]).assign(y=y)
    formula = "y ~ " + " + ".join(f"x{i}" for i in range(p))
    res = mixmio.holistic_regression(formula, df, n_gamma=3, B=50, random_state=1,
                                     time_limit=5)
    assert res.split_sizes == (120, 60, 60)
    assert 1 <= len(res.models) <= 3
    assert res.k_max < p  # rho = 0.9 neighbours conflict at 0.8
    best = res.best
    assert {"x2", "x8"} <= set(best.selected)
    assert best.max_corr <= 0.8 and best.condition >= 1
    assert set(best.intervals.columns) == {"lower", "upper"}
    tab = res.table
    assert list(tab["rank"]) == list(range(1, len(res.models) + 1))
    assert "Holistic regression" in res.summary()
    assert res.predict(df.iloc[:3]).shape == (3,)
    assert len(res.gammas) == 3 and res.gammas[0] == 0


def test_intervals_reproducible_given_random_state():
    """The interval bootstrap is seeded by random_state (it drew fresh entropy before)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(
        y=X[:, 0] + 0.5 * rng.normal(size=120))
    kw = dict(n_gamma=2, B=30, random_state=4, time_limit=5, significance=False)
    runs = [mixmio.holistic_regression("y ~ x0 + x1 + x2 + x3 + x4", df, **kw).best.intervals
            for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_no_intercept_model_is_not_centred():
    """Without an intercept the centring cannot be undone: it gave the with-intercept slopes
    (validation R^2 -30 on this data). The model must equal mio_lm on the training half."""
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame({"a": rng.normal(5, 1, n), "b": rng.normal(-3, 1, n)})
    df["y"] = 2 * df.a + 10 + 0.5 * rng.normal(size=n)
    res = mixmio.holistic_regression("y ~ 0 + a + b", df, random_state=0, significance=False,
                                     rho=None, n_gamma=1, ks=[2])
    m = res.best
    train = df.iloc[np.random.default_rng(0).permutation(n)[:100]]
    ref = mixmio.mio_lm("y ~ 0 + a + b", train, k=2)
    # equal up to the pipeline's small ridge on the (collinear, uncentred) columns
    np.testing.assert_allclose(m.coef[["a", "b"]], ref.coef[["a", "b"]], rtol=1e-2)
    assert m.val_r2 > 0


def test_model_predict_matches_columns_by_name():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 3))
    df = pd.DataFrame(X, columns=["x", "z", "w"]).assign(y=2 * X[:, 0] - X[:, 1]
                                                           + 0.3 * rng.normal(size=160))
    res = mixmio.holistic_regression("y ~ x + z + w", df, n_gamma=1, B=20, random_state=0,
                                     significance=False, time_limit=5)
    m = res.best
    shuffled = df[["w", "z", "x"]].assign(c="p")  # other order, an unused string column
    np.testing.assert_allclose(m.predict(shuffled), res.predict(df))
    Xd = res.design.transform(df).X.to_numpy(dtype=float)
    np.testing.assert_allclose(m.predict(Xd), res.predict(df))
    with pytest.raises(ValueError, match="needs 4 columns"):
        m.predict(df[["x", "z"]].to_numpy())
