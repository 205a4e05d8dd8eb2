"""Best-first branch-and-bound bookkeeping shared by the engines (intercept, slopes, crossed).

An engine owns its nodes, its bounding (``evaluate``) and its branching; this driver owns the
rest: the heap (lowest parent bound first, deeper nodes first on ties), the pruning target
(incumbent minus half the allowed gap), the incumbent, the deadline, the bound log, and the
proven bound at the end, which is the least of the bounds of closed nodes, the bounds of
nodes still open, and the incumbent.  :func:`finish` turns an engine's result into a
:class:`~mixmio.solvers.solution.Solution` with an honest status.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time

import numpy as np

from mixmio._runtime import logger

# the search's progress goes to the ``mixmio`` logger at INFO (``solve(verbose=True)`` shows
# it on stderr through :func:`mixmio._runtime.verbose_logging`)
PROGRESS_EVERY = 2.0  # seconds between progress lines


class Node:
    """A search node: the engine's discrete ``state`` (per-cluster decisions), the box
    ``[lo, hi]`` on the hard directions of the fixed effects, its depth, and optionally
    ``bounds`` that the parent proved on the node's region (engine-specific; the intercept
    engine passes interval bounds of its clusters' gains)."""

    __slots__ = ("state", "lo", "hi", "depth", "bounds")

    def __init__(self, state, lo, hi, depth, bounds=None):
        self.state = state
        self.lo = lo
        self.hi = hi
        self.depth = depth
        self.bounds = bounds


class BestFirst:
    """Heap, incumbent and bound of one branch and bound.

    Usage::

        bf = BestFirst(root, sol0, f0, mip_gap, time_limit, t0, log)
        for node in bf:                      # stops at the deadline or when the heap is empty
            lb = ...                         # bound the node against bf.target
            bf.offer(f, sol)                 # any feasible solution found on the way
            if lb >= bf.target:
                bf.close(lb)                 # node done: its bound counts towards the result
            else:
                bf.push(lb, depth, child)    # or branch
        sol, U, bound = bf.best, bf.U, bf.bound()
    """

    def __init__(self, root, sol0, f0: float, mip_gap: float, time_limit: float | None,
                 t0: float, log: list | None = None):
        self.best, self.U = sol0, float(f0)
        self.mip_gap = mip_gap
        self.t0 = t0
        self.log = log
        self.deadline = None if time_limit is None else t0 + time_limit
        self._counter = itertools.count()
        self._heap = [(-np.inf, 0, next(self._counter), root)]
        self._closed_min = np.inf
        self.nodes = 0
        self.timed_out = False
        self._verbose = logger.isEnabledFor(logging.INFO)
        self._last_print = time.perf_counter()

    @property
    def target(self) -> float:
        """Nodes whose bound reaches this value cannot improve the incumbent by more than
        the allowed gap."""
        return self.U - 0.5 * self.mip_gap * max(abs(self.U), 1e-10)

    def __iter__(self):
        while self._heap:
            if self.nodes and self.deadline is not None and time.perf_counter() > self.deadline:
                self.timed_out = True
                return
            if self.log is not None and self.nodes:
                self.log.append(("bound", time.perf_counter() - self.t0,
                                 min(self._closed_min, self._heap[0][0], self.U)))
            if self._verbose and time.perf_counter() - self._last_print >= PROGRESS_EVERY:
                self._progress()
            lb_parent, _, _, node = heapq.heappop(self._heap)
            if lb_parent >= self.target:
                self.close(lb_parent)
                continue
            self.nodes += 1
            yield node

    def _progress(self) -> None:
        self._last_print = now = time.perf_counter()
        lb = min(self._closed_min, self._heap[0][0], self.U)
        gap = (self.U - lb) / max(abs(self.U), 1e-10)
        logger.info("branch and bound: %7.1f s  %9s nodes  %7s open  incumbent %.8g  gap %.3g%%",
                    now - self.t0, f"{self.nodes:,d}", f"{len(self._heap):,d}", self.U,
                    100 * gap)

    def push(self, lb: float, depth: int, node) -> None:
        heapq.heappush(self._heap, (lb, -depth, next(self._counter), node))

    def close(self, lb: float) -> None:
        self._closed_min = min(self._closed_min, lb)

    def offer(self, f: float, sol) -> bool:
        """Take ``sol`` as the incumbent when its objective ``f`` is lower."""
        if f < self.U:
            self.U, self.best = float(f), sol
            if self.log is not None:
                self.log.append(("incumbent", time.perf_counter() - self.t0, self.U))
            return True
        return False

    def bound(self) -> float:
        open_min = min((e[0] for e in self._heap), default=np.inf)
        return min(self._closed_min, open_min, self.U)


def finish(problem, w, bound, mip_gap: float, timed_out: bool, t0: float, nodes: int,
           solver: str, info: dict, log: list | None = None, reason: str | None = None):
    """Solution of an engine run: ``optimal`` only when the proven relative gap is at most
    ``mip_gap``; else ``time_limit`` (stopped by the clock) or ``gap_limit`` (search complete,
    the rounding safety margins keep the gap above ``mip_gap``), each with a warning."""
    from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

    obj = problem.objective(w)
    bound = min(bound, obj)
    gap = relative_gap(obj, bound, gap_scale(problem))
    if log is not None:
        log.append(("incumbent", time.perf_counter() - t0, obj))
        log.append(("bound", time.perf_counter() - t0, bound))
    status, msg = certified_status(gap, mip_gap, timed_out, solver, reason=reason)
    info = dict(info, mip_gap=mip_gap)
    support = info.pop("support", None)  # the engines' selected clusters: a typed field
    return Solution(w=w, objective=obj, best_bound=float(bound), status=status, solver=solver,
                    solve_time=time.perf_counter() - t0, nodes=nodes, message=msg, info=info,
                    support=support, timed_out=timed_out, gap_scale=gap_scale(problem))
