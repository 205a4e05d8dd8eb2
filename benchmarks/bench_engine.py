"""Benchmark of the exact random-intercept engine (issue 4).

Writes benchmarks/results/engine.md and benchmarks/results/engine.csv.

    .venv/bin/python benchmarks/bench_engine.py            # everything (SCIP runs take minutes)
    .venv/bin/python benchmarks/bench_engine.py --no-scip  # skip the CVXPY + SCIP baselines

Rows: the engine (median of 3 wall times; objective, proven gap, status), statsmodels MixedLM
(REML fit of y ~ X + (1|g); the ratio engine / MixedLM), lme4 when ``Rscript -e 'library(lme4)'``
works, and CVXPY + SCIP on the big-M MIQP built from the Gram matrix (K = 60 and 100, 300 s limit).
Random slopes (F): ``(1 + x | g)`` with caps on both term columns (baseline: statsmodels MixedLM
with re_formula="~x").  Crossed intercepts (G): lme4's InstEval ``y ~ service + (1 | s) + (1 | d)``
with caps 149 / 56, 120 s limit, run in a subprocess that reports its peak memory.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixmio.problem import CapSet, Problem, TermStructure  # noqa: E402
from mixmio.solvers import solve_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def make_intercept_data(K, rows, p, frac, effect, sigma=1.0, random_state=0, k=None):
    """Random-intercept Problem: X = [1 | N(0,1) covariates] (p columns), `rows` rows per cluster,
    round(frac K) clusters deviating by +-effect*sigma, noise sd sigma, cap k (default round(frac
    K)), ridge 1e-4 x median column sum of squares of [X | A].  Returns (problem, gamma, codes)."""
    rng = np.random.default_rng(random_state)
    codes = np.repeat(np.arange(K), rows)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(size=p)
    gamma = np.zeros(K)
    dev = rng.choice(K, size=int(round(frac * K)), replace=False)
    gamma[dev] = effect * sigma * rng.choice([-1.0, 1.0], size=dev.size)
    y = X @ beta + gamma[codes] + sigma * rng.normal(size=n)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    css = np.concatenate([np.sum(X**2, axis=0), np.asarray(A.power(2).sum(axis=0)).ravel()])
    ridge = 1e-4 * float(np.median(css))
    if k is None:
        k = int(round(frac * K))
    pen = np.concatenate([np.zeros(p, dtype=bool), np.ones(K, dtype=bool)])
    problem = Problem(X=X, Z=A, y=y, ridge=ridge, caps=(CapSet("(1|g)", p + np.arange(K), k),),
                      penalized=pen,
                      terms=(TermStructure("(1 | g)", 0, 1, K, codes, np.ones((n, 1))),))
    return problem, gamma, codes


def make_slope_data(K, rows, p, frac, effect, sigma=1.0, random_state=0):
    """Random-slope Problem ``(1 + x | g)``: round(frac K) clusters deviate by +-effect*sigma in
    the intercept and (independently drawn) round(frac K) in the slope of x = X[:, 1]; caps
    k1 = k2 = round(frac K); ridge 1e-4 x median column sum of squares of [X | Z]."""
    rng = np.random.default_rng(random_state)
    codes = np.repeat(np.arange(K), rows)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    x = X[:, 1]
    m = int(round(frac * K))
    g1, g2 = np.zeros(K), np.zeros(K)
    g1[rng.choice(K, m, replace=False)] = effect * sigma * rng.choice([-1.0, 1.0], m)
    g2[rng.choice(K, m, replace=False)] = effect * sigma * rng.choice([-1.0, 1.0], m)
    y = X @ rng.normal(size=p) + g1[codes] + g2[codes] * x + sigma * rng.normal(size=n)
    A = sp.csc_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, K))
    Z = sp.hstack([A, sp.csc_matrix((x, (np.arange(n), codes)), shape=(n, K))], format="csc")
    css = np.concatenate([np.sum(X**2, axis=0), np.asarray(Z.power(2).sum(axis=0)).ravel()])
    pen = np.concatenate([np.zeros(p, dtype=bool), np.ones(2 * K, dtype=bool)])
    caps = (CapSet("(1|g)", p + np.arange(K), m), CapSet("(x|g)", p + K + np.arange(K), m))
    terms = (TermStructure("(1 + x | g)", 0, 2, K, codes, np.column_stack([np.ones(n), x])),)
    pr = Problem(X=X, Z=Z, y=y, ridge=1e-4 * float(np.median(css)), caps=caps, penalized=pen,
                 terms=terms)
    return pr, g1, g2, codes


INSTEVAL_SCRIPT = r"""
import json, resource, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import pandas as pd
import mixmio
from mixmio.problem.build import build_problem
from mixmio.solvers import solve_engine
df = pd.read_csv(sys.argv[1] + "/benchmarks/data/InstEval.csv.gz")
for c in ("s", "d", "service"):
    df[c] = df[c].astype(str)
t = time.perf_counter()
pr = build_problem(mixmio.build_design("y ~ service + (1 | s) + (1 | d)", df),
                   {"1|s": 149, "1|d": 56})
t_build = time.perf_counter() - t
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    log = []
    sol = solve_engine(pr, time_limit=float(sys.argv[2]), log=log)
bounds = [(t, b) for kind, t, b in log if kind == "bound"]
cover = sol.info.get("cover") or {}
t1 = next((t for t, b in bounds if (sol.objective - b) <= 0.01 * abs(sol.objective)), None)
print(json.dumps(dict(n=pr.n, p=pr.p, seconds=sol.solve_time, build=t_build,
                      t_gap1=t1, relaxations=cover.get("relaxations"),
                      objective=sol.objective, bound=sol.best_bound, gap=sol.gap,
                      status=sol.status, nodes=sol.nodes,
                      heur=sol.info.get("heuristic_objective"),
                      ridge=sol.info.get("ridge_bound"),
                      maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run_insteval(time_limit=120.0):
    r = subprocess.run([sys.executable, "-c", INSTEVAL_SCRIPT, str(ROOT), str(time_limit)],
                       capture_output=True, text=True, timeout=3600)
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def run_mixedlm_slopes(problem, codes):
    import statsmodels.api as sm

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exog_re = np.column_stack([np.ones(problem.n), problem.X[:, 1]])
        model = sm.MixedLM(problem.y, problem.X, groups=codes, exog_re=exog_re)
        try:
            ok = bool(model.fit(reml=True).converged)
        except Exception as e:  # noqa: BLE001
            ok = f"failed ({type(e).__name__})"
    return time.perf_counter() - t, ok


# ------------------------------------------------------------------------------ runners
def run_engine(problem, repeats=3, time_limit=None, log=None):
    times, sol = [], None
    for r in range(repeats):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = solve_engine(problem, time_limit=time_limit, log=log if r == 0 else None)
        times.append(time.perf_counter() - t)
    return statistics.median(times), sol


def run_mixedlm(problem, codes):
    import statsmodels.api as sm

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.MixedLM(problem.y, problem.X, groups=codes)
        try:
            res = model.fit(reml=True)
            ok = bool(res.converged)
        except Exception as e:  # noqa: BLE001 - report, do not crash the benchmark
            ok = f"failed ({type(e).__name__})"
    return time.perf_counter() - t, ok


def lme4_available():
    try:
        r = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, timeout=60)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_lme4(problem, codes):  # pragma: no cover - only where R + lme4 exist
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "data.csv"
        cols = [f"x{j}" for j in range(1, problem.p)]
        arr = np.column_stack([problem.y, codes, problem.X[:, 1:]])
        np.savetxt(f, arr, delimiter=",", header=",".join(["y", "g"] + cols), comments="")
        rhs = " + ".join(cols) if cols else "1"
        script = (f"d <- read.csv('{f}'); d$g <- factor(d$g); suppressMessages(library(lme4)); "
                  f"t <- system.time(m <- lmer(y ~ {rhs} + (1|g), data=d)); cat(t[['elapsed']])")
        r = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=600)
        return float(r.stdout.strip().split()[-1])


def run_scip(problem, U, time_limit=300.0):
    """CVXPY + SCIP big-M MIQP from the Gram matrix; M = sqrt(2 U / ridge) is valid (the loss is
    nonnegative, so ridge/2 gamma_j^2 <= U at any optimum)."""
    import cvxpy as cp

    p, K = problem.p, problem.m
    G, c, yy = problem.gram
    G = G.toarray() + np.diag(problem.ridge * problem.penalized)
    L = np.linalg.cholesky(G)
    M = np.sqrt(2 * U / problem.ridge) * (1 + 1e-6)
    w = cp.Variable(p + K)
    z = cp.Variable(K, boolean=True)
    obj = 0.5 * cp.sum_squares(L.T @ w) - c @ w + 0.5 * yy
    cons = [w[p:] <= M * z, -w[p:] <= M * z, cp.sum(z) <= problem.caps[0].k]
    prob = cp.Problem(cp.Minimize(obj), cons)
    t = time.perf_counter()
    try:
        prob.solve(solver="SCIP", scip_params={"limits/time": time_limit, "limits/gap": 1e-4})
    except cp.error.SolverError as e:
        return time.perf_counter() - t, np.nan, np.nan, f"error: {e}"
    wall = time.perf_counter() - t
    value = float(prob.value) if prob.value is not None else np.nan
    bound = np.nan
    try:
        model = prob.solver_stats.extra_stats["model"]
        offset = value - float(model.getPrimalbound())
        bound = float(model.getDualbound()) + offset
    except Exception:
        pass
    return wall, value, bound, str(prob.status)


# ------------------------------------------------------------------------------ main
def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-scip", action="store_true")
    ap.add_argument("--no-mixedlm", action="store_true")
    ap.add_argument("--no-insteval", action="store_true")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows_out = []
    have_lme4 = lme4_available()

    def record(case, method, K, n, p, k, wall, obj=np.nan, gap=np.nan, status="", nodes="",
               note=""):
        rows_out.append(dict(case=case, method=method, K=K, n=n, p=p, k=k, seconds=wall,
                             objective=obj, gap=gap, status=status, nodes=nodes, note=note))
        print(rows_out[-1], flush=True)

    def engine_case(case, K, rows, p, frac, effect, k=None, time_limit=None, baselines=True,
                    log=None, seed=1):
        pr, gamma, codes = make_intercept_data(K, rows, p, frac, effect, random_state=seed, k=k)
        wall, sol = run_engine(pr, time_limit=time_limit, log=log)
        true = set(np.flatnonzero(gamma))
        found = set(sol.support.tolist())
        note = f"true clusters found {len(true & found)}/{len(true)}"
        record(case, "mixmio-bnb", K, pr.n, p, pr.caps[0].k, wall, sol.objective, sol.gap,
               sol.status, sol.nodes, note)
        if baselines and not args.no_mixedlm:
            tm, conv = run_mixedlm(pr, codes)
            record(case, "statsmodels MixedLM", K, pr.n, p, pr.caps[0].k, tm,
                   note=f"converged={conv}; engine/MixedLM = {wall / tm:.2f}")
        if baselines:
            if have_lme4:
                tl = run_lme4(pr, codes)
                record(case, "lme4 lmer", K, pr.n, p, pr.caps[0].k, tl,
                       note=f"engine/lme4 = {wall / tl:.2f}")
            else:
                record(case, "lme4 lmer", K, pr.n, p, pr.caps[0].k, np.nan, note="not available")
        return pr, sol, wall

    # 1. headline: K = 1000 x 30 rows, p = 10, 10% deviating by 2 sigma, k = 100
    engine_case("A: K=1000x30, p=10, 2sigma, k=100", 1000, 30, 10, 0.1, 2.0)
    # 2. K = 100, n = 2000, p = 20, k = 10 (+ SCIP)
    prB, solB, wallB = engine_case("B: K=100x20, p=20, 2sigma, k=10", 100, 20, 20, 0.1, 2.0)
    # 3. time vs K
    for K in (100, 300, 1000, 3000):
        engine_case(f"C: scaling K={K}x30, p=10, 2sigma, k=K/10", K, 30, 10, 0.1, 2.0)
    # 4. weak signal, time-to-gap trajectory
    traj = {}
    for K, rows, label in ((1000, 30, "D: weak 0.5sigma K=1000x30, p=10, k=100"),
                           (1000, 10, "D2: weak 0.5sigma K=1000x10, p=10, k=100"),
                           (300, 5, "D3: weak 0.5sigma K=300x5, p=10, k=30")):
        log: list = []
        engine_case(label, K, rows, 10, 0.1, 0.5, time_limit=30.0, baselines=False, log=log)
        traj[label] = log
    # 5. CVXPY + SCIP big-M (K = 60 and the K = 100 instance of case B)
    if not args.no_scip:
        for K in (60, 100):
            if K == 100:
                pr, sol, wall = prB, solB, wallB
            else:
                pr, _, _ = make_intercept_data(K, 20, 20, 0.1, 2.0, random_state=1)
                wall, sol = run_engine(pr)
            ws, val, bnd, status = run_scip(pr, sol.objective)
            rel = (val - sol.objective) / abs(sol.objective) if np.isfinite(val) else np.nan
            gap = max(0.0, (val - bnd) / abs(val)) if np.isfinite(bnd) and np.isfinite(val) \
                else np.nan
            record(f"E: SCIP K={K}x20, p=20, k={pr.caps[0].k}", "CVXPY+SCIP big-M", K, pr.n, 20,
                   pr.caps[0].k, ws, val, gap, status,
                   note=f"(SCIP - engine)/engine = {rel:.1e}; engine {wall:.3f} s; "
                        f"speed-up x{ws / wall:.0f}")

    # 6. random slopes (1 + x | g), caps on both columns
    for K, rows, eff, label in ((300, 25, 2.0, "F: slopes K=300x25, p=10, 2sigma, k1=k2=30"),
                                (300, 20, 1.0, "F2: slopes K=300x20, p=10, 1sigma, k1=k2=30"),
                                (1000, 25, 1.0, "F3: slopes K=1000x25, p=10, 1sigma, k1=k2=100"),
                                (300, 10, 1.0, "F4: slopes K=300x10, p=10, 1sigma, k1=k2=30")):
        pr, g1, g2, codes = make_slope_data(K, rows, 10, 0.1, eff, random_state=1)
        wall, sol = run_engine(pr, time_limit=30.0)
        opt = sol.info["options"]
        note = (f"true found: intercept {int(np.sum(((opt & 1) > 0) & (g1 != 0)))}/"
                f"{int(np.sum(g1 != 0))}, slope {int(np.sum(((opt & 2) > 0) & (g2 != 0)))}/"
                f"{int(np.sum(g2 != 0))}")
        kk = pr.caps[0].k
        record(label, "mixmio-bnb", K, pr.n, 10, f"{kk}/{kk}", wall, sol.objective, sol.gap,
               sol.status, sol.nodes, note)
        if K == 300 and rows == 25 and not args.no_mixedlm:
            tm, conv = run_mixedlm_slopes(pr, codes)
            record(label, "statsmodels MixedLM (re ~x)", K, pr.n, 10, f"{kk}/{kk}", tm,
                   note=f"converged={conv}; engine/MixedLM = {wall / tm:.2f}")
    # 6b. lme4's sleepstudy, Reaction ~ Days + (Days | Subject), caps 5/5: a small real
    # problem (18 subjects) against the generic MIQP route (CVXPY, Gurobi where licensed, SCIP)
    import mixmio
    from mixmio.problem.build import build_problem
    from mixmio.solvers import solve

    sleep = build_problem(mixmio.build_design("Reaction ~ Days + (Days | Subject)",
                                              mixmio.datasets.load("sleepstudy")),
                          {"1|Subject": 5, "Days|Subject": 5})
    wall, sol = run_engine(sleep, time_limit=120.0)
    label = "F5: sleepstudy (Days | Subject), k1=k2=5"
    record(label, "mixmio-bnb", 18, sleep.n, 2, "5/5", wall, sol.objective, sol.gap, sol.status,
           sol.nodes)
    for solver in ("gurobi",) + (() if args.no_scip else ("scip",)):
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s2 = solve(sleep, solver=solver, time_limit=120.0)
            record(label, f"CVXPY+{solver.upper()}", 18, sleep.n, 2, "5/5",
                   time.perf_counter() - t, s2.objective, s2.gap, s2.status,
                   note=f"(MIQP - engine)/engine = "
                        f"{(s2.objective - sol.objective) / sol.objective:.1e}")
        except Exception as e:  # noqa: BLE001 (licence or installation: recorded, not fatal)
            record(label, f"CVXPY+{solver.upper()}", 18, sleep.n, 2, "5/5", np.nan,
                   note=f"not run: {type(e).__name__}: {str(e)[:80]}")
    # 7. crossed intercepts: InstEval (one run, 120 s limit, separate process for peak memory)
    if not args.no_insteval:
        r = run_insteval(120.0)
        record("G: crossed InstEval y ~ service + (1|s) + (1|d), caps 149/56", "mixmio-bnb",
               "2972+1128", r["n"], r["p"], "149/56", r["seconds"], r["objective"], r["gap"],
               r["status"], r["nodes"],
               f"bound {r['bound']:.2f}; heuristic {r['heur']:.2f}; peak RSS "
               f"{r['maxrss_mb']:.0f} MiB; problem build {r['build']:.1f} s (not timed)")

    # ---------------------------------------------------------------- write
    fields = list(rows_out[0].keys())
    with open(RESULTS / "engine.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=fields)
        wr.writeheader()
        wr.writerows(rows_out)

    def fmt(v, spec):
        try:
            return "" if (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)
        except (TypeError, ValueError):
            return str(v)

    lines = ["# Exact engine benchmark (random intercepts, random slopes, crossed intercepts)", "",
             f"Machine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}"
             " cores. Engine wall time = median of 3 runs (mip_gap 1e-4). Generated by "
             "`benchmarks/bench_engine.py`.", "",
             "| case | method | K | n | p | k | seconds | objective | rel. gap | status | nodes "
             "| note |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows_out:
        case = r["case"].replace("|", "\\|")
        lines.append("| " + " | ".join([case, r["method"], str(r["K"]), str(r["n"]),
                                        str(r["p"]), str(r["k"]), fmt(r["seconds"], ".3f"),
                                        fmt(r["objective"], ".6f"), fmt(r["gap"], ".1e"),
                                        r["status"], str(r["nodes"]), r["note"]]) + " |")
    lines += ["", "## Time-to-gap trajectories (weak signal, 30 s limit)", ""]
    for label, log in traj.items():
        U, B, pts = np.inf, -np.inf, []
        for kind, t, v in log:
            if kind == "incumbent":
                U = min(U, v)
            else:
                B = max(B, v)
            g = (U - B) / abs(U) if np.isfinite(B) and np.isfinite(U) else np.inf
            pts.append((t, g))
        # keep a few points: first, every decade of gap, last
        keep, last_g = [], None
        for t, g in pts:
            if last_g is None or (np.isfinite(g) and (not np.isfinite(last_g) or g < last_g / 3)):
                keep.append((t, g))
                last_g = g
        if pts and (not keep or keep[-1] != pts[-1]):
            keep.append(pts[-1])
        lines.append(f"- {label}: " + ", ".join(f"({t:.2f} s, {g:.1e})" for t, g in keep))
    (RESULTS / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
