"""The result stage: immutable fitted-model values with tables, summaries and prediction."""

from mixmio.results.lmer import MioLmerResult

__all__ = ["MioLmerResult"]
