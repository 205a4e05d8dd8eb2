"""cv_lmer: the folds, the scores by hand, the rules, n_jobs invariance, k='cv', bad input."""

import matplotlib
import numpy as np
import pytest

import mixmio
from mixmio.api.cv import blocked_folds, within_folds
from mixmio.errors import ArgumentError, ArgumentTypeError

matplotlib.use("Agg")

EXAM = "normexam ~ standLRT + (1 | school)"
GRID = [0, 5, 10, 30]


@pytest.fixture(scope="module")
def cv_within(exam):
    return mixmio.cv_lmer(EXAM, exam, k=GRID, cv="within", random_state=3)


def _codes(n_clusters=30, rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    return np.repeat(np.arange(n_clusters), rng.integers(1, 9, n_clusters))


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_blocked_folds_never_split_a_cluster(folds):
    codes = _codes()
    tests = blocked_folds(codes, folds, np.random.default_rng(1))
    allrows = np.sort(np.concatenate(tests))
    np.testing.assert_array_equal(allrows, np.arange(codes.size))  # a partition of the rows
    owner = {}
    for f, te in enumerate(tests):
        for c in np.unique(codes[te]):
            assert owner.setdefault(c, f) == f
        assert set(np.unique(codes[te])).isdisjoint(np.delete(codes, te))
    sizes = [np.unique(codes[te]).size for te in tests]
    assert max(sizes) - min(sizes) <= 1  # clusters dealt in turn


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_within_folds_keep_every_cluster_in_training(folds):
    codes = _codes()
    tests = within_folds(codes, folds, np.random.default_rng(2))
    allrows = np.concatenate(tests)
    assert np.unique(allrows).size == allrows.size  # disjoint
    for te in tests:
        train = np.setdiff1d(np.arange(codes.size), te)
        assert set(np.unique(codes[train])) == set(np.unique(codes))
    singles = np.flatnonzero(np.bincount(codes)[codes] == 1)
    assert not np.isin(singles, allrows).any()  # a one-row cluster is never held out
    held = np.setdiff1d(np.arange(codes.size), singles)
    assert np.isin(held, allrows).all()  # every other row is held out once


def test_within_scores_by_hand(exam, cv_within):
    """Fold f's score at cap k is the MSE of a mio_lmer fit on the other rows."""
    assert list(cv_within.table["k"]) == GRID
    f = 1
    te = cv_within.folds[f]
    train = exam.iloc[np.setdiff1d(np.arange(len(exam)), te)]
    for j, k in enumerate(GRID):
        fit = mixmio.mio_lmer(EXAM, train, k=k)
        pred = np.asarray(fit.predict(exam.iloc[te]), dtype=float)
        mse = float(np.mean((exam["normexam"].to_numpy()[te] - pred) ** 2))
        assert cv_within.table[f"fold_{f + 1}"].iloc[j] == pytest.approx(mse, rel=1e-6)
    t = cv_within.table
    scores = t.filter(like="fold_").to_numpy()
    np.testing.assert_allclose(t["mean"], scores.mean(axis=1))
    np.testing.assert_allclose(t["se"], scores.std(axis=1, ddof=1) / np.sqrt(5))
    assert (t["n_certified"] == 5).all()


def test_rules(cv_within):
    t = cv_within.table
    i = int(np.argmin(t["mean"]))
    assert cv_within.k_min == t["k"].iloc[i]
    ok = t["mean"] <= t["mean"].iloc[i] + t["se"].iloc[i]
    assert cv_within.k_1se == t["k"][ok].iloc[0]
    assert cv_within.k_best == cv_within.k_min  # rule="min"
    fit = cv_within.fit
    assert fit.k == {"1|school": cv_within.k_best} and fit.cv_result is cv_within
    assert fit.n_obs == 4059  # refit on all rows


def test_one_se_rule_refits_there(exam):
    cv = mixmio.cv_lmer(EXAM, exam, k=GRID, cv="within", rule="1se", random_state=3)
    assert cv.k_best == cv.k_1se <= cv.k_min
    assert cv.fit.k == {"1|school": cv.k_1se}


def test_blocked_with_population_prediction_scores_new_schools(exam):
    cv = mixmio.cv_lmer(EXAM, exam, k=[0, 5], cv="blocked", folds=4,
                        predict_new="population", random_state=0)
    for te in cv.folds:  # every held-out school is absent from its training rows
        train = np.setdiff1d(np.arange(len(exam)), te)
        assert set(exam["school"].iloc[te]).isdisjoint(exam["school"].iloc[train])
    assert cv.cv == "blocked" and len(cv.folds) == 4


def test_identical_for_n_jobs(exam):
    a = mixmio.cv_lmer(EXAM, exam, k=[0, 10], cv="within", random_state=5, n_jobs=1)
    b = mixmio.cv_lmer(EXAM, exam, k=[0, 10], cv="within", random_state=5, n_jobs=2)
    assert a.table.equals(b.table)
    assert a.k_best == b.k_best
    np.testing.assert_array_equal(a.fit.w, b.fit.w)


def test_random_state_fixes_the_folds(exam):
    a = mixmio.cv_lmer(EXAM, exam, k=[0], cv="within", random_state=5)
    b = mixmio.cv_lmer(EXAM, exam, k=[0], cv="within", random_state=5)
    c = mixmio.cv_lmer(EXAM, exam, k=[0], cv="within", random_state=6)
    assert all(np.array_equal(x, y) for x, y in zip(a.folds, b.folds, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.folds, c.folds, strict=True))


def test_sklearn_splitters(exam):
    from sklearn.model_selection import GroupKFold, KFold

    cv = mixmio.cv_lmer(EXAM, exam, k=[0, 5], cv=GroupKFold(3), predict_new="population")
    assert cv.cv == "GroupKFold" and len(cv.folds) == 3
    for te in cv.folds:
        train = np.setdiff1d(np.arange(len(exam)), te)
        assert set(exam["school"].iloc[te]).isdisjoint(exam["school"].iloc[train])
    cv = mixmio.cv_lmer(EXAM, exam, k=[0, 5], cv=KFold(3, shuffle=True, random_state=0))
    assert len(cv.table) == 2 and np.isfinite(cv.table["mean"]).all()


def test_k_cv_in_mio_lmer(exam):
    fit = mixmio.mio_lmer(EXAM, exam.iloc[:1500], k="cv", random_state=0)
    cv = fit.cv_result
    assert cv is not None and cv.cv == "blocked" and len(cv.table) == 13
    assert fit.k == {"1|school": cv.caps[cv.k_best]["1|school"]}
    assert fit.status == "optimal"


def test_plot(cv_within):
    from matplotlib.figure import Figure

    fig = cv_within.plot()
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) >= 3
    assert "k_best=" in repr(cv_within)


@pytest.mark.parametrize("kwargs, err, msg", [
    (dict(folds=66), ArgumentError, "more than the 65 clusters"),
    (dict(folds=1), ArgumentError, ">= 2"),
    (dict(k=[]), ArgumentError, "empty"),
    (dict(k=[0, 66]), ArgumentError, "out of range"),
    (dict(cv="loo"), ArgumentError, "cv must be one of"),
    (dict(cv=5), ArgumentTypeError, "splitter"),
    (dict(rule="best"), ArgumentError, "rule"),
    (dict(predict_new="magic"), ArgumentError, "predict_new"),
    (dict(n_jobs=0), ArgumentError, "n_jobs"),
    (dict(cluster_features=["type"]), ArgumentError, "features"),
    (dict(predict_new="features", cluster_features=["nope"]), KeyError, "nope"),
    (dict(predict_new="features", cluster_features=["standLRT"]), ValueError, "standLRT"),
    (dict(kk=3), TypeError, "unexpected keyword"),
])
def test_bad_input_before_any_fit(exam, no_fit, kwargs, err, msg):
    with pytest.raises(err, match=msg):
        mixmio.cv_lmer(EXAM, exam, **kwargs)


def test_features_without_numeric_columns_before_any_fit(exam, no_fit):
    with pytest.raises(ArgumentError, match="numeric fixed-effects column"):
        mixmio.cv_lmer("normexam ~ sex + (1 | school)", exam, predict_new="features")


def test_features_mode_with_school_level_feature(exam):
    cv = mixmio.cv_lmer(EXAM, exam, k=[0, 5], folds=3, predict_new="features",
                        cluster_features=["schavg"], random_state=0)
    assert cv.predict_new == "features" and np.isfinite(cv.table["mean"]).all()


def test_dask_takes_the_folds(exam):
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    ref = mixmio.cv_lmer(EXAM, exam, k=[0, 5], cv="within", folds=3, random_state=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_config(backend="dask"):
        on_dask = mixmio.cv_lmer(EXAM, exam, k=[0, 5], cv="within", folds=3, random_state=1)
    assert ref.table.equals(on_dask.table)


def test_bad_k_string(exam, no_fit):
    with pytest.raises(ArgumentError, match="'cv'"):
        mixmio.mio_lmer(EXAM, exam, k="auto")
