"""The random-intercept engine at a million rows and beyond, beside lme4 (issue 18).

Instances: ``bench_engine.make_intercept_data(K, 10, 5, 0.05, 2.0)``: 10 rows per cluster, p = 5
(intercept and 4 covariates), 5% of the clusters deviating by 2 sigma, k = 5% of K.  Each fit
runs in its own process, which reports its wall time and peak resident memory (``ru_maxrss``)
and the peak before the fit (imports and data), so the table shows what the fit itself adds:

- mixmio: ``mio_lmer("y ~ x1 + x2 + x3 + x4 + (1 | g)", df, k=K // 20)`` from a DataFrame
  (design, engine, refit and result; default solver);
- lme4: ``lmer(y ~ x1 + x2 + x3 + x4 + (1 | g), REML = FALSE)`` through
  ``benchmarks/r/lmer_scale.R`` on the same data written to CSV (only the ``lmer()`` call is
  timed; its memory is R's ``gc()`` "max used" during the call less the heap in use before it,
  in MB, and the process's peak RSS).

The empirical exponents are least-squares slopes of log(time) and log(memory added) on log(K).
Writes ``results/engine_scale.{md,csv}``.  Run: ``python benchmarks/bench_scale.py``
(``--sizes 10000,30000``, ``--no-r``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import write_tables  # noqa: E402

R_SCRIPT = HERE / "r" / "lmer_scale.R"
FORMULA = "y ~ x1 + x2 + x3 + x4 + (1 | g)"


def frame(K: int) -> pd.DataFrame:
    from bench_engine import make_intercept_data

    pr, _, codes = make_intercept_data(K, 10, 5, 0.05, 2.0)
    df = pd.DataFrame(pr.X[:, 1:], columns=[f"x{i}" for i in range(1, 5)])
    df["g"] = codes
    df["y"] = pr.y
    return df


def child(K: int, csv: str | None) -> None:
    """Runs in a subprocess: one mio_lmer fit; prints a JSON line."""
    import mixmio

    df = frame(K)
    if csv:
        df.to_csv(csv, index=False)
    mixmio.mio_lmer("y ~ x1 + (1 | g)", df.head(200), k=2)  # imports, first-call costs
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    fit = mixmio.mio_lmer(FORMULA, df, k=K // 20)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"status": fit.status, "gap": fit.gap, "seconds": secs, "peak_mb": peak,
                      "before_mb": before, "solver": fit.solver}))


def run_mixmio(K: int, csv: str | None, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(K)] + (["--csv", csv] if csv else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mixmio_status": f"over {timeout:g} s"}
    if proc.returncode != 0:
        return {"mixmio_status": "error: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"mixmio_status": r["status"], "mixmio_gap": r["gap"], "mixmio_s": r["seconds"],
            "mixmio_peak_mb": r["peak_mb"], "mixmio_added_mb": r["peak_mb"] - r["before_mb"],
            "mixmio_solver": r["solver"]}


def run_lme4(csv: str, timeout: float) -> dict:
    if shutil.which("Rscript") is None:
        return {"lme4_s": "not run: Rscript missing"}
    try:
        proc = subprocess.run(["Rscript", str(R_SCRIPT), csv], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"lme4_s": f"over {timeout:g} s"}
    if proc.returncode != 0:
        return {"lme4_s": "error: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"lme4_s": r["seconds"], "lme4_max_used_mb": r["max_used_mb"],
            "lme4_peak_rss_mb": r.get("peak_rss_mb", float("nan"))}


def exponent(K: np.ndarray, v: np.ndarray) -> float:
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(K[ok]), np.log(v[ok]), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,30000,100000,300000")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.csv)
        return
    rows = []
    for K in (int(v) for v in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            csv = None if args.no_r else str(Path(tmp) / "data.csv")
            row = {"K": K, "rows": 10 * K, "p": 5, "k": K // 20}
            row.update(run_mixmio(K, csv, args.timeout))
            if csv and Path(csv).exists():
                row.update(run_lme4(csv, args.timeout))
        try:
            row["lme4 / mixmio"] = round(float(row["lme4_s"]) / float(row["mixmio_s"]), 1)
        except (KeyError, TypeError, ValueError):
            row["lme4 / mixmio"] = "-"
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    Ks = df["K"].to_numpy(float)
    num = {c: pd.to_numeric(df.get(c), errors="coerce").to_numpy(float)
           for c in ("mixmio_s", "mixmio_added_mb", "lme4_s", "lme4_max_used_mb")}
    notes = (f"Formula `{FORMULA}`, k = K/20, default solver, mip_gap 1e-4; one run per size in "
             "its own process (the 2-core machine was shared with other jobs). "
             "`mixmio_added_mb`: peak RSS of the fit less the peak before it (imports, data); "
             "`lme4_max_used_mb`: R's gc() max used during lmer() less the heap before it; "
             "`lme4_peak_rss_mb`: the R process's peak RSS. Empirical exponents in K "
             f"(slope of log-log fit): mixmio time {exponent(Ks, num['mixmio_s']):.2f}, mixmio "
             f"memory {exponent(Ks, num['mixmio_added_mb']):.2f}; lme4 time "
             f"{exponent(Ks, num['lme4_s']):.2f}, lme4 memory "
             f"{exponent(Ks, num['lme4_max_used_mb']):.2f}. Command: "
             f"`python benchmarks/bench_scale.py {' '.join(sys.argv[1:])}`.")
    write_tables("engine_scale", df, "Random intercepts at scale: mixmio against lme4 "
                 "(issue 18)", notes)
    print(notes)


if __name__ == "__main__":
    main()
