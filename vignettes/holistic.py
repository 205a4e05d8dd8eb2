"""Holistic regression: what predicts a student's final grade, under rules a reader can check?

The UCI Student Performance data (Cortez and Silva 2008) record 30 attributes of 649 students
of Portuguese in two Portuguese secondary schools (family, study habits, alcohol use,
absences, ...) and their final grade G3 (0 to 20). We ask which attributes predict G3 *before*
any period grade is known (G1 and G2 are left out), with a model a reader can check:
at most k columns; a factor's dummies in or out together (group sparsity); never two columns
correlated above 0.6 (correlation limit); at most one form of age, absences and failures
among x, x², √x and log x (transformations). `mio_lm` solves this best-subset problem
exactly and proves it; scikit-learn's `LassoCV` is the usual alternative. We compare the
variables each chooses, their error on held-out students, which constraints actually bind,
and the certificate.
"""

# %% Data: the Portuguese course file, one row per student
import importlib.resources
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LassoCV, LinearRegression, lasso_path
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

import mixmio

FAST = os.environ.get("MIXMIO_VIGNETTE_FAST") == "1"
pd.set_option("display.width", 120)
warnings.filterwarnings("ignore", message=".*is an affine function.*")

# the UCI file as shipped with mixmio (mixmio/datasets/SOURCES.md: copied unchanged, CC BY 4.0)
with importlib.resources.as_file(
        importlib.resources.files("mixmio.datasets") / "student-por.csv") as path:
    students = pd.read_csv(path, sep=";")
students = students.drop(columns=["G1", "G2"])  # predict before any period grade is known
rng = np.random.default_rng(2016)
held = np.zeros(len(students), dtype=bool)
held[rng.permutation(len(students))[: len(students) // 4]] = True
train = students[~held].reset_index(drop=True)
test = students[held].reset_index(drop=True)
attributes = [c for c in students.columns if c != "G3"]
formula = "G3 ~ " + " + ".join(attributes)
print(f"{len(students)} students, {len(attributes)} attributes; training {len(train)}, "
      f"held out {len(test)} (a random quarter, seed 2016)")
print(f"G3: mean {students.G3.mean():.2f}, SD {students.G3.std():.2f}; "
      f"{int((students.G3 == 0).sum())} students have G3 = 0 (did not sit the final exam; "
      "kept, as in the source)")

# %% [markdown]
# ## The constraints
#
# `mio_lm` counts columns toward k (a factor with four dummies uses four). The nominal
# factors Mjob, Fjob, reason and guardian get a `GroupSparsity` each (mio_lm groups a factor's
# dummies by default; we state it). `CorrelationLimit(0.6)` forbids every pair of candidate
# columns whose training correlation exceeds 0.6, and `Transforms` adds x², √x and log x of
# age and absences (and x², √x of failures, which takes only the values 0 to 3) as candidates
# with at most one form of each variable in the model. The compiled constraints tell which
# pairs conflict.

# %% The candidate columns and the conflicts the constraints compile to
factors = ["Mjob", "Fjob", "reason", "guardian"]
forms = [mixmio.Transforms(["age", "absences"]),
         mixmio.Transforms(["failures"], forms=("square", "sqrt"))]
groups = [mixmio.GroupSparsity(f) for f in factors]
corr = mixmio.CorrelationLimit(0.6)
constraints = groups + [corr] + forms
probe = mixmio.mio_lm(formula, train, k=1, constraints=constraints, random_state=0)
RIDGE = float(probe.ridge)  # one ridge for every fit below, so their objectives compare
cands = [c for c in probe.coef.index if c != "Intercept"]
print(f"{len(cands)} candidate columns; the largest feasible support k_max = {probe.k_max}")
print("groups:", {name: len(cols) for name, cols in probe.compiled.groups})
print("forms:", {v: cols for v, cols in probe.compiled.transforms.items()})
between = [(a, b, round(r, 3)) for a, b, r in probe.compiled.conflicts
           if not any(a in cols and b in cols for cols in probe.compiled.transforms.values())]
print(f"{len(probe.compiled.conflicts)} conflicting pairs with |corr| > 0.6; between "
      f"different variables: {between}")

# %% [markdown]
# ## Choosing k by 5-fold cross-validation on the training students
#
# Every fold's fit is the exact best subset under the constraints; its status says whether
# the branch and bound proved it. `LassoCV` gets the same candidate columns (standardised,
# forms included) and the same folds.

# %% Cross-validation over k (mio_lm) and over the penalty (LassoCV), same folds
ks = [2, 5] if FAST else list(range(1, 11))
n_folds = 2 if FAST else 5
folds = list(KFold(n_folds, shuffle=True, random_state=0).split(train))
mse = np.zeros((len(ks), n_folds))
statuses = []
for i, k in enumerate(ks):
    for j, (fit_rows, val_rows) in enumerate(folds):
        f = mixmio.mio_lm(formula, train.iloc[fit_rows], k=k, constraints=constraints,
                          ridge=RIDGE, random_state=0, time_limit=30)
        statuses.append(f.status)
        val = train.iloc[val_rows]
        mse[i, j] = np.mean((val.G3.to_numpy() - f.predict(val)) ** 2)
cv_table = pd.DataFrame({"k": ks, "cv_mse": mse.mean(axis=1),
                         "se": mse.std(axis=1, ddof=1) / np.sqrt(n_folds)})
k_min = int(cv_table.k[cv_table.cv_mse.idxmin()])
limit = cv_table.cv_mse.min() + cv_table.se[cv_table.cv_mse.idxmin()]
k_1se = int(cv_table.k[cv_table.cv_mse <= limit].min())
print(cv_table.round(3).to_string(index=False))
print(f"fold fits: {pd.Series(statuses).value_counts().to_dict()}")
print(f"minimum CV error at k = {k_min}; the 1-SE rule would take k = {k_1se}")

X_train = mixmio.build_design(probe.formula, train).X[cands].to_numpy(dtype=float)
X_test = mixmio.build_design(probe.formula, test).X[cands].to_numpy(dtype=float)
scaler = StandardScaler().fit(X_train)
Xs_train, Xs_test = scaler.transform(X_train), scaler.transform(X_test)
# sklearn's default grid, written out (its keyword for the grid size changed across versions)
alpha_max = np.max(np.abs(Xs_train.T @ (train.G3 - train.G3.mean()))) / len(train)
alphas = np.geomspace(alpha_max, 1e-3 * alpha_max, 60 if FAST else 100)
lasso = LassoCV(cv=folds, alphas=alphas, max_iter=20000).fit(Xs_train, train.G3)
_, path_coefs, _ = lasso_path(Xs_train, train.G3, alphas=lasso.alphas_, max_iter=20000)
lasso_nnz = (np.abs(path_coefs) > 0).sum(axis=0)
lasso_cv = lasso.mse_path_.mean(axis=1)
print(f"LassoCV: alpha = {lasso.alpha_:.4f}, {int(np.sum(lasso.coef_ != 0))} non-zero "
      f"columns, CV MSE {lasso_cv[np.argmin(np.abs(lasso.alphas_ - lasso.alpha_))]:.3f}")
small = lasso_nnz <= k_min
print(f"LassoCV path with at most {k_min} non-zero columns: best CV MSE "
      f"{lasso_cv[small].min():.3f} (mio_lm at k = {k_min}: {cv_table.cv_mse.min():.3f})")

fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
ax.errorbar(cv_table.k, cv_table.cv_mse, yerr=cv_table.se, marker="o", ms=4, capsize=2,
            label="mio_lm, constrained best subset (± 1 SE)")
ax.plot(lasso_nnz, lasso_cv, ".", color="tab:orange", ms=4,
        label="LassoCV path (x = its non-zero columns)")
ax.axvline(k_min, color="tab:blue", ls="--", lw=1, label=f"mio_lm minimum (k = {k_min})")
ax.axvline(int(np.sum(lasso.coef_ != 0)), color="tab:orange", ls=":", lw=1.5,
           label=f"LassoCV choice ({int(np.sum(lasso.coef_ != 0))} columns)")
ax.set_xlabel("non-zero columns")
ax.set_ylabel(f"{n_folds}-fold CV mean squared error (G3)")
ax.set_xlim(0, max(40, max(ks) + 1))
ax.legend(fontsize=8)

# %% [markdown]
# The curve is flat from k = 5 on: the minimum is at k = 6 (CV MSE 8.69), but its standard
# error (0.91) is wider than the whole range of the curve, so the 1-SE rule would take k = 1
# (√failures alone). We take the minimum, as `LassoCV` does. All 50 fold fits are certified
# optimal. The lasso reaches a lower CV error (8.48), but only with 17 shrunken columns: along
# its path, with at most 6 non-zero columns it does no better than 8.89, against the best
# subset's 8.69. (The lasso points plot each penalty's fold-averaged error against the number
# of columns that penalty keeps on all training students.)
#
# ## The chosen model, its certificate and the bootstrap
#
# The fit at the CV minimum, on all training students.

# %% The constrained best subset at the CV minimum
fit = mixmio.mio_lm(formula, train, k=k_min, constraints=constraints, ridge=RIDGE,
                    random_state=0, time_limit=60)
print(fit.summary())
print(f"certificate: status={fit.status}, objective={fit.objective:.3f}, "
      f"bound={fit.best_bound:.3f}, gap={fit.gap:.1e}, solver={fit.solver}, "
      f"{fit.solve_time:.2f} s")

# %% [markdown]
# Six columns, proven optimal (gap 6e-16 in 0.7 s): students of the Mousinho da Silveira
# school (MS) score 1.5 points lower than those of Gabriel Pereira, boys 0.86 lower, each
# level of weekly study time adds 0.43, extra educational support from the school goes with
# 1.5 points less (it is given to weaker students), wanting higher education with 2.0 more.
# Of the forms of past failures the transformation constraint keeps √failures (−2.5 per unit):
# the first failure costs the most. Training R² is 0.31; these attributes leave most of the
# grade unexplained.

# %% Does the selection survive resampling? A pairs bootstrap re-runs the selection
boot = fit.bootstrap(B=6 if FAST else 100, random_state=1, progress=False)
print(boot.report())
print(f"replicate statuses: {boot.status_counts.to_dict()}")
boot.plot_selection()

# %% [markdown]
# Four columns are stable: √failures (selected in 99 of 100 replicates), school (97), higher
# (90) and school support (70). Sex (33) and study time (42) are not, and the exact six-column
# subset recurs in only 3% of the replicates: near-equivalent subsets swap Fedu, health and
# Dalc in and out. Every replicate's selection was proven optimal.
#
# ## Which constraints bind?
#
# A constraint binds when dropping it (keeping the others, the same k and ridge) gives a
# strictly better training objective. We check at the chosen k and at k = 10. "No groups"
# replaces each factor by its dummies as separate 0/1 columns; "no one-form rule" puts the
# transformed forms in the formula as plain columns (the correlation limit still applies to
# them).

# %% Refit at the same k without each constraint
dummies = pd.get_dummies(students[factors], drop_first=True, dtype=float)
dummies.columns = [c.replace("-", "_") for c in dummies.columns]
ungrouped = pd.concat([students.drop(columns=factors), dummies], axis=1)[~held].reset_index(
    drop=True)
formula_ungrouped = "G3 ~ " + " + ".join([a for a in attributes if a not in factors]
                                          + list(dummies.columns))
plain_forms = " + ".join(c for cols in probe.compiled.transforms.values() for c in cols
                         if c not in attributes)
relaxed = {
    "no groups": (formula_ungrouped, ungrouped, [corr] + forms),
    "no correlation limit": (formula, train, groups + forms),
    "no one-form rule": (formula + " + " + plain_forms, train, groups + [corr]),
    "none of them": (formula_ungrouped + " + " + plain_forms, ungrouped, []),
}
if FAST:  # the fast run checks three relaxations at k_min only
    del relaxed["none of them"]
rows = []
for k in [k_min] + ([] if FAST or k_min == 10 else [10]):
    base = fit if k == k_min else mixmio.mio_lm(formula, train, k=k, constraints=constraints,
                                                ridge=RIDGE, random_state=0, time_limit=60)
    rows.append({"k": k, "dropped": "(nothing)", "objective": round(base.objective, 3),
                 "status": base.status, "binds": "", "enters": "", "leaves": ""})
    for name, (fml, data, cons) in relaxed.items():
        r = mixmio.mio_lm(fml, data, k=k, constraints=cons, ridge=RIDGE, random_state=0,
                          time_limit=60)
        better = r.objective < base.objective - 1e-6 * abs(base.objective)
        rows.append({"k": k, "dropped": name, "objective": round(r.objective, 3),
                     "status": r.status, "binds": "yes" if better else "no",
                     "enters": ", ".join(sorted(set(r.selected) - set(base.selected))) or "-",
                     "leaves": ", ".join(sorted(set(base.selected) - set(r.selected))) or "-"})
binding = pd.DataFrame(rows)
print(binding.to_string(index=False))

# %% [markdown]
# At k = 6 no constraint binds: the best six columns obey every rule anyway, so here the rules
# cost nothing in fit. At k = 10 the group rule binds: without it the single dummy
# reason[T.other] would replace famsize (objective 1842.76 against 1844.37). The correlation
# limit and the one-form rule do not bind one at a time, because each blocks the same pair
# (failures with √failures, correlation 0.97); with every rule dropped, failures and
# √failures enter together (1838.07).
#
# ## Against LassoCV: chosen columns, rule breaks and held-out error

# %% What LassoCV chose, and which of the rules its choice breaks
lasso_cols = [c for c, b in zip(cands, lasso.coef_, strict=True) if b != 0]
split = {name: [c for c in cols if c in lasso_cols]
         for name, cols in probe.compiled.groups}
split = {name: f"{len(cols)} of {len(dict(probe.compiled.groups)[name])}"
         for name, cols in split.items()
         if 0 < len(cols) < len(dict(probe.compiled.groups)[name])}
pairs = [(a, b, round(r, 2)) for a, b, r in probe.compiled.conflicts
         if a in lasso_cols and b in lasso_cols]
multi = {v: [c for c in cols if c in lasso_cols]
         for v, cols in probe.compiled.transforms.items()}
multi = {v: cols for v, cols in multi.items() if len(cols) > 1}
print(f"LassoCV keeps {len(lasso_cols)} columns: {lasso_cols}")
print(f"factors it splits (some dummies in, some out): {split or 'none'}")
print(f"pairs with |corr| > 0.6 it keeps together: {pairs or 'none'}")
print(f"variables with more than one form: {multi or 'none'}")
print(f"mio_lm keeps {len(fit.selected)}: {fit.selected}")

# %% Held-out students: error of each model (fitted on the training students only)
ols = LinearRegression().fit(X_train, train.G3)
y_test = test.G3.to_numpy()
preds = {
    "mean of training G3": np.full(len(test), train.G3.mean()),
    f"mio_lm, k = {k_min}, constrained": fit.predict(test),
    f"LassoCV ({len(lasso_cols)} columns)": lasso.predict(Xs_test),
    f"OLS, all {len(cands)} columns": ols.predict(X_test),
}
if k_1se != k_min:
    sparse = mixmio.mio_lm(formula, train, k=k_1se, constraints=constraints, ridge=RIDGE,
                           random_state=0, time_limit=60)
    preds[f"mio_lm, k = {k_1se} (1-SE rule)"] = sparse.predict(test)
held_out = pd.DataFrame({
    "model": list(preds),
    "RMSE": [np.sqrt(np.mean((y_test - p) ** 2)) for p in preds.values()],
    "MAE": [np.mean(np.abs(y_test - p)) for p in preds.values()],
    "R2": [1 - np.sum((y_test - p) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
           for p in preds.values()]})
print(held_out.round(3).to_string(index=False))
diff = (y_test - preds[f"mio_lm, k = {k_min}, constrained"]) ** 2 - (
    y_test - preds[f"LassoCV ({len(lasso_cols)} columns)"]) ** 2
print(f"squared-error difference mio_lm - LassoCV per held-out student: mean {diff.mean():.3f}"
      f", SE {diff.std(ddof=1) / np.sqrt(len(diff)):.3f}")

# %% Coefficients side by side (standardised: change in G3 per SD of the column)
sd = pd.Series(scaler.scale_, index=cands)
both = sorted(set(lasso_cols) | set(fit.selected), key=cands.index)
coefs = pd.DataFrame({"mio_lm": [fit.coef.get(c, 0.0) * sd[c] for c in both],
                      "LassoCV": [lasso.coef_[cands.index(c)] for c in both]}, index=both)
print(coefs.round(3).to_string())
fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.22 * len(both)), layout="constrained")
yy = np.arange(len(both))[::-1]
ax.barh(yy + 0.2, coefs["mio_lm"], height=0.4, label=f"mio_lm (k = {k_min})")
ax.barh(yy - 0.2, coefs["LassoCV"], height=0.4, label="LassoCV", color="tab:orange")
ax.set_yticks(yy)
ax.set_yticklabels(both, fontsize=7)
ax.axvline(0, color="gray", lw=0.8)
ax.set_xlabel("standardised coefficient (G3 points per SD of the column)")
ax.set_ylabel("candidate column")
ax.legend(fontsize=8)

# %% [markdown]
# ## What we found
#
# LassoCV keeps 17 columns. It takes one of the four dummies of Mjob and of Fjob and one of
# the three of reason (each against its baseline level, so "the mother's job matters" cannot
# be read off), and it keeps Dalc and Walc together (correlation 0.61) with small shrunken
# coefficients. On the 162 held-out students it predicts best: RMSE 2.17 (R² 0.36), against
# 2.24 (R² 0.32) for mio_lm at k = 6, 2.36 for OLS on all 47 columns and 2.44 for the 1-SE
# choice k = 1. Per student, mio_lm's squared error exceeds the lasso's by 0.31 ± 0.15, about
# two standard errors. That is a modest edge on one split of 162 students, not a general
# ranking.
#
# So the lasso buys a little accuracy with three times as many columns, small shrunken
# effects, and rules broken. The holistic model gives six unshrunken effects that obey the
# rules, with a certificate that no other six columns fit the training data better. The rules
# were free at the chosen k, and the bootstrap says which four of the six effects to trust.
# There is no lme4 comparison here: the model has no random effects, so the classical
# comparators are LassoCV and OLS.
