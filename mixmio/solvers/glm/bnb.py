"""Exact branch and bound over supports with certified fit bounds (no big-M).

A node is (A, B): the units in A are in, those in B may enter, the rest are out; a feasible
support T of the node has A <= T <= A + B and weight <= k.  Since adding columns never raises
the minimum of F, every such T has

    min F on T  >=  min F on W,   W = always-in columns + A + B,

so the fit on W bounds the node (Furnival & Wilson's leaps-and-bounds argument, used for
logistic regression by Hosmer, Jovanovic & Lemeshow 1989).  The fit is made rigorous by
:func:`mixmio.solvers.glm.logistic.certified_gap`:
from the Newton solution b, its restricted gradient
and Hessian, generalised self-concordance gives min F on W >= F(b) - (about ||g||^2_{H^-1}/2),
and a further 1e-9 x max(1, |F|) is taken off for rounding.  No bound on the coefficients is
needed, so no big-M.  Units heavier than the node's room leave B (and W) at once.  The
certificate holds at any point b, converged or not, so a fit cut short by the deadline still
gives a valid (weaker) bound; every node bound is also raised to 0 when below it (F >= 0: each
term log(1 + e^eta) - y eta is positive and the ridge term is >= 0).

Search: best first (lowest bound).  Branch on the free unit with the largest Wald statistic at
the node's fit (dropping it raises F the most): the include child keeps W when no unit became
too heavy for its room, and then reuses the parent's converged fit and bound (the same
minimisation); otherwise its smaller W is refitted by Newton from the parent's coefficients
(restricted to the new W), which converges to the same minimiser as a fit from zero and is
certified the same way.  The exclude child is refitted without the unit, also from the
parent's coefficients.  At every node the support A + (the most significant units of B that
fit) is fitted exactly as an incumbent candidate.  A node whose bound reaches the incumbent
within ``mip_gap / 2`` (relative) is closed; the reported bound is the smallest bound over
open and closed nodes (and never above the incumbent), so ``optimal`` means a proven relative
gap <= ``mip_gap``.

Time limit: the root's Newton fit and every child fit check the deadline between iterations
(the bound from an interrupted root fit is still certified; a child whose fit is cut short, or
not started, keeps the bound of the node it was branched from, valid since its W is smaller),
and the search stops at the next node.
When the deadline has passed before the root, no bound has been computed and the trivial
valid bound 0 is returned.

Holistic constraints (``GlmProblem.forced`` / ``rows``): the root has A = the forced units.
Every node's B first loses, besides the units heavier than the room, every unit that would
break a packing row given A (a row that A fills sends its other units out;
:meth:`GlmProblem.prune`).  Since the include child only takes a unit of that pruned B, every
A is feasible, and every feasible T of a node still has A <= T <= A + B, so the fit on W stays
a relaxation.  A node is a leaf only when A + B itself is feasible (cap and rows); the
greedy incumbent adds units only while the support stays feasible.

Strong signals close fast (dropping a true column raises the bound of the exclude child above
the incumbent, so the tree is a few nodes per selected column); many weak, correlated
candidates can stop at the time limit with an honest gap.
"""

from __future__ import annotations

import heapq
import itertools
import time

import numpy as np

from mixmio.problem.glm import GlmProblem
from mixmio.solvers.glm.heuristics import Fits
from mixmio.solvers.glm.logistic import fit_support, node_quantities

__all__ = ["solve_bnb"]

_ROUNDING = 1e-9
PROGRESS_EVERY = 2.0


class _Node:
    __slots__ = ("A", "B", "beta", "lb", "wald", "depth", "converged")

    def __init__(self, A, B, beta, lb, wald, depth, converged):
        self.A, self.B, self.beta, self.lb, self.wald, self.depth = A, B, beta, lb, wald, depth
        self.converged = converged


def _make_node(pr: GlmProblem, A: frozenset, B: tuple, start: np.ndarray | None, depth: int,
               deadline: float = np.inf, parent: _Node | None = None,
               floor: _Node | None = None) -> _Node:
    """The node (A, B) with the certified bound of the fit on W = always + A + B (B first
    loses the units heavier than the room).  ``parent`` (include child only): when W is the
    parent's and its fit converged, that fit and bound are reused.  ``floor``: a node whose
    W contains this one's (the node branched on); past the deadline the child takes its bound
    (min F over a smaller W is no lower) instead of finishing a fit."""
    B = pr.prune(A, B)  # the room (the cap) and the packing rows
    if (parent is not None and parent.converged
            and set(A) | set(B) == set(parent.A) | set(parent.B)):
        # include child with the parent's W: the same minimisation, so the same fit and bound
        return _Node(A, B, parent.beta, parent.lb, {u: parent.wald[u] for u in B}, depth, True)

    def inherited(fl: _Node) -> _Node:  # fl: the floor (a parameter, so mypy sees not None)
        return _Node(A, B, fl.beta, fl.lb, {u: fl.wald.get(u, 0.0) for u in B}, depth, False)

    if floor is not None and time.perf_counter() >= deadline:
        return inherited(floor)
    cols = pr.columns_of(set(A) | set(B))
    beta, val, ok = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized,
                                start=start, deadline=deadline)
    if not ok and start is not None and time.perf_counter() < deadline:
        # the parent's coefficients can be a poor start when W lost columns collinear with
        # the ones kept (the forms of a Transforms variable): refit from zero
        b0, v0, ok0 = fit_support(cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized,
                                  deadline=deadline)
        if ok0 or v0 < val:
            beta, val, ok = b0, v0, ok0
    if not ok and floor is not None and time.perf_counter() >= deadline:
        return inherited(floor)   # cut short: skip the Hessian, keep the parent's bound
    Hinv, _, cgap = node_quantities(beta, cols, pr.X, pr.y, pr.offset, pr.ridge, pr.penalized)
    # certified at any beta (converged or cut short); F >= 0 is the trivial floor
    lb = max(val + cgap - _ROUNDING * max(1.0, abs(val)), 0.0)
    pos = {int(c): i for i, c in enumerate(cols)}
    d = np.diag(Hinv) if np.all(np.isfinite(Hinv)) else np.ones(cols.size)
    wald = {u: float(sum(beta[j] ** 2 / max(d[pos[int(j)]], 1e-300) for j in pr.units[u]))
            for u in B}
    return _Node(A, B, beta, lb, wald, depth, bool(ok))


def solve_bnb(pr: GlmProblem, fits: Fits, deadline: float, mip_gap: float, log,
              warm_include: bool = True) -> tuple[float, bool, dict]:
    """Branch and bound from the incumbent in ``fits``.

    Returns ``(best bound, timed_out, info)``; the incumbent is ``fits.best_key``.
    ``warm_include=False`` refits every include child from zero (the behaviour before the
    warm start; kept to check that both give the same certified result).
    """
    counter = itertools.count()
    info = {"nodes": 0, "open_nodes": 0, "include_reused": 0, "include_refit": 0}
    if time.perf_counter() >= deadline:
        # no bound computed: the trivial valid one (F >= 0)
        info["open_nodes"] = 1
        log(f"time limit before the root: incumbent {fits.best_val:.6f}, bound 0")
        return 0.0, True, info
    forced = frozenset(pr.forced)
    root = _make_node(pr, forced, tuple(u for u in range(len(pr.units)) if u not in forced),
                      None, 0, deadline)
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
        if (sum(pr.weights[u] for u in node.B) <= room
                and (not pr.rows or pr.feasible(set(node.A) | set(node.B)))):
            # leaf: W itself is feasible, and its fit is the node's optimum
            fits.fit(set(node.A) | set(node.B), start=node.beta)
            closed_min = min(closed_min, node.lb)
            continue
        order = sorted(node.B, key=lambda u: -node.wald[u])
        fits.fit(pr.greedy_fill(node.A, order), start=node.beta)
        j = order[0]
        rest = tuple(u for u in node.B if u != j)
        if warm_include:
            # fit_support reads the start on the child's W only: dropped units are ignored
            child = _make_node(pr, node.A | {j}, rest, node.beta, node.depth + 1, deadline,
                               parent=node, floor=node)
            reused = child.converged and child.beta is node.beta
            info["include_reused" if reused else "include_refit"] += 1
        else:
            child = _make_node(pr, node.A | {j}, rest, None, node.depth + 1, deadline,
                               floor=node)
            info["include_refit"] += 1
        push(child)
        start = node.beta.copy()
        start[pr.units[j]] = 0.0
        push(_make_node(pr, node.A, rest, start, node.depth + 1, deadline, floor=node))
        if time.perf_counter() - last >= PROGRESS_EVERY:
            last = time.perf_counter()
            open_lb = heap[0][0] if heap else np.inf
            log(f"nodes {nodes}, open {len(heap)}, incumbent {fits.best_val:.6f}, "
                f"bound {min(open_lb, closed_min, fits.best_val):.6f}")
    open_lb = heap[0][0] if heap else np.inf
    bound = min(open_lb, closed_min, fits.best_val)
    log(f"done: nodes {nodes}, open {len(heap)}, incumbent {fits.best_val:.6f}, "
        f"bound {bound:.6f}" + (" (time limit)" if timed_out else ""))
    info.update(nodes=nodes, open_nodes=len(heap))
    return bound, timed_out, info
