"""The envelope bound of the intercept engine (issue 18, weak signal): the convex minorant of
min(w (s - a)^2, tau) on an interval, and the node bound it gives, against brute force."""

from __future__ import annotations

import numpy as np

from mixmio.solvers.bnb.bestfirst import Node
from mixmio.solvers.bnb.intercept import (
    FREE,
    IN,
    OUT,
    BnB,
    Ell,
    _envelope,
    hard_directions,
    sum_smallest,
)
from mixmio.solvers.lmm.stats import build_stats, heuristic_support
from tests.oracles import brute_force, make_problem


def test_envelope_is_a_convex_minorant_on_the_interval():
    rng = np.random.default_rng(0)
    for _ in range(400):
        a, w = rng.normal(), rng.exponential() + 1e-3
        tau = rng.exponential() * rng.choice([0.0, 1.0, 10.0])
        lo, hi = np.sort(rng.normal(scale=3, size=2))
        if rng.random() < 0.2:
            lo = -np.inf
        if rng.random() < 0.2:
            hi = np.inf
        s = np.linspace(max(lo, -20), min(hi, 20), 401)
        A, W, T = np.full(s.size, a), np.full(s.size, w), tau
        v, d1, d2 = _envelope(s, A, W, T, np.full(s.size, lo), np.full(s.size, hi))
        h = np.minimum(w * (s - a) ** 2, tau)
        assert np.all(v <= h + 1e-12 * (1 + h))
        assert np.all(d2 >= 0) and np.all(np.diff(d1) >= -1e-12)  # convex: slope increases
        # the slope is the derivative: secants lie between the end slopes (convex, C1)
        sec = np.diff(v) / np.diff(s)
        assert np.all(sec >= d1[:-1] - 1e-9 * (1 + np.abs(d1[:-1])))
        assert np.all(sec <= d1[1:] + 1e-9 * (1 + np.abs(d1[1:])))


def test_envelope_node_bound_never_exceeds_the_optimum():
    """At the root of random small problems, for several tau, the bound is below the
    brute-force minimum whenever that minimum is below the pruning target."""
    checked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        K, rows, p = int(rng.integers(4, 10)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
        pr = make_problem(seed=seed, K=K, per=rows, p=p, k=int(rng.integers(1, K)),
                          effect=float(rng.uniform(0.2, 2)), n_dev=int(rng.integers(1, K)),
                          ridge=float(10 ** rng.uniform(-3, 0)))
        k = pr.caps[0].k
        codes = pr.terms[0].codes
        st = build_stats(pr.X, pr.y, codes, K, pr.ridge, k)
        _, f0 = heuristic_support(st, k, None)
        fb, _ = brute_force(pr)
        V = hard_directions(st)
        bnb = BnB(st, k, V)
        for Ut in (f0 * (1 + 1e-9), fb * 1.3):
            root = Node(np.zeros(K, dtype=np.int8), np.full(V.shape[1], -np.inf),
                        np.full(V.shape[1], np.inf), 0)
            kind, lb, state, lo, hi, info = bnb.evaluate(root, Ut)
            if "free" not in info:
                continue
            free = (state == FREE).nonzero()[0]
            m = k - int((state == IN).sum())
            if not 0 < m < free.size:
                continue
            lK = np.zeros(K)
            lK[info["free"]] = info["l"]
            ell = Ell(*st.quad_out(state == OUT), V)
            rho = Ut - 0.5 * sum_smallest(lK[free], free.size - m) - ell.Qmin
            if rho < 0:
                continue
            s_lo, s_hi, _, _ = ell.ranges(rho, lo, hi, st.D[free])
            b = info["b2"]
            phi = np.sort(st.w[free] * (st.a[free] - st.D[free] @ b) ** 2)[::-1]
            for tau in (phi[m - 1], 0.5 * (phi[m - 1] + phi[m]), 2 * phi[0], 0.0):
                eb = bnb._envelope_bound(state, free, m, s_lo, s_hi, float(tau), b)
                checked += 1
                if fb <= Ut:
                    assert eb <= fb * (1 + 1e-9) + 1e-9
    assert checked > 100
