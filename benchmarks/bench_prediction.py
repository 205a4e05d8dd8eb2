"""Prediction for new clusters on the seed paper's confounded design (issue 15).

``mixmio.simulate`` draws the paper's design (x_iv = xi_iv gamma_c + N(0, 1), so covariates
carry information about the cluster effect), here with 50% of clusters deviating.  Each
replicate draws 2K clusters and splits them at random: K clusters train, the other K are
*unseen* test clusters (whole clusters, never in training).  mixmio's k is chosen by 5-fold
cluster-blocked CV (``cv_lmer(cv="blocked", predict_new="soft")``); the refit then predicts
the test rows by each ``new_levels`` mode.  Baselines on the same rows: pooled OLS and
statsmodels MixedLM (random intercepts; new clusters get its population prediction x'beta,
there being no BLUP for them).

Second part: how often CV picks the true number of deviating clusters (grid k = 0..K) with
blocked folds and with within-cluster folds (which the paper's validation resembles).

Writes ``results/prediction.md`` and ``results/prediction.csv``.
Run: ``python benchmarks/bench_prediction.py [replicates]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
import mixmio  # noqa: E402
from _common import write_tables  # noqa: E402

SETTINGS = {"High (K=14, P=35)": (14, 35), "Larger (K=50, P=35)": (50, 35)}
#: replicates per setting, as a share of the command-line count (the larger setting's CV over
#: k = 0..K costs ~2 min a replicate on 2 cores)
SHARE = {"prediction": {"High (K=14, P=35)": 1.0, "Larger (K=50, P=35)": 0.5},
         "true_k": {"High (K=14, P=35)": 1.0, "Larger (K=50, P=35)": 0.1}}


def reps(part: str, name: str, R: int) -> int:
    return max(2, int(round(SHARE[part][name] * R)))
MODES = ("population", "soft", "hard", "features")


def split_draw(K: int, P: int, seed: int):
    sim = mixmio.simulate(2 * K, P, zero_fraction=0.5, n_sets=1, random_state=seed)
    df = sim.train
    rng = np.random.default_rng(seed + 10_000)
    train_ids = rng.permutation(2 * K)[:K]
    is_train = df["cluster"].isin(train_ids)
    return df[is_train].reset_index(drop=True), df[~is_train].reset_index(drop=True), sim


def baselines(train: pd.DataFrame, test: pd.DataFrame, P: int) -> dict[str, float]:
    import statsmodels.api as sm

    cols = [f"x{v}" for v in range(1, P + 1)]
    Xtr = sm.add_constant(train[cols].to_numpy())
    Xte = sm.add_constant(test[cols].to_numpy(), has_constant="add")
    ytr, yte = train["y"].to_numpy(), test["y"].to_numpy()
    ols = np.linalg.lstsq(Xtr, ytr, rcond=None)[0]
    out = {"pooled OLS": float(np.mean((yte - Xte @ ols) ** 2))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        try:
            m = sm.MixedLM(ytr, Xtr, groups=train["cluster"].to_numpy()).fit(reml=True)
            fe = np.asarray(m.fe_params)
            out["MixedLM (population)"] = float(np.mean((yte - Xte @ fe) ** 2))
            out["_mixedlm_converged"] = float(bool(m.converged))
        except Exception:  # noqa: BLE001 - a failed baseline is recorded, not fatal
            out["MixedLM (population)"] = np.nan
            out["_mixedlm_converged"] = 0.0
        out["_mixedlm_s"] = time.perf_counter() - t0
    return out


def mixmio_scores(train, test, P, seed) -> dict[str, float]:
    formula = "y ~ " + " + ".join(f"x{v}" for v in range(1, P + 1)) + " + (1 | cluster)"
    t0 = time.perf_counter()
    cv = mixmio.cv_lmer(formula, train, cv="blocked", folds=5, predict_new="soft",
                        random_state=seed)
    out = {"_cv_s": time.perf_counter() - t0, "_k": float(cv.k_best),
           "_certified": float(cv.fit.status == "optimal")}
    yte = test["y"].to_numpy()
    for mode in MODES:
        pred = cv.fit.predict(test, new_levels=mode).to_numpy()
        out[f"mixmio {mode}"] = float(np.mean((yte - pred) ** 2))
    return out


def interval(v: np.ndarray) -> tuple[float, float, float]:
    v = v[np.isfinite(v)]
    m = float(np.mean(v))
    h = float(stats.t.ppf(0.975, v.size - 1) * np.std(v, ddof=1) / np.sqrt(v.size))
    return m, m - h, m + h


def prediction_part(R: int) -> tuple[pd.DataFrame, list[str]]:
    rows, notes = [], []
    for name, (K, P) in SETTINGS.items():
        recs = []
        for r in range(reps("prediction", name, R)):
            train, test, sim = split_draw(K, P, seed=r)
            rec = baselines(train, test, P)
            rec["_truth"] = float(np.sum(sim.gamma.loc[train["cluster"].unique()] != 0))
            rec.update(mixmio_scores(train, test, P, seed=r))
            recs.append(rec)
            print(name, r, {k: round(v, 3) for k, v in rec.items()}, flush=True)
        df = pd.DataFrame(recs)
        methods = [c for c in df.columns if not c.startswith("_")]
        for m in methods:
            mean, lo, hi = interval(df[m].to_numpy())
            d_ols = interval((df[m] - df["pooled OLS"]).to_numpy())
            d_mlm = interval((df[m] - df["MixedLM (population)"]).to_numpy())
            rows.append({"setting": name, "method": m, "replicates": int(df[m].notna().sum()),
                         "test MSE": mean, "95% CI": f"[{lo:.3f}, {hi:.3f}]",
                         "minus OLS (95% CI)": f"{d_ols[0]:+.3f} [{d_ols[1]:+.3f}, "
                                               f"{d_ols[2]:+.3f}]",
                         "minus MixedLM (95% CI)": f"{d_mlm[0]:+.3f} [{d_mlm[1]:+.3f}, "
                                                   f"{d_mlm[2]:+.3f}]",
                         "beats OLS": f"{int((df[m] < df['pooled OLS']).sum())}/{len(df)}"})
        notes.append(f"{name}: CV-chosen k median {df['_k'].median():.0f} (of K = {K}; "
                     f"true deviating median {df['_truth'].median():.0f}); refits "
                     f"certified {int(df['_certified'].sum())}"
                     f"/{len(df)}; CV time median {df['_cv_s'].median():.1f} s; MixedLM "
                     f"converged {int(df['_mixedlm_converged'].sum())}/{len(df)}, median "
                     f"{df['_mixedlm_s'].median():.2f} s.")
    return pd.DataFrame(rows), notes


def true_k_part(R: int, only: str | None = None) -> pd.DataFrame:
    rows = []
    for name, (K, P) in SETTINGS.items():
        if only is not None and name != only:
            continue
        formula = "y ~ " + " + ".join(f"x{v}" for v in range(1, P + 1)) + " + (1 | cluster)"
        hits = {("blocked", "min"): [], ("blocked", "1se"): [], ("within", "min"): [],
                ("within", "1se"): []}
        for r in range(reps("true_k", name, R)):
            sim = mixmio.simulate(K, P, zero_fraction=0.5, n_sets=1, random_state=100 + r)
            truth = int(np.sum(sim.gamma.to_numpy() != 0))
            for cvname in ("blocked", "within"):
                cv = mixmio.cv_lmer(formula, sim.train, k=list(range(K + 1)), cv=cvname,
                                    predict_new="soft", random_state=r)
                hits[(cvname, "min")].append(cv.k_min - truth)
                hits[(cvname, "1se")].append(cv.k_1se - truth)
            print(name, r, truth, {k: v[-1] for k, v in hits.items()}, flush=True)
        for (cvname, rule), d in hits.items():
            d = np.asarray(d)
            rows.append({"setting": name, "cv": cvname, "rule": rule, "replicates": d.size,
                         "picks true k": f"{int(np.sum(d == 0))}/{d.size}",
                         "within +-1": f"{int(np.sum(np.abs(d) <= 1))}/{d.size}",
                         "mean (k_best - true)": float(np.mean(d)),
                         "mean |k_best - true|": float(np.mean(np.abs(d)))})
    return pd.DataFrame(rows)


HEADER = ("Design: `mixmio.simulate(2K, P, zero_fraction=0.5)`, the paper's confounded "
          "covariates, 50 rows per cluster, noise sd sqrt(0.5), effects +-10; per replicate "
          "half of the 2K clusters (at random) train and the other half are unseen test "
          "clusters. mixmio's k by 5-fold blocked CV with soft prediction. Intervals: "
          "t-intervals over replicates of the mean test MSE and of the paired difference "
          "to each baseline (negative = mixmio better). Note on the design: x = xi gamma + "
          "N(0, 1) with xi symmetric, so a cluster's covariates reveal |gamma| but not its "
          "sign; a tree from x to the training clusters can tell that a new cluster deviates "
          "but averages the +10 and -10 clusters, and no x-based rule can predict the sign.")


def main(R: int = 20, part: str = "all") -> None:
    """``part``: "prediction" writes results/prediction.{md,csv}; "true_k" adds the CV-picks-k
    table (results/prediction_true_k.csv) and its section to prediction.md, one setting at a
    time, so a long run keeps what it has finished."""
    from _common import RESULTS

    t0 = time.perf_counter()
    if part in ("all", "prediction"):
        pred, notes = prediction_part(R)
        print(pred.to_string())
        write_tables("prediction", pred, "Prediction for unseen clusters (seed paper's design)",
                     HEADER + "\n\n" + "\n".join(f"- {n}" for n in notes)
                     + f"\n\nPrediction part: {time.perf_counter() - t0:.0f} s.")
    if part in ("all", "true_k"):
        md = RESULTS / "prediction.md"
        base = md.read_text().split("\n## How often CV picks")[0].rstrip() + "\n"
        done = []
        for name in SETTINGS:
            t1 = time.perf_counter()
            done.append(true_k_part(R, only=name))
            truek = pd.concat(done, ignore_index=True)
            truek.to_csv(RESULTS / "prediction_true_k.csv", index=False)
            md.write_text(base + "\n## How often CV picks the true number of deviating "
                          "clusters\n\nTraining set of `simulate(K, P, zero_fraction=0.5)` "
                          "(ceil(K/2) clusters deviate), grid k = 0..K, 5 folds, soft "
                          "prediction for blocked folds.\n\n" + truek.to_markdown(index=False)
                          + f"\n\n{name}: {time.perf_counter() - t1:.0f} s.\n")
            print(truek.to_string(), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20,
         sys.argv[2] if len(sys.argv) > 2 else "all")
