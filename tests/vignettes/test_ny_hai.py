"""vignettes/ny_hai.py in fast mode: the certified k = 4 fit, blocked CV's k = 0, the 2x2 tables."""

from __future__ import annotations

import re


def two_by_two(out: str, name: str) -> dict[str, list[int]]:
    """The crosstab printed under ``name``: row label -> [state flagged, not, total]."""
    block = out[out.index(name):].splitlines()
    rows = {}
    for line in block[1:6]:
        m = re.match(r"^(flagged|not|total)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line)
        if m:
            rows[m.group(1)] = [int(v) for v in m.groups()[1:]]
    return rows


def test_ny_hai(run_vignette):
    md, out = run_vignette("ny_hai")
    assert "122 hospitals" in out
    assert "state flags: {'-': 118, 'lower': 3, 'higher': 1}" in out
    # the k = 4 fit is certified and selects 4 hospitals
    assert "status: optimal" in out
    # one row per hospital: cluster-blocked CV cannot reward a hospital effect
    assert "k_1se = 0" in out
    tab = two_by_two(out, "mixmio k=4")
    assert set(tab) == {"flagged", "not", "total"}
    for a, b, total in tab.values():
        assert a + b == total
    assert [tab["flagged"][i] + tab["not"][i] for i in range(3)] == tab["total"]
    assert tab["total"] == [4, 118, 122]
    assert tab["flagged"][2] == 4  # mixmio flags exactly k hospitals
    assert 0 <= tab["flagged"][0] <= 4
    top = two_by_two(out, "lme4 top-4 |mode|")
    assert top["total"] == [4, 118, 122] and top["flagged"][2] == 4
    assert "Bootstrap significance report" in out
    assert "stability selection cannot flag anything here" in out
    assert "![figure" in md
