# lme4 comparison for vignettes/sleepstudy.py: Reaction ~ Days + (Days | Subject).
#
#   Rscript vignettes/r/sleepstudy.R      # from the repository root
#
# The conditional modes, their conditional SDs and the fixed effects are already in
# tests/fixtures/lme4/sleepstudy_slope_lme4_{ranef,fixef}.csv (lme4 1.1-31, REML), which the
# vignette reads. What those fixtures lack is the variance components: this script refits the
# same model (REML, default control) and writes vignettes/data/sleepstudy_lme4_varcorr.csv
# (the SDs of the intercept and slope deviations, their correlation, the residual SD, and
# the REML criterion). Line 1 of the CSV says how it was made.
suppressPackageStartupMessages(library(lme4))
d <- read.csv("mixmio/datasets/sleepstudy.csv", stringsAsFactors = FALSE)
d$Subject <- factor(d$Subject)
fit <- lmer(Reaction ~ Days + (Days | Subject), data = d, REML = TRUE)
vc <- as.data.frame(VarCorr(fit))
out <- data.frame(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, sdcor = vc$sdcor,
                  reml = unname(REMLcrit(fit)))
# line 1: how the file was made; then the table
made <- sprintf("# made by Rscript vignettes/r/sleepstudy.R (R %s.%s, lme4 %s, REML) from mixmio/datasets/sleepstudy.csv",
                R.version$major, R.version$minor, packageVersion("lme4"))
writeLines(c(made, capture.output(write.csv(out, row.names = FALSE))), "vignettes/data/sleepstudy_lme4_varcorr.csv")
cat("wrote vignettes/data/sleepstudy_lme4_varcorr.csv:", nrow(out), "rows\n")
