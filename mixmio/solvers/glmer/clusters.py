"""Per-cluster one-dimensional quantities of the random-intercept GLMM, vectorised.

For a cluster j with rows i and linear predictors v_i (without gamma),

    psi_j(gamma) = sum_i l_i(v_i + gamma) + ridge/2 gamma^2     (strictly convex, ridge > 0),
    h_j = psi_j(0),  m_j = min psi_j,  gain_j = h_j - m_j >= 0.

:func:`cluster_min` runs a vectorised safeguarded Newton iteration on all clusters at once
and returns, besides the iterate, *certified* bounds of m_j: an upper bound psi_j(gamma_hat)
(any gamma is feasible) and a lower bound psi_j(gamma_hat) - psi_j'(gamma_hat)^2 / (2 ridge)
(psi_j'' >= ridge, so psi_j is ridge-strongly convex), each widened by a rounding margin.

:func:`gain_bounds` turns row-wise intervals v_i in [lo_i, hi_i] into interval bounds of
gain_j valid at every v in the box.  For fixed gamma > 0 each term l_i(v) - l_i(v + gamma)
is decreasing in v_i (l_i' increasing), so gain+_j(v) = max_{gamma >= 0} [psi(0) - psi(gamma)]
is decreasing in every v_i and gain-_j (gamma <= 0) increasing; gain = max(gain+, gain-).
Hence over the box

    gain_j <= max(gain+_j(lo), gain-_j(hi)),   gain_j >= max(gain+_j(hi), gain-_j(lo)).

At a corner, gain+ = 0 exactly when psi'(0) >= 0 (convexity), and otherwise
0 <= gain+ <= psi(0) - (certified lower bound of min psi); a lower bound of gain+ is
psi(0) - psi(max(gamma_hat, 0)).  Same for gain- with the signs swapped.
"""

from __future__ import annotations

import numpy as np

from mixmio.solvers.glmer.fit import row_terms

__all__ = ["Clusters"]

#: relative rounding margin of the per-cluster sums
MARGIN = 1e-11


class Clusters:
    """The rows of a random-intercept design grouped by cluster (``codes`` 0..K-1)."""

    def __init__(self, family, y, wts, sat, codes, K, ridge):
        self.family, self.y, self.wts, self.sat = family, y, wts, sat
        self.codes = np.asarray(codes, dtype=np.intp)
        self.K = int(K)
        self.ridge = float(ridge)

    def _sum(self, a):
        return np.bincount(self.codes, weights=a, minlength=self.K)

    def psi(self, v, gamma):
        """(psi_j(gamma_j), sum_i |l_i| for the margin)."""
        val = row_terms(self.family, v + gamma[self.codes], self.y, self.wts, self.sat, 0)
        return self._sum(val) + 0.5 * self.ridge * gamma * gamma, self._sum(np.abs(val))

    def cluster_min(self, v, gamma0=None, iters=60, tol=1e-13):
        """(gamma_hat, m_upper, m_lower, h, h_margin, score at 0) for every cluster."""
        K, codes, mu = self.K, self.codes, self.ridge
        _, d1, d2 = row_terms(self.family, v, self.y, self.wts, self.sat)
        s0 = self._sum(d1)
        h, habs = self.psi(v, np.zeros(K))
        g = np.zeros(K) if gamma0 is None else np.array(gamma0, dtype=float)
        g = np.where(np.isfinite(g), g, 0.0)
        if gamma0 is None:
            g = self._guess(v)
        f, _ = self.psi(v, g)
        t = np.ones(K)
        for _ in range(iters):
            _, d1, d2 = row_terms(self.family, v + g[codes], self.y, self.wts, self.sat)
            grad = self._sum(d1) + mu * g
            hess = self._sum(d2) + mu
            step = grad / hess
            active = (np.abs(step) > 1e-13 * (1.0 + np.abs(g))) & (t > 1e-10)
            if not active.any():
                break
            cand = np.where(active, g - t * step, g)
            fc, _ = self.psi(v, cand)
            ok = active & (fc <= f + 1e-14 * np.abs(f))
            g = np.where(ok, cand, g)
            f = np.where(ok, fc, f)
            # a failed step halves that cluster's step length; a good one restores it
            t = np.where(active & ~ok, 0.5 * t, np.where(ok, np.minimum(2.0 * t, 1.0), t))
        fg, fabs = self.psi(v, g)
        _, d1, _ = row_terms(self.family, v + g[codes], self.y, self.wts, self.sat)
        grad = self._sum(d1) + mu * g
        marg = MARGIN * (1.0 + fabs + habs)
        m_up = fg + marg
        m_lo = fg - grad * grad / (2.0 * mu) - marg
        self.gerr = np.abs(grad) / mu * (1.0 + 1e-9) + 1e-12 * (1.0 + np.abs(g))
        return g, m_up, m_lo, h, marg, s0

    def extreme(self, eta):
        """Clusters with a row whose eta is near the clip of exp in ``row_terms``."""
        return self._sum((np.abs(eta) > 600.0).astype(float)) > 0

    def _lse(self, a):
        """log sum_{i in j} e^{a_i} per cluster (-inf for an empty one)."""
        top = np.full(self.K, -np.inf)
        np.maximum.at(top, self.codes, a)
        safe = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            return safe + np.log(self._sum(np.exp(a - safe[self.codes])))

    def _guess(self, v):
        """A starting gamma: the cluster's own maximum-likelihood shift (ridge ignored, +1/2
        pseudo-counts); for a cluster on the boundary (no events, or binomial all events)
        the root of A e^-+gamma = -+ridge gamma, the shape psi' takes there (Lambert W)."""
        from scipy.special import lambertw

        mu = self.ridge
        logw = np.log(np.maximum(self.wts, 1e-300))

        def lambert(L):             # W(e^L), asymptotic beyond exp's range
            x = np.minimum(L, 700.0)
            w = np.real(lambertw(np.exp(x)))
            Lc = np.maximum(L, 2.0)
            asym = Lc - np.log(Lc) + np.log(Lc) / Lc
            return np.where(L > 700.0, asym, w)

        sy = self._sum(self.y * (self.wts if self.family == "poisson" else 1.0))
        if self.family == "poisson":
            lse = self._lse(v + logw)
            g = np.log(sy + 0.5) - lse
            return np.where(sy == 0, -lambert(lse - np.log(mu)), g)
        sn = self._sum(self.wts)
        vbar = self._sum(self.wts * v) / np.maximum(sn, 1e-300)
        q = (sy + 0.5) / (sn + 1.0)
        g = np.log(q) - np.log1p(-q) - vbar
        g = np.where(sy == 0, -lambert(self._lse(v + logw) - np.log(mu)), g)
        return np.where(sy == sn, lambert(self._lse(-v + logw) - np.log(mu)), g)

    def gains(self, v, gamma0=None):
        """(gain estimate, certified lower, certified upper, gamma_hat) at one v."""
        g, m_up, m_lo, h, marg, _ = self.cluster_min(v, gamma0)
        est = np.maximum(h - m_up + marg, 0.0)
        return est, np.maximum(h - m_up - marg, 0.0), np.maximum(h - m_lo + marg, 0.0), g

    def _signed(self, v, gamma0=None):
        """Certified (lower, upper) of gain+ and gain- at one corner v."""
        g, m_up, m_lo, h, marg, s0 = self.cluster_min(v, gamma0)
        err = self.gerr
        up = np.maximum(h - m_lo + marg, 0.0)
        # lower bounds: psi(0) - psi(clamped gamma_hat)
        gp = np.maximum(g, 0.0)
        gm = np.minimum(g, 0.0)
        fp, fpa = self.psi(v, gp)
        fm, fma = self.psi(v, gm)
        lo_p = np.maximum(h - fp - MARGIN * (1.0 + fpa + marg), 0.0)
        lo_m = np.maximum(h - fm - MARGIN * (1.0 + fma + marg), 0.0)
        # psi(gamma) is only exact where exp was not clipped: else claim no lower bound
        lo_p = np.where(self.extreme(v + gp[self.codes]), 0.0, lo_p)
        lo_m = np.where(self.extreme(v + gm[self.codes]), 0.0, lo_m)
        # rows beyond the clip of exp in row_terms: no finite upper bound is claimed
        up = np.where(self.extreme(v), np.inf, up)
        up_p = np.where(s0 >= 0.0, 0.0, up)
        up_m = np.where(s0 <= 0.0, 0.0, up)
        return lo_p, up_p, lo_m, up_m, g, err

    def gain_bounds(self, lo, hi, gam_lo=None, gam_hi=None):
        """Certified (lower, upper) of gain_j over the row box [lo, hi], and an interval
        (gmin, gmax) holding every cluster's minimising gamma over the box."""
        lp_lo, up_lo, lm_lo, um_lo, g_lo, e_lo = self._signed(lo, gam_lo)
        lp_hi, up_hi, lm_hi, um_hi, g_hi, e_hi = self._signed(hi, gam_hi)
        upper = np.maximum(up_lo, um_hi)
        lower = np.maximum(lp_hi, lm_lo)
        # the minimiser gamma*_j(v) decreases in every v_i (psi' increases), so over the box
        # it lies in [gamma*(hi), gamma*(lo)], each known to |psi'(gamma_hat)| / ridge
        return lower, upper, (g_hi - e_hi, g_lo + e_lo)
