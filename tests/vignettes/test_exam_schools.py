"""vignettes/exam_schools.py in fast mode: the certified path, the two CVs, the lme4 comparison."""

from __future__ import annotations

import re


def test_exam_schools(run_vignette):
    md, out = run_vignette("exam_schools")
    assert "4,059 students in 65 schools" in out
    path_rows = re.findall(r"^\s*(\d+)\s+\S+\s+\S+\s+(optimal|time_limit|gap_limit)\s", out,
                           flags=re.M)
    assert path_rows and all(status == "optimal" for _, status in path_rows)
    # blocked CV (new schools) with the 1-SE rule takes the smallest cap
    assert out.count("k_1se = ") == 2
    assert "k_min" in out
    first_cv = out[out.index("k_min = "):].splitlines()[0]
    assert first_cv.endswith("k_1se = 0")
    m = re.search(r"at the chosen k = (\d+): both (\d+), mixmio only (\d+), lme4 only (\d+), "
                  r"neither (\d+) \(total (\d+)\)", out)
    assert m
    k, both, only_mio, only_lme4, neither, total = map(int, m.groups())
    assert k > 0  # within-school CV finds schools that differ
    assert both + only_mio == k and both + only_lme4 == k
    assert both + only_mio + only_lme4 + neither == total == 65
    assert "Bootstrap significance report" in out
    assert "![figure" in md
