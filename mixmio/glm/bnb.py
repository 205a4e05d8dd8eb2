"""Exact branch and bound over supports with certified fit bounds (no big-M).

A node is (A, B): the units in A are in, those in B may enter, the rest are out; a feasible
support T of the node has A <= T <= A + B and weight <= k.  Since adding columns never raises
the minimum of F, every such T has

    min F on T  >=  min F on W,   W = always-in columns + A + B,

so the fit on W bounds the node (Furnival & Wilson's leaps-and-bounds argument, used for
logistic regression by Hosmer, Jovanovic & Lemeshow 1989).  The fit is made rigorous by
:func:`mixmio.glm._logistic.certified_gap`: from the Newton solution b, its restricted gradient
and Hessian, generalised self-concordance gives min F on W >= F(b) - (about ||g||^2_{H^-1}/2),
and a further 1e-9 x max(1, |F|) is taken off for rounding.  No bound on the coefficients is
needed, so no big-M.  Units heavier than the node's room leave B (and W) at once.

Search: best first (lowest bound).  Branch on the free unit with the largest Wald statistic at
the node's fit (dropping it raises F the most): the include child keeps W (and its bound), the
exclude child is refitted without it.  At every node the support A + (the most significant
units of B that fit) is fitted exactly as an incumbent candidate.  A node whose bound reaches
the incumbent within ``mip_gap / 2`` (relative) is closed; the reported bound is the smallest
bound over open and closed nodes (and never above the incumbent), so ``optimal`` means a proven
relative gap <= ``mip_gap``.

Strong signals close fast (dropping a true column raises the bound of the exclude child above
the incumbent, so the tree is a few nodes per selected column); many weak, correlated
candidates can stop at the time limit with an honest gap.
"""

from __future__ import annotations

import heapq
import itertools
import time

import numpy as np

from ._logistic import fit_support, node_quantities
from .heuristics import Fits
from .problem import GlmProblem

__all__ = ["solve_bnb"]

_ROUNDING = 1e-9
PROGRESS_EVERY = 2.0


class _Node:
    __slots__ = ("A", "B", "beta", "lb", "wald", "depth")

    def __init__(self, A, B, beta, lb, wald, depth):
        self.A, self.B, self.beta, self.lb, self.wald, self.depth = A, B, beta, lb, wald, depth


def _make_node(pr: GlmProblem, A: frozenset, B: tuple, start: np.ndarray | None, depth: int,
               parent: _Node | None = None) -> _Node:
    room = pr.k - int(sum(pr.weights[u] for u in A))
    B = tuple(u for u in B if pr.weights[u] <= room)
    if parent is not None and B == parent.B and A != parent.A:
        # include child with the same W: same fit, same bound
        return _Node(A, B, parent.beta, parent.lb, parent.wald, depth)
    cols = pr.columns_of(set(A) | set(B))
    beta, val, _ = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized, start=start)
    Hinv, _, cgap = node_quantities(beta, cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
    lb = val + cgap - _ROUNDING * max(1.0, abs(val))
    pos = {int(c): i for i, c in enumerate(cols)}
    d = np.diag(Hinv) if np.all(np.isfinite(Hinv)) else np.ones(cols.size)
    wald = {u: float(sum(beta[j] ** 2 / max(d[pos[int(j)]], 1e-300) for j in pr.units[u]))
            for u in B}
    return _Node(A, B, beta, lb, wald, depth)


def solve_bnb(pr: GlmProblem, fits: Fits, deadline: float, mip_gap: float, log
              ) -> tuple[float, bool, dict]:
    """Branch and bound from the incumbent in ``fits``.

    Returns ``(best bound, timed_out, info)``; the incumbent is ``fits.best_key``.
    """
    counter = itertools.count()
    root = _make_node(pr, frozenset(), tuple(range(len(pr.units))), None, 0)
    heap: list = []
    closed_min = np.inf
    nodes = 0
    timed_out = False
    last = time.perf_counter()

    def tol() -> float:
        return 0.5 * mip_gap * max(abs(fits.best_val), 1e-10)

    def push(node: _Node) -> None:
        nonlocal closed_min
        if node.lb >= fits.best_val - tol():
            closed_min = min(closed_min, node.lb)
        else:
            heapq.heappush(heap, (node.lb, -node.depth, next(counter), node))

    push(root)
    while heap:
        lb, _, _, node = heap[0]
        if lb >= fits.best_val - tol():
            break
        if time.perf_counter() >= deadline:
            timed_out = True
            break
        heapq.heappop(heap)
        nodes += 1
        room = pr.k - int(sum(pr.weights[u] for u in node.A))
        if sum(pr.weights[u] for u in node.B) <= room:
            # leaf: W itself is feasible, and its fit is the node's optimum
            fits.fit(set(node.A) | set(node.B), start=node.beta)
            closed_min = min(closed_min, node.lb)
            continue
        order = sorted(node.B, key=lambda u: -node.wald[u])
        greedy, r = [], room
        for u in order:
            if pr.weights[u] <= r:
                greedy.append(u)
                r -= int(pr.weights[u])
        fits.fit(set(node.A) | set(greedy), start=node.beta)
        j = order[0]
        rest = tuple(u for u in node.B if u != j)
        push(_make_node(pr, node.A | {j}, rest, None, node.depth + 1, parent=node))
        start = node.beta.copy()
        start[pr.units[j]] = 0.0
        push(_make_node(pr, node.A, rest, start, node.depth + 1))
        if time.perf_counter() - last >= PROGRESS_EVERY:
            last = time.perf_counter()
            open_lb = heap[0][0] if heap else np.inf
            log(f"nodes {nodes}, open {len(heap)}, incumbent {fits.best_val:.6f}, "
                f"bound {min(open_lb, closed_min, fits.best_val):.6f}")
    open_lb = heap[0][0] if heap else np.inf
    bound = min(open_lb, closed_min, fits.best_val)
    log(f"done: nodes {nodes}, open {len(heap)}, incumbent {fits.best_val:.6f}, "
        f"bound {bound:.6f}" + (" (time limit)" if timed_out else ""))
    return bound, timed_out, {"nodes": nodes, "open_nodes": len(heap)}
