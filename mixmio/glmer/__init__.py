"""Sparse generalised linear mixed models: :func:`mio_glmer` (binomial and Poisson).

Stages as everywhere in mixmio: the design of mio_lmer, :class:`GlmmProblem` (the capped
GLMM as arrays), the solvers (:mod:`mixmio.glmer.solve`: the exact random-intercept branch
and bound, SCIP for every other model, a heuristic), and :class:`MioGlmerResult`.
"""

from .api import glmer_auto_ridge, mio_glmer
from .problem import GlmmProblem
from .result import MioGlmerResult
from .tuning import cv_glmer, glmer_path

__all__ = ["mio_glmer", "glmer_auto_ridge", "GlmmProblem", "MioGlmerResult", "glmer_path",
           "cv_glmer"]
