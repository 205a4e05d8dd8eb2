"""The students vignette (fast mode): the fit's status, the concordance table, the lme4 CSV."""

from __future__ import annotations

import re


def test_students(run_vignette):
    md, out = run_vignette("students")
    assert "382 students, 2292 grades" in out
    status = re.search(r"status=(\w+)  objective=\S+  bound=\S+  gap=([\d.]+)%", out)
    assert status and status.group(1) in {"optimal", "time_limit"}
    if status.group(1) == "time_limit":
        assert "NOTE: not proven optimal" in out
    # the 3 x 3 concordance table: rows and columns add up to the 382 students
    rows = {}
    for name in ("raw top 10%", "raw middle", "raw bottom 10%", "total"):
        m = re.search(re.escape(name) + r"\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out)
        assert m, name
        rows[name] = [int(v) for v in m.groups()]
    for plus, zero, minus, total in rows.values():
        assert plus + zero + minus == total
    assert rows["total"][3] == 382
    assert [sum(r[i] for n, r in rows.items() if n != "total") for i in range(4)] == rows["total"]
    assert 0 < rows["total"][0] + rows["total"][2] <= 76  # at most k = 76 students flagged
    only = re.search(r"only mixmio flags (\d+) students", out)
    assert only and int(only.group(1)) > 0
    assert re.search(r"only the raw ranking flags (\d+) students", out)
    assert "lme4 1.1" in out and "lme4 top 76 |mode|" in out
    assert re.search(r"(\d+) of \1 replicates ok", out)
    assert md.count("![figure") >= 2
