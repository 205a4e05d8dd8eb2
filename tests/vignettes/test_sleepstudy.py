"""vignettes/sleepstudy.py in fast mode: CV choice, a certified fit with exact zeros, lme4."""

from __future__ import annotations

import re


def test_sleepstudy(run_vignette):
    md, out = run_vignette("sleepstudy")
    assert "180 rows, 18 subjects x 10 days" in out
    assert re.search(r"k_min = \(\d+, \d+\), k_1se = \(\d+, \d+\)", out)
    assert "status: optimal" in out  # the fit at the chosen caps is certified
    m = re.search(r"mixmio: (\d+) of 36 deviations exactly 0; lme4: (\d+) of 36", out)
    assert m
    n_zero, lme4_zero = int(m.group(1)), int(m.group(2))
    assert 0 < n_zero < 36  # some subjects flagged, the rest exactly zero
    assert lme4_zero == 0  # lme4's modes are shrunk, never zero
    assert "(Intercept): lme4 |mode / condSD| > 1.96" in out
    assert "Bootstrap significance report" in out
    assert "Flagged clusters" in out
    assert md.count("![figure") >= 4
