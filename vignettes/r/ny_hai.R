# lme4 comparison for vignettes/ny_hai.py: SSI after hysterectomy, NY 2016, one row per
# compared hospital (the "Not compared" rows dropped, as the state does).
#
#   Rscript vignettes/r/ny_hai.R      # from the repository root
#
# Fits glmer(infections ~ 1 + (1 | hospital) + offset(log(predicted)), family = poisson)
# (Laplace, default control) and writes vignettes/data/ny_hai_lme4_modes.csv: one row per
# hospital with its conditional mode (log rate ratio), conditional SD and z = mode / condsd,
# and the fit's intercept, random-intercept SD and convergence messages. Line 1 of the CSV
# says how it was made.
suppressPackageStartupMessages(library(lme4))
d <- read.csv("mixmio/datasets/ny_hai_2016.csv", stringsAsFactors = FALSE)
d <- d[d$indicator == "SSI Hysterectomy" & !startsWith(d$comparison, "Not compared"), ]
d$infections <- d$observed
d$hospital <- factor(d$hospital)
msgs <- character(0)
fit <- withCallingHandlers(
  glmer(infections ~ 1 + (1 | hospital) + offset(log(predicted)), data = d,
        family = poisson),
  warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
re <- as.data.frame(ranef(fit, condVar = TRUE))
conv <- paste(unique(c(msgs, fit@optinfo$conv$lme4$messages)), collapse = "; ")
out <- data.frame(hospital = as.character(re$grp), mode = re$condval, condsd = re$condsd,
                  z = re$condval / re$condsd,
                  intercept = unname(fixef(fit)[1]),
                  sd_hospital = attr(VarCorr(fit)$hospital, "stddev")[[1]],
                  converge = if (nzchar(conv)) conv else "converged")
out <- out[order(out$hospital), ]
# line 1: how the file was made; then the table
made <- sprintf("# made by Rscript vignettes/r/ny_hai.R (R %s.%s, lme4 %s) from mixmio/datasets/ny_hai_2016.csv",
                R.version$major, R.version$minor, packageVersion("lme4"))
writeLines(c(made, capture.output(write.csv(out, row.names = FALSE))), "vignettes/data/ny_hai_lme4_modes.csv")
cat("wrote vignettes/data/ny_hai_lme4_modes.csv:", nrow(out), "hospitals\n")
