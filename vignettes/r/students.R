# lme4 for the students vignette: lmer with a random intercept per student on the same long
# frame and the same covariates as vignettes/students.py.
#
#   Rscript vignettes/r/students.R            (from the repository root; needs R, lme4 and
#                                               a Python with mixmio installed: $PYTHON or
#                                               .venv/bin/python)
#
# The frame is mixmio.datasets.load("students") written to a temporary CSV, so R sees exactly
# the rows and columns the vignette fits. Writes
#   vignettes/data/students_lme4_ranef.csv  student, conditional mode, conditional SD
#   vignettes/data/students_lme4_fixef.csv  term, estimate, SE
# each with a first line "# ..." saying how it was made.
suppressPackageStartupMessages(library(lme4))
py <- Sys.getenv("PYTHON", if (file.exists(".venv/bin/python")) ".venv/bin/python" else "python")
tmp <- tempfile(fileext = ".csv")
status <- system2(py, c("-c", shQuote(sprintf(
  "import mixmio; mixmio.datasets.load('students').to_csv('%s', index=False)", tmp))))
stopifnot(status == 0)
d <- read.csv(tmp, stringsAsFactors = FALSE)
d$student <- factor(d$student)
d$subject <- factor(d$subject, levels = c("math", "portuguese"))
d$period <- factor(d$period)
covs <- setdiff(names(d), c("student", "subject", "period", "grade"))
form <- as.formula(paste("grade ~ subject + period +", paste(covs, collapse = " + "),
                         "+ (1 | student)"))
t0 <- proc.time()[["elapsed"]]
fit <- lmer(form, data = d, REML = TRUE)
secs <- proc.time()[["elapsed"]] - t0
re <- ranef(fit, condVar = TRUE)$student
sds <- sqrt(as.numeric(attr(re, "postVar")))
vc <- as.data.frame(VarCorr(fit))
msgs <- fit@optinfo$conv$lme4$messages
head <- sprintf(paste0("# lme4 %s, lmer(grade ~ subject + period + <%d covariates> + (1 | student),",
                       " REML) on mixmio.datasets.load('students'); %.1f s; student SD %.4f,",
                       " residual SD %.4f; convergence messages: %s; by vignettes/r/students.R"),
                as.character(packageVersion("lme4")), length(covs), secs, vc$sdcor[1],
                vc$sdcor[2], if (length(msgs)) paste(msgs, collapse = " | ") else "none")
out <- data.frame(student = rownames(re), mode = re[["(Intercept)"]], condsd = sds)
writeLines(head, "vignettes/data/students_lme4_ranef.csv")
suppressWarnings(write.table(out, "vignettes/data/students_lme4_ranef.csv", sep = ",", row.names = FALSE,
            append = TRUE, quote = FALSE))
cf <- summary(fit)$coefficients
fx <- data.frame(term = rownames(cf), estimate = cf[, 1], se = cf[, 2])
writeLines(head, "vignettes/data/students_lme4_fixef.csv")
suppressWarnings(write.table(fx, "vignettes/data/students_lme4_fixef.csv", sep = ",", row.names = FALSE,
            append = TRUE, quote = FALSE))
cat(head, "\n")
