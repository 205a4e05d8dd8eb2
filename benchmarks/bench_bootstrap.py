"""Bootstrap benchmarks (issue 6).

(a) Coverage of 95% percentile intervals for beta (residual scheme, selection re-run in every
    replicate) over simulated data sets from the seed paper's DGP, medium setting (METHODS 8):
    K = 10 clusters, P = 25 covariates, 50 rows per cluster, x_iv = xi_i * gamma_c(i) + N(0, 1),
    beta_v from {-1, 0, 1}, sparse regime (3 of 10 clusters at +-sigma_clust = 2, 70% zeros),
    noise sd sqrt(0.5); fitted with k = 3.
(b) Wall time of B = 200 residual-bootstrap replicates at K = 300 random intercepts (20 rows per
    cluster, p = 5, 10% of clusters deviating, k = 30): serial, n_jobs = 2, and a Dask
    LocalCluster with 2 single-threaded worker processes.

    python benchmarks/bench_bootstrap.py [--datasets 200] [--b-coverage 200] [--b-timing 200]

Writes benchmarks/results/bootstrap.md and bootstrap.csv.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mixmio  # noqa: E402
from _common import RESULTS, write_tables  # noqa: E402

K_COV, P_COV, PER_COV, NONZERO_COV, SIGMA_CLUST = 10, 25, 50, 3, 2.0
NOISE_SD = np.sqrt(0.5)


def paper_data(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """One data set of the seed paper's sparse-regime DGP (medium setting)."""
    rng = np.random.default_rng(seed)
    gamma = np.zeros(K_COV)
    on = rng.choice(K_COV, NONZERO_COV, replace=False)
    gamma[on] = SIGMA_CLUST * rng.choice([-1.0, 1.0], NONZERO_COV)
    beta = rng.choice([-1.0, 0.0, 1.0], P_COV)
    g = np.repeat(np.arange(K_COV), PER_COV)
    n = len(g)
    xi = rng.normal(size=n)
    X = xi[:, None] * gamma[g][:, None] + rng.normal(size=(n, P_COV))
    y = X @ beta + gamma[g] + rng.normal(0.0, NOISE_SD, n)
    df = pd.DataFrame(X, columns=[f"x{v + 1}" for v in range(P_COV)])
    df["y"] = y
    df["g"] = g
    return df, beta


COV_FORMULA = "y ~ " + " + ".join(f"x{v + 1}" for v in range(P_COV)) + " + (1 | g)"


def coverage_one(seed: int, B: int) -> dict:
    df, beta = paper_data(seed)
    fit = mixmio.mio_lmer(COV_FORMULA, df, k=NONZERO_COV)
    boot = fit.bootstrap(B=B, scheme="residual", ci="percentile", level=0.95,
                         random_state=seed, progress=False)
    t = boot.table.iloc[1:1 + P_COV]  # the 25 slopes (intercept excluded)
    inside = (t["lower"].to_numpy() <= beta) & (beta <= t["upper"].to_numpy())
    return {"seed": seed, "covered": int(inside.sum()), "n": P_COV,
            "covered_zero": int(inside[beta == 0].sum()), "n_zero": int((beta == 0).sum()),
            "n_ok": boot.n_ok, "width": float(np.mean(t["upper"] - t["lower"]))}


def coverage(n_sets: int, B: int, n_jobs: int) -> tuple[pd.DataFrame, float]:
    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    rows = Parallel(n_jobs=n_jobs)(delayed(coverage_one)(s, B) for s in range(n_sets))
    return pd.DataFrame(rows), time.perf_counter() - t0


def timing_data(seed: int = 0, K: int = 300, per: int = 20, p: int = 5, frac: float = 0.1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), per)
    gamma = np.zeros(K)
    on = rng.choice(K, int(frac * K), replace=False)
    gamma[on] = rng.choice([-1.0, 1.0], len(on))
    X = rng.normal(size=(len(g), p))
    y = X @ np.ones(p) + gamma[g] + rng.normal(0.0, NOISE_SD, len(g))
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(p)])
    df["y"] = y
    df["g"] = g
    return df


def timings(B: int, rounds: int = 7) -> list[dict]:
    """Wall time of serial, loky and Dask bootstraps, interleaved round-robin.

    The VM's CPU steal time drifts by tens of percent over minutes, so the configurations are
    timed in turns (serial, loky, Dask; ``rounds`` times) with both pools alive throughout, and
    each speedup is the median over rounds of the paired ratio serial / configuration."""
    import dask
    import joblib
    from dask.distributed import Client, LocalCluster

    df = timing_data()
    formula = "y ~ " + " + ".join(f"x{j + 1}" for j in range(5)) + " + (1 | g)"
    fit = mixmio.mio_lmer(formula, df, k=30)
    kw = {"B": B, "scheme": "residual", "random_state": 2024, "progress": False}
    # Dask workers sample their own stacks every 10 ms by default (the statistical profiler);
    # for short CPU-bound tasks that costs ~20% of throughput, so the cluster runs without it
    os.environ["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which cost ~40% of a
    # replicate's speed until the replicate chunks undid it for their own duration
    # (mixmio.inference._tasks._glibc_malloc_defaults); the cluster keeps Dask's defaults
    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")
    labels = ["serial (n_jobs=1)", "joblib loky, n_jobs=2",
              "Dask LocalCluster, 2 workers x 1 thread"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:

        def run(i, b):
            if i == 2:
                with client.as_current(), joblib.parallel_config(backend="dask"):
                    return fit.bootstrap(n_jobs=-1, **dict(kw, B=b))
            return fit.bootstrap(n_jobs=1 if i == 0 else 2, **dict(kw, B=b))

        for i in range(3):  # warm-up: pools started, mixmio imported in the workers
            run(i, 8)
        times = np.zeros((rounds, 3))
        boots = [None] * 3
        for r in range(rounds):
            for i in range(3):
                t0 = time.perf_counter()
                boots[i] = run(i, B)
                times[r, i] = time.perf_counter() - t0
    out = []
    for i, label in enumerate(labels):
        out.append({"run": label, "B": B, "K": 300, "n": len(df),
                    "seconds": round(float(np.median(times[:, i])), 2),
                    "speedup": round(float(np.median(times[:, 0] / times[:, i])), 2),
                    "speedup_range": f"{np.min(times[:, 0] / times[:, i]):.2f}-"
                                     f"{np.max(times[:, 0] / times[:, i]):.2f}",
                    "n_ok": boots[i].n_ok,
                    "identical_to_serial": bool(np.array_equal(boots[i].draws, boots[0].draws,
                                                               equal_nan=True))})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--b-coverage", type=int, default=200)
    ap.add_argument("--b-timing", type=int, default=200)
    ap.add_argument("--n-jobs", type=int, default=2, help="workers for the coverage study")
    args = ap.parse_args(argv)

    if args.datasets > 0:
        cov, cov_secs = coverage(args.datasets, args.b_coverage, args.n_jobs)
        total = cov["covered"].sum() / cov["n"].sum()
        zero = cov["covered_zero"].sum() / max(cov["n_zero"].sum(), 1)
        nonzero = (cov["covered"].sum() - cov["covered_zero"].sum()) / max(
            cov["n"].sum() - cov["n_zero"].sum(), 1)
        se = np.sqrt(total * (1 - total) / cov["n"].sum())
        print(f"coverage {total:.4f} (zero betas {zero:.4f}, non-zero {nonzero:.4f}) "
              f"in {cov_secs:.0f} s", flush=True)
        rows = [{"study": "coverage (a)",
                 "run": f"{args.datasets} data sets, B = {args.b_coverage}",
                 "value": round(float(total), 4), "detail":
                     f"all 25 slopes; zero betas {zero:.4f}, non-zero betas {nonzero:.4f}; "
                     f"binomial se {se:.4f}; mean width {cov['width'].mean():.3f}; failed "
                     f"replicates {int((args.b_coverage - cov['n_ok']).sum())}; "
                     f"{cov_secs:.0f} s on {args.n_jobs} workers"}]
    else:  # --datasets 0: keep the coverage rows of the previous run
        old = RESULTS / "bootstrap.csv"
        rows = pd.read_csv(old).query("study == 'coverage (a)'").to_dict("records") \
            if old.exists() else []

    load0 = os.getloadavg()[0]
    tim = timings(args.b_timing)
    load1 = os.getloadavg()[0]
    for r in tim:
        print(r, flush=True)
    for r in tim:
        rows.append({"study": "wall time (b)", "run": r["run"], "value": r["seconds"],
                     "detail": f"B = {r['B']}, K = {r['K']}, n = {r['n']}; speedup "
                               f"{r['speedup']}x (range over rounds {r['speedup_range']}); "
                               f"n_ok {r['n_ok']}; identical to serial: "
                               f"{r['identical_to_serial']}"})
    notes = (
        "Command: `.venv/bin/python benchmarks/bench_bootstrap.py --datasets "
        f"{args.datasets} --b-coverage {args.b_coverage} --b-timing {args.b_timing}`"
        + (" (timings only; coverage row kept from the previous full run)" if not args.datasets
           else "") + ".\n\n"
        "(a) Residual bootstrap, 95% percentile intervals for the 25 slopes, selection re-run "
        "in every replicate (exact engine, refit on the support). DGP: seed paper, medium "
        "setting, sparse regime with 3 of 10 clusters at +-2 (70% zeros), noise sd sqrt(0.5), "
        "k = 3. Value = share of (data set, slope) pairs whose interval covers the true beta.\n\n"
        "(b) Residual bootstrap at K = 300 random intercepts (20 rows each, p = 5, 30 clusters "
        "at +-1, k = 30). Value = wall seconds for the whole bootstrap; speedup = serial / "
        "run. Dask: `joblib.parallel_config(backend='dask')` on a LocalCluster "
        "(processes, 2 workers x 1 thread, worker profiler off: "
        "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False; otherwise Dask's default worker "
        "environment, including `MALLOC_TRIM_THRESHOLD_=65536`, which replicate chunks undo "
        "for their own duration because it made replicates ~40% slower). One warm-up call "
        "per configuration (B = 8: pool start-up and imports excluded), then 7 rounds in which "
        "serial, loky and Dask run in turn with both pools alive; value = median seconds, "
        "speedup = median over rounds of the paired ratio serial / run (the VM's CPU steal "
        "time drifts over minutes, which unpaired medians mix into the ratio). Every replicate "
        "runs with single-threaded BLAS (threadpoolctl), in the "
        "serial run too. 1-minute load average before (b): "
        f"{load0:.2f} on {os.cpu_count()} cores (a value well above ~0.5 means other jobs "
        "shared the cores); after (b): "
        f"{load1:.2f}, which includes (b)'s own two workers and the coverage study (a) when it "
        "ran just before.")
    path = write_tables("bootstrap", pd.DataFrame(rows), "Bootstrap: coverage and wall time",
                        notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
