"""Which students over- or under-perform once their background is accounted for?

The UCI Student Performance data (Cortez and Silva 2008) hold the grades of Portuguese
secondary-school students in Mathematics and in Portuguese, three grading periods each (G1, G2,
G3, on a 0-20 scale), with 30 attributes of the student, family and school. As in the seed
paper, we keep the 382 students present in both files, standardise the numeric covariates and
dummy-code the categorical ones (`mixmio.datasets.load("students")`: six grades per student).
A student's random intercept is then their performance *given* their stratum of covariates.
Ranking students by raw mean grade picks the extremes of the raw scale; a sparse mixed model
with `(1 | student)` and a cap of k students picks those whose grades the covariates explain
worst. We compare the two shortlists (the paper's concordance plot) and lme4's shrunken modes.
"""

# %% Setup
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mixmio

FAST = os.environ.get("MIXMIO_VIGNETTE_FAST") == "1"
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
DATA = HERE / "data"

students = mixmio.datasets.load("students")
covariates = [c for c in students.columns if c not in ("student", "subject", "period", "grade")]
formula = ("grade ~ subject + C(period) + " + " + ".join(covariates) + " + (1 | student)")
print(f"{students['student'].nunique()} students, {len(students)} grades "
      f"(2 subjects x 3 periods each), {len(covariates)} covariates + subject + period")
raw = students.groupby("student")["grade"].mean().rename("raw_mean")
print(f"raw mean grade: median {raw.median():.2f}, 10th percentile {raw.quantile(0.1):.2f}, "
      f"90th percentile {raw.quantile(0.9):.2f}")
zeros = students[students["grade"] == 0].groupby("student").size()
print(f"{len(zeros)} students have at least one grade 0 (a period exam not sat), "
      f"{int(zeros.sum())} zero grades in all")

# %% [markdown]
# ## The sparse model: at most k = 76 deviating students
#
# The paper colours the top and bottom 10% of raw scores (38 + 38 students); we give mixmio
# the same budget, k = 76 non-zero student intercepts, with all 39 covariates plus subject and
# period as fixed effects (43 fixed columns with the intercept). With 382 students the branch
# and bound does not close the gap in reasonable time (issue 21). Fewer covariates did not
# help: with only the 13 student attributes the gap after 30 s was 38%, against 35% with all
# of them. So the fit has a time limit and reports the best selection found with its proven
# gap.

# %% Fit with a time limit
TIME_LIMIT = 4 if FAST else 60
K = 76
fit = mixmio.mio_lmer(formula, students, k=K, time_limit=TIME_LIMIT, random_state=0)
print(f"status={fit.status}  objective={fit.objective:.1f}  bound={fit.best_bound:.1f}  "
      f"gap={fit.gap:.1%}  time={fit.solve_time:.1f} s  solver={fit.solver}")
gamma = fit.ranef.set_index("level")["estimate"]  # exact zeros for the 306 others
print(fit.summary())

# %% Does the selection depend on the time limit?
short = mixmio.mio_lmer(formula, students, k=K, time_limit=TIME_LIMIT / 4, random_state=1)
same = set(short.selected["level"]) & set(fit.selected["level"])
print(f"a {TIME_LIMIT / 4:g} s search with another seed: status={short.status}, "
      f"gap={short.gap:.1%}; {len(same)} of its {len(short.selected)} students are in the "
      f"{TIME_LIMIT:g} s selection; objectives {short.objective:.1f} vs {fit.objective:.1f}")


# %% [markdown]
# The search stops at its time limit with a proven gap of 35.1% (objective 5680.0, lower bound
# 3687.0): the selection is the best found, **not** certified optimal. A search a quarter as long
# with another seed ends at the same 76 students and the same objective, so the incumbent is found
# early and the rest of the time goes into the lower bound, which stays far below the objective
# with 382 students that nearly all deviate a little (lme4 below puts the student SD at 2.3
# grade points against a residual SD of 2.0). We read the selection as a strong heuristic answer
# to "which 76 students", not as a proof that no better 76 exist.

# %% The flagged students
sel = fit.selected.set_index("level")
sel = sel.join(raw).sort_values("estimate")
print(f"{(sel.estimate > 0).sum()} over-performers, {(sel.estimate < 0).sum()} "
      "under-performers after adjustment; the five largest of each:")
cols = ["estimate", "raw_mean"]
print(pd.concat([sel[cols].head(5), sel[cols].tail(5)]).round(2).to_string())
fit.plot_effects(top=40)

# %% [markdown]
# ## Concordance with the raw ranking
#
# The naive shortlist: the 10% of students with the highest and the 10% with the lowest raw
# mean grade. Cross-tabulated against the sign of mixmio's student effect (zero for students
# not selected):

# %% The 3 x 3 concordance table
lo, hi = raw.quantile(0.1), raw.quantile(0.9)
raw_group = pd.Series(np.where(raw >= hi, "raw top 10%", np.where(raw <= lo, "raw bottom 10%",
                                                                   "raw middle")),
                      index=raw.index, name="raw")
g = gamma.reindex(raw.index)
mio_group = pd.Series(np.where(g > 0, "mixmio +", np.where(g < 0, "mixmio -", "mixmio 0")),
                      index=raw.index, name="mixmio")
table = pd.crosstab(raw_group, mio_group, margins=True, margins_name="total")
table = table.reindex(index=["raw top 10%", "raw middle", "raw bottom 10%", "total"],
                      columns=["mixmio +", "mixmio 0", "mixmio -", "total"], fill_value=0)
print(table.to_string())
both = int(table.loc["raw top 10%", "mixmio +"] + table.loc["raw bottom 10%", "mixmio -"])
print(f"concordant extremes: {both} of {int((raw_group != 'raw middle').sum())} raw-extreme "
      f"students are flagged by mixmio in the same direction")

# %% The students only one method flags
# Expected mean grade given the covariates: the fitted values without the student's effect.
fitted = pd.Series(np.asarray(fit.fitted), index=students.index)
expected = (fitted.groupby(students["student"]).mean() - g).rename("expected")
view = pd.concat([raw, expected, g.rename("mixmio_effect")], axis=1).round(2)
only_mio = view[(mio_group != "mixmio 0") & (raw_group == "raw middle")]
only_raw = view[(mio_group == "mixmio 0") & (raw_group != "raw middle")]
print(f"only mixmio flags {len(only_mio)} students (raw mean in the middle 80%); "
      "the largest effects:")
print(only_mio.reindex(only_mio.mixmio_effect.abs().sort_values(ascending=False).index)
      .head(8).to_string())
print(f"\nonly the raw ranking flags {len(only_raw)} students (mixmio effect 0); "
      "the most extreme raw means:")
print(only_raw.reindex((only_raw.raw_mean - raw.median()).abs().sort_values(ascending=False)
                       .index).head(8).to_string())
gap_only_raw = (only_raw.raw_mean - only_raw.expected).abs().median()
gap_only_mio = (only_mio.raw_mean - only_mio.expected).abs().median()
print(f"\nmedian |raw mean - expected|: {gap_only_raw:.2f} for the raw-only students, "
      f"{gap_only_mio:.2f} for the mixmio-only students")
neg = g[g < 0].index
print(f"{int(neg.isin(zeros.index).sum())} of the {len(neg)} under-performers have at least one "
      f"grade 0 (against {len(zeros)} of all {len(raw)} students)")


# %% [markdown]
# Of the 87 raw-extreme students (47 in the top 10% and 40 in the bottom: ties at the cut-offs),
# 44 are flagged by mixmio in the same direction, and no student changes sign. The other 43 get
# an exact zero, and 32 students from the middle 80% of the raw ranking are flagged instead:
# the concordance plot below shows them as grey points off the zero line.
#
# For the raw-only students, the covariates explain the extreme score: their raw mean is a median
# 1.67 grade points from the grade expected from their covariates, against 4.17 points for the
# mixmio-only students. S048 has the highest raw mean (18.17) but an expected 16.17, so it gets
# no effect; S262 has a middling 8.67 against an expected 16.18 and is the strongest
# under-performer. Two cautions before acting on the list. First, the expected grades rest on 43
# coefficients estimated from 382 students, and a few are extreme (3.0 and 16.2 out of 20), so
# part of a mixmio-only flag can be extrapolation in the covariates rather than the student.
# Second, 21 of the 40 under-performers have at least one grade 0, against 43 of all 382
# students: a 0 in these data mostly means that the student did not sit that exam. The source
# and the paper keep these zeros as grades, and so do we, but half the "under-performers" are
# students with a missed exam.

# %% [markdown]
# ## lme4: shrunken modes for every student
#
# `vignettes/r/students.R` fits the same model with `lmer(..., REML = TRUE)` and writes the
# conditional modes and their conditional SDs to `vignettes/data/students_lme4_ranef.csv`
# (the file's first line says how). lme4 gives every student a non-zero mode; for a
# shortlist of the same size we take its 76 largest |modes| (38 + 38 would force the split;
# the largest |mode| does not), and the students whose mode is more than 1.96 conditional SDs
# from zero.

# %% lme4's modes against mixmio's selection
lme4_path = DATA / "students_lme4_ranef.csv"
with open(lme4_path) as fh:
    print(fh.readline().strip("# \n"))
modes = pd.read_csv(lme4_path, comment="#").set_index("student").reindex(raw.index)
top_lme4 = set(modes["mode"].abs().sort_values(ascending=False).index[:K])
z_lme4 = set(modes.index[(modes["mode"] / modes["condsd"]).abs() > 1.96])
chosen = set(sel.index)
print(f"lme4 top {K} |mode|: {len(top_lme4 & chosen)} also selected by mixmio, "
      f"{len(top_lme4 - chosen)} only by lme4")
print(f"lme4 |mode / condsd| > 1.96: {len(z_lme4)} students, {len(z_lme4 & chosen)} of them "
      "selected by mixmio")
raw_extreme = set(raw_group.index[raw_group != "raw middle"])
print(f"raw-extreme students among lme4's top {K}: {len(top_lme4 & raw_extreme)}; among "
      f"mixmio's {K}: {len(chosen & raw_extreme)}")
print(f"correlation with the raw mean grade: lme4 modes "
      f"{np.corrcoef(modes['mode'], raw)[0, 1]:.2f}, "
      f"mixmio effects {np.corrcoef(g, raw)[0, 1]:.2f}")
fx_lme4 = pd.read_csv(DATA / "students_lme4_fixef.csv", comment="#").set_index("term")["estimate"]
fx_mio = fit.fixef.rename(index=lambda t: t.replace("subject[T.portuguese]", "subjectportuguese")
                          .replace("C(period)[T.", "period").replace("]", "")
                          .replace("Intercept", "(Intercept)"))
common = fx_mio.index.intersection(fx_lme4.index)
print(f"fixed effects ({len(common)} shared terms): correlation between mixmio and lme4 "
      f"{np.corrcoef(fx_mio[common], fx_lme4[common])[0, 1]:.3f}")


# %% [markdown]
# lme4 converges (0.2 s, no warnings) and shrinks every student towards zero. Its modes follow the
# raw mean closely (correlation 0.77, against 0.56 for mixmio's sparse effects), as the paper
# found for its Gaussian mixed model. Its 76 largest |modes| share 52 students with mixmio's
# selection. The |mode / SD| > 1.96 rule flags 189 students, half the class, and includes 73 of
# mixmio's 76, so that rule is no shortlist here. The fixed effects agree (correlation 0.875 over
# 43 terms, as in the paper's supplement), so the two methods differ in how they estimate the
# student effects. All students have six grades, so lme4 ranks them by their mean residual from
# its fixed effects, shrunk by a common factor. mixmio gives the 76 selected students their own
# intercepts, with exact zeros for the other 306, and then estimates the fixed effects from all
# of them. The two sets of residuals, and so the two rankings, differ most for students whose
# covariates are unusual.

# %% The concordance plot (after the paper's Figure 4)
colour = raw_group.map({"raw top 10%": "tab:green", "raw bottom 10%": "tab:purple",
                        "raw middle": "0.7"})
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
for ax, (x, xl), (y, yl) in zip(
        axes,
        [(raw, "raw mean grade"), (raw, "raw mean grade"), (modes["mode"], "lme4 mode")],
        [(g, "mixmio effect (0 = not selected)"), (modes["mode"], "lme4 conditional mode"),
         (g, "mixmio effect (0 = not selected)")], strict=True):
    ax.scatter(x, y, c=colour, s=12)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
axes[0].set_title("mixmio against raw score")
axes[1].set_title("lme4 against raw score")
axes[2].set_title("mixmio against lme4")
fig.suptitle("students (green: raw top 10%, purple: raw bottom 10%)")
fig.tight_layout()

# %% [markdown]
# ## How stable is the selection?
#
# A residual bootstrap re-runs the selection in every replicate. Each replicate gets a short
# time limit too, so the selection frequencies describe the heuristic-quality selections the
# search reaches in that time, not certified optima.

# %% Bootstrap of the selection
B = 3 if FAST else 20
boot = fit.bootstrap(B=B, random_state=0, progress=False, time_limit=1 if FAST else 3)
print(f"{boot.n_ok} of {B} replicates ok")
clusters = boot.report().clusters
print(f"flagged by the report (selection frequency >= 0.5): {len(clusters)} students; "
      f"{int((clusters.selection_frequency >= 0.9).sum())} selected in at least 90% of the "
      f"replicates; {int(clusters.excludes_0.sum())} with a 95% interval excluding 0")
print(clusters.head(10).drop(columns=["group", "term"]).round(2).to_string(index=False))
freq = clusters.set_index("level")["selection_frequency"]
print("selection frequency of the mixmio-only students: median "
      f"{freq.reindex(only_mio.index).fillna(0).median():.2f}; of the other selected: "
      f"{freq.reindex(sel.index.difference(only_mio.index)).fillna(0).median():.2f}")

# %% [markdown]
# In 20 residual-bootstrap replicates (3 s each, none certified), 60 of the 76 students are
# reselected in at least 90% of the replicates, and 53 have a 95% percentile interval that
# excludes 0. The mixmio-only students are reselected about as often (median frequency 0.95)
# as the others (1.00). With B = 20 the smallest possible p-value is 0.1, and, as the report
# says, a resampled fit tends to reselect what the fit selected.
#
# ## Answer
#
# With room for 76 deviating students (the paper's top and bottom 10%), mixmio flags 36
# over-performers and 40 under-performers given their background. Only 44 of them are among the
# 87 raw-extreme students; the other 32 come from the middle of the raw ranking, and 43
# raw-extreme students are explained by their covariates. The fit is not certified: it stops
# at 60 s with a 35% gap, although a search a quarter as long finds the same selection.
# lme4's modes stay closer to the raw ranking (52 of its top 76 are shared). Half of the
# under-performers have a missed exam recorded as 0, so a school should look at those first.
