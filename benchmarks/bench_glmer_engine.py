"""Benchmark of the certified random-intercept GLMM engine (issue 16, mixmio.solvers.glmer.engine).

Writes benchmarks/results/glmer_engine.md and benchmarks/results/glmer_engine.csv.

    .venv/bin/python benchmarks/bench_glmer_engine.py             # everything (~15-25 min)
    .venv/bin/python benchmarks/bench_glmer_engine.py --quick     # NY HAI + K = 100, 300 only

Rows:
- NY HAI, SSI Hysterectomy 2016 (one row per compared hospital, 122 hospitals), Poisson,
  ``infections ~ offset(log(predicted)) + (1 | hospital)``, k = 4, ridge="auto"
  (target: ``optimal`` in <= 5 s);
- synthetic random intercepts: K clusters x 30 rows, p = 10 (intercept + 9 N(0, 1)
  covariates, coefficients N(0, 0.2^2)), 10% of the clusters deviating by +-1 (binomial,
  baseline probability 1/2) or +-0.5 (Poisson, baseline rate 2) on the link scale, k = K/10,
  ridge="auto" (target at K = 1000: ``optimal`` in <= 10 s), K in {100, 300, 1000, 3000,
  10000}.

Times are wall seconds of ``solve_engine`` (heuristic included), median of 3 runs for the
fits that finish within the limit; a fit that stops at the time limit is run once (the
status, bound and gap at the limit are what it reports).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mixmio  # noqa: E402
from _common import write_tables  # noqa: E402
from mixmio.api._glmer import glmer_auto_ridge  # noqa: E402
from mixmio.problem.build import build_problem  # noqa: E402
from mixmio.problem.glmer import GlmmProblem  # noqa: E402
from mixmio.solvers.glmer.engine import solve_engine  # noqa: E402

HAI = ROOT.parent / "shared" / "data" / "NY_HAI_Beginning_2008_through2016_HemoSource.csv"


def _problem(formula, df, family, k, weights=None):
    des = mixmio.build_design(formula, df)
    y = np.asarray(des.y, dtype=float)
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=float)
    off = np.zeros(y.size) if des.offset is None else np.asarray(des.offset, dtype=float)
    ridge = glmer_auto_ridge(family, des.X, des.Z, y, w, off)
    return GlmmProblem(build_problem(des, k, ridge=ridge), family, y, w, off)


def ny_hai(k: int = 4):
    df = pd.read_csv(HAI, thousands=",", encoding="utf-8-sig")
    d = df[(df["Indicator Name"] == "SSI Hysterectomy") & (df["Year"] == 2016)
           & (df["Facility ID"] != 0)]
    d = d[~d["Comparison Results"].astype(str).str.startswith("Not compared")]
    data = pd.DataFrame({"infections": d["Infections Observed"].astype(float).to_numpy(),
                         "predicted": d["Infections Predicted"].astype(float).to_numpy(),
                         "hospital": d["Facility ID"].astype(str).to_numpy()})
    return _problem("infections ~ offset(np.log(predicted)) + (1 | hospital)", data,
                    "poisson", k)


def synthetic(family: str, K: int, rows: int = 30, p: int = 10, frac: float = 0.1,
              seed: int = 0):
    rng = np.random.default_rng(seed)
    n = K * rows
    g = np.repeat(np.arange(K), rows)
    X = rng.normal(size=(n, p - 1))
    b = rng.normal(scale=0.2, size=p - 1)
    nd = int(round(frac * K))
    dev = np.zeros(K)
    idx = rng.choice(K, nd, replace=False)
    dev[idx] = (1.0 if family == "binomial" else 0.5) * rng.choice([-1.0, 1.0], nd)
    eta = (0.0 if family == "binomial" else np.log(2.0)) + X @ b + dev[g]
    if family == "binomial":
        y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    cols = {f"x{j}": X[:, j] for j in range(p - 1)}
    df = pd.DataFrame({"y": y, "g": [f"c{i:05d}" for i in g], **cols})
    return _problem("y ~ " + " + ".join(cols) + " + (1 | g)", df, family, nd)


def run(name, pr, time_limit, repeats=3):
    times, sol = [], None
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            sol = solve_engine(pr, time_limit=time_limit)
            times.append(time.perf_counter() - t0)
        if sol.status != "optimal":
            break
    row = dict(instance=name, n=pr.n, K=pr.m, p=pr.p, k=pr.caps[0].k, ridge=pr.ridge,
               status=sol.status, seconds=round(statistics.median(times), 3),
               runs=len(times), nodes=sol.nodes, objective=sol.objective,
               best_bound=sol.best_bound, gap=sol.gap, time_limit=time_limit)
    print(row, flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    rows = []
    if HAI.exists():
        rows.append(run("NY HAI SSI Hysterectomy 2016, poisson", ny_hai(), args.time_limit))
    sizes = [100, 300] if args.quick else [100, 300, 1000, 3000, 10000]
    for family in ("poisson", "binomial"):
        for K in sizes:
            rows.append(run(f"synthetic {family} K={K} x 30", synthetic(family, K),
                            args.time_limit))
    table = pd.DataFrame(rows)
    notes = ("Median of 3 wall times for fits that end `optimal`; a fit stopped by the time "
             "limit runs once. mip_gap 1e-4. The machine is shared with other sessions "
             "(2 cores), so times are noisy.")
    write_tables("glmer_engine", table, "Certified random-intercept GLMM engine "
                 "(mixmio.solvers.glmer.engine)", notes)


if __name__ == "__main__":
    main()
