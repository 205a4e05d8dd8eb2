"""Quoted names: operators inside backticks or string literals are part of the name, in every
scanner (tilde, top-level split, bars, nesting, interaction grouping)."""

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.formula import FormulaError, parse_formula


@pytest.mark.parametrize("formula, response, fixed, groups", [
    ("y ~ x + (1 | `school id`)", "y", "x", [("school id",)]),
    ("y ~ x + (1 | `a-b`/`c:d`)", "y", "x", [("a-b",), ("a-b", "c:d")]),
    ("y ~ x + (1 | `a/b`)", "y", "x", [("a/b",)]),
    ("y ~ `x|1` + (1 | g)", "y", "`x|1`", [("g",)]),
    ("`y~z` ~ x + (1 | g)", "`y~z`", "x", [("g",)]),
    ("y ~ `x+(` + (1 | g)", "y", "`x+(`", [("g",)]),
    ("y ~ C(f, levels=['a|b', 'c\\'d']) + (1 | g)", "y", "C(f, levels=['a|b', 'c\\'d'])",
     [("g",)]),
])
def test_quoted_names_are_not_operators(formula, response, fixed, groups):
    spec = parse_formula(formula)
    assert spec.response == response
    assert spec.fixed == fixed
    assert [t.group_vars for t in spec.random] == groups


@pytest.mark.parametrize("formula, needle", [
    ("y ~ x + (1 | a-b)", "unsupported operator '-'"),
    ("y ~ x + (1 | ``)", "an empty name"),
    ("y ~ x + (1 | `g)", "unterminated quote"),
    ("y ~ x + (1 | g`)", "unterminated quote"),
])
def test_bad_quoted_groups(formula, needle):
    with pytest.raises(FormulaError, match=needle):
        parse_formula(formula)


def test_fit_with_quoted_columns():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 10)
    df = pd.DataFrame({"my y": rng.normal(size=200) + np.where(g < 3, 2.0, 0.0),
                       "x-1": rng.normal(size=200),
                       "school-id": [f"s{i}" for i in g], "c:d": g % 2})
    fit = mixmio.mio_lmer("`my y` ~ `x-1` + (1 | `school-id`)", df, k=3)
    assert fit.status == "optimal"
    assert sorted(fit.selected["level"]) == ["s0", "s1", "s2"]
    fit2 = mixmio.mio_lmer("`my y` ~ `x-1` + (1 | `school-id`:`c:d`)", df, k=3)
    assert fit2.status == "optimal"
    assert {lv.split(":")[0] for lv in fit2.selected["level"]} == {"s0", "s1", "s2"}


def test_quoted_group_names_are_unquoted_in_labels_caps_and_resampling():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 8)
    df = pd.DataFrame({"y": rng.normal(size=96) + np.where(g < 2, 3.0, 0.0),
                       "my x": rng.normal(size=96), "my group": [f"g{i}" for i in g]})
    fit = mixmio.mio_lmer("y ~ `my x` + (1 + `my x` | `my group`)", df,
                          k={"1|my group": 2, "my x|my group": 1})
    assert fit.design.column_labels == ["1|my group", "my x|my group"]
    assert set(fit.selected["group"]) == {"my group"}
    body = [ln for ln in str(fit.summary()).splitlines() if not ln.startswith("Formula:")]
    assert not any("`" in ln for ln in body)  # only the formula line shows the user's quoting
    boot = fit.bootstrap(B=5, scheme="cluster", cluster_by="my group", random_state=0)
    assert boot.n_ok == 5
    np.testing.assert_allclose(fit.predict(df), fit.fitted)


def test_dot_and_doubled_parentheses():
    with pytest.raises(FormulaError, match=r"'\.' \(every other column\) is not supported"):
        parse_formula("Reaction ~ . + (1 | Subject)")
    spec = parse_formula("y ~ x + ((1 | g)) + ( ((0 + x | h)))")
    assert [str(t) for t in spec.random] == ["1 | g", "0 + x | h"]
    with pytest.raises(FormulaError, match="nothing before"):
        parse_formula("y ~ x + (( | g))")


@pytest.mark.parametrize("formula", ["y ~ x + (. | g)", "y ~ x + .:x + (1 | g)",
                                     "y ~ x * . + (1 | g)"])
def test_dot_is_refused_anywhere(formula):
    with pytest.raises(FormulaError, match="every other column"):
        parse_formula(formula)


def test_a_decimal_point_is_not_a_dot_term():
    assert parse_formula("y ~ I(x * .5) + (1 | g)").fixed == "I(x * .5)"


@pytest.mark.parametrize("key", ["1|`my subj`", "1 | my subj", "1|my subj", "1 | `my subj`"])
def test_cap_keys_may_be_written_as_in_the_formula(key):
    d = mixmio.datasets.load("sleepstudy").rename(columns={"Subject": "my subj"})
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | `my subj`)", d, k={key: 2})
    assert fit.k == {"1|my subj": 2}
