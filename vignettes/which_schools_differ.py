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
