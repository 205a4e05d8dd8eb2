"""Non-finite inputs are refused before any solve, naming the column; the rank check does not
depend on the columns' units."""

import re

import numpy as np
import pytest

import mixmio


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


@pytest.mark.parametrize("formula,where,col", [
    ("Reaction ~ np.log(Days) + (1 | Subject)", "fixed-effects", "np.log(Days)"),
    ("Reaction ~ Days + (np.log(Days) | Subject)", "random term", "np.log(Days)"),
])
def test_non_finite_columns_are_named(sleep, formula, where, col):
    with pytest.raises(ValueError, match=rf"non-finite.*{where}.*'{re.escape(col)}': 18"):
        mixmio.build_design(formula, sleep)


def test_infinite_response_is_named(sleep, monkeypatch):
    d = sleep.copy()
    d.loc[3, "Reaction"] = np.inf
    monkeypatch.setattr("mixmio.solvers.solve", lambda *a, **k: pytest.fail("solver ran"))
    with pytest.raises(ValueError, match=r"non-finite.*response.*'Reaction': 1"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k=3)


@pytest.mark.parametrize("scale", [1e-9, 1e9])
def test_rank_check_ignores_column_units(sleep, scale):
    d = sleep.assign(T=sleep["Days"] * scale, U=sleep["Days"] ** 2 * scale)
    X = mixmio.build_design("Reaction ~ T + U + (1 | Subject)", d).X
    assert list(X.columns) == ["Intercept", "T", "U"]
    with pytest.raises(mixmio.design.RankDeficientError):
        mixmio.build_design("Reaction ~ T + Days + (1 | Subject)", d)
