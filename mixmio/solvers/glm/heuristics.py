"""Warm start (004 Sec. 2.3 / 4.3.1): discrete first-order method + swap search.

The DFO uses L = lambda_max(X'X)/4 + ridge (004 Prop. 6), starts from the intercept-only fit
and from random supports, and polishes every result by an exact Newton fit on its support; a
best-improvement swap search (drop one unit, add one; candidates screened by the Wald and
score statistics, every move evaluated by an exact fit) follows.  No certificate: the exact
solvers use the result as their first incumbent, and every fit is also a valid OA cut.

Holistic constraints: the hard threshold and the random starts begin with the forced units
and add units only while the support stays feasible (cap and packing rows), swaps never drop
a forced unit and skip infeasible moves, and :class:`Fits` makes only feasible supports the
incumbent (a fit on any support stays in the cache: a valid OA cut and Newton start).
"""

from __future__ import annotations

import time

import numpy as np

from mixmio.problem.glm import GlmProblem
from mixmio.solvers.glm.logistic import SeparationError, fit_support, lipschitz, value_and_gradient

__all__ = ["Fits", "warm_start"]


class Fits:
    """Cache of exact fits by support (a frozenset of unit indices); ``best_key`` /
    ``best_val`` is the best *feasible* support fitted (:meth:`GlmProblem.feasible`)."""

    def __init__(self, problem: GlmProblem):
        self.pr = problem
        self.store: dict[frozenset, tuple[np.ndarray, float]] = {}
        self.best_key: frozenset | None = None
        self.best_val = np.inf
        self.n_fits = 0

    def fit(self, units, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        key = frozenset(int(u) for u in units)
        hit = self.store.get(key)
        if hit is not None:
            return hit
        pr = self.pr
        cols = pr.columns_of(key)
        beta, val, ok = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized,
                                    start=start)
        if not ok and start is not None:
            # a poor start (the coefficients of a support with collinear columns): from zero
            b0, v0, ok0 = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
            if ok0 or v0 < val:
                beta, val, ok = b0, v0, ok0
        self.n_fits += 1
        if not ok and not pr.ridge and np.max(np.abs(beta), initial=0.0) > 1e5:
            raise SeparationError(
                "the classes are (quasi-)completely separated on the columns "
                f"{[pr.names[j] for j in cols if j < len(pr.names)]}: the maximum-likelihood "
                "estimate is infinite there. Pass ridge='auto' (a small ridge, reported in the "
                "summary) or a positive ridge.")
        # the value used for cuts and incumbents is F at the returned point, exactly
        self.store[key] = (beta, val)
        if val < self.best_val and pr.feasible(key):
            self.best_val, self.best_key = val, key
        return beta, val


def _threshold(pr: GlmProblem, u: np.ndarray) -> list[int]:
    """Units kept by the hard threshold: the forced units, then the largest sum of squares
    first while the support stays feasible (cap and rows)."""
    score = np.array([float(np.sum(u[c] ** 2)) for c in pr.units])
    order = [int(i) for i in np.argsort(-score, kind="stable") if score[i] > 0]
    return pr.greedy_fill(pr.forced, order)


def dfo(pr: GlmProblem, fits: Fits, beta: np.ndarray, L: float, max_iter: int = 300,
         deadline: float = np.inf) -> tuple[np.ndarray, float]:
    """Discrete first-order method (004 Alg. 1) from ``beta``, polished on its support.

    Stops early when the clock passes ``deadline`` (checked before every step); the support
    reached so far is still polished (one small Newton fit of at most k + |always| columns)."""
    keep: list[int] = []
    always = pr.always
    for _ in range(max_iter):
        if time.perf_counter() >= deadline:
            break
        _, g = value_and_gradient(beta, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
        u = beta - g / L
        new_keep = _threshold(pr, u)
        new = np.zeros(pr.p)
        new[always] = u[always]
        for i in new_keep:
            new[pr.units[i]] = u[pr.units[i]]
        done = (sorted(new_keep) == sorted(keep)
                and np.linalg.norm(new - beta) <= 1e-4 * max(1.0, float(np.linalg.norm(beta))))
        beta, keep = new, new_keep
        if done:
            break
    return fits.fit(keep, start=beta)


def _swap_search(pr: GlmProblem, fits: Fits, key: frozenset, deadline: float,
                 n_screen: int = 8) -> None:
    """Best-improvement swaps (drop one unit, add one) from support ``key``; every move is
    an exact fit (stored in ``fits``).  Candidates to add are screened by the score statistic
    and candidates to drop by the Wald statistic."""
    from scipy.special import expit

    X = pr.X
    while time.perf_counter() < deadline:
        beta, val = fits.fit(key)
        mu = expit(X @ beta + pr.offset)
        w = mu * (1 - mu)
        g = X.T @ (mu - pr.y) + pr.ridge * np.where(pr.penalized, beta, 0.0)
        h = (X * X * w[:, None]).sum(axis=0) + pr.ridge
        add_score = np.array([np.sum(g[c] ** 2 / h[c]) for c in pr.units])
        inside = sorted(key)
        forced = set(pr.forced)
        outside = [i for i in range(len(pr.units)) if i not in key]
        room = pr.k - int(sum(pr.weights[i] for i in inside))
        ins = sorted(outside, key=lambda i: -add_score[i])[:n_screen]
        drop_score = {i: float(np.sum(beta[pr.units[i]] ** 2 * h[pr.units[i]])) for i in inside
                      if i not in forced}
        outs = sorted(drop_score, key=lambda i: drop_score[i])[:n_screen]
        best_key, best_val = None, val - 1e-9 * max(1.0, abs(val))
        moves = [(None, j) for j in ins if pr.weights[j] <= room]
        moves += [(i, j) for i in outs for j in ins if pr.weights[j] <= room + pr.weights[i]]
        if pr.rows:
            moves = [(i, j) for i, j in moves
                     if pr.feasible(((key - {i}) if i is not None else key) | {j})]
        for i, j in moves:
            cand = (key - {i}) | {j} if i is not None else key | {j}
            start = beta.copy()
            if i is not None:
                start[pr.units[i]] = 0.0
            _, v = fits.fit(cand, start=start)
            if v < best_val:
                best_key, best_val = cand, v
            if time.perf_counter() >= deadline:
                break
        if best_key is None:
            return
        key = frozenset(best_key)


def warm_start(pr: GlmProblem, fits: Fits, rng: np.random.Generator, deadline: float,
               n_starts: int = 4) -> None:
    """DFO from the fit on the forced units (the intercept-only fit without constraints) and
    ``n_starts`` random supports, then swaps from the
    best support.  All fits land in ``fits``; ``fits.best_key`` is the incumbent.

    Every stage checks the clock: past ``deadline`` only the intercept-only fit (always made:
    it is the first incumbent) and the polish of the DFO support reached are done."""
    base, _ = fits.fit(pr.forced)  # the forced units alone: always feasible
    if time.perf_counter() >= deadline:
        return
    L = lipschitz(pr.X, pr.ridge)
    dfo(pr, fits, base, L, deadline=deadline)
    n_units = len(pr.units)
    for _ in range(n_starts):
        if time.perf_counter() >= deadline:
            break
        perm = rng.permutation(n_units)
        chosen = pr.greedy_fill(pr.forced, perm)
        start = base.copy()
        for i in chosen[len(pr.forced):]:
            start[pr.units[i]] = rng.normal(scale=0.5, size=pr.units[i].size)
        dfo(pr, fits, start, L, deadline=deadline)
    assert fits.best_key is not None  # set by the fit on the forced units (always feasible)
    _swap_search(pr, fits, fits.best_key, deadline)


