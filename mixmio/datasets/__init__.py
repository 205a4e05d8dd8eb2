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
}


def available() -> list[str]:
    """Names accepted by :func:`load`.

    Examples
    --------
    >>> available()
    ['cake', 'dyestuff', 'exam', 'ny_hai', 'pastes', 'penicillin', 'sleepstudy']
    """
    return sorted(_FILES)


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set by name (case-insensitive).

    Parameters
    ----------
    name : one of :func:`available` (``"sleepstudy"``, ``"dyestuff"``, ``"penicillin"``,
        ``"cake"``, ``"pastes"``, ``"exam"``, ``"ny_hai"``); provenance in ``SOURCES.md``.

    Returns
    -------
    pandas.DataFrame
        A fresh copy, read from the shipped CSV file.

    Examples
    --------
    >>> from mixmio.datasets import load
    >>> data = load("SleepStudy")
    >>> data.shape, list(data.columns)
    ((180, 3), ['Reaction', 'Days', 'Subject'])
    """
    key = name.lower()
    if key not in _FILES:
        raise ValueError(f"unknown data set {name!r}; available: {available()}")
    with resources.files(__package__).joinpath(_FILES[key]).open("r") as fh:
        return pd.read_csv(fh)
