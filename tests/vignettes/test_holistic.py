"""vignettes/holistic.py in fast mode: constrained best subset (mio_lm) against LassoCV."""

from __future__ import annotations

import re


def _block(out: str, header: str) -> list[str]:
    """The lines of a printed table from its header line to the next blank-free break."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split() == header.split())
    rows = []
    for ln in lines[start + 1:]:
        if not ln.strip() or ln.startswith(("squared", "LassoCV", "fold", "minimum")):
            break
        rows.append(ln)
    return rows


def test_holistic(run_vignette):
    md, out = run_vignette("holistic")
    # the data and the compiled constraints
    assert "649 students, 30 attributes" in out
    m = re.search(r"(\d+) candidate columns; the largest feasible support k_max = (\d+)", out)
    assert m and int(m.group(2)) < int(m.group(1))
    assert "('Medu', 'Fedu'" in out and "('Dalc', 'Walc'" in out
    # every CV fold's fit and the chosen fit carry a certificate
    folds = re.search(r"fold fits: \{([^}]*)\}", out).group(1)
    counts = dict(re.findall(r"'(\w+)': (\d+)", folds))
    assert sum(int(v) for v in counts.values()) >= 2
    m = re.search(r"certificate: status=(\w+), objective=([\d.]+), bound=([\d.]+)", out)
    assert m and m.group(1) in ("optimal", "time_limit", "gap_limit")
    assert float(m.group(3)) <= float(m.group(2)) + 1e-6
    k_min = int(re.search(r"minimum CV error at k = (\d+)", out).group(1))
    selected = re.search(r"mio_lm keeps (\d+):", out)
    assert selected and 1 <= int(selected.group(1)) <= k_min
    # the bootstrap report and its statuses
    assert "Best-subset bootstrap report" in out and "replicate statuses:" in out
    # the binding table: one row per relaxation, each a yes/no verdict with a status
    rows = _block(out, "k dropped objective status binds enters leaves")
    verdicts = [r for r in rows if "(nothing)" not in r]
    assert len(verdicts) >= 3
    assert all(re.search(r"\s(yes|no)\s", r) for r in verdicts)
    # LassoCV's choice against the rules, and the held-out comparison
    lasso = int(re.search(r"LassoCV keeps (\d+) columns", out).group(1))
    assert lasso >= 1
    assert "factors it splits" in out and "pairs with |corr| > 0.6" in out
    held = _block(out, "model RMSE MAE R2")
    assert len(held) >= 4
    assert all(float(r.split()[-3]) > 0 for r in held)  # RMSE
    names = [r.strip() for r in held]
    for model in ("mean of training G3", "mio_lm, k =", "LassoCV (", "OLS, all"):
        assert any(n.startswith(model) for n in names), model
    # a figure for the CV curves, the selection frequencies and the coefficients
    assert md.count("![figure") >= 3
