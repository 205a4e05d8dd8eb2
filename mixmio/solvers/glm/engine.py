"""The solve stage of ``mio_glm``: :class:`GlmProblem` -> :class:`~mixmio.solvers.Solution`.

Engines (``Solution.solver`` says which ran):

- ``"auto"`` / ``"bnb"``: ``mixmio-glm-bnb``, the exact branch and bound over supports with
  certified fit bounds (:mod:`mixmio.solvers.glm.bnb`, no big-M);
- ``"oa"``: ``mixmio-oa-highs``, outer approximation with a HiGHS MILP master and the proven
  coefficient bounds of :mod:`mixmio.solvers.glm.bounds` (METHODS 3; :mod:`mixmio.solvers.glm.oa`);
- ``"heuristic"``: the warm start alone (discrete first-order method + swaps), status
  ``heuristic``, bound 0 (F >= 0 always), no certificate.

Both exact engines start from the warm start of :mod:`mixmio.solvers.glm.heuristics` (unless
``warm_start=False``, when the first incumbent is one polished DFO step from the intercept-only
fit) and return ``optimal`` only when their proven lower bound meets the incumbent within
``mip_gap``; a time limit gives ``time_limit`` with the proven gap and a RuntimeWarning.
The warm start and the exact engines check the deadline as they go (the warm start between
DFO steps and swap moves, the branch and bound inside its Newton fits); under a time limit
the warm start of an exact engine stops at ``WARM_SHARE`` of the time left, so that the
engine can still prove a bound; a search stopped before it proved anything reports the
trivial valid bound 0 (F >= 0).

Holistic constraints (``GlmProblem.forced`` and ``rows``): every engine only offers feasible
supports as incumbents (:class:`~mixmio.solvers.glm.heuristics.Fits` keeps the best *feasible* fit),
the branch and bound starts with the forced units in and prunes by the rows, and the OA master
carries the rows; the first incumbent is the fit on the forced units alone.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from mixmio._runtime import logger, user_stacklevel
from mixmio.problem.glm import GlmProblem
from mixmio.solvers.glm.bounds import check_separation
from mixmio.solvers.glm.heuristics import Fits, dfo, warm_start
from mixmio.solvers.glm.logistic import lipschitz, nll, node_quantities
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

__all__ = ["GlmProblem", "run_glm"]

_NAMES = {"bnb": "mixmio-glm-bnb", "oa": "mixmio-oa-highs", "heuristic": "heuristic"}
#: largest share of the time left (after the separation check) that the warm start of an
#: exact engine may use under a time limit
WARM_SHARE = 0.5


def run_glm(pr: GlmProblem, key: str, time_limit: float | None = None, mip_gap: float = 1e-4,
            random_state: int | None = None, warm_start_: bool = True,
            verbose: bool = False) -> Solution:
    """Run the engine ``key`` ("bnb", "oa" or "heuristic") on ``pr``."""
    name = _NAMES[key]
    t0 = time.perf_counter()
    deadline = t0 + (time_limit if time_limit is not None else np.inf)

    def log(text: str) -> None:
        logger.info("[mio_glm %7.2fs] %s", time.perf_counter() - t0, text)

    fits = Fits(pr)
    units = pr.unique_support()
    if units is not None:
        # no search needed (k = 0, k above every allowed unit, or the constraints leave one
        # maximal support): its exact fit is the optimum, certified by self-concordance
        cols = pr.columns_of(units)
        check_separation(pr, cols, deadline)
        beta, val = fits.fit(units)
        *_, cgap = node_quantities(beta, cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
        bound = val + cgap - 1e-9 * max(1.0, abs(val))
        return _finish(pr, fits, bound, key, name, t0, mip_gap, False,
                       {"nodes": 0, "note": "one feasible support"})
    check_separation(pr, deadline=deadline)
    rng = np.random.default_rng(random_state)
    # an exact engine keeps at least half of the time left for its bound (the warm start
    # alone could use up a short limit and leave only the trivial bound 0)
    now = time.perf_counter()
    warm_deadline = deadline if key == "heuristic" else now + WARM_SHARE * (deadline - now)
    if key == "heuristic" or warm_start_:
        warm_start(pr, fits, rng, warm_deadline)
    else:
        base, _ = fits.fit(pr.forced)  # the forced units alone: always feasible
        dfo(pr, fits, base, lipschitz(pr.X, pr.ridge), max_iter=1, deadline=warm_deadline)
    log(f"warm start: F = {fits.best_val:.6f} ({fits.n_fits} fits)")
    if key == "heuristic":
        return _finish(pr, fits, 0.0, key, name, t0, mip_gap, False, {})
    if key == "oa":
        from mixmio.solvers.glm.oa import solve_oa

        bound, timed_out, info = solve_oa(pr, fits, deadline, mip_gap, log)
    else:
        from mixmio.solvers.glm.bnb import solve_bnb

        bound, timed_out, info = solve_bnb(pr, fits, deadline, mip_gap, log)
    return _finish(pr, fits, bound, key, name, t0, mip_gap, timed_out, info)


def _finish(pr: GlmProblem, fits: Fits, bound: float, key: str, name: str, t0: float,
            mip_gap: float, timed_out: bool, info: dict) -> Solution:
    best_key = fits.best_key
    assert best_key is not None  # every path fits the forced units (always feasible) first
    beta, val = fits.store[best_key]
    bound = float(min(bound, val))
    gap = relative_gap(val, bound)
    if key == "heuristic":
        status, msg = "heuristic", "discrete first-order method + swaps; no certificate"
    elif info.get("master_failed") and gap > mip_gap:
        status = "error"
        msg = (f"the HiGHS master failed ({info['master_failed']}); the incumbent and the "
               f"bound proven so far (relative gap {gap:.3e}) are returned")
        warnings.warn(f"{name}: {msg}", RuntimeWarning, stacklevel=user_stacklevel())
    else:
        status, msg = certified_status(gap, mip_gap, timed_out, name)
    info = dict(info, fits=fits.n_fits, nll=nll(pr.X @ beta + pr.offset, pr.y))
    nodes = info.get("nodes", info.get("iterations"))
    return Solution(w=beta, objective=float(val), best_bound=bound, status=status, solver=name,
                    solve_time=time.perf_counter() - t0, nodes=nodes, message=msg, info=info,
                    support=np.array(sorted(best_key), dtype=int), timed_out=timed_out,
                    gap_scale=gap_scale(pr))
