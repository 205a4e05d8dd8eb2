"""Formula mistakes that formulaic used to report (or crash on) come back as FormulaError with
a caret in the user's formula, before any data is touched."""

import pytest

import mixmio
from mixmio.formula import FormulaError


@pytest.mark.parametrize("formula,at", [
    ("Reaction ~ Days + 1|Subject", "|"),
    ("Reaction ~ Days * (1|Subject)", "|"),
    ("Reaction ~ (1|Subject) (1|Subject)", "|"),
    ("Reaction ~ (Days + | Subject)", "| Subject"),  # the missing term, before "|"
])
def test_misplaced_bar_and_broken_terms(formula, at):
    d = mixmio.datasets.load("sleepstudy")
    with pytest.raises(FormulaError) as err:
        mixmio.build_design(formula, d)
    assert formula[err.value.position:].startswith(at)


def test_offset_with_a_space_is_an_offset():
    spec = mixmio.formula.parse_formula("y ~ x + offset (log(n)) + (1 | g)")
    assert spec.offsets == ("log(n)",)
