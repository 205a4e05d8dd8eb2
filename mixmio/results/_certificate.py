"""The certificate every fitted result reports, read from its Solution and Problem."""

from __future__ import annotations


class CertificateMixin:
    """``objective``, ``best_bound``, ``gap``, ``status``, ``solver``, ``solve_time``, ``ridge``.

    Needs ``self.solution`` (a :class:`~mixmio.solvers.solution.Solution`) and ``self.problem``.
    """

    @property
    def objective(self) -> float:
        return self.solution.objective

    @property
    def best_bound(self) -> float:
        return self.solution.best_bound

    @property
    def gap(self) -> float:
        return self.solution.gap

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
