"""The mice_protein vignette (fast mode): the split, statuses, counts against OLS, lme4's CSV."""

from __future__ import annotations

import re


def test_mice_protein(run_vignette):
    md, out = run_vignette("mice_protein")
    assert "552 rows from 37 mice" in out
    assert "ARC_N = pS6_N" in out  # the duplicated column is found and reported
    assert re.search(r"test: \d+ rows from 10 held-out mice", out)
    statuses = re.search(r"mixmio statuses: \{([^}]*)\}", out)
    assert statuses
    assert set(re.findall(r"'(\w+)'", statuses.group(1))) <= {"optimal", "time_limit"}
    n_targets = None
    for mode in ("population", "soft", "hard"):
        m = re.search(rf"mixmio {mode}\s+beats OLS on held-out mice for (\d+) of (\d+)", out)
        assert m and int(m.group(1)) <= int(m.group(2))
        n_targets = int(m.group(2))
    assert n_targets and n_targets >= 1
    assert re.search(r"mixmio \(known mice\) beats OLS for \d+ of \d+ proteins", out)
    assert "RankDeficientError" in out and "ARC_N = 1*pS6_N" in out  # mixmio names the alias
    assert "same held-out mice as above: True" in out
    assert re.search(r"k chosen by blocked CV \(1-SE rule\) = \d+", out)
    assert re.search(r"(\d+) of \1 replicates ok", out)
    assert "Sparse linear mixed model" in out
    assert md.count("![figure") >= 2
