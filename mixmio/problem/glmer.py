"""GlmmProblem: the l0-capped penalised GLMM as arrays (no formulas, no DataFrames).

    minimise  F(w) = sum_i l_i(eta_i) + ridge/2 ||w_penalized||^2,
              eta = X beta + Z gamma + offset,  w = [beta; gamma]
    s.t.      the caps, sign caps and indicator rows of ``base`` (as in mio_lmer),

with ``l_i`` the family's per-row loss (negative log-likelihood minus its saturated value,
:mod:`mixmio.problem.family`), so F >= 0 and F = deviance / 2 + ridge term.  ``base`` is the
linear :class:`~mixmio.problem.Problem` of the same design, built by mio_lmer's own code: it
carries X, Z, the caps (``CapSet``), ``sign_caps``, ``terms`` (``TermStructure``), the
indicator ``constraints`` (``LinearConstraint`` rows: ForceInclude / Exclude of clusters are
singleton rows ``z == 1`` / ``z == 0``; JointClusterSelection ties a cluster's columns) and
``penalized``.  Its ``y`` is not used: the response is ``y`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mixmio.problem import Problem
from mixmio.problem import family as fam

__all__ = ["GlmmProblem"]


@dataclass(frozen=True, eq=False)
class GlmmProblem:
    """The GLMM program; see the module docstring.

    ``y``: successes (binomial, 0..weights) or counts (poisson); ``weights``: trials
    (binomial) or prior weights (poisson); ``offset``: added to the linear predictor.
    """

    base: Problem
    family: str
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    sat: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.family not in fam.FAMILIES:
            raise ValueError(f"family must be one of {fam.FAMILIES}, got {self.family!r}")
        object.__setattr__(self, "sat", fam.saturated(self.family, self.y, self.weights))

    # the linear program's structure, read through
    @property
    def X(self) -> np.ndarray:
        return self.base.X

    @property
    def Z(self):
        return self.base.Z

    @property
    def ridge(self) -> float:
        return self.base.ridge

    @property
    def caps(self):
        return self.base.caps

    @property
    def sign_caps(self):
        return self.base.sign_caps

    @property
    def constraints(self):
        return self.base.constraints

    @property
    def terms(self):
        return self.base.terms

    @property
    def penalized(self) -> np.ndarray:
        return self.base.penalized

    @property
    def n(self) -> int:
        return self.base.n

    @property
    def p(self) -> int:
        return self.base.p

    @property
    def m(self) -> int:
        return self.base.m

    @property
    def n_coef(self) -> int:
        return self.base.n_coef

    @property
    def capped(self) -> np.ndarray:
        return self.base.capped

    @cached_property
    def null_objective(self) -> float:
        """The intercept-only fit's deviance / 2 (with the offset): the scale that floors the
        certificate's relative gap (:func:`mixmio.solvers.solution.relative_gap`)."""
        a = fam.intercept_only(self.family, self.y, self.weights, self.offset)
        return float(np.sum(fam.loss(self.family, a + self.offset, self.y, self.weights,
                                     self.sat)))

    def eta(self, w: np.ndarray) -> np.ndarray:
        """The linear predictor X beta + Z gamma + offset."""
        return self.X @ w[: self.p] + self.Z @ w[self.p:] + self.offset

    def objective(self, w: np.ndarray) -> float:
        """F(w) = deviance / 2 + ridge / 2 ||w_penalized||^2 (see the module)."""
        pen = w[self.penalized]
        return (float(np.sum(fam.loss(self.family, self.eta(w), self.y, self.weights,
                                      self.sat)))
                + 0.5 * self.ridge * float(pen @ pen))

    def deviance(self, w: np.ndarray) -> float:
        """The deviance 2 sum_i l_i (no ridge term)."""
        return 2.0 * float(np.sum(fam.loss(self.family, self.eta(w), self.y, self.weights,
                                           self.sat)))
