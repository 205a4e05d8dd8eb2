"""The Solution every backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: statuses a Solution may carry; ``optimal`` only with a proven gap within tolerance
STATUSES = ("optimal", "time_limit", "gap_limit", "heuristic", "infeasible", "error")


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / max(|objective|, 1e-10), never negative."""
    if not np.isfinite(bound):
        return float("inf")
    return max(0.0, (objective - bound) / max(abs(objective), 1e-10))


def certified_status(gap: float, mip_gap: float, timed_out: bool, solver: str) -> tuple[str, str]:
    """(status, message) of a search that proved relative ``gap``: ``optimal`` only when
    gap <= mip_gap; else ``time_limit`` (stopped by the clock) or ``gap_limit`` (search
    complete, the floating-point safety margins keep the gap above mip_gap), each with a
    RuntimeWarning pointing at the caller's line."""
    import warnings

    from mixmio._warnings import user_stacklevel

    if gap <= mip_gap:
        return "optimal", f"proven relative gap {gap:.2e} <= {mip_gap:.0e}"
    if timed_out:
        status, msg = "time_limit", f"time limit reached with relative gap {gap:.3e}"
    else:
        status = "gap_limit"
        msg = (f"search complete; proven relative gap {gap:.3e} exceeds mip_gap {mip_gap:.0e} "
               "only by the floating-point safety margins")
    warnings.warn(f"{solver}: {msg}", RuntimeWarning, stacklevel=user_stacklevel())
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
