# lme4 comparison for vignettes/exam_schools.py: normexam ~ standLRT + sex + (1 | school).
#
#   Rscript vignettes/r/exam_schools.R      # from the repository root
#
# Fits lmer (REML, default control) and writes vignettes/data/exam_schools_lme4_blups.csv: one
# row per school with its number of students, its conditional mode (BLUP), conditional SD and
# z = mode / condsd, and the fit's school SD and residual SD. Line 1 of the CSV says how it
# was made.
suppressPackageStartupMessages(library(lme4))
d <- read.csv("mixmio/datasets/Exam.csv", stringsAsFactors = FALSE)
d$school <- factor(d$school)
fit <- lmer(normexam ~ standLRT + sex + (1 | school), data = d, REML = TRUE)
re <- as.data.frame(ranef(fit, condVar = TRUE))
n <- table(d$school)
out <- data.frame(school = as.character(re$grp), n_students = as.integer(n[as.character(re$grp)]),
                  blup = re$condval, condsd = re$condsd, z = re$condval / re$condsd,
                  sd_school = attr(VarCorr(fit)$school, "stddev")[[1]],
                  sigma = sigma(fit))
out <- out[order(as.integer(out$school)), ]
# line 1: how the file was made; then the table
made <- sprintf("# made by Rscript vignettes/r/exam_schools.R (R %s.%s, lme4 %s, REML) from mixmio/datasets/Exam.csv",
                R.version$major, R.version$minor, packageVersion("lme4"))
writeLines(c(made, capture.output(write.csv(out, row.names = FALSE))), "vignettes/data/exam_schools_lme4_blups.csv")
cat("wrote vignettes/data/exam_schools_lme4_blups.csv:", nrow(out), "schools\n")
