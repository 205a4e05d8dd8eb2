"""mio_glmer (issue 16) against lme4's glmer, statsmodels and the state's public flags.

Part ``hai``: New York State hospital-acquired infections 2016 (``mixmio.datasets.load
("ny_hai")``), one row per compared hospital ("Not compared..." rows dropped, as the state
does), three indicators.  With k = the number of the state's flags, every method's flagged set
is crossed with the state's (TP = flagged by both, FP = by the method only, FN = by the state
only, TN = by neither; ``direction`` = how many of the TP have the state's direction):

- ``mio_glmer``: ``observed ~ offset(np.log(predicted)) + (1 | hospital)``, Poisson, k flags
  (status, median time of repeats, gap);
- lme4 ``glmer(observed ~ 1 + offset(log(predicted)) + (1 | hospital), family = poisson)``
  (benchmarks/r/glmer_fit.R): the k largest |conditional mode|, and |mode / condSD| > 1.96;
- the Poisson likelihood-ratio statistic at SIR = 1, LR = 2[O log(O/E) - (O - E)] signed by
  O - E: the k largest;
- a two-sided exact Poisson test of O against E at 0.05 (a reference for how the state's flags
  arise; not capped at k);
- mixmio's linear model of the issue: one 0/1 row per procedure (``denominator`` rows, y = 1
  for ``observed`` of them, p = predicted / denominator as the offset),
  ``mio_lmer("y ~ 1 + offset(p) + (1 | hosp)", rows, k=k)`` (SSI indicators only: the CLABSI
  rows carry no denominator);
- k from cluster-blocked CV when ``mixmio.cv_glmer`` (or a ``family=`` argument of
  ``cv_lmer``) exists.

The grouping factor is the hospital name: facility 1464 holds two hospitals (New York
Presbyterian's Columbia and Morgan Stanley sites) with separate rows for SSI Colon and CLABSI,
and grouping by facility_id would merge them.

Part ``synth``: Poisson and binomial random intercepts, K = 1,000 clusters x 30 rows, p = 10
(intercept + 9 N(0, 1) covariates, coefficients U(-0.3, 0.3)), 10% of clusters deviating
(Poisson +-0.5 on the log scale around a mean ~2; binomial +-1 on the logit scale around a
rate 0.3), k = 100: mio_glmer (median of repeats), lme4 glmer (default nAGQ = 1, only the fit
timed), statsmodels ``PoissonBayesMixedGLM`` / ``BinomialBayesMixedGLM`` ``.fit_vb()``.

Part ``scaling``: mio_glmer's time against K in {100, 300, 1000, 3000, 10000} (30 rows, 10%,
k = K/10) for both families, lme4's beside it (skipped when a fit exceeds ``--r-timeout``).

The R parts are skipped with a message when Rscript is missing (the HAI part then uses the
lme4 output cached in benchmarks/data/ny_hai_lme4_*.csv when present).  Writes
results/glmer_hai.csv, glmer_synth.csv, glmer_scaling.csv and results/glmer.md / glmer.csv
(glmer.md is rebuilt from whichever part CSVs exist, so parts can be run separately).

    python benchmarks/bench_glmer.py [--parts hai,synth,scaling] [--repeats 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import mixmio  # noqa: E402
from _common import DATA, RESULTS, intercept_formula, timed, write_tables  # noqa: E402

R_SCRIPT = Path(__file__).parent / "r" / "glmer_fit.R"
INDICATORS = {"SSI Hysterectomy": "hyst", "SSI Colon": "colon",
              "CLABSI Overall Standardized Infection Ratio": "clabsi"}
FAMILIES = ("poisson", "binomial")
HAI_FORMULA = "observed ~ offset(np.log(predicted)) + (1 | hospital)"
SCALING_K = (100, 300, 1000, 3000, 10000)
GLMER_TIME_LIMIT = 300.0
SYNTH_TIME_LIMIT = GLMER_TIME_LIMIT  # --time-limit: one synthetic mio_glmer fit


# --------------------------------------------------------------------------- shared pieces

def rscript() -> str | None:
    return shutil.which("Rscript")


def run_glmer_r(frame: pd.DataFrame, family: str, formula: str, repeats: int,
                timeout: float) -> pd.DataFrame | str:
    """lme4 glmer on ``frame`` through benchmarks/r/glmer_fit.R: the per-level output table,
    or a string saying why there is none (timeout, error)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        frame.to_csv(src, index=False)
        cmd = [rscript(), str(R_SCRIPT), str(src), str(out), family, formula, str(repeats)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"skipped: over {timeout:g} s"
        if proc.returncode != 0:
            return "error: " + proc.stderr.strip().splitlines()[-1]
        return pd.read_csv(out, keep_default_na=False)


SKIP_MIXMIO = False
LAST_CPU = [float("nan")]  # median CPU seconds (process time, all threads) of the last fit


def glmer_fit(formula: str, df: pd.DataFrame, k: int, family: str, repeats: int,
              solver: str = "auto", time_limit: float = GLMER_TIME_LIMIT):
    """(median seconds, fit) of mio_glmer, or (nan, error text) when it cannot run yet."""
    if SKIP_MIXMIO:
        return float("nan"), "not run (--baselines-only)"
    cpu: list[float] = []

    def one():
        c0 = time.process_time()
        out = mixmio.mio_glmer(formula, df, k=k, family=family, solver=solver,
                               time_limit=time_limit, random_state=0)
        cpu.append(time.process_time() - c0)
        return out

    try:
        secs, fit = timed(one, repeats)
        LAST_CPU[0] = statistics.median(cpu)
        return secs, fit
    except (ImportError, ModuleNotFoundError) as exc:
        return float("nan"), f"not run: engine not yet committed ({exc})"


def cv_glmer_available() -> str | None:
    """The name of a cluster-blocked CV route for GLMMs, if one has landed."""
    if hasattr(mixmio, "cv_glmer"):
        return "cv_glmer"
    if "family" in inspect.signature(mixmio.cv_lmer).parameters:
        return "cv_lmer"
    return None


# --------------------------------------------------------------------------- NY HAI

def hai_frames() -> dict[str, pd.DataFrame]:
    df = mixmio.datasets.load("ny_hai")
    df = df[~df["comparison"].str.startswith("Not compared")]
    out = {}
    for ind in INDICATORS:
        d = df[df["indicator"] == ind].reset_index(drop=True)
        if (d["predicted"] <= 0).any() or d["hospital"].duplicated().any():
            raise ValueError(f"{ind}: predicted <= 0 or a repeated hospital")
        d["flag"] = np.select([d["comparison"].str.contains("higher"),
                               d["comparison"].str.contains("lower")], [1, -1], 0)
        out[ind] = d
    return out


def cross(d: pd.DataFrame, picked: dict[str, float]) -> dict:
    """2x2 counts of a method's flagged hospitals (name -> signed score) against the state's,
    and the direction agreement among the common ones."""
    state = d.set_index("hospital")["flag"]
    sel = state.index.isin(list(picked))
    flag = state.to_numpy() != 0
    both = [h for h in picked if state[h] != 0]
    agree = sum(np.sign(picked[h]) == state[h] for h in both)
    return {"n_flagged": len(picked), "TP": int(np.sum(sel & flag)),
            "FP": int(np.sum(sel & ~flag)), "FN": int(np.sum(~sel & flag)),
            "TN": int(np.sum(~sel & ~flag)), "direction": f"{agree}/{len(both)}"}


def top_k(names, scores, k: int) -> dict[str, float]:
    order = np.argsort(-np.abs(np.asarray(scores, float)), kind="stable")[:k]
    return {names[i]: float(scores[i]) for i in order}


def lr_statistic(obs: np.ndarray, exp_: np.ndarray) -> np.ndarray:
    """Signed Poisson likelihood-ratio statistic of SIR = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(obs > 0, obs * np.log(obs / exp_), 0.0)
    return np.sign(obs - exp_) * 2.0 * (term - (obs - exp_))


def exact_poisson_p(obs: np.ndarray, exp_: np.ndarray) -> np.ndarray:
    from scipy.stats import poisson

    lo, hi = poisson.cdf(obs, exp_), poisson.sf(obs - 1, exp_)
    return np.minimum(1.0, 2.0 * np.minimum(lo, hi))


def expand_procedures(d: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 row per procedure: ``denominator`` rows per hospital, y = 1 for ``observed``
    of them, p = predicted / denominator."""
    n = d["denominator"].to_numpy(int)
    o = d["observed"].to_numpy(int)
    hosp = np.repeat(d["hospital"].to_numpy(), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    y = (within < np.repeat(o, n)).astype(float)
    p = np.repeat((d["predicted"] / d["denominator"]).to_numpy(), n)
    return pd.DataFrame({"y": y, "p": p, "hosp": hosp})


def lme4_hai(tag: str, d: pd.DataFrame) -> pd.DataFrame | str:
    cache = DATA / f"ny_hai_lme4_{tag}.csv"
    if rscript() is None:
        if cache.exists():
            print(f"Rscript not found: using the cached lme4 output {cache.name}")
            return pd.read_csv(cache, keep_default_na=False)
        print("Rscript not found: lme4 rows skipped")
        return "not run: Rscript missing"
    frame = d[["hospital", "observed", "predicted"]].rename(columns={"hospital": "hosp"})
    res = run_glmer_r(frame, "poisson",
                      "observed ~ 1 + offset(log(predicted)) + (1 | hosp)", 5, 300)
    if isinstance(res, pd.DataFrame):
        res.to_csv(cache, index=False)
    return res


def hai_part(repeats: int, cv_tables: dict) -> pd.DataFrame:
    """The HAI table; ``cv_tables`` receives each indicator's CV table (when CV runs)."""
    rows = []
    cv_route = cv_glmer_available()
    for ind, d in hai_frames().items():
        k = int((d["flag"] != 0).sum())
        names = d["hospital"].to_list()
        base = {"indicator": ind, "hospitals": len(d),
                "state flags (higher/lower)": f"{k} ({(d['flag'] > 0).sum()}/"
                                               f"{(d['flag'] < 0).sum()})"}

        def add(method, picked, status="-", secs=float("nan"), gap="-", k_used=k,
                cpu=float("nan"), base=base, d=d):
            row = {**base, "method": method, "k": k_used, "status": status,
                   "time_s": round(secs, 3) if np.isfinite(secs) else "-",
                   "cpu_s": round(cpu, 3) if np.isfinite(cpu) else "-", "gap": gap}
            row.update(cross(d, picked) if picked is not None else
                       dict.fromkeys(["n_flagged", "TP", "FP", "FN", "TN", "direction"], "-"))
            rows.append(row)
            print({key: row[key] for key in ("indicator", "method", "status", "time_s", "TP",
                                             "FP", "direction")}, flush=True)

        for solver, reps, limit in (("auto", repeats, GLMER_TIME_LIMIT), ("SCIP", 1, 60.0)):
            secs, fit = glmer_fit(HAI_FORMULA, d, k, "poisson", reps, solver, limit)
            method = "mio_glmer poisson" + (f", solver={solver!r}, 1 run, limit {limit:g} s"
                                            if solver != "auto" else "")
            if isinstance(fit, str):
                add(method, None, status=fit)
            else:
                sel = fit.selected
                add(method, dict(zip(sel["level"], sel["estimate"], strict=True)),
                    fit.status, secs, f"{fit.gap:.1e}", cpu=LAST_CPU[0])

        res = lme4_hai(INDICATORS[ind], d)
        if isinstance(res, str):
            add("lme4 glmer: top k |mode|", None, status=res)
            add("lme4 glmer: |mode/condSD| > 1.96", None, status=res, k_used="-")
        else:
            res = res.set_index("level").loc[names]
            t = float(res["fit_time"].iloc[0])
            c = float(res["cpu_time"].iloc[0]) if "cpu_time" in res else float("nan")
            note = res["converge"].iloc[0] or "converged"
            add("lme4 glmer: top k |mode|", top_k(names, res["mode"].to_numpy(), k), note, t,
                cpu=c)
            z = (res["mode"] / res["condsd"]).to_numpy()
            picked = {names[i]: float(z[i]) for i in np.flatnonzero(np.abs(z) > 1.96)}
            add("lme4 glmer: |mode/condSD| > 1.96", picked, note, t, k_used="-", cpu=c)

        obs, exp_ = d["observed"].to_numpy(float), d["predicted"].to_numpy(float)
        add("Poisson LR at SIR = 1: top k", top_k(names, lr_statistic(obs, exp_), k))
        pval = exact_poisson_p(obs, exp_)
        add("exact Poisson test p < 0.05 (reference)",
            {names[i]: float(obs[i] - exp_[i]) for i in np.flatnonzero(pval < 0.05)},
            k_used="-")

        if d["denominator"].notna().all() and (d["denominator"] > 0).all():
            rows01 = expand_procedures(d)
            secs, lin = timed(lambda rows01=rows01, k=k: mixmio.mio_lmer(
                "y ~ 1 + offset(p) + (1 | hosp)", rows01, k=k, random_state=0), repeats)
            sel = lin.selected
            add(f"mio_lmer linear, {len(rows01):,} 0/1 rows",
                dict(zip(sel["level"], sel["estimate"], strict=True)), lin.status, secs,
                f"{lin.gap:.1e}")
        else:
            add("mio_lmer linear, 0/1 rows", None, status="n/a: no denominator")

        if cv_route != "cv_glmer" or SKIP_MIXMIO:
            add("mio_glmer, k by cluster-blocked CV", None, k_used="-",
                status="not run" if SKIP_MIXMIO else
                "not available yet (no cv_glmer / cv_lmer family=)")
            continue
        for rule in ("min", "1se"):
            t0 = time.perf_counter()
            cv = mixmio.cv_glmer(HAI_FORMULA, d,
                                 family="poisson", cv="blocked", folds=5, rule=rule,
                                 random_state=0, time_limit=GLMER_TIME_LIMIT)
            secs = time.perf_counter() - t0
            fit = cv.fit
            sel = fit.selected
            add(f"mio_glmer, k by 5-fold cluster-blocked CV (rule {rule})",
                dict(zip(sel["level"], sel["estimate"], strict=True)), fit.status, secs,
                f"{fit.gap:.1e}", k_used=cv.k_best)
            cv_tables[ind] = cv.table[["k", "mean", "se", "n_certified"]]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- synthetic

def make_glmm_frame(family: str, K: int, rows: int = 30, p: int = 10, frac: float = 0.1,
                    random_state: int = 0) -> tuple[pd.DataFrame, set[str]]:
    """Random-intercept GLMM data and the set of deviating clusters (as strings)."""
    rng = np.random.default_rng(random_state)
    g = np.repeat(np.arange(K), rows)
    X = rng.normal(size=(g.size, p - 1))
    beta = rng.uniform(-0.3, 0.3, size=p - 1)
    gamma = np.zeros(K)
    dev = rng.choice(K, size=int(round(frac * K)), replace=False)
    effect = 0.5 if family == "poisson" else 1.0
    gamma[dev] = effect * rng.choice([-1.0, 1.0], size=dev.size)
    if family == "poisson":
        eta = np.log(2.0) - 0.5 * float(beta @ beta) + X @ beta + gamma[g]
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        eta = np.log(0.3 / 0.7) + X @ beta + gamma[g]
        y = (rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, p)])
    df["g"] = g
    df["y"] = y
    return df, {str(c) for c in dev}


def statsmodels_vb_fit(family: str, K: int) -> dict:
    """One ``fit_vb()`` of statsmodels' Bayesian mixed GLM on the instance (seconds of the fit
    alone, the optimiser's success flag and iterations)."""
    import warnings

    from statsmodels.genmod.bayes_mixed_glm import (
        BinomialBayesMixedGLM,
        PoissonBayesMixedGLM,
    )

    df, _ = make_glmm_frame(family, K, random_state=0)
    cls = PoissonBayesMixedGLM if family == "poisson" else BinomialBayesMixedGLM
    model = cls.from_formula("y ~ " + " + ".join(f"x{j}" for j in range(1, 10)),
                             {"g": "0 + C(g)"}, df)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        fit = model.fit_vb()
        secs = time.perf_counter() - t0
    ret = fit.optim_retvals
    note = f"success={bool(ret.success)}, {int(ret.nit)} BFGS iterations"
    if caught:
        note += f", {len(caught)} RuntimeWarnings (overflow)"
    return {"statsmodels_vb_s": round(secs, 1), "statsmodels_vb_note": note}


def statsmodels_vb(family: str, K: int, timeout: float) -> dict:
    """statsmodels_vb_fit in a child process, stopped after ``timeout`` seconds."""
    cmd = [sys.executable, __file__, "--vb", family, str(K)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"statsmodels_vb_s": f"> {timeout:g} (stopped)", "statsmodels_vb_note": "-"}
    if proc.returncode != 0:
        return {"statsmodels_vb_s": "error",
                "statsmodels_vb_note": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mixmio_synth(family: str, K: int, truth: set[str], df: pd.DataFrame,
                 repeats: int) -> dict:
    k = K // 10
    secs, fit = glmer_fit(intercept_formula(10), df, k, family, repeats,
                          time_limit=SYNTH_TIME_LIMIT)
    if isinstance(fit, str):
        return {"mixmio_status": fit, "mixmio_s": "-", "mixmio_gap": "-",
                "mixmio_true_pos": "-"}
    tp = len(set(fit.selected["level"].astype(str)) & truth)
    return {"mixmio_status": fit.status, "mixmio_s": round(secs, 3),
            "mixmio_cpu_s": round(LAST_CPU[0], 3),
            "mixmio_gap": f"{fit.gap:.1e}", "mixmio_true_pos": f"{tp}/{len(truth)}"}


def lme4_synth(df: pd.DataFrame, truth: set[str], family: str, k: int, repeats: int,
               timeout: float) -> dict:
    if rscript() is None:
        return {"lme4_s": "not run: Rscript missing", "lme4_top_k_true_pos": "-"}
    res = run_glmer_r(df, family, intercept_formula(10), repeats, timeout)
    if isinstance(res, str):
        return {"lme4_s": res, "lme4_top_k_true_pos": "-"}
    top = top_k(res["level"].astype(str).to_list(), res["mode"].to_numpy(), k)
    return {"lme4_s": round(float(res["fit_time"].iloc[0]), 2),
            "lme4_fit_times": res["fit_times"].iloc[0],
            "lme4_cpu_s": round(float(res["cpu_time"].iloc[0]), 2) if "cpu_time" in res else "-",
            "lme4_fevals": res["fevals"].iloc[0] if "fevals" in res else "-",
            "lme4_converge": res["converge"].iloc[0] or "converged",
            "lme4_top_k_true_pos": f"{len(set(top) & truth)}/{len(truth)}"}


BASELINES = RESULTS / "glmer_baselines.csv"


def baselines(family: str, K: int, df, truth, repeats: int, r_timeout: float,
              vb_timeout: float | None, reuse: bool, skip_r: bool) -> dict:
    """lme4 (and statsmodels' VB, one fit, unless ``vb_timeout`` is None) on one synthetic
    instance; with ``reuse``, read from results/glmer_baselines.csv when that holds the
    instance (they do not depend on mixmio, and lme4 at K = 10,000 takes minutes)."""
    vb = vb_timeout is not None
    old = pd.read_csv(BASELINES, keep_default_na=False) if BASELINES.exists() else None
    if reuse and old is not None and "K" in old:
        hit = old[(old["family"] == family) & (old["K"] == K)]
        if len(hit) and (not vb or str(hit["statsmodels_vb_s"].iloc[0]) not in ("", "-")):
            out = hit.iloc[0].drop(["family", "K"]).to_dict()
            return {key: v for key, v in out.items() if v != ""}
    if skip_r:
        out = {"lme4_s": "skipped: a smaller K exceeded the limit", "lme4_top_k_true_pos": "-"}
    else:
        out = lme4_synth(df, truth, family, K // 10, repeats, r_timeout)
    out.update(statsmodels_vb(family, K, vb_timeout) if vb else {"statsmodels_vb_s": "-"})
    save_baseline(family, K, out, keep_vb=not vb)
    return out


def save_baseline(family: str, K: int, out: dict, keep_vb: bool) -> None:
    """Replace the instance's row of results/glmer_baselines.csv (re-read just before the
    write, so two runs side by side keep each other's rows); ``keep_vb`` keeps the old row's
    statsmodels columns."""
    row = {"family": family, "K": K, **out}
    old = pd.read_csv(BASELINES, keep_default_na=False) if BASELINES.exists() else None
    if old is not None:
        mine = (old["family"] == family) & (old["K"] == K)
        if keep_vb and mine.any():
            for col in ("statsmodels_vb_s", "statsmodels_vb_note"):
                if col in old and str(old.loc[mine, col].iloc[0]) not in ("", "-"):
                    row[col] = old.loc[mine, col].iloc[0]
        new = pd.concat([old[~mine].astype(str), pd.DataFrame([row]).astype(str)],
                        ignore_index=True)
    else:
        new = pd.DataFrame([row])
    new.to_csv(BASELINES, index=False)


def ratio(num, den):
    try:
        return round(float(num) / float(den), 2)
    except (TypeError, ValueError):
        return "-"


def synth_rows(repeats: int, r_timeout: float, sizes, vb_timeout: float | None,
               reuse: bool) -> pd.DataFrame:
    rows = []
    for family in FAMILIES:
        r_too_slow = False
        for K in sizes:
            reps = repeats if K <= 1000 else 1
            df, truth = make_glmm_frame(family, K, random_state=0)
            row = {"family": family, "K": K, "rows": len(df), "k": K // 10, "repeats": reps}
            row.update(mixmio_synth(family, K, truth, df, reps))
            row.update(baselines(family, K, df, truth, reps, r_timeout, vb_timeout, reuse,
                                 r_too_slow))
            r_too_slow = str(row["lme4_s"]).startswith("skipped")
            row["lme4 / mixmio"] = ratio(row["lme4_s"], row["mixmio_s"])
            row["lme4 / mixmio (CPU)"] = ratio(row.get("lme4_cpu_s"), row.get("mixmio_cpu_s"))
            if vb_timeout is not None:
                row["statsmodels / mixmio"] = ratio(row["statsmodels_vb_s"], row["mixmio_s"])
            rows.append(row)
            print(row, flush=True)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- report

def read_part(name: str) -> pd.DataFrame | None:
    path = RESULTS / f"glmer_{name}.csv"
    return pd.read_csv(path, keep_default_na=False) if path.exists() else None


RUNS = RESULTS / "glmer_runs.csv"
SUMMARY = ("<!-- summary: hand-written, kept when the script rewrites this file -->",
           "<!-- /summary -->")


def log_run(part: str, command: str) -> None:
    """Which command last wrote each part, and when (results/glmer_runs.csv)."""
    old = pd.read_csv(RUNS) if RUNS.exists() else pd.DataFrame(columns=["part"])
    row = pd.DataFrame([{"part": part, "command": command,
                         "finished (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}])
    pd.concat([old[old["part"] != part], row], ignore_index=True).to_csv(RUNS, index=False)


def targets(hai, synth) -> list[str]:
    lines = []
    if hai is not None:
        r = hai[(hai["indicator"] == "SSI Hysterectomy") & (hai["method"] == "mio_glmer poisson")]
        if len(r):
            st, t = r["status"].iloc[0], r["time_s"].iloc[0]
            ok = st == "optimal" and t not in ("-", "") and float(t) <= 5
            lines.append(f"- NY HAI SSI Hysterectomy, k = 4: `optimal` in <= 5 s: "
                         f"{'met' if ok else 'NOT met'} (status {st}, {t} s).")
    if synth is not None:
        for _, r in synth.iterrows():
            st, t = r["mixmio_status"], r["mixmio_s"]
            ok = st == "optimal" and t not in ("-", "") and float(t) <= 10
            verdict = ("not measured" if str(st).startswith("not run") else
                       "met" if ok else "NOT met")
            lines.append(f"- Synthetic {r['family']} K = 1,000 x 30, k = 100: `optimal` in "
                         f"<= 10 s: {verdict} (status {st}, {t} s; "
                         f"lme4 {r['lme4_s']} s, statsmodels VB {r['statsmodels_vb_s']} s).")
    return lines


def report() -> None:
    hai, synth, scaling, cv, runs = (read_part(n) for n in
                                     ("hai", "synth", "scaling", "hai_cv", "runs"))
    main = hai if hai is not None else pd.DataFrame({"note": ["HAI part not run"]})
    md = RESULTS / "glmer.md"
    kept = ""
    if md.exists() and SUMMARY[0] in md.read_text():
        text = md.read_text()
        kept = text[text.index(SUMMARY[0]): text.index(SUMMARY[1]) + len(SUMMARY[1])]
    notes = [kept or f"{SUMMARY[0]}\n{SUMMARY[1]}",
             "## Targets (computed from the tables)\n\n" + "\n".join(targets(hai, synth)),
             "## What was run\n\n" + (runs.to_markdown(index=False) if runs is not None
                                        else "-")
             + "\n\nTimes are medians of `--repeats` runs (3 unless a table says otherwise; "
             "K > 1,000: one run); the 2-core machine is shared with other helpers, so times "
             "are noisy. R 4.2.2, lme4 1.1-31 (only the glmer() call timed, default nAGQ = 1); "
             f"statsmodels {__import__('statsmodels').__version__} (one fit_vb()).",
             "TP/FP/FN/TN cross the method's flagged hospitals with the state's flags (TP: "
             "both; FP: the method only; FN: the state only; TN: neither), the 2x2 table in "
             "one row; `direction`: TP in the state's direction (higher/lower)."]
    if cv is not None:
        notes.append("## Cluster-blocked CV tables (mean held-out deviance per hospital)\n\n"
                     + cv.to_markdown(index=False))
    if synth is not None:
        notes.append("## Synthetic, K = 1,000 clusters x 30 rows, p = 10, k = 100\n\n"
                     + synth.to_markdown(index=False))
    if scaling is not None:
        notes.append("## mio_glmer time against K (30 rows, 10% deviating, k = K/10)\n\n"
                     + scaling.to_markdown(index=False))
    write_tables("glmer", main, "mio_glmer: NY HAI 2016 against the state's flags, "
                 "lme4 and statsmodels", "\n\n".join(notes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="hai,synth,scaling")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--r-timeout", type=float, default=300.0,
                    help="seconds allowed to one Rscript call (all its repeats)")
    ap.add_argument("--vb-timeout", type=float, default=1800.0,
                    help="seconds allowed to statsmodels' one fit_vb()")
    ap.add_argument("--vb", nargs=2, metavar=("FAMILY", "K"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=",".join(map(str, SCALING_K)),
                    help="the K of the scaling part")
    ap.add_argument("--time-limit", type=float, default=GLMER_TIME_LIMIT,
                    help="seconds allowed to one synthetic mio_glmer fit")
    ap.add_argument("--baselines-only", action="store_true",
                    help="skip the mio_glmer fits (collect the lme4 / statsmodels numbers)")
    ap.add_argument("--reuse-baselines", action="store_true",
                    help="take lme4 / statsmodels results from results/glmer_baselines.csv "
                         "when it holds the instance")
    args = ap.parse_args()
    if args.vb:
        print(json.dumps(statsmodels_vb_fit(args.vb[0], int(args.vb[1]))))
        return
    if rscript() is None:
        print("Rscript not found: the lme4 parts are skipped")
    global SKIP_MIXMIO, SYNTH_TIME_LIMIT
    SKIP_MIXMIO = args.baselines_only
    SYNTH_TIME_LIMIT = args.time_limit
    t0 = time.perf_counter()
    parts = args.parts.split(",")
    command = "python benchmarks/bench_glmer.py " + " ".join(sys.argv[1:])
    if "hai" in parts:
        cv_tables: dict = {}
        hai_part(args.repeats, cv_tables).to_csv(RESULTS / "glmer_hai.csv", index=False)
        if cv_tables:
            pd.concat(cv_tables, names=["indicator"]).reset_index(level=0).to_csv(
                RESULTS / "glmer_hai_cv.csv", index=False)
        log_run("hai", command)
    if "synth" in parts:
        synth_rows(args.repeats, args.r_timeout, (1000,), args.vb_timeout,
                   args.reuse_baselines).to_csv(RESULTS / "glmer_synth.csv", index=False)
        log_run("synth", command)
    if "scaling" in parts:
        sizes = tuple(int(v) for v in args.sizes.split(","))
        synth_rows(args.repeats, args.r_timeout, sizes, None,
                   args.reuse_baselines).to_csv(RESULTS / "glmer_scaling.csv", index=False)
        log_run("scaling", command)
    report()
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
