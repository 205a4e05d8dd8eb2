"""Issue 14: every input is checked up front, in every front door, with mixmio's own error
naming the culprit (never a pandas / formulaic / numpy internal error)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.api.clr import mio_clr
from mixmio.api.glm import mio_glm
from mixmio.errors import (
    ArgumentError,
    ArgumentTypeError,
    ColumnNotFoundError,
    DataError,
    DataTypeError,
    FormulaError,
    GurobiLicenceError,
    MixmioError,
    RankDeficientError,
    SeparationError,
)


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(0)
    n = 60
    d = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                      "g": np.repeat(np.arange(6), 10)})
    d["y"] = d.x + (d.g == 2) * 2 + rng.normal(size=n)
    d["b"] = (d.y > d.y.median()).astype(int)
    return d


def _doors(d):
    """Every front door that takes (formula, data), as (name, call)."""
    return {
        "build_design": lambda data, **kw: mixmio.build_design("y ~ x + (1 | g)", data, **kw),
        "mio_lmer": lambda data, **kw: mixmio.mio_lmer("y ~ x + (1 | g)", data, k=1, **kw),
        "mio_lm": lambda data, **kw: mixmio.mio_lm("y ~ x + z", data, k=1, **kw),
        "mio_glm": lambda data, **kw: mio_glm("b ~ x + z", data, k=1, **kw),
        "mio_clr": lambda data, **kw: mio_clr("y ~ x", data, n_clusters=2, **kw),
        "holistic_regression": lambda data, **kw: mixmio.holistic_regression(
            "y ~ x + z", data, ks=[1], n_gamma=1, top=1, B=10, **kw),
    }


DOORS = ["build_design", "mio_lmer", "mio_lm", "mio_glm", "mio_clr", "holistic_regression"]


def test_errors_share_one_base_class():
    for cls in (FormulaError, RankDeficientError, SeparationError, GurobiLicenceError,
                ArgumentError, ArgumentTypeError, DataError, DataTypeError,
                ColumnNotFoundError):
        assert issubclass(cls, MixmioError)
    assert issubclass(FormulaError, ValueError) and issubclass(DataTypeError, TypeError)
    assert mixmio.MixmioError is MixmioError
    from mixmio.design import RankDeficientError as R
    from mixmio.solvers.clr.milp import GurobiLicenceError as G
    from mixmio.solvers.glm.logistic import SeparationError as S
    assert (G, R, S) == (GurobiLicenceError, RankDeficientError, SeparationError)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("bad,name", [([1, 2], "list"), (np.zeros((3, 2)), "ndarray"),
                                      (None, "NoneType"), ("y,x", "str")])
def test_data_that_is_not_a_frame(df, door, bad, name):
    with pytest.raises(DataTypeError, match=f"data must be a pandas DataFrame .*got {name}$"):
        _doors(df)[door](bad)


@pytest.mark.parametrize("door", DOORS)
def test_a_dict_of_columns_works_everywhere(df, door):
    as_dict = {c: df[c].to_numpy() for c in df.columns}
    out = _doors(df)[door](as_dict, random_state=0) if door != "build_design" else \
        _doors(df)[door](as_dict)
    assert out is not None
    if door == "mio_lm":  # the same fit as from the DataFrame
        ref = mixmio.mio_lm("y ~ x + z", df, k=1)
        assert out.objective == pytest.approx(ref.objective, rel=1e-9)


@pytest.mark.parametrize("door", DOORS)
def test_duplicate_column_names(df, door):
    dup = pd.concat([df, df[["x"]]], axis=1)
    with pytest.raises(DataError, match=r"duplicate column names \['x'\]"):
        _doors(df)[door](dup)


@pytest.mark.parametrize("door", ["build_design", "mio_lmer", "mio_lm", "mio_clr"])
@pytest.mark.parametrize("make,what", [
    (lambda s: pd.Timestamp("2020-01-01") + pd.to_timedelta(s.abs(), unit="D"), "datetime64"),
    (lambda s: pd.to_timedelta(s.abs(), unit="D"), "timedelta64"),
    (lambda s: s + 1j * s, "complex"),
])
def test_datetime_timedelta_complex_columns(df, door, make, what):
    bad = df.assign(x=make(df.x))
    with pytest.raises(DataTypeError, match=f"column 'x' .*{what}"):
        _doors(df)[door](bad)


def test_datetime_grouping_factor_is_a_factor(df):
    d = df.assign(day=pd.Timestamp("2020-01-01") + pd.to_timedelta(df.g, unit="D"))
    design = mixmio.build_design("y ~ x + (1 | day)", d)
    assert design.blocks[0].n_levels == 6


@pytest.mark.parametrize("door", ["build_design", "mio_lmer", "mio_lm", "mio_clr"])
def test_numbers_stored_as_object_are_refused_unless_a_factor(df, door):
    obj = df.assign(x=df.x.astype(object))
    obj.loc[3, "x"] = np.nan
    with pytest.raises(DataTypeError, match=r"column 'x' has dtype object but holds numbers"):
        _doors(df)[door](obj)
    # wrapped in C() it is the factor the user asked for
    small = obj.assign(x=np.where(obj.index % 2, 1.0, 2.0).astype(object))
    d = mixmio.build_design("y ~ C(x) + (1 | g)", small)
    assert d.X.shape[1] == 2


@pytest.mark.parametrize("door", ["build_design", "mio_lmer"])
def test_unhashable_grouping_values(df, door):
    bad = df.assign(g=[[v] for v in df.g])
    with pytest.raises(DataTypeError, match=r"column 'g' holds a list in row 0"):
        _doors(df)[door](bad)


def test_unhashable_fixed_values(df):
    bad = df.assign(z=[{"a": 1}] * len(df))
    with pytest.raises(DataTypeError, match=r"column 'z' holds a dict"):
        mixmio.mio_lm("y ~ x + z", bad, k=1)


@pytest.mark.parametrize("door", DOORS)
def test_a_single_row(df, door):
    with pytest.raises(DataError, match="single row"):
        _doors(df)[door](df.head(1))


def test_single_row_left_after_dropping(df):
    d = df.head(3).copy()
    d.loc[[0, 1], "x"] = np.nan
    with pytest.raises(DataError, match="single row left after dropping 2"):
        mixmio.mio_lm("y ~ x", d, k=1)


def test_random_term_lhs_syntax_error():
    d = mixmio.datasets.load("sleepstudy")
    for f in ("Reaction ~ 0 ++ Days + (1 | Subject)", "Reaction ~ Days + (0 ++ Days | Subject)"):
        with pytest.raises(FormulaError, match="a term is missing here") as err:
            mixmio.build_design(f, d)
        assert f[err.value.position] == "+"


def test_unknown_columns_are_mixmios_keyerror(df):
    with pytest.raises(ColumnNotFoundError, match="not in the data: 'w'") as err:
        mixmio.mio_lm("y ~ x + w", df, k=1)
    assert isinstance(err.value, KeyError)
    assert "\\n" not in str(err.value)  # shown as text, not as a repr


# -- predict ------------------------------------------------------------------------------
def _fits(df):
    return {
        "mio_lmer": mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1),
        "mio_lm": mixmio.mio_lm("y ~ x + z", df, k=1),
        "mio_glm": mio_glm("b ~ x + z", df, k=1),
        "mio_clr": mio_clr("y ~ x", df, n_clusters=2, random_state=0),
    }


def test_predict_with_another_dtype_names_the_column(df):
    for name, fit in _fits(df).items():
        new = df.assign(x=df.x.astype(str))
        with pytest.raises(DataTypeError, match=r"column 'x' of newdata has dtype (object|str"
                           r").*trained with dtype float64"):
            fit.predict(new)
        with pytest.raises(DataTypeError, match="data must be a pandas DataFrame"):
            fit.predict([1, 2, 3])
        # a dict of columns, and an int column where training had floats, are fine
        as_dict = {c: df[c].to_numpy() for c in df.columns}
        p = fit.predict(as_dict)
        assert len(p) == len(df), name


def test_predict_grouping_levels_may_change_type(df):
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1)
    np.testing.assert_allclose(fit.predict(df.assign(g=df.g.astype(str))), fit.predict(df))


def test_holistic_predict_checks_dtypes(df):
    res = mixmio.holistic_regression("y ~ x + z", df, ks=[1], n_gamma=1, top=1, B=10,
                                     random_state=0)
    with pytest.raises(DataTypeError, match="column 'x' of newdata"):
        res.predict(df.assign(x=df.x.astype(str)))


# -- parameter types, the same in every front door ------------------------------------------
FIT_DOORS = ["mio_lmer", "mio_lm", "mio_glm", "mio_clr"]


BOOL_PARAMS = {"mio_lmer": ("warm_start", "verbose", "refit"),
               "mio_lm": ("warm_start", "verbose", "refit"),
               "mio_glm": ("warm_start", "verbose"), "mio_clr": ("verbose", "symmetry_breaking")}


@pytest.mark.parametrize("door,param", [(d, p) for d, ps in BOOL_PARAMS.items() for p in ps])
@pytest.mark.parametrize("value", ["no", 1, None])
def test_bool_parameters(df, door, param, value):
    with pytest.raises(ArgumentTypeError, match=f"{param} must be True or False"):
        _doors(df)[door](df, **{param: value})


@pytest.mark.parametrize("door", ["mio_lmer", "mio_lm", "mio_glm"])
@pytest.mark.parametrize("value,err", [(True, ArgumentTypeError), ("1", ArgumentTypeError),
                                       (-1.0, ArgumentError), (np.inf, ArgumentError)])
def test_ridge(df, door, value, err):
    with pytest.raises(err, match="ridge must be"):
        _doors(df)[door](df, ridge=value)


def test_ridge_zero_is_allowed_where_documented(df):
    assert mixmio.mio_lm("y ~ x + z", df, k=1, ridge=0).problem.ridge == 0
    with pytest.raises(ArgumentError, match="positive number"):
        mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1, ridge=0)


@pytest.mark.parametrize("door", FIT_DOORS + ["holistic_regression"])
@pytest.mark.parametrize("value", [True, "abc", 1.5, -3])
def test_random_state_type(df, door, value):
    with pytest.raises(ArgumentTypeError, match="random_state must be None"):
        _doors(df)[door](df, random_state=value)


@pytest.mark.parametrize("door", FIT_DOORS)
def test_random_state_generator_is_reproducible(df, door):
    a = _doors(df)[door](df, random_state=np.random.default_rng(5))
    b = _doors(df)[door](df, random_state=np.random.default_rng(5))
    assert a.objective == pytest.approx(b.objective, rel=1e-12)


@pytest.fixture(scope="module")
def lmer_fit(df):
    return mixmio.mio_lmer("y ~ x + (1 | g)", df, k=1)


@pytest.mark.parametrize("method", ["bootstrap", "stability"])
@pytest.mark.parametrize("kw,err,match", [
    ({"n_jobs": 0}, ArgumentError, "n_jobs must not be 0"),
    ({"n_jobs": 1.5}, ArgumentTypeError, "n_jobs must be an int"),
    ({"n_jobs": True}, ArgumentTypeError, "n_jobs must be an int"),
    ({"random_state": True}, ArgumentTypeError, "random_state must be None"),
    ({"progress": "yes"}, ArgumentTypeError, "progress must be True or False"),
])
def test_replicate_methods(lmer_fit, method, kw, err, match):
    with pytest.raises(err, match=match):
        getattr(lmer_fit, method)(B=4, **kw)


@pytest.mark.parametrize("kw,err,match", [
    ({"n_jobs": 0}, ArgumentError, "n_jobs must not be 0"),
    ({"random_state": False}, ArgumentTypeError, "random_state must be None"),
])
def test_subset_bootstrap_methods(df, kw, err, match):
    for fit in (mixmio.mio_lm("y ~ x + z", df, k=1), mio_glm("b ~ x + z", df, k=1)):
        with pytest.raises(err, match=match):
            fit.bootstrap(B=4, **kw)


def test_negative_n_jobs_as_in_joblib(lmer_fit):
    a = lmer_fit.bootstrap(B=4, n_jobs=-1, random_state=0, progress=False)
    b = lmer_fit.bootstrap(B=4, n_jobs=1, random_state=0, progress=False)
    np.testing.assert_array_equal(a.draws, b.draws)


@pytest.mark.parametrize("split", [(0.5, 0.5), (0.5, 0.3, 0.3), ("a", "b", "c"), 3])
def test_holistic_split(df, split):
    with pytest.raises((ArgumentError, ArgumentTypeError), match="split must be three"):
        mixmio.holistic_regression("y ~ x + z", df, split=split)


def test_mip_gap_and_time_limit_types(df):
    for door in FIT_DOORS:
        with pytest.raises(ArgumentTypeError, match="mip_gap must be a number"):
            _doors(df)[door](df, mip_gap="0.1")
        with pytest.raises(ArgumentError, match="time_limit must be a positive"):
            _doors(df)[door](df, time_limit=0)
