"""Clusterwise least-absolute-deviations regression with unknown clusters (seed 003).

``mio_clr(formula, data, n_clusters)`` splits the rows into K groups, each with its own LAD
line, by the MILP (P1) of METHODS §4, or (P2) with outlier flags; the big-M is proven valid
(:mod:`mixmio.clr.problem`).  Stages: :func:`~mixmio.clr.solve.make_problem` (arrays and
big-M), :func:`~mixmio.clr.heuristic.alternating` (warm start),
:func:`~mixmio.clr.solve.solve_clr` (MILP and certificate), :class:`MioClrResult`.
"""

from __future__ import annotations

from .api import mio_clr
from .problem import ClrProblem
from .result import MioClrResult

__all__ = ["ClrProblem", "MioClrResult", "mio_clr"]
