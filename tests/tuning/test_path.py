"""lmer_path: agreement with single fits, monotone objectives, the tables and the plots."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.api.path import FRACTIONS, default_grid
from mixmio.errors import ArgumentError, ArgumentTypeError

matplotlib.use("Agg")

SLEEP = "Reaction ~ Days + (1 | Subject)"
EXAM = "normexam ~ standLRT + (1 | school)"


@pytest.fixture(scope="module")
def exam_path(exam):
    return mixmio.lmer_path(EXAM, exam)


def test_default_grid_is_the_papers_fractions(exam_path):
    K = 65
    want = sorted({min(K, int(np.floor(f * K + 0.5))) for f in FRACTIONS})
    assert list(exam_path.table["k"]) == want
    assert want[0] == 0 and want[-1] == K and 22 in want  # 1/3 of 65 = 21.67 -> 22
    assert default_grid({"a": 10})[4] == {"a": 3}


def test_path_agrees_with_single_fits(exam, exam_path):
    for k in exam_path.k:
        single = mixmio.mio_lmer(EXAM, exam, k=k)
        fit = exam_path.fits[k]
        assert fit.objective == pytest.approx(single.objective, rel=1e-6)
        assert fit.status == "optimal" and single.status == "optimal"
        assert fit.best_bound <= fit.objective * (1 + 1e-12)


def test_objective_non_increasing_and_certified(exam_path):
    t = exam_path.table
    obj = t["objective"].to_numpy()
    # each point is within its certified gap of the true minimum, which is non-increasing
    assert np.all(np.diff(obj) <= 1e-4 * obj[1:])
    assert (t["status"] == "optimal").all()
    assert (t["gap"] <= 1e-4).all()
    assert list(t.columns) == ["k", "objective", "best_bound", "gap", "status", "time",
                               "n_selected", "entered", "left"]


def test_entered_and_left_account_for_the_selection(exam_path):
    t = exam_path.table
    prev: set = set()
    for key, row in zip(t["k"], t.itertuples(), strict=True):
        sel = set(exam_path.fits[key].selected["level"].astype(str))
        assert set(row.entered) == sel - prev
        assert set(row.left) == prev - sel
        assert row.n_selected == len(sel) <= key
        prev = sel


def test_ranking_orders_by_first_entry(exam_path):
    rk = exam_path.ranking()
    steps = {key: i for i, key in enumerate(exam_path.k)}
    assert list(rk["rank"]) == list(range(1, len(rk) + 1))
    assert np.all(np.diff([steps[k] for k in rk["k_entry"]]) >= 0)
    for row in rk.itertuples():  # the estimate at entry is that fit's estimate
        sel = exam_path.fits[row.k_entry].selected
        est = sel.loc[sel["level"].astype(str) == row.level, "estimate"].iloc[0]
        assert row.estimate_at_entry == est
    # every school is selected at k = K, so every school enters exactly once
    assert len(rk) == 65 and rk["level"].is_unique and rk["selected_at_end"].all()


def test_audit_budget_by_hand(exam_path):
    a = exam_path.audit_budget()
    ref = exam_path.fits[65].ranef.set_index(exam_path.fits[65].ranef["level"].astype(str))
    sq = ref["estimate"] ** 2
    want = np.cumsum(sq.loc[exam_path.ranking()["level"]].to_numpy()) / sq.sum()
    np.testing.assert_allclose(a["share"], want)
    assert a["share"].iloc[-1] == pytest.approx(1.0)
    assert np.all(np.diff(a["share"]) >= 0)
    np.testing.assert_allclose(a["uniform"], np.arange(1, 66) / 65)


def test_list_grid_sorted_deduplicated_and_shared_support(sleep):
    path = mixmio.lmer_path(SLEEP, sleep, k=[4, 0, 2, 4])
    assert path.k == [0, 2, 4]
    assert list(path.table["n_selected"]) == [0, 2, 4]
    assert path.fits[2].design is path.fits[4].design  # the design is built once


def test_dict_grid_for_slopes(sleep):
    path = mixmio.lmer_path("Reaction ~ Days + (Days | Subject)", sleep,
                            k={"1|Subject": [0, 2, 4], "Days|Subject": 1})
    assert path.k == [(0, 1), (2, 1), (4, 1)]
    for key, fit in path.fits.items():
        single = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", sleep,
                                 k={"1|Subject": key[0], "Days|Subject": 1})
        assert fit.objective == pytest.approx(single.objective, rel=1e-6)
        assert fit.k == {"1|Subject": key[0], "Days|Subject": 1}
    assert set(path.ranking()["term"]) <= {"1|Subject", "Days|Subject"}
    assert path.effects("Days|Subject").shape == (18, 3)


def test_plots_return_figures(exam_path):
    from matplotlib.figure import Figure

    fig = exam_path.plot()
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) >= 65
    fig = exam_path.plot_audit()
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2


def test_passes_mio_lmer_arguments(sleep):
    path = mixmio.lmer_path(SLEEP, sleep, k=[3], refit=False, ridge=5.0)
    fit = path.fits[3]
    assert fit.problem.ridge == 5.0 and fit.refit is False


@pytest.mark.parametrize("k, err, msg", [
    ([], ArgumentError, "empty"),
    ([0, 19], ArgumentError, r"out of range.*\[0, 18\]"),
    ([-1], ArgumentError, "out of range"),
    ([1.5], ArgumentTypeError, "integer"),
    ("3", ArgumentTypeError, "list of ints"),
    ({"1|Nope": [1]}, ArgumentError, "names no random-effect column"),
    ({"1|Subject": [1, 2], "Days|Subject": [1]}, ArgumentError, "one length"),
])
def test_bad_grids_raise_before_any_fit(sleep, no_fit, k, err, msg):
    formula = "Reaction ~ Days + (Days | Subject)" if isinstance(k, dict) else SLEEP
    with pytest.raises(err, match=msg):
        mixmio.lmer_path(formula, sleep, k=k)


def test_bad_keyword_and_no_random_term(sleep, no_fit):
    with pytest.raises(TypeError, match="unexpected keyword"):
        mixmio.lmer_path(SLEEP, sleep, folds=3)
    with pytest.raises(ArgumentError, match="random term"):
        mixmio.lmer_path("Reaction ~ Days", sleep)
    with pytest.raises(ValueError, match="mip_gap"):
        mixmio.lmer_path(SLEEP, sleep, mip_gap=2)


def test_repr(exam_path):
    assert "13 caps" in repr(exam_path)
    assert isinstance(exam_path.table, pd.DataFrame)
    assert "<table" in exam_path._repr_html_()
