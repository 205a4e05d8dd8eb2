"""King's stage 3 (significance and conditioning) on a Problem: the pairs bootstrap of the
estimator on a support, and the loop that solves, tests and cuts the support
(:class:`mixmio.Significance`, used by :func:`mixmio.mio_lm`, :func:`mixmio.holistic_regression`
and the subset bootstrap's replicates)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from mixmio._runtime import user_stacklevel
from mixmio.problem import LinearConstraint
from mixmio.results.lm import condition_number, forced_columns

__all__ = ["forced_columns", "pairs_bootstrap", "significance_loop"]


def pairs_bootstrap(problem, S: np.ndarray, B: int, rng, refit: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs-bootstrap draws of the estimator on the support: the always-in columns plus ``S``.

    ``refit=True`` bootstraps least squares on those columns (what ``mio_lm`` reports with a
    refit); ``refit=False`` bootstraps the problem's own penalised estimator on them (the ridge
    on penalised columns and the l1 term of ``Robust``), which is what is reported without one.
    Returns ``(columns, draws)`` with draws B x len(columns).
    """
    from mixmio.solvers.bnb.cd import fit_quadratic

    free = np.setdiff1d(np.arange(problem.p), problem.caps[0].index)
    cols = np.concatenate([free, S]).astype(int)
    X = problem.X[:, cols]
    y = problem.y
    n = X.shape[0]
    pen = problem.ridge * np.asarray(problem.penalized, dtype=float)[cols]
    l1 = None if problem.l1 is None else np.asarray(problem.l1, dtype=float)[cols]
    est = np.empty((B, cols.size))
    for b in range(B):
        idx = rng.integers(0, n, n)
        Xb, yb = X[idx], y[idx]
        if refit:
            est[b] = np.linalg.lstsq(Xb, yb, rcond=None)[0]
        else:
            est[b] = fit_quadratic(Xb.T @ Xb + np.diag(pen), Xb.T @ yb, l1)
    return cols, est


def _insignificant(cols: np.ndarray, est: np.ndarray, S: np.ndarray, alpha: float) -> list[int]:
    """Columns of ``S`` whose percentile interval of the draws covers 0."""
    lo = np.quantile(est, alpha / 2, axis=0)
    hi = np.quantile(est, 1 - alpha / 2, axis=0)
    cover = (lo <= 0) & (hi >= 0)
    inS = set(S.tolist())
    return [int(c) for c, cv in zip(cols, cover, strict=True) if cv and c in inS]


def significance_loop(problem, sig, solve_kw: dict, refit: bool = True,
                      names: list[str] | None = None):
    """King's stage 3 on a Problem: solve, bootstrap and check the condition number, cut the
    support when it fails; at most ``sig.max_rounds`` solves.

    The bootstrap draws the estimator that will be reported (``refit``: least squares on the
    support, else the problem's penalised estimator; see :func:`pairs_bootstrap`), so the test
    and the reported intervals agree.  It is seeded by ``sig.random_state``, else by the
    fit's ``random_state``.  Columns forced in (``ForceInclude`` and the groups tied to it)
    are reported when insignificant but never cut: the cut is
    ``sum_{S minus forced} z <= |S minus forced| - 1``.  When a cut leaves no feasible
    model, the last feasible round's model is returned with a warning.

    Returns ``(problem with the kept cuts, solution, rounds, draws)``; every round records
    the support (column indices), objective, status, condition number, insignificant columns
    (names when ``names`` is given) and the cut; ``draws`` are the returned model's
    ``(columns, B x columns array)``, or None when it had nothing to test.
    """
    from mixmio.solvers import solve

    seed = sig.random_state if sig.random_state is not None else solve_kw.get("random_state")
    rng = np.random.default_rng(seed)
    forced = forced_columns(problem)
    label = (lambda j: names[j]) if names is not None else int
    rounds: list[dict] = []
    kept = None  # (problem, solution, draws) of the last feasible round
    for r in range(1, int(sig.max_rounds) + 1):
        solution = solve(problem, **solve_kw)
        if solution.status == "infeasible" or not np.isfinite(solution.objective):
            rounds.append({"round": r, "support": [], "objective": np.inf, "status":
                           solution.status, "condition": np.nan, "insignificant": [],
                           "cut": False})
            if kept is not None:
                prev = rounds[-2]
                warnings.warn(f"Significance: after the cut of round {r - 1} no model is "
                              f"feasible ({solution.status}); the model of round {r - 1} is "
                              f"returned although it fails (condition {prev['condition']:.3g}, "
                              f"insignificant columns {prev['insignificant']})",
                              stacklevel=user_stacklevel())
                return (*kept[:2], rounds, kept[2])
            return problem, solution, rounds, None
        idx = problem.caps[0].index
        z = solution.z
        on = (solution.w[idx] != 0) if z is None else (np.asarray(z)[idx] | (solution.w[idx]
                                                                             != 0))
        S = idx[on]
        cond = condition_number(problem.X, S)
        bad, draws = [], None
        if S.size:
            draws = pairs_bootstrap(problem, S, int(sig.B), rng, refit)
            bad = _insignificant(*draws, S, sig.alpha)
        free = np.array([j for j in S if j not in forced], dtype=int)
        judged = [j for j in bad if j not in forced]
        ok = not judged and cond <= sig.max_condition
        rec = {"round": r, "support": [int(j) for j in S], "objective": solution.objective,
               "status": solution.status, "condition": cond,
               "insignificant": [label(j) for j in bad], "cut": False}
        rounds.append(rec)
        kept = (problem, solution, draws)
        if ok or free.size == 0:
            if not ok:
                warnings.warn(f"Significance: the model of round {r} fails (condition "
                              f"{cond:.3g}, insignificant columns {rec['insignificant']}) but "
                              "every selected column is forced in, so there is nothing to cut; "
                              "it is returned as is", stacklevel=user_stacklevel())
            break
        if r == int(sig.max_rounds):
            warnings.warn(f"Significance: the model of round {r} still fails (condition "
                          f"{cond:.3g}, insignificant columns {rec['insignificant']}) after "
                          f"max_rounds={sig.max_rounds}; it is returned as is",
                          stacklevel=user_stacklevel())
            break
        rec["cut"] = True
        cut = LinearConstraint(free, np.ones(free.size), "<=", float(free.size - 1),
                               f"Significance cut (round {r})")
        problem = replace(problem, constraints=tuple(problem.constraints) + (cut,))
    assert kept is not None  # the loop leaves by a break after kept is set, or returns
    return (*kept[:2], rounds, kept[2])
