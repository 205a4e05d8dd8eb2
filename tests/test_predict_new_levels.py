"""MioLmerResult.predict for clusters not seen in training: population, soft, hard, features.

Every expected number is computed here by hand from the fit's estimates (fixef, ranef) and
from counts of training rows, not from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.errors import ArgumentError, ArgumentTypeError, ColumnNotFoundError, DataError
from mixmio.results import newlevels
from mixmio.results.newlevels import cluster_probabilities

EFFECTS = {"a": 3.0, "b": -2.0, "c": 1.0, "d": -4.0}


def _gamma(fit, term="Intercept", group=None) -> dict[str, float]:
    r = fit.ranef
    r = r[r["term"] == term]
    if group is not None:
        r = r[r["group"] == group]
    return dict(zip(r["level"], r["estimate"], strict=True))


@pytest.fixture(scope="module")
def separated():
    """4 clusters whose covariate ranges do not overlap: x in [10 j, 10 j + 1) for cluster j,
    with 5, 7, 7, 5 rows, so the best first split is a, b | c, d (Gini 0.486 against 0.522
    for a | b, c, d; with equal sizes the two tie) and the depth-2 tree puts every cluster in
    a leaf of its own (pi is one-hot)."""
    rng = np.random.default_rng(0)
    rows = []
    for j, (g, e) in enumerate(EFFECTS.items()):
        for xi in 10 * j + rng.uniform(0, 1, (5, 7, 7, 5)[j]):
            rows.append((g, xi, 1 + 0.5 * xi + e + rng.normal(0, 0.1)))
    df = pd.DataFrame(rows, columns=["g", "x", "y"])
    return df, mixmio.mio_lmer("y ~ x + (1 | g)", df, k=4)


@pytest.fixture(scope="module")
def overlapping():
    """3 clusters and a binary w: a has w=0 on all 6 rows, b on 3 of 6, c on none; x takes
    0..5 once in every cluster, so no split on x separates the clusters at all and the
    depth-1 tree splits on w: pi(w=0) = (6/9, 3/9, 0), pi(w=1) = (0, 3/9, 6/9)."""
    rng = np.random.default_rng(1)
    w_of = {"a": [0] * 6, "b": [0, 1, 1, 0, 0, 1], "c": [1] * 6}
    icpt = {"a": 2.0, "b": -1.0, "c": 0.5}
    slope = {"a": 0.8, "b": -0.6, "c": 0.3}
    rows = []
    for g in "abc":
        for x, w in zip(range(6), w_of[g], strict=True):
            y = 1 + 0.4 * x + 0.7 * w + icpt[g] + slope[g] * x + rng.normal(0, 0.05)
            rows.append((g, float(x), float(w), y))
    df = pd.DataFrame(rows, columns=["g", "x", "w", "y"])
    fit = mixmio.mio_lmer("y ~ x + w + (1 + x | g)", df, k={"1|g": 3, "x|g": 3})
    return df, fit


def _xb(fit, frame: pd.DataFrame) -> np.ndarray:
    b = fit.fixef
    out = np.full(len(frame), b["Intercept"])
    for c in b.index.drop("Intercept"):
        out = out + b[c] * frame[c].to_numpy(dtype=float)
    return out


# -- known levels, population --------------------------------------------------------------
@pytest.mark.parametrize("mode", [None, "population", "soft", "hard", "features", "error"])
def test_known_levels_use_their_effects_in_every_mode(separated, mode):
    df, fit = separated
    g = _gamma(fit)
    expected = _xb(fit, df) + df["g"].map(g).to_numpy()
    pred = fit.predict(df, new_levels=mode)
    assert isinstance(pred, pd.Series)
    np.testing.assert_allclose(pred.to_numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(pred.to_numpy(), fit.fitted, rtol=1e-10)


def test_no_newdata_gives_the_fitted_values_on_the_training_index(separated):
    df, fit = separated
    pred = fit.predict()
    assert pred.index.equals(df.index)
    np.testing.assert_allclose(pred.to_numpy(), fit.fitted)


def test_population_explicit_has_no_warning_default_warns(separated):
    df, fit = separated
    new = pd.DataFrame({"g": ["z", "a"], "x": [0.5, 0.5]})
    expected = _xb(fit, new) + np.array([0.0, _gamma(fit)["a"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = fit.predict(new, new_levels="population")
    np.testing.assert_allclose(pred.to_numpy(), expected, rtol=1e-10)
    with pytest.warns(UserWarning, match="not seen in training"):
        default = fit.predict(new)
    np.testing.assert_allclose(default.to_numpy(), expected, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(new, new_levels="soft")  # an explicit rule never warns


# -- soft / hard ---------------------------------------------------------------------------
def test_soft_and_hard_with_one_hot_pi(separated):
    df, fit = separated
    g = _gamma(fit)
    new = pd.DataFrame({"g": ["z1", "z2", "z3", "z4"], "x": [0.5, 10.5, 20.5, 30.5]})
    expected = _xb(fit, new) + np.array([g["a"], g["b"], g["c"], g["d"]])
    np.testing.assert_allclose(fit.predict(new, new_levels="soft").to_numpy(), expected,
                               rtol=1e-10)
    np.testing.assert_allclose(fit.predict(new, new_levels="hard").to_numpy(), expected,
                               rtol=1e-10)
    tree = fit.cluster_model_
    assert tree.get_depth() == 2  # ceil(log2 4)


def test_soft_with_fractional_pi_and_random_slopes(overlapping):
    df, fit = overlapping
    gi, gs = _gamma(fit, "Intercept"), _gamma(fit, "x")
    assert all(v != 0 for v in gi.values()) and all(v != 0 for v in gs.values())
    # pi from counting the training rows on each side of the only useful split (w)
    pi = {}
    for w in (0.0, 1.0):
        side = df[df["w"] == w]
        pi[w] = {c: float((side["g"] == c).sum()) / len(side) for c in "abc"}
    assert pi[0.0] == {"a": 6 / 9, "b": 3 / 9, "c": 0.0}
    new = pd.DataFrame({"g": ["n1", "n2", "n3"], "x": [2.0, 4.0, 1.0], "w": [0.0, 1.0, 0.0]})
    rand = [sum(pi[w][c] * (gi[c] + x * gs[c]) for c in "abc")
            for x, w in zip(new["x"], new["w"], strict=True)]
    pred = fit.predict(new, new_levels="soft", max_depth=1)
    np.testing.assert_allclose(pred.to_numpy(), _xb(fit, new) + np.array(rand), rtol=1e-10)
    # the same pi straight from the tree, as a cross-check of the counting
    tree = fit.cluster_model_
    np.testing.assert_allclose(tree.predict_proba(new[["x", "w"]].to_numpy()),
                               [[pi[w][c] for c in "abc"] for w in new["w"]])
    # hard: the most probable cluster, a for w=0 and c for w=1
    hard = fit.predict(new, new_levels="hard", max_depth=1)
    top = ["a", "c", "a"]
    np.testing.assert_allclose(
        hard.to_numpy(),
        _xb(fit, new) + np.array([gi[c] + x * gs[c] for c, x in zip(top, new["x"],
                                                                      strict=True)]),
        rtol=1e-10)


def test_cluster_probabilities_counts_leaf_members(overlapping):
    df, fit = overlapping
    newX = fit.design.transform(pd.DataFrame({"g": ["a"], "x": [3.0], "w": [1.0]})).X
    P = cluster_probabilities(fit.design, "g", newX, max_depth=1)
    np.testing.assert_allclose(P, [[0.0, 3 / 9, 6 / 9]])
    # an array without the intercept column gives the same
    np.testing.assert_allclose(
        cluster_probabilities(fit.design, "g", np.array([[3.0, 1.0]]), max_depth=1), P)


# -- features ------------------------------------------------------------------------------
def _depth1_tree(F: np.ndarray, T: np.ndarray, f_new: float) -> np.ndarray:
    """A depth-1 regression tree by hand: the threshold (a midpoint of sorted features) with
    the least total squared error over the outputs; the new point gets its side's mean."""
    order = np.argsort(F)
    F, T = F[order], T[order]
    best = None
    for i in range(1, len(F)):
        left, right = T[:i], T[i:]
        sse = ((left - left.mean(0)) ** 2).sum() + ((right - right.mean(0)) ** 2).sum()
        if best is None or sse < best[0] - 1e-12:
            best = (sse, (F[i - 1] + F[i]) / 2, left.mean(0), right.mean(0))
    _, t, lm, rm = best
    return lm if f_new <= t else rm


def test_features_from_cluster_means_of_numeric_columns(separated):
    df, fit = separated
    g = _gamma(fit)
    means = df.groupby("g")["x"].mean()
    F = means.loc[list("abcd")].to_numpy()
    T = np.array([[g[c]] for c in "abcd"])
    new = pd.DataFrame({"g": ["z", "z", "u"], "x": [0.2, 0.6, 29.0]}, index=[7, 3, 5])
    # z's features are the mean of its rows in newdata (0.4), u's its one row (29.0)
    ez = _depth1_tree(F, T, 0.4)[0]
    eu = _depth1_tree(F, T, 29.0)[0]
    pred = fit.predict(new, new_levels="features", max_depth=1)
    np.testing.assert_allclose(pred.to_numpy(), _xb(fit, new) + np.array([ez, ez, eu]),
                               rtol=1e-10)
    assert type(fit.cluster_model_).__name__ == "DecisionTreeRegressor"
    # deep enough, every training cluster is a leaf: z (mean 0.4) gets a's effect
    deep = fit.predict(new, new_levels="features", max_depth=3)
    assert deep.iloc[0] == pytest.approx(_xb(fit, new)[0] + g["a"], rel=1e-10)


def test_features_from_given_columns_with_slopes(overlapping):
    df, fit = overlapping
    gi, gs = _gamma(fit, "Intercept"), _gamma(fit, "x")
    size = {"a": 10.0, "b": 20.0, "c": 30.0}
    train = df.assign(size=df["g"].map(size))
    fit2 = mixmio.mio_lmer("y ~ x + w + (1 + x | g)", train, k={"1|g": 3, "x|g": 3})
    np.testing.assert_allclose(fit2.w, fit.w)  # an extra column changes nothing
    F = np.array([size[c] for c in "abc"])
    T = np.array([[gi[c], gs[c]] for c in "abc"])  # two outputs: intercept and slope
    new = pd.DataFrame({"g": ["n", "n", "m"], "x": [1.0, 3.0, 2.0], "w": [0.0, 1.0, 1.0],
                        "size": [12.0, 12.0, 28.0]})
    e = {"n": _depth1_tree(F, T, 12.0), "m": _depth1_tree(F, T, 28.0)}
    rand = [e[c][0] + x * e[c][1] for c, x in zip(new["g"], new["x"], strict=True)]
    pred = fit2.predict(new, new_levels="features", cluster_features=["size"], max_depth=1)
    np.testing.assert_allclose(pred.to_numpy(), _xb(fit2, new) + np.array(rand), rtol=1e-10)


# -- several grouping factors --------------------------------------------------------------
def test_crossed_factors_apply_the_rule_per_factor():
    rng = np.random.default_rng(3)
    g = np.repeat(list("abcd"), 8)
    h = np.tile(list("pq"), 16)
    x = np.repeat([0.0, 10.0, 20.0, 30.0], 8) + rng.uniform(0, 1, 32)
    eg = {"a": 2.0, "b": -2.0, "c": 1.0, "d": -1.0}
    eh = {"p": 1.5, "q": -1.5}
    y = (1 + 0.3 * x + pd.Series(g).map(eg).to_numpy() + pd.Series(h).map(eh).to_numpy()
         + rng.normal(0, 0.05, 32))
    df = pd.DataFrame({"y": y, "x": x, "g": g, "h": h})
    fit = mixmio.mio_lmer("y ~ x + (1 | g) + (1 | h)", df, k={"1|g": 4, "1|h": 2})
    gg, gh = _gamma(fit, group="g"), _gamma(fit, group="h")
    new = pd.DataFrame({"g": ["new", "b", "new"], "h": ["p", "new", "new"],
                        "x": [0.5, 10.5, 20.5]})
    # pi of each factor: the shares of its clusters among the training rows in the new
    # row's leaf (8 equal clusters of g make CART's first split a tie, so count, not assume)
    pred = fit.predict(new, new_levels="soft")

    def pi(group, levels):
        tree = newlevels.cluster_tree(fit.design, group)
        leaf_train = tree.apply(df[["x"]].to_numpy())
        return tree, [np.array([np.mean(df[group].to_numpy()[leaf_train == lf] == c)
                                for c in levels])
                      for lf in tree.apply(new[["x"]].to_numpy())]

    _, pi_g = pi("g", "abcd")
    tree_h, pi_h = pi("h", "pq")
    vg, vh = np.array([gg[c] for c in "abcd"]), np.array([gh[c] for c in "pq"])
    assert pi_g[0] @ vg == pytest.approx(gg["a"])  # x = 0.5 is a's range, alone in its leaf
    exp = _xb(fit, new) + np.array([
        pi_g[0] @ vg + gh["p"],  # g new, h known
        gg["b"] + pi_h[1] @ vh,  # g known, h new
        pi_g[2] @ vg + pi_h[2] @ vh,  # both new
    ])
    np.testing.assert_allclose(pred.to_numpy(), exp, rtol=1e-10)
    assert fit.cluster_model_ is tree_h  # the last tree used: h's


# -- index, missing values, cache ----------------------------------------------------------
def test_series_is_aligned_to_a_shuffled_index(separated):
    df, fit = separated
    new = pd.DataFrame({"g": ["a", "z", "c", "b", "z"], "x": [0.1, 10.7, 20.2, 10.4, 30.9]},
                       index=["r4", "r0", "r9", "r2", "r7"])
    shuffled = new.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(new.index)
    for mode in ("population", "soft", "hard", "features"):
        a = fit.predict(new, new_levels=mode)
        b = fit.predict(shuffled, new_levels=mode)
        assert b.index.equals(shuffled.index)
        pd.testing.assert_series_equal(b.loc[new.index], a)


def test_missing_values_give_nan_under_drop_and_raise_under_raise(separated):
    df, fit = separated
    new = pd.DataFrame({"g": ["a", "z", None, "b"], "x": [0.5, np.nan, 10.5, 10.5]},
                       index=[10, 11, 12, 13])
    g = _gamma(fit)
    for mode in ("population", "soft", "hard", "features"):
        pred = fit.predict(new, new_levels=mode)
        assert pred.index.equals(new.index)
        assert pred[[11, 12]].isna().all()
        np.testing.assert_allclose(pred[[10, 13]].to_numpy(),
                                   _xb(fit, new.loc[[10, 13]]) + [g["a"], g["b"]])
    assert fit.predict(new.loc[[11]], new_levels="soft").isna().all()  # every row missing
    strict = mixmio.mio_lmer("y ~ x + (1 | g)", df, k=4, na_action="raise")
    with pytest.raises(DataError, match=r"missing values in \{'g': 1, 'x': 1\}"):
        strict.predict(new, new_levels="soft")


def test_training_rows_dropped_for_missing_values_are_not_in_predict_none(separated):
    df, _ = separated
    holes = df.copy()
    holes.loc[[0, 7], "x"] = np.nan
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", holes, k=4)
    assert list(fit.predict().index) == [i for i in df.index if i not in (0, 7)]


def test_the_classification_tree_is_trained_once_per_design(monkeypatch, separated):
    from sklearn.tree import DecisionTreeClassifier

    df, _ = separated
    calls = []
    orig = DecisionTreeClassifier.fit

    def counting(self, *a, **kw):
        calls.append(1)
        return orig(self, *a, **kw)

    monkeypatch.setattr(DecisionTreeClassifier, "fit", counting)
    path = mixmio.lmer_path("y ~ x + (1 | g)", df, k=[1, 2, 3])
    fits = list(path.fits.values())
    assert len({id(f.design) for f in fits}) == 1
    new = pd.DataFrame({"g": ["z"], "x": [20.5]})
    preds = [f.predict(new, new_levels="soft").iloc[0] for f in fits]
    assert len(calls) == 1
    assert all(f.cluster_model_ is fits[0].cluster_model_ for f in fits)
    for f, p in zip(fits, preds, strict=True):  # each fit its own gamma: c's
        assert p == pytest.approx(_xb(f, new)[0] + _gamma(f)["c"], rel=1e-10)
    fits[0].predict(new, new_levels="soft", max_depth=1)  # another depth: another tree
    fits[1].predict(new, new_levels="hard", random_state=5)  # another seed: another tree
    assert len(calls) == 3
    # a fresh design (another mio_lmer call) has its own tree
    mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1).predict(new, new_levels="hard")
    assert len(calls) == 4


def test_trees_are_reproducible(overlapping):
    df, fit = overlapping
    new = pd.DataFrame({"g": ["n"] * 4, "x": [0.0, 1.5, 3.0, 5.0], "w": [0, 1, 0, 1.0]})
    again = mixmio.mio_lmer("y ~ x + w + (1 + x | g)", df, k={"1|g": 3, "x|g": 3})
    for mode in ("soft", "hard", "features"):
        pd.testing.assert_series_equal(fit.predict(new, new_levels=mode),
                                       again.predict(new, new_levels=mode))


def test_a_formula_without_covariates_uses_the_cluster_shares():
    df = pd.DataFrame({"y": [1.0, 1.2, 0.9, 5.0, 5.1, 3.0, 3.2, 2.9, 3.1],
                       "g": list("aabbbcccc")[:9]})
    fit = mixmio.mio_lmer("y ~ 1 + (1 | g)", df, k=3)
    g = _gamma(fit)
    share = df["g"].value_counts(normalize=True)
    pred = fit.predict(pd.DataFrame({"g": ["new"]}), new_levels="soft")
    assert pred.iloc[0] == pytest.approx(
        fit.fixef["Intercept"] + sum(share[c] * g[c] for c in "abc"), rel=1e-10)


def test_results_stay_immutable(separated):
    _, fit = separated
    with pytest.raises(AttributeError):
        fit.cluster_model_ = None


# -- errors --------------------------------------------------------------------------------
def test_errors_before_any_work(monkeypatch, separated):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    df, fit = separated
    trained = []
    monkeypatch.setattr(DecisionTreeClassifier, "fit", lambda *a, **k: trained.append(1))
    monkeypatch.setattr(DecisionTreeRegressor, "fit", lambda *a, **k: trained.append(1))
    new = pd.DataFrame({"g": ["z"], "x": [0.5]})
    with pytest.raises(ArgumentError, match=r"new_levels must be one of \['population', "
                       r"'soft', 'hard', 'features', 'error'\], got 'mean'"):
        fit.predict(new, new_levels="mean")
    for bad, err in ((0, ArgumentError), (-2, ArgumentError), (1.5, ArgumentTypeError),
                     (True, ArgumentTypeError)):
        with pytest.raises(err, match="max_depth"):
            fit.predict(new, new_levels="soft", max_depth=bad)
    # checked before newdata: even a frame without the formula's columns gets this error
    with pytest.raises(ArgumentError, match="max_depth"):
        fit.predict(pd.DataFrame({"q": [1]}), new_levels="soft", max_depth=0)
    with pytest.raises(ArgumentTypeError, match="random_state"):
        fit.predict(new, new_levels="soft", random_state="seed")
    with pytest.raises(ArgumentError, match="cluster_features is used by new_levels="
                       "'features' only"):
        fit.predict(new, new_levels="soft", cluster_features=["x"])
    with pytest.raises(DataError, match=r"levels not seen in training: \{'g': \['z'\]\}"):
        fit.predict(new, new_levels="error")
    assert trained == []


def test_features_errors(separated):
    df, fit = separated
    train = df.assign(size=df["g"].map({"a": 1, "b": 2, "c": 3, "d": 4}),
                      noisy=np.arange(len(df), dtype=float))
    fit2 = mixmio.mio_lmer("y ~ x + (1 | g)", train, k=4)
    new = pd.DataFrame({"g": ["z", "z"], "x": [0.5, 0.6], "size": [2.0, 2.0],
                        "noisy": [1.0, 1.0]})
    with pytest.raises(ColumnNotFoundError, match="'size' is not a column of the training"):
        fit.predict(new, new_levels="features", cluster_features=["size"])
    with pytest.raises(ColumnNotFoundError, match="'size' is not a column of newdata"):
        fit2.predict(new.drop(columns="size"), new_levels="features", cluster_features="size")
    with pytest.raises(DataError, match="'noisy' varies within cluster 'a' of 'g' in the "
                       "training data"):
        fit2.predict(new, new_levels="features", cluster_features=["size", "noisy"])
    with pytest.raises(DataError, match="'size' varies within cluster 'z' of 'g' in newdata"):
        fit2.predict(new.assign(size=[2.0, 3.0]), new_levels="features",
                     cluster_features=["size"])
    with pytest.raises(ArgumentError, match="grouping factor"):
        fit2.predict(new, new_levels="features", cluster_features={"school": ["size"]})
    # no numeric fixed-effects column to average and no cluster_features
    fac = train.assign(f=np.where(train["x"] % 1 > 0.5, "hi", "lo"))
    fitf = mixmio.mio_lmer("y ~ f + (1 | g)", fac, k=2)
    with pytest.raises(ArgumentError, match="no numeric fixed-effects column"):
        fitf.predict(fac.head(2).assign(g="z"), new_levels="features")
    # with cluster_features it works, and they may be strings (one-hot on training values)
    lab = fac.assign(kind=fac["g"].map({"a": "s", "b": "t", "c": "s", "d": "t"}))
    fitk = mixmio.mio_lmer("y ~ f + (1 | g)", lab, k=4)
    gk = _gamma(fitk)
    out = fitk.predict(lab.head(1).assign(g="z", kind="t"), new_levels="features",
                       cluster_features=["kind"], max_depth=1)
    b = fitk.fixef
    base = b["Intercept"] + (b["f[T.lo]"] if lab["f"].iloc[0] == "lo" else 0.0)
    assert out.iloc[0] == pytest.approx(base + (gk["b"] + gk["d"]) / 2, rel=1e-10)
