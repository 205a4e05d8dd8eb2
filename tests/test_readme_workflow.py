"""The README's workflow block (path, CV choice of k, prediction for a new school) runs as
written and gives what its comments say."""

import re
from pathlib import Path

import matplotlib
import pandas as pd

import mixmio

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(title: str) -> str:
    text = README.read_text()
    section = text[text.index(title):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_workflow_block_runs():
    ns = {"mixmio": mixmio, "data": mixmio.datasets.load("exam")}
    exec(_block("## Choosing k, validating by cluster"), ns)  # noqa: S102 - our own README
    path, cv, fit, new = ns["path"], ns["cv"], ns["fit"], ns["new"]
    assert len(path.table) == 13 and (path.table["status"] == "optimal").all()
    assert cv.rule == "1se" and cv.fit is fit and fit.k == {"1|school": cv.caps[cv.k_best][
        "1|school"]}
    pred = fit.predict(new, new_levels="soft")
    assert isinstance(pred, pd.Series) and pred.index.equals(new.index)
    assert pred.notna().all()
