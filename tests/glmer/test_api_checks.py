"""mio_glmer refuses bad input with a clear error before any solve (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.errors import (
    ArgumentError,
    ColumnNotFoundError,
    DataError,
    DataTypeError,
    SeparationError,
)


@pytest.fixture
def never_solve(monkeypatch):
    """Fail the test if any solve starts: every check must come first."""
    import mixmio.api._glmer as api

    def boom(*a, **k):
        raise AssertionError("a solve started before the input was checked")

    monkeypatch.setattr(api, "solve_glmm", boom)


def counts(seed=0, K=8, rows=5):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), rows)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": rng.poisson(np.exp(0.3 + 0.2 * x)), "x": x, "g": g,
                         "e": rng.uniform(1, 3, g.size)})


def binary(seed=0, K=8, rows=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), rows)
    x = rng.normal(size=g.size)
    y = rng.binomial(1, 1 / (1 + np.exp(-0.5 * x)))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_negative_count(never_solve):
    df = counts().assign(y=lambda d: d.y.where(d.index != 3, -1))
    with pytest.raises(DataError, match=r"counts >= 0.*rows \[3\]"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="poisson")


def test_non_integer_count(never_solve):
    df = counts().assign(y=lambda d: d.y + np.where(d.index == 5, 0.5, 0.0))
    with pytest.raises(DataError, match=r"whole counts.*rows \[5\]"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="poisson")


def test_binary_response_other_values(never_solve):
    df = binary().assign(y=lambda d: d.y.where(d.index != 2, 2))
    with pytest.raises(DataError, match=r"0/1 response.*rows \[2\].*weights=n"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="binomial")


def test_successes_above_trials(never_solve):
    df = binary().assign(n=4, y=lambda d: np.where(d.index == 7, 1.25, d.y / 4))
    with pytest.raises(DataError, match=r"exceeds 1 at rows \[7\].*successes above the trials"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="binomial", weights="n")


def test_fractional_successes(never_solve):
    df = binary().assign(n=4, y=lambda d: np.where(d.index == 1, 0.3, d.y / 4))
    with pytest.raises(DataError, match=r"not a whole number of successes at rows \[1\]"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="binomial", weights="n")


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_offset_not_finite(never_solve):
    df = counts().assign(e=lambda d: d.e.where(d.index != 4, 0.0))
    with pytest.raises(DataError, match="offset"):
        mixmio.mio_glmer("y ~ offset(np.log(e)) + (1 | g)", df, k=2, family="poisson")


@pytest.mark.parametrize("w, exc, msg", [
    ("nope", ColumnNotFoundError, "names no column"),
    (np.ones(3), ArgumentError, "one value per row"),
    (-np.ones(40), DataError, "positive and finite"),
    (np.array(["a"] * 40), DataTypeError, "numeric"),
])
def test_bad_weights(never_solve, w, exc, msg):
    with pytest.raises(exc, match=msg):
        mixmio.mio_glmer("y ~ x + (1 | g)", counts(), k=2, family="poisson", weights=w)


def test_weights_na_raise_or_drop(monkeypatch):
    import mixmio.api._glmer as api

    seen = {}

    def fake_solve(problem, **kw):
        seen["n"] = problem.n
        raise RuntimeError("stop here")

    monkeypatch.setattr(api, "solve_glmm", fake_solve)
    df = counts().assign(w=1.0)
    df.loc[[0, 9], "w"] = np.nan
    with pytest.raises(DataError, match="weights have 2 missing"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="poisson", weights="w",
                         na_action="raise")
    with pytest.raises(RuntimeError, match="stop here"):
        mixmio.mio_glmer("y ~ x + (1 | g)", df, k=2, family="poisson", weights="w")
    assert seen["n"] == 38


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(family="gaussian"), ArgumentError, "family must be"),
    (dict(solver="cplex"), ArgumentError, "solver must be one of"),
    (dict(mip_gap=-1), ValueError, "mip_gap"),
    (dict(ridge=0), ValueError, "ridge"),
    (dict(k=99), ValueError, "outside 0..8"),
    (dict(na_action="ignore"), ValueError, "na_action"),
])
def test_bad_arguments(never_solve, kw, exc, msg):
    args = dict(k=2, family="poisson") | kw
    with pytest.raises(exc, match=msg):
        mixmio.mio_glmer("y ~ x + (1 | g)", counts(), **args)


def test_unknown_column_and_syntax(never_solve):
    with pytest.raises(KeyError, match="zz"):
        mixmio.mio_glmer("y ~ zz + (1 | g)", counts(), k=2, family="poisson")
    with pytest.raises(mixmio.FormulaError):
        mixmio.mio_glmer("y ~ x + (1 | g", counts(), k=2, family="poisson")


def test_separation_named(never_solve):
    df = binary()
    df["s"] = np.where(df.y == 1, 1.0, -1.0) * np.abs(df.x)  # sign(s) = y: separates
    with pytest.raises(SeparationError, match=r"\['s'\]|s"):
        mixmio.mio_glmer("y ~ s + (1 | g)", df, k=2, family="binomial")


def test_poisson_zero_counts_separation(never_solve):
    df = counts()
    df["d"] = np.where(df.y == 0, -1.0 - np.abs(df.x), 0.0)  # d < 0 exactly where y = 0
    with pytest.raises(SeparationError, match="zero counts"):
        mixmio.mio_glmer("y ~ d + (1 | g)", df, k=2, family="poisson")


def test_no_separation_passes_the_check():
    from mixmio.problem.glmer_checks import check_separation

    df = binary()
    X = np.column_stack([np.ones(len(df)), df.x])
    check_separation("binomial", X, df.y.to_numpy(float), np.ones(len(df)), ["1", "x"])


def test_auto_ridge_scales_with_information():
    from mixmio.api._glmer import glmer_auto_ridge

    df = counts(K=10, rows=4)
    d = mixmio.build_design("y ~ 1 + (1 | g)", df)
    X = d.X.to_numpy(float)
    y = d.y
    r1 = glmer_auto_ridge("poisson", X, d.Z, y, np.ones_like(y), np.zeros_like(y))
    r2 = glmer_auto_ridge("poisson", X, d.Z, y, np.ones_like(y), np.log(np.full_like(y, 3.0)))
    # the offset moves the fitted mean but not the intercept-only fit's mean count
    assert r1 == pytest.approx(1e-4 * np.median(np.bincount(d.blocks[0].codes)
                                                * y.mean()), rel=1e-9)
    assert r2 == pytest.approx(r1, rel=1e-9)
