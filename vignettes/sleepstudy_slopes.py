"""Random slopes with a cap per column: which subjects react differently to sleep deprivation?

sleepstudy (lme4): reaction times of 18 subjects over 10 days. `(Days | Subject)` gives each
subject an intercept and a slope deviation; the caps say how many of each may be non-zero.
"""

# %% Fit: at most 4 intercept deviations and 3 slope deviations
import mixmio

data = mixmio.datasets.load("sleepstudy")
fit = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", data,
                      k={"1|Subject": 4, "Days|Subject": 3}, random_state=0)
print(fit.summary())

# %% Predictions for a new subject (a Series on new's index): the population line, or the
# effects of the subjects a tree on Days finds alike ("soft")
new = data.head(3).assign(Subject=999)
print(fit.predict(new, new_levels="population"))
print(fit.predict(new, new_levels="soft"))
