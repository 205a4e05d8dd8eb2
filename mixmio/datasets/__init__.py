"""Small real data sets shipped with mixmio (provenance in ``SOURCES.md`` beside them).

>>> from mixmio.datasets import load
>>> load("sleepstudy").shape
(180, 3)
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

_FILES = {
    "sleepstudy": "sleepstudy.csv",
    "dyestuff": "Dyestuff.csv",
    "penicillin": "Penicillin.csv",
    "cake": "cake.csv",
    "pastes": "Pastes.csv",
    "exam": "Exam.csv",
    "ny_hai": "ny_hai_2016.csv",
    "mice_protein": "mice_protein.csv",
}

# UCI Student Performance: the attributes on which the UCI's own R snippet merges the Math and
# the Portuguese file (they describe the student and are equal in both files).
STUDENT_KEYS = ["school", "sex", "age", "address", "famsize", "Pstatus", "Medu", "Fedu",
                "Mjob", "Fjob", "reason", "nursery", "internet"]
_STUDENT_NUMERIC = ["age", "Medu", "Fedu", "traveltime", "studytime", "failures", "famrel",
                    "freetime", "goout", "Dalc", "Walc", "health", "absences"]
# two-level attributes: column -> the level coded 1
_STUDENT_BINARY = {"school": "MS", "sex": "M", "address": "U", "famsize": "LE3", "Pstatus": "T",
                   "schoolsup": "yes", "famsup": "yes", "paid": "yes", "activities": "yes",
                   "nursery": "yes", "higher": "yes", "internet": "yes", "romantic": "yes"}
# nominal attributes: column -> reference level (no dummy)
_STUDENT_NOMINAL = {"Mjob": "at_home", "Fjob": "at_home", "reason": "course",
                    "guardian": "father"}


def available() -> list[str]:
    """Names accepted by :func:`load`.

    Examples
    --------
    >>> available()  # doctest: +NORMALIZE_WHITESPACE
    ['cake', 'dyestuff', 'exam', 'mice_protein', 'ny_hai', 'pastes', 'penicillin',
     'sleepstudy', 'students']
    """
    return sorted([*_FILES, "students"])


def _read(filename: str, **kwargs) -> pd.DataFrame:
    with resources.files(__package__).joinpath(filename).open("r") as fh:
        return pd.read_csv(fh, **kwargs)


def _students() -> pd.DataFrame:
    math = _read("student-mat.csv", sep=";")
    por = _read("student-por.csv", sep=";")
    wide = math.merge(por, on=STUDENT_KEYS, suffixes=("_math", "_portuguese"))
    wide.insert(0, "student", [f"S{i + 1:03d}" for i in range(len(wide))])
    per_subject = [c for c in math.columns if c not in STUDENT_KEYS]
    records = []
    for subject in ("math", "portuguese"):
        rec = wide[["student", *STUDENT_KEYS]].copy()
        for col in per_subject:
            rec[col] = wide[f"{col}_{subject}"]
        rec.insert(1, "subject", subject)
        records.append(rec)
    rec = pd.concat(records, ignore_index=True)  # one row per student and subject
    for col in _STUDENT_NUMERIC:
        x = rec[col].astype(float)
        rec[col] = (x - x.mean()) / x.std()
    for col, level in _STUDENT_BINARY.items():
        name = col if level == "yes" else f"{col}_{level}"
        rec[name] = (rec.pop(col) == level).astype(int)
    for col, ref in _STUDENT_NOMINAL.items():
        values = rec.pop(col)
        for level in sorted(set(values) - {ref}):
            rec[f"{col}_{level}"] = (values == level).astype(int)
    grades = rec[["G1", "G2", "G3"]].astype(int)
    rec = rec.drop(columns=["G1", "G2", "G3"])
    long = pd.concat([rec.assign(period=p, grade=grades[f"G{p}"]) for p in (1, 2, 3)],
                     ignore_index=True)
    order = long.sort_values(["student", "subject", "period"], kind="stable").index
    front = ["student", "subject", "period", "grade"]
    covariates = [c for c in long.columns if c not in front]
    return long.loc[order, front + covariates].reset_index(drop=True)


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set by name (case-insensitive).

    Parameters
    ----------
    name : one of :func:`available` (``"sleepstudy"``, ``"dyestuff"``, ``"penicillin"``,
        ``"cake"``, ``"pastes"``, ``"exam"``, ``"ny_hai"``, ``"students"``,
        ``"mice_protein"``); provenance in ``SOURCES.md``.

    Returns
    -------
    pandas.DataFrame
        A fresh copy, read from the shipped CSV file(s).

    Notes
    -----
    ``"students"`` (UCI Student Performance, Cortez and Silva 2008) is built as the seed paper
    builds it: the two UCI files (Math, Portuguese) are merged on the 13 student attributes of
    the UCI's own R snippet (``STUDENT_KEYS``: school, sex, age, address, famsize, Pstatus, Medu,
    Fedu, Mjob, Fjob, reason, nursery, internet), giving 382 students. The merge is not a clean
    one-to-one match: 16 of the 382 pairs share all 13 attributes with another pair (12 Math and
    8 Portuguese records appear in two pairs); they are kept, as in the paper and the UCI note.
    The frame is long, one row per student, subject and grading period (382 x 2 x 3 = 2,292
    rows), ready for a formula such as ``grade ~ subject + C(period) + ... + (1 | student)``:

    - ``student`` ("S001" .. "S382", in the Math file's order), ``subject`` ("math" or
      "portuguese"), ``period`` (1, 2, 3 for the grades G1, G2, G3), ``grade`` (0 to 20; a 0
      mostly means that the student did not sit that period's exam, as in the source);
    - standardised (mean 0, SD 1 over the 764 student-subject records): age, Medu, Fedu,
      traveltime, studytime, failures, famrel, freetime, goout, Dalc, Walc, health, absences;
    - 0/1 dummies: school_MS, sex_M, address_U, famsize_LE3, Pstatus_T, schoolsup, famsup,
      paid, activities, nursery, higher, internet, romantic (1 = "yes"), and one dummy per
      non-reference level of Mjob and Fjob (reference "at_home"), reason (reference "course")
      and guardian (reference "father"), named ``Mjob_health`` etc.

    Attributes outside the 13 keys (guardian, traveltime, studytime, failures, schoolsup,
    famsup, paid, activities, higher, romantic, famrel, freetime, goout, Dalc, Walc, health,
    absences) are recorded per subject in the source and may differ between a student's two
    files (``paid`` and ``absences`` often do): each row carries its own subject's values.
    There are no missing values.

    ``"mice_protein"`` (UCI Mice Protein Expression, Higuera et al. 2015) is the source's long
    frame: 1,080 rows, 72 mice x 15 replicate measurements, with ``mouse`` (the MouseID before
    ``_``), ``replicate`` (1-15, after ``_``), the 77 protein levels (``DYRK1A_N`` ..
    ``CaNA_N``, stored to 6 significant digits), ``Genotype``, ``Treatment``, ``Behavior`` and
    ``class`` (constant within a mouse). Missing protein values are kept as NaN (552 rows from
    37 mice are complete cases). ``ARC_N`` and ``pS6_N`` hold identical values in the source
    file, so a design with both columns is singular.

    Examples
    --------
    >>> from mixmio.datasets import load
    >>> data = load("SleepStudy")
    >>> data.shape, list(data.columns)
    ((180, 3), ['Reaction', 'Days', 'Subject'])
    >>> students = load("students")
    >>> students.shape, students["student"].nunique()
    ((2292, 43), 382)
    >>> mice = load("mice_protein")
    >>> mice.shape, mice["mouse"].nunique()
    ((1080, 83), 72)
    """
    key = name.lower()
    if key == "students":
        return _students()
    if key not in _FILES:
        raise ValueError(f"unknown data set {name!r}; available: {available()}")
    if key == "mice_protein":
        return _read(_FILES[key], dtype={"mouse": str})
    return _read(_FILES[key])
