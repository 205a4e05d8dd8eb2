"""Which London schools differ? A sparse random-intercept model on the Exam data.

The Exam data (R package mlmRev) hold normalised exam scores of 4,059 students in 65 schools,
with a standardised intake test (standLRT). A Gaussian mixed model shrinks every school towards
the mean; mixmio instead asks for at most k schools that deviate, and proves that no other
choice of k schools fits better.
"""

# %% Fit with at most 6 deviating schools
import mixmio

data = mixmio.datasets.load("exam")
fit = mixmio.mio_lmer("normexam ~ standLRT + sex + (1 | school)", data, k=6, random_state=0)
print(fit.summary())

# %% The certificate: the status is 'optimal' only when the bound meets the objective
print(f"status={fit.status}  objective={fit.objective:.4f}  bound={fit.best_bound:.4f}  "
      f"gap={fit.gap:.1e}  solver={fit.solver}")

# %% The flagged schools, largest deviations first
flagged = fit.selected.reindex(fit.selected.estimate.abs().sort_values(ascending=False).index)
print(flagged.to_string(index=False))

# %% How the choice changes with the cap: a path over k
for k in (2, 4, 6, 10, 15):
    f = mixmio.mio_lmer("normexam ~ standLRT + sex + (1 | school)", data, k=k)
    print(f"k={k:2d}  objective={f.objective:9.3f}  status={f.status}  "
          f"schools={sorted(f.selected.level, key=int)}")

# %% Comparison with lme4-style shrinkage (a Gaussian mixed model's predicted school effects)
# A random-intercept LMM (statsmodels MixedLM, REML; the analogue of lme4's lmer) shrinks every
# school towards the mean and leaves all 65 effects non-zero. Ranking its predictions (BLUPs)
# by size gives a similar shortlist, but no statement that the others are zero and no
# certificate that a better choice of 6 does not exist. The shortlists can differ where school
# size matters: a BLUP shrinks a small school's mean deviation strongly, while the selection
# ranks a school by how much its deviation reduces the residual sum of squares, which grows
# with its number of students.
try:
    import statsmodels.formula.api as smf
except ImportError:  # statsmodels is in the dev extra
    smf = None
if smf is not None:
    lmm = smf.mixedlm("normexam ~ standLRT + sex", data, groups=data["school"]).fit(
        reml=True, method=["nm", "bfgs"])  # the default optimiser does not converge here
    blup = {str(g): float(v.iloc[0]) for g, v in lmm.random_effects.items()}
    top = sorted(blup, key=lambda g: -abs(blup[g]))[:6]
    chosen = set(fit.selected.level)
    print(f"LMM school SD {float(lmm.cov_re.iloc[0, 0]) ** 0.5:.3f}; its 6 largest |BLUP|: "
          + ", ".join(f"{g} ({blup[g]:+.2f})" for g in top))
    print(f"in mixmio's k = 6 selection too: {sorted(set(top) & chosen, key=int)}; "
          f"only in mixmio's: {sorted(chosen - set(top), key=int)}")
