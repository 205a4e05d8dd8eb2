"""Best-subset logistic regression with a proven certificate: :func:`mio_glm`.

Stages, as for ``mio_lm``: ``build_design`` (formula -> X, y) -> :class:`GlmProblem` (arrays,
units of selectable columns, cap, ridge) -> :func:`~mixmio.glm.engine.solve_glm` (a
:class:`~mixmio.solvers.solution.Solution` with an honest status) -> :class:`MioGlmResult`.

Modules: ``_logistic`` (loss, Newton fits, certified fit bounds), ``heuristics`` (discrete
first-order warm start + swaps), ``bounds`` (separation check, proven big-M), ``bnb`` (default
exact engine, no big-M), ``oa`` (outer approximation with a HiGHS master), ``engine``
(dispatch, statuses), ``result``, ``api``.
"""

from ._logistic import SeparationError
from .api import mio_glm
from .problem import GlmProblem
from .result import GlmSummary, MioGlmResult

__all__ = ["GlmProblem", "GlmSummary", "MioGlmResult", "SeparationError", "mio_glm"]
