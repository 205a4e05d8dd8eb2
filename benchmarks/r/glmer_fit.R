# Fit lme4::glmer on a CSV written by benchmarks/bench_glmer.py and write the conditional
# modes, their conditional SDs and the fit times.
#
#   Rscript benchmarks/r/glmer_fit.R <in.csv> <out.csv> <family> "<formula>" [repeats]
#
# family: poisson | binomial.  Only the glmer() call is timed (elapsed seconds, one value per
# repeat, and the median CPU seconds, user + system, which a loaded machine inflates less);
# reading the CSV and ranef() are not.  Default nAGQ = 1 (Laplace), default control.
# out.csv: one row per level of the grouping factor of the single random term, with columns
# level, mode, condsd, plus the fit's fixed intercept, the random-intercept SD, the median
# and all fit times, the median CPU time, the optimiser's function evaluations, and lme4's
# convergence messages (empty when none).
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 4) stop("usage: glmer_fit.R in.csv out.csv family formula [repeats]")
input <- args[1]
output <- args[2]
fam <- switch(args[3], poisson = poisson(), binomial = binomial(),
              stop("family must be poisson or binomial"))
form <- as.formula(args[4])
repeats <- if (length(args) >= 5) as.integer(args[5]) else 1L
d <- read.csv(input, stringsAsFactors = FALSE)
grp <- all.vars(findbars(form)[[1]][[3]])
d[[grp]] <- factor(d[[grp]])
times <- numeric(repeats)
cpu <- numeric(repeats)
msgs <- character(0)
for (r in seq_len(repeats)) {
  t0 <- proc.time()
  fit <- withCallingHandlers(
    glmer(form, data = d, family = fam),
    warning = function(w) {
      msgs <<- c(msgs, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  dt <- proc.time() - t0
  times[r] <- dt[["elapsed"]]
  cpu[r] <- dt[["user.self"]] + dt[["sys.self"]]
}
re <- as.data.frame(ranef(fit, condVar = TRUE))
conv <- paste(unique(c(msgs, fit@optinfo$conv$lme4$messages)), collapse = "; ")
out <- data.frame(level = as.character(re$grp), mode = re$condval, condsd = re$condsd,
                  intercept = unname(fixef(fit)[1]),
                  sd_intercept = attr(VarCorr(fit)[[grp]], "stddev")[[1]],
                  fit_time = median(times), fit_times = paste(signif(times, 4), collapse = " "),
                  cpu_time = median(cpu), fevals = fit@optinfo$feval,
                  converge = conv, lme4 = as.character(packageVersion("lme4")),
                  R = paste(R.version$major, R.version$minor, sep = "."))
write.csv(out, output, row.names = FALSE)
