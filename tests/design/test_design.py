import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mixmio import RankDeficientError, build_design
from mixmio.datasets import load


@pytest.fixture
def sleep():
    return load("sleepstudy")


def test_shapes_and_blocks(sleep):
    d = build_design("Reaction ~ Days + (Days | Subject)", sleep)
    assert sp.issparse(d.Z) and d.Z.format == "csc"
    assert d.Z.shape == (180, 36)
    assert list(d.X.columns) == ["Intercept", "Days"]
    (b,) = d.blocks
    assert b.labels == ["1|Subject", "Days|Subject"]
    assert b.n_levels == 18 and b.q == 2
    # each term column is a contiguous block of K columns
    zc = d.z_columns
    assert (zc.iloc[b.column_slice(1)]["term"] == "Days").all()
    subjects = sorted(sleep.Subject.unique())
    assert list(zc.iloc[b.column_slice(0)]["level"]) == [str(v) for v in subjects]
    # Z column (Days, level lv) equals Days on that subject's rows
    lv = 3
    col = d.Z[:, b.column_slice(1).start + lv].toarray().ravel()
    rows = sleep.Subject == subjects[lv]
    np.testing.assert_array_equal(col, np.where(rows, sleep.Days, 0.0))
    np.testing.assert_array_equal(b.codes, pd.factorize(sleep.Subject, sort=True)[0])


def test_integer_ids_are_factor_levels():
    df = pd.DataFrame({"y": np.arange(6.0), "id": [10, 10, 2, 2, 7, 7]})
    d = build_design("y ~ 1 + (1 | id)", df)
    assert list(d.blocks[0].levels) == ["2", "7", "10"]


def test_factor_slopes_one_column_per_level():
    d = build_design("angle ~ temp + (0 + recipe | replicate)", load("cake"))
    assert d.blocks[0].labels == ["recipe[A]|replicate", "recipe[B]|replicate",
                                  "recipe[C]|replicate"]
    assert d.Z.shape[1] == 3 * 15


def test_functions_inside_terms(sleep):
    d = build_design("Reaction ~ Days + (1 + I(Days**2) | Subject)", sleep)
    assert d.blocks[0].labels == ["1|Subject", "I(Days ** 2)|Subject"]
    np.testing.assert_array_equal(d.blocks[0].values[:, 1], sleep.Days ** 2)


def test_nested_and_interaction_groups():
    d = build_design("strength ~ 1 + (1 | batch/cask)", load("pastes"))
    assert [b.group for b in d.blocks] == ["batch", "batch:cask"]
    assert d.blocks[1].n_levels == 30
    assert "A:a" in list(d.blocks[1].levels)


def test_offset(sleep):
    d = build_design("Reaction ~ Days + offset(np.log(Days + 1)) + (1 | Subject)", sleep)
    np.testing.assert_allclose(d.offset, np.log(sleep.Days + 1))


def test_na_drop_and_raise(sleep):
    df = sleep.copy()
    df.loc[[3, 50], "Days"] = np.nan
    df.loc[7, "Subject"] = np.nan
    df["unused"] = np.nan  # not in the formula: must not drop anything
    d = build_design("Reaction ~ Days + (1 | Subject)", df)
    assert d.n_dropped == 3 and list(d.dropped_rows) == [3, 7, 50]
    assert d.na_counts == {"Days": 2, "Subject": 1}
    assert len(d.y) == 177
    with pytest.raises(ValueError, match=r"missing values in .*Days.*Subject"):
        build_design("Reaction ~ Days + (1 | Subject)", df, na_action="raise")


def test_rank_deficient_names_aliased_columns(sleep):
    df = sleep.assign(Days2=2 * sleep.Days, z=sleep.Days + 1.0)
    with pytest.raises(RankDeficientError, match=r"rank of X = 2 < ncol\(X\) = 4") as info:
        build_design("Reaction ~ Days + Days2 + z + (1 | Subject)", df)
    assert len(info.value.aliased) == 2
    assert set(info.value.aliased) <= {"Days", "Days2", "z", "Intercept"}


@pytest.mark.parametrize("formula, data_fix, error, match", [
    ("Reaction ~ Dayz + (1 | Subject)", None, KeyError, r"'Dayz' \(did you mean 'Days'"),
    ("Reaction ~ Days + (1 | Subj)", None, KeyError, "Subj"),
    ("Reaction ~ Days + (1 | one)", "one", ValueError, "has 1 level"),
    ("Reaction ~ Days + (1 | Subject)", "cat", ValueError, "levels with no rows"),
    ("s ~ Days + (1 | Subject)", "s", TypeError, "must be numeric"),
    ("Reaction ~ Days + (1 | Subject) + (1 | Subject)", None, ValueError, "appears in two"),
    ("Reaction ~ Days + (1 | Subject)", "na_action", ValueError, "na_action"),
])
def test_clear_errors(sleep, formula, data_fix, error, match):
    df = sleep.copy()
    kw = {}
    if data_fix == "one":
        df["one"] = "a"
    elif data_fix == "cat":
        df["Subject"] = pd.Categorical(df.Subject, categories=list(df.Subject.unique()) + [999])
    elif data_fix == "s":
        df["s"] = df.Reaction.astype(str)
    elif data_fix == "na_action":
        kw["na_action"] = "omit"
    with pytest.raises(error, match=match):
        build_design(formula, df, **kw)


def test_transform_reproduces_training_and_reports_unseen(sleep):
    d = build_design("Reaction ~ Days + (Days | Subject)", sleep)
    nd = d.transform(sleep)
    np.testing.assert_array_equal(nd.X.to_numpy(), d.X.to_numpy())
    assert (nd.Z != d.Z).nnz == 0
    new = sleep.head(4).assign(Subject=[308, 308, 1, 2])
    with pytest.warns(UserWarning, match="not seen in training"):
        nd = d.transform(new)
    assert nd.unseen == {"Subject": ["1", "2"]}
    np.testing.assert_array_equal(nd.unseen_rows["Subject"], [False, False, True, True])
    assert nd.Z[2:].nnz == 0 and nd.Z[:2].nnz > 0


def test_transform_unseen_fixed_level_is_an_error():
    d = build_design("angle ~ recipe + (1 | replicate)", load("cake"))
    new = load("cake").head(2).assign(recipe=["A", "Z"])
    with pytest.raises(ValueError, match="not seen in training"):
        d.transform(new)


def test_large_sparse_design_is_sparse():
    rng = np.random.default_rng(0)
    n, K = 200_000, 5_000
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                       "g": rng.integers(0, K, n), "h": rng.integers(0, 300, n)})
    d = build_design("y ~ x + (1 | g) + (1 | h)", df)
    assert d.Z.shape == (n, K + 300)
    assert d.Z.nnz == 2 * n


def test_interaction_labels_that_collide_are_refused():
    df = pd.DataFrame({"y": np.arange(6.0), "a": ["x:y", "x", "x:y", "x", "u", "u"],
                       "b": ["z", "y:z", "z", "y:z", "v", "v"]})
    with pytest.raises(ValueError, match=r"same label \['x:y:z'\].*contains ':'"):
        build_design("y ~ 1 + (1 | a:b)", df)


def test_transform_refuses_non_finite_newdata():
    d = load("sleepstudy")
    design = build_design("Reaction ~ Days + (Days | Subject)", d)
    nd = d.head(3).astype({"Days": float})
    nd.loc[nd.index[0], "Days"] = np.inf
    with pytest.raises(ValueError, match=r"non-finite values .* newdata \{'Days': 1\}"):
        design.transform(nd)


@pytest.mark.parametrize("formula", ["np.log(y + 10) ~ x + (1 | g)", "`my y` ~ x + (1 | g)",
                                     "y ~ 1 + (1 | g)", "y ~ 0 + x + (1 | g)"])
def test_transform_needs_only_the_right_hand_side(formula):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=40) + 5, "x": rng.normal(size=40),
                       "g": np.repeat(np.arange(8), 5)})
    df["my y"] = df.y
    design = build_design(formula, df)
    new = design.transform(df.drop(columns=["y", "my y"]))
    np.testing.assert_allclose(new.X.to_numpy(dtype=float), design.X.to_numpy(dtype=float))


def test_integer_ids_read_as_float_are_the_same_levels():
    d = load("sleepstudy")
    design = build_design("Reaction ~ Days + (1 | Subject)", d.assign(Subject=d.Subject * 1.0))
    assert "309" in list(design.blocks[0].levels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "levels not seen in training" warning
        new = design.transform(d.head(12))
    ref = build_design("Reaction ~ Days + (1 | Subject)", d).transform(d.head(12))
    assert (new.Z != ref.Z).nnz == 0


def test_one_level_factor_in_the_fixed_part_is_refused():
    df = pd.DataFrame({"y": np.arange(10.0), "x": np.arange(10.0) ** 2, "one": "A",
                       "g": np.repeat([0, 1], 5)})
    with pytest.raises(ValueError, match=r"'one' \(its only level is 'A'\) give no column"):
        build_design("y ~ x + one + (1 | g)", df)
