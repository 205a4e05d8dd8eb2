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


#: the gap's denominator is at least GAP_FLOOR x the problem's null objective (see
#: :func:`gap_scale`): an objective within mip_gap x GAP_FLOOR x null of its bound is optimal,
#: the analogue of a MIP solver's absolute gap tolerance (Gurobi's MIPGapAbs) beside the
#: relative one.  Without it a perfect fit (objective 0) could never be certified.
GAP_FLOOR = 1e-6


def relative_gap(objective: float, bound: float, scale: float = 0.0) -> float:
    """(objective - bound) / max(|objective|, GAP_FLOOR * scale) (1e-10 in place of the
    second term without a scale), never negative;
    ``inf`` when either is not finite (no bound, or no finite objective: nothing is proven).

    ``scale`` is the problem's null objective (:func:`gap_scale`): the floor only matters for
    objectives below a millionth of it (near-perfect fits), where the rounding margins of a
    certificate would otherwise dominate any relative gap.

    >>> relative_gap(10.0, 9.0)
    0.1
    >>> relative_gap(0.0, -1e-13, scale=100.0)  # a perfect fit: the floor is 1e-4
    1e-09
    """
    objective, bound = float(objective), float(bound)
    if not (np.isfinite(bound) and np.isfinite(objective)):
        return float("inf")
    scale = float(scale)
    den = max(abs(objective), GAP_FLOOR * scale if scale > 0 else 1e-10)
    return max(0.0, (objective - bound) / den)


def gap_scale(problem) -> float:
    """The null objective that floors the gap's denominator: ``problem.null_objective``
    (the objective of a model without any selected effect: 1/2 sum (y - mean)^2 for least
    squares, the intercept-only deviance / 2 for a GLMM, the LAD of y about its median for
    clusterwise regression), or 0 (no floor) for problems that define none."""
    value = getattr(problem, "null_objective", None)
    try:
        value = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return value if np.isfinite(value) and value > 0 else 0.0


def certified_status(gap: float, mip_gap: float, timed_out: bool, solver: str, *,
                     limit: str = "time limit", reason: str | None = None,
                     failure: str | None = None) -> tuple[str, str]:
    """(status, message) of a search that proved relative ``gap`` (:func:`relative_gap`,
    floored by the problem's null objective): ``optimal`` only when gap <= mip_gap; else
    ``time_limit`` (stopped by the clock) or ``gap_limit`` (search complete, the
    floating-point safety margins keep the gap above mip_gap), each with a RuntimeWarning
    pointing at the caller's line.

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

    from mixmio._runtime import user_stacklevel

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
    """What every engine returns.

    Typed fields beyond the objective, bound and status (None when the engine has no such
    thing):

    - ``z``: the indicator values, a bool array over ``w`` (True where a coefficient is
      allowed to be non-zero); engines with linear rows on the indicators report it, since a
      selected coefficient may be exactly zero;
    - ``support``: the selected units as integer indices, in the engine's own units (clusters
      over gamma for the lmm engines, units for the GLM engines, coefficients over ``w`` for
      the heuristic and the subset engine);
    - ``labels``, ``coef``, ``lad``: clusterwise regression's canonical labels (-1 for an
      outlier), K x p coefficients and per-cluster LAD objective;
    - ``timed_out``: the search stopped at its time (or node) limit;
    - ``gap_scale``: the problem's null objective (:func:`gap_scale`), which floors the
      denominator of :attr:`gap` as it floors the engines' certificates.

    ``info`` holds only engine-specific diagnostics (counts, methods, partial bounds) that
    the results never read."""

    w: np.ndarray  # [beta; gamma]
    objective: float
    best_bound: float
    status: str
    solver: str
    solve_time: float
    nodes: int | None = None
    message: str = ""
    info: dict = field(default_factory=dict)
    z: np.ndarray | None = None
    support: np.ndarray | None = None
    labels: np.ndarray | None = None
    coef: np.ndarray | None = None
    lad: np.ndarray | None = None
    timed_out: bool | None = None
    gap_scale: float = 0.0

    @property
    def gap(self) -> float:
        return relative_gap(self.objective, self.best_bound, self.gap_scale)
