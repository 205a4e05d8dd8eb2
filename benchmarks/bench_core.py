"""mio_lmer's default path against plain CVXPY+SCIP big-M (and Gurobi where its licence allows).

Random-intercept instances: K in {30, 60, 100, 300}, 20 rows per cluster, p in {10, 20},
10% of clusters deviating by +-2 sigma, k = 10% of K.  The default path is timed end to end
(design + solve + refit, median of 3).  Baselines solve the same Problem (one run each, with a
time limit; a run stopped by it says so).  Writes benchmarks/results/core.md and core.csv.

    python benchmarks/bench_core.py [--quick] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from _common import intercept_formula, make_intercept_frame, timed, write_tables
from mixmio import build_design, mio_lmer
from mixmio.problem.build import build_problem
from mixmio.solvers import solve
from mixmio.solvers.cvxpy_backend import gurobi_full_licence


def _baseline(problem, solver, time_limit):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve(problem, solver=solver, time_limit=time_limit, random_state=0)
    return time.perf_counter() - t0, sol


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="K in {30, 60} only")
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()
    Ks = [30, 60] if args.quick else [30, 60, 100, 300]
    rows = []
    for p in (10, 20):
        for K in Ks:
            df = make_intercept_frame(K, 20, p, random_state=K + p)
            formula, k = intercept_formula(p), K // 10
            t, fit = timed(lambda f=formula, d=df, k=k: mio_lmer(f, d, k=k, random_state=0),
                           repeats=3)
            row = {"K": K, "n": len(df), "p": p, "k": k,
                   "default s": round(t, 3), "default solver": fit.solver,
                   "default status": fit.status, "default gap": f"{fit.gap:.1e}",
                   "objective": round(fit.objective, 6)}
            problem = build_problem(build_design(formula, df), k)
            ts, sol = _baseline(problem, "SCIP", args.time_limit)
            row.update({"SCIP big-M s": round(ts, 2), "SCIP status": sol.status,
                        "SCIP gap": f"{sol.gap:.1e}",
                        "SCIP objective": round(sol.objective, 6),
                        "speed-up vs SCIP": round(ts / t, 1)})
            n_vars = problem.n_coef + len(problem.capped)
            if gurobi_full_licence() or n_vars <= 200:
                tg, gsol = _baseline(problem, "GUROBI", args.time_limit)
                row.update({"Gurobi s": round(tg, 3), "Gurobi status": gsol.status})
            else:
                row.update({"Gurobi s": "size-limited licence", "Gurobi status": ""})
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    path = write_tables(
        "core", table, "mio_lmer default path vs CVXPY+SCIP big-M",
        f"Default path: mio_lmer end to end (design + solve + refit), median of 3. Baselines: "
        f"one run each on the same Problem with a {args.time_limit:g} s limit (status "
        "time_limit when reached; gap is then the proven relative gap). Gurobi runs only where "
        "the pip licence allows the model (<= 200 variables with a quadratic term).")
    print(path.read_text())


if __name__ == "__main__":
    main()
