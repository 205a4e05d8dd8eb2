"""The Solution every backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: statuses a Solution may carry; ``optimal`` only with a proven gap within tolerance
STATUSES = ("optimal", "time_limit", "gap_limit", "heuristic", "infeasible", "error")


class SearchLimitWarning(RuntimeWarning, UserWarning):
    """A search stopped by a limit (the clock, a node limit) before proving ``mip_gap``.

    A RuntimeWarning like every certification warning, and also a UserWarning: the limit is
    one the user set, and the CVXPY backend and the subset engine warned with UserWarning
    before their statuses came from :func:`certified_status`."""


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / max(|objective|, 1e-10), never negative; ``inf`` when either is
    not finite (no bound, or no finite objective: nothing is proven)."""
    objective, bound = float(objective), float(bound)
    if not (np.isfinite(bound) and np.isfinite(objective)):
        return float("inf")
    return max(0.0, (objective - bound) / max(abs(objective), 1e-10))


def certified_status(gap: float, mip_gap: float, timed_out: bool, solver: str, *,
                     limit: str = "time limit", reason: str | None = None,
                     failure: str | None = None) -> tuple[str, str]:
    """(status, message) of a search that proved relative ``gap``: ``optimal`` only when
    gap <= mip_gap; else ``time_limit`` (stopped by the clock) or ``gap_limit`` (search
    complete, the floating-point safety margins keep the gap above mip_gap), each with a
    RuntimeWarning pointing at the caller's line.

    ``gap`` must come from a proven bound (:func:`relative_gap`: ``inf`` without one); a NaN
    gap counts as ``inf``.  Keywords for the backends that wrap an outside solver:

    - ``limit``: the limit that stopped a ``timed_out`` search, in the message (``"node
      limit"``); the status is still ``time_limit``;
    - ``reason``: why a complete search's gap exceeds ``mip_gap`` (e.g. the solver claimed
      optimality without a readable bound), replacing the safety-margin explanation;
    - ``failure``: the search ended in a solver failure (an error, an unexpected stop, an
      inaccurate solution): ``error`` unless the proven gap is still within ``mip_gap``.
    """
    import warnings

    from mixmio._warnings import user_stacklevel

    gap = float(gap)
    if gap != gap:  # NaN: nothing proven
        gap = float("inf")
    if gap <= mip_gap:
        return "optimal", f"proven relative gap {gap:.2e} <= {mip_gap:.0e}"
    category: type[Warning] = RuntimeWarning
    if failure is not None:
        status = "error"
        msg = f"{failure}; the incumbent is returned with relative gap {gap:.3e}"
    elif timed_out:
        status, msg = "time_limit", f"{limit} reached with relative gap {gap:.3e}"
        category = SearchLimitWarning
    else:
        status = "gap_limit"
        if reason is None:
            msg = (f"search complete; proven relative gap {gap:.3e} exceeds mip_gap "
                   f"{mip_gap:.0e} only by the floating-point safety margins")
        else:
            msg = f"{reason}: proven relative gap {gap:.3e} exceeds mip_gap {mip_gap:.0e}"
    warnings.warn(f"{solver}: {msg}", category, stacklevel=user_stacklevel())
    return status, msg


@dataclass(frozen=True)
class Solution:
    w: np.ndarray  # [beta; gamma]
    objective: float
    best_bound: float
    status: str
    solver: str
    solve_time: float
    nodes: int | None = None
    message: str = ""
    info: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return relative_gap(self.objective, self.best_bound)
