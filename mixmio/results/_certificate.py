"""The certificate every fitted result reports, read from its Solution and Problem."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixmio.solvers.solution import Solution


class CertificateMixin:
    """``objective``, ``best_bound``, ``gap``, ``status``, ``solver``, ``solve_time``, ``ridge``.

    Needs ``self.solution`` (a :class:`~mixmio.solvers.solution.Solution`) and ``self.problem``.
    """

    if TYPE_CHECKING:  # supplied by the result classes (declared for the type checker only)
        solution: Solution
        problem: Any  # Problem, GlmProblem, GlmmProblem or ClrProblem

    @property
    def objective(self) -> float:
        return self.solution.objective

    @property
    def best_bound(self) -> float:
        return self.solution.best_bound

    @property
    def gap(self) -> float:
        """The proven relative gap (objective - best_bound) / max(|objective|, 1e-6 x the
        null objective): ``optimal`` fits have gap <= mip_gap."""
        from mixmio.solvers.solution import gap_scale, relative_gap

        return relative_gap(self.solution.objective, self.solution.best_bound,
                            gap_scale(self.problem))

    @property
    def status(self) -> str:
        return self.solution.status

    @property
    def solver(self) -> str:
        return self.solution.solver

    @property
    def solve_time(self) -> float:
        return self.solution.solve_time

    @property
    def ridge(self) -> float:
        return self.problem.ridge


def raise_if_no_solution(solution) -> None:
    """A proof of infeasibility, or a solver that found nothing (which proves nothing)."""
    import numpy as np

    if solution.status == "infeasible":
        raise ValueError(f"no solution satisfies the constraints ({solution.message})")
    if not np.isfinite(solution.objective):
        raise RuntimeError(f"the solver found no feasible solution ({solution.message}); "
                           "try solver='auto' or an exact MIQP solver")
