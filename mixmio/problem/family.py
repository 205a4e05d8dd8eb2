"""The two exponential families of :func:`mixmio.mio_glmer`, row-wise and vectorised.

Every row i has a response ``y_i``, a prior weight ``w_i`` and a linear predictor
``eta_i``.  The per-row loss is the negative log-likelihood minus its saturated value, so
it is >= 0 and the sum over rows is half the deviance:

- binomial (``w_i`` = trials ``n_i``, ``y_i`` = successes in 0..n_i):
      l_i(eta) = n_i log(1 + e^eta) - y_i eta - n_i H(y_i / n_i),
      H(p) = -p log p - (1 - p) log(1 - p)   (0 log 0 = 0);
- poisson (``w_i`` = prior weight, ``y_i`` = count >= 0):
      l_i(eta) = w_i (e^eta - y_i eta - y_i + y_i log y_i).

Both satisfy |l'''| <= l'' (generalised self-concordance with constant 1 in eta: Bach 2010),
which the certified bounds of the engines use.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy

FAMILIES = ("binomial", "poisson")


def saturated(family: str, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The saturated negative log-likelihood of every row (its minimum over eta), the
    constant subtracted in :func:`loss`: n H(y/n) (binomial), w (y - y log y) (poisson)."""
    if family == "binomial":
        return xlogy(w, w) - xlogy(y, y) - xlogy(w - y, w - y)   # = n H(y/n) >= 0
    return w * (y - xlogy(y, y))


def loss(family: str, eta: np.ndarray, y: np.ndarray, w: np.ndarray,
         sat: np.ndarray | None = None) -> np.ndarray:
    """Per-row loss l_i(eta_i) >= 0 (half the unit deviance times the weight)."""
    if sat is None:
        sat = saturated(family, y, w)
    if family == "binomial":
        out = w * np.logaddexp(0.0, eta) - y * eta - sat
    else:
        out = w * (np.exp(eta) - y * eta) - sat
    return np.maximum(out, 0.0)


def mean(family: str, eta: np.ndarray) -> np.ndarray:
    """The inverse link: a probability (binomial) or a rate (poisson)."""
    return expit(eta) if family == "binomial" else np.exp(eta)


def derivatives(family: str, eta: np.ndarray, y: np.ndarray, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(l'_i, l''_i) at eta."""
    if family == "binomial":
        p = expit(eta)
        return w * p - y, w * p * (1.0 - p)
    mu = np.exp(eta)
    return w * (mu - y), w * mu


def link(family: str, mu: np.ndarray) -> np.ndarray:
    """The canonical link: logit or log."""
    mu = np.asarray(mu, dtype=float)
    return np.log(mu) - np.log1p(-mu) if family == "binomial" else np.log(mu)


def intercept_only(family: str, y, w, offset, iters: int = 100) -> float:
    """The intercept a minimising sum_i l_i(a + offset_i) (clamped away from the boundary
    when every response is 0, or every one at the trials)."""
    tot, n = float(np.sum(y)), float(np.sum(w))
    frac = min(max(tot / n, 1e-6), 1 - 1e-6) if family == "binomial" else max(tot, 1e-6)
    if family == "poisson":
        return float(np.log(frac / np.sum(w * np.exp(offset))))
    a = float(np.log(frac / (1 - frac))) - float(np.median(offset))
    ys = np.clip(y, 1e-6 * w, w - 1e-6 * w)
    for _ in range(iters):
        g, h = derivatives(family, a + offset, ys, w)
        step = float(np.sum(g)) / max(float(np.sum(h)), 1e-300)
        a -= step
        if abs(step) < 1e-12 * max(1.0, abs(a)):
            break
    return a
