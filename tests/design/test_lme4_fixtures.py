"""X and Z against lme4's model matrices (tests/fixtures/lme4), matched by (group, level, term)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixmio.datasets import load
from mixmio.design import build_design

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lme4"
CASES = sorted(p.name[: -len("_formula.txt")] for p in FIXTURES.glob("*_formula.txt"))


def _lme4_name(name: str) -> str:
    """formulaic column name -> R's (Intercept), recipeB, recipeB:temp."""
    if name == "Intercept":
        return "(Intercept)"
    parts = []
    for piece in name.split(":"):
        if "[" in piece:
            var, level = piece[:-1].split("[", 1)
            piece = var + level.removeprefix("T.")
        parts.append(piece)
    return ":".join(parts)


def _case(case):
    _, dataset, formula = (FIXTURES / f"{case}_formula.txt").read_text().strip().splitlines()[:3]
    return dataset, formula


@pytest.mark.parametrize("case", CASES)
def test_fixed_design_matches_lme4(case):
    dataset, formula = _case(case)
    design = build_design(formula, load(dataset))
    ref = pd.read_csv(FIXTURES / f"{case}_X.csv")
    ours = design.X.rename(columns=_lme4_name)
    assert sorted(ours.columns) == sorted(ref.columns)
    np.testing.assert_allclose(ours[ref.columns].to_numpy(), ref.to_numpy(), atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_random_design_matches_lme4(case):
    dataset, formula = _case(case)
    design = build_design(formula, load(dataset))
    ref = pd.read_csv(FIXTURES / f"{case}_Z.csv", dtype={"level": str})
    Z = design.Z.tocoo()
    cols = design.z_columns.iloc[Z.col]
    ours = pd.DataFrame({
        "group": cols["group"].to_numpy(), "level": cols["level"].astype(str).to_numpy(),
        "term": [_lme4_name(t) for t in cols["term"]], "obs": Z.row + 1, "value": Z.data})
    key = ["group", "level", "term", "obs"]
    ours = ours.sort_values(key).reset_index(drop=True)
    ref = ref[key + ["value"]].sort_values(key).reset_index(drop=True)
    assert len(ours) == len(ref)
    pd.testing.assert_frame_equal(ours[key], ref[key], check_dtype=False)
    np.testing.assert_allclose(ours["value"], ref["value"], atol=1e-12)
    # same number of random-effect columns as lme4 (no extra all-zero columns)
    assert design.Z.shape[1] == ref.groupby(["group", "level", "term"]).ngroups
