"""The shipped data sets: shapes, identifiers and the students / mice_protein constructions."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from mixmio.datasets import STUDENT_KEYS, available, load


@pytest.mark.parametrize("name", available())
def test_every_listed_name_loads(name):
    data = load(name)
    assert isinstance(data, pd.DataFrame) and len(data) > 0
    assert load(name.upper()).equals(data)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown data set"):
        load("nope")


def test_students_shape_and_ids():
    s = load("students")
    assert s.shape == (2292, 43)
    assert s["student"].nunique() == 382
    assert s.groupby("student").size().eq(6).all()  # 2 subjects x 3 periods
    assert set(s["subject"]) == {"math", "portuguese"} and set(s["period"]) == {1, 2, 3}
    assert not s.isna().any().any()  # the paper's data have no missing values
    assert s["grade"].between(0, 20).all()


def test_students_covariates_standardised_and_dummy_coded():
    s = load("students")
    records = s[s["period"] == 1]  # one row per student and subject
    for col in ["age", "Medu", "Fedu", "studytime", "failures", "absences", "health"]:
        assert abs(records[col].mean()) < 1e-12 and records[col].std() == pytest.approx(1)
    for col in ["school_MS", "sex_M", "Pstatus_T", "paid", "higher", "Mjob_teacher",
                "reason_home", "guardian_other"]:
        assert set(records[col]) <= {0, 1}
    assert not any(c in s.columns for c in ["Mjob", "Mjob_at_home", "reason_course", "G3"])
    # every column but the identifiers is numeric, so a formula can use them directly
    assert all(np.issubdtype(s[c].dtype, np.number) for c in s.columns[2:])


def test_students_match_the_source_files():
    raw = pd.read_csv(resources.files("mixmio.datasets").joinpath("student-mat.csv"), sep=";")
    assert len(raw) == 395
    s = load("students")
    math = s[s["subject"] == "math"].pivot(index="student", columns="period", values="grade")
    # the first student of the merge is the Math file's first row that has a Portuguese twin
    por = pd.read_csv(resources.files("mixmio.datasets").joinpath("student-por.csv"), sep=";")
    merged = raw.merge(por, on=STUDENT_KEYS, suffixes=("_m", "_p"))
    assert len(merged) == 382
    assert (math[1].to_numpy() == merged["G1_m"].to_numpy()).all()
    assert (math[3].to_numpy() == merged["G3_m"].to_numpy()).all()
    port = s[s["subject"] == "portuguese"].pivot(index="student", columns="period",
                                                  values="grade")
    assert (port[2].to_numpy() == merged["G2_p"].to_numpy()).all()


def test_students_subject_specific_attributes():
    s = load("students")
    paid = s[s["period"] == 1].pivot(index="student", columns="subject", values="paid")
    assert (paid["math"] != paid["portuguese"]).sum() == 171  # measured on the merged source
    keys = s[s["period"] == 1].pivot(index="student", columns="subject", values="sex_M")
    assert (keys["math"] == keys["portuguese"]).all()  # a merge key: equal in both files


def test_mice_protein_shape_and_ids():
    m = load("mice_protein")
    assert m.shape == (1080, 83)
    assert m["mouse"].nunique() == 72
    assert m.groupby("mouse").size().eq(15).all()
    assert m.groupby("mouse")["class"].nunique().eq(1).all()
    proteins = [c for c in m.columns if c.endswith("_N")]
    assert len(proteins) == 77
    assert not m[["mouse", "replicate", "Genotype", "Treatment", "Behavior", "class"]
                 ].isna().any().any()
    complete = m.dropna()
    assert len(complete) == 552 and complete["mouse"].nunique() == 37  # the paper's n = 552
    assert m["mouse"].map(type).eq(str).all()
