# lme4 lmer on a CSV written by benchmarks/bench_scale.py; prints one JSON line:
# {"seconds": ..., "max_used_mb": (R heap the fit added, Mb), "peak_rss_mb": ...}
# Usage: Rscript benchmarks/r/lmer_scale.R data.csv
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$g <- factor(d$g)
g0 <- gc(reset = TRUE)
base <- sum(g0[, 2])  # Mb in use before the fit (the data)
t <- system.time(m <- lmer(y ~ x1 + x2 + x3 + x4 + (1 | g), data = d, REML = FALSE))
g <- gc()
max_used <- sum(g[, ncol(g)]) - base  # "max used" (Mb) since the reset, less the data
rss <- NA
st <- tryCatch(readLines("/proc/self/status"), error = function(e) character())
hw <- grep("^VmHWM", st, value = TRUE)
if (length(hw)) rss <- as.numeric(gsub("[^0-9]", "", hw)) / 1024
cat(sprintf('{"seconds": %.3f, "max_used_mb": %.1f, "peak_rss_mb": %s}\n', t[["elapsed"]],
            max_used, ifelse(is.na(rss), "NaN", sprintf("%.1f", rss))))
