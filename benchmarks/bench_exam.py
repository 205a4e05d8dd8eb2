"""Exam (mlmRev, 65 schools): random-intercept models with cluster-level covariates.

The engine's grouped exact path (``mixmio-bnb+groups``, benchmarks/ENGINE.md section 6) takes
models whose cluster-level columns are a school-level factor (``schgend``, ``type``) and at
most one continuous school-level covariate (``schavg``).  Side by side in one run:

- ``mio_lmer`` as users call it (``solver="auto"``: the grouped path, with the enumeration
  race), median of ``--repeats`` runs (one run when the first takes over 5 s);
- the generic box branch and bound alone (grouped path and enumeration switched off), the
  engine the same models went to before the grouped path, one run with a 30 s limit;
- lme4's ``lmer`` on the same formula (the classical model, REML), when ``Rscript`` with lme4
  is present.

Writes ``benchmarks/results/exam.md`` and ``.csv``.  Usage:
``python benchmarks/bench_exam.py [--repeats 3] [--ks 6 10 20] [--no-generic] [--no-lme4]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import mixmio  # noqa: E402
from _common import write_tables  # noqa: E402

FORMULAS = [
    "normexam ~ standLRT + schgend + (1 | school)",
    "normexam ~ standLRT + sex + schgend + (1 | school)",
    "normexam ~ standLRT + sex + type + (1 | school)",
    "normexam ~ schgend + schavg + (1 | school)",
    "normexam ~ standLRT + schgend + schavg + (1 | school)",
    "normexam ~ standLRT + type + schavg + (1 | school)",
    "normexam ~ standLRT + sex + schgend + schavg + (1 | school)",
]


def fit(formula, data, k, time_limit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        f = mixmio.mio_lmer(formula, data, k=k, time_limit=time_limit)
        return time.perf_counter() - t, f


def run_default(formula, data, k, repeats):
    times, f = [], None
    for _ in range(repeats):
        sec, f = fit(formula, data, k, 120.0)
        times.append(sec)
        if sec > 5.0:
            break
    times.sort()
    return times[len(times) // 2], len(times), f


def run_generic(formula, data, k):
    import mixmio.solvers.lmm.intercept as ie

    saved = ie.detect_groups, ie.ENUM_SECONDS
    ie.detect_groups, ie.ENUM_SECONDS = (lambda st: None), -1.0
    try:
        return fit(formula, data, k, 30.0)
    finally:
        ie.detect_groups, ie.ENUM_SECONDS = saved


def run_lme4(formulas, data):
    """Median of 3 lmer fits per formula (seconds), or {} without Rscript + lme4."""
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as d:
        csv = Path(d) / "exam.csv"
        data.to_csv(csv, index=False)
        lines = ["suppressMessages(library(lme4))", f"d <- read.csv('{csv}')",
                 "for (v in c('school','schgend','sex','type')) d[[v]] <- factor(d[[v]])"]
        for i, f in enumerate(formulas):
            lines.append(f"t <- replicate(3, system.time(lmer({f}, d))[['elapsed']]); "
                         f"cat('{i}', median(t), '\\n')")
        r = subprocess.run(["Rscript", "-e", "; ".join(lines)], capture_output=True,
                           text=True, timeout=600)
    out = {}
    for line in r.stdout.splitlines():
        i, sec = line.split()
        out[formulas[int(i)]] = float(sec)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ks", type=int, nargs="+", default=[6, 10, 20])
    ap.add_argument("--no-generic", action="store_true")
    ap.add_argument("--no-lme4", action="store_true")
    args = ap.parse_args()
    data = mixmio.datasets.load("exam")
    fit(FORMULAS[0], data, 10, None)  # load (or compile) the compiled loops once
    lme4 = {} if args.no_lme4 else run_lme4(FORMULAS, data)
    rows = []
    for formula in FORMULAS:
        for k in args.ks:
            sec, n, f = run_default(formula, data, k, args.repeats)
            row = {"formula": formula.replace("normexam ~ ", "").replace(" + (1 | school)", ""),
                   "k": k, "mixmio s": round(sec, 2), "runs": n, "status": f.status,
                   "gap": f"{f.gap:.1e}", "solver": f.solver}
            if not args.no_generic:
                gsec, g = run_generic(formula, data, k)
                row.update({"generic s (30 s limit)": round(gsec, 1),
                            "generic status": g.status, "generic gap": f"{g.gap:.1e}"})
            if formula in lme4:
                row["lme4 lmer s"] = round(lme4[formula], 3)
                row["mixmio / lme4"] = round(sec / lme4[formula], 1)
            rows.append(row)
            print(row, flush=True)
    notes = (
        "mixmio = `mio_lmer(formula, exam, k, time_limit=120)` with the default solver (the "
        "grouped exact path, `+enum` when the enumeration race won), median of up to "
        f"{args.repeats} runs (one run when the first took over 5 s), mip_gap 1e-4, after one "
        "warm-up fit that loads the compiled loops.  generic = the box branch and bound alone "
        "(grouped path and enumeration off), one run with a 30 s limit: the engine these models "
        "used before the grouped path.  lme4 = `lmer` (REML) on the same formula, median of 3 "
        "(the classical model; it selects nothing).  Wall-clock seconds on a shared 2-core "
        "machine.")
    write_tables("exam", pd.DataFrame(rows),
                 "Exam: random intercepts with school-level covariates", notes)


if __name__ == "__main__":
    main()
