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
