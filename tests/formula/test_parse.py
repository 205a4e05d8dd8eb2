import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmio.formula import FormulaError, RandomTerm, parse_formula


def terms(f):
    return [(t.expr, t.group, t.correlated) for t in parse_formula(f).random]


@pytest.mark.parametrize("formula, expected", [
    ("y ~ x + (1 | g)", [("1", "g", True)]),
    ("y ~ x + (x | g)", [("x", "g", True)]),
    ("y ~ (0 + x | g)", [("0 + x", "g", True)]),
    ("y ~ (-1 + x | g)", [("-1 + x", "g", True)]),
    ("y ~ (x || g)", [("1", "g", False), ("0 + x", "g", False)]),
    ("y ~ (0 + x + z || g)", [("0 + x", "g", False), ("0 + z", "g", False)]),
    ("y ~ (1 | a) + (1 | b)", [("1", "a", True), ("1", "b", True)]),
    ("y ~ (1 | a/b)", [("1", "a", True), ("1", "a:b", True)]),
    ("y ~ (1 | a/b/c)", [("1", "a", True), ("1", "a:b", True), ("1", "a:b:c", True)]),
    ("y ~ (1 | a:b)", [("1", "a:b", True)]),
    ("y ~ (0 + f | g)", [("0 + f", "g", True)]),
    ("y ~ age + (1 + I(age**2) | subject)", [("1 + I(age**2)", "subject", True)]),
    ("y ~ (x | g/h)", [("x", "g", True), ("x", "g:h", True)]),
])
def test_random_terms(formula, expected):
    assert terms(formula) == expected


@pytest.mark.parametrize("formula, fixed", [
    ("y ~ x + (1 | g)", "x"),
    ("y ~ (1 | g)", "1"),
    ("y ~ 0 + x + (1 | g)", "0 + x"),
    ("y ~ x - 1 + (1 | g)", "x - 1"),
    ("y ~ -1 + x", "- 1 + x"),
    ("y ~ a*b + C(f) + I(x**-1) + np.log(z) + (1 | g)", "a*b + C(f) + I(x**-1) + np.log(z)"),
    ("y ~ 1e-5 + x", "1e-5 + x"),
    ("y ~ (a + b)**2 + (1|g)", "(a + b)**2"),
])
def test_fixed_part(formula, fixed):
    assert parse_formula(formula).fixed == fixed


def test_offset_and_response():
    spec = parse_formula("np.log(y) ~ x + offset(np.log(n)) + (1 | g)")
    assert spec.response == "np.log(y)"
    assert spec.offsets == ("np.log(n)",)
    assert spec.fixed == "x"
    assert spec.fixed_formula == "np.log(y) ~ x"


@pytest.mark.parametrize("formula, position", [
    ("y ~ x + (1 | g", 8),
    ("y ~ x + + z", 8),
    ("y ~ x +", 7),
    ("y ~ x + (1 | )", 13),
    ("~ x", 0),
    ("y ~ ", 4),
    ("y ~ (1 | a + b)", 11),
    ("y ~ (1 | g | h)", 11),
    ("y ~ x ~ z", 6),
    ("y ~ x)", 5),
    ("y ~ x - (1 | g)", 8),
])
def test_syntax_errors_show_position(formula, position):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    err = info.value
    assert err.position == position
    lines = str(err).splitlines()
    assert lines[1].strip() == formula.strip()
    assert lines[2].index("^") - lines[1].index(formula[0]) == position


names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda s: s not in {"if", "in", "is", "or", "and", "not", "for", "def", "del", "as"})
exprs = st.one_of(
    st.just("1"), names, names.map(lambda v: f"0 + {v}"), names.map(lambda v: f"1 + {v}"),
    st.tuples(names, names).map(lambda t: f"{t[0]} + {t[1]}"),
    names.map(lambda v: f"1 + I({v}**2)"))
groups = st.one_of(names, st.tuples(names, names).map(":".join))


@settings(max_examples=150, deadline=None)
@given(resp=names, fixed=st.lists(names, max_size=3),
       rand=st.lists(st.tuples(exprs, groups), min_size=1, max_size=3))
def test_round_trip(resp, fixed, rand):
    pieces = fixed + [f"({e} | {g})" for e, g in rand]
    spec = parse_formula(f"{resp} ~ " + " + ".join(pieces))
    assert spec.response == resp
    assert spec.fixed == (" + ".join(fixed) if fixed else "1")
    assert spec.random == tuple(RandomTerm(e, g) for e, g in rand)
    # rendering the parsed terms back gives the same spec
    again = parse_formula(f"{resp} ~ {spec.fixed} + " + " + ".join(f"({t})" for t in spec.random))
    assert again.random == spec.random


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="yx~+-()|/:*01 gab.I^", max_size=25))
def test_malformed_input_raises_formula_error_only(text):
    try:
        spec = parse_formula(text)
    except FormulaError as err:
        assert 0 <= err.position <= len(text)
    else:
        assert "~" in text and spec.response
