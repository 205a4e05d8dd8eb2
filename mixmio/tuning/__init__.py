"""Choosing the caps: a warm-started path over k (:func:`lmer_path`) and cross-validation
(:func:`cv_lmer`, blocked by cluster or within clusters).

Both refit through the same stages as :func:`mixmio.mio_lmer` (the design is built once per
data set, the problem once per cap), so every point is certified like a single fit.
"""

from .cv import CVResult, cv_lmer
from .path import PathResult, lmer_path

__all__ = ["CVResult", "PathResult", "cv_lmer", "lmer_path"]
